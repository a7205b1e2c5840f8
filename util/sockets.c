/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Listening, accepting and connecting.  Sockets are made non-blocking
 * at once and watched by the main loop: a listener accepts on readable,
 * a connect still in progress completes when the socket turns writable
 * (the caller watches that).  A host name is resolved with
 * getaddrinfo(), which may block on DNS; the services name numeric
 * addresses or localhost in practice.  Unix sockets are created
 * owner-only, as every socket qmpd listens on.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "util/confine.h"
#include "util/fdstore.h"
#include "util/sockets.h"

struct SockListener {
    int fd;
    guint watch;
    bool in_cb, dead;       /* freed by its callback: free after it */
    SockAcceptCb *cb;
    void *opaque;
};

G_DEFINE_QUARK(qmpd-sockets, sock_error)

/* "@what: strerror(@e)", as the monitor's error_setg_errno() words it. */
static void set_errno_error(GError **err, int e, const char *what)
{
    g_set_error(err, sock_error_quark(), e, "%s: %s", what, g_strerror(e));
}

void sock_set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

bool sock_split_host_port(const char *hp, char **host, char **port,
                          GError **err)
{
    const char *colon = strrchr(hp, ':');
    size_t n;

    if (!colon) {
        g_set_error(err, sock_error_quark(), EINVAL,
                    "error parsing address '%s'", hp);
        return false;
    }
    n = colon - hp;
    if (n >= 2 && hp[0] == '[' && hp[n - 1] == ']') {
        *host = g_strndup(hp + 1, n - 2);
    } else {
        *host = g_strndup(hp, n);
    }
    *port = g_strdup(colon + 1);
    return true;
}

struct addrinfo *sock_resolve(const char *host, const char *port,
                              bool passive, GError **err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = passive ? AI_PASSIVE : 0 };
    struct addrinfo *res;
    int r = getaddrinfo(host && *host ? host : NULL, port, &hints, &res);

    if (r) {
        /* the address as the user spelled it, brackets and all */
        g_set_error(err, sock_error_quark(), EINVAL,
                    host && strchr(host, ':')
                    ? "address resolution failed for [%s]:%s: %s"
                    : "address resolution failed for %s:%s: %s",
                    host ? host : "", port, gai_strerror(r));
        return NULL;
    }
    return res;
}

bool sock_unix_addr(const char *path, struct sockaddr_un *sun,
                    GError **err)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        g_set_error(err, sock_error_quark(), ENAMETOOLONG,
                    "UNIX socket path '%s' is too long", path);
        return false;
    }
    strcpy(sun->sun_path, path);
    return true;
}

int sock_connect_start(const struct sockaddr *sa, socklen_t len,
                       bool *in_progress)
{
    int fd = socket(sa->sa_family, SOCK_STREAM, 0);

    if (fd < 0) {
        return -errno;
    }
    sock_set_nonblock(fd);
    *in_progress = false;
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;

            close(fd);
            return -e;
        }
        *in_progress = true;
    }
    return fd;
}

static int listen_on(const struct sockaddr *sa, socklen_t len, GError **err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM, 0);
    int one = 1;

    if (fd < 0) {
        set_errno_error(err, errno, "Failed to create socket");
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* many clients connect at once (multifd's channels, NBD clients): a
     * unix connect finds no room in a short queue (EAGAIN) */
    if (bind(fd, sa, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        set_errno_error(err, errno, "Failed to bind socket");
        close(fd);
        return -1;
    }
    sock_set_nonblock(fd);
    return fd;
}

int sock_listen_inet(const char *host, const char *port, GError **err)
{
    struct addrinfo *res = sock_resolve(host, port, true, err);
    int fd;

    if (!res) {
        return -1;
    }
    fd = listen_on(res->ai_addr, res->ai_addrlen, err);
    freeaddrinfo(res);
    return fd;
}

int sock_listen_unix(const char *path, GError **err)
{
    struct sockaddr_un sun;
    mode_t old;
    int fd;

    if (!sock_unix_addr(path, &sun, err)) {
        return -1;
    }
    if (!fs_may_write(path)) {
        set_errno_error(err, EACCES, "Failed to bind socket");
        return -1;
    }
    unlink(path);
    old = umask(0077);
    fd = listen_on((struct sockaddr *)&sun, sizeof(sun), err);
    umask(old);
    return fd;
}

bool sock_inet_name(int fd, char **host, char **port, bool *ipv6)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char h[NI_MAXHOST], p[NI_MAXSERV];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0
        || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        || getnameinfo((struct sockaddr *)&ss, len, h, sizeof(h), p,
                       sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV)) {
        return false;
    }
    *host = g_strdup(h);
    *port = g_strdup(p);
    *ipv6 = ss.ss_family == AF_INET6;
    return true;
}

static bool fd_param_forbidden;

void sock_forbid_fd_param(void)
{
    fd_param_forbidden = true;
}

/*
 * As QEMU reads fd:N or fd:NAME: a leading digit makes a number
 * (getfd refuses such names).
 */
int sock_fd_param(const char *param, GError **err)
{
    int fd = -1;

    if (fd_param_forbidden) {
        g_set_error(err, sock_error_quark(), EPERM,
                    "fd:%s is disabled here", param);
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
        g_set_error(err, sock_error_quark(), EBADF,
                    "File descriptor named '%s' has not been found", param);
        return -1;
    }
    sock_set_nonblock(fd);
    return fd;
}

static gboolean accept_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    SockListener *l = opaque;
    int conn = accept(fd, NULL, NULL);

    if (conn < 0) {
        return G_SOURCE_CONTINUE;    /* EAGAIN, or the client gave up */
    }
    sock_set_nonblock(conn);
    l->in_cb = true;
    l->cb(l->opaque, conn);
    l->in_cb = false;
    if (l->dead) {
        l->watch = 0;
        sock_listener_free(l);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

SockListener *sock_listener_new(int fd, SockAcceptCb *cb, void *opaque)
{
    SockListener *l = g_new0(SockListener, 1);

    sock_set_nonblock(fd);
    l->fd = fd;
    l->cb = cb;
    l->opaque = opaque;
    l->watch = g_unix_fd_add(fd, G_IO_IN, accept_cb, l);
    return l;
}

int sock_listener_fd(const SockListener *l)
{
    return l->fd;
}

void sock_listener_pause(SockListener *l, bool paused)
{
    if (paused && l->watch) {
        g_source_remove(l->watch);
        l->watch = 0;
    } else if (!paused && !l->watch) {
        l->watch = g_unix_fd_add(l->fd, G_IO_IN, accept_cb, l);
    }
}

bool sock_listener_pending(const SockListener *l)
{
    struct pollfd p = { .fd = l ? l->fd : -1, .events = POLLIN };

    return p.fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void sock_listener_free(SockListener *l)
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
    close(l->fd);
    g_free(l);
}
