/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * block-stream: pull into the top of a chain the data its backing layers
 * above base hold, then make base (or nothing) the top's backing.
 *
 * The image is walked in chunks that several workers copy at once (one
 * worker when a speed limit is set: QEMU's sequential job, whose
 * progress and rate a user can follow).  A worker goes through its
 * chunk in steps of at most STEP bytes: it asks whether a layer between
 * the top's backing and base holds the step; if so it takes a range
 * lock on the top (a guest write to the range waits, and the worker
 * waits for guest writes in flight), asks again whether the top now
 * holds the range itself (the guest wrote it: nothing to copy), and
 * otherwise reads it through the top and writes it back into the top.
 * The guest's data therefore always wins, whatever the interleaving.
 *
 * Progress is the prefix of the image that is done, as a sequential job
 * reports it; the speed limit is applied after each copy, as in QEMU.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "qapi/qjson.h"

#define CHUNK (1u << 20)        /* bytes a worker takes at a time */
#define STEP (512u << 10)       /* QEMU's stream chunk */
#define WORKERS 8

typedef struct StreamJob StreamJob;

typedef struct {
    StreamJob *s;
    uint64_t off;               /* current position in the chunk */
    uint64_t end;
    uint64_t n;                 /* bytes of the current step */
    uint8_t *buf;
    BdrvRangeLock *lock;
    bool busy;
    bool rate_wait;             /* copied; waits for the speed limit */
} Worker;

typedef struct {
    uint64_t start;
    uint64_t end;
} Span;

struct StreamJob {
    BlockJob common;
    BlockNode *top;
    BlockNode *base;            /* NULL: the whole chain */
    char *backing_file;         /* written into the top's header */
    BlockdevOnError on_error;
    bool reopened_rw;           /* the top was read-only before the job */
    uint64_t next;              /* first byte no worker took yet */
    uint64_t len;
    GArray *retry;              /* Span: given back (pause, stop, limit) */
    GArray *done;               /* Span: finished beyond the prefix */
    uint64_t prefix;            /* [0, prefix) is finished */
    int error;                  /* first error (ignore goes on) */
    bool stop;                  /* report: take no new chunks */
    bool kicking;               /* in stream_kick(): no recursion */
    bool kick_again;
    bool finishing;             /* job_completed() is on its way */
    bool error_stop;            /* stopped by on-error until resumed */
    Worker workers[WORKERS];
};

static void worker_next(Worker *w);
static void stream_kick(StreamJob *s);
static void kick_once(StreamJob *s);
static bool must_stop(StreamJob *s);

static unsigned busy_workers(StreamJob *s)
{
    unsigned n = 0;

    for (int i = 0; i < WORKERS; i++) {
        n += s->workers[i].busy;
    }
    return n;
}

static void give_back(StreamJob *s, uint64_t start, uint64_t end)
{
    Span sp = { start, end };

    if (start < end) {
        g_array_append_val(s->retry, sp);
    }
}

/* [start, end) is finished: the prefix grows over what is contiguous. */
static void mark_done(StreamJob *s, uint64_t start, uint64_t end)
{
    Job *job = &s->common.job;
    uint64_t old = s->prefix;
    Span sp = { start, end };
    bool merged = true;

    g_array_append_val(s->done, sp);
    while (merged) {
        merged = false;
        for (guint i = 0; i < s->done->len; i++) {
            Span *d = &g_array_index(s->done, Span, i);

            if (d->start <= s->prefix) {
                s->prefix = MAX(s->prefix, d->end);
                g_array_remove_index_fast(s->done, i);
                merged = true;
                break;
            }
        }
    }
    job_progress_update(job, s->prefix - old);
}

/*
 * No worker busy: finish, pause, or nothing (work is left to do).
 * Every stream_kick() is followed by this; inside a kick it waits for
 * the kick to end, since finishing may free the job.  Callers touch
 * nothing of the job after it.
 */
static void stream_idle(StreamJob *s)
{
    Job *job = &s->common.job;

    if (busy_workers(s) || s->kicking || s->finishing) {
        return;
    }
    if (job->cancelled || s->stop
        || (s->next >= s->len && !s->retry->len)) {
        s->finishing = true;
        job_completed(job, job->cancelled ? -ECANCELED : s->error, NULL);
        return;
    }
    if (job_should_pause(job)) {
        job_pause_point(job);
    }
}

static void worker_done(Worker *w)
{
    StreamJob *s = w->s;

    w->busy = false;
    if (w->lock) {
        bdrv_range_unlock(w->lock);
        w->lock = NULL;
    }
    stream_kick(s);
    stream_idle(s);
}

/*
 * An error at the current step: the policy decides.  True: go on past
 * the step.  After a report or a stop, the failures of requests that
 * were already in flight say nothing more (QEMU's job is sequential and
 * has no such requests).
 */
static bool worker_error(Worker *w, int ret)
{
    StreamJob *s = w->s;
    BlockErrorAction a;

    if (s->stop) {
        return false;
    }
    if (s->error_stop) {
        give_back(s, w->off, w->end);
        return false;
    }
    a = block_job_error_action(&s->common, s->on_error, true, ret);
    if (a == BLOCK_ERROR_ACTION_STOP) {
        s->error_stop = true;
        give_back(s, w->off, w->end);
        return false;
    }
    if (!s->error) {
        s->error = ret;
    }
    if (a == BLOCK_ERROR_ACTION_REPORT) {
        s->stop = true;
        return false;
    }
    return true;                /* ignore: the step stays as it was */
}

static void step_done(Worker *w)
{
    StreamJob *s = w->s;

    if (w->lock) {
        bdrv_range_unlock(w->lock);
        w->lock = NULL;
    }
    mark_done(s, w->off, w->off + w->n);
    w->off += w->n;
    worker_next(w);
}

static void rate_wake(BlockJob *bj)
{
    StreamJob *s = (StreamJob *)bj;

    for (int i = 0; i < WORKERS; i++) {
        Worker *w = &s->workers[i];

        if (w->rate_wait) {
            w->rate_wait = false;
            worker_next(w);
        }
    }
}

/* A step was copied: account it, and wait if the speed limit says so. */
static void copied(Worker *w)
{
    StreamJob *s = w->s;
    uint64_t delay;

    if (w->lock) {
        bdrv_range_unlock(w->lock);
        w->lock = NULL;
    }
    mark_done(s, w->off, w->off + w->n);
    w->off += w->n;
    delay = block_job_ratelimit_ns(&s->common, w->n);
    if (!delay || must_stop(s)) {
        worker_next(w);
        return;
    }
    w->rate_wait = true;
    if (!s->common.sleep_source) {
        block_job_sleep_ns(&s->common, delay, rate_wake);
    }
}

static void write_cb(void *opaque, int ret)
{
    Worker *w = opaque;

    block_job_io_end(&w->s->common);
    if (ret < 0) {
        if (worker_error(w, ret)) {
            step_done(w);
        } else {
            worker_done(w);
        }
        return;
    }
    copied(w);
}

static void read_cb(void *opaque, int ret)
{
    Worker *w = opaque;
    StreamJob *s = w->s;

    if (ret < 0) {
        block_job_io_end(&s->common);
        if (worker_error(w, ret)) {
            step_done(w);
        } else {
            worker_done(w);
        }
        return;
    }
    bdrv_write(s->top, w->off, w->n, w->buf, BDRV_REQ_LOCK_OWNER, write_cb,
               w);
}

/* Under the lock: copy unless the guest wrote the range meanwhile. */
static void top_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    Worker *w = opaque;
    StreamJob *s = w->s;

    if (ret < 0) {
        block_job_io_end(&s->common);
        if (worker_error(w, ret)) {
            step_done(w);
        } else {
            worker_done(w);
        }
        return;
    }
    w->n = MIN(w->n, pnum);
    if (status & BDRV_STATUS_ALLOCATED) {
        block_job_io_end(&s->common);
        step_done(w);
        return;
    }
    /* under the worker's range lock (locked_cb) */
    bdrv_read_locked(s->top, w->off, w->n, w->buf, read_cb, w);
}

static void locked_cb(void *opaque, BdrvRangeLock *lock)
{
    Worker *w = opaque;

    w->lock = lock;
    bdrv_block_status(w->s->top, w->off, w->n, top_status_cb, w);
}

static void above_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    Worker *w = opaque;
    StreamJob *s = w->s;

    if (ret < 0) {
        block_job_io_end(&s->common);
        w->n = MIN(w->end - w->off, STEP);
        if (worker_error(w, ret)) {
            step_done(w);
        } else {
            worker_done(w);
        }
        return;
    }
    w->n = MIN(pnum, STEP);
    if (!status) {
        block_job_io_end(&s->common);
        step_done(w);           /* base (or nothing) provides it */
        return;
    }
    /* still counted as in flight: the lock and the copy follow */
    bdrv_range_lock(s->top, w->off, w->n, locked_cb, w);
}

static bool must_stop(StreamJob *s)
{
    Job *job = &s->common.job;

    return job->cancelled || s->stop || s->error_stop
        || job_should_pause(job);
}

/* Next step of the worker's chunk, or give up the chunk and stop. */
static void worker_next(Worker *w)
{
    StreamJob *s = w->s;
    BlockNode *backing;

    if (w->off >= w->end || must_stop(s)) {
        if (!s->common.job.cancelled && !s->stop) {
            /* paused or stopped in the middle: keep the rest */
            give_back(s, w->off, w->end);
        }
        worker_done(w);
        return;
    }
    backing = bdrv_backing(s->top);
    if (!backing || backing == s->base) {
        w->n = w->end - w->off;
        step_done(w);
        return;
    }
    block_job_io_begin(&s->common);
    bdrv_is_allocated_above(backing, s->base, w->off,
                            MIN(w->end - w->off, STEP), above_cb, w);
}

/*
 * Give idle workers chunks while the job may run.  A worker that
 * finishes its chunk at once asks for more from inside this loop: the
 * request is noted and served by the loop, not by recursion (a large
 * image with nothing to copy would otherwise recurse chunk by chunk).
 */
static void stream_kick(StreamJob *s)
{
    if (s->kicking) {
        s->kick_again = true;
        return;
    }
    s->kicking = true;
    do {
        s->kick_again = false;
        kick_once(s);
    } while (s->kick_again);
    s->kicking = false;
}

static void kick_once(StreamJob *s)
{
    unsigned workers = s->common.speed ? 1 : WORKERS;

    for (unsigned i = 0; i < workers; i++) {
        Worker *w = &s->workers[i];

        if (w->busy || must_stop(s)) {
            continue;
        }
        if (s->retry->len) {
            /* the lowest offset first: the prefix grows soonest */
            guint best = 0;

            for (guint k = 1; k < s->retry->len; k++) {
                if (g_array_index(s->retry, Span, k).start
                    < g_array_index(s->retry, Span, best).start) {
                    best = k;
                }
            }
            w->off = g_array_index(s->retry, Span, best).start;
            w->end = g_array_index(s->retry, Span, best).end;
            g_array_remove_index_fast(s->retry, best);
        } else if (s->next < s->len) {
            w->off = s->next;
            w->end = MIN(s->len, w->off + CHUNK);
            s->next = w->end;
        } else {
            return;
        }
        w->busy = true;
        worker_next(w);
    }
}

static void start_cb(void *opaque, int ret)
{
    StreamJob *s = opaque;

    stream_kick(s);
    stream_idle(s);
}

/* The work starts from the main loop: the command replies first. */
static void stream_run(Job *job)
{
    StreamJob *s = (StreamJob *)job;

    s->len = bdrv_length(s->top);
    job_progress_set_remaining(job, s->len);
    ioq_defer_int(start_cb, s, 0);
}

static void stream_resume(Job *job)
{
    StreamJob *s = (StreamJob *)job;

    stream_kick(s);
    stream_idle(s);
}

static void stream_user_resume(Job *job)
{
    ((StreamJob *)job)->error_stop = false;
    block_job_user_resume(job);
}

/* Pause, cancel or a new speed while waiting for the limit: look again. */
static void stream_wake(Job *job)
{
    StreamJob *s = (StreamJob *)job;

    if (s->common.sleep_source) {
        g_source_remove(s->common.sleep_source);
        s->common.sleep_source = 0;
        rate_wake(&s->common);
    }
}

static void stream_cancel(Job *job, bool force)
{
    stream_wake(job);
}

static int stream_prepare(Job *job)
{
    StreamJob *s = (StreamJob *)job;
    const char *file = s->backing_file;
    const char *fmt = NULL;
    Error *err = NULL;

    if (s->base) {
        fmt = bdrv_driver_name(s->base);
        if (!file) {
            file = bdrv_filename(s->base);
        }
    }
    if (s->top->drv->change_backing_file
        && !bdrv_change_backing_file(s->top, s->base ? file : NULL,
                                     s->base ? fmt : NULL, &err)) {
        g_free(job->error);
        job->error = g_strdup(error_get_pretty(err));
        error_free(err);
        return -EIO;
    }
    /* the layers above base leave the graph as the top lets them go */
    bdrv_set_backing(s->top, s->base);
    return 0;
}

static void ro_done_cb(void *opaque, int ret)
{
    bdrv_unref(opaque);
}

static void stream_clean(Job *job)
{
    StreamJob *s = (StreamJob *)job;

    if (s->reopened_rw) {
        /* read-only again once what the job wrote is on disk */
        bdrv_ref(s->top);
        bdrv_make_read_only(s->top, ro_done_cb, s->top);
    }
}

/* Also for a job that failed before stream's own fields were set. */
static void stream_free(Job *job)
{
    StreamJob *s = (StreamJob *)job;

    for (int i = 0; i < WORKERS; i++) {
        if (s->workers[i].buf) {
            ioq_buf_free(s->workers[i].buf);
        }
    }
    if (s->retry) {
        g_array_free(s->retry, TRUE);
    }
    if (s->done) {
        g_array_free(s->done, TRUE);
    }
    if (s->base) {
        bdrv_unref(s->base);
    }
    if (s->top) {
        bdrv_unref(s->top);
    }
    g_free(s->backing_file);
    block_job_free(&s->common);
}

static const JobDriver stream_driver = {
    .type = JOB_TYPE_STREAM,
    .instance_size = sizeof(StreamJob),
    .block_job = true,
    .run = stream_run,
    .resume = stream_resume,
    .user_resume = stream_user_resume,
    .kick = stream_wake,
    .cancel = stream_cancel,
    .prepare = stream_prepare,
    .clean = stream_clean,
    .free = stream_free,
    .event_data = block_job_event_data,
};

/* Is @base below @top in its backing chain? */
static bool chain_contains(BlockNode *top, BlockNode *base)
{
    for (BlockNode *n = bdrv_backing(top); n; n = bdrv_backing(n)) {
        if (n == base) {
            return true;
        }
    }
    return false;
}

/* The node of the chain below @top whose image is @file (base=). */
static BlockNode *find_backing_image(BlockNode *top, const char *file)
{
    for (BlockNode *n = top; bdrv_backing(n); n = bdrv_backing(n)) {
        const char *name = bdrv_backing_file(n);

        if (!strcmp(bdrv_filename(bdrv_backing(n)), file)
            || (name && !strcmp(name, file))) {
            return bdrv_backing(n);
        }
    }
    return NULL;
}

static bool qmp_block_stream(const json_t *args, json_t **ret, Error **errp)
{
    const char *device = qjson_get_str(args, "device");
    const char *base = qjson_get_str_or(args, "base", NULL);
    const char *base_node = qjson_get_str_or(args, "base-node", NULL);
    const char *bottom = qjson_get_str_or(args, "bottom", NULL);
    const char *backing_file = qjson_get_str_or(args, "backing-file", NULL);
    BlockNode *bs = bdrv_lookup(device, device, errp);
    BlockNode *base_bs = NULL;
    bool reopened_rw;
    StreamJob *s;

    if (!bs) {
        return false;
    }
    if (base && base_node) {
        error_setg(errp, "'base' and 'base-node' cannot be specified at the "
                   "same time");
        return false;
    }
    if (base && bottom) {
        error_setg(errp, "'base' and 'bottom' cannot be specified at the "
                   "same time");
        return false;
    }
    if (bottom && base_node) {
        error_setg(errp, "'bottom' and 'base-node' cannot be specified at "
                   "the same time");
        return false;
    }
    if (qjson_has(args, "filter-node-name")) {
        error_setg(errp, "qmpd's block-stream does not support "
                   "filter-node-name");
        return false;
    }
    if (base) {
        base_bs = find_backing_image(bs, base);
        if (!base_bs) {
            error_setg(errp, "Can't find '%s' in the backing chain", base);
            return false;
        }
    }
    if (base_node) {
        base_bs = bdrv_lookup(NULL, base_node, errp);
        if (!base_bs) {
            return false;
        }
        if (bs == base_bs || !chain_contains(bs, base_bs)) {
            error_setg(errp, "Node '%s' is not a backing image of '%s'",
                       base_node, device);
            return false;
        }
    }
    if (bottom) {
        BlockNode *b = bdrv_lookup(NULL, bottom, errp);

        if (!b) {
            return false;
        }
        if (!chain_contains(bs, b)) {
            error_setg(errp, "Node '%s' is not in a chain starting from "
                       "'%s'", bottom, device);
            return false;
        }
        base_bs = bdrv_backing(b);
    }
    /*
     * A busy layer refuses the command before any job exists, so the
     * client sees the error and no JOB_STATUS_CHANGE (as QEMU).
     */
    for (BlockNode *n = bs; n && n != base_bs; n = bdrv_backing(n)) {
        if (bdrv_op_is_blocked(n, errp)) {
            return false;
        }
    }
    if (!base_bs && backing_file) {
        error_setg(errp, "backing file specified, but streaming the entire "
                   "chain");
        return false;
    }
    /* streaming into a backing image: writable for the job, as in QEMU */
    reopened_rw = bdrv_is_read_only(bs);
    if (reopened_rw && !bdrv_reopen_read_only(bs, false, errp)) {
        return false;
    }
    s = block_job_create(qjson_get_str_or(args, "job-id", NULL),
                         &stream_driver, bs,
                         qjson_get_int_or(args, "speed", 0),
                         qjson_get_bool_or(args, "auto-finalize", true),
                         qjson_get_bool_or(args, "auto-dismiss", true), errp);
    if (!s) {
        if (reopened_rw) {
            bdrv_ref(bs);
            bdrv_make_read_only(bs, ro_done_cb, bs);
        }
        return false;
    }
    s->reopened_rw = reopened_rw;
    /* the layers that go away are busy for other jobs (checked above) */
    for (BlockNode *n = bdrv_backing(bs); n && n != base_bs;
         n = bdrv_backing(n)) {
        block_job_add_node(&s->common, n, NULL);
    }
    s->top = bs;
    bdrv_ref(bs);
    s->base = base_bs;
    if (base_bs) {
        bdrv_ref(base_bs);
    }
    s->backing_file = g_strdup(backing_file);
    s->on_error = block_on_error_parse(qjson_get_str_or(args, "on-error",
                                                        NULL),
                                       BLOCKDEV_ON_ERROR_REPORT);
    s->retry = g_array_new(FALSE, FALSE, sizeof(Span));
    s->done = g_array_new(FALSE, FALSE, sizeof(Span));
    for (int i = 0; i < WORKERS; i++) {
        s->workers[i].s = s;
        s->workers[i].buf = ioq_buf_alloc(STEP);
    }
    job_start(&s->common.job);
    return true;
}

const QapiHandler stream_qmp_handlers[] = {
    { "block-stream", qmp_block_stream, NULL },
};

const size_t stream_qmp_handlers_count = G_N_ELEMENTS(stream_qmp_handlers);
