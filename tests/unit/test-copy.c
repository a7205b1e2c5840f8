/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine (block/jobs/copy.c) without a job, on real nodes in a
 * temporary directory: it copies what is dirty and only that, keeps at
 * most max_ops operations busy, takes again what is marked dirty while
 * it runs, skips what the chain holds below its base, skips or writes
 * zeroes, lets a guest write that races a stream-like copy win, and on
 * a failed request hands the errno to the owner's hook and keeps the
 * range dirty (or gives it up when the hook says so).  Copy-before-write
 * ranges are copied ahead of the background, after the requests in
 * flight there and earlier overlapping ranges, each byte once.  With a
 * job (a bare BlockJob: its progress, speed and I/O count are plain
 * fields) it reports mirror's progress, paces operations one after the
 * other under a speed limit, and, as mirror, clears dirty bits under a
 * lock on the source and copies a guest's write-blocking writes to the
 * target, which wait in one queue with copy-before-write ranges.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/copy.h"
#include "qapi/qjson.h"
#include "tests/unit/block-sync.h"
#include "util/hbitmap.h"

#define MiB (1024 * 1024)
#define LEN (4 * MiB)
#define G (64 * 1024)

static char *tmpdir;

/* The owner: a policy that records what the engine asked. */
typedef struct {
    BlockCopy *bc;
    bool stop;                  /* may_run says no */
    bool idle;
    unsigned max_busy;
    int errors;
    int last_error;
    bool last_is_read;
    BlockCopyErrorResult on_error;
    BlockJob *job;
    bool progress_ok;           /* total == current + remaining, always */
    uint64_t first_sleep_bytes; /* the job's counted bytes, first sleep */
    uint64_t first_sleep_dirty; /* block_copy_dirty_bytes() then */
    bool slept;
    /* a write to make while the copy runs, once */
    BlockNode *race_node;
    uint64_t race_off;
    uint8_t *race_buf;
    int race_pending;
} Owner;

/* The job's len - offset is what the engine says is left. */
static void check_progress(Owner *o)
{
    if (o->job && (uint64_t)o->job->job.progress_total
        != o->job->job.progress_current + block_copy_remaining(o->bc)) {
        o->progress_ok = false;
    }
}

static bool owner_may_run(void *opaque)
{
    Owner *o = opaque;

    o->max_busy = MAX(o->max_busy, block_copy_busy(o->bc));
    check_progress(o);
    return !o->stop;
}

static BlockCopyErrorResult owner_error(void *opaque, bool is_read, int ret)
{
    Owner *o = opaque;

    o->errors++;
    o->last_error = ret;
    o->last_is_read = is_read;
    if (o->on_error == BLOCK_COPY_ERROR_RETRY) {
        o->stop = true;         /* as a job's report or stop */
    }
    return o->on_error;
}

static void owner_idle(void *opaque)
{
    ((Owner *)opaque)->idle = true;
}

static void owner_sleeping(void *opaque)
{
    Owner *o = opaque;

    if (!o->slept) {
        o->slept = true;
        o->first_sleep_bytes = o->job->slice_bytes;
        o->first_sleep_dirty = block_copy_dirty_bytes(o->bc);
    }
}

static const BlockCopyOps owner_ops = {
    .may_run = owner_may_run,
    .error = owner_error,
    .sleeping = owner_sleeping,
    .idle = owner_idle,
};

static char *path_of(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* A file of @len bytes, each MiB filled with @fill + its index (0: zero). */
static void make_file(const char *name, uint64_t len, int fill)
{
    g_autofree char *p = path_of(name);
    FILE *f = fopen(p, "w");
    static uint8_t mb[MiB];

    assert_non_null(f);
    for (uint64_t i = 0; i < len / MiB; i++) {
        memset(mb, fill ? fill + (int)i : 0, sizeof(mb));
        assert_int_equal(fwrite(mb, 1, sizeof(mb), f), sizeof(mb));
    }
    fclose(f);
}

static BlockNode *open_file(const char *name)
{
    g_autofree char *p = path_of(name);

    return test_open_sync(json_pack("{s:s,s:s}", "driver", "file", "filename",
                               p));
}

static void create_qcow2(const char *name, const char *backing)
{
    g_autofree char *p = path_of(name);
    g_autofree char *b = backing ? path_of(backing) : NULL;
    BdrvCreateOpts opts = {
        .size = LEN, .cluster_size = G, .version = 3,
        .backing_file = b, .backing_fmt = b ? "qcow2" : NULL,
    };
    Error *err = NULL;
    BlockNode *file;

    make_file(name, 0, 0);
    file = open_file(name);
    assert_true(bdrv_create(file, "qcow2", &opts, &err));
    test_close_sync(file);
}

static BlockNode *open_qcow2(const char *name)
{
    g_autofree char *p = path_of(name);

    return test_open_sync(json_pack("{s:s,s:{s:s,s:s}}", "driver", "qcow2",
                               "file", "driver", "file", "filename", p));
}

static void io_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    (*(int *)opaque)--;
}

static void wait_for(const int *pending)
{
    while (*pending > 0) {
        g_main_context_iteration(NULL, TRUE);
    }
}

static void write_sync(BlockNode *bn, uint64_t off, uint64_t len, int byte)
{
    uint8_t *buf = ioq_buf_alloc(len);
    int pending = 1;

    memset(buf, byte, len);
    bdrv_write(bn, off, len, buf, 0, io_cb, &pending);
    wait_for(&pending);
    ioq_buf_free(buf);
}

/* Give image @name (its own layer) @byte at [@off, @off + @len). */
static void fill_image(const char *name, uint64_t off, uint64_t len,
                       int byte)
{
    BlockNode *bn = open_qcow2(name);

    write_sync(bn, off, len, byte);
    test_close_sync(bn);
}

/* Is [@off, @off + @len) of @bn filled with @byte? */
static bool holds(BlockNode *bn, uint64_t off, uint64_t len, int byte)
{
    uint8_t *buf = ioq_buf_alloc(len);
    int pending = 1;
    bool ok = true;

    bdrv_read(bn, off, len, buf, io_cb, &pending);
    wait_for(&pending);
    for (uint64_t i = 0; i < len && ok; i++) {
        ok = buf[i] == byte;
    }
    ioq_buf_free(buf);
    return ok;
}

static BlockCopyConfig config(Owner *o, BlockNode *src, BlockNode *dst)
{
    BlockCopyConfig c = {
        .source = src, .target = dst, .len = LEN, .granularity = G,
        .chunk = 4 * G, .step = 2 * G, .max_ops = 4,
        .ops = &owner_ops, .opaque = o,
    };

    return c;
}

/* src holds data (each MiB its own byte), dst zeroes: a copy of it all. */
static BlockCopyConfig file_pair(Owner *o, BlockNode **src, BlockNode **dst)
{
    make_file("src", LEN, 1);
    make_file("dst", LEN, 0);
    *src = open_file("src");
    *dst = open_file("dst");
    return config(o, *src, *dst);
}

static void run(Owner *o)
{
    o->idle = false;
    block_copy_kick(o->bc);
    while (!o->idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(block_copy_busy(o->bc), 0);
}

static void close_pair(Owner *o, BlockNode *src, BlockNode *dst)
{
    block_copy_free(o->bc);
    test_close_sync(dst);
    test_close_sync(src);
}

/* Only the dirty ranges are copied; at most max_ops busy, and all used. */
static void test_copy_dirty(void **state)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);

    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, MiB);
    block_copy_set_dirty(o.bc, 3 * MiB + G, G);
    assert_int_equal(block_copy_dirty_bytes(o.bc), MiB + G);
    run(&o);
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_int_equal(block_copy_written(o.bc), MiB + G);
    assert_int_equal(block_copy_done_prefix(o.bc), LEN);
    assert_true(holds(dst, 0, MiB, 1));
    assert_true(holds(dst, MiB, 2 * MiB + G, 0));
    assert_true(holds(dst, 3 * MiB + G, G, 4));
    assert_true(holds(dst, 3 * MiB + 2 * G, MiB - 2 * G, 0));
    assert_int_equal(o.max_busy, c.max_ops);
    assert_int_equal(o.errors, 0);
    close_pair(&o, src, dst);
}

static void race_cb(void *opaque, int ret)
{
    Owner *o = opaque;

    assert_int_equal(ret, 0);
    /* marked once written, as QEMU's dirty bitmaps are */
    block_copy_set_dirty(o->bc, o->race_off, G);
    o->race_pending--;
}

/*
 * As a job's write notifier: the source changes under a running copy,
 * and the range is marked again.  Once idle, the target has the new data.
 */
static bool race_may_run(void *opaque)
{
    Owner *o = opaque;

    if (o->race_node && block_copy_written(o->bc) >= MiB) {
        o->race_buf = ioq_buf_alloc(G);
        memset(o->race_buf, 0x77, G);
        o->race_pending++;
        bdrv_write(o->race_node, o->race_off, G, o->race_buf, 0, race_cb, o);
        o->race_node = NULL;
    }
    return owner_may_run(opaque);
}

static const BlockCopyOps race_ops = {
    .may_run = race_may_run,
    .error = owner_error,
    .idle = owner_idle,
};

static void test_dirty_during_copy(void **state)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);

    c.ops = &race_ops;
    c.max_ops = 1;              /* the written range is behind the copy */
    o.bc = block_copy_new(&c);
    o.race_node = src;
    o.race_off = G;
    block_copy_set_dirty(o.bc, 0, LEN);
    run(&o);
    wait_for(&o.race_pending);
    assert_null(o.race_node);
    run(&o);                    /* what the write made dirty again */
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_int_equal(block_copy_written(o.bc), LEN + G);
    assert_true(holds(dst, 0, G, 1));
    assert_true(holds(dst, G, G, 0x77));
    assert_true(holds(dst, 2 * G, MiB - 2 * G, 1));
    assert_true(holds(dst, 3 * MiB, MiB, 4));
    ioq_buf_free(o.race_buf);
    close_pair(&o, src, dst);
}

/*
 * base <- mid <- top, each with a MiB of its own: from top down to base
 * (exclusive) only mid's and top's data is copied, read through top.
 */
static void test_alloc_skip_to_base(void **state)
{
    Owner o = { 0 };
    BlockNode *top;
    BlockNode *mid;
    BlockNode *dst;
    BlockCopyConfig c;

    create_qcow2("base.qcow2", NULL);
    create_qcow2("mid.qcow2", "base.qcow2");
    create_qcow2("top.qcow2", "mid.qcow2");
    fill_image("base.qcow2", 0, 2 * MiB, 0xba);
    fill_image("mid.qcow2", MiB, MiB, 0x3d);
    fill_image("top.qcow2", 2 * MiB + G, G, 0x70);
    top = open_qcow2("top.qcow2");
    mid = bdrv_backing(top);
    assert_non_null(mid);
    assert_non_null(bdrv_backing(mid));
    make_file("dst", LEN, 0);
    dst = open_file("dst");
    c = config(&o, top, dst);
    c.alloc_check = true;
    c.alloc_top = top;
    c.alloc_base = bdrv_backing(mid);
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, LEN);
    run(&o);
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_int_equal(block_copy_written(o.bc), MiB + G);
    assert_true(holds(dst, 0, MiB, 0));             /* base's: skipped */
    assert_true(holds(dst, MiB, MiB, 0x3d));
    assert_true(holds(dst, 2 * MiB, G, 0));
    assert_true(holds(dst, 2 * MiB + G, G, 0x70));
    assert_true(holds(dst, 2 * MiB + 2 * G, 2 * MiB - 2 * G, 0));
    block_copy_free(o.bc);
    test_close_sync(dst);
    test_close_sync(top);
}

/* An image with data in its second MiB only, copied onto 0xee. */
static void zeroes_case(BlockCopyZeroes mode, uint64_t written, int hole)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c;

    create_qcow2("z.qcow2", NULL);
    src = open_qcow2("z.qcow2");
    write_sync(src, MiB, MiB, 0x11);
    make_file("dst", LEN, 0);
    dst = open_file("dst");
    write_sync(dst, 0, LEN, 0xee);
    c = config(&o, src, dst);
    c.zeroes = mode;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, LEN);
    run(&o);
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_int_equal(block_copy_written(o.bc), written);
    assert_true(holds(dst, 0, MiB, hole));
    assert_true(holds(dst, MiB, MiB, 0x11));
    assert_true(holds(dst, 2 * MiB, 2 * MiB, hole));
    close_pair(&o, src, dst);
}

static void test_zeroes(void **state)
{
    zeroes_case(BLOCK_COPY_ZEROES_SKIP, MiB, 0xee);
    zeroes_case(BLOCK_COPY_ZEROES_WRITE, LEN, 0);
    zeroes_case(BLOCK_COPY_ZEROES_COPY, LEN, 0);
}

/*
 * A stream-like copy (top into itself, what base holds): a guest write
 * in flight as the copy starts, and one made once it runs, both win
 * over base's older data.
 */
static void test_guest_wins(void **state)
{
    Owner o = { 0 };
    BlockNode *top;
    BlockCopyConfig c;
    uint8_t *buf = ioq_buf_alloc(G);
    int pending = 1;

    create_qcow2("base.qcow2", NULL);
    create_qcow2("top.qcow2", "base.qcow2");
    fill_image("base.qcow2", 0, LEN, 0xba);
    top = open_qcow2("top.qcow2");
    c = config(&o, top, top);
    c.alloc_check = true;
    c.alloc_top = bdrv_backing(top);
    c.guest_wins = true;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, LEN);
    memset(buf, 0x9e, G);
    bdrv_write(top, G, G, buf, 0, io_cb, &pending);     /* in flight */
    o.idle = false;
    block_copy_kick(o.bc);
    write_sync(top, 5 * G, G, 0x9f);                    /* copy running */
    wait_for(&pending);
    while (!o.idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_true(holds(top, 0, G, 0xba));
    assert_true(holds(top, G, G, 0x9e));
    assert_true(holds(top, 2 * G, 3 * G, 0xba));
    assert_true(holds(top, 5 * G, G, 0x9f));
    assert_true(holds(top, 6 * G, LEN - 6 * G, 0xba));
    /* everything is the top's own now: base can go */
    bdrv_set_backing(top, NULL);
    assert_true(holds(top, 6 * G, LEN - 6 * G, 0xba));
    ioq_buf_free(buf);
    block_copy_free(o.bc);
    test_close_sync(top);
}

/*
 * An engine over all of src, whose target's writes fail with ENOSPC
 * (blkdebug under its qcow2).
 */
static BlockCopy *failing_pair(Owner *o, BlockNode **src, BlockNode **dst)
{
    g_autofree char *p = path_of("t.qcow2");
    BlockCopyConfig c;
    BlockCopy *bc;

    make_file("src", LEN, 1);
    *src = open_file("src");
    create_qcow2("t.qcow2", NULL);
    *dst = test_open_sync(json_pack(
        "{s:s,s:{s:s,s:[{s:s,s:i}],s:{s:s,s:s}}}", "driver", "qcow2",
        "file", "driver", "blkdebug", "inject-error", "event", "write_aio",
        "errno", ENOSPC, "image", "driver", "file", "filename", p));
    c = config(o, *src, *dst);
    bc = block_copy_new(&c);
    block_copy_set_dirty(bc, 0, LEN);
    return bc;
}

static void error_case(BlockCopyErrorResult result)
{
    Owner o = { .on_error = result };
    BlockNode *src;
    BlockNode *dst;

    o.bc = failing_pair(&o, &src, &dst);
    run(&o);
    assert_true(o.errors >= 1);
    assert_int_equal(o.last_error, -ENOSPC);
    assert_false(o.last_is_read);
    assert_int_equal(block_copy_written(o.bc), 0);
    if (result == BLOCK_COPY_ERROR_RETRY) {
        /* stopped at the first failure: nothing was done */
        assert_int_equal(block_copy_dirty_bytes(o.bc), LEN);
        assert_int_equal(block_copy_done_prefix(o.bc), 0);
        /* and goes on from there once the owner lets it */
        o.stop = false;
        o.errors = 0;
        run(&o);
        assert_true(o.errors >= 1);
        assert_int_equal(block_copy_dirty_bytes(o.bc), LEN);
    } else {
        /* every range failed and was given up */
        assert_true(o.errors >= 1);
        assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    }
    close_pair(&o, src, dst);
}

static void test_error_keeps_range(void **state)
{
    error_case(BLOCK_COPY_ERROR_RETRY);
}

static void test_error_skips_range(void **state)
{
    error_case(BLOCK_COPY_ERROR_SKIP);
}

/*
 * The owner's bitmap serves as the engine's: what the owner marks is
 * copied, it sees the engine take and clear bits, and keeps the bitmap.
 */
static void test_owner_bitmap(void **state)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);
    HBitmap *hb = hbitmap_new(LEN, G);

    c.dirty = hb;
    o.bc = block_copy_new(&c);
    hbitmap_set(hb, 2 * MiB, MiB);
    assert_int_equal(block_copy_dirty_bytes(o.bc), MiB);
    run(&o);
    assert_int_equal(hbitmap_count(hb), 0);
    assert_int_equal(block_copy_written(o.bc), MiB);
    assert_true(holds(dst, 0, 2 * MiB, 0));
    assert_true(holds(dst, 2 * MiB, MiB, 3));
    close_pair(&o, src, dst);
    hbitmap_set(hb, 0, G);
    assert_int_equal(hbitmap_count(hb), G);
    hbitmap_free(hb);
}

/* A new owner's hooks are asked from then on, the old one's no more. */
static void test_set_owner(void **state)
{
    Owner o = { .stop = true };
    Owner o2 = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);

    o.bc = o2.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, MiB);
    run(&o);                    /* the first owner lets nothing go */
    assert_int_equal(block_copy_written(o.bc), 0);
    block_copy_set_owner(o.bc, NULL, &owner_ops, &o2);
    o.idle = false;
    run(&o2);
    assert_false(o.idle);
    assert_int_equal(block_copy_written(o.bc), MiB);
    assert_true(holds(dst, 0, MiB, 1));
    close_pair(&o, src, dst);
}

/* A copy-before-write caller: what it saw when its range was done. */
typedef struct {
    Owner *o;
    int done;
    int ret;
    int order;                  /* among the callers, from 1 */
    uint64_t written;           /* block_copy_written() then */
    /* as a guest write held for it: overwrite the source now */
    BlockNode *src;
    uint64_t off;
    uint8_t *buf;
    int *pending;
} Cbw;

static int cbw_count;

static void cbw_cb(void *opaque, int ret)
{
    Cbw *w = opaque;

    w->done++;
    w->ret = ret;
    w->order = ++cbw_count;
    w->written = block_copy_written(w->o->bc);
    if (w->src && ret == 0) {
        /* the old data is on the target: the guest's write goes on */
        assert_true(block_copy_range_clean(w->o->bc, w->off, G));
        w->buf = ioq_buf_alloc(G);
        memset(w->buf, 0x55, G);
        (*w->pending)++;
        bdrv_write(w->src, w->off, G, w->buf, 0, io_cb, w->pending);
    }
}

static void wait_cbw(const Cbw *w)
{
    while (!w->done) {
        g_main_context_iteration(NULL, TRUE);
    }
}

/*
 * With the background stopped, a range is copied now and only it: a
 * few bytes take their whole granule, the rest stays dirty.
 */
static void test_now_copies_range(void **state)
{
    Owner o = { .stop = true };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);
    Cbw w = { .o = &o };

    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, LEN);
    assert_false(block_copy_range_clean(o.bc, 3 * MiB + G + 7, 10));
    block_copy_range_now(o.bc, 3 * MiB + G + 7, 10, cbw_cb, &w);
    wait_cbw(&w);
    assert_int_equal(w.done, 1);
    assert_int_equal(w.ret, 0);
    assert_int_equal(block_copy_written(o.bc), G);
    assert_int_equal(block_copy_dirty_bytes(o.bc), LEN - G);
    assert_true(block_copy_range_clean(o.bc, 3 * MiB + G, G));
    assert_false(block_copy_range_clean(o.bc, 3 * MiB, G + 1));
    assert_true(holds(dst, 3 * MiB + G, G, 4));
    assert_true(holds(dst, 3 * MiB, G, 0));
    assert_true(holds(dst, 3 * MiB + 2 * G, G, 0));
    /* a clean range: at once, nothing written */
    w.done = 0;
    block_copy_range_now(o.bc, 3 * MiB + G, G, cbw_cb, &w);
    wait_cbw(&w);
    assert_int_equal(w.ret, 0);
    assert_int_equal(block_copy_written(o.bc), G);
    assert_int_equal(block_copy_busy(o.bc), 0);
    /* the background, let go, copies the rest and only the rest */
    o.stop = false;
    run(&o);
    assert_int_equal(block_copy_written(o.bc), LEN);
    assert_true(holds(dst, 0, MiB, 1));
    assert_true(holds(dst, 3 * MiB, MiB, 4));
    close_pair(&o, src, dst);
}

/*
 * A guest write waits for the old data: one inside the background
 * operation's request in flight waits for that request, one further on
 * in the operation's area is copied ahead of it.  Both guest writes go
 * to the source once their callers are told; the target keeps the old
 * data and nothing is copied twice.
 */
static void test_now_waits_for_copy(void **state)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);
    Cbw in_flight = { .o = &o, .off = G };
    Cbw ahead = { .o = &o, .off = 12 * G };
    int pending = 0;

    c.max_ops = 1;
    c.chunk = MiB;
    in_flight.src = ahead.src = src;
    in_flight.pending = ahead.pending = &pending;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, LEN);
    o.idle = false;
    cbw_count = 0;
    block_copy_kick(o.bc);              /* reads [0, 2G) now */
    assert_int_equal(block_copy_busy(o.bc), 1);
    assert_false(block_copy_range_clean(o.bc, G, G));
    block_copy_range_now(o.bc, G, G, cbw_cb, &in_flight);
    block_copy_range_now(o.bc, 12 * G, G, cbw_cb, &ahead);
    assert_int_equal(in_flight.done + ahead.done, 0);
    while (!o.idle || !in_flight.done || !ahead.done) {
        g_main_context_iteration(NULL, TRUE);
    }
    wait_for(&pending);
    assert_int_equal(in_flight.ret, 0);
    assert_int_equal(ahead.ret, 0);
    /* the first waited for the request in flight, copied nothing again */
    assert_true(in_flight.written >= 2 * G);
    assert_true(in_flight.written <= 2 * G + G);
    /* the second did not wait for the background to get there */
    assert_true(ahead.written < 12 * G);
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_int_equal(block_copy_written(o.bc), LEN);
    assert_true(holds(dst, 0, MiB, 1));
    assert_true(holds(src, G, G, 0x55));
    assert_true(holds(src, 12 * G, G, 0x55));
    assert_true(holds(dst, MiB, MiB, 2));
    ioq_buf_free(in_flight.buf);
    ioq_buf_free(ahead.buf);
    close_pair(&o, src, dst);
}

/*
 * Overlapping requests wait for each other: the second copies only
 * what the first did not take, and is told after the first.
 */
static void test_now_overlapping(void **state)
{
    Owner o = { .stop = true };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);
    Cbw first = { .o = &o };
    Cbw second = { .o = &o };
    Cbw apart = { .o = &o };

    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, LEN);
    cbw_count = 0;
    block_copy_range_now(o.bc, 0, 4 * G, cbw_cb, &first);
    block_copy_range_now(o.bc, 2 * G, 4 * G, cbw_cb, &second);
    block_copy_range_now(o.bc, 2 * MiB, G, cbw_cb, &apart);
    assert_int_equal(block_copy_busy(o.bc), 3);
    wait_cbw(&first);
    wait_cbw(&second);
    wait_cbw(&apart);
    assert_true(first.order < second.order);
    assert_int_equal(first.ret, 0);
    assert_int_equal(second.ret, 0);
    assert_int_equal(block_copy_written(o.bc), 7 * G);
    assert_int_equal(block_copy_dirty_bytes(o.bc), LEN - 7 * G);
    assert_int_equal(block_copy_busy(o.bc), 0);
    assert_true(holds(dst, 0, 6 * G, 1));
    assert_true(holds(dst, 6 * G, G, 0));
    assert_true(holds(dst, 2 * MiB, G, 3));
    close_pair(&o, src, dst);
}

/* A failed copy goes to the caller, not the error hook; still dirty. */
static void test_now_error(void **state)
{
    Owner o = { .stop = true };
    BlockNode *src;
    BlockNode *dst;
    Cbw w = { .o = &o };

    o.bc = failing_pair(&o, &src, &dst);
    block_copy_range_now(o.bc, MiB, 3 * G, cbw_cb, &w);
    wait_cbw(&w);
    assert_int_equal(w.ret, -ENOSPC);
    assert_int_equal(o.errors, 0);
    assert_int_equal(block_copy_written(o.bc), 0);
    assert_int_equal(block_copy_dirty_bytes(o.bc), LEN);
    assert_int_equal(block_copy_busy(o.bc), 0);
    close_pair(&o, src, dst);
}

/* ---- with a job -------------------------------------------------------- */

static void noop_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    *(bool *)opaque = true;
}

/* Run the loop until nothing is ready to dispatch. */
static void settle(void)
{
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}

/*
 * Mirror's progress: each copied byte counts once copied, a range
 * copied again counts again, and len - offset is what is left (dirty,
 * in flight), as QEMU 7.2's query-block-jobs shows during a mirror.
 */
static void test_progress_done(void **state)
{
    Owner o = { .progress_ok = true };
    BlockJob job = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);

    c.job = o.job = &job;
    c.progress = BLOCK_COPY_PROGRESS_DONE;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, 2 * MiB);
    run(&o);
    assert_int_equal(job.job.progress_current, 2 * MiB);
    assert_int_equal(job.job.progress_total, 2 * MiB);
    block_copy_set_dirty(o.bc, G, G);   /* the guest wrote there */
    block_copy_set_dirty(o.bc, 3 * MiB, MiB);
    run(&o);
    assert_int_equal(job.job.progress_current, 3 * MiB + G);
    assert_int_equal(job.job.progress_total, 3 * MiB + G);
    assert_true(o.progress_ok);
    assert_int_equal(job.in_flight, 0);
    assert_true(holds(dst, 3 * MiB, MiB, 4));
    block_copy_free(o.bc);
    test_close_sync(src);
    test_close_sync(dst);
}

/* A raw node on blkdebug on a file, for breakpoints. */
static BlockNode *open_debug(const char *name)
{
    g_autofree char *p = path_of(name);

    return test_open_sync(json_pack(
        "{s:s,s:{s:s,s:{s:s,s:s}}}", "driver", "raw", "file", "driver",
        "blkdebug", "image", "driver", "file", "filename", p));
}

static void wait_suspended(BlockNode *bn, const char *tag)
{
    while (!bdrv_debug_is_suspended(bn, tag)) {
        g_main_context_iteration(NULL, TRUE);
    }
}

static void mark_cb(void *opaque, int ret)
{
    Owner *o = opaque;

    assert_int_equal(ret, 0);
    o->race_pending--;
}

/*
 * The guest writes @byte to [@off, @off + G) of @bn, marked dirty as it
 * starts (mirror's write notifier).
 */
static uint8_t *guest_write(Owner *o, BlockNode *bn, uint64_t off, int byte)
{
    uint8_t *buf = ioq_buf_alloc(G);

    memset(buf, byte, G);
    o->race_pending++;
    block_copy_set_dirty(o->bc, off, G);
    bdrv_write(bn, off, G, buf, 0, mark_cb, o);
    return buf;
}

/*
 * Clear after lock, as mirror: a guest write in flight when a copy
 * starts is waited for and its data copied once (its mark is cleared
 * under the lock); one that comes while the copy reads waits for the
 * read, and its mark survives: the range is copied again.
 */
static void test_clear_after_lock(void **state)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c;
    uint8_t *buf;

    make_file("src", LEN, 1);
    make_file("dst", LEN, 0);
    src = open_debug("src");
    dst = open_file("dst");
    c = config(&o, src, dst);
    c.lock_source = true;
    c.max_ops = 1;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, MiB);

    /* in flight before the copy: waited for, copied once */
    assert_int_equal(bdrv_debug_breakpoint(src, "write_aio", "w"), 0);
    buf = guest_write(&o, src, G, 0x55);
    wait_suspended(src, "w");
    o.idle = false;
    block_copy_kick(o.bc);
    settle();
    assert_int_equal(block_copy_written(o.bc), 0);  /* the lock waits */
    assert_int_equal(bdrv_debug_resume(src, "w"), 0);
    wait_for(&o.race_pending);
    while (!o.idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(block_copy_written(o.bc), MiB);
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_true(holds(dst, G, G, 0x55));
    ioq_buf_free(buf);

    /* while the copy reads: waits, and is copied again afterwards */
    block_copy_set_dirty(o.bc, MiB, MiB);
    assert_int_equal(bdrv_debug_breakpoint(src, "read_aio", "r"), 0);
    o.idle = false;
    block_copy_kick(o.bc);
    wait_suspended(src, "r");
    buf = guest_write(&o, src, MiB, 0x66);
    settle();
    assert_int_equal(o.race_pending, 1);            /* held by the lock */
    assert_int_equal(bdrv_debug_resume(src, "r"), 0);
    wait_for(&o.race_pending);
    while (!o.idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(block_copy_written(o.bc), 2 * MiB + G);
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_true(holds(dst, MiB, G, 0x66));
    assert_true(holds(dst, MiB + G, MiB - G, 2));
    assert_int_equal(o.errors, 0);
    ioq_buf_free(buf);
    block_copy_free(o.bc);
    test_close_sync(src);
    test_close_sync(dst);
}

/*
 * Under a speed limit below one request per slice, operations still go
 * one at a time: the first copy is counted and its delay waited before
 * the next starts (without the gate all four passed the limit
 * together), an idle operation takes an area only as it may pass (the
 * areas would sit out of the bitmap otherwise), and the whole takes
 * what the speed says.
 */
static void test_speed_paces_ops(void **state)
{
    Owner o = { 0 };
    BlockJob job = { .speed = MiB };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);
    gint64 t0 = g_get_monotonic_time();
    gint64 us;

    c.job = o.job = &job;
    c.zeroes = BLOCK_COPY_ZEROES_WRITE;     /* a status before each copy */
    job.slice_start_ns = t0 * 1000;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, MiB);
    run(&o);
    us = g_get_monotonic_time() - t0;
    assert_int_equal(block_copy_written(o.bc), MiB);
    assert_true(o.slept);
    assert_int_equal(o.first_sleep_bytes, c.step);
    /* 8 requests of 128 KiB at 1 MiB/s: the last goes at >= 0.8 s */
    assert_true(us >= 800 * 1000);
    assert_true(us < 5 * 1000 * 1000);
    /*
     * areas are taken as operations pass it: when the first delay
     * begins, the one that copied and at most the one that passed next
     * have theirs (not all four: the bitmap would be empty)
     */
    assert_true(o.first_sleep_dirty >= MiB - 2 * c.chunk);
    block_copy_free(o.bc);
    test_close_sync(src);
    test_close_sync(dst);
}

/*
 * Write-blocking: a guest write handed over waits for the operation
 * that has its granules, then goes to the target; one elsewhere goes
 * at once and clears the granules it covers whole, its partial ones
 * stay dirty for the background copy.
 */
static void test_write_blocking(void **state)
{
    Owner o = { .progress_ok = true };
    BlockJob job = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c;
    uint8_t *held = ioq_buf_alloc(G);
    uint8_t *free_buf = ioq_buf_alloc(2 * G);
    bool held_done = false;
    bool held_half_done = false;
    bool free_done = false;

    make_file("src", LEN, 1);
    make_file("dst", LEN, 0);
    src = open_debug("src");
    dst = open_file("dst");
    c = config(&o, src, dst);
    c.job = o.job = &job;
    c.progress = BLOCK_COPY_PROGRESS_DONE;
    c.lock_source = true;
    c.max_ops = 1;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, 4 * G);
    assert_int_equal(bdrv_debug_breakpoint(src, "read_aio", "r"), 0);
    o.idle = false;
    block_copy_kick(o.bc);
    wait_suspended(src, "r");       /* the operation has [0, 4G) */

    /*
     * In its area, not yet under its lock: the guest's source writes,
     * two over the same granule (the second waits for the first, and
     * neither for the other once the operation is done)
     */
    memset(held, 0x55, G);
    write_sync(src, 3 * G, G, 0x55);
    block_copy_set_dirty(o.bc, 3 * G, G);
    block_copy_write_blocking(o.bc, 3 * G, G / 2, held, 0, noop_cb,
                              &held_half_done);
    block_copy_write_blocking(o.bc, 3 * G, G, held, 0, noop_cb, &held_done);
    assert_int_equal(block_copy_active_writes(o.bc), 2);

    /* elsewhere, half a granule in: goes at once */
    memset(free_buf, 0x66, 2 * G);
    write_sync(src, 8 * G + G / 2, 2 * G, 0x66);
    block_copy_set_dirty(o.bc, 8 * G + G / 2, 2 * G);
    block_copy_write_blocking(o.bc, 8 * G + G / 2, 2 * G, free_buf, 0,
                              noop_cb, &free_done);
    while (!free_done) {
        g_main_context_iteration(NULL, TRUE);
    }
    settle();
    assert_false(held_done);        /* behind the operation */
    assert_false(held_half_done);
    assert_true(holds(dst, 8 * G + G / 2, 2 * G, 0x66));
    /* the first two granules are under the lock; 8G and 10G partial */
    assert_int_equal(block_copy_dirty_bytes(o.bc), 4 * G);
    check_progress(&o);

    assert_int_equal(bdrv_debug_resume(src, "r"), 0);
    while (!o.idle || !held_done || !held_half_done) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(block_copy_active_writes(o.bc), 0);
    assert_int_equal(block_copy_dirty_bytes(o.bc), 0);
    assert_true(holds(dst, 0, 3 * G, 1));
    assert_true(holds(dst, 3 * G, G, 0x55));
    assert_true(holds(dst, 4 * G, 4 * G, 0));
    assert_true(holds(dst, 8 * G, G / 2, 1));
    assert_true(holds(dst, 8 * G + G / 2, 2 * G, 0x66));
    assert_true(holds(dst, 10 * G + G / 2, G / 2, 1));
    /*
     * 4G copied, 3.5G written through, the two partial granules copied
     */
    assert_int_equal(block_copy_written(o.bc), 9 * G + G / 2);
    assert_int_equal(job.job.progress_current, 9 * G + G / 2);
    assert_int_equal(job.job.progress_total, 9 * G + G / 2);
    assert_true(o.progress_ok);
    ioq_buf_free(held);
    ioq_buf_free(free_buf);
    block_copy_free(o.bc);
    test_close_sync(src);
    test_close_sync(dst);
}

/*
 * Mirror's pace, rate_burst: the operations that start together all
 * pass the limit before the first copy is counted (a buffer's worth
 * goes out before the first delay, as QEMU's mirror).
 */
static void test_speed_burst(void **state)
{
    Owner o = { 0 };
    BlockJob job = { .speed = MiB };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);

    c.job = o.job = &job;
    c.zeroes = BLOCK_COPY_ZEROES_WRITE;
    c.rate_burst = true;
    c.chunk = c.step;
    job.slice_start_ns = g_get_monotonic_time() * 1000;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 0, MiB);
    run(&o);
    assert_int_equal(block_copy_written(o.bc), MiB);
    assert_true(o.slept);
    assert_int_equal(o.first_sleep_bytes, c.max_ops * c.step);
    block_copy_free(o.bc);
    test_close_sync(src);
    test_close_sync(dst);
}

/*
 * A target that must not get part of a cluster written (area_align):
 * one dirty granule is copied with the rest of its cluster; zeroes in
 * less than a target cluster (zero_align) go as data; a write-blocking
 * write of zeroes (no buffer) is a zero write on the target.
 */
static void test_aligned_areas(void **state)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c;
    bool done = false;

    create_qcow2("z.qcow2", NULL);
    src = open_qcow2("z.qcow2");
    write_sync(src, 4 * G, 4 * G, 0x11);
    write_sync(src, 8 * G, G, 0x12);
    make_file("dst", LEN, 0);
    dst = open_file("dst");
    write_sync(dst, 0, LEN, 0xee);
    c = config(&o, src, dst);
    c.zeroes = BLOCK_COPY_ZEROES_WRITE;
    c.area_align = 4 * G;
    c.zero_align = 4 * G;
    o.bc = block_copy_new(&c);
    block_copy_set_dirty(o.bc, 5 * G, G);
    run(&o);
    assert_int_equal(block_copy_written(o.bc), 4 * G);
    assert_true(holds(dst, 0, 4 * G, 0xee));
    assert_true(holds(dst, 4 * G, 4 * G, 0x11));
    /* data then zeroes in one cluster: the zeroes are copied as data */
    block_copy_set_dirty(o.bc, 8 * G, G);
    run(&o);
    assert_int_equal(block_copy_written(o.bc), 8 * G);
    assert_true(holds(dst, 8 * G, G, 0x12));
    assert_true(holds(dst, 9 * G, 3 * G, 0));
    assert_true(holds(dst, 12 * G, G, 0xee));
    block_copy_write_blocking(o.bc, 12 * G, G, NULL, 0, noop_cb, &done);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_true(holds(dst, 12 * G, G, 0));
    assert_true(holds(dst, 13 * G, G, 0xee));
    assert_int_equal(o.errors, 0);
    settle();
    block_copy_free(o.bc);
    test_close_sync(dst);
    test_close_sync(src);
}

/* A write-blocking write's callback: its place among the callers. */
typedef struct {
    BlockCopy *bc;
    int order;
    unsigned busy;              /* block_copy_busy() then */
    uint64_t written;           /* block_copy_written() then */
} Told;

static void told_cb(void *opaque, int ret)
{
    Told *t = opaque;

    assert_int_equal(ret, 0);
    t->order = ++cbw_count;
    t->busy = block_copy_busy(t->bc);
    t->written = block_copy_written(t->bc);
}

/*
 * One wait for both kinds of request: a write-blocking write and then
 * a copy-before-write range over the same granule queue behind the
 * operation that has it and go in their order (the range goes once the
 * write is on the target, and finds the granule it covered clean).  And an operation gives back what
 * it is done with as it goes: a write further on in its area waits for
 * its requests to get past it, not for the whole area.
 */
static void test_one_wait(void **state)
{
    Owner o = { 0 };
    BlockNode *src;
    BlockNode *dst;
    BlockCopyConfig c = file_pair(&o, &src, &dst);
    uint8_t *buf = ioq_buf_alloc(G);
    Told wrote = { 0 };
    Told later = { 0 };
    Cbw range = { .o = &o };
    uint64_t before;

    c.max_ops = 1;
    c.chunk = MiB;
    o.bc = wrote.bc = later.bc = block_copy_new(&c);
    memset(buf, 0x55, G);
    block_copy_set_dirty(o.bc, 0, LEN);
    o.idle = false;
    cbw_count = 0;
    block_copy_kick(o.bc);              /* has [0, MiB), reads [0, 2G) */
    block_copy_write_blocking(o.bc, G, G, buf, 0, told_cb, &wrote);
    block_copy_range_now(o.bc, G, G, cbw_cb, &range);
    assert_int_equal(wrote.order + range.done, 0);
    while (!o.idle || !range.done || !wrote.order) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(range.ret, 0);
    /* the range went once the write was on the target: nothing to copy */
    assert_int_equal(range.written, 2 * G + G);
    assert_int_equal(wrote.written, 2 * G + G);
    assert_true(holds(dst, 0, G, 1));
    assert_true(holds(dst, G, G, 0x55));
    assert_true(holds(dst, 2 * G, MiB - 2 * G, 1));

    before = block_copy_written(o.bc);
    block_copy_set_dirty(o.bc, 0, LEN);
    o.idle = false;
    block_copy_kick(o.bc);              /* has [0, MiB) again */
    block_copy_write_blocking(o.bc, 8 * G, G, buf, 0, told_cb, &later);
    while (!o.idle || !later.order) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(later.busy, 1);
    assert_true(later.written < before + MiB);
    assert_true(holds(dst, 8 * G, G, 0x55));
    assert_int_equal(block_copy_active_writes(o.bc), 0);
    assert_int_equal(o.errors, 0);
    ioq_buf_free(buf);
    close_pair(&o, src, dst);
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qmpd-copy-XXXXXX", NULL);
    return bdrv_init(NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    const char *names[] = { "src", "dst", "base.qcow2", "mid.qcow2",
                            "top.qcow2", "z.qcow2", "t.qcow2" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *p = path_of(names[i]);

        unlink(p);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_dirty),
        cmocka_unit_test(test_dirty_during_copy),
        cmocka_unit_test(test_alloc_skip_to_base),
        cmocka_unit_test(test_zeroes),
        cmocka_unit_test(test_guest_wins),
        cmocka_unit_test(test_error_keeps_range),
        cmocka_unit_test(test_error_skips_range),
        cmocka_unit_test(test_owner_bitmap),
        cmocka_unit_test(test_set_owner),
        cmocka_unit_test(test_now_copies_range),
        cmocka_unit_test(test_now_waits_for_copy),
        cmocka_unit_test(test_now_overlapping),
        cmocka_unit_test(test_now_error),
        cmocka_unit_test(test_progress_done),
        cmocka_unit_test(test_clear_after_lock),
        cmocka_unit_test(test_speed_paces_ops),
        cmocka_unit_test(test_write_blocking),
        cmocka_unit_test(test_speed_burst),
        cmocka_unit_test(test_aligned_areas),
        cmocka_unit_test(test_one_wait),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
