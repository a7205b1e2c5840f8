/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The job core without a disk: a fake block job whose "work" is a number
 * of main-loop steps drives QEMU 7.2's state machine through every path
 * a real job takes — completion, failure, manual finalize and dismiss,
 * cancel in every state (soft and forced), pause and resume by the user
 * and by the block layer, job-complete, transactions that wait for each
 * other and abort together, the error policies with their io-status,
 * and op blockers.  What is checked is what a client sees: the sequence
 * of JOB_STATUS_CHANGE statuses, the BLOCK_JOB_* events, the verbs'
 * errors, and which driver hooks ran.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "block/jobs/blockjob.h"
#include "qapi/event.h"
#include "qapi/qjson.h"

typedef struct {
    BlockJob common;
    int steps;                  /* work left, one main-loop step each */
    int ret;                    /* what the work ends with */
    bool ready_mode;            /* waits in ready for job-complete */
    bool completing;
    bool cancel_requested;
    bool cancel_force;
    guint step_src;
    int prepare_ret;
    int resumed, cancels, prepared, committed, aborted, cleaned;
} TestJob;

static GPtrArray *events;       /* json_t *, as sent */
static QapiSchema *schema;
static BlockNode *node;

static void sink_cb(void *opaque, const json_t *event)
{
    g_ptr_array_add(events, json_deep_copy(event));
}

/* Run the main loop until nothing is ready to run. */
static void settle(void)
{
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}

static void schedule(TestJob *s);

static gboolean step_cb(gpointer opaque)
{
    TestJob *s = opaque;
    Job *job = &s->common.job;

    s->step_src = 0;
    if (s->cancel_requested) {
        /* a ready job cancelled without force ends well (no pivot) */
        job_completed(job, s->cancel_force ? -ECANCELED : 0, NULL);
        return G_SOURCE_REMOVE;
    }
    if (job_should_pause(job)) {
        job_pause_point(job);
        return G_SOURCE_REMOVE;
    }
    if (s->steps > 0) {
        s->steps--;
        job_progress_update(job, 1);
        schedule(s);
        return G_SOURCE_REMOVE;
    }
    if (!s->ready_mode) {
        job_completed(job, s->ret, s->ret ? "test failure" : NULL);
    } else if (s->completing) {
        job_completed(job, 0, NULL);
    } else if (!job->ready) {
        job_transition_to_ready(job);
    }
    return G_SOURCE_REMOVE;
}

static void schedule(TestJob *s)
{
    if (!s->step_src) {
        s->step_src = g_idle_add(step_cb, s);
    }
}

static void fake_run(Job *job)
{
    TestJob *s = (TestJob *)job;

    job_progress_set_remaining(job, s->steps);
    schedule(s);
}

static void fake_kick(Job *job)
{
    schedule((TestJob *)job);
}

static void fake_resume(Job *job)
{
    TestJob *s = (TestJob *)job;

    s->resumed++;
    schedule(s);
}

static void fake_cancel(Job *job, bool force)
{
    TestJob *s = (TestJob *)job;

    s->cancels++;
    s->cancel_requested = true;
    s->cancel_force = force;
    schedule(s);
}

static bool fake_complete(Job *job, Error **errp)
{
    TestJob *s = (TestJob *)job;

    s->completing = true;
    schedule(s);
    return true;
}

static int fake_prepare(Job *job)
{
    TestJob *s = (TestJob *)job;

    s->prepared++;
    return s->prepare_ret;
}

static void fake_commit(Job *job)
{
    ((TestJob *)job)->committed++;
}

static void fake_abort(Job *job)
{
    ((TestJob *)job)->aborted++;
}

static void fake_clean(Job *job)
{
    ((TestJob *)job)->cleaned++;
}

static void fake_free(Job *job)
{
    TestJob *s = (TestJob *)job;

    if (s->step_src) {
        g_source_remove(s->step_src);
    }
    block_job_free(&s->common);
}

static const JobDriver fake_driver = {
    .type = JOB_TYPE_BACKUP,
    .instance_size = sizeof(TestJob),
    .block_job = true,
    .run = fake_run,
    .kick = fake_kick,
    .resume = fake_resume,
    .user_resume = block_job_user_resume,
    .cancel = fake_cancel,
    .prepare = fake_prepare,
    .commit = fake_commit,
    .abort = fake_abort,
    .clean = fake_clean,
    .free = fake_free,
    .event_data = block_job_event_data,
};

/* The mirror-like variant: ready, then job-complete. */
static const JobDriver fake_ready_driver = {
    .type = JOB_TYPE_MIRROR,
    .instance_size = sizeof(TestJob),
    .block_job = true,
    .run = fake_run,
    .kick = fake_kick,
    .resume = fake_resume,
    .user_resume = block_job_user_resume,
    .cancel = fake_cancel,
    .complete = fake_complete,
    .commit = fake_commit,
    .abort = fake_abort,
    .clean = fake_clean,
    .free = fake_free,
    .event_data = block_job_event_data,
};

static BlockNode *null_node(const char *name)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:I}", "driver", "null-co", "node-name",
                          name, "size", (json_int_t)(1 << 20));
    BlockNode *bn = bdrv_open_options(o, false, &err);

    json_decref(o);
    assert_non_null(bn);
    return bn;
}

static int setup(void **state)
{
    Error *err = NULL;

    assert_true(bdrv_init(&err));
    schema = qapi_schema_load(&err);
    assert_non_null(schema);
    qapi_event_init(schema, sink_cb, NULL);
    return 0;
}

static int teardown(void **state)
{
    qapi_event_init(NULL, NULL, NULL);
    qapi_schema_free(schema);
    return 0;
}

static int before(void **state)
{
    events = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
    node = null_node("n");
    return 0;
}

static int after(void **state)
{
    settle();
    assert_null(job_list());
    bdrv_unref(node);
    settle();
    g_ptr_array_unref(events);
    return 0;
}

/* A started job, holding a reference so its hooks' counts can be read. */
static TestJob *new_job(const char *id, const JobDriver *drv, int steps,
                        bool auto_finalize, bool auto_dismiss)
{
    Error *err = NULL;
    TestJob *s = block_job_create(id, drv, node, 0, auto_finalize,
                                  auto_dismiss, &err);

    assert_null(err);
    assert_non_null(s);
    s->steps = steps;
    s->ready_mode = drv == &fake_ready_driver;
    job_ref(&s->common.job);
    return s;
}

/* The JOB_STATUS_CHANGE statuses of job @id, space-separated. */
static char *statuses(const char *id)
{
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < events->len; i++) {
        const json_t *e = g_ptr_array_index(events, i);
        const json_t *data = json_object_get(e, "data");

        if (!strcmp(qjson_get_str(e, "event"), "JOB_STATUS_CHANGE")
            && !strcmp(qjson_get_str(data, "id"), id)) {
            g_string_append_printf(out, "%s%s", out->len ? " " : "",
                                   qjson_get_str(data, "status"));
        }
    }
    return g_string_free(out, FALSE);
}

static void assert_statuses(const char *id, const char *want)
{
    g_autofree char *have = statuses(id);

    assert_string_equal(have, want);
}

/* The other events (not JOB_STATUS_CHANGE), as "NAME:device". */
static char *block_events(void)
{
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < events->len; i++) {
        const json_t *e = g_ptr_array_index(events, i);
        const char *name = qjson_get_str(e, "event");
        const json_t *data = json_object_get(e, "data");
        const json_t *who = json_object_get(data, "device");

        if (strcmp(name, "JOB_STATUS_CHANGE")) {
            g_string_append_printf(out, "%s%s:%s", out->len ? " " : "",
                                   name, json_string_value(
                                       who ? who : json_object_get(data,
                                                                   "id")));
        }
    }
    return g_string_free(out, FALSE);
}

static void assert_block_events(const char *want)
{
    g_autofree char *have = block_events();

    assert_string_equal(have, want);
}

/* The data of the last event called @name. */
static const json_t *last_event(const char *name)
{
    for (guint i = events->len; i-- > 0;) {
        const json_t *e = g_ptr_array_index(events, i);

        if (!strcmp(qjson_get_str(e, "event"), name)) {
            return json_object_get(e, "data");
        }
    }
    fail_msg("no %s event", name);
    return NULL;
}

/* @call, given &verr for its Error **, fails with message @msg. */
#define assert_verb_fails(call, msg)                                        \
    do {                                                                    \
        Error *verr = NULL;                                                 \
                                                                            \
        assert_false(call);                                                 \
        assert_non_null(verr);                                              \
        assert_string_equal(error_get_pretty(verr), msg);                   \
        error_free(verr);                                                   \
    } while (0)

static void test_create_errors(void **state)
{
    Error *err = NULL;
    TestJob *s;

    assert_null(block_job_create("1x", &fake_driver, node, 0, true, true,
                                 &err));
    assert_string_equal(error_get_pretty(err), "Invalid job ID '1x'");
    error_free(err);
    err = NULL;

    s = new_job("j", &fake_driver, 3, true, true);
    assert_null(block_job_create("j", &fake_driver, null_node("m"), 0, true,
                                 true, &err));
    assert_string_equal(error_get_pretty(err), "Job ID 'j' already in use");
    error_free(err);
    err = NULL;
    /* the node a job works on is busy for other jobs */
    assert_null(block_job_create("k", &fake_driver, node, 0, true, true,
                                 &err));
    assert_string_equal(error_get_pretty(err),
                        "Node 'n' is busy: block device is in use by "
                        "block job: backup");
    error_free(err);
    err = NULL;

    /* a negative speed fails after the job was made: created, then null */
    assert_null(block_job_create("k", &fake_driver, bdrv_lookup(NULL, "m",
                                 &err), -1, true, true, &err));
    assert_string_equal(error_get_pretty(err),
                        "Parameter 'speed' expects a non-negative value");
    error_free(err);
    assert_statuses("k", "created null");

    job_start(&s->common.job);
    settle();
    job_unref(&s->common.job);
    bdrv_unref(bdrv_lookup(NULL, "m", NULL));
}

static void test_run_to_completion(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 3, true, true);
    Job *job = &s->common.job;

    job_start(job);
    assert_int_equal(job_status(job), JOB_STATUS_RUNNING);
    settle();
    assert_statuses("j", "created running waiting pending concluded null");
    assert_block_events("BLOCK_JOB_COMPLETED:j");
    assert_int_equal(json_integer_value(json_object_get(
                         last_event("BLOCK_JOB_COMPLETED"), "offset")), 3);
    assert_null(json_object_get(last_event("BLOCK_JOB_COMPLETED"), "error"));
    assert_int_equal(s->prepared, 1);
    assert_int_equal(s->committed, 1);
    assert_int_equal(s->aborted, 0);
    assert_int_equal(s->cleaned, 1);
    assert_null(job_find("j"));
    job_unref(job);
}

static void test_failure(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 2, true, true);
    Job *job = &s->common.job;

    s->ret = -EIO;
    job_start(job);
    settle();
    assert_statuses("j", "created running aborting concluded null");
    assert_block_events("BLOCK_JOB_COMPLETED:j");
    assert_string_equal(qjson_get_str(last_event("BLOCK_JOB_COMPLETED"),
                                      "error"), "test failure");
    assert_int_equal(s->prepared, 0);
    assert_int_equal(s->committed, 0);
    assert_int_equal(s->aborted, 1);
    assert_int_equal(s->cleaned, 1);
    job_unref(job);
}

static void test_manual_finalize_and_dismiss(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 1, false, false);
    Job *job = &s->common.job;

    job_start(job);
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PENDING);
    assert_block_events("BLOCK_JOB_PENDING:j");
    assert_verb_fails(job_dismiss_verb(job, &verr),
                      "Job 'j' in state 'pending' cannot accept command "
                      "verb 'dismiss'");
    assert_true(job_finalize(job, NULL));
    assert_int_equal(job_status(job), JOB_STATUS_CONCLUDED);
    assert_verb_fails(job_finalize(job, &verr),
                      "Job 'j' in state 'concluded' cannot accept command "
                      "verb 'finalize'");
    assert_verb_fails(job_cancel(job, true, &verr),
                      "Job 'j' in state 'concluded' cannot accept command "
                      "verb 'cancel'");
    assert_true(job_dismiss_verb(job, NULL));
    assert_statuses("j", "created running waiting pending concluded null");
    assert_block_events("BLOCK_JOB_PENDING:j BLOCK_JOB_COMPLETED:j");
    assert_int_equal(s->committed, 1);
    job_unref(job);
}

static void test_cancel_created(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 1, true, true);
    Job *job = &s->common.job;

    assert_true(job_cancel(job, false, NULL));
    assert_statuses("j", "created aborting concluded null");
    /* a job that never started sends no BLOCK_JOB_* event */
    assert_block_events("");
    assert_int_equal(s->cancels, 0);
    assert_int_equal(s->aborted, 1);
    job_unref(job);
}

static void test_cancel_running(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 1000, true, true);
    Job *job = &s->common.job;

    job_start(job);
    g_main_context_iteration(NULL, FALSE);
    /* a soft cancel outside ready is a forced one */
    assert_true(job_cancel(job, false, NULL));
    assert_int_equal(s->cancels, 1);
    assert_true(s->cancel_force);
    settle();
    assert_statuses("j", "created running aborting concluded null");
    assert_block_events("BLOCK_JOB_CANCELLED:j");
    assert_int_equal(s->aborted, 1);
    job_unref(job);
}

static void test_cancel_paused(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 1000, true, true);
    Job *job = &s->common.job;

    job_start(job);
    assert_true(job_user_pause(job, NULL));
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PAUSED);
    assert_true(job_cancel(job, true, NULL));
    settle();
    assert_statuses("j", "created running paused running aborting concluded "
                    "null");
    assert_block_events("BLOCK_JOB_CANCELLED:j");
    job_unref(job);
}

static void test_cancel_ready_soft(void **state)
{
    TestJob *s = new_job("j", &fake_ready_driver, 2, true, true);
    Job *job = &s->common.job;

    job_start(job);
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_READY);
    /* QEMU 7.2: a ready job cancelled without force completes */
    assert_true(job_cancel(job, false, NULL));
    assert_false(s->cancel_force);
    settle();
    assert_statuses("j", "created running ready waiting pending concluded "
                    "null");
    assert_block_events("BLOCK_JOB_READY:j BLOCK_JOB_COMPLETED:j");
    assert_int_equal(s->committed, 1);
    job_unref(job);
}

static void test_cancel_ready_forced(void **state)
{
    TestJob *s = new_job("j", &fake_ready_driver, 2, true, true);
    Job *job = &s->common.job;

    job_start(job);
    settle();
    assert_true(job_cancel(job, true, NULL));
    settle();
    assert_statuses("j", "created running ready aborting concluded null");
    assert_block_events("BLOCK_JOB_READY:j BLOCK_JOB_CANCELLED:j");
    assert_int_equal(s->aborted, 1);
    job_unref(job);
}

static void test_cancel_standby(void **state)
{
    TestJob *s = new_job("j", &fake_ready_driver, 2, true, true);
    Job *job = &s->common.job;

    job_start(job);
    settle();
    assert_true(job_user_pause(job, NULL));
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_STANDBY);
    assert_true(job_cancel(job, true, NULL));
    settle();
    assert_statuses("j", "created running ready standby ready aborting "
                    "concluded null");
    assert_int_equal(s->resumed, 1);
    job_unref(job);
}

static void test_cancel_pending(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 1, false, true);
    Job *job = &s->common.job;

    job_start(job);
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PENDING);
    assert_true(job_cancel(job, false, NULL));
    settle();
    assert_statuses("j", "created running waiting pending aborting "
                    "concluded null");
    assert_block_events("BLOCK_JOB_PENDING:j BLOCK_JOB_CANCELLED:j");
    /* its work had ended: the driver is not asked to stop */
    assert_int_equal(s->cancels, 0);
    assert_int_equal(s->committed, 0);
    assert_int_equal(s->aborted, 1);
    job_unref(job);
}

static void test_pause_resume(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 4, true, true);
    Job *job = &s->common.job;

    /* a pause asked for before the start holds from the first step */
    assert_true(job_user_pause(job, NULL));
    job_start(job);
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PAUSED);
    assert_int_equal(job->progress_current, 0);
    assert_verb_fails(job_user_pause(job, &verr), "Job is already paused");
    assert_true(job_user_resume(job, NULL));
    assert_verb_fails(job_user_resume(job, &verr),
                      "Can't resume a job that was not paused");

    /* the block layer's pause (a drain) is not the user's to end */
    job_pause(job);
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PAUSED);
    assert_verb_fails(job_user_resume(job, &verr),
                      "Can't resume a job that was not paused");
    /* both at once: the job runs again when both have ended */
    assert_true(job_user_pause(job, NULL));
    job_resume(job);
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PAUSED);
    assert_true(job_user_resume(job, NULL));
    settle();
    assert_statuses("j", "created running paused running paused running "
                    "waiting pending concluded null");
    assert_int_equal(s->resumed, 2);
    job_unref(job);
}

static void test_complete_verb(void **state)
{
    TestJob *s = new_job("j", &fake_ready_driver, 3, true, true);

    job_start(&s->common.job);
    assert_verb_fails(job_complete(&s->common.job, &verr),
                      "Job 'j' in state 'running' cannot accept command "
                      "verb 'complete'");
    settle();
    assert_int_equal(job_status(&s->common.job), JOB_STATUS_READY);
    assert_true(job_complete(&s->common.job, NULL));
    settle();
    assert_statuses("j", "created running ready waiting pending concluded "
                    "null");
    assert_block_events("BLOCK_JOB_READY:j BLOCK_JOB_COMPLETED:j");
    job_unref(&s->common.job);
}

/* Two jobs of one transaction, @a created first (so finalized last). */
static void txn_pair(TestJob **a, TestJob **b, int steps_a, int steps_b)
{
    JobTxn *txn = job_txn_new();
    BlockNode *m = null_node("m");
    Error *err = NULL;

    *a = new_job("a", &fake_driver, steps_a, true, true);
    *b = block_job_create("b", &fake_driver, m, 0, true, true, &err);
    assert_non_null(*b);
    (*b)->steps = steps_b;
    job_ref(&(*b)->common.job);
    bdrv_unref(m);
    job_txn_add_job(txn, &(*a)->common.job);
    job_txn_add_job(txn, &(*b)->common.job);
    job_txn_unref(txn);
}

static void test_txn_waits_for_all(void **state)
{
    TestJob *a, *b;

    txn_pair(&a, &b, 1, 50);
    job_start(&a->common.job);
    job_start(&b->common.job);
    while (job_status(&a->common.job) != JOB_STATUS_WAITING) {
        g_main_context_iteration(NULL, FALSE);
    }
    assert_int_equal(job_status(&b->common.job), JOB_STATUS_RUNNING);
    settle();
    assert_statuses("a", "created running waiting pending concluded null");
    assert_statuses("b", "created running waiting pending concluded null");
    /* finalized together, newest first */
    assert_block_events("BLOCK_JOB_COMPLETED:b BLOCK_JOB_COMPLETED:a");
    assert_int_equal(a->committed + b->committed, 2);
    job_unref(&a->common.job);
    job_unref(&b->common.job);
}

static void test_txn_failure_cancels_others(void **state)
{
    TestJob *a, *b;

    txn_pair(&a, &b, 1000, 1);
    b->ret = -EIO;
    job_start(&a->common.job);
    job_start(&b->common.job);
    settle();
    assert_statuses("b", "created running aborting concluded null");
    assert_statuses("a", "created running aborting concluded null");
    assert_block_events("BLOCK_JOB_COMPLETED:b BLOCK_JOB_CANCELLED:a");
    assert_string_equal(qjson_get_str(last_event("BLOCK_JOB_COMPLETED"),
                                      "error"), "test failure");
    assert_int_equal(a->cancels, 1);
    assert_int_equal(a->aborted + b->aborted, 2);
    assert_int_equal(a->committed + b->committed, 0);
    job_unref(&a->common.job);
    job_unref(&b->common.job);
}

static void test_txn_prepare_failure_aborts_all(void **state)
{
    TestJob *a, *b;

    /* @a completes last: its completion finalizes the transaction */
    txn_pair(&a, &b, 2, 1);
    a->prepare_ret = -EIO;
    job_start(&a->common.job);
    job_start(&b->common.job);
    settle();
    assert_int_equal(a->committed + b->committed, 0);
    assert_int_equal(a->aborted + b->aborted, 2);
    assert_statuses("a", "created running waiting pending aborting concluded "
                    "null");
    job_unref(&a->common.job);
    job_unref(&b->common.job);
}

static void test_error_policies(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 1000, true, true);
    BlockJob *bj = &s->common;
    Job *job = &bj->job;
    const json_t *e;

    job_start(job);
    assert_int_equal(block_job_error_action(bj, BLOCKDEV_ON_ERROR_IGNORE,
                                            true, -EIO),
                     BLOCK_ERROR_ACTION_IGNORE);
    assert_int_equal(block_job_error_action(bj, BLOCKDEV_ON_ERROR_ENOSPC,
                                            false, -EIO),
                     BLOCK_ERROR_ACTION_REPORT);
    e = last_event("BLOCK_JOB_ERROR");
    assert_string_equal(qjson_get_str(e, "operation"), "write");
    assert_string_equal(qjson_get_str(e, "action"), "report");
    assert_string_equal(bj->io_status, "ok");

    /* stop: paused as by the user, io-status until resumed */
    assert_int_equal(block_job_error_action(bj, BLOCKDEV_ON_ERROR_ENOSPC,
                                            false, -ENOSPC),
                     BLOCK_ERROR_ACTION_STOP);
    assert_string_equal(bj->io_status, "nospace");
    assert_string_equal(qjson_get_str(last_event("BLOCK_JOB_ERROR"),
                                      "action"), "stop");
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PAUSED);
    assert_true(job_user_resume(job, NULL));
    assert_string_equal(bj->io_status, "ok");
    assert_int_equal(job_status(job), JOB_STATUS_RUNNING);

    assert_int_equal(block_job_error_action(bj, BLOCKDEV_ON_ERROR_STOP,
                                            true, -EIO),
                     BLOCK_ERROR_ACTION_STOP);
    assert_string_equal(bj->io_status, "failed");
    settle();
    assert_int_equal(job_status(job), JOB_STATUS_PAUSED);

    /* a cancelled job's errors are not reported */
    assert_true(job_cancel(job, true, NULL));
    g_ptr_array_set_size(events, 0);
    assert_int_equal(block_job_error_action(bj, BLOCKDEV_ON_ERROR_REPORT,
                                            true, -EIO),
                     BLOCK_ERROR_ACTION_REPORT);
    settle();
    assert_block_events("BLOCK_JOB_CANCELLED:j");
    job_unref(job);
}

static void test_node_unblocked_when_done(void **state)
{
    TestJob *s = new_job("j", &fake_driver, 1, true, true);
    Error *err = NULL;

    assert_true(bdrv_op_is_blocked(node, &err));
    error_free(err);
    job_start(&s->common.job);
    settle();
    job_unref(&s->common.job);      /* the job is gone once dismissed */
    assert_false(bdrv_op_is_blocked(node, NULL));
    s = new_job("j", &fake_driver, 1, true, true);
    job_start(&s->common.job);
    settle();
    job_unref(&s->common.job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_errors, before, after),
        cmocka_unit_test_setup_teardown(test_run_to_completion, before,
                                        after),
        cmocka_unit_test_setup_teardown(test_failure, before, after),
        cmocka_unit_test_setup_teardown(test_manual_finalize_and_dismiss,
                                        before, after),
        cmocka_unit_test_setup_teardown(test_cancel_created, before, after),
        cmocka_unit_test_setup_teardown(test_cancel_running, before, after),
        cmocka_unit_test_setup_teardown(test_cancel_paused, before, after),
        cmocka_unit_test_setup_teardown(test_cancel_ready_soft, before,
                                        after),
        cmocka_unit_test_setup_teardown(test_cancel_ready_forced, before,
                                        after),
        cmocka_unit_test_setup_teardown(test_cancel_standby, before, after),
        cmocka_unit_test_setup_teardown(test_cancel_pending, before, after),
        cmocka_unit_test_setup_teardown(test_pause_resume, before, after),
        cmocka_unit_test_setup_teardown(test_complete_verb, before, after),
        cmocka_unit_test_setup_teardown(test_txn_waits_for_all, before,
                                        after),
        cmocka_unit_test_setup_teardown(test_txn_failure_cancels_others,
                                        before, after),
        cmocka_unit_test_setup_teardown(test_txn_prepare_failure_aborts_all,
                                        before, after),
        cmocka_unit_test_setup_teardown(test_error_policies, before, after),
        cmocka_unit_test_setup_teardown(test_node_unblocked_when_done,
                                        before, after),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
