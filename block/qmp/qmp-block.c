/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP commands of the block layer: adding and removing nodes, the
 * queries (query-block, query-named-block-nodes, query-blockstats,
 * x-debug-query-block-graph) in QEMU 7.2's shapes, and the graph and
 * image changes (resize, backing file, snapshots, whose work is
 * core/snapshot.c's; blockdev-reopen is qmp-reopen.c).
 *
 * Commands that must wait for I/O (blockdev-del closes and flushes,
 * block_resize drains first) are async handlers.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "block/qmp/qmp-block.h"
#include "qapi/qjson.h"

/* ---- information ---------------------------------------------------------- */

/*
 * Whether QEMU's bdrv_get_info() answers for @bn, without which image
 * info has no "dirty-flag": qcow2 and file do, raw and filters ask
 * their child, null-co and snapshot-access cannot.
 */
static bool has_image_info(const BlockNode *bn)
{
    if (bn->drv->is_filter) {
        return bn->file && has_image_info(bn->file->child);
    }
    if (bn->drv->dirty_flag || !strcmp(bn->drv->name, "file")) {
        return true;
    }
    /* a format without it (snapshot-access) has none */
    return bn->file && bn->drv->get_info && has_image_info(bn->file->child);
}

/* The node whose image QEMU shows below @bn's: its filtered child, or
 * its backing (bdrv_filter_or_cow_bs()). */
static BlockNode *filter_or_cow(const BlockNode *bn)
{
    BlockNode *f = bdrv_filter_child(bn);

    return f ? f : bdrv_backing(bn);
}

/* @blk_level: for query-block, which looks through implicit filters
 * (QEMU's bdrv_block_device_info() with a backend) */
static json_t *image_info(BlockNode *bn, bool flat, bool blk_level)
{
    json_t *o = json_object();
    BlockNode *b = filter_or_cow(bn);
    int64_t actual = bn->drv->allocated_size ? bn->drv->allocated_size(bn)
                                             : -1;

    json_object_set_new(o, "filename", qjson_str(bdrv_filename(bn)));
    json_object_set_new(o, "format", qjson_str(bn->drv->name));
    if (has_image_info(bn)) {
        json_object_set_new(o, "dirty-flag", json_boolean(
                                bn->drv->dirty_flag
                                && bn->drv->dirty_flag(bn)));
    }
    if (actual >= 0) {
        json_object_set_new(o, "actual-size", json_integer(actual));
    }
    /* QEMU reports lengths in whole sectors (bdrv_getlength) */
    json_object_set_new(o, "virtual-size", json_integer(
                            (bn->total_size + 511) & ~(uint64_t)511));
    /* as QEMU, none when the node (a filter over a file) has none */
    if (bdrv_cluster_size(bn)) {
        json_object_set_new(o, "cluster-size",
                            json_integer(bdrv_cluster_size(bn)));
    }
    if (bn->backing_file) {
        /*
         * Like QEMU, from the name in the header (whatever backing is
         * open), relative to the directory of the file below the format
         */
        BlockNode *f = bdrv_file_child(bn);
        g_autofree char *full = bdrv_full_backing_filename(
            bdrv_filename(f ? f : bn), bn->backing_file);

        json_object_set_new(o, "backing-filename",
                            qjson_str(bn->backing_file));
        json_object_set_new(o, "full-backing-filename", qjson_str(full));
        if (bn->backing_format) {
            json_object_set_new(o, "backing-filename-format",
                                qjson_str(bn->backing_format));
        }
    }
    if (b && !flat) {
        json_object_set_new(o, "backing-image",
                            image_info(blk_level
                                       ? bdrv_skip_implicit_filters(b) : b,
                                       false, blk_level));
    }
    if (bn->drv->format_specific) {
        json_object_set_new(o, "format-specific",
                            bn->drv->format_specific(bn));
    }
    return o;
}

static const char *detect_zeroes_name(BdrvDetectZeroes d)
{
    return d == BDRV_DETECT_ZEROES_ON ? "on"
        : d == BDRV_DETECT_ZEROES_UNMAP ? "unmap" : "off";
}

/* @blk_level: as image_info() */
static json_t *device_info(BlockNode *bn, bool flat, bool blk_level)
{
    json_t *o = json_object();
    BlockNode *b = bdrv_backing(bn);
    json_t *bitmaps;
    int depth = 0;

    /* QEMU counts the depth while collecting the chain, so not if flat */
    for (BlockNode *n = filter_or_cow(bn); n && !flat;
         n = filter_or_cow(n)) {
        depth++;
        if (blk_level) {
            n = bdrv_skip_implicit_filters(n);
        }
    }
    json_object_set_new(o, "file", qjson_str(bdrv_filename(bn)));
    json_object_set_new(o, "node-name", qjson_str(bn->node_name));
    json_object_set_new(o, "ro", json_boolean(bn->read_only));
    json_object_set_new(o, "drv", qjson_str(bn->drv->name));
    if (b) {
        json_object_set_new(o, "backing_file", qjson_str(bdrv_filename(b)));
    }
    json_object_set_new(o, "backing_file_depth", json_integer(depth));
    json_object_set_new(o, "encrypted", json_false());
    json_object_set_new(o, "detect_zeroes",
                        qjson_str(detect_zeroes_name(bn->detect_zeroes)));
    json_object_set_new(o, "bps", json_integer(0));
    json_object_set_new(o, "bps_rd", json_integer(0));
    json_object_set_new(o, "bps_wr", json_integer(0));
    json_object_set_new(o, "iops", json_integer(0));
    json_object_set_new(o, "iops_rd", json_integer(0));
    json_object_set_new(o, "iops_wr", json_integer(0));
    json_object_set_new(o, "image", image_info(bn, flat, blk_level));
    /* a node's own: a backend on it reports its write cache instead */
    json_object_set_new(o, "cache", json_pack(
                            "{s:b,s:b,s:b}", "writeback", 1,
                            "direct", bn->cache_direct,
                            "no-flush", bn->cache_no_flush));
    json_object_set_new(o, "write_threshold", json_integer(0));
    bitmaps = dbitmap_query(bn);
    if (bitmaps) {
        json_object_set_new(o, "dirty-bitmaps", bitmaps);
    }
    return o;
}

json_t *bdrv_device_info(BlockNode *bn, bool flat)
{
    return device_info(bn, flat, false);
}

static bool qmp_query_named_block_nodes(const json_t *args, json_t **ret,
                                        Error **errp)
{
    bool flat = qjson_get_bool_or(args, "flat", false);
    GPtrArray *all = bdrv_all_nodes();
    json_t *list = json_array();

    /* newest first, as QEMU lists them */
    for (guint i = all->len; i-- > 0;) {
        json_array_append_new(list, bdrv_device_info(
                                  g_ptr_array_index(all, i), flat));
    }
    *ret = list;
    return true;
}

json_t *blk_info(BlockBackend *blk)
{
    json_t *o = json_object();

    json_object_set_new(o, "device", qjson_str(blk_name(blk)));
    if (blk_qdev(blk)) {
        json_object_set_new(o, "qdev", qjson_str(blk_qdev(blk)));
    }
    json_object_set_new(o, "type", qjson_str("unknown"));
    json_object_set_new(o, "removable",
                        json_boolean(blk_dev_has_removable_media(blk)));
    /* qmpd's guest never locks a tray (no PREVENT ALLOW MEDIUM REMOVAL) */
    json_object_set_new(o, "locked", json_false());
    if (blk_dev_has_tray(blk)) {
        json_object_set_new(o, "tray_open",
                            json_boolean(blk_dev_is_tray_open(blk)));
    }
    if (blk_iostatus_is_enabled(blk)) {
        json_object_set_new(o, "io-status",
                            qjson_str(blk_io_status_name(blk)));
    }
    if (blk_root(blk) && bdrv_is_inserted(blk_root(blk))) {
        json_t *ins = device_info(bdrv_skip_implicit_filters(blk_root(blk)),
                                  false, true);

        json_object_set_new(json_object_get(ins, "cache"), "writeback",
                            json_boolean(blk_write_cache(blk)));
        blk_throttle_info(blk, ins);
        json_object_set_new(o, "inserted", ins);
    }
    return o;
}

static bool qmp_query_block(const json_t *args, json_t **ret, Error **errp)
{
    GPtrArray *all = blk_all();
    json_t *list = json_array();

    for (guint i = 0; i < all->len; i++) {
        BlockBackend *blk = g_ptr_array_index(all, i);

        /* anonymous backends count only while a device uses them */
        if (*blk_name(blk) || blk_qdev(blk)) {
            json_array_append_new(list, blk_info(blk));
        }
    }
    *ret = list;
    return true;
}

static json_t *stats_json(const BlockStats *st, bool account)
{
    json_t *o = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
        "s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:[]}",
        "rd_bytes", (json_int_t)st->rd_bytes,
        "wr_bytes", (json_int_t)st->wr_bytes,
        "unmap_bytes", (json_int_t)st->unmap_bytes,
        "rd_operations", (json_int_t)st->rd_ops,
        "wr_operations", (json_int_t)st->wr_ops,
        "flush_operations", (json_int_t)st->flush_ops,
        "unmap_operations", (json_int_t)st->unmap_ops,
        "rd_total_time_ns", (json_int_t)st->rd_time_ns,
        "wr_total_time_ns", (json_int_t)st->wr_time_ns,
        "flush_total_time_ns", (json_int_t)st->flush_time_ns,
        "unmap_total_time_ns", (json_int_t)st->unmap_time_ns,
        "wr_highest_offset", (json_int_t)st->wr_highest_offset,
        "rd_merged", (json_int_t)0, "wr_merged", (json_int_t)0,
        "unmap_merged", (json_int_t)0,
        "failed_rd_operations", (json_int_t)st->failed_rd,
        "failed_wr_operations", (json_int_t)st->failed_wr,
        "failed_flush_operations", (json_int_t)st->failed_flush,
        "failed_unmap_operations", (json_int_t)st->failed_unmap,
        "invalid_rd_operations", (json_int_t)st->invalid_rd,
        "invalid_wr_operations", (json_int_t)st->invalid_wr,
        "invalid_flush_operations", (json_int_t)st->invalid_flush,
        "invalid_unmap_operations", (json_int_t)st->invalid_unmap,
        "account_invalid", account, "account_failed", account,
        "timed_stats");

    if (st->last_access_ns >= 0) {
        json_object_set_new(o, "idle_time_ns", json_integer(
                                g_get_monotonic_time() * 1000
                                - st->last_access_ns));
    }
    return o;
}

/*
 * A node's entry: its stats, its file child ("parent") and, for a
 * backend's tree (@blk_level), its backing, as QEMU's
 * bdrv_query_bds_stats() builds it.
 */
static json_t *node_stats(BlockNode *bn, bool blk_level)
{
    json_t *o = json_object();

    /*
     * QEMU accounts I/O per backend only: a node shows nothing but the
     * end of its highest write (the backend's stats replace these)
     */
    BlockStats st = { .wr_highest_offset = bn->stats.wr_highest_offset,
                      .last_access_ns = -1 };

    json_object_set_new(o, "node-name", qjson_str(bn->node_name));
    json_object_set_new(o, "stats", stats_json(&st, false));
    if (!strcmp(bn->drv->name, "file")) {
        json_object_set_new(o, "driver-specific", json_pack(
                                "{s:s,s:I,s:I,s:I}", "driver", "file",
                                "discard-nb-ok", (json_int_t)bn->stats.unmap_ops,
                                "discard-nb-failed",
                                (json_int_t)bn->stats.failed_unmap,
                                "discard-bytes-ok",
                                (json_int_t)bn->stats.unmap_bytes));
    }
    if (bn->file) {
        json_object_set_new(o, "parent", node_stats(bn->file->child,
                                                    blk_level));
    }
    if (bn->backing && blk_level) {
        json_object_set_new(o, "backing", node_stats(bn->backing->child,
                                                     blk_level));
    }
    return o;
}

static bool qmp_query_blockstats(const json_t *args, json_t **ret,
                                 Error **errp)
{
    json_t *list = json_array();

    if (qjson_get_bool_or(args, "query-nodes", false)) {
        GPtrArray *all = bdrv_all_nodes();

        for (guint i = 0; i < all->len; i++) {
            json_array_append_new(list, node_stats(g_ptr_array_index(all,
                                                                     i),
                                                   false));
        }
    } else {
        GPtrArray *all = blk_all();

        for (guint i = 0; i < all->len; i++) {
            BlockBackend *blk = g_ptr_array_index(all, i);
            BlockNode *root = blk_root(blk);
            json_t *o;

            if (!*blk_name(blk) && !blk_qdev(blk)) {
                continue;
            }
            /* QEMU looks through implicit filters here too */
            o = root ? node_stats(bdrv_skip_implicit_filters(root), true)
                     : json_object();
            json_object_set_new(o, "device", qjson_str(blk_name(blk)));
            if (blk_qdev(blk)) {
                json_object_set_new(o, "qdev", qjson_str(blk_qdev(blk)));
            }
            json_object_set_new(o, "stats",
                                stats_json(blk_stats(blk), true));
            json_array_append_new(list, o);
        }
    }
    *ret = list;
    return true;
}

/* ---- permissions ------------------------------------------------------ */

/* As QEMU lists them: each permission prepended in enum order. */
static json_t *perm_list(unsigned perm)
{
    static const char *const names[] = {
        "consistent-read", "write", "write-unchanged", "resize",
    };
    json_t *l = json_array();

    for (size_t i = G_N_ELEMENTS(names); i-- > 0;) {
        if (perm & (1u << i)) {
            json_array_append_new(l, qjson_str(names[i]));
        }
    }
    return l;
}

/* ---- x-debug-query-block-graph ----------------------------------------- */

typedef struct {
    GHashTable *ids;            /* object -> id, numbered when first seen */
    guint next;
    json_t *nodes;
    json_t *edges;
} GraphDump;

static guint graph_id(GraphDump *g, const void *obj)
{
    guint id = GPOINTER_TO_UINT(g_hash_table_lookup(g->ids, obj));

    if (!id) {
        id = g->next++;
        g_hash_table_insert(g->ids, (gpointer)obj, GUINT_TO_POINTER(id));
    }
    return id;
}

/* QEMU prepends nodes and edges, so both lists come out newest first. */
static void graph_node(GraphDump *g, const void *obj, const char *type,
                       const char *name)
{
    json_array_insert_new(g->nodes, 0, json_pack("{s:i,s:s,s:s}", "id",
                                                 graph_id(g, obj), "type",
                                                 type, "name", name));
}

static void graph_edge(GraphDump *g, const void *parent,
                       const BlockNode *child, const char *name,
                       unsigned perm, unsigned shared)
{
    guint p = graph_id(g, parent);

    json_array_insert_new(g->edges, 0, json_pack(
        "{s:i,s:i,s:s,s:o,s:o}", "parent", p, "child", graph_id(g, child),
        "name", name, "perm", perm_list(perm), "shared-perm",
        perm_list(shared)));
}

static bool qmp_x_debug_query_block_graph(const json_t *args, json_t **ret,
                                          Error **errp)
{
    GPtrArray *nodes = bdrv_all_nodes();
    GPtrArray *blks = blk_all();
    g_autoptr(GHashTable) ids = g_hash_table_new(NULL, NULL);
    GraphDump g = { ids, 1, json_array(), json_array() };

    /* backends first, then nodes in the order they were named */
    for (guint i = 0; i < blks->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blks, i);
        unsigned perm;
        unsigned shared;

        if (!*blk_name(blk) && !blk_qdev(blk)) {
            continue;
        }
        graph_node(&g, blk, "block-backend",
                   *blk_name(blk) ? blk_name(blk) : blk_qdev(blk));
        if (blk_root(blk)) {
            blk_root_perm(blk, &perm, &shared);
            graph_edge(&g, blk, blk_root(blk), "root", perm, shared);
        }
    }
    for (guint i = 0; i < nodes->len; i++) {
        BlockNode *bn = g_ptr_array_index(nodes, i);
        /* QEMU's children list: the newest child first */
        BdrvChild *cs[] = { bdrv_other_child(bn), bn->backing, bn->file };

        graph_node(&g, bn, "block-driver", bn->node_name);
        for (size_t k = 0; k < G_N_ELEMENTS(cs); k++) {
            unsigned perm;
            unsigned shared;

            if (cs[k]) {
                bdrv_child_perm(cs[k], &perm, &shared);
                graph_edge(&g, bn, cs[k]->child, cs[k]->name, perm, shared);
            }
        }
    }
    *ret = json_pack("{s:o,s:o}", "nodes", g.nodes, "edges", g.edges);
    return true;
}

/* ---- nodes -------------------------------------------------------------------- */

typedef struct {
    QapiReply *reply;
    Error *err;
} ClosedReply;

static void closed_reply_cb(void *opaque, int ret)
{
    ClosedReply *r = opaque;

    if (r->err) {
        qapi_reply_error(r->reply, r->err);
    } else {
        qapi_reply_return(r->reply, NULL);
    }
    g_free(r);
}

BlockBackend *qmp_get_blk(const json_t *args, Error **errp)
{
    const char *device = qjson_get_str_or(args, "device", NULL);
    const char *id = qjson_get_str_or(args, "id", NULL);
    BlockBackend *blk;

    if (!device == !id) {
        error_setg(errp, "Need exactly one of 'device' and 'id'");
        return NULL;
    }
    if (id) {
        return blk_by_qdev_id(id, errp);
    }
    blk = blk_by_name(device);
    if (!blk) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND,
                  "Device '%s' not found", device);
    }
    return blk;
}

void qmp_reply_when_closed(QapiReply *reply, Error *err)
{
    ClosedReply *r = g_new0(ClosedReply, 1);

    r->reply = reply;
    r->err = err;
    bdrv_wait_closed(closed_reply_cb, r);
}

static void qmp_blockdev_add(const json_t *args, QapiReply *reply)
{
    Error *err = NULL;

    /* the monitor keeps the reference until blockdev-del */
    if (bdrv_open_options(args, true, &err)) {
        qapi_reply_return(reply, NULL);
        return;
    }
    /*
     * What a failed open had opened closes asynchronously: the error
     * comes once it is closed (its image locks released), as QEMU's
     * synchronous close would have it
     */
    qmp_reply_when_closed(reply, err);
}

static void del_closed_cb(void *opaque, int ret)
{
    qapi_reply_return(opaque, NULL);
}

static void qmp_blockdev_del(const json_t *args, QapiReply *reply)
{
    const char *name = qjson_get_str(args, "node-name");
    BlockNode *bn = bdrv_find_node(name);
    Error *err = NULL;

    /* QEMU's order of checks, and its wording for each */
    if (!bn) {
        error_setg(&err, "Failed to find node with node-name='%s'", name);
    } else if (bn->backend_users) {
        error_setg(&err, "Node %s is in use", name);
    } else if (bdrv_op_is_blocked(bn, &err)
               || bdrv_backing_blocked(bn, &err)) {
        /* err set */
    } else if (!bn->monitor_owned) {
        error_setg(&err, "Node %s is not owned by the monitor", name);
    } else if (bn->refcnt > 1) {
        error_setg(&err, "Block device %s is in use",
                   bdrv_device_or_node_name(bn));
    }
    if (err) {
        qapi_reply_error(reply, err);
        return;
    }
    bn->monitor_owned = false;
    bdrv_unref(bn);
    bdrv_wait_closed(del_closed_cb, reply);
}

/*
 * block_resize: drain, flush, resize, reply.  Growing an image whose
 * backing file is longer, the new area must read as zeroes (QEMU's
 * BDRV_REQ_ZERO_WRITE): the driver zeroes whole clusters; the part of
 * the cluster at the old end is written here, as data, as QEMU does.
 */
typedef struct {
    BlockNode *bn;
    uint64_t size;
    QapiReply *reply;
    uint8_t *zeroes;
} Resize;

static void resize_finish(Resize *r, Error *err)
{
    bdrv_unref(r->bn);
    ioq_buf_free(r->zeroes);
    if (err) {
        qapi_reply_error(r->reply, err);
    } else {
        qapi_reply_return(r->reply, NULL);
    }
    g_free(r);
}

static void resize_head_written_cb(void *opaque, int ret)
{
    Error *err = NULL;

    if (ret < 0) {
        error_setg_errno(&err, -ret, "Failed to zero out the new area");
    }
    resize_finish(opaque, err);
}

static void resize_flushed_cb(void *opaque, int ret)
{
    Resize *r = opaque;
    Error *err = NULL;
    BlockNode *bn = r->bn;
    uint64_t old = bdrv_length(bn);
    BlockNode *backing = bdrv_backing(bn);
    bool zero_new = r->size > old && backing && bdrv_length(backing) > old;

    if (ret < 0) {
        error_setg_errno(&err, -ret, "Could not flush before resizing");
    } else if (!bn->drv->truncate) {
        error_setg(&err, "Image format driver does not support resize");
    } else if (bn->drv->truncate(bn, r->size, &err)) {
        /* formats above a resized node see it through the graph */
        dbitmap_node_resized(bn);
        if (bdrv_file_child(bn)) {
            dbitmap_node_resized(bdrv_file_child(bn));
        }
        uint64_t cs = zero_new ? bdrv_cluster_size(bn) : 0;

        if (cs) {
            uint64_t head = MIN((old + cs - 1) / cs * cs, r->size) - old;

            if (head) {
                r->zeroes = ioq_buf_alloc0(head);
                bdrv_write(bn, old, head, r->zeroes, 0,
                           resize_head_written_cb, r);
                return;
            }
        }
    }
    resize_finish(r, err);
}

static void resize_drained_cb(void *opaque, int ret)
{
    Resize *r = opaque;

    bdrv_flush(r->bn, resize_flushed_cb, r);
}

static void qmp_block_resize(const json_t *args, QapiReply *reply)
{
    const char *device = qjson_get_str_or(args, "device", NULL);
    const char *node = qjson_get_str_or(args, "node-name", NULL);
    int64_t size = qjson_get_int(args, "size");
    Error *err = NULL;
    BlockNode *bn = bdrv_lookup(device, node, &err);
    Resize *r;

    /* QEMU's order: arguments, op blockers, permissions, the image */
    if (bn && size < 0) {
        error_setg(&err, "Parameter 'size' expects a >0 size");
    } else if (bn && (bdrv_op_is_blocked(bn, NULL)
                      || bdrv_backing_blocked(bn, NULL))) {
        /* QEMU prints the device argument even when it is absent */
        error_setg(&err, "Device '%s' is in use", device ? device : "(null)");
    } else if (bn && bdrv_perm_conflict_unnamed(bn, BLK_PERM_RESIZE, &err)) {
        /* err set */
    } else if (bn && bn->read_only) {
        error_setg(&err, "Image is read-only");
    }
    if (err) {
        qapi_reply_error(reply, err);
        return;
    }
    r = g_new0(Resize, 1);
    r->bn = bn;
    r->size = size;
    r->reply = reply;
    bdrv_ref(bn);
    bdrv_drain(bn, resize_drained_cb, r);
}

/* The node named @name in @top's backing chain, or NULL. */
static BlockNode *chain_find(BlockNode *top, const char *name)
{
    for (BlockNode *n = top; n; n = bdrv_backing(n)) {
        if (!strcmp(n->node_name, name)) {
            return n;
        }
    }
    return NULL;
}

static bool qmp_change_backing_file(const json_t *args, json_t **ret,
                                    Error **errp)
{
    const char *device = qjson_get_str(args, "device");
    const char *image = qjson_get_str(args, "image-node-name");
    const char *file = qjson_get_str(args, "backing-file");
    BlockNode *top = bdrv_lookup(device, device, errp);
    BlockNode *bn;
    BlockNode *b;
    bool ro;
    bool ok;

    if (!top) {
        return false;
    }
    /* QEMU's qmp_get_root_bs(): no node may use @top */
    for (guint i = 0; i < top->parents->len; i++) {
        if (bdrv_edge_live(g_ptr_array_index(top->parents, i))) {
            error_setg(errp, "Need a root block node");
            return false;
        }
    }
    bn = bdrv_lookup(NULL, image, errp);
    if (!bn) {
        return false;
    }
    if (!bdrv_backing(bn)) {
        error_setg(errp, "not allowing backing file change on an image "
                   "without a backing file");
        return false;
    }
    if (bdrv_backing_blocked(top, errp)) {
        return false;
    }
    if (!chain_find(top, image)) {
        error_setg(errp, "'%s' and image file are not in the same chain",
                   device);
        return false;
    }
    if (!bn->drv->change_backing_file) {
        error_setg(errp, "The image format does not support changing the "
                   "backing file");
        return false;
    }
    b = bdrv_backing(bn);
    ro = bn->read_only;
    /* like QEMU, a read-only image is made writable for the change */
    if (ro && !bdrv_reopen_read_only(bn, false, errp)) {
        return false;
    }
    ok = bdrv_change_backing_file(bn, file, b ? b->drv->name : NULL, errp);
    if (ro) {
        bdrv_reopen_read_only(bn, true, NULL);
    }
    return ok;
}

static void snapshot_ro_done_cb(void *opaque, int ret)
{
    /* as QEMU, a failure to reopen the old top read-only is not fatal */
    qapi_reply_return(opaque, NULL);
}

/* The old top becomes a read-only backing image, as in QEMU; then the
 * reply. */
static void snapshot_run(const json_t *args, bool sync, QapiReply *reply)
{
    const char *name = qjson_get_str_or(args, sync ? "device" : "node", NULL);
    BlockNode *bn = bdrv_lookup(name, sync ? qjson_get_str_or(
                                    args, "node-name", NULL) : name, NULL);
    BlockNode *old;
    BlockNode *overlay;
    Error *err = NULL;

    /* a job's node (its filter at a device's root) refuses first, as
     * QEMU's op blockers; the lookup's errors are the prepare's */
    if ((bn && bdrv_op_is_blocked(bn, &err))
        || !bdrv_snapshot_prepare(args, sync, &old, &overlay, &err)) {
        qapi_reply_error(reply, err);
        return;
    }
    bdrv_snapshot_commit(old, overlay, snapshot_ro_done_cb, reply);
}

static void qmp_blockdev_snapshot(const json_t *args, QapiReply *reply)
{
    snapshot_run(args, false, reply);
}

static void qmp_blockdev_snapshot_sync(const json_t *args, QapiReply *reply)
{
    snapshot_run(args, true, reply);
}

const QapiHandler block_qmp_handlers[] = {
    { "blockdev-add", NULL, qmp_blockdev_add },
    { "blockdev-del", NULL, qmp_blockdev_del },
    { "query-block", qmp_query_block, NULL },
    { "query-named-block-nodes", qmp_query_named_block_nodes, NULL },
    { "query-blockstats", qmp_query_blockstats, NULL },
    { "x-debug-query-block-graph", qmp_x_debug_query_block_graph, NULL },
    { "block_resize", NULL, qmp_block_resize },
    { "change-backing-file", qmp_change_backing_file, NULL },
    { "blockdev-snapshot", NULL, qmp_blockdev_snapshot },
    { "blockdev-snapshot-sync", NULL, qmp_blockdev_snapshot_sync },
};

const size_t block_qmp_handlers_count = G_N_ELEMENTS(block_qmp_handlers);
