/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * drive-mirror, blockdev-mirror and active commit's start: the checks
 * and errors of QEMU 7.2's blockdev_mirror_common() and
 * mirror_start_job() in their order, the mirror_top filter, the job's
 * nodes, sizes and target cluster rules (mirror.c runs the job), and
 * drive-mirror's target file (mode, format).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/jobs/job-filter.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/mirror-int.h"
#include "block/jobs/trace-events.h"
#include "qapi/qjson.h"

static bool edge_live(const BdrvChild *c)
{
    return c->parent && bdrv_edge_live(c);
}

/*
 * QEMU's qmp_get_root_bs(): no node uses it, and no block job either
 * (a job's nodes have the job as a parent in QEMU; a migration's
 * blocker is no parent, and its refusal comes from op_blocked()).
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
    if (bdrv_op_blocked_by_job(bn)) {
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
        if (job->driver == &mirror_job_driver && ((MirrorJob *)job)->src == bn
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
    blk_job_hold_writer(target);
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
        if (!mirror_can_replace(bs, r)) {
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
    s = block_job_create_args(args, &mirror_job_driver, top, errp);
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
    TRACE(job_trace, mirror_start, "bs %p s %p opaque %p", (void *)m->bs,
          (void *)s, NULL);
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
    s = block_job_create(job_id, &mirror_commit_job_driver, filter, speed,
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
    const char *node_name = qjson_get_str_or(args, "node-name", NULL);
    g_autoptr(json_t) opts = json_object();
    g_autoptr(json_t) node = NULL;

    if (bs->cache_direct || bs->cache_no_flush) {
        json_object_set_new(opts, "cache", json_pack(
                                "{s:b,s:b}", "direct", bs->cache_direct,
                                "no-flush", bs->cache_no_flush));
    }
    if (bs->discard_unmap) {
        json_object_set_new(opts, "discard", qjson_str("unmap"));
    }
    node = json_deep_copy(opts);
    if (node_name) {
        json_object_set_new(node, "node-name", qjson_str(node_name));
    }
    return bdrv_open_filename(qjson_get_str(args, "target"), format, opts,
                              node, true, errp);
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
    /* as QEMU, before the target file is made (a migrating disk) */
    if (!m.bs || op_blocked(m.bs, errp)) {
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
