/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backup job (blockdev-backup, drive-backup): a point-in-time copy
 * of a node into a target of the same size while the guest keeps
 * writing.
 *
 * Design.  The job keeps one bitmap, @copy, of the clusters whose
 * point-in-time contents have not reached the target yet (all of them
 * at the start), and one, @busy, of the clusters being copied now.
 *
 *   - Copy-before-write: the job owns the source's write hook (io.c).
 *     A guest write or zero write that touches a cluster that is still
 *     in @copy or @busy is held: the job copies the old data of those
 *     clusters to the target first (a CBW copy), and once none of the
 *     write's clusters is in @copy or @busy, continues the write with
 *     bdrv_hook_continue().  Writes that touch only copied clusters go
 *     on untouched.  So every cluster reaches the target with the data
 *     it held when the job started, whatever the guest does.
 *   - sync=full: a background loop walks @copy from a cursor, copying
 *     runs of up to MAX_COPY bytes (x-perf max-chunk, if smaller), up
 *     to x-perf max-workers (default 64, QEMU's block-copy workers) and
 *     MAX_BYTES in flight, under the speed limit; each asks the
 *     source's block status first, so holes and zeroes go as zero
 *     writes without a read.  The job ends once @copy
 *     is empty and nothing is in flight.
 *   - sync=top: as full, but an allocation scan first drops from @copy
 *     the clusters that the source's top image does not hold at all
 *     (the target's backing provides them).  Until the scan passed a
 *     cluster it stays in @copy, so a guest write there is copied first
 *     (harmless: the data is what the backing gives).
 *   - sync=none: no background loop; only CBW copies, until the job is
 *     cancelled (the target is an overlay over the source that holds
 *     what the guest overwrote: image fleecing).
 *   - sync=bitmap (incremental: bitmap-mode on-success): @copy starts
 *     as the user's bitmap, at cluster granularity.  The bitmap is
 *     frozen for the job (busy, its count as at the start) while an
 *     anonymous successor records the writes; at the end bitmap-mode
 *     merges the two (reclaim) or keeps only the successor's bits
 *     (abdicate), as QEMU's backup_cleanup_sync_bitmap().
 *   - @copy is an anonymous, disabled bitmap on the source, so the
 *     queries show what is left to copy, as QEMU shows its block-copy
 *     bitmap.
 *   - An I/O error of the background loop ends its round (QEMU's
 *     block-copy call): nothing new is issued, and once the copies in
 *     flight are done the error policy is applied once, with one
 *     BLOCK_JOB_ERROR: report ends the job, ignore starts a new round,
 *     stop pauses the job and starts one when it is resumed.
 *
 *        guest write [A..B)          job
 *              |                      |
 *         hook: clusters dirty? --no--+--> continue at once
 *              | yes                  |
 *         hold; CBW copy each dirty, not busy cluster: read src, write tgt
 *              |                      |
 *         all its clusters clean and idle --> continue the write
 *
 * A writer that started before the hook was installed is waited for
 * with a whole-source range lock before the job reads anything.
 * Discards that reach the driver (discard=unmap) are held the same way
 * (bdrv_set_write_hook_discards()), as QEMU's copy-before-write filter
 * copies before a discard.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "qapi/qjson.h"
#include "util/hbitmap.h"

#define BACKUP_CLUSTER_DEFAULT (64 * 1024)
#define MAX_OPS 64
#define MAX_BYTES (16 * 1024 * 1024)
/* a background copy covers up to this much (QEMU's block-copy buffer) */
#define MAX_COPY (1024 * 1024)

typedef struct BackupJob BackupJob;

/* QEMU's BitmapSyncMode. */
enum {
    BITMAP_MODE_ON_SUCCESS,
    BITMAP_MODE_NEVER,
    BITMAP_MODE_ALWAYS,
};

typedef struct {
    BackupJob *s;
    uint64_t off;
    uint64_t len;
    void *buf;
    bool cbw;                   /* for a held guest write: not counted
                                   for pause, errors break the write */
} CopyOp;

/* A guest write held by the hook until its clusters are copied. */
typedef struct {
    int type;                   /* BDRV_HOOK_* */
    uint64_t off;
    uint64_t len;
    const void *buf;
    int flags;
    BdrvCb *cb;
    void *opaque;
    int ret;                    /* a failed CBW copy breaks the write */
} HeldWrite;

struct BackupJob {
    BlockJob common;
    BlockNode *src;             /* referenced */
    BlockNode *target;          /* referenced */
    bool sync_none;
    bool zero_ok;               /* zeroes may go as zero writes: the
                                   target has no backing that a zero
                                   write could let show through */
    BlockNode *top_base;        /* sync top: the source's backing (not
                                   referenced: the source holds it) */
    uint64_t scan_off;          /* sync top: the allocation scan */
    bool scan_done;
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;
    uint64_t len;
    uint64_t cluster;
    uint64_t max_chunk;         /* x-perf: a background copy's bytes */
    int64_t max_workers;        /* x-perf: background copies in flight */

    /*
     * incremental/bitmap: the user's bitmap, frozen during the job (see
     * dbitmap_freeze()); at the end bitmap-mode decides whether its
     * bits (and, for always after a failure, what was not copied) stay.
     */
    DirtyBitmap *bitmap;
    bool sync_bitmap;           /* sync=bitmap: copy only its bits */
    int bitmap_mode;            /* BITMAP_MODE_* */

    DirtyBitmap *copy_bm;       /* anonymous, on the source */
    HBitmap *copy;              /* its bits: point-in-time data not yet
                                   copied */
    HBitmap *busy;              /* being copied */
    uint64_t cursor;            /* the background loop's position */
    unsigned ops;               /* copies in flight (CBW included) */
    unsigned bg_ops;            /* background copies in flight */
    uint64_t bg_bytes;          /* their bytes */
    GQueue held;                /* HeldWrite * */
    bool hook;
    bool started;               /* the start barrier was granted */
    bool sleeping;              /* speed limit wait */
    bool prepaid;               /* the next copy was already accounted */
    bool finishing;
    int round_err;              /* the round's first error, not applied
                                   yet (0: none) */
    bool round_err_read;
    int ret;                    /* the reported error that ends the job */
    guint kick_source;
    /*
     * Copies of holes and zeroes complete inside the call that issues
     * them; these turn the pump's and the scan's recursion into loops
     */
    bool in_pump, pump_again;
    bool in_scan, scan_again;
};

static void backup_pump(BackupJob *s);
static void cleanup_bitmap(BackupJob *s, int ret);

/* ---- helpers ----------------------------------------------------------- */

static gboolean kick_cb(gpointer opaque)
{
    BackupJob *s = opaque;

    s->kick_source = 0;
    backup_pump(s);
    return G_SOURCE_REMOVE;
}

/* Pump from the main loop: the job core still uses the job after hooks. */
static void kick(BackupJob *s)
{
    if (!s->kick_source && !s->finishing) {
        s->kick_source = g_idle_add_full(G_PRIORITY_DEFAULT, kick_cb, s,
                                         NULL);
    }
}

static void cluster_range(const BackupJob *s, uint64_t off, uint64_t len,
                          uint64_t *start, uint64_t *end)
{
    *start = off / s->cluster * s->cluster;
    *end = MIN(s->len, (off + len + s->cluster - 1) / s->cluster
                       * s->cluster);
}

static bool range_has(const HBitmap *hb, uint64_t start, uint64_t end)
{
    int64_t d = hbitmap_next_dirty(hb, start);

    return d >= 0 && (uint64_t)d < end;
}

static bool buffer_is_zero(const void *buf, uint64_t len)
{
    const unsigned char *p = buf;

    return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* ---- copies ------------------------------------------------------------ */

static void process_held(BackupJob *s);

static void op_end(CopyOp *op, int ret)
{
    BackupJob *s = op->s;

    hbitmap_reset(s->busy, op->off, op->len);
    if (ret == 0) {
        hbitmap_reset(s->copy, op->off, op->len);
        job_progress_update(&s->common.job, op->len);
    }
    if (ret < 0 && op->cbw) {
        /* QEMU's on-cbw-error=break-guest-write */
        for (GList *l = s->held.head; l; l = l->next) {
            HeldWrite *w = l->data;

            if (w->off < op->off + op->len && op->off < w->off + w->len) {
                w->ret = ret;
            }
        }
    }
    ioq_buf_free(op->buf);
    s->ops--;
    if (!op->cbw) {
        s->bg_ops--;
        s->bg_bytes -= op->len;
        block_job_io_end(&s->common);
    }
    g_free(op);
    process_held(s);
    backup_pump(s);
}

static void op_failed(CopyOp *op, bool is_read, int ret)
{
    BackupJob *s = op->s;

    if (!op->cbw && !s->round_err) {
        s->round_err = ret;
        s->round_err_read = is_read;
    }
    op_end(op, ret);
}

/* The failed round has no copy in flight: the policy decides, once. */
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
    } else {
        /* a new round: what failed is still in @copy */
        s->cursor = 0;
    }
}

static void op_write_cb(void *opaque, int ret)
{
    CopyOp *op = opaque;

    if (ret < 0) {
        op_failed(op, false, ret);
        return;
    }
    op_end(op, 0);
}

static void op_read_cb(void *opaque, int ret)
{
    CopyOp *op = opaque;
    BackupJob *s = op->s;

    if (ret < 0) {
        op_failed(op, true, ret);
        return;
    }
    if (s->zero_ok && buffer_is_zero(op->buf, op->len)) {
        bdrv_write_zeroes(s->target, op->off, op->len, 0, op_write_cb, op);
    } else {
        bdrv_write(s->target, op->off, op->len, op->buf, 0, op_write_cb, op);
    }
}

/*
 * A background copy asks first what the source holds there (QEMU's
 * block-copy does): zeroes and holes go as one zero write, without a
 * read; data is read.  One method per copy: it is cut to what the
 * answer covers, and the rest is left to a later pick.
 */
static void op_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CopyOp *op = opaque;
    BackupJob *s = op->s;

    if (ret >= 0 && pnum < op->len) {
        uint64_t n = MAX(pnum / s->cluster * s->cluster, s->cluster);

        if (n < op->len) {
            hbitmap_reset(s->busy, op->off + n, op->len - n);
            s->cursor = MIN(s->cursor, op->off + n);
            s->bg_bytes -= op->len - n;
            op->len = n;
        }
    }
    if (ret >= 0 && !(status & BDRV_STATUS_DATA) && s->zero_ok
        && (status & BDRV_STATUS_ZERO) && pnum >= op->len) {
        bdrv_write_zeroes(s->target, op->off, op->len, 0, op_write_cb, op);
        return;
    }
    op->buf = ioq_buf_alloc(op->len);
    bdrv_read(s->src, op->off, op->len, op->buf, op_read_cb, op);
}

static void issue_copy(BackupJob *s, uint64_t off, uint64_t len, bool cbw)
{
    CopyOp *op = g_new0(CopyOp, 1);

    op->s = s;
    op->off = off;
    op->len = len;
    op->cbw = cbw;
    hbitmap_set(s->busy, off, len);
    s->ops++;
    if (!cbw) {
        s->bg_ops++;
        s->bg_bytes += len;
        block_job_io_begin(&s->common);
        bdrv_block_status_above(s->src, off, len, op_status_cb, op);
        return;
    }
    /* a guest write waits for it: no detour */
    op->buf = ioq_buf_alloc(len);
    bdrv_read(s->src, off, len, op->buf, op_read_cb, op);
}

/* ---- copy-before-write ------------------------------------------------- */

/*
 * Go over the held writes: continue those whose clusters are all
 * copied (or that a failed copy broke), start copies for the others.
 */
static void process_held(BackupJob *s)
{
    GList *l = s->held.head;

    while (l) {
        HeldWrite *w = l->data;
        GList *next = l->next;
        uint64_t start, end;

        cluster_range(s, w->off, w->len, &start, &end);
        if (w->ret == 0 && !s->finishing
            && range_has(s->busy, start, end)) {
            l = next;
            continue;
        }
        if (w->ret == 0 && !s->finishing && range_has(s->copy, start, end)) {
            for (uint64_t c = start; c < end; c += s->cluster) {
                if (hbitmap_get(s->copy, c) && !hbitmap_get(s->busy, c)) {
                    issue_copy(s, c, MIN(s->cluster, s->len - c), true);
                }
            }
            l = next;
            continue;
        }
        g_queue_delete_link(&s->held, l);
        if (w->ret < 0) {
            w->cb(w->opaque, w->ret);
        } else {
            bdrv_hook_continue(s->src, w->type, w->off, w->len, w->buf,
                               w->flags, w->cb, w->opaque);
        }
        g_free(w);
        /* a callback may have changed the queue: start over */
        l = s->held.head;
    }
}

static bool backup_hook(void *opaque, int type, uint64_t off, uint64_t len,
                        const void *buf, int flags, BdrvCb *cb,
                        void *cb_opaque)
{
    BackupJob *s = opaque;
    uint64_t start, end;
    HeldWrite *w;

    if (s->finishing || off >= s->len) {
        return false;
    }
    cluster_range(s, off, len, &start, &end);
    if (!range_has(s->copy, start, end) && !range_has(s->busy, start, end)) {
        return false;
    }
    w = g_new0(HeldWrite, 1);
    w->type = type;
    w->off = off;
    w->len = len;
    w->buf = buf;
    w->flags = flags;
    w->cb = cb;
    w->opaque = cb_opaque;
    g_queue_push_tail(&s->held, w);
    /* the copies start now; the write goes on from their completions */
    for (uint64_t c = start; c < end; c += s->cluster) {
        if (hbitmap_get(s->copy, c) && !hbitmap_get(s->busy, c)) {
            issue_copy(s, c, MIN(s->cluster, s->len - c), true);
        }
    }
    return true;
}

/* ---- the job ----------------------------------------------------------- */

static void release_hook(BackupJob *s)
{
    if (s->hook) {
        bdrv_set_write_hook(s->src, NULL, NULL);
        s->hook = false;
    }
    /* finishing: every held write goes on (or fails) now */
    process_held(s);
}

static void flushed_cb(void *opaque, int ret)
{
    BackupJob *s = opaque;

    job_completed(&s->common.job, ret, NULL);
}

/*
 * The job ends from the main loop, never inside backup_pump(): a copy
 * that completes at once (a read of a hole) pumps from within the pump.
 */
static void finish(BackupJob *s, int ret)
{
    s->finishing = true;
    release_hook(s);
    if (ret == 0) {
        bdrv_flush(s->target, flushed_cb, s);
        return;
    }
    ioq_defer_int(flushed_cb, s, ret);
}

static void sleep_cb(BlockJob *bj)
{
    BackupJob *s = (BackupJob *)bj;

    s->sleeping = false;
    s->prepaid = true;
    backup_pump(s);
}

static void scan_step(BackupJob *s);

static void scan_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    BackupJob *s = opaque;
    uint64_t off = s->scan_off;

    s->ops--;
    if (ret < 0) {
        /* QEMU's backup copies what it could not find out about */
        s->scan_done = true;
    } else {
        uint64_t end = MIN(s->len, off + pnum);

        if (!status) {
            uint64_t a = (off + s->cluster - 1) / s->cluster * s->cluster;
            uint64_t b = end == s->len ? end : end / s->cluster * s->cluster;

            if (a < b) {
                int64_t c = a;

                hbitmap_reset(s->copy, a, b - a);
                /* a copy in flight counts its cluster when it ends */
                while ((c = hbitmap_next_dirty(s->busy, c)) >= 0
                       && (uint64_t)c < b) {
                    hbitmap_set(s->copy, c, MIN(s->cluster, s->len - c));
                    c += s->cluster;
                }
            }
        }
        s->scan_off = end;
        s->scan_done = end >= s->len;
    }
    if (s->scan_done) {
        job_progress_set_remaining(&s->common.job, hbitmap_count(s->copy));
    }
    process_held(s);
    if (!s->scan_done && !s->finishing && !s->common.job.cancelled) {
        scan_step(s);
        return;
    }
    backup_pump(s);
}

static void scan_step(BackupJob *s)
{
    if (s->in_scan) {
        s->scan_again = true;
        return;
    }
    s->in_scan = true;
    do {
        s->scan_again = false;
        s->ops++;
        bdrv_is_allocated_above(s->src, s->top_base, s->scan_off,
                                s->len - s->scan_off, scan_cb, s);
    } while (s->scan_again);
    s->in_scan = false;
}

/*
 * The next run of clusters to copy in the background (to copy, none
 * busy, at most MAX_COPY bytes), or false.
 */
static bool pick(BackupJob *s, uint64_t *off, uint64_t *len)
{
    while (s->cursor < s->len) {
        int64_t d = hbitmap_next_dirty(s->copy, s->cursor);
        int64_t end;
        int64_t b;

        if (d < 0) {
            s->cursor = s->len;
            return false;
        }
        if (hbitmap_get(s->busy, (uint64_t)d)) {
            s->cursor = (uint64_t)d + s->cluster;
            continue;
        }
        end = MIN(s->len, (uint64_t)d + s->max_chunk);
        b = hbitmap_next_clean(s->copy, d);
        if (b >= 0 && b < end) {
            end = b;
        }
        b = hbitmap_next_dirty(s->busy, d);
        if (b >= 0 && b < end) {
            end = b;
        }
        *off = (uint64_t)d;
        *len = (uint64_t)end - (uint64_t)d;
        s->cursor = (uint64_t)end;
        return true;
    }
    return false;
}

static void pump_once(BackupJob *s);

static void backup_pump(BackupJob *s)
{
    if (s->in_pump) {
        s->pump_again = true;
        return;
    }
    s->in_pump = true;
    do {
        s->pump_again = false;
        pump_once(s);
    } while (s->pump_again);
    s->in_pump = false;
}

static void pump_once(BackupJob *s)
{
    Job *job = &s->common.job;

    if (s->finishing || !s->started || s->sleeping) {
        return;
    }
    if (s->round_err && s->bg_ops == 0) {
        round_failed(s);
    }
    while (!s->sync_none && s->scan_done && !job->cancelled && !s->ret
           && !s->round_err
           && !job->paused && !job_should_pause(job) && s->ops < MAX_OPS
           && s->bg_ops < s->max_workers && s->bg_bytes < MAX_BYTES) {
        uint64_t off;
        uint64_t len;

        if (!pick(s, &off, &len)) {
            break;
        }
        if (!s->prepaid) {
            uint64_t ns = block_job_ratelimit_ns(&s->common, len);

            if (ns) {
                /* this cluster is accounted: issue it after the wait */
                s->cursor = off;
                s->sleeping = true;
                block_job_sleep_ns(&s->common, ns, sleep_cb);
                return;
            }
        }
        s->prepaid = false;
        issue_copy(s, off, len, false);
    }
    if (s->finishing) {
        return;     /* a copy that completed at once finished the job */
    }
    if (s->ops == 0 && (job->cancelled || s->ret)) {
        finish(s, job->cancelled ? -ECANCELED : s->ret);
        return;
    }
    if (s->ops == 0 && !s->sync_none && hbitmap_count(s->copy) == 0) {
        finish(s, 0);
        return;
    }
    if (s->bg_ops == 0 && !job->paused && job_should_pause(job)) {
        job_pause_point(job);
    }
}

static void barrier_cb(void *opaque, BdrvRangeLock *lock)
{
    BackupJob *s = opaque;

    /* writes that began before the hook are done: the data is stable */
    bdrv_range_unlock(lock);
    s->started = true;
    if (!s->scan_done) {
        scan_step(s);
        return;
    }
    kick(s);
}

static void backup_run(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    s->busy = hbitmap_new(s->len, s->cluster);
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
    g_queue_init(&s->held);
    bdrv_set_write_hook(s->src, backup_hook, s);
    bdrv_set_write_hook_discards(s->src, true);
    s->hook = true;
    bdrv_range_lock(s->src, 0, MAX(s->len, 1), barrier_cb, s);
}

static void backup_resume(Job *job)
{
    kick((BackupJob *)job);
}

static void wake(BackupJob *s)
{
    if (s->common.sleep_source) {
        g_source_remove(s->common.sleep_source);
        s->common.sleep_source = 0;
        s->sleeping = false;
        s->prepaid = true;
    }
}

static void backup_cancel(Job *job, bool force)
{
    BackupJob *s = (BackupJob *)job;

    (void)force;
    if (job->paused) {
        /* the job core resumes it next: backup_resume() goes on */
        return;
    }
    wake(s);
    kick(s);
}

static void backup_kick(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    wake(s);
    kick(s);
}

static void backup_clean(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    s->finishing = true;
    release_hook(s);
    g_clear_pointer(&s->target, bdrv_unref);
    block_job_free(&s->common);
    s->common.nodes = NULL;
    if (s->copy_bm) {
        dbitmap_release(s->copy_bm);
        s->copy_bm = NULL;
        s->copy = NULL;
    }
    g_clear_pointer(&s->src, bdrv_unref);
}

static void backup_free(Job *job)
{
    BackupJob *s = (BackupJob *)job;

    if (s->kick_source) {
        g_source_remove(s->kick_source);
        s->kick_source = 0;
    }
    /* a job that never ran to commit or abort: as an abort */
    cleanup_bitmap(s, -1);
    backup_clean(job);
    g_clear_pointer(&s->busy, hbitmap_free);
}

/*
 * QEMU's backup_cleanup_sync_bitmap(), @ret the job's result.  A job
 * that never started (a transaction's abort) has all of @copy still
 * dirty, so bitmap-mode always leaves the whole bitmap dirty, as QEMU.
 */
static void cleanup_bitmap(BackupJob *s, int ret)
{
    bool sync = (ret == 0 || s->bitmap_mode == BITMAP_MODE_ALWAYS)
                && s->bitmap_mode != BITMAP_MODE_NEVER;

    if (!s->bitmap) {
        return;
    }
    dbitmap_thaw(s->bitmap, !sync);
    if (ret < 0 && s->bitmap_mode == BITMAP_MODE_ALWAYS && s->copy) {
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

static const JobDriver backup_driver = {
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

/* ---- QMP --------------------------------------------------------------- */

static uint32_t cluster_size(BlockNode *bn)
{
    bn = bdrv_skip_filters(bn);
    return bdrv_cluster_size(bn);
}

/*
 * QEMU's do_backup_common() and backup_job_create(), for @bs and
 * @target: the job, created and not started, or NULL.
 */
static BackupJob *backup_create(const json_t *args, BlockNode *bs,
                                BlockNode *target, Error **errp)
{
    const char *sync = qjson_get_str(args, "sync");
    bool has_bitmap = qjson_get_str_or(args, "bitmap", NULL) != NULL;
    const char *mode = qjson_get_str_or(args, "bitmap-mode", NULL);
    bool has_mode = mode != NULL;
    /* x-perf: QEMU's BackupPerf, 64 workers and no chunk limit */
    const json_t *perf = json_object_get(args, "x-perf");
    int64_t max_workers = perf ? qjson_get_int_or(perf, "max-workers", 64)
                               : 64;
    int64_t max_chunk = perf ? qjson_get_int_or(perf, "max-chunk", 0) : 0;
    uint64_t cluster;
    DirtyBitmap *bm = NULL;
    BackupJob *s;

    if ((!strcmp(sync, "bitmap") || !strcmp(sync, "incremental"))
        && !has_bitmap) {
        error_setg(errp, "must provide a valid bitmap name for '%s' sync "
                   "mode", sync);
        return NULL;
    }
    if (!strcmp(sync, "incremental")) {
        if (has_mode && strcmp(mode, "on-success")) {
            error_setg(errp, "Bitmap sync mode must be 'on-success' when "
                       "using sync mode 'incremental'");
            return NULL;
        }
        has_mode = true;
        mode = "on-success";
        sync = "bitmap";
    }
    if (has_bitmap) {
        const char *name = qjson_get_str(args, "bitmap");

        bm = dbitmap_find(bs, name);
        if (!bm) {
            error_setg(errp, "Bitmap '%s' could not be found", name);
            return NULL;
        }
        if (!has_mode) {
            error_setg(errp, "Bitmap sync mode must be given when providing "
                       "a bitmap");
            return NULL;
        }
        if (!dbitmap_check(bm, DBITMAP_CHECK_ALLOW_RO, errp)) {
            return NULL;
        }
        if (!strcmp(sync, "none")) {
            error_setg(errp, "sync mode '%s' does not produce meaningful "
                       "bitmap outputs", sync);
            return NULL;
        }
        if (!strcmp(mode, "never") && strcmp(sync, "bitmap")) {
            error_setg(errp, "Bitmap sync mode '%s' has no meaningful effect "
                       "when combined with sync mode '%s'", mode, sync);
            return NULL;
        }
    }
    if (!has_bitmap && has_mode) {
        error_setg(errp, "Cannot specify bitmap sync mode without a bitmap");
        return NULL;
    }
    if (bs == target) {
        error_setg(errp, "Source and target cannot be the same");
        return NULL;
    }
    if (qjson_get_bool_or(args, "compress", false)) {
        error_setg(errp, "qmpd does not support 'compress' in backup jobs");
        return NULL;
    }
    /* qmpd copies through a buffer; copy_file_range is not used */
    if (perf && qjson_get_bool_or(perf, "use-copy-range", false)) {
        error_setg(errp, "qmpd does not support 'use-copy-range' in backup "
                   "jobs");
        return NULL;
    }
    if (bdrv_op_is_blocked(bs, errp) || bdrv_op_is_blocked(target, errp)) {
        return NULL;
    }
    if (max_workers < 1 || max_workers > INT_MAX) {
        error_setg(errp, "max-workers must be between 1 and %d", INT_MAX);
        return NULL;
    }
    if (max_chunk < 0) {
        error_setg(errp, "max-chunk must be zero (which means no limit) or "
                   "positive");
        return NULL;
    }
    if (bm && strcmp(mode, "never")
        && !dbitmap_check(bm, DBITMAP_CHECK_DEFAULT, errp)) {
        return NULL;
    }
    if (bm && dbitmap_busy(bm)) {
        /* QEMU's bdrv_dirty_bitmap_create_successor() */
        error_setg(errp, "Cannot create a successor for a bitmap that is "
                   "in-use by an operation");
        return NULL;
    }
    if (bdrv_length(bs) != bdrv_length(target)) {
        error_setg(errp, "Source and target image have different sizes");
        return NULL;
    }
    if (qjson_get_str_or(args, "filter-node-name", NULL)) {
        error_setg(errp, "qmpd does not support 'filter-node-name' in "
                   "backup jobs: it inserts no filter node");
        return NULL;
    }
    if (bdrv_is_read_only(target)) {
        error_setg(errp, "Block node is read-only");
        return NULL;
    }
    /* QEMU's block-copy: at least 64 KiB, else the target's cluster */
    cluster = MAX(BACKUP_CLUSTER_DEFAULT, cluster_size(target));
    if (max_chunk && (uint64_t)max_chunk < cluster) {
        error_setg(errp, "Required max-chunk (%" PRId64 ") is less than "
                   "backup cluster size (%" PRIu64 ")", max_chunk, cluster);
        return NULL;
    }

    s = block_job_create(qjson_get_str_or(args, "job-id", NULL),
                         &backup_driver, bs,
                         qjson_get_int_or(args, "speed", 0),
                         qjson_get_bool_or(args, "auto-finalize", true),
                         qjson_get_bool_or(args, "auto-dismiss", true), errp);
    if (!s) {
        return NULL;
    }
    s->src = bs;
    bdrv_ref(bs);
    s->target = target;
    bdrv_ref(target);
    s->sync_none = !strcmp(sync, "none");
    if (bm) {
        s->bitmap = bm;
        s->bitmap_mode = !strcmp(mode, "never") ? BITMAP_MODE_NEVER
                         : !strcmp(mode, "always") ? BITMAP_MODE_ALWAYS
                         : BITMAP_MODE_ON_SUCCESS;
        s->sync_bitmap = !strcmp(sync, "bitmap");
        if (!dbitmap_freeze(bm, NULL)) {
            g_assert_not_reached();     /* not busy: checked above */
        }
    }
    s->zero_ok = !bdrv_backing_file(bdrv_skip_filters(target))
                 && !bdrv_backing(bdrv_skip_filters(target));
    /* without a backing, what the top holds is what the chain holds */
    s->top_base = bdrv_backing(bdrv_skip_filters(bs));
    s->scan_done = strcmp(sync, "top") != 0;
    s->len = bdrv_length(bs);
    s->cluster = cluster;
    /*
     * a copy is whole clusters: up to max-chunk when it is smaller,
     * rounded up to a cluster as QEMU's block-copy does
     */
    s->max_chunk = MAX(MAX_COPY, cluster);
    if (max_chunk) {
        s->max_chunk = MIN(s->max_chunk, (uint64_t)max_chunk);
        s->max_chunk = (s->max_chunk + cluster - 1) / cluster * cluster;
    }
    s->max_workers = max_workers;
    /* all dirty until the job starts, as QEMU's block-copy bitmap */
    s->copy_bm = dbitmap_create(bs, s->cluster, NULL, NULL);
    dbitmap_set_enabled(s->copy_bm, false);
    s->copy = dbitmap_hbitmap(s->copy_bm);
    hbitmap_set(s->copy, 0, s->len);
    s->on_source_error = block_on_error_parse(
        qjson_get_str_or(args, "on-source-error", NULL),
        BLOCKDEV_ON_ERROR_REPORT);
    s->on_target_error = block_on_error_parse(
        qjson_get_str_or(args, "on-target-error", NULL),
        BLOCKDEV_ON_ERROR_REPORT);
    block_job_add_node(&s->common, target, NULL);
    return s;
}

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

static bool backup_start(const json_t *args, BlockNode *bs,
                         BlockNode *target, Error **errp)
{
    BackupJob *s = backup_create(args, bs, target, errp);

    if (!s) {
        return false;
    }
    backup_job_start(&s->common.job);
    backup_job_resume(&s->common.job);
    return true;
}

static BackupJob *drive_backup_create(const json_t *args,
                                      BlockNode **opened, Error **errp);

Job *backup_txn_prepare(const json_t *args, bool drive, JobTxn *txn,
                        Error **errp)
{
    BackupJob *s;

    if (drive) {
        BlockNode *opened = NULL;

        s = drive_backup_create(args, &opened, errp);
        if (opened) {
            bdrv_unref(opened);
        }
    } else {
        const char *device = qjson_get_str(args, "device");
        const char *target = qjson_get_str(args, "target");
        BlockNode *bs, *tgt;

        bs = bdrv_lookup(device, device, errp);
        if (!bs) {
            return NULL;
        }
        tgt = bdrv_lookup(target, target, errp);
        if (!tgt) {
            return NULL;
        }
        s = backup_create(args, bs, tgt, errp);
    }
    if (!s) {
        return NULL;
    }
    if (txn) {
        job_txn_add_job(txn, &s->common.job);
    }
    return &s->common.job;
}

static bool qmp_blockdev_backup(const json_t *args, json_t **ret,
                                Error **errp)
{
    const char *device = qjson_get_str(args, "device");
    const char *target = qjson_get_str(args, "target");
    BlockNode *bs, *tgt;

    (void)ret;
    bs = bdrv_lookup(device, device, errp);
    if (!bs) {
        return false;
    }
    tgt = bdrv_lookup(target, target, errp);
    if (!tgt) {
        return false;
    }
    return backup_start(args, bs, tgt, errp);
}

/*
 * Open drive-backup's target as QEMU does: read-write, discard=unmap,
 * detect-zeroes=unmap, without its backing (sync none gives it the
 * source as backing afterwards).
 */
static BlockNode *open_target(const char *filename, const char *format,
                              Error **errp)
{
    g_autoptr(json_t) opts = json_pack("{s:s,s:s}", "discard", "unmap",
                                       "detect-zeroes", "unmap");
    json_t *fo = bdrv_filename_options(filename, errp);
    BlockNode *f = NULL;
    BlockNode *t;

    if (!fo) {
        return NULL;
    }
    if (!format) {
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
 * QEMU 7.2's drive_backup_prepare(): the checks and their order.  The
 * target opened here is held by the job; *@opened is NULL unless the job
 * could not be created with the target open (the caller closes it).
 */
static BackupJob *drive_backup_create(const json_t *args,
                                      BlockNode **opened, Error **errp)
{
    const char *device = qjson_get_str(args, "device");
    const char *filename = qjson_get_str(args, "target");
    const char *sync = qjson_get_str(args, "sync");
    bool existing = !strcmp(qjson_get_str_or(args, "mode",
                                             "absolute-paths"), "existing");
    const char *format = qjson_get_str_or(args, "format", NULL);
    g_autoptr(json_t) a = json_deep_copy(args);
    BlockNode *bs, *target, *source = NULL;
    BackupJob *s;

    bs = bdrv_lookup(device, device, errp);
    if (!bs) {
        return NULL;
    }
    if (!format && !existing) {
        format = bdrv_driver_name(bs);
    }
    if (bdrv_op_is_blocked(bs, errp)) {
        return NULL;
    }
    if (!strcmp(sync, "top")) {
        source = bdrv_backing(bdrv_skip_filters(bs));
        if (!source) {
            sync = "full";
            json_object_set_new(a, "sync", qjson_str(sync));
        }
    }
    if (!strcmp(sync, "none")) {
        source = bs;
    }
    if (!existing
        && !bdrv_img_create("backup", filename, format, bdrv_length(bs),
                            source, errp)) {
        return NULL;
    }
    target = open_target(filename, format, errp);
    if (!target) {
        return NULL;
    }
    *opened = target;
    if (source && (!strcmp(sync, "none") || !existing)) {
        /*
         * QEMU opens the backing the new image names (sync top) or sets
         * the source (sync none); qmpd gives the node it has open
         */
        bdrv_set_backing(bdrv_skip_filters(target), source);
    }
    s = backup_create(a, bs, target, errp);
    if (!s) {
        return NULL;
    }
    /* the job holds the target now */
    bdrv_unref(target);
    *opened = NULL;
    return s;
}

static bool drive_backup(const json_t *args, BlockNode **opened,
                         Error **errp)
{
    BackupJob *s = drive_backup_create(args, opened, errp);

    if (!s) {
        return false;
    }
    backup_job_start(&s->common.job);
    backup_job_resume(&s->common.job);
    return true;
}

static void qmp_drive_backup(const json_t *args, QapiReply *reply)
{
    block_job_start_with_files(args, reply, drive_backup);
}

const QapiHandler backup_qmp_handlers[] = {
    { "blockdev-backup", qmp_blockdev_backup, NULL },
    { "drive-backup", NULL, qmp_drive_backup },
};

const size_t backup_qmp_handlers_count = G_N_ELEMENTS(backup_qmp_handlers);
