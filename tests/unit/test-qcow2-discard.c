/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pure parts of qcow2 discards and allocation, table by table: the
 * free-cluster map's first fit (QEMU's allocator), the L2 entry a
 * discard or zero write leaves (QEMU 7.2's rules, as measured with
 * qemu-io and qemu-img map), and the cache sizes the options give
 * (QEMU's read_cache_sizes and its messages).
 */
#include "config.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "block/drivers/qcow2.h"
#include "qapi/qjson.h"

#define F QCOW2_OFLAG_ZERO
#define C QCOW2_OFLAG_COPIED
#define Z QCOW2_OFLAG_COMPRESSED

static void test_freemap_find(void **state)
{
    Qcow2FreeMap m;
    static const struct {
        uint64_t from, n, end, want;
    } cases[] = {
        /* free: 3..5, 10, 64..70, 100..(end 120) */
        { 0, 1, 120, 3 },
        { 0, 3, 120, 3 },
        { 0, 4, 120, 64 },      /* 3..5 too short, 10 too short */
        { 4, 1, 120, 4 },
        { 6, 1, 120, 10 },
        { 11, 7, 120, 64 },
        { 11, 8, 120, 100 },    /* 100.. runs into the end: any length */
        { 11, 40, 120, 100 },
        { 101, 2, 120, 101 },
        { 130, 2, 120, 130 },   /* past the end: where it starts */
        { 71, 1, 100, 100 },    /* nothing free before the end */
        { 0, 1, 0, 0 },
    };

    (void)state;
    qcow2_freemap_init(&m);
    qcow2_freemap_mark(&m, 3, 3, true);
    qcow2_freemap_mark(&m, 10, 1, true);
    qcow2_freemap_mark(&m, 64, 7, true);
    qcow2_freemap_mark(&m, 100, 20, true);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint64_t got = qcow2_freemap_find(&m, cases[i].from, cases[i].n,
                                          cases[i].end);

        if (got != cases[i].want) {
            fail_msg("case %zu: %" PRIu64 " instead of %" PRIu64, i, got,
                     cases[i].want);
        }
    }
    assert_int_equal(qcow2_freemap_count(&m, 120), 3 + 1 + 7 + 20);
    assert_int_equal(qcow2_freemap_count(&m, 66), 3 + 1 + 2);
    qcow2_freemap_mark(&m, 64, 2, false);
    assert_false(qcow2_freemap_is_free(&m, 65, 120));
    assert_true(qcow2_freemap_is_free(&m, 66, 120));
    assert_true(qcow2_freemap_is_free(&m, 500, 120));
    assert_int_equal(qcow2_freemap_find(&m, 11, 5, 120), 66);
    /* marking in use past the map's end does not grow it */
    qcow2_freemap_mark(&m, 5000, 10, false);
    assert_int_equal(qcow2_freemap_count(&m, 10000), 3 + 1 + 5 + 20);
    qcow2_freemap_destroy(&m);
}

static void test_freemap_words(void **state)
{
    Qcow2FreeMap m;

    (void)state;
    qcow2_freemap_init(&m);
    /* runs across word boundaries, and whole words */
    qcow2_freemap_mark(&m, 60, 200, true);
    assert_int_equal(qcow2_freemap_count(&m, 1000), 200);
    assert_int_equal(qcow2_freemap_find(&m, 0, 200, 1000), 60);
    assert_int_equal(qcow2_freemap_find(&m, 0, 201, 1000), 1000);
    assert_int_equal(qcow2_freemap_find(&m, 0, 201, 260), 60);
    qcow2_freemap_mark(&m, 128, 64, false);
    assert_int_equal(qcow2_freemap_find(&m, 0, 68, 1000), 60);
    assert_int_equal(qcow2_freemap_find(&m, 0, 69, 1000), 1000);
    assert_int_equal(qcow2_freemap_find(&m, 100, 29, 1000), 192);
    assert_int_equal(qcow2_freemap_find(&m, 100, 100, 260), 192);
    assert_int_equal(qcow2_freemap_count(&m, 1000), 136);
    qcow2_freemap_destroy(&m);
}

static void test_zero_entry(void **state)
{
    /* 0x50000 | C: data; 0x50000: data with refcount > 1 */
    static const struct {
        uint32_t version;
        bool backing, discard, unmap;
        uint64_t old, want;
        bool release;
    } *c, cases[] = {
        /* discards: zero flag where anything would show (v3) */
        { 3, false, true, false, 0, 0, false },
        { 3, true, true, false, 0, F, false },
        { 3, false, true, false, 0x50000 | C, F, true },
        { 3, false, true, false, 0x50000 | C | F, F, true },
        { 3, false, true, false, F, F, false },
        { 3, true, true, false, Z | 0x1234, F, true },
        { 2, false, true, false, 0x50000 | C, 0, true },
        { 2, false, true, false, 0, 0, false },
        /* zero writes keep the allocation unless they may unmap */
        { 3, false, false, false, 0, F, false },
        { 3, true, false, false, 0, F, false },
        { 3, false, false, false, 0x50000 | C, 0x50000 | C | F, false },
        { 3, false, false, true, 0x50000 | C, F, true },
        { 3, false, false, false, 0x50000, 0x50000 | F, false },
        { 3, false, false, true, 0x50000 | C | F, F, true },
        { 3, false, false, false, 0x50000 | C | F, 0x50000 | C | F, false },
        { 3, false, false, false, Z | 0x1234, F, true },
        { 3, false, false, true, F, F, false },
    };

    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        bool release;
        uint64_t got;

        c = &cases[i];
        got = qcow2_zero_entry(c->version, c->backing, c->discard, c->unmap,
                               c->old, &release);
        if (got != c->want || release != c->release) {
            fail_msg("case %zu: 0x%" PRIx64 "/%d instead of 0x%" PRIx64
                     "/%d", i, got, release, c->want, c->release);
        }
    }
}

static void test_cache_sizes(void **state)
{
    static const struct {
        const char *opts;
        uint32_t cluster;
        uint64_t size;
        uint64_t l2, rb;        /* tables */
        const char *error;
    } cases[] = {
        /* default: the L2 cache covers the image (up to 32 MiB) */
        { "{}", 65536, 64 << 20, 2, 16, NULL },
        { "{}", 65536, 16ull << 30, 32, 16, NULL },
        { "{}", 65536, 1ull << 40, 512, 16, NULL },
        { "{\"l2-cache-size\": 262144}", 65536, 1ull << 40, 4, 16, NULL },
        { "{\"l2-cache-size\": 0}", 65536, 1ull << 40, 2, 16, NULL },
        { "{\"refcount-cache-size\": 1048576}", 65536, 1 << 30, 2, 16,
          NULL },
        { "{\"refcount-cache-size\": 0}", 65536, 1 << 30, 2, 4, NULL },
        /* cache-size: the L2 cache first, the rest refcounts */
        { "{\"cache-size\": 1048576}", 65536, 1ull << 40, 12, 4, NULL },
        { "{\"cache-size\": 33554432}", 65536, 1ull << 36, 128, 384,
          NULL },
        { "{\"cache-size\": 1048576, \"l2-cache-size\": 524288}", 65536,
          1ull << 40, 8, 8, NULL },
        { "{\"cache-size\": 1048576, \"refcount-cache-size\": 786432}",
          65536, 1ull << 40, 4, 12, NULL },
        { "{\"cache-size\": 1, \"l2-cache-size\": 1, "
          "\"refcount-cache-size\": 1}", 65536, 1 << 30, 0, 0,
          "cache-size, l2-cache-size and refcount-cache-size may not be "
          "set at the same time" },
        { "{\"cache-size\": 65536, \"l2-cache-size\": 131072}", 65536,
          1 << 30, 0, 0, "l2-cache-size may not exceed cache-size" },
        { "{\"cache-size\": 65536, \"refcount-cache-size\": 131072}", 65536,
          1 << 30, 0, 0, "refcount-cache-size may not exceed cache-size" },
        { "{\"l2-cache-entry-size\": 256}", 65536, 1 << 30, 0, 0,
          "L2 cache entry size must be a power of two between 512 and the "
          "cluster size (65536)" },
        { "{\"l2-cache-entry-size\": 3000}", 4096, 1 << 30, 0, 0,
          "L2 cache entry size must be a power of two between 512 and the "
          "cluster size (4096)" },
        { "{\"l2-cache-entry-size\": 4096}", 65536, 1 << 30, 0, 0,
          "qmpd caches whole L2 tables: l2-cache-entry-size must be the "
          "cluster size (65536)" },
        { "{\"l2-cache-entry-size\": 65536}", 65536, 1 << 30, 2, 16, NULL },
        { "{\"cache-size\": -1}", 65536, 1 << 30, 0, 0,
          "Parameter 'cache-size' expects a non-negative number below "
          "2^64" },
        { "{\"refcount-cache-size\": 1152921504606846976}", 65536, 1 << 30,
          0, 0, "Refcount cache size too big" },
        { "{\"l2-cache-size\": 1152921504606846976}", 512,
          1ull << 55, 0, 0, "L2 cache size too big" },
    };

    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        json_error_t je;
        json_t *o = json_loads(cases[i].opts, 0, &je);
        Error *err = NULL;
        uint64_t l2 = 0, rb = 0;
        bool ok = qcow2_cache_sizes(o, cases[i].cluster, cases[i].size, &l2,
                                    &rb, &err);

        if (cases[i].error) {
            if (ok || strcmp(error_get_pretty(err), cases[i].error)) {
                fail_msg("case %zu: %s", i, ok ? "accepted"
                                               : error_get_pretty(err));
            }
            error_free(err);
        } else if (!ok || l2 != cases[i].l2 || rb != cases[i].rb) {
            fail_msg("case %zu: %s %" PRIu64 "/%" PRIu64, i,
                     ok ? "" : error_get_pretty(err), l2, rb);
        }
        json_decref(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freemap_find),
        cmocka_unit_test(test_freemap_words),
        cmocka_unit_test(test_zero_entry),
        cmocka_unit_test(test_cache_sizes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
