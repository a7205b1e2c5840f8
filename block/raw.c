/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "raw" format: the guest sees the file child's bytes, optionally a
 * window of them (offset, size).  Everything passes through.
 */
#include "config.h"

#include <errno.h>

#include "block/block-int.h"
#include "block/ioq.h"
#include "qapi/qjson.h"

typedef struct {
    uint64_t offset;
    bool has_size;
} RawState;

static BlockNode *child(BlockNode *bn)
{
    return bn->file->child;
}

static bool raw_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    RawState *s = bn->opaque;
    uint64_t flen = bdrv_length(child(bn));

    s->offset = qjson_get_int_or(opts, "offset", 0);
    if ((int64_t)s->offset < 0) {
        error_setg(errp, "offset cannot be negative");
        return false;
    }
    if (s->offset > flen) {
        error_setg(errp, "The sum of offset (%" G_GUINT64_FORMAT ") and "
                   "size (0) has to be smaller or equal to the actual size "
                   "of the containing file (%" G_GUINT64_FORMAT ")",
                   s->offset, flen);
        return false;
    }
    s->has_size = qjson_has(opts, "size");
    bn->total_size = s->has_size ? (uint64_t)qjson_get_int(opts, "size")
                                 : flen - s->offset;
    if (s->offset + bn->total_size > flen) {
        error_setg(errp, "The sum of offset (%" G_GUINT64_FORMAT ") and "
                   "size (%" G_GUINT64_FORMAT ") has to be smaller or equal "
                   "to the actual size of the containing file (%"
                   G_GUINT64_FORMAT ")", s->offset, bn->total_size, flen);
        return false;
    }
    if (s->offset % 512 && bn->cache_direct) {
        error_setg(errp, "offset must be a multiple of 512 with O_DIRECT");
        return false;
    }
    return true;
}

static void raw_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                     BdrvCb *cb, void *opaque)
{
    RawState *s = bn->opaque;

    bdrv_read(child(bn), s->offset + off, len, buf, cb, opaque);
}

static void raw_write(BlockNode *bn, uint64_t off, uint64_t len,
                      const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    RawState *s = bn->opaque;

    bdrv_write(child(bn), s->offset + off, len, buf, flags, cb, opaque);
    if (!s->has_size && off + len > bn->total_size) {
        bn->total_size = off + len;
    }
}

static void raw_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                             int flags, BdrvCb *cb, void *opaque)
{
    RawState *s = bn->opaque;

    bdrv_write_zeroes(child(bn), s->offset + off, len, flags, cb, opaque);
}

static void raw_discard(BlockNode *bn, uint64_t off, uint64_t len,
                        BdrvCb *cb, void *opaque)
{
    RawState *s = bn->opaque;

    bdrv_discard(child(bn), s->offset + off, len, cb, opaque);
}

static void raw_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                             BdrvStatusCb *cb, void *opaque)
{
    RawState *s = bn->opaque;

    bdrv_block_status(child(bn), s->offset + off, len, cb, opaque);
}

static bool raw_truncate(BlockNode *bn, uint64_t size, Error **errp)
{
    RawState *s = bn->opaque;

    if (s->offset || s->has_size) {
        error_setg(errp, "Cannot resize fixed-size raw disks");
        return false;
    }
    if (!child(bn)->drv->truncate
        || !child(bn)->drv->truncate(child(bn), size, errp)) {
        if (!child(bn)->drv->truncate) {
            error_setg(errp, "Image format driver does not support resize");
        }
        return false;
    }
    bn->total_size = size;
    return true;
}

static int64_t raw_allocated_size(BlockNode *bn)
{
    BlockNode *f = child(bn);

    return f->drv->allocated_size ? f->drv->allocated_size(f) : -1;
}

static int raw_pread_sync(BlockNode *bn, uint64_t off, uint64_t len,
                          void *buf)
{
    RawState *s = bn->opaque;

    return bdrv_pread_sync(child(bn), s->offset + off, len, buf);
}

static int raw_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                           const void *buf)
{
    RawState *s = bn->opaque;

    return bdrv_pwrite_sync(child(bn), s->offset + off, len, buf);
}

const BlockDriver bdrv_raw = {
    .name = "raw",
    .instance_size = sizeof(RawState),
    .is_format = true,
    .open = raw_open,
    .read = raw_read,
    .write = raw_write,
    .write_zeroes = raw_write_zeroes,
    .discard = raw_discard,
    .block_status = raw_block_status,
    .truncate = raw_truncate,
    .allocated_size = raw_allocated_size,
    .pread_sync = raw_pread_sync,
    .pwrite_sync = raw_pwrite_sync,
};
