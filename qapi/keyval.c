/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyval parsing in two steps: first every key=value pair goes into a
 * tree of objects (numeric key fragments are ordinary keys then), then
 * objects whose keys are exactly 0..n-1 become lists.  Messages follow
 * QEMU's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "qapi/keyval.h"
#include "qapi/qjson.h"

static bool key_char_ok(char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '_';
}

/* Read a value up to an unescaped ',' ("a,,b" is "a,b"). */
static const char *read_value(const char *s, GString *out)
{
    g_string_truncate(out, 0);
    for (;;) {
        if (*s == ',') {
            if (s[1] != ',') {
                break;
            }
            s++;
        } else if (!*s) {
            break;
        }
        g_string_append_c(out, *s++);
    }
    return s;
}

static bool put(json_t *root, const char *key, const char *value,
                Error **errp)
{
    g_auto(GStrv) parts = g_strsplit(key, ".", -1);
    json_t *cur = root;
    guint n = g_strv_length(parts);
    g_autoptr(GString) prefix = g_string_new(NULL);

    for (guint i = 0; i < n; i++) {
        const char *p = parts[i];
        json_t *next;

        if (!*p) {
            error_setg(errp, "Invalid parameter '%s'", key);
            return false;
        }
        for (const char *c = p; *c; c++) {
            if (!key_char_ok(*c)) {
                error_setg(errp, "Invalid parameter '%s'", key);
                return false;
            }
        }
        if (prefix->len) {
            g_string_append_c(prefix, '.');
        }
        g_string_append(prefix, p);
        next = json_object_get(cur, p);
        if (i + 1 == n) {
            if (next && !json_is_string(next)) {
                error_setg(errp, "Parameters '%s.*' used inconsistently",
                           prefix->str);
                return false;
            }
            json_object_set_new(cur, p, qjson_str(value));
            return true;
        }
        if (!next) {
            next = json_object();
            json_object_set_new(cur, p, next);
        } else if (!json_is_object(next)) {
            error_setg(errp, "Parameter '%s' used inconsistently",
                       prefix->str);
            return false;
        }
        cur = next;
    }
    return true;
}

/* Turn objects keyed 0..n-1 into lists, recursively. */
static json_t *listify(json_t *obj, const char *path, Error **errp)
{
    const char *key;
    json_t *val;
    bool numeric = json_object_size(obj) > 0;
    size_t n = json_object_size(obj);

    json_object_foreach(obj, key, val) {
        g_autofree char *sub = path[0] ? g_strdup_printf("%s.%s", path, key)
                                       : g_strdup(key);

        if (json_is_object(val)) {
            json_t *l = listify(val, sub, errp);

            if (!l) {
                return NULL;
            }
            if (l != val) {
                json_object_set_new(obj, key, l);
            }
        }
        if (!g_ascii_isdigit(key[0])) {
            numeric = false;
        }
    }
    if (!numeric) {
        json_object_foreach(obj, key, val) {
            if (g_ascii_isdigit(key[0])) {
                error_setg(errp, "Parameters '%s%s*' used inconsistently",
                           path, path[0] ? "." : "");
                return NULL;
            }
        }
        return obj;
    }
    {
        json_t *list = json_array();

        for (size_t i = 0; i < n; i++) {
            char idx[24];
            json_t *elem;

            snprintf(idx, sizeof(idx), "%zu", i);
            elem = json_object_get(obj, idx);
            if (!elem) {
                error_setg(errp, "Parameter '%s%s%zu' missing", path,
                           path[0] ? "." : "", i);
                json_decref(list);
                return NULL;
            }
            json_array_append(list, elem);
        }
        return list;
    }
}

json_t *keyval_parse(const char *params, const char *implied_key,
                     Error **errp)
{
    g_autoptr(json_t) root = json_object();
    g_autoptr(GString) key = g_string_new(NULL);
    g_autoptr(GString) val = g_string_new(NULL);
    const char *s = params;
    bool first = true;

    while (*s) {
        const char *eq = s;

        while (*eq && *eq != '=' && *eq != ',') {
            eq++;
        }
        if (*eq != '=') {
            if (first && implied_key) {
                s = read_value(s, val);
                if (!put(root, implied_key, val->str, errp)) {
                    return NULL;
                }
            } else {
                error_setg(errp, "Expected '=' after parameter '%.*s'",
                           (int)(eq - s), s);
                return NULL;
            }
        } else {
            g_string_assign(key, "");
            g_string_append_len(key, s, eq - s);
            s = read_value(eq + 1, val);
            if (!put(root, key->str, val->str, errp)) {
                return NULL;
            }
        }
        first = false;
        if (*s == ',') {
            s++;
        }
    }
    if (!keyval_make_lists(root, errp)) {
        return NULL;
    }
    return json_incref(root);
}

bool keyval_make_lists(json_t *root, Error **errp)
{
    json_t *out = listify(root, "", errp);

    if (out != root) {
        if (out) {
            json_decref(out);
            error_setg(errp, "Parameters '*' used inconsistently");
        }
        return false;
    }
    return true;
}
