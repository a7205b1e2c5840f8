/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkdebug's config file (blkdebug-config.c), for the blkdebug driver.
 * The legacy "blkdebug:CONFIG:IMAGE" file name is parsed there too; its
 * entry point is public (block.h).
 */
#ifndef BLOCK_BLKDEBUG_CONFIG_H
#define BLOCK_BLKDEBUG_CONFIG_H

#include <stdbool.h>

#include <jansson.h>

#include "qapi/error.h"

/*
 * Read the config file at @path as QEMU does, appending each
 * "[inject-error]" group to @inject and each "[set-state]" group to
 * @set_state as BlkdebugInjectErrorOptions / BlkdebugSetStateOptions
 * objects (values typed; event and iotype names not yet checked).
 * False with QEMU's message when the file cannot be read or parsed.
 */
bool blkdebug_read_config(const char *path, json_t *inject,
                          json_t *set_state, Error **errp);

#endif /* BLOCK_BLKDEBUG_CONFIG_H */
