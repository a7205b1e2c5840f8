/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The request layer's block limits (io-align.c): the padding of
 * unaligned requests, the cutting of zero writes and discards (QEMU's
 * rules, as tables), and whole requests through the request layer on a
 * node whose fake driver records every call and keeps the bytes in
 * memory: each call aligned and within max_transfer, read-modify-write
 * keeping the bytes around a write, zero pieces the driver declines
 * written as data, discard pieces it declines dropped, and two
 * unaligned writes into one block both kept (serialised).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "block/core/io-align.h"
#include "block/core/ioq.h"

#define DISK 4096

/* ---- pure arithmetic ---------------------------------------------------- */

static void test_padding(void **state)
{
    static const struct {
        uint64_t off, len;
        uint32_t align;
        bool padded;
        uint64_t head, tail, buf_len;
        bool merge;
    } cases[] = {
        { 0, 4096, 4096, false, 0, 0, 0, false },
        { 512, 512, 4096, true, 512, 3072, 4096, true },
        { 0, 512, 4096, true, 0, 3584, 4096, true },
        { 3584, 1024, 4096, true, 3584, 3584, 8192, true },
        { 512, 8192, 4096, true, 512, 3584, 8192, false },
        { 512, 3584, 4096, true, 512, 0, 4096, true },
        { 512, 7680, 4096, true, 512, 0, 4096, false },
        { 4096, 100, 4096, true, 0, 3996, 4096, true },
        { 5, 100, 8, true, 5, 7, 16, false },
        { 5, 3, 8, true, 5, 0, 8, true },
        { 7, 2, 8, true, 7, 7, 16, true },
        { 3, 1, 3, true, 0, 2, 3, true },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        BdrvPadding p;

        assert_int_equal(bdrv_padding(cases[i].off, cases[i].len,
                                      cases[i].align, &p), cases[i].padded);
        if (!cases[i].padded) {
            continue;
        }
        assert_int_equal(p.head, cases[i].head);
        assert_int_equal(p.tail, cases[i].tail);
        assert_int_equal(p.buf_len, cases[i].buf_len);
        assert_int_equal(p.merge, cases[i].merge);
    }
}

/* The pieces @fn cuts [@off, @off + @len) into, as "off+len" words. */
static char *pieces(uint64_t (*fn)(const BdrvLimits *, uint64_t, uint64_t),
                    const BdrvLimits *bl, uint64_t off, uint64_t len)
{
    GString *s = g_string_new(NULL);

    while (len) {
        uint64_t n = fn(bl, off, len);

        assert_true(n > 0 && n <= len);
        g_string_append_printf(s, "%s%" PRIu64 "+%" PRIu64,
                               s->len ? " " : "", off, n);
        off += n;
        len -= n;
    }
    return g_string_free(s, FALSE);
}

typedef uint64_t PieceFn(const BdrvLimits *bl, uint64_t off, uint64_t len);

static void test_pieces(void **state)
{
    static const struct {
        PieceFn *fn;
        BdrvLimits bl;
        uint64_t off, len;
        const char *want;
    } cases[] = {
        /* zero writes.  No limits: one piece */
        { bdrv_zero_piece, { 1, 0, 0, 0, 0, 0 }, 100, 100000, "100+100000" },
        /* head to the boundary, aligned bulk, tail on its own */
        { bdrv_zero_piece, { 1, 0, 4096, 0, 0, 0 }, 0, 6144,
          "0+4096 4096+2048" },
        { bdrv_zero_piece, { 1, 0, 4096, 0, 0, 0 }, 512, 10000,
          "512+3584 4096+4096 8192+2320" },
        { bdrv_zero_piece, { 1, 0, 4096, 8192, 0, 0 }, 0, 20480,
          "0+8192 8192+8192 16384+4096" },
        /* the maximum is aligned down to the alignment */
        { bdrv_zero_piece, { 1, 0, 4096, 10000, 0, 0 }, 0, 20480,
          "0+8192 8192+8192 16384+4096" },
        /* odd: request alignment 8 over zero alignment 16, max 32 */
        { bdrv_zero_piece, { 8, 0, 16, 32, 0, 0 }, 8, 56, "8+8 16+32 48+16" },
        /* a head is never longer than max_transfer */
        { bdrv_zero_piece, { 1, 3000, 65536, 0, 0, 0 }, 100, 70000,
          "100+3000 3100+3000 6100+3000 9100+3000 12100+3000 15100+3000 "
          "18100+3000 21100+3000 24100+3000 27100+3000 30100+3000 "
          "33100+3000 36100+3000 39100+3000 42100+3000 45100+3000 "
          "48100+3000 51100+3000 54100+3000 57100+3000 60100+3000 "
          "63100+2436 65536+4564" },
        /* discards */
        { bdrv_discard_piece, { 1, 0, 0, 0, 0, 0 }, 100, 100000,
          "100+100000" },
        { bdrv_discard_piece, { 1, 0, 0, 0, 4096, 4096 }, 0, 12288,
          "0+4096 4096+4096 8192+4096" },
        { bdrv_discard_piece, { 1, 0, 0, 0, 4096, 0 }, 512, 10000,
          "512+3584 4096+4096 8192+2320" },
        /* request alignment 512 inside a 4096 optimum: the head is cut
         * to what is left of its sector, the tail likewise */
        { bdrv_discard_piece, { 512, 0, 0, 0, 4096, 0 }, 100, 9000,
          "100+412 512+3584 4096+4096 8192+512 8704+396" },
        { bdrv_discard_piece, { 512, 0, 0, 0, 4096, 0 }, 0, 1500,
          "0+1024 1024+476" },
        { bdrv_discard_piece, { 4096, 0, 0, 0, 0, 0 }, 512, 512, "512+512" },
        /* odd: 3-byte sectors, 9-byte optimum, 18-byte maximum */
        { bdrv_discard_piece, { 3, 0, 0, 0, 9, 18 }, 1, 60,
          "1+2 3+6 9+18 27+18 45+9 54+6 60+1" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = pieces(cases[i].fn, &cases[i].bl,
                                      cases[i].off, cases[i].len);

        assert_string_equal(got, cases[i].want);
    }
}

/* ---- a recording driver -------------------------------------------------- */

static uint8_t disk[DISK];
static GString *calls;
static BlockNode *node;
static bool decline_short;  /* zero writes/discards under the optimum */

static void record(const char *op, uint64_t off, uint64_t len)
{
    const BdrvLimits *bl = &node->bl;

    g_string_append_printf(calls, "%s%s %" PRIu64 "+%" PRIu64,
                           calls->len ? ", " : "", op, off, len);
    /* what every driver may count on (a discard piece shorter than a
     * sector may be anywhere: the driver declines it) */
    if (strcmp(op, "discard") || len >= bl->request_alignment) {
        assert_int_equal(off % bl->request_alignment, 0);
        assert_int_equal(len % bl->request_alignment, 0);
    }
    if (bl->max_transfer && (!strcmp(op, "read") || !strcmp(op, "write"))) {
        assert_true(len <= bl->max_transfer);
    }
}

static void fake_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                      BdrvCb *cb, void *opaque)
{
    record("read", off, len);
    memcpy(buf, disk + off, len);
    ioq_defer_int(cb, opaque, 0);
}

static void fake_write(BlockNode *bn, uint64_t off, uint64_t len,
                       const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    record("write", off, len);
    memcpy(disk + off, buf, len);
    ioq_defer_int(cb, opaque, 0);
}

static void fake_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                              int flags, BdrvCb *cb, void *opaque)
{
    record("zero", off, len);
    if (decline_short && len < bn->bl.pwrite_zeroes_alignment) {
        ioq_defer_int(cb, opaque, -ENOTSUP);
        return;
    }
    memset(disk + off, 0, len);
    ioq_defer_int(cb, opaque, 0);
}

static void fake_discard(BlockNode *bn, uint64_t off, uint64_t len,
                         BdrvCb *cb, void *opaque)
{
    record("discard", off, len);
    if (decline_short && len < bn->bl.pdiscard_alignment) {
        ioq_defer_int(cb, opaque, -ENOTSUP);
        return;
    }
    memset(disk + off, 0xdd, len);
    ioq_defer_int(cb, opaque, 0);
}

static const BlockDriver fake_driver = {
    .name = "fake",
    .read = fake_read,
    .write = fake_write,
    .write_zeroes = fake_write_zeroes,
    .discard = fake_discard,
};

static void settle(void)
{
    for (int i = 0; i < 200; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
}

static void done_cb(void *opaque, int ret)
{
    *(int *)opaque = ret == 0 ? 1 : ret;
}

static int setup(void **state)
{
    Error *err = NULL;

    assert_true(bdrv_init(&err));
    node = g_new0(BlockNode, 1);
    node->drv = &fake_driver;
    node->node_name = g_strdup("fake");
    node->refcnt = 1;
    node->parents = g_ptr_array_new();
    node->total_size = DISK;
    node->discard_unmap = true;
    calls = g_string_new(NULL);
    return 0;
}

/* Fresh disk contents (byte i is i & 0x7f) and limits; no calls yet. */
static void reset(BdrvLimits bl, bool decline)
{
    for (int i = 0; i < DISK; i++) {
        disk[i] = i & 0x7f;
    }
    node->bl = bl;
    decline_short = decline;
    g_string_truncate(calls, 0);
}

static void expect_disk(uint64_t off, uint64_t len, int byte)
{
    for (uint64_t i = off; i < off + len; i++) {
        assert_int_equal(disk[i], byte < 0 ? (int)(i & 0x7f) : byte);
    }
}

static void test_rmw_write(void **state)
{
    uint8_t data[100];
    int done = 0;

    memset(data, 0xee, sizeof(data));
    /* odd limits: 8-byte sectors, at most 24 bytes per request */
    reset((BdrvLimits) { .request_alignment = 8, .max_transfer = 24 },
          false);
    bdrv_write(node, 5, 100, data, 0, done_cb, &done);
    settle();
    assert_int_equal(done, 1);
    /* head block and tail block read back, then all 112 bytes written */
    assert_string_equal(calls->str,
                        "read 0+8, read 104+8, write 0+24, write 24+24, "
                        "write 48+24, write 72+24, write 96+16");
    expect_disk(0, 5, -1);
    expect_disk(5, 100, 0xee);
    expect_disk(105, DISK - 105, -1);

    /* a read of any alignment: widened, cut, and the right bytes */
    reset((BdrvLimits) { .request_alignment = 8, .max_transfer = 24 },
          false);
    memset(data, 0, sizeof(data));
    done = 0;
    bdrv_read(node, 3, 30, data, done_cb, &done);
    settle();
    assert_int_equal(done, 1);
    assert_string_equal(calls->str, "read 0+24, read 24+16");
    for (int i = 0; i < 30; i++) {
        assert_int_equal(data[i], (3 + i) & 0x7f);
    }
}

static void test_rmw_zero_write(void **state)
{
    int done = 0;

    /* 8-byte sectors, zero writes aligned to 16, at most 32, short zero
     * writes declined: the partial head block goes down as data, the
     * declined short piece as zeroed data, the rest as zero writes */
    reset((BdrvLimits) { .request_alignment = 8,
                         .pwrite_zeroes_alignment = 16,
                         .max_pwrite_zeroes = 32 }, true);
    bdrv_write_zeroes(node, 4, 60, 0, done_cb, &done);
    settle();
    assert_int_equal(done, 1);
    assert_string_equal(calls->str,
                        "read 0+8, write 0+8, zero 8+8, write 8+8, "
                        "zero 16+32, zero 48+16");
    expect_disk(0, 4, -1);
    expect_disk(4, 60, 0);
    expect_disk(64, DISK - 64, -1);
}

static void test_discard_declined(void **state)
{
    int done = 0;

    reset((BdrvLimits) { .request_alignment = 1, .pdiscard_alignment = 16,
                         .max_pdiscard = 32 }, true);
    bdrv_discard(node, 10, 70, done_cb, &done);
    settle();
    assert_int_equal(done, 1);
    assert_string_equal(calls->str,
                        "discard 10+6, discard 16+32, discard 48+32");
    /* the short head piece was declined: its bytes stay */
    expect_disk(10, 6, -1);
    expect_disk(16, 64, 0xdd);
}

static void test_rmw_serialised(void **state)
{
    uint8_t a[16], b[16], c[512];
    int da = 0, db = 0, dc = 0;

    memset(a, 0xa1, sizeof(a));
    memset(b, 0xb2, sizeof(b));
    memset(c, 0xc3, sizeof(c));
    reset((BdrvLimits) { .request_alignment = 512 }, false);
    /* two writes into one block, and an aligned one over it: without
     * serialisation the second read-back would miss the first write */
    bdrv_write(node, 100, 16, a, 0, done_cb, &da);
    bdrv_write(node, 300, 16, b, 0, done_cb, &db);
    bdrv_write(node, 512, 512, c, 0, done_cb, &dc);
    settle();
    assert_int_equal(da, 1);
    assert_int_equal(db, 1);
    assert_int_equal(dc, 1);
    expect_disk(100, 16, 0xa1);
    expect_disk(300, 16, 0xb2);
    expect_disk(512, 512, 0xc3);
    expect_disk(0, 100, -1);
    expect_disk(116, 184, -1);
    expect_disk(316, 196, -1);
    assert_string_equal(calls->str,
                        "read 0+512, write 512+512, write 0+512, "
                        "read 0+512, write 0+512");
}

static void test_detect_zeroes_after_widening(void **state)
{
    uint8_t z[8] = { 0 };
    int done = 0;

    /* detect-zeroes looks at the whole block written, as QEMU's: zero
     * bytes inside a block of data stay a data write */
    reset((BdrvLimits) { .request_alignment = 64 }, false);
    node->detect_zeroes = BDRV_DETECT_ZEROES_ON;
    bdrv_write(node, 8, 8, z, 0, done_cb, &done);
    settle();
    assert_int_equal(done, 1);
    assert_string_equal(calls->str, "read 0+64, write 0+64");
    memset(disk, 0, 64);
    g_string_truncate(calls, 0);
    bdrv_write(node, 8, 8, z, 0, done_cb, &done);
    settle();
    assert_string_equal(calls->str, "read 0+64, zero 0+64");
    node->detect_zeroes = BDRV_DETECT_ZEROES_OFF;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_rmw_write),
        cmocka_unit_test(test_rmw_zero_write),
        cmocka_unit_test(test_discard_declined),
        cmocka_unit_test(test_rmw_serialised),
        cmocka_unit_test(test_detect_zeroes_after_widening),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
