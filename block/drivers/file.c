/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "file" protocol driver: a POSIX file or block device.
 *
 * I/O: with cache.direct=on the file is opened O_DIRECT and served by
 * libaio (aio=native) or the thread pool (aio=threads); otherwise by the
 * thread pool, since libaio on buffered files blocks in io_submit().
 * O_DIRECT needs offset, length and memory aligned to the device's
 * logical block size: unaligned reads go through a bounce buffer, and an
 * unaligned write becomes a read-modify-write of the aligned blocks it
 * touches, serialised against every overlapping write so that no update
 * is lost.
 *
 * Image locks follow QEMU's scheme (file-lock.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/drivers/file-lock.h"
#include "qapi/qjson.h"
#include "util/confine.h"


typedef struct {
    uint64_t start;
    uint64_t end;
    bool rmw;
} Range;

typedef struct PendingWrite PendingWrite;

typedef struct {
    int fd;
    bool native;            /* libaio; else the thread pool */
    unsigned max_batch;     /* aio-max-batch: 0, the engine's default */
    uint32_t align;         /* 1 when not O_DIRECT */
    bool locking;
    uint64_t eof;           /* the file's size, with writes submitted */
    unsigned perm;          /* what the parents use (lock bytes held) */
    unsigned shared;        /* what they let others do */
    GPtrArray *writes;      /* Range * in flight (direct mode) */
    GQueue *waiting;        /* PendingWrite * held by an overlap */
    bool extending;         /* an extending write is in the pool */
    GQueue growers;         /* Grow *: extending writes waiting for it */
    uint64_t flushed_gen;   /* bn->write_gen the last fdatasync covered */
    /* the last stretch lseek() found to be data: [data_start, data_end) */
    uint64_t data_start, data_end;
} FileState;

/*
 * Block status remembers the last data stretch it found (QEMU's
 * block-status cache): an NBD export asks before every structured read,
 * and two lseek()s per 4K read were two of its nine syscalls.
 * Only a hole punched here can turn data into zeroes (a write never
 * does), so zeroing and discarding forget the stretch; one punched by
 * another process would only be reported as data, which is never wrong.
 */
static void forget_data(FileState *s)
{
    s->data_start = s->data_end = 0;
}

static bool file_set_perm(BlockNode *bn, unsigned perm, unsigned shared,
                          Error **errp)
{
    FileState *s = bn->opaque;

    if (!s->locking) {
        return true;
    }
    if (!file_set_locks(s->fd, qjson_get_str(bn->options, "filename"),
                        perm, shared, s->perm, s->shared, errp)) {
        return false;
    }
    s->perm = perm;
    s->shared = shared;
    return true;
}

/* ---- opening --------------------------------------------------------- */

static uint32_t probe_alignment(int fd, bool direct)
{
    struct stat st;
    void *buf;
    uint32_t align = 4096;
    int sector;

    if (!direct) {
        return 1;
    }
    if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)
        && ioctl(fd, BLKSSZGET, &sector) == 0 && sector > 0) {
        return sector;
    }
    buf = ioq_buf_alloc(4096);
    /* a 512-byte read works only where 512 is the alignment */
    if (pread(fd, buf, 512, 0) > 0) {
        align = 512;
    }
    ioq_buf_free(buf);
    return align;
}

/*
 * Only a regular file or a block device is an image: QEMU's file driver
 * takes regular files (its host_device driver, which qmpd does not have,
 * takes block devices, so this one does).  A FIFO, a directory or a
 * character device such as /dev/zero would be a 0-byte node that
 * silently reads nothing.  The size is what lseek() finds, as QEMU's:
 * a file whose end cannot be found (/proc/self/mem) is refused too.
 */
static bool fd_size(int fd, const char *filename, uint64_t *size,
                    Error **errp)
{
    struct stat st;
    off_t end;

    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "Could not stat '%s'", filename);
        return false;
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, size) < 0) {
            error_setg_errno(errp, errno, "Could not refresh total sector "
                             "count");
            return false;
        }
        return true;
    }
    if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "'file' driver requires '%s' to be a regular file",
                   filename);
        return false;
    }
    end = lseek(fd, 0, SEEK_END);
    if (end < 0) {
        error_setg_errno(errp, errno, "Could not refresh total sector count");
        return false;
    }
    *size = end;
    return true;
}

/*
 * QEMU drops the host page cache when an incoming migration hands the
 * image over (and can check it did); qmpd takes no such hand-over, so
 * only the defaults mean what they say.
 */
static bool check_cache_drop(const json_t *opts, Error **errp)
{
    if (!qjson_get_bool_or(opts, "drop-cache", true)) {
        error_setg(errp, "drop-cache=off is not supported by qmpd");
        return false;
    }
    if (qjson_get_bool_or(opts, "x-check-cache-dropped", false)) {
        error_setg(errp, "x-check-cache-dropped is not supported by qmpd");
        return false;
    }
    return true;
}

static bool file_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    FileState *s = bn->opaque;
    const char *filename = qjson_get_str(opts, "filename");
    const char *aio = qjson_get_str_or(opts, "aio", "threads");
    const char *locking = qjson_get_str_or(opts, "locking", "auto");
    bool auto_ro = qjson_get_bool_or(opts, "auto-read-only", false);
    int flags = O_CLOEXEC | (bn->cache_direct ? O_DIRECT : 0);
    uint64_t size;
    struct stat st;

    if (qjson_has(opts, "pr-manager")) {
        error_setg(errp, "pr-manager is not supported by qmpd");
        return false;
    }
    if (!check_cache_drop(opts, errp)) {
        return false;
    }
    if (!strcmp(aio, "io_uring")) {
        error_setg(errp, "aio=io_uring is not supported by qmpd");
        return false;
    }
    if (!strcmp(aio, "native") && !bn->cache_direct) {
        error_setg(errp, "aio=native was specified, but it requires "
                   "cache.direct=on, which was not specified.");
        return false;
    }
    if (stat(filename, &st) == 0 && S_ISFIFO(st.st_mode)) {
        /* opening a FIFO read-only would wait for a writer */
        error_setg(errp, "'file' driver requires '%s' to be a regular file",
                   filename);
        return false;
    }
    s->fd = fs_open(filename, flags | (bn->read_only ? O_RDONLY : O_RDWR), 0);
    if (s->fd < 0 && !bn->read_only && auto_ro
        && (errno == EACCES || errno == EROFS)) {
        bn->read_only = true;
        s->fd = open(filename, flags | O_RDONLY);
    }
    if (s->fd < 0 && !bn->read_only && auto_ro && errno == EISDIR) {
        /* QEMU's auto-read-only opens read-only first: then the type check
         * below names what is wrong */
        s->fd = open(filename, flags | O_RDONLY);
    }
    if (s->fd < 0) {
        error_setg_errno(errp, errno, "Could not open '%s'", filename);
        return false;
    }
    if (!fd_size(s->fd, filename, &size, errp)) {
        close(s->fd);
        return false;
    }
    /* locks follow what the parents need (bdrv_refresh_perms) */
    s->locking = strcmp(locking, "off") != 0;
    s->perm = 0;
    s->shared = BLK_PERM_ALL;
    s->native = !strcmp(aio, "native");
    /* as QEMU's: a positive value caps libaio's batches (the thread
     * pool has none), anything else leaves the default */
    s->max_batch = CLAMP(qjson_get_int_or(opts, "aio-max-batch", 0), 0,
                         G_MAXUINT);
    s->align = probe_alignment(s->fd, bn->cache_direct);
    s->writes = g_ptr_array_new_with_free_func(g_free);
    s->waiting = g_queue_new();
    bn->total_size = size;
    s->eof = bn->total_size;
    return true;
}

static void file_close(BlockNode *bn)
{
    FileState *s = bn->opaque;

    close(s->fd);
    g_ptr_array_unref(s->writes);
    g_queue_free(s->waiting);
}

/* ---- data path --------------------------------------------------------- */

static bool is_aligned(const FileState *s, uint64_t off, uint64_t len,
                       const void *buf)
{
    return s->align == 1
        || (off % s->align == 0 && len % s->align == 0
            && (uintptr_t)buf % s->align == 0);
}

static void submit_read(FileState *s, void *buf, uint64_t len, uint64_t off,
                        IoqCb *cb, void *opaque)
{
    if (s->native) {
        ioq_pread(s->fd, buf, len, off, s->max_batch, cb, opaque);
    } else {
        ioq_pread_thread(s->fd, buf, len, off, cb, opaque);
    }
}

/*
 * A write that grows the file goes to the thread pool even with libaio:
 * ext4 (and others) complete an extending O_DIRECT write inside
 * io_submit(), which would stall the main loop and with it the
 * monitor.  Writes inside the file stay asynchronous in the kernel.
 */
/*
 * Extending writes go one at a time: the kernel runs them under the
 * inode's exclusive lock anyway (ext4 holds it until an extending direct
 * write completes), and pool threads waiting for that lock spin on it;
 * a mirror onto a new qcow2 spent a fifth of its CPU time there.
 */
typedef struct {
    FileState *s;
    const void *buf;
    uint64_t len;
    uint64_t off;
    IoqCb *cb;
    void *opaque;
} Grow;

static void grow_done_cb(void *opaque, ssize_t ret)
{
    Grow *g = opaque;
    FileState *s = g->s;
    Grow *next = g_queue_pop_head(&s->growers);

    g->cb(g->opaque, ret);
    g_free(g);
    if (next) {
        ioq_pwrite_thread(s->fd, next->buf, next->len, next->off,
                          grow_done_cb, next);
    } else {
        s->extending = false;
    }
}

static void submit_write(FileState *s, const void *buf, uint64_t len,
                         uint64_t off, IoqCb *cb, void *opaque)
{
    bool extends = off + len > s->eof;
    Grow *g;

    s->eof = MAX(s->eof, off + len);
    if (s->native && !extends) {
        ioq_pwrite(s->fd, buf, len, off, s->max_batch, cb, opaque);
        return;
    }
    if (!extends) {
        ioq_pwrite_thread(s->fd, buf, len, off, cb, opaque);
        return;
    }
    g = g_new0(Grow, 1);
    *g = (Grow){ s, buf, len, off, cb, opaque };
    if (s->extending) {
        g_queue_push_tail(&s->growers, g);
        return;
    }
    s->extending = true;
    ioq_pwrite_thread(s->fd, buf, len, off, grow_done_cb, g);
}

typedef struct {
    void *buf;              /* the caller's */
    void *bounce;           /* aligned copy, or NULL */
    uint64_t len;
    uint64_t skip;          /* offset of the caller's data in @bounce */
    uint64_t alen;
    BdrvCb *cb;
    void *opaque;
} ReadReq;

static void read_done_cb(void *opaque, ssize_t ret)
{
    ReadReq *r = opaque;
    uint64_t want = r->bounce ? r->alen : r->len;
    int status = ret < 0 ? (int)ret : 0;

    if (ret >= 0 && (uint64_t)ret < want) {
        /* past the end of the file reads as zeroes */
        memset((char *)(r->bounce ? r->bounce : r->buf) + ret, 0,
               want - ret);
    }
    if (r->bounce) {
        if (status == 0) {
            memcpy(r->buf, (char *)r->bounce + r->skip, r->len);
        }
        ioq_buf_free(r->bounce);
    }
    r->cb(r->opaque, status);
    ioq_req_free(r, sizeof(*r));
}

static void file_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                      BdrvCb *cb, void *opaque)
{
    FileState *s = bn->opaque;
    ReadReq *r = ioq_req_new0(ReadReq);

    r->buf = buf;
    r->len = len;
    r->cb = cb;
    r->opaque = opaque;
    if (is_aligned(s, off, len, buf)) {
        submit_read(s, buf, len, off, read_done_cb, r);
        return;
    }
    {
        uint64_t start = off / s->align * s->align;
        uint64_t end = (off + len + s->align - 1) / s->align * s->align;

        r->skip = off - start;
        r->alen = end - start;
        r->bounce = ioq_buf_alloc(r->alen);
        submit_read(s, r->bounce, r->alen, start, read_done_cb, r);
    }
}

/*
 * Writes in direct mode: each write in flight is a Range.  A write that
 * overlaps a read-modify-write in flight, or an RMW that overlaps any
 * write in flight, waits in @waiting; every completion retries the
 * waiting ones in order.
 */
struct PendingWrite {
    BlockNode *bn;
    uint64_t off;
    uint64_t len;
    const void *buf;
    BdrvCb *cb;
    void *opaque;
    Range *range;
    void *bounce;
    uint64_t astart;
    uint64_t alen;
};

static void start_write(PendingWrite *w);

static bool overlaps(FileState *s, uint64_t start, uint64_t end,
                     bool only_rmw)
{
    for (guint i = 0; i < s->writes->len; i++) {
        const Range *r = g_ptr_array_index(s->writes, i);

        if ((!only_rmw || r->rmw) && r->start < end && start < r->end) {
            return true;
        }
    }
    return false;
}

static void retry_waiting(FileState *s)
{
    guint n = g_queue_get_length(s->waiting);

    for (guint i = 0; i < n; i++) {
        start_write(g_queue_pop_head(s->waiting));
    }
}

static void write_finish(PendingWrite *w, int ret)
{
    FileState *s = w->bn->opaque;

    if (w->range) {
        g_ptr_array_remove(s->writes, w->range);
    }
    if (w->bounce) {
        ioq_buf_free(w->bounce);
    }
    w->cb(w->opaque, ret);
    ioq_req_free(w, sizeof(*w));
    retry_waiting(s);
}

static void write_done_cb(void *opaque, ssize_t ret)
{
    PendingWrite *w = opaque;
    uint64_t want = w->bounce ? w->alen : w->len;

    if (ret >= 0 && (uint64_t)ret != want) {
        ret = -EIO;
    }
    if (ret >= 0 && w->off + w->len > w->bn->total_size) {
        w->bn->total_size = w->off + w->len;
    }
    write_finish(w, ret < 0 ? (int)ret : 0);
}

static void rmw_read_done_cb(void *opaque, ssize_t ret)
{
    PendingWrite *w = opaque;
    FileState *s = w->bn->opaque;

    if (ret < 0) {
        write_finish(w, ret);
        return;
    }
    if ((uint64_t)ret < w->alen) {
        memset((char *)w->bounce + ret, 0, w->alen - ret);
    }
    memcpy((char *)w->bounce + (w->off - w->astart), w->buf, w->len);
    submit_write(s, w->bounce, w->alen, w->astart, write_done_cb, w);
}

static void start_write(PendingWrite *w)
{
    FileState *s = w->bn->opaque;
    bool aligned = is_aligned(s, w->off, w->len, w->buf);

    if (s->align == 1) {
        submit_write(s, w->buf, w->len, w->off, write_done_cb, w);
        return;
    }
    w->astart = w->off / s->align * s->align;
    w->alen = (w->off + w->len + s->align - 1) / s->align * s->align
        - w->astart;
    if (overlaps(s, w->astart, w->astart + w->alen, aligned)) {
        g_queue_push_tail(s->waiting, w);
        return;
    }
    w->range = g_new0(Range, 1);
    w->range->start = w->astart;
    w->range->end = w->astart + w->alen;
    w->range->rmw = !aligned;
    g_ptr_array_add(s->writes, w->range);
    if (aligned) {
        submit_write(s, w->buf, w->len, w->off, write_done_cb, w);
        return;
    }
    w->bounce = ioq_buf_alloc(w->alen);
    if (w->off % s->align == 0 && w->len % s->align == 0) {
        /* only the memory was misaligned: copy, no read needed */
        memcpy(w->bounce, w->buf, w->len);
        submit_write(s, w->bounce, w->alen, w->astart, write_done_cb, w);
        return;
    }
    submit_read(s, w->bounce, w->alen, w->astart, rmw_read_done_cb, w);
}

static void file_write(BlockNode *bn, uint64_t off, uint64_t len,
                       const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    PendingWrite *w = ioq_req_new0(PendingWrite);

    w->bn = bn;
    w->off = off;
    w->len = len;
    w->buf = buf;
    w->cb = cb;
    w->opaque = opaque;
    start_write(w);
}

typedef struct {
    BlockNode *bn;
    uint64_t off;
    uint64_t len;
    int flags;
    BdrvCb *cb;
    void *opaque;
    void *zeroes;
} ZeroReq;

static void zero_written_cb(void *opaque, int ret)
{
    ZeroReq *z = opaque;

    ioq_buf_free(z->zeroes);
    z->cb(z->opaque, ret);
    g_free(z);
}

static void zero_fallocated_cb(void *opaque, ssize_t ret)
{
    ZeroReq *z = opaque;

    if (ret == -ENOTSUP || ret == -EINVAL) {
        /* the filesystem cannot zero in place: write zeroes */
        z->zeroes = ioq_buf_alloc0(z->len);
        file_write(z->bn, z->off, z->len, z->zeroes, 0, zero_written_cb, z);
        return;
    }
    z->cb(z->opaque, ret < 0 ? (int)ret : 0);
    g_free(z);
}

static void file_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                              int flags, BdrvCb *cb, void *opaque)
{
    FileState *s = bn->opaque;
    ZeroReq *z = g_new0(ZeroReq, 1);
    int mode = FALLOC_FL_ZERO_RANGE;

    z->bn = bn;
    z->off = off;
    z->len = len;
    z->cb = cb;
    z->opaque = opaque;
    if ((flags & BDRV_REQ_MAY_UNMAP) && off + len <= bn->total_size) {
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    }
    if (off + len > bn->total_size) {
        bn->total_size = off + len;
    }
    forget_data(s);
    ioq_fallocate(s->fd, mode, off, len, zero_fallocated_cb, z);
}

typedef struct {
    BdrvCb *cb;
    void *opaque;
} Plain;

static void plain_done_cb(void *opaque, ssize_t ret)
{
    Plain *p = opaque;

    /* a filesystem that cannot punch holes just keeps the data */
    p->cb(p->opaque, ret == -ENOTSUP ? 0 : ret < 0 ? (int)ret : 0);
    g_free(p);
}

static void file_discard(BlockNode *bn, uint64_t off, uint64_t len,
                         BdrvCb *cb, void *opaque)
{
    FileState *s = bn->opaque;
    Plain *p = g_new0(Plain, 1);

    p->cb = cb;
    p->opaque = opaque;
    forget_data(s);
    ioq_fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
                  len, plain_done_cb, p);
}

/*
 * A flush reaches the disk only if something was written since the last
 * one that did (QEMU's flushed_gen): writes completed before the flush
 * started are covered by its fdatasync; later ones bump the generation
 * again, so the next flush syncs.
 */
typedef struct {
    BlockNode *bn;
    uint64_t gen;
    BdrvCb *cb;
    void *opaque;
} FlushReq;

static void flush_done_cb(void *opaque, ssize_t ret)
{
    FlushReq *f = opaque;
    FileState *s = f->bn->opaque;

    if (ret == 0) {
        s->flushed_gen = MAX(s->flushed_gen, f->gen);
    }
    f->cb(f->opaque, ret < 0 ? (int)ret : 0);
    g_free(f);
}

static void file_flush(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    FileState *s = bn->opaque;
    FlushReq *f = g_new0(FlushReq, 1);

    f->bn = bn;
    f->gen = bn->write_gen;
    f->cb = cb;
    f->opaque = opaque;
    if (bn->cache_no_flush) {
        /* nothing synced: once no-flush is reopened off, a flush syncs */
        f->gen = 0;
    }
    if (bn->cache_no_flush || f->gen == s->flushed_gen) {
        ioq_defer(flush_done_cb, f, 0);
        return;
    }
    ioq_fsync(s->fd, true, flush_done_cb, f);
}

typedef struct {
    BdrvStatusCb *cb;
    void *opaque;
    int status;
    uint64_t pnum;
} StatusReply;

static void status_reply_cb(void *opaque, ssize_t ret)
{
    StatusReply *r = opaque;

    r->cb(r->opaque, 0, r->status, r->pnum);
    g_free(r);
}

static void file_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                              BdrvStatusCb *cb, void *opaque)
{
    FileState *s = bn->opaque;
    StatusReply *r = g_new0(StatusReply, 1);
    off_t data, hole;

    r->cb = cb;
    r->opaque = opaque;
    r->status = BDRV_STATUS_DATA | BDRV_STATUS_ALLOCATED;
    r->pnum = len;
    if (off >= s->data_start && off < s->data_end) {
        r->pnum = MIN(len, s->data_end - off);
        ioq_defer(status_reply_cb, r, 0);
        return;
    }
    data = lseek(s->fd, off, SEEK_DATA);
    if (data < 0 && errno == ENXIO) {
        r->status = BDRV_STATUS_ZERO | BDRV_STATUS_ALLOCATED;
    } else if (data > (off_t)off) {
        r->status = BDRV_STATUS_ZERO | BDRV_STATUS_ALLOCATED;
        r->pnum = MIN(len, (uint64_t)data - off);
    } else if (data == (off_t)off) {
        hole = lseek(s->fd, off, SEEK_HOLE);
        if (hole > (off_t)off) {
            r->pnum = MIN(len, (uint64_t)hole - off);
            s->data_start = off;
            s->data_end = hole;
        }
    }
    ioq_defer(status_reply_cb, r, 0);
}

/* ---- control path -------------------------------------------------------- */

static int sync_io(BlockNode *bn, bool write, uint64_t off, uint64_t len,
                   void *buf)
{
    FileState *s = bn->opaque;
    uint64_t start = off / s->align * s->align;
    uint64_t alen = (off + len + s->align - 1) / s->align * s->align - start;
    bool aligned = is_aligned(s, off, len, buf);
    char *b = aligned ? buf : ioq_buf_alloc0(alen);
    ssize_t r = 0;
    uint64_t done = 0;

    if (!aligned && write) {
        if (pread(s->fd, b, alen, start) < 0) {
            r = -errno;
            goto out;
        }
        memcpy(b + (off - start), buf, len);
    }
    while (done < (aligned ? len : alen)) {
        uint64_t want = (aligned ? len : alen) - done;
        uint64_t pos = (aligned ? off : start) + done;

        r = write ? pwrite(s->fd, b + done, want, pos)
                  : pread(s->fd, b + done, want, pos);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            r = -errno;
            goto out;
        }
        if (r == 0) {
            if (write) {
                r = -EIO;
                goto out;
            }
            memset(b + done, 0, want);
            break;
        }
        done += r;
    }
    r = 0;
    if (!aligned && !write) {
        memcpy(buf, b + (off - start), len);
    }
    if (write && off + len > bn->total_size) {
        bn->total_size = off + len;
    }
out:
    if (!aligned) {
        ioq_buf_free(b);
    }
    return r;
}

static int file_pread_sync(BlockNode *bn, uint64_t off, uint64_t len,
                           void *buf)
{
    return sync_io(bn, false, off, len, buf);
}

static int file_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                            const void *buf)
{
    return sync_io(bn, true, off, len, (void *)buf);
}

static int file_flush_sync(BlockNode *bn)
{
    FileState *s = bn->opaque;
    uint64_t gen = bn->write_gen;

    if (bn->cache_no_flush || gen == s->flushed_gen) {
        return 0;
    }
    if (fdatasync(s->fd) < 0) {
        return -errno;
    }
    s->flushed_gen = MAX(s->flushed_gen, gen);
    return 0;
}

static int file_discard_sync(BlockNode *bn, uint64_t off, uint64_t len)
{
    FileState *s = bn->opaque;

    forget_data(s);
    if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
                  len) < 0) {
        /* as file_discard: a filesystem that cannot punch keeps the data */
        return errno == ENOTSUP || errno == EOPNOTSUPP ? 0 : -errno;
    }
    return 0;
}

static bool file_truncate(BlockNode *bn, uint64_t size, Error **errp)
{
    FileState *s = bn->opaque;

    if (ftruncate(s->fd, size) < 0) {
        error_setg_errno(errp, errno, "Failed to resize file");
        return false;
    }
    forget_data(s);
    /* the new size is metadata fdatasync must write */
    bn->write_gen++;
    s->eof = size;
    bn->total_size = size;
    return true;
}

static int64_t file_allocated_size(BlockNode *bn)
{
    FileState *s = bn->opaque;
    struct stat st;

    return fstat(s->fd, &st) < 0 ? -1 : (int64_t)st.st_blocks * 512;
}

/*
 * Reopen: a change of read-only or cache.direct needs a descriptor
 * opened the new way, made in prepare.  Until commit the old one keeps
 * serving I/O and holds the image locks, which the reopen sets for the
 * new permissions on it; at commit the new one takes the same lock bytes
 * (read locks: ours do not conflict with each other) and the old one is
 * closed, which drops its own.
 */
typedef struct {
    int fd;                 /* -1: the old descriptor stays */
    bool native;
    uint32_t align;
} FileReopen;

static bool file_reopen_prepare(BdrvReopenState *rs, Error **errp)
{
    BlockNode *bn = rs->bn;
    FileState *s = bn->opaque;
    const char *filename = qjson_get_str(bn->options, "filename");
    FileReopen *r;
    int fd;

    if (!check_cache_drop(rs->opts, errp)) {
        return false;
    }
    r = g_new0(FileReopen, 1);
    r->fd = -1;
    /* QEMU keeps aio=native without O_DIRECT; the pool serves it here */
    r->native = !strcmp(qjson_get_str_or(bn->options, "aio", "threads"),
                        "native") && rs->cache_direct;
    r->align = s->align;
    rs->opaque = r;
    if (rs->read_only == bn->read_only
        && rs->cache_direct == bn->cache_direct) {
        r->native = s->native;
        return true;
    }
    fd = fs_open(filename, O_CLOEXEC | (rs->cache_direct ? O_DIRECT : 0)
                 | (rs->read_only ? O_RDONLY : O_RDWR), 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not reopen file");
        g_free(r);
        rs->opaque = NULL;
        return false;
    }
    r->fd = fd;
    r->align = probe_alignment(fd, rs->cache_direct);
    return true;
}

static void file_reopen_commit(BdrvReopenState *rs)
{
    FileState *s = rs->bn->opaque;
    FileReopen *r = rs->opaque;

    s->native = r->native;
    if (r->fd >= 0) {
        if (s->locking) {
            for (int i = 0; i < 5; i++) {
                if (s->perm & (1 << i)) {
                    file_lock_byte(r->fd, LOCK_PERM_BASE + i, true);
                }
                if (!(s->shared & (1 << i))) {
                    file_lock_byte(r->fd, LOCK_SHARED_BASE + i, true);
                }
            }
        }
        close(s->fd);
        s->fd = r->fd;
        s->align = r->align;
    }
    g_free(r);
    rs->opaque = NULL;
}

static void file_reopen_abort(BdrvReopenState *rs)
{
    FileReopen *r = rs->opaque;

    if (r->fd >= 0) {
        close(r->fd);
    }
    g_free(r);
    rs->opaque = NULL;
}

/* QEMU's file driver applies these two; filename, aio, locking stay. */
static const char *const file_reopen_opts[] = {
    "drop-cache", "x-check-cache-dropped", NULL
};
static const char *const file_reopen_resettable[] = {
    "x-check-cache-dropped", NULL
};

/* a zero write with unmap punches a hole, which reads back zeroes */
static bool file_get_info(BlockNode *bn, BlockDriverInfo *bdi)
{
    bdi->can_write_zeroes_with_unmap = true;
    return true;
}

const BlockDriver bdrv_file = {
    .name = "file",
    .instance_size = sizeof(FileState),
    .open = file_open,
    .close = file_close,
    .set_perm = file_set_perm,
    .read = file_read,
    .write = file_write,
    .write_zeroes = file_write_zeroes,
    .discard = file_discard,
    .flush = file_flush,
    .block_status = file_block_status,
    .truncate = file_truncate,
    .reopen_opts = file_reopen_opts,
    .reopen_resettable = file_reopen_resettable,
    .reopen_prepare = file_reopen_prepare,
    .reopen_commit = file_reopen_commit,
    .reopen_abort = file_reopen_abort,
    .allocated_size = file_allocated_size,
    .get_info = file_get_info,
    .pread_sync = file_pread_sync,
    .pwrite_sync = file_pwrite_sync,
    .flush_sync = file_flush_sync,
    .discard_sync = file_discard_sync,
};
