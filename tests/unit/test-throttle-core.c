/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The leaky-bucket arithmetic of throttle-core.c: QEMU 7.2's validation
 * messages for every refused configuration, leaking, waits with and
 * without a burst rate, iops-size and the long-run rate a stream of
 * requests reaches when it goes whenever the buckets allow.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "block/core/throttle-core.h"

#define SEC 1000000000LL

typedef struct {
    int bucket;
    uint64_t avg, max, burst_length;
    uint64_t op_size;
    int bucket2;                /* a second bucket's avg, or -1 */
    uint64_t avg2;
    const char *error;          /* NULL: valid */
} ValidCase;

static const ValidCase valid_cases[] = {
    { THROTTLE_BPS_TOTAL, 1000, 0, 1, 0, -1, 0, NULL },
    { THROTTLE_BPS_TOTAL, 1000, 2000, 60, 0, -1, 0, NULL },
    { THROTTLE_OPS_READ, 10, 0, 1, 512, THROTTLE_OPS_WRITE, 5, NULL },
    { THROTTLE_BPS_TOTAL, 1000, 0, 1, 0, THROTTLE_BPS_READ, 10,
      "bps/iops/max total values and read/write values cannot be used at "
      "the same time" },
    { THROTTLE_OPS_TOTAL, 10, 0, 1, 0, THROTTLE_OPS_WRITE, 10,
      "bps/iops/max total values and read/write values cannot be used at "
      "the same time" },
    { THROTTLE_BPS_TOTAL, 0, 0, 1, 4096, -1, 0,
      "iops size requires an iops value to be set" },
    { THROTTLE_BPS_WRITE, THROTTLE_VALUE_MAX + 1, 0, 1, 0, -1, 0,
      "bps/iops/max values must be within [0, 1000000000000000]" },
    { THROTTLE_BPS_WRITE, 10, THROTTLE_VALUE_MAX + 1, 1, 0, -1, 0,
      "bps/iops/max values must be within [0, 1000000000000000]" },
    { THROTTLE_OPS_TOTAL, 10, 20, 0, 0, -1, 0,
      "the burst length cannot be 0" },
    { THROTTLE_OPS_TOTAL, 10, 0, 5, 0, -1, 0,
      "burst length set without burst rate" },
    { THROTTLE_BPS_TOTAL, 10, THROTTLE_VALUE_MAX / 2, 3, 0, -1, 0,
      "burst length too high for this burst rate" },
    { THROTTLE_BPS_READ, 0, 100, 1, 0, -1, 0,
      "bps_max/iops_max require corresponding bps/iops values" },
    { THROTTLE_BPS_READ, 100, 10, 1, 0, -1, 0,
      "bps_max/iops_max cannot be lower than bps/iops" },
};

static void test_validation(void **state)
{
    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(valid_cases); i++) {
        const ValidCase *c = &valid_cases[i];
        ThrottleConfig cfg;
        Error *err = NULL;
        bool ok;

        throttle_config_init(&cfg);
        cfg.buckets[c->bucket].avg = c->avg;
        cfg.buckets[c->bucket].max = c->max;
        cfg.buckets[c->bucket].burst_length = c->burst_length;
        cfg.op_size = c->op_size;
        if (c->bucket2 >= 0) {
            cfg.buckets[c->bucket2].avg = c->avg2;
        }
        ok = throttle_is_valid(&cfg, &err);
        if (!c->error) {
            assert_true(ok);
            assert_null(err);
        } else {
            assert_false(ok);
            assert_non_null(err);
            assert_string_equal(error_get_pretty(err), c->error);
            error_free(err);
        }
    }
}

static void test_defaults(void **state)
{
    ThrottleConfig cfg;

    (void)state;
    throttle_config_init(&cfg);
    assert_false(throttle_enabled(&cfg));
    assert_true(throttle_is_valid(&cfg, NULL));
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        assert_int_equal(cfg.buckets[i].burst_length, 1);
    }
    cfg.buckets[THROTTLE_OPS_WRITE].avg = 1;
    assert_true(throttle_enabled(&cfg));
}

static void test_leak(void **state)
{
    LeakyBucket b = { .avg = 1000, .max = 0, .burst_length = 1,
                      .level = 1500 };

    (void)state;
    throttle_leak_bucket(&b, SEC / 2);
    assert_true(b.level == 1000);
    throttle_leak_bucket(&b, 2 * SEC);
    assert_true(b.level == 0);          /* never below empty */
    b = (LeakyBucket){ .avg = 100, .max = 1000, .burst_length = 10,
                       .level = 500, .burst_level = 500 };
    throttle_leak_bucket(&b, SEC / 10);
    assert_true(b.level == 490);
    assert_true(b.burst_level == 400);  /* leaks at max */
}

static void test_wait(void **state)
{
    /* no burst rate: a tenth of a second's worth is let through */
    LeakyBucket b = { .avg = 1000, .burst_length = 1, .level = 100 };

    (void)state;
    assert_int_equal(throttle_compute_wait(&b), 0);
    b.level = 600;
    assert_int_equal(throttle_compute_wait(&b), SEC / 2);
    b.avg = 0;
    assert_int_equal(throttle_compute_wait(&b), 0);
    /* burst rate: max * burst_length may go, at max */
    b = (LeakyBucket){ .avg = 100, .max = 1000, .burst_length = 2,
                       .level = 2000, .burst_level = 100 };
    assert_int_equal(throttle_compute_wait(&b), 0);
    b.level = 2050;
    assert_int_equal(throttle_compute_wait(&b), SEC / 2);
    b.level = 500;
    b.burst_level = 300;                /* 200 over max / 10 */
    assert_int_equal(throttle_compute_wait(&b), SEC / 5);
}

static void test_account(void **state)
{
    ThrottleState ts;
    ThrottleConfig cfg;
    int64_t next;

    (void)state;
    throttle_config_init(&cfg);
    cfg.buckets[THROTTLE_BPS_WRITE].avg = 4096;
    cfg.buckets[THROTTLE_OPS_TOTAL].avg = 10;
    cfg.op_size = 4096;
    throttle_config(&ts, &cfg, 0);
    assert_false(throttle_compute_timer(&ts, true, 0, &next));
    assert_int_equal(next, 0);
    throttle_account(&ts, true, 16384);
    /* four operations at iops-size 4096, bytes to total and write */
    assert_true(ts.cfg.buckets[THROTTLE_OPS_TOTAL].level == 4);
    assert_true(ts.cfg.buckets[THROTTLE_OPS_WRITE].level == 4);
    assert_true(ts.cfg.buckets[THROTTLE_BPS_WRITE].level == 16384);
    assert_true(ts.cfg.buckets[THROTTLE_BPS_TOTAL].level == 16384);
    assert_true(ts.cfg.buckets[THROTTLE_BPS_READ].level == 0);
    /* a read waits only for the total iops: (4 - 1) / 10 s */
    assert_true(throttle_compute_timer(&ts, false, 0, &next));
    assert_int_equal(next, 3 * SEC / 10);
    /* a write for the write bytes: (16384 - 409.6) / 4096 s */
    assert_true(throttle_compute_timer(&ts, true, 0, &next));
    assert_int_equal(next, (int64_t)((16384 - 409.6) * 1e9 / 4096));
    /* small requests count as one operation */
    throttle_account(&ts, false, 512);
    assert_true(ts.cfg.buckets[THROTTLE_OPS_TOTAL].level == 5);
    /* reconfiguring empties the buckets */
    throttle_config(&ts, &cfg, 7);
    assert_false(throttle_compute_timer(&ts, true, 7, &next));
}

/* Go whenever allowed for @secs: bytes that went per second. */
static double run_rate(const ThrottleConfig *cfg, uint64_t req, int secs)
{
    ThrottleState ts;
    int64_t now = 0, next;
    uint64_t done = 0;

    throttle_config(&ts, cfg, 0);
    while (now < secs * SEC) {
        if (throttle_compute_timer(&ts, false, now, &next)) {
            now = next;
            continue;
        }
        throttle_account(&ts, false, req);
        done += req;
    }
    return (double)done / secs;
}

static void test_rates(void **state)
{
    ThrottleConfig cfg;
    double r;

    (void)state;
    throttle_config_init(&cfg);
    cfg.buckets[THROTTLE_BPS_TOTAL].avg = 1 << 20;
    r = run_rate(&cfg, 65536, 100);
    assert_true(r > 0.99 * (1 << 20) && r < 1.02 * (1 << 20));
    /* a burst of max for burst_length seconds, then avg */
    cfg.buckets[THROTTLE_BPS_TOTAL].max = 4 << 20;
    cfg.buckets[THROTTLE_BPS_TOTAL].burst_length = 5;
    r = run_rate(&cfg, 65536, 5);
    assert_true(r > 3.9 * (1 << 20) && r < 4.3 * (1 << 20));
    r = run_rate(&cfg, 65536, 200);
    assert_true(r > 1.05 * (1 << 20) && r < 1.2 * (1 << 20));
    /* operations: iops, whatever the size below iops-size */
    throttle_config_init(&cfg);
    cfg.buckets[THROTTLE_OPS_READ].avg = 50;
    r = run_rate(&cfg, 4096, 100) / 4096;
    assert_true(r > 49 && r < 51);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_leak),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_account),
        cmocka_unit_test(test_rates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
