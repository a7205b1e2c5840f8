/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * null-co and null-aio: a device of a given size that reads nothing (or
 * zeroes, with read-zeroes) and drops writes; optionally each request
 * takes latency-ns.  Used by tests and benchmarks to measure the layers
 * above without a disk.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"

typedef struct {
    int64_t latency_ns;
    bool read_zeroes;
} NullState;

typedef struct {
    BdrvCb *cb;
    void *opaque;
} NullReq;

static bool null_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    NullState *s = bn->opaque;
    int64_t size = qjson_get_int_or(opts, "size", 1 << 30);

    if (size < 0) {
        error_setg(errp, "size must be non-negative");
        return false;
    }
    s->latency_ns = qjson_get_int_or(opts, "latency-ns", 0);
    if (s->latency_ns < 0) {
        error_setg(errp, "latency-ns is invalid");
        return false;
    }
    s->read_zeroes = qjson_get_bool_or(opts, "read-zeroes", false);
    bn->total_size = size;
    return true;
}

static gboolean null_timer_cb(gpointer opaque)
{
    NullReq *r = opaque;

    r->cb(r->opaque, 0);
    g_free(r);
    return G_SOURCE_REMOVE;
}

static void null_done_cb(void *opaque, ssize_t ret)
{
    null_timer_cb(opaque);
}

static void complete(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    NullState *s = bn->opaque;
    NullReq *r = g_new0(NullReq, 1);

    r->cb = cb;
    r->opaque = opaque;
    if (s->latency_ns) {
        g_timeout_add(MAX(1, s->latency_ns / 1000000), null_timer_cb, r);
    } else {
        ioq_defer(null_done_cb, r, 0);
    }
}

static void null_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                      BdrvCb *cb, void *opaque)
{
    NullState *s = bn->opaque;

    if (s->read_zeroes) {
        memset(buf, 0, len);
    }
    complete(bn, cb, opaque);
}

static void null_write(BlockNode *bn, uint64_t off, uint64_t len,
                       const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    complete(bn, cb, opaque);
}

static void null_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                              int flags, BdrvCb *cb, void *opaque)
{
    complete(bn, cb, opaque);
}

static void null_flush(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    complete(bn, cb, opaque);
}

typedef struct {
    BdrvStatusCb *cb;
    void *opaque;
    int status;
    uint64_t pnum;
} NullStatus;

static void null_status_cb(void *opaque, ssize_t ret)
{
    NullStatus *st = opaque;

    st->cb(st->opaque, 0, st->status, st->pnum);
    g_free(st);
}

static void null_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                              BdrvStatusCb *cb, void *opaque)
{
    NullState *s = bn->opaque;
    NullStatus *st = g_new0(NullStatus, 1);

    st->cb = cb;
    st->opaque = opaque;
    st->pnum = len;
    st->status = BDRV_STATUS_ALLOCATED
        | (s->read_zeroes ? BDRV_STATUS_ZERO : 0);
    ioq_defer(null_status_cb, st, 0);
}

static int null_pread_sync(BlockNode *bn, uint64_t off, uint64_t len,
                           void *buf)
{
    NullState *s = bn->opaque;

    if (s->read_zeroes) {
        memset(buf, 0, len);
    }
    return 0;
}

static int null_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                            const void *buf)
{
    return 0;
}

/* nothing on disk: QEMU reports an actual size of 0 */
static int64_t null_allocated_size(BlockNode *bn)
{
    return 0;
}

/* zero writes need no data: reads give zeroes or nothing */
static bool null_get_info(BlockNode *bn, BlockDriverInfo *bdi)
{
    bdi->can_write_zeroes_with_unmap = true;
    return true;
}

/* QEMU's QDict prints them in this order */
static const char *const null_strong_opts[] = {
    "read-zeroes", "driver", "size", NULL
};

const BlockDriver bdrv_null_co = {
    .name = "null-co",
    .instance_size = sizeof(NullState),
    .strong_opts = null_strong_opts,
    .open = null_open,
    .read = null_read,
    .write = null_write,
    .write_zeroes = null_write_zeroes,
    .flush = null_flush,
    .block_status = null_block_status,
    .pread_sync = null_pread_sync,
    .pwrite_sync = null_pwrite_sync,
    .allocated_size = null_allocated_size,
    .get_info = null_get_info,
};

/* The same device; QEMU's two differ only in how they complete. */
const BlockDriver bdrv_null_aio = {
    .name = "null-aio",
    .instance_size = sizeof(NullState),
    .strong_opts = null_strong_opts,
    .open = null_open,
    .read = null_read,
    .write = null_write,
    .write_zeroes = null_write_zeroes,
    .flush = null_flush,
    .block_status = null_block_status,
    .pread_sync = null_pread_sync,
    .pwrite_sync = null_pwrite_sync,
    .allocated_size = null_allocated_size,
    .get_info = null_get_info,
};
