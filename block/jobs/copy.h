/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine under the block jobs: copies what a dirty bitmap
 * marks from a source node to a target node, a bounded number of
 * operations at a time.  The job that owns it keeps only its policy:
 * what is dirty, where the data goes, what an error means and what
 * happens when the engine runs dry.
 *
 * An operation takes up to @chunk bytes of the bitmap (clearing them)
 * and walks them in requests of at most @step bytes.  For each request
 * it may ask
 *
 *   - whether a layer from @alloc_top down to @alloc_base (exclusive)
 *     holds the range (allocation skipping: stream and commit copy only
 *     what the layers they remove hold);
 *   - whether the source reads zeroes there (zero detection: a zero
 *     write, or nothing when the target already reads zeroes);
 *   - with @guest_wins (source and target are one node, stream), for a
 *     range lock on the target, under which it asks whether the target
 *     now holds the range itself: a guest write that got there first
 *     is never overwritten by older data from below;
 *
 * and then reads the source and writes the target.  A failed request
 * goes to the owner's error hook, which sends the job's on-error
 * policy and says whether the range stays dirty (to be retried) or is
 * given up.  Once no operation is busy and either nothing is dirty or
 * the owner's may_run hook says no, the idle hook runs: the owner
 * finishes, pauses or converges from there.
 *
 * With a BlockJob, requests count as its I/O (block_job_io_begin/end),
 * copies are paced by its speed limit (QEMU's: a copy goes out, the
 * delay it causes is waited before the next one; a waiting operation
 * holds no I/O), and its progress is the done prefix of the range, as a
 * job that copies front to back reports it, or with
 * BLOCK_COPY_PROGRESS_COPIED the bytes written (data and zero writes,
 * copy-before-write ones too) with what is dirty or taken and not done
 * as the remainder, as QEMU's backup reports it.
 */
#ifndef BLOCK_JOBS_COPY_H
#define BLOCK_JOBS_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "block/core/block.h"
#include "block/jobs/blockjob.h"
#include "util/hbitmap.h"

typedef struct BlockCopy BlockCopy;

typedef enum {
    BLOCK_COPY_ZEROES_COPY,     /* zeroes are data like any other */
    BLOCK_COPY_ZEROES_WRITE,    /* the source reads zeroes: zero write */
    BLOCK_COPY_ZEROES_SKIP,     /* ... nothing (the target reads zeroes) */
} BlockCopyZeroes;

typedef enum {
    BLOCK_COPY_PROGRESS_PREFIX, /* the done prefix (front to back) */
    BLOCK_COPY_PROGRESS_COPIED, /* bytes written + what is left (backup) */
} BlockCopyProgress;

typedef enum {
    BLOCK_COPY_ERROR_RETRY,     /* the range stays dirty */
    BLOCK_COPY_ERROR_SKIP,      /* the range counts as done */
} BlockCopyErrorResult;

typedef struct {
    /* May new requests go out?  (Not when paused, cancelled, failed.) */
    bool (*may_run)(void *opaque);
    /* A request failed with @ret (negative errno) reading or writing. */
    BlockCopyErrorResult (*error)(void *opaque, bool is_read, int ret);
    /* Optional: the engine waits for the speed limit. */
    void (*sleeping)(void *opaque);
    /*
     * Nothing is busy and nothing more will go out (clean, or may_run
     * said no).  May free the owner and the engine.
     */
    void (*idle)(void *opaque);
} BlockCopyOps;

typedef struct {
    BlockJob *job;              /* NULL: no speed limit, I/O, progress */
    BlockNode *source;
    BlockNode *target;
    bool alloc_check;           /* copy only what alloc_top.. holds */
    BlockNode *alloc_top;       /* NULL: nothing is allocated */
    BlockNode *alloc_base;      /* exclusive; NULL: the whole chain */
    bool guest_wins;            /* source == target: lock, look again */
    bool align_copies;          /* copy whole granules around the data */
    BlockCopyZeroes zeroes;
    uint64_t len;               /* bytes the bitmap covers */
    uint64_t granularity;       /* of the bitmap, a power of two */
    uint64_t chunk;             /* bytes an operation takes */
    uint64_t step;              /* bytes a request copies at most */
    unsigned max_ops;           /* operations at once */
    unsigned max_ops_limited;   /* ... under a speed limit (0: max_ops);
                                   1 paces as QEMU: operations that start
                                   together all pass the limit before the
                                   first one's copy is counted */
    BlockCopyProgress progress;
    /*
     * The owner's bitmap of @len bytes at @granularity, to use as the
     * engine's (a job's anonymous bitmap, which the queries show); it
     * stays the owner's.  NULL: the engine's own.
     */
    HBitmap *dirty;
    const BlockCopyOps *ops;
    void *opaque;
} BlockCopyConfig;

/* A clean engine (nothing dirty, nothing started); @cfg is copied. */
BlockCopy *block_copy_new(const BlockCopyConfig *cfg);

/* No operation may be busy (the owner is idle). */
void block_copy_free(BlockCopy *bc);

/* Mark [@off, @off + @len) to be copied (whole granules). */
void block_copy_set_dirty(BlockCopy *bc, uint64_t off, uint64_t len);

/* Bytes still to copy, not counting those of busy operations. */
uint64_t block_copy_dirty_bytes(const BlockCopy *bc);

/* Operations busy (in flight or waiting for the speed limit). */
unsigned block_copy_busy(const BlockCopy *bc);

/* Bytes written to the target so far (data and zero writes). */
uint64_t block_copy_written(const BlockCopy *bc);

/* [0, result) is copied or skipped, and not dirty again. */
uint64_t block_copy_done_prefix(const BlockCopy *bc);

/*
 * Start operations while may_run allows and work is dirty; then, if
 * nothing is busy, the idle hook.  Safe from inside the engine's own
 * callbacks (the outermost call does the work).  Callers touch nothing
 * of the owner after it: the idle hook may have freed it.
 */
void block_copy_kick(BlockCopy *bc);

/* block_copy_kick() from the main loop, for hooks inside other code. */
void block_copy_kick_later(BlockCopy *bc);

/*
 * End a wait for the speed limit at once (a pause, a cancel, a new
 * speed): waiting operations look at may_run again, through a kick.
 * False when nothing was waiting (and nothing was done); true when it
 * kicked, after which the owner may be gone.
 */
bool block_copy_wake(BlockCopy *bc);

/* The same, with the kick from the main loop (inside the job core). */
void block_copy_wake_later(BlockCopy *bc);

/*
 * Copy-before-write: what is dirty in [@off, @off + @len) (whole
 * granules, cut at the length) is copied now, ahead of the background
 * order, before a guest write lets new data in there.  The request
 * takes the range's dirty granules at once (the background leaves them
 * alone from then on), cuts busy operations back to their requests in
 * flight, waits for those and for earlier overlapping requests of its
 * own kind (which copy what they took: nothing is copied twice), then
 * copies, ignoring may_run and the speed limit (the copies still count
 * against it).  @cb gets 0 once nothing in the range is dirty or being
 * copied, or the first failed request's negative errno (what was not
 * copied is dirty again; the error hook is not called: the owner's
 * copy-before-write policy decides).  @cb may run before this returns;
 * the request counts as busy until it has run.
 */
void block_copy_range_now(BlockCopy *bc, uint64_t off, uint64_t len,
                          void (*cb)(void *opaque, int ret), void *opaque);

/*
 * Hand the engine to another owner: @job (NULL: none; its speed limit,
 * I/O and progress, which counts from here), @ops and @opaque replace
 * the configuration's (a job taking over its filter's engine, and
 * giving it back when it ends).  A job takes an engine where nothing
 * is busy; giving it back may be done at any time (requests in flight
 * then no longer count as the old job's I/O).
 */
void block_copy_set_owner(BlockCopy *bc, BlockJob *job,
                          const BlockCopyOps *ops, void *opaque);

/* Nothing in [@off, @off + @len) is dirty or being copied. */
bool block_copy_range_clean(const BlockCopy *bc, uint64_t off, uint64_t len);

#endif /* BLOCK_JOBS_COPY_H */
