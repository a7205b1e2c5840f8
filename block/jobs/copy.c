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

typedef struct CopyNow CopyNow;

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
    CopyNow *now;               /* copies for block_copy_range_now() */
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
    GQueue now;                 /* CopyNow *, in the order they came */
};

static void op_step(CopyOp *op);
static void report_copied(BlockCopy *bc);
static bool now_next(CopyOp *op);
static void now_failed(CopyOp *op, int ret);
static uint64_t now_low(const BlockCopy *bc);
static void now_start_ready(BlockCopy *bc);

BlockCopy *block_copy_new(const BlockCopyConfig *cfg)
{
    BlockCopy *bc = g_new0(BlockCopy, 1);
    uint64_t bufsize = cfg->step;

    bc->cfg = *cfg;
    bc->dirty = cfg->dirty ? cfg->dirty : hbitmap_new(cfg->len,
                                                      cfg->granularity);
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

uint64_t block_copy_done_prefix(const BlockCopy *bc)
{
    int64_t d = hbitmap_next_dirty(bc->dirty, 0);
    uint64_t p = d < 0 ? bc->cfg.len : (uint64_t)d;

    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        if (bc->op[i].busy) {
            p = MIN(p, bc->op[i].cur);
        }
    }
    return MIN(p, now_low(bc));
}

/* The job's progress follows the done prefix (never backwards). */
static void report_progress(BlockCopy *bc)
{
    uint64_t p;

    if (!bc->cfg.job) {
        return;
    }
    if (bc->cfg.progress == BLOCK_COPY_PROGRESS_COPIED) {
        report_copied(bc);
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
    if (op->now) {
        now_failed(op, ret);
        return;
    }
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

    if (op->now && !now_next(op)) {
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

    now_start_ready(bc);
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

/* ---- copy-before-write: a range copied now ---------------------------- */

typedef struct {
    uint64_t off;
    uint64_t len;
} CopyArea;

struct CopyNow {
    uint64_t start;             /* whole granules, cut at the length */
    uint64_t end;
    GArray *areas;              /* CopyArea: what it took from the bitmap */
    guint next;                 /* the next area to copy */
    bool copying;               /* waits no more */
    void (*cb)(void *opaque, int ret);
    void *opaque;
    CopyOp op;                  /* copies the areas one after another */
};

static bool overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
    return a < a_end && b < b_end && a < b_end && b < a_end;
}

/*
 * Where a busy operation's reads may still reach: a request in flight
 * may have been widened to its granules, a parked one has none.
 */
static uint64_t op_low(const CopyOp *op)
{
    return op->parked ? op->cur : MIN(op->cur, op->off);
}

/* The end of its request in flight: what it keeps when cut back. */
static uint64_t op_keep(const CopyOp *op)
{
    uint64_t g = op->bc->cfg.granularity;
    uint64_t e = op->parked ? op->cur : MAX(op->cur, op->off + op->n);

    return MIN(op->end, (e + g - 1) / g * g);
}

/* Busy operations over the range give back what they have not begun. */
static void now_cut_ops(BlockCopy *bc, const CopyNow *now)
{
    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        CopyOp *op = &bc->op[i];
        uint64_t keep;

        if (!op->busy || !overlaps(op_low(op), op->end, now->start,
                                   now->end)) {
            continue;
        }
        keep = op_keep(op);
        if (keep < op->end) {
            hbitmap_set(bc->dirty, keep, op->end - keep);
            op->end = keep;
        }
    }
}

/* What is dirty in the range is the request's from now on. */
static void now_take(BlockCopy *bc, CopyNow *now)
{
    uint64_t off = now->start;
    CopyArea a;

    while (off < now->end
           && hbitmap_next_dirty_area(bc->dirty, off, now->end - off,
                                      &a.off, &a.len)
           && a.off < now->end) {
        a.len = MIN(a.len, now->end - a.off);
        hbitmap_reset(bc->dirty, a.off, a.len);
        g_array_append_val(now->areas, a);
        off = a.off + a.len;
    }
}

/* A busy operation, or an earlier request, still works in the range. */
static bool now_blocked(const BlockCopy *bc, const CopyNow *now)
{
    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        const CopyOp *op = &bc->op[i];

        if (op->busy && overlaps(op_low(op), op->end, now->start,
                                 now->end)) {
            return true;
        }
    }
    for (GList *l = bc->now.head; l && l->data != now; l = l->next) {
        const CopyNow *o = l->data;

        if (overlaps(o->start, o->end, now->start, now->end)) {
            return true;
        }
    }
    return false;
}

static void now_finish(CopyNow *now, int ret)
{
    BlockCopy *bc = now->op.bc;
    void (*cb)(void *opaque, int ret) = now->cb;
    void *opaque = now->opaque;

    g_queue_remove(&bc->now, now);
    if (now->op.buf) {
        ioq_buf_free(now->op.buf);
    }
    g_array_free(now->areas, TRUE);
    g_free(now);
    bc->busy--;
    report_progress(bc);
    cb(opaque, ret);
    /* earlier requests' waiters and the idle hook */
    block_copy_kick(bc);
}

/* The operation's next area, or the request's end (false). */
static bool now_next(CopyOp *op)
{
    CopyNow *now = op->now;
    CopyArea *a;

    if (op->cur < op->end) {
        return true;
    }
    if (now->next == now->areas->len) {
        now_finish(now, 0);
        return false;
    }
    a = &g_array_index(now->areas, CopyArea, now->next++);
    op->start = op->cur = a->off;
    op->end = a->off + a->len;
    return true;
}

/* What the request did not copy is dirty again; the owner decides. */
static void now_failed(CopyOp *op, int ret)
{
    CopyNow *now = op->now;
    BlockCopy *bc = op->bc;

    if (op->cur < op->end) {
        hbitmap_set(bc->dirty, op->cur, op->end - op->cur);
    }
    for (guint i = now->next; i < now->areas->len; i++) {
        CopyArea *a = &g_array_index(now->areas, CopyArea, i);

        hbitmap_set(bc->dirty, a->off, a->len);
    }
    now_finish(now, ret);
}

/* The lowest byte a request has taken and not copied (or the length). */
static uint64_t now_low(const BlockCopy *bc)
{
    uint64_t low = bc->cfg.len;

    for (GList *l = bc->now.head; l; l = l->next) {
        const CopyNow *now = l->data;

        if (now->op.cur < now->op.end) {
            low = MIN(low, now->op.cur);
        }
        for (guint i = now->next; i < now->areas->len; i++) {
            low = MIN(low, g_array_index(now->areas, CopyArea, i).off);
        }
    }
    return low;
}

/* Waiting requests that nothing blocks any more begin to copy. */
static void now_start_ready(BlockCopy *bc)
{
    GList *l = bc->now.head;

    while (l) {
        CopyNow *now = l->data;

        if (now->copying || now_blocked(bc, now)) {
            l = l->next;
            continue;
        }
        now->copying = true;
        /* a failed copy of a busy operation made its range dirty again */
        now_take(bc, now);
        if (now->areas->len) {
            now->op.buf = ioq_buf_alloc(bc->cfg.step);
        }
        op_step(&now->op);
        /* it may have finished, and others with it: look again */
        l = bc->now.head;
    }
}

void block_copy_range_now(BlockCopy *bc, uint64_t off, uint64_t len,
                          void (*cb)(void *opaque, int ret), void *opaque)
{
    uint64_t g = bc->cfg.granularity;
    CopyNow *now = g_new0(CopyNow, 1);

    now->start = MIN(off / g * g, bc->cfg.len);
    now->end = MIN((off + len + g - 1) / g * g, bc->cfg.len);
    now->areas = g_array_new(FALSE, FALSE, sizeof(CopyArea));
    now->cb = cb;
    now->opaque = opaque;
    now->op.bc = bc;
    now->op.now = now;
    now_cut_ops(bc, now);
    now_take(bc, now);
    g_queue_push_tail(&bc->now, now);
    bc->busy++;
    block_copy_kick(bc);
}

bool block_copy_range_clean(const BlockCopy *bc, uint64_t off, uint64_t len)
{
    uint64_t g = bc->cfg.granularity;
    uint64_t start = MIN(off / g * g, bc->cfg.len);
    uint64_t end = MIN((off + len + g - 1) / g * g, bc->cfg.len);
    int64_t d = hbitmap_next_dirty(bc->dirty, start);

    if (d >= 0 && (uint64_t)d < end) {
        return false;
    }
    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        const CopyOp *op = &bc->op[i];

        if (op->busy && overlaps(op_low(op), op->end, start, end)) {
            return false;
        }
    }
    for (GList *l = bc->now.head; l; l = l->next) {
        const CopyNow *now = l->data;

        if (overlaps(now->start, now->end, start, end)) {
            return false;
        }
    }
    return true;
}

/* ---- progress as bytes written ---------------------------------------- */

/* Bytes taken from the bitmap and not done: operations and requests. */
static uint64_t taken_bytes(const BlockCopy *bc)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        if (bc->op[i].busy) {
            n += bc->op[i].end - bc->op[i].cur;
        }
    }
    for (GList *l = bc->now.head; l; l = l->next) {
        const CopyNow *now = l->data;

        n += now->op.end - now->op.cur;
        for (guint i = now->next; i < now->areas->len; i++) {
            n += g_array_index(now->areas, CopyArea, i).len;
        }
    }
    return n;
}

static void report_copied(BlockCopy *bc)
{
    Job *job = &bc->cfg.job->job;

    if (bc->written > bc->prefix) {
        job_progress_update(job, bc->written - bc->prefix);
        bc->prefix = bc->written;
    }
    job_progress_set_remaining(job, hbitmap_count(bc->dirty)
                               + taken_bytes(bc));
}

/* ---- a new owner ------------------------------------------------------- */

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
    /* the new owner's progress starts from what is written now */
    bc->prefix = bc->cfg.progress == BLOCK_COPY_PROGRESS_COPIED
                 ? bc->written : block_copy_done_prefix(bc);
}
