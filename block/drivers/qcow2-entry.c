/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 L2 entries: what an entry points to, where a compressed
 * cluster's bytes lie, which host clusters an entry gives up when it is
 * overwritten, and new L2 tables.  Shared by the data path (qcow2-io.c)
 * and the resize (qcow2-resize.c), which drop entries the same way.
 */
#include "config.h"

#include <errno.h>

#include "block/drivers/qcow2.h"

Qcow2ClusterKind qcow2_classify(const Qcow2State *s, uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED) {
        return QCOW2_KIND_COMPRESSED;
    }
    if (s->version >= 3 && (e & QCOW2_OFLAG_ZERO)) {
        return (e & L2E_OFFSET_MASK) ? QCOW2_KIND_ZERO_ALLOC
                                     : QCOW2_KIND_ZERO;
    }
    if (!(e & L2E_OFFSET_MASK)) {
        return QCOW2_KIND_UNALLOCATED;
    }
    return (e & QCOW2_OFLAG_COPIED) ? QCOW2_KIND_DATA : QCOW2_KIND_SHARED;
}

void qcow2_compressed_range(const Qcow2State *s, uint64_t e, uint64_t *off,
                            uint64_t *len)
{
    uint32_t shift = 62 - (s->cluster_bits - 8);
    uint64_t mask = (1ull << (s->cluster_bits - 8)) - 1;
    uint64_t nsect = ((e >> shift) & mask) + 1;

    *off = e & ((1ull << shift) - 1);
    *len = nsect * 512 - (*off & 511);
}

void qcow2_release_entry(BlockNode *bn, uint64_t e, Qcow2DiscardType type)
{
    Qcow2State *s = bn->opaque;

    switch (qcow2_classify(s, e)) {
    case QCOW2_KIND_DATA:
    case QCOW2_KIND_SHARED:
    case QCOW2_KIND_ZERO_ALLOC:
        qcow2_free_clusters(bn, e & L2E_OFFSET_MASK, 1, type);
        break;
    case QCOW2_KIND_COMPRESSED: {
        uint64_t off, len, first, last;

        qcow2_compressed_range(s, e, &off, &len);
        /* as QEMU counts them: whole sectors holding the data */
        first = (off & ~511ull) & ~((uint64_t)s->cluster_size - 1);
        last = ((off & ~511ull) + ((len + (off & 511) + 511) & ~511ull) - 1)
            & ~((uint64_t)s->cluster_size - 1);
        qcow2_free_clusters(bn, first, ((last - first) >> s->cluster_bits) + 1,
                            type);
        break;
    }
    default:
        break;
    }
}

Qcow2Table *qcow2_l2_alloc(BlockNode *bn, uint64_t l1i, int *ret)
{
    Qcow2State *s = bn->opaque;
    uint64_t off = qcow2_alloc_clusters(bn, 1, ret);
    Qcow2Table *t;

    if (!off) {
        return NULL;
    }
    bdrv_debug_event(bn->file->child, BLKDBG_L2_ALLOC_WRITE, NULL, NULL);
    t = qcow2_table_new(bn, &s->l2_cache, off);
    if (!t) {
        *ret = -EIO;
        return NULL;
    }
    t->own_gen = s->alloc_gen;
    bdrv_debug_event(bn->file->child, BLKDBG_L1_UPDATE, NULL, NULL);
    s->l1[l1i] = off | QCOW2_OFLAG_COPIED;
    s->l1_dirty = true;
    s->l1_gen++;
    return t;
}
