/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps on null-co nodes: writes, zero writes and discards
 * recorded by enabled bitmaps only, QEMU's count (whole granules, even
 * the last, partial one) and size (the length in whole sectors), merges
 * across granularities, clear with a backup and restore, freezing for a
 * job (successor, reclaim, abdicate), the checks
 * and their messages, resize, and release of everything with the node.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "qapi/qjson.h"

#define SIZE 1000000            /* not a multiple of 512 on purpose */

static BlockNode *node;
static char buf[65536];

static void count_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    (*(int *)opaque)++;
}

static void settle(void)
{
    for (int i = 0; i < 50; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
}

static BlockNode *open_null(const char *name, int64_t size)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:I}", "driver", "null-co", "node-name",
                          name, "size", (json_int_t)size);
    BlockNode *bn = bdrv_open_options(o, false, &err);

    json_decref(o);
    assert_non_null(bn);
    return bn;
}

static int setup(void **state)
{
    Error *err = NULL;

    assert_true(bdrv_init(&err));
    node = open_null("n", SIZE);
    return 0;
}

static int teardown(void **state)
{
    bdrv_unref(node);
    settle();
    return 0;
}

static DirtyBitmap *create(const char *name, uint32_t gran)
{
    Error *err = NULL;
    DirtyBitmap *bm = dbitmap_create(node, gran, name, &err);

    assert_non_null(bm);
    return bm;
}

static void write_sync(uint64_t off, uint64_t len)
{
    int done = 0;

    bdrv_write(node, off, len, buf, 0, count_cb, &done);
    settle();
    assert_int_equal(done, 1);
}

static void test_size_and_count(void **state)
{
    DirtyBitmap *bm = create("a", 65536);

    /* QEMU's bdrv_getlength(): whole sectors */
    assert_int_equal(dbitmap_size(bm), 1000448);
    assert_int_equal(dbitmap_count(bm), 0);
    write_sync(SIZE - 1, 1);
    /* the last granule is partial, and counts in full */
    assert_int_equal(dbitmap_count(bm), 65536);
    write_sync(0, 1);
    assert_int_equal(dbitmap_count(bm), 131072);
    /* a write straddling a granule boundary marks both */
    write_sync(65536 * 3 - 512, 1024);
    assert_int_equal(dbitmap_count(bm), 4 * 65536);
    dbitmap_release(bm);
}

static void test_recording(void **state)
{
    DirtyBitmap *on = create("on", 4096);
    DirtyBitmap *off = create("off", 4096);
    int done = 0;

    dbitmap_set_enabled(off, false);
    write_sync(8192, 4096);
    bdrv_write_zeroes(node, 65536, 4096, 0, count_cb, &done);
    bdrv_discard(node, 131072, 4096, count_cb, &done);
    settle();
    assert_int_equal(done, 2);
    /* discard=ignore (the default) drops discards before the node */
    assert_int_equal(dbitmap_count(on), 2 * 4096);
    assert_int_equal(dbitmap_count(off), 0);
    dbitmap_set_enabled(off, true);
    write_sync(0, 512);
    assert_int_equal(dbitmap_count(off), 4096);
    dbitmap_release(on);
    dbitmap_release(off);
}

static void test_names(void **state)
{
    Error *err = NULL;
    DirtyBitmap *a = create("a", 512);
    DirtyBitmap *anon = create(NULL, 512);
    char long_name[1025];

    assert_null(dbitmap_create(node, 512, "a", &err));
    assert_string_equal(error_get_pretty(err), "Bitmap already exists: a");
    error_free(err);
    err = NULL;
    memset(long_name, 'x', 1024);
    long_name[1024] = 0;
    assert_null(dbitmap_create(node, 512, long_name, &err));
    assert_non_null(strstr(error_get_pretty(err), "Bitmap name too long"));
    error_free(err);
    assert_ptr_equal(dbitmap_find(node, "a"), a);
    /* newest first; the anonymous one has no name */
    assert_ptr_equal(dbitmap_next(node, NULL), anon);
    assert_null(dbitmap_name(anon));
    assert_ptr_equal(dbitmap_next(node, anon), a);
    assert_null(dbitmap_next(node, a));
    dbitmap_release(a);
    dbitmap_release(anon);
    assert_null(dbitmap_next(node, NULL));
}

static void test_merge_granularities(void **state)
{
    DirtyBitmap *fine = create("fine", 512);
    DirtyBitmap *coarse = create("coarse", 65536);
    DirtyBitmap *dst = create("dst", 512);
    Error *err = NULL;

    dbitmap_set_enabled(dst, false);
    dbitmap_set_enabled(coarse, false);
    write_sync(70000, 100);                 /* fine: one sector */
    assert_int_equal(dbitmap_count(fine), 512);
    /* a fine source marks the coarse granule that holds it */
    assert_true(dbitmap_merge(coarse, fine, NULL, &err));
    assert_int_equal(dbitmap_count(coarse), 65536);
    assert_true(hbitmap_get(dbitmap_hbitmap(coarse), 65536));
    /* a coarse source marks every fine granule of it */
    assert_true(dbitmap_merge(dst, coarse, NULL, &err));
    assert_int_equal(dbitmap_count(dst), 65536);
    dbitmap_release(fine);
    dbitmap_release(coarse);
    dbitmap_release(dst);
}

static void test_merge_checks(void **state)
{
    BlockNode *other = open_null("o", 2 * SIZE);
    Error *err = NULL;
    DirtyBitmap *a = create("a", 4096);
    DirtyBitmap *b = create("b", 4096);
    DirtyBitmap *big = dbitmap_create(other, 4096, "big", &err);
    HBitmap *backup = NULL;

    assert_non_null(big);
    assert_false(dbitmap_merge(a, big, NULL, &err));
    assert_string_equal(error_get_pretty(err), "Bitmaps are of different "
                        "sizes (destination size is 1000448, source size "
                        "is 2000384) and can't be merged");
    error_free(err);
    err = NULL;

    dbitmap_set_busy(a, true);
    assert_false(dbitmap_merge(a, b, NULL, &err));
    assert_string_equal(error_get_pretty(err), "Bitmap 'a' is currently in "
                        "use by another operation and cannot be used");
    error_free(err);
    err = NULL;
    dbitmap_set_busy(a, false);

    dbitmap_set_readonly(a, true);
    assert_false(dbitmap_merge(a, b, NULL, &err));
    assert_string_equal(error_get_pretty(err), "Bitmap 'a' is readonly and "
                        "cannot be modified");
    error_free(err);
    err = NULL;
    /* a read-only source is fine */
    assert_true(dbitmap_merge(b, a, NULL, &err));
    dbitmap_set_readonly(a, false);

    dbitmap_set_inconsistent(b);
    assert_false(dbitmap_enabled(b));
    assert_false(dbitmap_merge(a, b, NULL, &err));
    assert_string_equal(error_get_pretty(err), "Bitmap 'b' is inconsistent "
                        "and cannot be used");
    assert_non_null(error_get_hint(err));
    error_free(err);
    err = NULL;

    /* a merge with a backup can be undone */
    dbitmap_release(b);
    b = create("b", 4096);
    write_sync(0, 4096);
    dbitmap_set_enabled(b, false);
    write_sync(8192, 4096);
    assert_true(dbitmap_merge(b, a, &backup, &err));
    assert_int_equal(dbitmap_count(b), 2 * 4096);
    dbitmap_restore(b, backup);
    assert_int_equal(dbitmap_count(b), 4096);

    dbitmap_release(a);
    dbitmap_release(b);
    bdrv_unref(other);
    settle();
}

static void test_clear_restore(void **state)
{
    DirtyBitmap *a = create("a", 4096);
    HBitmap *backup = NULL;

    write_sync(0, 65536);
    assert_int_equal(dbitmap_count(a), 65536);
    dbitmap_clear(a, &backup);
    assert_int_equal(dbitmap_count(a), 0);
    write_sync(131072, 4096);
    assert_int_equal(dbitmap_count(a), 4096);
    dbitmap_restore(a, backup);
    assert_int_equal(dbitmap_count(a), 65536);
    dbitmap_clear(a, NULL);
    assert_int_equal(dbitmap_count(a), 0);
    dbitmap_release(a);
}

/* The bitmaps of the node, newest first, as "name" or "-" (anonymous). */
static void assert_order(const char *want)
{
    GString *got = g_string_new("");

    for (DirtyBitmap *bm = dbitmap_next(node, NULL); bm;
         bm = dbitmap_next(node, bm)) {
        g_string_append_printf(got, "%s%s", got->len ? " " : "",
                               dbitmap_name(bm) ? dbitmap_name(bm) : "-");
    }
    assert_string_equal(got->str, want);
    g_string_free(got, TRUE);
}

static void test_freeze_thaw(void **state)
{
    DirtyBitmap *a = create("a", 4096);
    DirtyBitmap *other;
    Error *err = NULL;

    write_sync(0, 8192);
    assert_true(dbitmap_freeze(a, &err));
    assert_true(dbitmap_busy(a) && dbitmap_enabled(a));
    /* frozen: the count stays, the successor records */
    write_sync(65536, 4096);
    assert_int_equal(dbitmap_count(a), 8192);
    assert_false(dbitmap_freeze(a, &err));
    assert_string_equal(error_get_pretty(err), "Cannot create a successor "
                        "for a bitmap that is in-use by an operation");
    error_free(err);
    err = NULL;
    other = create("other", 4096);
    assert_order("other - a");
    /* reclaim: both sets of bits, in place */
    dbitmap_thaw(a, true);
    assert_false(dbitmap_busy(a));
    assert_int_equal(dbitmap_count(a), 8192 + 4096);
    assert_order("other a");
    write_sync(131072, 512);
    assert_int_equal(dbitmap_count(a), 4 * 4096);
    /* abdicate: only what was written meanwhile, in the successor's place */
    assert_true(dbitmap_freeze(a, &err));
    write_sync(262144, 4096);
    dbitmap_thaw(a, false);
    assert_int_equal(dbitmap_count(a), 4096);
    assert_order("a other");
    /* a disabled bitmap's successor does not record either */
    dbitmap_set_enabled(a, false);
    assert_true(dbitmap_freeze(a, &err));
    assert_false(dbitmap_enabled(a));
    write_sync(0, 4096);
    dbitmap_thaw(a, false);
    assert_int_equal(dbitmap_count(a), 0);
    assert_false(dbitmap_enabled(a));
    dbitmap_release(a);
    dbitmap_release(other);
}

static void test_query(void **state)
{
    DirtyBitmap *a = create("a", 65536);
    DirtyBitmap *anon = create(NULL, 4096);
    json_t *q;
    json_t *e;

    assert_null(dbitmap_query(open_null("empty", 4096)));
    dbitmap_set_persistent(a, true);
    dbitmap_set_inconsistent(a);
    q = dbitmap_query(node);
    assert_int_equal(json_array_size(q), 2);
    e = json_array_get(q, 0);
    assert_null(json_object_get(e, "name"));
    assert_null(json_object_get(e, "inconsistent"));
    assert_int_equal(json_integer_value(json_object_get(e, "granularity")),
                     4096);
    e = json_array_get(q, 1);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "a");
    assert_true(json_is_true(json_object_get(e, "inconsistent")));
    assert_true(json_is_true(json_object_get(e, "persistent")));
    assert_true(json_is_false(json_object_get(e, "recording")));
    json_decref(q);
    dbitmap_release(a);
    dbitmap_release(anon);
    bdrv_unref(bdrv_find_node("empty"));
    settle();
}

static void test_freed_with_node(void **state)
{
    BlockNode *bn = open_null("gone", SIZE);
    Error *err = NULL;

    assert_non_null(dbitmap_create(bn, 512, "x", &err));
    assert_non_null(dbitmap_create(bn, 512, NULL, &err));
    bdrv_unref(bn);
    settle();                   /* freed with the node: no leak (ASan) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_and_count),
        cmocka_unit_test(test_recording),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_merge_granularities),
        cmocka_unit_test(test_merge_checks),
        cmocka_unit_test(test_clear_restore),
        cmocka_unit_test(test_freeze_thaw),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_freed_with_node),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
