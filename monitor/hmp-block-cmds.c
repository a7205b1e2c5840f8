/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP's short forms of block commands: block_stream, drive_mirror,
 * drive_backup and snapshot_blkdev.  Each fills in what QEMU 7.2's HMP
 * fills in (sync "top", or "full" with -f; mode "absolute-paths", or
 * "existing" with -n; a stream job named after its device, node names
 * too) and runs the QMP command, so the checks and messages are the
 * QMP command's.
 */
#include "config.h"

#include "monitor/hmp-int.h"
#include "qapi/qjson.h"

/* The members every one of them takes the same way. */
static json_t *common_args(const json_t *args, const char *file_key)
{
    json_t *q = json_object();

    json_object_set_new(q, "device", qjson_str(qjson_get_str(args, "device")));
    if (qjson_has(args, file_key)) {
        json_object_set_new(q, file_key,
                            qjson_str(qjson_get_str(args, file_key)));
    }
    if (qjson_has(args, "format")) {
        json_object_set_new(q, "format",
                            qjson_str(qjson_get_str(args, "format")));
    }
    json_object_set_new(q, "mode",
                        qjson_str(qjson_get_bool_or(args, "reuse", false)
                                  ? "existing" : "absolute-paths"));
    return q;
}

static const char *sync_mode(const json_t *args)
{
    return qjson_get_bool_or(args, "full", false) ? "full" : "top";
}

static void hmp_block_stream(HmpCall *call, const json_t *args)
{
    const char *device = qjson_get_str(args, "device");
    json_t *q = json_pack("{s:s,s:s}", "job-id", device, "device", device);

    if (qjson_has(args, "base")) {
        json_object_set_new(q, "base", qjson_str(qjson_get_str(args, "base")));
    }
    if (qjson_has(args, "speed")) {
        json_object_set_new(q, "speed",
                            json_integer(qjson_get_int(args, "speed")));
    }
    hmp_call_qmp(call, "block-stream", q);
}

static void hmp_drive_mirror(HmpCall *call, const json_t *args)
{
    json_t *q = common_args(args, "target");

    json_object_set_new(q, "sync", qjson_str(sync_mode(args)));
    json_object_set_new(q, "unmap", json_true());
    hmp_call_qmp(call, "drive-mirror", q);
}

static void hmp_drive_backup(HmpCall *call, const json_t *args)
{
    json_t *q = common_args(args, "target");

    json_object_set_new(q, "sync", qjson_str(sync_mode(args)));
    if (qjson_get_bool_or(args, "compress", false)) {
        json_object_set_new(q, "compress", json_true());
    }
    hmp_call_qmp(call, "drive-backup", q);
}

static void hmp_snapshot_blkdev(HmpCall *call, const json_t *args)
{
    /* QEMU's HMP checks this itself: the argument is optional there */
    if (!qjson_has(args, "snapshot-file")) {
        g_string_append(hmp_call_out(call),
                        "Error: Parameter 'snapshot-file' is missing\n");
        hmp_call_finish(call);
        return;
    }
    hmp_call_qmp(call, "blockdev-snapshot-sync",
                 common_args(args, "snapshot-file"));
}

const HmpHandler block_cmds_hmp_handlers[] = {
    { "block_stream", hmp_block_stream },
    { "drive_mirror", hmp_drive_mirror },
    { "drive_backup", hmp_drive_backup },
    { "snapshot_blkdev", hmp_snapshot_blkdev },
};
const size_t block_cmds_hmp_handlers_count =
    G_N_ELEMENTS(block_cmds_hmp_handlers);
