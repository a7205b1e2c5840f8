/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jansson helpers: typed getters for validated arguments, constructors
 * that never fail on odd bytes, and the serializer that writes JSON the
 * way QEMU's monitor does (", " and ": " separators, \uXXXX escapes for
 * everything outside printable ASCII, doubles as %.17g, optional pretty
 * layout).
 *
 * Strings inside qmpd are "modified UTF-8" as in QEMU: U+0000 is the
 * byte pair C0 80, so every string is also a plain C string.
 *
 * Integers 2^63..2^64-1 have no jansson representation.  The parser
 * stores their bit pattern in a json_integer and records the node in a
 * "big" set (a GHashTable of json_t pointers) that travels with the
 * parsed document; the validator and the serializer consult it.
 */
#ifndef QAPI_QJSON_H
#define QAPI_QJSON_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)

/* A new string node holding @s (any bytes, no validation); never NULL. */
json_t *qjson_str(const char *s);

/* Getters for members the schema guarantees; they assert the type. */
const char *qjson_get_str(const json_t *obj, const char *key);
int64_t qjson_get_int(const json_t *obj, const char *key);
uint64_t qjson_get_uint(const json_t *obj, const char *key);
bool qjson_get_bool(const json_t *obj, const char *key);
double qjson_get_number(const json_t *obj, const char *key);

/* Getters for optional members: @dflt when absent. */
const char *qjson_get_str_or(const json_t *obj, const char *key,
                             const char *dflt);
int64_t qjson_get_int_or(const json_t *obj, const char *key, int64_t dflt);
uint64_t qjson_get_uint_or(const json_t *obj, const char *key,
                           uint64_t dflt);
bool qjson_get_bool_or(const json_t *obj, const char *key, bool dflt);

bool qjson_has(const json_t *obj, const char *key);

/* Is @v an integer recorded in @big (a value >= 2^63)?  @big may be NULL. */
bool qjson_is_big(GHashTable *big, const json_t *v);

/*
 * Append @v to @out as QEMU's monitor prints it.  @big may be NULL.
 * Pretty output uses "\n" and four-space indents; the monitor turns
 * "\n" into "\r\n" on the wire.
 */
void qjson_append_wire(GString *out, const json_t *v, GHashTable *big,
                       bool pretty);

/* Caller frees the result with g_free. */
char *qjson_to_wire(const json_t *v, bool pretty);

/*
 * Decode one modified-UTF-8 character of @s (at most @n bytes).  Returns
 * the code point, or -1 for an invalid or overlong sequence, an invalid
 * code point or the end of the string; *@end is set past what was read.
 */
int qjson_utf8_decode(const char *s, size_t n, const char **end);

/*
 * Encode code point @cp into @buf (5 bytes, NUL-terminated) as modified
 * UTF-8.  Returns the length, or -1 when @cp is not a valid character.
 */
int qjson_utf8_encode(char buf[5], int cp);

#endif /* QAPI_QJSON_H */
