/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine (block/jobs/copy.c) in sink mode, as block migration
 * drives it: no target, what is read goes to the owner's sink (zero
 * runs as such), only what the chain holds above a base, each request
 * under a range lock on the source from its status query to the end of
 * its read, operations started only as the owner's admit hook lets
 * them in, and each one's end reported with what of it went on.
 */
#include "config.h"

#include "tests/unit/copy-fixture.h"

/* What the sink got: a run of one byte value, or a zero run. */
typedef struct {
    uint64_t off;
    uint64_t len;
    int byte;                   /* -1: handed as a zero run */
} Piece;

typedef struct {
    Owner o;                    /* first: the fixture's hooks take it */
    GArray *pieces;             /* Piece */
    uint64_t step;              /* no request is longer */
    int sink_ret;               /* what the sink returns */
    int *write_pending;         /* a guest write's, seen by the sink */
    int pending_at_sink;
    bool budgeted;              /* admit only while budget lasts */
    unsigned budget;
    unsigned admitted;
    uint64_t admitted_bytes;
    uint64_t retired_bytes;
    uint64_t retired_copied;
    GArray *areas;              /* Piece: what admit was asked for */
} Sink;

/* Each request, cut into runs of one byte value. */
static int sink_hook(void *opaque, uint64_t off, uint64_t len,
                     const void *buf)
{
    Sink *k = opaque;
    const uint8_t *p = buf;
    uint64_t i = 0;

    assert_true(len > 0 && len <= k->step);
    if (k->write_pending) {
        k->pending_at_sink = *k->write_pending;
    }
    while (i < len) {
        Piece pc = { .off = off + i, .byte = p ? p[i] : -1 };
        uint64_t j = p ? i + 1 : len;

        while (j < len && p[j] == p[i]) {
            j++;
        }
        pc.len = j - i;
        g_array_append_val(k->pieces, pc);
        i = j;
    }
    return k->sink_ret;
}

static bool admit_hook(void *opaque, uint64_t off, uint64_t len)
{
    Sink *k = opaque;
    Piece a = { .off = off, .len = len };

    if (k->budgeted && !k->budget) {
        return false;
    }
    if (k->budgeted) {
        k->budget--;
    }
    k->admitted++;
    k->admitted_bytes += len;
    g_array_append_val(k->areas, a);
    return true;
}

static void retire_hook(void *opaque, uint64_t len, uint64_t copied)
{
    Sink *k = opaque;

    assert_true(copied <= len);
    k->retired_bytes += len;
    k->retired_copied += copied;
}

static const BlockCopyOps sink_ops = {
    .may_run = owner_may_run,
    .error = owner_error,
    .idle = owner_idle,
    .sink = sink_hook,
    .admit = admit_hook,
    .retire = retire_hook,
};

static BlockCopyConfig sink_config(Sink *k, BlockNode *src)
{
    BlockCopyConfig c = config(&k->o, src, NULL);

    k->pieces = g_array_new(FALSE, FALSE, sizeof(Piece));
    k->areas = g_array_new(FALSE, FALSE, sizeof(Piece));
    c.ops = &sink_ops;
    c.opaque = k;
    c.lock_source = true;
    k->step = c.step;
    return c;
}

/* An engine in sink mode over the file "src" (each MiB its own byte). */
static BlockCopyConfig sink_file(Sink *k, BlockNode **src)
{
    BlockCopyConfig c;

    make_file("src", LEN, 1);
    *src = open_file("src");
    c = sink_config(k, *src);
    k->o.bc = block_copy_new(&c);
    return c;
}

static void sink_free(Sink *k)
{
    block_copy_free(k->o.bc);
    g_array_free(k->pieces, TRUE);
    g_array_free(k->areas, TRUE);
}

/* Bytes the sink got as data of @byte (-1: as zero runs). */
static uint64_t sunk(const Sink *k, int byte)
{
    uint64_t n = 0;

    for (guint i = 0; i < k->pieces->len; i++) {
        const Piece *p = &g_array_index(k->pieces, Piece, i);

        if (p->byte == byte) {
            n += p->len;
        }
    }
    return n;
}

/* Did the sink get [@off, @off + @len) whole, as @byte? */
static bool sunk_range(const Sink *k, uint64_t off, uint64_t len, int byte)
{
    uint64_t covered = 0;

    for (guint i = 0; i < k->pieces->len; i++) {
        const Piece *p = &g_array_index(k->pieces, Piece, i);
        uint64_t lo = MAX(p->off, off);
        uint64_t hi = MIN(p->off + p->len, off + len);

        if (lo < hi) {
            if (p->byte != byte) {
                return false;
            }
            covered += hi - lo;
        }
    }
    return covered == len;
}

/* What is dirty goes to the sink, once, and nothing is written. */
static void test_sink_gets_data(void **state)
{
    Sink k = { 0 };
    BlockNode *src;

    sink_file(&k, &src);
    block_copy_set_dirty(k.o.bc, 0, MiB);
    block_copy_set_dirty(k.o.bc, 3 * MiB + G, G);
    run(&k.o);
    assert_int_equal(block_copy_dirty_bytes(k.o.bc), 0);
    assert_int_equal(block_copy_written(k.o.bc), MiB + G);
    assert_int_equal(sunk(&k, 1), MiB);
    assert_int_equal(sunk(&k, 4), G);
    assert_true(sunk_range(&k, 0, MiB, 1));
    assert_true(sunk_range(&k, 3 * MiB + G, G, 4));
    /* every area admitted and retired */
    assert_int_equal(k.admitted_bytes, MiB + G);
    assert_int_equal(k.retired_bytes, MiB + G);
    assert_int_equal(k.retired_copied, MiB + G);
    assert_int_equal(k.o.errors, 0);
    sink_free(&k);
    test_close_sync(src);
}

/*
 * Data in the second MiB only: with ZEROES_WRITE the rest goes to the
 * sink as zero runs, with ZEROES_SKIP not at all, with ZEROES_COPY as
 * data that reads zeroes.
 */
static void zero_case(BlockCopyZeroes mode, uint64_t runs, uint64_t zeroes)
{
    Sink k = { 0 };
    BlockNode *src;
    BlockCopyConfig c;

    create_qcow2("z.qcow2", NULL);
    src = open_qcow2("z.qcow2");
    write_sync(src, MiB, MiB, 0x11);
    c = sink_config(&k, src);
    c.zeroes = mode;
    k.o.bc = block_copy_new(&c);
    block_copy_set_dirty(k.o.bc, 0, LEN);
    run(&k.o);
    assert_int_equal(block_copy_dirty_bytes(k.o.bc), 0);
    assert_int_equal(sunk(&k, 0x11), MiB);
    assert_true(sunk_range(&k, MiB, MiB, 0x11));
    assert_int_equal(sunk(&k, -1), runs);
    assert_int_equal(sunk(&k, 0), zeroes);
    assert_int_equal(k.retired_bytes, LEN);
    assert_int_equal(k.retired_copied, MiB + runs + zeroes);
    sink_free(&k);
    test_close_sync(src);
}

static void test_sink_zero_runs(void **state)
{
    zero_case(BLOCK_COPY_ZEROES_WRITE, 3 * MiB, 0);
    zero_case(BLOCK_COPY_ZEROES_SKIP, 0, 0);
    zero_case(BLOCK_COPY_ZEROES_COPY, 0, 3 * MiB);
}

/*
 * Block migration's -i: only what top holds above its backing file
 * goes; the skipped part of each area is retired as not copied.
 */
static void test_sink_skips_to_base(void **state)
{
    Sink k = { 0 };
    BlockNode *top;
    BlockCopyConfig c;

    create_qcow2("base.qcow2", NULL);
    create_qcow2("top.qcow2", "base.qcow2");
    fill_image("base.qcow2", 0, LEN, 0xba);
    fill_image("top.qcow2", MiB + G, 2 * G, 0x70);
    top = open_qcow2("top.qcow2");
    c = sink_config(&k, top);
    c.alloc_check = true;
    c.alloc_top = top;
    c.alloc_base = bdrv_backing(top);
    k.o.bc = block_copy_new(&c);
    block_copy_set_dirty(k.o.bc, 0, LEN);
    run(&k.o);
    assert_int_equal(block_copy_dirty_bytes(k.o.bc), 0);
    assert_int_equal(block_copy_written(k.o.bc), 2 * G);
    assert_int_equal(sunk(&k, 0x70), 2 * G);
    assert_true(sunk_range(&k, MiB + G, 2 * G, 0x70));
    assert_int_equal(sunk(&k, 0xba), 0);
    assert_int_equal(k.retired_bytes, LEN);
    assert_int_equal(k.retired_copied, 2 * G);
    sink_free(&k);
    test_close_sync(top);
}

static void write_done_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    (*(int *)opaque)--;
}

/*
 * The range lock, held from the status query to the end of the read: a
 * guest write in flight as a request starts is waited for (its data
 * goes to the sink, not the old), and one that comes while the request
 * reads waits for the read (the sink gets the old data, before the
 * write is done).
 */
static void test_sink_lock_across_read(void **state)
{
    Sink k = { 0 };
    BlockNode *src;
    BlockCopyConfig c;
    uint8_t *buf = ioq_buf_alloc(G);
    int pending = 1;

    make_file("src", LEN, 1);
    src = open_debug("src");
    c = sink_config(&k, src);
    c.max_ops = 1;
    c.zeroes = BLOCK_COPY_ZEROES_WRITE;     /* a status query, too */
    k.o.bc = block_copy_new(&c);
    block_copy_set_dirty(k.o.bc, 0, 2 * G);

    /* in flight before: the request waits, then sends the new data */
    assert_int_equal(bdrv_debug_breakpoint(src, "write_aio", "w"), 0);
    memset(buf, 0x55, G);
    bdrv_write(src, G, G, buf, 0, write_done_cb, &pending);
    wait_suspended(src, "w");
    k.o.idle = false;
    block_copy_kick(k.o.bc);
    settle();
    assert_int_equal(k.pieces->len, 0);     /* the lock waits */
    assert_int_equal(bdrv_debug_resume(src, "w"), 0);
    wait_for(&pending);
    while (!k.o.idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_true(sunk_range(&k, 0, G, 1));
    assert_true(sunk_range(&k, G, G, 0x55));

    /* while it reads: the write waits; the sink gets the old data */
    g_array_set_size(k.pieces, 0);
    block_copy_set_dirty(k.o.bc, MiB, G);
    assert_int_equal(bdrv_debug_breakpoint(src, "read_aio", "r"), 0);
    k.o.idle = false;
    block_copy_kick(k.o.bc);
    wait_suspended(src, "r");
    memset(buf, 0x66, G);
    pending = 1;
    k.write_pending = &pending;
    bdrv_write(src, MiB, G, buf, 0, write_done_cb, &pending);
    settle();
    assert_int_equal(pending, 1);           /* held by the lock */
    assert_int_equal(bdrv_debug_resume(src, "r"), 0);
    wait_for(&pending);
    while (!k.o.idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(k.pending_at_sink, 1); /* sent before it landed */
    assert_true(sunk_range(&k, MiB, G, 2));
    assert_true(holds(src, MiB, G, 0x66));
    assert_int_equal(k.o.errors, 0);
    ioq_buf_free(buf);
    sink_free(&k);
    test_close_sync(src);
}

/*
 * -i's race: a guest write to a cluster top does not hold yet, in
 * flight (its L2 entry not written) as a request starts.  The status
 * query waits for it under the lock, so the cluster is sent, not
 * skipped as the base's.
 */
static void test_sink_status_under_lock(void **state)
{
    g_autofree char *p = path_of("top.qcow2");
    Sink k = { 0 };
    BlockNode *top;
    BlockCopyConfig c;
    uint8_t *buf = ioq_buf_alloc(G);
    int pending = 1;

    create_qcow2("base.qcow2", NULL);
    create_qcow2("top.qcow2", "base.qcow2");
    fill_image("base.qcow2", 0, LEN, 0xba);
    top = test_open_sync(json_pack(
        "{s:s,s:{s:s,s:{s:s,s:s}}}", "driver", "qcow2", "file", "driver",
        "blkdebug", "image", "driver", "file", "filename", p));
    c = sink_config(&k, top);
    c.max_ops = 1;
    c.alloc_check = true;
    c.alloc_top = top;
    c.alloc_base = bdrv_backing(top);
    assert_non_null(c.alloc_base);
    k.o.bc = block_copy_new(&c);
    block_copy_set_dirty(k.o.bc, 0, 4 * G);
    assert_int_equal(bdrv_debug_breakpoint(top, "write_aio", "w"), 0);
    memset(buf, 0x77, G);
    bdrv_write(top, 2 * G, G, buf, 0, write_done_cb, &pending);
    wait_suspended(top, "w");
    k.o.idle = false;
    block_copy_kick(k.o.bc);
    settle();
    assert_int_equal(k.pieces->len, 0);
    assert_int_equal(bdrv_debug_resume(top, "w"), 0);
    wait_for(&pending);
    while (!k.o.idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_true(sunk_range(&k, 2 * G, G, 0x77));
    assert_int_equal(sunk(&k, 0xba), 0);
    assert_int_equal(block_copy_written(k.o.bc), G);
    ioq_buf_free(buf);
    sink_free(&k);
    test_close_sync(top);
}

/* Run the loop until no operation is busy (the owner may hold more). */
static void drain(Sink *k)
{
    while (block_copy_busy(k->o.bc)) {
        g_main_context_iteration(NULL, TRUE);
    }
}

/*
 * Backpressure: operations start only as admit lets them, in order,
 * each taking an area of at most a chunk; a refusal leaves the rest
 * dirty and idle is not reported while work is left; a later kick
 * goes on.
 */
static void test_sink_admit(void **state)
{
    Sink k = { .budgeted = true, .budget = 2 };
    BlockNode *src;
    BlockCopyConfig c;

    c = sink_file(&k, &src);
    block_copy_set_dirty(k.o.bc, 0, LEN);
    block_copy_kick(k.o.bc);
    drain(&k);
    assert_false(k.o.idle);
    assert_int_equal(k.admitted, 2);
    assert_int_equal(g_array_index(k.areas, Piece, 0).off, 0);
    assert_int_equal(g_array_index(k.areas, Piece, 0).len, c.chunk);
    assert_int_equal(g_array_index(k.areas, Piece, 1).off, c.chunk);
    assert_int_equal(block_copy_written(k.o.bc), 2 * c.chunk);
    assert_int_equal(block_copy_dirty_bytes(k.o.bc), LEN - 2 * c.chunk);
    assert_int_equal(k.retired_copied, 2 * c.chunk);
    /* nothing more without the owner's word */
    block_copy_kick(k.o.bc);
    settle();
    assert_int_equal(k.admitted, 2);
    assert_int_equal(block_copy_busy(k.o.bc), 0);
    k.budgeted = false;
    run(&k.o);
    assert_int_equal(block_copy_written(k.o.bc), LEN);
    assert_int_equal(k.admitted_bytes, LEN);
    assert_int_equal(k.retired_bytes, LEN);
    for (int i = 0; i < LEN / MiB; i++) {
        assert_true(sunk_range(&k, i * MiB, MiB, i + 1));
    }
    assert_true(k.o.max_busy <= c.max_ops);
    sink_free(&k);
    test_close_sync(src);
}

/* A failing sink is a failed write: the owner's error hook, range kept. */
static void test_sink_error(void **state)
{
    Sink k = { .sink_ret = -EPIPE };
    BlockNode *src;

    sink_file(&k, &src);
    block_copy_set_dirty(k.o.bc, 0, MiB);
    run(&k.o);
    assert_true(k.o.errors >= 1);
    assert_int_equal(k.o.last_error, -EPIPE);
    assert_false(k.o.last_is_read);
    assert_int_equal(block_copy_written(k.o.bc), 0);
    assert_int_equal(block_copy_dirty_bytes(k.o.bc), MiB);
    assert_int_equal(k.retired_copied, 0);
    assert_int_equal(k.retired_bytes, k.admitted_bytes);
    sink_free(&k);
    test_close_sync(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sink_gets_data),
        cmocka_unit_test(test_sink_zero_runs),
        cmocka_unit_test(test_sink_skips_to_base),
        cmocka_unit_test(test_sink_lock_across_read),
        cmocka_unit_test(test_sink_status_under_lock),
        cmocka_unit_test(test_sink_admit),
        cmocka_unit_test(test_sink_error),
    };

    return cmocka_run_group_tests(tests, copy_setup, copy_teardown);
}
