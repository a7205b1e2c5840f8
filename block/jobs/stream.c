/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * block-stream: pull into the top of a chain the data its backing layers
 * above base hold, then make base (or nothing) the top's backing.
 *
 * The copy engine (copy.c) does the pass: the whole image is dirty at
 * the start; it copies, in QEMU's 512 KiB steps, what a layer between
 * the top's backing and base holds, from the top (read through the
 * chain) into the top itself, under a range lock on the top after which
 * it asks again whether the top now holds the range (the guest wrote
 * it: nothing to copy).  The guest's data therefore always wins,
 * whatever the interleaving.  Several operations run at once; under a
 * speed limit they pass it one after the other, each once the copy
 * before it was counted (the rate of QEMU's sequential job, which a
 * user can follow).  Progress is the prefix of the image that is done,
 * as a sequential job reports it.
 *
 * This file keeps the policy: the error policy (ignore goes on past the
 * range and fails the job at the end, as QEMU's stream), when the job
 * ends, and the graph change at the end.
 *
 * While the job runs, QEMU's copy-on-read filter sits above the top
 * (job-filter.c), with base's overlay as its bottom: the job is made on
 * it, and the guest's reads through it copy what they fetch from above
 * base as well, under the same range locks (io-cor.c).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/copy.h"
#include "block/jobs/job-filter.h"
#include "block/jobs/trace-events.h"
#include "qapi/qjson.h"

#define GRANULE (64u << 10)
#define CHUNK (1u << 20)        /* bytes an operation takes at a time */
#define STEP (512u << 10)       /* QEMU's stream chunk */
#define OPS 8

typedef struct {
    BlockJob common;
    BlockNode *top;
    BlockNode *filter;          /* copy-on-read above top until the job
                                   exits; referenced */
    BlockNode *base;            /* NULL: the whole chain */
    char *backing_file;         /* written into the top's header */
    BlockdevOnError on_error;
    bool reopened_rw;           /* the top was read-only before the job */
    BlockCopy *bc;
    int error;                  /* first error (ignore goes on) */
    bool stop;                  /* report: take no new ranges */
    bool finishing;             /* job_completed() is on its way */
    bool error_stop;            /* stopped by on-error until resumed */
} StreamJob;

static bool stream_may_run(void *opaque)
{
    StreamJob *s = opaque;
    Job *job = &s->common.job;

    return !job->cancelled && !s->stop && !s->error_stop
        && !job_should_pause(job);
}

/*
 * After a report or a stop, the failures of requests that were already
 * in flight say nothing more (QEMU's job is sequential and has no such
 * requests).
 */
static BlockCopyErrorResult stream_error(void *opaque, bool is_read, int ret)
{
    StreamJob *s = opaque;
    BlockErrorAction a;

    if (s->stop || s->error_stop) {
        return BLOCK_COPY_ERROR_RETRY;
    }
    a = block_job_error_action(&s->common, s->on_error, true, ret);
    if (a == BLOCK_ERROR_ACTION_STOP) {
        s->error_stop = true;
        return BLOCK_COPY_ERROR_RETRY;
    }
    if (!s->error) {
        s->error = ret;
    }
    if (a == BLOCK_ERROR_ACTION_REPORT) {
        s->stop = true;
        return BLOCK_COPY_ERROR_RETRY;
    }
    return BLOCK_COPY_ERROR_SKIP;   /* ignore: the range stays as it was */
}

/* Nothing busy: finish, or pause. */
static void stream_idle(void *opaque)
{
    StreamJob *s = opaque;
    Job *job = &s->common.job;

    if (s->finishing) {
        return;
    }
    if (job->cancelled || s->stop || !block_copy_dirty_bytes(s->bc)) {
        s->finishing = true;
        job_completed(job, job->cancelled ? -ECANCELED : s->error, NULL);
        return;
    }
    if (job_should_pause(job)) {
        job_pause_point(job);
    }
}

static const BlockCopyOps stream_copy_ops = {
    .may_run = stream_may_run,
    .error = stream_error,
    .idle = stream_idle,
};

static void start_cb(void *opaque, int ret)
{
    StreamJob *s = opaque;

    block_copy_kick(s->bc);
}

/* The work starts from the main loop: the command replies first. */
static void stream_run(Job *job)
{
    StreamJob *s = (StreamJob *)job;
    BlockCopyConfig cfg = {
        .job = &s->common,
        .source = s->top,
        .target = s->top,
        .alloc_check = true,
        .alloc_top = bdrv_backing(s->top),
        .alloc_base = s->base,
        .guest_wins = true,
        .len = bdrv_length(s->top),
        .granularity = GRANULE,
        .chunk = CHUNK,
        .step = STEP,
        .max_ops = OPS,
        .ops = &stream_copy_ops,
        .opaque = s,
    };

    s->bc = block_copy_new(&cfg);
    block_copy_set_dirty(s->bc, 0, cfg.len);
    job_progress_set_remaining(job, cfg.len);
    ioq_defer_int(start_cb, s, 0);
}

static void stream_resume(Job *job)
{
    block_copy_kick(((StreamJob *)job)->bc);
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

    if (s->bc) {
        block_copy_wake(s->bc);
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

    /* QEMU drops the filter first: it holds the chain */
    job_filter_remove(&s->common, &s->filter);
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

    /* its write permission goes before top is read-only again */
    job_filter_remove(&s->common, &s->filter);
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

    job_filter_remove(&s->common, &s->filter);
    block_copy_free(s->bc);
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

/*
 * The copy-on-read filter QEMU puts above @top for the job, copying
 * what the chain holds above @base (its "bottom" is base's overlay).
 */
static BlockNode *insert_cor(BlockNode *top, BlockNode *base,
                             const char *name, Error **errp)
{
    BlockNode *bottom = top;
    g_autoptr(json_t) opts = NULL;

    while (bdrv_backing(bottom) && bdrv_backing(bottom) != base) {
        bottom = bdrv_backing(bottom);
    }
    opts = json_pack("{s:s}", "bottom", bdrv_node_name(bottom));
    /* the job's backend on it reads, and writes what it copies */
    return job_filter_insert(&bdrv_cor, top, name, opts,
                             BLK_PERM_CONSISTENT_READ,
                             BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE
                             | BLK_PERM_WRITE_UNCHANGED, errp);
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
    BlockNode *filter;
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
    /* QEMU's stream_start(): copy-on-read above top, the job on it */
    filter = insert_cor(bs, base_bs,
                        qjson_get_str_or(args, "filter-node-name", NULL),
                        errp);
    s = !filter ? NULL
        : block_job_create_args(args, &stream_driver, filter, errp);
    if (!s) {
        job_filter_remove(NULL, &filter);
        if (reopened_rw) {
            bdrv_ref(bs);
            bdrv_make_read_only(bs, ro_done_cb, bs);
        }
        return false;
    }
    s->reopened_rw = reopened_rw;
    s->filter = filter;
    /* top and the layers that go away are busy for other jobs (checked
     * above) */
    for (BlockNode *n = bs; n && n != base_bs; n = bdrv_backing(n)) {
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
    TRACE(job_trace, stream_start, "bs %p base %p s %p", (void *)bs,
          (void *)base_bs, (void *)s);
    job_start(&s->common.job);
    TRACE(job_trace, qmp_block_stream, "bs %p", (void *)bs);
    return true;
}

const QapiHandler stream_qmp_handlers[] = {
    { "block-stream", qmp_block_stream, NULL },
};

const size_t stream_qmp_handlers_count = G_N_ELEMENTS(stream_qmp_handlers);
