/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block migration's source side (migration/block.c, the copy engine in
 * sink mode under it) on real file nodes, with a fake of outgoing.c
 * (the link seam: its buffer room, max-bandwidth's window, the stream):
 * the bulk pass sends every byte once as BLOCK records (zero runs with
 * zero-blocks), operations start only while there is room, at most 8
 * over all disks and the disks in turn, the window ends charged with
 * what went on the wire, a later pass sends what the guest wrote, and
 * a cleanup with reads in flight drops them.  (test-mig-block.c has
 * the destination, which links the real outgoing.c.)
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
#include "block/core/ioq.h"
#include "migration/block.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"
#include "tests/unit/block-sync.h"

#define MiB (1u << 20)
#define LEN (4 * MiB)
#define G (64u << 10)

/* ---- the fake outgoing.c ----------------------------------------------- */

typedef struct {
    uint32_t id;
    uint64_t off;
    uint32_t len;
    int byte;                   /* the first, or -1: a zero run */
    bool uniform;               /* every byte is the first */
} Rec;

static MigInfo info;
static bool zero_blocks;
static bool room = true;
static int64_t window;          /* bytes charged */
static int64_t window_limit = INT64_MAX;
static uint64_t wire;           /* bytes appended */
static unsigned schedules;
static char *fail_desc;
static GArray *recs;            /* Rec */

MigInfo *mig_info(void)
{
    return &info;
}

bool mig_cap_enabled(MigCapability cap)
{
    return cap == MIG_CAP_ZERO_BLOCKS && zero_blocks;
}

bool mig_out_room(void)
{
    return room && window < window_limit;
}

void mig_out_reserve(int64_t bytes)
{
    window = MAX(window + bytes, 0);
}

uint64_t mig_out_append(MigSection type, uint32_t id, const void *payload,
                        uint32_t len)
{
    g_autoptr(GByteArray) b = g_byte_array_new();
    const uint8_t *p = payload;
    Rec r = { .id = id, .uniform = true };

    assert_int_equal(type, MIG_SECTION_BLOCK);
    assert_true(len >= 13);
    for (int i = 0; i < 8; i++) {
        r.off = r.off << 8 | p[i];
    }
    for (int i = 8; i < 12; i++) {
        r.len = r.len << 8 | p[i];
    }
    r.byte = p[12] ? -1 : p[13];
    assert_int_equal(len, p[12] ? 13 : 13 + r.len);
    for (uint32_t i = 1; !p[12] && i < r.len && r.uniform; i++) {
        r.uniform = p[13 + i] == p[13];
    }
    g_array_append_val(recs, r);
    mig_stream_put_record(b, type, id, payload, len);
    wire += b->len;
    return b->len;
}

void mig_out_schedule(void)
{
    schedules++;
}

void mig_out_fail_later(char *desc)
{
    g_free(fail_desc);
    fail_desc = desc;
}

/* ---- disks ------------------------------------------------------------- */

static char *tmpdir;

typedef struct {
    BlockNode *bn;
    BlockBackend *blk;
} Disk;

/*
 * A raw file of LEN bytes on blkdebug (breakpoints), attached to a
 * device: MiB i holds byte 1 + i, except the third, a hole.
 */
static Disk open_disk(const char *name)
{
    g_autofree char *p = g_build_filename(tmpdir, name, NULL);
    static uint8_t mb[MiB];
    FILE *f = fopen(p, "w");
    Error *err = NULL;
    Disk d;

    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), LEN), 0);
    for (unsigned i = 0; i < LEN / MiB; i++) {
        if (i != 2) {
            memset(mb, 1 + i, MiB);
            assert_int_equal(pwrite(fileno(f), mb, MiB, i * MiB), MiB);
        }
    }
    fclose(f);
    d.bn = test_open_sync(json_pack(
        "{s:s,s:{s:s,s:{s:s,s:s}}}", "driver", "raw", "file", "driver",
        "blkdebug", "image", "driver", "file", "filename", p));
    d.blk = blk_new(name, d.bn, &err);
    assert_non_null(d.blk);
    assert_true(blk_attach_dev(d.blk, "virtio-blk-pci", name, &err));
    return d;
}

static void close_disk(Disk d)
{
    blk_delete(d.blk);
    test_close_sync(d.bn);
}

static void reset(void)
{
    memset(&info, 0, sizeof(info));
    zero_blocks = false;
    room = true;
    window = 0;
    window_limit = INT64_MAX;
    wire = 0;
    schedules = 0;
    g_clear_pointer(&fail_desc, g_free);
    if (recs) {
        g_array_free(recs, TRUE);
    }
    recs = g_array_new(FALSE, FALSE, sizeof(Rec));
}

/* outgoing.c's pump: kick, let the reads finish, until the pass is done. */
static void run_pass(void)
{
    while (!mig_blk_out_pass_done()) {
        mig_blk_out_kick();
        g_main_context_iteration(NULL, TRUE);
    }
}

/* Did disk @id's records cover [@off, @off + @len) once, as @byte? */
static bool sent(uint32_t id, uint64_t off, uint64_t len, int byte)
{
    uint64_t covered = 0;

    for (guint i = 0; i < recs->len; i++) {
        const Rec *r = &g_array_index(recs, Rec, i);
        uint64_t lo = MAX(r->off, off);
        uint64_t hi = MIN(r->off + r->len, off + len);

        if (r->id == id && lo < hi) {
            if (r->byte != byte || !r->uniform) {
                return false;
            }
            covered += hi - lo;
        }
    }
    return covered == len;
}

static uint64_t stat_of(const char *name)
{
    g_autoptr(json_t) disk = mig_blk_out_stats();

    return json_integer_value(json_object_get(disk, name));
}

/* ---- tests ------------------------------------------------------------- */

/*
 * The bulk pass: every byte once, the hole as a zero run with
 * zero-blocks and as data without; query-migrate's disk{} goes from
 * nothing sent to all; the window ends charged with the wire's bytes.
 */
static void bulk_case(bool zeroes)
{
    Disk d = open_disk("drive0");
    Error *err = NULL;

    reset();
    zero_blocks = zeroes;
    assert_true(mig_blk_out_setup(false, &err));
    assert_true(info.disk);
    assert_int_equal(stat_of("total"), LEN);
    assert_int_equal(stat_of("remaining"), LEN);
    assert_false(mig_blk_out_pass_done());
    run_pass();
    assert_int_equal(stat_of("transferred"), LEN);
    assert_int_equal(stat_of("remaining"), 0);
    assert_true(sent(0, 0, MiB, 1));
    assert_true(sent(0, MiB, MiB, 2));
    assert_true(sent(0, 2 * MiB, MiB, zeroes ? -1 : 0));
    assert_true(sent(0, 3 * MiB, MiB, 4));
    assert_int_equal(window, wire);
    assert_true(schedules > 0);
    assert_null(fail_desc);
    assert_int_equal(mig_blk_out_pending(), 0);
    mig_blk_out_cleanup();
    assert_null(mig_blk_out_stats());
    close_disk(d);
}

static void test_bulk_pass(void **state)
{
    bulk_case(true);
    bulk_case(false);
}

/*
 * Backpressure: without room nothing starts; with a window of 2 MiB
 * two operations of a MiB start, and no more until it is refunded.
 */
static void test_room_and_window(void **state)
{
    Disk d = open_disk("drive0");
    Error *err = NULL;

    reset();
    assert_true(mig_blk_out_setup(false, &err));
    room = false;
    mig_blk_out_kick();
    assert_int_equal(window, 0);
    assert_int_equal(stat_of("remaining"), LEN);
    room = true;
    window_limit = 2 * MiB;
    mig_blk_out_kick();
    assert_int_equal(window, 2 * MiB);      /* charged up front */
    while (recs->len < 2) {
        g_main_context_iteration(NULL, TRUE);
    }
    /* the two are sent and the window holds their wire bytes */
    mig_blk_out_kick();
    assert_int_equal(recs->len, 2);
    assert_false(mig_blk_out_pass_done());
    window = 0;
    run_pass();
    assert_true(sent(0, 0, MiB, 1));
    assert_true(sent(0, MiB, MiB, 2));
    assert_true(sent(0, 2 * MiB, MiB, 0));
    assert_true(sent(0, 3 * MiB, MiB, 4));
    mig_blk_out_cleanup();
    close_disk(d);
}

/*
 * Three disks take turns, and no more than eight operations are busy
 * over them: the first kick starts 3, 3 and 2 (a MiB each), and the
 * engines start no more on their own.
 */
static void test_disks_take_turns(void **state)
{
    Disk d[3] = { open_disk("drive0"), open_disk("drive1"),
                  open_disk("drive2") };
    unsigned per_disk[3] = { 0 };
    Error *err = NULL;

    reset();
    assert_true(mig_blk_out_setup(false, &err));
    mig_blk_out_kick();
    assert_int_equal(window, 8 * MiB);
    assert_int_equal(stat_of("remaining"), 3 * LEN);
    while (recs->len < 8) {
        g_main_context_iteration(NULL, TRUE);
    }
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    assert_int_equal(recs->len, 8);
    for (guint i = 0; i < recs->len; i++) {
        per_disk[g_array_index(recs, Rec, i).id]++;
    }
    assert_int_equal(per_disk[0], 3);
    assert_int_equal(per_disk[1], 3);
    assert_int_equal(per_disk[2], 2);
    run_pass();
    for (uint32_t id = 0; id < 3; id++) {
        assert_true(sent(id, 0, MiB, 1));
        assert_true(sent(id, 3 * MiB, MiB, 4));
    }
    mig_blk_out_cleanup();
    for (int i = 2; i >= 0; i--) {
        close_disk(d[i]);
    }
}

static void write_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    (*(int *)opaque)--;
}

/*
 * What the guest writes after the bulk pass is pending, and the next
 * pass sends that and nothing else.
 */
static void test_next_pass(void **state)
{
    Disk d = open_disk("drive0");
    uint8_t *buf = ioq_buf_alloc(4096);
    Error *err = NULL;
    int pending = 1;

    reset();
    assert_true(mig_blk_out_setup(false, &err));
    run_pass();
    memset(buf, 0x5a, 4096);
    bdrv_write(d.bn, MiB + G, 4096, buf, 0, write_cb, &pending);
    while (pending) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(mig_blk_out_pending(), G);
    g_array_set_size(recs, 0);
    mig_blk_out_sync();
    assert_int_equal(mig_blk_out_pending(), 0);
    assert_false(mig_blk_out_pass_done());
    run_pass();
    assert_int_equal(recs->len, 1);
    assert_int_equal(g_array_index(recs, Rec, 0).off, MiB + G);
    assert_int_equal(g_array_index(recs, Rec, 0).len, G);
    assert_int_equal(g_array_index(recs, Rec, 0).byte, 0x5a);
    /* the disk{} numbers are the bulk pass's: done */
    assert_int_equal(stat_of("transferred"), LEN);
    mig_blk_out_cleanup();
    ioq_buf_free(buf);
    close_disk(d);
}

/*
 * Cleanup with reads in flight (a cancel): the disk is free at once,
 * the reads finish and are dropped, nothing more goes to the stream.
 */
static void test_cleanup_with_reads_in_flight(void **state)
{
    Disk d = open_disk("drive0");
    Error *err = NULL;
    guint n;

    reset();
    assert_true(mig_blk_out_setup(false, &err));
    assert_int_equal(bdrv_debug_breakpoint(d.bn, "read_aio", "r"), 0);
    mig_blk_out_kick();
    while (!bdrv_debug_is_suspended(d.bn, "r")) {
        g_main_context_iteration(NULL, TRUE);
    }
    mig_blk_out_cleanup();
    assert_null(mig_blk_out_stats());
    assert_true(mig_blk_out_pass_done());
    schedules = 0;
    n = recs->len;
    assert_true(n < LEN / MiB);        /* one read is held */
    assert_int_equal(bdrv_debug_remove_breakpoint(d.bn, "r"), 0);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    assert_int_equal(recs->len, n);
    assert_int_equal(schedules, 0);
    assert_null(fail_desc);
    close_disk(d);
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qmpd-migblkout-XXXXXX", NULL);
    return bdrv_init(NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    const char *names[] = { "drive0", "drive1", "drive2" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *p = g_build_filename(tmpdir, names[i], NULL);

        unlink(p);
    }
    g_clear_pointer(&fail_desc, g_free);
    if (recs) {
        g_array_free(recs, TRUE);
    }
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_pass),
        cmocka_unit_test(test_room_and_window),
        cmocka_unit_test(test_disks_take_turns),
        cmocka_unit_test(test_next_pass),
        cmocka_unit_test(test_cleanup_with_reads_in_flight),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
