/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block layer's QMP handlers and the pieces of them HMP printers and
 * other subsystems reuse.
 */
#ifndef BLOCK_QMP_QMP_BLOCK_H
#define BLOCK_QMP_QMP_BLOCK_H

#include <stdbool.h>

#include <jansson.h>

#include "block/core/block.h"
#include "qapi/dispatch.h"

/* BlockDeviceInfo of @bn (query-named-block-nodes); a new reference. */
json_t *bdrv_device_info(BlockNode *bn, bool flat);

/* BlockInfo of @blk (query-block); a new reference. */
json_t *blk_info(BlockBackend *blk);

/*
 * A drive's I/O limits (qmp-throttle.c): set them from BlockIOThrottle
 * members in @args (borrowed; "device" and "id" not looked at), the
 * drive joining @default_group when @args names none and it had no
 * limits; QEMU's checks.  blk_throttle_info adds them to query-block's
 * "inserted" @ins as QEMU shows them.
 */
bool blk_set_io_throttle(BlockBackend *blk, const json_t *args,
                         const char *default_group, Error **errp);
void blk_throttle_info(const BlockBackend *blk, json_t *ins);

extern const QapiHandler throttle_qmp_handlers[];
extern const size_t throttle_qmp_handlers_count;

extern const QapiHandler block_qmp_handlers[];
extern const size_t block_qmp_handlers_count;

/*
 * The backend a command's @args name by "device" (the backend's name) or
 * "id" (its device's), exactly one of them, as QEMU's commands on media
 * and drive limits take them.
 */
BlockBackend *qmp_get_blk(const json_t *args, Error **errp);

/*
 * Finish @reply once no node is closing any more (the image locks of
 * what a command let go of are released, as after QEMU's synchronous
 * close): with @err (taken) if set, else {}.
 */
void qmp_reply_when_closed(QapiReply *reply, Error *err);

/* Removable media (qmp-media.c): the tray and medium commands. */
extern const QapiHandler media_qmp_handlers[];
extern const size_t media_qmp_handlers_count;

/* qmp-reopen.c */
extern const QapiHandler reopen_qmp_handlers[];
extern const size_t reopen_qmp_handlers_count;

/* qmp-dirty-bitmap.c */
extern const QapiHandler dirty_bitmap_qmp_handlers[];
extern const size_t dirty_bitmap_qmp_handlers_count;

#endif /* BLOCK_QMP_QMP_BLOCK_H */
