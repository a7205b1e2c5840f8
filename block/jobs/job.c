/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The job core: QEMU 7.2's state machine, with its transition table and
 * verb table kept as data, and the order of events QEMU sends:
 *
 *   created -> running -> [ready <-> standby] -> waiting -> pending
 *     -> (prepare, commit or abort, clean) -> BLOCK_JOB_COMPLETED or
 *     BLOCK_JOB_CANCELLED -> concluded -> (dismiss) -> null
 *
 * A failure or a forced cancel goes running -> aborting -> concluded.
 * pending waits for job-finalize when auto-finalize is off (sending
 * BLOCK_JOB_PENDING); concluded waits for job-dismiss when auto-dismiss
 * is off.  Every transition is a JOB_STATUS_CHANGE event.
 *
 * Completion goes through the job's transaction (QEMU's JobTxn, see
 * job-int.h), of one job unless a grouped transaction made it larger:
 * waiting lasts until every job of it has completed, and a failure
 * aborts them all.  Where QEMU waits for a cancelled job in a nested
 * event loop, qmpd wakes it and carries on when it completes.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/jobs/job-int.h"
#include "block/jobs/trace-events.h"
#include "qapi/event.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"

static const char *const status_names[JOB_STATUS__MAX] = {
    "undefined", "created", "running", "paused", "ready", "standby",
    "waiting", "pending", "aborting", "concluded", "null",
};

static const char *const verb_names[JOB_VERB__MAX] = {
    "cancel", "pause", "resume", "set-speed", "complete", "finalize",
    "dismiss",
};

static const char *const type_names[] = {
    [JOB_TYPE_COMMIT] = "commit",
    [JOB_TYPE_STREAM] = "stream",
    [JOB_TYPE_MIRROR] = "mirror",
    [JOB_TYPE_BACKUP] = "backup",
    [JOB_TYPE_CREATE] = "create",
    [JOB_TYPE_AMEND] = "amend",
    [JOB_TYPE_SNAPSHOT_LOAD] = "snapshot-load",
    [JOB_TYPE_SNAPSHOT_SAVE] = "snapshot-save",
    [JOB_TYPE_SNAPSHOT_DELETE] = "snapshot-delete",
};

/* [from][to]: QEMU's JobSTT */
static const bool transitions[JOB_STATUS__MAX][JOB_STATUS__MAX] = {
    /*          U  C  R  P  Y  S  W  D  A  X  N */
    /* U */   { 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* C */   { 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1 },
    /* R */   { 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0 },
    /* P */   { 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* Y */   { 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0 },
    /* S */   { 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 },
    /* W */   { 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0 },
    /* D */   { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0 },
    /* A */   { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0 },
    /* X */   { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
    /* N */   { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
};

/* [verb][status]: QEMU's JobVerbTable */
static const bool verbs[JOB_VERB__MAX][JOB_STATUS__MAX] = {
    /*                U  C  R  P  Y  S  W  D  A  X  N */
    /* cancel */    { 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0 },
    /* pause */     { 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
    /* resume */    { 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
    /* set-speed */ { 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 },
    /* complete */  { 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0 },
    /* finalize */  { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 },
    /* dismiss */   { 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 },
};

static GList *jobs;             /* newest first, as QEMU lists them */

struct JobTxn {
    GList *jobs;                /* Job *, newest first as QEMU's list;
                                   each referenced */
    int refcnt;
    bool aborting;
    bool busy;                  /* finalizing: a nested call waits */
};

const char *job_status_name(JobStatus s)
{
    return status_names[s];
}

const char *job_type_name(JobType t)
{
    return type_names[t];
}

bool job_verb_allowed(JobVerb verb, JobStatus status)
{
    return verbs[verb][status];
}

bool job_transition_allowed(JobStatus from, JobStatus to)
{
    return transitions[from][to];
}

Job *job_find(const char *id)
{
    for (GList *l = jobs; l; l = l->next) {
        Job *j = l->data;

        if (j->id && !strcmp(j->id, id)) {
            return j;
        }
    }
    return NULL;
}

Job *job_get(const char *id, Error **errp)
{
    Job *j = job_find(id);

    if (!j) {
        error_setg(errp, "Job not found");
    }
    return j;
}

const char *job_id(const Job *job)
{
    return job->id;
}

JobStatus job_status(const Job *job)
{
    return job->status;
}

TraceEvent job_trace[JOB_TRACE_COUNT] = { JOB_TRACE_EVENTS(TRACE_ENTRY) };

void job_trace_register(void)
{
    trace_register(job_trace, JOB_TRACE_COUNT);
}

static void transition(Job *job, JobStatus to)
{
    TRACE(job_trace, job_state_transition,
          "job %p (ret: %d) attempting %s transition (%s-->%s)", (void *)job,
          job->ret, transitions[job->status][to] ? "allowed" : "disallowed",
          status_names[job->status], status_names[to]);
    g_assert(transitions[job->status][to]);
    job->status = to;
    if (job->id) {
        qapi_event_send("JOB_STATUS_CHANGE",
                        json_pack("{s:s,s:s}", "id", job->id, "status",
                                  status_names[to]));
    }
}

bool job_apply_verb(Job *job, JobVerb verb)
{
    TRACE(job_trace, job_apply_verb, "job %p in state %s; applying verb %s "
          "(%s)", (void *)job, status_names[job->status], verb_names[verb],
          verbs[verb][job->status] ? "allowed" : "prohibited");
    return verbs[verb][job->status];
}

static bool check_verb(Job *job, JobVerb verb, Error **errp)
{
    if (job_apply_verb(job, verb)) {
        return true;
    }
    error_setg(errp, "Job '%s' in state '%s' cannot accept command verb "
               "'%s'", job->id, status_names[job->status], verb_names[verb]);
    return false;
}

void *job_create(const char *id, const JobDriver *drv, bool auto_finalize,
                 bool auto_dismiss, Error **errp)
{
    Job *job;

    if (id && !opts_id_wellformed(id)) {
        error_setg(errp, "Invalid job ID '%s'", id);
        return NULL;
    }
    if (id && job_find(id)) {
        error_setg(errp, "Job ID '%s' already in use", id);
        return NULL;
    }
    job = g_malloc0(drv->instance_size);
    job->refcnt = 1;
    job->id = g_strdup(id);
    job->driver = drv;
    job->auto_finalize = auto_finalize;
    job->auto_dismiss = auto_dismiss;
    jobs = g_list_prepend(jobs, job);
    job->txn = job_txn_new();
    job_ref(job);
    job->txn->jobs = g_list_prepend(NULL, job);
    transition(job, JOB_STATUS_CREATED);
    return job;
}

void job_start(Job *job)
{
    job->started = true;
    transition(job, JOB_STATUS_RUNNING);
    /*
     * QEMU enters the job's coroutine at once, and it runs until it first
     * waits for I/O: a job that fails before any I/O has concluded by the
     * time the command replies.  So run() is called here; it returns once
     * its I/O is under way.
     */
    job->driver->run(job);
}

static void event_block(Job *job, const char *name, bool with_error)
{
    json_t *data;

    if (!job->driver->block_job || !job->id) {
        return;
    }
    data = job->driver->event_data(job);
    if (with_error && job->ret < 0) {
        json_object_set_new(data, "error",
                            qjson_str(job->error ? job->error
                                      : g_strerror(-job->ret)));
    }
    qapi_event_send(name, data);
}

void job_ref(Job *job)
{
    job->refcnt++;
}

/* The last reference frees: a verb may hold one while the job ends. */
void job_unref(Job *job)
{
    if (--job->refcnt > 0) {
        return;
    }
    g_assert(!job->txn);
    if (job->driver->free) {
        job->driver->free(job);
    }
    g_free(job->id);
    g_free(job->error);
    g_free(job);
}

JobTxn *job_txn_new(void)
{
    JobTxn *txn = g_new0(JobTxn, 1);

    txn->refcnt = 1;
    return txn;
}

static void txn_ref(JobTxn *txn)
{
    txn->refcnt++;
}

void job_txn_unref(JobTxn *txn)
{
    if (txn && --txn->refcnt == 0) {
        g_assert(!txn->jobs);
        g_free(txn);
    }
}

/* @job leaves its transaction (finalized, or dismissed unstarted). */
static void txn_del_job(Job *job)
{
    JobTxn *txn = job->txn;

    if (!txn) {
        return;
    }
    txn->jobs = g_list_remove(txn->jobs, job);
    job->txn = NULL;
    job_txn_unref(txn);
    job_unref(job);
}

void job_txn_add_job(JobTxn *txn, Job *job)
{
    g_assert(job->status == JOB_STATUS_CREATED);
    job_ref(job);
    txn_del_job(job);
    job->txn = txn;
    txn_ref(txn);
    txn->jobs = g_list_prepend(txn->jobs, job);
}

/* QEMU's job_is_completed(): its work is over, whatever the result. */
static bool is_completed(const Job *job)
{
    return job->status == JOB_STATUS_WAITING
           || job->status == JOB_STATUS_PENDING
           || job->status == JOB_STATUS_ABORTING
           || job->status == JOB_STATUS_CONCLUDED
           || job->status == JOB_STATUS_NULL;
}

static void dismiss(Job *job)
{
    transition(job, JOB_STATUS_NULL);
    jobs = g_list_remove(jobs, job);
    txn_del_job(job);
    job_unref(job);
}

static void cancel_async(Job *job, bool force);

/* QEMU's job_update_rc(): a cancelled job fails; a failed one aborts. */
static void update_rc(Job *job)
{
    if (job->txn_cancelled) {
        job->txn_cancelled = false;
        cancel_async(job, true);
    }
    if (job->ret == 0 && job->force_cancel) {
        job->ret = -ECANCELED;
    }
    if (job->ret < 0 && job->status != JOB_STATUS_ABORTING) {
        transition(job, JOB_STATUS_ABORTING);
    }
}

static void finalize_single(Job *job)
{
    job_ref(job);
    update_rc(job);
    if (job->ret == 0) {
        if (job->driver->commit) {
            job->driver->commit(job);
        }
    } else if (job->driver->abort) {
        job->driver->abort(job);
    }
    if (job->driver->clean) {
        job->driver->clean(job);
    }
    if (job->started) {
        if (job->force_cancel) {
            event_block(job, "BLOCK_JOB_CANCELLED", false);
        } else {
            event_block(job, "BLOCK_JOB_COMPLETED", true);
        }
    }
    txn_del_job(job);
    transition(job, JOB_STATUS_CONCLUDED);
    if (job->auto_dismiss || !job->id || !job->started) {
        dismiss(job);
    }
    job_unref(job);
}

static void enter_cancelled(Job *job);

/*
 * Finalize the jobs of an aborting transaction in its order, each once
 * it has stopped.  QEMU waits for each in turn in a nested loop, waking
 * it only then (until then it goes on copying); qmpd wakes the first
 * that has not stopped and comes back here when a job completes.
 */
static void txn_abort_continue(JobTxn *txn)
{
    if (txn->busy) {
        return;
    }
    txn_ref(txn);
    txn->busy = true;
    while (txn->jobs) {
        Job *j = txn->jobs->data;

        if (!is_completed(j)) {
            enter_cancelled(j);
            if (!is_completed(j)) {
                break;
            }
        }
        finalize_single(j);
    }
    txn->busy = false;
    job_txn_unref(txn);
}

/* QEMU's job_completed_txn_abort(): @job failed or was cancelled. */
static void txn_abort(Job *job)
{
    JobTxn *txn = job->txn;

    if (!txn->aborting) {
        txn->aborting = true;
        for (GList *l = txn->jobs; l; l = l->next) {
            Job *j = l->data;

            if (j == job) {
                continue;
            }
            if (j->started && !j->deferred_to_main) {
                j->txn_cancelled = true;
            } else {
                cancel_async(j, true);
            }
        }
    }
    txn_abort_continue(txn);
}

/* Prepare every job, then commit (or, one failing, abort) them all. */
static void do_finalize(Job *job)
{
    JobTxn *txn = job->txn;
    bool failed = false;

    txn_ref(txn);
    for (GList *l = txn->jobs; l && !failed; l = l->next) {
        Job *j = l->data;

        if (j->ret == 0 && j->driver->prepare) {
            j->ret = j->driver->prepare(j);
            update_rc(j);
            failed = j->ret < 0;
        }
    }
    if (failed) {
        txn_abort(job);
    } else {
        while (txn->jobs) {
            finalize_single(txn->jobs->data);
        }
    }
    job_txn_unref(txn);
}

/* QEMU's job_completed_txn_success(). */
static void txn_success(Job *job)
{
    JobTxn *txn = job->txn;

    transition(job, JOB_STATUS_WAITING);
    for (GList *l = txn->jobs; l; l = l->next) {
        if (!is_completed(l->data)) {
            return;
        }
    }
    for (GList *l = txn->jobs; l; l = l->next) {
        Job *j = l->data;

        transition(j, JOB_STATUS_PENDING);
        if (!j->auto_finalize && j->driver->block_job && j->id) {
            qapi_event_send("BLOCK_JOB_PENDING", json_pack(
                                "{s:s,s:s}", "type",
                                type_names[j->driver->type], "id", j->id));
        }
    }
    for (GList *l = txn->jobs; l; l = l->next) {
        if (!((Job *)l->data)->auto_finalize) {
            return;
        }
    }
    do_finalize(job);
}

void job_completed(Job *job, int ret, const char *error)
{
    g_assert(!is_completed(job));
    TRACE(job_trace, job_completed, "job %p ret %d", (void *)job, ret);
    job->deferred_to_main = true;
    job->ret = ret;
    if (ret < 0 && error && !job->error) {
        job->error = g_strdup(error);
    }
    update_rc(job);
    if (job->ret < 0) {
        txn_abort(job);
    } else {
        txn_success(job);
    }
}

void job_transition_to_ready(Job *job)
{
    job->ready = true;
    transition(job, JOB_STATUS_READY);
    event_block(job, "BLOCK_JOB_READY", false);
}

bool job_should_pause(const Job *job)
{
    return job->pause_count > 0;
}

bool job_is_cancelled(const Job *job)
{
    return job->force_cancel;
}

void job_pause_point(Job *job)
{
    if (job->pause_count > 0 && !job->paused) {
        job->paused = true;
        transition(job, job->status == JOB_STATUS_READY
                   ? JOB_STATUS_STANDBY : JOB_STATUS_PAUSED);
    }
}

static void job_resume_internal(Job *job)
{
    if (job->pause_count > 0 && --job->pause_count == 0 && job->paused) {
        job->paused = false;
        transition(job, job->status == JOB_STATUS_STANDBY
                   ? JOB_STATUS_READY : JOB_STATUS_RUNNING);
        if (job->driver->resume) {
            job->driver->resume(job);
        }
    }
}

void job_pause(Job *job)
{
    job->pause_count++;
    if (job->driver->kick) {
        job->driver->kick(job);
    }
}

void job_resume(Job *job)
{
    job_resume_internal(job);
}

void job_progress_update(Job *job, int64_t done)
{
    job->progress_current += done;
}

void job_progress_set_remaining(Job *job, int64_t remaining)
{
    job->progress_total = job->progress_current + remaining;
}

void job_early_fail(Job *job)
{
    g_assert(job->status == JOB_STATUS_CREATED);
    dismiss(job);
}

GList *job_list(void)
{
    return jobs;
}

/* ---- verbs ------------------------------------------------------------- */

bool job_user_pause(Job *job, Error **errp)
{
    if (!check_verb(job, JOB_VERB_PAUSE, errp)) {
        return false;
    }
    if (job->user_paused) {
        error_setg(errp, "Job is already paused");
        return false;
    }
    job->user_paused = true;
    job->pause_count++;
    if (job->driver->kick) {
        job->driver->kick(job);
    }
    return true;
}

bool job_user_resume(Job *job, Error **errp)
{
    /* QEMU checks this before the verb table */
    if (!job->user_paused || job->pause_count <= 0) {
        error_setg(errp, "Can't resume a job that was not paused");
        return false;
    }
    if (!check_verb(job, JOB_VERB_RESUME, errp)) {
        return false;
    }
    job->user_paused = false;
    if (job->driver->user_resume) {
        job->driver->user_resume(job);
    }
    job_resume_internal(job);
    return true;
}

/*
 * QEMU's job_cancel_async(): mark @job cancelled.  Only a job in ready
 * or standby (mirror, active commit) tells a soft cancel apart, so a
 * pending one is cancelled outright; a job whose work is over ignores a
 * soft cancel.
 */
static void cancel_async(Job *job, bool force)
{
    if (job->status != JOB_STATUS_READY
        && job->status != JOB_STATUS_STANDBY) {
        force = true;
    }
    if (force || !job->deferred_to_main) {
        job->cancelled = true;
        job->force_cancel |= force;
    }
}

/* A cancelled job that still runs looks again (a paused one resumes). */
static void enter_cancelled(Job *job)
{
    if (job->txn_cancelled) {
        job->txn_cancelled = false;
        cancel_async(job, true);
    }
    if (!job->started || job->deferred_to_main) {
        return;
    }
    if (job->driver->cancel) {
        job->driver->cancel(job, job->force_cancel);
    }
    if (job->paused) {
        job->pause_count = 1;
        job->user_paused = false;
        job_resume_internal(job);
    } else {
        job->pause_count = 0;
        job->user_paused = false;
    }
}

static void cancel(Job *job, bool force)
{
    /* a driver may end the job inside enter_cancelled() */
    bool deferred = job->deferred_to_main;

    cancel_async(job, force);
    enter_cancelled(job);
    if (!job->started) {
        job_completed(job, -ECANCELED, NULL);
    } else if (deferred && job->force_cancel) {
        /* waiting for its transaction, or pending */
        txn_abort(job);
    }
}

bool job_cancel(Job *job, bool force, Error **errp)
{
    if (!check_verb(job, JOB_VERB_CANCEL, errp)) {
        return false;
    }
    /* the job may end (and be dismissed) inside: keep it until done */
    job_ref(job);
    cancel(job, force);
    job_unref(job);
    return true;
}

void job_cancel_all(void)
{
    GList *all = g_list_copy(jobs);

    for (GList *l = all; l; l = l->next) {
        job_ref(l->data);
    }
    for (GList *l = all; l; l = l->next) {
        Job *job = l->data;

        /* an aborting job is on its way already */
        if (job->status != JOB_STATUS_CONCLUDED
            && job->status != JOB_STATUS_NULL
            && job->status != JOB_STATUS_ABORTING && !job->cancelled) {
            cancel(job, true);
        }
        job_unref(job);
    }
    g_list_free(all);
}

bool job_all_concluded(void)
{
    for (GList *l = jobs; l; l = l->next) {
        if (((Job *)l->data)->status != JOB_STATUS_CONCLUDED) {
            return false;
        }
    }
    return true;
}

void job_dismiss_all(void)
{
    while (jobs) {
        dismiss(jobs->data);
    }
}

bool job_complete(Job *job, Error **errp)
{
    if (!check_verb(job, JOB_VERB_COMPLETE, errp)) {
        return false;
    }
    if (job->cancelled || !job->driver->complete) {
        error_setg(errp, "The active block job '%s' cannot be completed",
                   job->id);
        return false;
    }
    return job->driver->complete(job, errp);
}

bool job_finalize(Job *job, Error **errp)
{
    if (!check_verb(job, JOB_VERB_FINALIZE, errp)) {
        return false;
    }
    do_finalize(job);
    return true;
}

bool job_dismiss_verb(Job *job, Error **errp)
{
    if (!check_verb(job, JOB_VERB_DISMISS, errp)) {
        return false;
    }
    dismiss(job);
    return true;
}

/* ---- QMP ---------------------------------------------------------------- */

static bool qmp_query_jobs(const json_t *args, json_t **ret, Error **errp)
{
    json_t *list = json_array();

    for (GList *l = jobs; l; l = l->next) {
        Job *j = l->data;
        json_t *info;

        if (!j->id) {
            continue;
        }
        info = json_pack("{s:s,s:s,s:s,s:I,s:I}", "id", j->id,
                         "type", type_names[j->driver->type],
                         "status", status_names[j->status],
                         "current-progress", (json_int_t)j->progress_current,
                         "total-progress", (json_int_t)j->progress_total);
        if (j->ret < 0 && (j->status == JOB_STATUS_CONCLUDED
                           || j->status == JOB_STATUS_ABORTING)) {
            json_object_set_new(info, "error",
                                qjson_str(j->error ? j->error
                                          : g_strerror(-j->ret)));
        }
        json_array_append_new(list, info);
    }
    *ret = list;
    return true;
}

#define JOB_VERB_HANDLER(fn, call)                                          \
    static bool fn(const json_t *args, json_t **ret, Error **errp)          \
    {                                                                       \
        Job *job = job_get(qjson_get_str(args, "id"), errp);                \
        bool ok;                                                            \
                                                                            \
        if (!job) {                                                         \
            return false;                                                   \
        }                                                                   \
        TRACE(job_trace, fn, "job %p", (void *)job);                       \
        job_ref(job);                                                       \
        ok = call;                                                          \
        job_unref(job);                                                     \
        return ok;                                                          \
    }

JOB_VERB_HANDLER(qmp_job_pause, job_user_pause(job, errp))
JOB_VERB_HANDLER(qmp_job_resume, job_user_resume(job, errp))
JOB_VERB_HANDLER(qmp_job_cancel, job_cancel(job, true, errp))
JOB_VERB_HANDLER(qmp_job_complete, job_complete(job, errp))
JOB_VERB_HANDLER(qmp_job_finalize, job_finalize(job, errp))
JOB_VERB_HANDLER(qmp_job_dismiss, job_dismiss_verb(job, errp))

const QapiHandler job_qmp_handlers[] = {
    { "query-jobs", qmp_query_jobs, NULL },
    { "job-pause", qmp_job_pause, NULL },
    { "job-resume", qmp_job_resume, NULL },
    { "job-cancel", qmp_job_cancel, NULL },
    { "job-complete", qmp_job_complete, NULL },
    { "job-finalize", qmp_job_finalize, NULL },
    { "job-dismiss", qmp_job_dismiss, NULL },
};

const size_t job_qmp_handlers_count = G_N_ELEMENTS(job_qmp_handlers);
