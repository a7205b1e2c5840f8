/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2: what happens to a cluster once its refcount reaches 0.
 *
 * Every free carries its reason (Qcow2DiscardType, as QEMU's).  When
 * the node passes that reason's discards down (pass-discard-request,
 * -snapshot, -other; "always" for bitmap clusters, "never" for clusters
 * replaced by copy on write), the cluster's host range is discarded on
 * the file, merged with its neighbours, and the file node's own discard
 * option decides whether that punches a hole.  Only then may the
 * cluster be allocated again, or a late discard could punch new data.
 *
 *   refcount 1 -> 0 (qcow2_cluster_freed)
 *        |--- type passes discards ---> @discards --> bdrv_discard(file)
 *        v                                                  |
 *   @quarantine  <------------------------------------------'
 *        |  every data I/O begun before the free has completed
 *        v
 *   @freemap (allocatable; the free-cluster index moves back to it)
 *
 * The quarantine covers a read or write that looked up its cluster in
 * an L2 table before a discard or zero write changed the entry: without
 * it, the cluster could be allocated to another guest offset and the
 * late write would land in the new owner's data.  Data I/O gets an
 * increasing sequence number; a freed range waits until no I/O with a
 * number at or below the one current at its free is in flight.
 *
 * Refcounts reach 0 only when the queued frees are applied, after the
 * L2 and L1 tables that stopped using the clusters are on disk (see
 * qcow2-refcount.c), so a discard never hits data a table on disk
 * still points to.  QEMU discards at the free itself; here it happens
 * at the next metadata writeback (a guest flush, or within a second).
 */
#include "config.h"

#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

uint64_t qcow2_zero_entry(uint32_t version, bool backing, bool discard,
                          bool may_unmap, uint64_t old, bool *release)
{
    bool compressed = old & QCOW2_OFLAG_COMPRESSED;
    bool allocated = compressed || (old & L2E_OFFSET_MASK);
    bool unmap;

    *release = false;
    if (discard) {
        /* reads as zeroes afterwards where something else would show */
        if (!backing && !allocated) {
            return old;
        }
        *release = allocated;
        return version >= 3 ? QCOW2_OFLAG_ZERO : 0;
    }
    /* a compressed cluster cannot keep its allocation as zeroes */
    unmap = compressed || (may_unmap && allocated);
    *release = unmap;
    return (unmap ? 0 : old) | QCOW2_OFLAG_ZERO;
}

void qcow2_discard_init(BlockNode *bn)
{
    Qcow2State *s = state(bn);

    s->discards = g_array_new(FALSE, FALSE, sizeof(Qcow2FreeRange));
    s->quarantine = g_array_new(FALSE, FALSE, sizeof(Qcow2FreeRange));
    s->io_in_flight = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    qcow2_freemap_init(&s->freemap);
}

void qcow2_discard_cleanup(BlockNode *bn)
{
    Qcow2State *s = state(bn);

    if (s->discards) {
        g_array_free(s->discards, TRUE);
        g_array_free(s->quarantine, TRUE);
        g_array_free(s->io_in_flight, TRUE);
    }
    s->discards = s->quarantine = s->io_in_flight = NULL;
    qcow2_freemap_destroy(&s->freemap);
}

static uint64_t oldest_in_flight(Qcow2State *s)
{
    uint64_t min = UINT64_MAX;

    for (guint i = 0; i < s->io_in_flight->len; i++) {
        min = MIN(min, g_array_index(s->io_in_flight, uint64_t, i));
    }
    return min;
}

static void release_quarantine(Qcow2State *s)
{
    uint64_t oldest;
    guint i = 0;

    if (!s->quarantine->len) {
        return;
    }
    oldest = oldest_in_flight(s);
    while (i < s->quarantine->len) {
        Qcow2FreeRange *q = &g_array_index(s->quarantine, Qcow2FreeRange, i);
        uint64_t c = q->off >> s->cluster_bits;

        if (q->seq >= oldest) {
            i++;
            continue;
        }
        qcow2_freemap_mark(&s->freemap, c, q->len >> s->cluster_bits, true);
        s->free_index = MIN(s->free_index, c);
        g_array_remove_index_fast(s->quarantine, i);
    }
}

static void hold(Qcow2State *s, uint64_t off, uint64_t len)
{
    Qcow2FreeRange q = { off, len, s->io_seq };

    g_array_append_val(s->quarantine, q);
    release_quarantine(s);
}

uint64_t qcow2_io_begin(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    uint64_t token = ++s->io_seq;

    g_array_append_val(s->io_in_flight, token);
    return token;
}

void qcow2_io_end(BlockNode *bn, uint64_t token)
{
    Qcow2State *s = state(bn);

    for (guint i = 0; i < s->io_in_flight->len; i++) {
        if (g_array_index(s->io_in_flight, uint64_t, i) == token) {
            g_array_remove_index_fast(s->io_in_flight, i);
            break;
        }
    }
    release_quarantine(s);
}

void qcow2_cluster_freed(BlockNode *bn, uint64_t off, Qcow2DiscardType type)
{
    Qcow2State *s = state(bn);
    Qcow2FreeRange *last;

    /* a freed table must not be found in the cache at its old offset */
    qcow2_cache_drop(&s->l2_cache, off);
    if (!s->opts.pass_discard[type]) {
        hold(s, off, s->cluster_size);
        return;
    }
    last = s->discards->len
        ? &g_array_index(s->discards, Qcow2FreeRange, s->discards->len - 1)
        : NULL;
    if (last && last->off + last->len == off) {
        last->len += s->cluster_size;
    } else {
        Qcow2FreeRange d = { off, s->cluster_size, 0 };

        g_array_append_val(s->discards, d);
    }
}

typedef struct {
    BlockNode *bn;
    GArray *ranges;
    unsigned pending;
    void (*cb)(void *opaque, int ret);
    void *opaque;
} DiscardBatch;

static void batch_done(DiscardBatch *b)
{
    Qcow2State *s = state(b->bn);

    for (guint i = 0; i < b->ranges->len; i++) {
        Qcow2FreeRange *d = &g_array_index(b->ranges, Qcow2FreeRange, i);

        hold(s, d->off, d->len);
    }
    g_array_free(b->ranges, TRUE);
    b->cb(b->opaque, 0);
    g_free(b);
}

static void range_discarded_cb(void *opaque, int ret)
{
    DiscardBatch *b = opaque;

    /* a discard is a hint: the cluster is free whatever it returned */
    if (--b->pending == 0) {
        batch_done(b);
    }
}

void qcow2_discards_issue(BlockNode *bn, void (*cb)(void *opaque, int ret),
                          void *opaque)
{
    Qcow2State *s = state(bn);
    DiscardBatch *b = g_new0(DiscardBatch, 1);

    b->bn = bn;
    b->cb = cb;
    b->opaque = opaque;
    b->ranges = s->discards;
    s->discards = g_array_new(FALSE, FALSE, sizeof(Qcow2FreeRange));
    b->pending = 1;
    for (guint i = 0; i < b->ranges->len; i++) {
        Qcow2FreeRange *d = &g_array_index(b->ranges, Qcow2FreeRange, i);

        b->pending++;
        bdrv_discard(bn->file->child, d->off, d->len, range_discarded_cb, b);
    }
    /* answer from the main loop even when there was nothing to do */
    ioq_defer_int(range_discarded_cb, b, 0);
}

void qcow2_discards_issue_sync(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    GArray *ranges = s->discards;

    s->discards = g_array_new(FALSE, FALSE, sizeof(Qcow2FreeRange));
    for (guint i = 0; i < ranges->len; i++) {
        Qcow2FreeRange *d = &g_array_index(ranges, Qcow2FreeRange, i);

        bdrv_discard_sync(bn->file->child, d->off, d->len);
        hold(s, d->off, d->len);
    }
    g_array_free(ranges, TRUE);
}
