/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the input is a qcow2 image.  It is written to a
 * temporary file and opened through the real block layer, read-only and
 * read-write; whatever opens is read at its start, middle and end and
 * across cluster and L2 boundaries, asked for its block status, written
 * to and flushed, then closed.  A bad image must fail with an error
 * message or -errno, never crash, leak or hang.
 *
 * Backing files: the first opens pass "backing": null.  Only when the
 * image names a plain file in the temporary directory (a name without
 * '/') is it opened once more with its backing chain; that directory
 * holds nothing but the input itself ("img.qcow2") and a copy of it
 * ("base.qcow2"), so chains and loops are exercised without ever
 * touching another host file.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "block/core/block.h"
#include "block/core/ioq.h"

#define MAX_READ (256u << 10)
#define NR_RANGES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *img_path;
static char *base_path;
static bool verbose;            /* QMPD_FUZZ_VERBOSE: print what failed */

typedef struct {
    int pending;
} Waiter;

static void done_cb(void *opaque, int ret)
{
    Waiter *w = opaque;

    if (verbose && ret < 0) {
        fprintf(stderr, "request failed: %s\n", g_strerror(-ret));
    }
    w->pending--;
}

static void status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    Waiter *w = opaque;

    /* the contract: progress on success */
    g_assert(ret < 0 || pnum > 0);
    w->pending--;
}

static void wait_sync(Waiter *w)
{
    while (w->pending > 0) {
        g_main_context_iteration(NULL, TRUE);
    }
}

static void closed_cb(void *opaque, int ret)
{
    *(bool *)opaque = true;
}

/* Wait for every node to close; @bn (may be NULL) is dropped first. */
static void close_sync(BlockNode *bn)
{
    bool done = false;

    if (bn) {
        bdrv_unref(bn);
    }
    bdrv_wait_closed(closed_cb, &done);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
    }
    /* nothing may outlive the image: no node, no request */
    g_assert(bdrv_all_nodes()->len == 0);
}

static void remove_files(void)
{
    g_autofree char *dir = g_path_get_dirname(img_path);

    unlink(img_path);
    unlink(base_path);
    rmdir(dir);
}

static void fuzz_init(void)
{
    static bool done;
    Error *err = NULL;
    char *dir;

    if (done) {
        return;
    }
    done = true;
    verbose = getenv("QMPD_FUZZ_VERBOSE") != NULL;
    g_assert(bdrv_init(&err));
    dir = g_dir_make_tmp("qmpd-fuzz-qcow2-XXXXXX", NULL);
    g_assert(dir);
    img_path = g_build_filename(dir, "img.qcow2", NULL);
    base_path = g_build_filename(dir, "base.qcow2", NULL);
    g_free(dir);
    atexit(remove_files);
}

/*
 * Open the image; @backing false passes "backing": null.  A failure
 * must come with a message.
 */
static BlockNode *open_image(bool read_only, bool backing)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:b,s:{s:s,s:s}}", "driver", "qcow2",
                          "node-name", "f", "read-only", read_only, "file",
                          "driver", "file", "filename", img_path);
    BlockNode *bn;

    if (!backing) {
        json_object_set_new(o, "backing", json_null());
    }
    if (!read_only) {
        /* let discards and unmapping zero writes reach the driver */
        json_object_set_new(o, "discard", json_string("unmap"));
    }
    bn = bdrv_open_options(o, false, &err);
    json_decref(o);
    if (!bn) {
        g_assert(err && *error_get_pretty(err));
        if (verbose) {
            fprintf(stderr, "open (%s%s) failed: %s\n",
                    read_only ? "ro" : "rw", backing ? ", backing" : "",
                    error_get_pretty(err));
        }
        error_free(err);
        /* a failed backing open closes what it opened in the background */
        close_sync(NULL);
    }
    return bn;
}

typedef struct {
    uint64_t off;
    uint64_t len;
} Range;

/*
 * Ranges worth reading in an image of @len bytes with clusters of @cs
 * bytes: the start, a cluster boundary, an L2 table boundary, the
 * middle, the end, and one picked by @seed.  Each lies inside the image.
 */
static unsigned pick_ranges(Range *r, uint64_t len, uint64_t cs,
                            uint64_t seed)
{
    uint64_t span = cs * (cs / 8);
    Range want[NR_RANGES] = {
        { 0, 3 * cs },
        { cs - 100, 200 },
        { span - cs / 2, cs },
        { span * 3 - 512, 4096 },
        { len / 2 - MIN(len / 2, cs / 2 + 1), cs + 3 },
        { len - MIN(len, 2 * cs + 17), 2 * cs + 17 },
        { len - MIN(len, 512), 512 },
        { len ? seed % len : 0, 5000 },
    };
    unsigned n = 0;

    for (unsigned i = 0; i < NR_RANGES; i++) {
        if (want[i].off >= len) {
            continue;
        }
        r[n].off = want[i].off;
        r[n].len = MIN(MIN(want[i].len, MAX_READ), len - want[i].off);
        n++;
    }
    return n;
}

static void read_and_status(BlockNode *bn, const Range *r, unsigned n)
{
    uint8_t *bufs[NR_RANGES];
    Waiter w = { 0 };
    uint64_t len = bdrv_length(bn);

    /* all at once: requests share L2 tables and their loads */
    for (unsigned i = 0; i < n; i++) {
        bufs[i] = ioq_buf_alloc(r[i].len);
        w.pending += 2;
        bdrv_read(bn, r[i].off, r[i].len, bufs[i], done_cb, &w);
        bdrv_block_status(bn, r[i].off, r[i].len, status_cb, &w);
    }
    if (len) {
        w.pending++;
        bdrv_block_status(bn, 0, len, status_cb, &w);
    }
    if (len && bdrv_backing(bn)) {
        w.pending++;
        bdrv_is_allocated_above(bn, NULL, 0, MIN(len, MAX_READ), status_cb,
                                &w);
    }
    wait_sync(&w);
    for (unsigned i = 0; i < n; i++) {
        ioq_buf_free(bufs[i]);
    }
}

/* Writes, a zero write and a discard, then a flush; the results vary. */
static void write_and_flush(BlockNode *bn, const Range *r, unsigned n)
{
    uint8_t *buf = ioq_buf_alloc(MAX_READ);
    Waiter w = { 0 };

    memset(buf, 0xa5, MAX_READ);
    if (n > 0) {
        w.pending++;
        bdrv_write(bn, r[0].off, MIN(r[0].len, 4096), buf, 0, done_cb, &w);
    }
    if (n > 1) {
        w.pending++;
        bdrv_write(bn, r[1].off, r[1].len, buf, 0, done_cb, &w);
    }
    if (n > 4) {
        w.pending += 2;
        bdrv_write_zeroes(bn, r[4].off, r[4].len, BDRV_REQ_MAY_UNMAP,
                          done_cb, &w);
        bdrv_discard(bn, r[n - 1].off, r[n - 1].len, done_cb, &w);
    }
    wait_sync(&w);
    w.pending = 1;
    bdrv_flush(bn, done_cb, &w);
    wait_sync(&w);
    ioq_buf_free(buf);
}

/* A backing name that resolves inside the temporary directory. */
static bool backing_is_local(const BlockNode *bn)
{
    const char *name = bdrv_backing_file(bn);
    const char *fmt = bdrv_backing_format(bn);

    if (!name || !*name || strchr(name, '/') || !strcmp(name, ".")
        || !strcmp(name, "..")) {
        return false;
    }
    /* formats whose options the backing opener fills in completely */
    return !fmt || !strcmp(fmt, "qcow2") || !strcmp(fmt, "raw");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Range r[NR_RANGES];
    uint64_t cs = 65536;
    uint64_t seed = 14695981039346656037ull;
    unsigned n;
    bool local_backing;
    BlockNode *bn;

    fuzz_init();
    if (size >= 24 && data[20] == 0 && data[21] == 0 && data[22] == 0
        && data[23] >= 9 && data[23] <= 21) {
        cs = 1ull << data[23];
    }
    for (size_t i = 0; i < size; i++) {
        seed = (seed ^ data[i]) * 1099511628211ull;
    }
    if (!g_file_set_contents(img_path, (const char *)data, size, NULL)
        || !g_file_set_contents(base_path, (const char *)data, size,
                                NULL)) {
        return 0;
    }

    bn = open_image(true, false);
    if (!bn) {
        return 0;
    }
    n = pick_ranges(r, bdrv_length(bn), cs, seed);
    read_and_status(bn, r, n);
    local_backing = backing_is_local(bn);
    close_sync(bn);

    bn = open_image(false, false);
    if (bn) {
        read_and_status(bn, r, n);
        write_and_flush(bn, r, n);
        read_and_status(bn, r, n);
        close_sync(bn);
    }

    if (local_backing) {
        /* the read-write open may have changed the files: start again */
        if (!g_file_set_contents(img_path, (const char *)data, size, NULL)
            || !g_file_set_contents(base_path, (const char *)data, size,
                                    NULL)) {
            return 0;
        }
        bn = open_image(true, true);
        if (bn) {
            read_and_status(bn, r, n);
            close_sync(bn);
        }
    }
    return 0;
}
