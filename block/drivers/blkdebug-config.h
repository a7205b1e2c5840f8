/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkdebug's options read as text or checked together (blkdebug-config.c),
 * for the blkdebug driver: the limit options and the config file.  The
 * legacy "blkdebug:CONFIG:IMAGE" file name is parsed there too; its
 * entry point is public (block.h).
 */
#ifndef BLOCK_DRIVERS_BLKDEBUG_CONFIG_H
#define BLOCK_DRIVERS_BLKDEBUG_CONFIG_H

#include <stdbool.h>

#include <jansson.h>

#include <stdint.h>

#include "block/core/block-int.h"
#include "qapi/error.h"

/* align, max-transfer, opt-write-zero, max-write-zero, opt-discard,
 * max-discard */
#define BLKDEBUG_LIMITS 6

/* The limit options' values into @v (0 when absent); a negative one is
 * refused with QEMU's message. */
bool blkdebug_read_limits(const json_t *opts, uint64_t v[BLKDEBUG_LIMITS],
                          Error **errp);

/*
 * Check @v as QEMU does, @child_align being the image child's request
 * alignment; on success @bl holds them (0: not set).
 */
bool blkdebug_check_limits(const uint64_t v[BLKDEBUG_LIMITS],
                           uint32_t child_align, BdrvLimits *bl,
                           Error **errp);

/*
 * Read the config file at @path as QEMU does, appending each
 * "[inject-error]" group to @inject and each "[set-state]" group to
 * @set_state as BlkdebugInjectErrorOptions / BlkdebugSetStateOptions
 * objects (values typed; event and iotype names not yet checked).
 * False with QEMU's message when the file cannot be read or parsed.
 */
bool blkdebug_read_config(const char *path, json_t *inject,
                          json_t *set_state, Error **errp);

#endif /* BLOCK_DRIVERS_BLKDEBUG_CONFIG_H */
