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

extern const QapiHandler mig_qmp_handlers[];
extern const size_t mig_qmp_handlers_count;

#endif /* MIGRATION_MIGRATION_H */
