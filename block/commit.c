/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * block-commit: write the data of a backing chain's upper layers (top
 * and the layers down to base, exclusive) into base, as QEMU 7.2 does.
 *
 * Two jobs share this file, as in QEMU (commit.c and mirror.c):
 *
 *   intermediate commit (top is below the active layer)
 *
 *       overlay -> top -> mid -> base     becomes     overlay -> base
 *
 *     Nobody writes to top or mid: one pass over top copies every
 *     range allocated above base (bdrv_is_allocated_above), in 512 KiB
 *     pieces as QEMU does, from top (read through the chain) into base.
 *     Progress is top's size; skipped ranges count as done, and the
 *     offset reported is the end of the done prefix of the pass (QEMU
 *     copies one piece at a time, so a failed piece stops it there).
 *     On success the overlay's backing link and image header name base,
 *     and top..mid leave the graph.
 *
 *   active commit (top is the device's active layer)
 *
 *     Like a mirror from top to base.  A write notifier on top keeps a
 *     dirty bitmap of 64 KiB granules; the first pass marks what is
 *     allocated above base.  Dirty granules are copied until none is
 *     left (READY), and copied again as the guest writes.  A copy takes
 *     a range lock on top before clearing its bits and reading: a guest
 *     write in flight is waited for, one arriving during the read waits
 *     and dirties the range again afterwards.  A granule being copied
 *     (the "busy" bitmap) is not picked again until its write to base
 *     has finished, so writes to base never overtake each other.
 *     job-complete: once nothing is dirty or in flight, a range lock
 *     over the whole device holds guest writes back (QEMU drains), base
 *     is flushed, and prepare replaces top by base everywhere; the
 *     writes held back are then started on base.
 *
 * Both keep up to MAX_IN_FLIGHT copies in flight; a copy is a read
 * from top and a write to base.  The speed limit works as QEMU's: a
 * copy goes out, and the delay it causes is waited before the next.
 * Everything the job waits for (copies, allocation queries, flushes,
 * lock grants) is counted with block_job_io_begin/end: pause, cancel
 * and the end of the job wait for that count to reach zero.
 * job_completed() is only called at the tail of a callback or hook,
 * since it may free the job.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block-int.h"
#include "block/blockjob.h"
#include "block/ioq.h"
#include "block/qmp-block.h"
#include "qapi/qjson.h"

#define GRANULE (64 * 1024ull)
#define CHUNK_MAX (1024 * 1024ull)      /* active: mirror's MAX_IO_BYTES */
#define COMMIT_CHUNK (512 * 1024ull)    /* intermediate: QEMU's buffer */
#define MAX_IN_FLIGHT 16

typedef struct {
    uint64_t *words;
    uint64_t nbits;
    uint64_t count;             /* bits set */
} Bitmap;

typedef struct CommitJob CommitJob;

/* A range to copy; the intermediate job queues failed ones to redo. */
typedef struct {
    uint64_t off;
    uint64_t len;
    uint64_t pass_off;          /* intermediate: [pass_off, off + len) of
                                   the pass is done when the copy is */
} Range;

typedef struct {
    CommitJob *s;
    Range r;
    void *buf;
    BdrvRangeLock *lock;        /* active: held during the read */
} CommitOp;

struct CommitJob {
    BlockJob common;
    BlockNode *top;
    BlockNode *base;
    bool active;
    char *backing_file;
    BlockdevOnError on_error;
    bool base_made_rw;          /* reopened read-write for the job */
    uint64_t len;               /* top's size */

    bool started;               /* setup (base growth) finished */
    bool done;                  /* finishing: no more pumping */
    int ret;                    /* the reported error that ends the job */
    int final_ret;
    bool need_flush;            /* base was written since its last flush */
    bool flush_failed;
    bool error_pending;         /* intermediate: stopped, not resumed yet */
    guint kick_source;

    /* speed limit: bytes accounted, issued once the wait is over */

    /* the allocation pass */
    uint64_t scan_off;
    bool scan_busy;
    bool scan_done;

    /* intermediate: the allocated extent being carved, the retries */
    uint64_t ext_off;
    uint64_t ext_end;
    uint64_t ext_skip;          /* head of ext_off below the pass */
    GQueue redo;                /* Range * */
    uint64_t done_off;          /* the pass is done up to here */
    GArray *done_ivs;           /* Interval: done beyond done_off */

    /* active */
    Bitmap dirty;
    Bitmap busy;
    uint64_t cursor;            /* granule to look for dirt from */
    uint64_t bytes_in_flight;
    bool notifier;
    bool syncing;               /* the flush before READY */
    bool should_complete;
    bool final_wait;            /* the whole-device lock was asked for */
    BdrvRangeLock *final_lock;
    bool drained;               /* final_lock kept until prepare/abort */
};

static void commit_pump(CommitJob *s);

/* ---- bitmap ------------------------------------------------------------ */

static void bitmap_init(Bitmap *b, uint64_t nbits)
{
    b->words = g_new0(uint64_t, (nbits + 63) / 64 + 1);
    b->nbits = nbits;
    b->count = 0;
}

static bool bitmap_get(const Bitmap *b, uint64_t i)
{
    return (b->words[i / 64] >> (i % 64)) & 1;
}

static void bitmap_set_range(Bitmap *b, uint64_t first, uint64_t n)
{
    for (uint64_t i = first; i < first + n && i < b->nbits; i++) {
        if (!bitmap_get(b, i)) {
            b->words[i / 64] |= 1ull << (i % 64);
            b->count++;
        }
    }
}

static void bitmap_clear_range(Bitmap *b, uint64_t first, uint64_t n)
{
    for (uint64_t i = first; i < first + n && i < b->nbits; i++) {
        if (bitmap_get(b, i)) {
            b->words[i / 64] &= ~(1ull << (i % 64));
            b->count--;
        }
    }
}

/* The first set bit at or after @from, or nbits. */
static uint64_t bitmap_next(const Bitmap *b, uint64_t from)
{
    while (from < b->nbits) {
        uint64_t w = b->words[from / 64] >> (from % 64);

        if (w) {
            return MIN(from + (uint64_t)__builtin_ctzll(w), b->nbits);
        }
        from = (from / 64 + 1) * 64;
    }
    return b->nbits;
}

/* ---- progress of the intermediate pass --------------------------------- */

typedef struct {
    uint64_t start;
    uint64_t end;
} Interval;

/*
 * [@start, @end) of the pass over top is done (skipped or copied).  The
 * offset QEMU reports is where its one-at-a-time loop is; with copies
 * completing out of order that is the end of the done prefix.
 */
static void pass_done(CommitJob *s, uint64_t start, uint64_t end)
{
    Interval iv = { start, end };
    uint64_t old = s->done_off;
    guint i = 0;

    if (start >= end) {
        return;
    }
    while (i < s->done_ivs->len
           && g_array_index(s->done_ivs, Interval, i).start < start) {
        i++;
    }
    g_array_insert_val(s->done_ivs, i, iv);
    while (s->done_ivs->len
           && g_array_index(s->done_ivs, Interval, 0).start <= s->done_off) {
        s->done_off = MAX(s->done_off,
                          g_array_index(s->done_ivs, Interval, 0).end);
        g_array_remove_index(s->done_ivs, 0);
    }
    job_progress_update(&s->common.job, s->done_off - old);
}

/* ---- helpers ----------------------------------------------------------- */

static uint64_t align_down(uint64_t v)
{
    return v / GRANULE * GRANULE;
}

static uint64_t align_up(uint64_t v)
{
    return (v + GRANULE - 1) / GRANULE * GRANULE;
}

static gboolean kick_cb(gpointer opaque)
{
    CommitJob *s = opaque;

    s->kick_source = 0;
    commit_pump(s);
    return G_SOURCE_REMOVE;
}

/* Pump from the main loop: for hooks called from inside other code. */
static void kick(CommitJob *s)
{
    if (!s->kick_source && !s->done) {
        s->kick_source = g_idle_add_full(G_PRIORITY_DEFAULT, kick_cb, s,
                                         NULL);
    }
}

static void update_remaining(CommitJob *s)
{
    if (s->active) {
        job_progress_set_remaining(&s->common.job,
                                   s->dirty.count * GRANULE
                                   + s->bytes_in_flight);
    }
}

static void commit_sleep_cb(BlockJob *bj)
{
    commit_pump((CommitJob *)bj);
}

/*
 * The on-error policy for a failed request.  QEMU's commit copies one
 * range at a time and so reports once; with several requests in flight
 * the intermediate job reports the first failure and retries the others
 * silently.  Active commit reports each, as mirror does.
 */
static void error_action(CommitJob *s, bool is_read, int ret)
{
    BlockErrorAction action;

    if (!s->active && (s->ret < 0 || s->error_pending)) {
        return;
    }
    action = block_job_error_action(&s->common, s->on_error, is_read, ret);
    if (action == BLOCK_ERROR_ACTION_REPORT && s->ret == 0) {
        s->ret = ret;
    } else if (action == BLOCK_ERROR_ACTION_STOP) {
        s->error_pending = true;
    }
}

/* ---- finishing --------------------------------------------------------- */

static void finish_now(CommitJob *s)
{
    job_completed(&s->common.job, s->final_ret, NULL);
}

static void finish_flushed_cb(void *opaque, int ret)
{
    CommitJob *s = opaque;

    if (ret < 0) {
        s->flush_failed = true;
        if (s->final_ret == 0) {
            s->final_ret = ret;
        }
    }
    finish_now(s);
}

/* Nothing is in flight: flush what was written, then end the job. */
static void commit_finish(CommitJob *s, int ret)
{
    s->done = true;
    s->final_ret = ret;
    if (s->kick_source) {
        g_source_remove(s->kick_source);
        s->kick_source = 0;
    }
    /* clean() makes base read-only again: its metadata must be written */
    if (s->need_flush && s->base_made_rw && !s->active) {
        s->need_flush = false;
        bdrv_flush(s->base, finish_flushed_cb, s);
        return;
    }
    finish_now(s);
}

static void idle_flushed_cb(void *opaque, int ret)
{
    CommitJob *s = opaque;

    block_job_io_end(&s->common);
    if (ret < 0) {
        s->need_flush = true;
        error_action(s, false, ret);
    }
    commit_pump(s);
}

/*
 * Waiting for the speed limit with nothing in flight: write base's
 * metadata now, so that a cancel finds nothing to wait for and ends at
 * once, as QEMU's sleeping job does.
 */
static void idle_flush(CommitJob *s)
{
    if (s->need_flush && s->base_made_rw && !s->active
        && s->common.in_flight == 0) {
        s->need_flush = false;
        block_job_io_begin(&s->common);
        bdrv_flush(s->base, idle_flushed_cb, s);
    }
}

/* Stop sleeping for the speed limit (the wait itself is kept). */
static void wake(CommitJob *s)
{
    if (s->common.sleep_source) {
        g_source_remove(s->common.sleep_source);
        s->common.sleep_source = 0;
    }
}

/* ---- copies ------------------------------------------------------------ */

static void op_end(CommitOp *op)
{
    CommitJob *s = op->s;

    if (s->active) {
        uint64_t first = op->r.off / GRANULE;

        bitmap_clear_range(&s->busy, first,
                           (op->r.off + op->r.len + GRANULE - 1) / GRANULE
                           - first);
        s->bytes_in_flight -= op->r.len;
    }
    ioq_buf_free(op->buf);
    g_free(op);
    block_job_io_end(&s->common);
}

static void copy_failed(CommitOp *op, bool is_read, int ret)
{
    CommitJob *s = op->s;

    if (s->active) {
        uint64_t first = op->r.off / GRANULE;

        /* to be copied again */
        bitmap_set_range(&s->dirty, first,
                         (op->r.off + op->r.len + GRANULE - 1) / GRANULE
                         - first);
    } else {
        /* QEMU retries the same range first */
        g_queue_push_head(&s->redo, g_memdup2(&op->r, sizeof(op->r)));
    }
    op_end(op);
    update_remaining(s);
    error_action(s, is_read, ret);
    commit_pump(s);
}

static void copy_write_cb(void *opaque, int ret)
{
    CommitOp *op = opaque;
    CommitJob *s = op->s;

    if (ret < 0) {
        copy_failed(op, false, ret);
        return;
    }
    if (s->active) {
        job_progress_update(&s->common.job, op->r.len);
    } else {
        pass_done(s, op->r.pass_off, op->r.off + op->r.len);
    }
    op_end(op);
    update_remaining(s);
    commit_pump(s);
}

static void copy_read_cb(void *opaque, int ret)
{
    CommitOp *op = opaque;
    CommitJob *s = op->s;

    if (op->lock) {
        /* guest writes held back may go now; they dirty the range again */
        bdrv_range_unlock(op->lock);
        op->lock = NULL;
    }
    if (ret < 0) {
        copy_failed(op, true, ret);
        return;
    }
    s->need_flush = true;
    bdrv_write(s->base, op->r.off, op->r.len, op->buf, 0, copy_write_cb, op);
}

static void copy_start(CommitOp *op)
{
    op->buf = ioq_buf_alloc(op->r.len);
    if (op->lock) {
        /* an active commit's range lock (active_locked_cb) */
        bdrv_read_locked(op->s->top, op->r.off, op->r.len, op->buf,
                         copy_read_cb, op);
    } else {
        bdrv_read(op->s->top, op->r.off, op->r.len, op->buf, copy_read_cb,
                  op);
    }
}

static void active_locked_cb(void *opaque, BdrvRangeLock *lock)
{
    CommitOp *op = opaque;
    CommitJob *s = op->s;
    uint64_t first = op->r.off / GRANULE;

    /* no guest write is in flight on the range; new ones wait */
    op->lock = lock;
    bitmap_clear_range(&s->dirty, first,
                       (op->r.off + op->r.len + GRANULE - 1) / GRANULE
                       - first);
    s->bytes_in_flight += op->r.len;
    update_remaining(s);
    copy_start(op);
}

static void issue_copy(CommitJob *s, const Range *r)
{
    CommitOp *op = g_new0(CommitOp, 1);

    op->s = s;
    op->r = *r;
    block_job_io_begin(&s->common);
    if (s->active) {
        uint64_t first = r->off / GRANULE;

        bitmap_set_range(&s->busy, first,
                         (r->off + r->len + GRANULE - 1) / GRANULE - first);
        bdrv_range_lock(s->top, r->off, r->len, active_locked_cb, op);
    } else {
        copy_start(op);
    }
}

/* ---- the allocation pass ----------------------------------------------- */

static void scan_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CommitJob *s = opaque;

    s->scan_busy = false;
    block_job_io_end(&s->common);
    if (ret < 0) {
        /* retried (same offset) unless the policy ends the job */
        error_action(s, true, ret);
        commit_pump(s);
        return;
    }
    pnum = MAX(1, MIN(pnum, s->len - s->scan_off));
    if (s->active) {
        if (status) {
            uint64_t first = s->scan_off / GRANULE;

            bitmap_set_range(&s->dirty, first,
                             (s->scan_off + pnum + GRANULE - 1) / GRANULE
                             - first);
        }
        s->scan_off += pnum;
        s->scan_done = s->scan_off >= s->len;
        update_remaining(s);
    } else if (status) {
        /* copied in whole granules; the pass moves past them */
        s->ext_off = align_down(s->scan_off);
        s->ext_end = MIN(s->len, align_up(s->scan_off + pnum));
        s->ext_skip = s->scan_off - s->ext_off;
        s->scan_off = s->ext_end;
    } else {
        pass_done(s, s->scan_off, s->scan_off + pnum);
        s->scan_off += pnum;
    }
    commit_pump(s);
}

static void scan_start(CommitJob *s)
{
    s->scan_busy = true;
    block_job_io_begin(&s->common);
    bdrv_is_allocated_above(s->top, s->base, s->scan_off,
                            s->len - s->scan_off, scan_cb, s);
}

/* ---- intermediate commit ----------------------------------------------- */

/* The next range to copy, without taking it. */
static bool inter_peek(CommitJob *s, Range *r)
{
    Range *q = g_queue_peek_head(&s->redo);

    if (q) {
        *r = *q;
        return true;
    }
    if (s->ext_off < s->ext_end) {
        uint64_t end = MIN(s->ext_end, (s->ext_off / COMMIT_CHUNK + 1)
                           * COMMIT_CHUNK);

        r->off = s->ext_off;
        r->len = end - s->ext_off;
        r->pass_off = r->off + s->ext_skip;
        return true;
    }
    return false;
}

static void inter_take(CommitJob *s, const Range *r)
{
    Range *q = g_queue_pop_head(&s->redo);

    if (q) {
        g_free(q);
        return;
    }
    s->ext_off += r->len;
    s->ext_skip = 0;
}

static void pump_intermediate(CommitJob *s)
{
    BlockJob *bj = &s->common;
    Range r;

    while (bj->in_flight < MAX_IN_FLIGHT) {
        if (!inter_peek(s, &r)) {
            if (s->scan_off < s->len && !s->scan_busy) {
                scan_start(s);
            }
            break;
        }
        if (block_job_rate_wait(&s->common, commit_sleep_cb)) {
            return;
        }
        inter_take(s, &r);
        issue_copy(s, &r);
        block_job_rate_account(&s->common, r.len);
    }
    if (bj->in_flight == 0 && !inter_peek(s, &r) && s->scan_off >= s->len) {
        commit_finish(s, 0);
    }
}

/* ---- active commit ----------------------------------------------------- */

/* Dirty granules not being copied, from the cursor on (wrapping). */
static bool active_pick(CommitJob *s, Range *r)
{
    uint64_t n = s->dirty.nbits;
    uint64_t g = s->cursor;
    uint64_t k;
    bool wrapped = false;

    for (;;) {
        g = bitmap_next(&s->dirty, g);
        if (g >= n) {
            if (wrapped) {
                return false;
            }
            wrapped = true;
            g = 0;
            continue;
        }
        if (wrapped && g >= s->cursor) {
            return false;
        }
        if (!bitmap_get(&s->busy, g)) {
            break;
        }
        g++;
    }
    for (k = 1; k < CHUNK_MAX / GRANULE && g + k < n
         && bitmap_get(&s->dirty, g + k) && !bitmap_get(&s->busy, g + k);
         k++) {
    }
    r->off = g * GRANULE;
    r->len = MIN(s->len, (g + k) * GRANULE) - r->off;
    s->cursor = g + k < n ? g + k : 0;
    return true;
}

static void sync_flushed_cb(void *opaque, int ret)
{
    CommitJob *s = opaque;
    Job *job = &s->common.job;

    s->syncing = false;
    block_job_io_end(&s->common);
    if (ret < 0) {
        error_action(s, false, ret);
    } else if (!job->ready && !job_is_cancelled(job) && s->ret == 0) {
        /*
         * READY tells of the point the flush made durable, when nothing
         * was left (QEMU's job counts later writes on its next pass)
         */
        job_progress_set_remaining(job, 0);
        job_transition_to_ready(job);
        update_remaining(s);
    }
    commit_pump(s);
}

/*
 * Let the guest writes held back by the whole-device lock go: to @to
 * when the device has just been switched to it, else where they were.
 */
static void release_final_lock(CommitJob *s, BlockNode *to)
{
    if (s->final_lock) {
        if (to) {
            bdrv_range_unlock_redirect(s->final_lock, to);
        } else {
            bdrv_range_unlock(s->final_lock);
        }
        s->final_lock = NULL;
    }
    if (s->drained) {
        s->drained = false;
        /* a cancel may have reset the count already */
        if (s->common.job.pause_count > 0) {
            s->common.job.pause_count--;
        }
    }
}

static void final_flushed_cb(void *opaque, int ret)
{
    CommitJob *s = opaque;

    block_job_io_end(&s->common);
    if (ret < 0) {
        release_final_lock(s, NULL);
        error_action(s, false, ret);
        commit_pump(s);
        return;
    }
    /* prepare() switches to base and releases the lock */
    commit_finish(s, 0);
}

static void final_locked_bh(void *opaque, int ret)
{
    CommitJob *s = opaque;
    Job *job = &s->common.job;

    s->final_wait = false;
    if (s->dirty.count || job_is_cancelled(job) || s->ret < 0) {
        /* a write got in before the lock: copy it first */
        release_final_lock(s, NULL);
        block_job_io_end(&s->common);
        commit_pump(s);
        return;
    }
    /*
     * QEMU keeps the source drained from here to the graph change, and
     * the drain counts as a pause (query-block-jobs: "paused": true)
     */
    s->drained = true;
    job->pause_count++;
    s->need_flush = false;
    bdrv_flush(s->base, final_flushed_cb, s);
}

static void final_locked_cb(void *opaque, BdrvRangeLock *lock)
{
    CommitJob *s = opaque;

    s->final_lock = lock;
    /* the grant may come inside bdrv_range_lock(); go on from the loop */
    ioq_defer_int(final_locked_bh, s, 0);
}

static void pump_active(CommitJob *s)
{
    BlockJob *bj = &s->common;
    Job *job = &bj->job;
    Range r;

    if (!s->scan_done) {
        if (!s->scan_busy) {
            scan_start(s);
        }
        return;
    }
    while (bj->in_flight < MAX_IN_FLIGHT && !s->final_wait) {
        if (block_job_rate_wait(&s->common, commit_sleep_cb)) {
            return;
        }
        if (!active_pick(s, &r)) {
            break;
        }
        issue_copy(s, &r);
        block_job_rate_account(&s->common, r.len);
    }
    if (bj->in_flight || s->dirty.count) {
        return;
    }
    if (!job->ready) {
        /* in sync: flush base, then READY (QEMU's mirror_flush) */
        s->syncing = true;
        s->need_flush = false;
        block_job_io_begin(bj);
        bdrv_flush(s->base, sync_flushed_cb, s);
    } else if (s->should_complete || job->cancelled) {
        /*
         * In sync and to end (a cancel without force when ready ends in
         * sync, without the switch): hold guest writes back, as QEMU's
         * drain does, so that nothing is dirty when prepare() runs
         */
        s->final_wait = true;
        block_job_io_begin(bj);
        bdrv_range_lock(s->top, 0, s->len, final_locked_cb, s);
    }
}

/* ---- the pump ---------------------------------------------------------- */

static void commit_pump(CommitJob *s)
{
    BlockJob *bj = &s->common;
    Job *job = &bj->job;

    if (s->done || !s->started) {
        return;
    }
    if (bj->sleep_source) {
        idle_flush(s);
        return;
    }
    if (job_is_cancelled(job) || s->ret < 0) {
        if (bj->in_flight == 0) {
            commit_finish(s, s->ret < 0 ? s->ret : -ECANCELED);
        }
        return;
    }
    if (job_should_pause(job)) {
        if (bj->in_flight == 0) {
            job_pause_point(job);
        }
        return;
    }
    if (s->active) {
        pump_active(s);
    } else {
        pump_intermediate(s);
    }
}

/* ---- job driver -------------------------------------------------------- */

static void write_notify(void *opaque, uint64_t off, uint64_t len)
{
    CommitJob *s = opaque;
    uint64_t first = off / GRANULE;
    uint64_t end = MIN(off + len, s->len);

    if (off >= s->len || !len) {
        return;
    }
    bitmap_set_range(&s->dirty, first, (end + GRANULE - 1) / GRANULE - first);
    update_remaining(s);
    kick(s);
}

static void barrier_cb(void *opaque, BdrvRangeLock *lock)
{
    CommitJob *s = opaque;

    /*
     * Writes that started before the notifier was added are done: the
     * pass sees what they allocated.  Later ones are in the bitmap.
     */
    bdrv_range_unlock(lock);
    block_job_io_end(&s->common);
    s->started = true;
    kick(s);
}

static void start_copying(CommitJob *s)
{
    if (s->active) {
        bitmap_init(&s->dirty, (s->len + GRANULE - 1) / GRANULE);
        bitmap_init(&s->busy, (s->len + GRANULE - 1) / GRANULE);
        bdrv_add_write_notifier(s->top, write_notify, s);
        s->notifier = true;
        block_job_io_begin(&s->common);
        bdrv_range_lock(s->top, 0, s->len, barrier_cb, s);
        return;
    }
    job_progress_set_remaining(&s->common.job, s->len);
    s->started = true;
    commit_pump(s);
}

static void grow_flushed_cb(void *opaque, int ret)
{
    CommitJob *s = opaque;
    Error *err = NULL;

    block_job_io_end(&s->common);
    if (ret < 0) {
        error_setg_errno(&err, -ret, "Could not flush base before resizing");
    } else if (!s->base->drv->truncate) {
        error_setg(&err, "Image format driver does not support resize");
    } else {
        s->base->drv->truncate(s->base, s->len, &err);
    }
    if (err) {
        s->done = true;
        job_completed(&s->common.job, ret < 0 ? ret : -EIO,
                      error_get_pretty(err));
        error_free(err);
        return;
    }
    start_copying(s);
}

static void grow_drained_cb(void *opaque, int ret)
{
    CommitJob *s = opaque;

    bdrv_flush(s->base, grow_flushed_cb, s);
}

static void commit_run(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    s->len = bdrv_length(s->top);
    if (bdrv_length(s->base) < s->len) {
        /* base must hold all of top (QEMU truncates it too) */
        block_job_io_begin(&s->common);
        bdrv_drain(s->base, grow_drained_cb, s);
        return;
    }
    start_copying(s);
}

static void commit_resume(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    if (s->active) {
        /* mirror's cancel ends from the main loop, after the reply */
        kick(s);
    } else {
        /* a paused commit that is cancelled ends before the reply */
        commit_pump(s);
    }
}

static void commit_user_resume(Job *job)
{
    /* the next failure is reported again (the pause may not have begun) */
    ((CommitJob *)job)->error_pending = false;
    block_job_user_resume(job);
}

static void commit_cancel(Job *job, bool force)
{
    CommitJob *s = (CommitJob *)job;

    /*
     * QEMU's commit has no cancel hook: every cancel is forced.  Active
     * commit is mirror's, whose soft cancel means something only when
     * ready (then the job ends in sync, without switching to base).
     */
    if (!s->active || (job->status != JOB_STATUS_READY
                       && job->status != JOB_STATUS_STANDBY)) {
        job->force_cancel = true;
    }
    if (job->paused) {
        /* the job core resumes it next: commit_resume() goes on */
        return;
    }
    /* the job core still uses the job after this hook: end later */
    wake(s);
    kick(s);
}

/* A pause was requested or the speed changed: look again now. */
static void commit_kick(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    wake(s);
    commit_pump(s);
}

static bool commit_complete(Job *job, Error **errp)
{
    CommitJob *s = (CommitJob *)job;

    s->should_complete = true;
    kick(s);
    return true;
}

/* Point the overlays of top at base, in the graph and in their headers. */
static int drop_intermediate(CommitJob *s)
{
    g_autoptr(GPtrArray) overlays = g_ptr_array_new();
    const char *name = s->backing_file ? s->backing_file
                                       : bdrv_filename(s->base);
    int ret = 0;

    for (guint i = 0; i < s->top->parents->len; i++) {
        BdrvChild *c = g_ptr_array_index(s->top->parents, i);

        if (c->parent && c->parent->refcnt > 0 && c == c->parent->backing) {
            bdrv_ref(c->parent);
            g_ptr_array_add(overlays, c->parent);
        }
    }
    bdrv_replace_node(s->top, s->base);
    for (guint i = 0; i < overlays->len; i++) {
        BlockNode *o = g_ptr_array_index(overlays, i);
        bool ro = bdrv_is_read_only(o);
        Error *err = NULL;

        if (o->drv->change_backing_file && ret == 0
            && (!ro || bdrv_reopen_read_only(o, false, &err))) {
            if (!bdrv_change_backing_file(o, name, s->base->drv->name,
                                          &err)) {
                ret = -EIO;
            }
            if (ro) {
                bdrv_reopen_read_only(o, true, NULL);
            }
        } else if (err) {
            ret = -EPERM;
        }
        if (err) {
            g_free(s->common.job.error);
            s->common.job.error = g_strdup(error_get_pretty(err));
            error_free(err);
        }
        bdrv_unref(o);
    }
    return ret;
}

static int commit_prepare(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    if (!s->active) {
        return drop_intermediate(s);
    }
    if (s->should_complete) {
        bdrv_replace_node(s->top, s->base);
        release_final_lock(s, s->base);
    }
    release_final_lock(s, NULL);
    return 0;
}

static void commit_abort(Job *job)
{
    release_final_lock((CommitJob *)job, NULL);
}

static void commit_clean(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    commit_abort(job);
    if (s->notifier) {
        bdrv_remove_write_notifier(s->top, write_notify, s);
        s->notifier = false;
    }
    /*
     * QEMU restores a read-only base after an intermediate commit only;
     * active commit leaves it writable.  Its metadata was flushed.
     */
    if (s->base_made_rw && !s->active && !s->flush_failed) {
        bdrv_reopen_read_only(s->base, true, NULL);
    }
}

static void commit_free(Job *job)
{
    CommitJob *s = (CommitJob *)job;
    Range *r;

    if (s->kick_source) {
        g_source_remove(s->kick_source);
    }
    if (s->notifier) {
        bdrv_remove_write_notifier(s->top, write_notify, s);
    }
    block_job_free(&s->common);
    if (s->top) {
        blk_job_release(s->top);
        bdrv_unref(s->top);
    }
    if (s->base) {
        blk_job_release(s->base);
        bdrv_unref(s->base);
    }
    while ((r = g_queue_pop_head(&s->redo))) {
        g_free(r);
    }
    if (s->done_ivs) {
        g_array_free(s->done_ivs, TRUE);
    }
    g_free(s->dirty.words);
    g_free(s->busy.words);
    g_free(s->backing_file);
}

static const JobDriver commit_driver = {
    .type = JOB_TYPE_COMMIT,
    .instance_size = sizeof(CommitJob),
    .block_job = true,
    .run = commit_run,
    .resume = commit_resume,
    .user_resume = commit_user_resume,
    .complete = commit_complete,
    .kick = commit_kick,
    .cancel = commit_cancel,
    .prepare = commit_prepare,
    .abort = commit_abort,
    .clean = commit_clean,
    .free = commit_free,
    .event_data = block_job_event_data,
};

/* ---- QMP --------------------------------------------------------------- */

/* QEMU's bdrv_filter_or_cow_bs(): a filter's child, else the backing. */
static BlockNode *chain_next(BlockNode *bn)
{
    return bn->drv->is_filter ? bdrv_file_child(bn) : bdrv_backing(bn);
}

static bool chain_contains(BlockNode *top, BlockNode *bn)
{
    for (BlockNode *n = top; n; n = chain_next(n)) {
        if (n == bn) {
            return true;
        }
    }
    return false;
}

/* QEMU's bdrv_backing_chain_next(). */
static BlockNode *backing_chain_next(BlockNode *bn)
{
    return bdrv_skip_filters(bdrv_backing(bdrv_skip_filters(bn)));
}

/* The node above @bn in @active's chain (filters skipped), or NULL. */
static BlockNode *find_overlay(BlockNode *active, BlockNode *bn)
{
    bn = bdrv_skip_filters(bn);
    for (active = bdrv_skip_filters(active); active;
         active = backing_chain_next(active)) {
        if (backing_chain_next(active) == bn) {
            return active;
        }
    }
    return NULL;
}

/* QEMU's path_has_protocol(). */
static bool has_protocol(const char *path)
{
    const char *p = path + strcspn(path, ":/");

    return *p == ':';
}

/* @name relative to the directory of @bn's image, as QEMU resolves it. */
static char *make_absolute(BlockNode *bn, const char *name)
{
    const char *f = bdrv_filename(bn);
    const char *slash = strrchr(f, '/');

    if (g_path_is_absolute(name) || !*f || has_protocol(f) || !slash) {
        return g_strdup(name);
    }
    return g_strdup_printf("%.*s%s", (int)(slash + 1 - f), f, name);
}

/*
 * QEMU's bdrv_find_backing_image(): the node below @bs whose name, as
 * the image above it records it, is @name (compared as canonical paths
 * unless a protocol is involved; a backing given by node name compares
 * the node's filename).
 */
static BlockNode *find_backing_image(BlockNode *bs, const char *name)
{
    bool proto = has_protocol(name);

    for (BlockNode *cur = bdrv_skip_filters(bs); cur && bdrv_backing(cur);
         cur = backing_chain_next(cur)) {
        BlockNode *below = backing_chain_next(cur);
        g_autofree char *full = bdrv_full_backing_filename(
            bdrv_filename(cur), bdrv_backing_file(cur));
        g_autofree char *want = NULL;
        g_autofree char *real_want = NULL;
        g_autofree char *real_full = NULL;

        if (!bdrv_backing_file(cur) || strcmp(full, bdrv_filename(below))) {
            /* overridden: only the node's own filename can match */
            if (!strcmp(name, bdrv_filename(below))) {
                return below;
            }
            continue;
        }
        if (proto || has_protocol(bdrv_backing_file(cur))) {
            if (!strcmp(name, bdrv_backing_file(cur)) || !strcmp(name, full)) {
                return below;
            }
            continue;
        }
        want = make_absolute(cur, name);
        real_want = realpath(want, NULL);
        real_full = realpath(full, NULL);
        if (real_want && real_full && !strcmp(real_want, real_full)) {
            return below;
        }
    }
    return NULL;
}

/*
 * QEMU's qmp_get_root_bs(): no node uses it, and no block job either
 * (a job's nodes have the job as a parent in QEMU).
 */
static bool is_root(BlockNode *bn)
{
    for (guint i = 0; i < bn->parents->len; i++) {
        BdrvChild *c = g_ptr_array_index(bn->parents, i);

        if (c->parent && c->parent->refcnt > 0) {
            return false;
        }
    }
    return !bdrv_op_is_blocked(bn, NULL);
}

/* The checks and their order are QEMU 7.2's qmp_block_commit(). */
static bool qmp_block_commit(const json_t *args, json_t **ret, Error **errp)
{
    const char *job_id = qjson_get_str_or(args, "job-id", NULL);
    const char *device = qjson_get_str(args, "device");
    const char *base_node = qjson_get_str_or(args, "base-node", NULL);
    const char *base = qjson_get_str_or(args, "base", NULL);
    const char *top_node = qjson_get_str_or(args, "top-node", NULL);
    const char *top = qjson_get_str_or(args, "top", NULL);
    const char *backing_file = qjson_get_str_or(args, "backing-file", NULL);
    BlockdevOnError on_error = block_on_error_parse(
        qjson_get_str_or(args, "on-error", NULL), BLOCKDEV_ON_ERROR_REPORT);
    BlockNode *bs = bdrv_lookup(device, device, NULL);
    BlockNode *top_bs;
    BlockNode *base_bs;
    CommitJob *s;
    bool active;

    if (!bs) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
                  device);
        return false;
    }
    if (!is_root(bs)) {
        error_setg(errp, "Need a root block node");
        return false;
    }
    if (bdrv_op_is_blocked(bs, errp)) {
        return false;
    }

    top_bs = bs;
    if (top_node && top) {
        error_setg(errp, "'top-node' and 'top' are mutually exclusive");
        return false;
    } else if (top_node) {
        top_bs = bdrv_lookup(NULL, top_node, errp);
        if (!top_bs) {
            return false;
        }
        if (!chain_contains(bs, top_bs)) {
            error_setg(errp, "'%s' is not in this backing file chain",
                       top_node);
            return false;
        }
    } else if (top && strcmp(bdrv_filename(bs), top)) {
        top_bs = find_backing_image(bs, top);
    }
    if (!top_bs) {
        error_setg(errp, "Top image file %s not found", top ? top : "NULL");
        return false;
    }

    if (base_node && base) {
        error_setg(errp, "'base-node' and 'base' are mutually exclusive");
        return false;
    } else if (base_node) {
        base_bs = bdrv_lookup(NULL, base_node, errp);
        if (!base_bs) {
            return false;
        }
        if (!chain_contains(top_bs, base_bs)) {
            error_setg(errp, "'%s' is not in this backing file chain",
                       base_node);
            return false;
        }
    } else if (base) {
        base_bs = find_backing_image(top_bs, base);
        if (!base_bs) {
            error_setg(errp, "Can't find '%s' in the backing chain", base);
            return false;
        }
    } else {
        base_bs = bdrv_skip_filters(top_bs);
        while (backing_chain_next(base_bs)) {
            base_bs = backing_chain_next(base_bs);
        }
    }

    for (BlockNode *it = top_bs; it && it != chain_next(base_bs);
         it = chain_next(it)) {
        if (bdrv_op_is_blocked(it, errp)) {
            return false;
        }
    }
    if (top_bs == base_bs) {
        error_setg(errp, "cannot commit an image into itself");
        return false;
    }

    active = bdrv_skip_filters(top_bs) == bdrv_skip_filters(bs);
    if (active) {
        if (backing_file) {
            error_setg(errp, "'backing-file' specified, but 'top' is the "
                       "active layer");
            return false;
        }
    } else {
        BlockNode *overlay = find_overlay(bs, top_bs);

        if (overlay && bdrv_op_is_blocked(overlay, errp)) {
            return false;
        }
        if (bdrv_skip_filters(top_bs) == bdrv_skip_filters(base_bs)) {
            error_setg(errp, "Invalid files for merge: top and base are the "
                       "same");
            return false;
        }
    }
    if (qjson_has(args, "filter-node-name")) {
        /* QEMU inserts a commit_top/mirror_top filter node; qmpd has none */
        error_setg(errp, "qmpd does not support 'filter-node-name' in "
                   "block-commit");
        return false;
    }

    s = block_job_create(job_id, &commit_driver, bs,
                         qjson_get_int_or(args, "speed", 0),
                         qjson_get_bool_or(args, "auto-finalize", true),
                         qjson_get_bool_or(args, "auto-dismiss", true),
                         errp);
    if (!s) {
        return false;
    }
    /* QEMU's commit job writes through backends of its own on both */
    s->top = top_bs;
    bdrv_ref(top_bs);
    blk_job_hold(top_bs);
    s->base = base_bs;
    bdrv_ref(base_bs);
    blk_job_hold(base_bs);
    s->active = active;
    s->on_error = on_error;
    s->backing_file = g_strdup(backing_file);
    g_queue_init(&s->redo);
    s->done_ivs = g_array_new(FALSE, FALSE, sizeof(Interval));
    if (bdrv_is_read_only(base_bs)) {
        if (!bdrv_reopen_read_only(base_bs, false, errp)) {
            job_early_fail(&s->common.job);
            return false;
        }
        s->base_made_rw = true;
    }
    /* the nodes that leave the graph, and base */
    for (BlockNode *it = top_bs; it && it != base_bs; it = chain_next(it)) {
        block_job_add_node(&s->common, it, NULL);
    }
    block_job_add_node(&s->common, base_bs, NULL);
    job_start(&s->common.job);
    return true;
}

const QapiHandler commit_qmp_handlers[] = {
    { "block-commit", qmp_block_commit, NULL },
};

const size_t commit_qmp_handlers_count = G_N_ELEMENTS(commit_qmp_handlers);
