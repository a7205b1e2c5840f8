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
 * It keeps up to MAX_IN_FLIGHT copies in flight; a copy is a read
 * from top and a write to base.  The speed limit works as QEMU's: a
 * copy goes out, and the delay it causes is waited before the next.
 * Everything the job waits for (copies, allocation queries, flushes)
 * is counted with block_job_io_begin/end: pause, cancel
 * and the end of the job wait for that count to reach zero.
 * job_completed() is only called at the tail of a callback or hook,
 * since it may free the job.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "qapi/qjson.h"

#define GRANULE (64 * 1024ull)
#define COMMIT_CHUNK (512 * 1024ull)    /* QEMU's buffer */
#define MAX_IN_FLIGHT 16

typedef struct CommitJob CommitJob;

/* A range to copy; failed ones are queued to redo. */
typedef struct {
    uint64_t off;
    uint64_t len;
    uint64_t pass_off;          /* [pass_off, off + len) of the pass is
                                   done when the copy is */
} Range;

typedef struct {
    CommitJob *s;
    Range r;
    void *buf;
} CommitOp;

struct CommitJob {
    BlockJob common;
    BlockNode *top;
    BlockNode *base;
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
    bool error_pending;         /* stopped, not resumed yet */
    guint kick_source;

    /* the allocation pass */
    uint64_t scan_off;
    bool scan_busy;

    /* the allocated extent being carved, the retries */
    uint64_t ext_off;
    uint64_t ext_end;
    uint64_t ext_skip;          /* head of ext_off below the pass */
    GQueue redo;                /* Range * */
    uint64_t done_off;          /* the pass is done up to here */
    GArray *done_ivs;           /* Interval: done beyond done_off */
};

static void commit_pump(CommitJob *s);

/* ---- progress of the pass --------------------------------------------- */

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

static void commit_sleep_cb(BlockJob *bj)
{
    commit_pump((CommitJob *)bj);
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
    if (s->kick_source) {
        g_source_remove(s->kick_source);
        s->kick_source = 0;
    }
    /* clean() makes base read-only again: its metadata must be written */
    if (s->need_flush && s->base_made_rw) {
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
    if (s->need_flush && s->base_made_rw && s->common.in_flight == 0) {
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

    ioq_buf_free(op->buf);
    g_free(op);
    block_job_io_end(&s->common);
}

static void copy_failed(CommitOp *op, bool is_read, int ret)
{
    CommitJob *s = op->s;

    /* QEMU retries the same range first */
    g_queue_push_head(&s->redo, g_memdup2(&op->r, sizeof(op->r)));
    op_end(op);
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
    pass_done(s, op->r.pass_off, op->r.off + op->r.len);
    op_end(op);
    commit_pump(s);
}

static void copy_read_cb(void *opaque, int ret)
{
    CommitOp *op = opaque;
    CommitJob *s = op->s;

    if (ret < 0) {
        copy_failed(op, true, ret);
        return;
    }
    s->need_flush = true;
    bdrv_write(s->base, op->r.off, op->r.len, op->buf, 0, copy_write_cb, op);
}

static void issue_copy(CommitJob *s, const Range *r)
{
    CommitOp *op = g_new0(CommitOp, 1);

    op->s = s;
    op->r = *r;
    block_job_io_begin(&s->common);
    op->buf = ioq_buf_alloc(op->r.len);
    bdrv_read(s->top, op->r.off, op->r.len, op->buf, copy_read_cb, op);
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
    if (status) {
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

/* ---- the copy ----------------------------------------------------------- */

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
    pump_intermediate(s);
}

/* ---- job driver -------------------------------------------------------- */

static void commit_begin(CommitJob *s)
{
    job_progress_set_remaining(&s->common.job, s->len);
    s->started = true;
    commit_pump(s);
}

static void grown_cb(BlockJob *bj)
{
    commit_begin((CommitJob *)bj);
}

static void commit_run(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    s->len = bdrv_length(s->top);
    if (bdrv_length(s->base) < s->len) {
        /* base must hold all of top (QEMU truncates it too) */
        block_job_grow_base(&s->common, s->base, s->len, grown_cb);
        return;
    }
    commit_begin(s);
}

static void commit_resume(Job *job)
{
    /* a paused commit that is cancelled ends before the reply */
    commit_pump((CommitJob *)job);
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
    return drop_intermediate((CommitJob *)job);
}

static void commit_clean(Job *job)
{
    CommitJob *s = (CommitJob *)job;

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
    Range *r;

    if (s->kick_source) {
        g_source_remove(s->kick_source);
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
    return !bdrv_op_is_blocked(bn, NULL);
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
    g_queue_init(&s->redo);
    s->done_ivs = g_array_new(FALSE, FALSE, sizeof(Interval));
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
    if (qjson_has(args, "filter-node-name")) {
        /* QEMU inserts a commit_top/mirror_top filter node; qmpd has none */
        error_setg(errp, "qmpd does not support 'filter-node-name' in "
                   "block-commit");
        return false;
    }

    if (active) {
        job = mirror_commit_create(job_id, bs, top_bs, base_bs, speed,
                                   on_error, auto_finalize, auto_dismiss,
                                   errp);
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
    /* the nodes that leave the graph, and base */
    for (BlockNode *it = top_bs; it && it != base_bs;
         it = bdrv_filter_or_cow(it)) {
        block_job_add_node((BlockJob *)job, it, NULL);
    }
    block_job_add_node((BlockJob *)job, base_bs, NULL);
    job_start(job);
    return true;
}

const QapiHandler commit_qmp_handlers[] = {
    { "block-commit", qmp_block_commit, NULL },
};

const size_t commit_qmp_handlers_count = G_N_ELEMENTS(commit_qmp_handlers);
