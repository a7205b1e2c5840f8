/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The machine's UUID (-uuid), as query-uuid reports it.
 */
#ifndef SYSTEM_UUID_H
#define SYSTEM_UUID_H

#include <stdbool.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"

/* -uuid: QEMU's 8-4-4-4-12 hex form; false with QEMU's message else. */
bool uuid_parse_option(const char *arg, Error **errp);

extern const QapiHandler uuid_qmp_handlers[];
extern const size_t uuid_qmp_handlers_count;

#endif /* SYSTEM_UUID_H */
