/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow2 bitmaps extension's header extension and directory: parsed,
 * validated, rewritten in place and replaced, crash-safe in the order
 * qcow2-bitmap.c's top comment describes.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2-bitmap-int.h"
#include "util/log.h"

/* ---- the header extension ------------------------------------------------ */

bool qcow2_bitmaps_parse_ext(BlockNode *bn, const uint8_t *data,
                             uint32_t len, Error **errp)
{
    Qcow2State *s = state(bn);
    uint32_t nb;
    uint64_t dsize, doff;

    if (len != 24) {
        error_setg(errp, "bitmaps_ext: Invalid extension length");
        return false;
    }
    if (!(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
        /* operator information, as QEMU's warn_report() */
        qmpd_log(LOG_WARNING, "%s", s->version < 3
                 ? "This qcow2 v2 image contains bitmaps, but they may have "
                   "been modified by a program without persistent bitmap "
                   "support; so now they must all be considered inconsistent"
                 : "a program lacking bitmap support modified this file, so "
                   "all bitmaps are now considered inconsistent");
        qmpd_log(LOG_WARNING, "Some clusters may be leaked, run 'qemu-img "
                 "check -r' on the image file to fix.");
        s->drop_bitmaps_ext = true;
        return true;
    }
    if (be_get32(data + 4) != 0) {
        error_setg(errp, "bitmaps_ext: Reserved field is not zero");
        return false;
    }
    nb = be_get32(data);
    dsize = be_get64(data + 8);
    doff = be_get64(data + 16);
    if (nb > BME_MAX_BITMAPS) {
        error_setg(errp, "bitmaps_ext: Image has %u bitmaps, exceeding the "
                   "QEMU supported maximum of %u", nb, BME_MAX_BITMAPS);
        return false;
    }
    if (nb == 0) {
        error_setg(errp, "found bitmaps extension with zero bitmaps");
        return false;
    }
    if (doff % s->cluster_size) {
        error_setg(errp, "bitmaps_ext: invalid bitmap directory offset");
        return false;
    }
    if (dsize > BME_MAX_DIR_SIZE) {
        error_setg(errp, "bitmaps_ext: bitmap directory size (%"
                   G_GUINT64_FORMAT ") exceeds the maximum supported size "
                   "(%u)", dsize, BME_MAX_DIR_SIZE);
        return false;
    }
    s->nb_bitmaps = nb;
    s->bitmap_dir_size = dsize;
    s->bitmap_dir_offset = doff;
    return true;
}

/* ---- the directory ------------------------------------------------------- */

/* QEMU's check_dir_entry(). */
static bool entry_valid(BlockNode *bn, const BmEntry *e, uint8_t type,
                        uint32_t name_size)
{
    Qcow2State *s = state(bn);
    uint64_t phys = (uint64_t)e->table_size * s->cluster_size;

    if (e->table_size == 0 || e->table_offset == 0
        || e->table_offset % s->cluster_size
        || e->table_size > BME_MAX_TABLE_SIZE
        || e->gbits > BME_MAX_GRANULARITY_BITS
        || e->gbits < BME_MIN_GRANULARITY_BITS
        || (e->flags & BME_RESERVED_FLAGS) || name_size > BME_MAX_NAME_SIZE
        || type != BT_DIRTY_TRACKING_BITMAP || phys > BME_MAX_PHYS_SIZE) {
        return false;
    }
    /* a bitmap in use may have a table too small: it is not used */
    return (e->flags & BME_FLAG_IN_USE)
        || node_len(bn) <= (phys * 8) << e->gbits;
}

GPtrArray *qcow2_bm_dir_load(BlockNode *bn, Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t size = s->bitmap_dir_size;
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(entry_free);
    g_autofree uint8_t *dir = NULL;
    uint64_t p = 0;
    uint32_t n = 0;
    int r;

    if (size == 0) {
        error_setg(errp, "Requested bitmap directory size is zero");
        return NULL;
    }
    if (size > BME_MAX_DIR_SIZE) {
        error_setg(errp, "Requested bitmap directory size is too big");
        return NULL;
    }
    dir = g_malloc(size);
    r = bdrv_pread_sync(file_of(bn), s->bitmap_dir_offset, size, dir);
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to read bitmap directory");
        return NULL;
    }
    while (p < size) {
        const uint8_t *d = dir + p;
        uint32_t name_size, extra;
        BmEntry *e;

        if (p + DIR_ENTRY_FIXED > size) {
            goto broken;
        }
        if (++n > s->nb_bitmaps) {
            error_setg(errp, "More bitmaps found than specified in header "
                       "extension");
            return NULL;
        }
        name_size = d[18] << 8 | d[19];
        extra = be_get32(d + 20);
        if (p + entry_size((uint64_t)name_size + extra) > size) {
            goto broken;
        }
        if (extra) {
            error_setg(errp, "Bitmap extra data is not supported");
            return NULL;
        }
        e = g_new0(BmEntry, 1);
        e->table_offset = be_get64(d);
        e->table_size = be_get32(d + 8);
        e->flags = be_get32(d + 12);
        e->gbits = d[17];
        e->name = g_strndup((const char *)d + DIR_ENTRY_FIXED, name_size);
        g_ptr_array_add(list, e);
        if (!entry_valid(bn, e, d[16], name_size)) {
            error_setg(errp, "Bitmap '%.*s' doesn't satisfy the constraints",
                       (int)name_size, (const char *)d + DIR_ENTRY_FIXED);
            return NULL;
        }
        p += entry_size(name_size);
    }
    if (n != s->nb_bitmaps) {
        error_setg(errp, "Less bitmaps found than specified in header "
                   "extension");
        return NULL;
    }
    return g_steal_pointer(&list);

broken:
    error_setg(errp, "Broken bitmap directory");
    return NULL;
}

/* The directory's bytes, in whole clusters (zero padded); *@size exact. */
static uint8_t *dir_bytes(BlockNode *bn, GPtrArray *list, uint64_t *size)
{
    uint64_t total = 0, p = 0;
    uint8_t *buf;

    for (guint i = 0; i < list->len; i++) {
        total += entry_size(strlen(((BmEntry *)g_ptr_array_index(list,
                                                                i))->name));
    }
    buf = ioq_buf_alloc0(MAX(align_up(total, state(bn)->cluster_size),
                             state(bn)->cluster_size));
    for (guint i = 0; i < list->len; i++) {
        BmEntry *e = g_ptr_array_index(list, i);
        size_t nl = strlen(e->name);

        be_put64(buf + p, e->table_offset);
        be_put32(buf + p + 8, e->table_size);
        be_put32(buf + p + 12, e->flags);
        buf[p + 16] = BT_DIRTY_TRACKING_BITMAP;
        buf[p + 17] = e->gbits;
        be_put16(buf + p + 18, nl);
        be_put32(buf + p + 20, 0);
        memcpy(buf + p + DIR_ENTRY_FIXED, e->name, nl);
        p += entry_size(nl);
    }
    *size = total;
    return buf;
}

/* Write the header and make it durable (QEMU's update_header_sync). */
static int header_sync(BlockNode *bn)
{
    int r = qcow2_write_header_sync(bn);

    return r < 0 ? r : bdrv_flush_sync(file_of(bn));
}

/*
 * QEMU's update_ext_header_and_dir_in_place(): the same entries with
 * other flags, over the old directory.  The autoclear bit is off while
 * the directory is rewritten, so a crash leaves stale bitmaps, never a
 * torn directory that claims to be valid.
 */
int qcow2_bm_dir_rewrite_in_place(BlockNode *bn, GPtrArray *list)
{
    Qcow2State *s = state(bn);
    uint64_t size;
    uint8_t *buf;
    int r;

    if (!(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS) || !list->len
        || list->len != s->nb_bitmaps) {
        return -EINVAL;
    }
    buf = dir_bytes(bn, list, &size);
    if (size != s->bitmap_dir_size) {
        ioq_buf_free(buf);
        return -EINVAL;
    }
    s->autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
    r = header_sync(bn);
    if (r == 0) {
        r = qcow2_overlap_check(bn, QCOW2_OL_BITMAP_DIRECTORY,
                                s->bitmap_dir_offset, size);
    }
    if (r == 0) {
        r = bdrv_pwrite_sync(file_of(bn), s->bitmap_dir_offset, size, buf);
    }
    if (r == 0) {
        r = bdrv_flush_sync(file_of(bn));
    }
    ioq_buf_free(buf);
    if (r < 0) {
        return r;
    }
    s->autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
    return header_sync(bn);
}

/* Queue the clusters of the table at @off (@size entries) and its data. */
void qcow2_bm_free_table(BlockNode *bn, uint64_t off, uint32_t size)
{
    Qcow2State *s = state(bn);
    uint64_t bytes = (uint64_t)size * 8;
    g_autofree uint8_t *tb = NULL;

    if (!off || !size) {
        return;
    }
    tb = g_malloc(bytes);
    /* an unreadable table leaks its data clusters, as in QEMU */
    if (bdrv_pread_sync(file_of(bn), off, bytes, tb) == 0) {
        for (uint32_t i = 0; i < size; i++) {
            uint64_t e = be_get64(tb + 8 * i);

            if (!(e & BME_ENTRY_RESERVED_MASK)
                && (e & BME_ENTRY_OFFSET_MASK)
                && !((e & BME_ENTRY_OFFSET_MASK) % s->cluster_size)) {
                qcow2_free_clusters(bn, e & BME_ENTRY_OFFSET_MASK, 1,
                                    QCOW2_DISCARD_ALWAYS);
            }
        }
    }
    qcow2_free_clusters(bn, off, size_to_clusters(s, bytes),
                        QCOW2_DISCARD_ALWAYS);
}

/*
 * QEMU's update_ext_header_and_dir(): a new directory for @list (none
 * when empty), durable with everything it refers to before the header
 * points to it; the old directory is freed afterwards.
 */
int qcow2_bm_dir_replace(BlockNode *bn, GPtrArray *list)
{
    Qcow2State *s = state(bn);
    uint64_t old_off = s->bitmap_dir_offset;
    uint64_t old_size = s->bitmap_dir_size;
    uint32_t old_nb = s->nb_bitmaps;
    uint64_t old_autoclear = s->autoclear;
    uint64_t new_off = 0, new_size = 0, nclusters = 0;
    int r;

    if (list->len) {
        uint8_t *buf = dir_bytes(bn, list, &new_size);

        nclusters = size_to_clusters(s, new_size);
        new_off = qcow2_alloc_clusters(bn, nclusters, &r);
        if (new_off) {
            r = qcow2_overlap_check(bn, 0, new_off,
                                    nclusters << s->cluster_bits);
        }
        if (new_off && r == 0) {
            r = bdrv_pwrite_sync(file_of(bn), new_off,
                                 nclusters << s->cluster_bits, buf);
        }
        ioq_buf_free(buf);
        if (r == 0) {
            r = qcow2_flush_metadata_sync(bn);
        }
        if (r < 0) {
            goto fail;
        }
        s->autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
    } else {
        s->autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
    }
    s->bitmap_dir_offset = new_off;
    s->bitmap_dir_size = new_size;
    s->nb_bitmaps = list->len;
    r = header_sync(bn);
    if (r < 0) {
        s->bitmap_dir_offset = old_off;
        s->bitmap_dir_size = old_size;
        s->nb_bitmaps = old_nb;
        s->autoclear = old_autoclear;
        goto fail;
    }
    if (old_size) {
        qcow2_free_clusters(bn, old_off, size_to_clusters(s, old_size),
                            QCOW2_DISCARD_OTHER);
    }
    return 0;

fail:
    if (new_off) {
        qcow2_free_clusters(bn, new_off, nclusters, QCOW2_DISCARD_OTHER);
    }
    return r;
}
