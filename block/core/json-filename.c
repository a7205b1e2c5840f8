/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's "json:{...}" pseudo-protocol: a file name that holds the
 * options of the node it opens.  QEMU writes such names itself (a
 * backing file that is a blkdebug node or an NBD export with options,
 * after a commit or a snapshot over one), and tools pass them to -drive
 * file= and to the QMP commands that take a file name, so qmpd must
 * read them wherever it reads a file name.
 *
 * QEMU merges the name's options into the ones it opens with, the
 * explicit ones winning: -drive's format= overrides the name's driver.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"
#include "qapi/qjson.h"

#define JSON_PREFIX "json:"

bool bdrv_filename_is_json(const char *filename)
{
    return g_str_has_prefix(filename, JSON_PREFIX);
}

/* Move the dotted keys of @o ("file.filename") into nested objects, in
 * @o and the objects it holds, as QEMU's flattened options mean them. */
static bool nest_dotted(json_t *o, Error **errp)
{
    g_autoptr(GPtrArray) dotted = g_ptr_array_new_with_free_func(g_free);
    const char *key;
    json_t *val;

    json_object_foreach(o, key, val) {
        if (json_is_object(val) && !nest_dotted(val, errp)) {
            return false;
        }
        if (strchr(key, '.')) {
            g_ptr_array_add(dotted, g_strdup(key));
        }
    }
    for (guint i = 0; i < dotted->len; i++) {
        const char *k = g_ptr_array_index(dotted, i);
        g_auto(GStrv) parts = g_strsplit(k, ".", -1);
        guint n = g_strv_length(parts);
        json_t *at = o;

        for (guint j = 0; j + 1 < n; j++) {
            json_t *next = json_object_get(at, parts[j]);

            if (!next) {
                next = json_object();
                json_object_set_new(at, parts[j], next);
            } else if (!json_is_object(next)) {
                error_setg(errp, "Cannot mix scalar and non-scalar keys: "
                           "'%s' and '%s'", k, parts[j]);
                return false;
            }
            at = next;
        }
        if (json_object_get(at, parts[n - 1])) {
            error_setg(errp, "Duplicate key '%s'", k);
            return false;
        }
        json_object_set(at, parts[n - 1], json_object_get(o, k));
        json_object_del(o, k);
    }
    return true;
}

json_t *bdrv_json_filename_options(const char *filename, const char *format,
                                   Error **errp)
{
    g_autoptr(json_t) o = NULL;
    const BlockDriver *drv;
    const char *driver;
    json_error_t jerr;

    g_assert(bdrv_filename_is_json(filename));
    o = json_loads(filename + strlen(JSON_PREFIX),
                   JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!o) {
        error_setg(errp, "Could not parse the JSON options: JSON parse "
                   "error, %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        error_setg(errp, "Invalid JSON object given");
        return NULL;
    }
    if (!nest_dotted(o, errp)) {
        return NULL;
    }
    if (format) {
        json_object_set_new(o, "driver", qjson_str(format));
    }
    driver = qjson_get_str_or(o, "driver", NULL);
    if (!driver) {
        /* the caller probes what the file child holds */
        if (!json_is_object(json_object_get(o, "file"))
            && !json_is_string(json_object_get(o, "file"))) {
            error_setg(errp, "Must specify either driver or file");
            return NULL;
        }
        return g_steal_pointer(&o);
    }
    drv = bdrv_find_driver(driver);
    if (!drv) {
        error_setg(errp, "Unknown driver '%s'", driver);
        return NULL;
    }
    if (drv->is_format && !json_object_get(o, "file")) {
        /* QEMU does not hand a json: name's "filename" to a child */
        error_setg(errp, "A block device must be specified for \"file\"");
        return NULL;
    }
    return g_steal_pointer(&o);
}
