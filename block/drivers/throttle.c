/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The throttle filter (blockdev-add driver=throttle): requests through
 * it wait for the limits of its throttle group (throttle-group=, an
 * object's id or a drive's group) before they reach its child.  Reads
 * count as reads; writes, zero writes and discards as writes, as in
 * QEMU 7.2; flushes and everything else pass straight through
 * (filter.c).  Several throttle nodes and drives in one group share its
 * budget.  A drain lets what waits go at once, as QEMU disables the
 * limits while it drains.
 */
#include "config.h"

#include "block/core/block-int.h"
#include "block/core/throttle-groups.h"
#include "qapi/qjson.h"

typedef struct {
    ThrottleGroupMember *tgm;
} ThrottleNodeState;

typedef enum {
    THR_READ,
    THR_WRITE,
    THR_ZERO,
    THR_DISCARD,
} ThrottleOp;

/* A request held until its group lets it go. */
typedef struct {
    BlockNode *bn;
    ThrottleOp op;
    uint64_t off;
    uint64_t len;
    void *buf;
    int flags;
    BdrvCb *cb;
    void *opaque;
} ThrottleReq;

static bool throttle_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    ThrottleNodeState *s = bn->opaque;
    const char *group = qjson_get_str(opts, "throttle-group");

    if (!throttle_group_find(group)) {
        error_setg(errp, "Throttle group '%s' does not exist", group);
        return false;
    }
    s->tgm = throttle_group_register(group);
    bn->total_size = bdrv_length(bn->file->child);
    return true;
}

static void throttle_close(BlockNode *bn)
{
    ThrottleNodeState *s = bn->opaque;

    if (s->tgm) {
        throttle_group_unregister(s->tgm);
    }
}

static void throttle_go_cb(void *opaque, int ret)
{
    ThrottleReq *r = opaque;
    BlockNode *child = r->bn->file->child;

    switch (r->op) {
    case THR_READ:
        bdrv_read(child, r->off, r->len, r->buf, r->cb, r->opaque);
        break;
    case THR_WRITE:
        bdrv_write(child, r->off, r->len, r->buf, r->flags, r->cb,
                   r->opaque);
        break;
    case THR_ZERO:
        bdrv_write_zeroes(child, r->off, r->len, r->flags, r->cb, r->opaque);
        break;
    case THR_DISCARD:
        bdrv_discard(child, r->off, r->len, r->cb, r->opaque);
        break;
    }
    g_free(r);
}

static void throttle_submit(BlockNode *bn, ThrottleOp op, uint64_t off,
                            uint64_t len, void *buf, int flags, BdrvCb *cb,
                            void *opaque)
{
    ThrottleNodeState *s = bn->opaque;
    ThrottleReq *r = g_new(ThrottleReq, 1);

    *r = (ThrottleReq){ bn, op, off, len, buf, flags, cb, opaque };
    throttle_group_intercept(s->tgm, op != THR_READ, len, throttle_go_cb, r);
}

static void throttle_read(BlockNode *bn, uint64_t off, uint64_t len,
                          void *buf, BdrvCb *cb, void *opaque)
{
    throttle_submit(bn, THR_READ, off, len, buf, 0, cb, opaque);
}

static void throttle_write(BlockNode *bn, uint64_t off, uint64_t len,
                           const void *buf, int flags, BdrvCb *cb,
                           void *opaque)
{
    /* the buffer is only read: the request carries it for both ways */
    throttle_submit(bn, THR_WRITE, off, len, (void *)buf, flags, cb, opaque);
}

static void throttle_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                                  int flags, BdrvCb *cb, void *opaque)
{
    throttle_submit(bn, THR_ZERO, off, len, NULL, flags, cb, opaque);
}

static void throttle_discard(BlockNode *bn, uint64_t off, uint64_t len,
                             BdrvCb *cb, void *opaque)
{
    throttle_submit(bn, THR_DISCARD, off, len, NULL, 0, cb, opaque);
}

static void throttle_drain_release(BlockNode *bn)
{
    ThrottleNodeState *s = bn->opaque;

    throttle_group_release(s->tgm);
}

static const char *const throttle_json_opts[] = { "throttle-group", NULL };

const BlockDriver bdrv_throttle = {
    .name = "throttle",
    .instance_size = sizeof(ThrottleNodeState),
    .is_filter = true,
    .json_filename = true,
    .json_opts = throttle_json_opts,
    .no_reopen = true,
    .open = throttle_open,
    .close = throttle_close,
    .read = throttle_read,
    .write = throttle_write,
    .write_zeroes = throttle_write_zeroes,
    .discard = throttle_discard,
    .drain_release = throttle_drain_release,
    .block_status = bdrv_filter_block_status,
    .truncate = bdrv_filter_truncate,
    .allocated_size = bdrv_filter_allocated_size,
    .get_info = bdrv_filter_get_info,
    .dirty_flag = bdrv_filter_dirty_flag,
    .pread_sync = bdrv_filter_pread_sync,
    .pwrite_sync = bdrv_filter_pwrite_sync,
    .flush_sync = bdrv_filter_flush_sync,
    .discard_sync = bdrv_filter_discard_sync,
};
