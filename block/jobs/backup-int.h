/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the backup job (backup.c, its policy on the copy engine) and its
 * commands (backup-qmp.c: the checks, drive-backup's target, the
 * transaction actions) share: the job's state, set up by the commands
 * and run by the job.
 */
#ifndef BLOCK_JOBS_BACKUP_INT_H
#define BLOCK_JOBS_BACKUP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "block/core/dirty-bitmap.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/copy.h"
#include "util/hbitmap.h"

/* QEMU's BitmapSyncMode. */
typedef enum {
    BACKUP_BITMAP_ON_SUCCESS,
    BACKUP_BITMAP_NEVER,
    BACKUP_BITMAP_ALWAYS,
} BackupBitmapMode;

typedef struct BackupJob {
    BlockJob common;
    BlockNode *src;             /* referenced */
    BlockNode *target;          /* referenced */
    bool sync_none;
    bool zero_ok;               /* zeroes may go as zero writes: the
                                   target has no backing that a zero
                                   write could let show through */
    BlockNode *top_base;        /* sync top: the source's backing (not
                                   referenced: the source holds it) */
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;
    uint64_t len;
    uint64_t cluster;
    uint64_t max_chunk;         /* x-perf: a background copy's bytes */
    int64_t max_workers;        /* x-perf: background copies at once */

    /*
     * incremental/bitmap: the user's bitmap, frozen during the job (see
     * dbitmap_freeze()); at the end bitmap-mode decides whether its
     * bits (and, for always after a failure, what was not copied) stay.
     */
    DirtyBitmap *bitmap;
    bool sync_bitmap;           /* sync=bitmap: copy only its bits */
    BackupBitmapMode bitmap_mode;

    BlockNode *filter;          /* copy-before-write over the source,
                                   until the job is cleaned; referenced */
    HBitmap *copy;              /* the filter's copy bitmap, its engine's:
                                   point-in-time data not copied yet */
    BlockCopy *bc;              /* the filter's engine, the job's while
                                   it runs */

    uint64_t scan_off;          /* sync top: the allocation scan */
    bool scan_done;
    bool scanning;              /* a scan request is out */
    bool in_scan;               /* ... issued from scan_step() */
    bool started;               /* the start barrier was granted */
    bool finishing;
    int drained_ret;            /* a cancelled job's, once its filter drained */
    int round_err;              /* the round's first error, not applied
                                   yet (0: none) */
    bool round_err_read;
    int ret;                    /* the reported error that ends the job */
} BackupJob;

extern const JobDriver backup_driver;

/*
 * The engine's sizes for a backup copying @chunk bytes at a time with
 * up to @workers copies (x-perf), for cbw_append().
 */
BlockCopyConfig backup_copy_template(uint64_t chunk, int64_t workers);

/* The job takes its filter's engine (at its creation: nothing busy). */
void backup_take_engine(BackupJob *s);

#endif
