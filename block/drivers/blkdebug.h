/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkdebug breakpoints, for qemu-io's break, resume, remove_break and
 * wait_break.  Each function looks for a blkdebug node at @bn or below
 * it through file children.  -ENOTSUP: no blkdebug node there.
 */
#ifndef BLOCK_DRIVERS_BLKDEBUG_H
#define BLOCK_DRIVERS_BLKDEBUG_H

#include <stdbool.h>

#include "block/core/block.h"

/*
 * False for an event qmpd never reports (no such code path: compressed
 * writes, VM state...), on which a breakpoint would wait forever; true
 * for the others and for unknown names.
 */
bool blkdebug_event_supported(const char *event);

/* Hold the next request that reports @event, under @tag (one-shot). */
int blkdebug_breakpoint(BlockNode *bn, const char *event, const char *tag);

/* Release one request held under @tag; -ENOENT when none is. */
int blkdebug_resume(BlockNode *bn, const char *tag);

/* Drop breakpoints with @tag and release what they hold. */
int blkdebug_remove_breakpoint(BlockNode *bn, const char *tag);

/* Is a request held under @tag? */
bool blkdebug_is_suspended(BlockNode *bn, const char *tag);

#endif /* BLOCK_DRIVERS_BLKDEBUG_H */
