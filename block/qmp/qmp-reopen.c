/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blockdev-reopen: the list goes to core/reopen-quiesce.c, which
 * drains, flushes and reopens it; the reply waits for it.
 */
#include "config.h"

#include "block/core/block.h"
#include "block/qmp/qmp-block.h"

static void reopen_done_cb(void *opaque, Error *err)
{
    if (err) {
        qapi_reply_error(opaque, err);
    } else {
        qapi_reply_return(opaque, NULL);
    }
}

static void qmp_blockdev_reopen(const json_t *args, QapiReply *reply)
{
    bdrv_reopen_quiesced(json_incref(json_object_get(args, "options")),
                         reopen_done_cb, reply);
}

const QapiHandler reopen_qmp_handlers[] = {
    { "blockdev-reopen", NULL, qmp_blockdev_reopen },
};

const size_t reopen_qmp_handlers_count = G_N_ELEMENTS(reopen_qmp_handlers);
