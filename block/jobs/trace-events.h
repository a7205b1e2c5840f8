/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The job core's trace points (QEMU's names for the same moments):
 * each state transition, each verb applied, each job's end.
 */
#ifndef BLOCK_JOBS_TRACE_EVENTS_H
#define BLOCK_JOBS_TRACE_EVENTS_H

#include "util/trace.h"

#define JOB_TRACE_EVENTS(X)                     \
    X(job_state_transition)                     \
    X(job_apply_verb)                           \
    X(job_completed)

enum { JOB_TRACE_EVENTS(TRACE_INDEX) JOB_TRACE_COUNT };

extern TraceEvent job_trace[JOB_TRACE_COUNT];

#endif /* BLOCK_JOBS_TRACE_EVENTS_H */
