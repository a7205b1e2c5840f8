/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Jobs: long-running operations with QEMU 7.2's life cycle.  A job is
 * created, runs its driver, and then goes through waiting, pending and
 * concluded (or aborting) as the tables in job.c allow; every change is
 * a JOB_STATUS_CHANGE event.  Block jobs (stream, commit, mirror,
 * backup) also report BLOCK_JOB_* events.
 */
#ifndef BLOCK_JOBS_JOB_H
#define BLOCK_JOBS_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"

typedef struct Job Job;

typedef enum JobStatus {
    JOB_STATUS_UNDEFINED,
    JOB_STATUS_CREATED,
    JOB_STATUS_RUNNING,
    JOB_STATUS_PAUSED,
    JOB_STATUS_READY,
    JOB_STATUS_STANDBY,
    JOB_STATUS_WAITING,
    JOB_STATUS_PENDING,
    JOB_STATUS_ABORTING,
    JOB_STATUS_CONCLUDED,
    JOB_STATUS_NULL,
    JOB_STATUS__MAX,
} JobStatus;

typedef enum JobVerb {
    JOB_VERB_CANCEL,
    JOB_VERB_PAUSE,
    JOB_VERB_RESUME,
    JOB_VERB_SET_SPEED,
    JOB_VERB_COMPLETE,
    JOB_VERB_FINALIZE,
    JOB_VERB_DISMISS,
    JOB_VERB__MAX,
} JobVerb;

typedef enum JobType {
    JOB_TYPE_COMMIT,
    JOB_TYPE_STREAM,
    JOB_TYPE_MIRROR,
    JOB_TYPE_BACKUP,
    JOB_TYPE_CREATE,
    JOB_TYPE_AMEND,
    JOB_TYPE_SNAPSHOT_LOAD,
    JOB_TYPE_SNAPSHOT_SAVE,
    JOB_TYPE_SNAPSHOT_DELETE,
} JobType;

const char *job_status_name(JobStatus s);
const char *job_type_name(JobType t);

/* Is @verb allowed in @status?  (QEMU's JobVerbTable.) */
bool job_verb_allowed(JobVerb verb, JobStatus status);

/* May @job take @verb now?  (QEMU's job_apply_verb(), traced.) */
bool job_apply_verb(Job *job, JobVerb verb);

/* Is the transition @from -> @to allowed?  (QEMU's JobSTT.) */
bool job_transition_allowed(JobStatus from, JobStatus to);

/* The job with id @id, or NULL. */
Job *job_find(const char *id);

/* Register the job core's trace points (block/jobs/trace-events.h). */
void job_trace_register(void);

/* The job, or NULL with QEMU's "Job '%s' not found" error. */
Job *job_get(const char *id, Error **errp);

const char *job_id(const Job *job);
JobStatus job_status(const Job *job);

/* create.c: blockdev-create */
extern const QapiHandler create_qmp_handlers[];
extern const size_t create_qmp_handlers_count;

extern const QapiHandler job_qmp_handlers[];
extern const size_t job_qmp_handlers_count;

#endif /* BLOCK_JOBS_JOB_H */
