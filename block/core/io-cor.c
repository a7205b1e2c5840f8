/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copy-on-read: a read of a node that does not hold the data itself
 * (its backing chain does) also writes what it read into the node, so
 * that the next read finds it there.  Nodes opened with -drive
 * copy-on-read=on read this way (QEMU's BDRV_O_COPY_ON_READ), and so
 * does the copy-on-read filter for its child, optionally only for data
 * that the chain holds down to a "bottom" node.
 *
 * The algorithm is QEMU's, so that the same reads leave the same
 * allocation behind (qemu-img map compares equal):
 *
 *  - The read is widened to whole clusters of the node: a cluster is
 *    allocated whole, so what the guest did not ask for is copied too.
 *  - From the start of that range, the node's own allocation status
 *    decides, run by run.  A run the node holds is read as usual (only
 *    the part the caller asked for).  A run it does not hold (at most
 *    16 MiB at a time) is read through the node, which fetches it from
 *    the backing chain, and written back into the node: as a zero write
 *    when it is all zeroes, else as data.  The caller gets its part.
 *  - With a bottom node (the filter's option), a run the node does not
 *    hold is copied only where a node of the chain from the node's
 *    backing down to bottom holds it; elsewhere it is just read.
 *
 * Safety: the whole widened range is range-locked on the node before
 * anything is read, so a guest write to it waits until the copy is
 * written, and the copy waits for guest writes already in flight.  The
 * copy can therefore never overwrite newer guest data; two reads of
 * the same clusters copy one after the other, the second finding them
 * allocated.  A caller that holds a range lock over its range already
 * (a job's own read, BDRV_REQ_LOCK_OWNER) relies on that one instead,
 * and the copy is not widened beyond it.
 *
 * The copy's writes change nothing a reader sees: they carry
 * BDRV_REQ_WRITE_UNCHANGED, so dirty bitmaps and jobs' write notifiers
 * do not see them, as in QEMU.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"

#define COR_MAX_BOUNCE (16u << 20)      /* QEMU's MAX_BOUNCE_BUFFER */

typedef struct {
    BlockNode *bn;
    BlockNode *base;            /* copy only above it; with @bottom_mode */
    bool bottom_mode;
    uint64_t off;               /* the caller's request */
    uint64_t len;
    uint8_t *buf;
    uint64_t start;             /* the widened range */
    uint64_t end;
    uint64_t pos;               /* next byte to decide */
    uint64_t seg_end;           /* bottom mode: end of a copied segment */
    uint64_t n;                 /* bytes of the current step */
    uint8_t *bounce;
    BdrvRangeLock *lock;
    int ret;
    BdrvCb *cb;
    void *opaque;
} CorRead;

static void cor_step(CorRead *r);

static void cor_finish(CorRead *r)
{
    if (r->lock) {
        bdrv_range_unlock(r->lock);
    }
    if (r->bounce) {
        ioq_buf_free(r->bounce);
    }
    bdrv_dec_in_flight(r->bn);
    r->cb(r->opaque, r->ret);
    g_free(r);
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
    return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* The caller's part of [@pos, @pos + @n) has been read or copied. */
static void step_done(CorRead *r, int ret)
{
    if (ret < 0) {
        r->ret = ret;
        cor_finish(r);
        return;
    }
    r->pos += r->n;
    cor_step(r);
}

static void step_done_cb(void *opaque, int ret)
{
    step_done(opaque, ret);
}

static void copied_cb(void *opaque, int ret)
{
    CorRead *r = opaque;
    uint64_t a = MAX(r->pos, r->off);
    uint64_t b = MIN(r->pos + r->n, r->off + r->len);

    if (ret >= 0 && a < b) {
        memcpy(r->buf + (a - r->off), r->bounce + (a - r->pos), b - a);
    }
    step_done(r, ret);
}

static void fetched_cb(void *opaque, int ret)
{
    CorRead *r = opaque;
    int flags = BDRV_REQ_LOCK_OWNER | BDRV_REQ_WRITE_UNCHANGED;

    if (ret < 0) {
        step_done(r, ret);
        return;
    }
    /* QEMU reports it on the node itself: seen when that is blkdebug */
    bdrv_debug_event(r->bn, BLKDBG_COR_WRITE, NULL, NULL);
    if (r->bn->drv->write_zeroes && all_zero(r->bounce, r->n)) {
        bdrv_write_zeroes(r->bn, r->pos, r->n, flags, copied_cb, r);
    } else {
        bdrv_write(r->bn, r->pos, r->n, r->bounce, flags, copied_cb, r);
    }
}

/* Read [@pos, @pos + @n) as it is: the caller's part, straight in. */
static void read_through(CorRead *r)
{
    uint64_t a = MAX(r->pos, r->off);
    uint64_t b = MIN(r->pos + r->n, r->off + r->len);

    if (a >= b) {
        step_done(r, 0);
        return;
    }
    bdrv_read_plain(r->bn, a, b - a, r->buf + (a - r->off), step_done_cb,
                    r);
}

/* Copy [@pos, @pos + @n): fetch it through the node, then write it. */
static void copy_run(CorRead *r)
{
    r->n = MIN(r->n, COR_MAX_BOUNCE);
    if (!r->bounce) {
        r->bounce = ioq_buf_alloc(MIN(r->end - r->start, COR_MAX_BOUNCE));
    }
    bdrv_read_plain(r->bn, r->pos, r->n, r->bounce, fetched_cb, r);
}

static void above_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CorRead *r = opaque;

    /* QEMU copies where it cannot tell (an error) too */
    r->n = ret < 0 ? r->n : MIN(r->n, pnum);
    if (ret < 0 || status) {
        /*
         * A copied segment is widened to whole clusters again (QEMU's
         * filter reads it with BDRV_REQ_COPY_ON_READ); its start is
         * whole already, as the walk goes from cluster to cluster
         */
        uint32_t cs = bdrv_cluster_size(r->bn);
        uint64_t e = r->pos + r->n;

        if (cs) {
            e = MIN((e + cs - 1) / cs * cs, r->end);
        }
        r->seg_end = e;
        r->n = 0;
        cor_step(r);
        return;
    }
    read_through(r);
}

static void status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CorRead *r = opaque;
    uint64_t left = r->end - r->pos;

    /* QEMU treats an unknown status as unallocated: it copies */
    r->n = ret < 0 ? left : MIN(MAX(pnum, 1), left);
    if (ret >= 0 && (status & BDRV_STATUS_ALLOCATED)) {
        read_through(r);
    } else if (r->bottom_mode && r->pos >= r->seg_end) {
        /* only what the chain holds down to bottom is copied */
        BlockNode *next = bdrv_backing(bdrv_skip_filters(r->bn));

        if (!next || r->pos >= bdrv_length(next)) {
            read_through(r);
            return;
        }
        r->n = MIN(r->n, bdrv_length(next) - r->pos);
        bdrv_is_allocated_above(next, r->base, r->pos, r->n, above_cb, r);
    } else {
        copy_run(r);
    }
}

static void cor_step(CorRead *r)
{
    uint64_t limit = r->end;

    if (r->pos >= r->end) {
        cor_finish(r);
        return;
    }
    if (r->bottom_mode && r->pos < r->seg_end) {
        limit = r->seg_end;
    }
    bdrv_block_status(r->bn, r->pos, limit - r->pos, status_cb, r);
}

static void locked_cb(void *opaque, BdrvRangeLock *lock)
{
    CorRead *r = opaque;

    r->lock = lock;
    cor_step(r);
}

void bdrv_cor_read(BlockNode *bn, BlockNode *bottom, uint64_t off,
                   uint64_t len, void *buf, int flags, BdrvCb *cb,
                   void *opaque)
{
    CorRead *r = g_new0(CorRead, 1);
    uint32_t cs = bdrv_cluster_size(bn);

    r->bn = bn;
    r->off = off;
    r->len = len;
    r->buf = buf;
    r->cb = cb;
    r->opaque = opaque;
    r->start = cs ? off / cs * cs : off;
    r->end = cs ? (off + len + cs - 1) / cs * cs : off + len;
    /* a last cluster the image ends inside is copied up to the end */
    r->end = MIN(r->end, MAX(bdrv_length(bn), off + len));
    r->pos = r->start;
    if (bottom) {
        /* QEMU's bottom is included: the walk stops below it */
        r->bottom_mode = true;
        r->base = bottom == bn ? NULL : bdrv_backing(bottom);
    }
    bdrv_inc_in_flight(bn);
    if (flags & BDRV_REQ_LOCK_OWNER) {
        /*
         * The caller's lock covers its own range only: the copy stays
         * inside it (the format completes a partial cluster itself, and
         * serialises that against other writes to the cluster)
         */
        r->start = r->pos = off;
        r->end = off + len;
        cor_step(r);
        return;
    }
    bdrv_range_lock(bn, r->start, r->end - r->start, locked_cb, r);
}
