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
 * job: test-copy-job.c.
 */
#include "config.h"

#include "tests/unit/copy-fixture.h"

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
    };

    return cmocka_run_group_tests(tests, copy_setup, copy_teardown);
}
