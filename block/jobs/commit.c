/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * block-commit: write the data of a backing chain's upper layers (top
 * and the layers down to base, exclusive) into base, as QEMU 7.2 does.
 *
 * Active commit (top is the device's active layer) is a mirror job with
 * the commit type, as in QEMU: the command is checked here and the job
 * made by mirror.c's mirror_commit_create().  The job of this file is
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
 * The copy engine (copy.c) makes the pass, up to OPS operations at
 * once; a copy is a read from top and a write to base.  This file keeps
 * the policy: the on-error policy (a failed range is retried, as QEMU's
 * commit retries the same offset), base's flush before the end, and the
 * graph change.  Everything the job waits for (copies, allocation
 * queries, flushes) is counted with block_job_io_begin/end: pause,
 * cancel and the end of the job wait for that count to reach zero.
 * job_completed() is only called at the tail of a callback or hook,
 * since it may free the job.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/copy.h"
#include "block/jobs/job-filter.h"
#include "block/jobs/trace-events.h"
#include "qapi/qjson.h"

#define GRANULE (64 * 1024ull)
#define COMMIT_CHUNK (512 * 1024ull)    /* QEMU's buffer */
#define OPS 16

typedef struct {
    BlockJob common;
    BlockNode *top;
    BlockNode *filter;          /* commit_top, above top until the job
                                   exits; referenced */
    BlockNode *base;
    char *backing_file;
    BlockdevOnError on_error;
    bool base_made_rw;          /* reopened read-write for the job */
    BlockCopy *bc;

    bool started;               /* setup (base growth) finished */
    bool done;                  /* finishing: no more copies */
    int ret;                    /* the reported error that ends the job */
    int final_ret;
    uint64_t flushed;           /* bytes written when base was flushed */
    bool flush_again;           /* a flush of base failed */
    bool flush_failed;
    bool error_pending;         /* stopped, not resumed yet */
} CommitJob;

/* base was written since its last flush */
static bool need_flush(CommitJob *s)
{
    return s->base_made_rw
        && (s->flush_again || block_copy_written(s->bc) != s->flushed);
}

static void flush_start(CommitJob *s, BdrvCb *cb)
{
    s->flush_again = false;
    s->flushed = block_copy_written(s->bc);
    bdrv_flush(s->base, cb, s);
}

/*
 * The on-error policy for a failed request.  QEMU's commit copies one
 * range at a time and so reports once; with several requests in flight
 * the job reports the first failure and retries the others silently.
 */
static void error_action(CommitJob *s, bool is_read, int ret)
{
    BlockErrorAction action;

    if (s->ret < 0 || s->error_pending) {
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
    /* clean() makes base read-only again: its metadata must be written */
    if (need_flush(s)) {
        flush_start(s, finish_flushed_cb);
        return;
    }
    finish_now(s);
}

static void idle_flushed_cb(void *opaque, int ret)
{
    CommitJob *s = opaque;

    block_job_io_end(&s->common);
    if (ret < 0) {
        s->flush_again = true;
        error_action(s, false, ret);
    }
    block_copy_kick(s->bc);
}

/*
 * Waiting for the speed limit with nothing in flight: write base's
 * metadata now, so that a cancel finds nothing to wait for and ends at
 * once, as QEMU's sleeping job does.
 */
static void commit_sleeping(void *opaque)
{
    CommitJob *s = opaque;

    if (need_flush(s) && s->common.in_flight == 0) {
        block_job_io_begin(&s->common);
        flush_start(s, idle_flushed_cb);
    }
}

/* ---- the pass ---------------------------------------------------------- */

static bool commit_may_run(void *opaque)
{
    CommitJob *s = opaque;
    Job *job = &s->common.job;

    return !s->done && !job_is_cancelled(job) && s->ret == 0
        && !job_should_pause(job);
}

static BlockCopyErrorResult commit_error(void *opaque, bool is_read, int ret)
{
    error_action(opaque, is_read, ret);
    return BLOCK_COPY_ERROR_RETRY;
}

/* No copy busy: the end, a pause, or a flush to wait for. */
static void commit_idle(void *opaque)
{
    CommitJob *s = opaque;
    Job *job = &s->common.job;

    if (s->done || s->common.in_flight) {
        return;
    }
    if (job_is_cancelled(job) || s->ret < 0) {
        commit_finish(s, s->ret < 0 ? s->ret : -ECANCELED);
    } else if (job_should_pause(job)) {
        job_pause_point(job);
    } else if (!block_copy_dirty_bytes(s->bc)) {
        commit_finish(s, 0);
    }
}

static const BlockCopyOps commit_copy_ops = {
    .may_run = commit_may_run,
    .error = commit_error,
    .sleeping = commit_sleeping,
    .idle = commit_idle,
};

/* ---- job driver -------------------------------------------------------- */

static void commit_begin(CommitJob *s)
{
    s->started = true;
    block_copy_kick(s->bc);
}

static void grown_cb(BlockJob *bj)
{
    commit_begin((CommitJob *)bj);
}

static void commit_run(Job *job)
{
    CommitJob *s = (CommitJob *)job;
    BlockCopyConfig cfg = {
        .job = &s->common,
        .source = s->top,
        .target = s->base,
        .alloc_check = true,
        .alloc_top = s->top,
        .alloc_base = s->base,
        .align_copies = true,
        .len = bdrv_length(s->top),
        .granularity = GRANULE,
        .chunk = COMMIT_CHUNK,
        .step = COMMIT_CHUNK,
        .max_ops = OPS,
        .ops = &commit_copy_ops,
        .opaque = s,
    };

    s->bc = block_copy_new(&cfg);
    block_copy_set_dirty(s->bc, 0, cfg.len);
    job_progress_set_remaining(job, cfg.len);
    if (bdrv_length(s->base) < cfg.len) {
        /* base must hold all of top (QEMU truncates it too) */
        block_job_grow_base(&s->common, s->base, cfg.len, grown_cb);
        return;
    }
    commit_begin(s);
}

static void commit_resume(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    /* a paused commit that is cancelled ends before the reply */
    if (s->started) {
        block_copy_kick(s->bc);
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

    /* QEMU's commit has no cancel hook: every cancel is forced */
    job->force_cancel = true;
    if (job->paused || !s->started) {
        /* the job core resumes it next: commit_resume() goes on */
        return;
    }
    /* the job core still uses the job after this hook: end later */
    block_copy_wake_later(s->bc);
}

/* A pause was requested or the speed changed: look again now. */
static void commit_kick(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    if (s->started && !block_copy_wake(s->bc)) {
        block_copy_kick(s->bc);
    }
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

    /* the overlay is top's again, then base's */
    job_filter_remove(NULL, &s->filter);
    return drop_intermediate(s);
}

static void commit_clean(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    job_filter_remove(NULL, &s->filter);
    /*
     * QEMU restores a read-only base after an intermediate commit only
     * (active commit leaves it writable).  Its metadata was flushed.
     */
    if (s->base_made_rw && !s->flush_failed) {
        bdrv_reopen_read_only(s->base, true, NULL);
    }
}

static void commit_free(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    block_copy_free(s->bc);
    job_filter_remove(NULL, &s->filter);
    block_job_free(&s->common);
    if (s->top) {
        blk_job_release(s->top);
        bdrv_unref(s->top);
    }
    if (s->base) {
        blk_job_release(s->base);
        bdrv_unref(s->base);
    }
    g_free(s->backing_file);
}

static const JobDriver commit_driver = {
    .type = JOB_TYPE_COMMIT,
    .instance_size = sizeof(CommitJob),
    .block_job = true,
    .run = commit_run,
    .resume = commit_resume,
    .user_resume = commit_user_resume,
    .kick = commit_kick,
    .cancel = commit_cancel,
    .prepare = commit_prepare,
    .clean = commit_clean,
    .free = commit_free,
    .event_data = block_job_event_data,
};

/* ---- QMP --------------------------------------------------------------- */

/* The node above @bn in @active's chain (filters skipped), or NULL. */
static BlockNode *find_overlay(BlockNode *active, BlockNode *bn)
{
    bn = bdrv_skip_filters(bn);
    for (active = bdrv_skip_filters(active); active;
         active = bdrv_backing_chain_next(active)) {
        if (bdrv_backing_chain_next(active) == bn) {
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
         cur = bdrv_backing_chain_next(cur)) {
        BlockNode *below = bdrv_backing_chain_next(cur);
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
    return !bdrv_op_blocked_by_job(bn);
}

/* The intermediate commit job, created but not started. */
static Job *commit_create(const char *job_id, BlockNode *bs, BlockNode *top,
                          BlockNode *base, int64_t speed,
                          BlockdevOnError on_error, const char *backing_file,
                          bool auto_finalize, bool auto_dismiss, Error **errp)
{
    CommitJob *s = block_job_create(job_id, &commit_driver, bs, speed,
                                    auto_finalize, auto_dismiss, errp);

    if (!s) {
        return NULL;
    }
    /* QEMU's commit job writes through backends of its own on both */
    s->top = top;
    bdrv_ref(top);
    blk_job_hold(top);
    s->base = base;
    bdrv_ref(base);
    blk_job_hold(base);
    s->on_error = on_error;
    s->backing_file = g_strdup(backing_file);
    return &s->common.job;
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
    int64_t speed = qjson_get_int_or(args, "speed", 0);
    bool auto_finalize = qjson_get_bool_or(args, "auto-finalize", true);
    bool auto_dismiss = qjson_get_bool_or(args, "auto-dismiss", true);
    Job *job;
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
        if (!bdrv_chain_contains(bs, top_bs)) {
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
        if (!bdrv_chain_contains(top_bs, base_bs)) {
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
        while (bdrv_backing_chain_next(base_bs)) {
            base_bs = bdrv_backing_chain_next(base_bs);
        }
    }

    for (BlockNode *it = top_bs; it && it != bdrv_filter_or_cow(base_bs);
         it = bdrv_filter_or_cow(it)) {
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
    if (active) {
        job = mirror_commit_create(job_id, top_bs, base_bs,
                                   qjson_get_str_or(args, "filter-node-name",
                                                    NULL),
                                   speed, on_error, auto_finalize,
                                   auto_dismiss, errp);
    } else {
        job = commit_create(job_id, bs, top_bs, base_bs, speed, on_error,
                            backing_file, auto_finalize, auto_dismiss, errp);
    }
    if (!job) {
        return false;
    }
    if (bdrv_is_read_only(base_bs)) {
        if (!bdrv_reopen_read_only(base_bs, false, errp)) {
            job_early_fail(job);
            return false;
        }
        if (!active) {
            /* made read-only again at the end (commit_clean()) */
            ((CommitJob *)job)->base_made_rw = true;
        }
    }
    if (!active) {
        /* QEMU's commit_start(): commit_top above top, after the reopen */
        CommitJob *s = (CommitJob *)job;

        s->filter = job_filter_insert(&bdrv_commit_top, top_bs,
                                      qjson_get_str_or(args,
                                                       "filter-node-name",
                                                       NULL),
                                      NULL, 0, BLK_PERM_ALL, errp);
        if (!s->filter) {
            if (s->base_made_rw) {
                bdrv_reopen_read_only(base_bs, true, NULL);
            }
            job_early_fail(job);
            return false;
        }
    }
    /* the nodes that leave the graph, and base */
    for (BlockNode *it = top_bs; it && it != base_bs;
         it = bdrv_filter_or_cow(it)) {
        block_job_add_node((BlockJob *)job, it, NULL);
    }
    block_job_add_node((BlockJob *)job, base_bs, NULL);
    TRACE(job_trace, commit_start, "bs %p base %p top %p s %p", (void *)bs,
          (void *)base_bs, (void *)top_bs, (void *)job);
    job_start(job);
    return true;
}

const QapiHandler commit_qmp_handlers[] = {
    { "block-commit", qmp_block_commit, NULL },
};

const size_t commit_qmp_handlers_count = G_N_ELEMENTS(commit_qmp_handlers);
