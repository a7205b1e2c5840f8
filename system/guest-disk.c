/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disk model of the guest's disk devices, as QEMU's virtio-blk,
 * scsi-disk (scsi-hd, scsi-cd) and ide (ide-hd, ide-cd) have it in
 * common.  A CD-ROM also has a tray (see cd_change_media()) and may be
 * empty: the device answers its guest's requests "no medium" itself.
 *
 * Properties.  serial, logical_block_size, physical_block_size,
 * min_io_size, opt_io_size, discard_granularity, rerror and werror are
 * checked when set (QEMU's property setters, in the order given) and
 * when the device is realized (QEMU's blkconf_blocksizes() and the bus
 * rules), with QEMU's messages.  qom-get shows them as QEMU does.  The
 * block sizes shape what the guest can ask: a request whose offset or
 * length is not a multiple of the logical block size is refused as the
 * device refuses it (an I/O error for the guest, counted as invalid,
 * no error policy).  serial, min/opt_io_size and discard_granularity
 * are what the device tells the guest (IDENTIFY, VPD pages, virtio
 * config); the device itself never acts on them, in QEMU either, and
 * qmpd has no guest OS to read them, so qom-get is where they show.
 *
 * Error policy.  A failed guest request is handled as QEMU's devices
 * do (virtio_blk_handle_rw_error(), ide_handle_rw_error()): the
 * backend's policy for reads or for everything else (writes, zero
 * writes, discards, flushes) gives the action;
 *
 *   report  the guest sees the error, counted as failed;
 *   ignore  the guest sees success, counted as done;
 *   stop    the request is held, the io-status records the error, and
 *           the guest stops (run state io-error);
 *
 * and the backend sends BLOCK_IO_ERROR in every case (then STOP).  When
 * the guest runs again (cont) every held request is issued again, in
 * the order it failed; it may fail and stop the guest once more.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/core/ioq.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/guest-disk.h"
#include "system/runstate.h"

#define MIN_BLOCK_SIZE 512
#define MAX_BLOCK_SIZE (2 * 1024 * 1024)
#define DEFAULT_BLOCK_SIZE 512
#define SCSI_DISCARD_GRANULARITY 4096
#define GRANULARITY_DEFAULT UINT32_MAX  /* QEMU's -1: the device decides */

struct GuestDisk {
    const char *driver;
    const char *model;          /* QEMU's type of the disk's properties */
    const char *owner;          /* the id block size errors name */
    char *id;
    char *serial;               /* NULL: none given */
    uint32_t logical_block_size;        /* 0: the backend's (512) */
    uint32_t physical_block_size;
    uint32_t min_io_size;
    uint32_t opt_io_size;
    uint32_t discard_granularity;
    BlockdevOnError rerror;
    BlockdevOnError werror;
    BlockBackend *blk;          /* once realized */
    bool cd;                    /* ide-cd, scsi-cd: a tray, media come and go */
    bool tray_open;
    /*
     * Requests at the backend.  A disk unplugged or closed at exit while
     * some are in flight is freed by the last one's completion: the
     * block layer still answers them.
     */
    unsigned in_flight;
    bool unplugged;
};

/* A guest request in the disk model. */
typedef struct {
    GuestDisk *disk;
    BlkIoType type;
    uint64_t off;
    uint64_t len;
    void *buf;
    int flags;
    gint64 start;
    BdrvCb *cb;
    void *opaque;
} DiskReq;

static const char *const on_error_names[] = {
    [BLOCKDEV_ON_ERROR_REPORT] = "report",
    [BLOCKDEV_ON_ERROR_IGNORE] = "ignore",
    [BLOCKDEV_ON_ERROR_ENOSPC] = "enospc",
    [BLOCKDEV_ON_ERROR_STOP] = "stop",
    [BLOCKDEV_ON_ERROR_AUTO] = "auto",
};

static GQueue held = G_QUEUE_INIT;      /* DiskReq *, stopped by policy */
static bool retry_registered;

/* ---- properties ---------------------------------------------------------- */

static bool parse_size(const char *key, const char *val, uint64_t *out,
                       Error **errp)
{
    if (!opts_parse_size(val, out)) {
        error_setg(errp, "Parameter '%s' expects size", key);
        return false;
    }
    return true;
}

/* QEMU's block size property: 0 (auto) or a power of two in range. */
static bool set_block_size(GuestDisk *disk, const char *key,
                           const char *val, uint32_t *out, Error **errp)
{
    uint64_t v;

    if (!parse_size(key, val, &v, errp)) {
        return false;
    }
    if (v && (v < MIN_BLOCK_SIZE || v > MAX_BLOCK_SIZE)) {
        error_setg(errp, "Property %s.%s doesn't take value %" PRIu64
                   " (minimum: %d, maximum: %d)", disk->owner, key, v,
                   MIN_BLOCK_SIZE, MAX_BLOCK_SIZE);
        return false;
    }
    if (v & (v - 1)) {
        error_setg(errp, "Property %s.%s doesn't take value '%" PRIu64
                   "', it's not a power of 2", disk->owner, key, v);
        return false;
    }
    *out = v;
    return true;
}

/* QEMU's 32-bit size property. */
static bool set_size32(GuestDisk *disk, const char *key, const char *val,
                       uint32_t *out, Error **errp)
{
    uint64_t v;

    if (!parse_size(key, val, &v, errp)) {
        return false;
    }
    if (v > UINT32_MAX) {
        error_setg(errp, "Property %s.%s doesn't take value %" PRIu64
                   " (maximum: %" PRIu32 ")", disk->model, key, v,
                   UINT32_MAX);
        return false;
    }
    *out = v;
    return true;
}

static bool set_on_error(const char *key, const char *val,
                         BlockdevOnError *out, Error **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(on_error_names); i++) {
        if (!strcmp(val, on_error_names[i])) {
            *out = (BlockdevOnError)i;
            return true;
        }
    }
    error_setg(errp, "Parameter '%s' does not accept value '%s'", key, val);
    return false;
}

static bool set_prop(GuestDisk *d, const char *key, const char *val,
                     Error **errp)
{
    if (!strcmp(key, "serial")) {
        g_free(d->serial);
        d->serial = g_strdup(val);
        return true;
    }
    if (!strcmp(key, "logical_block_size")) {
        return set_block_size(d, key, val, &d->logical_block_size, errp);
    }
    if (!strcmp(key, "physical_block_size")) {
        return set_block_size(d, key, val, &d->physical_block_size, errp);
    }
    if (!strcmp(key, "min_io_size")) {
        return set_size32(d, key, val, &d->min_io_size, errp);
    }
    if (!strcmp(key, "opt_io_size")) {
        return set_size32(d, key, val, &d->opt_io_size, errp);
    }
    if (!strcmp(key, "discard_granularity")) {
        return set_size32(d, key, val, &d->discard_granularity, errp);
    }
    if (!strcmp(key, "rerror")) {
        return set_on_error(key, val, &d->rerror, errp);
    }
    if (!strcmp(key, "werror")) {
        return set_on_error(key, val, &d->werror, errp);
    }
    return true;
}

GuestDisk *guest_disk_new(const char *driver, const char *id,
                          const json_t *props, Error **errp)
{
    bool virtio = !strcmp(driver, "virtio-blk-pci");
    GuestDisk *d = g_new0(GuestDisk, 1);
    const char *key;
    json_t *val;

    d->driver = driver;
    d->cd = !strcmp(driver, "ide-cd") || !strcmp(driver, "scsi-cd");
    /* virtio-blk-pci's disk properties belong to its inner device */
    d->model = virtio ? "virtio-blk-device" : driver;
    d->id = g_strdup(id);
    d->owner = virtio || !id ? "" : d->id;
    d->discard_granularity = GRANULARITY_DEFAULT;
    d->rerror = BLOCKDEV_ON_ERROR_AUTO;
    d->werror = BLOCKDEV_ON_ERROR_AUTO;
    json_object_foreach((json_t *)props, key, val) {
        if (!set_prop(d, key, json_string_value(val), errp)) {
            guest_disk_free(d);
            return NULL;
        }
    }
    return d;
}

/* QEMU's blkconf_blocksizes(): the sizes against each other. */
static bool check_block_sizes(GuestDisk *d, Error **errp)
{
    if (d->logical_block_size > d->physical_block_size) {
        error_setg(errp,
                   "logical_block_size > physical_block_size not supported");
        return false;
    }
    if (d->min_io_size % d->logical_block_size) {
        error_setg(errp,
                   "min_io_size must be a multiple of logical_block_size");
        return false;
    }
    if (d->opt_io_size % d->logical_block_size) {
        error_setg(errp,
                   "opt_io_size must be a multiple of logical_block_size");
        return false;
    }
    if (d->discard_granularity != GRANULARITY_DEFAULT
        && d->discard_granularity % d->logical_block_size) {
        error_setg(errp, "discard_granularity must be a multiple of "
                   "logical_block_size");
        return false;
    }
    return true;
}

/* ---- the guest's requests ------------------------------------------------ */

static void disk_req_submit(DiskReq *r);

static void disk_req_finish(DiskReq *r, int ret)
{
    blk_account(r->disk->blk, r->type, r->off, r->len,
                (g_get_monotonic_time() - r->start) * 1000, ret);
    r->cb(r->opaque, ret);
    g_free(r);
}

static void disk_free_now(GuestDisk *disk)
{
    g_free(disk->id);
    g_free(disk->serial);
    g_free(disk);
}

static void disk_req_done_cb(void *opaque, int ret)
{
    DiskReq *r = opaque;
    GuestDisk *disk = r->disk;
    BlockBackend *blk = disk->blk;
    bool is_read = r->type == BLK_IO_READ;
    BlockErrorAction action;

    disk->in_flight--;
    if (disk->unplugged) {
        /* no device to account to or to stop for: the caller hears */
        r->cb(r->opaque, ret);
        g_free(r);
        if (!disk->in_flight) {
            disk_free_now(disk);
        }
        return;
    }
    if (ret >= 0) {
        disk_req_finish(r, ret);
        return;
    }
    action = blk_get_error_action(blk, is_read, -ret);
    if (action == BLOCK_ERROR_ACTION_STOP) {
        g_queue_push_tail(&held, r);
        blk_error_action(blk, action, is_read, -ret);
        vm_stop(RUN_STATE_IO_ERROR);
        return;
    }
    blk_error_action(blk, action, is_read, -ret);
    disk_req_finish(r, action == BLOCK_ERROR_ACTION_IGNORE ? 0 : ret);
}

static void disk_req_submit(DiskReq *r)
{
    r->start = g_get_monotonic_time();
    if (!blk_root(r->disk->blk)) {
        /* an empty drive: the device answers "no medium" itself */
        ioq_defer_int(r->cb, r->opaque, -ENOMEDIUM);
        g_free(r);
        return;
    }
    r->disk->in_flight++;
    if (!blk_dev_submit(r->disk->blk, r->type, r->off, r->len, r->buf,
                        r->flags, r->disk->logical_block_size,
                        disk_req_done_cb, r)) {
        /* an invalid request is the guest's fault: no policy applies */
        r->disk->in_flight--;
        ioq_defer_int(r->cb, r->opaque, -EIO);
        g_free(r);
    }
}

/* The guest runs again: what the stop policy held is issued again. */
static void disk_retry_cb(void *opaque, bool running)
{
    GQueue again = G_QUEUE_INIT;
    DiskReq *r;

    if (!running) {
        return;
    }
    /* a retry that fails again is held anew, after these */
    again = held;
    g_queue_init(&held);
    while ((r = g_queue_pop_head(&again))) {
        disk_req_submit(r);
    }
}

/*
 * A guest request.  A device addresses whole logical blocks (virtio-blk
 * and SCSI in units of the logical block size, IDE in 512-byte
 * sectors): anything else is refused before it reaches the backend.
 */
static void disk_io(void *dev, BlkIoType type, uint64_t off, uint64_t len,
                    void *buf, int flags, BdrvCb *cb, void *opaque)
{
    GuestDisk *disk = dev;
    DiskReq *r = g_new0(DiskReq, 1);

    r->disk = disk;
    r->type = type;
    r->off = off;
    r->len = len;
    r->buf = buf;
    r->flags = flags;
    r->cb = cb;
    r->opaque = opaque;
    disk_req_submit(r);
}

/*
 * A CD-ROM's tray (QEMU's ide_cd_change_cb(), scsi_cd_change_media_cb()):
 * loading a medium closes it, unloading opens it.  The guest could lock
 * it (PREVENT ALLOW MEDIUM REMOVAL) and then answer an eject request;
 * qmpd's emulated guest never locks it, so the tray always moves at once.
 */
static void cd_change_media(void *dev, bool load)
{
    GuestDisk *disk = dev;

    disk->tray_open = !load;
}

static bool cd_is_tray_open(void *dev)
{
    const GuestDisk *disk = dev;

    return disk->tray_open;
}

static const BlockDevOps disk_dev_ops = {
    .io = disk_io,
};

static const BlockDevOps cd_dev_ops = {
    .io = disk_io,
    .change_media = cd_change_media,
    .is_tray_open = cd_is_tray_open,
};

bool guest_disk_realize(GuestDisk *disk, BlockBackend *blk,
                        unsigned ide_number, Error **errp)
{
    bool ide = g_str_has_prefix(disk->driver, "ide-");
    uint32_t granularity = disk->discard_granularity;
    GuestDisk sizes = *disk;

    /* IDE has one discard granularity; QEMU checks it first */
    if (ide && granularity != GRANULARITY_DEFAULT && granularity
        && granularity != DEFAULT_BLOCK_SIZE) {
        error_setg(errp, "discard_granularity must be 512 for ide");
        return false;
    }
    if (ide && granularity == GRANULARITY_DEFAULT) {
        granularity = DEFAULT_BLOCK_SIZE;
    }
    /* qmpd's backends have no block sizes of their own: QEMU's 512 */
    if (!sizes.logical_block_size) {
        sizes.logical_block_size = DEFAULT_BLOCK_SIZE;
    }
    if (!sizes.physical_block_size) {
        sizes.physical_block_size = DEFAULT_BLOCK_SIZE;
    }
    sizes.discard_granularity = granularity;
    if (!check_block_sizes(&sizes, errp)) {
        return false;
    }
    if (ide && sizes.logical_block_size != DEFAULT_BLOCK_SIZE) {
        error_setg(errp, "logical_block_size must be 512 for IDE");
        return false;
    }
    if (g_str_has_prefix(disk->driver, "scsi-")
        && granularity == GRANULARITY_DEFAULT) {
        granularity = MAX(sizes.logical_block_size,
                          SCSI_DISCARD_GRANULARITY);
    }
    disk->logical_block_size = sizes.logical_block_size;
    disk->physical_block_size = sizes.physical_block_size;
    disk->discard_granularity = granularity;
    if (ide && !disk->serial) {
        disk->serial = g_strdup_printf("QM%05u", ide_number);
    }
    /* the device's policy, or the backend's where it says auto */
    blk_set_on_error(blk, disk->rerror == BLOCKDEV_ON_ERROR_AUTO
                          ? blk_get_on_error(blk, true) : disk->rerror,
                     disk->werror == BLOCKDEV_ON_ERROR_AUTO
                          ? blk_get_on_error(blk, false) : disk->werror);
    disk->blk = blk;
    blk_set_dev_ops(blk, disk->cd ? &cd_dev_ops : &disk_dev_ops, disk);
    if (!retry_registered) {
        runstate_add_notifier(disk_retry_cb, NULL);
        retry_registered = true;
    }
    return true;
}

void guest_disk_free(GuestDisk *disk)
{
    GList *l, *next;

    if (!disk) {
        return;
    }
    if (disk->blk) {
        blk_set_dev_ops(disk->blk, NULL, NULL);
    }
    for (l = held.head; l; l = next) {
        DiskReq *r = l->data;

        next = l->next;
        if (r->disk == disk) {
            g_queue_delete_link(&held, l);
            r->cb(r->opaque, -ECANCELED);
            g_free(r);
        }
    }
    if (disk->in_flight) {
        disk->unplugged = true;
        return;
    }
    disk_free_now(disk);
}

json_t *guest_disk_prop(const GuestDisk *disk, const char *name)
{
    if (!strcmp(name, "serial")) {
        /* QEMU shows a string property that was never set as "" */
        return json_string(disk->serial ? disk->serial : "");
    }
    if (!strcmp(name, "logical_block_size")) {
        return json_integer(disk->logical_block_size);
    }
    if (!strcmp(name, "physical_block_size")) {
        return json_integer(disk->physical_block_size);
    }
    if (!strcmp(name, "min_io_size")) {
        return json_integer(disk->min_io_size);
    }
    if (!strcmp(name, "opt_io_size")) {
        return json_integer(disk->opt_io_size);
    }
    if (!strcmp(name, "discard_granularity")) {
        return json_integer(disk->discard_granularity);
    }
    if (!strcmp(name, "rerror")) {
        return json_string(on_error_names[disk->rerror]);
    }
    if (!strcmp(name, "werror")) {
        return json_string(on_error_names[disk->werror]);
    }
    return NULL;
}
