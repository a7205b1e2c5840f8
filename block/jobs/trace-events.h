/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The jobs' trace points (QEMU's names for the same moments): each
 * state transition, each verb applied, each job's end, the QMP job
 * commands as they act, and stream, commit and mirror starting.
 */
#ifndef BLOCK_JOBS_TRACE_EVENTS_H
#define BLOCK_JOBS_TRACE_EVENTS_H

#include "util/trace.h"

#define JOB_TRACE_EVENTS(X)                     \
    X(job_state_transition)                     \
    X(job_apply_verb)                           \
    X(job_completed)                            \
    X(qmp_job_cancel)                           \
    X(qmp_job_pause)                            \
    X(qmp_job_resume)                           \
    X(qmp_job_complete)                         \
    X(qmp_job_finalize)                         \
    X(qmp_job_dismiss)                          \
    X(qmp_block_job_cancel)                     \
    X(qmp_block_job_pause)                      \
    X(qmp_block_job_resume)                     \
    X(qmp_block_job_complete)                   \
    X(qmp_block_job_finalize)                   \
    X(qmp_block_job_dismiss)                    \
    X(qmp_block_stream)                         \
    X(stream_start)                             \
    X(commit_start)                             \
    X(mirror_start)

enum { JOB_TRACE_EVENTS(TRACE_INDEX) JOB_TRACE_COUNT };

extern TraceEvent job_trace[JOB_TRACE_COUNT];

#endif /* BLOCK_JOBS_TRACE_EVENTS_H */
