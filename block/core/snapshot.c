/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * External snapshots (blockdev-snapshot, blockdev-snapshot-sync and
 * their transaction actions), QEMU 7.2's external_snapshot_prepare()
 * checks in its order: the overlay (opened by the caller, or created as
 * qcow2 over the old top) takes the old top's place with it as backing;
 * abort puts the graph back, commit makes the old top read-only.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"
#include "qapi/qjson.h"

static bool snapshot_attach(BlockNode *bn, BlockNode *overlay, Error **errp)
{
    unsigned perm;
    unsigned shared;

    /*
     * QEMU's external_snapshot_prepare(), in its order.  An overlay in
     * use is one whose users expect to read a valid image already; a
     * mirror's target only written so far may get its backing (libvirt
     * pivots blockcopy --shallow --reuse-external so).
     */
    bdrv_node_perm(overlay, &perm, &shared);
    if (overlay->backend_users > overlay->job_writers
        || (perm & BLK_PERM_CONSISTENT_READ)) {
        error_setg(errp, "The overlay is already in use");
        return false;
    }
    if (bdrv_backing(overlay)) {
        error_setg(errp, "The overlay already has a backing image");
        return false;
    }
    if (!overlay->drv->has_backing) {
        error_setg(errp, "The overlay does not support backing images");
        return false;
    }
    bdrv_ref(overlay);
    bdrv_set_backing(overlay, bn);
    bdrv_replace_node(bn, overlay);
    bdrv_unref(overlay);
    return true;
}

static bool blockdev_snapshot(const json_t *args, BlockNode **pov,
                              Error **errp)
{
    const char *node = qjson_get_str(args, "node");
    const char *ovname = qjson_get_str(args, "overlay");
    BlockNode *bn = bdrv_lookup(node, node, errp);
    BlockNode *overlay;

    if (!bn || bdrv_backing_blocked(bn, errp)) {
        return false;
    }
    overlay = bdrv_lookup(ovname, ovname, errp);
    if (!overlay || !snapshot_attach(bn, overlay, errp)) {
        return false;
    }
    if (pov) {
        bdrv_ref(overlay);
        *pov = overlay;
    }
    return true;
}

static bool blockdev_snapshot_sync(const json_t *args, BlockNode **pov,
                                   Error **errp)
{
    const char *device = qjson_get_str_or(args, "device", NULL);
    const char *node = qjson_get_str_or(args, "node-name", NULL);
    const char *file = qjson_get_str(args, "snapshot-file");
    const char *ovname = qjson_get_str_or(args, "snapshot-node-name", NULL);
    const char *format = qjson_get_str_or(args, "format", "qcow2");
    const char *mode = qjson_get_str_or(args, "mode", "absolute-paths");
    BlockNode *bn = bdrv_lookup(device, node, errp);
    g_autoptr(json_t) opts = NULL;
    g_autoptr(json_t) fo = NULL;
    BlockNode *f = NULL;
    BlockNode *overlay;
    bool ok;

    /* QEMU's external_snapshot_prepare(), in its order */
    if (!bn || bdrv_backing_blocked(bn, errp)) {
        return false;
    }
    if (node && !ovname) {
        error_setg(errp, "New overlay node-name missing");
        return false;
    }
    if (ovname && (blk_by_name(ovname) || bdrv_find_node(ovname))) {
        error_setg(errp, "New overlay node-name already in use");
        return false;
    }
    if (!strcmp(format, "raw")) {
        error_setg(errp, "Backing file not supported for file format 'raw'");
        return false;
    }
    if (strcmp(format, "qcow2")) {
        error_setg(errp, "qmpd creates snapshot overlays in qcow2 format "
                   "only");
        return false;
    }
    fo = json_pack("{s:s,s:s}", "driver", "file", "filename", file);
    if (!strcmp(mode, "absolute-paths")) {
        BdrvCreateOpts co = {
            .size = bn->total_size, .cluster_size = 65536, .version = 3,
            .backing_file = bdrv_filename(bn), .backing_fmt = bn->drv->name,
        };

        if (!bdrv_create_file(file, 0, errp)) {
            return false;
        }
        /*
         * The overlay is opened on this same file node: a second one
         * would meet the image locks of this one, which closes later.
         */
        f = bdrv_open_options(fo, false, errp);
        if (!f) {
            return false;
        }
        if (!bdrv_create(f, "qcow2", &co, errp)) {
            bdrv_unref(f);
            return false;
        }
    }
    opts = json_pack("{s:s,s:o,s:n}", "driver", "qcow2", "file",
                     f ? qjson_str(bdrv_node_name(f)) : json_incref(fo),
                     "backing");
    if (ovname) {
        json_object_set_new(opts, "node-name", qjson_str(ovname));
    }
    overlay = bdrv_open_options(opts, false, errp);
    if (f) {
        bdrv_unref(f);
    }
    if (!overlay) {
        return false;
    }
    ok = snapshot_attach(bn, overlay, errp);
    if (ok && pov) {
        bdrv_ref(overlay);
        *pov = overlay;
    }
    bdrv_unref(overlay);
    return ok;
}

bool bdrv_snapshot_prepare(const json_t *data, bool sync, BlockNode **old,
                           BlockNode **overlay, Error **errp)
{
    BlockNode *bn;

    if (sync) {
        bn = bdrv_lookup(qjson_get_str_or(data, "device", NULL),
                         qjson_get_str_or(data, "node-name", NULL), NULL);
    } else {
        bn = bdrv_lookup(qjson_get_str(data, "node"),
                         qjson_get_str(data, "node"), NULL);
    }
    if (bn) {
        bdrv_ref(bn);
    }
    if (!(sync ? blockdev_snapshot_sync(data, overlay, errp)
               : blockdev_snapshot(data, overlay, errp))) {
        if (bn) {
            bdrv_unref(bn);
        }
        return false;
    }
    *old = bn;
    return true;
}

void bdrv_snapshot_abort(BlockNode *old, BlockNode *overlay)
{
    /* QEMU's abort puts the graph back: @old's parents return to it */
    bdrv_replace_node(overlay, old);
    bdrv_set_backing(overlay, NULL);
    bdrv_unref(overlay);
    bdrv_unref(old);
}

void bdrv_snapshot_commit(BlockNode *old, BlockNode *overlay, BdrvCb *cb,
                          void *opaque)
{
    bdrv_unref(overlay);
    bdrv_make_read_only(old, cb, opaque);
    bdrv_unref(old);
}
