/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 runtime options: what QEMU 7.2 takes, with its defaults, its
 * checks in its order and its messages.
 *
 * Each option either works as in QEMU or is refused naming itself:
 * pass-discard-request/-snapshot/-other decide which freed clusters
 * are discarded on the file (qcow2-discard.c), overlap-check which
 * metadata writes are checked against (qcow2-overlap.c), the cache
 * sizes bound the L2 and refcount caches, cache-clean-interval drops
 * the tables not used for that long (qcow2-cache.c).  qmpd caches whole
 * L2 tables, so an l2-cache-entry-size other than the cluster size is
 * refused, and lazy refcounts are refused (refcounts are always written
 * in order, so the image never needs the repair a dirty one does).
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include "block/drivers/qcow2.h"
#include "qapi/qjson.h"

#define DEFAULT_L2_CACHE_MAX (32ull << 20)  /* QEMU 7.2 on Linux */
#define MIN_L2_CACHE_TABLES 2
#define MIN_RB_CACHE_TABLES 4
/*
 * Without a size given: QEMU keeps 4 refcount blocks, qmpd 16 (its
 * flushes apply frees block by block, and a reused cluster's block is
 * read synchronously when it is not cached).
 */
#define DEFAULT_RB_CACHE_TABLES 16
#define DEFAULT_CACHE_CLEAN_INTERVAL 600

static const char *const ol_flag_names[QCOW2_OL_BITS] = {
    "main-header", "active-l1", "active-l2", "refcount-table",
    "refcount-block", "snapshot-table", "inactive-l1", "inactive-l2",
    "bitmap-directory",
};

/* A QemuOpts size: QEMU refuses negative numbers with this message. */
static bool get_size(const json_t *opts, const char *key, uint64_t dflt,
                     uint64_t *v, Error **errp)
{
    int64_t n = qjson_get_int_or(opts, key, (int64_t)dflt);

    if (qjson_has(opts, key) && n < 0) {
        error_setg(errp, "Parameter '%s' expects a non-negative number "
                   "below 2^64", key);
        return false;
    }
    *v = qjson_has(opts, key) ? (uint64_t)n : dflt;
    return true;
}

bool qcow2_cache_sizes(const json_t *opts, uint32_t cluster_size,
                       uint64_t size, uint64_t *l2_tables,
                       uint64_t *rb_tables, Error **errp)
{
    bool combined_set = qjson_has(opts, "cache-size");
    bool l2_set = qjson_has(opts, "l2-cache-size");
    bool rb_set = qjson_has(opts, "refcount-cache-size");
    bool entry_set = qjson_has(opts, "l2-cache-entry-size");
    uint64_t min_rb = (uint64_t)MIN_RB_CACHE_TABLES * cluster_size;
    uint64_t max_l2 = align_up((size + cluster_size - 1) / cluster_size * 8,
                               cluster_size);
    uint64_t combined, l2_setting, l2, rb, entry;

    if (!get_size(opts, "cache-size", 0, &combined, errp)
        || !get_size(opts, "l2-cache-size", DEFAULT_L2_CACHE_MAX,
                     &l2_setting, errp)
        || !get_size(opts, "refcount-cache-size", 0, &rb, errp)
        || !get_size(opts, "l2-cache-entry-size", cluster_size, &entry,
                     errp)) {
        return false;
    }
    l2 = MIN(max_l2, l2_setting);
    if (combined_set) {
        if (l2_set && rb_set) {
            error_setg(errp, "cache-size, l2-cache-size and "
                       "refcount-cache-size may not be set at the same time");
            return false;
        } else if (l2_set && l2_setting > combined) {
            error_setg(errp, "l2-cache-size may not exceed cache-size");
            return false;
        } else if (rb > combined) {
            error_setg(errp, "refcount-cache-size may not exceed cache-size");
            return false;
        }
        if (l2_set) {
            rb = combined - l2;
        } else if (rb_set) {
            l2 = combined - rb;
        } else if (combined >= max_l2 + min_rb) {
            /* as much as it takes for the L2 cache, the rest refcounts */
            l2 = max_l2;
            rb = combined - l2;
        } else {
            rb = MIN(combined, min_rb);
            l2 = combined - rb;
        }
    }
    /* QEMU's slices when the cache does not cover the image */
    if (l2 < max_l2 && !entry_set) {
        entry = MIN(cluster_size, 4096);
    }
    if (entry < 512 || entry > cluster_size || (entry & (entry - 1))) {
        error_setg(errp, "L2 cache entry size must be a power of two "
                   "between 512 and the cluster size (%u)", cluster_size);
        return false;
    }
    if (l2 / entry > INT_MAX) {
        error_setg(errp, "L2 cache size too big");
        return false;
    }
    if (rb / cluster_size > INT_MAX) {
        error_setg(errp, "Refcount cache size too big");
        return false;
    }
    if (entry_set && entry != cluster_size) {
        error_setg(errp, "qmpd caches whole L2 tables: l2-cache-entry-size "
                   "must be the cluster size (%u)", cluster_size);
        return false;
    }
    /* the byte budget in whole tables */
    *l2_tables = MAX(MIN_L2_CACHE_TABLES, l2 / cluster_size);
    *rb_tables = combined_set || rb_set
        ? MAX(MIN_RB_CACHE_TABLES, rb / cluster_size)
        : DEFAULT_RB_CACHE_TABLES;
    return true;
}

static unsigned mode_bits(const char *mode)
{
    if (!strcmp(mode, "none")) {
        return 0;
    } else if (!strcmp(mode, "constant")) {
        return QCOW2_OL_CONSTANT;
    } else if (!strcmp(mode, "all")) {
        return QCOW2_OL_ALL;
    }
    return QCOW2_OL_CACHED;
}

/* "cached" unless said otherwise; the struct form overrides flags. */
static unsigned overlap_bits(const json_t *v)
{
    unsigned bits;

    if (!v) {
        return QCOW2_OL_CACHED;
    }
    if (json_is_string(v)) {
        return mode_bits(json_string_value(v));
    }
    bits = mode_bits(qjson_get_str_or(v, "template", "cached"));
    for (unsigned i = 0; i < QCOW2_OL_BITS; i++) {
        if (qjson_has(v, ol_flag_names[i])) {
            if (qjson_get_bool_or(v, ol_flag_names[i], false)) {
                bits |= 1u << i;
            } else {
                bits &= ~(1u << i);
            }
        }
    }
    return bits;
}

bool qcow2_options_parse(BlockNode *bn, const json_t *opts, bool unmap,
                         Qcow2Options *o, Error **errp)
{
    Qcow2State *s = bn->opaque;
    int64_t interval;

    if (!qcow2_cache_sizes(opts, s->cluster_size, bn->total_size,
                           &o->l2_cache_tables, &o->rb_cache_tables, errp)) {
        return false;
    }
    interval = qjson_get_int_or(opts, "cache-clean-interval",
                                DEFAULT_CACHE_CLEAN_INTERVAL);
    /* QEMU reads it unsigned: a negative number is a huge one */
    if (interval < 0 || interval > UINT32_MAX) {
        error_setg(errp, "Cache clean interval too big");
        return false;
    }
    o->cache_clean_interval = interval;
    if (qjson_get_bool_or(opts, "lazy-refcounts",
                          s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS)) {
        if (s->version < 3) {
            error_setg(errp, "Lazy refcounts require a qcow2 image with at "
                       "least qemu 1.1 compatibility level");
            return false;
        }
        /* an image with the feature bit is written as with it off */
        if (qjson_get_bool_or(opts, "lazy-refcounts", false)) {
            error_setg(errp, "qmpd does not support lazy-refcounts=on "
                       "(refcounts are always kept up to date)");
            return false;
        }
    }
    o->overlap_check = overlap_bits(json_object_get(opts, "overlap-check"));
    o->pass_discard[QCOW2_DISCARD_NEVER] = false;
    o->pass_discard[QCOW2_DISCARD_ALWAYS] = true;
    o->pass_discard[QCOW2_DISCARD_REQUEST] =
        qjson_get_bool_or(opts, "pass-discard-request", unmap);
    o->pass_discard[QCOW2_DISCARD_SNAPSHOT] =
        qjson_get_bool_or(opts, "pass-discard-snapshot", true);
    o->pass_discard[QCOW2_DISCARD_OTHER] =
        qjson_get_bool_or(opts, "pass-discard-other", false);
    return true;
}
