/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Argument validation against the schema with QEMU 7.2's exact
 * messages.  Two input flavours, as in QEMU's input visitor:
 *
 * - JSON (QMP): values carry their JSON types.
 * - keyval (command line, -blockdev a=b,c.d=e): every scalar is a string
 *   and is converted to the member's type.
 *
 * Both check members in schema order, report the first problem, and only
 * then reject members the schema does not know, so the error a client
 * sees is the one QEMU would give.
 */
#ifndef QAPI_VALIDATE_H
#define QAPI_VALIDATE_H

#include <stdbool.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"
#include "qapi/schema.h"

/*
 * Check @args (JSON mode) against object type @type.  Values of type
 * 'number' are normalised to reals in place.  @big is the parser's set
 * of integers >= 2^63 (NULL if none).  Returns false with @errp set.
 */
bool qapi_validate(const QapiType *type, json_t *args, GHashTable *big,
                   Error **errp);

/*
 * As qapi_validate(), but members the type does not declare are left
 * for the handler (device_add's QOM properties, as QEMU's 'gen': false).
 */
bool qapi_validate_open(const QapiType *type, json_t *args, GHashTable *big,
                        Error **errp);

/*
 * Check @args (keyval mode: scalars are strings, from keyval_parse) and
 * return a new object with typed values.  NULL with @errp set on error.
 */
json_t *qapi_validate_keyval(const QapiType *type, const json_t *args,
                             Error **errp);

/* Check a single value @v against @type; used for event and reply data. */
bool qapi_validate_value(const QapiType *type, json_t *v, Error **errp);

#endif /* QAPI_VALIDATE_H */
