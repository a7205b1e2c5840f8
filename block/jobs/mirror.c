/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * drive-mirror and blockdev-mirror: live block copy of a device's root
 * node (the source) to a target node, as QEMU 7.2's mirror job, ending
 * with the switch of every user of the source to the target.  This file
 * is the job; mirror-start.c checks the commands and sets the job up,
 * mirror-active.c holds the write-blocking path and its automatic
 * switch, mirror-int.h what the three share.
 *
 * Design
 *
 *   The copy engine (copy.c) keeps the dirty bitmap over the source at
 *   the job's granularity, what the target does not have yet, and does
 *   the copies; this file says what is dirty and what happens when the
 *   engine runs dry.  Three phases fill the bitmap and empty it:
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
 *     copy      the engine takes dirty areas no operation has from a
 *               cursor that wraps (up to op_max bytes, buf_size / op_max
 *               operations at most) and copies each request:
 *
 *        range lock on src ---> clear dirty, block status through the
 *          (guest writes              chain (under the lock: a
 *           to it wait;               stale answer cannot lose a write)
 *           in-flight ones            |
 *           are waited for)           +-- data:  read src --> unlock
 *                                     |          --> write target
 *                                     +-- zeroes: unlock --> write
 *                                                zeroes on target
 *        done: progress += bytes; failure: dirty again, on-source-error
 *        (read) or on-target-error (write) applies.
 *
 *   A write notifier on src marks every guest write dirty when it
 *   starts (after any wait for a range lock), so a write that lands
 *   during a copy's read waits and dirties the range again afterwards,
 *   and a granule is in one operation at a time: the target's writes
 *   never overtake each other.  Before the scan a range lock over the
 *   whole source waits for guest writes that started before the
 *   notifier was added.
 *
 *   In write-blocking mode (copy-mode) guest writes to src are held by
 *   a write hook (io.c) until the engine has written the same data to
 *   the target as well (after the operations over its granules), and
 *   are not marked dirty; so once ready the target needs no background
 *   copying at all (mirror-active.c).
 *
 *   With __com.qmpd_auto-write-blocking (a qmpd extension) a job in
 *   background mode switches itself to write-blocking once it does not
 *   converge (mirror-active.c says how it tells).
 *
 *   Under a speed limit a buffer's worth of copies goes out before the
 *   first delay, as in QEMU 7.2; an active commit waits after each copy
 *   (as qmpd's always has).
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
 * Everything the job waits for is counted with block_job_io_begin/end
 * (the engine counts its requests there too); pause, cancel and the end
 * of the job wait for the count to reach zero (the end also for the
 * write-blocking guest writes, counted apart: a pause does not stop
 * them).  job_completed() is only called at the tail of a callback or
 * hook, since it may free the job.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/job-filter.h"
#include "block/jobs/mirror-int.h"
#include "util/log.h"

/* ---- helpers ----------------------------------------------------------- */

static gboolean kick_cb(gpointer opaque)
{
    MirrorJob *s = opaque;

    s->kick_source = 0;
    mirror_pump(s);
    return G_SOURCE_REMOVE;
}

void mirror_kick_later(MirrorJob *s)
{
    if (!s->kick_source && !s->done) {
        s->kick_source = g_idle_add_full(G_PRIORITY_DEFAULT, kick_cb, s,
                                         NULL);
    }
}

void mirror_update_remaining(MirrorJob *s)
{
    job_progress_set_remaining(&s->common.job, block_copy_remaining(s->bc)
                               + s->zero_in_flight);
}

/* Was the target written since its last flush?  (Then it is now.) */
static bool take_flush(MirrorJob *s)
{
    uint64_t written = s->bc ? block_copy_written(s->bc) : 0;
    bool need = s->need_flush || written != s->flushed;

    s->need_flush = false;
    s->flushed = written;
    return need;
}

static void mirror_sleep_cb(BlockJob *bj)
{
    mirror_pump((MirrorJob *)bj);
}

/*
 * Stop sleeping, for the speed limit (the wait itself is kept) or a
 * ready job's slice; the caller pumps.
 */
static void wake(MirrorJob *s)
{
    if (s->bc) {
        block_copy_wake_later(s->bc);
    } else if (s->common.sleep_source) {
        g_source_remove(s->common.sleep_source);
        s->common.sleep_source = 0;
    }
}

/* QEMU's mirror_error_action(): each failure is reported. */
void mirror_error_action(MirrorJob *s, bool is_read, int ret)
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
    mirror_converge_stop(s);
    finish_now(s);
}

/* ---- the copy engine's hooks ------------------------------------------ */

/* Copies go out in the copy phase, while the job runs and is not ending. */
static bool mirror_may_run(void *opaque)
{
    MirrorJob *s = opaque;
    Job *job = &s->common.job;

    return !s->done && s->started && s->zeroing_done && s->scan_done
        && !s->final_wait && !job_is_cancelled(job) && s->ret == 0
        && !job_should_pause(job);
}

/* The range stays dirty: copied again once the policy lets the job on. */
static BlockCopyErrorResult mirror_copy_error(void *opaque, bool is_read,
                                              int ret)
{
    mirror_error_action(opaque, is_read, ret);
    return BLOCK_COPY_ERROR_RETRY;
}

static void mirror_copy_idle(void *opaque);

static const BlockCopyOps mirror_copy_ops = {
    .may_run = mirror_may_run,
    .error = mirror_copy_error,
    .idle = mirror_copy_idle,
};

/*
 * The engine as mirror uses it: granules cleared under a range lock on
 * the source (guest writes that land during a read wait for it and
 * dirty the range again), zeroes as zero writes in whole target
 * clusters, progress in bytes done, and a buffer's worth of copies
 * before the first delay of the speed limit, as QEMU 7.2 (at 4 MiB/s
 * both copy 16 MiB at once, then wait 4 s); qmpd's active commit has
 * always waited after each copy instead.  A target whose backing is not
 * open yet gets whole clusters only, zeroes as data.
 */
static void mirror_engine_new(MirrorJob *s)
{
    BlockCopyConfig cfg = {
        .job = &s->common,
        .source = s->src,
        .target = s->target,
        .zeroes = s->cow_cluster ? BLOCK_COPY_ZEROES_COPY
                                 : BLOCK_COPY_ZEROES_WRITE,
        .zero_flags = s->unmap ? BDRV_REQ_MAY_UNMAP : 0,
        .zero_align = s->target_cluster,
        .area_align = s->cow_align,
        .len = s->len,
        .granularity = s->granularity,
        .chunk = s->op_max,
        .step = s->op_max,
        .max_ops = CLAMP(s->buf_size / s->op_max, 1, MAX_IN_FLIGHT),
        .progress = BLOCK_COPY_PROGRESS_DONE,
        .lock_source = true,
        .sweep = true,
        .rate_burst = !s->commit,
        .ops = &mirror_copy_ops,
        .opaque = s,
    };

    s->bc = block_copy_new(&cfg);
}

/* ---- zeroing and scan -------------------------------------------------- */

typedef struct {
    MirrorJob *s;
    uint64_t off;
    uint64_t len;
} ZeroOp;

static void zero_done_cb(void *opaque, int ret)
{
    ZeroOp *z = opaque;
    MirrorJob *s = z->s;

    s->zero_ops--;
    s->zero_in_flight -= z->len;
    block_job_io_end(&s->common);
    if (ret < 0) {
        /* to be copied instead */
        block_copy_set_dirty(s->bc, z->off, z->len);
        mirror_error_action(s, false, ret);
    }
    g_free(z);
    mirror_update_remaining(s);
    mirror_pump(s);
}

static void pump_zeroing(MirrorJob *s)
{
    while (s->zero_ops < MAX_IN_FLIGHT && s->zero_off < s->len) {
        ZeroOp *z = g_new0(ZeroOp, 1);

        z->s = s;
        z->off = s->zero_off;
        z->len = MIN(s->len - s->zero_off, ZERO_CHUNK);
        s->zero_off += z->len;
        s->zero_ops++;
        s->zero_in_flight += z->len;
        s->need_flush = true;
        block_job_io_begin(&s->common);
        bdrv_write_zeroes(s->target, z->off, z->len,
                          s->unmap ? BDRV_REQ_MAY_UNMAP : 0, zero_done_cb, z);
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
        block_copy_set_dirty(s->bc, s->scan_off, pnum);
    }
    s->scan_off += pnum;
    s->scan_done = s->scan_off >= s->len;
    mirror_update_remaining(s);
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
        mirror_error_action(s, false, ret);
    } else if (!job->ready && !job_is_cancelled(job) && s->ret == 0) {
        /*
         * READY tells of the point the flush made durable: what the guest
         * wrote during the flush is counted again right after the event,
         * as QEMU's job counts it on its next pass
         */
        job_progress_set_remaining(job, s->ready_remaining);
        job_transition_to_ready(job);
        mirror_update_remaining(s);
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
        mirror_error_action(s, false, ret);
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
    if (!block_copy_dirty_bytes(s->bc) && s->common.in_flight == 1
        && !s->active_count && !job_is_cancelled(job) && s->ret == 0) {
        /*
         * QEMU keeps the source drained from here to the graph change,
         * and the drain counts as a pause (query-block-jobs: "paused")
         */
        s->drained = true;
        job->pause_count++;
        if (take_flush(s)) {
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

/*
 * The engine has nothing busy: the job ends, pauses, gets READY, takes
 * the final lock or looks again a slice later.
 */
static void mirror_copy_idle(void *opaque)
{
    MirrorJob *s = opaque;
    BlockJob *bj = &s->common;
    Job *job = &bj->job;

    if (s->done || !s->started) {
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
    /* the zeroing and the scan go on from their callbacks */
    if (!s->zeroing_done || !s->scan_done) {
        return;
    }
    mirror_update_remaining(s);
    /*
     * Write-blocking writes on their way do not count, as in QEMU: they
     * cleared their granules and reach the target before the guest
     * hears of them, and under a guest that keeps writing one is always
     * on its way (the final lock waits for them)
     */
    if (bj->sleep_source || bj->in_flight || block_copy_dirty_bytes(s->bc)
        || s->final_wait) {
        return;
    }
    /*
     * The delay the last copies cause is waited before the job looks
     * again, and so before READY, as QEMU's next iteration waits it
     */
    if (block_job_rate_wait(bj, mirror_sleep_cb)) {
        return;
    }
    /* nothing left: the count reached zero, it does shrink */
    mirror_converge_restart(s);
    if (!job->ready) {
        /* in sync: flush the target, then READY (QEMU's mirror_flush) */
        if (!take_flush(s)) {
            /* nothing written: QEMU's flush returns at once */
            job_transition_to_ready(job);
        } else {
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

void mirror_pump(MirrorJob *s)
{
    BlockJob *bj = &s->common;
    Job *job = &bj->job;

    if (s->done || !s->started || bj->sleep_source) {
        return;
    }
    if (!job_is_cancelled(job) && s->ret == 0 && !job_should_pause(job)) {
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
    }
    /* ends in mirror_copy_idle() once nothing is busy */
    block_copy_kick(s->bc);
}

/* ---- job driver -------------------------------------------------------- */

static void write_notify(void *opaque, uint64_t off, uint64_t len)
{
    MirrorJob *s = opaque;

    if (off >= s->len || !len) {
        return;
    }
    /* the job's length grows when the job looks (QEMU: loop top) */
    block_copy_set_dirty(s->bc, off, MIN(len, s->len - off));
    s->guest_written += len;
    mirror_kick_later(s);
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
        mirror_kick_later(s);
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

    mirror_engine_new(s);
    if (s->len == 0) {
        s->started = s->zeroing_done = s->scan_done = true;
        job_transition_to_ready(job);
        return;
    }
    s->zeroing_done = !s->zero_target;
    if (s->zero_target && !s->zero_ok) {
        /* the target may hold anything: copy every range */
        block_copy_set_dirty(s->bc, 0, s->len);
        s->zeroing_done = true;
        s->scan_done = true;
    }
    s->scan_done |= s->is_none;
    mirror_update_remaining(s);
    bdrv_add_write_notifier(s->src, write_notify, s);
    s->notifier = true;
    if (s->write_blocking) {
        mirror_active_begin(s);
    } else if (s->auto_wb) {
        mirror_converge_start(s);
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
    mirror_kick_later((MirrorJob *)job);
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
    mirror_kick_later(s);
}

/* A pause was requested or the speed changed: look again now. */
static void mirror_kick(Job *job)
{
    MirrorJob *s = (MirrorJob *)job;

    wake(s);
    mirror_pump(s);
}

bool mirror_can_replace(BlockNode *from, BlockNode *to)
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
    mirror_kick_later(s);
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
        if (mirror_can_replace(s->src, to_replace)) {
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
        blk_job_release_writer(s->target);
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

    mirror_converge_stop(s);
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
    block_copy_free(s->bc);
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

const JobDriver mirror_job_driver = MIRROR_JOB_DRIVER(JOB_TYPE_MIRROR);
const JobDriver mirror_commit_job_driver =
    MIRROR_JOB_DRIVER(JOB_TYPE_COMMIT);

