/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Migration's trace points (QEMU's names): each status change. */
#ifndef MIGRATION_TRACE_EVENTS_H
#define MIGRATION_TRACE_EVENTS_H

#include "util/trace.h"

#define MIG_TRACE_EVENTS(X)                     \
    X(migrate_set_state)

enum { MIG_TRACE_EVENTS(TRACE_INDEX) MIG_TRACE_COUNT };

extern TraceEvent mig_trace[MIG_TRACE_COUNT];

#endif /* MIGRATION_TRACE_EVENTS_H */
