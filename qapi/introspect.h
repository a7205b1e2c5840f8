/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * query-qmp-schema and query-commands, built from the loaded schema in
 * QEMU's SchemaInfo format.  Type names are masked ("0", "1", ...; "int",
 * "str", ... for built-ins) because only command and event names are
 * interface; tools such as libvirt probe the structure, not the names.
 */
#ifndef QAPI_INTROSPECT_H
#define QAPI_INTROSPECT_H

#include <jansson.h>

#include "qapi/schema.h"

/* The SchemaInfo list; a new reference. */
json_t *qapi_introspect(const QapiSchema *s);

/* The CommandInfo list ([{"name": ...}]); a new reference. */
json_t *qapi_command_list(const QapiSchema *s);

#endif /* QAPI_INTROSPECT_H */
