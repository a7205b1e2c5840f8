/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Monitors: QMP (mode=control) and HMP (mode=readline) on chardevs.  A
 * listening chardev serves any number of clients at once, each its own
 * session with its own negotiation state; events reach every negotiated
 * QMP session.
 */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor/chardev.h"
#include "qapi/dispatch.h"
#include "qapi/error.h"
#include "qapi/schema.h"

typedef enum MonMode {
    MON_MODE_CONTROL,
    MON_MODE_READLINE,
} MonMode;

/*
 * Set up the monitor subsystem: @schema (borrowed for the process
 * lifetime) drives dispatch and HMP; registers the event sink.
 */
void mon_init(QapiSchema *schema);

/* Add the QMP monitor's trace points to the registry. */
void mon_trace_register(void);

/*
 * Start-up self-check of the HMP table the schema's "hmp" entries
 * describe (every printer and handler exists).
 */
bool mon_check(QapiSchema *schema, Error **errp);

/*
 * Serve a monitor of @mode on the opened chardev @chr (taken).  Main
 * loop thread, after mon_init().
 */
bool mon_add(Chardev *chr, MonMode mode, bool pretty, Error **errp);

/*
 * The process is about to exit: sessions stop reading input and HMP
 * prints no further prompt (QEMU prints none after "quit").
 */
void mon_prepare_exit(void);

/* True once mon_prepare_exit() was called. */
bool mon_exiting(void);

/* True while a session still has output to write. */
bool mon_output_pending(void);

/* Close every session and listener (output already written is kept). */
void mon_cleanup(void);

/* The QMP handlers this subsystem provides. */
extern const QapiHandler mon_qmp_handlers[];
extern const size_t mon_qmp_handlers_count;

/* getfd and closefd (monitor/getfd.c) */
extern const QapiHandler mon_fd_qmp_handlers[];
extern const size_t mon_fd_qmp_handlers_count;

#endif /* MONITOR_MONITOR_H */
