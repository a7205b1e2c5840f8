/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -drive throttling.*: QEMU 7.2 first renames the legacy keys (bps= is
 * throttling.bps-total=, and both at once are refused), reads each as a
 * QemuOpts number (base 0, a negative one wrapping to a huge unsigned,
 * which the range check then refuses), checks the whole before the
 * image is opened, and once the drive exists puts it in its group
 * (throttling.group, by default the drive's id) with those limits.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "system/drive-throttle.h"

/* legacy name, then QEMU's; the limits in ThrottleLimits' names */
static const char *const aliases[][2] = {
    { "iops", "throttling.iops-total" },
    { "iops_rd", "throttling.iops-read" },
    { "iops_wr", "throttling.iops-write" },
    { "bps", "throttling.bps-total" },
    { "bps_rd", "throttling.bps-read" },
    { "bps_wr", "throttling.bps-write" },
    { "iops_max", "throttling.iops-total-max" },
    { "iops_rd_max", "throttling.iops-read-max" },
    { "iops_wr_max", "throttling.iops-write-max" },
    { "bps_max", "throttling.bps-total-max" },
    { "bps_rd_max", "throttling.bps-read-max" },
    { "bps_wr_max", "throttling.bps-write-max" },
    { "iops_size", "throttling.iops-size" },
    { "group", "throttling.group" },
};

#define PREFIX "throttling."

bool drive_throttle_owns(const char *key)
{
    if (g_str_has_prefix(key, PREFIX)) {
        if (!strcmp(key + strlen(PREFIX), "group")) {
            return true;
        }
        for (int i = 0; throttle_limit_names[i]; i++) {
            if (!strcmp(key + strlen(PREFIX), throttle_limit_names[i])) {
                return true;
            }
        }
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++) {
        if (!strcmp(key, aliases[i][0])) {
            return true;
        }
    }
    return false;
}

bool drive_throttle_check_aliases(const Opts *d, Error **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++) {
        if (opts_has(d, aliases[i][0]) && opts_has(d, aliases[i][1])) {
            error_setg(errp, "'%s' and its alias '%s' can't be used at the "
                       "same time", aliases[i][1], aliases[i][0]);
            return false;
        }
    }
    return true;
}

/* The value of "throttling.@name" under either of its names, or NULL. */
static const char *get(const Opts *d, const char *name)
{
    g_autofree char *key = g_strconcat(PREFIX, name, NULL);

    if (opts_has(d, key)) {
        return opts_get(d, key);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++) {
        if (!strcmp(aliases[i][1], key) && opts_has(d, aliases[i][0])) {
            return opts_get(d, aliases[i][0]);
        }
    }
    return NULL;
}

/* QemuOpts' number: strtoull in base 0, a leading '-' wrapping. */
static bool parse_number(const char *name, const char *s, uint64_t *out,
                         Error **errp)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    if (!*s || *end || (errno && errno != ERANGE)) {
        error_setg(errp, "Parameter '" PREFIX "%s' expects a number", name);
        return false;
    }
    if (errno == ERANGE) {
        error_setg(errp, "Value '%s' is too large for parameter '" PREFIX
                   "%s'", s, name);
        return false;
    }
    return true;
}

bool drive_throttle_parse(const Opts *d, ThrottleConfig *cfg,
                          const char **group, Error **errp)
{
    throttle_config_init(cfg);
    for (int i = 0; throttle_limit_names[i]; i++) {
        const char *v = get(d, throttle_limit_names[i]);
        uint64_t n;

        if (!v) {
            continue;
        }
        if (!parse_number(throttle_limit_names[i], v, &n, errp)) {
            return false;
        }
        throttle_limit_set(cfg, i, n);
    }
    *group = get(d, "group");
    return throttle_is_valid(cfg, errp);
}

void drive_throttle_apply(BlockBackend *blk, const char *id,
                          const ThrottleConfig *cfg, const char *group)
{
    if (!throttle_enabled(cfg)) {
        return;
    }
    blk_io_limits_enable(blk, group ? group : id);
    throttle_group_set_config(blk_io_limits_group(blk), cfg);
}
