/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block migration, the source side: the disks of the guest's devices go
 * into the stream in passes, as its RAM does.
 *
 *   setup:  every writable disk attached to a device gets an anonymous
 *           dirty bitmap of 64 KiB granules (QEMU's are 1 MiB: a guest's
 *           4 KiB write would cost 1 MiB again), and its pass set (todo)
 *           is the whole disk: the bulk pass
 *   pass:   operations take dirty runs of todo of at most 1 MiB, at
 *           most MB_MAX_OPS
 *           at once and only while outgoing.c has room (its buffer and
 *           max-bandwidth's window); a chunk is read piece by piece and
 *           each piece becomes a BLOCK record (data, or a zero run with
 *           zero-blocks); with -i only what the top image holds is read
 *   sync:   once todo is empty and nothing is in flight, outgoing.c
 *           decides: another pass (what the bitmap recorded becomes
 *           todo) or the stop-and-copy (the guest stopped, the same,
 *           and END only once this last pass is sent)
 *
 * Why every piece holds a range lock on the disk from its status query
 * to the end of its read: the bitmap marks a guest write as it starts.
 * A write in flight when a sync clears its bits could land after an
 * unlocked read of the same range, and the range would never be sent
 * again; the same goes for the status query, which until a write to an
 * unallocated cluster lands says the cluster is the base's (-i) or
 * zeroes (zero-blocks), so that the piece is skipped or sent as a zero
 * run.  The lock is granted only once no overlapping write is in
 * flight, and writes that come meanwhile wait and mark the bitmap after
 * the read: whatever a piece missed is dirty for the next pass, and the
 * stop-and-copy's pass, with the guest stopped, misses nothing.  (The copy engine, block/jobs/copy.c, reads
 * without a lock and writes to a node: the stream is neither.)
 *
 * Each disk carries QEMU's migration blocker from setup to cleanup
 * (completion, failure or cancel): jobs, resizes and snapshots on it
 * are refused meanwhile ("Node 'drive0' is busy: block device is in use
 * by migration").
 *
 * Operations outlive a cancelled migration: each holds a reference on
 * the state, which cleanup marks dead; their reads finish, unlock and
 * are dropped, and the last one frees the state and its disks.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include <glib.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "migration/block.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"

#define MB_CHUNK (1u << 20)
#define MB_GRAN (64u << 10)
#define MB_MAX_OPS 8

/* QEMU 7.2's migration blocker on each disk it moves */
static const char mb_blocker[] = "block device is in use by migration";

typedef struct MigBlkDev {
    char *name;
    uint32_t id;                /* its BLOCK records' section id */
    BlockNode *bn;
    uint64_t len;
    DirtyBitmap *bm;            /* guest writes since the last sync */
    HBitmap *todo;              /* this pass */
    uint64_t in_flight;         /* bytes of operations on it */
    bool blocked;               /* mb_blocker is on bn */
} MigBlkDev;

typedef struct MigBlkOut {
    GPtrArray *devs;
    bool incremental;
    bool bulk;                  /* the first pass is not over yet */
    bool dead;                  /* cleaned up: operations are dropped */
    unsigned busy;
    unsigned refs;              /* the migration's and each operation's */
    unsigned next_dev;          /* where the next chunk is looked for */
} MigBlkOut;

typedef struct MigBlkOp {
    MigBlkOut *s;
    MigBlkDev *dev;
    uint64_t cur, end;          /* the chunk, from its first byte not done */
    uint64_t n;                 /* the current piece */
    uint64_t size;              /* the chunk's */
    uint64_t sent;              /* bytes its records took */
    uint8_t *buf;
    BdrvRangeLock *lock;
} MigBlkOp;

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
    hbitmap_free(d->todo);
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

/* The guest's disks: backends a device uses, with a writable medium. */
bool mig_blk_out_setup(bool incremental, Error **errp)
{
    GPtrArray *all = blk_all();
    MigBlkOut *s = g_new0(MigBlkOut, 1);

    g_assert(!mb);
    mig_info()->disk = true;
    s->devs = g_ptr_array_new_with_free_func(mb_dev_free);
    s->incremental = incremental;
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
        d->bn = bn;
        bdrv_op_block(bn, mb_blocker);
        d->blocked = true;
        d->name = g_strdup(*blk_name(blk) ? blk_name(blk)
                           : bdrv_node_name(bn));
        d->len = bdrv_length(bn);
        d->todo = hbitmap_new(MAX(d->len, 1), MB_GRAN);
        hbitmap_set(d->todo, 0, d->len);
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

static bool buf_zero(const uint8_t *p, uint64_t n)
{
    return !p[0] && !memcmp(p, p + 1, n - 1);
}

/* One BLOCK record: a piece's data, or (@buf NULL) a zero run. */
static void mb_put(MigBlkOp *op, const uint8_t *buf)
{
    g_autoptr(GByteArray) rec = g_byte_array_new();

    if (buf && mig_cap_enabled(MIG_CAP_ZERO_BLOCKS) && buf_zero(buf, op->n)) {
        buf = NULL;
    }
    mig_put_be64(rec, op->cur);
    mig_put_be32(rec, op->n);
    g_byte_array_append(rec, (const guint8 *)(buf ? "\0" : "\1"), 1);
    if (buf) {
        g_byte_array_append(rec, buf, op->n);
    }
    op->sent += mig_out_append(MIG_SECTION_BLOCK, op->dev->id, rec->data,
                               rec->len);
}

static void mb_op_step(MigBlkOp *op);

static void mb_read_failed(MigBlkOp *op, int ret)
{
    mig_out_fail_later(g_strdup_printf("Error reading block device %s: %s",
                                       op->dev->name, g_strerror(-ret)));
}

static void mb_op_end(MigBlkOp *op)
{
    MigBlkOut *s = op->s;

    if (!s->dead) {
        /* a cancelled piece (the stream failed) is not counted as sent */
        if (op->cur < op->end) {
            hbitmap_set(op->dev->todo, op->cur, op->end - op->cur);
        }
        op->dev->in_flight -= op->size;
        s->busy--;
        /* the window was charged the whole chunk: zero runs cost less */
        mig_out_reserve((int64_t)op->sent - (int64_t)op->size);
        mig_out_schedule();
    }
    ioq_buf_free(op->buf);
    g_free(op);
    mb_unref(s);
}

static void mb_unlock(MigBlkOp *op)
{
    bdrv_range_unlock(op->lock);
    op->lock = NULL;
}

static void mb_piece_done(MigBlkOp *op)
{
    op->cur += op->n;
    mb_op_step(op);
}

static void mb_read_cb(void *opaque, int ret)
{
    MigBlkOp *op = opaque;

    mb_unlock(op);
    if (op->s->dead) {
        mb_op_end(op);
        return;
    }
    if (ret < 0) {
        mb_read_failed(op, ret);
        mb_op_end(op);
        return;
    }
    mb_put(op, op->buf);
    mb_piece_done(op);
}

static void mb_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    MigBlkOp *op = opaque;

    if (op->s->dead || ret < 0) {
        if (ret < 0 && !op->s->dead) {
            mb_read_failed(op, ret);
        }
        mb_unlock(op);
        mb_op_end(op);
        return;
    }
    op->n = MIN(op->n, pnum);
    if (op->s->incremental ? !status
        : (status & BDRV_STATUS_ZERO)
          && mig_cap_enabled(MIG_CAP_ZERO_BLOCKS)) {
        mb_unlock(op);
        /* -i: the base both hosts share has it; -b: it reads zeroes */
        if (!op->s->incremental) {
            mb_put(op, NULL);
        }
        mb_piece_done(op);
        return;
    }
    bdrv_read_locked(op->dev->bn, op->cur, op->n, op->buf, mb_read_cb, op);
}

static void mb_locked_cb(void *opaque, BdrvRangeLock *lock)
{
    MigBlkOp *op = opaque;
    MigBlkDev *d = op->dev;

    op->lock = lock;
    if (op->s->incremental) {
        bdrv_is_allocated_above(d->bn, bdrv_backing(d->bn), op->cur, op->n,
                                mb_status_cb, op);
    } else {
        bdrv_block_status_above(d->bn, op->cur, op->n, mb_status_cb, op);
    }
}

static void mb_op_step(MigBlkOp *op)
{
    if (op->cur >= op->end || op->s->dead) {
        mb_op_end(op);
        return;
    }
    op->n = op->end - op->cur;
    bdrv_range_lock(op->dev->bn, op->cur, op->n, mb_locked_cb, op);
}

/*
 * The next chunk to copy, round robin over the disks: a dirty run of at
 * most MB_CHUNK; false when none is left.
 */
static bool mb_take_chunk(MigBlkDev **pd, uint64_t *off, uint64_t *end)
{
    for (guint k = 0; k < mb->devs->len; k++) {
        guint i = (mb->next_dev + k) % mb->devs->len;
        MigBlkDev *d = g_ptr_array_index(mb->devs, i);
        int64_t o = hbitmap_next_dirty(d->todo, 0);

        if (o >= 0 && (uint64_t)o < d->len) {
            int64_t c = hbitmap_next_clean(d->todo, o);
            uint64_t e = MIN((uint64_t)o + MB_CHUNK, d->len);

            if (c >= 0) {
                e = MIN(e, (uint64_t)c);
            }
            hbitmap_reset(d->todo, o, e - o);
            mb->next_dev = i + 1;
            *pd = d;
            *off = o;
            *end = e;
            return true;
        }
    }
    return false;
}

void mig_blk_out_kick(void)
{
    while (mb && !mb->dead && mb->busy < MB_MAX_OPS && mig_out_room()) {
        MigBlkOp *op;
        MigBlkDev *d;
        uint64_t off, end;

        if (!mb_take_chunk(&d, &off, &end)) {
            return;
        }
        op = g_new0(MigBlkOp, 1);
        op->s = mb;
        op->dev = d;
        op->cur = off;
        op->end = end;
        op->size = end - off;
        op->buf = ioq_buf_alloc(MB_CHUNK);
        d->in_flight += op->size;
        mb->busy++;
        mb->refs++;
        mig_out_reserve(op->size);
        mb_op_step(op);
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

        if (hbitmap_count(d->todo)) {
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
            hbitmap_set(d->todo, o, MB_GRAN);
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
            left += MIN(d->len, hbitmap_count(d->todo) + d->in_flight);
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
    }
    mb_unref(s);
}
