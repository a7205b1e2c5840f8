/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * I/O engine.
 *
 * libaio: requests are queued and submitted in one io_submit() per main
 * loop iteration (an idle source), so a burst of requests costs one
 * syscall; a request with a batch limit (a file's aio-max-batch) makes a
 * queue of that many go down at once.  io_submit() may accept fewer than asked (or EAGAIN when the
 * ring is full); the rest stays queued and is retried after the next
 * completions.  Completions are signalled on an eventfd; the handler
 * drains io_getevents() with a zero timeout.
 *
 * Thread pool: a work item carries everything it needs; the worker runs
 * the syscall, pushes the item onto a done queue and pokes another
 * eventfd; the main loop runs the callbacks.
 *
 * Deferred callbacks share one list and one idle source.  They run at
 * default priority so that a stream of instantly completing requests
 * (null-co, cache hits) cannot starve the monitor sockets.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib-unix.h>

#include "block/core/ioq.h"
#include "util/log.h"

#define AIO_DEPTH 512
#define POOL_THREADS 4
#define BUF_ALIGN 4096

typedef struct {
    struct iocb iocb;
    IoqCb *cb;
    void *opaque;
} AioReq;

typedef enum {
    WORK_PREAD,
    WORK_PWRITE,
    WORK_FSYNC,
    WORK_FDATASYNC,
    WORK_FALLOCATE,
    WORK_CALL,
} WorkOp;

typedef struct {
    WorkOp op;
    int fd;
    void *buf;
    size_t len;
    off_t off;
    int mode;
    IoqThreadFn *fn;
    void *arg;
    ssize_t ret;
    IoqCb *cb;
    void *opaque;
} Work;

typedef struct {
    IoqCb *cb;
    IoqIntCb *icb;
    void *opaque;
    ssize_t ret;
} Deferred;

static io_context_t aio_ctx;
static bool aio_ready;
static int aio_efd = -1;
static guint aio_watch;
static GPtrArray *aio_pending;      /* AioReq * not yet accepted */
static guint submit_idle;
static unsigned aio_in_flight;

static GThreadPool *pool;
static bool name_threads;
static GAsyncQueue *pool_done;
static int pool_efd = -1;
static guint pool_watch;
static unsigned pool_in_flight;

static GArray *deferred;
static guint deferred_idle;

static void submit_pending(void);

static gboolean submit_idle_cb(gpointer data)
{
    submit_idle = 0;
    submit_pending();
    return G_SOURCE_REMOVE;
}

static void submit_pending(void)
{
    while (aio_pending->len) {
        int n = aio_pending->len;
        int r;

        r = io_submit(aio_ctx, n, (struct iocb **)aio_pending->pdata);
        if (r == -EAGAIN || r == 0) {
            return;         /* ring full: retry after completions */
        }
        if (r < 0) {
            /* fail the first request; the others are retried */
            AioReq *req = g_ptr_array_steal_index(aio_pending, 0);

            ioq_defer(req->cb, req->opaque, r);
            g_free(req);
            continue;
        }
        aio_in_flight += r;
        g_ptr_array_remove_range(aio_pending, 0, r);
    }
}

static void aio_queue(AioReq *req, unsigned max_batch)
{
    io_set_eventfd(&req->iocb, aio_efd);
    req->iocb.data = req;
    g_ptr_array_add(aio_pending, &req->iocb);
    if (max_batch && aio_pending->len >= max_batch) {
        /* QEMU's aio-max-batch: a full batch goes down at once */
        submit_pending();
        if (!aio_pending->len && submit_idle) {
            g_source_remove(submit_idle);
            submit_idle = 0;
        }
        return;
    }
    if (!submit_idle) {
        submit_idle = g_idle_add_full(G_PRIORITY_DEFAULT, submit_idle_cb,
                                      NULL, NULL);
    }
}

static gboolean aio_done_cb(gint fd, GIOCondition cond, gpointer data)
{
    struct io_event events[64];
    uint64_t count;
    int n;

    if (read(aio_efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        qmpd_log(LOG_ERR, "eventfd read: %s", g_strerror(errno));
    }
    do {
        n = io_getevents(aio_ctx, 0, G_N_ELEMENTS(events), events, NULL);
        for (int i = 0; i < n; i++) {
            AioReq *req = events[i].data;
            ssize_t ret = (ssize_t)(long)events[i].res;

            aio_in_flight--;
            req->cb(req->opaque, ret);
            g_free(req);
        }
    } while (n == (int)G_N_ELEMENTS(events));
    if (aio_pending->len) {
        submit_pending();
    }
    /* submitted here: the idle pass would only wake the loop for nothing */
    if (!aio_pending->len && submit_idle) {
        g_source_remove(submit_idle);
        submit_idle = 0;
    }
    return G_SOURCE_CONTINUE;
}

static void work_run(gpointer data, gpointer user)
{
    static __thread bool named;
    Work *w = data;
    uint64_t one = 1;
    ssize_t r = 0;

    if (name_threads && !named) {
        prctl(PR_SET_NAME, "worker");
        named = true;
    }

    switch (w->op) {
    case WORK_PREAD:
    case WORK_PWRITE: {
        size_t done = 0;

        while (done < w->len) {
            r = w->op == WORK_PREAD
                ? pread(w->fd, (char *)w->buf + done, w->len - done,
                        w->off + done)
                : pwrite(w->fd, (char *)w->buf + done, w->len - done,
                         w->off + done);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                break;
            }
            done += r;
        }
        r = r < 0 ? -errno : (ssize_t)done;
        break;
    }
    case WORK_FSYNC:
        r = fsync(w->fd) < 0 ? -errno : 0;
        break;
    case WORK_FDATASYNC:
        r = fdatasync(w->fd) < 0 ? -errno : 0;
        break;
    case WORK_FALLOCATE:
        r = fallocate(w->fd, w->mode, w->off, w->len) < 0 ? -errno : 0;
        if (r == -EOPNOTSUPP) {
            r = -ENOTSUP;
        }
        break;
    case WORK_CALL:
        r = w->fn(w->arg);
        break;
    }
    w->ret = r;
    g_async_queue_push(pool_done, w);
    if (write(pool_efd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow in practice; nothing to do */
    }
}

static gboolean pool_done_cb(gint fd, GIOCondition cond, gpointer data)
{
    uint64_t count;
    Work *w;

    if (read(pool_efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        qmpd_log(LOG_ERR, "eventfd read: %s", g_strerror(errno));
    }
    while ((w = g_async_queue_try_pop(pool_done))) {
        pool_in_flight--;
        w->cb(w->opaque, w->ret);
        g_free(w);
    }
    return G_SOURCE_CONTINUE;
}

static void pool_submit(Work *w)
{
    pool_in_flight++;
    g_thread_pool_push(pool, w, NULL);
}

bool ioq_init(Error **errp)
{
    int r;

    if (pool) {
        return true;
    }
    deferred = g_array_new(FALSE, FALSE, sizeof(Deferred));
    aio_pending = g_ptr_array_new();
    pool_done = g_async_queue_new();
    pool_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pool = g_thread_pool_new(work_run, NULL, POOL_THREADS, FALSE, NULL);
    if (pool_efd < 0 || !pool) {
        error_setg_errno(errp, errno, "Could not start the I/O thread pool");
        return false;
    }
    pool_watch = g_unix_fd_add(pool_efd, G_IO_IN, pool_done_cb, NULL);

    r = io_setup(AIO_DEPTH, &aio_ctx);
    aio_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r < 0 || aio_efd < 0) {
        error_setg_errno(errp, r < 0 ? -r : errno,
                         "Could not set up Linux AIO");
        return false;
    }
    aio_watch = g_unix_fd_add(aio_efd, G_IO_IN, aio_done_cb, NULL);
    aio_ready = true;
    return true;
}

static void buf_cache_free_all(void);

void ioq_cleanup(void)
{
    buf_cache_free_all();
    if (!pool) {
        return;
    }
    g_thread_pool_free(pool, FALSE, TRUE);
    pool = NULL;
    if (aio_ready) {
        io_destroy(aio_ctx);
        aio_ready = false;
    }
    if (aio_watch) {
        g_source_remove(aio_watch);
    }
    if (pool_watch) {
        g_source_remove(pool_watch);
    }
    if (submit_idle) {
        g_source_remove(submit_idle);
    }
    if (deferred_idle) {
        g_source_remove(deferred_idle);
    }
    aio_watch = pool_watch = submit_idle = deferred_idle = 0;
    close(aio_efd);
    close(pool_efd);
    g_async_queue_unref(pool_done);
    g_ptr_array_free(aio_pending, TRUE);
    g_array_free(deferred, TRUE);
}

void ioq_pread(int fd, void *buf, size_t len, off_t off, unsigned max_batch,
               IoqCb *cb, void *opaque)
{
    AioReq *req;

    if (!aio_ready) {
        ioq_pread_thread(fd, buf, len, off, cb, opaque);
        return;
    }
    req = g_new0(AioReq, 1);
    io_prep_pread(&req->iocb, fd, buf, len, off);
    req->cb = cb;
    req->opaque = opaque;
    aio_queue(req, max_batch);
}

void ioq_pwrite(int fd, const void *buf, size_t len, off_t off,
                unsigned max_batch, IoqCb *cb, void *opaque)
{
    AioReq *req;

    if (!aio_ready) {
        ioq_pwrite_thread(fd, buf, len, off, cb, opaque);
        return;
    }
    req = g_new0(AioReq, 1);
    io_prep_pwrite(&req->iocb, fd, (void *)buf, len, off);
    req->cb = cb;
    req->opaque = opaque;
    aio_queue(req, max_batch);
}

static Work *work_new(WorkOp op, int fd, IoqCb *cb, void *opaque)
{
    Work *w = g_new0(Work, 1);

    w->op = op;
    w->fd = fd;
    w->cb = cb;
    w->opaque = opaque;
    return w;
}

void ioq_pread_thread(int fd, void *buf, size_t len, off_t off, IoqCb *cb,
                      void *opaque)
{
    Work *w = work_new(WORK_PREAD, fd, cb, opaque);

    w->buf = buf;
    w->len = len;
    w->off = off;
    pool_submit(w);
}

void ioq_pwrite_thread(int fd, const void *buf, size_t len, off_t off,
                       IoqCb *cb, void *opaque)
{
    Work *w = work_new(WORK_PWRITE, fd, cb, opaque);

    w->buf = (void *)buf;
    w->len = len;
    w->off = off;
    pool_submit(w);
}

void ioq_fsync(int fd, bool datasync, IoqCb *cb, void *opaque)
{
    pool_submit(work_new(datasync ? WORK_FDATASYNC : WORK_FSYNC, fd, cb,
                         opaque));
}

void ioq_fallocate(int fd, int mode, off_t off, off_t len, IoqCb *cb,
                   void *opaque)
{
    Work *w = work_new(WORK_FALLOCATE, fd, cb, opaque);

    w->mode = mode;
    w->off = off;
    w->len = len;
    pool_submit(w);
}

void ioq_thread_call(IoqThreadFn *fn, void *arg, IoqCb *cb, void *opaque)
{
    Work *w = work_new(WORK_CALL, -1, cb, opaque);

    w->fn = fn;
    w->arg = arg;
    pool_submit(w);
}

static gboolean deferred_cb(gpointer data)
{
    /* run what is queued now; what these callbacks queue waits a turn */
    GArray *batch = deferred;

    deferred = g_array_new(FALSE, FALSE, sizeof(Deferred));
    deferred_idle = 0;
    for (guint i = 0; i < batch->len; i++) {
        Deferred *d = &g_array_index(batch, Deferred, i);

        if (d->icb) {
            d->icb(d->opaque, (int)d->ret);
        } else {
            d->cb(d->opaque, d->ret);
        }
    }
    g_array_free(batch, TRUE);
    return G_SOURCE_REMOVE;
}

static void defer_push(Deferred d)
{
    g_array_append_val(deferred, d);
    if (!deferred_idle) {
        deferred_idle = g_idle_add_full(G_PRIORITY_DEFAULT, deferred_cb,
                                        NULL, NULL);
    }
}

void ioq_defer(IoqCb *cb, void *opaque, ssize_t ret)
{
    Deferred d = { cb, NULL, opaque, ret };

    defer_push(d);
}

void ioq_defer_int(IoqIntCb *cb, void *opaque, int ret)
{
    Deferred d = { NULL, cb, opaque, ret };

    defer_push(d);
}

/*
 * Large buffers are kept for reuse once freed: a fresh one is fresh
 * anonymous memory, which the kernel faults in and zeroes page by page
 * while io_submit pins it (a third of a job's CPU time went there).
 * Jobs free and allocate buffers of a few sizes all the time, so an
 * exact-size match is enough.  The cache is let go of once no buffer
 * was asked for during a whole BUF_CACHE_IDLE_MS.
 */
#define BUF_CACHE_MIN (64 * 1024)
#define BUF_CACHE_MAX (32 * 1024 * 1024)
#define BUF_CACHE_IDLE_MS 2000

typedef struct {
    void *p;
    size_t len;
} CachedBuf;

static GHashTable *big_bufs;    /* buffer -> its size, for those >= MIN */
static GArray *buf_cache;       /* CachedBuf, free for reuse */
static size_t buf_cache_bytes;
static guint buf_cache_timer;
static bool buf_cache_used;     /* an allocation since the last tick */

static void buf_cache_drop(void)
{
    for (guint i = 0; i < buf_cache->len; i++) {
        CachedBuf *c = &g_array_index(buf_cache, CachedBuf, i);

        g_hash_table_remove(big_bufs, c->p);
        free(c->p);
    }
    g_array_set_size(buf_cache, 0);
    buf_cache_bytes = 0;
}

static void buf_cache_free_all(void)
{
    if (buf_cache) {
        buf_cache_drop();
    }
    if (buf_cache_timer) {
        g_source_remove(buf_cache_timer);
        buf_cache_timer = 0;
    }
}

static gboolean buf_cache_tick(gpointer opaque)
{
    if (buf_cache_used) {
        buf_cache_used = false;
        return G_SOURCE_CONTINUE;
    }
    buf_cache_drop();
    buf_cache_timer = 0;
    return G_SOURCE_REMOVE;
}

void *ioq_buf_alloc(size_t len)
{
    void *p = NULL;

    if (len >= BUF_CACHE_MIN) {
        buf_cache_used = true;
        for (guint i = 0; buf_cache && i < buf_cache->len; i++) {
            CachedBuf *c = &g_array_index(buf_cache, CachedBuf, i);

            if (c->len == len) {
                p = c->p;
                buf_cache_bytes -= len;
                g_array_remove_index_fast(buf_cache, i);
                return p;
            }
        }
    }
    if (posix_memalign(&p, BUF_ALIGN, len ? len : BUF_ALIGN)) {
        g_error("out of memory allocating a %zu byte I/O buffer", len);
    }
    if (len >= BUF_CACHE_MIN) {
        if (!big_bufs) {
            big_bufs = g_hash_table_new(NULL, NULL);
            buf_cache = g_array_new(FALSE, FALSE, sizeof(CachedBuf));
        }
        g_hash_table_insert(big_bufs, p, GSIZE_TO_POINTER(len));
    }
    return p;
}

void *ioq_buf_alloc0(size_t len)
{
    void *p = ioq_buf_alloc(len);

    memset(p, 0, len);
    return p;
}

void ioq_buf_free(void *buf)
{
    gpointer v = buf && big_bufs ? g_hash_table_lookup(big_bufs, buf) : NULL;
    size_t len = GPOINTER_TO_SIZE(v);
    CachedBuf c = { buf, len };

    if (!len) {
        free(buf);
        return;
    }
    if (buf_cache_bytes + len > BUF_CACHE_MAX) {
        g_hash_table_remove(big_bufs, buf);
        free(buf);
        return;
    }
    g_array_append_val(buf_cache, c);
    buf_cache_bytes += len;
    if (!buf_cache_timer) {
        buf_cache_timer = g_timeout_add(BUF_CACHE_IDLE_MS, buf_cache_tick,
                                        NULL);
    }
}

unsigned ioq_in_flight(void)
{
    return aio_in_flight + aio_pending->len + pool_in_flight;
}

void ioq_name_threads(bool on)
{
    name_threads = on;
}
