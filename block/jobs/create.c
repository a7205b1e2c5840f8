/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blockdev-create: a job of type "create" that writes a new image.
 * "file" creates the file itself (with the nocow and extent-size-hint
 * filesystem hints); "qcow2" formats an existing node
 * (given by name or inline options).  Progress is 0/1, then 1/1.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/job-int.h"
#include "qapi/qjson.h"
#include "util/confine.h"
#include "util/log.h"

typedef struct {
    Job job;
    json_t *options;
} CreateJob;

/*
 * Hints for the filesystem, given while the file is still empty (btrfs
 * takes NOCOW only then), as QEMU gives them: a filesystem without the
 * feature just says no, and the file is made all the same.  The extent
 * size hint (XFS) is asked for by default; failing to set one the user
 * asked for is worth a warning.
 */
static void set_fs_hints(int fd, bool nocow, uint32_t extsize,
                         bool extsize_given)
{
    struct fsxattr fsx;
    int attr;
    int r;

    if (nocow && ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
        attr |= FS_NOCOW_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &attr);
    }
    r = ioctl(fd, FS_IOC_FSGETXATTR, &fsx);
    if (r == 0) {
        fsx.fsx_xflags |= FS_XFLAG_EXTSIZE;
        fsx.fsx_extsize = extsize;
        r = ioctl(fd, FS_IOC_FSSETXATTR, &fsx);
    }
    if (r < 0 && extsize_given && extsize) {
        qmpd_log(LOG_WARNING, "Failed to set extent size hint: %s",
                 g_strerror(errno));
    }
}

static bool create_file(const json_t *o, Error **errp)
{
    const char *filename = qjson_get_str(o, "filename");
    const char *prealloc = qjson_get_str_or(o, "preallocation", "off");
    uint64_t size = qjson_get_uint(o, "size");
    /* QEMU reads it unsigned: a negative hint is a huge one */
    uint64_t extsize = qjson_get_int_or(o, "extent-size-hint", 1 << 20);
    bool ok = false;
    int fd;

    if (strcmp(prealloc, "off") && strcmp(prealloc, "falloc")
        && strcmp(prealloc, "full")) {
        error_setg(errp, "Unsupported preallocation mode '%s'", prealloc);
        return false;
    }
    if (extsize > UINT32_MAX) {
        error_setg(errp, "Extent size hint is too large");
        return false;
    }
    fd = fs_open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not create '%s'", filename);
        return false;
    }
    set_fs_hints(fd, qjson_get_bool_or(o, "nocow", false), extsize,
                 qjson_has(o, "extent-size-hint"));
    if (!strcmp(prealloc, "off")) {
        if (ftruncate(fd, size) < 0) {
            error_setg_errno(errp, errno, "Could not resize file");
            goto out;
        }
    } else if ((errno = posix_fallocate(fd, 0, size)) != 0) {
        error_setg_errno(errp, errno, "Could not preallocate data for the "
                         "new file");
        goto out;
    }
    ok = true;
out:
    close(fd);
    return ok;
}

static bool create_qcow2(const json_t *o, Error **errp)
{
    const json_t *file = json_object_get(o, "file");
    const char *version = qjson_get_str_or(o, "version", "v3");
    const char *prealloc = qjson_get_str_or(o, "preallocation", "off");
    BdrvCreateOpts co = {
        .size = qjson_get_uint(o, "size"),
        .cluster_size = qjson_get_uint_or(o, "cluster-size", 65536),
        .version = strcmp(version, "v2") ? 3 : 2,
        .backing_file = qjson_get_str_or(o, "backing-file", NULL),
        .backing_fmt = qjson_get_str_or(o, "backing-fmt", NULL),
        .prealloc_metadata = !strcmp(prealloc, "metadata"),
    };
    BlockNode *f;
    bool ok;

    if (qjson_has(o, "data-file") || qjson_get_bool_or(o, "data-file-raw",
                                                       false)) {
        error_setg(errp, "qmpd does not support qcow2 external data files");
        return false;
    }
    if (qjson_get_bool_or(o, "extended-l2", false)) {
        error_setg(errp, "qmpd does not support qcow2 extended L2 entries");
        return false;
    }
    if (qjson_has(o, "encrypt")) {
        error_setg(errp, "qmpd does not support encrypted qcow2 images");
        return false;
    }
    if (qjson_get_bool_or(o, "lazy-refcounts", false)) {
        error_setg(errp, "qmpd does not support lazy refcounts");
        return false;
    }
    if (qjson_get_int_or(o, "refcount-bits", 16) != 16) {
        error_setg(errp, "qmpd creates qcow2 images with 16-bit refcounts "
                   "only");
        return false;
    }
    if (!strcmp(qjson_get_str_or(o, "compression-type", "zlib"), "zstd")) {
        error_setg(errp, "qmpd supports only zlib compression in qcow2 "
                   "images");
        return false;
    }
    if (strcmp(prealloc, "off") && strcmp(prealloc, "metadata")) {
        error_setg(errp, "Unsupported preallocation mode '%s' (qmpd: off "
                   "or metadata)", prealloc);
        return false;
    }
    if (co.backing_fmt && !co.backing_file) {
        error_setg(errp, "Backing format cannot be used without backing "
                   "file");
        return false;
    }
    f = json_is_string(file) ? bdrv_lookup(json_string_value(file),
                                           json_string_value(file), errp)
                             : bdrv_open_options(file, false, errp);
    if (!f) {
        return false;
    }
    if (json_is_string(file)) {
        bdrv_ref(f);
    }
    if (f->read_only) {
        error_setg(errp, "Cannot create an image on a read-only node");
        bdrv_unref(f);
        return false;
    }
    ok = bdrv_create(f, "qcow2", &co, errp);
    bdrv_unref(f);
    return ok;
}

static void create_done_cb(void *opaque, int ret)
{
    job_completed(opaque, ret, NULL);
}

static void create_run(Job *job)
{
    CreateJob *c = (CreateJob *)job;
    const char *driver = qjson_get_str(c->options, "driver");
    Error *err = NULL;
    bool ok;

    job_progress_set_remaining(job, 1);
    if (!strcmp(driver, "file")) {
        ok = create_file(c->options, &err);
    } else if (!strcmp(driver, "qcow2")) {
        ok = create_qcow2(c->options, &err);
    } else {
        error_setg(&err, "Driver does not support blockdev-create");
        ok = false;
    }
    job_progress_update(job, 1);
    if (ok) {
        /* QEMU's job yields for its I/O: it completes after the reply */
        ioq_defer_int(create_done_cb, job, 0);
        return;
    }
    /* a failure before any I/O concludes the job before the reply */
    job_completed(job, -EINVAL, error_get_pretty(err));
    error_free(err);
}

static void create_free(Job *job)
{
    json_decref(((CreateJob *)job)->options);
}

static const JobDriver create_driver = {
    .type = JOB_TYPE_CREATE,
    .instance_size = sizeof(CreateJob),
    .run = create_run,
    .free = create_free,
};

static bool qmp_blockdev_create(const json_t *args, json_t **ret,
                                Error **errp)
{
    CreateJob *c = job_create(qjson_get_str(args, "job-id"), &create_driver,
                              true, false, errp);

    if (!c) {
        return false;
    }
    c->options = json_incref(json_object_get(args, "options"));
    job_start(&c->job);
    return true;
}

const QapiHandler create_qmp_handlers[] = {
    { "blockdev-create", qmp_blockdev_create, NULL },
};

const size_t create_qmp_handlers_count = G_N_ELEMENTS(create_qmp_handlers);
