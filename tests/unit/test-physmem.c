/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest physical memory qtest reads and writes: RAM where each
 * machine maps it (all from 0 on none; split at QEMU 7.2's lowmem on
 * i440fx and q35, the rest from 4 GiB), zeros and dropped writes
 * elsewhere, accesses that cross pages and RAM's ends; RAM by offset
 * as migration reads and stores it, and the dirty log.
 */
#include "config.h"

#include <setjmp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "system/machine.h"
#include "system/physmem.h"

#define GiB (1ULL << 30)
#define FOUR_GIB (4 * GiB)

static void set_machine(const char *type, uint64_t ram)
{
    MachineConfig mc = { .type = type, .accel = "qtest", .ram_size = ram,
                         .maxram_size = ram };

    physmem_reset();
    machine_set_config(&mc);
}

/* Write a pattern at @addr and read back what stays. */
static bool sticks(uint64_t addr)
{
    static const uint8_t pat[4] = { 0xde, 0xad, 0xbe, 0xef };
    uint8_t back[4];

    physmem_write(addr, pat, sizeof(pat));
    physmem_read(addr, back, sizeof(back));
    return !memcmp(back, pat, sizeof(pat));
}

static void test_fresh_ram_is_zero(void **state)
{
    uint8_t buf[8192];
    uint8_t zero[8192] = { 0 };

    (void)state;
    set_machine("none", 64 << 20);
    memset(buf, 0x55, sizeof(buf));
    physmem_read(4096 - 7, buf, sizeof(buf));
    assert_memory_equal(buf, zero, sizeof(buf));
}

static void test_cross_page(void **state)
{
    uint8_t in[10000], out[10000];

    (void)state;
    set_machine("none", 64 << 20);
    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = i * 7;
    }
    physmem_write(4096 * 3 - 100, in, sizeof(in));
    physmem_read(4096 * 3 - 100, out, sizeof(out));
    assert_memory_equal(in, out, sizeof(in));
}

static void test_ram_ends(void **state)
{
    uint8_t two[2] = { 0x11, 0x22 }, back[2];

    (void)state;
    set_machine("none", 64 << 20);
    assert_true(sticks(0));
    assert_true(sticks((64 << 20) - 4));
    assert_false(sticks(64 << 20));
    /* half in, half out: the last byte of RAM keeps its half */
    physmem_write((64 << 20) - 1, two, 2);
    physmem_read((64 << 20) - 1, back, 2);
    assert_int_equal(back[0], 0x11);
    assert_int_equal(back[1], 0);
}

static void test_pc_split(void **state)
{
    (void)state;
    /* 4 GiB on i440fx: 3 GiB low, 1 GiB from 4 GiB */
    set_machine("pc-i440fx-7.2", FOUR_GIB);
    assert_true(sticks(3 * GiB - 4));
    assert_false(sticks(3 * GiB));
    assert_true(sticks(FOUR_GIB));
    assert_true(sticks(5 * GiB - 4));
    assert_false(sticks(5 * GiB));
    /* 3 GiB on q35: 2 GiB low */
    set_machine("pc-q35-7.2", 3 * GiB);
    assert_true(sticks(2 * GiB - 4));
    assert_false(sticks(2 * GiB));
    assert_true(sticks(FOUR_GIB + GiB - 4));
    assert_false(sticks(FOUR_GIB + GiB));
    /* 128 MiB: all low */
    set_machine("pc-i440fx-7.2", 128 << 20);
    assert_true(sticks((128 << 20) - 4));
    assert_false(sticks(128 << 20));
    assert_false(sticks(FOUR_GIB));
}

static void test_no_ram(void **state)
{
    (void)state;
    set_machine("none", 0);
    assert_false(sticks(0));
    assert_false(sticks(FOUR_GIB));
}

/* The RAM offsets of the dirty pages of @hb, as a string "a b c". */
static char *dirty_list(const HBitmap *hb)
{
    GString *s = g_string_new(NULL);
    int64_t off = hbitmap_next_dirty(hb, 0);

    while (off >= 0) {
        g_string_append_printf(s, "%s%" PRIu64, s->len ? " " : "",
                               (uint64_t)off / PHYSMEM_PAGE_SIZE);
        off = hbitmap_next_dirty(hb, off + PHYSMEM_PAGE_SIZE);
    }
    return g_string_free(s, FALSE);
}

static void test_dirty_log(void **state)
{
    HBitmap *hb;
    uint8_t b = 1;
    char *l;

    (void)state;
    set_machine("pc-i440fx-7.2", 4 * GiB);   /* 3 GiB low, 1 GiB high */
    physmem_write(0, &b, 1);                 /* before the log: unseen */
    physmem_dirty_log_start();
    assert_true(physmem_dirty_log_running());
    hb = hbitmap_new(physmem_ram_size(), PHYSMEM_PAGE_SIZE);
    physmem_write(4096 * 5 - 1, &b, 1);
    physmem_write(4096 * 7 - 1, (uint8_t[2]){ 1, 2 }, 2);   /* pages 6, 7 */
    physmem_write(FOUR_GIB, &b, 1);          /* RAM offset 3 GiB */
    physmem_write(3 * GiB, &b, 1);           /* not RAM: nothing */
    physmem_dirty_log_sync(hb);
    l = dirty_list(hb);
    assert_string_equal(l, "4 6 7 786432");
    g_free(l);
    /* the sync cleared the log: a second one adds only new writes */
    hbitmap_reset_all(hb);
    physmem_ram_store_page(8 * 4096, NULL);
    physmem_dirty_log_sync(hb);
    l = dirty_list(hb);
    assert_string_equal(l, "8");
    g_free(l);
    physmem_dirty_log_stop();
    assert_false(physmem_dirty_log_running());
    hbitmap_free(hb);
}

static void test_ram_pages(void **state)
{
    uint8_t page[PHYSMEM_PAGE_SIZE], back[8];
    GArray *offs;

    (void)state;
    set_machine("pc-q35-7.2", 3 * GiB);      /* 2 GiB low, 1 GiB high */
    memset(page, 0xab, sizeof(page));
    assert_null(physmem_ram_page(0));
    physmem_ram_store_page(2 * GiB, page);   /* maps at 4 GiB */
    physmem_read(FOUR_GIB + 8, back, sizeof(back));
    assert_memory_equal(back, page, sizeof(back));
    physmem_write(4096, page, 1);
    offs = physmem_ram_stored_pages();
    assert_int_equal(offs->len, 2);
    assert_int_equal(g_array_index(offs, uint64_t, 0), 4096);
    assert_int_equal(g_array_index(offs, uint64_t, 1), 2 * GiB);
    g_array_free(offs, TRUE);
    assert_memory_equal(physmem_ram_page(2 * GiB), page, sizeof(page));
    /* a zero page frees what was stored */
    physmem_ram_store_page(2 * GiB, NULL);
    assert_null(physmem_ram_page(2 * GiB));
    physmem_read(FOUR_GIB + 8, back, sizeof(back));
    assert_memory_equal(back, (uint8_t[8]){ 0 }, sizeof(back));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_ram_is_zero),
        cmocka_unit_test(test_cross_page),
        cmocka_unit_test(test_ram_ends),
        cmocka_unit_test(test_pc_split),
        cmocka_unit_test(test_no_ram),
        cmocka_unit_test(test_dirty_log),
        cmocka_unit_test(test_ram_pages),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    physmem_reset();
    return rc;
}
