/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2's guest request, shared by the two halves of its data path:
 * qcow2-io.c steps a request through its range and issues the reads and
 * writes, qcow2-cluster.c maps guest clusters to L2 entries and
 * allocates new clusters (claims, copy on write, L2 updates).  Only
 * block/drivers/qcow2*.c include this.
 */
#ifndef BLOCK_DRIVERS_QCOW2_IO_H
#define BLOCK_DRIVERS_QCOW2_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "block/drivers/qcow2.h"

typedef enum {
    QREQ_READ,
    QREQ_WRITE,
    QREQ_ZERO,
    QREQ_DISCARD,
} QReqType;

typedef struct Qcow2Req {
    BlockNode *bn;
    QReqType type;
    uint64_t off;
    uint64_t end;
    uint64_t pos;           /* next guest byte to dispatch */
    uint8_t *buf;
    int flags;
    int pending;            /* sub-requests in flight, +1 while stepping */
    int ret;
    int rest_zero;          /* zero write in one cluster: 1 when the rest
                             * of the cluster reads as zeroes, -1 not */
    Qcow2Table *l2;         /* pinned L2 table in use */
    BdrvCb *cb;
    void *opaque;
} Qcow2Req;

typedef enum {
    DATA_READ,
    DATA_WRITE,
    DATA_ZERO,              /* zeroes written in place (no unmap) */
} DataOp;

/* ---- qcow2-io.c ---------------------------------------------------------- */

/*
 * Dispatch @r from r->pos on, as far as it can go without waiting; it
 * finishes (its callback runs) once nothing of it is pending.  Main loop.
 */
void qcow2_req_step(Qcow2Req *r);

/* One sub-request of @r ended with @ret (the first error sticks). */
void qcow2_sub_done(Qcow2Req *r, int ret);

/* qcow2_sub_done() as a BdrvCb, @opaque the Qcow2Req. */
void qcow2_sub_done_cb(void *opaque, int ret);

/*
 * Read or write [@host, +@len) of @bn's file after reporting blkdebug
 * event @ev (a breakpoint on it holds the I/O there); writes are checked
 * against the metadata first (overlap check).  @buf is borrowed until
 * @done runs.
 */
void qcow2_data_io(BlockNode *bn, BlkdebugEvent ev, DataOp op, uint64_t host,
                   uint64_t len, const uint8_t *buf, int flags, BdrvCb *done,
                   void *done_opaque);

/* A guest read of [@off, +@len) within the image, for copy on write. */
void qcow2_do_read(BlockNode *bn, uint64_t off, uint64_t len, uint8_t *buf,
                   BdrvCb *cb, void *opaque);

/* ---- qcow2-cluster.c ----------------------------------------------------- */

/*
 * The L2 table for guest offset @pos in r->l2 (pinned): true with
 * *@none set when there is none and @create is false; false when the
 * caller must return (a load was started and will re-step @r, or r->ret
 * was set).  With @create, a missing table is allocated.
 */
bool qcow2_need_l2(Qcow2Req *r, uint64_t pos, bool create, bool *none);

/*
 * An L2 table offset from the L1 table must be cluster aligned and lie
 * before next_free: new tables are allocated there, and a second cache
 * entry for the same offset would break the cache (corrupt image: EIO).
 */
bool qcow2_l2_offset_valid(const Qcow2State *s, uint64_t l2off);

/*
 * How many clusters from @l2i (at most @max) continue the run that entry
 * @first starts: the same kind, and for data contiguous on the file.
 */
uint64_t qcow2_run_length(const Qcow2State *s, const Qcow2Table *t,
                          uint32_t l2i, uint64_t max, uint64_t first);

/* The same for a write: clusters it treats alike (in place, or new). */
uint64_t qcow2_write_run(const Qcow2State *s, const Qcow2Table *t,
                         uint32_t l2i, uint64_t max, uint64_t first);

/*
 * True when [@start, @end) touches a range being allocated: @r then
 * waits and steps again once the allocation is done (its L2 table is
 * unpinned meanwhile).
 */
bool qcow2_wait_for_claim(Qcow2Req *r, uint64_t start, uint64_t end);

/*
 * Write [@pos, +@len) of @r (data, or zeroes for a zero write) over the
 * run that entry @e starts: in place, or into new clusters with the
 * partial clusters at the edges copied from the old contents.
 */
void qcow2_write_as_data(Qcow2Req *r, uint64_t pos, uint64_t len,
                         uint64_t e);

/*
 * Zero (or with @discard, discard) @n whole clusters from @l2i of the
 * pinned table @t, as QEMU's zero_in_l2_slice() / discard_in_l2_slice().
 */
void qcow2_set_clusters(Qcow2Req *r, Qcow2Table *t, uint32_t l2i, uint64_t n,
                        bool discard);

#endif
