/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The dirty-bitmaps capability: the named dirty bitmaps of the source's
 * nodes arrive on the destination with their names, granularity,
 * enabled and persistent state and bits, as QEMU 7.2 moves them.
 *
 * Which ones, as QEMU: without block-bitmap-mapping, those of every
 * named backend's root (by the backend's name) and of every other node
 * (by node name); a node without a usable name, a bitmap that is busy,
 * read-only or inconsistent, or a name over 255 bytes fails the
 * migration.  With block-bitmap-mapping, only the nodes and bitmaps it
 * names, under their aliases, and the destination maps aliases back
 * with its own block-bitmap-mapping.  They are busy on the source
 * while the migration runs.
 *
 * When: their bits go once, after the last pass with the guest stopped
 * (a BITMAP record each, before END), so they hold what they recorded
 * during the migration.  The destination creates each one disabled and
 * enables those that were enabled once its disks hold every write of
 * the stream: the migration's own writes are not the guest's.  As in
 * QEMU, a bitmap the destination cannot place (an unknown node or
 * alias) is reported and skipped, one that already exists there fails
 * the load.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <glib.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "migration/block.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"

typedef struct MigBitmap {
    BlockNode *bn;
    DirtyBitmap *bm;
    char *node_alias, *alias;
    bool persistent;
} MigBitmap;

static GPtrArray *out_bitmaps;     /* MigBitmap, while migrating */
static GPtrArray *in_enable;       /* DirtyBitmap: enable at the end */

static void mig_bitmap_free(gpointer p)
{
    MigBitmap *b = p;

    dbitmap_set_busy(b->bm, false);
    bdrv_unref(b->bn);
    g_free(b->node_alias);
    g_free(b->alias);
    g_free(b);
}

/* The mapping's entry for node @name (by node name or by alias). */
static json_t *map_node(json_t *map, const char *key, const char *name)
{
    size_t i;
    json_t *n;

    json_array_foreach(map, i, n) {
        if (!strcmp(qjson_get_str(n, key), name)) {
            return n;
        }
    }
    return NULL;
}

static json_t *map_bitmap(json_t *node, const char *key, const char *name)
{
    return map_node(json_object_get(node, "bitmaps"), key, name);
}

static bool has_named(BlockNode *bn)
{
    for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
         bm = dbitmap_next(bn, bm)) {
        if (dbitmap_name(bm)) {
            return true;
        }
    }
    return false;
}

/* QEMU's add_bitmaps_to_list(); the reason of a failure on stderr. */
static bool add_node(BlockNode *bn, const char *name, json_t *map)
{
    json_t *mnode = NULL;
    const char *node_alias = name;

    if (!has_named(bn)) {
        return true;
    }
    if (!name || !*name) {
        for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
             bm = dbitmap_next(bn, bm)) {
            if (dbitmap_name(bm)) {
                fprintf(stderr, "qmpd: Bitmap '%s' in unnamed node can't "
                        "be migrated\n", dbitmap_name(bm));
                return false;
            }
        }
    }
    if (map) {
        mnode = map_node(map, "node-name", name);
        if (!mnode) {
            return true;
        }
        node_alias = qjson_get_str(mnode, "alias");
    }
    for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
         bm = dbitmap_next(bn, bm)) {
        const char *bname = dbitmap_name(bm);
        json_t *mb = NULL;
        Error *err = NULL;
        MigBitmap *b;

        if (!bname) {
            continue;
        }
        if (node_alias[0] == '#') {
            fprintf(stderr, "qmpd: Bitmap '%s' in a node with auto-generated "
                    "name '%s' can't be migrated\n", bname, node_alias);
            return false;
        }
        if (!dbitmap_check(bm, DBITMAP_CHECK_DEFAULT, &err)) {
            fprintf(stderr, "qmpd: %s\n", error_get_pretty(err));
            error_free(err);
            return false;
        }
        if (mnode) {
            mb = map_bitmap(mnode, "name", bname);
            if (!mb) {
                continue;
            }
        } else if (strlen(bname) > 255) {
            fprintf(stderr, "qmpd: Cannot migrate bitmap '%s' on node '%s': "
                    "Name is longer than 255 bytes\n", bname, name);
            return false;
        }
        b = g_new0(MigBitmap, 1);
        bdrv_ref(bn);
        b->bn = bn;
        b->bm = bm;
        b->node_alias = g_strdup(node_alias);
        b->alias = g_strdup(mb ? qjson_get_str(mb, "alias") : bname);
        b->persistent = dbitmap_persistent(bm);
        if (mb && json_object_get(json_object_get(mb, "transform"),
                                  "persistent")) {
            b->persistent = qjson_get_bool(json_object_get(mb, "transform"),
                                           "persistent");
        }
        dbitmap_set_busy(bm, true);
        g_ptr_array_add(out_bitmaps, b);
    }
    return true;
}

bool mig_bitmaps_out_setup(Error **errp)
{
    g_autoptr(json_t) params = mig_params_query();
    json_t *map = json_object_get(params, "block-bitmap-mapping");
    g_autoptr(GHashTable) done = g_hash_table_new(NULL, NULL);
    GPtrArray *blks = blk_all(), *nodes = bdrv_all_nodes();

    g_assert(!out_bitmaps);
    out_bitmaps = g_ptr_array_new_with_free_func(mig_bitmap_free);
    for (guint i = 0; !map && i < blks->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blks, i);
        BlockNode *bn = blk_root(blk);

        if (!*blk_name(blk) || !bn) {
            continue;
        }
        /* a filter without bitmaps stands for the node below it */
        if (!has_named(bn)) {
            bn = bdrv_skip_filters(bn);
        }
        if (!add_node(bn, blk_name(blk), NULL)) {
            goto fail;
        }
        g_hash_table_add(done, bn);
    }
    for (guint i = 0; i < nodes->len; i++) {
        BlockNode *bn = g_ptr_array_index(nodes, i);

        if (!g_hash_table_contains(done, bn)
            && !add_node(bn, bdrv_node_name(bn), map)) {
            goto fail;
        }
    }
    return true;

fail:
    g_clear_pointer(&out_bitmaps, g_ptr_array_unref);
    error_setg(errp, "Failed to initialize dirty tracking bitmap for blocks");
    return false;
}

void mig_bitmaps_out_put(GByteArray *out)
{
    for (guint i = 0; out_bitmaps && i < out_bitmaps->len; i++) {
        MigBitmap *b = g_ptr_array_index(out_bitmaps, i);
        HBitmap *hb = dbitmap_hbitmap(b->bm);
        g_autoptr(json_t) head = json_pack(
            "{s:s,s:s,s:I,s:I,s:b,s:b}", "node", b->node_alias,
            "name", b->alias, "granularity",
            (json_int_t)dbitmap_granularity(b->bm), "size",
            (json_int_t)hbitmap_size(hb), "enabled",
            dbitmap_enabled(b->bm), "persistent", b->persistent);
        g_autofree char *text = json_dumps(head, JSON_COMPACT);
        g_autoptr(GByteArray) rec = g_byte_array_new();
        size_t n = hbitmap_serialized_size(hb);

        mig_put_be32(rec, strlen(text));
        g_byte_array_append(rec, (const guint8 *)text, strlen(text));
        g_byte_array_set_size(rec, rec->len + n);
        hbitmap_serialize(hb, rec->data + rec->len - n);
        mig_stream_put_record(out, MIG_SECTION_BITMAP, 0, rec->data,
                              rec->len);
    }
}

void mig_bitmaps_out_cleanup(void)
{
    g_clear_pointer(&out_bitmaps, g_ptr_array_unref);
}

/* Where a bitmap goes here; NULL (reported) to skip it. */
static BlockNode *in_node(const char *node_alias, const char *alias,
                          const char **name, json_t **mb)
{
    g_autoptr(json_t) params = mig_params_query();
    json_t *map = json_object_get(params, "block-bitmap-mapping");
    Error *err = NULL;
    json_t *mnode;
    BlockNode *bn;

    *name = alias;
    *mb = NULL;
    if (!map) {
        bn = bdrv_lookup(node_alias, node_alias, &err);
        if (!bn) {
            fprintf(stderr, "qmpd: %s\n", error_get_pretty(err));
            error_free(err);
        }
        return bn;
    }
    mnode = map_node(map, "alias", node_alias);
    if (!mnode) {
        fprintf(stderr, "qmpd: Error: Unknown node alias '%s'\n", node_alias);
        return NULL;
    }
    bn = bdrv_lookup(NULL, qjson_get_str(mnode, "node-name"), &err);
    if (!bn) {
        fprintf(stderr, "qmpd: %s\n", error_get_pretty(err));
        error_free(err);
        return NULL;
    }
    *mb = json_deep_copy(map_bitmap(mnode, "alias", alias));
    if (!*mb) {
        fprintf(stderr, "qmpd: Error: Unknown bitmap alias '%s' on node "
                "'%s' (alias '%s')\n", alias, bdrv_node_name(bn), node_alias);
        return NULL;
    }
    *name = qjson_get_str(*mb, "name");
    return bn;
}

bool mig_bitmaps_in_load(const uint8_t *p, uint32_t len, Error **errp)
{
    g_autoptr(json_t) head = NULL;
    g_autoptr(json_t) mb = NULL;
    json_t *node, *alias, *gran, *size, *en, *pers, *tr;
    const char *name;
    DirtyBitmap *bm;
    BlockNode *bn;
    uint32_t hl;

    if (len < 4 || (hl = mig_get_be32(p)) > len - 4
        || !(head = json_loadb((const char *)p + 4, hl, 0, NULL))
        || !json_is_string(node = json_object_get(head, "node"))
        || !json_is_string(alias = json_object_get(head, "name"))
        || !json_is_integer(gran = json_object_get(head, "granularity"))
        || !json_is_integer(size = json_object_get(head, "size"))
        || !json_is_boolean(en = json_object_get(head, "enabled"))
        || !json_is_boolean(pers = json_object_get(head, "persistent"))) {
        error_setg(errp, "Invalid dirty bitmap section");
        return false;
    }
    bn = in_node(json_string_value(node), json_string_value(alias), &name,
                 &mb);
    if (!bn) {
        return true;
    }
    if (dbitmap_find(bn, name)) {
        error_setg(errp, "Bitmap with the same name ('%s') already exists "
                   "on destination", name);
        return false;
    }
    bm = dbitmap_create(bn, json_integer_value(gran), name, errp);
    if (!bm) {
        return false;
    }
    if (hbitmap_size(dbitmap_hbitmap(bm)) != (uint64_t)json_integer_value(size)
        || hbitmap_serialized_size(dbitmap_hbitmap(bm)) != len - 4 - hl) {
        dbitmap_release(bm);
        error_setg(errp, "Migrated bitmap granularity doesn't match the "
                   "destination bitmap '%s' granularity", name);
        return false;
    }
    dbitmap_set_enabled(bm, false);
    hbitmap_deserialize(dbitmap_hbitmap(bm), p + 4 + hl);
    tr = mb ? json_object_get(mb, "transform") : NULL;
    dbitmap_set_persistent(bm, tr && json_object_get(tr, "persistent")
                           ? qjson_get_bool(tr, "persistent")
                           : json_is_true(pers));
    if (json_is_true(en)) {
        if (!in_enable) {
            in_enable = g_ptr_array_new();
        }
        g_ptr_array_add(in_enable, bm);
    }
    return true;
}

void mig_bitmaps_in_activate(void)
{
    for (guint i = 0; in_enable && i < in_enable->len; i++) {
        dbitmap_set_enabled(g_ptr_array_index(in_enable, i), true);
    }
    g_clear_pointer(&in_enable, g_ptr_array_unref);
}
