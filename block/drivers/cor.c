/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy-on-read filter (blockdev-add driver=copy-on-read): reads
 * through it copy into its child what the child's backing chain holds,
 * or with "bottom" only what the chain holds down to that node
 * (block-stream puts one above the top with the base's overlay as
 * bottom, as QEMU's).  Everything else passes through (filter.c); the copy itself
 * is the request layer's (io-cor.c).
 *
 * The filter takes "write unchanged" on its child, even for a filter
 * whose users only read: the copy writes.  A read-only child therefore
 * refuses it ("Block node is read-only"), as in QEMU.
 */
#include "config.h"

#include "block/core/block-int.h"
#include "qapi/qjson.h"

typedef struct {
    BlockNode *bottom;          /* referenced; NULL: copy everything */
} CorState;

/* Is @bottom @bn or a node of its backing chain (through filters)? */
static bool in_chain(BlockNode *bn, BlockNode *bottom)
{
    for (BlockNode *n = bn; n; n = n->drv->is_filter ? bdrv_filter_child(n)
                                                     : bdrv_backing(n)) {
        if (n == bottom) {
            return true;
        }
    }
    return false;
}

static bool cor_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    CorState *s = bn->opaque;
    const char *name = qjson_get_str_or(opts, "bottom", NULL);
    BlockNode *bottom;

    bn->total_size = bdrv_length(bn->file->child);
    if (!name) {
        return true;
    }
    bottom = bdrv_find_node(name);
    if (!bottom) {
        error_setg(errp, "Bottom node '%s' not found", name);
        return false;
    }
    if (bottom->drv->is_filter) {
        error_setg(errp, "Bottom node '%s' is a filter", name);
        return false;
    }
    /* QEMU 7.2 hangs on a bottom outside the chain; refuse it instead */
    if (!in_chain(bn->file->child, bottom)) {
        error_setg(errp, "Bottom node '%s' is not in the backing chain of "
                   "'%s'", name, bdrv_node_name(bn->file->child));
        return false;
    }
    bdrv_ref(bottom);
    s->bottom = bottom;
    return true;
}

static void cor_close(BlockNode *bn)
{
    CorState *s = bn->opaque;

    if (s->bottom) {
        bdrv_unref(s->bottom);
    }
}

static void cor_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                     BdrvCb *cb, void *opaque)
{
    CorState *s = bn->opaque;

    bdrv_cor_read(bn->file->child, s->bottom, off, len, buf, 0, cb, opaque);
}

/* QEMU's cor_child_perm(): the copy writes, unchanged data only */
static void cor_child_perm(const BlockNode *bn, unsigned *perm,
                           unsigned *shared)
{
    *perm |= BLK_PERM_WRITE_UNCHANGED;
    *shared = (*shared & (BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE
                          | BLK_PERM_RESIZE)) | BLK_PERM_WRITE_UNCHANGED;
}

const BlockDriver bdrv_cor = {
    .name = "copy-on-read",
    .instance_size = sizeof(CorState),
    .is_filter = true,
    .json_filename = true,
    .no_reopen = true,
    .open = cor_open,
    .close = cor_close,
    .read = cor_read,
    .write = bdrv_filter_write,
    .write_zeroes = bdrv_filter_write_zeroes,
    .discard = bdrv_filter_discard,
    .block_status = bdrv_filter_block_status,
    .truncate = bdrv_filter_truncate,
    .child_perm = cor_child_perm,
    .allocated_size = bdrv_filter_allocated_size,
    .get_info = bdrv_filter_get_info,
    .dirty_flag = bdrv_filter_dirty_flag,
    .pread_sync = bdrv_filter_pread_sync,
    .pwrite_sync = bdrv_filter_pwrite_sync,
    .flush_sync = bdrv_filter_flush_sync,
    .discard_sync = bdrv_filter_discard_sync,
};
