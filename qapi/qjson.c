/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jansson helpers and QEMU-identical JSON output.  Output equality with
 * QEMU matters for tools that compare replies byte for byte, so string
 * escaping and number formatting follow QEMU's monitor exactly.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "qapi/qjson.h"

json_t *qjson_str(const char *s)
{
    json_t *v = json_stringn_nocheck(s, strlen(s));

    g_assert(v);
    return v;
}

static const json_t *member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    g_assert(v);
    return v;
}

const char *qjson_get_str(const json_t *obj, const char *key)
{
    const json_t *v = member(obj, key);

    g_assert(json_is_string(v));
    return json_string_value(v);
}

int64_t qjson_get_int(const json_t *obj, const char *key)
{
    const json_t *v = member(obj, key);

    g_assert(json_is_integer(v));
    return json_integer_value(v);
}

uint64_t qjson_get_uint(const json_t *obj, const char *key)
{
    /* The bit pattern is the value; QEMU also takes -1 as 2^64-1. */
    return (uint64_t)qjson_get_int(obj, key);
}

bool qjson_get_bool(const json_t *obj, const char *key)
{
    const json_t *v = member(obj, key);

    g_assert(json_is_boolean(v));
    return json_is_true(v);
}

double qjson_get_number(const json_t *obj, const char *key)
{
    const json_t *v = member(obj, key);

    g_assert(json_is_number(v));
    return json_number_value(v);
}

const char *qjson_get_str_or(const json_t *obj, const char *key,
                             const char *dflt)
{
    return qjson_has(obj, key) ? qjson_get_str(obj, key) : dflt;
}

int64_t qjson_get_int_or(const json_t *obj, const char *key, int64_t dflt)
{
    return qjson_has(obj, key) ? qjson_get_int(obj, key) : dflt;
}

uint64_t qjson_get_uint_or(const json_t *obj, const char *key, uint64_t dflt)
{
    return qjson_has(obj, key) ? qjson_get_uint(obj, key) : dflt;
}

bool qjson_get_bool_or(const json_t *obj, const char *key, bool dflt)
{
    return qjson_has(obj, key) ? qjson_get_bool(obj, key) : dflt;
}

bool qjson_has(const json_t *obj, const char *key)
{
    return obj && json_object_get(obj, key) != NULL;
}

bool qjson_is_big(GHashTable *big, const json_t *v)
{
    return big && g_hash_table_contains(big, v);
}

static bool codepoint_valid(int cp)
{
    if (cp < 0 || cp > 0x10FFFF) {
        return false;
    }
    if ((cp & 0xFFFFF800) == 0xD800) {
        return false;                   /* surrogates */
    }
    if ((cp & 0xFFFE) == 0xFFFE || (cp >= 0xFDD0 && cp <= 0xFDEF)) {
        return false;                   /* noncharacters */
    }
    return true;
}

int qjson_utf8_decode(const char *s, size_t n, const char **end)
{
    static const int min_cp[] = { 0x80, 0x800, 0x10000, 0x200000, 0x4000000 };
    const unsigned char *p = (const unsigned char *)s;
    unsigned lead, len, i;
    int cp;

    if (n == 0 || *p == 0) {
        *end = s;
        return -1;
    }
    lead = *p++;
    if (lead < 0x80) {
        *end = (const char *)p;
        return lead;
    }
    if (lead >= 0xFE || !(lead & 0x40)) {
        *end = (const char *)p;         /* 0xFE/0xFF or stray continuation */
        return -1;
    }
    for (len = 0; lead & (0x80 >> len); len++) {
        /* count the leading one bits */
    }
    cp = lead & ((0x80 >> len) - 1);
    for (i = 1; i < len; i++) {
        unsigned byte = i < n ? *p : 0;

        if ((byte & 0xC0) != 0x80) {
            *end = (const char *)p;
            return -1;
        }
        p++;
        cp = (cp << 6) | (byte & 0x3F);
    }
    *end = (const char *)p;
    if (!codepoint_valid(cp)) {
        return -1;
    }
    if (cp < min_cp[len - 2] && !(cp == 0 && len == 2)) {
        return -1;                      /* overlong, other than C0 80 */
    }
    return cp;
}

int qjson_utf8_encode(char buf[5], int cp)
{
    unsigned char *b = (unsigned char *)buf;
    int len;

    if (!codepoint_valid(cp)) {
        return -1;
    }
    if (cp > 0 && cp <= 0x7F) {
        b[0] = cp;
        len = 1;
    } else if (cp <= 0x7FF) {
        b[0] = 0xC0 | (cp >> 6);
        b[1] = 0x80 | (cp & 0x3F);
        len = 2;
    } else if (cp <= 0xFFFF) {
        b[0] = 0xE0 | (cp >> 12);
        b[1] = 0x80 | ((cp >> 6) & 0x3F);
        b[2] = 0x80 | (cp & 0x3F);
        len = 3;
    } else {
        b[0] = 0xF0 | (cp >> 18);
        b[1] = 0x80 | ((cp >> 12) & 0x3F);
        b[2] = 0x80 | ((cp >> 6) & 0x3F);
        b[3] = 0x80 | (cp & 0x3F);
        len = 4;
    }
    b[len] = 0;
    return len;
}

static void append_string(GString *out, const char *s)
{
    const char *end;
    int cp;

    g_string_append_c(out, '"');
    while (*s) {
        cp = qjson_utf8_decode(s, 6, &end);
        switch (cp) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (cp < 0) {
                cp = 0xFFFD;
            }
            if (cp > 0xFFFF) {
                g_string_append_printf(out, "\\u%04X\\u%04X",
                                       0xD800 + ((cp - 0x10000) >> 10),
                                       0xDC00 + ((cp - 0x10000) & 0x3FF));
            } else if (cp < 0x20 || cp >= 0x7F) {
                g_string_append_printf(out, "\\u%04X", cp);
            } else {
                g_string_append_c(out, cp);
            }
        }
        s = end;
    }
    g_string_append_c(out, '"');
}

static void append_indent(GString *out, bool pretty, int level)
{
    if (pretty) {
        g_string_append_c(out, '\n');
        for (int i = 0; i < level; i++) {
            g_string_append(out, "    ");
        }
    }
}

static void append_value(GString *out, const json_t *v, GHashTable *big,
                         bool pretty, int level)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        bool first = true;

        g_string_append_c(out, '{');
        json_object_foreach((json_t *)v, key, val) {
            if (!first) {
                g_string_append_c(out, ',');
                if (!pretty) {
                    g_string_append_c(out, ' ');
                }
            }
            first = false;
            append_indent(out, pretty, level + 1);
            append_string(out, key);
            g_string_append(out, ": ");
            append_value(out, val, big, pretty, level + 1);
        }
        /* QEMU breaks the line even for an empty object */
        append_indent(out, pretty, level);
        g_string_append_c(out, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *val;

        g_string_append_c(out, '[');
        json_array_foreach((json_t *)v, i, val) {
            if (i) {
                g_string_append_c(out, ',');
                if (!pretty) {
                    g_string_append_c(out, ' ');
                }
            }
            append_indent(out, pretty, level + 1);
            append_value(out, val, big, pretty, level + 1);
        }
        append_indent(out, pretty, level);
        g_string_append_c(out, ']');
        break;
    }
    case JSON_STRING:
        append_string(out, json_string_value(v));
        break;
    case JSON_INTEGER:
        if (qjson_is_big(big, v)) {
            g_string_append_printf(out, "%" PRIu64,
                                   (uint64_t)json_integer_value(v));
        } else {
            g_string_append_printf(out, "%" PRId64,
                                   (int64_t)json_integer_value(v));
        }
        break;
    case JSON_REAL:
        g_string_append_printf(out, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        g_string_append(out, "true");
        break;
    case JSON_FALSE:
        g_string_append(out, "false");
        break;
    case JSON_NULL:
        g_string_append(out, "null");
        break;
    }
}

void qjson_append_wire(GString *out, const json_t *v, GHashTable *big,
                       bool pretty)
{
    append_value(out, v, big, pretty, 0);
}

char *qjson_to_wire(const json_t *v, bool pretty)
{
    GString *out = g_string_new(NULL);

    qjson_append_wire(out, v, NULL, pretty);
    return g_string_free(out, FALSE);
}
