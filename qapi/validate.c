/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The validator walks a value and its schema type together, keeping the
 * path of names and list indexes that QEMU prints ("file.filename",
 * "capabilities[0].state"; keyval mode writes list indexes as ".0").
 *
 * Message rules copied from QEMU's behaviour (not its code):
 * - missing and unexpected members and wrong JSON types use the full
 *   path;
 * - enum values and the range checks of the sized integer types use the
 *   bare member name, or "null" inside a list;
 * - uint64 and size accept negative integers (their bit pattern), for
 *   backward compatibility, and say "expects uint64" otherwise;
 * - an alternate given the wrong JSON type names the alternate type.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "qapi/validate.h"

typedef struct {
    const char *name;   /* member name, or NULL for a list element */
    long index;
} PathElem;

typedef struct {
    GArray *path;       /* PathElem, outermost first */
    GHashTable *big;
    bool keyval;
    bool open_top;      /* the top object may carry undeclared members */
} Walk;

static const char *const intn_names[] = {
    [QAPI_BUILTIN_INT8] = "int8_t",
    [QAPI_BUILTIN_INT16] = "int16_t",
    [QAPI_BUILTIN_INT32] = "int32_t",
    [QAPI_BUILTIN_UINT8] = "uint8_t",
    [QAPI_BUILTIN_UINT16] = "uint16_t",
    [QAPI_BUILTIN_UINT32] = "uint32_t",
};

static void push(Walk *w, const char *name, long index)
{
    PathElem e = { name, index };

    g_array_append_val(w->path, e);
}

static void pop(Walk *w)
{
    g_array_set_size(w->path, w->path->len - 1);
}

/* The full path of the value being visited, QEMU style. */
static char *full_name(const Walk *w)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < w->path->len; i++) {
        const PathElem *e = &g_array_index(w->path, PathElem, i);

        if (e->name) {
            if (s->len) {
                g_string_append_c(s, '.');
            }
            g_string_append(s, e->name);
        } else if (w->keyval) {
            g_string_append_printf(s, ".%ld", e->index);
        } else {
            g_string_append_printf(s, "[%ld]", e->index);
        }
    }
    if (!s->len) {
        g_string_append(s, "<anonymous>");
    }
    return g_string_free(s, FALSE);
}

/* The bare name QEMU uses for enum and range errors. */
static const char *bare_name(const Walk *w)
{
    const PathElem *e;

    if (!w->path->len) {
        return "null";
    }
    e = &g_array_index(w->path, PathElem, w->path->len - 1);
    return e->name ? e->name : "null";
}

static void err_type(Walk *w, const char *expected, Error **errp)
{
    g_autofree char *n = full_name(w);

    error_setg(errp, "Invalid parameter type for '%s', expected: %s", n,
               expected);
}

static void err_value(Walk *w, bool full, const char *expected, Error **errp)
{
    g_autofree char *n = full ? full_name(w) : g_strdup(bare_name(w));

    error_setg(errp, "Parameter '%s' expects %s", n, expected);
}

static bool walk_value(Walk *w, const QapiType *t, json_t **slot,
                       Error **errp);

/* keyval: a scalar was expected but a dict or list was given. */
static bool keyval_scalar(Walk *w, const json_t *v, Error **errp)
{
    if (json_is_string(v)) {
        return true;
    }
    {
        g_autofree char *n = full_name(w);

        error_setg(errp, "Parameters '%s.*' are unexpected", n);
    }
    return false;
}

static bool check_string(Walk *w, const json_t *v, Error **errp)
{
    if (w->keyval) {
        return keyval_scalar(w, v, errp);
    }
    if (!json_is_string(v)) {
        err_type(w, "string", errp);
        return false;
    }
    return true;
}

static bool walk_int(Walk *w, const QapiType *t, json_t **slot, Error **errp)
{
    json_t *v = *slot;
    bool is_unsigned = t->builtin == QAPI_BUILTIN_UINT8
        || t->builtin == QAPI_BUILTIN_UINT16
        || t->builtin == QAPI_BUILTIN_UINT32
        || t->builtin == QAPI_BUILTIN_UINT64
        || t->builtin == QAPI_BUILTIN_SIZE;
    uint64_t u = 0;
    int64_t i = 0;

    if (w->keyval) {
        char *end;
        const char *s;

        if (!keyval_scalar(w, v, errp)) {
            return false;
        }
        s = json_string_value(v);
        errno = 0;
        if (t->builtin == QAPI_BUILTIN_SIZE) {
            if (!opts_parse_size(s, &u)) {
                err_value(w, true, "size", errp);
                return false;
            }
        } else if (is_unsigned) {
            u = strtoull(s, &end, 0);
            if (errno || end == s || *end || *s == '-') {
                err_value(w, true, "integer", errp);
                return false;
            }
        } else {
            i = strtoll(s, &end, 0);
            if (errno || end == s || *end) {
                err_value(w, true, "integer", errp);
                return false;
            }
        }
    } else if (is_unsigned) {
        if (!json_is_integer(v)) {
            err_value(w, true, "uint64", errp);
            return false;
        }
        u = (uint64_t)json_integer_value(v);
    } else {
        if (!json_is_integer(v) || qjson_is_big(w->big, v)) {
            err_type(w, "integer", errp);
            return false;
        }
        i = json_integer_value(v);
    }

    switch (t->builtin) {
    case QAPI_BUILTIN_INT8:
        if (i < INT8_MIN || i > INT8_MAX) {
            goto range;
        }
        break;
    case QAPI_BUILTIN_INT16:
        if (i < INT16_MIN || i > INT16_MAX) {
            goto range;
        }
        break;
    case QAPI_BUILTIN_INT32:
        if (i < INT32_MIN || i > INT32_MAX) {
            goto range;
        }
        break;
    case QAPI_BUILTIN_UINT8:
        if (u > UINT8_MAX) {
            goto range;
        }
        break;
    case QAPI_BUILTIN_UINT16:
        if (u > UINT16_MAX) {
            goto range;
        }
        break;
    case QAPI_BUILTIN_UINT32:
        if (u > UINT32_MAX) {
            goto range;
        }
        break;
    default:
        break;
    }
    if (w->keyval) {
        json_decref(*slot);
        *slot = json_integer(is_unsigned ? (json_int_t)u : i);
    }
    return true;

range:
    err_value(w, false, intn_names[t->builtin], errp);
    return false;
}

static bool walk_builtin(Walk *w, const QapiType *t, json_t **slot,
                         Error **errp)
{
    json_t *v = *slot;

    switch (t->builtin) {
    case QAPI_BUILTIN_STR:
        return check_string(w, v, errp);
    case QAPI_BUILTIN_BOOL:
        if (w->keyval) {
            const char *s;

            if (!keyval_scalar(w, v, errp)) {
                return false;
            }
            s = json_string_value(v);
            if (strcmp(s, "on") && strcmp(s, "off")) {
                err_value(w, true, "'on' or 'off'", errp);
                return false;
            }
            *slot = json_boolean(!strcmp(s, "on"));
            json_decref(v);
            return true;
        }
        if (!json_is_boolean(v)) {
            err_type(w, "boolean", errp);
            return false;
        }
        return true;
    case QAPI_BUILTIN_NUMBER:
        if (w->keyval) {
            char *end;
            double d;

            if (!keyval_scalar(w, v, errp)) {
                return false;
            }
            errno = 0;
            d = g_ascii_strtod(json_string_value(v), &end);
            if (errno || end == json_string_value(v) || *end
                || !isfinite(d)) {
                err_type(w, "number", errp);
                return false;
            }
            *slot = json_real(d);
            json_decref(v);
            return true;
        }
        if (!json_is_number(v)) {
            err_type(w, "number", errp);
            return false;
        }
        if (json_is_integer(v)) {
            double d = qjson_is_big(w->big, v)
                ? (double)(uint64_t)json_integer_value(v)
                : (double)json_integer_value(v);

            *slot = json_real(d);
            json_decref(v);
        }
        return true;
    case QAPI_BUILTIN_NULL:
        if (!json_is_null(v)) {
            err_type(w, "null", errp);
            return false;
        }
        return true;
    case QAPI_BUILTIN_ANY:
        return true;
    default:
        return walk_int(w, t, slot, errp);
    }
}

static bool walk_enum(Walk *w, const QapiType *t, json_t *v, Error **errp)
{
    if (!check_string(w, v, errp)) {
        return false;
    }
    if (qapi_enum_lookup(t, json_string_value(v)) < 0) {
        error_setg(errp, "Parameter '%s' does not accept value '%s'",
                   bare_name(w), json_string_value(v));
        return false;
    }
    return true;
}

/* Visit the members of @t present in @obj; mark them in @seen. */
static bool walk_members(Walk *w, const QapiType *t, json_t *obj,
                         GHashTable *seen, Error **errp)
{
    for (guint i = 0; i < t->members->len; i++) {
        const QapiMember *m = g_ptr_array_index(t->members, i);
        json_t *v = json_object_get(obj, m->name);
        bool ok;

        if (!v) {
            if (m->optional) {
                continue;
            }
            push(w, m->name, 0);
            {
                g_autofree char *n = full_name(w);

                error_setg(errp, "Parameter '%s' is missing", n);
            }
            pop(w);
            return false;
        }
        g_hash_table_add(seen, m->name);
        json_incref(v);
        push(w, m->name, 0);
        ok = walk_value(w, m->type, &v, errp);
        pop(w);
        if (ok) {
            json_object_set_nocheck(obj, m->name, v);
        }
        json_decref(v);
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool walk_object(Walk *w, const QapiType *t, json_t *obj,
                        Error **errp)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    const char *key;
    json_t *val;

    if (!json_is_object(obj)) {
        err_type(w, "object", errp);
        return false;
    }
    if (!walk_members(w, t, obj, seen, errp)) {
        return false;
    }
    if (t->kind == QAPI_KIND_UNION) {
        const char *tag = json_string_value(json_object_get(obj,
                                                            t->tag->name));
        const QapiType *vt = qapi_union_variant(t, tag);

        if (vt && !walk_members(w, vt, obj, seen, errp)) {
            return false;
        }
    }
    if (w->open_top && !w->path->len) {
        return true;
    }
    json_object_foreach(obj, key, val) {
        if (!g_hash_table_contains(seen, key)) {
            g_autofree char *n = NULL;

            push(w, key, 0);
            n = full_name(w);
            pop(w);
            error_setg(errp, "Parameter '%s' is unexpected", n);
            return false;
        }
    }
    return true;
}

static bool walk_array(Walk *w, const QapiType *t, json_t *arr,
                       Error **errp)
{
    size_t i;

    if (!json_is_array(arr)) {
        err_type(w, "array", errp);
        return false;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_incref(json_array_get(arr, i));
        bool ok;

        push(w, NULL, i);
        ok = walk_value(w, t->element, &v, errp);
        pop(w);
        if (ok) {
            json_array_set(arr, i, v);
        }
        json_decref(v);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* The alternate branch for the JSON type of @v, or NULL. */
static const QapiType *alternate_branch(const Walk *w, const QapiType *t,
                                        const json_t *v)
{
    for (guint i = 0; i < t->variants->len; i++) {
        const QapiVariant *var = g_ptr_array_index(t->variants, i);
        const QapiType *b = var->type;
        bool match = false;

        switch (json_typeof(v)) {
        case JSON_OBJECT:
            match = b->kind == QAPI_KIND_STRUCT || b->kind == QAPI_KIND_UNION;
            break;
        case JSON_ARRAY:
            match = b->kind == QAPI_KIND_ARRAY;
            break;
        case JSON_STRING:
            /* keyval strings may stand for any scalar branch */
            match = b->kind == QAPI_KIND_ENUM
                || (b->kind == QAPI_KIND_BUILTIN
                    && (b->builtin == QAPI_BUILTIN_STR || w->keyval));
            break;
        case JSON_INTEGER:
        case JSON_REAL:
            match = b->kind == QAPI_KIND_BUILTIN
                && b->builtin != QAPI_BUILTIN_STR
                && b->builtin != QAPI_BUILTIN_BOOL
                && b->builtin != QAPI_BUILTIN_NULL;
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            match = b->kind == QAPI_KIND_BUILTIN
                && b->builtin == QAPI_BUILTIN_BOOL;
            break;
        case JSON_NULL:
            match = b->kind == QAPI_KIND_BUILTIN
                && b->builtin == QAPI_BUILTIN_NULL;
            break;
        }
        if (match) {
            return b;
        }
    }
    return NULL;
}

static bool walk_value(Walk *w, const QapiType *t, json_t **slot,
                       Error **errp)
{
    switch (t->kind) {
    case QAPI_KIND_BUILTIN:
        return walk_builtin(w, t, slot, errp);
    case QAPI_KIND_ENUM:
        return walk_enum(w, t, *slot, errp);
    case QAPI_KIND_STRUCT:
    case QAPI_KIND_UNION:
        return walk_object(w, t, *slot, errp);
    case QAPI_KIND_ARRAY:
        return walk_array(w, t, *slot, errp);
    case QAPI_KIND_ALTERNATE: {
        const QapiType *b = alternate_branch(w, t, *slot);

        if (!b) {
            error_setg(errp, "Invalid parameter type for '%s', expected: %s",
                       bare_name(w), t->name);
            return false;
        }
        return walk_value(w, b, slot, errp);
    }
    }
    g_assert_not_reached();
}

bool qapi_validate(const QapiType *type, json_t *args, GHashTable *big,
                   Error **errp)
{
    Walk w = { .path = g_array_new(FALSE, FALSE, sizeof(PathElem)),
               .big = big };
    bool ok = walk_object(&w, type, args, errp);

    g_array_free(w.path, TRUE);
    return ok;
}

bool qapi_validate_open(const QapiType *type, json_t *args, GHashTable *big,
                        Error **errp)
{
    Walk w = { .path = g_array_new(FALSE, FALSE, sizeof(PathElem)),
               .big = big, .open_top = true };
    bool ok = walk_object(&w, type, args, errp);

    g_array_free(w.path, TRUE);
    return ok;
}

json_t *qapi_validate_keyval(const QapiType *type, const json_t *args,
                             Error **errp)
{
    Walk w = { .path = g_array_new(FALSE, FALSE, sizeof(PathElem)),
               .keyval = true };
    json_t *copy = json_deep_copy(args);
    bool ok = walk_object(&w, type, copy, errp);

    g_array_free(w.path, TRUE);
    if (!ok) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

bool qapi_validate_value(const QapiType *type, json_t *v, Error **errp)
{
    Walk w = { .path = g_array_new(FALSE, FALSE, sizeof(PathElem)) };
    json_t *slot = json_incref(v);
    bool ok = walk_value(&w, type, &slot, errp);

    json_decref(slot);
    g_array_free(w.path, TRUE);
    return ok;
}
