/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Migration capabilities and parameters, as QEMU 7.2 keeps and checks
 * them.  The parameters are one JSON object in MigrationParameters'
 * shape: migrate-set-parameters merges the request into a copy, checks
 * the copy in QEMU's order (so a limit that depends on another
 * parameter, max-cpu-throttle on cpu-throttle-initial, sees both new
 * values) and only then replaces the current object: all or nothing.
 *
 * A capability qmpd does not implement may be switched off but not on:
 * a management tool that asks for xbzrle must learn that it did not get
 * it, rather than migrate without it.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "migration/migration-int.h"
#include "qapi/qjson.h"

static const char *const mig_cap_names[MIG_CAP__MAX] = {
    [MIG_CAP_XBZRLE] = "xbzrle",
    [MIG_CAP_RDMA_PIN_ALL] = "rdma-pin-all",
    [MIG_CAP_AUTO_CONVERGE] = "auto-converge",
    [MIG_CAP_ZERO_BLOCKS] = "zero-blocks",
    [MIG_CAP_COMPRESS] = "compress",
    [MIG_CAP_EVENTS] = "events",
    [MIG_CAP_POSTCOPY_RAM] = "postcopy-ram",
    [MIG_CAP_X_COLO] = "x-colo",
    [MIG_CAP_RELEASE_RAM] = "release-ram",
    [MIG_CAP_BLOCK] = "block",
    [MIG_CAP_RETURN_PATH] = "return-path",
    [MIG_CAP_PAUSE_BEFORE_SWITCHOVER] = "pause-before-switchover",
    [MIG_CAP_MULTIFD] = "multifd",
    [MIG_CAP_DIRTY_BITMAPS] = "dirty-bitmaps",
    [MIG_CAP_POSTCOPY_BLOCKTIME] = "postcopy-blocktime",
    [MIG_CAP_LATE_BLOCK_ACTIVATE] = "late-block-activate",
    [MIG_CAP_X_IGNORE_SHARED] = "x-ignore-shared",
    [MIG_CAP_VALIDATE_UUID] = "validate-uuid",
    [MIG_CAP_BACKGROUND_SNAPSHOT] = "background-snapshot",
    [MIG_CAP_ZERO_COPY_SEND] = "zero-copy-send",
    [MIG_CAP_POSTCOPY_PREEMPT] = "postcopy-preempt",
};

/* What qmpd really does when the capability is on. */
static const bool mig_cap_implemented[MIG_CAP__MAX] = {
    [MIG_CAP_EVENTS] = true,
    [MIG_CAP_PAUSE_BEFORE_SWITCHOVER] = true,
    [MIG_CAP_RETURN_PATH] = true,
    [MIG_CAP_AUTO_CONVERGE] = true,
    [MIG_CAP_MULTIFD] = true,
    [MIG_CAP_BLOCK] = true,
    [MIG_CAP_ZERO_BLOCKS] = true,
    [MIG_CAP_DIRTY_BITMAPS] = true,
    [MIG_CAP_VALIDATE_UUID] = true,
    [MIG_CAP_LATE_BLOCK_ACTIVATE] = true,
};

static bool mig_caps[MIG_CAP__MAX];
static bool mig_block_for_one;  /* set by migrate's blk/inc */
static json_t *mig_params;      /* MigrationParameters, all members */

const char *mig_cap_name(MigCapability cap)
{
    return mig_cap_names[cap];
}

bool mig_cap_lookup(const char *name, MigCapability *cap)
{
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        if (!strcmp(mig_cap_names[i], name)) {
            *cap = i;
            return true;
        }
    }
    return false;
}

bool mig_cap_enabled(MigCapability cap)
{
    return mig_caps[cap];
}

static json_t *mig_params_get(void)
{
    if (!mig_params) {
        /* QEMU 7.2's defaults, in its schema's order */
        mig_params = json_pack(
            "{s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:i,s:i,s:i,s:i,s:b,s:s,s:s,s:s,"
            "s:I,s:I,s:i,s:b,s:i,s:I,s:I,s:i,s:s,s:i,s:i}",
            "announce-initial", 50, "announce-max", 550,
            "announce-rounds", 5, "announce-step", 100,
            "compress-level", 1, "compress-threads", 8,
            "compress-wait-thread", 1, "decompress-threads", 2,
            "throttle-trigger-threshold", 50, "cpu-throttle-initial", 20,
            "cpu-throttle-increment", 10, "cpu-throttle-tailslow", 0,
            "tls-creds", "", "tls-hostname", "", "tls-authz", "",
            "max-bandwidth", (json_int_t)(128 << 20),
            "downtime-limit", (json_int_t)300,
            "x-checkpoint-delay", 20000, "block-incremental", 0,
            "multifd-channels", 2,
            "xbzrle-cache-size", (json_int_t)(64 << 20),
            "max-postcopy-bandwidth", (json_int_t)0,
            "max-cpu-throttle", 99, "multifd-compression", "none",
            "multifd-zlib-level", 1, "multifd-zstd-level", 1);
    }
    return mig_params;
}

uint64_t mig_param_uint(const char *name)
{
    return qjson_get_uint(mig_params_get(), name);
}

bool mig_param_bool(const char *name)
{
    return qjson_get_bool(mig_params_get(), name);
}

/* "Parameter 'compress_level' expects ...": QEMU names them in C */
static void mig_param_error(Error **errp, const char *name,
                            const char *expects)
{
    g_autofree char *c = g_strdup(name);

    g_strdelimit(c, "-", '_');
    error_setg(errp, "Parameter '%s' expects %s", c, expects);
}

/* A node alias: a letter, then letters, digits, '-', '.' or '_'. */
static bool alias_well_formed(const char *s)
{
    if (!g_ascii_isalpha(*s)) {
        return false;
    }
    for (; *s; s++) {
        if (!g_ascii_isalnum(*s) && !strchr("-._", *s)) {
            return false;
        }
    }
    return true;
}

static bool bitmap_mapping_check(const json_t *map, Error **errp)
{
    g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) aliases = g_hash_table_new(g_str_hash,
                                                     g_str_equal);
    const char *pfx = "Invalid mapping given for block-bitmap-mapping: ";
    size_t i, j;
    json_t *n, *b;

    json_array_foreach(map, i, n) {
        const char *node = qjson_get_str(n, "node-name");
        const char *alias = qjson_get_str(n, "alias");
        g_autoptr(GHashTable) bnames = g_hash_table_new(g_str_hash,
                                                        g_str_equal);
        g_autoptr(GHashTable) baliases = g_hash_table_new(g_str_hash,
                                                          g_str_equal);

        if (strlen(alias) > 255) {
            error_setg(errp, "%sThe node alias '%s' is longer than 255 "
                       "bytes", pfx, alias);
            return false;
        }
        if (!alias_well_formed(alias)) {
            error_setg(errp, "%sThe node alias '%s' is not well-formed",
                       pfx, alias);
            return false;
        }
        if (!g_hash_table_add(names, (gpointer)node)) {
            error_setg(errp, "%sThe node name '%s' is mapped twice", pfx,
                       node);
            return false;
        }
        if (!g_hash_table_add(aliases, (gpointer)alias)) {
            error_setg(errp, "%sThe node alias '%s' is used twice", pfx,
                       alias);
            return false;
        }
        json_array_foreach(json_object_get(n, "bitmaps"), j, b) {
            const char *bname = qjson_get_str(b, "name");
            const char *balias = qjson_get_str(b, "alias");

            if (strlen(balias) > 255) {
                error_setg(errp, "%sThe bitmap alias '%s' is longer than "
                           "255 bytes", pfx, balias);
                return false;
            }
            if (!g_hash_table_add(bnames, (gpointer)bname)) {
                error_setg(errp, "%sThe bitmap '%s'/'%s' is mapped twice",
                           pfx, node, bname);
                return false;
            }
            if (!g_hash_table_add(baliases, (gpointer)balias)) {
                error_setg(errp, "%sThe bitmap alias '%s'/'%s' is used "
                           "twice", pfx, alias, balias);
                return false;
            }
        }
    }
    return true;
}

/* QEMU 7.2's migrate_params_check(), in its order, on merged @p. */
static bool mig_params_check(const json_t *p, Error **errp)
{
    static const struct {
        const char *name;
        uint64_t min, max;
        const char *expects;
    } ranges[] = {
        { "compress-level", 0, 9, "a value between 0 and 9" },
        { "compress-threads", 1, 255, "a value between 1 and 255" },
        { "decompress-threads", 1, 255, "a value between 1 and 255" },
        { "throttle-trigger-threshold", 1, 100,
          "an integer in the range of 1 to 100" },
        { "cpu-throttle-initial", 1, 99,
          "an integer in the range of 1 to 99" },
        { "cpu-throttle-increment", 1, 99,
          "an integer in the range of 1 to 99" },
        { "downtime-limit", 0, 2000 * 1000,
          "an integer in the range of 0 to (2000 * 1000) ms" },
        { "multifd-channels", 1, 255, "a value between 1 and 255" },
    };
    static const struct {
        const char *name;
        uint64_t min, max;
    } announce[] = {
        { "announce-initial", 0, 100000 },
        { "announce-max", 0, 100000 },
        { "announce-rounds", 0, 1000 },
        { "announce-step", 1, 10000 },
    };
    uint64_t xbzrle = qjson_get_uint(p, "xbzrle-cache-size");
    uint64_t maxcpu = qjson_get_uint(p, "max-cpu-throttle");

    for (size_t i = 0; i < G_N_ELEMENTS(ranges); i++) {
        uint64_t v = qjson_get_uint(p, ranges[i].name);

        if (v < ranges[i].min || v > ranges[i].max) {
            mig_param_error(errp, ranges[i].name, ranges[i].expects);
            return false;
        }
    }
    if (xbzrle < 4096 || (xbzrle & (xbzrle - 1))) {
        mig_param_error(errp, "xbzrle-cache-size", "a power of two no less "
                        "than the target page size");
        return false;
    }
    if (maxcpu < qjson_get_uint(p, "cpu-throttle-initial") || maxcpu > 99) {
        mig_param_error(errp, "max-cpu-throttle", "an integer in the range "
                        "of cpu_throttle_initial to 99");
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(announce); i++) {
        uint64_t v = qjson_get_uint(p, announce[i].name);

        if (v < announce[i].min || v > announce[i].max) {
            g_autofree char *e = g_strdup_printf("a value between 0 and %"
                                                 G_GUINT64_FORMAT,
                                                 announce[i].max);

            mig_param_error(errp, announce[i].name, e);
            return false;
        }
    }
    return !json_object_get(p, "block-bitmap-mapping")
        || bitmap_mapping_check(json_object_get(p, "block-bitmap-mapping"),
                                errp);
}

bool mig_params_set(const json_t *args, Error **errp)
{
    g_autoptr(json_t) p = json_deep_copy(mig_params_get());
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)args, key, v) {
        /* 7.2 takes both levels and keeps neither */
        if (!strcmp(key, "multifd-zlib-level")
            || !strcmp(key, "multifd-zstd-level")) {
            continue;
        }
        /* StrOrNull: null is the empty string */
        json_object_set_new(p, key, json_is_null(v) ? json_string("")
                            : json_deep_copy(v));
    }
    if (!mig_params_check(p, errp)) {
        return false;
    }
    json_decref(mig_params);
    mig_params = g_steal_pointer(&p);
    return true;
}

void mig_block_options_for_one(bool inc)
{
    mig_caps[MIG_CAP_BLOCK] = true;
    json_object_set_new(mig_params_get(), "block-incremental",
                        json_boolean(inc));
    mig_block_for_one = true;
}

void mig_block_options_drop(void)
{
    if (mig_block_for_one) {
        mig_caps[MIG_CAP_BLOCK] = false;
        json_object_set_new(mig_params_get(), "block-incremental",
                            json_false());
        mig_block_for_one = false;
    }
}

json_t *mig_params_query(void)
{
    return json_deep_copy(mig_params_get());
}

bool mig_caps_set(const json_t *list, Error **errp)
{
    bool caps[MIG_CAP__MAX];
    size_t i;
    json_t *c;

    if (mig_is_running()) {
        error_setg(errp, "There's a migration process in progress");
        return false;
    }
    memcpy(caps, mig_caps, sizeof(caps));
    json_array_foreach(list, i, c) {
        MigCapability cap;
        bool on = qjson_get_bool(c, "state");

        g_assert(mig_cap_lookup(qjson_get_str(c, "capability"), &cap));
        if (on && !mig_cap_implemented[cap]) {
            error_setg(errp, "Capability '%s' is not supported by qmpd",
                       mig_cap_names[cap]);
            return false;
        }
        caps[cap] = on;
    }
    memcpy(mig_caps, caps, sizeof(caps));
    return true;
}

json_t *mig_caps_query(void)
{
    json_t *list = json_array();

    for (int i = 0; i < MIG_CAP__MAX; i++) {
        json_array_append_new(list, json_pack("{s:s,s:b}", "capability",
                                              mig_cap_names[i], "state",
                                              mig_caps[i]));
    }
    return list;
}
