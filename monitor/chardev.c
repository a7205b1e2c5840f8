/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Chardev specs and their sockets.  Everything here runs at start-up,
 * before the main loop, so blocking calls (connect, the wait=on accept)
 * are fine; sockets are switched to non-blocking before use.
 *
 * Unix sockets are created with a 0077 umask and chmod 0600, so only the
 * owner can connect; TCP sockets bind exactly the host given.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "monitor/chardev.h"
#include "qapi/opts.h"
#include "util/confine.h"

struct Chardev {
    char *id;
    char *loc;              /* the option as given, for messages */
    ChardevKind kind;
    /* sockets */
    char *path;             /* unix */
    char *host;             /* tcp */
    char *port;
    int inherited_fd;       /* fd=N, or -1 */
    bool server;
    bool wait;
    bool ipv4, ipv6;
    bool nodelay;
    bool telnet;            /* speak telnet: offer options, strip IAC */
    bool abstract;          /* unix: Linux's abstract namespace */
    bool tight;             /* abstract: the address is as long as the name */
    uint64_t reconnect;     /* client: seconds between attempts, or 0 */
    uint64_t to;            /* tcp server: the last port to try, or 0 */
    bool connect_failed;    /* client: the last attempt's error printed */
    bool signal;            /* stdio: ^C raises SIGINT (signal=on) */
    /* state */
    int fd;                 /* listening or connected socket */
    int conn;               /* connection made by open (wait/client) */
    bool unlink_path;
    char *filename;
    bool frontend_open;     /* a monitor or serial port uses it */
};

static const char *const socket_keys[] = {
    "backend", "id", "path", "host", "port", "server", "wait", "fd", "ipv4",
    "ipv6", "nodelay", "telnet", "tn3270", "websocket", "to", "reconnect",
    "abstract", "tight", "mux", NULL
};
static const char *const socket_bools[] = {
    "server", "wait", "ipv4", "ipv6", "nodelay", "telnet", "tn3270",
    "websocket", "abstract", "tight", "mux", NULL
};
static const char *const stdio_keys[] = { "backend", "id", "signal", "mux",
                                          NULL };
static const char *const stdio_bools[] = { "signal", "mux", NULL };
static const char *const null_keys[] = { "backend", "id", NULL };

static Chardev *chardev_new(const char *id, const char *loc)
{
    Chardev *c = g_new0(Chardev, 1);

    c->id = g_strdup(id);
    c->loc = g_strdup(loc);
    c->fd = -1;
    c->conn = -1;
    c->inherited_fd = -1;
    c->signal = true;
    return c;
}

/*
 * A number option (seconds, a port) as QEMU's option lists read it: an
 * unsigned 64-bit number, where "-1" wraps around.
 */
static void socket_number(const Opts *o, const char *key, uint64_t *out,
                          Error **errp)
{
    const char *v = opts_get(o, key);
    char *end;

    if (!v) {
        return;
    }
    errno = 0;
    *out = g_ascii_strtoull(v, &end, 0);
    if (errno || end == v || *end) {
        error_setg(errp, "Parameter '%s' expects a number", key);
    }
}

/* Socket options common to -chardev socket and the URI forms. */
static bool socket_opts(Chardev *c, const Opts *o, Error **errp)
{
    Error *err = NULL;
    const char *fd = opts_get(o, "fd");
    bool telnet;

    c->server = opts_get_bool(o, "server", false, &err);
    c->wait = opts_get_bool(o, "wait", true, &err);
    c->ipv4 = opts_get_bool(o, "ipv4", false, &err);
    c->ipv6 = opts_get_bool(o, "ipv6", false, &err);
    c->nodelay = opts_get_bool(o, "nodelay", false, &err);
    /* "telnet:" URIs are telnet=on whatever their options say */
    telnet = opts_get_bool(o, "telnet", false, &err);
    c->telnet = c->telnet || telnet;
    if (!err && opts_get_bool(o, "tn3270", false, &err)) {
        error_setg(&err, "tn3270 is not supported by qmpd");
    }
    if (!err && opts_get_bool(o, "websocket", false, &err)) {
        error_setg(&err, "websocket is not supported by qmpd");
    }
    if (!err && opts_get_bool(o, "mux", false, &err)) {
        error_setg(&err, "mux is not supported by qmpd");
    }
    c->abstract = !err && opts_get_bool(o, "abstract", false, &err);
    c->tight = !err && opts_get_bool(o, "tight", true, &err);
    if (!err) {
        socket_number(o, "reconnect", &c->reconnect, &err);
        /* QEMU reads it as signed: a wrapped "-1" is no reconnect */
        if ((int64_t)c->reconnect < 0) {
            c->reconnect = 0;
        }
    }
    if (!err) {
        socket_number(o, "to", &c->to, &err);
    }
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    if (!!c->path + !!c->host + !!fd > 1) {
        error_setg(errp, "None or one of 'path', 'fd' or 'host' option "
                   "required.");
        return false;
    }
    if (!c->server && opts_has(o, "wait")) {
        error_setg(errp, "'wait' option is incompatible with socket in "
                   "client connect mode");
        return false;
    }
    if (c->server && opts_has(o, "reconnect")) {
        error_setg(errp, "'reconnect' option is incompatible with socket in "
                   "server listen mode");
        return false;
    }
    if (fd) {
        char *end;
        long n = strtol(fd, &end, 10);

        if (*end || n < 0 || n > INT32_MAX) {
            error_setg(errp, "Parameter 'fd' expects a file descriptor");
            return false;
        }
        c->inherited_fd = n;
    }
    if (!c->path && !c->host && c->inherited_fd < 0) {
        /* QEMU takes a socket without address for an fd one */
        error_setg(errp, "Unable to parse FD number ");
        return false;
    }
    if (c->host && !c->port) {
        error_setg(errp, "chardev: socket: no port given");
        return false;
    }
    c->kind = CHARDEV_SOCKET;
    return true;
}

Chardev *chardev_parse(const char *spec, Error **errp)
{
    g_autoptr(Opts) probe = opts_parse(spec, "backend", NULL, socket_bools,
                                       errp);
    g_autofree char *loc = g_strdup_printf("-chardev %s", spec);
    const char *backend;
    const char *id;
    Chardev *c;

    if (!probe) {
        return NULL;
    }
    backend = opts_get(probe, "backend");
    id = opts_get(probe, "id");
    if (!backend) {
        error_setg(errp, "chardev: \"%s\" missing backend", id ? id : "");
        return NULL;
    }
    if (!id) {
        error_setg(errp, "chardev: no id specified");
        return NULL;
    }
    c = chardev_new(id, loc);
    if (!strcmp(backend, "socket")) {
        g_autoptr(Opts) o = opts_parse(spec, "backend", socket_keys,
                                       socket_bools, errp);

        if (!o) {
            goto fail;
        }
        c->path = g_strdup(opts_get(o, "path"));
        c->host = g_strdup(opts_get(o, "host"));
        c->port = g_strdup(opts_get(o, "port"));
        if (!socket_opts(c, o, errp)) {
            goto fail;
        }
    } else if (!strcmp(backend, "stdio")) {
        g_autoptr(Opts) o = opts_parse(spec, "backend", stdio_keys,
                                       stdio_bools, errp);

        Error *err = NULL;

        if (!o) {
            goto fail;
        }
        c->signal = opts_get_bool(o, "signal", true, &err);
        if (!err && opts_get_bool(o, "mux", false, &err)) {
            error_setg(&err, "mux is not supported by qmpd");
        }
        if (err) {
            error_propagate(errp, err);
            goto fail;
        }
        c->kind = CHARDEV_STDIO;
    } else if (!strcmp(backend, "null")) {
        g_autoptr(Opts) o = opts_parse(spec, "backend", null_keys, NULL,
                                       errp);

        if (!o) {
            goto fail;
        }
        c->kind = CHARDEV_NULL;
    } else {
        error_setg(errp, "chardev backend '%s' is not supported by qmpd",
                   backend);
        goto fail;
    }
    return c;

fail:
    chardev_free(c);
    return NULL;
}

/* Split "HOST:PORT" (HOST may be "[v6]" or empty). */
static bool split_host_port(const char *s, char **host, char **port,
                            Error **errp)
{
    const char *colon;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (!end || end[1] != ':') {
            error_setg(errp, "error parsing IPv6 address '%s'", s);
            return false;
        }
        *host = g_strndup(s + 1, end - s - 1);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            error_setg(errp, "parse error: tcp:%s", s);
            return false;
        }
        *host = g_strndup(s, colon - s);
    }
    if (!colon[1]) {
        error_setg(errp, "error parsing port in address '%s'", s);
        g_clear_pointer(host, g_free);
        return false;
    }
    *port = g_strdup(colon + 1);
    return true;
}

/*
 * The part of a "unix:" or "tcp:" monitor address after the prefix, as
 * QEMU reads it: "unix:" is followed by socket options with "path"
 * implied (so "unix:PATH,server=on" and "unix:path=PATH,server=on" are
 * the same), "tcp:" by "HOST:PORT" and then options; "telnet:" is
 * "tcp:" with telnet=on.
 */
static Opts *uri_socket_opts(Chardev *c, const char *uri, Error **errp)
{
    static const char *const keys[] = {
        "path", "server", "wait", "ipv4", "ipv6", "nodelay", "telnet",
        "tn3270", "websocket", "to", "reconnect", "abstract", "tight", "mux",
        NULL
    };
    const char *rest;

    if (g_str_has_prefix(uri, "unix:")) {
        Opts *o = opts_parse(uri + strlen("unix:"), "path", keys,
                             socket_bools, errp);

        if (o && opts_has(o, "path")) {
            c->path = g_strdup(opts_get(o, "path"));
            if (!*c->path) {
                error_setg(errp, "chardev: socket: no path given");
                opts_free(o);
                return NULL;
            }
        }
        return o;
    }
    if (g_str_has_prefix(uri, "tcp:") || g_str_has_prefix(uri, "telnet:")) {
        g_autofree char *hostport = NULL;

        c->telnet = g_str_has_prefix(uri, "telnet:");
        rest = strchr(uri, ':') + 1;
        hostport = g_strndup(rest, strcspn(rest, ","));
        rest += strlen(hostport);
        /* "tcp:host=H,port=P" is no spelling of QEMU's: its parse error */
        if (!strchr(hostport, ':') || strchr(hostport, '=')
            || g_str_has_suffix(hostport, ":")) {
            error_setg(errp, "parse error: %s", uri);
            return NULL;
        }
        if (!split_host_port(hostport, &c->host, &c->port, errp)) {
            return NULL;
        }
        return opts_parse(*rest ? rest + 1 : rest, NULL, keys + 1,
                          socket_bools, errp);
    }
    error_setg(errp, "'%s' is not a valid char driver", uri);
    return NULL;
}

Chardev *chardev_parse_uri(const char *uri, const char *id, const char *loc,
                           char **ref, Error **errp)
{
    g_autoptr(Opts) o = NULL;
    Chardev *c;

    *ref = NULL;
    if (g_str_has_prefix(uri, "chardev:")) {
        *ref = g_strdup(uri + strlen("chardev:"));
        return NULL;
    }
    c = chardev_new(id, loc);
    if (!strcmp(uri, "stdio")) {
        c->kind = CHARDEV_STDIO;
        return c;
    }
    if (!strcmp(uri, "none") || !strcmp(uri, "null")) {
        c->kind = CHARDEV_NULL;
        return c;
    }
    o = uri_socket_opts(c, uri, errp);
    if (!o || !socket_opts(c, o, errp)) {
        chardev_free(c);
        return NULL;
    }
    return c;
}

static bool set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0
        && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

static void set_filename(Chardev *c)
{
    g_free(c->filename);
    if (c->kind == CHARDEV_STDIO) {
        c->filename = g_strdup("stdio");
    } else if (c->kind == CHARDEV_NULL) {
        c->filename = g_strdup("null");
    } else if (c->path) {
        c->filename = g_strdup_printf("unix:%s%s", c->path,
                                      c->server ? ",server=on" : "");
    } else if (c->host) {
        c->filename = g_strdup_printf("%s:%s:%s%s",
                                      c->telnet ? "telnet" : "tcp",
                                      c->host, c->port,
                                      c->server ? ",server=on" : "");
    } else {
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);

        /* QEMU names an inherited socket by its address */
        memset(&sa, 0, sizeof(sa));
        if (getsockname(c->inherited_fd, (struct sockaddr *)&sa, &len) == 0
            && sa.sun_family == AF_UNIX && sa.sun_path[0]) {
            c->filename = g_strdup_printf("unix:%s%s", sa.sun_path,
                                          c->server ? ",server=on" : "");
        } else {
            c->filename = g_strdup_printf("fd:%d%s", c->inherited_fd,
                                          c->server ? ",server=on" : "");
        }
    }
}

/*
 * A unix socket and its address: the path, or with abstract=on the name
 * in Linux's abstract namespace (no file; tight=on, the default, makes
 * the address exactly as long as the name, tight=off the whole
 * sun_path, zero-padded, as QEMU's).
 */
static int unix_socket(const Chardev *c, struct sockaddr_un *sa,
                       socklen_t *len, Error **errp)
{
    size_t n = strlen(c->path);
    int fd;

    if (n + c->abstract >= sizeof(sa->sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", c->path);
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path + c->abstract, c->path, n);
    *len = c->abstract && c->tight
        ? offsetof(struct sockaddr_un, sun_path) + 1 + n : sizeof(*sa);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create Unix socket");
    }
    return fd;
}

static bool open_unix(Chardev *c, Error **errp)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd = unix_socket(c, &sa, &len, errp);

    if (fd < 0) {
        return false;
    }
    if (c->server && c->abstract) {
        /* no file: nothing to protect by mode, nothing to unlink */
        if (bind(fd, (struct sockaddr *)&sa, len) < 0
            || listen(fd, 16) < 0) {
            error_setg_errno(errp, errno, "Failed to bind socket to %s",
                             c->path);
            close(fd);
            return false;
        }
        c->fd = fd;
        return true;
    }
    if (c->server && !fs_may_write(c->path)) {
        error_setg_errno(errp, EACCES, "Failed to bind socket to %s",
                         c->path);
        close(fd);
        return false;
    }
    if (c->server) {
        /*
         * Bind a temporary name and rename it into place once listening,
         * so a client that sees the path can always connect.
         */
        g_autofree char *tmp = g_strdup_printf("%s.%d.tmp", c->path,
                                               (int)getpid());
        struct sockaddr_un tsa;
        mode_t old;
        int r;

        if (strlen(tmp) >= sizeof(tsa.sun_path)) {
            g_free(tmp);
            tmp = g_strdup(c->path);
        }
        memcpy(&tsa, &sa, sizeof(sa));
        strcpy(tsa.sun_path, tmp);
        unlink(tmp);
        old = umask(0077);
        r = bind(fd, (struct sockaddr *)&tsa, sizeof(tsa));
        umask(old);
        if (r < 0) {
            error_setg_errno(errp, errno, "Failed to bind socket to %s",
                             c->path);
            close(fd);
            return false;
        }
        if (chmod(tmp, 0600) < 0 || listen(fd, 16) < 0
            || rename(tmp, c->path) < 0) {
            error_setg_errno(errp, errno, "Failed to listen on socket");
            unlink(tmp);
            close(fd);
            return false;
        }
        c->unlink_path = true;
        c->fd = fd;
        return true;
    }
    if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
        error_setg_errno(errp, errno, "Failed to connect to '%s'", c->path);
        close(fd);
        return false;
    }
    c->conn = fd;
    return true;
}

/*
 * A TCP socket listening on, or connected to, @port of c->host: the fd,
 * or -1 with *@saved the last errno (or @errp set when the name does
 * not resolve).
 */
static int tcp_fd(Chardev *c, const char *port, int *saved, Error **errp)
{
    struct addrinfo hints = { 0 };
    struct addrinfo *res, *ai;
    const char *host = c->host[0] ? c->host : NULL;
    int err;
    int fd = -1;

    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = c->server ? AI_PASSIVE : 0;
    hints.ai_family = c->ipv4 && !c->ipv6 ? AF_INET
        : c->ipv6 && !c->ipv4 ? AF_INET6 : AF_UNSPEC;
    err = getaddrinfo(host, port, &hints, &res);
    if (err) {
        error_setg(errp, "address resolution failed for %s:%s: %s",
                   c->host, port, gai_strerror(err));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int one = 1;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            *saved = errno;
            continue;
        }
        if (c->server) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (ai->ai_family == AF_INET6) {
                /* "::" alone should not also take the IPv4 port */
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
            }
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
                && listen(fd, 16) == 0) {
                break;
            }
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        *saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static bool open_tcp(Chardev *c, Error **errp)
{
    char *end;
    unsigned long first = strtoul(c->port, &end, 10);
    /* to=N: a server takes the first port from port= to N it can bind */
    unsigned long last = c->server && !*end && c->to
        ? MIN(c->to, 65535) : first;
    Error *err = NULL;
    int saved = 0;
    int fd = -1;

    if (last < first) {
        /* QEMU tries no port then, and says so with a stale errno */
        error_setg_errno(errp, ENOENT, "Failed to create a socket");
        return false;
    }

    for (unsigned long p = first; fd < 0 && !err && p <= last; p++) {
        g_autofree char *port = *end ? g_strdup(c->port)
                                     : g_strdup_printf("%lu", p);

        fd = tcp_fd(c, port, &saved, &err);
    }
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    if (fd < 0) {
        if (c->server) {
            error_setg_errno(errp, saved, "Failed to bind socket");
        } else {
            error_setg_errno(errp, saved, "Failed to connect to '%s:%s'",
                             c->host, c->port);
        }
        return false;
    }
    if (c->nodelay) {
        int one = 1;

        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (c->server) {
        c->fd = fd;
    } else {
        c->conn = fd;
    }
    return true;
}

static bool open_inherited(Chardev *c, Error **errp)
{
    int type;
    socklen_t len = sizeof(type);

    if (getsockopt(c->inherited_fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        error_setg_errno(errp, errno, "File descriptor '%d' is not a socket",
                         c->inherited_fd);
        return false;
    }
    if (c->server) {
        c->fd = c->inherited_fd;
    } else {
        c->conn = c->inherited_fd;
    }
    return true;
}

static GPtrArray *opened;       /* Chardev *: what query-chardev lists */

bool chardev_open(Chardev *c, Error **errp)
{
    bool ok = true;

    if (!opened) {
        opened = g_ptr_array_new();
    }
    g_ptr_array_add(opened, c);
    set_filename(c);
    if (c->kind != CHARDEV_SOCKET) {
        return true;
    }
    if (c->reconnect) {
        /* a client that reconnects starts even when its peer is away */
        int fd = chardev_reconnect(c);

        if (fd >= 0) {
            c->conn = fd;
        }
        return true;
    }
    if (c->inherited_fd >= 0) {
        ok = open_inherited(c, errp);
    } else if (c->path) {
        ok = open_unix(c, errp);
    } else {
        ok = open_tcp(c, errp);
    }
    if (!ok) {
        return false;
    }
    if (c->server && c->wait) {
        fprintf(stderr, "qmpd: %s: info: QEMU waiting for connection on: "
                "disconnected:%s\n", c->loc ? c->loc : c->id, c->filename);
        do {
            c->conn = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        } while (c->conn < 0 && errno == EINTR);
        if (c->conn < 0) {
            error_setg_errno(errp, errno, "Failed to accept a connection");
            return false;
        }
    }
    if (c->fd >= 0) {
        set_nonblock_cloexec(c->fd);
    }
    if (c->conn >= 0) {
        set_nonblock_cloexec(c->conn);
    }
    return true;
}

int chardev_reconnect(Chardev *c)
{
    Error *err = NULL;
    bool ok = c->path ? open_unix(c, &err) : open_tcp(c, &err);

    if (!ok) {
        /* QEMU reports an outage once, not each attempt */
        if (!c->connect_failed) {
            fprintf(stderr, "qmpd: Unable to connect character device %s: "
                    "%s\n", c->id, error_get_pretty(err));
            c->connect_failed = true;
        }
        error_free(err);
        return -1;
    }
    c->connect_failed = false;
    set_nonblock_cloexec(c->conn);
    return chardev_take_connection(c);
}

unsigned chardev_reconnect_secs(const Chardev *c)
{
    return c->kind == CHARDEV_SOCKET ? MIN(c->reconnect, UINT_MAX) : 0;
}

const char *chardev_id(const Chardev *c)
{
    return c->id;
}

const char *chardev_location(const Chardev *c)
{
    return c->loc ? c->loc : c->id;
}

bool chardev_telnet(const Chardev *c)
{
    return c->kind == CHARDEV_SOCKET && c->telnet;
}

bool chardev_stdio_signal(const Chardev *c)
{
    return c->signal;
}

ChardevKind chardev_kind(const Chardev *c)
{
    return c->kind;
}

bool chardev_is_listener(const Chardev *c)
{
    return c->kind == CHARDEV_SOCKET && c->server;
}

int chardev_in_fd(const Chardev *c)
{
    switch (c->kind) {
    case CHARDEV_STDIO:
        return 0;
    case CHARDEV_SOCKET:
        return c->fd;
    default:
        return -1;
    }
}

int chardev_out_fd(const Chardev *c)
{
    return c->kind == CHARDEV_STDIO ? 1 : chardev_in_fd(c);
}

int chardev_take_connection(Chardev *c)
{
    int fd = c->conn;

    c->conn = -1;
    return fd;
}

void chardev_set_frontend_open(Chardev *c)
{
    c->frontend_open = true;
}

json_t *chardev_query_list(void)
{
    json_t *list = json_array();

    for (guint i = 0; opened && i < opened->len; i++) {
        const Chardev *c = g_ptr_array_index(opened, i);

        json_array_append_new(list, json_pack(
            "{s:b,s:s,s:s}", "frontend-open", c->frontend_open, "filename",
            chardev_filename(c), "label", c->id));
    }
    return list;
}

const char *chardev_filename(const Chardev *c)
{
    return c->filename ? c->filename : "";
}

int chardev_accept(Chardev *c)
{
    int fd;

    do {
        fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

void chardev_free(Chardev *c)
{
    if (!c) {
        return;
    }
    if (c->kind == CHARDEV_SOCKET) {
        if (c->fd >= 0) {
            close(c->fd);
        }
        if (c->conn >= 0) {
            close(c->conn);
        }
    }
    if (c->unlink_path) {
        fs_unlink(c->path);
    }
    if (opened) {
        g_ptr_array_remove(opened, c);
    }
    g_free(c->id);
    g_free(c->loc);
    g_free(c->path);
    g_free(c->host);
    g_free(c->port);
    g_free(c->filename);
    g_free(c);
}
