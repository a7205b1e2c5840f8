/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -drive's flat options as BlockdevOptions (system/drive-options.c).
 */
#ifndef SYSTEM_DRIVE_OPTIONS_H
#define SYSTEM_DRIVE_OPTIONS_H

#include <stdbool.h>

#include <jansson.h>

#include "qapi/error.h"
#include "qapi/opts.h"

/*
 * -drive's cache= shorthand: cache.direct and cache.no-flush of the
 * nodes, and the backend's write cache (cache.writeback).
 */
bool drive_cache_mode(const char *mode, bool *writeback, bool *direct,
                      bool *no_flush);

/*
 * A drive with no file and no driver is QEMU's empty drive only when no
 * block option is left over (help=on included: "-drive help"); QEMU
 * finds that opening the block, before it looks at the interface.
 */
bool drive_check_file_or_driver(const Opts *d, Error **errp);

/*
 * The BlockdevOptions (keyval strings) a -drive stands for, and in
 * @writeback its backend's write cache: cache.writeback=on|off, else
 * what cache= implies (QEMU keeps it off the nodes, which have no such
 * option).
 */
json_t *drive_to_blockdev(const Opts *d, bool *writeback, Error **errp);

/* Driverless backing options: only node names (down the chain). */
bool drive_check_backing_names(const json_t *b, Error **errp);

#endif /* SYSTEM_DRIVE_OPTIONS_H */
