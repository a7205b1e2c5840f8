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

#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"
#include "util/log.h"

#define BME_MAX_BITMAPS 65535u
#define BME_MAX_DIR_SIZE (1024u * BME_MAX_BITMAPS)
#define BME_MAX_TABLE_SIZE 0x8000000u
#define BME_MAX_PHYS_SIZE 0x20000000u
#define BME_MIN_GRANULARITY_BITS 9
#define BME_MAX_GRANULARITY_BITS 31
#define BME_MAX_NAME_SIZE 1023u
#define BME_FLAG_IN_USE (1u << 0)
#define BME_FLAG_AUTO (1u << 1)
#define BME_RESERVED_FLAGS 0xfffffffcu
#define BME_ENTRY_RESERVED_MASK 0xff000000000001feull
#define BME_ENTRY_OFFSET_MASK 0x00fffffffffffe00ull
#define BME_ENTRY_ALL_ONES 1ull
#define BT_DIRTY_TRACKING_BITMAP 1
#define DIR_ENTRY_FIXED 24

/* A directory entry, and the in-memory bitmap it is loaded into or
 * stored from. */
typedef struct {
    uint64_t table_offset;
    uint32_t table_size;
    uint32_t flags;
    uint8_t gbits;
    char *name;
    DirtyBitmap *bm;
} BmEntry;

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

static void wr16(uint8_t *p, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    memcpy(p, &v, 2);
}

static void wr32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, 8);
}

static void entry_free(gpointer p)
{
    BmEntry *e = p;

    g_free(e->name);
    g_free(e);
}

static uint64_t entry_size(size_t name_len)
{
    return align_up(DIR_ENTRY_FIXED + name_len, 8);
}

/* QEMU's bdrv_getlength(): what a bitmap of the node covers. */
static uint64_t node_len(BlockNode *bn)
{
    return align_up(bdrv_length(bn), 512);
}

/* Bytes of serialized bitmap for @len bytes at 2^@gbits granularity. */
static uint64_t bitmap_bytes(uint64_t len, unsigned gbits)
{
    uint64_t granules = (len + (1ull << gbits) - 1) >> gbits;

    return (granules + 7) / 8;
}

static BmEntry *find_entry(GPtrArray *list, const char *name)
{
    for (guint i = 0; i < list->len; i++) {
        BmEntry *e = g_ptr_array_index(list, i);

        if (!strcmp(e->name, name)) {
            return e;
        }
    }
    return NULL;
}

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
    if (rd32(data + 4) != 0) {
        error_setg(errp, "bitmaps_ext: Reserved field is not zero");
        return false;
    }
    nb = rd32(data);
    dsize = rd64(data + 8);
    doff = rd64(data + 16);
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

static GPtrArray *dir_load(BlockNode *bn, Error **errp)
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
        extra = rd32(d + 20);
        if (p + entry_size((uint64_t)name_size + extra) > size) {
            goto broken;
        }
        if (extra) {
            error_setg(errp, "Bitmap extra data is not supported");
            return NULL;
        }
        e = g_new0(BmEntry, 1);
        e->table_offset = rd64(d);
        e->table_size = rd32(d + 8);
        e->flags = rd32(d + 12);
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

        wr64(buf + p, e->table_offset);
        wr32(buf + p + 8, e->table_size);
        wr32(buf + p + 12, e->flags);
        buf[p + 16] = BT_DIRTY_TRACKING_BITMAP;
        buf[p + 17] = e->gbits;
        wr16(buf + p + 18, nl);
        wr32(buf + p + 20, 0);
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
static int dir_rewrite_in_place(BlockNode *bn, GPtrArray *list)
{
    Qcow2State *s = state(bn);
    g_autofree uint8_t *unused = NULL;
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
static void free_table(BlockNode *bn, uint64_t off, uint32_t size)
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
            uint64_t e = rd64(tb + 8 * i);

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
static int dir_replace(BlockNode *bn, GPtrArray *list)
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
        uint64_t t = rd64(tb + 8 * i);
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
        uint64_t t = rd64(tb + 8 * i);
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
        wr64(buf + 8 * i, tb[i]);
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
    list = dir_load(bn, errp);
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
    if (update && !bn->read_only) {
        r = dir_rewrite_in_place(bn, list);
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
    list = dir_load(bn, errp);
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
        r = dir_rewrite_in_place(bn, list);
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
    list = s->nb_bitmaps ? dir_load(bn, errp)
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
        r = dir_replace(bn, list);
        if (r < 0) {
            error_setg_errno(errp, -r, "Failed to update bitmap extension");
            goto fail;
        }
        for (guint i = 0; i < dropped->len; i += 2) {
            free_table(bn, g_array_index(dropped, uint64_t, i),
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
    list = dir_load(bn, errp);
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
    r = dir_replace(bn, list);
    if (r < 0) {
        error_setg_errno(errp, -r, "Failed to update bitmap extension");
        return r;
    }
    free_table(bn, off, size);
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
    list = dir_load(bn, errp);
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
