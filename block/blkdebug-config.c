/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkdebug's two text forms, as QEMU 7.2 reads them.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/blkdebug-config.h"
#include "block/block.h"
#include "qapi/qjson.h"

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

    if (strncmp(filename, "blkdebug:", strlen("blkdebug:"))) {
        return json_pack("{s:s,s:s}", "driver", "file", "filename",
                         filename);
    }
    colon = strchr(rest, ':');
    if (!colon || !colon[1]) {
        error_setg(errp, "blkdebug requires both config file and image "
                   "path");
        return NULL;
    }
    o = json_pack("{s:s,s:{s:s,s:s}}", "driver", "blkdebug", "image",
                  "driver", "file", "filename", colon + 1);
    if (colon > rest) {
        json_object_set_new(o, "config",
                            json_stringn(rest, colon - rest));
    }
    return o;
}

bool bdrv_filename_is_blkdebug(const char *filename)
{
    return !strncmp(filename, "blkdebug:", strlen("blkdebug:"));
}
