/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The destination side.  -incoming URI listens at once (-incoming
 * defer waits for migrate-incoming), takes one connection and reads the
 * stream as it comes: the header, CONFIG (RAM must be as large as the
 * source's), RAM sections stored into the guest's RAM as they arrive,
 * and END.  The guest does not run before END: its pages may be half
 * a pass old until then, so a stream that breaks off, or that this
 * reader does not understand (another magic or version, a bad
 * checksum, an entry outside RAM), ends the process with QEMU's "load
 * of migration failed" and status 1, and nothing it received is ever
 * run.  After END the guest runs (RESUME, then MIGRATION completed,
 * QEMU's order) unless -S or stop asked it to stay paused.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "block/core/block.h"
#include "migration/block.h"
#include "migration/channel.h"
#include "migration/migration-int.h"
#include "migration/migration.h"
#include "migration/stream.h"
#include "qapi/qjson.h"
#include "system/machine.h"
#include "system/physmem.h"
#include "system/runstate.h"

#define MIG_READ_SIZE (1024 * 1024)

typedef struct MigIn {
    MigListener *listener;
    int fd;
    guint watch;
    guint hup_watch;        /* the main channel, while SYNC waits */
    MigReader *reader;
    bool config_seen;
    bool end_seen;
    bool src_running;       /* END's "running" */
    bool return_path;       /* the source waits for our word */
} MigIn;

static MigIn *in;
static bool deferred = true;

bool mig_in_deferred(void)
{
    return deferred;
}

void mig_in_fail(const char *reason, int err)
{
    if (in && in->return_path) {
        mig_rp_send(in->fd, reason);
    }
    fprintf(stderr, "qmpd: %s\n", reason);
    fprintf(stderr, "qmpd: load of migration failed: %s\n", g_strerror(err));
    mig_set_status(MIG_STATUS_FAILED);
    exit(EXIT_FAILURE);
}

static void mig_in_finish(void)
{
    MigInfo *mi = mig_info();
    bool src_running = in->src_running;

    if (in->watch) {
        g_source_remove(in->watch);
    }
    if (in->hup_watch) {
        g_source_remove(in->hup_watch);
    }
    if (in->return_path) {
        mig_rp_send(in->fd, NULL);
    }
    close(in->fd);
    mig_listener_free(in->listener);
    mig_multifd_in_free();
    mig_reader_free(in->reader);
    g_clear_pointer(&in, g_free);
    mi->end_us = g_get_monotonic_time();
    /*
     * QEMU's: the images become ours now, unless late-block-activate
     * leaves that to the cont that starts a guest staying paused (the
     * locks are taken only for a guest that runs).  An image another
     * process still holds keeps the guest paused.
     */
    if (!mig_cap_enabled(MIG_CAP_LATE_BLOCK_ACTIVATE)
        || (runstate_autostart() && src_running)) {
        Error *err = NULL;

        if (!bdrv_activate_all(&err)) {
            fprintf(stderr, "qmpd: %s\n", error_get_pretty(err));
            error_free(err);
            runstate_no_autostart();
        }
    }
    /* QEMU's global state: a guest saved paused stays paused */
    if (runstate_autostart() && src_running) {
        vm_start();
    } else {
        runstate_set(RUN_STATE_PAUSED);
    }
    mig_set_status(MIG_STATUS_COMPLETED);
}

/*
 * The source's UUID (validate-uuid): another than ours fails the load,
 * as QEMU's; when we have none QEMU only warns, not knowing ours.
 */
static bool mig_in_check_uuid(const json_t *uuid, Error **errp)
{
    if (!json_is_string(uuid)) {
        return true;
    }
    if (!machine_config()->uuid) {
        fprintf(stderr, "qmpd: warning: UUID is received %s, but local uuid "
                "isn't set\n", json_string_value(uuid));
        return true;
    }
    if (strcmp(json_string_value(uuid), machine_config()->uuid)) {
        error_setg(errp, "UUID received is %s and local is %s",
                   json_string_value(uuid), machine_config()->uuid);
        return false;
    }
    return true;
}

static bool mig_in_config(const uint8_t *p, uint32_t len, Error **errp)
{
    g_autoptr(json_t) cfg = json_loadb((const char *)p, len, 0, NULL);
    json_t *size = cfg ? json_object_get(cfg, "ram-size") : NULL;
    json_int_t channels;
    unsigned here;

    if (!json_is_integer(size)) {
        error_setg(errp, "Invalid configuration section");
        return false;
    }
    /* (a refusal from here on goes back on the return path too) */
    in->return_path = json_is_true(json_object_get(cfg, "return-path"));
    /* QEMU's configuration section comes before its RAM's sizes */
    if (!mig_in_check_uuid(json_object_get(cfg, "uuid"), errp)) {
        return false;
    }
    if ((uint64_t)json_integer_value(size) != physmem_ram_size()) {
        error_setg(errp, "Length mismatch: pc.ram: 0x%" G_GINT64_MODIFIER
                   "x in != 0x%" G_GINT64_MODIFIER "x",
                   (uint64_t)json_integer_value(size), physmem_ram_size());
        return false;
    }
    channels = json_integer_value(json_object_get(cfg, "multifd-channels"));
    here = mig_cap_enabled(MIG_CAP_MULTIFD)
        ? mig_param_uint("multifd-channels") : 0;
    if (channels != here && in->fd >= 0) {
        error_setg(errp, "The stream has %" JSON_INTEGER_FORMAT
                   " multifd channels, this destination expects %u",
                   channels, here);
        return false;
    }
    in->config_seen = true;
    return true;
}

/* END's "running": whether the source's guest ran (absent: it did). */
static bool mig_in_end_running(const uint8_t *p, uint32_t len)
{
    g_autoptr(json_t) end = json_loadb((const char *)p, len, 0, NULL);
    json_t *running = end ? json_object_get(end, "running") : NULL;

    return !json_is_false(running);
}

static void mig_in_resume(void);

static void mig_in_blk_done_cb(int ret)
{
    g_assert(ret == 0);
    mig_bitmaps_in_activate();
    mig_in_finish();
}

static gboolean mig_in_end_cb(gpointer opaque)
{
    mig_blk_in_finish(mig_in_blk_done_cb);
    return G_SOURCE_REMOVE;
}

/*
 * The main channel pauses at a multifd SYNC until every channel reaches
 * it.  A source cancelled before it connected them all closes the main
 * channel and never connects the rest: without a watch on the hang-up
 * the destination would wait for ever.  Channels that did connect see
 * the end on their own sockets.
 */
static gboolean mig_in_hangup_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    if (!mig_multifd_in_wanted()) {
        in->hup_watch = 0;
        return G_SOURCE_REMOVE;
    }
    if (mig_listener_pending(in->listener)) {
        return G_SOURCE_CONTINUE;   /* accepted in this round, then seen */
    }
    mig_in_fail("Unexpected end of migration stream", EIO);
    return G_SOURCE_REMOVE;
}

static void mig_in_watch_hangup(void)
{
    if (in->fd >= 0 && !in->hup_watch) {
        in->hup_watch = g_unix_fd_add(in->fd, (GIOCondition)(G_IO_HUP
                                      | G_IO_ERR | POLLRDHUP),
                                      mig_in_hangup_cb, NULL);
    }
}

/*
 * Apply every whole record: 1 to read on, 0 when reading must pause
 * (the disks' writes are behind, END came and they are being
 * completed, or a multifd SYNC waits for the channels), -1 with the
 * reason.
 */
static int mig_in_process(Error **errp)
{
    Error *err = NULL;
    const uint8_t *payload;
    uint32_t id, len;
    uint8_t type;

    for (;;) {
        bool ok;

        if (mig_blk_in_busy(mig_in_resume)) {
            return 0;
        }
        if (mig_reader_next(in->reader, &type, &id, &payload, &len,
                            &err) <= 0) {
            break;
        }

        if (type != MIG_SECTION_CONFIG && !in->config_seen) {
            error_setg(&err, "Section %u before the configuration", id);
            break;
        }
        switch (type) {
        case MIG_SECTION_CONFIG:
            ok = mig_in_config(payload, len, &err);
            break;
        case MIG_SECTION_RAM:
            ok = mig_ram_load(payload, len, &err);
            break;
        case MIG_SECTION_BLOCK_SETUP:
            ok = mig_blk_in_setup(payload, len, &err);
            break;
        case MIG_SECTION_BLOCK:
            ok = mig_blk_in_load(id, payload, len, &err);
            break;
        case MIG_SECTION_BITMAP:
            ok = mig_bitmaps_in_load(payload, len, &err);
            break;
        case MIG_SECTION_END:
            /* the guest may run once its disks hold every write */
            in->src_running = mig_in_end_running(payload, len);
            in->end_seen = true;
            if (in->fd >= 0) {
                g_idle_add(mig_in_end_cb, NULL);
            }
            return 0;
        case MIG_SECTION_MULTIFD_SYNC:
            if (!mig_multifd_in_sync(payload, len, &err)) {
                ok = false;
                break;
            }
            mig_in_watch_hangup();
            mig_multifd_in_poll();
            return 0;
        default:
            error_setg(&err, "Unknown section type %u (id %u)", type, id);
            ok = false;
        }
        if (!ok) {
            break;
        }
    }
    if (err) {
        error_propagate(errp, err);
        return -1;
    }
    return 1;
}

int mig_in_load_bytes(const void *data, size_t len, Error **errp)
{
    int r;

    g_assert(!in);
    in = g_new0(MigIn, 1);
    in->fd = -1;
    in->reader = mig_reader_new();
    mig_reader_feed(in->reader, data, len);
    r = mig_in_process(errp);
    if (r >= 0) {
        r = in->end_seen;
    }
    mig_reader_free(in->reader);
    g_clear_pointer(&in, g_free);
    return r;
}

static gboolean mig_in_readable_cb(gint fd, GIOCondition cond,
                                   gpointer opaque)
{
    ssize_t n = mig_reader_read(in->reader, fd, MIG_READ_SIZE);
    Error *err = NULL;
    int r;

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n < 0) {
        mig_in_fail(g_strerror(errno), EIO);
    }
    if (n == 0) {
        mig_in_fail("Unexpected end of migration stream", EIO);
    }
    r = mig_in_process(&err);
    if (r < 0) {
        mig_in_fail(error_get_pretty(err), EINVAL);
    }
    if (r == 0) {
        in->watch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/*
 * The disks caught up, or every multifd channel reached the main
 * channel's SYNC: records already read first, then the socket.
 */
static void mig_in_resume(void)
{
    Error *err = NULL;
    int r;

    if (!in || in->end_seen || in->watch) {
        return;
    }
    if (in->hup_watch) {
        g_source_remove(in->hup_watch);
        in->hup_watch = 0;
    }
    r = mig_in_process(&err);
    if (r < 0) {
        mig_in_fail(error_get_pretty(err), EINVAL);
    }
    if (r > 0) {
        in->watch = g_unix_fd_add(in->fd, G_IO_IN, mig_in_readable_cb, NULL);
    }
}

static void mig_in_connected_cb(void *opaque, int fd, Error *err)
{
    MigInfo *mi = mig_info();

    if (fd < 0) {
        mig_in_fail(error_get_pretty(err), EIO);
    }
    if (in->fd >= 0) {
        /* after the main channel: multifd's */
        if (!mig_multifd_in_add(fd)) {
            close(fd);
        }
        if (!mig_multifd_in_wanted()) {
            mig_listener_free(in->listener);
            in->listener = NULL;
        }
        return;
    }
    if (mig_cap_enabled(MIG_CAP_MULTIFD)) {
        mig_multifd_in_start(mig_param_uint("multifd-channels"),
                             mig_in_resume);
    } else {
        mig_listener_free(in->listener);
        in->listener = NULL;
    }
    g_clear_pointer(&mi->socket_address, json_decref);
    in->fd = fd;
    in->reader = mig_reader_new();
    mig_set_status(MIG_STATUS_ACTIVE);
    in->watch = g_unix_fd_add(fd, G_IO_IN, mig_in_readable_cb, NULL);
}

bool mig_in_start(const char *uri, Error **errp)
{
    MigListener *l;

    if (!strcmp(uri, "defer")) {
        return true;
    }
    mig_info_reset(false);
    in = g_new0(MigIn, 1);
    in->fd = -1;
    l = mig_channel_listen(uri, mig_in_connected_cb, NULL, errp);
    if (!l) {
        g_clear_pointer(&in, g_free);
        return false;
    }
    deferred = false;
    in->listener = l;
    /* as QEMU: no status while listening, only the address */
    mig_info()->socket_address = mig_listener_address(l);
    return true;
}
