/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtest server side.  Line-based: each request is one line of words,
 * each reply one line starting "OK" or "FAIL".  Supported: the memory
 * commands (readb..readq, writeb..writeq, read, write, memset, b64read,
 * b64write) on the guest's RAM (physmem.c); with the qtest accelerator,
 * clock_step [ns] (advance the virtual clock; without an argument, to
 * the next deadline, and qmpd has no guest timers so it stays) and
 * clock_set ns; endianness.  Anything else gets QEMU's "FAIL Unknown
 * command", as do the clock commands under another accelerator.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "monitor/telnet.h"
#include "system/machine.h"
#include "system/physmem.h"
#include "system/qtest.h"
#include "system/vclock.h"

typedef struct {
    Chardev *chr;
    int fd;
    guint watch;
    GString *in;
    bool telnet;
    TelnetState telnet_state;
    FILE *log;
    gint64 start_us;
} QTest;

static QTest *qt;

/* QEMU's log line: "[R +secs] cmd", "[S +secs] reply", "[I +secs] ..." */
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

    /* QEMU logs every reply but its "ERR" ones */
    if (!g_str_has_prefix(line, "ERR")) {
        qtest_log('S', line);
    }
    /* the harness waits for this reply: block rather than buffer */
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

/* A number as QEMU's qtest reads it (base 0, all of the word). */
static bool qtest_number(const char *word, uint64_t *v)
{
    char *end;

    if (!word || !*word || *word == '-') {
        return false;
    }
    errno = 0;
    *v = g_ascii_strtoull(word, &end, 0);
    return !errno && !*end;
}

/* The largest read/write/memset qmpd takes in one command. */
#define QTEST_MAX_LEN (256u << 20)

static char *qtest_mem_read(char **words)
{
    static const char sizes[] = "bwlq";
    uint64_t addr, len, v = 0;
    g_autofree uint8_t *data = NULL;
    GString *out;

    if (!qtest_number(words[1], &addr)) {
        return NULL;
    }
    if (strlen(words[0]) == 5 && g_str_has_prefix(words[0], "read")) {
        const char *k = strchr(sizes, words[0][4]);
        uint8_t b[8];

        len = 1u << (k - sizes);
        physmem_read(addr, b, len);
        for (uint64_t i = len; i > 0; i--) {        /* x86: little-endian */
            v = v << 8 | b[i - 1];
        }
        return g_strdup_printf("OK 0x%016" PRIx64 "\n", v);
    }
    if (!qtest_number(words[2], &len) || len > QTEST_MAX_LEN) {
        return NULL;
    }
    data = g_malloc(len);
    physmem_read(addr, data, len);
    if (words[0][0] == 'b') {
        g_autofree char *enc = g_base64_encode(data, len);

        return g_strdup_printf("OK %s\n", enc);
    }
    out = g_string_new("OK 0x");
    for (uint64_t i = 0; i < len; i++) {
        g_string_append_printf(out, "%02x", data[i]);
    }
    g_string_append_c(out, '\n');
    return g_string_free(out, FALSE);
}

static char *qtest_mem_write(char **words)
{
    static const char sizes[] = "bwlq";
    uint64_t addr, len, v;
    g_autofree uint8_t *data = NULL;

    if (!qtest_number(words[1], &addr) || !words[2]) {
        return NULL;
    }
    if (strlen(words[0]) == 6 && g_str_has_prefix(words[0], "write")) {
        const char *k = strchr(sizes, words[0][5]);
        uint8_t b[8];

        if (!qtest_number(words[2], &v)) {
            return NULL;
        }
        len = 1u << (k - sizes);
        for (uint64_t i = 0; i < len; i++) {
            b[i] = v >> (8 * i);
        }
        physmem_write(addr, b, len);
        return g_strdup("OK\n");
    }
    if (!qtest_number(words[2], &len) || len > QTEST_MAX_LEN || !words[3]) {
        return NULL;
    }
    if (!strcmp(words[0], "memset")) {
        if (!qtest_number(words[3], &v)) {
            return NULL;
        }
        data = g_malloc(len);
        memset(data, (uint8_t)v, len);
    } else if (!strcmp(words[0], "b64write")) {
        size_t enc = strlen(words[3]) + 1;
        gsize n;

        /*
         * QEMU decodes in place and writes the size it was told: past
         * the decoded bytes come the rest of the base64 text (then
         * zeros here, where QEMU reads beyond its buffer).
         */
        data = g_malloc0(MAX(len, enc));
        memcpy(data, words[3], enc);
        g_base64_decode_inplace((char *)data, &n);
        if (n != len) {
            g_autofree char *note = g_strdup_printf(
                "b64write: data length mismatch (told %" PRIu64 ", found "
                "%zu)\n", len, (size_t)n);

            qtest_log('S', note);       /* logged, not sent, as QEMU */
        }
    } else {
        size_t hex = strlen(words[3]);

        if (hex < 3) {
            return g_strdup("ERR invalid argument size\n");
        }
        /* "0x" then two digits a byte; missing bytes are zeros */
        data = g_malloc0(len);
        for (uint64_t i = 0; i < len && i * 2 + 4 <= hex; i++) {
            int hi = g_ascii_xdigit_value(words[3][2 + i * 2]);
            int lo = g_ascii_xdigit_value(words[3][3 + i * 2]);

            data[i] = (hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo);
        }
    }
    physmem_write(addr, data, len);
    return g_strdup("OK\n");
}

/* Is @w one of @names (NULL-terminated)? */
static bool qtest_is(const char *w, const char *const *names)
{
    for (; *names; names++) {
        if (!strcmp(w, *names)) {
            return true;
        }
    }
    return false;
}

static void qtest_command(char *line)
{
    static const char *const reads[] = {
        "readb", "readw", "readl", "readq", "read", "b64read", NULL
    };
    static const char *const writes[] = {
        "writeb", "writew", "writel", "writeq", "write", "b64write",
        "memset", NULL
    };
    g_auto(GStrv) words = NULL;
    g_autofree char *reply = NULL;
    /* the virtual clock is the qtest accelerator's, as in QEMU */
    bool clock = !strcmp(machine_config()->accel, "qtest");
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
    if (qtest_is(words[0], reads)) {
        reply = qtest_mem_read(words);
    } else if (qtest_is(words[0], writes)) {
        reply = qtest_mem_write(words);
    } else if (clock && !strcmp(words[0], "clock_step")) {
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
    } else if (clock && !strcmp(words[0], "clock_set") && words[1]) {
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
    /* QEMU aborts on a bad or missing number; qmpd answers */
    qtest_send(reply ? reply : "FAIL invalid argument\n");
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
        qtest_log('I', "CLOSED\n");
        qt->watch = 0;
        return G_SOURCE_REMOVE;
    }
    if (qt->telnet) {
        n = telnet_filter(&qt->telnet_state, buf, n);
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
    /* as QEMU: the log goes to stderr unless -qtest-log names a file */
    if (!log_path) {
        qt->log = stderr;
    } else if (strcmp(log_path, "none")) {
        qt->log = fopen(log_path, "w");
        if (!qt->log) {
            error_setg_errno(errp, errno, "Could not open '%s'", log_path);
            qtest_stop();
            return false;
        }
    }
    if (qt->log) {
        /* the one line QEMU stamps without a '+' */
        fprintf(qt->log, "[I %f] OPENED\n", 0.0);
        fflush(qt->log);
    }
    qt->telnet = chardev_telnet(chr);
    if (qt->telnet) {
        telnet_send_offer(fd);
    }
    qt->watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                              qtest_readable_cb, NULL);
    return true;
}

bool qtest_driver(void)
{
    return qt != NULL;
}

void qtest_stop(void)
{
    if (!qt) {
        return;
    }
    if (qt->watch) {
        /* still open: QEMU logs the close its exit makes */
        qtest_log('I', "CLOSED\n");
        g_source_remove(qt->watch);
    }
    close(qt->fd);
    if (qt->log && qt->log != stderr) {
        fclose(qt->log);
    }
    g_string_free(qt->in, TRUE);
    chardev_free(qt->chr);
    g_clear_pointer(&qt, g_free);
}
