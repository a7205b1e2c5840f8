/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What mirror.c (the job), mirror-start.c (the commands and the job's
 * set-up) and mirror-active.c (write-blocking and its automatic switch)
 * share: the job's state and the functions they call across.  Only
 * those three include it.
 */
#ifndef BLOCK_JOBS_MIRROR_INT_H
#define BLOCK_JOBS_MIRROR_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "block/core/block-int.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/copy.h"

#define MAX_IN_FLIGHT 16
#define MAX_IO_BYTES (1024 * 1024ull)
#define DEFAULT_BUF_SIZE (MAX_IN_FLIGHT * MAX_IO_BYTES)
/* active commit's dirty granule (qmpd's commit always used 64 KiB) */
#define COMMIT_GRANULARITY (64 * 1024ull)
/* QEMU zeroes a target in requests of up to INT_MAX bytes */
#define ZERO_CHUNK (1ull << 30)
/* what the job takes on mirror_top: the source is not resized under it */
#define MIRROR_JOB_PERM BLK_PERM_CONSISTENT_READ
#define MIRROR_JOB_SHARED (BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE \
                           | BLK_PERM_WRITE_UNCHANGED)
/* QEMU's BLOCK_JOB_SLICE_TIME: how often a ready job looks for dirt */
#define READY_SLICE_NS (100 * 1000 * 1000ll)
/* __com.qmpd_auto-write-blocking: sample period and window (see above) */
#define AUTO_WB "__com.qmpd_auto-write-blocking"
#define CONVERGE_SAMPLE_MS 100
#define CONVERGE_SAMPLES 10
/* pace windows in a row the guest must win (see pace_says_switch()) */
#define PACE_LOST_WINDOWS 2

typedef enum {
    MIRROR_SYNC_TOP,
    MIRROR_SYNC_FULL,
    MIRROR_SYNC_NONE,
} MirrorSync;

/* What becomes of the target's backing (QEMU's BlockMirrorBackingMode). */
typedef enum {
    MIRROR_LEAVE_BACKING_CHAIN,     /* blockdev-mirror: as it is */
    MIRROR_SOURCE_BACKING_CHAIN,    /* set to the source's (or base) */
    MIRROR_OPEN_BACKING_CHAIN,      /* open what its header names */
} MirrorBackingMode;


typedef struct MirrorJob MirrorJob;

struct MirrorJob {
    BlockJob common;
    BlockNode *src;             /* referenced */
    BlockNode *filter;          /* mirror_top, in src's place until the
                                   job exits; referenced */
    BlockNode *target;          /* referenced */
    BlockNode *base;            /* copy what is allocated above it (NULL:
                                   the whole chain); referenced */
    BlockNode *new_backing;     /* MIRROR_SOURCE_BACKING_CHAIN; ref'd */
    MirrorBackingMode backing_mode;
    bool is_none;
    bool zero_target;
    bool write_blocking;
    char *replaces;
    BlockNode *to_replace;      /* looked up by complete; referenced */
    uint64_t granularity;
    uint64_t buf_size;
    uint64_t op_max;            /* bytes per copy request */
    uint64_t cow_cluster;       /* target cluster, when partial writes to
                                   its clusters would lose backing data */
    uint64_t cow_align;         /* cow_cluster if larger than a granule */
    uint64_t target_cluster;
    bool unmap;
    bool zero_ok;               /* the target zeroes by deallocating */
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;
    bool commit;                /* active commit: the source is held as
                                   a backend too, a short target grows,
                                   each copy counts for the speed when
                                   it is issued */
    uint64_t len;

    BlockCopy *bc;              /* the copy engine: dirty granules, the
                                   copies, write-blocking writes */
    unsigned zero_ops;          /* the zeroing phase's requests */
    uint64_t zero_in_flight;    /* ... and their bytes */
    unsigned active_count;      /* guest writes held (not in in_flight:
                                   a pause need not wait for them) */
    bool hook;
    bool notifier;

    /* AUTO_WB: the convergence watch, until it switches to blocking */
    bool auto_wb;
    guint converge_source;      /* the CONVERGE_SAMPLE_MS timer */
    unsigned converge_samples;  /* samples since the window started */
    uint64_t converge_min;      /* lowest left-to-copy in the window */
    uint64_t converge_mark;     /* @copied when the window started */
    uint64_t guest_written;     /* bytes the guest wrote to the source */
    unsigned pace_samples;      /* samples in the current pace window */
    unsigned pace_lost;         /* pace windows in a row the guest won */
    uint64_t pace_copied;       /* @copied when the window started */
    uint64_t pace_written;      /* @guest_written when it started */

    bool started;               /* the barrier after the notifier passed */
    bool in_run;
    bool done;                  /* finishing: no more pumping */
    int ret;                    /* the reported error that ends the job */
    int final_ret;
    bool need_flush;            /* the target was written since a flush */
    uint64_t flushed;           /* the engine's bytes written then */
    int64_t ready_remaining;    /* remaining when the READY flush began */
    guint kick_source;


    uint64_t zero_off;          /* the zeroing phase */
    bool zeroing_done;
    uint64_t scan_off;          /* the allocation scan */
    bool scan_busy;
    bool scan_done;

    bool should_complete;
    bool final_wait;            /* the whole-source lock was asked for */
    BdrvRangeLock *final_lock;
    bool drained;               /* final_lock kept until prepare/abort */
    bool exited;                /* prepare or abort ran */
};

/* mirror.c */
extern const JobDriver mirror_job_driver;
extern const JobDriver mirror_commit_job_driver;

/* Issue what may go out now, or finish; main loop, not from a hook. */
void mirror_pump(MirrorJob *s);

/* mirror_pump() from the main loop: for hooks inside other code. */
void mirror_kick_later(MirrorJob *s);

/* A failed request: on-source-error (@is_read) or on-target-error. */
void mirror_error_action(MirrorJob *s, bool is_read, int ret);

/* QEMU's bdrv_recurse_can_replace(): @to is @from or below its filters. */
bool mirror_can_replace(BlockNode *from, BlockNode *to);

/* What is left to copy: the job's remaining bytes. */
void mirror_update_remaining(MirrorJob *s);

/* mirror-active.c */

/* Install the write hook: guest writes go to the target too. */
void mirror_active_begin(MirrorJob *s);

/*
 * __com.qmpd_auto-write-blocking: start watching whether the copy
 * converges; a new window (the count shrank to nothing); stop.
 */
void mirror_converge_start(MirrorJob *s);
void mirror_converge_restart(MirrorJob *s);
void mirror_converge_stop(MirrorJob *s);

#endif /* BLOCK_JOBS_MIRROR_INT_H */
