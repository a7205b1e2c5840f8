/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 image header: the header cluster built from the node's state
 * (fixed fields, extensions in QEMU's order, the backing file name),
 * and the header extensions read at open.
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

static BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

/* Header extensions start at any header length: p may be unaligned. */
static void put32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static void put_ext(GByteArray *b, uint32_t type, const void *data,
                    uint32_t len)
{
    uint8_t h[8];
    static const uint8_t pad[8];

    put32(h, type);
    put32(h + 4, len);
    g_byte_array_append(b, h, 8);
    if (len) {
        g_byte_array_append(b, data, len);
    }
    g_byte_array_append(b, pad, (8 - len % 8) % 8);
}

/*
 * The header cluster for the current state: fixed fields, extensions
 * (backing format, the ones kept from the image, feature names when they
 * fit), end marker, backing file name.
 */
uint8_t *qcow2_header_bytes(BlockNode *bn, size_t *len)
{
    Qcow2State *s = state(bn);
    GByteArray *b = g_byte_array_new();
    uint8_t *out = ioq_buf_alloc0(s->cluster_size);
    uint8_t fixed[112] = { 0 };
    uint32_t hlen = s->version >= 3 ? 112 : 72;
    static const struct {
        uint8_t type, bit;
        const char *name;
    } features[] = {
        { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" },
        { 0, 2, "external data file" }, { 0, 3, "compression type" },
        { 0, 4, "extended L2 entries" }, { 1, 0, "lazy refcounts" },
        { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
    };
    uint8_t table[G_N_ELEMENTS(features) * 48];
    uint8_t bitmaps[24];
    const char *bfile = bn->backing_file;
    size_t need;

    put32(fixed, QCOW2_MAGIC);
    put32(fixed + 4, s->version);
    put32(fixed + 20, s->cluster_bits);
    be64_write(fixed + 24, bn->total_size);
    put32(fixed + 36, s->l1_size);
    be64_write(fixed + 40, s->l1_offset);
    be64_write(fixed + 48, s->reftable_offset);
    put32(fixed + 56, s->reftable_clusters);
    put32(fixed + 60, s->nb_snapshots);
    be64_write(fixed + 64, s->snapshots_offset);
    if (s->version >= 3) {
        be64_write(fixed + 72, s->incompat);
        be64_write(fixed + 80, s->compat);
        be64_write(fixed + 88, s->autoclear);
        put32(fixed + 96, s->refcount_order);
        put32(fixed + 100, hlen);
        fixed[104] = s->compression_type;
    }
    g_byte_array_append(b, fixed, hlen);
    if (bfile && bn->backing_format) {
        put_ext(b, QCOW2_EXT_BACKING_FORMAT, bn->backing_format,
                strlen(bn->backing_format));
    }
    /* QEMU's order: feature names, bitmaps, the unknown ones kept */
    need = b->len + 8 + sizeof(table) + 8 + (bfile ? strlen(bfile) : 0)
        + (s->nb_bitmaps ? 8 + sizeof(bitmaps) : 0);
    for (guint i = 0; i < s->kept_exts->len; i++) {
        need += 8 + align_up(g_bytes_get_size(
                                 g_ptr_array_index(s->kept_exts, i)) - 4, 8);
    }
    if (s->version >= 3 && need <= s->cluster_size) {
        memset(table, 0, sizeof(table));
        for (size_t i = 0; i < G_N_ELEMENTS(features); i++) {
            table[48 * i] = features[i].type;
            table[48 * i + 1] = features[i].bit;
            memcpy(table + 48 * i + 2, features[i].name,
                   strlen(features[i].name));
        }
        put_ext(b, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
    }
    if (s->nb_bitmaps) {
        memset(bitmaps, 0, sizeof(bitmaps));
        put32(bitmaps, s->nb_bitmaps);
        be64_write(bitmaps + 8, s->bitmap_dir_size);
        be64_write(bitmaps + 16, s->bitmap_dir_offset);
        put_ext(b, QCOW2_EXT_BITMAPS, bitmaps, sizeof(bitmaps));
    }
    for (guint i = 0; i < s->kept_exts->len; i++) {
        GBytes *e = g_ptr_array_index(s->kept_exts, i);
        gsize elen;
        const uint8_t *d = g_bytes_get_data(e, &elen);

        put_ext(b, be32_read(d), d + 4, elen - 4);
    }
    put_ext(b, QCOW2_EXT_END, NULL, 0);
    if (bfile) {
        be64_write(b->data + 8, b->len);
        put32(b->data + 16, strlen(bfile));
        g_byte_array_append(b, (const uint8_t *)bfile, strlen(bfile));
    }
    *len = b->len;
    if (b->len <= s->cluster_size) {
        memcpy(out, b->data, b->len);
    }
    g_byte_array_free(b, TRUE);
    return out;
}

void qcow2_header_write_events(BlockNode *bn)
{
    Qcow2State *s = state(bn);

    if (s->reftable_moved) {
        s->reftable_moved = false;
        bdrv_debug_event(file_of(bn), BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE,
                         NULL, NULL);
    }
}

int qcow2_write_header_sync(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    size_t len;
    uint8_t *buf = qcow2_header_bytes(bn, &len);
    int r;

    if (len > s->cluster_size) {
        ioq_buf_free(buf);
        return -ENOSPC;
    }
    qcow2_header_write_events(bn);
    r = bdrv_pwrite_sync(file_of(bn), 0, s->cluster_size, buf);
    ioq_buf_free(buf);
    if (r == 0) {
        s->header_dirty = false;
    }
    return r;
}

bool qcow2_parse_extensions(BlockNode *bn, const uint8_t *hdr,
                            uint64_t start, uint64_t limit, Error **errp)
{
    Qcow2State *s = state(bn);
    uint64_t off = start;

    while (off < limit) {
        uint32_t type, len;

        /* QEMU checks the length of every extension, the end marker's too */
        if (off + 8 > limit
            || (len = be32_read(hdr + off + 4)) > limit - off - 8) {
            error_setg(errp, "Header extension too large");
            return false;
        }
        type = be32_read(hdr + off);
        off += 8;
        if (type == QCOW2_EXT_END) {
            return true;
        }
        switch (type) {
        case QCOW2_EXT_BACKING_FORMAT:
            g_free(bn->backing_format);
            bn->backing_format = g_strndup((const char *)hdr + off, len);
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            break;              /* we write our own */
        case QCOW2_EXT_CRYPTO:
            error_setg(errp, "qmpd does not support encrypted qcow2 images");
            return false;
        case QCOW2_EXT_DATA_FILE:
            error_setg(errp, "qmpd does not support qcow2 images with an "
                       "external data file");
            return false;
        case QCOW2_EXT_BITMAPS:
            if (!qcow2_bitmaps_parse_ext(bn, hdr + off, len, errp)) {
                return false;
            }
            break;
        default: {
            uint8_t *raw = g_malloc(4 + len);

            put32(raw, type);
            memcpy(raw + 4, hdr + off, len);
            g_ptr_array_add(s->kept_exts, g_bytes_new_take(raw, 4 + len));
            break;
        }
        }
        off += align_up(len, 8);
    }
    return true;
}
