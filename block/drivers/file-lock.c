/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file driver's image locks, QEMU's scheme, so that qmpd, QEMU and
 * qemu-img see one another's: an OFD read lock on byte 100+i while
 * holding permission i, on byte 200+i while not sharing it; a conflict
 * is a lock someone else holds on the matching byte of the other range.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>

#include <glib.h>

#include "block/drivers/file-lock.h"

static const char *const perm_names[] = {
    "consistent read", "write", "write unchanged", "resize",
};

#define PERM_COUNT ((int)G_N_ELEMENTS(perm_names))

int file_lock_byte(int fd, int byte, bool lock)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
        .l_type = lock ? F_RDLCK : F_UNLCK,
    };

    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Does another open file description hold a lock on @byte? */
static bool byte_taken(int fd, int byte)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
        .l_type = F_WRLCK,
    };

    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

bool file_set_locks(int fd, const char *filename, unsigned perm,
                    unsigned shared, unsigned old_perm, unsigned old_shared,
                    Error **errp)
{
    for (int i = 0; i < PERM_COUNT; i++) {
        if (((perm & (1 << i)) && file_lock_byte(fd, LOCK_PERM_BASE + i, true))
            || (!(shared & (1 << i))
                && file_lock_byte(fd, LOCK_SHARED_BASE + i, true))) {
            error_setg_errno(errp, errno, "Failed to lock byte");
            goto revert;
        }
    }
    for (int i = 0; i < PERM_COUNT; i++) {
        if ((perm & (1 << i)) && byte_taken(fd, LOCK_SHARED_BASE + i)) {
            error_setg(errp, "Failed to get \"%s\" lock", perm_names[i]);
            goto conflict;
        }
        if (!(shared & (1 << i)) && byte_taken(fd, LOCK_PERM_BASE + i)) {
            error_setg(errp, "Failed to get shared \"%s\" lock",
                       perm_names[i]);
            goto conflict;
        }
    }
    for (int i = 0; i < PERM_COUNT; i++) {
        if (!(perm & (1 << i))) {
            file_lock_byte(fd, LOCK_PERM_BASE + i, false);
        }
        if (shared & (1 << i)) {
            file_lock_byte(fd, LOCK_SHARED_BASE + i, false);
        }
    }
    return true;

conflict:
    error_append_hint(errp, "Is another process using the image [%s]?\n",
                      filename);
revert:
    for (int i = 0; i < PERM_COUNT; i++) {
        if (!(old_perm & (1 << i))) {
            file_lock_byte(fd, LOCK_PERM_BASE + i, false);
        }
        if (old_shared & (1 << i)) {
            file_lock_byte(fd, LOCK_SHARED_BASE + i, false);
        }
    }
    return false;
}
