/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps attached to block nodes: what block-dirty-bitmap-add
 * creates for users (incremental backup) and what jobs create for
 * themselves (anonymous bitmaps, shown without a name by the queries, as
 * QEMU shows mirror's).  An enabled bitmap records every write, zero
 * write and discard that reaches its node's request layer, whichever
 * parent it came through.  Persistent bitmaps are stored by the node's
 * format driver (qcow2's bitmaps extension).
 *
 * Sizes follow QEMU: a bitmap covers the node's length rounded up to
 * 512 bytes, and its dirty count is dirty granules times the
 * granularity (a last, partial granule counts in full).
 */
#ifndef BLOCK_CORE_DIRTY_BITMAP_H
#define BLOCK_CORE_DIRTY_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "block/core/block.h"
#include "qapi/error.h"
#include "util/hbitmap.h"

typedef struct DirtyBitmap DirtyBitmap;

/* QEMU's limits (BDRV_BITMAP_MAX_NAME_SIZE, granularity bounds). */
#define DBITMAP_MAX_NAME_SIZE 1023
#define DBITMAP_MIN_GRANULARITY 512u

/* What dbitmap_check() refuses (QEMU's BDRV_BITMAP_* flags). */
enum {
    DBITMAP_CHECK_BUSY = 1,          /* used by a job or an export */
    DBITMAP_CHECK_RO = 2,            /* loaded read-only from an image */
    DBITMAP_CHECK_INCONSISTENT = 4,  /* left in use by a crash */
    DBITMAP_CHECK_DEFAULT = 7,       /* to modify or use it */
    DBITMAP_CHECK_ALLOW_RO = 5,      /* to read it or toggle recording */
};

/*
 * QEMU's default granularity for a new bitmap on @bn: the cluster size
 * clamped to [4 KiB, 64 KiB], or 64 KiB without one.
 */
uint32_t dbitmap_default_granularity(BlockNode *bn);

/*
 * A new, clean, enabled bitmap on @bn (@granularity a power of two of
 * at least 512).  @name NULL makes an anonymous bitmap (a job's own);
 * a named one must be unique on the node ("Bitmap already exists: x")
 * and at most 1023 bytes long.  Returns the bitmap, owned by the node
 * until dbitmap_release() or the node's close, or NULL.  Main loop only.
 */
DirtyBitmap *dbitmap_create(BlockNode *bn, uint32_t granularity,
                            const char *name, Error **errp);

/* Drop @bm from its node and free it (persistent ones are not removed
 * from the image: that is block-dirty-bitmap-remove's business). */
void dbitmap_release(DirtyBitmap *bm);

/* The bitmap named @name on @bn, or NULL. */
DirtyBitmap *dbitmap_find(BlockNode *bn, const char *name);

/*
 * QEMU's block_dirty_bitmap_lookup(): @node is a device or node name.
 * Fails with "Node 'x' not found" or "Dirty bitmap 'x' not found".
 * *@pbn (if not NULL) gets the node.
 */
DirtyBitmap *dbitmap_lookup(const char *node, const char *name,
                            BlockNode **pbn, Error **errp);

/*
 * Iterate over @bn's bitmaps, newest first: dbitmap_next(bn, NULL) is
 * the first, NULL after the last.  Do not release the current one.
 */
DirtyBitmap *dbitmap_next(BlockNode *bn, const DirtyBitmap *prev);

/* Refuse what @flags names, with QEMU's messages; true if allowed. */
bool dbitmap_check(const DirtyBitmap *bm, unsigned flags, Error **errp);

const char *dbitmap_name(const DirtyBitmap *bm);    /* NULL: anonymous */
BlockNode *dbitmap_node(const DirtyBitmap *bm);
uint32_t dbitmap_granularity(const DirtyBitmap *bm);
uint64_t dbitmap_size(const DirtyBitmap *bm);
/* Dirty bytes as QEMU counts them: dirty granules times granularity. */
uint64_t dbitmap_count(const DirtyBitmap *bm);

/* "recording": enabled, or frozen with a recording successor. */
bool dbitmap_enabled(const DirtyBitmap *bm);
void dbitmap_set_enabled(DirtyBitmap *bm, bool enabled);
bool dbitmap_busy(const DirtyBitmap *bm);
void dbitmap_set_busy(DirtyBitmap *bm, bool busy);
bool dbitmap_persistent(const DirtyBitmap *bm);
void dbitmap_set_persistent(DirtyBitmap *bm, bool persistent);
bool dbitmap_inconsistent(const DirtyBitmap *bm);
/* Inconsistent bitmaps are also disabled and hold no data. */
void dbitmap_set_inconsistent(DirtyBitmap *bm);
bool dbitmap_readonly(const DirtyBitmap *bm);
void dbitmap_set_readonly(DirtyBitmap *bm, bool readonly);

/*
 * The bits, for jobs (backup's incremental sync, mirror's own bitmap):
 * byte ranges as util/hbitmap.h.  Borrowed; valid until the bitmap is
 * released, cleared with a backup, restored or truncated.
 */
HBitmap *dbitmap_hbitmap(DirtyBitmap *bm);

void dbitmap_set_range(DirtyBitmap *bm, uint64_t off, uint64_t len);
void dbitmap_reset_range(DirtyBitmap *bm, uint64_t off, uint64_t len);

/*
 * Clear @bm.  With @backup, *@backup takes the old bits (for a
 * transaction's abort: dbitmap_restore()); otherwise they are freed.
 */
void dbitmap_clear(DirtyBitmap *bm, HBitmap **backup);

/* Put @backup (taken) back as @bm's bits; undoes clear and merge. */
void dbitmap_restore(DirtyBitmap *bm, HBitmap *backup);

/*
 * A job that uses @bm (backup's sync=incremental/bitmap) freezes it, as
 * QEMU's bdrv_dirty_bitmap_create_successor(): @bm keeps its bits as
 * they are and is busy; writes from now on go to a new anonymous
 * bitmap of the same granularity (the successor; it records when @bm
 * did, and the queries show @bm recording through it).  Fails (and
 * changes nothing) when @bm is busy.
 */
bool dbitmap_freeze(DirtyBitmap *bm, Error **errp);

/*
 * End the freeze.  Abdicate (@keep_old false): @bm's frozen bits go, and
 * @bm is what the successor recorded, in the successor's place in the
 * node's list (QEMU: the successor takes the name).  Reclaim (@keep_old
 * true): the successor's bits are merged into @bm.  Either way @bm
 * records as before the freeze and is no longer busy.
 */
void dbitmap_thaw(DirtyBitmap *bm, bool keep_old);

/*
 * QEMU's bdrv_merge_dirty_bitmap(): @dst |= @src, after checking @dst
 * (DEFAULT), @src (ALLOW_RO) and that both cover the same size; the
 * granularities may differ.  With @backup, *@backup gets @dst's old bits.
 */
bool dbitmap_merge(DirtyBitmap *dst, const DirtyBitmap *src,
                   HBitmap **backup, Error **errp);

/*
 * The validation merge() does, without merging (a transaction's
 * prepare, or checking every source before touching the target).
 */
bool dbitmap_merge_check(const DirtyBitmap *dst, const DirtyBitmap *src,
                         Error **errp);

/*
 * QEMU's block_dirty_bitmap_add() / _remove() as the QMP commands and
 * transaction actions run them.  dbitmap_qmp_add() returns the new
 * bitmap or NULL.  Removal may wait for the image's metadata writeback;
 * @cb gets NULL or the error (taken), from the main loop or at once.
 */
DirtyBitmap *dbitmap_qmp_add(const char *node, const char *name,
                             bool has_granularity, uint32_t granularity,
                             bool persistent, bool disabled, Error **errp);

/*
 * block-dirty-bitmap-merge with its arguments @args (borrowed); with
 * @backup, *@backup gets the target's old bits (dbitmap_restore()).
 * The target is looked up again by the caller to restore it.
 */
bool dbitmap_qmp_merge(const json_t *args, HBitmap **backup, Error **errp);

typedef void DbitmapDoneCb(void *opaque, Error *err);
void dbitmap_qmp_remove(const char *node, const char *name,
                        DbitmapDoneCb *cb, void *opaque);

/*
 * BlockDirtyInfo for each of @bn's bitmaps, newest first (a new
 * reference), or NULL when it has none: query-block and
 * query-named-block-nodes omit "dirty-bitmaps" then.
 */
json_t *dbitmap_query(BlockNode *bn);

/* @bn's length changed: its bitmaps follow (QEMU's truncate). */
void dbitmap_node_resized(BlockNode *bn);

/* @bn is being freed: release every bitmap it has (graph.c). */
void dbitmap_node_free(BlockNode *bn);

#endif /* BLOCK_CORE_DIRTY_BITMAP_H */
