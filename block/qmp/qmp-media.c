/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Removable media over QMP: blockdev-open-tray, blockdev-close-tray,
 * blockdev-remove-medium, blockdev-insert-medium, and the two that
 * combine them, eject (open, remove) and blockdev-change-medium (open a
 * new image, open, remove, insert, close), with QEMU 7.2's checks in
 * its order and its messages.
 *
 * A backend without a device counts as removable but has no tray: its
 * medium comes and goes at will, and the tray commands do nothing on
 * it.  A CD-ROM (ide-cd, scsi-cd) has a tray; the backend tells it
 * when its medium is loaded or unloaded and sends DEVICE_TRAY_MOVED
 * when the tray moved.  The guest could lock the tray and then answer
 * an eject request, in which case QEMU opens it only with force; qmpd's
 * emulated guest never locks it, so the tray always opens at once.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/block.h"
#include "block/jobs/blockjob.h"
#include "block/qmp/qmp-block.h"
#include "qapi/qjson.h"

/* How @args name the device in messages: its id, else the backend. */
static const char *media_name(const json_t *args)
{
    const char *id = qjson_get_str_or(args, "id", NULL);

    return id ? id : qjson_get_str(args, "device");
}

/*
 * QEMU's do_open_tray(): 0 when the tray is open (or opened), -ENOSYS
 * (with an error) for a backend without a tray, another negative errno
 * (with an error) on failure.
 */
static int open_tray(BlockBackend *blk, const char *name, Error **errp)
{
    if (!blk_dev_has_removable_media(blk)) {
        error_setg(errp, "Device '%s' is not removable", name);
        return -ENOTSUP;
    }
    if (!blk_dev_has_tray(blk)) {
        error_setg(errp, "Device '%s' does not have a tray", name);
        return -ENOSYS;
    }
    if (!blk_dev_is_tray_open(blk)) {
        blk_dev_change_media(blk, false);
    }
    return 0;
}

/* open_tray(), where a backend without a tray is no error. */
static bool open_tray_if_any(BlockBackend *blk, const char *name,
                             Error **errp)
{
    Error *err = NULL;
    int rc = open_tray(blk, name, &err);

    if (rc && rc != -ENOSYS) {
        error_propagate(errp, err);
        return false;
    }
    error_free(err);
    return true;
}

/* QEMU's blockdev_remove_medium(): the tray must be open, if any. */
static bool remove_medium(BlockBackend *blk, const char *name, Error **errp)
{
    bool has_device = blk_qdev(blk) != NULL;
    BlockNode *bn = blk_root(blk);

    if (has_device && !blk_dev_has_removable_media(blk)) {
        error_setg(errp, "Device '%s' is not removable", name);
        return false;
    }
    /* a floppy has no tray: its medium comes out as it is */
    if (has_device && blk_dev_has_tray(blk) && !blk_dev_is_tray_open(blk)) {
        error_setg(errp, "Tray of device '%s' is not open", name);
        return false;
    }
    if (!bn) {
        return true;
    }
    if (bdrv_op_is_blocked(bn, errp)) {
        return false;
    }
    blk_remove_medium(blk);
    return true;
}

/* QEMU's qmp_blockdev_insert_anon_medium(): tray open (if any), no medium. */
static bool insert_medium(BlockBackend *blk, BlockNode *bn, Error **errp)
{
    bool has_device = blk_qdev(blk) != NULL;

    if (has_device && !blk_dev_has_removable_media(blk)) {
        error_setg(errp, "Device is not removable");
        return false;
    }
    if (has_device && blk_dev_has_tray(blk) && !blk_dev_is_tray_open(blk)) {
        error_setg(errp, "Tray of the device is not open");
        return false;
    }
    if (blk_root(blk)) {
        error_setg(errp, "There already is a medium in the device");
        return false;
    }
    return blk_insert_medium(blk, bn, errp);
}

/* QEMU's qmp_blockdev_close_tray() on a backend found already. */
static bool close_tray(BlockBackend *blk, const char *name, Error **errp)
{
    if (!blk_dev_has_removable_media(blk)) {
        error_setg(errp, "Device '%s' is not removable", name);
        return false;
    }
    if (blk_dev_is_tray_open(blk)) {
        blk_dev_change_media(blk, true);
    }
    return true;
}

static bool qmp_blockdev_open_tray(const json_t *args, json_t **ret,
                                   Error **errp)
{
    BlockBackend *blk = qmp_get_blk(args, errp);

    return blk && open_tray_if_any(blk, media_name(args), errp);
}

static bool qmp_blockdev_close_tray(const json_t *args, json_t **ret,
                                    Error **errp)
{
    BlockBackend *blk = qmp_get_blk(args, errp);

    return blk && close_tray(blk, media_name(args), errp);
}

static bool blockdev_remove_medium(const json_t *args, Error **errp)
{
    BlockBackend *blk = blk_by_qdev_id(qjson_get_str(args, "id"), errp);

    return blk && remove_medium(blk, qjson_get_str(args, "id"), errp);
}

static bool qmp_blockdev_insert_medium(const json_t *args, json_t **ret,
                                       Error **errp)
{
    const char *node_name = qjson_get_str(args, "node-name");
    BlockBackend *blk = blk_by_qdev_id(qjson_get_str(args, "id"), errp);
    BlockNode *bn;

    if (!blk) {
        return false;
    }
    bn = bdrv_find_node(node_name);
    if (!bn) {
        error_setg(errp, "Node '%s' not found", node_name);
        return false;
    }
    /* a job's own backend counts too, as QEMU's bdrv_has_blk() */
    if (bn->backend_users) {
        error_setg(errp, "Node '%s' is already in use", node_name);
        return false;
    }
    return insert_medium(blk, bn, errp);
}

static bool eject(const json_t *args, Error **errp)
{
    BlockBackend *blk = qmp_get_blk(args, errp);

    return blk && open_tray_if_any(blk, media_name(args), errp)
        && remove_medium(blk, media_name(args), errp);
}

/*
 * The medium blockdev-change-medium opens: @format over the file, or the
 * format the file holds (qcow2 by its magic, else raw) as QEMU probes.
 */
static BlockNode *open_medium(const char *filename, const char *format,
                              bool read_only, Error **errp)
{
    g_autoptr(json_t) ro = json_pack("{s:b}", "read-only", read_only);

    return bdrv_open_filename(filename, format, ro, ro, false, errp);
}

static bool blockdev_change_medium(const json_t *args, Error **errp)
{
    const char *mode = qjson_get_str_or(args, "read-only-mode", "retain");
    const char *name = NULL;
    BlockBackend *blk = qmp_get_blk(args, errp);
    BlockNode *medium;
    bool read_only;
    bool ok;

    if (!blk) {
        return false;
    }
    name = media_name(args);
    /* retain: as the medium in the device now, else as before */
    if (blk_root(blk)) {
        blk_set_root_read_only(blk, blk_root(blk)->read_only);
    }
    read_only = !strcmp(mode, "retain") ? blk_root_read_only(blk)
                                        : !strcmp(mode, "read-only");
    medium = open_medium(qjson_get_str(args, "filename"),
                         qjson_get_str_or(args, "format", NULL), read_only,
                         errp);
    if (!medium) {
        return false;
    }
    ok = open_tray_if_any(blk, name, errp) && remove_medium(blk, name, errp)
        && insert_medium(blk, medium, errp) && close_tray(blk, name, errp);
    /* the backend holds its own reference on the medium now */
    bdrv_unref(medium);
    return ok;
}

/*
 * The commands that let go of a medium (or of a new one they refuse)
 * reply once it is closed, its image locks released, as QEMU's
 * synchronous close has it: a client may open the image at once.
 */
static void reply_when_closed(QapiReply *reply,
                              bool (*fn)(const json_t *, Error **),
                              const json_t *args)
{
    Error *err = NULL;

    fn(args, &err);
    qmp_reply_when_closed(reply, err);
}

static void qmp_blockdev_remove_medium(const json_t *args, QapiReply *reply)
{
    reply_when_closed(reply, blockdev_remove_medium, args);
}

static void qmp_eject(const json_t *args, QapiReply *reply)
{
    reply_when_closed(reply, eject, args);
}

static void qmp_blockdev_change_medium(const json_t *args, QapiReply *reply)
{
    reply_when_closed(reply, blockdev_change_medium, args);
}

const QapiHandler media_qmp_handlers[] = {
    { "blockdev-open-tray", qmp_blockdev_open_tray, NULL },
    { "blockdev-close-tray", qmp_blockdev_close_tray, NULL },
    { "blockdev-remove-medium", NULL, qmp_blockdev_remove_medium },
    { "blockdev-insert-medium", qmp_blockdev_insert_medium, NULL },
    { "blockdev-change-medium", NULL, qmp_blockdev_change_medium },
    { "eject", NULL, qmp_eject },
};

const size_t media_qmp_handlers_count = G_N_ELEMENTS(media_qmp_handlers);
