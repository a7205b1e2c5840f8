/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -drive's I/O limits: throttling.bps-total=... and QEMU's legacy names
 * (bps=, iops_rd=, group=, ...), read and checked as QEMU 7.2 does.
 */
#ifndef SYSTEM_DRIVE_THROTTLE_H
#define SYSTEM_DRIVE_THROTTLE_H

#include <stdbool.h>

#include "block/core/throttle-groups.h"
#include "qapi/opts.h"

/* Is @key one of them (not a block option)? */
bool drive_throttle_owns(const char *key);

/* QEMU's renaming: refuses a name given along with its legacy alias. */
bool drive_throttle_check_aliases(const Opts *d, Error **errp);

/*
 * The limits @d gives, checked (*@group: throttling.group or NULL,
 * borrowed from @d); QEMU's messages.
 */
bool drive_throttle_parse(const Opts *d, ThrottleConfig *cfg,
                          const char **group, Error **errp);

/* Give @blk (drive @id) the limits, if any. */
void drive_throttle_apply(BlockBackend *blk, const char *id,
                          const ThrottleConfig *cfg, const char *group);

#endif /* SYSTEM_DRIVE_THROTTLE_H */
