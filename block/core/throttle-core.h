/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * I/O throttling arithmetic, QEMU 7.2's leaky-bucket model: a limit
 * (bytes or operations per second, total or per direction) is a bucket
 * that every request fills and that leaks at the limit's rate; a request
 * waits while a bucket holds more than it may.  This file holds the
 * numbers only: the clock is the caller's, and so are the queues and
 * timers (throttle-groups.c).
 */
#ifndef BLOCK_CORE_THROTTLE_CORE_H
#define BLOCK_CORE_THROTTLE_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"

/* QEMU's THROTTLE_VALUE_MAX: no rate may go above it */
#define THROTTLE_VALUE_MAX 1000000000000000ULL

typedef enum {
    THROTTLE_BPS_TOTAL,
    THROTTLE_BPS_READ,
    THROTTLE_BPS_WRITE,
    THROTTLE_OPS_TOTAL,
    THROTTLE_OPS_READ,
    THROTTLE_OPS_WRITE,
    THROTTLE_BUCKETS,
} ThrottleBucketType;

typedef struct LeakyBucket {
    uint64_t avg;               /* the rate it leaks at; 0: no limit */
    uint64_t max;               /* the burst rate; 0: bursts of avg / 10 */
    uint64_t burst_length;      /* seconds max may last; at least 1 */
    double level;               /* what it holds now */
    double burst_level;         /* the same, against max (burst_length > 1) */
} LeakyBucket;

typedef struct ThrottleConfig {
    LeakyBucket buckets[THROTTLE_BUCKETS];
    uint64_t op_size;           /* iops-size: bigger requests count more */
} ThrottleConfig;

typedef struct ThrottleState {
    ThrottleConfig cfg;
    int64_t previous_leak;      /* ns, the caller's clock */
} ThrottleState;

/* No limits: every rate 0, every burst length 1 (QEMU's defaults). */
void throttle_config_init(ThrottleConfig *cfg);

/* Does @cfg limit anything (some bucket has a rate)? */
bool throttle_enabled(const ThrottleConfig *cfg);

/* QEMU 7.2's checks of a configuration, with its messages. */
bool throttle_is_valid(const ThrottleConfig *cfg, Error **errp);

/* Take @cfg (levels emptied) from time @now_ns on. */
void throttle_config(ThrottleState *ts, const ThrottleConfig *cfg,
                     int64_t now_ns);

/* Let @bkt leak for @delta_ns. */
void throttle_leak_bucket(LeakyBucket *bkt, int64_t delta_ns);

/* How long (ns) a request must wait before @bkt lets it go; 0: now. */
int64_t throttle_compute_wait(const LeakyBucket *bkt);

/*
 * Leak everything up to @now_ns, then: must a @is_write request wait?
 * If so *@next_ns is when it may go, else @now_ns.
 */
bool throttle_compute_timer(ThrottleState *ts, bool is_write, int64_t now_ns,
                            int64_t *next_ns);

/* Count a request of @bytes that goes now. */
void throttle_account(ThrottleState *ts, bool is_write, uint64_t bytes);

#endif /* BLOCK_CORE_THROTTLE_CORE_H */
