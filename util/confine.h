/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A process-wide confinement of what qmpd may create, overwrite or
 * remove: the fuzz targets switch it on, so input of the fuzzer's making
 * (blockdev-create of /etc/x, a socket chardev at an existing file's
 * path, an image opened read-write anywhere) stays inside their scratch
 * directory.  Off, every call here is the plain system call.
 */
#ifndef UTIL_CONFINE_H
#define UTIL_CONFINE_H

#include <stdbool.h>
#include <sys/types.h>

/* From now on only relative paths without '..' may be written. */
void fs_confine(void);

/* May @path be created, written, replaced or removed? */
bool fs_may_write(const char *path);

/* open(2) and unlink(2) that fail with EACCES outside the confinement
 * (open only when it would write or create). */
int fs_open(const char *path, int flags, mode_t mode);
int fs_unlink(const char *path);

#endif
