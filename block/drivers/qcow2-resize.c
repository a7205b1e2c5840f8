/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 resize (block_resize): growing moves the L1 table to a bigger
 * copy when the new size needs more L2 tables; shrinking gives back
 * everything past the new end, as QEMU 7.2 does.
 *
 * A shrink runs on a drained, flushed node, synchronously, in QEMU's
 * order, each step's metadata on disk before the next begins:
 *
 *   1. every L2 entry past the new end (from the cluster holding it on)
 *      becomes 0 (unallocated, whatever the backing file holds), and
 *      its clusters lose a reference: L2 tables written, then the
 *      refcount blocks (a range without an L2 table gets an empty one,
 *      as QEMU's discard does, which the next step may free again);
 *   2. the L1 entries past the L2 tables the new size needs become 0
 *      (the table keeps its size on disk and in the header), then
 *      those L2 tables lose their reference;
 *   3. refcount blocks that count nothing (but maybe themselves) leave
 *      the refcount table; the table is written first, then a block
 *      counted by another block loses its reference there;
 *   4. the file is cut after the last cluster in use (a failure there
 *      only warns, as in QEMU: the image is smaller all the same);
 *   5. the header gets the new size.
 *
 * Each step removes references only after what referred to them is on
 * disk, so a crash between any two writes leaves an image whose
 * clusters are all counted (some maybe leaked), and one that shows the
 * old size until step 5 with the cut range reading as unallocated.
 * The allocator's view (end of the used area, free map, the pinned
 * refcount block at the end) is rebuilt from the refcounts afterwards,
 * as at open.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"
#include "util/log.h"

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

/* The L1 entries an image of @size bytes needs (QEMU's size_to_l1). */
static uint64_t l1_entries(const Qcow2State *s, uint64_t size)
{
    uint32_t shift = s->cluster_bits + s->l2_bits;

    return (size + (1ull << shift) - 1) >> shift;
}

static bool grow_l1(BlockNode *bn, uint64_t needed, Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t bytes = align_up(needed * 8, s->cluster_size);
    uint64_t n = bytes / s->cluster_size;
    uint64_t old_off = s->l1_offset;
    uint64_t old_n = size_to_clusters(s, (uint64_t)s->l1_size * 8);
    uint64_t new_off;
    uint8_t *buf;
    int r;

    bdrv_debug_event(file_of(bn), BLKDBG_L1_GROW_ALLOC_TABLE, NULL, NULL);
    new_off = qcow2_alloc_clusters(bn, n, &r);
    if (!new_off) {
        error_setg_errno(errp, -r, "Failed to grow the L1 table");
        return false;
    }
    bdrv_debug_event(file_of(bn), BLKDBG_L1_GROW_WRITE_TABLE, NULL, NULL);
    buf = ioq_buf_alloc0(bytes);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        be64_write(buf + 8 * i, s->l1[i]);
    }
    /* the table's sectors only, as QEMU: the rest stays unwritten */
    r = qcow2_overlap_check(bn, 0, new_off, bytes);
    if (r == 0) {
        r = bdrv_pwrite_sync(file_of(bn), new_off, needed * 8, buf);
    }
    ioq_buf_free(buf);
    if (r == 0) {
        r = qcow2_cache_write_sync(bn, &s->rb_cache);
    }
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to grow the L1 table");
        return false;
    }
    s->l1 = g_renew(uint64_t, s->l1, needed);
    memset(s->l1 + s->l1_size, 0, (needed - s->l1_size) * 8);
    s->l1_size = needed;
    s->l1_offset = new_off;
    if (old_off) {
        qcow2_free_clusters(bn, old_off, old_n, QCOW2_DISCARD_OTHER);
    }
    return true;
}

/*
 * Set the L2 entries of the guest clusters [@start, @end): with @zero
 * to read as zeroes (QEMU's zeroize without unmap, for a grown image
 * whose backing file is longer), else to 0 (QEMU's full discard of type
 * "always", shrink step 1).  As QEMU, a range without an L2 table gets
 * an (empty) one first.
 */
static int set_clusters(BlockNode *bn, uint64_t start, uint64_t end,
                        bool zero)
{
    Qcow2State *s = state(bn);
    uint64_t span = (uint64_t)s->cluster_size << s->l2_bits;

    for (uint64_t pos = start; pos < end;) {
        uint64_t l1i = pos / span;
        uint64_t stop = MIN(end, (l1i + 1) * span);
        uint64_t l2off = l1i < s->l1_size ? s->l1[l1i] & L1E_OFFSET_MASK : 0;
        Qcow2Table *t;
        bool changed = false;
        int r;

        if (l1i >= s->l1_size) {
            pos = stop;
            continue;
        }
        if (l2off % s->cluster_size || l2off >= s->next_free) {
            return -EIO;
        }
        t = l2off ? qcow2_table_get_sync(bn, &s->l2_cache, l2off, &r)
                  : qcow2_l2_alloc(bn, l1i, &r);
        if (!t) {
            return r;
        }
        for (; pos < stop; pos += s->cluster_size) {
            uint32_t i = (pos >> s->cluster_bits) & (s->l2_size - 1);
            uint64_t old = qcow2_l2_get(t, i);
            bool release = old != 0;
            uint64_t e = zero ? qcow2_zero_entry(s->version, true, false,
                                                 false, old, &release)
                              : 0;

            if (e == old) {
                continue;
            }
            if (release) {
                qcow2_release_entry(bn, old, zero ? QCOW2_DISCARD_REQUEST
                                                  : QCOW2_DISCARD_ALWAYS);
            }
            qcow2_l2_set(t, i, e);
            changed = true;
        }
        if (changed) {
            qcow2_table_dirty(t);
        }
        qcow2_table_unpin(&s->l2_cache, t);
    }
    /* L2 tables first, then the decrements */
    return qcow2_flush_metadata_sync(bn);
}

/* Step 2: forget the L2 tables from L1 entry @keep on. */
static int shrink_l1(BlockNode *bn, uint64_t keep)
{
    Qcow2State *s = state(bn);
    g_autofree uint64_t *gone = NULL;
    uint64_t n = 0;
    int r;

    for (uint64_t i = keep; i < s->l1_size; i++) {
        n += s->l1[i] != 0;
    }
    if (!n) {
        return 0;
    }
    gone = g_new(uint64_t, n);
    n = 0;
    bdrv_debug_event(file_of(bn), BLKDBG_L1_SHRINK_WRITE_TABLE, NULL, NULL);
    for (uint64_t i = keep; i < s->l1_size; i++) {
        if (s->l1[i]) {
            gone[n++] = s->l1[i] & L1E_OFFSET_MASK;
        }
        s->l1[i] = 0;
    }
    s->l1_dirty = true;
    s->l1_gen++;
    /* the L1 table on disk first, then the decrements */
    r = qcow2_flush_metadata_sync(bn);
    if (r < 0) {
        return r;
    }
    bdrv_debug_event(file_of(bn), BLKDBG_L1_SHRINK_FREE_L2_CLUSTERS, NULL,
                     NULL);
    for (uint64_t i = 0; i < n; i++) {
        if (gone[i]) {
            qcow2_free_clusters(bn, gone[i], 1, QCOW2_DISCARD_ALWAYS);
        }
    }
    return qcow2_flush_metadata_sync(bn);
}

/* Does refcount block @bi (at @off) count anything but itself? */
static int refblock_unused(BlockNode *bn, uint64_t bi, uint64_t off,
                           bool *unused)
{
    Qcow2State *s = state(bn);
    uint64_t self = off >> s->cluster_bits;
    uint64_t first = bi * s->refblock_entries;
    Qcow2Table *t;
    int r;

    t = qcow2_table_get_sync(bn, &s->rb_cache, off, &r);
    if (!t) {
        return r;
    }
    *unused = true;
    for (uint64_t i = 0; i < s->refblock_entries && *unused; i++) {
        uint64_t bits = s->refcount_bits;
        uint64_t byte = i * bits / 8;
        bool zero;

        if (first + i == self) {
            continue;
        }
        /* refcounts of 8 bits and more fill whole bytes */
        if (bits >= 8) {
            zero = !memcmp(t->data + byte, "\0\0\0\0\0\0\0\0", bits / 8);
        } else {
            zero = !((t->data[byte] >> (i * bits % 8)) & ((1u << bits) - 1));
        }
        *unused = zero;
    }
    qcow2_table_unpin(&s->rb_cache, t);
    return 0;
}

/* Step 3: QEMU's qcow2_shrink_reftable(). */
static int shrink_reftable(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    g_autofree uint64_t *gone = g_new0(uint64_t, MAX(s->reftable_size, 1));
    bool any = false;
    int r;

    for (uint32_t bi = 0; bi < s->reftable_size; bi++) {
        bool unused = false;

        if (!s->reftable[bi]) {
            continue;
        }
        r = refblock_unused(bn, bi, s->reftable[bi], &unused);
        if (r < 0) {
            return r;
        }
        if (unused) {
            gone[bi] = s->reftable[bi];
            any = true;
        }
    }
    if (!any) {
        return 0;
    }
    /* the pinned block at the end may be one of them: pinned again later */
    if (s->tail_rb) {
        qcow2_table_unpin(&s->rb_cache, s->tail_rb);
        s->tail_rb = NULL;
    }
    for (uint32_t bi = 0; bi < s->reftable_size; bi++) {
        if (gone[bi]) {
            s->reftable[bi] = 0;
        }
    }
    s->reftable_used = 0;
    for (uint32_t bi = 0; bi < s->reftable_size; bi++) {
        if (s->reftable[bi]) {
            s->reftable_used = bi + 1;
        }
    }
    s->reftable_dirty = true;
    r = qcow2_write_reftable_sync(bn);
    if (r == 0) {
        r = bdrv_flush_sync(file_of(bn));
    }
    if (r < 0) {
        return r;
    }
    for (uint32_t bi = 0; bi < s->reftable_size; bi++) {
        if (gone[bi]) {
            /* counted by itself it is gone already; else by another one */
            qcow2_cache_drop(&s->rb_cache, gone[bi]);
            qcow2_free_clusters(bn, gone[bi], 1, QCOW2_DISCARD_ALWAYS);
        }
    }
    return qcow2_flush_metadata_sync(bn);
}

/*
 * Steps 4 and after: cut the file after the last cluster in use and
 * rebuild the allocator's view from the refcounts.
 */
static int cut_tail(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    BlockNode *f = file_of(bn);
    uint64_t file_end = align_up(bdrv_length(f), s->cluster_size);
    uint64_t last = file_end >> s->cluster_bits;
    int r;

    while (last > 0) {
        int64_t rc = qcow2_get_refcount_sync(bn, (last - 1) << s->cluster_bits);

        if (rc < 0) {
            return rc;
        }
        if (rc > 0) {
            break;
        }
        last--;
    }
    if (last == 0) {
        qcow2_signal_corruption(bn, true, -1, -1, "There are no references "
                                "in the refcount table.");
        return -EIO;
    }
    if (last << s->cluster_bits < bdrv_length(f)) {
        Error *err = NULL;

        if (!f->drv->truncate) {
            error_setg(&err, "Image format driver does not support resize");
        }
        if (err || !f->drv->truncate(f, last << s->cluster_bits, &err)) {
            qmpd_log(LOG_WARNING, "Failed to truncate the tail of the image: "
                     "%s", error_get_pretty(err));
            error_free(err);
        }
    }
    if (s->tail_rb) {
        qcow2_table_unpin(&s->rb_cache, s->tail_rb);
        s->tail_rb = NULL;
    }
    s->next_free = align_up(bdrv_length(f), s->cluster_size);
    r = qcow2_freemap_load(bn);
    if (r == 0) {
        r = qcow2_pin_tail_refblock(bn);
    }
    return r;
}

static bool shrink(BlockNode *bn, uint64_t size, Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t start = align_up(size, s->cluster_size);
    int r;

    if (start < bn->total_size
        && (r = set_clusters(bn, start, bn->total_size, false)) < 0) {
        error_setg_errno(errp, -r, "Failed to discard cropped clusters");
        return false;
    }
    r = shrink_l1(bn, l1_entries(s, size));
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to reduce the number of L2 tables");
        return false;
    }
    r = shrink_reftable(bn);
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to discard unused refblocks");
        return false;
    }
    r = cut_tail(bn);
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to find the last cluster");
        return false;
    }
    return true;
}

bool qcow2_truncate(BlockNode *bn, uint64_t size, Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t needed = l1_entries(s, size);
    uint64_t old_size = bn->total_size;
    bool grow = needed > s->l1_size;
    int r;

    if (size % 512) {
        error_setg(errp, "The new size must be a multiple of 512");
        return false;
    }
    /* a v2 snapshot does not record its size: it could not keep its own */
    if (s->version < 3 && s->nb_snapshots) {
        error_setg(errp, "Can't resize a v2 image which has snapshots");
        return false;
    }
    if (!qcow2_bitmaps_truncate_check(bn, errp)) {
        return false;
    }
    if (size < old_size && !shrink(bn, size, errp)) {
        return false;
    }
    if (grow && !grow_l1(bn, needed, errp)) {
        return false;
    }
    /*
     * QEMU's generic truncate: a backing file longer than the image
     * would show through the new area, which must read as zeroes (the
     * caller writes the partial cluster at the old end, qcow2_zero_head)
     */
    if (size > old_size && bdrv_backing(bn)
        && bdrv_length(bdrv_backing(bn)) > old_size) {
        uint64_t start = align_up(old_size, s->cluster_size);

        r = s->version < 3 ? -ENOTSUP
            : start < size ? set_clusters(bn, start, size, true) : 0;
        if (r < 0) {
            error_setg_errno(errp, -r, "Failed to zero out new clusters");
            return false;
        }
    }
    bn->total_size = size;
    bdrv_debug_event(file_of(bn), BLKDBG_L1_GROW_ACTIVATE_TABLE, NULL, NULL);
    r = qcow2_write_header_sync(bn);
    if (r < 0) {
        /* the image keeps its size (a bigger L1 table does no harm) */
        bn->total_size = old_size;
        error_setg_errno(errp, -r, grow ? "Failed to grow the L1 table"
                                        : "Could not update qcow2 header");
        return false;
    }
    return true;
}
