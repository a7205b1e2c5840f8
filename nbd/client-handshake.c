/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Opening an export: connecting the socket and the fixed newstyle
 * handshake, done blocking on the caller's thread as QEMU's blockdev-add
 * also waits for it (the socket carries a timeout so a silent server
 * cannot hold the monitor for ever).  The order is QEMU 7.2's:
 * STRUCTURED_REPLY, SET_META_CONTEXT, then GO with a request for the
 * block sizes; a server that does not know GO gets EXPORT_NAME.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "nbd/client.h"

/* how long a step of the handshake may take */
#define NBD_HANDSHAKE_TIMEOUT_S 10

static void set_timeout(int fd)
{
    struct timeval tv = { .tv_sec = NBD_HANDSHAKE_TIMEOUT_S };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int connect_unix(const NbdAddress *a, Error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *path = a->path;
    size_t max = sizeof(sa.sun_path) - (a->abstract ? 1 : 0);
    socklen_t len = sizeof(sa);
    int fd;

    if (strlen(path) >= max) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -1;
    }
    /* an abstract name starts with a NUL; "tight" leaves out the
     * padding, which is part of the name otherwise (QEMU's rules) */
    memcpy(sa.sun_path + (a->abstract ? 1 : 0), path, strlen(path));
    if (a->abstract && a->tight) {
        len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0) {
        error_setg_errno(errp, errno, "Failed to connect to '%s'", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    set_timeout(fd);
    return fd;
}

static int connect_inet(const NbdAddress *a, Error **errp)
{
    const char *host = a->host, *port = a->port;
    struct addrinfo hints = {
        .ai_socktype = SOCK_STREAM, .ai_family = a->family,
        .ai_flags = AI_ADDRCONFIG | (a->numeric ? AI_NUMERICHOST : 0),
    };
    struct addrinfo *res, *ai;
    int err = ECONNREFUSED;
    int rc = getaddrinfo(host, port, &hints, &res);
    int fd = -1;

    if (rc) {
        error_setg(errp, "address resolution failed for %s:%s: %s", host,
                   port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        err = errno;
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        error_setg_errno(errp, err, "Failed to connect to '%s:%s'", host,
                         port);
        return -1;
    }
    if (a->keep_alive) {
        int on = 1;

        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    }
    set_timeout(fd);
    return fd;
}

int nbd_client_connect(const NbdAddress *addr, Error **errp)
{
    return addr->is_unix ? connect_unix(addr, errp)
                         : connect_inet(addr, errp);
}

static bool read_full(int fd, void *buf, size_t len, Error **errp)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error_setg(errp, "Failed to read from the NBD server: %s",
                       n ? g_strerror(errno) : "Unexpected end-of-file");
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t len, Error **errp)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "Failed to write to the NBD "
                             "server");
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

static bool send_option(int fd, uint32_t opt, const void *data, uint32_t len,
                        Error **errp)
{
    uint8_t h[16];

    nbd_put64(h, NBD_OPTS_MAGIC);
    nbd_put32(h + 8, opt);
    nbd_put32(h + 12, len);
    return write_full(fd, h, sizeof(h), errp)
        && write_full(fd, data, len, errp);
}

typedef struct {
    uint32_t type;
    uint32_t len;
    uint8_t *data;              /* g_free */
} OptReply;

static bool read_option_reply(int fd, uint32_t opt, OptReply *r,
                              Error **errp)
{
    uint8_t h[20];

    if (!read_full(fd, h, sizeof(h), errp)) {
        return false;
    }
    if (nbd_get64(h) != NBD_REP_MAGIC || nbd_get32(h + 8) != opt) {
        error_setg(errp, "Unexpected option reply from the NBD server");
        return false;
    }
    r->type = nbd_get32(h + 12);
    r->len = nbd_get32(h + 16);
    if (r->len > NBD_MAX_OPTION_SIZE) {
        error_setg(errp, "server's reply to %s is too long",
                   nbd_opt_name(opt));
        return false;
    }
    r->data = g_malloc(r->len + 1);
    r->data[r->len] = 0;
    return read_full(fd, r->data, r->len, errp);
}

/* QEMU's messages for an option's error replies */
static void option_error(const OptReply *r, uint32_t opt, Error **errp)
{
    switch (r->type) {
    case NBD_REP_ERR_UNKNOWN:
        error_setg(errp, "Requested export not available");
        break;
    case NBD_REP_ERR_TLS_REQD:
        error_setg(errp, "TLS negotiation required before option %" PRIu32
                   " (%s)", opt, nbd_opt_name(opt));
        break;
    case NBD_REP_ERR_POLICY:
        error_setg(errp, "Denied by server for option %" PRIu32 " (%s)",
                   opt, nbd_opt_name(opt));
        break;
    default:
        error_setg(errp, "Unknown error returned by server for option %"
                   PRIu32 " (%s)", opt, nbd_opt_name(opt));
        break;
    }
    if (r->len) {
        error_append_hint(errp, "server reported: %s\n",
                          (const char *)r->data);
    }
}

static bool negotiate_structured(int fd, bool *ok, Error **errp)
{
    OptReply r = { 0 };

    if (!send_option(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0, errp)
        || !read_option_reply(fd, NBD_OPT_STRUCTURED_REPLY, &r, errp)) {
        g_free(r.data);
        return false;
    }
    *ok = r.type == NBD_REP_ACK;
    g_free(r.data);
    return true;
}

static bool negotiate_context(int fd, const char *name, const char *context,
                              NbdExportInfo *info, Error **errp)
{
    size_t nlen = strlen(name), clen = strlen(context);
    g_autofree uint8_t *p = g_malloc(12 + nlen + clen);

    nbd_put32(p, nlen);
    memcpy(p + 4, name, nlen);
    nbd_put32(p + 4 + nlen, 1);
    nbd_put32(p + 8 + nlen, clen);
    memcpy(p + 12 + nlen, context, clen);
    if (!send_option(fd, NBD_OPT_SET_META_CONTEXT, p, 12 + nlen + clen,
                     errp)) {
        return false;
    }
    for (;;) {
        OptReply r = { 0 };

        if (!read_option_reply(fd, NBD_OPT_SET_META_CONTEXT, &r, errp)) {
            g_free(r.data);
            return false;
        }
        if (r.type == NBD_REP_META_CONTEXT && r.len > 4
            && r.len - 4 == clen && !memcmp(r.data + 4, context, clen)) {
            info->has_context = true;
            info->context_id = nbd_get32(r.data);
        }
        g_free(r.data);
        if (r.type != NBD_REP_META_CONTEXT) {
            /* ACK ends the list; an error means no contexts */
            return true;
        }
    }
}

static bool parse_info(const OptReply *r, NbdExportInfo *info, Error **errp)
{
    uint16_t type;

    if (r->len < 2) {
        error_setg(errp, "Invalid NBD_REP_INFO from the NBD server");
        return false;
    }
    type = nbd_get16(r->data);
    if (type == NBD_INFO_EXPORT && r->len >= 12) {
        info->size = nbd_get64(r->data + 2);
        info->flags = nbd_get16(r->data + 10);
    } else if (type == NBD_INFO_BLOCK_SIZE && r->len >= 14) {
        info->min_block = nbd_get32(r->data + 2);
        info->opt_block = nbd_get32(r->data + 6);
        info->max_block = nbd_get32(r->data + 10);
        if (!info->min_block || (info->min_block & (info->min_block - 1))
            || info->min_block > 65536) {
            error_setg(errp, "server minimum block size %" PRIu32
                       " is not a power of two", info->min_block);
            return false;
        }
    }
    return true;
}

/* GO; false with *unsup when the server does not know it */
static bool negotiate_go(int fd, const char *name, NbdExportInfo *info,
                         bool *unsup, Error **errp)
{
    size_t nlen = strlen(name);
    g_autofree uint8_t *p = g_malloc(8 + nlen);
    bool have_export = false;

    nbd_put32(p, nlen);
    memcpy(p + 4, name, nlen);
    nbd_put16(p + 4 + nlen, 1);
    nbd_put16(p + 6 + nlen, NBD_INFO_BLOCK_SIZE);
    if (!send_option(fd, NBD_OPT_GO, p, 8 + nlen, errp)) {
        return false;
    }
    for (;;) {
        OptReply r = { 0 };
        bool ok = true;

        if (!read_option_reply(fd, NBD_OPT_GO, &r, errp)) {
            g_free(r.data);
            return false;
        }
        if (r.type == NBD_REP_INFO) {
            ok = parse_info(&r, info, errp);
            have_export |= r.len >= 12 && nbd_get16(r.data) == NBD_INFO_EXPORT;
        } else if (r.type == NBD_REP_ACK) {
            g_free(r.data);
            if (!have_export) {
                error_setg(errp, "broken server omitted NBD_INFO_EXPORT");
                return false;
            }
            return true;
        } else if (r.type == NBD_REP_ERR_UNSUP) {
            *unsup = true;
            ok = false;
        } else {
            option_error(&r, NBD_OPT_GO, errp);
            ok = false;
        }
        g_free(r.data);
        if (!ok) {
            return false;
        }
    }
}

static bool export_name(int fd, const char *name, bool no_zeroes,
                        NbdExportInfo *info, Error **errp)
{
    uint8_t r[10 + 124];

    if (!send_option(fd, NBD_OPT_EXPORT_NAME, name, strlen(name), errp)) {
        return false;
    }
    /* the server closes the connection for an unknown export */
    if (!read_full(fd, r, no_zeroes ? 10 : sizeof(r), NULL)) {
        error_setg(errp, "Requested export not available");
        return false;
    }
    info->size = nbd_get64(r);
    info->flags = nbd_get16(r + 8);
    return true;
}

bool nbd_client_handshake(int fd, const char *name, const char *context,
                          NbdExportInfo *info, Error **errp)
{
    uint8_t greet[18];
    uint8_t cflags[4];
    uint16_t sflags;
    bool unsup = false;

    memset(info, 0, sizeof(*info));
    if (!read_full(fd, greet, sizeof(greet), errp)) {
        return false;
    }
    if (nbd_get64(greet) != NBD_INIT_MAGIC
        || nbd_get64(greet + 8) != NBD_OPTS_MAGIC) {
        error_setg(errp, "Server does not support the newstyle NBD "
                   "handshake");
        return false;
    }
    sflags = nbd_get16(greet + 16);
    nbd_put32(cflags, sflags & (NBD_FLAG_FIXED_NEWSTYLE
                                | NBD_FLAG_NO_ZEROES));
    if (!write_full(fd, cflags, sizeof(cflags), errp)) {
        return false;
    }
    if (sflags & NBD_FLAG_FIXED_NEWSTYLE) {
        if (!negotiate_structured(fd, &info->structured, errp)) {
            return false;
        }
        if (info->structured && context
            && !negotiate_context(fd, name, context, info, errp)) {
            return false;
        }
        if (negotiate_go(fd, name, info, &unsup, errp)) {
            goto done;
        }
        if (!unsup) {
            return false;
        }
    }
    if (!export_name(fd, name, sflags & NBD_FLAG_NO_ZEROES, info, errp)) {
        return false;
    }
done:
    if (!info->min_block) {
        info->min_block = 1;
    }
    if (!(info->flags & NBD_FLAG_HAS_FLAGS)) {
        info->flags = NBD_FLAG_HAS_FLAGS;
    }
    return true;
}
