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
 * A background writeback (every second while dirty) bounds what a
 * crash can lose; a guest flush adds fdatasync between the stages.
 */
#include "config.h"

#include <errno.h>

#include "block/ioq.h"
#include "block/qcow2.h"
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
    if (f->ret < 0) {
        if (f->step == 6 && s->l1_gen != f->l1_gen) {
            s->l1_dirty = true;
        }
        flush_done(f);
        return;
    }
    switch (f->step++) {
    case 0:
        qcow2_cache_writeback(bn, &s->rb_cache, flush_step_cb, f);
        return;
    case 1:
        qcow2_write_reftable(bn, flush_step_cb, f);
        return;
    case 2:
        if (s->header_dirty) {
            size_t len;

            s->header_dirty = false;
            f->buf = qcow2_header_bytes(bn, &len);
            bdrv_write(file_of(bn), 0, s->cluster_size, f->buf, 0,
                       flush_step_cb, f);
            return;
        }
        ioq_defer_int(flush_step_cb, f, 0);
        return;
    case 3:
        if (f->sync_disk) {
            bdrv_debug_event(file_of(bn), BLKDBG_FLUSH_TO_DISK, NULL, NULL);
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
                be64_write(f->buf + 8 * i, s->l1[i]);
            }
            bdrv_write(file_of(bn), s->l1_offset, bytes, f->buf, 0,
                       flush_step_cb, f);
            return;
        }
        ioq_defer_int(flush_step_cb, f, 0);
        return;
    case 6:
        if (s->pending_frees->len) {
            qcow2_apply_frees(bn, flush_step_cb, f);
            return;
        }
        ioq_defer_int(flush_step_cb, f, 0);
        return;
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

    if (bn->read_only) {
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

    if (bn->read_only) {
        return 0;
    }
    if (s->flushing) {
        return -EBUSY;
    }
    if ((r = qcow2_cache_write_sync(bn, &s->rb_cache)) < 0
        || (r = qcow2_write_reftable_sync(bn)) < 0
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
        r = bdrv_pwrite_sync(f, s->l1_offset, bytes, buf);
        ioq_buf_free(buf);
        if (r < 0) {
            return r;
        }
        s->l1_dirty = false;
    }
    /* the decrements, now that nothing on disk refers to the clusters */
    while (s->pending_frees->len) {
        uint64_t off = g_array_index(s->pending_frees, uint64_t, 0);
        uint64_t bi = (off >> s->cluster_bits) / s->refblock_entries;

        g_array_remove_index_fast(s->pending_frees, 0);
        if (bi < s->reftable_size && s->reftable[bi]
            && qcow2_get_refcount_sync(bn, off) > 0
            && (r = qcow2_update_refcount_sync(bn, off, -1)) < 0) {
            return r;
        }
    }
    if ((r = qcow2_cache_write_sync(bn, &s->rb_cache)) < 0) {
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

    if (!s->flushing && (qcow2_cache_dirty_count(&s->l2_cache)
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
