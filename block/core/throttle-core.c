/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The leaky buckets behind I/O throttling, as QEMU 7.2 computes them.
 *
 * Each limit is a bucket.  A request that goes pours its size (bytes, or
 * operations: one, or size / iops-size when that is set and smaller)
 * into the buckets of its direction and of the total; buckets leak at
 * their rate (avg per second).  A request may go while every bucket of
 * its kind holds no more than its size:
 *
 *     no burst rate:   avg / 10          (a tenth of a second of slack,
 *                                         so requests are not all held)
 *     burst rate max:  max * burst_length, and a second bucket, leaking
 *                      at max, that holds no more than max / 10
 *
 * and otherwise waits until the fullest bucket has leaked its excess:
 * excess / rate seconds.  So a long-run rate is avg, a burst can go at
 * max for burst_length seconds, and the waits are computed, not polled.
 */
#include "config.h"

#include <glib.h>

#include "block/core/throttle-core.h"

#define NS_PER_SEC 1000000000.0

void throttle_config_init(ThrottleConfig *cfg)
{
    *cfg = (ThrottleConfig){ 0 };
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        cfg->buckets[i].burst_length = 1;
    }
}

bool throttle_enabled(const ThrottleConfig *cfg)
{
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        if (cfg->buckets[i].avg > 0) {
            return true;
        }
    }
    return false;
}

/* Is a total limit set along with a read or write one, in @field? */
static bool total_and_rw(const ThrottleConfig *cfg, ThrottleBucketType total,
                         bool use_max)
{
    const LeakyBucket *b = cfg->buckets;
#define V(i) (use_max ? b[(i)].max : b[(i)].avg)
    return V(total) && (V(total + 1) || V(total + 2));
#undef V
}

bool throttle_is_valid(const ThrottleConfig *cfg, Error **errp)
{
    if (total_and_rw(cfg, THROTTLE_BPS_TOTAL, false)
        || total_and_rw(cfg, THROTTLE_OPS_TOTAL, false)
        || total_and_rw(cfg, THROTTLE_BPS_TOTAL, true)
        || total_and_rw(cfg, THROTTLE_OPS_TOTAL, true)) {
        error_setg(errp, "bps/iops/max total values and read/write values "
                   "cannot be used at the same time");
        return false;
    }
    if (cfg->op_size && !cfg->buckets[THROTTLE_OPS_TOTAL].avg
        && !cfg->buckets[THROTTLE_OPS_READ].avg
        && !cfg->buckets[THROTTLE_OPS_WRITE].avg) {
        error_setg(errp, "iops size requires an iops value to be set");
        return false;
    }
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        const LeakyBucket *bkt = &cfg->buckets[i];

        if (bkt->avg > THROTTLE_VALUE_MAX || bkt->max > THROTTLE_VALUE_MAX) {
            error_setg(errp, "bps/iops/max values must be within [0, %llu]",
                       THROTTLE_VALUE_MAX);
            return false;
        }
        if (!bkt->burst_length) {
            error_setg(errp, "the burst length cannot be 0");
            return false;
        }
        if (bkt->burst_length > 1 && !bkt->max) {
            error_setg(errp, "burst length set without burst rate");
            return false;
        }
        if (bkt->max && bkt->burst_length > THROTTLE_VALUE_MAX / bkt->max) {
            error_setg(errp, "burst length too high for this burst rate");
            return false;
        }
        if (bkt->max && !bkt->avg) {
            error_setg(errp, "bps_max/iops_max require corresponding "
                       "bps/iops values");
            return false;
        }
        if (bkt->max && bkt->max < bkt->avg) {
            error_setg(errp, "bps_max/iops_max cannot be lower than bps/iops");
            return false;
        }
    }
    return true;
}

void throttle_config(ThrottleState *ts, const ThrottleConfig *cfg,
                     int64_t now_ns)
{
    ts->cfg = *cfg;
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        ts->cfg.buckets[i].level = 0;
        ts->cfg.buckets[i].burst_level = 0;
    }
    ts->previous_leak = now_ns;
}

void throttle_leak_bucket(LeakyBucket *bkt, int64_t delta_ns)
{
    double leak = bkt->avg * (double)delta_ns / NS_PER_SEC;

    bkt->level = MAX(bkt->level - leak, 0);
    /* a burst longer than a second must also keep to max per second */
    if (bkt->burst_length > 1) {
        leak = bkt->max * (double)delta_ns / NS_PER_SEC;
        bkt->burst_level = MAX(bkt->burst_level - leak, 0);
    }
}

static int64_t wait_for_excess(double rate, double excess)
{
    return (int64_t)(excess * NS_PER_SEC / rate);
}

int64_t throttle_compute_wait(const LeakyBucket *bkt)
{
    double size, burst_size, excess;

    if (!bkt->avg) {
        return 0;
    }
    if (!bkt->max) {
        size = (double)bkt->avg / 10;
        burst_size = 0;
    } else {
        size = (double)bkt->max * bkt->burst_length;
        burst_size = (double)bkt->max / 10;
    }
    excess = bkt->level - size;
    if (excess > 0) {
        return wait_for_excess(bkt->avg, excess);
    }
    if (bkt->burst_length > 1) {
        excess = bkt->burst_level - burst_size;
        if (excess > 0) {
            return wait_for_excess(bkt->max, excess);
        }
    }
    return 0;
}

bool throttle_compute_timer(ThrottleState *ts, bool is_write, int64_t now_ns,
                            int64_t *next_ns)
{
    static const ThrottleBucketType to_check[2][4] = {
        { THROTTLE_BPS_TOTAL, THROTTLE_OPS_TOTAL, THROTTLE_BPS_READ,
          THROTTLE_OPS_READ },
        { THROTTLE_BPS_TOTAL, THROTTLE_OPS_TOTAL, THROTTLE_BPS_WRITE,
          THROTTLE_OPS_WRITE },
    };
    int64_t delta = now_ns - ts->previous_leak;
    int64_t wait = 0;

    ts->previous_leak = now_ns;
    if (delta > 0) {
        for (int i = 0; i < THROTTLE_BUCKETS; i++) {
            throttle_leak_bucket(&ts->cfg.buckets[i], delta);
        }
    }
    for (int i = 0; i < 4; i++) {
        wait = MAX(wait, throttle_compute_wait(
                             &ts->cfg.buckets[to_check[is_write][i]]));
    }
    *next_ns = now_ns + wait;
    return wait > 0;
}

void throttle_account(ThrottleState *ts, bool is_write, uint64_t bytes)
{
    ThrottleBucketType dir = is_write ? 2 : 1;
    double units = 1.0;
    LeakyBucket *b = ts->cfg.buckets;

    if (ts->cfg.op_size && bytes > ts->cfg.op_size) {
        units = (double)bytes / ts->cfg.op_size;
    }
    for (int i = 0; i < 2; i++) {
        LeakyBucket *bb = &b[i ? THROTTLE_BPS_TOTAL + dir : THROTTLE_BPS_TOTAL];
        LeakyBucket *ob = &b[i ? THROTTLE_OPS_TOTAL + dir : THROTTLE_OPS_TOTAL];

        bb->level += bytes;
        ob->level += units;
        if (bb->burst_length > 1) {
            bb->burst_level += bytes;
        }
        if (ob->burst_length > 1) {
            ob->burst_level += units;
        }
    }
}
