/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The trace-event QMP and HMP commands over qmpd's trace points. */
#ifndef SYSTEM_TRACE_CMDS_H
#define SYSTEM_TRACE_CMDS_H

#include <stddef.h>

#include "monitor/hmp.h"
#include "qapi/dispatch.h"

extern const QapiHandler trace_qmp_handlers[];
extern const size_t trace_qmp_handlers_count;
extern const HmpHandler trace_hmp_handlers[];
extern const size_t trace_hmp_handlers_count;

#endif /* SYSTEM_TRACE_CMDS_H */
