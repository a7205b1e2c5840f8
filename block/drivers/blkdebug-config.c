/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkdebug's options that are read as text or checked against each
 * other, as QEMU 7.2 reads them: the limit options, the config file and
 * the legacy file name.
 *
 * The limit options (align, max-transfer, opt-/max-write-zero, opt-/
 * max-discard) are checked in QEMU's order, against the alignment that
 * applies (the node's, or its child's when larger; a maximum against its
 * optimum too), each below 2^31.
 *
 * The config file (the "config" option): "[inject-error]" and
 * "[set-state]" groups of `key = "value"` lines, read line by line with
 * QEMU's rules, quirks included: a line starting with '#' or empty is
 * skipped, a group line may carry an id (`[inject-error "x"]`), a value
 * must be quoted (an unquoted one reads as empty), text after the
 * closing quote is ignored, the last of a repeated key wins.  Values are
 * typed as QEMU's option lists type them (numbers in C's bases, booleans
 * on/off/yes/no/true/false/y/n); the rules themselves (event and iotype
 * names) are checked when they are added, after the whole file.
 *
 * The legacy file name "blkdebug:CONFIG:IMAGE" ("blkdebug::IMAGE"
 * without a config file): a blkdebug node over the file IMAGE.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/drivers/blkdebug-config.h"
#include "qapi/qjson.h"

/* The limit options, in the order QEMU checks them. */
enum {
    LIM_ALIGN,
    LIM_MAX_TRANSFER,
    LIM_OPT_WRITE_ZERO,
    LIM_MAX_WRITE_ZERO,
    LIM_OPT_DISCARD,
    LIM_MAX_DISCARD,
};
G_STATIC_ASSERT(LIM_MAX_DISCARD + 1 == BLKDEBUG_LIMITS);

static const char *const limit_names[BLKDEBUG_LIMITS] = {
    "align", "max-transfer", "opt-write-zero", "max-write-zero",
    "opt-discard", "max-discard",
};

/* The limit options' values (0 when absent); negative ones refused. */
bool blkdebug_read_limits(const json_t *opts, uint64_t v[BLKDEBUG_LIMITS],
                          Error **errp)
{
    for (int i = 0; i < BLKDEBUG_LIMITS; i++) {
        int64_t x = qjson_get_int_or(opts, limit_names[i], 0);

        if (x < 0) {
            error_setg(errp, "Parameter '%s' expects a non-negative number "
                       "below 2^64", limit_names[i]);
            return false;
        }
        v[i] = x;
    }
    return true;
}

bool blkdebug_check_limits(const uint64_t v[BLKDEBUG_LIMITS],
                           uint32_t child_align, BdrvLimits *bl,
                           Error **errp)
{
    uint64_t align;

    if (v[LIM_ALIGN] && (v[LIM_ALIGN] >= G_MAXINT32
                         || (v[LIM_ALIGN] & (v[LIM_ALIGN] - 1)))) {
        error_setg(errp, "Cannot meet constraints with align %" PRIu64,
                   v[LIM_ALIGN]);
        return false;
    }
    align = MAX(v[LIM_ALIGN], child_align);
    for (int i = LIM_MAX_TRANSFER; i < BLKDEBUG_LIMITS; i++) {
        /* a maximum must be a multiple of its optimum too */
        uint64_t a = i == LIM_MAX_WRITE_ZERO || i == LIM_MAX_DISCARD
            ? MAX(v[i - 1], align) : align;

        if (v[i] && (v[i] >= G_MAXINT32 || v[i] % a)) {
            error_setg(errp, "Cannot meet constraints with %s %" PRIu64,
                       limit_names[i], v[i]);
            return false;
        }
    }
    *bl = (BdrvLimits) {
        .request_alignment = v[LIM_ALIGN],
        .max_transfer = v[LIM_MAX_TRANSFER],
        .pwrite_zeroes_alignment = v[LIM_OPT_WRITE_ZERO],
        .max_pwrite_zeroes = v[LIM_MAX_WRITE_ZERO],
        .pdiscard_alignment = v[LIM_OPT_DISCARD],
        .max_pdiscard = v[LIM_MAX_DISCARD],
    };
    return true;
}

typedef enum {
    T_STR,
    T_NUM,
    T_BOOL,
} OptType;

typedef struct {
    const char *name;
    OptType type;
} OptDesc;

static const OptDesc inject_keys[] = {
    { "event", T_STR }, { "state", T_NUM }, { "iotype", T_STR },
    { "errno", T_NUM }, { "sector", T_NUM }, { "once", T_BOOL },
    { "immediately", T_BOOL }, { NULL, T_STR },
};

static const OptDesc set_state_keys[] = {
    { "event", T_STR }, { "state", T_NUM }, { "new_state", T_NUM },
    { NULL, T_STR },
};

/* A value as its key types it: a jansson value, or NULL with @errp set. */
static json_t *typed_value(const OptDesc *d, const char *v, Error **errp)
{
    char *end;
    unsigned long long n;

    switch (d->type) {
    case T_STR:
        return json_string(v);
    case T_NUM:
        /* C's bases and wrap-around for a minus sign, nothing after */
        errno = 0;
        n = strtoull(v, &end, 0);
        if (end == v || *end) {
            error_setg(errp, "Parameter '%s' expects a number", d->name);
            return NULL;
        }
        if (errno == ERANGE) {
            error_setg(errp, "Value '%s' is too large for parameter '%s'", v,
                       d->name);
            return NULL;
        }
        return json_integer((json_int_t)n);
    case T_BOOL:
        if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")
            || !strcmp(v, "y")) {
            return json_true();
        }
        if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")
            || !strcmp(v, "n")) {
            return json_false();
        }
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", d->name);
        return NULL;
    }
    g_assert_not_reached();
}

/* Set @key of @group (whose keys are @keys) from the text @value. */
static bool set_key(json_t *group, const OptDesc *keys, const char *key,
                    const char *value, Error **errp)
{
    for (const OptDesc *d = keys; d->name; d++) {
        if (!strcmp(d->name, key)) {
            json_t *v = typed_value(d, value, errp);

            return v && json_object_set_new(group, key, v) == 0;
        }
    }
    error_setg(errp, "Invalid parameter '%s'", key);
    return false;
}

bool blkdebug_read_config(const char *path, json_t *inject,
                          json_t *set_state, Error **errp)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    json_t *group = NULL;       /* borrowed from @inject or @set_state */
    const OptDesc *keys = NULL;
    bool ok = false;

    if (!f) {
        error_setg_errno(errp, errno, "Could not read blkdebug config file");
        return false;
    }
    while (fgets(line, sizeof(line), f)) {
        char name[64], value[1024];

        if (line[0] == '\n' || line[0] == '#') {
            continue;
        }
        if (sscanf(line, "[%63s \"%63[^\"]\"]", name, value) == 2
            || sscanf(line, "[%63[^]]]", name) == 1) {
            json_t *list;

            if (!strcmp(name, "inject-error")) {
                list = inject;
                keys = inject_keys;
            } else if (!strcmp(name, "set-state")) {
                list = set_state;
                keys = set_state_keys;
            } else {
                error_setg(errp, "There is no option group '%s'", name);
                goto out;
            }
            group = json_object();
            json_array_append_new(list, group);
            continue;
        }
        value[0] = '\0';
        if (sscanf(line, " %63s = \"%1023[^\"]\"", name, value) == 2
            || sscanf(line, " %63s = \"\"", name) == 1) {
            if (!group) {
                error_setg(errp, "no group defined");
                goto out;
            }
            if (!set_key(group, keys, name, value, errp)) {
                goto out;
            }
            continue;
        }
        error_setg(errp, "parse error");
        goto out;
    }
    ok = true;
out:
    fclose(f);
    return ok;
}

json_t *bdrv_filename_options(const char *filename, Error **errp)
{
    const char *rest = filename + strlen("blkdebug:");
    const char *colon;
    json_t *o;

    if (bdrv_filename_is_nbd(filename)) {
        return bdrv_nbd_filename_options(filename, errp);
    }
    /* qjson_str: a name read from an image header need not be UTF-8 */
    if (strncmp(filename, "blkdebug:", strlen("blkdebug:"))) {
        o = json_pack("{s:s}", "driver", "file");
        json_object_set_new(o, "filename", qjson_str(filename));
        return o;
    }
    colon = strchr(rest, ':');
    if (!colon || !colon[1]) {
        error_setg(errp, "blkdebug requires both config file and image "
                   "path");
        return NULL;
    }
    o = json_pack("{s:s,s:{s:s}}", "driver", "blkdebug", "image",
                  "driver", "file");
    json_object_set_new(json_object_get(o, "image"), "filename",
                        qjson_str(colon + 1));
    if (colon > rest) {
        json_object_set_new(o, "config",
                            json_stringn_nocheck(rest, colon - rest));
    }
    return o;
}

bool bdrv_filename_is_blkdebug(const char *filename)
{
    return !strncmp(filename, "blkdebug:", strlen("blkdebug:"));
}
