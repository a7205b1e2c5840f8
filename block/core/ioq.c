/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * I/O engine.
 *
 * libaio: requests are queued and submitted in one io_submit() per main
 * loop iteration (work_source), so a burst of requests costs one
 * syscall; a request with a batch limit (a file's aio-max-batch) makes a
 * queue of that many go down at once.  io_submit() may accept fewer than
 * asked (or EAGAIN when the ring is full); the rest stays queued and is
 * retried after the next completions.
 *
 * Completions are signalled on an eventfd, but taken from the ring the
 * kernel shares with us at the context's address, as QEMU's linux-aio
 * does: events between its head and tail are ours without a syscall
 * (io_getevents() only when the ring's layout is not the one we know).
 * After a batch of completions, and the submissions their callbacks
 * queued, the handler keeps watching the ring for a while before it
 * lets the loop sleep in poll(): QEMU's adaptive polling (its
 * iothreads' poll-max-ns).  The window grows while completions arrive
 * within it and shrinks when the loop had to sleep longer than the
 * ceiling anyway, so an idle or slow disk costs no CPU and a fast one
 * skips the sleep and the wake-up.
 *
 * Thread pool: a work item carries everything it needs; the worker runs
 * the syscall, pushes the item onto a done queue and pokes another
 * eventfd; the main loop runs the callbacks.
 *
 * Deferred callbacks share one list and work_source.  They run at
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

/* Adaptive polling: QEMU's iothread default ceiling, and where it starts. */
#define POLL_MAX_NS 32000
#define POLL_START_NS 4000

/* The kernel's struct aio_ring (fs/aio.c), mapped at the io_context_t. */
#define AIO_RING_MAGIC 0xa10a10a1
typedef struct {
    unsigned id;
    unsigned nr;
    unsigned head;
    unsigned tail;
    unsigned magic;
    unsigned compat_features;
    unsigned incompat_features;
    unsigned header_length;
    struct io_event io_events[];
} AioRing;

/* A request in flight; spare ones wait on a free list for the next. */
typedef struct AioReq {
    struct iocb iocb;
    IoqCb *cb;
    void *opaque;
    struct AioReq *next_free;
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
static bool submit_blocked;         /* ring full: wait for completions */
static unsigned aio_in_flight;
static AioRing *aio_ring;           /* NULL: io_getevents() it is */
static AioReq *aio_free;
static unsigned aio_free_count;
static gint64 poll_ns;              /* the adaptive window */
static gint64 slept_at_ns;          /* when the handler last returned */

static GThreadPool *pool;
static bool name_threads;
static GAsyncQueue *pool_done;
static int pool_efd = -1;
static guint pool_watch;
static unsigned pool_in_flight;

static GArray *deferred;            /* Deferred, for the next dispatch */
static GArray *deferred_running;    /* the batch being run */
static GSource *work_source;

static void submit_pending(void);

static AioReq *req_new(void)
{
    AioReq *req = aio_free;

    if (!req) {
        return g_new(AioReq, 1);
    }
    aio_free = req->next_free;
    aio_free_count--;
    return req;
}

/* Keep as many as the ring can hold: a steady queue allocates nothing. */
static void req_free(AioReq *req)
{
    if (aio_free_count >= AIO_DEPTH) {
        g_free(req);
        return;
    }
    req->next_free = aio_free;
    aio_free = req;
    aio_free_count++;
}

static void submit_pending(void)
{
    while (aio_pending->len) {
        int n = aio_pending->len;
        int r;

        r = io_submit(aio_ctx, n, (struct iocb **)aio_pending->pdata);
        if (r == -EAGAIN || r == 0) {
            submit_blocked = true;  /* retried after completions */
            return;
        }
        if (r < 0) {
            /* fail the first request; the others are retried */
            AioReq *req = g_ptr_array_steal_index(aio_pending, 0);

            ioq_defer(req->cb, req->opaque, r);
            req_free(req);
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
    }
}

/*
 * Take up to @max completed events off the ring into @events: a copy,
 * so that callbacks which submit (or reap) again find the ring
 * consistent.  The acquire load pairs with the kernel's barrier before
 * it moves the tail, so the events it covers are seen whole.
 */
static int ring_take(struct io_event *events, int max)
{
    unsigned head, tail, nr = aio_ring->nr;
    int n = 0;

    head = aio_ring->head;
    tail = __atomic_load_n(&aio_ring->tail, __ATOMIC_ACQUIRE);
    while (head != tail && n < max) {
        events[n++] = aio_ring->io_events[head];
        head = (head + 1) % nr;
    }
    if (n) {
        __atomic_store_n(&aio_ring->head, head, __ATOMIC_RELEASE);
    }
    return n;
}

static bool ring_empty(void)
{
    return aio_ring->head == __atomic_load_n(&aio_ring->tail,
                                             __ATOMIC_ACQUIRE);
}

/* Run the callbacks of every completed request; how many there were. */
static unsigned reap(void)
{
    struct io_event events[64];
    unsigned total = 0;
    int n;

    do {
        n = aio_ring ? ring_take(events, G_N_ELEMENTS(events))
                     : io_getevents(aio_ctx, 0, G_N_ELEMENTS(events), events,
                                    NULL);
        for (int i = 0; i < n; i++) {
            AioReq *req = events[i].data;
            ssize_t ret = (ssize_t)(long)events[i].res;

            aio_in_flight--;
            req->cb(req->opaque, ret);
            req_free(req);
        }
        total += n > 0 ? n : 0;
    } while (n == (int)G_N_ELEMENTS(events));
    return total;
}

/* Submit what the callbacks queued now: work_source would wake for it. */
static void submit_now(void)
{
    submit_blocked = false;
    if (aio_pending->len) {
        submit_pending();
    }
}

/*
 * Watch the ring for up to poll_ns while requests are in flight; true
 * when a completion came (the caller reaps it).  Only other sources
 * wait meanwhile, never longer than POLL_MAX_NS.
 */
static bool poll_ring(void)
{
    gint64 deadline;

    if (!aio_ring || !poll_ns || !aio_in_flight) {
        return false;
    }
    deadline = g_get_monotonic_time() * 1000 + poll_ns;
    do {
        if (!ring_empty()) {
            return true;
        }
    } while (g_get_monotonic_time() * 1000 < deadline);
    return false;
}

/*
 * QEMU's rule for the window: a sleep that ended within the ceiling
 * would have been caught by a longer window, so it grows; one longer
 * than the ceiling would not have been, so polling that long was waste.
 */
static void poll_adapt(gint64 slept_ns)
{
    if (slept_ns > POLL_MAX_NS) {
        poll_ns /= 2;
        if (poll_ns < POLL_START_NS / 2) {
            poll_ns = 0;
        }
    } else if (poll_ns < POLL_MAX_NS && slept_ns > poll_ns) {
        poll_ns = poll_ns ? MIN(poll_ns * 2, POLL_MAX_NS) : POLL_START_NS;
    }
}

static gboolean aio_done_cb(gint fd, GIOCondition cond, gpointer data)
{
    uint64_t count;

    if (read(aio_efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        qmpd_log(LOG_ERR, "eventfd read: %s", g_strerror(errno));
    }
    if (slept_at_ns) {
        poll_adapt(g_get_monotonic_time() * 1000 - slept_at_ns);
    }
    do {
        reap();
        submit_now();
    } while (poll_ring());
    slept_at_ns = aio_in_flight ? g_get_monotonic_time() * 1000 : 0;
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

/*
 * The work the loop owes us: deferred callbacks and queued submissions.
 * One source stays attached and says it is ready while there is work,
 * rather than an idle source per batch: GLib wakes its own loop (a write
 * and a read of its wake-up fd) for every source attached or destroyed.
 */
static bool work_ready(void)
{
    return deferred->len || (aio_pending->len && !submit_blocked);
}

static gboolean work_prepare(GSource *src, gint *timeout)
{
    *timeout = -1;
    return work_ready();
}

static gboolean work_check(GSource *src)
{
    return work_ready();
}

/*
 * Run what was deferred before this dispatch (what these callbacks defer
 * waits a turn, so a stream of instant completions cannot starve the
 * monitor), then submit in one io_submit() what they and the loop's other
 * sources queued.
 */
static gboolean work_dispatch(GSource *src, GSourceFunc unused, gpointer data)
{
    GArray *batch = deferred;

    deferred = deferred_running;
    deferred_running = batch;
    for (guint i = 0; i < batch->len; i++) {
        Deferred *d = &g_array_index(batch, Deferred, i);

        if (d->icb) {
            d->icb(d->opaque, (int)d->ret);
        } else {
            d->cb(d->opaque, d->ret);
        }
    }
    g_array_set_size(batch, 0);
    if (aio_pending->len && !submit_blocked) {
        submit_pending();
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs work_funcs = {
    .prepare = work_prepare,
    .check = work_check,
    .dispatch = work_dispatch,
};

/*
 * Watch @fd, the completion eventfd: a source that may "recurse", so that
 * GLib does not block it around each dispatch.  Blocking takes its fd out
 * of the poll set and puts it back, and each of those wakes the loop
 * through GLib's wake-up fd, two syscalls per batch of completions.  (It
 * never does recurse: nothing here runs a nested loop.)
 */
static guint watch_fd(int fd, GUnixFDSourceFunc fn)
{
    GSource *src = g_unix_fd_source_new(fd, G_IO_IN);
    guint id;

    g_source_set_callback(src, G_SOURCE_FUNC(fn), NULL, NULL);
    g_source_set_can_recurse(src, TRUE);
    id = g_source_attach(src, NULL);
    g_source_unref(src);
    return id;
}

bool ioq_init(Error **errp)
{
    int r;

    if (pool) {
        return true;
    }
    deferred = g_array_new(FALSE, FALSE, sizeof(Deferred));
    deferred_running = g_array_new(FALSE, FALSE, sizeof(Deferred));
    aio_pending = g_ptr_array_new();
    work_source = g_source_new(&work_funcs, sizeof(GSource));
    g_source_set_priority(work_source, G_PRIORITY_DEFAULT);
    g_source_set_name(work_source, "ioq");
    g_source_attach(work_source, NULL);
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
    aio_watch = watch_fd(aio_efd, aio_done_cb);
    aio_ring = (AioRing *)aio_ctx;
    if (aio_ring->magic != AIO_RING_MAGIC
        || aio_ring->header_length != sizeof(AioRing)) {
        aio_ring = NULL;
    }
    aio_ready = true;
    return true;
}

static void buf_cache_free_all(void);

static void spare_reqs_free(void);

void ioq_cleanup(void)
{
    buf_cache_free_all();
    spare_reqs_free();
    if (!pool) {
        return;
    }
    g_thread_pool_free(pool, FALSE, TRUE);
    pool = NULL;
    if (aio_ready) {
        io_destroy(aio_ctx);
        aio_ready = false;
        aio_ring = NULL;
    }
    while (aio_free) {
        AioReq *req = aio_free;

        aio_free = req->next_free;
        g_free(req);
    }
    aio_free_count = 0;
    if (aio_watch) {
        g_source_remove(aio_watch);
    }
    if (pool_watch) {
        g_source_remove(pool_watch);
    }
    if (work_source) {
        g_source_destroy(work_source);
        g_source_unref(work_source);
        work_source = NULL;
    }
    aio_watch = pool_watch = 0;
    close(aio_efd);
    close(pool_efd);
    g_async_queue_unref(pool_done);
    g_ptr_array_free(aio_pending, TRUE);
    g_array_free(deferred, TRUE);
    g_array_free(deferred_running, TRUE);
}

void ioq_pread(int fd, void *buf, size_t len, off_t off, unsigned max_batch,
               IoqCb *cb, void *opaque)
{
    AioReq *req;

    if (!aio_ready) {
        ioq_pread_thread(fd, buf, len, off, cb, opaque);
        return;
    }
    req = req_new();
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
    req = req_new();
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

static void defer_push(Deferred d)
{
    g_array_append_val(deferred, d);
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

/*
 * Size classes of REQ_CLASS bytes up to REQ_CLASS * REQ_CLASSES; each
 * keeps at most REQ_KEEP spare structs (a queue depth's worth for every
 * layer), so the lists stay small after a burst.
 */
#define REQ_CLASS 16
#define REQ_CLASSES 16
#define REQ_KEEP 1024

#if defined(__SANITIZE_ADDRESS__)
#define REQ_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REQ_CACHE 0
#endif
#endif
#ifndef REQ_CACHE
#define REQ_CACHE 1
#endif

typedef struct SpareReq {
    struct SpareReq *next;
} SpareReq;

static SpareReq *spare_reqs[REQ_CLASSES];
static unsigned spare_count[REQ_CLASSES];

void *ioq_req_alloc0(size_t size)
{
    size_t c = (MAX(size, 1) + REQ_CLASS - 1) / REQ_CLASS - 1;
    SpareReq *s;

    if (!REQ_CACHE || c >= REQ_CLASSES) {
        return g_malloc0(size);
    }
    s = spare_reqs[c];
    if (!s) {
        /* the whole class, so that any size of it may reuse the block */
        return g_malloc0((c + 1) * REQ_CLASS);
    }
    spare_reqs[c] = s->next;
    spare_count[c]--;
    memset(s, 0, size);
    return s;
}

void ioq_req_free(void *p, size_t size)
{
    size_t c = (MAX(size, 1) + REQ_CLASS - 1) / REQ_CLASS - 1;
    SpareReq *s = p;

    if (!REQ_CACHE || c >= REQ_CLASSES || spare_count[c] >= REQ_KEEP) {
        g_free(p);
        return;
    }
    s->next = spare_reqs[c];
    spare_reqs[c] = s;
    spare_count[c]++;
}

static void spare_reqs_free(void)
{
    for (size_t c = 0; c < REQ_CLASSES; c++) {
        while (spare_reqs[c]) {
            SpareReq *s = spare_reqs[c];

            spare_reqs[c] = s->next;
            g_free(s);
        }
        spare_count[c] = 0;
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
