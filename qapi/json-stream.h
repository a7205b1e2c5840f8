/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP input path: bytes in, complete JSON values (or errors) out.
 * It splits a byte stream into messages exactly as QEMU 7.2 does -- the
 * same token rules (single-quoted strings included), the same error
 * recovery, the same limits (64 MiB of tokens, 2 Mi tokens, nesting
 * 1024) and the same "JSON parse error, ..." messages -- so a client
 * sees identical replies for identical garbage.
 */
#ifndef QAPI_JSON_STREAM_H
#define QAPI_JSON_STREAM_H

#include <stddef.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"

/*
 * Called once per message, in input order.  Exactly one of @value and
 * @err is non-NULL; the callee takes both, and @big (the set of integer
 * nodes >= 2^63, see qjson.h; NULL when there are none).
 */
typedef void QJsonStreamEmit(void *opaque, json_t *value, GHashTable *big,
                             Error *err);

typedef struct QJsonStream QJsonStream;

QJsonStream *qjson_stream_new(QJsonStreamEmit *emit, void *opaque);

/* Feed @len bytes; may call emit any number of times before returning. */
void qjson_stream_feed(QJsonStream *s, const char *buf, size_t len);

/* End of input: finish a pending token and parse what is buffered. */
void qjson_stream_flush(QJsonStream *s);

void qjson_stream_free(QJsonStream *s);

/*
 * Parse @str, which must hold exactly one JSON value (QEMU's syntax,
 * including single quotes).  Returns a new reference or NULL with @errp
 * set.  When @big is non-NULL it receives the set of integers >= 2^63
 * (or NULL).  Used for -blockdev '{...}' and tests.
 */
json_t *qjson_parse(const char *str, GHashTable **big, Error **errp);

#endif /* QAPI_JSON_STREAM_H */
