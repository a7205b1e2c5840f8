/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block-dirty-bitmap-* commands: their arguments taken apart and
 * handed to dirty-bitmap.c, which holds QEMU 7.2's checks and messages.
 */
#include "config.h"

#include "block/core/dirty-bitmap.h"
#include "block/qmp/qmp-block.h"
#include "qapi/qjson.h"

static bool qmp_block_dirty_bitmap_add(const json_t *args, json_t **ret,
                                       Error **errp)
{
    return dbitmap_qmp_add(qjson_get_str(args, "node"),
                           qjson_get_str(args, "name"),
                           qjson_has(args, "granularity"),
                           qjson_get_uint_or(args, "granularity", 0),
                           qjson_get_bool_or(args, "persistent", false),
                           qjson_get_bool_or(args, "disabled", false),
                           errp) != NULL;
}

static void remove_done_cb(void *opaque, Error *err)
{
    if (err) {
        qapi_reply_error(opaque, err);
    } else {
        qapi_reply_return(opaque, NULL);
    }
}

static void qmp_block_dirty_bitmap_remove(const json_t *args,
                                          QapiReply *reply)
{
    dbitmap_qmp_remove(qjson_get_str(args, "node"),
                       qjson_get_str(args, "name"), remove_done_cb, reply);
}

static bool qmp_block_dirty_bitmap_clear(const json_t *args, json_t **ret,
                                         Error **errp)
{
    DirtyBitmap *bm = dbitmap_lookup(qjson_get_str(args, "node"),
                                     qjson_get_str(args, "name"), NULL,
                                     errp);

    if (!bm || !dbitmap_check(bm, DBITMAP_CHECK_DEFAULT, errp)) {
        return false;
    }
    dbitmap_clear(bm, NULL);
    return true;
}

static bool set_enabled(const json_t *args, bool enabled, Error **errp)
{
    DirtyBitmap *bm = dbitmap_lookup(qjson_get_str(args, "node"),
                                     qjson_get_str(args, "name"), NULL,
                                     errp);

    if (!bm || !dbitmap_check(bm, DBITMAP_CHECK_ALLOW_RO, errp)) {
        return false;
    }
    dbitmap_set_enabled(bm, enabled);
    return true;
}

static bool qmp_block_dirty_bitmap_enable(const json_t *args, json_t **ret,
                                          Error **errp)
{
    return set_enabled(args, true, errp);
}

static bool qmp_block_dirty_bitmap_disable(const json_t *args, json_t **ret,
                                           Error **errp)
{
    return set_enabled(args, false, errp);
}

static bool qmp_block_dirty_bitmap_merge(const json_t *args, json_t **ret,
                                         Error **errp)
{
    return dbitmap_qmp_merge(args, NULL, errp);
}

const QapiHandler dirty_bitmap_qmp_handlers[] = {
    { "block-dirty-bitmap-add", qmp_block_dirty_bitmap_add, NULL },
    { "block-dirty-bitmap-remove", NULL, qmp_block_dirty_bitmap_remove },
    { "block-dirty-bitmap-clear", qmp_block_dirty_bitmap_clear, NULL },
    { "block-dirty-bitmap-enable", qmp_block_dirty_bitmap_enable, NULL },
    { "block-dirty-bitmap-disable", qmp_block_dirty_bitmap_disable, NULL },
    { "block-dirty-bitmap-merge", qmp_block_dirty_bitmap_merge, NULL },
};

const size_t dirty_bitmap_qmp_handlers_count =
    G_N_ELEMENTS(dirty_bitmap_qmp_handlers);
