/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP's short forms of block commands.  Each fills in what QEMU 7.2's
 * HMP fills in (block_stream: a job named after its device, node names
 * too) and runs the QMP command, so the checks and messages are the
 * QMP command's.
 */
#include "config.h"

#include "monitor/hmp-int.h"
#include "qapi/qjson.h"

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

const HmpHandler block_cmds_hmp_handlers[] = {
    { "block_stream", hmp_block_stream },
};
const size_t block_cmds_hmp_handlers_count =
    G_N_ELEMENTS(block_cmds_hmp_handlers);
