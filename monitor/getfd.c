/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Descriptors passed to a monitor: a socket session reads with
 * recvmsg() and keeps the descriptors that came with the latest
 * message (SCM_RIGHTS), as QEMU's socket chardev does; getfd names the
 * first of them for the monitor (util/fdstore), closefd closes a named
 * one.  This is how a management tool hands qmpd the pipe or socket of
 * `virsh save`, then migrates into it with fd:NAME.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "monitor/monitor-int.h"
#include "qapi/qjson.h"
#include "util/fdstore.h"

/* At most this many descriptors are taken from one message. */
#define MON_MAX_MSGFDS 16

static MonSession *current;

MonSession *mon_set_current(MonSession *s)
{
    MonSession *prev = current;

    current = s;
    fdstore_set_current(s ? s->mon : NULL);
    return prev;
}

void mon_session_drop_msgfds(MonSession *s)
{
    if (!s->msgfds) {
        return;
    }
    for (guint i = 0; i < s->msgfds->len; i++) {
        close(g_array_index(s->msgfds, int, i));
    }
    g_array_set_size(s->msgfds, 0);
}

/* A new message with descriptors replaces those not taken yet. */
static void keep_msgfds(MonSession *s, const int *fds, size_t n)
{
    if (!s->msgfds) {
        s->msgfds = g_array_new(FALSE, FALSE, sizeof(int));
    }
    mon_session_drop_msgfds(s);
    g_array_append_vals(s->msgfds, fds, n);
}

ssize_t mon_session_recv(MonSession *s, int fd, char *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * MON_MAX_MSGFDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.buf, .msg_controllen = sizeof(control.buf),
    };
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

    if (n < 0 && errno == ENOTSOCK) {
        return read(fd, buf, len);
    }
    if (n < 0) {
        return n;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c;
         c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int fds[MON_MAX_MSGFDS];

            memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
            keep_msgfds(s, fds, nfds);
        }
    }
    return n;
}

/* The first descriptor of the latest message (the caller's), or -1. */
static int take_msgfd(MonSession *s)
{
    int fd;

    if (!s || !s->msgfds || !s->msgfds->len) {
        return -1;
    }
    fd = g_array_index(s->msgfds, int, 0);
    g_array_remove_index(s->msgfds, 0);
    mon_session_drop_msgfds(s);
    return fd;
}

static bool qmp_getfd(const json_t *args, json_t **ret, Error **errp)
{
    const char *name = qjson_get_str(args, "fdname");
    int fd = take_msgfd(current);

    if (fd < 0) {
        error_setg(errp, "No file descriptor supplied via SCM_RIGHTS");
        return false;
    }
    if (g_ascii_isdigit(name[0])) {
        /* fd: URIs read a leading digit as a descriptor number */
        close(fd);
        error_setg(errp, "Parameter 'fdname' expects a name not starting "
                   "with a digit");
        return false;
    }
    fdstore_add(current->mon, name, fd);
    return true;
}

static bool qmp_closefd(const json_t *args, json_t **ret, Error **errp)
{
    const char *name = qjson_get_str(args, "fdname");

    if (!current || !fdstore_close(current->mon, name)) {
        error_setg(errp, "File descriptor named '%s' not found", name);
        return false;
    }
    return true;
}

const QapiHandler mon_fd_qmp_handlers[] = {
    { "getfd", qmp_getfd, NULL },
    { "closefd", qmp_closefd, NULL },
};

const size_t mon_fd_qmp_handlers_count = G_N_ELEMENTS(mon_fd_qmp_handlers);
