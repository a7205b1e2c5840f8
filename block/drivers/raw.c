/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "raw" format: the guest sees the file child's bytes, optionally a
 * window of them (offset, size).  Everything passes through.
 */
#include "config.h"

#include <errno.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"

typedef struct {
    uint64_t offset;
    bool has_size;
} RawState;

static BlockNode *child(BlockNode *bn)
{
    return bn->file->child;
}

/*
 * The window @opts asks for on a file of @flen bytes, with QEMU's checks
 * in its order and its messages (the same at open and at reopen).
 */
static bool raw_window(const json_t *opts, uint64_t flen, bool direct,
                       RawState *w, uint64_t *size, Error **errp)
{
    int64_t off = qjson_get_int_or(opts, "offset", 0);
    int64_t sz = qjson_get_int_or(opts, "size", 0);

    if (off < 0 || sz < 0) {
        error_setg(errp, "Parameter '%s' expects a non-negative number "
                   "below 2^64", off < 0 ? "offset" : "size");
        return false;
    }
    w->offset = off;
    w->has_size = qjson_has(opts, "size");
    if (w->offset > flen) {
        error_setg(errp, "Offset (%" G_GUINT64_FORMAT ") cannot be greater "
                   "than size of the containing file (%" G_GUINT64_FORMAT
                   ")", w->offset, flen);
        return false;
    }
    if (w->has_size && flen - w->offset < (uint64_t)sz) {
        error_setg(errp, "The sum of offset (%" G_GUINT64_FORMAT ") and "
                   "size (%" G_GUINT64_FORMAT ") has to be smaller or equal "
                   "to the  actual size of the containing file (%"
                   G_GUINT64_FORMAT ")", w->offset, (uint64_t)sz, flen);
        return false;
    }
    if (w->has_size && sz % 512) {
        error_setg(errp, "Specified size is not multiple of 512");
        return false;
    }
    if (w->offset % 512 && direct) {
        error_setg(errp, "offset must be a multiple of 512 with O_DIRECT");
        return false;
    }
    *size = w->has_size ? (uint64_t)sz : flen - w->offset;
    return true;
}

static bool raw_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    return raw_window(opts, bdrv_length(child(bn)), bn->cache_direct,
                      bn->opaque, &bn->total_size, errp);
}

/* Reopen moves the window; the size is checked against the file now. */
typedef struct {
    RawState w;
    uint64_t size;
} RawReopen;

static bool raw_reopen_prepare(BdrvReopenState *rs, Error **errp)
{
    RawReopen *r = g_new0(RawReopen, 1);

    if (!raw_window(rs->opts, bdrv_length(child(rs->bn)), rs->cache_direct,
                    &r->w, &r->size, errp)) {
        g_free(r);
        return false;
    }
    rs->opaque = r;
    return true;
}

static void raw_reopen_commit(BdrvReopenState *rs)
{
    RawReopen *r = rs->opaque;

    *(RawState *)rs->bn->opaque = r->w;
    rs->bn->total_size = r->size;
    g_free(r);
    rs->opaque = NULL;
}

static void raw_reopen_abort(BdrvReopenState *rs)
{
    g_free(rs->opaque);
    rs->opaque = NULL;
}

static const char *const raw_reopen_opts[] = { "offset", "size", NULL };

/* A read or write waiting at a blkdebug breakpoint on its event. */
typedef struct {
    BlockNode *bn;
    bool write;
    uint64_t off;
    uint64_t len;
    void *buf;
    int flags;
    BdrvCb *cb;
    void *opaque;
} RawHeld;

static void raw_write_go(BlockNode *bn, uint64_t off, uint64_t len,
                         const void *buf, int flags, BdrvCb *cb,
                         void *opaque);

static void raw_held_go_cb(void *opaque, int ret)
{
    RawHeld *h = opaque;
    RawState *s = h->bn->opaque;

    if (h->write) {
        raw_write_go(h->bn, h->off, h->len, h->buf, h->flags, h->cb,
                     h->opaque);
    } else {
        bdrv_read(child(h->bn), s->offset + h->off, h->len, h->buf, h->cb,
                  h->opaque);
    }
    g_free(h);
}

/*
 * As QEMU's raw, report each read and write to the file child as
 * read_aio or write_aio, so that blkdebug rules on those events apply
 * to it.  True when a breakpoint holds the request (it goes on later).
 */
static bool raw_debug_event(BlockNode *bn, bool write, uint64_t off,
                            uint64_t len, const void *buf, int flags,
                            BdrvCb *cb, void *opaque)
{
    RawHeld *h;

    if (!child(bn)->drv->debug_event) {
        return false;
    }
    h = g_new0(RawHeld, 1);
    *h = (RawHeld) { bn, write, off, len, (void *)buf, flags, cb, opaque };
    if (bdrv_debug_event(child(bn), write ? BLKDBG_WRITE_AIO
                                          : BLKDBG_READ_AIO,
                         raw_held_go_cb, h)) {
        return true;
    }
    g_free(h);
    return false;
}

static void raw_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                     BdrvCb *cb, void *opaque)
{
    RawState *s = bn->opaque;

    if (!raw_debug_event(bn, false, off, len, buf, 0, cb, opaque)) {
        bdrv_read(child(bn), s->offset + off, len, buf, cb, opaque);
    }
}

static void raw_write(BlockNode *bn, uint64_t off, uint64_t len,
                      const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    if (!raw_debug_event(bn, true, off, len, buf, flags, cb, opaque)) {
        raw_write_go(bn, off, len, buf, flags, cb, opaque);
    }
}

static void raw_write_go(BlockNode *bn, uint64_t off, uint64_t len,
                         const void *buf, int flags, BdrvCb *cb,
                         void *opaque)
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

/* as QEMU's raw format, the file's facts */
static bool raw_get_info(BlockNode *bn, BlockDriverInfo *bdi)
{
    return bdrv_get_info(child(bn), bdi);
}

const BlockDriver bdrv_raw = {
    .name = "raw",
    .instance_size = sizeof(RawState),
    .is_format = true,
    .open = raw_open,
    .reopen_opts = raw_reopen_opts,
    .reopen_resettable = raw_reopen_opts,
    .reopen_prepare = raw_reopen_prepare,
    .reopen_commit = raw_reopen_commit,
    .reopen_abort = raw_reopen_abort,
    .read = raw_read,
    .write = raw_write,
    .write_zeroes = raw_write_zeroes,
    .discard = raw_discard,
    .block_status = raw_block_status,
    .truncate = raw_truncate,
    .allocated_size = raw_allocated_size,
    .get_info = raw_get_info,
    .pread_sync = raw_pread_sync,
    .pwrite_sync = raw_pwrite_sync,
};
