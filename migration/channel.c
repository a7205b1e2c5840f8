/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Channels: the URI's protocol picks a socket from util/sockets.c, a
 * shell command's pipe or an inherited descriptor.  Whatever the
 * protocol, the caller hears of the descriptor from the main loop.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "migration/channel.h"
#include "util/sockets.h"

struct MigListener {
    SockListener *sock;     /* tcp:, unix: */
    int fd;                 /* exec:, fd: until reported */
    guint idle;
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

static bool outside_forbidden;

void mig_channel_forbid_outside(void)
{
    outside_forbidden = true;
    sock_forbid_fd_param();
}

static int fd_param(const char *param, Error **errp)
{
    GError *gerr = NULL;
    int fd = sock_fd_param(param, &gerr);

    if (fd < 0) {
        error_take_gerror(errp, gerr);
    }
    return fd;
}

static int spawn_exec(const char *cmd, bool source, Error **errp)
{
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    GError *gerr = NULL;
    int fd;
    gboolean ok;

    if (outside_forbidden) {
        error_setg(errp, "Migration URI 'exec:' is disabled here");
        return -1;
    }
    ok = g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                  G_SPAWN_DEFAULT, NULL, NULL,
                                  NULL, source ? &fd : NULL,
                                  source ? NULL : &fd, NULL, &gerr);
    if (!ok) {
        error_take_gerror(errp, gerr);
        return -1;
    }
    sock_set_nonblock(fd);
    return fd;
}

/* The first address of tcp:HOST:PORT that takes a connect, or -errno. */
static int connect_tcp(const char *hp, bool *in_progress, Error **errp)
{
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    GError *gerr = NULL;
    struct addrinfo *res = NULL, *ai;
    int fd = -ECONNREFUSED;

    if (!sock_split_host_port(hp, &host, &port, &gerr)
        || !(res = sock_resolve(host, port, false, &gerr))) {
        error_take_gerror(errp, gerr);
        return -1;
    }
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = sock_connect_start(ai->ai_addr, ai->ai_addrlen, in_progress);
    }
    freeaddrinfo(res);
    return fd;
}

bool mig_channel_connect(const char *uri, MigChannelCb *cb, void *opaque,
                         Error **errp)
{
    MigConnect *c = g_new0(MigConnect, 1);
    bool in_progress = false;
    GError *gerr = NULL;
    Error *local = NULL;
    int fd = -1;

    c->cb = cb;
    c->opaque = opaque;
    if (g_str_has_prefix(uri, "tcp:")) {
        fd = connect_tcp(uri + 4, &in_progress, &local);
    } else if (g_str_has_prefix(uri, "unix:")) {
        struct sockaddr_un sun;

        if (!sock_unix_addr(uri + 5, &sun, &gerr)) {
            error_take_gerror(&local, gerr);
        } else {
            fd = sock_connect_start((struct sockaddr *)&sun, sizeof(sun),
                                    &in_progress);
        }
    } else if (g_str_has_prefix(uri, "exec:")) {
        fd = spawn_exec(uri + 5, true, &local);
    } else {
        fd = fd_param(uri + 3, &local);
    }
    if (local) {
        error_propagate(errp, local);
        g_free(c);
        return false;
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

static void accept_cb(void *opaque, int fd)
{
    MigListener *l = opaque;

    l->cb(l->opaque, fd, NULL);
}

static json_t *inet_address(int fd)
{
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    bool ipv6;

    if (!sock_inet_name(fd, &host, &port, &ipv6)) {
        return NULL;
    }
    return json_pack("{s:s,s:s,s:s,s:b}", "type", "inet", "host", host,
                     "port", port, ipv6 ? "ipv6" : "ipv4", 1);
}

static gboolean report_fd_cb(gpointer opaque)
{
    MigListener *l = opaque;
    int fd = l->fd;

    l->idle = 0;
    l->fd = -1;
    l->cb(l->opaque, fd, NULL);
    return G_SOURCE_REMOVE;
}

/* tcp:HOST:PORT's listening socket. */
static int listen_tcp(const char *hp, GError **err)
{
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;

    if (!sock_split_host_port(hp, &host, &port, err)) {
        return -1;
    }
    return sock_listen_inet(host, port, err);
}

MigListener *mig_channel_listen(const char *uri, MigChannelCb *cb,
                                void *opaque, Error **errp)
{
    g_autofree MigListener *l = g_new0(MigListener, 1);
    GError *gerr = NULL;
    int fd;

    l->cb = cb;
    l->opaque = opaque;
    l->fd = -1;
    if (g_str_has_prefix(uri, "tcp:") || g_str_has_prefix(uri, "unix:")) {
        bool tcp = uri[0] == 't';

        fd = tcp ? listen_tcp(uri + 4, &gerr)
            : sock_listen_unix(uri + 5, &gerr);
        if (fd < 0) {
            error_take_gerror(errp, gerr);
            return NULL;
        }
        l->address = tcp ? inet_address(fd)
            : json_pack("{s:s,s:s}", "path", uri + 5, "type", "unix");
        l->sock = sock_listener_new(fd, accept_cb, l);
        return g_steal_pointer(&l);
    }
    if (g_str_has_prefix(uri, "exec:")) {
        l->fd = spawn_exec(uri + 5, false, errp);
    } else if (g_str_has_prefix(uri, "fd:")) {
        l->fd = fd_param(uri + 3, errp);
    } else {
        error_setg(errp, "unknown migration protocol: %s", uri);
        return NULL;
    }
    if (l->fd < 0) {
        return NULL;
    }
    l->idle = g_idle_add(report_fd_cb, l);
    return g_steal_pointer(&l);
}

json_t *mig_listener_address(const MigListener *l)
{
    return l->address ? json_pack("[O]", l->address) : NULL;
}

bool mig_listener_pending(const MigListener *l)
{
    return l && sock_listener_pending(l->sock);
}

void mig_listener_free(MigListener *l)
{
    if (!l) {
        return;
    }
    sock_listener_free(l->sock);
    if (l->idle) {
        g_source_remove(l->idle);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    json_decref(l->address);
    g_free(l);
}
