/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Creating a qcow2 image on an open, writable protocol node. */
#ifndef BLOCK_DRIVERS_QCOW2_CREATE_H
#define BLOCK_DRIVERS_QCOW2_CREATE_H

#include <stdbool.h>
#include <stdint.h>

#include "block/core/block.h"
#include "qapi/error.h"

typedef struct Qcow2CreateOpts {
    uint64_t size;
    uint32_t cluster_size;
    int version;                /* 2 or 3 */
    const char *backing_file;
    const char *backing_fmt;
    bool prealloc_metadata;
} Qcow2CreateOpts;

/* Write a new, empty image over @file's contents (control path). */
bool qcow2_create(BlockNode *file, const Qcow2CreateOpts *o, Error **errp);

#endif /* BLOCK_DRIVERS_QCOW2_CREATE_H */
