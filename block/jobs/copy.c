/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine (copy.h).  Operations live in a fixed array and walk
 * their area request by request; each request is a chain of callbacks
 * (allocation, zeroes, lock and target status, read, write) that ends
 * in piece_done() or op_failed().  The chain may complete synchronously
 * (a null-co node, a cached status), so starting operations goes through
 * one loop that notes, instead of recursing into, kicks from inside it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/jobs/copy.h"
#include "util/hbitmap.h"

typedef struct {
    BlockCopy *bc;
    uint64_t start;             /* the area taken from the bitmap */
    uint64_t cur;               /* first byte not done */
    uint64_t end;
    uint64_t off;               /* the current request */
    uint64_t n;
    uint8_t *buf;
    BdrvRangeLock *lock;
    bool busy;
    bool parked;                /* waits for the speed limit */
} CopyOp;

struct BlockCopy {
    BlockCopyConfig cfg;
    HBitmap *dirty;
    CopyOp *op;                 /* cfg.max_ops of them */
    unsigned busy;
    uint64_t written;
    uint64_t prefix;            /* reported to the job so far */
    bool kicking;
    bool kick_again;
    bool unpark;                /* the speed-limit wait is over */
    guint kick_source;
};

static void op_step(CopyOp *op);

BlockCopy *block_copy_new(const BlockCopyConfig *cfg)
{
    BlockCopy *bc = g_new0(BlockCopy, 1);
    uint64_t bufsize = cfg->step;

    bc->cfg = *cfg;
    bc->dirty = hbitmap_new(cfg->len, cfg->granularity);
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
    hbitmap_free(bc->dirty);
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

uint64_t block_copy_done_prefix(const BlockCopy *bc)
{
    int64_t d = hbitmap_next_dirty(bc->dirty, 0);
    uint64_t p = d < 0 ? bc->cfg.len : (uint64_t)d;

    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        if (bc->op[i].busy) {
            p = MIN(p, bc->op[i].cur);
        }
    }
    return p;
}

/* The job's progress follows the done prefix (never backwards). */
static void report_progress(BlockCopy *bc)
{
    uint64_t p;

    if (!bc->cfg.job) {
        return;
    }
    p = block_copy_done_prefix(bc);
    if (p > bc->prefix) {
        job_progress_update(&bc->cfg.job->job, p - bc->prefix);
        bc->prefix = p;
    }
}

static bool may_run(BlockCopy *bc)
{
    return bc->cfg.ops->may_run(bc->cfg.opaque);
}

static unsigned max_ops(const BlockCopy *bc)
{
    if (bc->cfg.job && bc->cfg.job->speed && bc->cfg.max_ops_limited) {
        return MIN(bc->cfg.max_ops, bc->cfg.max_ops_limited);
    }
    return bc->cfg.max_ops;
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
    report_progress(bc);
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

/* The request is done (copied or skipped): on to the next. */
static void piece_done(CopyOp *op)
{
    unlock(op);
    io_end(op->bc);
    op->cur = MAX(op->cur, op->off + op->n);
    report_progress(op->bc);
    op_step(op);
}

static void op_failed(CopyOp *op, bool is_read, int ret)
{
    BlockCopy *bc = op->bc;

    unlock(op);
    io_end(bc);
    if (bc->cfg.ops->error(bc->cfg.opaque, is_read, ret)
        == BLOCK_COPY_ERROR_SKIP) {
        op->cur = MAX(op->cur, op->off + op->n);
        report_progress(bc);
        op_step(op);
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
    piece_done(op);
}

static void read_cb(void *opaque, int ret)
{
    CopyOp *op = opaque;

    if (ret < 0) {
        op_failed(op, true, ret);
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

static void zero_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CopyOp *op = opaque;
    BlockCopy *bc = op->bc;

    if (ret < 0) {
        op_failed(op, true, ret);
        return;
    }
    op->n = MIN(op->n, pnum);
    if (!(status & BDRV_STATUS_ZERO)) {
        copy_data(op);
    } else if (bc->cfg.zeroes == BLOCK_COPY_ZEROES_SKIP) {
        piece_done(op);
    } else {
        bdrv_write_zeroes(bc->cfg.target, op->off, op->n, 0, write_cb, op);
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

/* A wait for the speed limit is due: park the operation. */
static bool rate_wait(CopyOp *op)
{
    BlockCopy *bc = op->bc;
    BlockJob *bj = bc->cfg.job;

    if (!bj) {
        return false;
    }
    if (!bj->sleep_source && !block_job_rate_wait(bj, rate_wake_cb)) {
        return false;
    }
    op->parked = true;
    if (bc->cfg.ops->sleeping) {
        bc->cfg.ops->sleeping(bc->cfg.opaque);
    }
    return true;
}

/* The next request of the operation, or its end. */
static void op_step(CopyOp *op)
{
    BlockCopy *bc = op->bc;

    if (op->cur >= op->end || !may_run(bc)) {
        op_end(op);
        return;
    }
    if (rate_wait(op)) {
        return;
    }
    io_begin(bc);
    op->off = op->cur;
    op->n = MIN(op->end - op->cur, bc->cfg.step);
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

/* Parked operations go on; idle ones take the lowest dirty area. */
static void kick_once(BlockCopy *bc)
{
    unsigned limit = max_ops(bc);

    if (bc->unpark) {
        bc->unpark = false;
        for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
            if (bc->op[i].parked) {
                bc->op[i].parked = false;
                op_step(&bc->op[i]);
            }
        }
    }
    for (unsigned i = 0; i < limit && may_run(bc); i++) {
        CopyOp *op = &bc->op[i];
        uint64_t start;
        uint64_t len;

        if (op->busy) {
            continue;
        }
        if (!hbitmap_next_dirty_area(bc->dirty, 0, bc->cfg.chunk, &start,
                                     &len)) {
            return;
        }
        hbitmap_reset(bc->dirty, start, len);
        op->start = op->cur = start;
        op->end = start + len;
        op->busy = true;
        bc->busy++;
        op_step(op);
    }
}

void block_copy_kick(BlockCopy *bc)
{
    if (bc->kicking) {
        bc->kick_again = true;
        return;
    }
    bc->kicking = true;
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
