/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine's background operations (copy.h).  Operations live in
 * a fixed array and walk their area request by request; each request is
 * a chain of callbacks (source lock, allocation, zeroes, lock and target
 * status, read, write or sink) that ends in piece_done() or op_failed().  The
 * chain may complete synchronously (a null-co node, a cached status), so
 * starting operations goes through one loop that notes, instead of
 * recursing into, kicks from inside it.  Which granules an operation has
 * and who waits for them is copy-wait.c's.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/jobs/copy-int.h"
#include "block/jobs/copy.h"
#include "util/hbitmap.h"

static void op_request(CopyOp *op);
static void source_locked_cb(void *opaque, BdrvRangeLock *lock);
static void rate_release(CopyOp *op);

BlockCopy *block_copy_new(const BlockCopyConfig *cfg)
{
    BlockCopy *bc = g_new0(BlockCopy, 1);
    uint64_t bufsize = cfg->step;

    g_assert(!(cfg->lock_source && cfg->guest_wins));
    /* sink mode: the owner consumes what is read, nothing is written */
    g_assert(cfg->target || (cfg->ops->sink && !cfg->guest_wins));
    bc->cfg = *cfg;
    bc->dirty = cfg->dirty ? cfg->dirty : hbitmap_new(cfg->len,
                                                      cfg->granularity);
    bc->taken = hbitmap_new(cfg->len, cfg->granularity);
    g_queue_init(&bc->waiting);
    g_queue_init(&bc->now);
    bc->op = g_new0(CopyOp, cfg->max_ops);
    for (unsigned i = 0; i < cfg->max_ops; i++) {
        bc->op[i].bc = bc;
        bc->op[i].buf = ioq_buf_alloc(bufsize);
    }
    if (cfg->job) {
        cfg->job->copy = bc;
    }
    return bc;
}

void block_copy_free(BlockCopy *bc)
{
    if (!bc) {
        return;
    }
    g_assert(!bc->busy);
    g_assert(!bc->active_writes);
    if (bc->kick_source) {
        g_source_remove(bc->kick_source);
    }
    if (bc->cfg.job) {
        bc->cfg.job->copy = NULL;
    }
    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        ioq_buf_free(bc->op[i].buf);
    }
    g_free(bc->op);
    hbitmap_free(bc->taken);
    if (!bc->cfg.dirty) {
        hbitmap_free(bc->dirty);
    }
    g_free(bc);
}

void block_copy_set_dirty(BlockCopy *bc, uint64_t off, uint64_t len)
{
    hbitmap_set(bc->dirty, off, len);
}

uint64_t block_copy_dirty_bytes(const BlockCopy *bc)
{
    return hbitmap_count(bc->dirty);
}

unsigned block_copy_busy(const BlockCopy *bc)
{
    return bc->busy;
}

uint64_t block_copy_written(const BlockCopy *bc)
{
    return bc->written;
}

bool block_copy_is_dirty(const BlockCopy *bc, uint64_t off)
{
    return hbitmap_get(bc->dirty, off);
}

uint64_t block_copy_in_flight_bytes(const BlockCopy *bc)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        const CopyOp *op = &bc->op[i];

        if (op->busy && op->cleared_end > op->cur) {
            n += op->cleared_end - op->cur;
        }
    }
    return n + block_copy_now_bytes(bc);
}

uint64_t block_copy_remaining(const BlockCopy *bc)
{
    return hbitmap_count(bc->dirty) + block_copy_in_flight_bytes(bc)
        + bc->active_bytes;
}

uint64_t block_copy_done_prefix(const BlockCopy *bc)
{
    int64_t d = hbitmap_next_dirty(bc->dirty, 0);
    uint64_t p = d < 0 ? bc->cfg.len : (uint64_t)d;

    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        if (bc->op[i].busy) {
            p = MIN(p, bc->op[i].cur);
        }
    }
    return MIN(p, block_copy_now_low(bc));
}

/* What the progress mode counts (it never goes backwards). */
static uint64_t progress_count(const BlockCopy *bc)
{
    switch (bc->cfg.progress) {
    case BLOCK_COPY_PROGRESS_WRITTEN:
        return bc->written;
    case BLOCK_COPY_PROGRESS_DONE:
        return bc->done;
    default:
        return block_copy_done_prefix(bc);
    }
}

void block_copy_report_progress(BlockCopy *bc)
{
    Job *job;
    uint64_t c;

    if (!bc->cfg.job) {
        return;
    }
    job = &bc->cfg.job->job;
    c = progress_count(bc);
    if (c > bc->reported) {
        job_progress_update(job, c - bc->reported);
        bc->reported = c;
    }
    if (bc->cfg.progress != BLOCK_COPY_PROGRESS_PREFIX) {
        job_progress_set_remaining(job, block_copy_remaining(bc));
    }
}

static bool may_run(BlockCopy *bc)
{
    return bc->cfg.ops->may_run(bc->cfg.opaque);
}

/* The operation is over; what it did not do is dirty again. */
static void op_end(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (op->cur < op->end) {
        hbitmap_set(bc->dirty, op->cur, op->end - op->cur);
    }
    op->busy = false;
    bc->busy--;
    block_copy_release(bc, op->start, op->end);
    block_copy_report_progress(bc);
    if (bc->cfg.ops->retire) {
        bc->cfg.ops->retire(bc->cfg.opaque, op->taken_len, op->copied);
    }
    block_copy_kick(bc);
}

static void io_begin(BlockCopy *bc)
{
    if (bc->cfg.job) {
        block_job_io_begin(bc->cfg.job);
    }
}

static void io_end(BlockCopy *bc)
{
    if (bc->cfg.job) {
        block_job_io_end(bc->cfg.job);
    }
}

static void unlock(CopyOp *op)
{
    if (op->lock) {
        bdrv_range_unlock(op->lock);
        op->lock = NULL;
    }
}

/*
 * Granules below the next request (whole units of area_align) go back
 * at once: a copy-before-write range or a write-blocking write there
 * need not wait for the rest of the area.
 */
static void give_back_done(CopyOp *op)
{
    BlockCopy *bc = op->bc;
    uint64_t unit = MAX(bc->cfg.granularity, bc->cfg.area_align);
    uint64_t lo = MIN(op->cur / unit * unit, op->end);

    if (op->now || lo <= op->start) {
        return;
    }
    block_copy_release(bc, op->start, lo);
    op->start = lo;
    if (!g_queue_is_empty(&bc->waiting)) {
        /* the operation is busy: no idle hook can run in there */
        block_copy_waits_retry(bc);
    }
}

/* The request is done (copied or skipped): on to the next. */
static void piece_done(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    unlock(op);
    io_end(bc);
    rate_release(op);
    bc->done += op->n;
    op->cur = MAX(op->cur, op->off + op->n);
    give_back_done(op);
    block_copy_report_progress(bc);
    block_copy_op_step(op);
}

static void op_failed(CopyOp *op, bool is_read, int ret)
{
    BlockCopy *bc = op->bc;

    unlock(op);
    io_end(bc);
    rate_release(op);
    if (op->now) {
        block_copy_now_failed(op, ret);
        return;
    }
    if (bc->cfg.ops->error(bc->cfg.opaque, is_read, ret)
        == BLOCK_COPY_ERROR_SKIP) {
        op->cur = MAX(op->cur, op->off + op->n);
        give_back_done(op);
        block_copy_report_progress(bc);
        block_copy_op_step(op);
        return;
    }
    op_end(op);
}

static void write_cb(void *opaque, int ret)
{
    CopyOp *op = opaque;

    if (ret < 0) {
        op_failed(op, false, ret);
        return;
    }
    op->bc->written += op->n;
    op->copied += op->n;
    piece_done(op);
}

/* Sink mode: the owner takes the request's data (NULL: zeroes). */
static void hand_on(CopyOp *op, const void *buf)
{
    BlockCopy *bc = op->bc;

    write_cb(op, bc->cfg.ops->sink(bc->cfg.opaque, op->off, op->n, buf));
}

static void read_cb(void *opaque, int ret)
{
    CopyOp *op = opaque;

    if (ret < 0) {
        op_failed(op, true, ret);
        return;
    }
    if (op->bc->cfg.lock_source) {
        /* guest writes held back go on; they dirty the range again */
        unlock(op);
    }
    if (!op->bc->cfg.target) {
        hand_on(op, op->buf);
        return;
    }
    bdrv_write(op->bc->cfg.target, op->off, op->n, op->buf,
               op->lock ? BDRV_REQ_LOCK_OWNER : 0, write_cb, op);
}

static void copy(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (bc->cfg.job) {
        block_job_rate_account(bc->cfg.job, op->n);
    }
    rate_release(op);
    if (op->lock) {
        bdrv_read_locked(bc->cfg.source, op->off, op->n, op->buf, read_cb,
                         op);
    } else {
        bdrv_read(bc->cfg.source, op->off, op->n, op->buf, read_cb, op);
    }
}

/* Under the lock: copy unless the guest wrote the range meanwhile. */
static void target_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CopyOp *op = opaque;

    if (ret < 0) {
        op_failed(op, true, ret);
        return;
    }
    op->n = MIN(op->n, pnum);
    if (status & BDRV_STATUS_ALLOCATED) {
        piece_done(op);
        return;
    }
    copy(op);
}

static void locked_cb(void *opaque, BdrvRangeLock *lock)
{
    CopyOp *op = opaque;

    op->lock = lock;
    bdrv_block_status(op->bc->cfg.target, op->off, op->n, target_status_cb,
                      op);
}

/* The request's data is to be copied: widen, lock, go. */
static void copy_data(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (bc->cfg.guest_wins) {
        bdrv_range_lock(bc->cfg.target, op->off, op->n, locked_cb, op);
        return;
    }
    if (bc->cfg.align_copies) {
        uint64_t g = bc->cfg.granularity;
        uint64_t start = MAX(op->start, op->off / g * g);
        uint64_t end = MIN(op->end, (op->off + op->n + g - 1) / g * g);

        op->n = MIN(end, start + bc->cfg.step) - start;
        op->off = start;
    }
    copy(op);
}

/* May [@off, @off + @n) go as a zero write (whole units of zero_align)? */
static bool zeroes_fit(const BlockCopy *bc, uint64_t off, uint64_t n)
{
    uint64_t a = bc->cfg.zero_align;

    return !a || (off % a == 0 && (n % a == 0 || off + n == bc->cfg.len));
}

static void zero_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CopyOp *op = opaque;
    BlockCopy *bc = op->bc;

    if (ret < 0) {
        op_failed(op, true, ret);
        return;
    }
    op->n = MIN(op->n, pnum);
    if (!(status & BDRV_STATUS_ZERO) || !zeroes_fit(bc, op->off, op->n)) {
        copy_data(op);
    } else if (bc->cfg.zeroes == BLOCK_COPY_ZEROES_SKIP) {
        piece_done(op);
    } else {
        if (bc->cfg.lock_source) {
            unlock(op);
        }
        if (!bc->cfg.target) {
            hand_on(op, NULL);
            return;
        }
        bdrv_write_zeroes(bc->cfg.target, op->off, op->n, bc->cfg.zero_flags,
                          write_cb, op);
    }
}

/* [off, off + n) holds data to bring over: zeroes first, if asked. */
static void copy_range(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (bc->cfg.zeroes != BLOCK_COPY_ZEROES_COPY) {
        bdrv_block_status_above(bc->cfg.source, op->off, op->n, zero_cb, op);
        return;
    }
    copy_data(op);
}

static void alloc_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CopyOp *op = opaque;

    if (ret < 0) {
        op_failed(op, true, ret);
        return;
    }
    op->n = MIN(op->n, pnum);
    if (!status) {
        piece_done(op);         /* below alloc_base, or nowhere */
        return;
    }
    copy_range(op);
}

/* Wake every waiting operation (the job's sleep callback). */
static void rate_wake_cb(BlockJob *bj)
{
    if (bj->copy) {
        bj->copy->unpark = true;
        block_copy_kick(bj->copy);
    }
}

/*
 * Under a speed limit one operation at a time may be between the limit
 * and its copy: the others wait until its bytes are counted, so that
 * what it causes is waited for before the next one starts (QEMU's
 * stream, commit and backup copy one request at a time, a delay after
 * each).  True when @op waits.
 */
static bool rate_gate(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (!bc->cfg.job->speed || bc->cfg.rate_burst) {
        return false;
    }
    if (bc->rate_holder && bc->rate_holder != op) {
        op->parked = true;
        return true;
    }
    bc->rate_holder = op;
    return false;
}

/*
 * @op's copy was counted, or it has none: the next may pass, from the
 * main loop, so that an operation that found nothing to copy goes on
 * first (front to back, as QEMU's sequential jobs go, and report).
 */
static void rate_release(CopyOp *op)
{
    BlockCopy *bc = op->bc;
    bool parked = false;

    if (bc->rate_holder != op) {
        return;
    }
    bc->rate_holder = NULL;
    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        parked |= bc->op[i].parked;
    }
    bc->unpark |= parked;
    /* parked operations go on, idle ones may take an area */
    block_copy_kick_later(bc);
}

/*
 * Under a speed limit an idle operation takes no area while another
 * one is between the limit and its copy or the limit is being waited
 * for: the area would sit taken (its bits out of the bitmap the
 * queries show) until then, where QEMU's jobs take the next piece of
 * work only once the delay before it is over.
 */
static bool rate_closed(const BlockCopy *bc)
{
    const BlockJob *bj = bc->cfg.job;

    return bj && bj->speed && !bc->cfg.rate_burst
        && (bc->rate_holder || bj->sleep_source);
}

/* A wait for the speed limit is due: park the operation. */
static bool rate_wait(CopyOp *op)
{
    BlockCopy *bc = op->bc;
    BlockJob *bj = bc->cfg.job;

    if (!bj) {
        return false;
    }
    if (!bj->sleep_source && !block_job_rate_wait(bj, rate_wake_cb)) {
        return rate_gate(op);
    }
    op->parked = true;
    if (bc->cfg.ops->sleeping) {
        bc->cfg.ops->sleeping(bc->cfg.opaque);
    }
    return true;
}

/* The next request of the operation, or its end. */
void block_copy_op_step(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (op->now && !block_copy_now_next(op)) {
        return;
    }
    if (op->cur >= op->end || (!op->now && !may_run(bc))) {
        op_end(op);
        return;
    }
    if (!op->now && rate_wait(op)) {
        return;
    }
    io_begin(bc);
    op->off = op->cur;
    op->n = MIN(op->end - op->cur, bc->cfg.step);
    if (bc->cfg.lock_source) {
        bdrv_range_lock(bc->cfg.source, op->off, op->n, source_locked_cb, op);
        return;
    }
    op_request(op);
}

/*
 * Clear after lock: no guest write is in flight on the range now, and
 * those that come wait for the read, then mark it again.
 */
static void source_locked_cb(void *opaque, BdrvRangeLock *lock)
{
    CopyOp *op = opaque;

    op->lock = lock;
    hbitmap_reset(op->bc->dirty, op->off, op->n);
    op->cleared_end = MAX(op->cleared_end, op->off + op->n);
    op_request(op);
}

/* The request [off, off + n): is it allocated, zero, to be copied? */
static void op_request(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (!bc->cfg.alloc_check) {
        copy_range(op);
    } else if (!bc->cfg.alloc_top
               || bc->cfg.alloc_top == bc->cfg.alloc_base) {
        op->n = op->end - op->cur;
        piece_done(op);
    } else {
        bdrv_is_allocated_above(bc->cfg.alloc_top, bc->cfg.alloc_base,
                                op->off, op->n, alloc_cb, op);
    }
}

/* Parked operations go on; idle ones take a free dirty area. */
static void kick_once(BlockCopy *bc)
{
    block_copy_waits_retry(bc);
    if (bc->unpark) {
        bc->unpark = false;
        for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
            if (bc->op[i].parked) {
                bc->op[i].parked = false;
                block_copy_op_step(&bc->op[i]);
            }
        }
    }
    for (unsigned i = 0; i < bc->cfg.max_ops && may_run(bc); i++) {
        CopyOp *op = &bc->op[i];
        uint64_t start;
        uint64_t len;

        if (op->busy) {
            continue;
        }
        if (rate_closed(bc) || !block_copy_find_area(bc, &start, &len)
            || (bc->cfg.ops->admit
                && !bc->cfg.ops->admit(bc->cfg.opaque, start, len))) {
            return;
        }
        block_copy_take_area(bc, start, len);
        op->taken_len = len;
        op->copied = 0;
        op->start = op->cur = start;
        op->end = start + len;
        op->cleared_end = bc->cfg.lock_source ? start : op->end;
        op->busy = true;
        bc->busy++;
        block_copy_op_step(op);
    }
}

void block_copy_kick(BlockCopy *bc)
{
    if (bc->kicking) {
        bc->kick_again = true;
        return;
    }
    bc->kicking = true;
    block_copy_report_progress(bc);     /* the owner may have marked more */
    do {
        bc->kick_again = false;
        kick_once(bc);
    } while (bc->kick_again);
    bc->kicking = false;
    if (!bc->busy && (!hbitmap_count(bc->dirty) || !may_run(bc))) {
        bc->cfg.ops->idle(bc->cfg.opaque);
    }
}

static gboolean kick_later_cb(gpointer opaque)
{
    BlockCopy *bc = opaque;

    bc->kick_source = 0;
    block_copy_kick(bc);
    return G_SOURCE_REMOVE;
}

void block_copy_kick_later(BlockCopy *bc)
{
    if (!bc->kick_source) {
        bc->kick_source = g_idle_add_full(G_PRIORITY_DEFAULT, kick_later_cb,
                                          bc, NULL);
    }
}

/* End the speed limit's sleep; were operations waiting for it? */
static bool end_sleep(BlockCopy *bc)
{
    BlockJob *bj = bc->cfg.job;
    bool parked = false;

    if (bj && bj->sleep_source) {
        g_source_remove(bj->sleep_source);
        bj->sleep_source = 0;
    }
    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        parked |= bc->op[i].parked;
    }
    bc->unpark |= parked;
    return parked;
}

bool block_copy_wake(BlockCopy *bc)
{
    if (!end_sleep(bc)) {
        return false;
    }
    block_copy_kick(bc);
    return true;
}

void block_copy_wake_later(BlockCopy *bc)
{
    end_sleep(bc);
    block_copy_kick_later(bc);
}

void block_copy_set_owner(BlockCopy *bc, BlockJob *job,
                          const BlockCopyOps *ops, void *opaque)
{
    /* requests in flight count on the job that began them, or none */
    g_assert(!bc->busy || !job);
    if (bc->cfg.job) {
        bc->cfg.job->copy = NULL;
    }
    bc->cfg.job = job;
    bc->cfg.ops = ops;
    bc->cfg.opaque = opaque;
    if (job) {
        job->copy = bc;
    }
    /* the new owner's progress counts from here */
    bc->reported = progress_count(bc);
}
