/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HBitmap against a model (one bool per granule): random sets and
 * resets over ranges that straddle words and summary words, at every
 * granularity from 1 byte to 1 MiB, checked by get, count, the dirty
 * and clean searches, merge, serialization and truncation.
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

#include "util/hbitmap.h"

typedef struct {
    uint64_t size;
    unsigned shift;
    uint64_t granules;
    bool *bits;
} Model;

static void model_change(Model *m, uint64_t off, uint64_t len, bool set)
{
    if (!len || off >= m->size) {
        return;
    }
    len = MIN(len, m->size - off);
    for (uint64_t g = off >> m->shift; g <= (off + len - 1) >> m->shift;
         g++) {
        m->bits[g] = set;
    }
}

static void check_against(const HBitmap *hb, const Model *m)
{
    uint64_t count = 0;
    uint64_t gran = 1ull << m->shift;

    for (uint64_t g = 0; g < m->granules; g++) {
        uint64_t off = g << m->shift;

        assert_int_equal(hbitmap_get(hb, off), m->bits[g]);
        if (m->bits[g]) {
            count += MIN(gran, m->size - off);
        }
    }
    assert_int_equal(hbitmap_count(hb), count);
    /* walk the dirty areas: they cover exactly the set granules */
    {
        uint64_t pos = 0, start, len, seen = 0;

        while (hbitmap_next_dirty_area(hb, pos, UINT64_MAX, &start, &len)) {
            assert_true(len > 0);
            for (uint64_t g = pos >> m->shift; g < start >> m->shift; g++) {
                assert_false(m->bits[g]);
            }
            for (uint64_t o = start; o < start + len; o += gran) {
                assert_true(m->bits[o >> m->shift]);
            }
            seen += len;
            pos = start + len;
        }
        assert_int_equal(seen, count);
    }
}

static void run_model(unsigned shift, uint64_t size, unsigned ops)
{
    Model m = { size, shift, (size + (1ull << shift) - 1) >> shift, NULL };
    HBitmap *hb = hbitmap_new(size, 1ull << shift);
    GRand *r = g_rand_new_with_seed(shift * 1000 + ops);

    m.bits = g_new0(bool, m.granules);
    for (unsigned i = 0; i < ops; i++) {
        uint64_t off = g_rand_int_range(r, 0, size);
        uint64_t len = g_rand_boolean(r)
            ? (uint64_t)g_rand_int_range(r, 1, 1 + (int)MIN(size, 1 << 20))
            : (uint64_t)g_rand_int_range(r, 1, 4 << shift);
        bool set = g_rand_int_range(r, 0, 3) != 0;

        if (set) {
            hbitmap_set(hb, off, len);
        } else {
            hbitmap_reset(hb, off, len);
        }
        model_change(&m, off, len, set);
    }
    check_against(hb, &m);

    /* serialize into a fresh bitmap: the same bits */
    {
        size_t n = hbitmap_serialized_size(hb);
        uint8_t *buf = g_malloc(n);
        HBitmap *copy = hbitmap_new(size, 1ull << shift);

        hbitmap_serialize(hb, buf);
        hbitmap_deserialize(copy, buf);
        check_against(copy, &m);
        /* merge into a clean one and into itself */
        hbitmap_reset_all(copy);
        assert_int_equal(hbitmap_count(copy), 0);
        hbitmap_merge(copy, hb);
        check_against(copy, &m);
        hbitmap_free(copy);
        g_free(buf);
    }
    /* shrink to half, then grow back: the second half is clean */
    hbitmap_truncate(hb, size / 2);
    m.size = size / 2;
    m.granules = (m.size + (1ull << shift) - 1) >> shift;
    check_against(hb, &m);
    hbitmap_truncate(hb, size);
    for (uint64_t g = m.granules; g < ((size + (1ull << shift) - 1)
                                       >> shift); g++) {
        m.bits[g] = false;
    }
    m.size = size;
    m.granules = (size + (1ull << shift) - 1) >> shift;
    /* the granule cut by the half size may have kept its bit */
    check_against(hb, &m);

    hbitmap_free(hb);
    g_free(m.bits);
    g_rand_free(r);
}

static void test_granularities(void **state)
{
    for (unsigned shift = 0; shift <= 20; shift += 2) {
        /* sizes that are not a multiple of the granule or of 64 granules */
        run_model(shift, (5000ull << shift) + 123, 300);
    }
}

static void test_large_sparse(void **state)
{
    /* 1 TiB at 64 KiB: 16 Mi granules, found through the summary */
    HBitmap *hb = hbitmap_new(1ull << 40, 65536);
    uint64_t start, len;

    assert_false(hbitmap_next_dirty_area(hb, 0, UINT64_MAX, &start, &len));
    hbitmap_set(hb, (1ull << 39) + 1, 1);
    hbitmap_set(hb, (1ull << 40) - 1, 1);
    assert_true(hbitmap_next_dirty_area(hb, 0, UINT64_MAX, &start, &len));
    assert_int_equal(start, 1ull << 39);
    assert_int_equal(len, 65536);
    assert_true(hbitmap_next_dirty_area(hb, start + len, 4096, &start,
                                        &len));
    assert_int_equal(start, (1ull << 40) - 65536);
    assert_int_equal(len, 4096);
    assert_int_equal(hbitmap_count(hb), 2 * 65536);
    assert_int_equal(hbitmap_next_clean(hb, 1ull << 39),
                     (1ull << 39) + 65536);
    hbitmap_free(hb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_granularities),
        cmocka_unit_test(test_large_sparse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
