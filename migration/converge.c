/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auto-converge, QEMU 7.2's rule: once a second at most, at a read of
 * the dirty log, compare what the guest dirtied since the last check
 * with what went out meanwhile.  When the guest dirtied more than
 * throttle-trigger-threshold percent of it twice in a row, throttle
 * the guest's CPU (cpu-throttle-initial the first time, then
 * cpu-throttle-increment more, at most max-cpu-throttle; with
 * cpu-throttle-tailslow the step shrinks towards the share that would
 * make the dirty rate meet the threshold).  The throttle holds until
 * the migration ends, whatever way.  Here the guest's "CPU" is its
 * workload (system/workload.c), which slows down by the same share.
 */
#include "config.h"

#include <glib.h>

#include "migration/migration-int.h"
#include "system/workload.h"

#define MIG_CONVERGE_PERIOD_US 1000000
#define MIG_THROTTLE_MIN 1
#define MIG_THROTTLE_MAX 99

static struct {
    gint64 period_start;
    uint64_t xfer_prev;         /* transferred at the period's start */
    uint64_t dirty_period;      /* bytes the syncs found this period */
    unsigned high_cnt;
    unsigned pct;               /* 0: not throttling */
} conv;

static void mig_throttle_set(unsigned pct)
{
    conv.pct = CLAMP(pct, MIG_THROTTLE_MIN, MIG_THROTTLE_MAX);
    workload_set_throttle(conv.pct);
}

static void mig_throttle_down(uint64_t dirty, uint64_t threshold)
{
    unsigned initial = mig_param_uint("cpu-throttle-initial");
    unsigned increment = mig_param_uint("cpu-throttle-increment");
    unsigned max = mig_param_uint("max-cpu-throttle");
    unsigned inc = increment;

    if (!conv.pct) {
        mig_throttle_set(initial);
        return;
    }
    if (mig_param_bool("cpu-throttle-tailslow")) {
        double cpu_now = 100 - conv.pct;
        double cpu_ideal = cpu_now * ((double)threshold / dirty);

        inc = MIN((unsigned)(cpu_now - cpu_ideal), increment);
    }
    mig_throttle_set(MIN(conv.pct + inc, max));
}

void mig_converge_start(uint64_t transferred)
{
    conv.period_start = g_get_monotonic_time();
    conv.xfer_prev = transferred;
    conv.dirty_period = 0;
    conv.high_cnt = 0;
}

void mig_converge_sync(uint64_t dirty_bytes, uint64_t transferred)
{
    gint64 now = g_get_monotonic_time();
    uint64_t xfer, threshold;

    conv.dirty_period += dirty_bytes;
    if (now <= conv.period_start + MIG_CONVERGE_PERIOD_US) {
        return;
    }
    xfer = transferred - conv.xfer_prev;
    threshold = xfer * mig_param_uint("throttle-trigger-threshold") / 100;
    if (mig_cap_enabled(MIG_CAP_AUTO_CONVERGE)
        && conv.dirty_period > threshold && ++conv.high_cnt >= 2) {
        conv.high_cnt = 0;
        mig_throttle_down(conv.dirty_period, threshold);
    }
    conv.period_start = now;
    conv.xfer_prev = transferred;
    conv.dirty_period = 0;
}

unsigned mig_throttle_percentage(void)
{
    return conv.pct;
}

void mig_converge_stop(void)
{
    if (conv.pct) {
        conv.pct = 0;
        workload_set_throttle(0);
    }
}
