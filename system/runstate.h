/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's run state (QEMU's RunState), the transitions stop/cont
 * make with their STOP/RESUME events, and process shutdown.
 */
#ifndef SYSTEM_RUNSTATE_H
#define SYSTEM_RUNSTATE_H

#include <stdbool.h>

#include "qapi/dispatch.h"

typedef enum RunState {
    RUN_STATE_DEBUG,
    RUN_STATE_INMIGRATE,
    RUN_STATE_INTERNAL_ERROR,
    RUN_STATE_IO_ERROR,
    RUN_STATE_PAUSED,
    RUN_STATE_POSTMIGRATE,
    RUN_STATE_PRELAUNCH,
    RUN_STATE_FINISH_MIGRATE,
    RUN_STATE_RESTORE_VM,
    RUN_STATE_RUNNING,
    RUN_STATE_SAVE_VM,
    RUN_STATE_SHUTDOWN,
    RUN_STATE_SUSPENDED,
    RUN_STATE_WATCHDOG,
    RUN_STATE_GUEST_PANICKED,
    RUN_STATE_COLO,
} RunState;

typedef enum ShutdownCause {
    SHUTDOWN_CAUSE_NONE,
    SHUTDOWN_CAUSE_HOST_ERROR,
    SHUTDOWN_CAUSE_HOST_QMP_QUIT,
    SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET,
    SHUTDOWN_CAUSE_HOST_SIGNAL,
    SHUTDOWN_CAUSE_HOST_UI,
    SHUTDOWN_CAUSE_GUEST_SHUTDOWN,
    SHUTDOWN_CAUSE_GUEST_RESET,
    SHUTDOWN_CAUSE_GUEST_PANIC,
    SHUTDOWN_CAUSE_SUBSYSTEM_RESET,
    SHUTDOWN_CAUSE_SNAPSHOT_LOAD,
} ShutdownCause;

/* Called with (opaque, running) on every change of runstate_is_running(). */
typedef void RunStateNotify(void *opaque, bool running);

/* Start in @initial: RUNNING, PRELAUNCH (-S) or INMIGRATE (-incoming). */
void runstate_init(RunState initial);

RunState runstate_get(void);
const char *runstate_name(RunState s);
bool runstate_is_running(void);

/* Pause the guest into @state; STOP is sent if it was running. */
void vm_stop(RunState state);

/* Run the guest; RESUME is sent if it was not running. */
void vm_start(void);

/*
 * Enter @state without events (migration's finish-migrate and
 * postmigrate, and inmigrate's end when the guest stays paused); not
 * RUNNING, which only vm_start() enters.
 */
void runstate_set(RunState state);

void runstate_add_notifier(RunStateNotify *fn, void *opaque);

/* INMIGRATE: whether the guest runs once the migration completes. */
bool runstate_autostart(void);

/* -S with -incoming: the guest stays paused after the migration. */
void runstate_no_autostart(void);

/*
 * Ask the process to exit: SHUTDOWN with @cause is sent now, the main
 * loop ends once monitors have written their output.
 */
void qmpd_request_shutdown(ShutdownCause cause);
bool qmpd_shutdown_requested(void);

extern const QapiHandler runstate_qmp_handlers[];
extern const size_t runstate_qmp_handlers_count;

#endif /* SYSTEM_RUNSTATE_H */
