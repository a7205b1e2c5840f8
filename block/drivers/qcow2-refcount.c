/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 refcounts and cluster allocation.
 *
 * Allocation is QEMU's first fit: the first run of free clusters at or
 * after the free-cluster index, where everything past @next_free (the
 * end of what is in use) is free.  Which clusters below @next_free are
 * free is kept in memory (qcow2-freemap.c; loaded at open from the
 * refcount blocks), so allocation never waits for a free-space search:
 * the refcount blocks it touches cover either reused clusters (read
 * once, when they were freed or at open) or the end of the file (new,
 * or loaded at open and pinned).  A new refcount block is placed at
 * @next_free; when that is inside the range it covers it describes
 * itself.  The refcount table grows by moving to a bigger copy at the
 * end; the old one is freed like any other cluster.
 *
 * Ordering on disk (see qcow2_flush_metadata): increments are written
 * before the L2/L1 entries that use the clusters; decrements (queued in
 * @pending_frees) after the entries that stopped using them.  A crash at
 * any point leaves at worst leaked clusters, never a referenced cluster
 * with refcount 0.  A cluster whose refcount reaches 0 goes back to the
 * allocator through qcow2-discard.c (discarded on the file first where
 * its free's type says so).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static uint64_t get_rc(const Qcow2State *s, const uint8_t *b, uint64_t i)
{
    switch (s->refcount_order) {
    case 0:
        return (b[i / 8] >> (i % 8)) & 1;
    case 1:
        return (b[i / 4] >> (2 * (i % 4))) & 3;
    case 2:
        return (b[i / 2] >> (4 * (i % 2))) & 15;
    case 3:
        return b[i];
    case 4:
        return GUINT16_FROM_BE(((const uint16_t *)b)[i]);
    case 5:
        return GUINT32_FROM_BE(((const uint32_t *)b)[i]);
    default:
        return GUINT64_FROM_BE(((const uint64_t *)b)[i]);
    }
}

static void set_rc16(uint8_t *b, uint64_t i, uint64_t v)
{
    ((uint16_t *)b)[i] = GUINT16_TO_BE((uint16_t)v);
}

bool qcow2_refcount_open(BlockNode *bn, Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t bytes = (uint64_t)s->reftable_clusters * s->cluster_size;
    uint8_t *buf;
    int r;

    if (bytes > QCOW2_MAX_REFTABLE_BYTES) {
        error_setg(errp, "Reference count table too large");
        return false;
    }
    if (s->reftable_offset % s->cluster_size) {
        error_setg(errp, "Reference count table offset invalid");
        return false;
    }
    s->reftable_size = bytes / 8;
    s->reftable = g_new0(uint64_t, MAX(s->reftable_size, 1));
    buf = ioq_buf_alloc(MAX(bytes, 1));
    bdrv_debug_event(bn->file->child, BLKDBG_REFTABLE_LOAD, NULL, NULL);
    r = bytes ? bdrv_pread_sync(bn->file->child, s->reftable_offset, bytes,
                                buf) : 0;
    if (r < 0) {
        ioq_buf_free(buf);
        error_setg_errno(errp, -r, "Could not initialize refcount handling");
        return false;
    }
    for (uint32_t i = 0; i < s->reftable_size; i++) {
        s->reftable[i] = be64_read(buf + 8 * i) & REFT_OFFSET_MASK;
        if (s->reftable[i]) {
            s->reftable_used = i + 1;
        }
    }
    ioq_buf_free(buf);
    s->next_free = align_up(bdrv_length(bn->file->child), s->cluster_size);
    s->pending_frees = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    return true;
}

int64_t qcow2_get_refcount_sync(BlockNode *bn, uint64_t offset)
{
    Qcow2State *s = state(bn);
    uint64_t cluster = offset >> s->cluster_bits;
    uint64_t bi = cluster / s->refblock_entries;
    Qcow2Table *t;
    int ret;
    int64_t v;

    if (bi >= s->reftable_size || !s->reftable[bi]) {
        return 0;
    }
    t = qcow2_table_get_sync(bn, &s->rb_cache, s->reftable[bi], &ret);
    if (!t) {
        return ret;
    }
    v = get_rc(s, t->data, cluster % s->refblock_entries);
    qcow2_table_unpin(&s->rb_cache, t);
    return v;
}

static int grow_reftable(BlockNode *bn, uint64_t need_index);

int qcow2_update_refcount_sync(BlockNode *bn, uint64_t offset, int delta)
{
    Qcow2State *s = state(bn);
    uint64_t cluster = offset >> s->cluster_bits;
    uint64_t bi = cluster / s->refblock_entries;
    Qcow2Table *t;
    uint64_t v;
    int ret;

    if (s->refcount_order != 4) {
        return -ENOTSUP;
    }
    if (bi >= s->reftable_size && (ret = grow_reftable(bn, bi)) < 0) {
        return ret;
    }
    if (!s->reftable[bi]) {
        /* a new refcount block at the end of the file */
        uint64_t rb = s->next_free;

        if (delta < 0) {
            return -EINVAL;
        }
        bdrv_debug_event(bn->file->child, BLKDBG_REFBLOCK_ALLOC, NULL, NULL);
        s->next_free += s->cluster_size;
        t = qcow2_table_new(bn, &s->rb_cache, rb);
        if (!t) {
            return -EIO;
        }
        s->reftable[bi] = rb;
        s->reftable_used = MAX(s->reftable_used, bi + 1);
        s->reftable_dirty = true;
        s->refblock_hooked = true;
        qcow2_table_unpin(&s->rb_cache, t);
        ret = qcow2_update_refcount_sync(bn, rb, 1);
        if (ret < 0) {
            return ret;
        }
    }
    t = qcow2_table_get_sync(bn, &s->rb_cache, s->reftable[bi], &ret);
    if (!t) {
        return ret;
    }
    v = get_rc(s, t->data, cluster % s->refblock_entries);
    if ((delta < 0 && v < (uint64_t)-delta) || v + delta > 0xffff) {
        qcow2_table_unpin(&s->rb_cache, t);
        return delta < 0 ? -EINVAL : -ERANGE;
    }
    set_rc16(t->data, cluster % s->refblock_entries, v + delta);
    qcow2_table_dirty(t);
    qcow2_table_unpin(&s->rb_cache, t);
    return 0;
}

/*
 * Move the refcount table to a bigger copy at the end of the file that
 * has room for block @need_index (and for the blocks describing the new
 * table itself).
 */
static int grow_reftable(BlockNode *bn, uint64_t need_index)
{
    Qcow2State *s = state(bn);
    uint64_t old_off = s->reftable_offset;
    uint32_t old_clusters = s->reftable_clusters;
    uint64_t entries = MAX(need_index + 1 + 8, (uint64_t)s->reftable_size * 2);
    uint64_t clusters = size_to_clusters(s, entries * 8);
    uint64_t new_off;
    uint64_t *t;
    int ret;

    if (clusters * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
        return -EFBIG;
    }
    bdrv_debug_event(bn->file->child, BLKDBG_REFTABLE_GROW, NULL, NULL);
    new_off = s->next_free;
    s->next_free += clusters * s->cluster_size;
    t = g_new0(uint64_t, clusters * s->cluster_size / 8);
    memcpy(t, s->reftable, (size_t)s->reftable_size * 8);
    g_free(s->reftable);
    s->reftable = t;
    s->reftable_size = clusters * s->cluster_size / 8;
    s->reftable_offset = new_off;
    s->reftable_clusters = clusters;
    s->reftable_dirty = true;
    s->header_dirty = true;
    s->reftable_moved = true;
    for (uint64_t i = 0; i < clusters; i++) {
        ret = qcow2_update_refcount_sync(bn, new_off + i * s->cluster_size, 1);
        if (ret < 0) {
            return ret;
        }
    }
    /* the old table is still what the header on disk points to */
    qcow2_free_clusters(bn, old_off, old_clusters, QCOW2_DISCARD_OTHER);
    return 0;
}

int qcow2_freemap_load(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    uint64_t end = s->next_free >> s->cluster_bits;
    uint8_t *buf = ioq_buf_alloc(s->cluster_size);
    int r = 0;

    qcow2_freemap_destroy(&s->freemap);
    qcow2_freemap_init(&s->freemap);
    s->free_index = 0;
    for (uint64_t bi = 0; bi * s->refblock_entries < end; bi++) {
        uint64_t first = bi * s->refblock_entries;
        uint64_t n = MIN(s->refblock_entries, end - first);
        Qcow2Table *t;

        if (bi >= s->reftable_size || !s->reftable[bi]) {
            /* no refcount block: nothing there is in use */
            qcow2_freemap_mark(&s->freemap, first, n, true);
            continue;
        }
        /* the cached copy may be newer than the file */
        t = qcow2_table_peek(&s->rb_cache, s->reftable[bi]);
        if (!t) {
            r = bdrv_pread_sync(bn->file->child, s->reftable[bi],
                                s->cluster_size, buf);
            if (r < 0) {
                break;
            }
        }
        for (uint64_t i = 0; i < n;) {
            uint64_t j = i;

            while (j < n && !get_rc(s, t ? t->data : buf, j)) {
                j++;
            }
            qcow2_freemap_mark(&s->freemap, first + i, j - i, true);
            i = j + 1;
        }
        if (t) {
            qcow2_table_unpin(&s->rb_cache, t);
        }
    }
    ioq_buf_free(buf);
    return r;
}

int qcow2_pin_tail_refblock(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    uint64_t bi = (s->next_free >> s->cluster_bits) / s->refblock_entries;
    Qcow2Table *t;
    int ret;

    if (bi >= s->reftable_size || !s->reftable[bi]) {
        return 0;               /* it will be created in memory */
    }
    if (s->tail_rb && s->tail_rb->offset == s->reftable[bi]) {
        return 0;
    }
    t = qcow2_table_get_sync(bn, &s->rb_cache, s->reftable[bi], &ret);
    if (!t) {
        return ret;
    }
    if (s->tail_rb) {
        qcow2_table_unpin(&s->rb_cache, s->tail_rb);
    }
    s->tail_rb = t;
    return 0;
}

/*
 * The refcount block covering cluster @c is being loaded asynchronously:
 * a synchronous refcount update cannot use it now.
 */
static bool refblock_busy(Qcow2State *s, uint64_t c)
{
    uint64_t bi = c / s->refblock_entries;

    return bi < s->reftable_size && s->reftable[bi]
        && qcow2_cache_loading(&s->rb_cache, s->reftable[bi]);
}

uint64_t qcow2_alloc_clusters(BlockNode *bn, uint64_t n, int *ret)
{
    Qcow2State *s = state(bn);
    uint64_t end = s->next_free >> s->cluster_bits;
    uint64_t from = s->free_index;
    uint64_t c, off;

    *ret = 0;
    if (s->refcount_order != 4) {
        *ret = -ENOTSUP;
        return 0;
    }
    for (;;) {
        uint64_t k;

        c = qcow2_freemap_find(&s->freemap, from, n, end);
        for (k = 0; k < n && c + k < end && !refblock_busy(s, c + k); k++) {
        }
        if (k == n || c + k >= end) {
            break;
        }
        from = c + k + 1;       /* QEMU would wait; this one goes on */
    }
    bdrv_debug_event(bn->file->child, BLKDBG_CLUSTER_ALLOC, NULL, NULL);
    s->alloc_gen++;
    off = c << s->cluster_bits;
    if (c < end) {
        qcow2_freemap_mark(&s->freemap, c, MIN(n, end - c), false);
    }
    if (from == s->free_index) {
        s->free_index = c + n;
    }
    s->next_free = MAX(s->next_free, off + n * s->cluster_size);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t o = off + i * s->cluster_size;

        /* a table freed earlier must not come back from the cache */
        qcow2_cache_drop(&s->l2_cache, o);
        *ret = qcow2_update_refcount_sync(bn, o, 1);
        if (*ret < 0) {
            return 0;
        }
    }
    *ret = qcow2_pin_tail_refblock(bn);
    return *ret < 0 ? 0 : off;
}

void qcow2_free_clusters(BlockNode *bn, uint64_t offset, uint64_t n,
                         Qcow2DiscardType type)
{
    Qcow2State *s = state(bn);

    for (uint64_t i = 0; i < n; i++) {
        uint64_t c = (offset + i * s->cluster_size) | type;

        g_array_append_val(s->pending_frees, c);
    }
}

/* Applying queued frees: load the blocks they need, then decrement. */
typedef struct {
    BlockNode *bn;
    GArray *frees;
    guint next;
    int ret;
    void (*cb)(void *opaque, int ret);
    void *opaque;
} ApplyFrees;

static void apply_next(ApplyFrees *a);

static void apply_discarded_cb(void *opaque, int ret)
{
    ApplyFrees *a = opaque;

    a->cb(a->opaque, a->ret);
    g_free(a);
}

static void apply_loaded_cb(void *opaque, int ret, Qcow2Table *t)
{
    ApplyFrees *a = opaque;
    Qcow2State *s = state(a->bn);

    if (ret < 0) {
        a->ret = ret;
        a->next++;
    } else {
        /* every queued free this block covers, in one go */
        for (guint i = a->next; i < a->frees->len; i++) {
            uint64_t e = g_array_index(a->frees, uint64_t, i);
            uint64_t c = e >> s->cluster_bits;
            uint64_t bi = c / s->refblock_entries;
            uint64_t v;

            /* 0: applied with an earlier block (never cluster 0) */
            if (!e || bi >= s->reftable_size || s->reftable[bi] != t->offset) {
                continue;
            }
            v = get_rc(s, t->data, c % s->refblock_entries);
            if (v > 0) {
                set_rc16(t->data, c % s->refblock_entries, v - 1);
                if (v == 1) {
                    qcow2_cluster_freed(a->bn, c << s->cluster_bits,
                                        e & QCOW2_FREE_TYPE_MASK);
                }
            }
            g_array_index(a->frees, uint64_t, i) = 0;
        }
        qcow2_table_dirty(t);
        qcow2_table_unpin(&s->rb_cache, t);
    }
    apply_next(a);
}

static void apply_next(ApplyFrees *a)
{
    Qcow2State *s = state(a->bn);

    while (a->next < a->frees->len) {
        uint64_t off = g_array_index(a->frees, uint64_t, a->next)
            & ~QCOW2_FREE_TYPE_MASK;
        uint64_t bi;

        if (!g_array_index(a->frees, uint64_t, a->next)) {
            a->next++;
            continue;
        }
        bi = (off >> s->cluster_bits) / s->refblock_entries;
        if (bi >= s->reftable_size || !s->reftable[bi]) {
            a->next++;          /* nothing counted it: nothing to undo */
            continue;
        }
        bdrv_debug_event(a->bn->file->child, BLKDBG_CLUSTER_FREE, NULL,
                         NULL);
        qcow2_table_get(a->bn, &s->rb_cache, s->reftable[bi],
                        apply_loaded_cb, a);
        return;
    }
    g_array_free(a->frees, TRUE);
    /* what reached 0 is discarded before anyone may reuse it */
    qcow2_discards_issue(a->bn, apply_discarded_cb, a);
}

int qcow2_apply_frees_sync(BlockNode *bn)
{
    Qcow2State *s = state(bn);

    while (s->pending_frees->len) {
        uint64_t e = g_array_index(s->pending_frees, uint64_t, 0);
        uint64_t off = e & ~QCOW2_FREE_TYPE_MASK;
        uint64_t bi = (off >> s->cluster_bits) / s->refblock_entries;
        int64_t v;
        int r;

        g_array_remove_index_fast(s->pending_frees, 0);
        if (bi >= s->reftable_size || !s->reftable[bi]) {
            continue;
        }
        v = qcow2_get_refcount_sync(bn, off);
        if (v < 0) {
            return v;
        }
        if (v > 0) {
            r = qcow2_update_refcount_sync(bn, off, -1);
            if (r < 0) {
                return r;
            }
            if (v == 1) {
                qcow2_cluster_freed(bn, off, e & QCOW2_FREE_TYPE_MASK);
            }
        }
    }
    qcow2_discards_issue_sync(bn);
    return 0;
}

void qcow2_apply_frees(BlockNode *bn, GArray *frees,
                       void (*cb)(void *opaque, int ret), void *opaque)
{
    ApplyFrees *a = g_new0(ApplyFrees, 1);

    a->bn = bn;
    a->cb = cb;
    a->opaque = opaque;
    a->frees = frees;
    apply_next(a);
}

typedef struct {
    BlockNode *bn;
    uint8_t *buf;
    uint64_t len;
    void (*cb)(void *opaque, int ret);
    void *opaque;
} RtWrite;

/*
 * The refcount table as it may go to disk: a block not written yet (new
 * since the refcount blocks were written) is left out, which dirties
 * the table again for the next flush.
 */
static uint8_t *reftable_bytes(Qcow2State *s, uint64_t len)
{
    uint8_t *buf = ioq_buf_alloc0(len);

    for (uint32_t i = 0; i < s->reftable_size; i++) {
        Qcow2Table *t = s->reftable[i]
            ? qcow2_cache_lookup(&s->rb_cache, s->reftable[i]) : NULL;

        if (t && !t->on_disk) {
            s->reftable_dirty = true;
            continue;
        }
        be64_write(buf + 8 * i, s->reftable[i]);
    }
    return buf;
}

static void reftable_written_cb(void *opaque, int ret)
{
    RtWrite *w = opaque;

    if (ret < 0) {
        state(w->bn)->reftable_dirty = true;
    }
    ioq_buf_free(w->buf);
    w->cb(w->opaque, ret);
    g_free(w);
}

static void reftable_done_cb(void *opaque, ssize_t ret)
{
    RtWrite *w = opaque;

    w->cb(w->opaque, 0);
    g_free(w);
}

/*
 * blkdebug's events for a refcount table write: a table moved to a new
 * place is written in full (QEMU's refblock_alloc_write_table); one that
 * only gained new blocks hooks them up (refblock_alloc_hookup).
 */
void qcow2_reftable_write_events(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    BlockNode *f = bn->file->child;

    if (s->reftable_moved) {
        bdrv_debug_event(f, BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE, NULL, NULL);
    } else if (s->refblock_hooked) {
        bdrv_debug_event(f, BLKDBG_REFBLOCK_ALLOC_HOOKUP, NULL, NULL);
    }
    s->refblock_hooked = false;
    bdrv_debug_event(f, BLKDBG_REFTABLE_UPDATE, NULL, NULL);
}

void qcow2_write_reftable(BlockNode *bn, void (*cb)(void *opaque, int ret),
                          void *opaque)
{
    Qcow2State *s = state(bn);
    RtWrite *w = g_new0(RtWrite, 1);
    int r;

    w->bn = bn;
    w->cb = cb;
    w->opaque = opaque;
    if (!s->reftable_dirty) {
        ioq_defer(reftable_done_cb, w, 0);
        return;
    }
    s->reftable_dirty = false;
    w->len = (uint64_t)s->reftable_clusters * s->cluster_size;
    w->buf = reftable_bytes(s, w->len);
    qcow2_reftable_write_events(bn);
    r = qcow2_overlap_check(bn, QCOW2_OL_REFCOUNT_TABLE, s->reftable_offset,
                            w->len);
    if (r < 0) {
        ioq_defer_int(reftable_written_cb, w, r);
        return;
    }
    bdrv_write(bn->file->child, s->reftable_offset, w->len, w->buf, 0,
               reftable_written_cb, w);
}

int qcow2_write_reftable_sync(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    uint64_t len = (uint64_t)s->reftable_clusters * s->cluster_size;
    uint8_t *buf;
    int ret;

    if (!s->reftable_dirty) {
        return 0;
    }
    s->reftable_dirty = false;
    buf = reftable_bytes(s, len);
    ret = qcow2_overlap_check(bn, QCOW2_OL_REFCOUNT_TABLE,
                              s->reftable_offset, len);
    if (ret == 0) {
        qcow2_reftable_write_events(bn);
        ret = bdrv_pwrite_sync(bn->file->child, s->reftable_offset, len, buf);
    }
    ioq_buf_free(buf);
    if (ret < 0) {
        s->reftable_dirty = true;
    }
    return ret;
}
