/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the copy engine's two halves share: copy.c runs the background
 * operations (the request chain, pacing, progress), copy-wait.c holds
 * the granules they take and the requests that wait for granules to be
 * given back (copy-before-write ranges and write-blocking writes).
 */
#ifndef BLOCK_JOBS_COPY_INT_H
#define BLOCK_JOBS_COPY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "block/core/block.h"
#include "block/jobs/copy.h"
#include "util/hbitmap.h"

typedef struct CopyNow CopyNow;
typedef struct CopyWait CopyWait;

/*
 * A request for granules [lo, hi) to itself: it waits until none of
 * them is taken and no earlier request wants any of them, then they
 * are taken for it and go() runs.
 */
struct CopyWait {
    uint64_t lo;
    uint64_t hi;
    void (*go)(CopyWait *w);
};

typedef struct {
    BlockCopy *bc;
    uint64_t start;             /* taken: [start, end); start moves up as
                                   the operation gives done granules back */
    uint64_t cur;               /* first byte not done */
    uint64_t end;
    uint64_t off;               /* the current request */
    uint64_t n;
    uint8_t *buf;
    BdrvRangeLock *lock;
    bool busy;
    bool parked;                /* waits for the speed limit */
    uint64_t cleared_end;       /* [cur, cleared_end) is not dirty: ours */
    CopyNow *now;               /* copies for block_copy_range_now() */
    uint64_t taken_len;         /* the area it took, for the retire hook */
    uint64_t copied;            /* ... of which went on */
} CopyOp;

struct BlockCopy {
    BlockCopyConfig cfg;
    HBitmap *dirty;
    HBitmap *taken;             /* granules an operation, range or write has */
    CopyOp *op;                 /* cfg.max_ops of them */
    unsigned busy;
    uint64_t written;           /* bytes written to the target */
    uint64_t done;              /* ... copied, zeroed or found clean */
    uint64_t reported;          /* the job's progress counted so far */
    bool kicking;
    bool kick_again;
    bool unpark;                /* the speed-limit wait is over */
    guint kick_source;
    CopyOp *rate_holder;        /* passed the speed limit, not counted */
    GQueue waiting;             /* CopyWait *, in the order they came */
    bool retrying;
    bool retry_again;
    GQueue now;                 /* CopyNow *, waiting or copying */
    unsigned active_writes;     /* write-blocking writes not finished */
    uint64_t active_bytes;      /* ... their bytes */
    uint64_t cursor;            /* sweep: where the next area is looked for */
};

/* copy.c */
void block_copy_op_step(CopyOp *op);
void block_copy_report_progress(BlockCopy *bc);

/* copy-wait.c */

/*
 * Granules were given back: the waiting requests (bc->waiting, in their
 * order) that may go, go.  One may end before this returns, so callers
 * that are not inside a kick, or hold no busy count, must not touch
 * the engine after it unless nothing there can run the idle hook.
 */
void block_copy_waits_retry(BlockCopy *bc);

/* Give [@lo, @hi) back (whole granules); the caller retries or kicks. */
void block_copy_release(BlockCopy *bc, uint64_t lo, uint64_t hi);

/*
 * The area of at most a chunk a background operation would take next
 * (false: nothing dirty is free); nothing changes until it is taken.
 */
bool block_copy_find_area(const BlockCopy *bc, uint64_t *pstart,
                          uint64_t *plen);

/* Take the area block_copy_find_area() just found. */
void block_copy_take_area(BlockCopy *bc, uint64_t start, uint64_t len);

/* A copy-before-write operation's next area, or the request's end. */
bool block_copy_now_next(CopyOp *op);

/* ... its failed request: what it did not copy is dirty again. */
void block_copy_now_failed(CopyOp *op, int ret);

/* The lowest byte a copy-before-write request has and has not copied. */
uint64_t block_copy_now_low(const BlockCopy *bc);

/* Bytes copy-before-write requests have taken and not copied. */
uint64_t block_copy_now_bytes(const BlockCopy *bc);

#endif /* BLOCK_JOBS_COPY_INT_H */
