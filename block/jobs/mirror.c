/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * drive-mirror and blockdev-mirror: live block copy of a device's root
 * node (the source) to a target node, as QEMU 7.2's mirror job, ending
 * with the switch of every user of the source to the target.
 *
 * Design
 *
 *   The job keeps two bitmaps over the source at the job's granularity
 *   (util/hbitmap): "dirty", what the target does not have yet, and
 *   "busy", what a copy in flight covers.  Three phases fill "dirty"
 *   and empty it:
 *
 *     zeroing   sync full onto a target that may hold data: zero the
 *               whole target first (when it can deallocate while
 *               zeroing), else mark everything dirty.  (QEMU's
 *               zero_target; blockdev-mirror and drive-mirror's mode
 *               existing.)
 *     scan      mark what sync selects: full, whatever the chain holds
 *               (bdrv_is_allocated_above(src, NULL)); top, what the top
 *               holds; with __com.qmpd_shared-base, what the layers above
 *               that node hold; none, nothing.
 *     copy      pick dirty granules that are not busy, from a cursor that
 *               wraps (merged into requests of up to op_max bytes, with
 *               at most MAX_IN_FLIGHT requests and buf_size bytes of
 *               buffers in flight), and copy each:
 *
 *        range lock on src ---> clear dirty, block status through the
 *          (guest writes              chain (under the lock: a
 *           to it wait;               stale answer cannot lose a write)
 *           in-flight ones            |
 *           are waited for)           +-- data:  read src --> unlock
 *                                     |          --> write target
 *                                     +-- zeroes: unlock --> write
 *                                                zeroes on target
 *        done: clear busy, progress += bytes; failure: dirty again,
 *        on-source-error (read) or on-target-error (write) applies.
 *
 *   A write notifier on src marks every guest write dirty when it
 *   starts (after any wait for a range lock), so a write that lands
 *   during a copy's read waits and dirties the range again afterwards,
 *   and a granule is never copied twice at once: the target's writes
 *   never overtake each other.  Before the scan a range lock over the
 *   whole source waits for guest writes that started before the
 *   notifier was added.
 *
 *   In write-blocking mode (copy-mode) guest writes to src are held by
 *   a write hook (io.c) until the same data has been written to the
 *   target as well (granules a copy has in flight are waited for first,
 *   and marked busy meanwhile), and are not marked dirty; so once ready
 *   the target needs no background copying at all.
 *
 *   With __com.qmpd_auto-write-blocking (a qmpd extension) a job in
 *   background mode watches whether it converges, and switches itself
 *   to write-blocking once it does not.  Every 100 ms it samples what
 *   is left to copy (dirty + in flight, the job's len - offset); the
 *   window starts again at each sample that is a new lowest (or zero:
 *   in sync), and at each moment the pump finds nothing left.  The
 *   count has stopped shrinking when the window holds 10 samples (1 s)
 *   and the job's own copies wrote twice its buffer in it (2 * buf-size,
 *   or twice the disk when that is smaller):
 *
 *     left  ^  guest faster than the copy       converging
 *           |    .-.   .--.  .-.              \_
 *           |  _/   '-'    ''   '-.  ...        '-._  new lowest
 *           | /  no new lowest for >= 1 s and     '-._ after each
 *           |/   >= 2 buffers copied: switch          '-. wave
 *           +--------------------------------------------> time
 *
 *   The time keeps a bursty guest from triggering it.  The bytes keep
 *   a job whose count falls in steps from triggering it between two
 *   steps: under a speed limit the job fills its whole buffer with
 *   requests at once and then sleeps for all of them, so the count
 *   drops by up to a buffer at a time, seconds apart; two buffers
 *   copied without a new lowest are two such waves that gained nothing.
 *
 *   A guest that writes at random faster than the copy leaves a count
 *   that still falls, more and more slowly, for many seconds: most of
 *   its writes land where the copy has not been yet, fewer as the copy
 *   goes on, until the count levels off.  Background copying gets to
 *   nothing left only if the job copies faster than the guest writes
 *   (once all is copied every guest write makes new dirt), so the job
 *   also switches when, in two windows in a row (each at least 1 s and
 *   two buffers of copying), the guest wrote (write notifier bytes) at
 *   least three quarters of what the job copied.  A guest that writes
 *   nothing never triggers it.
 *
 *   The switch installs the write hook as write-blocking mode does from
 *   the start (writes already past it were marked dirty by the
 *   notifier, which stays) and keeps it to the end.  From then on the
 *   guest dirties only the granules it writes in part (none with
 *   writes aligned to the granularity), so the count falls to zero and
 *   READY (and the final sync of job-complete) comes at any guest write
 *   rate, the guest's writes slowed to what the target takes.  The
 *   switch is logged (LOG_INFO); query-block-jobs stays QEMU's.
 *
 *   A target whose image names a backing file that is not open yet
 *   (drive-mirror's targets until the switch, as in QEMU) must never get
 *   part of a cluster written, nor zeroes that deallocate: it would read
 *   zeroes, or its backing, where the source has other data.  Copies
 *   then cover whole target clusters, zeroes are written as data, and
 *   write-blocking writes go to the target in whole clusters only (the
 *   rest is made dirty).
 *
 *   Nothing dirty and nothing in flight: the target is flushed (when
 *   it was written) and the job is READY; from then on it copies what
 *   the guest writes, looking every 100 ms as QEMU's ready job does (so
 *   that a hot range is copied once per slice, not once per write).
 *   job-complete (or a cancel without force, which
 *   ends in sync without switching) takes a range lock over the whole
 *   source: guest writes are held back, as QEMU's drain holds them,
 *   the target is flushed, and prepare() switches: the target's
 *   backing is set (drive-mirror mode absolute-paths: the source's
 *   backing for top, the source for none, the shared base) or opened
 *   from its header (mode existing), and the target replaces the
 *   source (or the node replaces names) in every backend and parent.
 *   The writes held back then start on the target.
 *
 * Active commit (block-commit of the device's active layer) is this job
 * with the commit job type, as in QEMU (commit_active_start()): top is
 * the source, base the target, what is allocated above base is copied
 * and the switch replaces top by base.  commit.c checks the command and
 * calls mirror_commit_create(); here it differs only in growing a base
 * smaller than top before it starts, and in what it holds.
 *
 * Everything the job waits for is counted with block_job_io_begin/end;
 * pause, cancel and the end of the job wait for the count to reach
 * zero (the end also for the write-blocking guest writes, counted
 * apart: a pause does not stop them).  job_completed() is only called
 * at the tail of a callback or hook, since it may free the job.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/job-filter.h"
#include "qapi/qjson.h"
#include "util/hbitmap.h"
#include "util/log.h"

#define MAX_IN_FLIGHT 16
#define MAX_IO_BYTES (1024 * 1024ull)
#define DEFAULT_BUF_SIZE (MAX_IN_FLIGHT * MAX_IO_BYTES)
/* active commit's dirty granule (qmpd's commit always used 64 KiB) */
#define COMMIT_GRANULARITY (64 * 1024ull)
/* QEMU zeroes a target in requests of up to INT_MAX bytes */
#define ZERO_CHUNK (1ull << 30)
/* what the job takes on mirror_top: the source is not resized under it */
#define MIRROR_JOB_PERM BLK_PERM_CONSISTENT_READ
#define MIRROR_JOB_SHARED (BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE \
                           | BLK_PERM_WRITE_UNCHANGED)
/* QEMU's BLOCK_JOB_SLICE_TIME: how often a ready job looks for dirt */
#define READY_SLICE_NS (100 * 1000 * 1000ll)
/* __com.qmpd_auto-write-blocking: sample period and window (see above) */
#define AUTO_WB "__com.qmpd_auto-write-blocking"
#define CONVERGE_SAMPLE_MS 100
#define CONVERGE_SAMPLES 10
/* pace windows in a row the guest must win (see pace_says_switch()) */
#define PACE_LOST_WINDOWS 2

typedef enum {
    MIRROR_SYNC_TOP,
    MIRROR_SYNC_FULL,
    MIRROR_SYNC_NONE,
} MirrorSync;

/* What becomes of the target's backing (QEMU's BlockMirrorBackingMode). */
typedef enum {
    MIRROR_LEAVE_BACKING_CHAIN,     /* blockdev-mirror: as it is */
    MIRROR_SOURCE_BACKING_CHAIN,    /* set to the source's (or base) */
    MIRROR_OPEN_BACKING_CHAIN,      /* open what its header names */
} MirrorBackingMode;

typedef struct MirrorJob MirrorJob;

typedef struct {
    MirrorJob *s;
    uint64_t off;
    uint64_t len;
    uint64_t buf_len;           /* of buf_in_flight, still reserved */
    void *buf;
    BdrvRangeLock *lock;        /* held from the pick to the read's end */
    bool zeroing;               /* the initial zeroing: no progress */
} MirrorOp;

/* A guest write held in write-blocking mode (io.c's write hook). */
typedef struct {
    MirrorJob *s;
    uint64_t off;
    uint64_t len;
    uint64_t head;              /* bytes left out at each end: dirty */
    uint64_t tail;              /* partial granules, copied by the job */
    bool cow;                   /* head and tail are made dirty */
    int type;                   /* BDRV_HOOK_* */
    const void *buf;
    int flags;
    BdrvCb *cb;                 /* the write's own completion */
    void *opaque;
    int ret;                    /* the source write's result */
} ActiveWrite;

struct MirrorJob {
    BlockJob common;
    BlockNode *src;             /* referenced */
    BlockNode *filter;          /* mirror_top, in src's place until the
                                   job exits; referenced */
    BlockNode *target;          /* referenced */
    BlockNode *base;            /* copy what is allocated above it (NULL:
                                   the whole chain); referenced */
    BlockNode *new_backing;     /* MIRROR_SOURCE_BACKING_CHAIN; ref'd */
    MirrorBackingMode backing_mode;
    bool is_none;
    bool zero_target;
    bool write_blocking;
    char *replaces;
    BlockNode *to_replace;      /* looked up by complete; referenced */
    uint64_t granularity;
    uint64_t buf_size;
    uint64_t op_max;            /* bytes per copy request */
    uint64_t cow_cluster;       /* target cluster, when partial writes to
                                   its clusters would lose backing data */
    uint64_t cow_align;         /* cow_cluster if larger than a granule */
    uint64_t target_cluster;
    bool unmap;
    bool zero_ok;               /* the target zeroes by deallocating */
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;
    bool commit;                /* active commit: the source is held as
                                   a backend too, a short target grows,
                                   each copy counts for the speed when
                                   it is issued */
    uint64_t len;

    HBitmap *dirty;
    HBitmap *busy;
    uint64_t cursor;
    unsigned ops;               /* copy/zero requests in flight */
    uint64_t bytes_in_flight;
    uint64_t buf_in_flight;
    uint64_t active_bytes;      /* write-blocking writes to the target */
    unsigned active_count;      /* guest writes held (not in in_flight:
                                   a pause need not wait for them) */
    GQueue active_waiting;      /* ActiveWrite *: wait for busy granules */
    bool hook;
    bool notifier;

    /* AUTO_WB: the convergence watch, until it switches to blocking */
    bool auto_wb;
    guint converge_source;      /* the CONVERGE_SAMPLE_MS timer */
    unsigned converge_samples;  /* samples since the window started */
    uint64_t converge_min;      /* lowest left-to-copy in the window */
    uint64_t converge_mark;     /* @copied when the window started */
    uint64_t guest_written;     /* bytes the guest wrote to the source */
    unsigned pace_samples;      /* samples in the current pace window */
    unsigned pace_lost;         /* pace windows in a row the guest won */
    uint64_t pace_copied;       /* @copied when the window started */
    uint64_t pace_written;      /* @guest_written when it started */
    uint64_t copied;            /* bytes the job's own copies wrote */

    bool started;               /* the barrier after the notifier passed */
    bool in_run;
    bool done;                  /* finishing: no more pumping */
    int ret;                    /* the reported error that ends the job */
    int final_ret;
    bool need_flush;            /* the target was written since a flush */
    int64_t ready_remaining;    /* remaining when the READY flush began */
    guint kick_source;


    uint64_t zero_off;          /* the zeroing phase */
    bool zeroing_done;
    uint64_t scan_off;          /* the allocation scan */
    bool scan_busy;
    bool scan_done;

    bool should_complete;
    bool final_wait;            /* the whole-source lock was asked for */
    BdrvRangeLock *final_lock;
    bool drained;               /* final_lock kept until prepare/abort */
    bool exited;                /* prepare or abort ran */
};

static void mirror_pump(MirrorJob *s);
static void converge_restart(MirrorJob *s);
static void pace_restart(MirrorJob *s, bool lost);
static void converge_stop(MirrorJob *s);

/* ---- helpers ----------------------------------------------------------- */

static gboolean kick_cb(gpointer opaque)
{
    MirrorJob *s = opaque;

    s->kick_source = 0;
    mirror_pump(s);
    return G_SOURCE_REMOVE;
}

/* Pump from the main loop: for hooks called from inside other code. */
static void kick(MirrorJob *s)
{
    if (!s->kick_source && !s->done) {
        s->kick_source = g_idle_add_full(G_PRIORITY_DEFAULT, kick_cb, s,
                                         NULL);
    }
}

static void update_remaining(MirrorJob *s)
{
    job_progress_set_remaining(&s->common.job,
                               hbitmap_count(s->dirty) + s->bytes_in_flight
                               + s->active_bytes);
}

static void mirror_sleep_cb(BlockJob *bj)
{
    mirror_pump((MirrorJob *)bj);
}

/* Stop sleeping for the speed limit (the wait itself is kept). */
static void wake(MirrorJob *s)
{
    if (s->common.sleep_source) {
        g_source_remove(s->common.sleep_source);
        s->common.sleep_source = 0;
    }
}

/* QEMU's mirror_error_action(): each failure is reported. */
static void error_action(MirrorJob *s, bool is_read, int ret)
{
    BlockErrorAction action = block_job_error_action(
        &s->common, is_read ? s->on_source_error : s->on_target_error,
        is_read, ret);

    if (action == BLOCK_ERROR_ACTION_REPORT && s->ret == 0) {
        s->ret = ret;
    }
}

/* ---- finishing --------------------------------------------------------- */

static void finish_now(MirrorJob *s)
{
    job_completed(&s->common.job, s->final_ret, NULL);
}

/* Nothing is in flight: end the job. */
static void mirror_finish(MirrorJob *s, int ret)
{
    s->done = true;
    s->final_ret = ret;
    if (s->kick_source) {
        g_source_remove(s->kick_source);
        s->kick_source = 0;
    }
    converge_stop(s);
    finish_now(s);
}

/* ---- copies ------------------------------------------------------------ */

static void active_retry(MirrorJob *s);

static void op_end(MirrorOp *op)
{
    MirrorJob *s = op->s;

    hbitmap_reset(s->busy, op->off, op->len);
    s->ops--;
    s->bytes_in_flight -= op->len;
    s->buf_in_flight -= op->buf_len;
    if (op->buf) {
        ioq_buf_free(op->buf);
    }
    g_free(op);
    block_job_io_end(&s->common);
    /* guest writes waiting for these granules (write-blocking) go on */
    active_retry(s);
}

static void op_failed(MirrorOp *op, bool is_read, int ret)
{
    MirrorJob *s = op->s;

    /* to be copied again */
    hbitmap_set(s->dirty, op->off, op->len);
    op_end(op);
    update_remaining(s);
    error_action(s, is_read, ret);
    mirror_pump(s);
}

static void op_write_cb(void *opaque, int ret)
{
    MirrorOp *op = opaque;
    MirrorJob *s = op->s;

    if (ret < 0) {
        op_failed(op, false, ret);
        return;
    }
    if (!op->zeroing) {
        job_progress_update(&s->common.job, op->len);
        s->copied += op->len;
    }
    op_end(op);
    update_remaining(s);
    mirror_pump(s);
}

static void op_read_cb(void *opaque, int ret)
{
    MirrorOp *op = opaque;
    MirrorJob *s = op->s;

    /* guest writes held back may go now; they dirty the range again */
    bdrv_range_unlock(op->lock);
    op->lock = NULL;
    if (ret < 0) {
        op_failed(op, true, ret);
        return;
    }
    s->need_flush = true;
    bdrv_write(s->target, op->off, op->len, op->buf, 0, op_write_cb, op);
}

/* Zeroes may go as a zero write when they cover whole target clusters. */
static bool zero_aligned(MirrorJob *s, uint64_t off, uint64_t len)
{
    uint64_t c = s->target_cluster ? s->target_cluster : 1;

    return off % c == 0 && (len % c == 0 || off + len == s->len);
}

static void op_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    MirrorOp *op = opaque;
    MirrorJob *s = op->s;
    uint64_t n = op->len;

    if (ret >= 0) {
        /* one method per request: shorten it to what the answer covers */
        n = MIN(n, pnum);
        if (n < op->len) {
            n = MAX(n / s->granularity * s->granularity, s->granularity);
        }
        if (n < op->len && !s->cow_align) {
            uint64_t rest = op->len - n;

            hbitmap_set(s->dirty, op->off + n, rest);
            hbitmap_reset(s->busy, op->off + n, rest);
            s->bytes_in_flight -= rest;
            op->len = n;
        }
    }
    /*
     * Zeroes only where the answer covers the whole request, and not on
     * a target that does not have its backing open yet: its zero writes
     * could leave clusters that read from the backing once it is there
     */
    if (ret >= 0 && !(status & BDRV_STATUS_DATA) && pnum >= op->len
        && !s->cow_cluster && zero_aligned(s, op->off, op->len)) {
        /* QEMU's MIRROR_METHOD_ZERO; zeroes do not count for the speed */
        bdrv_range_unlock(op->lock);
        op->lock = NULL;
        s->buf_in_flight -= op->buf_len;
        op->buf_len = 0;
        s->need_flush = true;
        bdrv_write_zeroes(s->target, op->off, op->len,
                          s->unmap ? BDRV_REQ_MAY_UNMAP : 0, op_write_cb, op);
        return;
    }
    /* reserved for the whole pick; what is not needed goes back */
    s->buf_in_flight -= op->buf_len - op->len;
    op->buf_len = op->len;
    op->buf = ioq_buf_alloc(op->len);
    if (!s->commit) {
        block_job_rate_account(&s->common, op->len);
    }
    /* under the op's range lock (op_locked_cb) */
    bdrv_read_locked(s->src, op->off, op->len, op->buf, op_read_cb, op);
}

static void op_locked_cb(void *opaque, BdrvRangeLock *lock)
{
    MirrorOp *op = opaque;
    MirrorJob *s = op->s;

    /* no guest write is in flight on the range; new ones wait */
    op->lock = lock;
    hbitmap_reset(s->dirty, op->off, op->len);
    update_remaining(s);
    bdrv_block_status_above(s->src, op->off, op->len, op_status_cb, op);
}

static MirrorOp *op_new(MirrorJob *s, uint64_t off, uint64_t len)
{
    MirrorOp *op = g_new0(MirrorOp, 1);

    op->s = s;
    op->off = off;
    op->len = len;
    hbitmap_set(s->busy, off, len);
    s->ops++;
    s->bytes_in_flight += len;
    block_job_io_begin(&s->common);
    return op;
}

static void issue_copy(MirrorJob *s, uint64_t off, uint64_t len)
{
    MirrorOp *op = op_new(s, off, len);

    op->buf_len = len;
    s->buf_in_flight += len;
    bdrv_range_lock(s->src, off, len, op_locked_cb, op);
}

/*
 * The next dirty range that no copy has in flight, from the cursor on
 * (wrapping), at most @max bytes.  With cow_align the range covers
 * whole target clusters.
 */
static bool pick(MirrorJob *s, uint64_t max, uint64_t *poff, uint64_t *plen)
{
    uint64_t pos = s->cursor;
    bool wrapped = false;

    for (;;) {
        uint64_t start;
        uint64_t len;
        int64_t b;

        if (pos >= s->len
            || !hbitmap_next_dirty_area(s->dirty, pos, max, &start, &len)) {
            if (wrapped || s->cursor == 0) {
                return false;
            }
            wrapped = true;
            pos = 0;
            continue;
        }
        if (wrapped && start >= s->cursor) {
            return false;
        }
        b = hbitmap_next_dirty(s->busy, start);
        if (b == (int64_t)start) {
            int64_t c = hbitmap_next_clean(s->busy, start);

            pos = c < 0 ? s->len : (uint64_t)c;
            continue;
        }
        if (b >= 0 && (uint64_t)b < start + len) {
            len = b - start;
        }
        if (s->cow_align) {
            uint64_t a = s->cow_align;
            uint64_t es = start / a * a;
            uint64_t ee = MIN(s->len, (start + len + a - 1) / a * a);

            b = hbitmap_next_dirty(s->busy, es);
            if (b >= 0 && (uint64_t)b < ee) {
                pos = start + len;
                continue;
            }
            start = es;
            len = ee - es;
        }
        *poff = start;
        *plen = len;
        s->cursor = start + len < s->len ? start + len : 0;
        return true;
    }
}

/* ---- zeroing and scan -------------------------------------------------- */

static void pump_zeroing(MirrorJob *s)
{
    while (s->ops < MAX_IN_FLIGHT && s->zero_off < s->len) {
        uint64_t n = MIN(s->len - s->zero_off, ZERO_CHUNK);
        MirrorOp *op = op_new(s, s->zero_off, n);

        op->zeroing = true;
        s->zero_off += n;
        s->need_flush = true;
        bdrv_write_zeroes(s->target, op->off, n,
                          s->unmap ? BDRV_REQ_MAY_UNMAP : 0, op_write_cb, op);
    }
    if (s->zero_off >= s->len && s->common.in_flight == 0) {
        s->zeroing_done = true;
    }
}

static void scan_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    MirrorJob *s = opaque;

    s->scan_busy = false;
    block_job_io_end(&s->common);
    if (ret < 0) {
        /* QEMU's dirty init fails the job */
        if (s->ret == 0) {
            s->ret = ret;
        }
        mirror_pump(s);
        return;
    }
    pnum = MAX(1, MIN(pnum, s->len - s->scan_off));
    if (status) {
        hbitmap_set(s->dirty, s->scan_off, pnum);
    }
    s->scan_off += pnum;
    s->scan_done = s->scan_off >= s->len;
    update_remaining(s);
    mirror_pump(s);
}

static void scan_start(MirrorJob *s)
{
    s->scan_busy = true;
    block_job_io_begin(&s->common);
    bdrv_is_allocated_above(s->src, s->base, s->scan_off,
                            s->len - s->scan_off, scan_cb, s);
}

/* ---- READY and the end ------------------------------------------------- */

static void sync_flushed_cb(void *opaque, int ret)
{
    MirrorJob *s = opaque;
    Job *job = &s->common.job;

    block_job_io_end(&s->common);
    if (ret < 0) {
        s->need_flush = true;
        error_action(s, false, ret);
    } else if (!job->ready && !job_is_cancelled(job) && s->ret == 0) {
        /*
         * READY tells of the point the flush made durable: what the guest
         * wrote during the flush is counted again right after the event,
         * as QEMU's job counts it on its next pass
         */
        job_progress_set_remaining(job, s->ready_remaining);
        job_transition_to_ready(job);
        update_remaining(s);
    }
    mirror_pump(s);
}

/*
 * Let the guest writes held back by the whole-source lock go: to @to
 * when the device has just been switched to it, else where they were.
 */
static void release_final_lock(MirrorJob *s, BlockNode *to)
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
    MirrorJob *s = opaque;

    block_job_io_end(&s->common);
    if (ret < 0) {
        release_final_lock(s, NULL);
        s->need_flush = true;
        error_action(s, false, ret);
        mirror_pump(s);
        return;
    }
    /* prepare() switches to the target and releases the lock */
    mirror_finish(s, 0);
}

static void final_locked_bh(void *opaque, int ret)
{
    MirrorJob *s = opaque;
    Job *job = &s->common.job;

    s->final_wait = false;
    if (!hbitmap_count(s->dirty) && s->common.in_flight == 1
        && !s->active_count && !job_is_cancelled(job) && s->ret == 0) {
        /*
         * QEMU keeps the source drained from here to the graph change,
         * and the drain counts as a pause (query-block-jobs: "paused")
         */
        s->drained = true;
        job->pause_count++;
        if (s->need_flush) {
            s->need_flush = false;
            bdrv_flush(s->target, final_flushed_cb, s);
            return;
        }
        final_flushed_cb(s, 0);
        return;
    }
    /* a write got in before the lock: copy it first */
    release_final_lock(s, NULL);
    block_job_io_end(&s->common);
    mirror_pump(s);
}

static void final_locked_cb(void *opaque, BdrvRangeLock *lock)
{
    MirrorJob *s = opaque;

    s->final_lock = lock;
    /* the grant may come inside bdrv_range_lock(); go on from the loop */
    ioq_defer_int(final_locked_bh, s, 0);
}

static void pump_copy(MirrorJob *s)
{
    BlockJob *bj = &s->common;
    Job *job = &bj->job;
    uint64_t off;
    uint64_t len;

    update_remaining(s);
    while (s->ops < MAX_IN_FLIGHT && !s->final_wait) {
        uint64_t budget = s->buf_size - MIN(s->buf_size, s->buf_in_flight);
        uint64_t max = MIN(s->op_max, budget / s->granularity
                           * s->granularity);

        /*
         * Copies count for the speed once their reads start, so the
         * whole buffer goes out before the first delay: QEMU 7.2 does
         * the same (at 4 MiB/s both copy 16 MiB at once, then wait 4 s)
         */
        if (max < s->granularity
            || block_job_rate_wait(bj, mirror_sleep_cb)) {
            break;
        }
        if (!pick(s, max, &off, &len)) {
            break;
        }
        issue_copy(s, off, len);
        if (s->commit) {
            /*
             * qmpd's active commit has always waited after each copy
             * (zeroes too), not after a buffer's worth as mirror does
             */
            block_job_rate_account(bj, len);
        }
    }
    if (bj->sleep_source || bj->in_flight || s->active_count
        || hbitmap_count(s->dirty) || s->final_wait) {
        return;
    }
    /* nothing left: the count reached zero, it does shrink */
    converge_restart(s);
    pace_restart(s, false);
    if (!job->ready) {
        /* in sync: flush the target, then READY (QEMU's mirror_flush) */
        if (!s->need_flush) {
            /* nothing written: QEMU's flush returns at once */
            job_transition_to_ready(job);
        } else {
            s->need_flush = false;
            s->ready_remaining = job->progress_total - job->progress_current;
            block_job_io_begin(bj);
            bdrv_flush(s->target, sync_flushed_cb, s);
            return;
        }
    }
    if (s->should_complete || job->cancelled) {
        /*
         * In sync and to end (a cancel without force when ready ends in
         * sync, without the switch): hold guest writes back, as QEMU's
         * drain does, so that nothing is dirty when prepare() runs
         */
        s->final_wait = true;
        block_job_io_begin(bj);
        bdrv_range_lock(s->src, 0, s->len, final_locked_cb, s);
        return;
    }
    /*
     * In sync: as QEMU's ready job, look again a slice later (complete,
     * cancel and pause wake it), so that what the guest writes meanwhile
     * is copied together, once
     */
    block_job_sleep_ns(bj, READY_SLICE_NS, mirror_sleep_cb);
}

/* ---- the pump ---------------------------------------------------------- */

static void mirror_pump(MirrorJob *s)
{
    BlockJob *bj = &s->common;
    Job *job = &bj->job;

    if (s->done || !s->started) {
        return;
    }
    if (bj->sleep_source) {
        return;
    }
    if (job_is_cancelled(job) || s->ret < 0) {
        if (bj->in_flight == 0 && s->active_count == 0) {
            mirror_finish(s, s->ret < 0 ? s->ret : -ECANCELED);
        }
        return;
    }
    if (job_should_pause(job)) {
        if (bj->in_flight == 0) {
            job_pause_point(job);
        }
        return;
    }
    if (!s->zeroing_done) {
        pump_zeroing(s);
        if (!s->zeroing_done) {
            return;
        }
    }
    if (!s->scan_done) {
        if (!s->scan_busy) {
            scan_start(s);
        }
        return;
    }
    pump_copy(s);
}

/* ---- write-blocking mode ----------------------------------------------- */

static void active_start(ActiveWrite *w);

/* Busy granules were released: start the writes that waited for them. */
static void active_retry(MirrorJob *s)
{
    guint n = g_queue_get_length(&s->active_waiting);

    while (n--) {
        active_start(g_queue_pop_head(&s->active_waiting));
    }
}

/* A guest write in write-blocking mode went to both sides (or failed). */
static void active_done(ActiveWrite *w, int ret)
{
    MirrorJob *s = w->s;
    BdrvCb *cb = w->cb;
    void *opaque = w->opaque;

    hbitmap_reset(s->busy, w->off, w->len);
    s->active_count--;
    g_free(w);
    active_retry(s);
    /* the pump may end the job: the guest's callback goes last */
    mirror_pump(s);
    cb(opaque, ret);
}

static void active_target_cb(void *opaque, int ret)
{
    ActiveWrite *w = opaque;
    MirrorJob *s = w->s;
    uint64_t g = s->granularity;
    uint64_t o = w->off + w->head;
    uint64_t n = w->len - w->head - w->tail;

    s->active_bytes -= n;
    if (ret < 0) {
        /* QEMU: the whole area dirty again, the target's error policy */
        uint64_t a = o / g * g;

        hbitmap_set(s->dirty, a, MIN(s->len, (o + n + g - 1) / g * g) - a);
        error_action(s, false, ret);
    } else {
        s->need_flush = true;
        job_progress_update(&s->common.job, n);
    }
    active_done(w, w->ret);
}

static void active_source_cb(void *opaque, int ret)
{
    ActiveWrite *w = opaque;
    MirrorJob *s = w->s;
    uint64_t g = s->granularity;
    uint64_t o = w->off + w->head;
    uint64_t n = w->len - w->head - w->tail;
    uint64_t a;
    uint64_t e;

    w->ret = ret;
    if (ret < 0 || s->ret < 0 || job_is_cancelled(&s->common.job)) {
        /* what the source holds now is unknown, or does not matter */
        hbitmap_set(s->dirty, w->off, w->len);
        active_done(w, ret);
        return;
    }
    if (w->cow) {
        hbitmap_set(s->dirty, w->off, w->head);
        hbitmap_set(s->dirty, w->off + w->len - w->tail, w->tail);
    }
    if (!n) {
        active_done(w, ret);
        return;
    }
    /*
     * QEMU's do_sync_target_write(): the granules the write covers are
     * clean once it is on the target (partly covered ones were clean,
     * and the target has the rest of them already)
     */
    a = (o + g - 1) / g * g;
    e = o + n == s->len ? s->len : (o + n) / g * g;
    if (a < e) {
        hbitmap_reset(s->dirty, a, e - a);
    }
    s->active_bytes += n;
    job_progress_set_remaining(&s->common.job,
                               hbitmap_count(s->dirty) + s->bytes_in_flight
                               + s->active_bytes);
    if (w->type == BDRV_HOOK_WRITE) {
        bdrv_write(s->target, o, n, (const uint8_t *)w->buf + w->head,
                   w->flags & BDRV_REQ_FUA, active_target_cb, w);
    } else {
        bdrv_write_zeroes(s->target, o, n,
                          w->flags & (BDRV_REQ_FUA | BDRV_REQ_MAY_UNMAP),
                          active_target_cb, w);
    }
}

/* The write may start when no copy has its granules in flight. */
static void active_start(ActiveWrite *w)
{
    MirrorJob *s = w->s;
    uint64_t g = s->granularity;
    int64_t b = hbitmap_next_dirty(s->busy, w->off);

    if (b >= 0 && (uint64_t)b < w->off + w->len) {
        g_queue_push_tail(&s->active_waiting, w);
        return;
    }
    hbitmap_set(s->busy, w->off, w->len);
    if (s->cow_cluster) {
        /*
         * A target cluster written in part would read zeroes, not its
         * backing's data, in the rest: only whole clusters go to the
         * target, the job copies the others (made dirty) whole
         */
        uint64_t c = s->cow_cluster;
        uint64_t end = w->off + w->len;
        uint64_t a = (w->off + c - 1) / c * c;
        uint64_t e = end == s->len ? end : end / c * c;

        w->head = e > a ? a - w->off : w->len;
        w->tail = e > a ? end - e : 0;
        w->cow = true;
    } else {
        /*
         * Partly covered granules that are dirty stay so: the job copies
         * them whole later (QEMU skips them too)
         */
        w->head = w->off % g && hbitmap_get(s->dirty, w->off)
            ? MIN(w->len, g - w->off % g) : 0;
        w->tail = (w->off + w->len) % g && w->off + w->len < s->len
            && w->len > w->head
            && hbitmap_get(s->dirty, w->off + w->len - 1)
            ? MIN(w->len - w->head, (w->off + w->len) % g) : 0;
    }
    bdrv_hook_continue(s->src, w->type, w->off, w->len, w->buf, w->flags,
                       active_source_cb, w);
}

/*
 * io.c's write hook on the source: a guest write that goes to the
 * target too before it completes.  Not taken while the job finishes
 * (the final lock holds writes back; after the switch they go to the
 * target anyway) or fails: the write notifier tracks those.
 */
static bool active_hook(void *opaque, int type, uint64_t off, uint64_t len,
                        const void *buf, int flags, BdrvCb *cb,
                        void *cb_opaque)
{
    MirrorJob *s = opaque;
    ActiveWrite *w;

    if (!s->started || s->done || s->ret < 0 || s->final_wait
        || s->final_lock || job_is_cancelled(&s->common.job)
        || off >= s->len || (type == BDRV_HOOK_ZERO && s->cow_cluster)) {
        return false;
    }
    w = g_new0(ActiveWrite, 1);
    w->s = s;
    w->off = off;
    w->len = MIN(len, s->len - off);
    w->type = type;
    w->buf = buf;
    w->flags = flags;
    w->cb = cb;
    w->opaque = cb_opaque;
    s->active_count++;
    active_start(w);
    return true;
}

/* ---- __com.qmpd_auto-write-blocking ------------------------------------ */

/* A new window: the next sample is its first lowest. */
static void converge_restart(MirrorJob *s)
{
    s->converge_samples = 0;
    s->converge_min = UINT64_MAX;
    s->converge_mark = s->copied;
}

/* A new pace window; @lost: it follows one the guest won. */
static void pace_restart(MirrorJob *s, bool lost)
{
    s->pace_samples = 0;
    s->pace_lost = lost ? s->pace_lost + 1 : 0;
    s->pace_copied = s->copied;
    s->pace_written = s->guest_written;
}

/*
 * Whether the pace windows say the copy loses: each window ends after
 * CONVERGE_SAMPLES samples once the job copied two buffers in it (a job
 * under a speed limit copies a buffer at a time, seconds apart: a window
 * must span its bursts, else one between two bursts would compare the
 * guest's writes with nothing); the guest won it when it wrote at least
 * three quarters as much as the job copied meanwhile.
 */
static bool pace_says_switch(MirrorJob *s)
{
    uint64_t copied = s->copied - s->pace_copied;
    uint64_t written = s->guest_written - s->pace_written;

    if (++s->pace_samples < CONVERGE_SAMPLES
        || copied < 2 * MIN(s->buf_size, s->len)) {
        return false;
    }
    pace_restart(s, written >= copied - copied / 4);
    return s->pace_lost >= PACE_LOST_WINDOWS;
}

static void converge_stop(MirrorJob *s)
{
    if (s->converge_source) {
        g_source_remove(s->converge_source);
        s->converge_source = 0;
    }
}

/* Background copying does not converge: go on in write-blocking mode. */
static void converge_switch(MirrorJob *s, uint64_t left, const char *why)
{
    g_assert(!s->hook && !s->src->write_hook);
    s->write_blocking = true;
    bdrv_set_write_hook(s->src, active_hook, s);
    s->hook = true;
    qmpd_log(LOG_INFO, "mirror job '%s': %" PRIu64 " bytes left to copy, "
             "%s: switching to copy-mode write-blocking",
             s->common.job.id, left, why);
}

static gboolean converge_cb(gpointer opaque)
{
    MirrorJob *s = opaque;
    Job *job = &s->common.job;
    uint64_t left = hbitmap_count(s->dirty) + s->bytes_in_flight;
    g_autofree char *why = NULL;

    if (s->done) {
        s->converge_source = 0;
        return G_SOURCE_REMOVE;
    }
    /*
     * Only the copy phase counts, and only while the job copies: a pause
     * (by the user or an error policy) or a cancel starts afresh
     */
    if (!s->started || !s->zeroing_done || !s->scan_done || job->paused
        || job_should_pause(job) || job_is_cancelled(job) || s->ret < 0) {
        converge_restart(s);
        pace_restart(s, false);
        return G_SOURCE_CONTINUE;
    }
    if (left == 0) {
        pace_restart(s, false);
    } else if (pace_says_switch(s)) {
        s->converge_source = 0;
        converge_switch(s, left, "the guest wrote faster than the job "
                        "copied");
        return G_SOURCE_REMOVE;
    }
    if (left < s->converge_min || left == 0) {
        converge_restart(s);
        s->converge_min = left;
        return G_SOURCE_CONTINUE;
    }
    s->converge_samples++;
    if (s->converge_samples < CONVERGE_SAMPLES
        || s->copied - s->converge_mark < 2 * MIN(s->buf_size, s->len)) {
        return G_SOURCE_CONTINUE;
    }
    s->converge_source = 0;
    why = g_strdup_printf("lowest %" PRIu64 " over the last %u samples "
                          "while %" PRIu64 " bytes were copied",
                          s->converge_min, s->converge_samples,
                          s->copied - s->converge_mark);
    converge_switch(s, left, why);
    return G_SOURCE_REMOVE;
}

/* ---- job driver -------------------------------------------------------- */

static void write_notify(void *opaque, uint64_t off, uint64_t len)
{
    MirrorJob *s = opaque;

    if (off >= s->len || !len) {
        return;
    }
    /* the job's length grows when the job looks (QEMU: loop top) */
    hbitmap_set(s->dirty, off, MIN(len, s->len - off));
    s->guest_written += len;
    kick(s);
}

static void barrier_cb(void *opaque, BdrvRangeLock *lock)
{
    MirrorJob *s = opaque;

    /*
     * Writes that started before the notifier was added are done: the
     * scan sees what they allocated.  Later ones are in the bitmap.
     */
    bdrv_range_unlock(lock);
    block_job_io_end(&s->common);
    s->started = true;
    if (!s->in_run) {
        kick(s);
    }
}

static void fail_bh(void *opaque, int ret)
{
    MirrorJob *s = opaque;

    s->done = true;
    job_completed(&s->common.job, ret,
                  "Source and target image have different sizes");
}

static void mirror_begin(MirrorJob *s)
{
    Job *job = &s->common.job;

    s->dirty = hbitmap_new(s->len, s->granularity);
    s->busy = hbitmap_new(s->len, s->granularity);
    if (s->len == 0) {
        s->started = s->zeroing_done = s->scan_done = true;
        job_transition_to_ready(job);
        return;
    }
    s->zeroing_done = !s->zero_target;
    if (s->zero_target && !s->zero_ok) {
        /* the target may hold anything: copy every range */
        hbitmap_set(s->dirty, 0, s->len);
        s->zeroing_done = true;
        s->scan_done = true;
    }
    s->scan_done |= s->is_none;
    update_remaining(s);
    bdrv_add_write_notifier(s->src, write_notify, s);
    s->notifier = true;
    if (s->write_blocking) {
        bdrv_set_write_hook(s->src, active_hook, s);
        s->hook = true;
    } else if (s->auto_wb) {
        converge_restart(s);
        pace_restart(s, false);
        s->converge_source = g_timeout_add(CONVERGE_SAMPLE_MS, converge_cb,
                                           s);
    }
    s->in_run = true;
    block_job_io_begin(&s->common);
    bdrv_range_lock(s->src, 0, s->len, barrier_cb, s);
    s->in_run = false;
    /* QEMU's job runs until it first waits: sync none is ready at once */
    mirror_pump(s);
}

static void grown_cb(BlockJob *bj)
{
    mirror_begin((MirrorJob *)bj);
}

static void mirror_run(Job *job)
{
    MirrorJob *s = (MirrorJob *)job;
    uint64_t target_len = bdrv_length(s->target);

    s->len = bdrv_length(s->src);
    if (s->commit && target_len < s->len) {
        /* base must hold all of top (QEMU's mirror_run() truncates it) */
        block_job_grow_base(&s->common, s->target, s->len, grown_cb);
        return;
    }
    if (!s->commit && s->len != target_len) {
        /* QEMU's job fails from its coroutine: after the reply */
        ioq_defer_int(fail_bh, s, -EINVAL);
        return;
    }
    mirror_begin(s);
}

static void mirror_resume(Job *job)
{
    /* mirror's cancel ends from the main loop, after the reply */
    kick((MirrorJob *)job);
}

static void mirror_cancel(Job *job, bool force)
{
    MirrorJob *s = (MirrorJob *)job;

    /* before READY every cancel is forced (QEMU's mirror_cancel) */
    if (job->status != JOB_STATUS_READY && job->status != JOB_STATUS_STANDBY) {
        job->force_cancel = true;
    }
    if (job->paused) {
        /* the job core resumes it next: mirror_resume() goes on */
        return;
    }
    /* the job core still uses the job after this hook: end later */
    wake(s);
    kick(s);
}

/* A pause was requested or the speed changed: look again now. */
static void mirror_kick(Job *job)
{
    MirrorJob *s = (MirrorJob *)job;

    wake(s);
    mirror_pump(s);
}

/* QEMU's bdrv_recurse_can_replace(): @to is @from or below its filters. */
static bool can_replace(BlockNode *from, BlockNode *to)
{
    for (BlockNode *n = from; n; n = n->drv->is_filter ? bdrv_file_child(n)
                                                       : NULL) {
        if (n == to) {
            return true;
        }
    }
    return false;
}

static bool mirror_complete(Job *job, Error **errp)
{
    MirrorJob *s = (MirrorJob *)job;

    if (s->replaces && !s->to_replace) {
        BlockNode *r = bdrv_find_node(s->replaces);

        if (!r) {
            error_setg(errp, "Node name '%s' not found", s->replaces);
            return false;
        }
        s->to_replace = r;
        bdrv_ref(r);
        block_job_add_node(&s->common, r, NULL);
    }
    s->should_complete = true;
    wake(s);
    kick(s);
    return true;
}

/*
 * QEMU's mirror_exit_common(): on success the target's backing, then
 * (when completing) the switch; the held guest writes go on.
 */
static int mirror_exit_common(MirrorJob *s, bool abort)
{
    BlockNode *unfiltered = bdrv_skip_filters(s->target);
    BlockNode *to_replace = s->to_replace ? s->to_replace : s->src;
    bool switched = false;
    int ret = 0;

    if (s->exited) {
        return 0;
    }
    s->exited = true;
    if (!abort && s->backing_mode == MIRROR_SOURCE_BACKING_CHAIN) {
        if (bdrv_backing(unfiltered) != s->new_backing) {
            bdrv_set_backing(unfiltered, s->new_backing);
        }
    } else if (!abort && s->backing_mode == MIRROR_OPEN_BACKING_CHAIN
               && !bdrv_backing(unfiltered)) {
        Error *err = NULL;

        if (!bdrv_open_backing_file(unfiltered, &err)) {
            /* QEMU prints it; the job fails with its return code */
            qmpd_log(LOG_ERR, "%s", error_get_pretty(err));
            error_free(err);
            ret = -EINVAL;
        }
    }
    if (s->should_complete && !abort) {
        if (bdrv_is_read_only(to_replace) != bdrv_is_read_only(s->target)) {
            bdrv_reopen_read_only(s->target, bdrv_is_read_only(to_replace),
                                  NULL);
        }
        if (can_replace(s->src, to_replace)) {
            bdrv_replace_node(to_replace, s->target);
            switched = to_replace == s->src;
        } else {
            qmpd_log(LOG_ERR, "Can no longer replace '%s' by '%s', because "
                     "it can no longer be guaranteed that doing so would "
                     "not lead to an abrupt change of visible data",
                     bdrv_node_name(to_replace), bdrv_node_name(s->target));
            ret = -EPERM;
        }
    }
    /* whatever mirror_top's child is by now takes its place */
    job_filter_remove(&s->common, &s->filter);
    release_final_lock(s, switched ? s->target : NULL);
    return ret;
}

static int mirror_prepare(Job *job)
{
    return mirror_exit_common((MirrorJob *)job, false);
}

static void mirror_abort(Job *job)
{
    mirror_exit_common((MirrorJob *)job, true);
}

/*
 * QEMU's mirror_exit_common() lets go of every node (and the job stops
 * blocking them) before the job concludes: a dismissed or not.
 */
static void release_nodes(MirrorJob *s)
{
    /*
     * The source goes last: when it closes, the nodes below it that only
     * it still uses leave the node list with it (as QEMU's close would)
     */
    g_clear_pointer(&s->base, bdrv_unref);
    g_clear_pointer(&s->new_backing, bdrv_unref);
    g_clear_pointer(&s->to_replace, bdrv_unref);
    if (s->target) {
        blk_job_release(s->target);
    }
    g_clear_pointer(&s->target, bdrv_unref);
    block_job_free(&s->common);
    /* block_job_free() is done with them; once is enough */
    s->common.nodes = NULL;
    if (s->src && s->commit) {
        blk_job_release(s->src);
    }
    g_clear_pointer(&s->src, bdrv_unref);
}

static void mirror_clean(Job *job)
{
    MirrorJob *s = (MirrorJob *)job;

    converge_stop(s);
    job_filter_remove(&s->common, &s->filter);
    release_final_lock(s, NULL);
    if (s->notifier) {
        bdrv_remove_write_notifier(s->src, write_notify, s);
        s->notifier = false;
    }
    if (s->hook) {
        bdrv_set_write_hook(s->src, NULL, NULL);
        s->hook = false;
    }
    release_nodes(s);
}

static void mirror_free(Job *job)
{
    MirrorJob *s = (MirrorJob *)job;

    if (s->kick_source) {
        g_source_remove(s->kick_source);
    }
    mirror_clean(job);
    g_clear_pointer(&s->dirty, hbitmap_free);
    g_clear_pointer(&s->busy, hbitmap_free);
    g_free(s->replaces);
}

/* QEMU's commit_active_job_driver differs from mirror's by its type. */
#define MIRROR_JOB_DRIVER(job_type)                                     \
    {                                                                   \
        .type = (job_type),                                             \
        .instance_size = sizeof(MirrorJob),                             \
        .block_job = true,                                              \
        .run = mirror_run,                                              \
        .resume = mirror_resume,                                        \
        .user_resume = block_job_user_resume,                           \
        .complete = mirror_complete,                                    \
        .kick = mirror_kick,                                            \
        .cancel = mirror_cancel,                                        \
        .prepare = mirror_prepare,                                      \
        .abort = mirror_abort,                                          \
        .clean = mirror_clean,                                          \
        .free = mirror_free,                                            \
        .event_data = block_job_event_data,                             \
    }

static const JobDriver mirror_driver = MIRROR_JOB_DRIVER(JOB_TYPE_MIRROR);
static const JobDriver commit_active_driver =
    MIRROR_JOB_DRIVER(JOB_TYPE_COMMIT);

/* ---- QMP --------------------------------------------------------------- */

static bool edge_live(const BdrvChild *c)
{
    return c->parent && bdrv_edge_live(c);
}

/*
 * QEMU's qmp_get_root_bs(): no node uses it, and no block job either
 * (a job's nodes have the job as a parent in QEMU).
 */
static BlockNode *get_root(const char *name, Error **errp)
{
    BlockNode *bn = bdrv_lookup(name, name, errp);

    if (!bn) {
        return NULL;
    }
    for (guint i = 0; i < bn->parents->len; i++) {
        if (edge_live(g_ptr_array_index(bn->parents, i))) {
            error_setg(errp, "Need a root block node");
            return NULL;
        }
    }
    if (bdrv_op_is_blocked(bn, NULL)) {
        error_setg(errp, "Need a root block node");
        return NULL;
    }
    return bn;
}

/*
 * QEMU's op blockers for a mirror source, target or replaced node: a
 * block job's nodes, and backing nodes (the newest blocker reported).
 */
static bool op_blocked(BlockNode *bn, Error **errp)
{
    for (GList *l = job_list(); l; l = l->next) {
        Job *job = l->data;

        /*
         * QEMU's mirror puts a filter node above its source, so the
         * source is no backend's root any more: named by its node name
         */
        if (job->driver == &mirror_driver && ((MirrorJob *)job)->src == bn
            && bdrv_op_is_blocked(bn, NULL)) {
            error_setg(errp, "Node '%s' is busy: block device is in use by "
                       "block job: mirror", bn->node_name);
            return true;
        }
    }
    if (bdrv_op_is_blocked(bn, errp)) {
        return true;
    }
    for (guint i = bn->parents->len; i-- > 0;) {
        const BdrvChild *c = g_ptr_array_index(bn->parents, i);

        if (edge_live(c) && c == c->parent->backing) {
            /* QEMU names the overlay as it was named when it got its
             * backing: by its node name, backends come later */
            error_setg(errp, "Node '%s' is busy: node is used as backing hd "
                       "of '%s'", bn->node_name, c->parent->node_name);
            return true;
        }
    }
    return false;
}

/*
 * The job's target backend takes "write" and shares only "write
 * unchanged" (QEMU's mirror_start_job()): another user that reads the
 * target consistently, writes or resizes it conflicts.
 */
static bool target_perm_conflict(BlockNode *bn, Error **errp)
{
    static const char *const names[] = {
        "consistent read", "write", "write unchanged", "resize",
    };
    GPtrArray *blks = blk_all();

    for (guint i = 0; i < bn->parents->len; i++) {
        const BdrvChild *c = g_ptr_array_index(bn->parents, i);
        unsigned perm = BLK_PERM_CONSISTENT_READ;
        g_autoptr(GString) s = g_string_new(NULL);

        if (!edge_live(c)) {
            continue;
        }
        if (!c->parent->read_only && c != c->parent->backing) {
            perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
        }
        for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
            if (perm & ~BLK_PERM_WRITE_UNCHANGED & (1u << k)) {
                g_string_append_printf(s, "%s%s", s->len ? ", " : "",
                                       names[k]);
            }
        }
        error_setg(errp, "Permission conflict on node '%s': permissions "
                   "'%s' are both required by node '%s' (uses node '%s' as "
                   "'%s' child) and unshared by an unnamed block device "
                   "(uses node '%s' as 'root' child).", bn->node_name,
                   s->str, c->parent->node_name, bn->node_name, c->name,
                   bn->node_name);
        return true;
    }
    for (guint i = 0; i < blks->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blks, i);
        bool writes = blk_qdev(blk) && !bn->read_only;

        if (blk_root(blk) != bn) {
            continue;
        }
        error_setg(errp, "Permission conflict on node '%s': permissions "
                   "'%s' are both required by block device '%s' (uses node "
                   "'%s' as 'root' child) and unshared by an unnamed block "
                   "device (uses node '%s' as 'root' child).", bn->node_name,
                   writes ? "consistent read, write" : "consistent read",
                   blk_name(blk), bn->node_name, bn->node_name);
        return true;
    }
    return false;
}

static uint32_t cluster_size(BlockNode *bn)
{
    bn = bdrv_skip_filters(bn);
    return bdrv_cluster_size(bn);
}

static bool parse_sync(const char *name, MirrorSync *sync, Error **errp)
{
    if (!strcmp(name, "top")) {
        *sync = MIRROR_SYNC_TOP;
    } else if (!strcmp(name, "full")) {
        *sync = MIRROR_SYNC_FULL;
    } else if (!strcmp(name, "none")) {
        *sync = MIRROR_SYNC_NONE;
    } else {
        error_setg(errp, "Sync mode '%s' not supported", name);
        return false;
    }
    return true;
}

/* What both commands share: QEMU's blockdev_mirror_common() on. */
typedef struct {
    const json_t *args;
    const char *job_id;
    BlockNode *bs;
    BlockNode *target;
    MirrorBackingMode backing_mode;
    bool zero_target;
    const char *sync;           /* MirrorSyncMode, not checked yet */
    BlockNode *shared_base;     /* __com.qmpd_shared-base */
} MirrorStart;

#define SHARED_BASE "__com.qmpd_shared-base"

/*
 * The extension's node: below the source in its backing chain, and
 * only with sync top (whose bottom it moves down).  NULL without the
 * argument; false with an error.
 */
static bool get_shared_base(const json_t *args, BlockNode *bs,
                            const char *sync, BlockNode **pbase,
                            Error **errp)
{
    const char *name = qjson_get_str_or(args, SHARED_BASE, NULL);
    BlockNode *base;

    *pbase = NULL;
    if (!name) {
        return true;
    }
    base = bdrv_lookup(NULL, name, errp);
    if (!base) {
        return false;
    }
    if (strcmp(sync, "top")) {
        error_setg(errp, "'" SHARED_BASE "' requires sync 'top'");
        return false;
    }
    if (bdrv_skip_filters(base) == bdrv_skip_filters(bs)) {
        error_setg(errp, "'" SHARED_BASE "' must name a node below the "
                   "source");
        return false;
    }
    if (!bdrv_chain_contains(bs, base)) {
        error_setg(errp, "'%s' is not in this backing file chain", name);
        return false;
    }
    *pbase = base;
    return true;
}

/*
 * What mirror and active commit set alike: the nodes (referenced, the
 * target held as a backend), the request sizes (@buf_size 0: the
 * default) and the target's cluster rules.
 */
static void mirror_setup(MirrorJob *s, BlockNode *src, BlockNode *target,
                         BlockNode *base, uint64_t granularity,
                         uint64_t buf_size)
{
    s->src = src;
    bdrv_ref(src);
    s->target = target;
    bdrv_ref(target);
    blk_job_hold(target);
    if (base) {
        s->base = base;
        bdrv_ref(base);
    }
    s->granularity = granularity;
    s->buf_size = MAX(granularity, ((buf_size ? buf_size : DEFAULT_BUF_SIZE)
                                    + granularity - 1)
                      / granularity * granularity);
    s->op_max = MIN(MAX(s->buf_size / MAX_IN_FLIGHT, MAX_IO_BYTES),
                    s->buf_size);
    s->zero_ok = bdrv_can_write_zeroes_with_unmap(target);
    s->target_cluster = cluster_size(target);
    /*
     * QEMU's cow_bitmap: a target whose image names a backing file it
     * does not have open yet would fill the rest of a cluster written in
     * part with zeroes, not with the backing's data
     */
    if (bdrv_backing_file(bdrv_skip_filters(target))
        && !bdrv_backing(bdrv_skip_filters(target))) {
        s->cow_cluster = s->target_cluster;
    }
    if (s->cow_cluster) {
        /* zeroes go as data: see op_status_cb() */
        s->zero_ok = false;
    }
    if (granularity < s->cow_cluster) {
        s->cow_align = s->cow_cluster;
        s->buf_size = MAX(s->buf_size, s->cow_cluster);
        s->op_max = MAX(s->op_max, s->cow_cluster);
    }
    g_queue_init(&s->active_waiting);
}

static bool mirror_start(MirrorStart *m, Error **errp)
{
    const json_t *args = m->args;
    BlockNode *bs = m->bs;
    BlockNode *target = m->target;
    const char *replaces = qjson_get_str_or(args, "replaces", NULL);
    const char *filter = qjson_get_str_or(args, "filter-node-name", NULL);
    uint64_t granularity = qjson_get_uint_or(args, "granularity", 0);
    int64_t buf_size = qjson_get_int_or(args, "buf-size", 0);
    BlockNode *base = NULL;
    BlockNode *top;
    MirrorSync sync;
    MirrorJob *s;

    if (granularity != 0 && (granularity < 512
                             || granularity > 64 * 1024 * 1024)) {
        error_setg(errp, "Parameter 'granularity' expects a value in range "
                   "[512B, 64MB]");
        return false;
    }
    if (granularity & (granularity - 1)) {
        error_setg(errp, "Parameter 'granularity' expects a power of 2");
        return false;
    }
    if (op_blocked(bs, errp) || op_blocked(target, errp)) {
        return false;
    }
    /* an unknown mode is refused by mirror_start(), after replaces */
    if (!strcmp(m->sync, "top") && !bdrv_backing_chain_next(bs)) {
        m->sync = "full";
    }
    if (replaces) {
        BlockNode *r = bdrv_find_node(replaces);

        if (!r) {
            error_setg(errp, "Failed to find node with node-name='%s'",
                       replaces);
            return false;
        }
        if (op_blocked(r, errp)) {
            return false;
        }
        if (!can_replace(bs, r)) {
            error_setg(errp, "Cannot replace '%s' by a node mirrored from "
                       "'%s', because it cannot be guaranteed that doing so "
                       "would not lead to an abrupt change of visible data",
                       replaces, bdrv_node_name(bs));
            return false;
        }
        if (bdrv_length(bs) != bdrv_length(r)) {
            error_setg(errp, "cannot replace image with a mirror image of "
                       "different size");
            return false;
        }
    }
    if (!parse_sync(m->sync, &sync, errp)) {
        return false;
    }
    if (sync == MIRROR_SYNC_TOP) {
        /* copy what is above the base the target will share */
        base = m->shared_base ? m->shared_base
                              : bdrv_backing_chain_next(bs);
    }
    if (buf_size < 0) {
        error_setg(errp, "Invalid parameter 'buf-size'");
        return false;
    }
    if (bdrv_skip_filters(bs) == bdrv_skip_filters(target)) {
        error_setg(errp, "Can't mirror node into itself");
        return false;
    }
    /* as QEMU's mirror_start_job(): the filter before the job */
    top = job_filter_insert(&bdrv_mirror_top, bs, filter, NULL,
                            MIRROR_JOB_PERM, MIRROR_JOB_SHARED, errp);
    if (!top) {
        return false;
    }
    s = block_job_create_args(args, &mirror_driver, top, errp);
    if (!s) {
        job_filter_remove(NULL, &top);
        return false;
    }
    s->filter = top;
    block_job_add_node(&s->common, bs, NULL);
    if (bdrv_is_read_only(target)) {
        error_setg(errp, "Block node is read-only");
        job_early_fail(&s->common.job);
        return false;
    }
    if (target_perm_conflict(target, errp)) {
        job_early_fail(&s->common.job);
        return false;
    }
    if (bdrv_chain_contains(bs, bdrv_skip_filters(target))) {
        error_setg(errp, "Cannot mirror to a filter on top of a node in the "
                   "source's backing chain");
        job_early_fail(&s->common.job);
        return false;
    }
    if (!granularity) {
        uint32_t c = cluster_size(target);

        granularity = c ? CLAMP(c, 4096, 65536) : 65536;
    }
    mirror_setup(s, bs, target, base, granularity, buf_size);
    s->backing_mode = m->backing_mode;
    s->new_backing = sync == MIRROR_SYNC_NONE ? bs : base;
    if (s->new_backing) {
        bdrv_ref(s->new_backing);
    }
    s->is_none = sync == MIRROR_SYNC_NONE;
    s->zero_target = m->zero_target;
    s->write_blocking = !strcmp(qjson_get_str_or(args, "copy-mode",
                                                 "background"),
                                "write-blocking");
    s->replaces = g_strdup(replaces);
    s->unmap = qjson_get_bool_or(args, "unmap", true);
    s->auto_wb = qjson_get_bool_or(args, AUTO_WB, false);
    s->on_source_error = block_on_error_parse(
        qjson_get_str_or(args, "on-source-error", NULL),
        BLOCKDEV_ON_ERROR_REPORT);
    s->on_target_error = block_on_error_parse(
        qjson_get_str_or(args, "on-target-error", NULL),
        BLOCKDEV_ON_ERROR_REPORT);
    block_job_add_node(&s->common, target, NULL);
    job_start(&s->common.job);
    return true;
}

Job *mirror_commit_create(const char *job_id, BlockNode *top,
                          BlockNode *base, const char *filter_node_name,
                          int64_t speed, BlockdevOnError on_error,
                          bool auto_finalize, bool auto_dismiss, Error **errp)
{
    BlockNode *filter = job_filter_insert(&bdrv_mirror_top_commit, top,
                                          filter_node_name, NULL,
                                          MIRROR_JOB_PERM, MIRROR_JOB_SHARED,
                                          errp);
    MirrorJob *s;

    if (!filter) {
        return NULL;
    }
    s = block_job_create(job_id, &commit_active_driver, filter, speed,
                         auto_finalize, auto_dismiss, errp);
    if (!s) {
        job_filter_remove(NULL, &filter);
        return NULL;
    }
    s->filter = filter;
    /* QEMU's commit job writes through backends of its own on both */
    mirror_setup(s, top, base, base, COMMIT_GRANULARITY, 0);
    blk_job_hold(top);
    s->commit = true;
    s->backing_mode = MIRROR_LEAVE_BACKING_CHAIN;
    s->unmap = true;
    s->on_source_error = on_error;
    s->on_target_error = on_error;
    return &s->common.job;
}

static bool qmp_blockdev_mirror(const json_t *args, json_t **ret,
                                Error **errp)
{
    const char *target = qjson_get_str(args, "target");
    MirrorStart m = {
        .args = args,
        .job_id = qjson_get_str_or(args, "job-id", NULL),
        .backing_mode = MIRROR_LEAVE_BACKING_CHAIN,
        .sync = qjson_get_str(args, "sync"),
    };

    m.bs = get_root(qjson_get_str(args, "device"), errp);
    if (!m.bs) {
        return false;
    }
    m.target = bdrv_lookup(target, target, errp);
    if (!m.target
        || !get_shared_base(args, m.bs, m.sync, &m.shared_base, errp)) {
        return false;
    }
    m.zero_target = !strcmp(m.sync, "full");
    return mirror_start(&m, errp);
}

/*
 * Open the target of drive-mirror as QEMU does: read-write, without its
 * backing (the job takes care of what the backing would give), with the
 * source's cache and discard flags.
 */
static BlockNode *open_target(const json_t *args, BlockNode *bs,
                              const char *format, Error **errp)
{
    const char *filename = qjson_get_str(args, "target");
    const char *node_name = qjson_get_str_or(args, "node-name", NULL);
    g_autoptr(json_t) opts = json_object();
    json_t *fo = bdrv_filename_options(filename, errp);
    BlockNode *f = NULL;
    BlockNode *t;

    if (!fo) {
        return NULL;
    }
    if (bs->cache_direct || bs->cache_no_flush) {
        json_object_set_new(opts, "cache", json_pack(
                                "{s:b,s:b}", "direct", bs->cache_direct,
                                "no-flush", bs->cache_no_flush));
    }
    if (bs->discard_unmap) {
        json_object_set_new(opts, "discard", qjson_str("unmap"));
    }
    if (!format) {
        json_object_update(fo, opts);
        f = bdrv_open_options(fo, false, errp);
        json_decref(fo);
        if (!f) {
            return NULL;
        }
        format = bdrv_probe_format(f);
        fo = qjson_str(bdrv_node_name(f));
    }
    json_object_set_new(opts, "driver", qjson_str(format));
    json_object_set_new(opts, "file", fo);
    if (node_name) {
        json_object_set_new(opts, "node-name", qjson_str(node_name));
    }
    if (bdrv_find_driver(format) && bdrv_find_driver(format)->has_backing) {
        json_object_set_new(opts, "backing", json_null());
    }
    t = bdrv_open_options(opts, false, errp);
    if (f) {
        bdrv_unref(f);
    }
    return t;
}

/*
 * The checks and their order are QEMU 7.2's qmp_drive_mirror().  The
 * target opened here is held by the job; NULL in *@opened unless the
 * command failed with the target open.
 */
static bool drive_mirror(const json_t *args, BlockNode **opened,
                         Error **errp)
{
    const char *mode = qjson_get_str_or(args, "mode", "absolute-paths");
    bool existing = !strcmp(mode, "existing");
    const char *format = qjson_get_str_or(args, "format", NULL);
    MirrorStart m = {
        .args = args,
        .job_id = qjson_get_str_or(args, "job-id", NULL),
        .sync = qjson_get_str(args, "sync"),
    };
    BlockNode *target_backing;

    m.bs = get_root(qjson_get_str(args, "device"), errp);
    if (!m.bs) {
        return false;
    }
    if (!format && !existing) {
        format = bdrv_driver_name(m.bs);
    }
    target_backing = bdrv_backing(bdrv_skip_filters(m.bs));
    if (!target_backing && !strcmp(m.sync, "top")) {
        m.sync = "full";
    }
    if (!strcmp(m.sync, "none")) {
        target_backing = m.bs;
    }
    if (!get_shared_base(args, m.bs, m.sync, &m.shared_base, errp)) {
        return false;
    }
    if (m.shared_base) {
        target_backing = m.shared_base;
    }
    if (qjson_has(args, "replaces") && !qjson_has(args, "node-name")) {
        error_setg(errp, "a node-name must be provided when replacing a "
                   "named node of the graph");
        return false;
    }
    m.backing_mode = existing ? MIRROR_OPEN_BACKING_CHAIN
                              : MIRROR_SOURCE_BACKING_CHAIN;
    if (!existing) {
        bool with_backing = strcmp(m.sync, "full") && target_backing;

        if (!bdrv_img_create("mirror", qjson_get_str(args, "target"),
                             format, bdrv_length(m.bs),
                             with_backing ? target_backing : NULL, errp)) {
            return false;
        }
    }
    m.target = open_target(args, m.bs, format, errp);
    if (!m.target) {
        return false;
    }
    /* a new qcow2 or raw file reads as zeroes already */
    m.zero_target = !strcmp(m.sync, "full") && existing;
    *opened = m.target;
    if (!mirror_start(&m, errp)) {
        return false;
    }
    /* the job holds the target now */
    bdrv_unref(m.target);
    *opened = NULL;
    return true;
}

static void qmp_drive_mirror(const json_t *args, QapiReply *reply)
{
    block_job_start_with_files(args, reply, drive_mirror);
}

const QapiHandler mirror_qmp_handlers[] = {
    { "drive-mirror", NULL, qmp_drive_mirror },
    { "blockdev-mirror", qmp_blockdev_mirror, NULL },
};

const size_t mirror_qmp_handlers_count = G_N_ELEMENTS(mirror_qmp_handlers);
