/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The file driver's image locks (file-lock.c), for file.c only. */
#ifndef BLOCK_DRIVERS_FILE_LOCK_H
#define BLOCK_DRIVERS_FILE_LOCK_H

#include <stdbool.h>

#include "qapi/error.h"

#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200

/* Take (@lock) or release the OFD read lock on @byte; 0 or -errno. */
int file_lock_byte(int fd, int byte, bool lock);

/*
 * Hold lock bytes for @perm and for what @shared does not share, on @fd;
 * fail if another process holds a conflicting byte (QEMU's messages).
 * Bytes no longer needed are released.  On failure the locks are those
 * of (@old_perm, @old_shared) again.
 */
bool file_set_locks(int fd, const char *filename, unsigned perm,
                    unsigned shared, unsigned old_perm, unsigned old_shared,
                    Error **errp);

#endif /* BLOCK_DRIVERS_FILE_LOCK_H */
