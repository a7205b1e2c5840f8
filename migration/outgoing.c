/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The source side of RAM pre-copy.
 *
 *   setup ──connect──> active: pass 1 sends every page, pass n+1 the
 *     pages the guest dirtied during pass n (the dirty log)
 *       │  at the end of a pass: can what the log holds go within
 *       │  downtime-limit at the bandwidth the pass measured?
 *       ├─ no:  read the log (MIGRATION_PASS), next pass
 *       └─ yes: stop the guest (STOP, finish-migrate), read the log
 *               once more (MIGRATION_PASS), send the rest and END,
 *               completed once every byte is written (postmigrate)
 *
 * With pause-before-switchover the stopped guest waits in
 * pre-switchover for migrate-continue (the management tool moves its
 * disks meanwhile), which goes on in status device with that last read
 * of the log.  With return-path the source completes only once the
 * destination said it loaded the stream (return-path.c).  With multifd
 * the RAM records go on channels of their own (multifd.c) and each read
 * of the dirty log puts a SYNC on all of them.
 *
 * One main-loop tick (MIG_TICK_MS) or a writable socket runs the pump:
 * it writes what is buffered, then encodes more pages while the buffer
 * holds less than MIG_BUF_HIGH (again at once while the socket takes
 * all of it, for a slice of time) and the 100 ms window's share of
 * max-bandwidth allows (the stop-and-copy phase ignores the limit, as
 * QEMU's).  The socket is non-blocking, so the monitor stays responsive
 * whatever the peer does.
 *
 * Failure (a write error, the peer gone) and migrate_cancel end the
 * same way: the channel closes, the dirty log stops, and a guest this
 * migration stopped runs again (RESUME).  The destination only uses the
 * stream once END arrived with every checksum right, so nothing half
 * sent is ever run there.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "migration/block.h"
#include "migration/channel.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"
#include "system/machine.h"
#include "system/physmem.h"
#include "system/runstate.h"

#define MIG_TICK_MS 10
#define MIG_WINDOW_US 100000
#define MIG_BUF_HIGH (1u << 20)
#define MIG_PUMP_SLICE_US 5000
#define MIG_BATCH_PAGES 256
#define PAGE PHYSMEM_PAGE_SIZE

typedef struct MigOut {
    int fd;
    guint watch, timer, idle, fail_idle;
    GByteArray *buf;
    size_t sent;            /* bytes of buf already written */
    HBitmap *dirty;
    uint64_t scan;
    bool stopping, end_queued, vm_was_running;
    bool pre_switchover;    /* stopped, waiting for migrate-continue */
    bool return_path;
    MigRp *rp;              /* END sent, waiting for the destination */
    char *uri;
    unsigned multifd;       /* channels beside this one, or 0 */
    bool blk;               /* the disks go too */
    char *fail_desc;        /* a failure seen inside a callback */
    char *write_error;      /* the main channel's, while rp says why */
    gint64 window_start;
    uint64_t window_bytes;
    gint64 pass_start, stop_us;
    uint64_t pass_bytes;
} MigOut;

static MigOut *out;
/* which migration a pending connect belongs to (one cancelled may be) */
static unsigned out_generation;

static void mig_out_pump(void);

static void mig_out_free(void)
{
    if (!out) {
        return;
    }
    if (out->watch) {
        g_source_remove(out->watch);
    }
    if (out->timer) {
        g_source_remove(out->timer);
    }
    if (out->idle) {
        g_source_remove(out->idle);
    }
    if (out->fail_idle) {
        g_source_remove(out->fail_idle);
    }
    g_free(out->fail_desc);
    mig_blk_out_cleanup();
    mig_bitmaps_out_cleanup();
    if (out->fd >= 0) {
        close(out->fd);
    }
    g_byte_array_unref(out->buf);
    if (out->dirty) {
        hbitmap_free(out->dirty);
    }
    mig_rp_free(out->rp);
    g_free(out->write_error);
    mig_converge_stop();
    mig_multifd_out_free();
    g_free(out->uri);
    physmem_dirty_log_stop();
    g_clear_pointer(&out, g_free);
}

/* After a failure or cancel: the guest runs again if it ran before. */
static void mig_out_restart_guest(bool was_running)
{
    if (runstate_get() == RUN_STATE_FINISH_MIGRATE) {
        if (was_running) {
            vm_start();
        } else {
            runstate_set(RUN_STATE_POSTMIGRATE);
        }
    }
}

static void mig_out_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void mig_out_fail(const char *fmt, ...)
{
    MigInfo *mi = mig_info();
    bool was_running = out->vm_was_running;
    va_list ap;

    va_start(ap, fmt);
    g_free(mi->error_desc);
    mi->error_desc = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    mi->end_us = g_get_monotonic_time();
    mig_out_free();
    mig_set_status(MIG_STATUS_FAILED);
    mig_out_restart_guest(was_running);
}

static void mig_out_complete(void)
{
    MigInfo *mi = mig_info();
    gint64 now = g_get_monotonic_time();

    mi->end_us = now;
    mi->downtime_ms = (now - out->stop_us) / 1000;
    mi->remaining = 0;
    mig_out_free();
    runstate_set(RUN_STATE_POSTMIGRATE);
    mig_set_status(MIG_STATUS_COMPLETED);
}

static void mig_out_rp_done_cb(void *opaque, const char *error);

/*
 * A multifd channel failed.  With the return path the destination may
 * have refused the stream and closed its channels first: its word
 * says why, so wait for it (the pump stops meanwhile).
 */
static void mig_out_multifd_fail(const char *reason)
{
    if (out->rp) {
        return;
    }
    if (out->return_path) {
        out->rp = mig_rp_wait(out->fd, mig_out_rp_done_cb, NULL);
        return;
    }
    mig_out_fail("%s", reason);
}

/* What waits to be written, on every channel. */
static size_t mig_out_buffered(void)
{
    return out->buf->len - out->sent + mig_multifd_out_buffered();
}

static void mig_out_rp_done_cb(void *opaque, const char *error)
{
    out->rp = NULL;
    if (out->write_error && (!error || !strcmp(error, MIG_RP_CLOSED))) {
        /* the destination went without a word: the write's error */
        error = out->write_error;
    }
    if (!error && out->multifd) {
        /* (a channel that failed outweighs a load that succeeded) */
        error = mig_multifd_out_error();
    }
    if (error) {
        mig_out_fail("%s", error);
    } else {
        mig_out_complete();
    }
}

static gboolean mig_out_writable_cb(gint fd, GIOCondition cond,
                                    gpointer opaque)
{
    out->watch = 0;
    mig_out_pump();
    return G_SOURCE_REMOVE;
}

static gboolean mig_out_tick_cb(gpointer opaque)
{
    mig_out_pump();
    return G_SOURCE_CONTINUE;
}

/* Write what is buffered; false when the migration failed. */
static bool mig_out_flush(void)
{
    int r;

    if (out->rp) {
        return false;           /* the destination's word is awaited */
    }
    r = mig_write_buffered(out->fd, out->buf, &out->sent);
    if (r < 0 && out->return_path) {
        /*
         * A destination that refused the stream says why on the return
         * path before it closes: the write can fail first (EPIPE), and
         * the reason is still there to read.
         */
        out->write_error = g_strdup_printf("Unable to write to socket: %s",
                                           g_strerror(-r));
        out->rp = mig_rp_wait(out->fd, mig_out_rp_done_cb, NULL);
        return false;
    }
    if (r < 0) {
        mig_out_fail("Unable to write to socket: %s", g_strerror(-r));
        return false;
    }
    if (r > 0 && !out->watch) {
        out->watch = g_unix_fd_add(out->fd, G_IO_OUT, mig_out_writable_cb,
                                   NULL);
    }
    return true;
}

/* Read the dirty log into the pass bitmap: one more pass. */
static void mig_out_sync(void)
{
    MigInfo *mi = mig_info();

    physmem_dirty_log_sync(out->dirty);
    mig_blk_out_sync();
    mi->dirty_sync_count++;
    mi->remaining = hbitmap_count(out->dirty);
    mig_converge_sync(mi->remaining, mi->transferred);
    if (out->multifd) {
        /* a failed channel fails the migration at the next pump */
        mig_multifd_out_sync(out->buf);
    }
    mig_pass_event();
    out->scan = 0;
}

static void mig_out_end_pass(void)
{
    MigInfo *mi = mig_info();
    gint64 now = g_get_monotonic_time();
    double ms = MAX(now - out->pass_start, 1000) / 1000.0;
    double bw = out->pass_bytes / ms;       /* bytes per ms */
    /* the disks' dirty data counts as RAM's does: nothing stays behind */
    uint64_t pending = physmem_dirty_log_count() + mig_blk_out_pending();

    mi->mbps = bw * 1000 * 8 / 1e6;
    mi->pages_per_second = (uint64_t)(out->pass_bytes / PAGE / ms * 1000);
    mi->expected_downtime_ms = bw > 0 ? (int64_t)(pending / bw) : 0;
    mi->dirty_pages_rate = (uint64_t)(pending / PAGE / ms * 1000);
    out->pass_start = now;
    out->pass_bytes = 0;
    if (!pending || pending / MAX(bw, 1) <= mig_param_uint("downtime-limit")) {
        out->stopping = true;
        out->vm_was_running = runstate_is_running();
        out->stop_us = now;
        if (out->vm_was_running) {
            vm_stop(RUN_STATE_FINISH_MIGRATE);
        } else {
            runstate_set(RUN_STATE_FINISH_MIGRATE);
        }
        if (mig_cap_enabled(MIG_CAP_PAUSE_BEFORE_SWITCHOVER)) {
            /* the last read of the log waits for migrate-continue */
            out->pre_switchover = true;
            mig_set_status(MIG_STATUS_PRE_SWITCHOVER);
            return;
        }
    }
    mig_out_sync();
}

static void mig_out_queue_end(void)
{
    MigInfo *mi = mig_info();
    g_autofree char *end = g_strdup_printf("{\"running\": %s}",
                                           out->vm_was_running ? "true"
                                           : "false");
    guint before = out->buf->len;

    /* the bitmaps as they are now, with what they recorded meanwhile */
    mig_bitmaps_out_put(out->buf);
    if (out->multifd) {
        /* every page is in before END */
        mig_multifd_out_sync(out->buf);
    }
    mig_stream_put_record(out->buf, MIG_SECTION_END, 0, end, strlen(end));
    mi->transferred += out->buf->len - before;
    mi->downtime_bytes += out->buf->len - before;
    out->end_queued = true;
}

/*
 * One round of the pump: write, encode up to MIG_BUF_HIGH, write.  True
 * when the socket took all of it and more may go at once.
 */
static bool mig_out_pump_once(void)
{
    MigInfo *mi = mig_info();
    uint64_t max_bw = mig_param_uint("max-bandwidth");
    gint64 now = g_get_monotonic_time();

    if (out->multifd && mig_multifd_out_error()) {
        mig_out_multifd_fail(mig_multifd_out_error());
        return false;
    }
    if (!mig_out_flush()) {
        return false;
    }
    if (out->pre_switchover
        || (out->multifd && !mig_multifd_out_ready())) {
        return false;
    }
    if (out->end_queued) {
        if (mig_out_buffered() || out->rp) {
            return false;
        }
        if (out->return_path) {
            out->rp = mig_rp_wait(out->fd, mig_out_rp_done_cb, NULL);
        } else {
            mig_out_complete();
        }
        return false;
    }
    if (now - out->window_start >= MIG_WINDOW_US) {
        out->window_start = now;
        out->window_bytes = 0;
    }
    /* the disks first: their reads take time, RAM fills what is left */
    mig_blk_out_kick();
    if (!out) {
        return false;
    }
    /* (a failure seen in a callback ends it from the main loop) */
    while (mig_out_buffered() < MIG_BUF_HIGH * (1 + out->multifd)
           && !out->fail_desc
           && (out->stopping
               || out->window_bytes < max_bw / (1000000 / MIG_WINDOW_US))) {
        /* a channel's record goes whole to its thread */
        GByteArray *dest = out->multifd
            ? g_byte_array_sized_new(MIG_BATCH_PAGES * (PAGE + 8) + 64)
            : out->buf;
        guint before = dest->len;
        size_t size;

        if (!mig_ram_put_dirty(dest, out->dirty, &out->scan,
                               MIG_BATCH_PAGES)) {
            if (out->multifd) {
                g_byte_array_unref(dest);
            }
            if (!mig_blk_out_pass_done()) {
                break;          /* the pass ends with its disk data */
            }
            if (out->stopping) {
                mig_out_queue_end();
                break;
            }
            mig_out_end_pass();
            if (out->pre_switchover) {
                break;
            }
            continue;
        }
        size = dest->len - before;
        if (out->multifd) {
            mi->multifd_bytes += size;
            if (!mig_multifd_out_queue(dest)) {
                break;      /* failed: the next pump says so */
            }
        }
        mi->transferred += size;
        if (out->stopping) {
            mi->downtime_bytes += size;
        } else {
            mi->precopy_bytes += size;
        }
        out->window_bytes += size;
        out->pass_bytes += size;
        mi->remaining = hbitmap_count(out->dirty);
    }
    if (!mig_out_flush() || out->pre_switchover || mig_out_buffered()) {
        return false;
    }
    /* END queued and written: complete now, not a tick later */
    return out->end_queued || out->stopping
        || out->window_bytes < max_bw / (1000000 / MIG_WINDOW_US);
}

/*
 * Pump while the socket takes all it is given, for at most
 * MIG_PUMP_SLICE_US so that the monitor stays responsive: waiting for
 * the next tick whenever the buffer drained would cap the rate at
 * MIG_BUF_HIGH a tick (100 MiB/s).  A full socket resumes the pump
 * when it turns writable, an exhausted slice once the main loop has
 * run what else waits.
 */
static void mig_out_pump(void)
{
    gint64 start = g_get_monotonic_time();

    while (mig_out_pump_once()) {
        if (g_get_monotonic_time() - start >= MIG_PUMP_SLICE_US) {
            mig_out_schedule();
            return;
        }
    }
}

bool mig_out_room(void)
{
    uint64_t max_bw = mig_param_uint("max-bandwidth");

    return out && out->fd >= 0 && !out->end_queued
        && out->buf->len < MIG_BUF_HIGH
        && (out->stopping
            || out->window_bytes < max_bw / (1000000 / MIG_WINDOW_US));
}

void mig_out_reserve(int64_t bytes)
{
    if (out) {
        out->window_bytes = bytes < 0 && (uint64_t)-bytes > out->window_bytes
            ? 0 : out->window_bytes + bytes;
    }
}

uint64_t mig_out_append(MigSection type, uint32_t id, const void *payload,
                        uint32_t len)
{
    MigInfo *mi = mig_info();
    guint before = out->buf->len;
    uint64_t n;

    mig_stream_put_record(out->buf, type, id, payload, len);
    n = out->buf->len - before;
    mi->disk_bytes += n;
    out->pass_bytes += n;
    return n;
}

static gboolean mig_out_idle_cb(gpointer opaque)
{
    out->idle = 0;
    mig_out_pump();
    return G_SOURCE_REMOVE;
}

void mig_out_schedule(void)
{
    if (out && !out->idle) {
        out->idle = g_idle_add(mig_out_idle_cb, NULL);
    }
}

static gboolean mig_out_fail_cb(gpointer opaque)
{
    out->fail_idle = 0;
    mig_out_fail("%s", out->fail_desc);
    return G_SOURCE_REMOVE;
}

void mig_out_fail_later(char *desc)
{
    if (out && !out->fail_desc) {
        out->fail_desc = desc;
        out->fail_idle = g_idle_add(mig_out_fail_cb, NULL);
    } else {
        g_free(desc);
    }
}

static void mig_out_connected_cb(void *opaque, int fd, Error *err)
{
    MigInfo *mi = mig_info();
    g_autofree char *config = NULL;
    g_autofree char *uuid = NULL;

    if (!out || GPOINTER_TO_UINT(opaque) != out_generation) {
        /* cancelled while connecting */
        if (fd >= 0) {
            close(fd);
        }
        error_free(err);
        return;
    }
    if (fd < 0) {
        mig_out_fail("%s", error_get_pretty(err));
        error_free(err);
        return;
    }
    out->fd = fd;
    out->return_path = mig_cap_enabled(MIG_CAP_RETURN_PATH);
    if (out->return_path && !mig_rp_usable(fd)) {
        mig_out_fail("Unable to open return-path for postcopy");
        return;
    }
    if (mig_cap_enabled(MIG_CAP_MULTIFD)) {
        Error *local = NULL;

        out->multifd = mig_param_uint("multifd-channels");
        if (!mig_rp_usable(fd)) {
            mig_out_fail("multifd is not supported by current protocol");
            return;
        }
        if (!mig_multifd_out_start(out->uri, out->multifd,
                                   mig_out_multifd_fail, mig_out_pump,
                                   &local)) {
            mig_out_fail("%s", error_get_pretty(local));
            error_free(local);
            return;
        }
    }
    if (mig_cap_enabled(MIG_CAP_DIRTY_BITMAPS)
        && !mig_bitmaps_out_setup(&err)) {
        mig_out_fail("%s", error_get_pretty(err));
        error_free(err);
        return;
    }
    mig_stream_put_header(out->buf);
    /* QEMU sends the UUID only when it was given and is to be checked */
    uuid = mig_cap_enabled(MIG_CAP_VALIDATE_UUID) && machine_config()->uuid
        ? g_strdup_printf(", \"uuid\": \"%s\"", machine_config()->uuid)
        : g_strdup("");
    config = g_strdup_printf("{\"ram-size\": %" G_GUINT64_FORMAT
                             ", \"page-size\": %d, \"return-path\": %s"
                             ", \"multifd-channels\": %u%s}",
                             physmem_ram_size(), PAGE,
                             out->return_path ? "true" : "false",
                             out->multifd, uuid);
    mig_stream_put_record(out->buf, MIG_SECTION_CONFIG, 0, config,
                          strlen(config));
    if (out->blk) {
        mig_blk_out_put_setup(out->buf);
    }
    mi->total = physmem_ram_size();
    physmem_dirty_log_start();
    out->dirty = hbitmap_new(physmem_ram_size(), PAGE);
    hbitmap_set(out->dirty, 0, physmem_ram_size());
    mi->remaining = mi->total;
    mi->dirty_sync_count = 1;
    mig_converge_start(mi->transferred);
    mig_pass_event();
    out->pass_start = out->window_start = g_get_monotonic_time();
    mi->setup_ms = (out->pass_start - mi->start_us) / 1000;
    mig_set_status(MIG_STATUS_ACTIVE);
    out->timer = g_timeout_add(MIG_TICK_MS, mig_out_tick_cb, NULL);
    mig_out_pump();
}

bool mig_out_start(const char *uri, bool blk, bool inc, Error **errp)
{
    Error *err = NULL;

    g_assert(!out);
    mig_info_reset(true);
    if (blk && !mig_blk_out_setup(inc, errp)) {
        mig_info()->end_us = g_get_monotonic_time();
        mig_set_status(MIG_STATUS_FAILED);
        return false;
    }
    out = g_new0(MigOut, 1);
    out->fd = -1;
    out->blk = blk;
    out->buf = g_byte_array_new();
    out->uri = g_strdup(uri);
    mig_set_status(MIG_STATUS_SETUP);
    if (!mig_channel_connect(uri, mig_out_connected_cb,
                             GUINT_TO_POINTER(++out_generation), &err)) {
        mig_out_free();
        mig_info()->end_us = g_get_monotonic_time();
        /* QEMU's query-migrate says why, as for a later failure */
        mig_info()->error_desc = g_strdup(error_get_pretty(err));
        mig_set_status(MIG_STATUS_FAILED);
        error_propagate(errp, err);
        return false;
    }
    return true;
}

bool mig_out_continue(void)
{
    if (!out || !out->pre_switchover) {
        return false;
    }
    out->pre_switchover = false;
    mig_set_status(MIG_STATUS_DEVICE);
    mig_out_sync();
    mig_out_pump();
    return true;
}

void mig_out_cancel(void)
{
    bool was_running;

    if (!out) {
        return;
    }
    was_running = out->vm_was_running;
    mig_set_status(MIG_STATUS_CANCELLING);
    mig_out_free();
    mig_info()->end_us = g_get_monotonic_time();
    /* QEMU's order: RESUME before cancelled */
    mig_out_restart_guest(was_running);
    mig_set_status(MIG_STATUS_CANCELLED);
}
