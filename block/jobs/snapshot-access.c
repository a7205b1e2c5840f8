/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The snapshot-access driver (blockdev-add driver=snapshot-access,
 * file=<copy-before-write node>), as QEMU 7.2's: a read-only view of
 * the point in time its copy-before-write node keeps, read through that
 * node's snapshot API (cbw.c), so the fleecing target needs no backing
 * and a client reads, asks block status and discards what it has
 * backed up.  Writes are not supported; over any other node every
 * request but flush fails with ENOTSUP, as QEMU's.  It lives beside
 * cbw.c, the job layer's, whose API it reads.
 *
 * It takes nothing on its child and shares everything: the
 * copy-before-write node decides who may write below it.
 */
#include "config.h"

#include <errno.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/cbw.h"

static bool sa_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    bn->total_size = bdrv_length(bn->file->child);
    return true;
}

static void sa_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                    BdrvCb *cb, void *opaque)
{
    cbw_snapshot_read(bn->file->child, off, len, buf, cb, opaque);
}

static void sa_write(BlockNode *bn, uint64_t off, uint64_t len,
                     const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    ioq_defer_int(cb, opaque, -ENOTSUP);
}

static void sa_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                            int flags, BdrvCb *cb, void *opaque)
{
    ioq_defer_int(cb, opaque, -ENOTSUP);
}

static void sa_discard(BlockNode *bn, uint64_t off, uint64_t len, BdrvCb *cb,
                       void *opaque)
{
    cbw_snapshot_discard(bn->file->child, off, len, cb, opaque);
}

typedef struct {
    BdrvStatusCb *cb;
    void *opaque;
} SaStatus;

/*
 * The node has no backing: whatever the copy-before-write node says
 * decides (QEMU's reads that return neither data nor zeroes are holes
 * to read, not zeroes from below)
 */
static void sa_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    SaStatus *st = opaque;

    st->cb(st->opaque, ret, status | BDRV_STATUS_ALLOCATED, pnum);
    g_free(st);
}

static void sa_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                            BdrvStatusCb *cb, void *opaque)
{
    SaStatus *st = g_new0(SaStatus, 1);

    st->cb = cb;
    st->opaque = opaque;
    cbw_snapshot_block_status(bn->file->child, off, len, sa_status_cb, st);
}

/* QEMU's snapshot_access_child_perm(): nothing taken, all shared */
static void sa_child_perm(const BlockNode *bn, unsigned *perm,
                          unsigned *shared)
{
    *perm = 0;
    *shared = BLK_PERM_ALL;
}

/* QEMU sums its children's: the copy-before-write node's, its source's */
static int64_t sa_allocated_size(BlockNode *bn)
{
    BlockNode *c = bn->file->child;

    return c->drv->allocated_size ? c->drv->allocated_size(c) : -1;
}

static const BlockDriver bdrv_snapshot_access = {
    .name = "snapshot-access",
    .is_format = true,
    .no_reopen = true,
    .open = sa_open,
    .read = sa_read,
    .write = sa_write,
    .write_zeroes = sa_write_zeroes,
    .discard = sa_discard,
    .block_status = sa_block_status,
    .child_perm = sa_child_perm,
    .allocated_size = sa_allocated_size,
};

void snapshot_access_register(void)
{
    bdrv_register_driver(&bdrv_snapshot_access);
}
