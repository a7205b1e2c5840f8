/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Opening the node a command's file name stands for, as QEMU's
 * bdrv_open() of a name with a format: drive-mirror's and
 * drive-backup's targets, blockdev-change-medium's medium.  The name
 * gives the protocol node (a file, a legacy blkdebug or NBD name), the
 * format is given or probed from what the file holds; a json: name may
 * describe the format node too, its driver overridden by the format
 * given, and a json: name of a protocol node without a format opens
 * that node alone, as QEMU opens it.
 */
#include "config.h"

#include "block/core/block-int.h"
#include "qapi/qjson.h"

BlockNode *bdrv_open_filename(const char *filename, const char *format,
                              const json_t *file_extra,
                              const json_t *node_extra, bool no_backing,
                              Error **errp)
{
    g_autoptr(json_t) node = NULL;
    g_autofree char *fmt = g_strdup(format);
    const BlockDriver *drv;
    BlockNode *f = NULL;
    BlockNode *bn;
    json_t *fo;

    if (bdrv_filename_is_json(filename)) {
        node = bdrv_json_filename_options(filename, format, errp);
        if (!node) {
            return NULL;
        }
        fo = json_object_get(node, "file");
        if (!fo) {
            /* the protocol node is the node opened: both extras apply */
            if (file_extra) {
                json_object_update(node, (json_t *)file_extra);
            }
            if (node_extra) {
                json_object_update(node, (json_t *)node_extra);
            }
            return bdrv_open_options(node, false, errp);
        }
        json_incref(fo);
        json_object_del(node, "file");
        g_free(fmt);
        fmt = g_strdup(qjson_get_str_or(node, "driver", NULL));
    } else {
        fo = bdrv_filename_options(filename, errp);
        if (!fo) {
            return NULL;
        }
        node = json_object();
    }
    if (json_is_object(fo) && file_extra) {
        json_object_update(fo, (json_t *)file_extra);
    }
    if (!fmt) {
        f = bdrv_open_options(fo, false, errp);
        json_decref(fo);
        if (!f) {
            return NULL;
        }
        fmt = g_strdup(bdrv_probe_format(f));
        fo = qjson_str(bdrv_node_name(f));
    }
    if (node_extra) {
        json_object_update(node, (json_t *)node_extra);
    }
    json_object_set_new(node, "driver", qjson_str(fmt));
    json_object_set_new(node, "file", fo);
    drv = bdrv_find_driver(fmt);
    if (no_backing && drv && drv->has_backing) {
        json_object_set_new(node, "backing", json_null());
    }
    bn = bdrv_open_options(node, false, errp);
    if (f) {
        bdrv_unref(f);
    }
    return bn;
}
