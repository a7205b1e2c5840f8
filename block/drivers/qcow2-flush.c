/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 metadata writeback: the flush that puts cached tables on disk.
 *
 * Metadata is written back in an order that keeps the image consistent
 * after a crash at any point:
 *
 *   refcount blocks (increments) -> refcount table -> header
 *     -> L2 tables -> L1 table -> refcount blocks (decrements)
 *
 * Each stage starts when the previous one completed.  Requests go on
 * meanwhile, so each stage writes only what the stages before it made
 * safe:
 *
 * - the decrements applied are those queued before the flush began:
 *   the L2 and L1 changes that queued them are older than the L2 and
 *   L1 writes of this flush;
 * - an L2 entry pointing to clusters allocated after the refcount
 *   blocks were written is written with its old value (held entries,
 *   qcow2-cache.c), and a new L2 table waits for its own refcount;
 * - the L1 table points to a new L2 table only once the table is on
 *   disk, the refcount table to a new refcount block likewise;
 * - the header points to a moved refcount table only when the move is
 *   older than the flush (the new table and its refcounts are written).
 *
 * What is held back stays dirty for the next flush.  Clusters the
 * applied decrements free are discarded on the file before anyone may
 * reuse them (qcow2-discard.c).  A background
 * writeback (every second while dirty) bounds what a crash can lose; a
 * guest flush adds fdatasync between the stages.  One flush runs at a
 * time: flushes asked for meanwhile run once it is done, since what it
 * covers may predate their writes.
 */
#include "config.h"

#include <errno.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"
#include "util/log.h"

#define WRITEBACK_MS 1000

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

typedef struct {
    BlockNode *bn;
    bool sync_disk;
    int step;
    int ret;
    uint8_t *buf;
    uint64_t l1_gen;
    GArray *frees;          /* queued before the flush began */
    uint64_t rb_gen;        /* allocations before the flush began */
    uint64_t reftable_offset;
} Flush;

static void flush_run(BlockNode *bn, bool sync_disk);

static void flush_step_cb(void *opaque, int ret);

static void flush_step_io_cb(void *opaque, ssize_t ret)
{
    flush_step_cb(opaque, (int)ret);
}

static void flush_done(Flush *f)
{
    BlockNode *bn = f->bn;
    Qcow2State *s = state(bn);
    GArray *w = s->flush_waiters;
    int ret = f->ret;

    s->flushing = false;
    s->flush_waiters = NULL;
    g_free(f);
    /* flushes asked for while this one ran start now */
    if (s->next_flush) {
        s->flush_waiters = s->next_flush;
        s->next_flush = NULL;
        flush_run(bn, true);
    }
    /* last: a waiter may be the close that frees the node */
    for (guint i = 0; w && i < w->len; i++) {
        Qcow2Waiter *q = &g_array_index(w, Qcow2Waiter, i);

        q->cb(q->opaque, ret);
    }
    if (w) {
        g_array_free(w, TRUE);
    }
}

/*
 * The stages, each started when the previous one completed:
 *   0 refcount blocks  1 refcount table  2 header  3 (fdatasync)
 *   4 L2 tables  5 L1 table  6 queued decrements  7 refcount blocks
 */
static void flush_step_cb(void *opaque, int ret)
{
    Flush *f = opaque;
    BlockNode *bn = f->bn;
    Qcow2State *s = state(bn);

    if (f->buf) {
        ioq_buf_free(f->buf);
        f->buf = NULL;
    }
    if (ret < 0 && f->ret == 0) {
        f->ret = ret;
    }
    if (f->ret < 0 || s->dead) {
        /* a failed header or L1 table write is still to be done */
        if (f->step == 3) {
            s->header_dirty = true;
        }
        if (f->step == 6) {
            s->l1_dirty = true;
        }
        if (f->frees) {
            g_array_append_vals(s->pending_frees, f->frees->data,
                                f->frees->len);
            g_array_free(f->frees, TRUE);
        }
        flush_done(f);
        return;
    }
    switch (f->step++) {
    case 0:
        f->frees = s->pending_frees;
        s->pending_frees = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        f->rb_gen = s->alloc_gen;
        f->reftable_offset = s->reftable_offset;
        qcow2_cache_writeback(bn, &s->rb_cache, flush_step_cb, f);
        return;
    case 1:
        s->rb_durable_gen = MAX(s->rb_durable_gen, f->rb_gen);
        qcow2_write_reftable(bn, flush_step_cb, f);
        return;
    case 2:
        /* a table that moved since the flush began waits for the next */
        if (s->header_dirty && s->reftable_offset == f->reftable_offset) {
            size_t len;

            s->header_dirty = false;
            qcow2_header_write_events(bn);
            f->buf = qcow2_header_bytes(bn, &len);
            bdrv_write(file_of(bn), 0, s->cluster_size, f->buf, 0,
                       flush_step_cb, f);
            return;
        }
        ioq_defer_int(flush_step_cb, f, 0);
        return;
    case 3:
        if (f->sync_disk) {
            bdrv_flush(file_of(bn), flush_step_cb, f);
            return;
        }
        ioq_defer_int(flush_step_cb, f, 0);
        return;
    case 4:
        qcow2_cache_writeback(bn, &s->l2_cache, flush_step_cb, f);
        return;
    case 5:
        if (s->l1_dirty) {
            uint64_t bytes = align_up((uint64_t)s->l1_size * 8, 512);

            s->l1_dirty = false;
            f->l1_gen = s->l1_gen;
            f->buf = ioq_buf_alloc0(bytes);
            for (uint32_t i = 0; i < s->l1_size; i++) {
                Qcow2Table *t = qcow2_cache_lookup(
                    &s->l2_cache, s->l1[i] & L1E_OFFSET_MASK);

                /* a table not on disk yet: the entry waits (was 0) */
                if (t && !t->on_disk) {
                    s->l1_dirty = true;
                    continue;
                }
                be64_write(f->buf + 8 * i, s->l1[i]);
            }
            ret = qcow2_overlap_check(bn, QCOW2_OL_ACTIVE_L1, s->l1_offset,
                                      bytes);
            if (ret < 0) {
                ioq_defer_int(flush_step_cb, f, ret);
                return;
            }
            bdrv_write(file_of(bn), s->l1_offset, bytes, f->buf, 0,
                       flush_step_cb, f);
            return;
        }
        ioq_defer_int(flush_step_cb, f, 0);
        return;
    case 6: {
        GArray *frees = f->frees;

        f->frees = NULL;
        if (frees->len) {
            qcow2_apply_frees(bn, frees, flush_step_cb, f);
            return;
        }
        g_array_free(frees, TRUE);
        ioq_defer_int(flush_step_cb, f, 0);
        return;
    }
    case 7:
        qcow2_cache_writeback(bn, &s->rb_cache, flush_step_cb, f);
        return;
    default:
        flush_done(f);
        return;
    }
}

static void flush_run(BlockNode *bn, bool sync_disk)
{
    Qcow2State *s = state(bn);
    Flush *f = g_new0(Flush, 1);

    s->flushing = true;
    f->bn = bn;
    f->sync_disk = sync_disk;
    ioq_defer(flush_step_io_cb, f, 0);
}

void qcow2_flush_metadata(BlockNode *bn, bool sync_disk,
                          void (*cb)(void *opaque, int ret), void *opaque)
{
    Qcow2State *s = state(bn);
    Qcow2Waiter w = { cb, opaque };

    if (bn->read_only || s->dead) {
        ioq_defer_int(cb, opaque, 0);
        return;
    }
    if (s->flushing) {
        /* what this flush covers may predate the caller's writes */
        if (!s->next_flush) {
            s->next_flush = g_array_new(FALSE, FALSE, sizeof(Qcow2Waiter));
        }
        g_array_append_val(s->next_flush, w);
        return;
    }
    s->flush_waiters = g_array_new(FALSE, FALSE, sizeof(Qcow2Waiter));
    g_array_append_val(s->flush_waiters, w);
    flush_run(bn, sync_disk);
}

int qcow2_flush_metadata_sync(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    BlockNode *f = file_of(bn);
    int r;

    if (bn->read_only || s->dead) {
        return 0;
    }
    if (s->flushing) {
        return -EBUSY;
    }
    if ((r = qcow2_cache_write_sync(bn, &s->rb_cache)) < 0) {
        return r;
    }
    s->rb_durable_gen = s->alloc_gen;
    if ((r = qcow2_write_reftable_sync(bn)) < 0
        || (s->header_dirty && (r = qcow2_write_header_sync(bn)) < 0)
        || (r = bdrv_flush_sync(f)) < 0
        || (r = qcow2_cache_write_sync(bn, &s->l2_cache)) < 0) {
        return r;
    }
    if (s->l1_dirty) {
        uint64_t bytes = align_up((uint64_t)s->l1_size * 8, 512);
        uint8_t *buf = ioq_buf_alloc0(bytes);

        for (uint32_t i = 0; i < s->l1_size; i++) {
            be64_write(buf + 8 * i, s->l1[i]);
        }
        r = qcow2_overlap_check(bn, QCOW2_OL_ACTIVE_L1, s->l1_offset, bytes);
        if (r == 0) {
            r = bdrv_pwrite_sync(f, s->l1_offset, bytes, buf);
        }
        ioq_buf_free(buf);
        if (r < 0) {
            return r;
        }
        s->l1_dirty = false;
    }
    /* the decrements, now that nothing on disk refers to the clusters */
    if ((r = qcow2_apply_frees_sync(bn)) < 0
        || (r = qcow2_cache_write_sync(bn, &s->rb_cache)) < 0) {
        return r;
    }
    return bdrv_flush_sync(f);
}

static void writeback_done_cb(void *opaque, int ret)
{
    if (ret < 0) {
        qmpd_log(LOG_WARNING, "qcow2 metadata writeback failed: %s",
                 g_strerror(-ret));
    }
}

static gboolean writeback_timer_cb(gpointer opaque)
{
    BlockNode *bn = opaque;
    Qcow2State *s = state(bn);

    if (!s->flushing && !s->dead
        && (qcow2_cache_dirty_count(&s->l2_cache)
            || qcow2_cache_dirty_count(&s->rb_cache)
            || s->l1_dirty || s->pending_frees->len)) {
        Qcow2Waiter w = { writeback_done_cb, NULL };

        s->flush_waiters = g_array_new(FALSE, FALSE, sizeof(Qcow2Waiter));
        g_array_append_val(s->flush_waiters, w);
        flush_run(bn, false);
    }
    return G_SOURCE_CONTINUE;
}

void qcow2_writeback_start(BlockNode *bn)
{
    state(bn)->writeback_timer = g_timeout_add(WRITEBACK_MS,
                                               writeback_timer_cb, bn);
}
