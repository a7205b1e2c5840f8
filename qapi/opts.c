/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QemuOpts-style parsing.  Kept deliberately small: a list of key/value
 * pairs and typed getters.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qapi/opts.h"

struct Opts {
    GPtrArray *keys;
    GPtrArray *values;
};

void opts_free(Opts *o)
{
    if (!o) {
        return;
    }
    g_ptr_array_unref(o->keys);
    g_ptr_array_unref(o->values);
    g_free(o);
}

static const char *read_part(const char *s, GString *out, bool stop_at_eq)
{
    g_string_truncate(out, 0);
    for (;;) {
        if (*s == ',') {
            if (s[1] != ',') {
                break;
            }
            s++;
        } else if (!*s || (stop_at_eq && *s == '=')) {
            break;
        }
        g_string_append_c(out, *s++);
    }
    return s;
}

Opts *opts_parse(const char *str, const char *implied,
                 const char *const *known, const char *const *bools,
                 Error **errp)
{
    g_autoptr(Opts) o = g_new0(Opts, 1);
    g_autoptr(GString) key = g_string_new(NULL);
    g_autoptr(GString) val = g_string_new(NULL);
    const char *s = str;
    bool first = true;

    o->keys = g_ptr_array_new_with_free_func(g_free);
    o->values = g_ptr_array_new_with_free_func(g_free);
    while (*s) {
        s = read_part(s, key, true);
        if (*s == '=') {
            s = read_part(s + 1, val, false);
        } else if (first && implied) {
            g_string_assign(val, key->str);
            g_string_assign(key, implied);
        } else {
            /* bare "flag" or "noflag" */
            bool neg = g_str_has_prefix(key->str, "no")
                && bools && !g_strv_contains(bools, key->str);

            if (neg) {
                g_string_erase(key, 0, 2);
            }
            if (!bools || !g_strv_contains(bools, key->str)) {
                error_setg(errp, "Invalid parameter '%s'", key->str);
                return NULL;
            }
            g_string_assign(val, neg ? "off" : "on");
        }
        if (known && !g_strv_contains(known, key->str)) {
            error_setg(errp, "Invalid parameter '%s'", key->str);
            return NULL;
        }
        g_ptr_array_add(o->keys, g_strdup(key->str));
        g_ptr_array_add(o->values, g_strdup(val->str));
        first = false;
        if (*s == ',') {
            s++;
        }
    }
    return g_steal_pointer(&o);
}

const char *opts_get(const Opts *o, const char *key)
{
    for (guint i = o->keys->len; i > 0; i--) {
        if (!strcmp(g_ptr_array_index(o->keys, i - 1), key)) {
            return g_ptr_array_index(o->values, i - 1);
        }
    }
    return NULL;
}

bool opts_has(const Opts *o, const char *key)
{
    return opts_get(o, key) != NULL;
}

guint opts_count(const Opts *o)
{
    return o->keys->len;
}

const char *opts_key(const Opts *o, guint i)
{
    return g_ptr_array_index(o->keys, i);
}

bool opts_parse_bool(const char *key, const char *v, bool *out,
                     Error **errp)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")
        || !strcmp(v, "y")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")
        || !strcmp(v, "n")) {
        *out = false;
        return true;
    }
    error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
    return false;
}

bool opts_get_bool(const Opts *o, const char *key, bool dflt, Error **errp)
{
    const char *v = opts_get(o, key);
    bool b = dflt;

    if (v) {
        opts_parse_bool(key, v, &b, errp);
    }
    return b;
}

bool opts_id_wellformed(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

bool opts_parse_size(const char *s, uint64_t *out)
{
    char *end;
    double d;
    uint64_t mul;

    if (!*s || *s == '-' || g_ascii_isspace(*s)) {
        return false;
    }
    errno = 0;
    {
        /* plain integers stay exact beyond 2^53 */
        unsigned long long u = strtoull(s, &end, 10);

        if (!errno && end != s && (!*end || ((*end == 'B' || *end == 'b')
                                             && !end[1]))) {
            *out = u;
            return true;
        }
    }
    errno = 0;
    d = g_ascii_strtod(s, &end);
    if (errno || end == s) {
        return false;
    }
    switch (*end) {
    case '\0': mul = 1; break;
    case 'B': case 'b': mul = 1; break;
    case 'K': case 'k': mul = 1ULL << 10; break;
    case 'M': case 'm': mul = 1ULL << 20; break;
    case 'G': case 'g': mul = 1ULL << 30; break;
    case 'T': case 't': mul = 1ULL << 40; break;
    case 'P': case 'p': mul = 1ULL << 50; break;
    case 'E': case 'e': mul = 1ULL << 60; break;
    default: return false;
    }
    if (*end && end[1]) {
        return false;
    }
    if (d < 0 || !isfinite(d) || d * mul >= 0x1p64
        || (mul == 1 && d != floor(d))) {
        return false;
    }
    *out = (uint64_t)(d * mul);
    return true;
}

bool opts_get_size(const Opts *o, const char *key, uint64_t dflt,
                   uint64_t *out, Error **errp)
{
    const char *v = opts_get(o, key);

    if (!v) {
        *out = dflt;
        return true;
    }
    if (!opts_parse_size(v, out)) {
        error_setg(errp, "Parameter '%s' expects a non-negative number "
                   "below 2^64", key);
        return false;
    }
    return true;
}
