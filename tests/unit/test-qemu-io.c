/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qemu-io interpreter on qcow2 nodes, a blkdebug filter and a
 * backend: exact output text (timings masked), failure flags, aio
 * reports through the sink, aio_flush, breakpoints.  The expected
 * texts were taken from qemu-io 7.2; where qemu-io and qemu-img are
 * installed, a table of commands also runs through the real qemu-io on
 * a twin image and must print the same.
 */
#include "config.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "monitor/qemu-io.h"
#include "qapi/qjson.h"
#include "tests/unit/block-sync.h"

#define IMG_SIZE (64 * 1024 * 1024)

static char *tmpdir;
static GString *sink_text;

typedef struct {
    bool done;
    bool failed;
    char *output;
} Result;

static void sink_cb(const char *text)
{
    g_string_append(sink_text, text);
}

/* The three channels in one text, in the order a terminal shows them. */
static void run_done_cb(void *opaque, const QemuIoResult *res)
{
    Result *r = opaque;

    g_assert(!r->done);
    r->done = true;
    r->failed = res->failed;
    r->output = g_strconcat(res->mon, res->err, res->out, NULL);
}

/* The time and rates of a report line vary from run to run. */
static char *mask(const char *text)
{
    GRegex *rate = g_regex_new("; [0-9:.]+( sec)? \\(.*\\)$",
                               G_REGEX_MULTILINE, 0, NULL);
    GRegex *csv = g_regex_new("^([0-9]+,[0-9]+),[0-9:.]+,.*$",
                              G_REGEX_MULTILINE, 0, NULL);
    g_autofree char *m = g_regex_replace_literal(rate, text, -1, 0, "; X",
                                                 0, NULL);
    char *m2 = g_regex_replace(csv, m, -1, 0, "\\1,X", 0, NULL);

    g_regex_unref(rate);
    g_regex_unref(csv);
    return m2;
}

static void start(const QemuIoTarget *t, const char *cmd, Result *r)
{
    memset(r, 0, sizeof(*r));
    qemu_io_run(t, cmd, run_done_cb, r);
    /* never inside the call */
    assert_false(r->done);
}

static void wait_result(Result *r)
{
    while (!r->done) {
        g_main_context_iteration(NULL, TRUE);
    }
}

/* Run @cmd to the end; returns its masked output (g_free it). */
static char *run_sync(const QemuIoTarget *t, const char *cmd, bool *failed)
{
    Result r;
    char *m;

    start(t, cmd, &r);
    wait_result(&r);
    m = mask(r.output);
    g_free(r.output);
    if (failed) {
        *failed = r.failed;
    }
    return m;
}

/* @cmd must print exactly @expect (masked) and fail or not as said. */
static void check(const QemuIoTarget *t, const char *cmd, bool want_fail,
                  const char *expect)
{
    bool failed;
    g_autofree char *got = run_sync(t, cmd, &failed);

    if (strcmp(got, expect) || failed != want_fail) {
        print_error("command '%s':\n got (failed=%d):\n%s\n want "
                    "(failed=%d):\n%s\n", cmd, failed, got, want_fail,
                    expect);
        fail();
    }
}

static char *path_of(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static void create_sync(const char *path)
{
    BdrvCreateOpts o = {
        .size = IMG_SIZE, .cluster_size = 65536, .version = 3,
    };
    Error *err = NULL;
    FILE *f = fopen(path, "w");
    BlockNode *file;

    assert_non_null(f);
    fclose(f);
    file = test_open_sync(json_pack("{s:s,s:s}", "driver", "file", "filename",
                               path));
    if (!bdrv_create(file, "qcow2", &o, &err)) {
        print_error("%s\n", error_get_pretty(err));
        fail();
    }
    test_close_sync(file);
}

static BlockNode *open_qcow2(const char *path)
{
    return test_open_sync(json_pack("{s:s,s:s,s:{s:s,s:s}}", "driver", "qcow2",
                               "node-name", "top", "file", "driver", "file",
                               "filename", path));
}

/* A fresh 64 MiB qcow2 image (64 KiB clusters), as a node target. */
static BlockNode *new_image(const char *name)
{
    g_autofree char *path = path_of(name);

    create_sync(path);
    return open_qcow2(path);
}

static void drop_image(BlockNode *bn, const char *name)
{
    g_autofree char *path = path_of(name);

    test_close_sync(bn);
    unlink(path);
}

static void test_write_read_pattern(void **state)
{
    BlockNode *bn = new_image("rw.qcow2");
    QemuIoTarget t = { .node = bn };

    check(&t, "write -P 0x41 0 4k", false,
          "wrote 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n");
    check(&t, "read -P 0x41 0 4k", false,
          "read 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n");
    check(&t, "read -P 0x42 0 4k", true,
          "Pattern verification failed at offset 0, 4096 bytes\n"
          "read 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n");
    /* the default pattern, a write that is not cluster aligned */
    check(&t, "w 5000 100", false,
          "wrote 100/100 bytes at offset 5000\n100 bytes, 1 ops; X\n");
    check(&t, "read -q -P 0xcd 5000 100", false, "");
    check(&t, "read -P 0x41 -s 100 -l 10 0 4k", false,
          "read 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n");
    /* only the -s/-l range is verified, and reported */
    check(&t, "read -P 0xcd -s 904 -l 100 4096 1k", false,
          "read 1024/1024 bytes at offset 4096\n1 KiB, 1 ops; X\n");
    check(&t, "read -P 0x41 -s 900 -l 100 4096 1k", true,
          "Pattern verification failed at offset 4996, 100 bytes\n"
          "read 1024/1024 bytes at offset 4096\n1 KiB, 1 ops; X\n");
    check(&t, "read -q -P 0x41 0 5000", true,
          "Pattern verification failed at offset 0, 5000 bytes\n");
    /* options after the operands, glued option arguments */
    check(&t, "read 0 4k -P0x41 -q", false, "");
    check(&t, "read -P 0x41 -l 8192 0 4k", true,
          "pattern verification range exceeds end of read data\n");
    check(&t, "read -s 4 0 4k", true,
          "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a "
          "number of bytes at a specified offset\n");
    check(&t, "write -P 1 0 0", false,
          "wrote 0/0 bytes at offset 0\n0 bytes, 1 ops; X\n");
    check(&t, "read -C 0 512", false, "512,1,X\n");
    check(&t, "write -f -P 0x41 64M 1", true,
          "write failed: Input/output error\n");
    check(&t, "read 64M 512", true, "read failed: Input/output error\n");
    check(&t, "read 64M 0", false,
          "read 0/0 bytes at offset 67108864\n0 bytes, 1 ops; X\n");
    check(&t, "writev -P 3 8k 512 1k", false,
          "wrote 1536/1536 bytes at offset 8192\n1.500 KiB, 1 ops; X\n");
    check(&t, "readv -P 3 8k 1k 512", false,
          "read 1536/1536 bytes at offset 8192\n1.500 KiB, 1 ops; X\n");
    check(&t, "readv -P 3 8k 2k", true,
          "Pattern verification failed at offset 8192, 2048 bytes\n"
          "read 2048/2048 bytes at offset 8192\n2 KiB, 1 ops; X\n");
    check(&t, "flush", false, "");
    drop_image(bn, "rw.qcow2");
}

static void test_dump(void **state)
{
    BlockNode *bn = new_image("dump.qcow2");
    QemuIoTarget t = { .node = bn };

    check(&t, "write -q -P 0x61 0 16", false, "");
    check(&t, "write -q -P 0x2e 16 2", false, "");
    check(&t, "write -q -P 0x5a 18 1", false, "");
    check(&t, "read -v 0 20", false,
          "00000000:  61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61  "
          "aaaaaaaaaaaaaaaa\n"
          "00000010:  2e 2e 5a 00  ..Z.\n"
          "read 20/20 bytes at offset 0\n20 bytes, 1 ops; X\n");
    check(&t, "read -v 15 17", false,
          "0000000f:  61 2e 2e 5a 00 00 00 00 00 00 00 00 00 00 00 00  "
          "a..Z............\n"
          "0000001f:  00  .\n"
          "read 17/17 bytes at offset 15\n17 bytes, 1 ops; X\n");
    /* -q wins over -v */
    check(&t, "read -qv 0 4", false, "");
    drop_image(bn, "dump.qcow2");
}

static void test_zero_discard(void **state)
{
    BlockNode *bn = new_image("zero.qcow2");
    QemuIoTarget t = { .node = bn };

    check(&t, "write -q -P 0x11 0 192k", false, "");
    check(&t, "write -z 4k 4k", false,
          "wrote 4096/4096 bytes at offset 4096\n4 KiB, 1 ops; X\n");
    check(&t, "write -z -u -f 64k 64k", false,
          "wrote 65536/65536 bytes at offset 65536\n64 KiB, 1 ops; X\n");
    check(&t, "read -q -P 0 4k 4k", false, "");
    check(&t, "read -q -P 0x11 0 4k", false, "");
    check(&t, "read -q -P 0 64k 64k", false, "");
    check(&t, "discard 128k 64k", false,
          "discard 65536/65536 bytes at offset 131072\n64 KiB, 1 ops; X\n");
    check(&t, "discard -q 0 512", false, "");
    check(&t, "discard 64M 512", true, "discard failed: Input/output error\n");
    check(&t, "write -u 0 512", true, "-u requires -z to be specified\n");
    check(&t, "write -z -P 1 0 512", true,
          "Only one of -z, -P, and -s can be specified at the same time\n");
    check(&t, "write -c 0 512", true, "write: option -c is not supported\n");
    drop_image(bn, "zero.qcow2");
}

static void test_alloc_length_map(void **state)
{
    BlockNode *bn = new_image("alloc.qcow2");
    QemuIoTarget t = { .node = bn };

    check(&t, "length", false, "64 MiB\n");
    check(&t, "alloc 0", false, "0/512 bytes allocated at offset 0 bytes\n");
    check(&t, "write -q 64k 64k", false, "");
    check(&t, "write -q -z 192k 64k", false, "");
    check(&t, "alloc 0 1M", false,
          "131072/1048576 bytes allocated at offset 0 bytes\n");
    check(&t, "a 65536", false,
          "512/512 bytes allocated at offset 64 KiB\n");
    check(&t, "alloc 64M", false,
          "0/0 bytes allocated at offset 64 MiB\n");
    check(&t, "alloc 63M 2M", false,
          "0/1048576 bytes allocated at offset 63 MiB\n");
    check(&t, "alloc 70M 1", false,
          "0/0 bytes allocated at offset 70 MiB\n");
    check(&t, "map", false,
          "64 KiB (0x10000) bytes not allocated at offset 0 bytes (0x0)\n"
          "64 KiB (0x10000) bytes     allocated at offset 64 KiB (0x10000)\n"
          "64 KiB (0x10000) bytes not allocated at offset 128 KiB "
          "(0x20000)\n"
          "64 KiB (0x10000) bytes     allocated at offset 192 KiB "
          "(0x30000)\n"
          "63.750 MiB (0x3fc0000) bytes not allocated at offset 256 KiB "
          "(0x40000)\n");
    drop_image(bn, "alloc.qcow2");
}

static void test_aio(void **state)
{
    BlockNode *bn = new_image("aio.qcow2");
    QemuIoTarget t = { .node = bn };
    g_autofree char *masked = NULL;
    const char *w1 = "wrote 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n";
    const char *w2 = "wrote 8192/8192 bytes at offset 4096\n"
                     "8 KiB, 1 ops; X\n";

    sink_text = g_string_new(NULL);
    qemu_io_set_async_sink(sink_cb);

    check(&t, "aio_flush", false, "");
    check(&t, "aio_write -P 0x55 0 4k", false, "");
    check(&t, "aio_write -P 0x66 4k 4k 4k", false, "");
    check(&t, "aio_flush", false, "");
    /* the two may complete in either order */
    masked = mask(sink_text->str);
    assert_int_equal(strlen(masked), strlen(w1) + strlen(w2));
    assert_non_null(strstr(masked, w1));
    assert_non_null(strstr(masked, w2));
    g_string_truncate(sink_text, 0);

    check(&t, "read -q -P 0x55 0 4k", false, "");
    check(&t, "read -q -P 0x66 4k 8k", false, "");
    check(&t, "aio_read -P 0x55 0 4k", false, "");
    check(&t, "aio_flush", false, "");
    g_free(masked);
    masked = mask(sink_text->str);
    assert_string_equal(masked,
                        "read 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n");
    g_string_truncate(sink_text, 0);

    /* a mismatch or an error is reported, yet the command succeeded */
    check(&t, "aio_read -v -P 0x99 4k 16", false, "");
    check(&t, "aio_write -q 64M 512", false, "");
    check(&t, "aio_flush", false, "");
    g_free(masked);
    masked = mask(sink_text->str);
    if (!strstr(masked, "aio_write failed: Input/output error\n")
        || !strstr(masked, "Pattern verification failed at offset 4096, "
                   "16 bytes\n"
                   "00001000:  66 66 66 66 66 66 66 66 66 66 66 66 66 66 "
                   "66 66  ffffffffffffffff\n"
                   "read 16/16 bytes at offset 4096\n16 bytes, 1 ops; X\n")) {
        print_error("sink got:\n%s\n", masked);
        fail();
    }
    g_string_truncate(sink_text, 0);

    check(&t, "aio_write -z 0 4k", false, "");
    check(&t, "aio_flush", false, "");
    g_free(masked);
    masked = mask(sink_text->str);
    assert_string_equal(masked,
                        "wrote 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n");
    g_string_truncate(sink_text, 0);
    check(&t, "read -q -P 0 0 4k", false, "");

    check(&t, "aio_write -z 0 4k 4k", true,
          "-z supports only a single length parameter\n");
    check(&t, "aio_write -u 0 4k", true, "-u requires -z to be specified\n");
    check(&t, "aio_read 0 3G", true,
          "Argument '3G' exceeds maximum size 2147483136\n");
    check(&t, "aio_read 0 1G 1G 1G", true,
          "The total number of bytes exceed the maximum size 2147483136\n");
    assert_int_equal(sink_text->len, 0);

    qemu_io_set_async_sink(NULL);
    g_string_free(sink_text, TRUE);
    sink_text = NULL;
    drop_image(bn, "aio.qcow2");
}

static void test_messages(void **state)
{
    BlockNode *bn = new_image("msg.qcow2");
    QemuIoTarget t = { .node = bn };
    g_autofree char *help = NULL;
    bool failed;

    check(&t, "", false, "");
    check(&t, "   ", false, "");
    check(&t, "foo 1 2", true, "command \"foo\" not found\n");
    check(&t, "read 0", true,
          "bad argument count 1 to read, expected at least 2 arguments\n");
    check(&t, "alloc", true, "bad argument count 0 to alloc, expected "
          "between 1 and 2 arguments\n");
    check(&t, "alloc 1 2 3", true, "bad argument count 3 to alloc, expected "
          "between 1 and 2 arguments\n");
    check(&t, "length x", true,
          "bad argument count 1 to length, expected 0 arguments\n");
    check(&t, "read x 5", true, "Parsing error: non-numeric argument, or "
          "extraneous/unrecognized suffix -- x\n");
    check(&t, "read 0 5x", true, "Parsing error: non-numeric argument, or "
          "extraneous/unrecognized suffix -- 5x\n");
    check(&t, "alloc -5", true, "Parsing error: non-numeric argument, or "
          "extraneous/unrecognized suffix -- -5\n");
    check(&t, "read 99999999999999999999 1", true,
          "Parsing error: argument too large -- 99999999999999999999\n");
    check(&t, "read 0 1.2", true, "Parsing error: non-numeric argument, or "
          "extraneous/unrecognized suffix -- 1.2\n");
    check(&t, "read -P 300 0 5", true, "300 is not a valid pattern byte\n");
    check(&t, "write -P zz 0 1", true, "zz is not a valid pattern byte\n");
    check(&t, "read -x 0 1", true,
          "read: invalid option -- 'x'\n"
          "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a "
          "number of bytes at a specified offset\n");
    check(&t, "r 0 1 -P", true,
          "r: option requires an argument -- 'P'\n"
          "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a "
          "number of bytes at a specified offset\n");
    check(&t, "read 0 3G", true,
          "length cannot exceed 2147483136, given 3G\n");
    check(&t, "write 0 2G", true,
          "length cannot exceed 2147483136 without -n, given 2G\n");
    check(&t, "read -b 0 512", true, "read: option -b is not supported\n");
    check(&t, "help foo", true, "command foo not found\n");
    check(&t, "? length", false,
          "length -- gets the length of the current file\n");
    check(&t, "help map", false,
          "map  -- prints the allocated areas of a file\n");
    check(&t, "sleep 2", false, "");
    check(&t, "sleep x", true, "x is not a valid number\n");

    help = run_sync(&t, "help", &failed);
    assert_false(failed);
    assert_non_null(strstr(help, "\nread [-abCqv] [-P pattern [-s off] "
                           "[-l len]] off len -- reads a number of bytes at "
                           "a specified offset\n"));
    assert_true(g_str_has_prefix(help, "aio_flush -- completes all "
                                 "outstanding aio requests\n"));
    assert_true(g_str_has_suffix(help, "\n\nUse 'help commandname' for "
                                 "extended help.\n"));
    g_free(help);
    help = run_sync(&t, "help w", &failed);
    assert_true(g_str_has_prefix(help, "w [-bcCfnquz] [-P pattern | -s "
                                 "source_file] off len -- writes"));
    drop_image(bn, "msg.qcow2");
}

/* qemu_strtosz's corners, as qemu-io 7.2 parses them */
static void test_numbers(void **state)
{
    static const struct {
        const char *cmd;
        const char *offset;
    } cases[] = {
        { "read 0x200 1", "512" },
        { "read 0X1F 1", "31" },
        { "read 1.5k 1", "1536" },
        { "read 1.k 1", "1024" },
        { "read 1. 1", "1" },
        { "read 1.0 1", "1" },
        { "read +5 1", "5" },
        { "read 1b 1", "1" },
        { "read 1K 1", "1024" },
        { "read 0.00048828125k 1", "1" },
        { "read 0.000244140625k 1", "0" },
        { "read 1.99999999999999999k 1", "1024" },
        { "read 1m 1", "1048576" },
    };
    BlockNode *bn = new_image("num.qcow2");
    QemuIoTarget t = { .node = bn };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *want = g_strdup_printf(
            "read 1/1 bytes at offset %s\n1 bytes, 1 ops; X\n",
            cases[i].offset);

        check(&t, cases[i].cmd, false, want);
    }
    check(&t, "read 0x1k 1", false,
          "warning: Using a multiplier suffix on hex numbers is deprecated: "
          "0x1k\nread 1/1 bytes at offset 1024\n1 bytes, 1 ops; X\n");
    check(&t, "read 0x 1", true, "Parsing error: non-numeric argument, or "
          "extraneous/unrecognized suffix -- 0x\n");
    check(&t, "read 0x10. 1", true, "Parsing error: non-numeric argument, "
          "or extraneous/unrecognized suffix -- 0x10.\n");
    check(&t, "read 1.5e3k 1", true, "Parsing error: non-numeric argument, "
          "or extraneous/unrecognized suffix -- 1.5e3k\n");
    check(&t, "read 0 1kb", true, "Parsing error: non-numeric argument, or "
          "extraneous/unrecognized suffix -- 1kb\n");
    check(&t, "read 16E 1", true, "Parsing error: argument too large -- "
          "16E\n");
    check(&t, "read 8E 1", true, "Parsing error: argument too large -- "
          "8E\n");
    check(&t, "read 7E 1", true, "read failed: Input/output error\n");
    drop_image(bn, "num.qcow2");
}

static void test_blkdebug(void **state)
{
    g_autofree char *path = path_of("dbg.qcow2");
    BlockNode *bn;
    QemuIoTarget t = { 0 };
    g_autofree char *masked = NULL;
    Result flush;

    create_sync(path);
    bn = test_open_sync(json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s}}}", "driver",
                             "qcow2", "node-name", "top", "file", "driver",
                             "blkdebug", "image", "driver", "file",
                             "filename", path));
    t.node = bn;
    t.blk = NULL;
    sink_text = g_string_new(NULL);
    qemu_io_set_async_sink(sink_cb);

    check(&t, "break write_aio A", false, "");
    check(&t, "aio_write -P 0x77 0 4k", false, "");
    check(&t, "wait_break A", false, "");
    assert_int_equal(sink_text->len, 0);
    /* aio_flush waits while the request is held... */
    start(&t, "aio_flush", &flush);
    for (int i = 0; i < 20; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    assert_false(flush.done);
    check(&t, "wait_break A", false, "");
    check(&t, "resume A", false, "");
    /* ...and finishes once it completed */
    wait_result(&flush);
    assert_false(flush.failed);
    assert_string_equal(flush.output, "");
    g_free(flush.output);
    masked = mask(sink_text->str);
    assert_string_equal(masked,
                        "wrote 4096/4096 bytes at offset 0\n4 KiB, 1 ops; X\n");
    g_string_truncate(sink_text, 0);
    check(&t, "read -q -P 0x77 0 4k", false, "");

    check(&t, "resume A", true,
          "Could not resume request: No such file or directory\n");
    check(&t, "remove_break B", true,
          "Could not remove breakpoint B: No such file or directory\n");
    check(&t, "break no_such_event A", true,
          "Could not set breakpoint: No such file or directory\n");
    check(&t, "break write_aio B", false, "");
    check(&t, "remove_break B", false, "");
    /* with the breakpoint gone the write goes through */
    check(&t, "write -q 0 4k", false, "");

    qemu_io_set_async_sink(NULL);
    g_string_free(sink_text, TRUE);
    sink_text = NULL;
    test_close_sync(bn);
    unlink(path);
}

static void test_no_blkdebug(void **state)
{
    BlockNode *bn = new_image("nodbg.qcow2");
    QemuIoTarget t = { .node = bn };

    check(&t, "break write_aio A", true,
          "Could not set breakpoint: Operation not supported\n");
    check(&t, "resume A", true,
          "Could not resume request: Operation not supported\n");
    check(&t, "remove_break A", true,
          "Could not remove breakpoint A: Operation not supported\n");
    drop_image(bn, "nodbg.qcow2");
}

static void test_backend(void **state)
{
    BlockNode *bn = new_image("blk.qcow2");
    Error *err = NULL;
    BlockBackend *blk = blk_new("d0", bn, &err);
    QemuIoTarget t = { .blk = blk };
    BlockStats *st;

    assert_non_null(blk);
    st = blk_stats(blk);
    check(&t, "write -P 0x21 1M 64k", false,
          "wrote 65536/65536 bytes at offset 1048576\n64 KiB, 1 ops; X\n");
    check(&t, "read -P 0x21 1M 64k", false,
          "read 65536/65536 bytes at offset 1048576\n64 KiB, 1 ops; X\n");
    assert_int_equal(st->wr_ops, 1);
    assert_int_equal(st->rd_ops, 1);
    check(&t, "read 64M 1", true, "read failed: Input/output error\n");
    assert_int_equal(st->invalid_rd, 1);
    check(&t, "aio_read -i 0 512", false, "injecting invalid read request\n");
    assert_int_equal(st->invalid_rd, 2);
    check(&t, "alloc 1M 128k", false,
          "65536/131072 bytes allocated at offset 1 MiB\n");
    check(&t, "length", false, "64 MiB\n");
    check(&t, "flush", false, "");
    check(&t, "aio_write -q 0 512", false, "");
    check(&t, "aio_flush", false, "");
    check(&t, "read -q -P 0xcd 0 512", false, "");

    blk_delete(blk);
    drop_image(bn, "blk.qcow2");
}

static bool have(const char *tool)
{
    g_autofree char *p = g_find_program_in_path(tool);

    return p != NULL;
}

/*
 * The same commands through the real qemu-io on a twin image (both made
 * by qemu-img): every output must match once timings are masked.
 */
static void test_against_qemu_io(void **state)
{
    static const char *const cmds[] = {
        "write -P 0x41 0 4k", "read -P 0x41 0 4k", "read -P 0x42 0 4k",
        "read -v 1 33", "write -z 4k 4k", "write -z -u 8k 4k",
        "discard 64k 64k", "alloc 0", "alloc 0 16k", "alloc 1M 64k",
        "alloc 64M", "alloc 63M 2M", "length", "map", "foo",
        "read 0", "alloc", "length x", "read x 5", "read 0 5x",
        "read -P 300 0 5", "read -x 0 1", "read 0 1 -P", "read 64M 512",
        "write 0 0", "read -s 4 0 4k", "read -P 0x41 -l 8192 0 4k",
        "read -P 0x41 -s 4000 -l 100 0 4k", "read 1.5k 512", "read 1.k 1",
        "read 0 1.2", "read 99999999999999999999 1", "read 7E 1",
        "read 0 3G", "write 0 2G", "write -u 0 1", "write -z -P 1 0 512",
        "discard 64M 512", "writev -P 3 0 512 1k", "readv -P 3 0 512 1k",
        "readv 0 3G", "readv 0 1G 1G 1G", "read -C 0 512",
        "help read r", "help length", "? map", "help foo",
        "break write_aio a", "resume a", "remove_break a", "sleep x",
        "aio_write -z 0 4k 4k", "aio_write -u 0 1",
        "read 0.00048828125k 1", "read 0x200 0x200", "read -p 0 1",
        "read -- 0 1", "read -- -P 1 0", "read - 1", "read --foo 0 1",
        "read -P 0x41 -s 5 0 4", "discard -x 0 1", "aio_read 0",
        "aio_flush x", "sleep -1", "write -z -f 0 512",
        /* qemu-io reports these when it closes the image at exit */
        "aio_read -P 0x42 0 512", "aio_write -q 64M 512",
        "aio_write -P 0x42 0 512", "aio_read -v 0 20", "aio_write -z 0 4k",
        "aio_read -P 0 0 4k",
    };
    g_autofree char *ours = path_of("ours.qcow2");
    g_autofree char *theirs = path_of("theirs.qcow2");
    g_autofree char *cmd = NULL;
    BlockNode *bn;
    QemuIoTarget t = { 0 };

    if (!have("qemu-io") || !have("qemu-img")) {
        skip();
    }
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 64M && "
                          "qemu-img create -q -f qcow2 %s 64M", ours, theirs);
    assert_int_equal(system(cmd), 0);
    bn = open_qcow2(ours);
    t.node = bn;
    t.blk = NULL;
    sink_text = g_string_new(NULL);
    qemu_io_set_async_sink(sink_cb);
    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        char *argv[] = {
            (char *)"qemu-io", (char *)"-f", (char *)"qcow2", (char *)"-c",
            (char *)cmds[i], theirs, NULL,
        };
        g_autofree char *qout = NULL;
        g_autofree char *qerr = NULL;
        g_autofree char *qall = NULL;
        g_autofree char *want = NULL;
        g_autofree char *got = NULL;
        int status;
        bool failed;

        assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                                 NULL, &qout, &qerr, &status, NULL));
        /* qemu-io's stderr is unbuffered: its lines come first */
        qall = g_strconcat(qerr, qout, NULL);
        want = mask(qall);
        g_string_truncate(sink_text, 0);
        got = run_sync(&t, cmds[i], &failed);
        if (g_str_has_prefix(cmds[i], "aio_")) {
            g_autofree char *flushed = run_sync(&t, "aio_flush", NULL);
            g_autofree char *reports = mask(sink_text->str);
            char *all = g_strconcat(got, flushed, reports, NULL);

            g_free(got);
            got = all;
        }
        if (strcmp(got, want)
            || failed != !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            print_error("'%s': qemu-io (status %d):\n%s\nqmpd (failed "
                        "%d):\n%s\n", cmds[i], status, want, failed, got);
            fail();
        }
    }
    qemu_io_set_async_sink(NULL);
    g_string_free(sink_text, TRUE);
    sink_text = NULL;
    test_close_sync(bn);
    unlink(ours);
    unlink(theirs);
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qmpd-qemu-io-XXXXXX", NULL);
    return bdrv_init(NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_pattern),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_zero_discard),
        cmocka_unit_test(test_alloc_length_map),
        cmocka_unit_test(test_aio),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_blkdebug),
        cmocka_unit_test(test_no_blkdebug),
        cmocka_unit_test(test_backend),
        cmocka_unit_test(test_against_qemu_io),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
