/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Channels.  Sockets are made non-blocking at once and watched by the
 * main loop: a TCP connect that is still in progress completes when the
 * socket turns writable, a listener accepts on readable.  A host name
 * is resolved with getaddrinfo(), which may block on DNS; migrations
 * name numeric addresses or localhost in practice.  Unix sockets are
 * created owner-only, as every socket qmpd listens on.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "migration/channel.h"
#include "util/confine.h"
#include "util/fdstore.h"

struct MigListener {
    int fd;
    guint watch;
    bool more;              /* keep accepting (multifd) */
    bool in_cb, dead;       /* freed by its callback: free after it */
    MigChannelCb *cb;
    void *opaque;
    json_t *address;
};

typedef struct MigConnect {
    int fd;
    MigChannelCb *cb;
    void *opaque;
    Error *err;
} MigConnect;

bool mig_uri_valid(const char *uri)
{
    return g_str_has_prefix(uri, "tcp:") || g_str_has_prefix(uri, "unix:")
        || g_str_has_prefix(uri, "exec:") || g_str_has_prefix(uri, "fd:");
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* "HOST:PORT" or "[V6]:PORT" into getaddrinfo results. */
static struct addrinfo *resolve(const char *hp, bool passive, Error **errp)
{
    g_autofree char *host = NULL;
    const char *colon = strrchr(hp, ':');
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = passive ? AI_PASSIVE : 0 };
    struct addrinfo *res;
    int r;

    if (!colon) {
        error_setg(errp, "error parsing address '%s'", hp);
        return NULL;
    }
    host = g_strndup(hp, colon - hp);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = 0;
    }
    r = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res);
    if (r) {
        error_setg(errp, "address resolution failed for %s: %s", hp,
                   gai_strerror(r));
        return NULL;
    }
    return res;
}

static int unix_addr(const char *path, struct sockaddr_un *sun,
                     Error **errp)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -1;
    }
    strcpy(sun->sun_path, path);
    return 0;
}

static gboolean connect_done_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    MigConnect *c = opaque;
    int err = 0;
    socklen_t len = sizeof(err);

    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        Error *e = NULL;

        error_setg_errno(&e, err, "Failed to connect socket");
        close(fd);
        c->cb(c->opaque, -1, e);
    } else {
        c->cb(c->opaque, fd, NULL);
    }
    g_free(c);
    return G_SOURCE_REMOVE;
}

static gboolean connect_report_cb(gpointer opaque)
{
    MigConnect *c = opaque;

    c->cb(c->opaque, c->fd, c->err);
    g_free(c);
    return G_SOURCE_REMOVE;
}

/* Start a non-blocking connect of a new socket to @sa. */
static int start_connect(int family, const struct sockaddr *sa,
                         socklen_t salen, bool *in_progress)
{
    int fd = socket(family, SOCK_STREAM, 0);

    if (fd < 0) {
        return -errno;
    }
    set_nonblock(fd);
    *in_progress = false;
    if (connect(fd, sa, salen) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;

            close(fd);
            return -e;
        }
        *in_progress = true;
    }
    return fd;
}

static bool outside_forbidden;

void mig_channel_forbid_outside(void)
{
    outside_forbidden = true;
}

static bool outside_allowed(const char *uri, Error **errp)
{
    if (outside_forbidden) {
        error_setg(errp, "Migration URI '%s' is disabled here", uri);
        return false;
    }
    return true;
}

/*
 * fd:N or fd:NAME, as QEMU reads them: a leading digit makes a number
 * (getfd refuses such names).  The descriptor becomes the caller's.
 */
static int fd_param(const char *param, Error **errp)
{
    int fd = -1;

    if (!outside_allowed("fd:", errp)) {
        return -1;
    }
    if (g_ascii_isdigit(param[0])) {
        char *end;
        long n = strtol(param, &end, 10);

        if (!*end && n <= G_MAXINT && fcntl(n, F_GETFD) >= 0) {
            fd = n;
        }
    } else {
        fd = fdstore_take(fdstore_current(), param);
    }
    if (fd < 0) {
        error_setg(errp, "File descriptor named '%s' has not been found",
                   param);
        return -1;
    }
    set_nonblock(fd);
    return fd;
}

static int spawn_exec(const char *cmd, bool source, Error **errp)
{
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    GError *gerr = NULL;
    int fd;
    gboolean ok;

    if (!outside_allowed("exec:", errp)) {
        return -1;
    }
    ok = g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                  G_SPAWN_DEFAULT, NULL, NULL,
                                  NULL, source ? &fd : NULL,
                                  source ? NULL : &fd, NULL, &gerr);
    if (!ok) {
        error_setg(errp, "%s", gerr->message);
        g_error_free(gerr);
        return -1;
    }
    set_nonblock(fd);
    return fd;
}

bool mig_channel_connect(const char *uri, MigChannelCb *cb, void *opaque,
                         Error **errp)
{
    MigConnect *c = g_new0(MigConnect, 1);
    bool in_progress = false;
    int fd = -1;

    c->cb = cb;
    c->opaque = opaque;
    if (g_str_has_prefix(uri, "tcp:")) {
        struct addrinfo *res = resolve(uri + 4, false, errp), *ai;

        if (!res) {
            g_free(c);
            return false;
        }
        fd = -ECONNREFUSED;
        for (ai = res; ai && fd < 0; ai = ai->ai_next) {
            fd = start_connect(ai->ai_family, ai->ai_addr, ai->ai_addrlen,
                               &in_progress);
        }
        freeaddrinfo(res);
    } else if (g_str_has_prefix(uri, "unix:")) {
        struct sockaddr_un sun;

        if (unix_addr(uri + 5, &sun, errp) < 0) {
            g_free(c);
            return false;
        }
        fd = start_connect(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun),
                           &in_progress);
    } else if (g_str_has_prefix(uri, "exec:")) {
        fd = spawn_exec(uri + 5, true, errp);
        if (fd < 0) {
            g_free(c);
            return false;
        }
    } else {
        fd = fd_param(uri + 3, errp);
        if (fd < 0) {
            g_free(c);
            return false;
        }
    }
    if (fd >= 0 && in_progress) {
        g_unix_fd_add(fd, G_IO_OUT, connect_done_cb, c);
        return true;
    }
    /* done or failed at once: report from the main loop all the same */
    c->fd = fd < 0 ? -1 : fd;
    if (fd < 0) {
        error_setg_errno(&c->err, -fd, "Failed to connect socket");
    }
    g_idle_add(connect_report_cb, c);
    return true;
}

static gboolean accept_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    MigListener *l = opaque;
    int conn = accept(fd, NULL, NULL);

    if (conn < 0) {
        return G_SOURCE_CONTINUE;    /* EAGAIN, or the client gave up */
    }
    set_nonblock(conn);
    if (l->more) {
        l->in_cb = true;
        l->cb(l->opaque, conn, NULL);
        l->in_cb = false;
        if (l->dead) {
            l->watch = 0;
            mig_listener_free(l);
            return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
    }
    l->watch = 0;
    /* QEMU takes one connection and stops listening */
    close(l->fd);
    l->fd = -1;
    l->cb(l->opaque, conn, NULL);
    return G_SOURCE_REMOVE;
}

static int listen_on(int family, const struct sockaddr *sa, socklen_t len,
                     Error **errp)
{
    int fd = socket(family, SOCK_STREAM, 0);
    int one = 1;

    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create socket");
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* multifd's channels connect at once: a unix connect finds no room
     * in a short queue (EAGAIN) */
    if (bind(fd, sa, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket");
        close(fd);
        return -1;
    }
    set_nonblock(fd);
    return fd;
}

static json_t *inet_address(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST], port[NI_MAXSERV];

    getsockname(fd, (struct sockaddr *)&ss, &len);
    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
                sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    return json_pack("{s:s,s:s,s:s,s:b}", "type", "inet", "host", host,
                     "port", port, ss.ss_family == AF_INET6 ? "ipv6"
                     : "ipv4", 1);
}

static gboolean report_fd_cb(gpointer opaque)
{
    MigListener *l = opaque;
    int fd = l->fd;

    l->watch = 0;
    l->fd = -1;
    l->cb(l->opaque, fd, NULL);
    return G_SOURCE_REMOVE;
}

MigListener *mig_channel_listen(const char *uri, MigChannelCb *cb,
                                void *opaque, Error **errp)
{
    g_autofree MigListener *l = g_new0(MigListener, 1);

    l->cb = cb;
    l->opaque = opaque;
    if (g_str_has_prefix(uri, "tcp:")) {
        struct addrinfo *res = resolve(uri + 4, true, errp);

        if (!res) {
            return NULL;
        }
        l->fd = listen_on(res->ai_family, res->ai_addr, res->ai_addrlen,
                          errp);
        freeaddrinfo(res);
        if (l->fd < 0) {
            return NULL;
        }
        l->address = inet_address(l->fd);
    } else if (g_str_has_prefix(uri, "unix:")) {
        struct sockaddr_un sun;
        mode_t old;

        if (unix_addr(uri + 5, &sun, errp) < 0) {
            return NULL;
        }
        if (!fs_may_write(uri + 5)) {
            error_setg_errno(errp, EACCES, "Failed to bind socket");
            return NULL;
        }
        unlink(uri + 5);
        old = umask(0077);
        l->fd = listen_on(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun),
                          errp);
        umask(old);
        if (l->fd < 0) {
            return NULL;
        }
        l->address = json_pack("{s:s,s:s}", "path", uri + 5, "type",
                               "unix");
    } else if (g_str_has_prefix(uri, "exec:")) {
        l->fd = spawn_exec(uri + 5, false, errp);
        if (l->fd < 0) {
            return NULL;
        }
        l->watch = g_idle_add(report_fd_cb, l);
        return g_steal_pointer(&l);
    } else if (g_str_has_prefix(uri, "fd:")) {
        l->fd = fd_param(uri + 3, errp);
        if (l->fd < 0) {
            return NULL;
        }
        l->watch = g_idle_add(report_fd_cb, l);
        return g_steal_pointer(&l);
    } else {
        error_setg(errp, "unknown migration protocol: %s", uri);
        return NULL;
    }
    l->watch = g_unix_fd_add(l->fd, G_IO_IN, accept_cb, l);
    return g_steal_pointer(&l);
}

json_t *mig_listener_address(const MigListener *l)
{
    return l->address ? json_pack("[O]", l->address) : NULL;
}

void mig_listener_accept_more(MigListener *l)
{
    l->more = true;
}

MigListener *mig_channel_listen_fd(int fd, MigChannelCb *cb, void *opaque)
{
    MigListener *l = g_new0(MigListener, 1);

    set_nonblock(fd);
    l->fd = fd;
    l->cb = cb;
    l->opaque = opaque;
    l->more = true;
    l->watch = g_unix_fd_add(l->fd, G_IO_IN, accept_cb, l);
    return l;
}

bool mig_listener_pending(const MigListener *l)
{
    struct pollfd p = { .fd = l ? l->fd : -1, .events = POLLIN };

    return p.fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void mig_listener_pause(MigListener *l, bool paused)
{
    if (paused && l->watch) {
        g_source_remove(l->watch);
        l->watch = 0;
    } else if (!paused && !l->watch && l->fd >= 0) {
        l->watch = g_unix_fd_add(l->fd, G_IO_IN, accept_cb, l);
    }
}

int mig_channel_fd_param(const char *param, Error **errp)
{
    return fd_param(param, errp);
}

void mig_listener_free(MigListener *l)
{
    if (!l) {
        return;
    }
    if (l->in_cb) {
        l->dead = true;
        return;
    }
    if (l->watch) {
        g_source_remove(l->watch);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    json_decref(l->address);
    g_free(l);
}
