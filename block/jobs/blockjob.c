/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block jobs: the node, the speed limit, the error policy, the op
 * blockers, and the block-job-* commands and query-block-jobs.  See
 * blockjob.h for what a driver does.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/trace-events.h"
#include "qapi/event.h"
#include "qapi/qjson.h"

#define SLICE_NS (100 * 1000 * 1000ll)     /* rate limit slice: 100 ms */

/*
 * What blocks a node: a job, or (job NULL) something else that names
 * itself, as block migration.  Nodes are few, blockers fewer; a list
 * will do.
 */
static GList *blocked;     /* BlockedNode * */

typedef struct {
    BlockNode *bn;
    BlockJob *job;
    const char *reason;         /* when job is NULL: QEMU's words */
} BlockedNode;

static BlockedNode *blocker_of(const BlockNode *bn)
{
    for (GList *l = blocked; l; l = l->next) {
        BlockedNode *b = l->data;

        if (b->bn == bn) {
            return b;
        }
    }
    return NULL;
}

static const char *device_name(BlockNode *bs);

bool bdrv_op_is_blocked(BlockNode *bn, Error **errp)
{
    BlockedNode *b = blocker_of(bn);
    /* QEMU names the device when the node is a backend's root */
    const char *name = *device_name(bn) ? device_name(bn)
                                        : bdrv_node_name(bn);

    if (b && b->job) {
        error_setg(errp, "Node '%s' is busy: block device is in use by "
                   "block job: %s", name,
                   job_type_name(b->job->job.driver->type));
        return true;
    }
    if (b) {
        error_setg(errp, "Node '%s' is busy: %s", name, b->reason);
        return true;
    }
    return false;
}

bool bdrv_op_blocked_by_job(const BlockNode *bn)
{
    const BlockedNode *b = blocker_of(bn);

    return b && b->job;
}

void bdrv_op_block(BlockNode *bn, const char *reason)
{
    BlockedNode *b = g_new0(BlockedNode, 1);

    b->bn = bn;
    b->reason = reason;
    bdrv_ref(bn);
    /* behind any job's: a job that blocked it first is named first */
    blocked = g_list_append(blocked, b);
}

void bdrv_op_unblock(BlockNode *bn, const char *reason)
{
    for (GList *l = blocked; l; l = l->next) {
        BlockedNode *b = l->data;

        if (!b->job && b->bn == bn && b->reason == reason) {
            blocked = g_list_delete_link(blocked, l);
            bdrv_unref(bn);
            g_free(b);
            return;
        }
    }
}

bool block_job_add_node(BlockJob *bj, BlockNode *bn, Error **errp)
{
    BlockedNode *prev = blocker_of(bn);
    BlockedNode *b;

    if (prev && prev->job == bj) {
        return true;
    }
    if (bdrv_op_is_blocked(bn, errp)) {
        return false;
    }
    b = g_new0(BlockedNode, 1);
    b->bn = bn;
    b->job = bj;
    bdrv_ref(bn);
    blocked = g_list_prepend(blocked, b);
    g_ptr_array_add(bj->nodes, bn);
    return true;
}

void block_job_drop_node(BlockJob *bj, BlockNode *bn)
{
    for (GList *l = blocked; l; l = l->next) {
        BlockedNode *b = l->data;

        if (b->job == bj && b->bn == bn) {
            blocked = g_list_delete_link(blocked, l);
            g_ptr_array_remove(bj->nodes, bn);
            bdrv_unref(bn);
            g_free(b);
            break;
        }
    }
    if (bj->bs == bn) {
        bj->bs = NULL;
        bdrv_unref(bn);
    }
}

static void unblock_all(BlockJob *bj)
{
    GList *l = blocked;

    while (l) {
        GList *next = l->next;
        BlockedNode *b = l->data;

        if (b->job == bj) {
            blocked = g_list_delete_link(blocked, l);
            bdrv_unref(b->bn);
            g_free(b);
        }
        l = next;
    }
    g_ptr_array_set_size(bj->nodes, 0);
}

/* The backend whose root @bs is: QEMU's default job id. */
static const char *device_name(BlockNode *bs)
{
    GPtrArray *all = blk_all();

    for (guint i = 0; i < all->len; i++) {
        BlockBackend *blk = g_ptr_array_index(all, i);

        if (blk_root(blk) == bs && *blk_name(blk)) {
            return blk_name(blk);
        }
    }
    return "";
}

void *block_job_create(const char *job_id, const JobDriver *drv,
                       BlockNode *bs, int64_t speed, bool auto_finalize,
                       bool auto_dismiss, Error **errp)
{
    BlockJob *bj;

    if (bdrv_op_is_blocked(bs, errp)) {
        return NULL;
    }
    bj = job_create(job_id ? job_id : device_name(bs), drv, auto_finalize,
                    auto_dismiss, errp);
    if (!bj) {
        return NULL;
    }
    bj->bs = bs;
    bdrv_ref(bs);
    bj->io_status = "ok";
    bj->nodes = g_ptr_array_new();
    block_job_add_node(bj, bs, NULL);
    job_apply_verb(&bj->job, JOB_VERB_SET_SPEED);
    if (speed < 0) {
        /* QEMU sets the speed on the created job: created, then null */
        error_setg(errp, "Parameter 'speed' expects a non-negative value");
        job_early_fail(&bj->job);
        return NULL;
    }
    bj->speed = speed;
    return bj;
}

void *block_job_create_args(const json_t *args, const JobDriver *drv,
                            BlockNode *bs, Error **errp)
{
    return block_job_create(qjson_get_str_or(args, "job-id", NULL), drv, bs,
                            qjson_get_int_or(args, "speed", 0),
                            qjson_get_bool_or(args, "auto-finalize", true),
                            qjson_get_bool_or(args, "auto-dismiss", true),
                            errp);
}

BlockJob *block_job_get(const char *id, Error **errp)
{
    Job *job = job_find(id);

    if (!job || !job->driver->block_job) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_ACTIVE,
                  "Block job '%s' not found", id);
        return NULL;
    }
    return (BlockJob *)job;
}

uint64_t block_job_ratelimit_ns(BlockJob *bj, uint64_t bytes)
{
    int64_t now = g_get_monotonic_time() * 1000;
    uint64_t quota;

    if (!bj->speed) {
        return 0;
    }
    quota = MAX(1, (uint64_t)bj->speed * SLICE_NS / 1000000000ll);
    if (now - bj->slice_start_ns >= SLICE_NS) {
        /* whole slices of quota went unused: start a new one */
        uint64_t slices = (now - bj->slice_start_ns) / SLICE_NS;

        bj->slice_start_ns += slices * SLICE_NS;
        bj->slice_bytes = slices * quota >= bj->slice_bytes
            ? 0 : bj->slice_bytes - slices * quota;
    }
    bj->slice_bytes += bytes;
    if (bj->slice_bytes <= quota) {
        return 0;
    }
    /* over quota: wait until the slices it needs have passed */
    return (bj->slice_bytes - 1) / quota * SLICE_NS
        - (now - bj->slice_start_ns);
}

#define SLEEP_SLICE_NS (100 * 1000 * 1000ll)

void block_job_rate_account(BlockJob *bj, uint64_t bytes)
{
    uint64_t ns = block_job_ratelimit_ns(bj, bytes);

    if (ns) {
        bj->wait_until_ns = g_get_monotonic_time() * 1000 + ns;
        bj->wait_speed = bj->speed;
    }
}

bool block_job_rate_wait(BlockJob *bj, void (*wake)(BlockJob *))
{
    gint64 now = g_get_monotonic_time() * 1000;

    if (!bj->wait_until_ns) {
        return false;
    }
    if (bj->speed != bj->wait_speed || now >= bj->wait_until_ns) {
        bj->wait_until_ns = 0;
        return false;
    }
    block_job_sleep_ns(bj, MIN(bj->wait_until_ns - now, SLEEP_SLICE_NS),
                       wake);
    return true;
}

typedef struct {
    BlockJob *bj;
    void (*cb)(BlockJob *);
} Sleep;

static gboolean sleep_done_cb(gpointer opaque)
{
    Sleep *s = opaque;

    s->bj->sleep_source = 0;
    s->cb(s->bj);
    return G_SOURCE_REMOVE;
}

void block_job_sleep_ns(BlockJob *bj, uint64_t ns, void (*cb)(BlockJob *))
{
    Sleep *s = g_new0(Sleep, 1);

    g_assert(!bj->sleep_source);
    s->bj = bj;
    s->cb = cb;
    bj->sleep_source = g_timeout_add_full(G_PRIORITY_DEFAULT,
                                          CLAMP(ns / 1000000, 1, G_MAXUINT),
                                          sleep_done_cb, s, g_free);
}

void block_job_io_begin(BlockJob *bj)
{
    bj->in_flight++;
}

void block_job_io_end(BlockJob *bj)
{
    g_assert(bj->in_flight > 0);
    bj->in_flight--;
}

typedef struct {
    BlockJob *bj;
    BlockNode *base;
    uint64_t len;
    void (*cb)(BlockJob *bj);
} GrowOp;

static void grow_flushed_cb(void *opaque, int ret)
{
    GrowOp *g = opaque;
    BlockJob *bj = g->bj;
    void (*cb)(BlockJob *bj) = g->cb;
    Error *err = NULL;

    block_job_io_end(bj);
    if (ret < 0) {
        error_setg_errno(&err, -ret, "Could not flush base before resizing");
    } else if (!g->base->drv->truncate) {
        error_setg(&err, "Image format driver does not support resize");
    } else {
        g->base->drv->truncate(g->base, g->len, &err);
    }
    g_free(g);
    if (err) {
        job_completed(&bj->job, ret < 0 ? ret : -EIO, error_get_pretty(err));
        error_free(err);
        return;
    }
    cb(bj);
}

static void grow_drained_cb(void *opaque, int ret)
{
    GrowOp *g = opaque;

    bdrv_flush(g->base, grow_flushed_cb, g);
}

void block_job_grow_base(BlockJob *bj, BlockNode *base, uint64_t len,
                         void (*cb)(BlockJob *bj))
{
    GrowOp *g = g_new0(GrowOp, 1);

    g->bj = bj;
    g->base = base;
    g->len = len;
    g->cb = cb;
    block_job_io_begin(bj);
    bdrv_drain(base, grow_drained_cb, g);
}

BlockErrorAction block_job_error_action(BlockJob *bj, BlockdevOnError on_err,
                                        bool is_read, int error)
{
    static const char *const names[] = { "ignore", "report", "stop" };
    BlockErrorAction action = block_error_action_for(on_err, -error);

    if (!bj->job.cancelled) {
        qapi_event_send("BLOCK_JOB_ERROR", json_pack(
                            "{s:s,s:s,s:s}", "device", bj->job.id,
                            "operation", is_read ? "read" : "write",
                            "action", names[action]));
    }
    if (action == BLOCK_ERROR_ACTION_STOP) {
        if (!bj->job.user_paused) {
            bj->job.pause_count++;
            bj->job.user_paused = true;
        }
        if (!strcmp(bj->io_status, "ok")) {
            bj->io_status = error == -ENOSPC ? "nospace" : "failed";
        }
    }
    return action;
}

void block_job_user_resume(Job *job)
{
    ((BlockJob *)job)->io_status = "ok";
}

json_t *block_job_event_data(Job *job)
{
    BlockJob *bj = (BlockJob *)job;

    return json_pack("{s:s,s:s,s:I,s:I,s:I}", "type",
                     job_type_name(job->driver->type), "device", job->id,
                     "len", (json_int_t)job->progress_total,
                     "offset", (json_int_t)job->progress_current,
                     "speed", (json_int_t)bj->speed);
}

void block_job_free(BlockJob *bj)
{
    if (bj->sleep_source) {
        g_source_remove(bj->sleep_source);
        bj->sleep_source = 0;
    }
    if (bj->nodes) {
        unblock_all(bj);
        g_ptr_array_unref(bj->nodes);
    }
    if (bj->bs) {
        bdrv_unref(bj->bs);
        bj->bs = NULL;
    }
}

typedef struct {
    const json_t *args;
    QapiReply *reply;
    BlockJobStartFn *start;
    Error *err;
} StartWithFiles;

static void start_failed_cb(void *opaque, int ret)
{
    StartWithFiles *d = opaque;

    qapi_reply_error(d->reply, d->err);
    g_free(d);
}

static void start_go_cb(void *opaque, int ret)
{
    StartWithFiles *d = opaque;
    BlockNode *opened = NULL;

    if (d->start(d->args, &opened, &d->err)) {
        qapi_reply_return(d->reply, NULL);
        g_free(d);
        return;
    }
    if (!opened) {
        start_failed_cb(d, 0);
        return;
    }
    bdrv_unref(opened);
    bdrv_wait_closed(start_failed_cb, d);
}

void block_job_start_with_files(const json_t *args, QapiReply *reply,
                                BlockJobStartFn *start)
{
    StartWithFiles *d = g_new0(StartWithFiles, 1);

    d->args = args;
    d->reply = reply;
    d->start = start;
    bdrv_wait_closed(start_go_cb, d);
}

/* ---- QMP ----------------------------------------------------------------- */

static json_t *block_job_info(BlockJob *bj)
{
    Job *job = &bj->job;
    json_t *o = json_pack(
        "{s:s,s:s,s:I,s:I,s:b,s:b,s:I,s:s,s:b,s:s,s:b,s:b}",
        "type", job_type_name(job->driver->type), "device", job->id,
        "len", (json_int_t)job->progress_total,
        "offset", (json_int_t)job->progress_current,
        "busy", bj->in_flight > 0 && !job->paused,
        "paused", job->pause_count > 0,
        "speed", (json_int_t)bj->speed, "io-status", bj->io_status,
        /* QEMU's job_is_ready(): not after leaving ready (pending) */
        "ready", job->status == JOB_STATUS_READY
                 || job->status == JOB_STATUS_STANDBY,
        "status", job_status_name(job->status),
        "auto-finalize", job->auto_finalize,
        "auto-dismiss", job->auto_dismiss);

    if (job->ret < 0 && job->status == JOB_STATUS_CONCLUDED) {
        json_object_set_new(o, "error", qjson_str(
                                job->error ? job->error
                                           : g_strerror(-job->ret)));
    }
    return o;
}

static bool qmp_query_block_jobs(const json_t *args, json_t **ret,
                                 Error **errp)
{
    json_t *list = json_array();

    for (GList *l = job_list(); l; l = l->next) {
        Job *job = l->data;

        if (job->id && job->driver->block_job) {
            json_array_append_new(list, block_job_info((BlockJob *)job));
        }
    }
    *ret = list;
    return true;
}

static bool qmp_block_job_set_speed(const json_t *args, json_t **ret,
                                    Error **errp)
{
    BlockJob *bj = block_job_get(qjson_get_str(args, "device"), errp);
    int64_t speed = qjson_get_int(args, "speed");

    if (!bj) {
        return false;
    }
    if (!job_apply_verb(&bj->job, JOB_VERB_SET_SPEED)) {
        error_setg(errp, "Job '%s' in state '%s' cannot accept command verb "
                   "'set-speed'", bj->job.id,
                   job_status_name(bj->job.status));
        return false;
    }
    if (speed < 0) {
        error_setg(errp, "Parameter 'speed' expects a non-negative value");
        return false;
    }
    bj->speed = speed;
    /* the new limit counts from now; a job waiting for the old one looks
     * again */
    bj->slice_start_ns = g_get_monotonic_time() * 1000;
    bj->slice_bytes = 0;
    if (bj->job.driver->kick) {
        bj->job.driver->kick(&bj->job);
    }
    return true;
}

#define BLOCK_JOB_VERB(fn, key, call)                                       \
    static bool fn(const json_t *args, json_t **ret, Error **errp)          \
    {                                                                       \
        BlockJob *bj = block_job_get(qjson_get_str(args, key), errp);       \
                                                                            \
        if (!bj) {                                                          \
            return false;                                                   \
        }                                                                   \
        TRACE(job_trace, fn, "job %p", (void *)bj);                         \
        return call;                                                        \
    }

static bool qmp_block_job_cancel(const json_t *args, json_t **ret,
                                 Error **errp)
{
    const char *id = qjson_get_str(args, "device");
    BlockJob *bj = block_job_get(id, errp);
    bool force = qjson_get_bool_or(args, "force", false);

    if (!bj) {
        return false;
    }
    if (bj->job.user_paused && !force) {
        error_setg(errp, "The block job for device '%s' is currently paused",
                   id);
        return false;
    }
    TRACE(job_trace, qmp_block_job_cancel, "job %p", (void *)bj);
    return job_cancel(&bj->job, force, errp);
}
BLOCK_JOB_VERB(qmp_block_job_pause, "device", job_user_pause(&bj->job, errp))
BLOCK_JOB_VERB(qmp_block_job_resume, "device",
               job_user_resume(&bj->job, errp))
BLOCK_JOB_VERB(qmp_block_job_complete, "device", job_complete(&bj->job, errp))
BLOCK_JOB_VERB(qmp_block_job_finalize, "id", job_finalize(&bj->job, errp))
BLOCK_JOB_VERB(qmp_block_job_dismiss, "id",
               job_dismiss_verb(&bj->job, errp))

const QapiHandler blockjob_qmp_handlers[] = {
    { "query-block-jobs", qmp_query_block_jobs, NULL },
    { "block-job-set-speed", qmp_block_job_set_speed, NULL },
    { "block-job-cancel", qmp_block_job_cancel, NULL },
    { "block-job-pause", qmp_block_job_pause, NULL },
    { "block-job-resume", qmp_block_job_resume, NULL },
    { "block-job-complete", qmp_block_job_complete, NULL },
    { "block-job-finalize", qmp_block_job_finalize, NULL },
    { "block-job-dismiss", qmp_block_job_dismiss, NULL },
};

const size_t blockjob_qmp_handlers_count =
    G_N_ELEMENTS(blockjob_qmp_handlers);
