/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps on block nodes and what the block-dirty-bitmap-*
 * commands do (their handlers are qmp/qmp-dirty-bitmap.c), with QEMU
 * 7.2's checks in its order and its messages.
 *
 * Each node with bitmaps has a NodeBitmaps record (kept here, keyed by
 * node, so the node structure needs no field) holding its bitmaps newest
 * first, as QEMU's list, and one write notifier on the node whose
 * opaque is that record: a write costs one walk over the node's
 * bitmaps, with no lookup.  The record goes with the last bitmap.
 *
 *   BlockNode --write notifier--> NodeBitmaps { [b3, b2, b1] }
 *                                        each: HBitmap, flags
 *
 * Persistence belongs to the format driver (BlockDriver.bitmap_*):
 * whether a new bitmap may be persistent, removing a stored one, and
 * (inside the driver) loading at open and storing at close or when the
 * node goes read-only.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"
#include "util/log.h"

typedef struct NodeBitmaps {
    BlockNode *bn;
    GList *list;                /* DirtyBitmap *, newest first */
} NodeBitmaps;

struct DirtyBitmap {
    NodeBitmaps *owner;
    char *name;                 /* NULL: anonymous */
    HBitmap *hb;
    bool disabled;
    bool busy;
    bool persistent;
    bool inconsistent;
    bool readonly;
    DirtyBitmap *successor;     /* frozen: what records meanwhile */
};

static GHashTable *all_nodes;   /* BlockNode * -> NodeBitmaps * */

static uint64_t bitmap_size_for(const BlockNode *bn)
{
    /* QEMU's bdrv_getlength(): whole sectors */
    return (bdrv_length(bn) + 511) & ~(uint64_t)511;
}

static NodeBitmaps *node_bitmaps(BlockNode *bn)
{
    return all_nodes ? g_hash_table_lookup(all_nodes, bn) : NULL;
}

/*
 * A write starts on the node: every enabled bitmap records it.  A write
 * past the end of a protocol node grows it, and QEMU grows the node's
 * bitmaps with it.
 */
static void write_notify(void *opaque, uint64_t off, uint64_t len)
{
    NodeBitmaps *nb = opaque;

    for (GList *l = nb->list; l; l = l->next) {
        DirtyBitmap *bm = l->data;

        if (bm->disabled) {
            continue;
        }
        if (off + len > hbitmap_size(bm->hb)) {
            hbitmap_truncate(bm->hb, (off + len + 511) & ~(uint64_t)511);
        }
        hbitmap_set(bm->hb, off, len);
    }
}

uint32_t dbitmap_default_granularity(BlockNode *bn)
{
    uint32_t cs = bdrv_cluster_size(bn);

    return cs ? MIN(65536u, MAX(4096u, cs)) : 65536u;
}

DirtyBitmap *dbitmap_find(BlockNode *bn, const char *name)
{
    NodeBitmaps *nb = node_bitmaps(bn);

    for (GList *l = nb ? nb->list : NULL; l; l = l->next) {
        DirtyBitmap *bm = l->data;

        if (bm->name && !strcmp(bm->name, name)) {
            return bm;
        }
    }
    return NULL;
}

DirtyBitmap *dbitmap_create(BlockNode *bn, uint32_t granularity,
                            const char *name, Error **errp)
{
    NodeBitmaps *nb;
    DirtyBitmap *bm;

    g_assert(granularity >= DBITMAP_MIN_GRANULARITY
             && !(granularity & (granularity - 1)));
    if (name) {
        if (dbitmap_find(bn, name)) {
            error_setg(errp, "Bitmap already exists: %s", name);
            return NULL;
        }
        if (strlen(name) > DBITMAP_MAX_NAME_SIZE) {
            error_setg(errp, "Bitmap name too long: %s", name);
            return NULL;
        }
    }
    nb = node_bitmaps(bn);
    if (!nb) {
        if (!all_nodes) {
            all_nodes = g_hash_table_new(NULL, NULL);
        }
        nb = g_new0(NodeBitmaps, 1);
        nb->bn = bn;
        g_hash_table_insert(all_nodes, bn, nb);
        bdrv_add_write_notifier(bn, write_notify, nb);
    }
    bm = g_new0(DirtyBitmap, 1);
    bm->owner = nb;
    bm->name = g_strdup(name);
    bm->hb = hbitmap_new(bitmap_size_for(bn), granularity);
    nb->list = g_list_prepend(nb->list, bm);
    return bm;
}

void dbitmap_release(DirtyBitmap *bm)
{
    NodeBitmaps *nb = bm->owner;

    nb->list = g_list_remove(nb->list, bm);
    hbitmap_free(bm->hb);
    g_free(bm->name);
    g_free(bm);
    if (!nb->list) {
        bdrv_remove_write_notifier(nb->bn, write_notify, nb);
        g_hash_table_remove(all_nodes, nb->bn);
        g_free(nb);
    }
}

void dbitmap_node_free(BlockNode *bn)
{
    NodeBitmaps *nb;

    while ((nb = node_bitmaps(bn))) {
        dbitmap_release(nb->list->data);
    }
}

DirtyBitmap *dbitmap_next(BlockNode *bn, const DirtyBitmap *prev)
{
    NodeBitmaps *nb = node_bitmaps(bn);
    GList *l;

    if (!nb) {
        return NULL;
    }
    if (!prev) {
        return nb->list->data;
    }
    l = g_list_find(nb->list, prev);
    return l && l->next ? l->next->data : NULL;
}

DirtyBitmap *dbitmap_lookup(const char *node, const char *name,
                            BlockNode **pbn, Error **errp)
{
    BlockNode *bn = bdrv_lookup(node, node, NULL);
    DirtyBitmap *bm;

    if (!bn) {
        error_setg(errp, "Node '%s' not found", node);
        return NULL;
    }
    bm = dbitmap_find(bn, name);
    if (!bm) {
        error_setg(errp, "Dirty bitmap '%s' not found", name);
        return NULL;
    }
    if (pbn) {
        *pbn = bn;
    }
    return bm;
}

bool dbitmap_check(const DirtyBitmap *bm, unsigned flags, Error **errp)
{
    if ((flags & DBITMAP_CHECK_BUSY) && bm->busy) {
        error_setg(errp, "Bitmap '%s' is currently in use by another "
                   "operation and cannot be used", bm->name);
        return false;
    }
    if ((flags & DBITMAP_CHECK_RO) && bm->readonly) {
        error_setg(errp, "Bitmap '%s' is readonly and cannot be modified",
                   bm->name);
        return false;
    }
    if ((flags & DBITMAP_CHECK_INCONSISTENT) && bm->inconsistent) {
        error_setg(errp, "Bitmap '%s' is inconsistent and cannot be used",
                   bm->name);
        error_append_hint(errp, "Try block-dirty-bitmap-remove to delete "
                          "this bitmap from disk\n");
        return false;
    }
    return true;
}

const char *dbitmap_name(const DirtyBitmap *bm)
{
    return bm->name;
}

BlockNode *dbitmap_node(const DirtyBitmap *bm)
{
    return bm->owner->bn;
}

uint32_t dbitmap_granularity(const DirtyBitmap *bm)
{
    return hbitmap_granularity(bm->hb);
}

uint64_t dbitmap_size(const DirtyBitmap *bm)
{
    return hbitmap_size(bm->hb);
}

uint64_t dbitmap_count(const DirtyBitmap *bm)
{
    uint64_t size = hbitmap_size(bm->hb);
    uint64_t g = hbitmap_granularity(bm->hb);
    uint64_t n = hbitmap_count(bm->hb);

    /* hbitmap cuts the last granule at the size; QEMU does not */
    if (size % g && hbitmap_get(bm->hb, size - 1)) {
        n += g - size % g;
    }
    return n;
}

bool dbitmap_enabled(const DirtyBitmap *bm)
{
    return !bm->disabled || (bm->successor && !bm->successor->disabled);
}

void dbitmap_set_enabled(DirtyBitmap *bm, bool enabled)
{
    bm->disabled = !enabled;
}

bool dbitmap_busy(const DirtyBitmap *bm)
{
    return bm->busy;
}

void dbitmap_set_busy(DirtyBitmap *bm, bool busy)
{
    bm->busy = busy;
}

bool dbitmap_persistent(const DirtyBitmap *bm)
{
    return bm->persistent;
}

void dbitmap_set_persistent(DirtyBitmap *bm, bool persistent)
{
    bm->persistent = persistent;
}

bool dbitmap_inconsistent(const DirtyBitmap *bm)
{
    return bm->inconsistent;
}

void dbitmap_set_inconsistent(DirtyBitmap *bm)
{
    bm->inconsistent = true;
    bm->disabled = true;
}

bool dbitmap_readonly(const DirtyBitmap *bm)
{
    return bm->readonly;
}

void dbitmap_set_readonly(DirtyBitmap *bm, bool readonly)
{
    bm->readonly = readonly;
}

HBitmap *dbitmap_hbitmap(DirtyBitmap *bm)
{
    return bm->hb;
}

void dbitmap_set_range(DirtyBitmap *bm, uint64_t off, uint64_t len)
{
    hbitmap_set(bm->hb, off, len);
}

void dbitmap_reset_range(DirtyBitmap *bm, uint64_t off, uint64_t len)
{
    hbitmap_reset(bm->hb, off, len);
}

void dbitmap_clear(DirtyBitmap *bm, HBitmap **backup)
{
    if (backup) {
        *backup = bm->hb;
        bm->hb = hbitmap_new(hbitmap_size(*backup),
                             hbitmap_granularity(*backup));
    } else {
        hbitmap_reset_all(bm->hb);
    }
}

void dbitmap_restore(DirtyBitmap *bm, HBitmap *backup)
{
    hbitmap_free(bm->hb);
    bm->hb = backup;
}

bool dbitmap_freeze(DirtyBitmap *bm, Error **errp)
{
    DirtyBitmap *succ;

    if (bm->busy) {
        error_setg(errp, "Cannot create a successor for a bitmap that is "
                   "in-use by an operation");
        return false;
    }
    succ = dbitmap_create(bm->owner->bn, dbitmap_granularity(bm), NULL,
                          errp);
    if (!succ) {
        return false;
    }
    succ->disabled = bm->disabled;
    bm->disabled = true;
    bm->successor = succ;
    bm->busy = true;
    return true;
}

void dbitmap_thaw(DirtyBitmap *bm, bool keep_old)
{
    DirtyBitmap *succ = bm->successor;
    NodeBitmaps *nb = bm->owner;

    g_assert(succ);
    bm->successor = NULL;
    bm->busy = false;
    bm->disabled = succ->disabled;
    if (keep_old) {
        hbitmap_merge(bm->hb, succ->hb);
    } else {
        HBitmap *hb = bm->hb;
        GList *at_bm = g_list_find(nb->list, bm);
        GList *at_succ = g_list_find(nb->list, succ);

        bm->hb = succ->hb;
        succ->hb = hb;
        /* the queries list @bm in the successor's place from now on */
        at_succ->data = bm;
        at_bm->data = succ;
    }
    dbitmap_release(succ);
}

/* @dst |= @src, whatever their granularities (same size). */
static void merge_bits(HBitmap *dst, const HBitmap *src)
{
    uint64_t off = 0, start, len;

    if (hbitmap_granularity(dst) == hbitmap_granularity(src)) {
        hbitmap_merge(dst, src);
        return;
    }
    while (hbitmap_next_dirty_area(src, off, UINT64_MAX, &start, &len)) {
        hbitmap_set(dst, start, len);
        off = start + len;
    }
}

bool dbitmap_merge_check(const DirtyBitmap *dst, const DirtyBitmap *src,
                         Error **errp)
{
    if (!dbitmap_check(dst, DBITMAP_CHECK_DEFAULT, errp)
        || !dbitmap_check(src, DBITMAP_CHECK_ALLOW_RO, errp)) {
        return false;
    }
    if (dbitmap_size(src) != dbitmap_size(dst)) {
        error_setg(errp, "Bitmaps are of different sizes (destination size "
                   "is %" G_GUINT64_FORMAT ", source size is %"
                   G_GUINT64_FORMAT ") and can't be merged",
                   dbitmap_size(dst), dbitmap_size(src));
        return false;
    }
    return true;
}

bool dbitmap_merge(DirtyBitmap *dst, const DirtyBitmap *src,
                   HBitmap **backup, Error **errp)
{
    if (!dbitmap_merge_check(dst, src, errp)) {
        return false;
    }
    if (backup) {
        HBitmap *copy = hbitmap_new(dbitmap_size(dst),
                                    dbitmap_granularity(dst));

        hbitmap_merge(copy, dst->hb);
        *backup = dst->hb;
        dst->hb = copy;
    }
    merge_bits(dst->hb, src->hb);
    return true;
}

json_t *dbitmap_query(BlockNode *bn)
{
    NodeBitmaps *nb = node_bitmaps(bn);
    json_t *list;

    if (!nb) {
        return NULL;
    }
    list = json_array();
    for (GList *l = nb->list; l; l = l->next) {
        DirtyBitmap *bm = l->data;
        json_t *o = json_object();

        if (bm->name) {
            json_object_set_new(o, "name", qjson_str(bm->name));
        }
        json_object_set_new(o, "count", json_integer(dbitmap_count(bm)));
        json_object_set_new(o, "granularity",
                            json_integer(dbitmap_granularity(bm)));
        json_object_set_new(o, "recording",
                            json_boolean(dbitmap_enabled(bm)));
        json_object_set_new(o, "busy", json_boolean(bm->busy));
        json_object_set_new(o, "persistent", json_boolean(bm->persistent));
        if (bm->inconsistent) {
            json_object_set_new(o, "inconsistent", json_true());
        }
        json_array_append_new(list, o);
    }
    return list;
}

void dbitmap_node_resized(BlockNode *bn)
{
    NodeBitmaps *nb = node_bitmaps(bn);
    uint64_t size = bitmap_size_for(bn);

    for (GList *l = nb ? nb->list : NULL; l; l = l->next) {
        DirtyBitmap *bm = l->data;

        if (hbitmap_size(bm->hb) != size) {
            hbitmap_truncate(bm->hb, size);
        }
    }
}

/* ---- the commands' logic (qmp/qmp-dirty-bitmap.c, transactions) ------- */

DirtyBitmap *dbitmap_qmp_add(const char *node, const char *name,
                             bool has_granularity, uint32_t granularity,
                             bool persistent, bool disabled, Error **errp)
{
    BlockNode *bn;
    DirtyBitmap *bm;

    if (!*name) {
        error_setg(errp, "Bitmap name cannot be empty");
        return NULL;
    }
    bn = bdrv_lookup(node, node, errp);
    if (!bn) {
        return NULL;
    }
    if (has_granularity) {
        if (granularity < DBITMAP_MIN_GRANULARITY
            || (granularity & (granularity - 1))) {
            error_setg(errp, "Granularity must be power of 2 and at least "
                       "512");
            return NULL;
        }
    } else {
        granularity = dbitmap_default_granularity(bn);
    }
    if (persistent) {
        if (!bn->drv->bitmap_can_store) {
            error_setg_errno(errp, ENOTSUP, "Can't store persistent "
                             "bitmaps to %s", bdrv_device_or_node_name(bn));
            return NULL;
        }
        if (dbitmap_find(bn, name)) {
            error_setg(errp, "Bitmap already exists: %s", name);
            return NULL;
        }
        if (!bn->drv->bitmap_can_store(bn, name, granularity, errp)) {
            error_prepend(errp, "Can't make bitmap '%s' persistent in "
                          "'%s': ", name, bdrv_device_or_node_name(bn));
            return NULL;
        }
    }
    bm = dbitmap_create(bn, granularity, name, errp);
    if (bm) {
        bm->disabled = disabled;
        bm->persistent = persistent;
    }
    return bm;
}

/*
 * Removing a stored bitmap rewrites the image's bitmap directory; the
 * driver refuses (-EBUSY) while its metadata writeback is in flight, so
 * we flush and try again.  The request counts as in flight on the node
 * throughout: a close or drain waits for it.
 */
typedef struct {
    BlockNode *bn;
    DirtyBitmap *bm;
    DbitmapDoneCb *cb;
    void *opaque;
} Removal;

static void removal_try(Removal *r);

static void removal_flushed_cb(void *opaque, int ret)
{
    removal_try(opaque);
}

static void removal_try(Removal *r)
{
    Error *err = NULL;
    int ret = r->bn->drv->bitmap_remove(r->bn, r->bm->name, &err);

    if (ret == -EBUSY) {
        bdrv_flush(r->bn, removal_flushed_cb, r);
        return;
    }
    r->bm->busy = false;
    if (ret == 0) {
        dbitmap_release(r->bm);
    }
    bdrv_dec_in_flight(r->bn);
    r->cb(r->opaque, err);
    g_free(r);
}

void dbitmap_qmp_remove(const char *node, const char *name,
                        DbitmapDoneCb *cb, void *opaque)
{
    BlockNode *bn;
    Error *err = NULL;
    DirtyBitmap *bm = dbitmap_lookup(node, name, &bn, &err);
    Removal *r;

    if (!bm || !dbitmap_check(bm, DBITMAP_CHECK_BUSY | DBITMAP_CHECK_RO,
                              &err)) {
        cb(opaque, err);
        return;
    }
    if (!bm->persistent || !bn->drv->bitmap_remove) {
        dbitmap_release(bm);
        cb(opaque, NULL);
        return;
    }
    /* nobody else may use it while the image forgets it */
    bm->busy = true;
    r = g_new0(Removal, 1);
    r->bn = bn;
    r->bm = bm;
    r->cb = cb;
    r->opaque = opaque;
    bdrv_inc_in_flight(bn);
    removal_try(r);
}

/*
 * Every source is found and checked before the target changes: QEMU
 * merges one by one and puts the target back when a later source fails,
 * which gives the same errors in the same order.
 */
bool dbitmap_qmp_merge(const json_t *args, HBitmap **backup, Error **errp)
{
    BlockNode *bn;
    DirtyBitmap *dst = dbitmap_lookup(qjson_get_str(args, "node"),
                                      qjson_get_str(args, "target"), &bn,
                                      errp);
    const json_t *list = json_object_get(args, "bitmaps");
    g_autoptr(GPtrArray) srcs = g_ptr_array_new();
    size_t i;
    const json_t *v;

    if (!dst) {
        return false;
    }
    json_array_foreach(list, i, v) {
        DirtyBitmap *src;

        if (json_is_string(v)) {
            src = dbitmap_find(bn, json_string_value(v));
            if (!src) {
                error_setg(errp, "Dirty bitmap '%s' not found",
                           json_string_value(v));
                return false;
            }
        } else {
            src = dbitmap_lookup(qjson_get_str(v, "node"),
                                 qjson_get_str(v, "name"), NULL, errp);
            if (!src) {
                return false;
            }
        }
        if (!dbitmap_merge_check(dst, src, errp)) {
            return false;
        }
        g_ptr_array_add(srcs, src);
    }
    if (backup) {
        HBitmap *copy = hbitmap_new(dbitmap_size(dst),
                                    dbitmap_granularity(dst));

        hbitmap_merge(copy, dst->hb);
        *backup = dst->hb;
        dst->hb = copy;
    }
    for (guint k = 0; k < srcs->len; k++) {
        merge_bits(dst->hb, ((DirtyBitmap *)g_ptr_array_index(srcs, k))->hb);
    }
    return true;
}
