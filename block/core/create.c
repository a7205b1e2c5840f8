/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating images: the plain file a format is written into, and the
 * format itself through its driver's BlockDriver.create (blockdev-
 * create's job, drive-mirror and drive-backup targets, snapshot
 * overlays).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block/core/block-int.h"
#include "qapi/qjson.h"
#include "util/confine.h"

bool bdrv_create_file(const char *filename, uint64_t size, Error **errp)
{
    int fd = fs_open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not create '%s'", filename);
        return false;
    }
    if (ftruncate(fd, size) < 0) {
        error_setg_errno(errp, errno, "Could not resize file");
        close(fd);
        return false;
    }
    close(fd);
    return true;
}

bool bdrv_create(BlockNode *file, const char *format,
                 const BdrvCreateOpts *o, Error **errp)
{
    const BlockDriver *drv = bdrv_find_driver(format);

    if (!drv || !drv->create) {
        error_setg(errp, "Driver '%s' does not support image creation",
                   format);
        return false;
    }
    return drv->create(file, o, errp);
}

/*
 * QEMU's bdrv_img_create() for the formats qmpd writes: the target image
 * of a drive-mirror or drive-backup job (@what: "mirror", "backup").
 */
bool bdrv_img_create(const char *what, const char *filename,
                     const char *format, uint64_t size, BlockNode *backing,
                     Error **errp)
{
    g_autoptr(json_t) fo = NULL;
    const BlockDriver *drv = bdrv_find_driver(format);
    BlockNode *f;
    bool ok;

    if (!drv || !strcmp(format, "file") || drv->is_filter) {
        error_setg(errp, "Unknown file format '%s'", format);
        return false;
    }
    if (bdrv_filename_is_blkdebug(filename)) {
        error_setg(errp, "Protocol driver 'blkdebug' does not support image "
                   "creation");
        return false;
    }
    if (!strcmp(format, "raw")) {
        if (backing) {
            error_setg(errp, "Backing file not supported for file format "
                       "'raw'");
            return false;
        }
        /* QEMU's bdrv_img_create() says what it makes, on stdout */
        printf("Formatting '%s', fmt=raw size=%" PRIu64 "\n", filename,
               size);
        fflush(stdout);
        return bdrv_create_file(filename, size, errp);
    }
    if (strcmp(format, "qcow2")) {
        error_setg(errp, "qmpd creates %s targets in qcow2 or raw "
                   "format only", what);
        return false;
    }
    printf("Formatting '%s', fmt=qcow2 cluster_size=65536 extended_l2=off "
           "compression_type=zlib size=%" PRIu64, filename, size);
    if (backing) {
        printf(" backing_file=%s backing_fmt=%s", bdrv_filename(backing),
               bdrv_driver_name(backing));
    }
    printf(" lazy_refcounts=off refcount_bits=16\n");
    fflush(stdout);
    if (!bdrv_create_file(filename, 0, errp)) {
        return false;
    }
    fo = json_pack("{s:s,s:s}", "driver", "file", "filename", filename);
    f = bdrv_open_options(fo, false, errp);
    if (!f) {
        return false;
    }
    {
        BdrvCreateOpts co = {
            .size = size, .cluster_size = 65536, .version = 3,
            .backing_file = backing ? bdrv_filename(backing) : NULL,
            .backing_fmt = backing ? bdrv_driver_name(backing) : NULL,
        };

        ok = bdrv_create(f, "qcow2", &co, errp);
    }
    bdrv_unref(f);
    return ok;
}
