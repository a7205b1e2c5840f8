/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Mirror's write-blocking path (copy-mode write-blocking, QEMU's active
 * mirror): a write hook on the source holds each guest write until the
 * same data is on the target too, after any copy in flight over its
 * granules.  And qmpd's extension that switches a background job to it:
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
 */
#include "config.h"

#include <inttypes.h>

#include "block/core/block-int.h"
#include "block/jobs/mirror-int.h"
#include "util/log.h"

/* A guest write held in write-blocking mode (io.c's write hook). */
typedef struct {
    MirrorJob *s;
    uint64_t off;
    uint64_t len;
    int type;                   /* BDRV_HOOK_* */
    const void *buf;
    int flags;
    BdrvCb *cb;                 /* the write's own completion */
    void *opaque;
    int ret;                    /* the source write's result */
} ActiveWrite;

static void converge_restart(MirrorJob *s);
static void pace_restart(MirrorJob *s, bool lost);

/* ---- write-blocking mode ----------------------------------------------- */

/* A guest write in write-blocking mode went to both sides (or failed). */
static void active_done(ActiveWrite *w, int ret)
{
    MirrorJob *s = w->s;
    BdrvCb *cb = w->cb;
    void *opaque = w->opaque;

    s->active_count--;
    g_free(w);
    /* the pump may end the job: the guest's callback goes last */
    mirror_pump(s);
    cb(opaque, ret);
}

/* On the target too (a failure went through on-target-error). */
static void active_target_cb(void *opaque, int ret)
{
    ActiveWrite *w = opaque;

    active_done(w, w->ret);
}

/*
 * The source has the write: the engine writes the same to the target
 * once no copy has its granules in flight (QEMU's
 * do_sync_target_write()), and clears the granules it covers whole.
 */
static void active_source_cb(void *opaque, int ret)
{
    ActiveWrite *w = opaque;
    MirrorJob *s = w->s;
    uint64_t g = s->granularity;
    uint64_t end = w->off + w->len;
    uint64_t head;
    uint64_t tail;

    w->ret = ret;
    if (ret < 0 || s->ret < 0 || job_is_cancelled(&s->common.job)) {
        /* what the source holds now is unknown, or does not matter */
        block_copy_set_dirty(s->bc, w->off, w->len);
        active_done(w, ret);
        return;
    }
    if (s->cow_cluster) {
        /*
         * A target cluster written in part would read zeroes, not its
         * backing's data, in the rest: only whole clusters go to the
         * target, the job copies the others (made dirty) whole
         */
        uint64_t c = s->cow_cluster;
        uint64_t a = (w->off + c - 1) / c * c;
        uint64_t e = end == s->len ? end : end / c * c;

        head = e > a ? a - w->off : w->len;
        tail = e > a ? end - e : 0;
        block_copy_set_dirty(s->bc, w->off, head);
        block_copy_set_dirty(s->bc, end - tail, tail);
    } else {
        /*
         * Partly covered granules that are dirty stay so: the job copies
         * them whole later (QEMU skips them too)
         */
        head = w->off % g && block_copy_is_dirty(s->bc, w->off)
            ? MIN(w->len, g - w->off % g) : 0;
        tail = end % g && end < s->len && w->len > head
            && block_copy_is_dirty(s->bc, end - 1)
            ? MIN(w->len - head, end % g) : 0;
    }
    if (head + tail >= w->len) {
        active_done(w, ret);
        return;
    }
    block_copy_write_blocking(s->bc, w->off + head, w->len - head - tail,
                              w->type == BDRV_HOOK_WRITE
                              ? (const uint8_t *)w->buf + head : NULL,
                              w->type == BDRV_HOOK_WRITE
                              ? w->flags & BDRV_REQ_FUA
                              : w->flags & (BDRV_REQ_FUA
                                            | BDRV_REQ_MAY_UNMAP),
                              active_target_cb, w);
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
    bdrv_hook_continue(s->src, type, off, w->len, buf, flags,
                       active_source_cb, w);
    return true;
}

/* ---- __com.qmpd_auto-write-blocking ------------------------------------ */

/* A new window: the next sample is its first lowest. */
static void converge_restart(MirrorJob *s)
{
    s->converge_samples = 0;
    s->converge_min = UINT64_MAX;
    s->converge_mark = block_copy_written(s->bc);
}

/* A new pace window; @lost: it follows one the guest won. */
static void pace_restart(MirrorJob *s, bool lost)
{
    s->pace_samples = 0;
    s->pace_lost = lost ? s->pace_lost + 1 : 0;
    s->pace_copied = block_copy_written(s->bc);
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
    uint64_t copied = block_copy_written(s->bc) - s->pace_copied;
    uint64_t written = s->guest_written - s->pace_written;

    if (++s->pace_samples < CONVERGE_SAMPLES
        || copied < 2 * MIN(s->buf_size, s->len)) {
        return false;
    }
    pace_restart(s, written >= copied - copied / 4);
    return s->pace_lost >= PACE_LOST_WINDOWS;
}

void mirror_converge_stop(MirrorJob *s)
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
    uint64_t left = block_copy_dirty_bytes(s->bc)
        + block_copy_in_flight_bytes(s->bc);
    uint64_t copied;
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
    copied = block_copy_written(s->bc) - s->converge_mark;
    if (s->converge_samples < CONVERGE_SAMPLES
        || copied < 2 * MIN(s->buf_size, s->len)) {
        return G_SOURCE_CONTINUE;
    }
    s->converge_source = 0;
    why = g_strdup_printf("lowest %" PRIu64 " over the last %u samples "
                          "while %" PRIu64 " bytes were copied",
                          s->converge_min, s->converge_samples, copied);
    converge_switch(s, left, why);
    return G_SOURCE_REMOVE;
}

void mirror_active_begin(MirrorJob *s)
{
    bdrv_set_write_hook(s->src, active_hook, s);
    s->hook = true;
}

void mirror_converge_start(MirrorJob *s)
{
    mirror_converge_restart(s);
    s->converge_source = g_timeout_add(CONVERGE_SAMPLE_MS, converge_cb, s);
}

void mirror_converge_restart(MirrorJob *s)
{
    converge_restart(s);
    pace_restart(s, false);
}
