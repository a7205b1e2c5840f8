/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block limits in the request layer (io-align.c), between io.c's
 * requests and the drivers: requests cut to a node's max_transfer and
 * zero/discard limits, and widened to its request_alignment, unaligned
 * writes through read-modify-write.  Private to block/ and its tests.
 */
#ifndef BLOCK_CORE_IO_ALIGN_H
#define BLOCK_CORE_IO_ALIGN_H

#include <stdbool.h>
#include <stdint.h>

#include "block/core/block-int.h"

/*
 * The blocks an unaligned request touches beyond its bytes: @head bytes
 * before it in its first block, @tail after it in its last.  The
 * partial blocks are read back as one request of @buf_len bytes when
 * @merge (all in one block, or head and tail blocks adjacent), else as
 * the head block and the tail block.
 */
typedef struct {
    uint64_t head;
    uint64_t tail;
    uint64_t buf_len;           /* one block, or two with head and tail */
    bool merge;
} BdrvPadding;

/* Fill @p for [@off, @off + @len) (@len > 0); false when aligned. */
bool bdrv_padding(uint64_t off, uint64_t len, uint32_t align,
                  BdrvPadding *p);

/*
 * The length of the next driver zero write of [@off, @off + @len), as
 * QEMU cuts them: an unaligned head on its own up to the next boundary
 * of MAX(pwrite_zeroes_alignment, request_alignment), the aligned bulk
 * without the unaligned tail, at most max_pwrite_zeroes.
 */
uint64_t bdrv_zero_piece(const BdrvLimits *bl, uint64_t off, uint64_t len);

/* The same for discards (pdiscard_alignment, max_pdiscard). */
uint64_t bdrv_discard_piece(const BdrvLimits *bl, uint64_t off,
                            uint64_t len);

/* Must a write or zero write of [@off, @off + @len) on @bn be widened? */
bool bdrv_needs_rmw(const BlockNode *bn, uint64_t off, uint64_t len);

/* [@off, @off + @len) widened to @bn's request alignment. */
void bdrv_rmw_extent(const BlockNode *bn, uint64_t off, uint64_t len,
                     uint64_t *aoff, uint64_t *alen);

/*
 * A request as the driver of @bn may take it, after io.c's checks,
 * accounting and serialisation (an unaligned write or zero write runs
 * under a range lock over its widened extent).  Reads are widened and
 * cut; writes raise blkdebug's pwritev (pwritev_zero) and pwritev_done
 * around the driver requests, and the rmw events around the reads of
 * partial blocks; detect-zeroes turns an all-zero write into a zero
 * write.  @cb runs once, later, with 0 or -errno.
 */
void bdrv_limited_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                       BdrvCb *cb, void *opaque);
void bdrv_limited_write(BlockNode *bn, uint64_t off, uint64_t len,
                        const void *buf, int flags, BdrvCb *cb,
                        void *opaque);
void bdrv_limited_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                               int flags, BdrvCb *cb, void *opaque);
/* Pieces the driver declines (-ENOTSUP) are dropped: discard is advice. */
void bdrv_limited_discard(BlockNode *bn, uint64_t off, uint64_t len,
                          BdrvCb *cb, void *opaque);

#endif /* BLOCK_CORE_IO_ALIGN_H */
