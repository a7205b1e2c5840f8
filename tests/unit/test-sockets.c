/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/sockets.c: addresses parsed as QEMU spells them, listeners that
 * accept on the main loop (paused, resumed, freed by their own
 * callback), connects, fd: parameters, and each refusal's text.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "util/fdstore.h"
#include "util/sockets.h"

typedef struct Accepted {
    int count;
    int last_fd;
    SockListener *free_me;      /* freed by the callback when set */
} Accepted;

static void accepted_cb(void *opaque, int fd)
{
    Accepted *a = opaque;

    a->count++;
    if (a->last_fd >= 0) {
        close(a->last_fd);
    }
    a->last_fd = fd;
    if (a->free_me) {
        sock_listener_free(g_steal_pointer(&a->free_me));
    }
}

/* Run the main loop until @a has @n connections (or 10 s pass). */
static void wait_accepted(Accepted *a, int n)
{
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (a->count < n && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

static int connect_to(const char *path)
{
    struct sockaddr_un sun;
    bool in_progress;
    int fd;

    assert_true(sock_unix_addr(path, &sun, NULL));
    fd = sock_connect_start((struct sockaddr *)&sun, sizeof(sun),
                            &in_progress);
    assert_true(fd >= 0);
    assert_false(in_progress);      /* unix connects complete at once */
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    return fd;
}

static void test_split(void **state)
{
    char *host, *port;
    GError *err = NULL;

    (void)state;
    assert_true(sock_split_host_port("example:4444", &host, &port, NULL));
    assert_string_equal(host, "example");
    assert_string_equal(port, "4444");
    g_free(host);
    g_free(port);

    assert_true(sock_split_host_port("[::1]:5", &host, &port, NULL));
    assert_string_equal(host, "::1");
    assert_string_equal(port, "5");
    g_free(host);
    g_free(port);

    /* the last colon is the port's: a bare v6 host keeps the rest */
    assert_true(sock_split_host_port(":7", &host, &port, NULL));
    assert_string_equal(host, "");
    assert_string_equal(port, "7");
    g_free(host);
    g_free(port);

    assert_false(sock_split_host_port("nocolon", &host, &port, &err));
    assert_string_equal(err->message, "error parsing address 'nocolon'");
    g_clear_error(&err);
}

static void test_unix_addr_too_long(void **state)
{
    g_autofree char *path = g_strnfill(200, 'x');
    g_autofree char *want = g_strdup_printf(
        "UNIX socket path '%s' is too long", path);
    struct sockaddr_un sun;
    GError *err = NULL;

    (void)state;
    assert_false(sock_unix_addr(path, &sun, &err));
    assert_string_equal(err->message, want);
    g_clear_error(&err);
    assert_int_equal(sock_listen_unix(path, &err), -1);
    assert_string_equal(err->message, want);
    g_clear_error(&err);
}

static void test_resolve_fails(void **state)
{
    GError *err = NULL;

    (void)state;
    assert_null(sock_resolve("127.0.0.1", "no-such-service", true, &err));
    assert_true(g_str_has_prefix(err->message, "address resolution "
                                 "failed for 127.0.0.1:no-such-service: "));
    g_clear_error(&err);
    /* a v6 host is named with brackets, as the user wrote it */
    assert_int_equal(sock_listen_inet("::1", "no-such-service", &err), -1);
    assert_true(g_str_has_prefix(err->message, "address resolution "
                                 "failed for [::1]:no-such-service: "));
    g_clear_error(&err);
}

/*
 * A unix listener: owner-only, replaces a file at its path, accepts
 * each connection; paused, a connection waits in the queue and is
 * pending until the listener resumes.
 */
static void test_unix_listener(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("qmpd-sockets-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s", NULL);
    Accepted a = { .last_fd = -1 };
    struct stat st;
    SockListener *l;
    int fd, c1, c2;

    (void)state;
    assert_true(g_file_set_contents(path, "old", -1, NULL));
    fd = sock_listen_unix(path, NULL);
    assert_true(fd >= 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 077, 0);     /* owner-only */

    l = sock_listener_new(fd, accepted_cb, &a);
    assert_int_equal(sock_listener_fd(l), fd);
    c1 = connect_to(path);
    wait_accepted(&a, 1);
    assert_int_equal(a.count, 1);
    assert_true(fcntl(a.last_fd, F_GETFL) & O_NONBLOCK);

    sock_listener_pause(l, true);
    sock_listener_pause(l, true);
    c2 = connect_to(path);
    for (int i = 0; i < 50; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    assert_int_equal(a.count, 1);
    assert_true(sock_listener_pending(l));
    sock_listener_pause(l, false);
    wait_accepted(&a, 2);
    assert_int_equal(a.count, 2);
    assert_false(sock_listener_pending(l));
    assert_false(sock_listener_pending(NULL));

    sock_listener_free(l);
    sock_listener_free(NULL);
    close(c1);
    close(c2);
    close(a.last_fd);
    unlink(path);
    rmdir(dir);
}

/* An inet listener on an ephemeral port, freed by its own callback. */
static void test_inet_listener_freed_in_cb(void **state)
{
    Accepted a = { .last_fd = -1 };
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    struct addrinfo *res;
    bool ipv6 = true, in_progress;
    int fd, c;

    (void)state;
    fd = sock_listen_inet("127.0.0.1", "0", NULL);
    assert_true(fd >= 0);
    assert_true(sock_inet_name(fd, &host, &port, &ipv6));
    assert_string_equal(host, "127.0.0.1");
    assert_false(ipv6);
    assert_true(atoi(port) > 0);

    a.free_me = sock_listener_new(fd, accepted_cb, &a);
    res = sock_resolve(host, port, false, NULL);
    assert_non_null(res);
    c = sock_connect_start(res->ai_addr, res->ai_addrlen, &in_progress);
    freeaddrinfo(res);
    assert_true(c >= 0);
    wait_accepted(&a, 1);
    assert_int_equal(a.count, 1);
    assert_null(a.free_me);
    /* the listening socket went with the listener */
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    close(c);
    close(a.last_fd);
}

static void test_connect_refused(void **state)
{
    struct sockaddr_un sun;
    bool in_progress;

    (void)state;
    assert_true(sock_unix_addr("/nonexistent/qmpd-sock", &sun, NULL));
    assert_int_equal(sock_connect_start((struct sockaddr *)&sun,
                                        sizeof(sun), &in_progress),
                     -ENOENT);
}

static void test_fd_param(void **state)
{
    int fds[2];
    int owner;
    GError *err = NULL;
    g_autofree char *num = NULL;
    g_autofree char *refused = NULL;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    num = g_strdup_printf("%d", fds[0]);
    assert_int_equal(sock_fd_param(num, NULL), fds[0]);
    assert_true(fcntl(fds[0], F_GETFL) & O_NONBLOCK);

    assert_int_equal(sock_fd_param("99999", &err), -1);
    assert_string_equal(err->message,
                        "File descriptor named '99999' has not been found");
    g_clear_error(&err);
    assert_int_equal(sock_fd_param("4x", &err), -1);
    g_clear_error(&err);

    /* a name is the current monitor's, and taken */
    fdstore_set_current(&owner);
    fdstore_add(&owner, "mine", fds[1]);
    assert_int_equal(sock_fd_param("mine", NULL), fds[1]);
    assert_int_equal(sock_fd_param("mine", &err), -1);
    assert_string_equal(err->message,
                        "File descriptor named 'mine' has not been found");
    g_clear_error(&err);
    fdstore_set_current(NULL);

    sock_forbid_fd_param();
    assert_int_equal(sock_fd_param(num, &err), -1);
    refused = g_strdup_printf("fd:%d is disabled here", fds[0]);
    assert_string_equal(err->message, refused);
    g_clear_error(&err);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_unix_addr_too_long),
        cmocka_unit_test(test_resolve_fails),
        cmocka_unit_test(test_unix_listener),
        cmocka_unit_test(test_inet_listener_freed_in_cb),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_fd_param),    /* forbids fd: from then on */
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
