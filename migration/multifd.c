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
 * source hands each RAM record to the channel with the least buffered,
 * and at every read of the dirty log puts SYNC n on every channel and
 * on the main one.  Within a pass a page goes once, so channels may
 * apply in any order; a page resent in pass n+1 must land after its
 * pass-n copy: a destination channel that reads SYNC n stops reading
 * until every channel and the main one reached SYNC n, and the main
 * one likewise, so END comes after every page before it.  The channels
 * are written and read from the main loop, like the main channel: the
 * parallelism is the kernel's, several socket buffers filling and
 * draining at once.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "migration/channel.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"

#define MIG_MULTIFD_READ_SIZE (1024 * 1024)

typedef struct MfChannel {
    int fd;
    guint watch;
    GByteArray *buf;        /* source: to write */
    size_t sent;
    MigReader *reader;      /* destination: read */
    uint64_t synced;        /* destination: the last SYNC it reached */
    bool hello;
} MfChannel;

typedef struct MfOut {
    GPtrArray *ch;          /* MfChannel *, once connected */
    unsigned want;
    unsigned generation;
    MigMultifdFail *fail;
    MigMultifdDrained *drained;
    uint64_t sync;
    char *error;            /* a channel failed: the pump fails it */
} MfOut;

typedef struct MfIn {
    GPtrArray *ch;
    unsigned want;
    uint64_t main_sync;     /* the SYNC the main channel waits at */
    bool main_waiting;
    MigMultifdResume *resume;
    guint resume_idle;
} MfIn;

static MfOut *mo;
static MfIn *mi_;
static unsigned mo_generation;

static void mf_channel_free(gpointer p)
{
    MfChannel *c = p;

    if (c->watch) {
        g_source_remove(c->watch);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->buf) {
        g_byte_array_unref(c->buf);
    }
    mig_reader_free(c->reader);
    g_free(c);
}

/* ---- source ------------------------------------------------------------ */

static bool mf_out_flush(MfChannel *c);

static gboolean mf_out_writable_cb(gint fd, GIOCondition cond,
                                   gpointer opaque)
{
    MfChannel *c = opaque;

    c->watch = 0;
    if (!mf_out_flush(c)) {
        mo->fail(mo->error);
    } else if (!c->buf->len) {
        mo->drained();
    }
    return G_SOURCE_REMOVE;
}

/* Write what @c holds; false with mo->error set on an error. */
static bool mf_out_flush(MfChannel *c)
{
    int r = mig_write_buffered(c->fd, c->buf, &c->sent);

    if (r < 0) {
        if (!mo->error) {
            mo->error = g_strdup_printf("Unable to write to socket: %s",
                                        g_strerror(-r));
        }
        return false;
    }
    if (r > 0 && !c->watch) {
        c->watch = g_unix_fd_add(c->fd, G_IO_OUT, mf_out_writable_cb, c);
    }
    return true;
}

static void mf_out_connected_cb(void *opaque, int fd, Error *err)
{
    /* (a top-level callback: it may fail the migration, freeing mo) */
    MfChannel *c;
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
    c = g_new0(MfChannel, 1);
    c->fd = fd;
    c->buf = g_byte_array_new();
    hello = g_strdup_printf("{\"channel\": %u}", mo->ch->len);
    mig_stream_put_header(c->buf);
    mig_stream_put_record(c->buf, MIG_SECTION_MULTIFD_HELLO, mo->ch->len,
                          hello, strlen(hello));
    g_ptr_array_add(mo->ch, c);
    if (!mf_out_flush(c)) {
        mo->fail(mo->error);
    }
}

bool mig_multifd_out_start(const char *uri, unsigned channels,
                           MigMultifdFail *fail, MigMultifdDrained *drained,
                           Error **errp)
{
    g_assert(!mo);
    mo = g_new0(MfOut, 1);
    mo->ch = g_ptr_array_new_with_free_func(mf_channel_free);
    mo->want = channels;
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
    return mo ? mo->error : NULL;
}

size_t mig_multifd_out_buffered(void)
{
    size_t n = 0;

    for (guint i = 0; mo && i < mo->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mo->ch, i);

        n += c->buf->len - c->sent;
    }
    return n;
}

bool mig_multifd_out_queue(const GByteArray *rec)
{
    MfChannel *best = NULL;

    for (guint i = 0; i < mo->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mo->ch, i);

        if (!best || c->buf->len - c->sent < best->buf->len - best->sent) {
            best = c;
        }
    }
    g_byte_array_append(best->buf, rec->data, rec->len);
    return mf_out_flush(best);
}

bool mig_multifd_out_sync(GByteArray *main_buf)
{
    g_autofree char *sync = NULL;

    mo->sync++;
    sync = g_strdup_printf("{\"sync\": %" G_GUINT64_FORMAT "}", mo->sync);
    for (guint i = 0; i < mo->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mo->ch, i);

        mig_stream_put_record(c->buf, MIG_SECTION_MULTIFD_SYNC, i, sync,
                              strlen(sync));
        if (!mf_out_flush(c)) {
            return false;
        }
    }
    mig_stream_put_record(main_buf, MIG_SECTION_MULTIFD_SYNC, 0, sync,
                          strlen(sync));
    return true;
}

void mig_multifd_out_free(void)
{
    if (mo) {
        g_ptr_array_unref(mo->ch);
        g_free(mo->error);
        g_clear_pointer(&mo, g_free);
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

/* Whether everyone reached SYNC @n: then all read on. */
static void mf_in_check(void);

static gboolean mf_in_readable_cb(gint fd, GIOCondition cond,
                                  gpointer opaque);

static void mf_in_watch(MfChannel *c)
{
    if (!c->watch) {
        c->watch = g_unix_fd_add(c->fd, G_IO_IN, mf_in_readable_cb, c);
    }
}

/*
 * Apply @c's whole records up to its next SYNC: 1 when it stopped
 * there, 0 when it needs more bytes, -1 with the reason.
 */
static int mf_in_process(MfChannel *c, Error **errp)
{
    const uint8_t *payload;
    uint32_t id, len;
    uint8_t type;
    int r;

    while ((r = mig_reader_next(c->reader, &type, &id, &payload, &len,
                                errp)) > 0) {
        if (!c->hello) {
            if (type != MIG_SECTION_MULTIFD_HELLO) {
                error_setg(errp, "multifd channel without its hello");
                return -1;
            }
            c->hello = true;
            continue;
        }
        switch (type) {
        case MIG_SECTION_RAM:
            if (!mig_ram_load(payload, len, errp)) {
                return -1;
            }
            break;
        case MIG_SECTION_MULTIFD_SYNC:
            c->synced = sync_number(payload, len, errp);
            return c->synced ? 1 : -1;
        default:
            error_setg(errp, "Unknown section type %u (id %u)", type, id);
            return -1;
        }
    }
    return r;
}

static gboolean mf_in_readable_cb(gint fd, GIOCondition cond,
                                  gpointer opaque)
{
    MfChannel *c = opaque;
    ssize_t n = mig_reader_read(c->reader, fd, MIG_MULTIFD_READ_SIZE);
    Error *err = NULL;
    int r;

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n == 0 && c->hello && !mig_reader_pending(c->reader)) {
        /*
         * The source closes its channels once it sent END, which the
         * main channel may not have read yet: a close between records
         * is theirs to judge (a source that died breaks off the main
         * channel too)
         */
        c->watch = 0;
        return G_SOURCE_REMOVE;
    }
    if (n <= 0) {
        mig_in_fail(n < 0 ? g_strerror(errno)
                     : "Unexpected end of multifd channel", EIO);
    }
    r = mf_in_process(c, &err);
    if (r < 0) {
        mig_in_fail(error_get_pretty(err), EINVAL);
    }
    if (r > 0) {
        /* at SYNC: wait for the others before reading on */
        c->watch = 0;
        mf_in_check();
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean mf_in_resume_cb(gpointer opaque)
{
    if (mi_) {
        mi_->resume_idle = 0;
        mi_->resume();
    }
    return G_SOURCE_REMOVE;
}

static void mf_in_check(void)
{
    Error *err = NULL;

    if (!mi_->main_waiting || mi_->ch->len < mi_->want) {
        return;
    }
    for (guint i = 0; i < mi_->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mi_->ch, i);

        if (c->synced != mi_->main_sync) {
            return;
        }
    }
    /*
     * All at SYNC n: the channels go on to their next SYNC, the main one
     * from the main loop (it may finish the migration, which frees us)
     */
    mi_->main_waiting = false;
    for (guint i = 0; i < mi_->ch->len; i++) {
        MfChannel *c = g_ptr_array_index(mi_->ch, i);
        int r = mf_in_process(c, &err);

        if (r < 0) {
            mig_in_fail(error_get_pretty(err), EINVAL);
        }
        if (r == 0) {
            mf_in_watch(c);
        }
    }
    mi_->resume_idle = g_idle_add(mf_in_resume_cb, NULL);
}

void mig_multifd_in_start(unsigned channels, MigMultifdResume *resume)
{
    g_assert(!mi_);
    mi_ = g_new0(MfIn, 1);
    mi_->ch = g_ptr_array_new_with_free_func(mf_channel_free);
    mi_->want = channels;
    mi_->resume = resume;
}

bool mig_multifd_in_add(int fd)
{
    MfChannel *c;

    if (!mi_ || mi_->ch->len == mi_->want) {
        return false;
    }
    c = g_new0(MfChannel, 1);
    c->fd = fd;
    c->reader = mig_reader_new();
    g_ptr_array_add(mi_->ch, c);
    mf_in_watch(c);
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
        if (mi_->resume_idle) {
            g_source_remove(mi_->resume_idle);
        }
        g_ptr_array_unref(mi_->ch);
        g_clear_pointer(&mi_, g_free);
    }
}
