/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block migration's destination side (migration/block-load.c and the
 * loader of migration/block-bitmaps.c) on a real file node: the setup
 * section's checks and messages, block entries written in stream order
 * (a later entry for a range wins over an earlier one still in flight),
 * zero entries, every malformed entry refused, and a dirty bitmap that
 * arrives disabled and is enabled only at the end.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "migration/block.h"
#include "migration/stream.h"
#include "tests/unit/block-sync.h"

#define LEN (1u << 20)

static char *tmpdir;

typedef struct {
    BlockNode *bn;
    BlockBackend *blk;
} Disk;

static Disk open_disk(const char *name)
{
    g_autofree char *p = g_build_filename(tmpdir, "disk", NULL);
    FILE *f = fopen(p, "w");
    Error *err = NULL;
    Disk d;

    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), LEN), 0);
    fclose(f);
    d.bn = test_open_sync(json_pack("{s:s,s:s}", "driver", "file",
                                    "filename", p));
    d.blk = blk_new(name, d.bn, &err);
    assert_non_null(d.blk);
    return d;
}

static void close_disk(Disk d)
{
    blk_delete(d.blk);
    test_close_sync(d.bn);
}

static bool setup_json(const char *json, const char *want_error)
{
    Error *err = NULL;
    bool ok = mig_blk_in_setup((const uint8_t *)json, strlen(json), &err);

    if (want_error) {
        assert_false(ok);
        assert_string_equal(error_get_pretty(err), want_error);
        error_free(err);
    } else {
        assert_true(ok);
    }
    return ok;
}

static GByteArray *entry(uint64_t off, uint32_t len, int fill)
{
    GByteArray *e = g_byte_array_new();
    uint8_t flag = fill < 0;

    mig_put_be64(e, off);
    mig_put_be32(e, len);
    g_byte_array_append(e, &flag, 1);
    if (fill >= 0) {
        g_byte_array_set_size(e, 13 + len);
        memset(e->data + 13, fill, len);
    }
    return e;
}

static void load(uint32_t id, uint64_t off, uint32_t len, int fill)
{
    g_autoptr(GByteArray) e = entry(off, len, fill);
    Error *err = NULL;

    assert_true(mig_blk_in_load(id, e->data, e->len, &err));
}

static bool finished;

static void done_cb(int ret)
{
    assert_int_equal(ret, 0);
    finished = true;
}

static void finish(void)
{
    finished = false;
    mig_blk_in_finish(done_cb);
    while (!finished) {
        g_main_context_iteration(NULL, TRUE);
    }
}

static void read_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    *(bool *)opaque = true;
}

static void expect(BlockNode *bn, uint64_t off, uint32_t len, int fill)
{
    uint8_t *buf = ioq_buf_alloc(len);
    bool done = false;

    bdrv_read(bn, off, len, buf, read_cb, &done);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
    }
    for (uint32_t i = 0; i < len; i++) {
        assert_int_equal(buf[i], fill);
    }
    ioq_buf_free(buf);
}

static void test_setup_refused(void **state)
{
    Disk d = open_disk("drive0");

    setup_json("{\"disks\": [{\"name\": \"nope\", \"size\": 1048576}]}",
               "Error unknown block device nope");
    finish();
    setup_json("{\"disks\": [{\"name\": \"drive0\", \"size\": 4096}]}",
               "Block device drive0 has size 1048576, the source's has "
               "4096");
    finish();
    setup_json("{\"disks\": 5}", "Invalid block migration setup section");
    setup_json("not json", "Invalid block migration setup section");
    close_disk(d);
}

static void test_entries_in_order(void **state)
{
    Disk d = open_disk("drive0");

    setup_json("{\"incremental\": false, \"disks\": [{\"name\": \"drive0\", "
               "\"size\": 1048576}]}", NULL);
    /* a later pass's data for a range lands after the earlier one's */
    for (int i = 1; i <= 8; i++) {
        load(0, 0, 65536, i);
    }
    load(0, 65536, 65536, 0x11);
    load(0, 65536, 4096, -1);
    load(0, 512 * 1024, 512 * 1024, 0x22);
    finish();
    expect(d.bn, 0, 65536, 8);
    expect(d.bn, 65536, 4096, 0);
    expect(d.bn, 65536 + 4096, 65536 - 4096, 0x11);
    expect(d.bn, 512 * 1024, 512 * 1024, 0x22);
    close_disk(d);
}

static void test_entries_refused(void **state)
{
    static const struct {
        uint64_t off;
        uint32_t len;
        int fill;
    } bad[] = {
        { 0, 0, 1 },                    /* empty */
        { 100, 512, 1 },                /* unaligned offset */
        { 0, 100, 1 },                  /* unaligned length */
        { LEN, 512, 1 },                /* past the end */
        { LEN - 512, 1024, -1 },        /* running past the end */
    };
    Disk d = open_disk("drive0");
    Error *err = NULL;

    setup_json("{\"disks\": [{\"name\": \"drive0\", \"size\": 1048576}]}",
               NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GByteArray) e = entry(bad[i].off, bad[i].len, bad[i].fill);

        assert_false(mig_blk_in_load(0, e->data, e->len, &err));
        assert_true(g_str_has_prefix(error_get_pretty(err),
                                     "Invalid block entry at"));
        g_clear_pointer(&err, error_free);
    }
    {
        g_autoptr(GByteArray) e = entry(0, 512, 1);

        /* the data shorter than said, an unknown flag, no such disk */
        assert_false(mig_blk_in_load(0, e->data, e->len - 1, &err));
        g_clear_pointer(&err, error_free);
        e->data[12] = 2;
        assert_false(mig_blk_in_load(0, e->data, e->len, &err));
        g_clear_pointer(&err, error_free);
        e->data[12] = 0;
        assert_false(mig_blk_in_load(1, e->data, e->len, &err));
        assert_string_equal(error_get_pretty(err),
                            "Block section 1 without a block device");
        g_clear_pointer(&err, error_free);
        assert_false(mig_blk_in_load(0, e->data, 12, &err));
        assert_string_equal(error_get_pretty(err), "Truncated block entry");
        g_clear_pointer(&err, error_free);
    }
    finish();
    close_disk(d);
}

static void test_bitmap_enabled_at_the_end(void **state)
{
    Disk d = open_disk("drive0");
    HBitmap *bits = hbitmap_new(LEN, 65536);
    const char *head = "{\"node\": \"drive0\", \"name\": \"b\", "
        "\"granularity\": 65536, \"size\": 1048576, \"enabled\": true, "
        "\"persistent\": false}";
    g_autoptr(GByteArray) rec = g_byte_array_new();
    size_t n = hbitmap_serialized_size(bits);
    Error *err = NULL;
    DirtyBitmap *bm;

    hbitmap_set(bits, 131072, 65536);
    mig_put_be32(rec, strlen(head));
    g_byte_array_append(rec, (const guint8 *)head, strlen(head));
    g_byte_array_set_size(rec, rec->len + n);
    hbitmap_serialize(bits, rec->data + rec->len - n);
    assert_true(mig_bitmaps_in_load(rec->data, rec->len, &err));
    bm = dbitmap_find(d.bn, "b");
    assert_non_null(bm);
    assert_false(dbitmap_enabled(bm));
    assert_int_equal(dbitmap_count(bm), 65536);
    mig_bitmaps_in_activate();
    assert_true(dbitmap_enabled(bm));
    /* the same name once more: the load fails */
    assert_false(mig_bitmaps_in_load(rec->data, rec->len, &err));
    assert_string_equal(error_get_pretty(err), "Bitmap with the same name "
                        "('b') already exists on destination");
    error_free(err);
    hbitmap_free(bits);
    close_disk(d);
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qmpd-migblk-XXXXXX", NULL);
    return bdrv_init(NULL) ? 0 : -1;
}

/* The scratch directory goes with whatever the tests left in it. */
static int teardown(void **state)
{
    GDir *dir = g_dir_open(tmpdir, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *p = g_build_filename(tmpdir, name, NULL);

        unlink(p);
    }
    if (dir) {
        g_dir_close(dir);
    }
    if (rmdir(tmpdir)) {
        return -1;
    }
    g_clear_pointer(&tmpdir, g_free);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_refused),
        cmocka_unit_test(test_entries_in_order),
        cmocka_unit_test(test_entries_refused),
        cmocka_unit_test(test_bitmap_enabled_at_the_end),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
