/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine (block/jobs/copy.c) with a job (a bare BlockJob: its
 * progress, speed and I/O count are plain fields): it reports mirror's
 * progress, paces operations one after the other under a speed limit,
 * and, as mirror, clears dirty bits under a lock on the source and
 * copies a guest's write-blocking writes to the target, which wait in
 * one queue with copy-before-write ranges.
 */
#include "config.h"

#include "tests/unit/copy-fixture.h"

/* ---- with a job -------------------------------------------------------- */

static void noop_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    *(bool *)opaque = true;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_done),
        cmocka_unit_test(test_clear_after_lock),
        cmocka_unit_test(test_speed_paces_ops),
        cmocka_unit_test(test_write_blocking),
        cmocka_unit_test(test_speed_burst),
        cmocka_unit_test(test_aligned_areas),
        cmocka_unit_test(test_one_wait),
    };

    return cmocka_run_group_tests(tests, copy_setup, copy_teardown);
}
