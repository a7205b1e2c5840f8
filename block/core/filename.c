/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A node's file name, as QEMU 7.2 spells it in the queries: the plain
 * name of its file (or of its child, for a format or filter opened with
 * nothing its name does not imply), else "json:{...}" of the options
 * that matter (QEMU's bdrv_refresh_filename()), and a backing file name
 * resolved against its image's directory.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"
#include "qapi/qjson.h"

/*
 * @backing relative to the directory of the image @filename, spelt as
 * QEMU spells it (the image's directory prefix as written, no "./"), so
 * names shown in query-block match.
 */
char *bdrv_full_backing_filename(const char *filename, const char *backing)
{
    const char *slash;

    /* a name with a protocol prefix stands as it is, as in QEMU */
    if (!backing || g_path_is_absolute(backing) || !filename
        || bdrv_filename_is_blkdebug(backing)
        || bdrv_filename_is_nbd(backing) || bdrv_filename_is_json(backing)
        || g_str_has_prefix(filename, "json:")
        || !(slash = strrchr(filename, '/'))) {
        return g_strdup(backing);
    }
    return g_strdup_printf("%.*s%s", (int)(slash + 1 - filename), filename,
                           backing);
}

/* Only options that the file name already implies (or that do not
 * change what is opened) keep a plain file name. */
static bool plain_options(const BlockNode *bn)
{
    static const char *const implied[] = {
        "driver", "node-name", "file", "backing", "read-only", "cache",
        "discard", "detect-zeroes", "auto-read-only", "force-share",
        "filename", "locking", "aio",
        /* copy-on-read's, which QEMU takes out of the node's options */
        "bottom", NULL
    };
    const char *key;
    json_t *val;

    json_object_foreach(bn->options, key, val) {
        if (!g_strv_contains(implied, key)
            && !(bn->drv->json_opts
                 && g_strv_contains((const char *const *)bn->drv->json_opts,
                                    key))) {
            return false;
        }
    }
    return true;
}

/* QEMU's bdrv_backing_overridden(). */
static bool backing_overridden(const BlockNode *bn)
{
    const char *a = bn->auto_backing_file ? bn->auto_backing_file : "";

    if (!bn->drv->has_backing) {
        return false;
    }
    return bn->backing ? strcmp(a, bdrv_filename(bn->backing->child)) != 0
                       : *a != '\0';
}

/* A protocol's options that matter (cache, node-name... do not). */
static json_t *strong_options(const BlockNode *bn)
{
    json_t *o = json_object();

    for (const char *const *k = bn->drv->strong_opts; *k; k++) {
        json_t *v = json_object_get(bn->options, *k);

        if (v) {
            json_object_set(o, *k, v);
        }
    }
    return o;
}

/* The options that open @bn again (QEMU's full_open_options), keys in
 * QEMU's (sorted) order. */
static json_t *full_options(const BlockNode *bn)
{
    json_t *o;

    /* QEMU's implicit nodes show their child's, as if not there */
    if (bn->implicit) {
        return full_options(bn->file->child);
    }
    if (bn->drv->strong_opts) {
        return strong_options(bn);
    }
    if (!strcmp(bn->drv->name, "file")) {
        return json_pack("{s:s,s:s}", "driver", "file", "filename",
                         qjson_get_str(bn->options, "filename"));
    }
    if (!plain_options(bn) || !bn->file) {
        return json_deep_copy(bn->options);
    }
    o = json_object();
    if (backing_overridden(bn)) {
        json_object_set_new(o, "backing", bn->backing
                            ? full_options(bn->backing->child)
                            : json_null());
    }
    for (const char *const *k = bn->drv->json_opts; k && *k; k++) {
        json_t *v = json_object_get(bn->options, *k);

        if (v) {
            json_object_set(o, *k, v);
        }
    }
    json_object_set_new(o, "driver", qjson_str(bn->drv->name));
    json_object_set_new(o, bn->file->name, full_options(bn->file->child));
    return o;
}

void bdrv_refresh_filename(BlockNode *bn)
{
    char *own = bn->drv->plain_filename ? bn->drv->plain_filename(bn) : NULL;

    g_free(bn->filename);
    if (own) {
        bn->filename = own;
    } else if (bn->implicit) {
        /* QEMU's implicit nodes take their child's name and options */
        bn->filename = g_strdup(bdrv_filename(bn->file->child));
    } else if (!strcmp(bn->drv->name, "file")) {
        bn->filename = g_strdup(qjson_get_str(bn->options, "filename"));
    } else if (plain_options(bn) && bn->file && !backing_overridden(bn)
               && (bn->drv->is_format || bn->drv->is_filter)
               && !bn->drv->json_filename
               && !g_str_has_prefix(bdrv_filename(bn->file->child),
                                    "json:")) {
        /* a child known only by its options makes the parent so too */
        bn->filename = g_strdup(bdrv_filename(bn->file->child));
    } else {
        g_autoptr(json_t) o = full_options(bn);
        g_autofree char *j = qjson_to_wire(o, false);

        bn->filename = bn->drv->strong_opts && json_object_size(o) == 1
            ? g_strdup_printf("%s://", bn->drv->name)
            : g_strdup_printf("json:%s", j);
    }
}
