/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 persistent dirty bitmaps: QEMU's bitmaps extension, read and
 * written so that QEMU and qemu-img accept what we leave and we accept
 * what they leave.
 *
 * On disk (docs/interop/qcow2.txt; every detail checked against QEMU
 * 7.2's own images):
 *
 *   header extension 0x23852875 (24 bytes): nb_bitmaps, reserved (0),
 *     directory size, directory offset; valid only while autoclear bit 0
 *     is set (a program that does not know bitmaps clears it)
 *   directory: one entry per bitmap, each 8-byte aligned:
 *     table offset (8), table size in entries (4), flags (4: bit 0
 *     in_use, bit 1 auto = recording), type (1: 1), granularity bits
 *     (1), name size (2), extra data size (4: 0), name
 *   table: one 8-byte entry per bitmap data cluster: the cluster's
 *     offset, or 0 for an all-zero cluster (bit 0 set: all ones)
 *   data: bit i of byte j is granule 8j + i (util/hbitmap.h's order),
 *     cluster_size * 8 granules per cluster
 *
 * Life cycle, as QEMU's qcow2-bitmap.c:
 *
 *   open rw:  load each bitmap not in use, then mark them all in use
 *             in the image (header without the autoclear bit, directory
 *             rewritten in place, header with it again); a bitmap found
 *             in use was not stored after its last use: inconsistent,
 *             no data, removable only
 *   open ro:  load; the bitmaps are read-only
 *   close / going read-only:
 *             store: each persistent, consistent, writable bitmap gets
 *             new data clusters and a new table, and a new directory
 *             replaces the old one; the old clusters are freed after
 *             the header points to the new directory
 *   remove:   the directory without the bitmap replaces the old one
 *   flush:    nothing (QEMU stores bitmaps only at the points above)
 *
 * A crash in between leaves the old directory (bitmaps in use), at
 * worst leaked clusters: new clusters are referenced, refcounts on disk
 * (qcow2_flush_metadata_sync) before the header points to them, and
 * freed only after it does not any more.  The directory is read from
 * the image each time, as QEMU does; these control paths are rare and
 * the image is ours alone (locked).
 *
 * The I/O here is synchronous, on the main loop, bounded by the bitmap
 * sizes: it runs at open, at close, at a reopen, and for a removal,
 * never inside an asynchronous metadata flush (-EBUSY then; the caller
 * flushes and tries again).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2-bitmap-int.h"
#include "util/log.h"

/* ---- bitmap data --------------------------------------------------------- */

static bool load_data(BlockNode *bn, const BmEntry *e, DirtyBitmap *bm,
                      Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t tb_bytes = (uint64_t)e->table_size * 8;
    uint64_t want = size_to_clusters(s, bitmap_bytes(dbitmap_size(bm),
                                                     e->gbits));
    g_autofree uint8_t *tb = g_malloc(tb_bytes);
    g_autofree uint8_t *ser = NULL;
    int r = bdrv_pread_sync(file_of(bn), e->table_offset, tb_bytes, tb);

    for (uint32_t i = 0; r == 0 && i < e->table_size; i++) {
        uint64_t t = be_get64(tb + 8 * i);
        uint64_t off = t & BME_ENTRY_OFFSET_MASK;

        if ((t & BME_ENTRY_RESERVED_MASK)
            || (off && ((t & BME_ENTRY_ALL_ONES)
                        || off % s->cluster_size))) {
            r = -EINVAL;
        }
    }
    if (r < 0) {
        error_setg_errno(errp, -r, "Could not read bitmap_table table from "
                         "image for bitmap '%s'", e->name);
        return false;
    }
    if (want != e->table_size) {
        r = -EINVAL;
    } else {
        ser = g_malloc0(MAX(want, 1) << s->cluster_bits);
    }
    for (uint32_t i = 0; r == 0 && i < e->table_size; i++) {
        uint64_t t = be_get64(tb + 8 * i);
        uint8_t *dst = ser + ((uint64_t)i << s->cluster_bits);

        if (t & BME_ENTRY_OFFSET_MASK) {
            r = bdrv_pread_sync(file_of(bn), t & BME_ENTRY_OFFSET_MASK,
                                s->cluster_size, dst);
        } else if (t & BME_ENTRY_ALL_ONES) {
            memset(dst, 0xff, s->cluster_size);
        }
    }
    if (r < 0) {
        error_setg_errno(errp, -r, "Could not read bitmap '%s' from image",
                         e->name);
        return false;
    }
    hbitmap_deserialize(dbitmap_hbitmap(bm), ser);
    return true;
}

/*
 * QEMU's store_bitmap(): new data clusters for the parts with dirty
 * bits (all-zero parts stay unallocated), then the table.  Every cluster
 * allocated is appended to @allocated.
 */
static bool store_data(BlockNode *bn, BmEntry *e, GArray *allocated,
                       Error **errp)
{
    Qcow2State *s = state(bn);
    HBitmap *hb = dbitmap_hbitmap(e->bm);
    uint64_t tb_size = size_to_clusters(s, bitmap_bytes(hbitmap_size(hb),
                                                        e->gbits));
    uint64_t limit = ((uint64_t)s->cluster_size * 8) << e->gbits;
    uint64_t tb_clusters, tb_off;
    g_autofree uint64_t *tb = NULL;
    uint8_t *ser, *buf;
    int r = 0;

    if (tb_size > BME_MAX_TABLE_SIZE
        || tb_size * s->cluster_size > BME_MAX_PHYS_SIZE) {
        error_setg(errp, "Bitmap '%s' is too big", e->name);
        return false;
    }
    tb = g_new0(uint64_t, MAX(tb_size, 1));
    ser = ioq_buf_alloc0(MAX(tb_size, 1) << s->cluster_bits);
    hbitmap_serialize(hb, ser);
    for (uint64_t i = 0; i < tb_size; i++) {
        int64_t next = hbitmap_next_dirty(hb, i * limit);
        uint64_t off;

        if (next < 0) {
            break;
        }
        i = next / limit;
        off = qcow2_alloc_clusters(bn, 1, &r);
        if (!off) {
            error_setg_errno(errp, -r, "Failed to allocate clusters for "
                             "bitmap '%s'", e->name);
            ioq_buf_free(ser);
            return false;
        }
        g_array_append_val(allocated, off);
        r = qcow2_overlap_check(bn, 0, off, s->cluster_size);
        if (r == 0) {
            r = bdrv_pwrite_sync(file_of(bn), off, s->cluster_size,
                                 ser + (i << s->cluster_bits));
        }
        if (r < 0) {
            error_setg_errno(errp, -r, "Failed to write bitmap '%s' to "
                             "file", e->name);
            ioq_buf_free(ser);
            return false;
        }
        tb[i] = off;
    }
    ioq_buf_free(ser);

    tb_clusters = size_to_clusters(s, tb_size * 8);
    tb_off = qcow2_alloc_clusters(bn, tb_clusters, &r);
    if (!tb_off) {
        error_setg_errno(errp, -r, "Failed to allocate clusters for bitmap "
                         "'%s'", e->name);
        return false;
    }
    for (uint64_t i = 0; i < tb_clusters; i++) {
        uint64_t c = tb_off + (i << s->cluster_bits);

        g_array_append_val(allocated, c);
    }
    buf = ioq_buf_alloc0(tb_clusters << s->cluster_bits);
    for (uint64_t i = 0; i < tb_size; i++) {
        be_put64(buf + 8 * i, tb[i]);
    }
    r = qcow2_overlap_check(bn, 0, tb_off, tb_clusters << s->cluster_bits);
    if (r == 0) {
        r = bdrv_pwrite_sync(file_of(bn), tb_off,
                             tb_clusters << s->cluster_bits, buf);
    }
    ioq_buf_free(buf);
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to write bitmap '%s' to file",
                         e->name);
        return false;
    }
    e->table_offset = tb_off;
    e->table_size = tb_size;
    return true;
}

/* ---- life cycle ---------------------------------------------------------- */

bool qcow2_bitmaps_load(BlockNode *bn, Error **errp)
{
    Qcow2State *s = state(bn);
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GPtrArray) created = g_ptr_array_new();
    bool update = false;
    int r;

    if (!s->nb_bitmaps) {
        return true;
    }
    list = qcow2_bm_dir_load(bn, errp);
    if (!list) {
        return false;
    }
    for (guint i = 0; i < list->len; i++) {
        BmEntry *e = g_ptr_array_index(list, i);
        DirtyBitmap *bm = dbitmap_create(bn, 1u << e->gbits, e->name, errp);

        if (!bm) {
            goto fail;
        }
        g_ptr_array_add(created, bm);
        /* data of a bitmap in use is stale: not even read */
        if (!(e->flags & BME_FLAG_IN_USE) && !load_data(bn, e, bm, errp)) {
            goto fail;
        }
        dbitmap_set_persistent(bm, true);
        if (e->flags & BME_FLAG_IN_USE) {
            dbitmap_set_inconsistent(bm);
        } else {
            e->flags |= BME_FLAG_IN_USE;
            update = true;
        }
        if (!(e->flags & BME_FLAG_AUTO)) {
            dbitmap_set_enabled(bm, false);
        }
    }
    /* an inactive image is its migration source's still: not written */
    if (update && !bn->read_only && !bn->inactive) {
        r = qcow2_bm_dir_rewrite_in_place(bn, list);
        if (r < 0) {
            error_setg_errno(errp, -r, "Can't update bitmap directory");
            goto fail;
        }
    }
    if (bn->read_only) {
        for (guint i = 0; i < created->len; i++) {
            dbitmap_set_readonly(g_ptr_array_index(created, i), true);
        }
    }
    return true;

fail:
    for (guint i = 0; i < created->len; i++) {
        dbitmap_release(g_ptr_array_index(created, i));
    }
    return false;
}

bool qcow2_bitmaps_reopen_rw(BlockNode *bn, Error **errp)
{
    Qcow2State *s = state(bn);
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GPtrArray) ro = g_ptr_array_new();
    int r;

    if (!s->nb_bitmaps) {
        return true;
    }
    list = qcow2_bm_dir_load(bn, errp);
    if (!list) {
        return false;
    }
    for (guint i = 0; i < list->len; i++) {
        BmEntry *e = g_ptr_array_index(list, i);
        DirtyBitmap *bm = dbitmap_find(bn, e->name);

        if (!bm) {
            continue;
        }
        if (!dbitmap_readonly(bm)) {
            error_setg(errp, "Bitmap %s was loaded prior to rw-reopen, but "
                       "was not marked as readonly. This is a bug, "
                       "something went wrong. All of the bitmaps may be "
                       "corrupted", e->name);
            return false;
        }
        e->flags |= BME_FLAG_IN_USE;
        g_ptr_array_add(ro, bm);
    }
    if (ro->len) {
        r = qcow2_bm_dir_rewrite_in_place(bn, list);
        if (r < 0) {
            error_setg_errno(errp, -r, "Can't update bitmap directory");
            return false;
        }
        for (guint i = 0; i < ro->len; i++) {
            dbitmap_set_readonly(g_ptr_array_index(ro, i), false);
        }
    }
    return true;
}

/* QEMU's check_constraints_on_bitmap(). */
static bool check_constraints(BlockNode *bn, const char *name,
                              uint32_t granularity, Error **errp)
{
    Qcow2State *s = state(bn);
    unsigned gbits = __builtin_ctz(granularity);
    uint64_t bytes = bitmap_bytes(node_len(bn), gbits);

    if (gbits > BME_MAX_GRANULARITY_BITS) {
        error_setg(errp, "Granularity exceeds maximum (%llu bytes)",
                   1ull << BME_MAX_GRANULARITY_BITS);
        return false;
    }
    if (gbits < BME_MIN_GRANULARITY_BITS) {
        error_setg(errp, "Granularity is under minimum (%llu bytes)",
                   1ull << BME_MIN_GRANULARITY_BITS);
        return false;
    }
    if (bytes > BME_MAX_PHYS_SIZE
        || bytes > (uint64_t)BME_MAX_TABLE_SIZE * s->cluster_size) {
        error_setg(errp, "Too much space will be occupied by the bitmap. "
                   "Use larger granularity");
        return false;
    }
    if (strlen(name) > BME_MAX_NAME_SIZE) {
        error_setg(errp, "Name length exceeds maximum (%u characters)",
                   BME_MAX_NAME_SIZE);
        return false;
    }
    return true;
}

bool qcow2_bitmap_can_store(BlockNode *bn, const char *name,
                            uint32_t granularity, Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t dir_size = entry_size(strlen(name));
    uint32_t n = 1;

    if (s->version < 3) {
        /*
         * Without autoclear bits any program could have changed the
         * image unnoticed: every bitmap would be stale
         */
        error_setg(errp, "Cannot store dirty bitmaps in qcow2 v2 files");
        return false;
    }
    if (!check_constraints(bn, name, granularity, errp)) {
        return false;
    }
    for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
         bm = dbitmap_next(bn, bm)) {
        if (dbitmap_persistent(bm)) {
            n++;
            dir_size += entry_size(strlen(dbitmap_name(bm)));
        }
    }
    if (n > BME_MAX_BITMAPS) {
        error_setg(errp, "Maximum number of persistent bitmaps is already "
                   "reached");
        return false;
    }
    if (dir_size > BME_MAX_DIR_SIZE) {
        error_setg(errp, "Not enough space in the bitmap directory");
        return false;
    }
    return true;
}

int qcow2_bitmaps_store(BlockNode *bn, bool release, Error **errp)
{
    Qcow2State *s = state(bn);
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GArray) allocated = g_array_new(FALSE, FALSE,
                                              sizeof(uint64_t));
    g_autoptr(GArray) dropped = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t dir_size = s->bitmap_dir_size;
    uint32_t nb = s->nb_bitmaps;
    bool need_write = false;
    bool any = false;
    int r = -EINVAL;

    for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
         bm = dbitmap_next(bn, bm)) {
        any |= dbitmap_persistent(bm);
    }
    if (!any) {
        return 0;
    }
    list = s->nb_bitmaps ? qcow2_bm_dir_load(bn, errp)
                         : g_ptr_array_new_with_free_func(entry_free);
    if (!list) {
        return -EINVAL;
    }
    for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
         bm = dbitmap_next(bn, bm)) {
        const char *name = dbitmap_name(bm);
        BmEntry *e;

        if (!dbitmap_persistent(bm) || dbitmap_inconsistent(bm)) {
            continue;
        }
        e = find_entry(list, name);
        if (dbitmap_readonly(bm)) {
            /* on disk as it is: only released */
            if (e) {
                e->bm = bm;
            }
            continue;
        }
        need_write = true;
        if (!check_constraints(bn, name, dbitmap_granularity(bm), errp)) {
            error_prepend(errp, "Bitmap '%s' doesn't satisfy the "
                          "constraints: ", name);
            return -EINVAL;
        }
        if (!e) {
            if (++nb > BME_MAX_BITMAPS) {
                error_setg(errp, "Too many persistent bitmaps");
                return -EINVAL;
            }
            dir_size += entry_size(strlen(name));
            if (dir_size > BME_MAX_DIR_SIZE) {
                error_setg(errp, "Bitmap directory is too large");
                return -EINVAL;
            }
            e = g_new0(BmEntry, 1);
            e->name = g_strdup(name);
            g_ptr_array_add(list, e);
        } else if (!(e->flags & BME_FLAG_IN_USE)) {
            error_setg(errp, "Bitmap '%s' already exists in the image",
                       name);
            return -EINVAL;
        } else {
            /* its old table goes once the new directory is in place */
            g_array_append_val(dropped, e->table_offset);
            g_array_append_vals(dropped, &(uint64_t){ e->table_size }, 1);
            e->table_offset = 0;
            e->table_size = 0;
        }
        e->flags = dbitmap_enabled(bm) ? BME_FLAG_AUTO : 0;
        e->gbits = __builtin_ctz(dbitmap_granularity(bm));
        e->bm = bm;
    }
    if (need_write) {
        if (bn->read_only) {
            error_setg(errp, "No write access");
            return -EPERM;
        }
        if (s->flushing) {
            return -EBUSY;
        }
        for (guint i = 0; i < list->len; i++) {
            BmEntry *e = g_ptr_array_index(list, i);

            if (e->bm && !dbitmap_readonly(e->bm)
                && !store_data(bn, e, allocated, errp)) {
                goto fail;
            }
        }
        r = qcow2_bm_dir_replace(bn, list);
        if (r < 0) {
            error_setg_errno(errp, -r, "Failed to update bitmap extension");
            goto fail;
        }
        for (guint i = 0; i < dropped->len; i += 2) {
            qcow2_bm_free_table(bn, g_array_index(dropped, uint64_t, i),
                                g_array_index(dropped, uint64_t, i + 1));
        }
        /* the frees reach the disk now: a close does not flush again */
        r = qcow2_flush_metadata_sync(bn);
        if (r < 0) {
            qmpd_log(LOG_WARNING, "qcow2: freeing old bitmap clusters of "
                     "'%s' failed: %s", bn->node_name, g_strerror(-r));
        }
    }
    if (release) {
        for (guint i = 0; i < list->len; i++) {
            BmEntry *e = g_ptr_array_index(list, i);

            if (e->bm) {
                dbitmap_release(e->bm);
            }
        }
    }
    return 0;

fail:
    for (guint i = 0; i < allocated->len; i++) {
        qcow2_free_clusters(bn, g_array_index(allocated, uint64_t, i), 1,
                            QCOW2_DISCARD_ALWAYS);
    }
    qcow2_flush_metadata_sync(bn);
    return r < 0 ? r : -EIO;
}

int qcow2_bitmap_remove(BlockNode *bn, const char *name, Error **errp)
{
    Qcow2State *s = state(bn);
    g_autoptr(GPtrArray) list = NULL;
    BmEntry *e;
    uint64_t off;
    uint32_t size;
    int r;

    /* a bitmap not (yet) in the image is no error: nothing to do */
    if (!s->nb_bitmaps) {
        return 0;
    }
    if (s->flushing) {
        return -EBUSY;
    }
    list = qcow2_bm_dir_load(bn, errp);
    if (!list) {
        return -EIO;
    }
    e = find_entry(list, name);
    if (!e) {
        return 0;
    }
    if (bn->read_only) {
        error_setg(errp, "No write access");
        return -EPERM;
    }
    off = e->table_offset;
    size = e->table_size;
    g_ptr_array_remove(list, e);
    r = qcow2_bm_dir_replace(bn, list);
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to update bitmap extension");
        return r;
    }
    qcow2_bm_free_table(bn, off, size);
    r = qcow2_flush_metadata_sync(bn);
    if (r < 0) {
        qmpd_log(LOG_WARNING, "qcow2: freeing the clusters of bitmap '%s' "
                 "failed: %s", name, g_strerror(-r));
    }
    return 0;
}

bool qcow2_bitmaps_truncate_check(BlockNode *bn, Error **errp)
{
    Qcow2State *s = state(bn);
    g_autoptr(GPtrArray) list = NULL;

    if (!s->nb_bitmaps) {
        return true;
    }
    list = qcow2_bm_dir_load(bn, errp);
    if (!list) {
        return false;
    }
    for (guint i = 0; i < list->len; i++) {
        BmEntry *e = g_ptr_array_index(list, i);
        DirtyBitmap *bm = dbitmap_find(bn, e->name);

        if (!bm) {
            error_setg(errp, "Cannot resize qcow2 with persistent bitmaps "
                       "that were not loaded into memory");
            return false;
        }
        if (!dbitmap_check(bm, DBITMAP_CHECK_DEFAULT, errp)) {
            return false;
        }
    }
    return true;
}
