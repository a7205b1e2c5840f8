/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow2 driver against a model: images are created, filled with
 * many concurrent writes, zero writes and discards (a byte array tracks
 * what the guest must read), read back, flushed, reopened and read again.
 * Where qemu-img is installed, every image must pass "qemu-img check"
 * and read identically in qemu-img ("qemu-img compare" against a raw
 * dump of the model).
 */
#include "config.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"
#include "tests/unit/block-sync.h"

static char *tmpdir;

typedef struct {
    int pending;
    int errors;
} Waiter;

static void done_cb(void *opaque, int ret)
{
    Waiter *w = opaque;

    if (ret < 0) {
        print_error("request failed: %s\n", g_strerror(-ret));
        w->errors++;
    }
    w->pending--;
}

static void wait_all_sync(Waiter *w)
{
    while (w->pending > 0) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(w->errors, 0);
}

static char *path_of(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static BlockNode *open_file_sync(const char *path)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:s}", "driver", "file", "filename", path);
    BlockNode *bn = bdrv_open_options(o, false, &err);

    json_decref(o);
    if (!bn) {
        print_error("%s\n", error_get_pretty(err));
    }
    assert_non_null(bn);
    return bn;
}

static void create_sync(const char *path, uint64_t size, uint32_t cs,
                        int version, const char *backing, bool prealloc)
{
    BdrvCreateOpts o = {
        .size = size, .cluster_size = cs, .version = version,
        .backing_file = backing, .backing_fmt = backing ? "qcow2" : NULL,
        .prealloc_metadata = prealloc,
    };
    Error *err = NULL;
    FILE *f = fopen(path, "w");
    BlockNode *file;

    fclose(f);
    file = open_file_sync(path);
    if (!bdrv_create(file, "qcow2", &o, &err)) {
        print_error("%s\n", error_get_pretty(err));
        fail();
    }
    test_close_sync(file);
}

static BlockNode *open_qcow2_sync(const char *path, bool direct)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:b}}", "driver", "qcow2",
                          "node-name", "top", "file", "driver", "file",
                          "filename", path, "cache", "direct", direct);
    BlockNode *bn = bdrv_open_options(o, false, &err);

    json_decref(o);
    if (!bn) {
        print_error("%s\n", error_get_pretty(err));
    }
    assert_non_null(bn);
    return bn;
}

static void flush_sync(BlockNode *bn)
{
    Waiter w = { 1, 0 };

    bdrv_flush(bn, done_cb, &w);
    wait_all_sync(&w);
}

static void verify(BlockNode *bn, const uint8_t *model, uint64_t size)
{
    uint8_t *buf = ioq_buf_alloc(size);
    Waiter w = { 1, 0 };

    memset(buf, 0xee, size);
    bdrv_read(bn, 0, size, buf, done_cb, &w);
    wait_all_sync(&w);
    for (uint64_t i = 0; i < size; i++) {
        if (buf[i] != model[i]) {
            print_error("mismatch at %" PRIu64 ": got %02x want %02x\n", i,
                        buf[i], model[i]);
            fail();
        }
    }
    ioq_buf_free(buf);
}

static bool have(const char *tool)
{
    g_autofree char *p = g_find_program_in_path(tool);

    return p != NULL;
}

static void qemu_img_check(const char *path)
{
    g_autofree char *cmd = NULL;
    int st;

    if (!have("qemu-img")) {
        return;
    }
    cmd = g_strdup_printf("qemu-img check -q %s", path);
    st = system(cmd);
    if (st != 0) {
        g_autofree char *show = g_strdup_printf("qemu-img check %s >&2",
                                                path);
        (void)!system(show);
    }
    assert_int_equal(st, 0);
}

static void qemu_img_compare(const char *path, const uint8_t *model,
                             uint64_t size)
{
    g_autofree char *raw = path_of("model.raw");
    g_autofree char *cmd = NULL;

    if (!have("qemu-img")) {
        return;
    }
    assert_true(g_file_set_contents(raw, (const char *)model, size, NULL));
    cmd = g_strdup_printf("qemu-img compare -q -f raw -F qcow2 %s %s", raw,
                          path);
    assert_int_equal(system(cmd), 0);
    unlink(raw);
}

typedef struct {
    uint64_t off;
    uint64_t len;
} Span;

static bool overlaps_any(GArray *spans, uint64_t off, uint64_t len)
{
    for (guint i = 0; i < spans->len; i++) {
        const Span *sp = &g_array_index(spans, Span, i);

        if (sp->off < off + len && off < sp->off + sp->len) {
            return true;
        }
    }
    return false;
}

/*
 * Rounds of up to 24 requests in flight at once: writes, zero writes
 * (with and without unmap) and discards.  Requests of one round never
 * overlap -- their order is undefined, so the model could not say which
 * one won -- but they do share clusters and L2 tables.
 */
static void random_io(BlockNode *bn, uint8_t *model, uint64_t size,
                      uint32_t cs, unsigned rounds, unsigned seed)
{
    GRand *rnd = g_rand_new_with_seed(seed);

    for (unsigned round = 0; round < rounds; round++) {
        Waiter w = { 0, 0 };
        GPtrArray *bufs = g_ptr_array_new_with_free_func(ioq_buf_free);
        GArray *spans = g_array_new(FALSE, FALSE, sizeof(Span));
        unsigned n = g_rand_int_range(rnd, 1, 24);

        for (unsigned k = 0; k < n; k++) {
            uint64_t len = g_rand_int_range(rnd, 1, 3 * cs);
            uint64_t off = g_rand_int_range(rnd, 0, size - len);
            int op = g_rand_int_range(rnd, 0, 10);
            Span sp = { off, len };

            if (overlaps_any(spans, off, len)) {
                continue;
            }
            g_array_append_val(spans, sp);
            w.pending++;
            if (op < 7) {
                uint8_t *b = ioq_buf_alloc(len);
                uint8_t pat = g_rand_int_range(rnd, 1, 255);

                memset(b, pat, len);
                g_ptr_array_add(bufs, b);
                bdrv_write(bn, off, len, b, 0, done_cb, &w);
                memset(model + off, pat, len);
            } else if (op < 9) {
                bdrv_write_zeroes(bn, off, len,
                                  op == 8 ? BDRV_REQ_MAY_UNMAP : 0,
                                  done_cb, &w);
                memset(model + off, 0, len);
            } else {
                /* discard frees whole clusters; the rest keeps its data */
                uint64_t a = (off + cs - 1) / cs * cs;
                uint64_t e = (off + len) / cs * cs;

                bn->discard_unmap = true;
                bdrv_discard(bn, off, len, done_cb, &w);
                if (e > a) {
                    memset(model + a, 0, e - a);
                }
            }
        }
        wait_all_sync(&w);
        g_ptr_array_unref(bufs);
        g_array_free(spans, TRUE);
    }
    g_rand_free(rnd);
}

static void run_image(uint32_t cs, int version, bool direct, bool prealloc)
{
    g_autofree char *path = path_of("t.qcow2");
    uint64_t size = 64 * cs + 3 * 512;
    uint8_t *model = g_malloc0(size);
    BlockNode *bn;

    size = size / 512 * 512;
    create_sync(path, size, cs, version, NULL, prealloc);
    qemu_img_check(path);
    bn = open_qcow2_sync(path, direct);
    assert_int_equal(bdrv_length(bn), size);
    verify(bn, model, size);
    random_io(bn, model, size, cs, 40, cs + version);
    verify(bn, model, size);
    flush_sync(bn);
    test_close_sync(bn);
    qemu_img_check(path);
    qemu_img_compare(path, model, size);
    bn = open_qcow2_sync(path, direct);
    verify(bn, model, size);
    random_io(bn, model, size, cs, 20, cs * 7);
    test_close_sync(bn);             /* close flushes */
    qemu_img_check(path);
    qemu_img_compare(path, model, size);
    g_free(model);
    unlink(path);
}

static void test_cluster_sizes(void **state)
{
    static const uint32_t sizes[] = { 512, 4096, 65536, 2u << 20 };

    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        run_image(sizes[i], 3, false, false);
    }
}

static void test_v2_direct_prealloc(void **state)
{
    run_image(65536, 2, false, false);
    run_image(4096, 3, true, false);
    run_image(65536, 3, false, true);
}

/* base <- sn1: unallocated clusters read the backing file. */
static void test_backing(void **state)
{
    g_autofree char *base = path_of("base.qcow2");
    g_autofree char *top = path_of("sn1.qcow2");
    uint32_t cs = 4096;
    uint64_t size = 256 * 1024;
    uint8_t *model = g_malloc0(size);
    BlockNode *bn;
    Waiter w = { 0, 0 };
    uint8_t *b = ioq_buf_alloc(size);

    create_sync(base, size, cs, 3, NULL, false);
    bn = open_qcow2_sync(base, false);
    memset(b, 0x11, size);
    w.pending = 1;
    bdrv_write(bn, 0, size, b, 0, done_cb, &w);
    wait_all_sync(&w);
    test_close_sync(bn);
    memset(model, 0x11, size);

    create_sync(top, size, cs, 3, "base.qcow2", false);
    bn = open_qcow2_sync(top, false);
    assert_non_null(bdrv_backing(bn));
    verify(bn, model, size);
    /* partial cluster writes copy the rest from the backing file */
    memset(b, 0x22, 100);
    w.pending = 1;
    bdrv_write(bn, 5000, 100, b, 0, done_cb, &w);
    wait_all_sync(&w);
    memset(model + 5000, 0x22, 100);
    /* zeroes must hide the backing data */
    w.pending = 1;
    bdrv_write_zeroes(bn, 8192, 3 * cs + 17, 0, done_cb, &w);
    wait_all_sync(&w);
    memset(model + 8192, 0, 3 * cs + 17);
    verify(bn, model, size);
    random_io(bn, model, size, cs, 30, 99);
    verify(bn, model, size);
    test_close_sync(bn);
    qemu_img_check(top);
    qemu_img_compare(top, model, size);
    ioq_buf_free(b);
    g_free(model);
    unlink(top);
    unlink(base);
}

static uint64_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void truncate_sync(BlockNode *bn, uint64_t size)
{
    Error *err = NULL;

    /* as block_resize: nothing in flight, metadata flushed */
    flush_sync(bn);
    if (!bn->drv->truncate(bn, size, &err)) {
        print_error("%s\n", error_get_pretty(err));
        fail();
    }
    assert_int_equal(bdrv_length(bn), size);
}

/*
 * Shrinking keeps what lies before the new end (the cluster holding it
 * whole: grown again, its tail reads as before, the clusters after it
 * as zeroes), frees the rest, and the file gets shorter; the image
 * takes new writes into the freed space and stays clean throughout.
 */
static void test_shrink(void **state)
{
    static const struct {
        uint32_t cs;
        int version;
        uint64_t size, cut;
    } cases[] = {
        { 4096, 3, 24 << 20, 3 << 20 },             /* L2 tables, refblocks */
        { 4096, 3, 24 << 20, (5 << 20) + 4096 + 512 },  /* inside a cluster */
        { 512, 3, 2 << 20, 300 * 1024 },
        { 65536, 2, 4 << 20, 65536 },
        { 65536, 3, 4 << 20, 512 },
    };
    g_autofree char *path = path_of("shrink.qcow2");

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint32_t cs = cases[i].cs;
        uint64_t size = cases[i].size, cut = cases[i].cut;
        uint64_t kept = MIN(size, (cut + cs - 1) / cs * cs);
        uint8_t *model = g_malloc0(size);
        uint8_t *b = ioq_buf_alloc(size);
        Waiter w = { 1, 0 };
        uint64_t before;
        BlockNode *bn;

        create_sync(path, size, cs, cases[i].version, NULL, false);
        bn = open_qcow2_sync(path, false);
        for (uint64_t k = 0; k < size; k++) {
            model[k] = (uint8_t)(k * 7 + k / cs);
        }
        memcpy(b, model, size);
        bdrv_write(bn, 0, size, b, 0, done_cb, &w);
        wait_all_sync(&w);
        random_io(bn, model, size, cs, 5, (unsigned)i);
        flush_sync(bn);
        before = file_size(path);
        truncate_sync(bn, cut);
        verify(bn, model, cut);
        assert_true(file_size(path) < before);
        test_close_sync(bn);
        qemu_img_check(path);
        qemu_img_compare(path, model, cut);
        bn = open_qcow2_sync(path, false);
        assert_int_equal(bdrv_length(bn), cut);
        /* the freed space is reused */
        if (cut > 3 * cs) {
            random_io(bn, model, cut, cs, 5, (unsigned)i + 100);
        }
        truncate_sync(bn, size);
        memset(model + kept, 0, size - kept);
        verify(bn, model, size);
        test_close_sync(bn);
        qemu_img_check(path);
        qemu_img_compare(path, model, size);
        assert_true(file_size(path) <= before);
        ioq_buf_free(b);
        g_free(model);
        unlink(path);
    }
}

/* Patch @len bytes at @off of the file at @path. */
static void patch(const char *path, long off, const void *data, size_t len)
{
    FILE *f = fopen(path, "r+b");

    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static uint32_t read_be32(const char *path, long off)
{
    uint8_t b[4];
    FILE *f = fopen(path, "rb");

    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fread(b, 1, 4, f), 4);
    fclose(f);
    return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
}

/* The open fails with a message that starts with @want. */
static void open_fails(const char *path, const char *want)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:{s:s,s:s}}", "driver", "qcow2", "file",
                          "driver", "file", "filename", path);
    BlockNode *bn = bdrv_open_options(o, false, &err);

    json_decref(o);
    assert_null(bn);
    assert_non_null(err);
    if (strncmp(error_get_pretty(err), want, strlen(want))) {
        print_error("got '%s', want '%s...'\n", error_get_pretty(err), want);
        fail();
    }
    error_free(err);
}

/*
 * Headers the fuzzer found wrong: a backing file name that is not UTF-8
 * (the open failed without a message) and an end-of-extensions marker
 * whose length runs past the header area (accepted; QEMU refuses it).
 */
static void test_bad_headers(void **state)
{
    g_autofree char *path = path_of("bad.qcow2");
    static const uint8_t not_utf8[] = { 0xa2, 0xf6 };
    static const uint8_t end_too_long[8] = { 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    uint32_t hlen;

    create_sync(path, 1 << 20, 4096, 3, "missing-base.qcow2", false);
    /* the name is the header's last item: overwrite its last two bytes */
    patch(path, read_be32(path, 12) + read_be32(path, 16) - 2, not_utf8, 2);
    open_fails(path, "Could not open backing file: ");
    unlink(path);

    create_sync(path, 1 << 20, 4096, 3, NULL, false);
    hlen = read_be32(path, 100);
    patch(path, hlen, end_too_long, sizeof(end_too_long));
    open_fails(path, "Header extension too large");
    unlink(path);

    /*
     * A file shorter than its first cluster whose extensions run to its
     * end without an end marker: they were read past the header buffer
     * (ASan); now the area ends with the file and the open fails on what
     * is missing.
     */
    create_sync(path, 1 << 20, 65536, 3, NULL, false);
    hlen = read_be32(path, 100);
    {
        uint32_t len = 4096 - hlen - 8;
        uint8_t ext[8] = { 0x12, 0x34, 0x56, 0x78, len >> 24, len >> 16,
                           len >> 8, len };

        assert_int_equal(len % 8, 0);
        patch(path, hlen, ext, sizeof(ext));
    }
    assert_int_equal(truncate(path, 4096), 0);
    open_fails(path, "");
    unlink(path);
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qmpd-qcow2-XXXXXX", NULL);
    return bdrv_init(NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_sizes),
        cmocka_unit_test(test_v2_direct_prealloc),
        cmocka_unit_test(test_backing),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_shrink),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
