/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * multifd: RAM pages over multifd-channels connections of their own
 * beside the main one, which keeps the order of sections.
 *
 *   source                                destination
 *   main:  CONFIG ... SYNC 1 ... SYNC 2 ... END     (the first accepted)
 *   ch 0:  HELLO 0  RAM RAM SYNC 1  RAM SYNC 2
 *   ch 1:  HELLO 1  RAM SYNC 1  RAM RAM SYNC 2
 *
 * Each channel is a stream of its own (header, then records).  The
 * source hands each RAM record to the channel with the fewest bytes
 * queued, and at every read of the dirty log puts SYNC n on every
 * channel and on the main one.  Within a pass a page goes once, so
 * channels may apply in any order; a page resent in pass n+1 must land
 * after its pass-n copy: a destination channel that reads SYNC n stops
 * until every channel and the main one reached SYNC n, and the main one
 * likewise, so END comes after every page before it.
 *
 * Threads and locking.  Each channel has a thread that does its
 * blocking I/O, so channels move data on several cores at once; the
 * main loop never blocks on a channel.  Every other piece of migration
 * state stays the main loop's.
 *   Source: the pump (main loop) encodes a RAM record and pushes it on
 *   the channel's GAsyncQueue (its own lock); the thread pops and
 *   write()s it, blocking.  `queued` (atomic) counts the bytes pushed
 *   and not yet written: the pump's measure of what is buffered.  After
 *   each record, and on a write error, the thread signals the set's
 *   eventfd, whose watch (main loop) runs the pump again or fails the
 *   migration.  The error text is set once under `lock`.
 *   Destination: the thread reads its socket into its own MigReader and
 *   stores RAM records straight into guest RAM (physmem's stores from
 *   several threads are safe: a pass sends a page once, and the bitmap
 *   of stored pages changes atomically).  At SYNC n it sets `synced`
 *   under `lock`, signals the eventfd and waits on `cond` until
 *   `released` reaches n, which the main loop sets (and broadcasts)
 *   once the main channel and every channel reached SYNC n.  A failure
 *   is stored under `lock` and the main loop fails the load.
 *   Ending: the main loop tells threads to stop (a stop token on the
 *   source's queue; `quit` and a broadcast on the destination), shuts
 *   a socket down where a thread may be blocked in it, and joins every
 *   thread before it frees what they use.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "migration/channel.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"
#include "system/physmem.h"

#define MIG_MULTIFD_READ_SIZE (1024 * 1024)

typedef struct MfSet MfSet;

typedef struct MfChannel {
    MfSet *set;
    int fd;
    GThread *thread;
    /* source */
    GAsyncQueue *q;         /* GByteArray * to write, or &mf_stop */
    gint queued;            /* atomic: bytes pushed, not yet written */
    /* destination (thread's own, but synced: under set->lock) */
    MigReader *reader;
    uint64_t synced;        /* the last SYNC it reached */
    bool hello;
    bool ended;             /* closed between records */
} MfChannel;

/* One direction's channels; the source's and the destination's. */
struct MfSet {
    GPtrArray *ch;          /* MfChannel *, once connected */
    unsigned want;
    int efd;                /* eventfd: a thread has news */
    guint efd_watch;
    GMutex lock;
    GCond cond;
    char *error;            /* under lock: a channel failed */
    int error_errno;
    bool quit;              /* under lock: threads end */
    /* source */
    unsigned generation;
    MigMultifdFail *fail;
    MigMultifdDrained *drained;
    uint64_t sync;
    /* destination */
    uint64_t released;      /* under lock: channels may pass this SYNC */
    uint64_t main_sync;     /* the SYNC the main channel waits at */
    bool main_waiting;
    MigMultifdResume *resume;
    guint resume_idle;
};

static MfSet *mo;
static MfSet *mi_;
static unsigned mo_generation;
static char mf_stop;

static void mf_notify(MfSet *s)
{
    uint64_t one = 1;

    if (write(s->efd, &one, sizeof(one)) < 0) {
        /* the counter is full: the main loop has news waiting anyway */
    }
}

static void mf_drain_eventfd(MfSet *s)
{
    uint64_t v;

    if (read(s->efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing new since the last read */
    }
}

/* A thread's failure, the first one counts. */
static void mf_set_error(MfSet *s, const char *msg, int err)
{
    g_mutex_lock(&s->lock);
    if (!s->error && !s->quit) {
        s->error = g_strdup(msg);
        s->error_errno = err;
    }
    g_mutex_unlock(&s->lock);
    mf_notify(s);
}

static char *mf_error(MfSet *s, int *err)
{
    char *e;

    g_mutex_lock(&s->lock);
    e = g_strdup(s->error);
    if (err) {
        *err = s->error_errno;
    }
    g_mutex_unlock(&s->lock);
    return e;
}

static MfSet *mf_set_new(unsigned want, GUnixFDSourceFunc event_cb)
{
    MfSet *s = g_new0(MfSet, 1);

    s->ch = g_ptr_array_new();
    s->want = want;
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    g_assert(s->efd >= 0);
    s->efd_watch = g_unix_fd_add(s->efd, G_IO_IN, event_cb, s);
    return s;
}

/* Stop every thread (breaking off blocked I/O), join them, free. */
static void mf_set_free(MfSet *s)
{
    g_mutex_lock(&s->lock);
    s->quit = true;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
    for (guint i = 0; i < s->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(s->ch, i);

        if (c->q) {
            g_async_queue_push(c->q, &mf_stop);
            /* bytes still queued: a cancel or a failure, not the end */
            if (g_atomic_int_get(&c->queued)) {
                shutdown(c->fd, SHUT_RDWR);
            }
        } else {
            shutdown(c->fd, SHUT_RDWR);
        }
    }
    for (guint i = 0; i < s->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(s->ch, i);

        g_thread_join(c->thread);
        if (c->q) {
            GByteArray *b;

            while ((b = g_async_queue_try_pop(c->q))) {
                if ((void *)b != &mf_stop) {
                    g_byte_array_unref(b);
                }
            }
            g_async_queue_unref(c->q);
        }
        close(c->fd);
        mig_reader_free(c->reader);
        g_free(c);
    }
    g_ptr_array_unref(s->ch);
    if (s->efd_watch) {
        g_source_remove(s->efd_watch);
    }
    close(s->efd);
    if (s->resume_idle) {
        g_source_remove(s->resume_idle);
    }
    g_free(s->error);
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->cond);
    g_free(s);
}

static void set_blocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

/* ---- source ------------------------------------------------------------ */

static gpointer mf_out_thread(gpointer opaque)
{
    MfChannel *c = opaque;

    for (;;) {
        GByteArray *b = g_async_queue_pop(c->q);
        size_t off = 0;
        int err = 0;
        guint len;

        if ((void *)b == &mf_stop) {
            break;
        }
        while (off < b->len && !err) {
            ssize_t n = send(c->fd, b->data + off, b->len - off,
                             MSG_NOSIGNAL);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                err = n < 0 ? errno : EPIPE;
            } else {
                off += n;
            }
        }
        len = b->len;
        g_byte_array_unref(b);
        if (err) {
            g_autofree char *msg = g_strdup_printf(
                "Unable to write to socket: %s", g_strerror(err));

            mf_set_error(c->set, msg, err);
            break;
        }
        g_atomic_int_add(&c->queued, -(gint)len);
        mf_notify(c->set);
    }
    return NULL;
}

/* A thread wrote a record or failed: go on, or fail, from here. */
static gboolean mf_out_event_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    MfSet *s = opaque;
    g_autofree char *error = NULL;

    mf_drain_eventfd(s);
    error = mf_error(s, NULL);
    if (error) {
        s->efd_watch = 0;
        s->fail(error);         /* frees the set */
        return G_SOURCE_REMOVE;
    }
    s->drained();
    return G_SOURCE_CONTINUE;
}

/* Hand @b (taken) to @c's thread. */
static void mf_out_push(MfChannel *c, GByteArray *b)
{
    g_atomic_int_add(&c->queued, (gint)b->len);
    g_async_queue_push(c->q, b);
}

static void mf_out_connected_cb(void *opaque, int fd, Error *err)
{
    /* (a top-level callback: it may fail the migration, freeing mo) */
    MfChannel *c;
    GByteArray *b;
    g_autofree char *hello = NULL;

    if (!mo || GPOINTER_TO_UINT(opaque) != mo->generation) {
        if (fd >= 0) {
            close(fd);
        }
        error_free(err);
        return;
    }
    if (fd < 0) {
        g_autofree char *msg = g_strdup(error_get_pretty(err));

        error_free(err);
        mo->fail(msg);
        return;
    }
    set_blocking(fd);
    c = g_new0(MfChannel, 1);
    c->set = mo;
    c->fd = fd;
    c->q = g_async_queue_new();
    b = g_byte_array_new();
    hello = g_strdup_printf("{\"channel\": %u}", mo->ch->len);
    mig_stream_put_header(b);
    mig_stream_put_record(b, MIG_SECTION_MULTIFD_HELLO, mo->ch->len,
                          hello, strlen(hello));
    mf_out_push(c, b);
    c->thread = g_thread_new("multifd-send", mf_out_thread, c);
    g_ptr_array_add(mo->ch, c);
}

bool mig_multifd_out_start(const char *uri, unsigned channels,
                           MigMultifdFail *fail, MigMultifdDrained *drained,
                           Error **errp)
{
    g_assert(!mo);
    mo = mf_set_new(channels, mf_out_event_cb);
    mo->fail = fail;
    mo->drained = drained;
    mo->generation = ++mo_generation;
    for (unsigned i = 0; i < channels; i++) {
        if (!mig_channel_connect(uri, mf_out_connected_cb,
                                 GUINT_TO_POINTER(mo->generation), errp)) {
            mig_multifd_out_free();
            return false;
        }
    }
    return true;
}

bool mig_multifd_out_ready(void)
{
    return mo && mo->ch->len == mo->want;
}

const char *mig_multifd_out_error(void)
{
    const char *e;

    if (!mo) {
        return NULL;
    }
    /* set once and kept until the set is freed */
    g_mutex_lock(&mo->lock);
    e = mo->error;
    g_mutex_unlock(&mo->lock);
    return e;
}

size_t mig_multifd_out_buffered(void)
{
    size_t n = 0;

    for (guint i = 0; mo && i < mo->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mo->ch, i);

        n += g_atomic_int_get(&c->queued);
    }
    return n;
}

bool mig_multifd_out_queue(GByteArray *rec)
{
    MfChannel *best = NULL;

    for (guint i = 0; i < mo->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mo->ch, i);

        if (!best
            || g_atomic_int_get(&c->queued) < g_atomic_int_get(&best->queued)) {
            best = c;
        }
    }
    g_assert(best);         /* the pump waits for every channel */
    mf_out_push(best, rec);
    return !mig_multifd_out_error();
}

bool mig_multifd_out_sync(GByteArray *main_buf)
{
    g_autofree char *sync = NULL;

    mo->sync++;
    sync = g_strdup_printf("{\"sync\": %" G_GUINT64_FORMAT "}", mo->sync);
    for (guint i = 0; i < mo->ch->len; i++) {
        GByteArray *b = g_byte_array_new();

        mig_stream_put_record(b, MIG_SECTION_MULTIFD_SYNC, i, sync,
                              strlen(sync));
        mf_out_push(g_ptr_array_index(mo->ch, i), b);
    }
    mig_stream_put_record(main_buf, MIG_SECTION_MULTIFD_SYNC, 0, sync,
                          strlen(sync));
    return !mig_multifd_out_error();
}

void mig_multifd_out_free(void)
{
    if (mo) {
        MfSet *s = mo;

        mo = NULL;
        mf_set_free(s);
    }
}

/* ---- destination ------------------------------------------------------- */

static uint64_t sync_number(const uint8_t *p, uint32_t len, Error **errp)
{
    g_autoptr(json_t) msg = json_loadb((const char *)p, len, 0, NULL);
    json_t *n = msg ? json_object_get(msg, "sync") : NULL;

    if (!json_is_integer(n) || json_integer_value(n) < 1) {
        error_setg(errp, "Invalid multifd sync");
        return 0;
    }
    return json_integer_value(n);
}

/*
 * At SYNC @n: say so and wait until the main loop releases it; false
 * when the set ends meanwhile.
 */
static bool mf_in_wait_sync(MfChannel *c, uint64_t n)
{
    MfSet *s = c->set;
    bool go;

    g_mutex_lock(&s->lock);
    c->synced = n;
    g_mutex_unlock(&s->lock);
    mf_notify(s);
    g_mutex_lock(&s->lock);
    while (s->released < n && !s->quit) {
        g_cond_wait(&s->cond, &s->lock);
    }
    go = !s->quit;
    g_mutex_unlock(&s->lock);
    return go;
}

/* Apply one record; false with the reason. */
static bool mf_in_record(MfChannel *c, uint8_t type, uint32_t id,
                         const uint8_t *payload, uint32_t len, bool *stop,
                         Error **errp)
{
    uint64_t n;

    if (!c->hello) {
        if (type != MIG_SECTION_MULTIFD_HELLO) {
            error_setg(errp, "multifd channel without its hello");
            return false;
        }
        c->hello = true;
        return true;
    }
    switch (type) {
    case MIG_SECTION_RAM:
        return mig_ram_load(payload, len, errp);
    case MIG_SECTION_MULTIFD_SYNC:
        n = sync_number(payload, len, errp);
        if (!n) {
            return false;
        }
        *stop = !mf_in_wait_sync(c, n);
        return true;
    default:
        error_setg(errp, "Unknown section type %u (id %u)", type, id);
        return false;
    }
}

static gpointer mf_in_thread(gpointer opaque)
{
    MfChannel *c = opaque;
    bool stop = false;

    while (!stop) {
        const uint8_t *payload;
        uint32_t id, len;
        uint8_t type;
        Error *err = NULL;
        ssize_t n;
        int r = mig_reader_next(c->reader, &type, &id, &payload, &len,
                                &err);

        if (r > 0 && mf_in_record(c, type, id, payload, len, &stop, &err)) {
            continue;
        }
        if (r != 0) {
            mf_set_error(c->set, error_get_pretty(err), EINVAL);
            error_free(err);
            break;
        }
        n = mig_reader_read(c->reader, c->fd, MIG_MULTIFD_READ_SIZE);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 && c->hello && !mig_reader_pending(c->reader)) {
            /*
             * The source closes its channels once it sent END, which the
             * main channel may not have read yet: a close between records
             * is the main loop's to judge (mf_in_check())
             */
            g_mutex_lock(&c->set->lock);
            c->ended = true;
            g_mutex_unlock(&c->set->lock);
            mf_notify(c->set);
            break;
        }
        if (n <= 0) {
            mf_set_error(c->set, n < 0 ? g_strerror(errno)
                         : "Unexpected end of multifd channel", EIO);
            break;
        }
    }
    return NULL;
}

static gboolean mf_in_resume_cb(gpointer opaque)
{
    if (mi_) {
        mi_->resume_idle = 0;
        mi_->resume();
    }
    return G_SOURCE_REMOVE;
}

/* Whether everyone reached the main channel's SYNC: then all go on. */
static void mf_in_check(void)
{
    bool all = mi_->main_waiting && mi_->ch->len == mi_->want;
    bool gone = false;

    g_mutex_lock(&mi_->lock);
    for (guint i = 0; i < mi_->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mi_->ch, i);

        all = all && c->synced == mi_->main_sync;
        /* a channel that closed short of the SYNC the main one waits
         * at never gets there: the source was cancelled or died */
        gone = gone || (mi_->main_waiting && c->ended
                        && c->synced < mi_->main_sync);
    }
    if (all) {
        mi_->released = mi_->main_sync;
        g_cond_broadcast(&mi_->cond);
    }
    g_mutex_unlock(&mi_->lock);
    if (gone) {
        mig_in_fail("Unexpected end of multifd channel", EIO);
    }
    if (all) {
        /* the main channel reads on from the main loop (it may finish
         * the migration, which frees us) */
        mi_->main_waiting = false;
        mi_->resume_idle = g_idle_add(mf_in_resume_cb, NULL);
    }
}

static gboolean mf_in_event_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    MfSet *s = opaque;
    g_autofree char *error = NULL;
    int err = 0;

    mf_drain_eventfd(s);
    error = mf_error(s, &err);
    if (error) {
        mig_in_fail(error, err);
    }
    mf_in_check();
    return G_SOURCE_CONTINUE;
}

void mig_multifd_in_start(unsigned channels, MigMultifdResume *resume)
{
    g_assert(!mi_);
    /* the threads store into RAM: its mapping exists before them */
    physmem_ram_prepare();
    mi_ = mf_set_new(channels, mf_in_event_cb);
    mi_->resume = resume;
}

bool mig_multifd_in_add(int fd)
{
    MfChannel *c;

    if (!mi_ || mi_->ch->len == mi_->want) {
        return false;
    }
    set_blocking(fd);
    c = g_new0(MfChannel, 1);
    c->set = mi_;
    c->fd = fd;
    c->reader = mig_reader_new();
    c->thread = g_thread_new("multifd-recv", mf_in_thread, c);
    g_ptr_array_add(mi_->ch, c);
    return true;
}

unsigned mig_multifd_in_wanted(void)
{
    return mi_ ? mi_->want - mi_->ch->len : 0;
}

bool mig_multifd_in_sync(const uint8_t *payload, uint32_t len, Error **errp)
{
    uint64_t n = sync_number(payload, len, errp);

    if (!n) {
        return false;
    }
    if (!mi_) {
        error_setg(errp, "multifd sync without multifd");
        return false;
    }
    mi_->main_sync = n;
    mi_->main_waiting = true;
    return true;
}

void mig_multifd_in_poll(void)
{
    if (mi_) {
        mf_in_check();
    }
}

void mig_multifd_in_free(void)
{
    if (mi_) {
        MfSet *s = mi_;

        mi_ = NULL;
        mf_set_free(s);
    }
}
