/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtest server side.  Line-based: each request is one line of words,
 * each reply one line starting "OK" or "FAIL".  Supported: clock_step
 * [ns] (advance the virtual clock; without an argument, to the next
 * deadline, and qmpd has no guest timers so it stays), clock_set ns,
 * endianness.  Anything else gets QEMU's "FAIL Unknown command".
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "system/qtest.h"
#include "system/vclock.h"

typedef struct {
    Chardev *chr;
    int fd;
    guint watch;
    GString *in;
    FILE *log;
    gint64 start_us;
} QTest;

static QTest *qt;

static void qtest_log(char dir, const char *line)
{
    if (qt->log) {
        double t = (g_get_monotonic_time() - qt->start_us) / 1e6;

        fprintf(qt->log, "[%c +%f] %s", dir, t, line);
        fflush(qt->log);
    }
}

static void qtest_send(const char *line)
{
    size_t off = 0, len = strlen(line);

    qtest_log('S', line);
    /* replies are tiny; block briefly rather than buffer */
    while (off < len) {
        ssize_t n = write(qt->fd, line + off, len - off);

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            g_usleep(1000);
            continue;
        }
        if (n <= 0) {
            return;
        }
        off += n;
    }
}

static void qtest_command(char *line)
{
    g_auto(GStrv) words = NULL;
    g_autofree char *reply = NULL;
    char *end;
    int64_t ns;

    {
        g_autofree char *logged = g_strdup_printf("%s\n", line);

        qtest_log('R', logged);
    }
    words = g_strsplit_set(g_strstrip(line), " ", -1);
    if (!words[0] || !*words[0]) {
        return;
    }
    if (!strcmp(words[0], "clock_step")) {
        if (words[1]) {
            errno = 0;
            ns = strtoll(words[1], &end, 0);
            if (errno || *end) {
                qtest_send("FAIL invalid argument\n");
                return;
            }
            vclock_warp(vclock_get_ns() + ns);
        }
        reply = g_strdup_printf("OK %" PRIi64 "\n", vclock_get_ns());
    } else if (!strcmp(words[0], "clock_set") && words[1]) {
        errno = 0;
        ns = strtoll(words[1], &end, 0);
        if (errno || *end) {
            qtest_send("FAIL invalid argument\n");
            return;
        }
        vclock_warp(ns);
        reply = g_strdup_printf("OK %" PRIi64 "\n", vclock_get_ns());
    } else if (!strcmp(words[0], "endianness")) {
        reply = g_strdup("OK little\n");
    } else {
        reply = g_strdup_printf("FAIL Unknown command '%s'\n", words[0]);
    }
    qtest_send(reply);
}

static gboolean qtest_readable_cb(gint fd, GIOCondition cond, gpointer data)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    char *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        qt->watch = 0;
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(qt->in, buf, n);
    while ((nl = memchr(qt->in->str, '\n', qt->in->len))) {
        g_autofree char *line = g_strndup(qt->in->str, nl - qt->in->str);

        g_string_erase(qt->in, 0, nl - qt->in->str + 1);
        qtest_command(line);
    }
    if (qt->in->len > 65536) {
        g_string_truncate(qt->in, 0);   /* no command is that long */
    }
    return G_SOURCE_CONTINUE;
}

bool qtest_start(Chardev *chr, const char *log_path, Error **errp)
{
    int fd = chardev_take_connection(chr);

    if (fd < 0) {
        error_setg(errp, "qtest needs a socket to connect to or a "
                   "server=on,wait=on socket");
        chardev_free(chr);
        return false;
    }
    qt = g_new0(QTest, 1);
    qt->chr = chr;
    qt->fd = fd;
    qt->in = g_string_new(NULL);
    qt->start_us = g_get_monotonic_time();
    if (log_path) {
        qt->log = fopen(log_path, "w");
        if (!qt->log) {
            error_setg_errno(errp, errno, "Could not open '%s'", log_path);
            qtest_stop();
            return false;
        }
    }
    qt->watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                              qtest_readable_cb, NULL);
    return true;
}

void qtest_stop(void)
{
    if (!qt) {
        return;
    }
    if (qt->watch) {
        g_source_remove(qt->watch);
    }
    close(qt->fd);
    if (qt->log) {
        fclose(qt->log);
    }
    g_string_free(qt->in, TRUE);
    chardev_free(qt->chr);
    g_clear_pointer(&qt, g_free);
}
