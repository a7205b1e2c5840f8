/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Named file descriptors, as QEMU's monitors keep them: getfd names the
 * descriptor a client passed over a unix socket (SCM_RIGHTS), closefd
 * closes it, and a command run on the same monitor takes it by name
 * (migrate fd:NAME).  Each monitor has its own names; the monitor that
 * runs a command right now is the "current" owner.
 */
#ifndef UTIL_FDSTORE_H
#define UTIL_FDSTORE_H

#include <stdbool.h>

/*
 * Name @fd (taken) @name for @owner; a descriptor that had the name
 * before is closed, as QEMU replaces it.  Main loop only.
 */
void fdstore_add(const void *owner, const char *name, int fd);

/* Close @owner's descriptor @name; false when it has none by that name. */
bool fdstore_close(const void *owner, const char *name);

/* Remove @owner's descriptor @name and return it (the caller's), or -1. */
int fdstore_take(const void *owner, const char *name);

/* Close every descriptor of @owner (a monitor going away). */
void fdstore_drop(const void *owner);

/*
 * The owner whose command runs now (set by the monitor around each
 * command it runs; NULL outside of one).
 */
void fdstore_set_current(const void *owner);
const void *fdstore_current(void);

#endif /* UTIL_FDSTORE_H */
