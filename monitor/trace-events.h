/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP monitor's trace points (QEMU's names): each request parsed,
 * each in-band request dispatched (its id), each line sent (replies,
 * events and the greeting).
 */
#ifndef MONITOR_TRACE_EVENTS_H
#define MONITOR_TRACE_EVENTS_H

#include "util/trace.h"

#define MON_TRACE_EVENTS(X)                     \
    X(handle_qmp_command)                       \
    X(monitor_qmp_cmd_in_band)                  \
    X(monitor_qmp_respond)

enum { MON_TRACE_EVENTS(TRACE_INDEX) MON_TRACE_COUNT };

extern TraceEvent mon_trace[MON_TRACE_COUNT];

#endif /* MONITOR_TRACE_EVENTS_H */
