/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backup job (blockdev-backup, drive-backup): a point-in-time copy
 * of a node into a target of the same size while the guest keeps
 * writing.
 *
 * The copy engine (copy.c) does the copying, under the filter's
 * anonymous bitmap on the source (@copy, which the queries show as QEMU
 * shows its block-copy bitmap): what is set there has not reached the
 * target with its point-in-time data yet (all of it at the start).  This file keeps
 * the policy:
 *
 *   - Copy-before-write: the job puts QEMU's copy-before-write filter
 *     node over the source (cbw.c, named by filter-node-name or
 *     auto-named), and takes its engine while it runs.  A guest write,
 *     zero write or discard through the filter over a range that is
 *     dirty or being copied waits while the engine copies the range's
 *     old data ahead of the background (block_copy_range_now()), and
 *     goes on once it is on the target; if that copy fails, the write
 *     fails (QEMU's on-cbw-error break-guest-write).  Writes over
 *     copied ranges go on untouched.  So every cluster reaches the
 *     target with the data it held when the job started, whatever the
 *     guest does.  At the end the filter gets its engine back and
 *     leaves the graph when the job is cleaned (QEMU's bdrv_cbw_drop()).
 *   - sync=full: the engine copies all of it in the background, up to
 *     x-perf max-workers copies (64 by default, QEMU's block-copy
 *     workers, and no more than 16 MiB of buffers) of up to 1 MiB each
 *     (x-perf max-chunk, if smaller), under the speed limit; holes and
 *     zeroes go as zero writes (zero clusters over a target's backing).
 *   - sync=top: as full, after an allocation scan that drops from @copy
 *     what the source's top image does not hold at all (the target's
 *     backing provides it); until the scan passed a cluster, a guest
 *     write there copies it first (harmless: the backing's data).
 *   - sync=none: no background copy, only copy-before-write, until the
 *     job is cancelled (the target is an overlay over the source that
 *     holds what the guest overwrote: image fleecing).
 *   - sync=bitmap (incremental: bitmap-mode on-success): @copy starts
 *     as the user's bitmap.  The bitmap is frozen for the job while an
 *     anonymous successor records the writes; at the end bitmap-mode
 *     merges the two (reclaim) or keeps only the successor's bits
 *     (abdicate), as QEMU's backup_cleanup_sync_bitmap().
 *   - A failed background copy ends its round (QEMU's block-copy call):
 *     nothing new starts, and once nothing is busy the error policy is
 *     applied once, with one BLOCK_JOB_ERROR: report ends the job,
 *     ignore starts a new round, stop pauses the job and starts one
 *     when it is resumed.  What failed is still dirty.
 *
 *        guest write [A..B) to the device (its root: the filter)
 *              |
 *         filter: range clean? ---yes---> on to the source
 *              | no
 *         block_copy_range_now(A..B): waits for copies in flight there,
 *              |                      copies what is still dirty
 *         old data on the target ---> on to the source (or fails)
 *
 * A writer that started before the filter was inserted is waited for
 * with a whole-source range lock before the job reads anything.
 */
#include "config.h"

#include <errno.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/backup-int.h"
#include "block/jobs/cbw.h"
#include "block/jobs/job-filter.h"

/* the job's buffers in flight at most (a copy's is up to 1 MiB) */
#define MAX_BYTES (16 * 1024 * 1024)

static void cleanup_bitmap(BackupJob *s, int ret);

/* ---- the job ----------------------------------------------------------- */

static void flushed_cb(void *opaque, int ret)
{
    BackupJob *s = opaque;

    job_completed(&s->common.job, ret, NULL);
}

static void filter_drained_cb(void *opaque, int ret)
{
    BackupJob *s = opaque;

    job_completed(&s->common.job, s->drained_ret, NULL);
}

/* Nothing is busy: the filter takes its engine back. */
static void finish(BackupJob *s, int ret)
{
    s->finishing = true;
    cbw_release(s->filter);
    if (ret == 0) {
        bdrv_flush(s->target, flushed_cb, s);
        return;
    }
    if (s->common.job.cancelled) {
        /*
         * as QEMU's bdrv_cbw_drop() drains: guest writes still on
         * their way through the filter (their old data being copied)
         * end before the job does, so that once it is concluded the
         * target is free again (libvirt's blockdev-del of a pull
         * backup's scratch right after the cancel under guest writes)
         */
        s->drained_ret = ret;
        bdrv_drain(s->filter, filter_drained_cb, s);
        return;
    }
    ioq_defer_int(flushed_cb, s, ret);
}

/* The failed round has nothing busy: the policy decides, once. */
static void round_failed(BackupJob *s)
{
    int err = s->round_err;
    BlockErrorAction a;

    s->round_err = 0;
    if (s->common.job.cancelled) {
        return;
    }
    if (s->common.job.txn_cancelled) {
        /* QEMU's job sees its cancel now: it ends, with no policy */
        s->ret = err;
        return;
    }
    a = block_job_error_action(&s->common, s->round_err_read
                               ? s->on_source_error : s->on_target_error,
                               s->round_err_read, err);
    if (a == BLOCK_ERROR_ACTION_REPORT) {
        s->ret = err;
    } else if (a == BLOCK_ERROR_ACTION_IGNORE) {
        /* a new round over what is still dirty */
        block_copy_kick_later(s->bc);
    }
}

static bool backup_may_run(void *opaque)
{
    BackupJob *s = opaque;
    Job *job = &s->common.job;

    return !s->sync_none && s->started && s->scan_done && !s->finishing
        && !job->cancelled && !s->ret && !s->round_err && !job->paused
        && !job_should_pause(job);
}

static BlockCopyErrorResult backup_error(void *opaque, bool is_read, int ret)
{
    BackupJob *s = opaque;

    if (!s->round_err) {
        s->round_err = ret;
        s->round_err_read = is_read;
    }
    return BLOCK_COPY_ERROR_RETRY;
}

static void backup_idle(void *opaque)
{
    BackupJob *s = opaque;
    Job *job = &s->common.job;

    if (s->finishing || !s->started || s->scanning) {
        return;
    }
    if (s->round_err) {
        round_failed(s);
    }
    if (job->cancelled || s->ret) {
        finish(s, job->cancelled ? -ECANCELED : s->ret);
        return;
    }
    if (!s->sync_none && s->scan_done && !block_copy_dirty_bytes(s->bc)) {
        finish(s, 0);
        return;
    }
    if (!job->paused && job_should_pause(job)) {
        job_pause_point(job);
    }
}

static const BlockCopyOps backup_copy_ops = {
    .may_run = backup_may_run,
    .error = backup_error,
    .idle = backup_idle,
};

BlockCopyConfig backup_copy_template(uint64_t chunk, int64_t workers)
{
    BlockCopyConfig cfg = {
        .chunk = chunk,
        .step = chunk,
        .max_ops = MIN((uint64_t)workers, MAX(1, MAX_BYTES / chunk)),
        .progress = BLOCK_COPY_PROGRESS_WRITTEN,
    };

    return cfg;
}

void backup_take_engine(BackupJob *s)
{
    s->bc = cbw_block_copy(s->filter);
    s->copy = cbw_copy_bitmap(s->filter);
    block_copy_set_owner(s->bc, &s->common, &backup_copy_ops, s);
}

/* sync top: what the top does not hold is not copied, nor counted. */
static void scan_step(BackupJob *s);

static void scan_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    BackupJob *s = opaque;
    uint64_t off = s->scan_off;

    s->scanning = false;
    if (ret < 0) {
        /* QEMU's backup copies what it could not find out about */
        s->scan_done = true;
    } else {
        uint64_t end = MIN(s->len, off + pnum);

        if (!status) {
            uint64_t a = (off + s->cluster - 1) / s->cluster * s->cluster;
            uint64_t b = end == s->len ? end : end / s->cluster * s->cluster;

            if (a < b) {
                hbitmap_reset(s->copy, a, b - a);
            }
        }
        s->scan_off = end;
        s->scan_done = end >= s->len;
    }
    if (s->scan_done) {
        job_progress_set_remaining(&s->common.job, hbitmap_count(s->copy));
    }
    if (!s->in_scan) {
        scan_step(s);
    }
}

static void scan_step(BackupJob *s)
{
    /* a status known at once completes inside the call: a loop, then */
    while (!s->scan_done && !s->finishing && !s->common.job.cancelled) {
        s->scanning = true;
        s->in_scan = true;
        bdrv_is_allocated_above(s->src, s->top_base, s->scan_off,
                                s->len - s->scan_off, scan_cb, s);
        s->in_scan = false;
        if (s->scanning) {
            return;
        }
    }
    block_copy_kick(s->bc);
}

static void barrier_cb(void *opaque, BdrvRangeLock *lock)
{
    BackupJob *s = opaque;

    /* writes that began before the hook are done: the data is stable */
    bdrv_range_unlock(lock);
    s->started = true;
    scan_step(s);
}

static void backup_run(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    if (s->sync_bitmap) {
        const HBitmap *bits = dbitmap_hbitmap(s->bitmap);
        uint64_t off = 0, start, len;

        hbitmap_reset_all(s->copy);
        while (hbitmap_next_dirty_area(bits, off, UINT64_MAX, &start,
                                       &len)) {
            hbitmap_set(s->copy, start, MIN(len, s->len - start));
            off = start + len;
            if (off >= s->len) {
                break;
            }
        }
    }
    job_progress_set_remaining(job, hbitmap_count(s->copy));
    bdrv_range_lock(s->src, 0, MAX(s->len, 1), barrier_cb, s);
}

static void backup_resume(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    if (s->bc) {
        block_copy_kick_later(s->bc);
    }
}

/* A pause, a cancel or a new speed: waits for the limit end. */
static void backup_kick(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    if (s->bc) {
        block_copy_wake_later(s->bc);
    }
}

static void backup_cancel(Job *job, bool force)
{
    (void)force;
    if (job->paused) {
        /* the job core resumes it next: backup_resume() goes on */
        return;
    }
    backup_kick(job);
}

static void backup_clean(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    s->finishing = true;
    if (s->filter) {
        /* (a job that never ran still holds the engine) */
        cbw_release(s->filter);
        s->bc = NULL;
        s->copy = NULL;
        /* QEMU's bdrv_cbw_drop(): the source takes its place again */
        job_filter_remove(&s->common, &s->filter);
    }
    g_clear_pointer(&s->target, bdrv_unref);
    block_job_free(&s->common);
    s->common.nodes = NULL;
    g_clear_pointer(&s->src, bdrv_unref);
}

static void backup_free(Job *job)
{
    /* a job that never ran to commit or abort: as an abort */
    cleanup_bitmap((BackupJob *)job, -1);
    backup_clean(job);
}

/*
 * QEMU's backup_cleanup_sync_bitmap(), @ret the job's result.  A job
 * that never started (a transaction's abort) has all of @copy still
 * dirty, so bitmap-mode always leaves the whole bitmap dirty, as QEMU.
 */
static void cleanup_bitmap(BackupJob *s, int ret)
{
    bool sync = (ret == 0 || s->bitmap_mode == BACKUP_BITMAP_ALWAYS)
                && s->bitmap_mode != BACKUP_BITMAP_NEVER;

    if (!s->bitmap) {
        return;
    }
    dbitmap_thaw(s->bitmap, !sync);
    if (ret < 0 && s->bitmap_mode == BACKUP_BITMAP_ALWAYS && s->copy) {
        uint64_t off = 0, start, len;

        /* what was not copied stays dirty */
        while (hbitmap_next_dirty_area(s->copy, off, UINT64_MAX, &start,
                                       &len)) {
            dbitmap_set_range(s->bitmap, start, MIN(len, s->len - start));
            off = start + len;
            if (off >= s->len) {
                break;
            }
        }
    }
    s->bitmap = NULL;
}

static void backup_commit(Job *job)
{
    cleanup_bitmap((BackupJob *)job, 0);
}

static void backup_abort(Job *job)
{
    cleanup_bitmap((BackupJob *)job, -1);
}

const JobDriver backup_driver = {
    .type = JOB_TYPE_BACKUP,
    .instance_size = sizeof(BackupJob),
    .block_job = true,
    .run = backup_run,
    .resume = backup_resume,
    .user_resume = block_job_user_resume,
    .kick = backup_kick,
    .cancel = backup_cancel,
    .commit = backup_commit,
    .abort = backup_abort,
    .clean = backup_clean,
    .free = backup_free,
    .event_data = block_job_event_data,
};

void backup_job_start(Job *job)
{
    /*
     * QEMU 7.2 runs blockdev-backup as a transaction action that starts
     * the job inside a drained section of the source: the job pauses
     * at once and resumes as the section ends, after every action of
     * the transaction committed (JOB_STATUS_CHANGE created, running,
     * paused, then running).  The same, through a pause nobody sees.
     */
    if (job_status(job) != JOB_STATUS_CREATED) {
        return;     /* cancelled from another monitor meanwhile */
    }
    job_pause(job);
    job_start(job);
    if (job_status(job) == JOB_STATUS_RUNNING) {
        job_pause_point(job);
    }
}

void backup_job_resume(Job *job)
{
    job_resume(job);
}

void backup_job_abort(Job *job)
{
    /* QEMU cancels it: created, aborting, concluded, null */
    job_cancel(job, true, NULL);
}
