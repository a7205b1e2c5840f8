/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block backends: what a -drive id or a guest device refers to.  A
 * backend holds a reference on its root node, checks requests against
 * the root's length (the guest cannot reach past its disk) and keeps the
 * per-device statistics that query-blockstats reports.  Its write cache
 * setting is QEMU's enable_write_cache: off (-drive cache=writethrough or
 * directsync, a device's write-cache=off), every write through it is
 * durable on completion (BDRV_REQ_FUA).  It also holds the device error
 * policy (rerror/werror), the io-status and the BLOCK_IO_ERROR event, as
 * QEMU's BlockBackend does; holding and retrying a request and stopping
 * the guest belong to the device model.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/block.h"
#include "block/core/ioq.h"
#include "block/core/throttle-groups.h"
#include "qapi/event.h"

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
    BlockdevOnError on_read_error;
    BlockdevOnError on_write_error;
    const BlockDevOps *dev_ops;
    void *dev;
    bool qemu_io_write;         /* HMP qemu-io took "write" on it */
    bool explicit_perm;         /* an export's: @perm and @shared */
    unsigned perm;
    unsigned shared;
    /*
     * QEMU's root state: whether a medium opened for this backend with
     * read-only-mode retain is read-only.  The drive's own read-only
     * option, then the read-only-ness of each medium removed.
     */
    bool root_read_only;
    ThrottleGroupMember *tgm;   /* the drive's I/O limits, or NULL */
};

typedef struct {
    BlockBackend *blk;
    BlkIoType type;
    uint64_t off;
    uint64_t len;
    void *buf;
    int flags;
    gint64 start;
    bool account;               /* false: the device counts it */
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

static BlockBackend *blk_create(const char *name, BlockNode *root,
                                bool explicit_perm, unsigned perm,
                                Error **errp)
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
    b->on_read_error = BLOCKDEV_ON_ERROR_REPORT;
    b->on_write_error = BLOCKDEV_ON_ERROR_ENOSPC;
    b->explicit_perm = explicit_perm;
    b->perm = perm;
    b->shared = BLK_PERM_ALL;
    /* listed first: the root's permissions count the new backend */
    g_ptr_array_add(blk_all(), b);
    /* QEMU's blk_new(): no open flags, so read-only until told */
    b->root_read_only = !root || root->read_only;
    blk_set_root(b, root);
    if (root && !bdrv_refresh_perms(root, errp)) {
        blk_delete(b);
        return NULL;
    }
    return b;
}

BlockBackend *blk_new(const char *name, BlockNode *root, Error **errp)
{
    return blk_create(name, root, false, 0, errp);
}

BlockBackend *blk_new_export(BlockNode *root, bool writable, Error **errp)
{
    return blk_create("", root, true, BLK_PERM_CONSISTENT_READ
                      | (writable ? BLK_PERM_WRITE : 0), errp);
}

bool blk_explicit_perm(const BlockBackend *blk, unsigned *perm,
                       unsigned *shared)
{
    *perm = blk->perm;
    *shared = blk->shared;
    return blk->explicit_perm;
}

void blk_delete(BlockBackend *blk)
{
    blk_io_limits_disable(blk);
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

void blk_make_anonymous(BlockBackend *blk)
{
    g_free(blk->name);
    blk->name = g_strdup("");
    /* a device's backend this was goes with the device now */
    blk->auto_del = true;
}

BlockNode *blk_root(const BlockBackend *blk)
{
    return blk->root;
}

void blk_set_root(BlockBackend *blk, BlockNode *root)
{
    BlockNode *old = blk->root;

    /*
     * What the drive's limits hold back was accepted with this medium:
     * it goes to it now, as QEMU drains the drive (its limits off) before
     * the medium goes.  Held back, it would reach no medium at all.
     */
    if (!root && blk->tgm) {
        throttle_group_release(blk->tgm);
    }
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

void blk_job_hold_writer(BlockNode *bn)
{
    blk_job_hold(bn);
    bn->job_writers++;
}

void blk_job_release_writer(BlockNode *bn)
{
    g_assert(bn->job_writers > 0);
    bn->job_writers--;
    blk_job_release(bn);
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

        /* a device without id is found by its QOM path, as in QEMU */
        if ((blk->dev_id && !strcmp(blk->dev_id, id))
            || (blk->qdev && !strcmp(blk->qdev, id))) {
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

/*
 * Is @id one of the names of the device @blk is attached to: its id, or
 * its QOM path (absolute, or under /machine/peripheral as QEMU resolves
 * a relative one)?  @path is that device's QOM path.
 */
static bool qdev_names(const BlockBackend *blk, const char *path,
                       const char *id)
{
    static const char per[] = "/machine/peripheral/";

    return !strcmp(path, id)
        || (blk->dev_id && !strcmp(blk->dev_id, id))
        || (g_str_has_prefix(path, per) && !strcmp(path + strlen(per), id));
}

BlockBackend *blk_by_qdev_id(const char *id, Error **errp)
{
    static const char vb[] = "/virtio-backend";
    GPtrArray *all = blk_all();

    for (guint i = 0; i < all->len; i++) {
        BlockBackend *blk = g_ptr_array_index(all, i);
        g_autofree char *proxy = NULL;

        if (!blk->qdev) {
            continue;
        }
        if (!g_str_has_suffix(blk->qdev, vb)) {
            if (qdev_names(blk, blk->qdev, id)) {
                return blk;
            }
            continue;
        }
        /* the virtio-blk-pci proxy has no disk; its virtio-backend has */
        proxy = g_strndup(blk->qdev, strlen(blk->qdev) - strlen(vb));
        if (qdev_names(blk, proxy, id)) {
            error_setg(errp, "Device does not have a block device backend");
            return NULL;
        }
        if (!strcmp(blk->qdev, id)
            || (blk->dev_id && g_str_has_prefix(id, blk->dev_id)
                && !strcmp(id + strlen(blk->dev_id), vb))) {
            return blk;
        }
    }
    error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", id);
    return NULL;
}

void blk_set_qdev(BlockBackend *blk, const char *qdev, const char *id)
{
    g_free(blk->qdev);
    g_free(blk->dev_id);
    blk->qdev = g_strdup(qdev);
    blk->dev_id = g_strdup(id);
    /*
     * fixed when the device is attached, whatever the node does later;
     * a CD-ROM never writes, whatever its medium (QEMU's ide-cd and
     * scsi-cd take no write permission)
     */
    blk->dev_writes = qdev && blk->root && !blk->root->read_only
        && !blk_dev_has_tray(blk);
    /* a device writes through the backend: the root's locks follow */
    if (blk->root) {
        bdrv_refresh_perms(blk->root, NULL);
    }
}

bool blk_dev_writes(const BlockBackend *blk)
{
    return blk->dev_writes;
}

bool blk_iostatus_is_enabled(const BlockBackend *blk)
{
    /* QEMU's floppy (no @io here) never enables it, its disks do */
    return blk->qdev && !(blk->dev_ops && !blk->dev_ops->io)
        && (blk->on_write_error == BLOCKDEV_ON_ERROR_ENOSPC
            || blk->on_write_error == BLOCKDEV_ON_ERROR_STOP
            || blk->on_read_error == BLOCKDEV_ON_ERROR_STOP);
}

void blk_qemu_io_take_write(BlockBackend *blk)
{
    if (!blk->qemu_io_write) {
        blk->qemu_io_write = true;
        if (blk->root) {
            bdrv_refresh_perms(blk->root, NULL);
        }
    }
}

bool blk_qemu_io_wrote(const BlockBackend *blk)
{
    return blk->qemu_io_write;
}

bool blk_attach_dev(BlockBackend *blk, const char *qdev, const char *id,
                    Error **errp)
{
    blk_set_qdev(blk, qdev, id);
    if (blk->root && !bdrv_refresh_perms(blk->root, errp)) {
        blk_set_qdev(blk, NULL, NULL);
        return false;
    }
    return true;
}

const char *blk_io_status_name(const BlockBackend *blk)
{
    return blk->io_status;
}

void blk_iostatus_reset(BlockBackend *blk)
{
    blk->io_status = "ok";
}

void blk_set_on_error(BlockBackend *blk, BlockdevOnError on_read_error,
                      BlockdevOnError on_write_error)
{
    g_assert(on_read_error != BLOCKDEV_ON_ERROR_AUTO
             && on_write_error != BLOCKDEV_ON_ERROR_AUTO);
    blk->on_read_error = on_read_error;
    blk->on_write_error = on_write_error;
}

BlockdevOnError blk_get_on_error(const BlockBackend *blk, bool is_read)
{
    return is_read ? blk->on_read_error : blk->on_write_error;
}

BlockdevOnError block_on_error_parse(const char *s, BlockdevOnError dflt)
{
    static const char *const names[] = {
        "report", "ignore", "enospc", "stop", "auto"
    };

    for (size_t i = 0; s && i < G_N_ELEMENTS(names); i++) {
        if (!strcmp(s, names[i])) {
            return (BlockdevOnError)i;
        }
    }
    return dflt;
}

BlockErrorAction block_error_action_for(BlockdevOnError on_err, int error)
{
    switch (on_err) {
    case BLOCKDEV_ON_ERROR_ENOSPC:
    case BLOCKDEV_ON_ERROR_AUTO:
        return error == ENOSPC ? BLOCK_ERROR_ACTION_STOP
                               : BLOCK_ERROR_ACTION_REPORT;
    case BLOCKDEV_ON_ERROR_STOP:
        return BLOCK_ERROR_ACTION_STOP;
    case BLOCKDEV_ON_ERROR_IGNORE:
        return BLOCK_ERROR_ACTION_IGNORE;
    default:
        return BLOCK_ERROR_ACTION_REPORT;
    }
}

BlockErrorAction blk_get_error_action(const BlockBackend *blk, bool is_read,
                                      int error)
{
    return block_error_action_for(blk_get_on_error(blk, is_read), error);
}

void blk_error_action(BlockBackend *blk, BlockErrorAction action,
                      bool is_read, int error)
{
    static const char *const names[] = { "ignore", "report", "stop" };
    json_t *data;

    g_assert(error > 0);
    /* the io-status first, so that no query sees the event without it */
    if (action == BLOCK_ERROR_ACTION_STOP && blk_iostatus_is_enabled(blk)
        && !strcmp(blk->io_status, "ok")) {
        blk->io_status = error == ENOSPC ? "nospace" : "failed";
    }
    data = json_pack("{s:s,s:s,s:s,s:s}", "device", blk->name,
                     "operation", is_read ? "read" : "write",
                     "action", names[action], "reason", g_strerror(error));
    if (blk->root) {
        json_object_set_new(data, "node-name",
                            json_string(bdrv_node_name(blk->root)));
    }
    /* QEMU tells whether it was ENOSPC only where io-status is kept */
    if (blk_iostatus_is_enabled(blk)) {
        json_object_set_new(data, "nospace", json_boolean(error == ENOSPC));
    }
    qapi_event_send("BLOCK_IO_ERROR", data);
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

void blk_set_dev_ops(BlockBackend *blk, const BlockDevOps *ops, void *dev)
{
    blk->dev_ops = ops;
    blk->dev = dev;
}

/* ---- removable media ----------------------------------------------------- */

bool blk_dev_has_removable_media(const BlockBackend *blk)
{
    /* a backend no device uses may change its medium at will */
    return !blk->qdev || (blk->dev_ops && blk->dev_ops->change_media);
}

bool blk_dev_has_tray(const BlockBackend *blk)
{
    return blk->dev_ops && blk->dev_ops->is_tray_open;
}

bool blk_dev_is_tray_open(const BlockBackend *blk)
{
    return blk_dev_has_tray(blk) && blk->dev_ops->is_tray_open(blk->dev);
}

void blk_dev_change_media(BlockBackend *blk, bool load)
{
    bool was_open = blk_dev_is_tray_open(blk);

    if (!blk->dev_ops || !blk->dev_ops->change_media) {
        return;
    }
    blk->dev_ops->change_media(blk->dev, load);
    if (was_open != blk_dev_is_tray_open(blk)) {
        /* the device's id, else its QOM path, as QEMU names it */
        qapi_event_send("DEVICE_TRAY_MOVED", json_pack(
                            "{s:s,s:s,s:b}", "device", blk->name, "id",
                            blk->dev_id ? blk->dev_id : blk->qdev,
                            "tray-open", !was_open));
    }
}

bool blk_insert_medium(BlockBackend *blk, BlockNode *bn, Error **errp)
{
    g_assert(!blk->root);
    blk_set_root(blk, bn);
    /* the device's permissions meet the node's other users */
    if (!bdrv_refresh_perms(bn, errp)) {
        blk_set_root(blk, NULL);
        return false;
    }
    return true;
}

void blk_remove_medium(BlockBackend *blk)
{
    if (blk->root) {
        blk->root_read_only = blk->root->read_only;
        blk_set_root(blk, NULL);
    }
}

bool blk_root_read_only(const BlockBackend *blk)
{
    return blk->root_read_only;
}

void blk_set_root_read_only(BlockBackend *blk, bool read_only)
{
    blk->root_read_only = read_only;
}

void blk_account(BlockBackend *blk, BlkIoType type, uint64_t off,
                 uint64_t len, gint64 ns, int ret)
{
    BlockStats *st = &blk->stats;

    st->last_access_ns = g_get_monotonic_time() * 1000;
    switch (type) {
    case BLK_IO_READ:
        if (ret < 0) {
            st->failed_rd++;
        } else {
            st->rd_ops++;
            st->rd_bytes += len;
            st->rd_time_ns += ns;
        }
        break;
    case BLK_IO_WRITE:
    case BLK_IO_ZERO:
        if (ret < 0) {
            st->failed_wr++;
        } else {
            st->wr_ops++;
            st->wr_bytes += len;
            st->wr_time_ns += ns;
            st->wr_highest_offset = MAX(st->wr_highest_offset, off + len);
        }
        break;
    case BLK_IO_DISCARD:
        if (ret < 0) {
            st->failed_unmap++;
        } else {
            st->unmap_ops++;
            st->unmap_bytes += len;
            st->unmap_time_ns += ns;
        }
        break;
    case BLK_IO_FLUSH:
        if (ret < 0) {
            st->failed_flush++;
        } else {
            st->flush_ops++;
            st->flush_time_ns += ns;
        }
        break;
    }
}

static void blk_account_invalid(BlockBackend *blk, BlkIoType type)
{
    switch (type) {
    case BLK_IO_READ:
        blk->stats.invalid_rd++;
        break;
    case BLK_IO_DISCARD:
        blk->stats.invalid_unmap++;
        break;
    case BLK_IO_FLUSH:
        blk->stats.invalid_flush++;
        break;
    default:
        blk->stats.invalid_wr++;
    }
}

static void blk_done_cb(void *opaque, int ret)
{
    BlkReq *r = opaque;

    if (r->account) {
        blk_account(r->blk, r->type, r->off, r->len,
                    (g_get_monotonic_time() - r->start) * 1000, ret);
    }
    r->cb(r->opaque, ret);
    g_free(r);
}

/* The request goes to the root (once the drive's limits let it). */
static void blk_start_cb(void *opaque, int ret)
{
    BlkReq *r = opaque;
    BlockBackend *blk = r->blk;

    switch (r->type) {
    case BLK_IO_READ:
        bdrv_read(blk->root, r->off, r->len, r->buf, blk_done_cb, r);
        break;
    case BLK_IO_WRITE:
        bdrv_write(blk->root, r->off, r->len, r->buf, r->flags, blk_done_cb,
                   r);
        break;
    case BLK_IO_ZERO:
        bdrv_write_zeroes(blk->root, r->off, r->len,
                          r->flags | BDRV_REQ_FROM_BACKEND, blk_done_cb, r);
        break;
    case BLK_IO_DISCARD:
        bdrv_discard(blk->root, r->off, r->len, blk_done_cb, r);
        break;
    case BLK_IO_FLUSH:
        bdrv_flush(blk->root, blk_done_cb, r);
        break;
    }
}

/*
 * Start a request; false when it is refused (no medium, out of range,
 * misaligned) after counting it as invalid; then only a plain backend
 * request (@account: counted here) still gets @cb, with the error.
 */
static bool blk_submit(BlockBackend *blk, BlkIoType type, uint64_t off,
                       uint64_t len, void *buf, int flags, uint32_t align,
                       bool account, BdrvCb *cb, void *opaque)
{
    BlkReq *r;

    if (!blk->root) {
        if (account) {
            ioq_defer_int(cb, opaque, -ENOMEDIUM);
        }
        return false;
    }
    if (type != BLK_IO_FLUSH
        && (off > bdrv_length(blk->root)
            || len > bdrv_length(blk->root) - off
            || off % align || len % align)) {
        blk_account_invalid(blk, type);
        if (account) {
            ioq_defer_int(cb, opaque, -EIO);
        }
        return false;
    }
    r = g_new0(BlkReq, 1);
    r->blk = blk;
    r->type = type;
    r->off = off;
    r->len = len;
    r->buf = buf;
    r->flags = flags;
    r->start = g_get_monotonic_time();
    r->account = account;
    r->cb = cb;
    r->opaque = opaque;
    /* with the write cache off every write is durable on completion */
    if (!blk->write_cache) {
        r->flags |= BDRV_REQ_FUA;
    }
    /* QEMU throttles a drive's reads and writes (zeroes too) only */
    if (blk->tgm && type != BLK_IO_DISCARD && type != BLK_IO_FLUSH) {
        throttle_group_intercept(blk->tgm, type != BLK_IO_READ, len,
                                 blk_start_cb, r);
    } else {
        blk_start_cb(r, 0);
    }
    return true;
}

void blk_io(BlockBackend *blk, BlkIoType type, uint64_t off, uint64_t len,
            void *buf, int flags, BdrvCb *cb, void *opaque)
{
    blk_submit(blk, type, off, len, buf, flags, 1, true, cb, opaque);
}

bool blk_dev_submit(BlockBackend *blk, BlkIoType type, uint64_t off,
                    uint64_t len, void *buf, int flags, uint32_t align,
                    BdrvCb *cb, void *opaque)
{
    return blk_submit(blk, type, off, len, buf, flags, align, false, cb,
                      opaque);
}

void blk_dev_io(BlockBackend *blk, BlkIoType type, uint64_t off,
                uint64_t len, void *buf, int flags, BdrvCb *cb,
                void *opaque)
{
    if (blk->dev_ops && blk->dev_ops->io) {
        blk->dev_ops->io(blk->dev, type, off, len, buf, flags, cb, opaque);
    } else {
        blk_io(blk, type, off, len, buf, flags, cb, opaque);
    }
}

void blk_read(BlockBackend *blk, uint64_t off, uint64_t len, void *buf,
              BdrvCb *cb, void *opaque)
{
    blk_io(blk, BLK_IO_READ, off, len, buf, 0, cb, opaque);
}

void blk_write(BlockBackend *blk, uint64_t off, uint64_t len,
               const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    /* the request layer takes the buffer as const for writes */
    blk_io(blk, BLK_IO_WRITE, off, len, (void *)buf, flags, cb, opaque);
}

void blk_write_zeroes(BlockBackend *blk, uint64_t off, uint64_t len,
                      int flags, BdrvCb *cb, void *opaque)
{
    blk_io(blk, BLK_IO_ZERO, off, len, NULL, flags, cb, opaque);
}

void blk_discard(BlockBackend *blk, uint64_t off, uint64_t len, BdrvCb *cb,
                 void *opaque)
{
    blk_io(blk, BLK_IO_DISCARD, off, len, NULL, 0, cb, opaque);
}

void blk_flush(BlockBackend *blk, BdrvCb *cb, void *opaque)
{
    blk_io(blk, BLK_IO_FLUSH, 0, 0, NULL, 0, cb, opaque);
}

void blk_io_limits_enable(BlockBackend *blk, const char *group)
{
    g_assert(!blk->tgm);
    blk->tgm = throttle_group_register(group);
}

void blk_io_limits_disable(BlockBackend *blk)
{
    if (blk->tgm) {
        throttle_group_unregister(blk->tgm);
        blk->tgm = NULL;
    }
}

void blk_io_limits_update_group(BlockBackend *blk, const char *group)
{
    if (strcmp(throttle_group_name(throttle_group_of(blk->tgm)), group)) {
        blk_io_limits_disable(blk);
        blk_io_limits_enable(blk, group);
    }
}

ThrottleGroup *blk_io_limits_group(const BlockBackend *blk)
{
    return blk->tgm ? throttle_group_of(blk->tgm) : NULL;
}
