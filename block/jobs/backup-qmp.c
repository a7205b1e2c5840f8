/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backup commands: blockdev-backup, drive-backup (which creates and
 * opens its target as QEMU 7.2 does) and their transaction actions.
 * They check the arguments in QEMU's order and with its messages, and
 * set up the job (backup.c) that runs the copy.
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/jobs/backup-int.h"
#include "block/jobs/cbw.h"
#include "block/jobs/job-filter.h"
#include "qapi/qjson.h"

#define BACKUP_CLUSTER_DEFAULT (64 * 1024)
/* a background copy covers up to this much (QEMU's block-copy buffer) */
#define MAX_COPY (1024 * 1024)

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
    uint64_t chunk;
    BlockCopyConfig tmpl;
    BlockNode *filter;
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
    /* QEMU's block-copy: at least 64 KiB, else the target's cluster */
    cluster = MAX(BACKUP_CLUSTER_DEFAULT, cluster_size(target));
    /*
     * a copy is whole clusters: up to max-chunk when it is smaller,
     * rounded up to a cluster as QEMU's block-copy does
     */
    chunk = MAX(MAX_COPY, cluster);
    if (max_chunk) {
        chunk = MIN(chunk, (uint64_t)max_chunk);
        chunk = (chunk + cluster - 1) / cluster * cluster;
    }
    /*
     * QEMU's backup_job_create(): the bitmap's successor, the filter
     * (whose copy bitmap lists before the successor), the job on it
     */
    if (bm && !dbitmap_freeze(bm, NULL)) {
        g_assert_not_reached();     /* not busy: checked above */
    }
    tmpl = backup_copy_template(chunk, max_workers);
    filter = cbw_append(bs, target,
                        qjson_get_str_or(args, "filter-node-name", NULL),
                        &tmpl, errp);
    if (filter && max_chunk && (uint64_t)max_chunk < cluster) {
        error_setg(errp, "Required max-chunk (%" PRId64 ") is less than "
                   "backup cluster size (%" PRIu64 ")", max_chunk, cluster);
        job_filter_remove(NULL, &filter);
    }
    s = !filter ? NULL
        : block_job_create_args(args, &backup_driver, filter, errp);
    if (!s) {
        job_filter_remove(NULL, &filter);
        if (bm) {
            dbitmap_thaw(bm, true);
        }
        return NULL;
    }
    s->filter = filter;
    backup_take_engine(s);
    s->src = bs;
    bdrv_ref(bs);
    s->target = target;
    bdrv_ref(target);
    s->sync_none = !strcmp(sync, "none");
    if (bm) {
        s->bitmap = bm;
        s->bitmap_mode = !strcmp(mode, "never") ? BACKUP_BITMAP_NEVER
                         : !strcmp(mode, "always") ? BACKUP_BITMAP_ALWAYS
                         : BACKUP_BITMAP_ON_SUCCESS;
        s->sync_bitmap = !strcmp(sync, "bitmap");
    }
    s->zero_ok = !bdrv_backing_file(bdrv_skip_filters(target))
                 && !bdrv_backing(bdrv_skip_filters(target));
    /* without a backing, what the top holds is what the chain holds */
    s->top_base = bdrv_backing(bdrv_skip_filters(bs));
    s->scan_done = strcmp(sync, "top") != 0;
    s->len = bdrv_length(bs);
    s->cluster = cbw_cluster_size(filter);
    s->max_chunk = chunk;
    s->max_workers = max_workers;
    s->on_source_error = block_on_error_parse(
        qjson_get_str_or(args, "on-source-error", NULL),
        BLOCKDEV_ON_ERROR_REPORT);
    s->on_target_error = block_on_error_parse(
        qjson_get_str_or(args, "on-target-error", NULL),
        BLOCKDEV_ON_ERROR_REPORT);
    block_job_add_node(&s->common, target, NULL);
    return s;
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

    return bdrv_open_filename(filename, format, NULL, opts, true, errp);
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
