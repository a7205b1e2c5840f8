/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 metadata overlap checks and corruption signalling, as QEMU's.
 *
 * Before a write reaches the file (guest data, copy on write, L2 tables,
 * refcount blocks, the L1 and refcount tables, bitmap clusters) its
 * host range is compared with the metadata the node's overlap-check
 * option watches: the header cluster, the active L1 table, the refcount
 * table and the bitmap directory ("constant": known without I/O), plus
 * every L2 table the L1 table points to and every refcount block
 * ("cached", the default).  Only a corrupt image makes them meet: an
 * L2 entry pointing into metadata, a refcount block counted twice.
 * Writing anyway would destroy metadata, so the write fails with EIO,
 * the image is marked corrupt (the incompatible "corrupt" bit: QEMU
 * and qmpd then refuse to open it read-write until qemu-img check -r
 * repairs it), BLOCK_IMAGE_CORRUPTED is sent, and the node stops doing
 * I/O at all (reads and writes fail with ENOMEDIUM, as QEMU's node
 * without a driver).
 *
 * qmpd writes no image that has internal snapshots, so the snapshot
 * table and inactive L1/L2 checks never have anything to compare.
 */
#include "config.h"

#include <stdarg.h>

#include "block/drivers/qcow2.h"
#include "qapi/event.h"
#include "qapi/qjson.h"
#include "util/log.h"

static const char *const ol_names[QCOW2_OL_BITS] = {
    "qcow2_header", "active L1 table", "active L2 table", "refcount table",
    "refcount block", "snapshot table", "inactive L1 table",
    "inactive L2 table", "bitmap directory",
};

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static bool meets(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

/* The first kind of metadata in @chk that [@off, +@len) touches. */
static unsigned overlapping(const Qcow2State *s, unsigned chk, uint64_t off,
                            uint64_t len)
{
    uint64_t cmask = s->cluster_size - 1;

    if ((chk & QCOW2_OL_MAIN_HEADER) && off < s->cluster_size) {
        return QCOW2_OL_MAIN_HEADER;
    }
    /* whole clusters: metadata never shares one with anything */
    len = align_up((off & cmask) + len, s->cluster_size);
    off &= ~cmask;
    if ((chk & QCOW2_OL_ACTIVE_L1)
        && meets(off, len, s->l1_offset, (uint64_t)s->l1_size * 8)) {
        return QCOW2_OL_ACTIVE_L1;
    }
    if ((chk & QCOW2_OL_REFCOUNT_TABLE)
        && meets(off, len, s->reftable_offset,
                 (uint64_t)s->reftable_clusters * s->cluster_size)) {
        return QCOW2_OL_REFCOUNT_TABLE;
    }
    if ((chk & QCOW2_OL_BITMAP_DIRECTORY)
        && (s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)
        && meets(off, len, s->bitmap_dir_offset, s->bitmap_dir_size)) {
        return QCOW2_OL_BITMAP_DIRECTORY;
    }
    if (chk & QCOW2_OL_ACTIVE_L2) {
        for (uint32_t i = 0; i < s->l1_size; i++) {
            uint64_t l2 = s->l1[i] & L1E_OFFSET_MASK;

            if (l2 && meets(off, len, l2, s->cluster_size)) {
                return QCOW2_OL_ACTIVE_L2;
            }
        }
    }
    if (chk & QCOW2_OL_REFCOUNT_BLOCK) {
        for (uint32_t i = 0; i < s->reftable_used; i++) {
            if (s->reftable[i]
                && meets(off, len, s->reftable[i], s->cluster_size)) {
                return QCOW2_OL_REFCOUNT_BLOCK;
            }
        }
    }
    return 0;
}

int qcow2_overlap_check(BlockNode *bn, unsigned ign, uint64_t off,
                        uint64_t len)
{
    Qcow2State *s = state(bn);
    unsigned hit;

    if (s->dead) {
        return -ENOMEDIUM;
    }
    hit = overlapping(s, s->opts.overlap_check & ~ign, off, len);
    if (!hit || !len) {
        return 0;
    }
    qcow2_signal_corruption(bn, true, off, len, "Preventing invalid write "
                            "on metadata (overlaps with %s)",
                            ol_names[__builtin_ctz(hit)]);
    return -EIO;
}

/* The backend the node is the root of, as QEMU names the device. */
static const char *device_name(BlockNode *bn)
{
    GPtrArray *all = blk_all();

    for (guint i = 0; i < all->len; i++) {
        BlockBackend *blk = g_ptr_array_index(all, i);

        if (blk_root(blk) == bn) {
            return blk_name(blk);
        }
    }
    return "";
}

/*
 * Only the corrupt bit changes on disk: the rest of the header in memory
 * may point to tables not written yet.
 */
static void mark_corrupt(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    uint8_t field[8];

    s->incompat |= QCOW2_INCOMPAT_CORRUPT;
    if (s->version < 3) {
        return;                 /* no field for it in a v2 header */
    }
    be64_write(field, s->incompat);
    if (bdrv_pwrite_sync(bn->file->child, 72, sizeof(field), field) < 0
        || bdrv_flush_sync(bn->file->child) < 0) {
        qmpd_log(LOG_WARNING, "qcow2: could not mark node '%s' corrupt on "
                 "disk", bn->node_name);
    }
}

void qcow2_signal_corruption(BlockNode *bn, bool fatal, int64_t off,
                             int64_t size, const char *fmt, ...)
{
    Qcow2State *s = state(bn);
    g_autofree char *msg = NULL;
    json_t *data;
    va_list ap;

    fatal = fatal && !bn->read_only;
    if (s->signaled_corruption
        && (!fatal || (s->incompat & QCOW2_INCOMPAT_CORRUPT))) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (fatal) {
        qmpd_log(LOG_ERR, "qcow2: Marking image as corrupt: %s; further "
                 "corruption events will be suppressed", msg);
    } else {
        qmpd_log(LOG_ERR, "qcow2: Image is corrupt: %s; further non-fatal "
                 "corruption events will be suppressed", msg);
    }
    data = json_pack("{s:s,s:s,s:s,s:b}", "device", device_name(bn),
                     "node-name", bn->node_name, "msg", msg, "fatal", fatal);
    if (off >= 0) {
        json_object_set_new(data, "offset", json_integer(off));
    }
    if (size >= 0) {
        json_object_set_new(data, "size", json_integer(size));
    }
    qapi_event_send("BLOCK_IMAGE_CORRUPTED", data);
    if (fatal) {
        mark_corrupt(bn);
        s->dead = true;
    }
    s->signaled_corruption = true;
}
