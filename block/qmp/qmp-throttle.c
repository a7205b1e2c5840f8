/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A drive's I/O limits over QMP: block_set_io_throttle, and what
 * query-block shows of them, with QEMU 7.2's names (bps, bps_rd, ...,
 * bps_max, bps_max_length, iops_size, group) and its rules for which
 * appear.  The limits themselves live on the backend (backend.c) and
 * its throttle group (throttle-groups.c).
 */
#include "config.h"

#include <string.h>

#include "block/core/throttle-groups.h"
#include "block/qmp/qmp-block.h"
#include "qapi/qjson.h"

/* BlockIOThrottle's six rates: the name, and its bucket. */
static const struct {
    const char *name;
    ThrottleBucketType bucket;
} rates[] = {
    { "bps", THROTTLE_BPS_TOTAL }, { "bps_rd", THROTTLE_BPS_READ },
    { "bps_wr", THROTTLE_BPS_WRITE }, { "iops", THROTTLE_OPS_TOTAL },
    { "iops_rd", THROTTLE_OPS_READ }, { "iops_wr", THROTTLE_OPS_WRITE },
};

/* A member "NAME_max" or "NAME_max_length" of the rate @i. */
static char *member(size_t i, const char *suffix)
{
    return g_strconcat(rates[i].name, suffix, NULL);
}

/* @args (BlockIOThrottle) as a configuration, unchecked. */
static void config_from_args(const json_t *args, ThrottleConfig *cfg)
{
    throttle_config_init(cfg);
    for (size_t i = 0; i < G_N_ELEMENTS(rates); i++) {
        LeakyBucket *b = &cfg->buckets[rates[i].bucket];
        g_autofree char *max = member(i, "_max");
        g_autofree char *len = member(i, "_max_length");
        json_t *v;

        /* QEMU takes the int64s as unsigned: -1 is out of range */
        b->avg = (uint64_t)qjson_get_int(args, rates[i].name);
        if ((v = json_object_get(args, max))) {
            b->max = (uint64_t)json_integer_value(v);
        }
        if ((v = json_object_get(args, len))) {
            /* kept in an unsigned int, as QEMU does */
            b->burst_length = (uint32_t)json_integer_value(v);
        }
    }
    cfg->op_size = (uint64_t)qjson_get_int_or(args, "iops_size", 0);
}

bool blk_set_io_throttle(BlockBackend *blk, const json_t *args,
                         const char *default_group, Error **errp)
{
    const char *group = qjson_get_str_or(args, "group", NULL);
    ThrottleConfig cfg;

    config_from_args(args, &cfg);
    if (!throttle_is_valid(&cfg, errp)) {
        return false;
    }
    if (!throttle_enabled(&cfg)) {
        blk_io_limits_disable(blk);
        return true;
    }
    if (!blk_io_limits_group(blk)) {
        blk_io_limits_enable(blk, group ? group : default_group);
    } else if (group) {
        blk_io_limits_update_group(blk, group);
    }
    /* as in QEMU, the drive's limits become its whole group's */
    throttle_group_set_config(blk_io_limits_group(blk), &cfg);
    return true;
}

static bool qmp_block_set_io_throttle(const json_t *args, json_t **ret,
                                      Error **errp)
{
    BlockBackend *blk = qmp_get_blk(args, errp);
    const char *device = qjson_get_str_or(args, "device", NULL);

    if (!blk) {
        return false;
    }
    if (!blk_root(blk)) {
        error_setg(errp, "Device has no medium");
        return false;
    }
    return blk_set_io_throttle(blk, args, device ? device
                               : qjson_get_str(args, "id"), errp);
}

void blk_throttle_info(const BlockBackend *blk, json_t *ins)
{
    ThrottleGroup *tg = blk_io_limits_group(blk);
    ThrottleConfig cfg;

    if (!tg) {
        return;
    }
    throttle_group_get_config(tg, &cfg);
    for (size_t i = 0; i < G_N_ELEMENTS(rates); i++) {
        const LeakyBucket *b = &cfg.buckets[rates[i].bucket];
        g_autofree char *max = member(i, "_max");
        g_autofree char *len = member(i, "_max_length");

        json_object_set_new(ins, rates[i].name, json_integer(b->avg));
        /* a burst rate comes with its length; neither without it */
        if (b->max) {
            json_object_set_new(ins, max, json_integer(b->max));
            json_object_set_new(ins, len, json_integer(b->burst_length));
        }
    }
    if (cfg.op_size) {
        json_object_set_new(ins, "iops_size", json_integer(cfg.op_size));
    }
    json_object_set_new(ins, "group", qjson_str(throttle_group_name(tg)));
}

const QapiHandler throttle_qmp_handlers[] = {
    { "block_set_io_throttle", qmp_block_set_io_throttle, NULL },
};

const size_t throttle_qmp_handlers_count = G_N_ELEMENTS(throttle_qmp_handlers);
