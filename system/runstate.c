/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Run state as QEMU 7.2 keeps it.  Only RUNNING runs the guest's
 * workload; stop in any other state changes nothing and sends nothing,
 * cont from a paused state sends RESUME, and in INMIGRATE both only
 * decide whether the guest starts when the migration completes.
 */
#include "config.h"

#include "block/core/block.h"
#include "monitor/monitor.h"
#include "qapi/event.h"
#include "qapi/qjson.h"
#include "system/runstate.h"

static const char *const runstate_names[] = {
    [RUN_STATE_DEBUG] = "debug",
    [RUN_STATE_INMIGRATE] = "inmigrate",
    [RUN_STATE_INTERNAL_ERROR] = "internal-error",
    [RUN_STATE_IO_ERROR] = "io-error",
    [RUN_STATE_PAUSED] = "paused",
    [RUN_STATE_POSTMIGRATE] = "postmigrate",
    [RUN_STATE_PRELAUNCH] = "prelaunch",
    [RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
    [RUN_STATE_RESTORE_VM] = "restore-vm",
    [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_SAVE_VM] = "save-vm",
    [RUN_STATE_SHUTDOWN] = "shutdown",
    [RUN_STATE_SUSPENDED] = "suspended",
    [RUN_STATE_WATCHDOG] = "watchdog",
    [RUN_STATE_GUEST_PANICKED] = "guest-panicked",
    [RUN_STATE_COLO] = "colo",
};

static const char *const shutdown_cause_names[] = {
    [SHUTDOWN_CAUSE_NONE] = "none",
    [SHUTDOWN_CAUSE_HOST_ERROR] = "host-error",
    [SHUTDOWN_CAUSE_HOST_QMP_QUIT] = "host-qmp-quit",
    [SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET] = "host-qmp-system-reset",
    [SHUTDOWN_CAUSE_HOST_SIGNAL] = "host-signal",
    [SHUTDOWN_CAUSE_HOST_UI] = "host-ui",
    [SHUTDOWN_CAUSE_GUEST_SHUTDOWN] = "guest-shutdown",
    [SHUTDOWN_CAUSE_GUEST_RESET] = "guest-reset",
    [SHUTDOWN_CAUSE_GUEST_PANIC] = "guest-panic",
    [SHUTDOWN_CAUSE_SUBSYSTEM_RESET] = "subsystem-reset",
    [SHUTDOWN_CAUSE_SNAPSHOT_LOAD] = "snapshot-load",
};

typedef struct {
    RunStateNotify *fn;
    void *opaque;
} Notifier;

static RunState current = RUN_STATE_PRELAUNCH;
static bool autostart = true;   /* INMIGRATE: start when migration ends */
static bool shutdown_requested;
static GArray *notifiers;

/* Nodes opened while inmigrate start inactive, as QEMU's. */
static void enter(RunState state)
{
    current = state;
    bdrv_set_incoming(state == RUN_STATE_INMIGRATE);
}

void runstate_init(RunState initial)
{
    enter(initial);
    autostart = initial != RUN_STATE_PRELAUNCH;
}

RunState runstate_get(void)
{
    return current;
}

const char *runstate_name(RunState s)
{
    return runstate_names[s];
}

bool runstate_is_running(void)
{
    return current == RUN_STATE_RUNNING;
}

bool runstate_autostart(void)
{
    return autostart;
}

void runstate_no_autostart(void)
{
    autostart = false;
}

void runstate_add_notifier(RunStateNotify *fn, void *opaque)
{
    Notifier n = { fn, opaque };

    if (!notifiers) {
        notifiers = g_array_new(FALSE, FALSE, sizeof(Notifier));
    }
    g_array_append_val(notifiers, n);
}

static void notify(bool running)
{
    for (guint i = 0; notifiers && i < notifiers->len; i++) {
        Notifier *n = &g_array_index(notifiers, Notifier, i);

        n->fn(n->opaque, running);
    }
}

void vm_stop(RunState state)
{
    if (!runstate_is_running()) {
        return;
    }
    enter(state);
    notify(false);
    qapi_event_send("STOP", NULL);
}

void runstate_set(RunState state)
{
    bool was_running = runstate_is_running();

    g_assert(state != RUN_STATE_RUNNING);
    enter(state);
    if (was_running) {
        notify(false);
    }
}

void vm_start(void)
{
    if (runstate_is_running()) {
        return;
    }
    qapi_event_send("RESUME", NULL);
    enter(RUN_STATE_RUNNING);
    notify(true);
}

void qmpd_request_shutdown(ShutdownCause cause)
{
    if (shutdown_requested) {
        return;
    }
    shutdown_requested = true;
    mon_prepare_exit();
    qapi_event_send("SHUTDOWN",
                    json_pack("{s:b,s:s}", "guest",
                              cause >= SHUTDOWN_CAUSE_GUEST_SHUTDOWN,
                              "reason", shutdown_cause_names[cause]));
}

bool qmpd_shutdown_requested(void)
{
    return shutdown_requested;
}

static bool qmp_query_status(const json_t *args, json_t **ret, Error **errp)
{
    /* member order as QEMU prints it */
    *ret = json_pack("{s:s,s:b,s:b}", "status", runstate_name(current),
                     "singlestep", 0, "running", runstate_is_running());
    return true;
}

static bool qmp_stop(const json_t *args, json_t **ret, Error **errp)
{
    if (current == RUN_STATE_INMIGRATE) {
        autostart = false;
    } else {
        vm_stop(RUN_STATE_PAUSED);
    }
    return true;
}

static bool qmp_cont(const json_t *args, json_t **ret, Error **errp)
{
    switch (current) {
    case RUN_STATE_INTERNAL_ERROR:
    case RUN_STATE_SHUTDOWN:
    case RUN_STATE_GUEST_PANICKED:
        error_setg(errp, "Resetting the Virtual Machine is required");
        return false;
    case RUN_STATE_SUSPENDED:
        return true;
    case RUN_STATE_FINISH_MIGRATE:
        error_setg(errp, "Migration is not finalized yet");
        return false;
    default:
        break;
    }
    /*
     * As QEMU: the io-status of every named backend is "ok" again
     * (one a device made on a -blockdev node keeps its own)
     */
    for (guint i = 0; i < blk_all()->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blk_all(), i);

        if (*blk_name(blk)) {
            blk_iostatus_reset(blk);
        }
    }
    /*
     * The images an incoming migration left inactive (late-block-
     * activate) are ours now; QEMU activates them even while inmigrate
     */
    if (!bdrv_activate_all(errp)) {
        return false;
    }
    if (current == RUN_STATE_INMIGRATE) {
        autostart = true;
    } else {
        vm_start();
    }
    return true;
}

static bool qmp_quit(const json_t *args, json_t **ret, Error **errp)
{
    qmpd_request_shutdown(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    return true;
}

const QapiHandler runstate_qmp_handlers[] = {
    { "query-status", qmp_query_status, NULL },
    { "stop", qmp_stop, NULL },
    { "cont", qmp_cont, NULL },
    { "quit", qmp_quit, NULL },
};

const size_t runstate_qmp_handlers_count = G_N_ELEMENTS(runstate_qmp_handlers);
