/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util/confine.h"

static bool confined;

void fs_confine(void)
{
    confined = true;
}

bool fs_may_write(const char *path)
{
    const char *p = path;

    if (!confined) {
        return true;
    }
    if (*path == '/') {
        return false;
    }
    while (*p) {
        size_t n = strcspn(p, "/");

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            return false;
        }
        p += n;
        p += strspn(p, "/");
    }
    return true;
}

int fs_open(const char *path, int flags, mode_t mode)
{
    bool writes = (flags & O_ACCMODE) != O_RDONLY
                  || (flags & (O_CREAT | O_TRUNC));

    if (writes && !fs_may_write(path)) {
        errno = EACCES;
        return -1;
    }
    return open(path, flags, mode);
}

int fs_unlink(const char *path)
{
    if (!fs_may_write(path)) {
        errno = EACCES;
        return -1;
    }
    return unlink(path);
}
