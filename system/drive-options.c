/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -drive's flat options as BlockdevOptions: QEMU's legacy spelling
 * (file=, format=, cache=, aio=, sizes with suffixes, dotted child
 * options) turned into what blockdev-add takes, so that -drive and
 * -blockdev are validated by the same schema type.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block/core/block.h"
#include "qapi/keyval.h"
#include "qapi/qjson.h"
#include "system/drive-options.h"
#include "system/drive-throttle.h"

/* @obj[@key] = @value for a dotted @key, creating the objects between. */
static bool set_dotted(json_t *obj, const char *key, const char *value,
                       Error **errp)
{
    g_auto(GStrv) parts = g_strsplit(key, ".", -1);
    json_t *o = obj;
    guint n = g_strv_length(parts);

    if (n == 0) {
        /* an empty key: kept, for the driver to refuse by its name */
        json_object_set_new(o, "", qjson_str(value));
        return true;
    }
    for (guint i = 0; i + 1 < n; i++) {
        json_t *next = json_object_get(o, parts[i]);

        if (!next) {
            next = json_object();
            json_object_set_new(o, parts[i], next);
        } else if (!json_is_object(next)) {
            error_setg(errp, "Parameter '%s' conflicts with '%s'", key,
                       parts[i]);
            return false;
        }
        o = next;
    }
    json_object_set_new(o, parts[n - 1], qjson_str(value));
    return true;
}

/* Options from JSON as -drive's keyval options hold them: strings. */
static void keyval_strings(json_t *v)
{
    const char *key;
    json_t *val;
    size_t i;

    json_object_foreach(v, key, val) {
        if (json_is_object(val) || json_is_array(val)) {
            keyval_strings(val);
        } else if (json_is_boolean(val)) {
            json_object_set_new(v, key, qjson_str(json_is_true(val) ? "on"
                                                                   : "off"));
        } else if (json_is_number(val)) {
            g_autofree char *n = qjson_to_wire(val, false);

            json_object_set_new(v, key, qjson_str(n));
        }
    }
    json_array_foreach(v, i, val) {
        if (json_is_object(val) || json_is_array(val)) {
            keyval_strings(val);
        } else if (json_is_boolean(val) || json_is_number(val)) {
            g_autofree char *n = json_is_boolean(val)
                ? g_strdup(json_is_true(val) ? "on" : "off")
                : qjson_to_wire(val, false);

            json_array_set_new(v, i, qjson_str(n));
        }
    }
}

/* qcow2 by its magic, else raw (with QEMU's warning). */
static const char *probe_format(const char *filename)
{
    unsigned char magic[4] = { 0 };
    int fd = open(filename, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, magic, sizeof(magic), 0) : -1;

    if (fd >= 0) {
        close(fd);
    }
    if (n == 4 && !memcmp(magic, "QFI\xfb", 4)) {
        return "qcow2";
    }
    if (fd >= 0) {
        fprintf(stderr, "WARNING: Image format was not specified for '%s' "
                "and probing guessed raw.\n"
                "         Automatically detecting the format is dangerous "
                "for raw images, write operations on block 0 will be "
                "restricted.\n"
                "         Specify the 'raw' format explicitly to remove the "
                "restrictions.\n", filename);
    }
    return "raw";
}

bool drive_cache_mode(const char *mode, bool *writeback, bool *direct,
                      bool *no_flush)
{
    static const struct {
        const char *name;
        bool writeback, direct, no_flush;
    } modes[] = {
        { "writeback", true, false, false },
        { "writethrough", false, false, false },
        { "none", true, true, false }, { "off", true, true, false },
        { "directsync", false, true, false },
        { "unsafe", true, false, true },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        if (!strcmp(mode, modes[i].name)) {
            *writeback = modes[i].writeback;
            *direct = modes[i].direct;
            *no_flush = modes[i].no_flush;
            return true;
        }
    }
    return false;
}

/*
 * QEMU's -drive hands each option to the driver of the node it is for,
 * whose own option list gives its type: these are the byte sizes among
 * the options of qmpd's drivers.  They take a suffix there (1M, 64k),
 * where BlockdevOptions (so blockdev-add and -blockdev) has them as
 * plain integers; the schema cannot tell them from the other integers.
 */
static const struct {
    const char *driver;
    const char *option;
} drive_size_options[] = {
    { "qcow2", "cache-size" }, { "qcow2", "l2-cache-size" },
    { "qcow2", "l2-cache-entry-size" }, { "qcow2", "refcount-cache-size" },
    { "raw", "offset" }, { "raw", "size" },
    { "null-co", "size" }, { "null-aio", "size" },
    { "blkdebug", "align" }, { "blkdebug", "max-transfer" },
    { "blkdebug", "opt-write-zero" }, { "blkdebug", "max-write-zero" },
    { "blkdebug", "opt-discard" }, { "blkdebug", "max-discard" },
};

/*
 * The driver of the node that -drive option @key (dotted: "file.size")
 * is for: @format for the top node, "X.driver" for child X, the file
 * driver for the child file= makes; NULL when not given.
 */
static const char *option_driver(const Opts *d, const char *key,
                                 const char *format)
{
    const char *dot = strrchr(key, '.');
    g_autofree char *child = NULL;
    g_autofree char *driver_key = NULL;

    if (!dot) {
        return format;
    }
    child = g_strndup(key, dot - key);
    driver_key = g_strconcat(child, ".driver", NULL);
    if (opts_has(d, driver_key)) {
        return opts_get(d, driver_key);
    }
    return !strcmp(child, "file") && opts_has(d, "file") ? "file" : NULL;
}

/*
 * A size option's value *@val in bytes (in *@bytes, and *@val points to
 * it), as the -drive option list reads it; other options are left.
 */
static bool size_option(const Opts *d, const char *key, const char *format,
                        const char **val, char **bytes, Error **errp)
{
    const char *driver = option_driver(d, key, format);
    const char *dot = strrchr(key, '.');
    const char *name = dot ? dot + 1 : key;
    uint64_t n;

    for (size_t i = 0; driver && i < G_N_ELEMENTS(drive_size_options);
         i++) {
        if (strcmp(drive_size_options[i].driver, driver)
            || strcmp(drive_size_options[i].option, name)) {
            continue;
        }
        if (!opts_parse_size(*val, &n)) {
            error_setg(errp, "Parameter '%s' expects a non-negative number "
                       "below 2^64", name);
            error_append_hint(errp, "Optional suffix k, M, G, T, P or E "
                              "means kilo-, mega-, giga-, tera-, peta-\n"
                              "and exabytes, respectively.\n");
            return false;
        }
        *val = *bytes = g_strdup_printf("%" PRIu64, n);
    }
    return true;
}

/* The keys -drive keeps for itself; the others are block options. */
static const char *const own[] = {
    "file", "format", "driver", "id", "if", "readonly", "read-only",
    "cache", "cache.writeback",
    "aio", "media", "index", "unit", "bus", "snapshot", "werror",
    "rerror", "serial", "copy-on-read", NULL
};

bool drive_check_file_or_driver(const Opts *d, Error **errp)
{
    if (opts_has(d, "file") || opts_has(d, "format")
        || opts_has(d, "driver")) {
        return true;
    }
    for (guint i = 0; i < opts_count(d); i++) {
        if (g_str_has_prefix(opts_key(d, i), "file.")) {
            return true;
        }
    }
    for (guint i = 0; i < opts_count(d); i++) {
        if (!g_strv_contains(own, opts_key(d, i))
            && !drive_throttle_owns(opts_key(d, i))) {
            error_setg(errp, "Must specify either driver or file");
            return false;
        }
    }
    return true;
}

json_t *drive_to_blockdev(const Opts *d, bool *writeback, Error **errp)
{
    const char *file = opts_get(d, "file");
    const char *format = opts_get(d, "format");
    const char *cache = opts_get(d, "cache");
    const char *aio = opts_get(d, "aio");
    g_autoptr(json_t) o = json_object();
    json_t *fo;
    json_t *f;

    bool file_opts = false;

    for (guint i = 0; i < opts_count(d); i++) {
        file_opts |= g_str_has_prefix(opts_key(d, i), "file.");
    }
    if (opts_has(d, "driver")) {
        if (format) {
            error_setg(errp, "Cannot specify both 'driver' and 'format'");
            return NULL;
        }
        format = opts_get(d, "driver");
    }
    g_assert(file || format || file_opts);
    if (opts_has(d, "snapshot") && strcmp(opts_get(d, "snapshot"), "off")) {
        error_setg(errp, "snapshot=on is not supported");
        return NULL;
    }
    /* a protocol driver (driver=null-co) or file.* options: no file child;
     * "blkdebug:CONFIG:IMAGE" is blkdebug over IMAGE, as in QEMU */
    if (file && bdrv_filename_is_json(file)) {
        /* the name holds the node's options, -drive's own win */
        fo = bdrv_json_filename_options(file, format, errp);
        if (!fo) {
            return NULL;
        }
        keyval_strings(fo);
        json_object_del(fo, "read-only");   /* -drive's readonly= rules */
        json_object_update(o, fo);
        json_decref(fo);
        fo = NULL;
        f = json_object_get(o, "file");
        format = qjson_get_str_or(o, "driver", NULL);
        if (!format) {
            format = json_is_object(f) && json_object_get(f, "filename")
                ? probe_format(qjson_get_str(f, "filename")) : "raw";
        }
        if (!f) {
            f = o;              /* a protocol node: aio is its own */
        }
    } else {
        fo = file ? bdrv_filename_options(file, errp) : NULL;
        if (file && !fo) {
            return NULL;
        }
        f = fo && json_object_get(fo, "image") ? json_object_get(fo, "image")
                                               : fo;
    }
    if (!format) {
        /* a file given by file.* options only: probed as QEMU's raw */
        format = f && json_object_get(f, "filename")
            ? probe_format(qjson_get_str(f, "filename")) : "raw";
    }
    json_object_set_new(o, "driver", qjson_str(format));
    if (fo) {
        json_object_set_new(o, "file", fo);
    }
    if (aio) {
        if (strcmp(aio, "native") && strcmp(aio, "threads")) {
            error_setg(errp, "invalid aio option");
            return NULL;
        }
        if (f) {
            json_object_set_new(f, "aio", qjson_str(aio));
        } else if (opts_has(d, "file.driver")
                   && (!strcmp(opts_get(d, "file.driver"), "file")
                       || !strcmp(opts_get(d, "file.driver"), "host_device"))
                   && !set_dotted(o, "file.aio", aio, errp)) {
            /* other protocol drivers ignore it, as QEMU's */
            return NULL;
        }
    }
    *writeback = true;
    if (cache) {
        bool direct, no_flush;

        if (!drive_cache_mode(cache, writeback, &direct, &no_flush)) {
            error_setg(errp, "invalid cache option");
            return NULL;
        }
        json_object_set_new(o, "cache", json_pack(
                                "{s:s,s:s}", "direct", direct ? "on" : "off",
                                "no-flush", no_flush ? "on" : "off"));
    }
    if (opts_has(d, "cache.writeback")) {
        Error *err = NULL;

        *writeback = opts_get_bool(d, "cache.writeback", true, &err);
        if (err) {
            error_propagate(errp, err);
            return NULL;
        }
    }
    if (opts_has(d, "media") && !strcmp(opts_get(d, "media"), "cdrom")) {
        /* a CD-ROM's medium is read-only, whatever readonly= says */
        json_object_set_new(o, "read-only", qjson_str("on"));
    } else if (opts_has(d, "readonly") || opts_has(d, "read-only")) {
        json_object_set_new(o, "read-only", qjson_str(
                                opts_get(d, opts_has(d, "readonly")
                                         ? "readonly" : "read-only")));
    }
    /* everything else is a BlockdevOptions member, dotted for children */
    for (guint i = 0; i < opts_count(d); i++) {
        const char *key = opts_key(d, i);

        const char *val = opts_get(d, key);
        g_autofree char *bytes = NULL;

        if (g_strv_contains(own, key) || drive_throttle_owns(key)) {
            continue;
        }
        /* QEMU's -drive takes a driver's size option with a suffix (1G) */
        if (!size_option(d, key, format, &val, &bytes, errp)) {
            return NULL;
        }
        /* and discard=on/off for unmap/ignore, on any node */
        if (!strcmp(key, "discard") || g_str_has_suffix(key, ".discard")) {
            if (!strcmp(val, "on") || !strcmp(val, "unmap")) {
                val = "unmap";
            } else if (!strcmp(val, "off") || !strcmp(val, "ignore")) {
                val = "ignore";
            } else {
                error_setg(errp, "Invalid discard option");
                return NULL;
            }
        }
        if (!set_dotted(o, key, val, errp)) {
            return NULL;
        }
    }
    return g_steal_pointer(&o);
}

bool drive_check_backing_names(const json_t *b, Error **errp)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)b, key, val) {
        if (!strcmp(key, "backing") && json_is_object(val)
            && !json_object_get(val, "driver")) {
            if (!drive_check_backing_names(val, errp)) {
                return false;
            }
        } else if (strcmp(key, "node-name")) {
            error_setg(errp, "Parameter 'backing.driver' is missing");
            return false;
        }
    }
    return true;
}
