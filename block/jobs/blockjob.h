/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block jobs: jobs that work on a node of the graph (stream, commit,
 * mirror, backup).  On top of the job core they add what QEMU 7.2's
 * block jobs have: the node they are named after, a speed limit, an
 * error policy with its io-status and BLOCK_JOB_ERROR, op blockers that
 * make the nodes they use "busy" for other jobs, the block-job-* verbs
 * and query-block-jobs, and the BLOCK_JOB_* events.
 *
 * A driver embeds BlockJob first (BlockJob embeds Job first) and sets
 * .block_job = true and .event_data = block_job_event_data in its
 * JobDriver.  The copy loop of a driver:
 *
 *   - keeps its requests in flight counted with block_job_io_begin/end
 *     (query-block-jobs' "busy", and what a pause waits for);
 *   - before issuing N more bytes asks block_job_ratelimit_ns(job, N) and,
 *     when it returns a delay, waits with block_job_sleep_ns();
 *   - between batches, when job_should_pause(), stops issuing and calls
 *     job_pause_point() once nothing is in flight; it is resumed through
 *     JobDriver.resume;
 *   - when job_is_cancelled(), stops issuing and, once nothing is in
 *     flight, calls job_completed(job, -ECANCELED, NULL) (or 0 for a
 *     ready mirror cancelled without force);
 *   - on an I/O error calls block_job_error_action(): IGNORE (go on, the
 *     range stays to be done), REPORT (end the job: job_completed with
 *     the error), STOP (the job was paused: retry the range after
 *     resume);
 *   - reports progress with job_progress_update/set_remaining.
 */
#ifndef BLOCK_JOBS_BLOCKJOB_H
#define BLOCK_JOBS_BLOCKJOB_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "block/core/block.h"
#include "block/jobs/job-int.h"

typedef struct BlockJob {
    Job job;
    BlockNode *bs;              /* the node named by "device"; referenced */
    int64_t speed;              /* bytes per second, 0: unlimited */
    int64_t slice_start_ns;     /* rate limit: current 100 ms slice */
    uint64_t slice_bytes;       /* bytes issued in it */
    const char *io_status;      /* "ok", "failed", "nospace" */
    unsigned in_flight;         /* requests the driver has issued */
    guint sleep_source;         /* block_job_sleep_ns() timer */
    gint64 wait_until_ns;       /* block_job_rate_wait(): 0 when none */
    int64_t wait_speed;         /* the speed the wait was computed for */
    GPtrArray *nodes;           /* BlockNode *: blocked for other jobs */
    struct BlockCopy *copy;     /* its copy engine (copy.h), woken by the
                                   speed limit's sleep */
} BlockJob;

/*
 * Create a block job on @bs.  @job_id NULL means QEMU's default, the
 * name of the backend whose root @bs is ("Invalid job ID ''" when there
 * is none).  Fails (and creates nothing) when @bs is blocked by another
 * job: "Node 'x' is busy: block device is in use by block job: stream".
 * A negative @speed fails after the job was created, as in QEMU (the
 * created/null events are sent).  On success @bs is blocked by the job;
 * block other nodes the job uses with block_job_add_node().  The caller
 * then calls job_start().
 */
void *block_job_create(const char *job_id, const JobDriver *drv,
                       BlockNode *bs, int64_t speed, bool auto_finalize,
                       bool auto_dismiss, Error **errp);

/*
 * block_job_create() with the arguments every QEMU job command has
 * (job-id, speed, auto-finalize, auto-dismiss) taken from @args.
 */
void *block_job_create_args(const json_t *args, const JobDriver *drv,
                            BlockNode *bs, Error **errp);

/* Block @bn for other jobs while this one exists (referenced). */
bool block_job_add_node(BlockJob *bj, BlockNode *bn, Error **errp);

/*
 * The job lets go of @bn (blocked by it, or the node it was created
 * on), as QEMU's block_job_remove_all_bdrv() before its graph changes.
 */
void block_job_drop_node(BlockJob *bj, BlockNode *bn);

/* Is @bn in use by a block job?  Sets QEMU's "is busy" error. */
bool bdrv_op_is_blocked(BlockNode *bn, Error **errp);

/*
 * Block @bn for jobs and the operations that ask bdrv_op_is_blocked()
 * for as long as something other than a job uses it (referenced):
 * "Node 'x' is busy: @reason".  @reason is a static string, which
 * bdrv_op_unblock() matches by address.
 */
void bdrv_op_block(BlockNode *bn, const char *reason);
void bdrv_op_unblock(BlockNode *bn, const char *reason);

/*
 * Is @bn blocked by a block job (in QEMU, one of the job's children)
 * rather than by something else?  For QEMU's "is it a root node".
 */
bool bdrv_op_blocked_by_job(const BlockNode *bn);

/* The block job with id @id; DeviceNotActive "Block job 'x' not found". */
BlockJob *block_job_get(const char *id, Error **errp);

/*
 * Rate limiting: the delay in ns before @bytes more may be issued (0:
 * now).  The bytes are accounted either way.
 */
uint64_t block_job_ratelimit_ns(BlockJob *bj, uint64_t bytes);

/*
 * The speed limit as QEMU applies it to mirror and commit: a request
 * goes out at once (block_job_rate_account() its bytes), and the delay
 * it causes is waited before the next one.  block_job_rate_wait() is
 * true when such a wait is due: it arms a sleep calling @wake (in
 * slices of at most 100 ms, so a pause or cancel is noticed) and the
 * caller stops issuing; a changed speed ends the wait.
 */
void block_job_rate_account(BlockJob *bj, uint64_t bytes);
bool block_job_rate_wait(BlockJob *bj, void (*wake)(BlockJob *));

/* Call @cb(@bj) after @ns, from the main loop (cancelled by job free). */
void block_job_sleep_ns(BlockJob *bj, uint64_t ns, void (*cb)(BlockJob *));

void block_job_io_begin(BlockJob *bj);
void block_job_io_end(BlockJob *bj);

/*
 * Grow @base to @len bytes for a commit (QEMU's commit and active
 * commit truncate a base smaller than top): drained and flushed first,
 * counted as the job's I/O.  @cb(@bj) once it is done; on failure the
 * job completes with QEMU's message instead (the caller's pump must not
 * run before @cb: it has not started).
 */
void block_job_grow_base(BlockJob *bj, BlockNode *base, uint64_t len,
                         void (*cb)(BlockJob *bj));

/*
 * An I/O error @error (negative errno) in a read (@is_read) or write:
 * what @on_err says to do (enospc and auto: stop on ENOSPC, else
 * report).  Sends BLOCK_JOB_ERROR with the action unless the job is
 * cancelled; for STOP sets the io-status ("nospace" or "failed") and
 * pauses the job as a user pause would, so that block-job-resume or
 * job-resume continues it (and sets the io-status back to "ok").
 */
BlockErrorAction block_job_error_action(BlockJob *bj, BlockdevOnError on_err,
                                        bool is_read, int error);

/* BLOCK_JOB_COMPLETED/CANCELLED/READY data (JobDriver.event_data). */
json_t *block_job_event_data(Job *job);

/* Release the nodes and the reference (JobDriver.free calls it). */
void block_job_free(BlockJob *bj);

/*
 * Start a job whose command opens or creates image files (drive-mirror,
 * drive-backup): @start(@args, &opened, errp) runs once images that are
 * still closing have released their locks; on failure a node it opened
 * (*opened) is closed before the error reply, as QEMU's is.  For async
 * QMP handlers.
 */
typedef bool BlockJobStartFn(const json_t *args, BlockNode **opened,
                             Error **errp);
void block_job_start_with_files(const json_t *args, QapiReply *reply,
                                BlockJobStartFn *start);

/* JobDriver.user_resume of block jobs: the io-status is "ok" again. */
void block_job_user_resume(Job *job);

extern const QapiHandler blockjob_qmp_handlers[];
extern const size_t blockjob_qmp_handlers_count;

/* stream.c: block-stream */
extern const QapiHandler stream_qmp_handlers[];
extern const size_t stream_qmp_handlers_count;

/* commit.c: block-commit */
extern const QapiHandler commit_qmp_handlers[];
extern const size_t commit_qmp_handlers_count;

/* mirror.c: drive-mirror, blockdev-mirror */
extern const QapiHandler mirror_qmp_handlers[];
extern const size_t mirror_qmp_handlers_count;

/*
 * mirror.c: the job of an active commit (block-commit of the active
 * layer @top into @base, checked by the caller), created but not
 * started: mirror's engine with the commit job type, as QEMU's
 * commit_active_start(), on its mirror_top filter above @top (named
 * @filter_node_name, or implicit; the job is named after the device
 * by default).  The caller adds the nodes the job blocks and starts it
 * (or fails it early).  NULL with @errp set if the job cannot be
 * created.
 */
Job *mirror_commit_create(const char *job_id, BlockNode *top,
                          BlockNode *base, const char *filter_node_name,
                          int64_t speed, BlockdevOnError on_error,
                          bool auto_finalize, bool auto_dismiss, Error **errp);

/*
 * backup.c: blockdev-backup, drive-backup, and the same as transaction
 * actions.  backup_txn_prepare() checks @args (the action's data,
 * borrowed) and creates the job (NULL with @errp set), in @txn when not
 * NULL (completion-mode grouped); with @drive it is drive-backup's,
 * which first creates (per mode) and opens the target image: a target
 * opened for a job that could not be created is closed again (the
 * caller waits for bdrv_wait_closed() before it replies), and the image
 * file it created stays, as in QEMU.  backup_job_start() starts the job
 * paused (commit), backup_job_resume() lets it run once every action
 * committed; backup_job_abort() cancels it unstarted, the bitmap it
 * froze back as bitmap-mode says for a failure (abort).  Main loop only.
 */
Job *backup_txn_prepare(const json_t *args, bool drive, JobTxn *txn,
                        Error **errp);
void backup_job_start(Job *job);
void backup_job_resume(Job *job);
void backup_job_abort(Job *job);

extern const QapiHandler backup_qmp_handlers[];
extern const size_t backup_qmp_handlers_count;

#endif /* BLOCK_JOBS_BLOCKJOB_H */
