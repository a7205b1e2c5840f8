/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block migration, the source side: the disks of the guest's devices go
 * into the stream in passes, as its RAM does.  This file holds the
 * policy; each disk's copying is a copy engine (block/jobs/copy.h) in
 * sink mode, whose sink is the stream.
 *
 *   setup:  every writable disk attached to a device gets an anonymous
 *           dirty bitmap of 64 KiB granules (QEMU's are 1 MiB: a guest's
 *           4 KiB write would cost 1 MiB again), and an engine whose
 *           dirty bitmap is its pass set (todo), the whole disk: the
 *           bulk pass
 *   pass:   the engines' operations take dirty runs of todo of at most
 *           1 MiB, at most MB_MAX_OPS over all disks at once, a disk at
 *           a time in turn, and only while outgoing.c has room (its
 *           buffer and max-bandwidth's window: the admit hook); each
 *           request the engine reads becomes a BLOCK record (data, or a
 *           zero run with zero-blocks); with -i only what the top image
 *           holds above its backing file is read
 *   sync:   once todo is empty and nothing is in flight, outgoing.c
 *           decides: another pass (what the bitmap recorded becomes
 *           todo) or the stop-and-copy (the guest stopped, the same,
 *           and END only once this last pass is sent)
 *
 * Why every request holds a range lock on the disk from its status
 * query to the end of its read (the engine's lock_source): the bitmap
 * marks a guest write as it starts.  A write in flight when a sync
 * clears its bits could land after an unlocked read of the same range,
 * and the range would never be sent again; the same goes for the status
 * query, which until a write to an unallocated cluster lands says the
 * cluster is the base's (-i) or zeroes (zero-blocks), so that the piece
 * is skipped or sent as a zero run.  The lock is granted only once no
 * overlapping write is in flight, and writes that come meanwhile wait
 * and mark the bitmap after the read: whatever a piece missed is dirty
 * for the next pass, and the stop-and-copy's pass, with the guest
 * stopped, misses nothing.
 *
 * max-bandwidth's window is charged an operation's whole area when it
 * starts, so that the operations in flight never overrun it; each
 * record then corrects the charge to what it took on the wire, and the
 * retire hook refunds what the operation skipped (-i) or gave back.
 *
 * Each disk carries QEMU's migration blocker from setup to cleanup
 * (completion, failure or cancel): jobs, resizes and snapshots on it
 * are refused meanwhile ("Node 'drive0' is busy: block device is in use
 * by migration").
 *
 * Operations outlive a cancelled migration: an engine still busy at
 * cleanup holds a reference on the state, which cleanup marks dead;
 * its reads finish, unlock and are dropped, and its idle hook frees it
 * (the last one frees the state and its disks).
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include <glib.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/copy.h"
#include "migration/block.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"

#define MB_CHUNK (1u << 20)
#define MB_GRAN (64u << 10)
#define MB_MAX_OPS 8

/* QEMU 7.2's migration blocker on each disk it moves */
static const char mb_blocker[] = "block device is in use by migration";

typedef struct MigBlkOut MigBlkOut;

typedef struct MigBlkDev {
    MigBlkOut *s;
    char *name;
    uint32_t id;                /* its BLOCK records' section id */
    BlockNode *bn;
    uint64_t len;
    DirtyBitmap *bm;            /* guest writes since the last sync */
    BlockCopy *bc;              /* this pass (todo is its dirty bitmap) */
    bool blocked;               /* mb_blocker is on bn */
} MigBlkDev;

struct MigBlkOut {
    GPtrArray *devs;
    bool incremental;
    bool zero_blocks;
    bool bulk;                  /* the first pass is not over yet */
    bool dead;                  /* cleaned up: operations are dropped */
    unsigned busy;              /* operations over all disks */
    unsigned refs;              /* the migration's and each busy engine's */
    unsigned next_dev;          /* whose turn is next */
    MigBlkDev *turn;            /* may start one operation now */
};

static MigBlkOut *mb;

static void mb_dev_free(gpointer p)
{
    MigBlkDev *d = p;

    if (d->blocked) {
        bdrv_op_unblock(d->bn, mb_blocker);
    }
    if (d->bm) {
        dbitmap_release(d->bm);
    }
    block_copy_free(d->bc);
    bdrv_unref(d->bn);
    g_free(d->name);
    g_free(d);
}

static void mb_unref(MigBlkOut *s)
{
    if (--s->refs == 0) {
        g_ptr_array_unref(s->devs);
        g_free(s);
    }
}

static bool mb_may_run(void *opaque)
{
    return !((MigBlkDev *)opaque)->s->dead;
}

/* Status queries fail as reads do; the range stays in todo. */
static BlockCopyErrorResult mb_error(void *opaque, bool is_read, int ret)
{
    MigBlkDev *d = opaque;

    if (!d->s->dead) {
        mig_out_fail_later(g_strdup_printf("Error reading block device "
                                           "%s: %s", d->name,
                                           g_strerror(-ret)));
    }
    return BLOCK_COPY_ERROR_RETRY;
}

/* After cleanup the last operation's end lets the engine go. */
static void mb_idle(void *opaque)
{
    MigBlkDev *d = opaque;
    MigBlkOut *s = d->s;

    if (s->dead) {
        block_copy_free(d->bc);
        d->bc = NULL;
        mb_unref(s);
    }
}

static bool buf_zero(const uint8_t *p, uint64_t n)
{
    return !p[0] && !memcmp(p, p + 1, n - 1);
}

/* One BLOCK record: a piece's data, or (@buf NULL) a zero run. */
static int mb_sink(void *opaque, uint64_t off, uint64_t n, const void *buf)
{
    MigBlkDev *d = opaque;
    g_autoptr(GByteArray) rec = NULL;
    uint64_t sent;

    if (d->s->dead) {
        return 0;               /* read after a cancel: dropped */
    }
    if (buf && d->s->zero_blocks && buf_zero(buf, n)) {
        buf = NULL;
    }
    rec = g_byte_array_new();
    mig_put_be64(rec, off);
    mig_put_be32(rec, n);
    g_byte_array_append(rec, (const guint8 *)(buf ? "\0" : "\1"), 1);
    if (buf) {
        g_byte_array_append(rec, buf, n);
    }
    sent = mig_out_append(MIG_SECTION_BLOCK, d->id, rec->data, rec->len);
    /* the window was charged the piece: a zero run costs less */
    mig_out_reserve((int64_t)sent - (int64_t)n);
    return 0;
}

/* Only the disk whose turn it is starts an operation, one. */
static bool mb_admit(void *opaque, uint64_t off, uint64_t len)
{
    MigBlkDev *d = opaque;
    MigBlkOut *s = d->s;

    if (s->turn != d) {
        return false;
    }
    s->turn = NULL;
    s->busy++;
    mig_out_reserve(len);
    return true;
}

static void mb_retire(void *opaque, uint64_t len, uint64_t copied)
{
    MigBlkOut *s = ((MigBlkDev *)opaque)->s;

    s->busy--;
    if (!s->dead) {
        /* what was skipped (-i) or is to be read again cost nothing */
        mig_out_reserve(-(int64_t)(len - copied));
        mig_out_schedule();
    }
}

static const BlockCopyOps mb_copy_ops = {
    .may_run = mb_may_run,
    .error = mb_error,
    .idle = mb_idle,
    .sink = mb_sink,
    .admit = mb_admit,
    .retire = mb_retire,
};

/*
 * The disk's engine: todo at 64 KiB, requests of up to a chunk, each
 * under a lock on the disk; -i copies what lies above the backing
 * file, -b with zero-blocks asks which ranges read zeroes.
 */
static BlockCopy *mb_engine(MigBlkOut *s, MigBlkDev *d)
{
    BlockCopyConfig c = {
        .source = d->bn,
        .alloc_check = s->incremental,
        .alloc_top = d->bn,
        .alloc_base = bdrv_backing(d->bn),
        .zeroes = !s->incremental && s->zero_blocks
            ? BLOCK_COPY_ZEROES_WRITE : BLOCK_COPY_ZEROES_COPY,
        .len = MAX(d->len, 1),  /* a bitmap of no bits is none */
        .granularity = MB_GRAN,
        .chunk = MB_CHUNK,
        .step = MB_CHUNK,
        .max_ops = MB_MAX_OPS,
        .lock_source = true,
        .ops = &mb_copy_ops,
        .opaque = d,
    };

    return block_copy_new(&c);
}

/* The guest's disks: backends a device uses, with a writable medium. */
bool mig_blk_out_setup(bool incremental, Error **errp)
{
    GPtrArray *all = blk_all();
    MigBlkOut *s = g_new0(MigBlkOut, 1);

    g_assert(!mb);
    mig_info()->disk = true;
    s->devs = g_ptr_array_new_with_free_func(mb_dev_free);
    s->incremental = incremental;
    s->zero_blocks = mig_cap_enabled(MIG_CAP_ZERO_BLOCKS);
    s->bulk = true;
    s->refs = 1;
    for (guint i = 0; i < all->len; i++) {
        BlockBackend *blk = g_ptr_array_index(all, i);
        BlockNode *bn = blk_root(blk);
        MigBlkDev *d;

        if (!blk_qdev(blk) || !bn || blk_root_read_only(blk)
            || bdrv_is_read_only(bn)) {
            continue;
        }
        d = g_new0(MigBlkDev, 1);
        d->bm = dbitmap_create(bn, MB_GRAN, NULL, errp);
        if (!d->bm) {
            g_free(d);
            mb = s;
            mig_blk_out_cleanup();
            return false;
        }
        bdrv_ref(bn);
        d->s = s;
        d->bn = bn;
        bdrv_op_block(bn, mb_blocker);
        d->blocked = true;
        d->name = g_strdup(*blk_name(blk) ? blk_name(blk)
                           : bdrv_node_name(bn));
        d->len = bdrv_length(bn);
        d->bc = mb_engine(s, d);
        block_copy_set_dirty(d->bc, 0, d->len);
        d->id = s->devs->len;
        g_ptr_array_add(s->devs, d);
    }
    mb = s;
    return true;
}

void mig_blk_out_put_setup(GByteArray *out)
{
    g_autoptr(json_t) disks = json_array();
    g_autoptr(json_t) setup = NULL;
    g_autofree char *text = NULL;

    for (guint i = 0; i < mb->devs->len; i++) {
        MigBlkDev *d = g_ptr_array_index(mb->devs, i);

        json_array_append_new(disks, json_pack("{s:s,s:I}", "name", d->name,
                                               "size", (json_int_t)d->len));
    }
    setup = json_pack("{s:b,s:O}", "incremental", mb->incremental,
                      "disks", disks);
    text = json_dumps(setup, JSON_COMPACT);
    mig_stream_put_record(out, MIG_SECTION_BLOCK_SETUP, 0, text,
                          strlen(text));
}

/*
 * Operations start while outgoing.c has room and fewer than
 * MB_MAX_OPS are busy, the disks taking turns: each engine's kick may
 * start one, through mb_admit.
 */
void mig_blk_out_kick(void)
{
    guint idle = 0;             /* disks in a row that started nothing */

    while (mb && !mb->dead && idle < mb->devs->len
           && mb->busy < MB_MAX_OPS && mig_out_room()) {
        MigBlkDev *d = g_ptr_array_index(mb->devs,
                                         mb->next_dev % mb->devs->len);

        mb->next_dev = (mb->next_dev + 1) % mb->devs->len;
        mb->turn = d;
        block_copy_kick(d->bc);
        idle = mb->turn ? idle + 1 : 0;
        mb->turn = NULL;
    }
}

bool mig_blk_out_pass_done(void)
{
    if (!mb) {
        return true;
    }
    if (mb->busy) {
        return false;
    }
    for (guint i = 0; i < mb->devs->len; i++) {
        MigBlkDev *d = g_ptr_array_index(mb->devs, i);

        if (block_copy_dirty_bytes(d->bc)) {
            return false;
        }
    }
    mb->bulk = false;
    return true;
}

uint64_t mig_blk_out_pending(void)
{
    uint64_t n = 0;

    for (guint i = 0; mb && i < mb->devs->len; i++) {
        n += dbitmap_count(((MigBlkDev *)g_ptr_array_index(mb->devs, i))->bm);
    }
    return n;
}

void mig_blk_out_sync(void)
{
    for (guint i = 0; mb && i < mb->devs->len; i++) {
        MigBlkDev *d = g_ptr_array_index(mb->devs, i);
        HBitmap *hb = dbitmap_hbitmap(d->bm);
        int64_t o;

        /* the destination's disk has the size the setup section said */
        if (bdrv_length(d->bn) != d->len) {
            mig_out_fail_later(g_strdup_printf(
                "Block device %s changed its size during the migration",
                d->name));
            continue;
        }
        for (o = hbitmap_next_dirty(hb, 0); o >= 0;
             o = hbitmap_next_dirty(hb, o + MB_GRAN)) {
            block_copy_set_dirty(d->bc, o, MB_GRAN);
        }
        dbitmap_clear(d->bm, NULL);
    }
}

json_t *mig_blk_out_stats(void)
{
    uint64_t total = 0, left = 0;

    if (!mb) {
        return NULL;
    }
    for (guint i = 0; i < mb->devs->len; i++) {
        MigBlkDev *d = g_ptr_array_index(mb->devs, i);

        total += d->len;
        if (mb->bulk) {
            left += MIN(d->len, block_copy_remaining(d->bc));
        }
    }
    /* QEMU 7.2's: the bulk pass's progress, all the MigrationStats */
    return json_pack("{s:I,s:I,s:I,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:i,s:i,"
                     "s:i,s:i,s:i,s:i,s:i,s:i}",
                     "transferred", (json_int_t)(total - left),
                     "remaining", (json_int_t)left,
                     "total", (json_int_t)total,
                     "duplicate", 0, "skipped", 0, "normal", 0,
                     "normal-bytes", 0, "dirty-pages-rate", 0, "mbps", 0.0,
                     "dirty-sync-count", 0, "postcopy-requests", 0,
                     "page-size", 0, "multifd-bytes", 0,
                     "pages-per-second", 0, "precopy-bytes", 0,
                     "downtime-bytes", 0, "postcopy-bytes", 0,
                     "dirty-sync-missed-zero-copy", 0);
}

void mig_blk_out_cleanup(void)
{
    MigBlkOut *s = mb;

    if (!s) {
        return;
    }
    mb = NULL;
    s->dead = true;
    /* the bitmaps go now: no leftover for query-block to show */
    for (guint i = 0; i < s->devs->len; i++) {
        MigBlkDev *d = g_ptr_array_index(s->devs, i);

        dbitmap_release(d->bm);
        d->bm = NULL;
        /* jobs and resizes may go on while operations drain */
        bdrv_op_unblock(d->bn, mb_blocker);
        d->blocked = false;
        if (block_copy_busy(d->bc)) {
            s->refs++;          /* until its idle hook */
        } else {
            g_clear_pointer(&d->bc, block_copy_free);
        }
    }
    mb_unref(s);
}
