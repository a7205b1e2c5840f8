/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What filter nodes have in common.  A filter shows its one child (the
 * "file" or "image" edge, bn->file) unchanged: same length, same data,
 * same allocation, and everything it does not intercept passes straight
 * through.  A filter driver points its BlockDriver entries at these and
 * replaces only what it is for: blkdebug fails requests, copy-on-read
 * turns reads into copies; the job filters (mirror_top, commit_top,
 * job-filters.c) pass everything and only take their place in the
 * graph and its permissions.
 *
 * The rest of the block layer knows a filter by drv->is_filter: it
 * skips filters to find the data (bdrv_skip_filters), derives the
 * child's permissions from the filter's users (perm.c), shows the
 * child's image below the filter in query-block, and names the filter
 * by its options (json:{...}) rather than by its child's file name.
 */
#include "config.h"

#include "block/core/block-int.h"

BlockNode *bdrv_filter_child(const BlockNode *bn)
{
    return bn->drv->is_filter && bn->file ? bn->file->child : NULL;
}

BlockNode *bdrv_filter_or_cow(BlockNode *bn)
{
    return bn->drv->is_filter ? bdrv_file_child(bn) : bdrv_backing(bn);
}

bool bdrv_chain_contains(BlockNode *top, BlockNode *bn)
{
    for (BlockNode *n = top; n; n = bdrv_filter_or_cow(n)) {
        if (n == bn) {
            return true;
        }
    }
    return false;
}

BlockNode *bdrv_backing_chain_next(BlockNode *bn)
{
    return bdrv_skip_filters(bdrv_backing(bdrv_skip_filters(bn)));
}

void bdrv_filter_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                      BdrvCb *cb, void *opaque)
{
    bdrv_read(bn->file->child, off, len, buf, cb, opaque);
}

void bdrv_filter_write(BlockNode *bn, uint64_t off, uint64_t len,
                       const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    bdrv_write(bn->file->child, off, len, buf, flags, cb, opaque);
}

void bdrv_filter_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                              int flags, BdrvCb *cb, void *opaque)
{
    bdrv_write_zeroes(bn->file->child, off, len, flags, cb, opaque);
}

void bdrv_filter_discard(BlockNode *bn, uint64_t off, uint64_t len,
                         BdrvCb *cb, void *opaque)
{
    bdrv_discard(bn->file->child, off, len, cb, opaque);
}

void bdrv_filter_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                              BdrvStatusCb *cb, void *opaque)
{
    bdrv_block_status(bn->file->child, off, len, cb, opaque);
}

bool bdrv_filter_truncate(BlockNode *bn, uint64_t size, Error **errp)
{
    BlockNode *c = bn->file->child;

    if (!c->drv->truncate) {
        error_setg(errp, "Image format driver does not support resize");
        return false;
    }
    if (!c->drv->truncate(c, size, errp)) {
        return false;
    }
    bn->total_size = size;
    return true;
}

int64_t bdrv_filter_allocated_size(BlockNode *bn)
{
    BlockNode *c = bn->file->child;

    return c->drv->allocated_size ? c->drv->allocated_size(c) : -1;
}

bool bdrv_filter_get_info(BlockNode *bn, BlockDriverInfo *bdi)
{
    return bdrv_get_info(bn->file->child, bdi);
}

bool bdrv_filter_dirty_flag(BlockNode *bn)
{
    BlockNode *c = bn->file->child;

    return c->drv->dirty_flag && c->drv->dirty_flag(c);
}

int bdrv_filter_pread_sync(BlockNode *bn, uint64_t off, uint64_t len,
                           void *buf)
{
    return bdrv_pread_sync(bn->file->child, off, len, buf);
}

int bdrv_filter_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                            const void *buf)
{
    return bdrv_pwrite_sync(bn->file->child, off, len, buf);
}

int bdrv_filter_flush_sync(BlockNode *bn)
{
    return bdrv_flush_sync(bn->file->child);
}

int bdrv_filter_discard_sync(BlockNode *bn, uint64_t off, uint64_t len)
{
    return bdrv_discard_sync(bn->file->child, off, len);
}

char *bdrv_filter_plain_filename(BlockNode *bn)
{
    return bn->file ? g_strdup(bdrv_filename(bn->file->child)) : NULL;
}
