/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * For job drivers (create, stream, commit, mirror, backup).
 *
 * A driver's run() starts the work and returns; the work ends by calling
 * job_completed() from the main loop.  While running, a driver should
 * check job_should_pause() between batches and call job_pause_point()
 * when it has no request in flight; it resumes from its resume() hook.
 */
#ifndef BLOCK_JOBS_JOB_INT_H
#define BLOCK_JOBS_JOB_INT_H

#include "block/jobs/job.h"

typedef struct JobDriver {
    JobType type;
    size_t instance_size;       /* the driver's struct, Job first */
    bool block_job;             /* sends BLOCK_JOB_* events */

    void (*run)(Job *job);
    /* pause was requested and the driver is idle: nothing to do */
    void (*resume)(Job *job);
    /* job-resume / block-job-resume was accepted */
    void (*user_resume)(Job *job);
    /* a pause was requested: stop waiting (rate limit) and look again */
    void (*kick)(Job *job);
    /* job-complete in ready state */
    bool (*complete)(Job *job, Error **errp);
    /* cancel requested while running: stop issuing, then complete */
    void (*cancel)(Job *job, bool force);
    /* graph changes on success (commit) or failure (abort) */
    int (*prepare)(Job *job);
    void (*commit)(Job *job);
    void (*abort)(Job *job);
    void (*clean)(Job *job);
    void (*free)(Job *job);
    /* block jobs: BLOCK_JOB_* event data ("device", "len", ...) */
    json_t *(*event_data)(Job *job);
} JobDriver;

/*
 * A job transaction (QEMU's JobTxn): jobs that complete or fail as one.
 * Every job belongs to one; a job created alone has its own.  A job of
 * a transaction that finishes its work waits (status waiting) until
 * every other one has; then all become pending and are finalized
 * together, newest first.  When one fails or is cancelled, the others
 * are cancelled, and each is finalized (aborted) once it has stopped:
 * the failed one ends with BLOCK_JOB_COMPLETED and its error, the
 * others with BLOCK_JOB_CANCELLED.
 */
typedef struct JobTxn JobTxn;

struct Job {
    int refcnt;                 /* the job list's, its transaction's and
                                   running verbs' */
    JobTxn *txn;                /* referenced; NULL once finalized */
    char *id;
    const JobDriver *driver;
    JobStatus status;
    bool auto_finalize;
    bool auto_dismiss;
    int64_t progress_current;
    int64_t progress_total;
    int ret;
    char *error;
    bool cancelled;
    bool force_cancel;
    bool txn_cancelled;         /* its transaction aborts: it runs on
                                   until woken in turn, and is cancelled
                                   then (QEMU sets the flag at once but
                                   wakes the job only in turn) */
    int pause_count;            /* pause requests not yet resumed */
    bool user_paused;
    bool paused;                /* the driver acknowledged a pause */
    bool deferred_to_main;      /* job_completed() was called */
    bool ready;
    bool started;
};

/*
 * Create a job (status created).  @id must be unique; NULL makes an
 * internal job without id (never listed).  Returns NULL with @errp set.
 */
void *job_create(const char *id, const JobDriver *drv, bool auto_finalize,
                 bool auto_dismiss, Error **errp);

/* A new, empty transaction (referenced by the caller). */
JobTxn *job_txn_new(void);
void job_txn_unref(JobTxn *txn);

/* Move @job, created and not started, into @txn (which references it). */
void job_txn_add_job(JobTxn *txn, Job *job);

void job_ref(Job *job);
void job_unref(Job *job);

/* A created job that cannot start: straight to null, and freed. */
void job_early_fail(Job *job);

/* Start it: running, then the driver's run(). */
void job_start(Job *job);

/* The driver's work is done: 0 or -errno with an optional message. */
void job_completed(Job *job, int ret, const char *error);

/* Move to ready (mirror, active commit); sends BLOCK_JOB_READY. */
void job_transition_to_ready(Job *job);

bool job_should_pause(const Job *job);
bool job_is_cancelled(const Job *job);

/* The driver has stopped issuing I/O for a pause request. */
void job_pause_point(Job *job);

/*
 * A pause nobody asked for through QMP, as QEMU's job_pause() and
 * job_resume() (a drained section): counted with the user's pauses but
 * not one of them, so job-resume does not end it.
 */
void job_pause(Job *job);
void job_resume(Job *job);

/* The verbs, as job-* and block-job-* run them (errors as QEMU's). */
bool job_user_pause(Job *job, Error **errp);
bool job_user_resume(Job *job, Error **errp);
bool job_cancel(Job *job, bool force, Error **errp);
bool job_complete(Job *job, Error **errp);
bool job_finalize(Job *job, Error **errp);
bool job_dismiss_verb(Job *job, Error **errp);

/* Every job, newest first (borrowed). */
GList *job_list(void);

/*
 * At exit, as QEMU's job_cancel_sync_all(): force-cancel every job that
 * has not concluded.  job_all_concluded() tells when they have; then
 * job_dismiss_all() drops them all (each sends its null event).
 */
void job_cancel_all(void);
bool job_all_concluded(void);
void job_dismiss_all(void);

void job_progress_update(Job *job, int64_t done);
void job_progress_set_remaining(Job *job, int64_t remaining);

#endif /* BLOCK_JOBS_JOB_INT_H */
