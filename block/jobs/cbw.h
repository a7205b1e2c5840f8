/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy-before-write filter node (cbw.c), QEMU 7.2's
 * driver=copy-before-write: the copy engine's guest-facing side, which
 * copies a range's old data to its target before a write changes it.
 */
#ifndef BLOCK_JOBS_CBW_H
#define BLOCK_JOBS_CBW_H

#include <stdint.h>

#include "block/core/block.h"
#include "block/jobs/copy.h"
#include "qapi/error.h"
#include "util/hbitmap.h"

/*
 * Make the driver openable by name (blockdev-add, -blockdev).  At
 * start-up, after bdrv_init().
 */
void cbw_register(void);

/*
 * QEMU's bdrv_cbw_append() for a backup: a copy-before-write filter
 * over @bs with @target, in @bs's place (job-filter.c), named @name or
 * auto-named, and shown either way, as QEMU shows backup's filter; its
 * engine takes its sizes (chunk, step, max_ops, max_ops_limited,
 * zeroes, progress) from @tmpl, the rest is the filter's.  Returns the
 * filter with a reference for the caller, or NULL with QEMU's error
 * ("Could not create node: ...") and the graph as it was.  The job made
 * on it takes nothing and shares everything.  Main loop only.
 */
BlockNode *cbw_append(BlockNode *bs, BlockNode *target, const char *name,
                      const BlockCopyConfig *tmpl, Error **errp);

/* The filter's engine, its copy bitmap (the engine's) and cluster size. */
BlockCopy *cbw_block_copy(BlockNode *filter);
HBitmap *cbw_copy_bitmap(BlockNode *filter);
uint64_t cbw_cluster_size(BlockNode *filter);

/*
 * A job that took the engine (block_copy_set_owner()) gives it back:
 * from now on the filter copies only for guest writes.
 */
void cbw_release(BlockNode *filter);

/*
 * QEMU's snapshot API of a copy-before-write node @bn: the source as it
 * was when the filter was opened.  Each ends with -ENOTSUP when @bn is
 * another node, -EACCES where the snapshot cannot be read (outside
 * "access": not in the "bitmap" option, discarded, or every area after
 * a failed copy under break-snapshot; block status refuses the whole
 * range then).  cbw_snapshot_read() reads the target where the old data
 * was copied, the source elsewhere (a guest write there waits for it);
 * cbw_snapshot_block_status() answers for the first part of the range
 * that one node holds, as that node says; cbw_snapshot_discard() gives
 * up the whole clusters in the range: they are no longer readable nor
 * copied, and are discarded on the target.  (QEMU 7.2's hbitmap_status()
 * takes a copied run that ends inside the range for not copied, so it
 * reads and reports the source's new data there: qmpd does not.)  Main loop only; callbacks from the main
 * loop, never before the call returns.
 */
void cbw_snapshot_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                       BdrvCb *cb, void *opaque);
void cbw_snapshot_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                               BdrvStatusCb *cb, void *opaque);
void cbw_snapshot_discard(BlockNode *bn, uint64_t off, uint64_t len,
                          BdrvCb *cb, void *opaque);

/*
 * Make QEMU's snapshot-access driver (snapshot-access.c), a reader of
 * that API, openable by name.  At start-up, after bdrv_init().
 */
void snapshot_access_register(void);

#endif
