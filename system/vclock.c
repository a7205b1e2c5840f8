/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The virtual clock: host-driven, or test-driven under qtest. */
#include "config.h"

#include <glib.h>

#include "system/vclock.h"

static bool vclock_manual;
static int64_t vclock_start_us;
static int64_t vclock_now_ns;

void vclock_init(bool manual)
{
    vclock_manual = manual;
    vclock_start_us = g_get_monotonic_time();
    vclock_now_ns = 0;
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
    }
}
