/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virtual clock: host-driven, or test-driven under qtest.  Under
 * qtest I/O throttling measures its limits on it, as QEMU's does, and
 * its timers fire when the clock moves past them.
 */
#include "config.h"

#include <glib.h>

#include "block/core/throttle-groups.h"
#include "system/vclock.h"

static bool vclock_manual;
static int64_t vclock_start_us;
static int64_t vclock_now_ns;

void vclock_init(bool manual)
{
    vclock_manual = manual;
    vclock_start_us = g_get_monotonic_time();
    vclock_now_ns = 0;
    throttle_groups_use_clock(manual ? vclock_get_ns : NULL);
}

int64_t vclock_get_ns(void)
{
    if (vclock_manual) {
        return vclock_now_ns;
    }
    return (g_get_monotonic_time() - vclock_start_us) * 1000;
}

void vclock_warp(int64_t dest_ns)
{
    if (vclock_manual && dest_ns > vclock_now_ns) {
        vclock_now_ns = dest_ns;
        throttle_groups_clock_moved();
    }
}
