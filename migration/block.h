/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block migration (migrate -b / -i, the block capability): the disks of
 * the guest's devices travel in the migration stream next to its RAM.
 * The source side is driven by outgoing.c's pump, the destination side
 * by incoming.c's reader; docs/migration-stream.md has the sections.
 * Inside migration/ only.
 */
#ifndef MIGRATION_BLOCK_H
#define MIGRATION_BLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <glib.h>

#include "qapi/error.h"

/* ---- source -------------------------------------------------------------- */

/*
 * Take the guest's writable disks (those attached to a device) for a
 * migration: each gets a dirty bitmap from now on.  @incremental copies
 * only what each disk's top image holds (the destination has the
 * base).  False with the error and nothing taken.
 */
bool mig_blk_out_setup(bool incremental, Error **errp);

/* Append the BLOCK_SETUP record (the disks) to @out, once connected. */
void mig_blk_out_put_setup(GByteArray *out);

/* Start reads while outgoing.c says there is room (mig_out_room()). */
void mig_blk_out_kick(void);

/*
 * Whether the current pass's blocks are all sent: the bulk copy is
 * over and nothing taken from the dirty bitmap is left or in flight.
 */
bool mig_blk_out_pass_done(void);

/* Bytes the guest dirtied since the last pass began (for convergence). */
uint64_t mig_blk_out_pending(void);

/* Begin a pass over what the guest dirtied meanwhile. */
void mig_blk_out_sync(void);

/* query-migrate's disk{} (new reference), or NULL without block. */
json_t *mig_blk_out_stats(void);

/*
 * End the block part (done, failed or cancelled): the dirty bitmaps go,
 * reads still in flight finish on their own and are dropped.
 */
void mig_blk_out_cleanup(void);

/* ---- destination --------------------------------------------------------- */

/* A BLOCK_SETUP record: the source's disks must exist here, as large. */
bool mig_blk_in_setup(const uint8_t *p, uint32_t len, Error **errp);

/* A BLOCK record for disk @id: its write goes out (taken over). */
bool mig_blk_in_load(uint32_t id, const uint8_t *p, uint32_t len,
                     Error **errp);

/*
 * Whether the next record must wait for writes in flight (too many, or
 * one that the next could overlap); @resume runs once they are done.
 */
bool mig_blk_in_busy(void (*resume)(void));

/*
 * At END: @done once every write completed (@ret is 0: a later flush
 * of the disks only reports its failure).
 */
void mig_blk_in_finish(void (*done)(int ret));

/* ---- dirty bitmaps (block-bitmaps.c) -------------------------------------- */

/*
 * The named bitmaps that migrate (dirty-bitmaps capability, QEMU 7.2's
 * choice, with block-bitmap-mapping); they are busy until cleanup.
 * False with QEMU's error, the reason on stderr.
 */
bool mig_bitmaps_out_setup(Error **errp);

/* Append a BITMAP record for each (the guest is stopped). */
void mig_bitmaps_out_put(GByteArray *out);

void mig_bitmaps_out_cleanup(void);

/* A BITMAP record: the bitmap is created here, disabled. */
bool mig_bitmaps_in_load(const uint8_t *p, uint32_t len, Error **errp);

/* The disks hold every write: enable those that were enabled. */
void mig_bitmaps_in_activate(void);

#endif /* MIGRATION_BLOCK_H */
