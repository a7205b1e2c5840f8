/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Live migration: the QMP and HMP interface of QEMU 7.2 (query-migrate,
 * capabilities, parameters, migrate, migrate-incoming, migrate_cancel,
 * migrate-continue) and, behind it, RAM pre-copy from one qmpd to
 * another over a stream of qmpd's own (docs/migration-stream.md).
 */
#ifndef MIGRATION_MIGRATION_H
#define MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"

/*
 * -incoming @uri: listen for the source now (tcp:, unix:), or read
 * from a command (exec:) or descriptor (fd:); "defer" waits for
 * migrate-incoming.  The guest must be in the inmigrate state.
 */
bool mig_in_start(const char *uri, Error **errp);

/* Register migration's trace points (migration/trace-events.h). */
void mig_trace_register(void);

/*
 * Whether the outgoing migration ended (or none runs); *@error_desc
 * (borrowed) the reason when it failed, else NULL.  HMP's migrate
 * without -d waits for this.
 */
bool mig_out_finished(const char **error_desc);

extern const QapiHandler mig_qmp_handlers[];
extern const size_t mig_qmp_handlers_count;

#endif /* MIGRATION_MIGRATION_H */
