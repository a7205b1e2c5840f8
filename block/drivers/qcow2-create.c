/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating qcow2 images (blockdev-create, blockdev-snapshot-sync).
 *
 * The layout is computed up front and written in one pass: header
 * (cluster 0), refcount table, refcount blocks, L1 table, and with
 * preallocation=metadata all L2 tables and data clusters, the data
 * left as holes in the file.  Every cluster in use gets refcount 1, so
 * qemu-img check finds nothing to report.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"

static void put32(uint8_t *p, uint32_t v)
{
    *(uint32_t *)p = GUINT32_TO_BE(v);
}

static void put_ext(uint8_t *hdr, size_t *off, uint32_t type,
                    const void *data, uint32_t len)
{
    put32(hdr + *off, type);
    put32(hdr + *off + 4, len);
    if (len) {
        memcpy(hdr + *off + 8, data, len);
    }
    *off += 8 + align_up(len, 8);
}

bool qcow2_create(BlockNode *file, const BdrvCreateOpts *o, Error **errp)
{
    uint32_t cb, cs;
    uint64_t l2_entries, l1_entries, l1_clusters, l2_tables = 0, data = 0;
    uint64_t rb_entries, total, rb_count, rt_clusters;
    uint64_t rt_off, rb_off, l1_off, l2_off, data_off, end;
    size_t hoff;
    uint8_t *buf = NULL;
    int r;

    if (!o->cluster_size || (o->cluster_size & (o->cluster_size - 1))
        || o->cluster_size < 512 || o->cluster_size > (2u << 20)) {
        error_setg(errp, "Cluster size must be a power of two between 512 "
                   "and 2048k");
        return false;
    }
    if (o->size % 512) {
        error_setg(errp, "Image size must be a multiple of 512 bytes");
        return false;
    }
    if (o->version != 2 && o->version != 3) {
        error_setg(errp, "Invalid compat version %d", o->version);
        return false;
    }
    if (o->backing_file && strlen(o->backing_file) > 1023) {
        error_setg(errp, "Backing file name too long");
        return false;
    }
    cs = o->cluster_size;
    cb = g_bit_storage(cs) - 1;
    l2_entries = cs / 8;
    l1_entries = (o->size + (uint64_t)cs * l2_entries - 1)
        / ((uint64_t)cs * l2_entries);
    l1_clusters = MAX(1, (l1_entries * 8 + cs - 1) / cs);
    if (o->prealloc_metadata) {
        l2_tables = l1_entries;
        data = (o->size + cs - 1) / cs;
    }
    rb_entries = (uint64_t)cs * 8 / 16;

    /* refcount blocks describe themselves and the table: find a fixed point */
    rt_clusters = 1;
    rb_count = 1;
    for (;;) {
        total = 1 + rt_clusters + rb_count + l1_clusters + l2_tables + data;
        uint64_t need_rb = (total + rb_entries - 1) / rb_entries;
        uint64_t need_rt = MAX(1, (need_rb * 8 + cs - 1) / cs);

        if (need_rb == rb_count && need_rt == rt_clusters) {
            break;
        }
        rb_count = need_rb;
        rt_clusters = need_rt;
    }
    rt_off = cs;
    rb_off = rt_off + rt_clusters * cs;
    l1_off = rb_off + rb_count * cs;
    l2_off = l1_off + l1_clusters * cs;
    data_off = l2_off + l2_tables * cs;
    end = data_off + data * cs;

    /* header */
    buf = ioq_buf_alloc0(cs);
    put32(buf, QCOW2_MAGIC);
    put32(buf + 4, o->version);
    put32(buf + 20, cb);
    be64_write(buf + 24, o->size);
    put32(buf + 36, l1_entries);
    be64_write(buf + 40, l1_off);
    be64_write(buf + 48, rt_off);
    put32(buf + 56, rt_clusters);
    if (o->version == 3) {
        put32(buf + 96, 4);     /* 16-bit refcounts */
        put32(buf + 100, 112);
        hoff = 112;
    } else {
        hoff = 72;
    }
    if (o->backing_file && o->backing_fmt) {
        put_ext(buf, &hoff, QCOW2_EXT_BACKING_FORMAT, o->backing_fmt,
                strlen(o->backing_fmt));
    }
    put_ext(buf, &hoff, QCOW2_EXT_END, NULL, 0);
    if (o->backing_file) {
        size_t blen = strlen(o->backing_file);

        if (hoff + blen > cs) {
            error_setg(errp, "Backing file name too long");
            goto fail;
        }
        be64_write(buf + 8, hoff);
        put32(buf + 16, blen);
        memcpy(buf + hoff, o->backing_file, blen);
    }
    r = bdrv_pwrite_sync(file, 0, cs, buf);
    if (r < 0) {
        goto io_fail;
    }
    ioq_buf_free(buf);

    /* refcount table */
    buf = ioq_buf_alloc0(rt_clusters * cs);
    for (uint64_t i = 0; i < rb_count; i++) {
        be64_write(buf + 8 * i, rb_off + i * cs);
    }
    r = bdrv_pwrite_sync(file, rt_off, rt_clusters * cs, buf);
    if (r < 0) {
        goto io_fail;
    }
    ioq_buf_free(buf);

    /* refcount blocks: every cluster up to the end is in use */
    buf = ioq_buf_alloc0(rb_count * cs);
    for (uint64_t i = 0; i < total; i++) {
        ((uint16_t *)buf)[i] = GUINT16_TO_BE(1);
    }
    r = bdrv_pwrite_sync(file, rb_off, rb_count * cs, buf);
    if (r < 0) {
        goto io_fail;
    }
    ioq_buf_free(buf);

    /* L1 and, preallocated, L2 tables */
    buf = ioq_buf_alloc0(l1_clusters * cs);
    for (uint64_t i = 0; i < l2_tables; i++) {
        be64_write(buf + 8 * i, (l2_off + i * cs) | QCOW2_OFLAG_COPIED);
    }
    r = bdrv_pwrite_sync(file, l1_off, l1_clusters * cs, buf);
    if (r < 0) {
        goto io_fail;
    }
    ioq_buf_free(buf);
    buf = NULL;
    for (uint64_t t = 0; t < l2_tables; t++) {
        uint8_t *l2 = ioq_buf_alloc0(cs);

        for (uint64_t i = 0; i < l2_entries; i++) {
            uint64_t c = t * l2_entries + i;

            if (c < data) {
                be64_write(l2 + 8 * i, (data_off + c * cs)
                           | QCOW2_OFLAG_COPIED);
            }
        }
        r = bdrv_pwrite_sync(file, l2_off + t * cs, cs, l2);
        ioq_buf_free(l2);
        if (r < 0) {
            goto io_fail;
        }
    }
    if (file->drv->truncate && !file->drv->truncate(file, end, errp)) {
        return false;
    }
    r = bdrv_flush_sync(file);
    if (r < 0) {
        goto io_fail;
    }
    return true;

io_fail:
    error_setg_errno(errp, -r, "Could not write qcow2 image");
fail:
    ioq_buf_free(buf);
    return false;
}
