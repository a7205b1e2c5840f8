/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP's drive commands: eject, change, drive_del and commit, with QEMU
 * 7.2's checks in QEMU's order and its lines.  Some of them print their
 * failure without QEMU's "Error: " prefix, as QEMU's do.
 *
 *   - eject and change are QMP's eject and blockdev-change-medium (a
 *     CD-ROM's tray moves, a drive without a device changes its medium
 *     at will, a disk is not removable); change vnc fails as it does in
 *     QEMU without a VNC display;
 *   - drive_del deletes a drive without a device and any node as
 *     blockdev-del would; a drive a device uses loses its medium and
 *     its name, and stays with the device, empty, as in QEMU;
 *   - commit refuses once it gets past QEMU's checks: qmpd cannot empty
 *     a qcow2 image as QEMU's synchronous commit does.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"
#include "block/core/block.h"
#include "block/jobs/blockjob.h"
#include "monitor/hmp-int.h"
#include "qapi/qjson.h"

/* Print "Error: <message>" for @err (freed) and finish @call. */
static void fail(HmpCall *call, Error *err, bool prefix)
{
    g_string_append_printf(hmp_call_out(call), "%s%s\n",
                           prefix ? "Error: " : "", error_get_pretty(err));
    error_free(err);
    hmp_call_finish(call);
}

static void G_GNUC_PRINTF(3, 4) failf(HmpCall *call, bool prefix,
                                      const char *fmt, ...)
{
    Error *err = NULL;
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(&err, "%s", msg);
    fail(call, err, prefix);
}

static void hmp_eject(HmpCall *call, const json_t *args)
{
    hmp_call_qmp(call, "eject", json_pack(
                     "{s:s,s:b}", "device", qjson_get_str(args, "device"),
                     "force", qjson_get_bool_or(args, "force", false)));
}

/* QEMU's BlockdevChangeReadOnlyMode values. */
static bool read_only_mode_ok(const char *mode)
{
    return !strcmp(mode, "retain") || !strcmp(mode, "read-only")
        || !strcmp(mode, "read-write");
}

/*
 * "change vnc password [PASSWORD]": qmpd has no VNC server, so it fails
 * as QEMU's does without a VNC display; it never prompts.
 */
static void change_vnc(HmpCall *call, const json_t *args)
{
    const char *target = qjson_get_str(args, "target");

    if (qjson_has(args, "read-only-mode")) {
        failf(call, false, "Parameter 'read-only-mode' is invalid for VNC");
    } else if (strcmp(target, "passwd") && strcmp(target, "password")) {
        failf(call, false, "Expected 'password' after 'vnc'");
    } else if (!qjson_has(args, "arg")) {
        failf(call, false, "terminal does not support password prompting");
    } else {
        failf(call, true, "Could not set password");
    }
}

static void hmp_change(HmpCall *call, const json_t *args)
{
    const char *device = qjson_get_str(args, "device");
    const char *mode = qjson_get_str_or(args, "read-only-mode", "retain");
    json_t *qargs;

    if (!strcmp(device, "vnc")) {
        change_vnc(call, args);
        return;
    }
    /* QEMU's enum parse, before anything is looked up */
    if (!read_only_mode_ok(mode)) {
        failf(call, true, "invalid parameter value: %s", mode);
        return;
    }
    qargs = json_pack("{s:s,s:s,s:b}", "device", device, "filename",
                      qjson_get_str(args, "target"), "force",
                      qjson_get_bool_or(args, "force", false));
    if (qjson_has(args, "arg")) {
        json_object_set_new(qargs, "format",
                            json_string(qjson_get_str(args, "arg")));
    }
    if (qjson_has(args, "read-only-mode")) {
        json_object_set_new(qargs, "read-only-mode", json_string(mode));
    }
    hmp_call_qmp(call, "blockdev-change-medium", qargs);
}

static void hmp_drive_del(HmpCall *call, const json_t *args)
{
    const char *id = qjson_get_str(args, "id");
    BlockBackend *blk;
    Error *err = NULL;

    if (bdrv_find_node(id)) {
        /* QEMU's drive_del takes node names to blockdev-del */
        hmp_call_qmp_plain(call, "blockdev-del",
                           json_pack("{s:s}", "node-name", id));
        return;
    }
    blk = blk_by_name(id);
    if (!blk) {
        failf(call, false, "Device '%s' not found", id);
        return;
    }
    if (blk_root(blk) && bdrv_op_is_blocked(blk_root(blk), &err)) {
        fail(call, err, false);
        return;
    }
    if (blk_qdev(blk)) {
        /*
         * the device keeps its backend, empty and nameless, until it
         * goes; its further I/O must not stop the guest
         */
        blk_remove_medium(blk);
        blk_make_anonymous(blk);
        blk_set_on_error(blk, BLOCKDEV_ON_ERROR_REPORT,
                         BLOCKDEV_ON_ERROR_REPORT);
    } else {
        blk_delete(blk);
    }
    hmp_call_finish(call);
}

/*
 * QEMU's bdrv_commit() checks before it copies: ENOTSUP without a
 * backing file, EBUSY while a job uses the node.  0 when it would copy.
 */
static int commit_check(BlockNode *bn)
{
    if (!bdrv_backing(bn)) {
        return -ENOTSUP;
    }
    if (bdrv_op_is_blocked(bn, NULL) || bdrv_op_is_blocked(bdrv_backing(bn),
                                                           NULL)) {
        return -EBUSY;
    }
    return 0;
}

static void hmp_commit(HmpCall *call, const json_t *args)
{
    const char *device = qjson_get_str(args, "device");
    int ret = 0;

    if (!strcmp(device, "all")) {
        GPtrArray *all = blk_all();

        /* QEMU stops at the first drive that fails */
        for (guint i = 0; i < all->len && !ret; i++) {
            BlockNode *root = blk_root(g_ptr_array_index(all, i));

            if (root && bdrv_backing(bdrv_skip_filters(root))) {
                ret = commit_check(bdrv_skip_filters(root));
                ret = ret ? ret : 1;
            }
        }
    } else {
        BlockBackend *blk = blk_by_name(device);

        if (!blk) {
            failf(call, false, "Device '%s' not found", device);
            return;
        }
        if (!blk_root(blk)) {
            failf(call, false, "Device '%s' has no medium", device);
            return;
        }
        ret = commit_check(bdrv_skip_filters(blk_root(blk)));
        ret = ret ? ret : 1;
    }
    if (ret < 0) {
        failf(call, false, "'commit' error for '%s': %s", device,
              g_strerror(-ret));
    } else if (ret > 0) {
        failf(call, true, "qmpd cannot commit '%s' from HMP: it cannot "
              "empty the top image as QEMU does (use block-commit)", device);
    } else {
        hmp_call_finish(call);
    }
}

const HmpHandler media_hmp_handlers[] = {
    { "eject", hmp_eject },
    { "change", hmp_change },
    { "drive_del", hmp_drive_del },
    { "commit", hmp_commit },
};
const size_t media_hmp_handlers_count = G_N_ELEMENTS(media_hmp_handlers);
