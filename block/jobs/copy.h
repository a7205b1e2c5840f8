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
 * and then reads the source and writes the target, or, without a
 * target (sink mode), hands what it read to the owner's sink hook,
 * which consumes the buffer (block migration puts it in its stream);
 * a range that reads zeroes goes to the sink as a zero run with
 * BLOCK_COPY_ZEROES_WRITE, and @lock_source then holds the range lock
 * from the status queries to the end of the read.  An owner with an
 * admit hook starts an operation only when the hook lets its area in
 * (backpressure: room in its output, a bandwidth window), and learns
 * from its retire hook how much of that area went on.  A failed request
 * goes to the owner's error hook, which sends the job's on-error
 * policy and says whether the range stays dirty (to be retried) or is
 * given up.  Once no operation is busy and either nothing is dirty or
 * the owner's may_run hook says no, the idle hook runs: the owner
 * finishes, pauses or converges from there.
 *
 * With a BlockJob, requests count as its I/O (block_job_io_begin/end),
 * copies are paced by its speed limit (QEMU's: a copy goes out, the
 * delay it causes is waited before the next one; a waiting operation
 * holds no I/O; operations running at once pass the limit one after
 * the other, each once the one before it has counted its copy or
 * found nothing to copy, unless @rate_burst), and its progress is one
 * of
 *
 *   - PREFIX: the done prefix of the range, as a job that copies front
 *     to back reports it (stream, commit);
 *   - WRITTEN: the bytes written to the target (copy-before-write ones
 *     too), as QEMU's backup reports it;
 *   - DONE: the bytes done (copied, zeroed or found clean; a range
 *     copied again counts again), as QEMU's mirror reports it;
 *
 * the last two with what is left (block_copy_remaining(): dirty, taken
 * and not done, write-blocking writes on their way) as the remainder.
 *
 * A granule is taken by at most one operation, copy-before-write range
 * or write-blocking write at a time (copy-wait.c): what wants a taken
 * granule waits for it in one queue, in order, so two copies of one
 * granule never race to the target.  With @lock_source (mirror) a
 * request takes a range lock on the source first and clears its dirty
 * bits only under it (clear after lock): a guest write in flight is
 * waited for and its data read, one that comes later waits for the read
 * and marks the range dirty again, and that mark survives the copy.
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
    BLOCK_COPY_PROGRESS_PREFIX,  /* the done prefix (front to back) */
    BLOCK_COPY_PROGRESS_WRITTEN, /* bytes written + what is left (backup) */
    BLOCK_COPY_PROGRESS_DONE,    /* bytes done + what is left (mirror) */
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
    /*
     * Sink mode (no target; required there): [@off, @off + @len) of the
     * source is @buf (the engine's, valid during the call only), or,
     * @buf NULL, reads zeroes.  0, or a negative errno that goes to the
     * error hook as a failed write.  Must not call into the engine.
     */
    int (*sink)(void *opaque, uint64_t off, uint64_t len, const void *buf);
    /*
     * Optional: may a background operation take [@off, @off + @len)
     * (a free dirty area, at most a chunk) now?  False leaves it dirty
     * and starts no operation until the next kick.  Not asked for
     * copy-before-write ranges.  Must not call into the engine.
     */
    bool (*admit)(void *opaque, uint64_t off, uint64_t len);
    /*
     * Optional: a background operation is over (done, cut short by
     * may_run or an error): of the @len bytes it took, @copied went to
     * the target or the sink (data and zero runs; the rest was skipped
     * or is dirty again).  Must not call into the engine.
     */
    void (*retire)(void *opaque, uint64_t len, uint64_t copied);
} BlockCopyOps;

typedef struct {
    BlockJob *job;              /* NULL: no speed limit, I/O, progress */
    BlockNode *source;
    BlockNode *target;          /* NULL: sink mode (the ops' sink) */
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
    BlockCopyProgress progress;
    bool lock_source;           /* range lock on the source until the
                                   read is done, dirty bits cleared under
                                   it (mirror) */
    int zero_flags;             /* of the zero writes (BDRV_REQ_MAY_UNMAP) */
    uint64_t zero_align;        /* zero writes only in whole units of it
                                   (the target's clusters), else data */
    uint64_t area_align;        /* an operation takes whole units of it
                                   (a target that must not get part of a
                                   cluster written) */
    bool sweep;                 /* take areas from a cursor that wraps,
                                   not the lowest first: what the guest
                                   dirties behind it waits for the next
                                   round (mirror under a guest writer) */
    bool rate_burst;            /* operations pass the speed limit
                                   together, counted once they copy
                                   (QEMU's mirror: a buffer's worth goes
                                   out before the first delay) */
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

/*
 * Bytes written to the target so far (data and zero writes), or handed
 * to the sink.
 */
uint64_t block_copy_written(const BlockCopy *bc);

/* Is the granule at @off dirty? */
bool block_copy_is_dirty(const BlockCopy *bc, uint64_t off);

/* Bytes taken from the bitmap and not done yet (busy operations). */
uint64_t block_copy_in_flight_bytes(const BlockCopy *bc);

/*
 * What is left: dirty, in flight and held by write-blocking writes
 * (the job's remainder with the WRITTEN and DONE progress).
 */
uint64_t block_copy_remaining(const BlockCopy *bc);

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
 * cuts busy operations over the range back to their requests in
 * flight, waits for those and for earlier overlapping requests (the
 * background takes nothing there meanwhile), takes the range and copies
 * what is dirty in it (nothing is copied twice), ignoring may_run and
 * the speed limit (the copies still count against it).  @cb gets 0 once nothing in the range is dirty or being
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

/*
 * Write-blocking: the guest wrote @buf to [@off, @off + @len) of the
 * source (done, successfully).  Once no operation, copy-before-write
 * range or earlier write has the granules it touches (new operations
 * keep off them meanwhile), write the same to the target with @flags
 * and clear the granules the write covers whole; a partial granule
 * keeps the dirty bit the owner's notifier gave it.  @cb(@opaque, ret)
 * with the target's result, after a failure has gone through the error
 * hook (the range is then dirty again), and after a kick from the main
 * loop was asked for (the owner may end in @cb).  @buf must stay valid
 * until @cb; NULL: the guest wrote zeroes (a zero write, @flags as for
 * one).  The write is counted in block_copy_remaining() and the
 * progress while it is on its way; it is not paced by the speed limit.
 * Not in sink mode.
 */
void block_copy_write_blocking(BlockCopy *bc, uint64_t off, uint64_t len,
                               const void *buf, int flags, BdrvCb *cb,
                               void *opaque);

/* Write-blocking writes not finished yet. */
unsigned block_copy_active_writes(const BlockCopy *bc);

#endif /* BLOCK_JOBS_COPY_H */
