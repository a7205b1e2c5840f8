/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block backends: what a -drive id or a guest device refers to.  A
 * backend holds a reference on its root node, checks requests against
 * the root's length (the guest cannot reach past its disk) and keeps the
 * per-device statistics that query-blockstats reports.  Its write cache
 * setting is QEMU's enable_write_cache: off (-drive cache=writethrough or
 * directsync, a device's write-cache=off), every write through it is
 * durable on completion (BDRV_REQ_FUA).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/block-int.h"
#include "block/block.h"
#include "block/ioq.h"

struct BlockBackend {
    char *name;
    BlockNode *root;
    char *qdev;                 /* device path, when a device uses it */
    bool dev_writes;            /* the device took write access */
    bool auto_del;              /* a -drive: goes with its device */
    char *dev_id;
    BlockStats stats;
    const char *io_status;      /* "ok", "failed", "nospace" */
    bool write_cache;           /* off: writes go down with FUA */
};

typedef struct {
    BlockBackend *blk;
    int type;
    uint64_t off;
    uint64_t len;
    gint64 start;
    BdrvCb *cb;
    void *opaque;
} BlkReq;

static GPtrArray *backends;

GPtrArray *blk_all(void)
{
    if (!backends) {
        backends = g_ptr_array_new();
    }
    return backends;
}

BlockBackend *blk_by_name(const char *name)
{
    for (guint i = 0; backends && i < backends->len; i++) {
        BlockBackend *b = g_ptr_array_index(backends, i);

        if (*b->name && !strcmp(b->name, name)) {
            return b;
        }
    }
    return NULL;
}

BlockBackend *blk_new(const char *name, BlockNode *root, Error **errp)
{
    BlockBackend *b;

    if (*name && blk_by_name(name)) {
        error_setg(errp, "Duplicate ID '%s' for drive", name);
        return NULL;
    }
    if (*name && bdrv_find_node(name)) {
        error_setg(errp, "Device name '%s' conflicts with an existing node "
                   "name", name);
        return NULL;
    }
    b = g_new0(BlockBackend, 1);
    b->name = g_strdup(name);
    b->stats.last_access_ns = -1;
    b->io_status = "ok";
    b->write_cache = true;
    blk_set_root(b, root);
    g_ptr_array_add(blk_all(), b);
    return b;
}

void blk_delete(BlockBackend *blk)
{
    g_ptr_array_remove(blk_all(), blk);
    blk_set_root(blk, NULL);
    g_free(blk->name);
    g_free(blk->qdev);
    g_free(blk->dev_id);
    g_free(blk);
}

const char *blk_name(const BlockBackend *blk)
{
    return blk->name;
}

BlockNode *blk_root(const BlockBackend *blk)
{
    return blk->root;
}

void blk_set_root(BlockBackend *blk, BlockNode *root)
{
    BlockNode *old = blk->root;

    if (root) {
        bdrv_ref(root);
        root->backend_users++;
    }
    blk->root = root;
    if (root) {
        bdrv_refresh_perms(root, NULL);
    }
    if (old) {
        old->backend_users--;
        bdrv_refresh_perms(old, NULL);
        bdrv_unref(old);
    }
}

void blk_job_hold(BlockNode *bn)
{
    bn->backend_users++;
}

void blk_job_release(BlockNode *bn)
{
    g_assert(bn->backend_users > 0);
    bn->backend_users--;
}

const char *blk_qdev(const BlockBackend *blk)
{
    return blk->qdev;
}

const char *blk_dev_id(const BlockBackend *blk)
{
    return blk->dev_id;
}

BlockBackend *blk_by_dev_id(const char *id)
{
    GPtrArray *all = blk_all();

    for (guint i = 0; i < all->len; i++) {
        BlockBackend *blk = g_ptr_array_index(all, i);

        if (blk->dev_id && !strcmp(blk->dev_id, id)) {
            return blk;
        }
    }
    return NULL;
}

void blk_set_auto_del(BlockBackend *blk, bool auto_del)
{
    blk->auto_del = auto_del;
}

bool blk_auto_del(const BlockBackend *blk)
{
    return blk->auto_del;
}

BlockBackend *blk_by_qdev_id(const char *id, Error **errp)
{
    static const char vb[] = "/virtio-backend";
    size_t n = strlen(id);
    bool inner = n > strlen(vb) && !strcmp(id + n - strlen(vb), vb);
    g_autofree char *dev = g_strndup(id, inner ? n - strlen(vb) : n);
    BlockBackend *blk = blk_by_dev_id(dev);
    bool virtio = blk && blk->qdev && g_str_has_suffix(blk->qdev, vb);

    if (blk && virtio && !inner) {
        /* the virtio-blk-pci proxy; its virtio-backend child has the disk */
        error_setg(errp, "Device does not have a block device backend");
        return NULL;
    }
    if (!blk || (inner && !virtio)) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
                  id);
        return NULL;
    }
    return blk;
}

void blk_set_qdev(BlockBackend *blk, const char *qdev, const char *id)
{
    g_free(blk->qdev);
    g_free(blk->dev_id);
    blk->qdev = g_strdup(qdev);
    blk->dev_id = g_strdup(id);
    /* fixed when the device is attached, whatever the node does later */
    blk->dev_writes = qdev && blk->root && !blk->root->read_only;
    /* a device writes through the backend: the root's locks follow */
    if (blk->root) {
        bdrv_refresh_perms(blk->root, NULL);
    }
}

bool blk_dev_writes(const BlockBackend *blk)
{
    return blk->dev_writes;
}

const char *blk_io_status_name(const BlockBackend *blk)
{
    return blk->io_status;
}

void blk_set_io_status(BlockBackend *blk, const char *status)
{
    blk->io_status = status;
}

void blk_set_write_cache(BlockBackend *blk, bool on)
{
    blk->write_cache = on;
}

bool blk_write_cache(const BlockBackend *blk)
{
    return blk->write_cache;
}

BlockStats *blk_stats(BlockBackend *blk)
{
    return &blk->stats;
}

enum { BLK_READ, BLK_WRITE, BLK_ZERO, BLK_DISCARD, BLK_FLUSH };

static void blk_done_cb(void *opaque, int ret)
{
    BlkReq *r = opaque;
    BlockStats *st = &r->blk->stats;
    gint64 ns = (g_get_monotonic_time() - r->start) * 1000;

    st->last_access_ns = g_get_monotonic_time() * 1000;
    switch (r->type) {
    case BLK_READ:
        if (ret < 0) {
            st->failed_rd++;
        } else {
            st->rd_ops++;
            st->rd_bytes += r->len;
            st->rd_time_ns += ns;
        }
        break;
    case BLK_WRITE:
    case BLK_ZERO:
        if (ret < 0) {
            st->failed_wr++;
        } else {
            st->wr_ops++;
            st->wr_bytes += r->len;
            st->wr_time_ns += ns;
            st->wr_highest_offset = MAX(st->wr_highest_offset,
                                        r->off + r->len);
        }
        break;
    case BLK_DISCARD:
        if (ret < 0) {
            st->failed_unmap++;
        } else {
            st->unmap_ops++;
            st->unmap_bytes += r->len;
            st->unmap_time_ns += ns;
        }
        break;
    case BLK_FLUSH:
        if (ret < 0) {
            st->failed_flush++;
        } else {
            st->flush_ops++;
            st->flush_time_ns += ns;
        }
        break;
    }
    r->cb(r->opaque, ret);
    g_free(r);
}

/* A request, or NULL after failing it (no medium, out of bounds). */
static BlkReq *blk_start(BlockBackend *blk, int type, uint64_t off,
                         uint64_t len, BdrvCb *cb, void *opaque)
{
    BlkReq *r;

    if (!blk->root) {
        ioq_defer_int(cb, opaque, -ENOMEDIUM);
        return NULL;
    }
    if (type != BLK_FLUSH
        && (off > bdrv_length(blk->root)
            || len > bdrv_length(blk->root) - off)) {
        switch (type) {
        case BLK_READ:
            blk->stats.invalid_rd++;
            break;
        case BLK_DISCARD:
            blk->stats.invalid_unmap++;
            break;
        default:
            blk->stats.invalid_wr++;
        }
        ioq_defer_int(cb, opaque, -EIO);
        return NULL;
    }
    r = g_new0(BlkReq, 1);
    r->blk = blk;
    r->type = type;
    r->off = off;
    r->len = len;
    r->start = g_get_monotonic_time();
    r->cb = cb;
    r->opaque = opaque;
    return r;
}

void blk_read(BlockBackend *blk, uint64_t off, uint64_t len, void *buf,
              BdrvCb *cb, void *opaque)
{
    BlkReq *r = blk_start(blk, BLK_READ, off, len, cb, opaque);

    if (r) {
        bdrv_read(blk->root, off, len, buf, blk_done_cb, r);
    }
}

void blk_write(BlockBackend *blk, uint64_t off, uint64_t len,
               const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    BlkReq *r = blk_start(blk, BLK_WRITE, off, len, cb, opaque);

    if (r) {
        bdrv_write(blk->root, off, len, buf,
                   flags | (blk->write_cache ? 0 : BDRV_REQ_FUA),
                   blk_done_cb, r);
    }
}

void blk_write_zeroes(BlockBackend *blk, uint64_t off, uint64_t len,
                      int flags, BdrvCb *cb, void *opaque)
{
    BlkReq *r = blk_start(blk, BLK_ZERO, off, len, cb, opaque);

    if (r) {
        bdrv_write_zeroes(blk->root, off, len,
                          flags | (blk->write_cache ? 0 : BDRV_REQ_FUA),
                          blk_done_cb, r);
    }
}

void blk_discard(BlockBackend *blk, uint64_t off, uint64_t len, BdrvCb *cb,
                 void *opaque)
{
    BlkReq *r = blk_start(blk, BLK_DISCARD, off, len, cb, opaque);

    if (r) {
        bdrv_discard(blk->root, off, len, blk_done_cb, r);
    }
}

void blk_flush(BlockBackend *blk, BdrvCb *cb, void *opaque)
{
    BlkReq *r = blk_start(blk, BLK_FLUSH, 0, 0, cb, opaque);

    if (r) {
        bdrv_flush(blk->root, blk_done_cb, r);
    }
}
