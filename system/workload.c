/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's workload.  qmpd has no CPU, so this is what makes the
 * guest "live": a 10 ms tick on the main loop that, while the run state
 * is running, writes whole RAM pages and disk chunks at the rates asked
 * for.  Each tick owes rate x elapsed bytes; what a tick cannot pay
 * (a disk with its requests all in flight) is carried over, but never
 * more than 100 ms worth, so a stopped or slow guest does not catch up
 * in a burst.  A CPU throttle (migration's auto-converge) takes its
 * share of the guest's time, so it slows both rates alike.
 *
 * Pages and chunks are chosen by a xorshift generator seeded with the
 * seed, and hold workload_fill()'s pattern of (seed, sequence number):
 * two runs with one seed write the same bytes in the same order, and
 * no write is all zeros (migration sends zero pages as such; the
 * workload must really cost bytes).  Disk writes go through the guest
 * device (its error policy and accounting), up to WL_DISK_DEPTH at a
 * time, each with its own buffer, which outlives a workload that is
 * changed or stopped while it is in flight.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "block/core/block.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"
#include "system/physmem.h"
#include "system/runstate.h"
#include "system/workload.h"

#define WL_TICK_MS 10
#define WL_DISK_CHUNK (64 * 1024)
#define WL_DISK_DEPTH 4

typedef struct Workload {
    uint64_t ram_rate;      /* bytes/s */
    uint64_t disk_rate;
    char *device;           /* guest device id, or NULL */
    uint64_t seed;
    uint64_t rng;           /* xorshift64 state, never 0 */
    uint64_t seq;           /* writes so far: the pattern's counter */
    double ram_owed, disk_owed;
    gint64 last_us;         /* time of the last tick that ran */
    guint timer;
    /* counters for __com.qmpd_query-guest-workload */
    uint64_t ram_written, disk_written, disk_errors;
} Workload;

typedef struct WorkloadWrite {
    void *buf;
} WorkloadWrite;

static Workload wl;
static unsigned disk_in_flight;
static unsigned throttle_pct;    /* survives a change of workload */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t wl_next(void)
{
    wl.rng ^= wl.rng << 13;
    wl.rng ^= wl.rng >> 7;
    wl.rng ^= wl.rng << 17;
    return wl.rng;
}

void workload_fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t seq)
{
    uint64_t base = splitmix64(seed ^ splitmix64(seq));

    for (size_t i = 0; i + 8 <= len; i += 8) {
        /* word 0 carries seq + 1 so the page can never be all zeros */
        uint64_t v = i ? splitmix64(base + i) : seq + 1;

        memcpy(buf + i, &v, 8);
    }
}

static void wl_write_ram(void)
{
    uint64_t pages = physmem_ram_size() / PHYSMEM_PAGE_SIZE;
    uint8_t page[PHYSMEM_PAGE_SIZE];

    while (pages && wl.ram_owed >= PHYSMEM_PAGE_SIZE) {
        uint64_t p = wl_next() % pages;

        workload_fill(page, sizeof(page), wl.seed, wl.seq++);
        physmem_ram_store_page(p * PHYSMEM_PAGE_SIZE, page);
        wl.ram_owed -= PHYSMEM_PAGE_SIZE;
        wl.ram_written += PHYSMEM_PAGE_SIZE;
    }
}

static void wl_disk_done_cb(void *opaque, int ret)
{
    WorkloadWrite *w = opaque;

    disk_in_flight--;
    if (ret < 0) {
        wl.disk_errors++;
    } else {
        wl.disk_written += WL_DISK_CHUNK;
    }
    ioq_buf_free(w->buf);
    g_free(w);
}

static void wl_write_disk(void)
{
    BlockBackend *blk = wl.device ? blk_by_dev_id(wl.device) : NULL;
    uint64_t chunks;

    if (!blk || !blk_root(blk)) {
        wl.disk_owed = 0;     /* unplugged or no medium: nothing to do */
        return;
    }
    chunks = bdrv_length(blk_root(blk)) / WL_DISK_CHUNK;
    while (chunks && wl.disk_owed >= WL_DISK_CHUNK
           && disk_in_flight < WL_DISK_DEPTH) {
        WorkloadWrite *w = g_new0(WorkloadWrite, 1);
        uint64_t off = wl_next() % chunks * WL_DISK_CHUNK;

        w->buf = ioq_buf_alloc(WL_DISK_CHUNK);
        workload_fill(w->buf, WL_DISK_CHUNK, wl.seed, wl.seq++);
        wl.disk_owed -= WL_DISK_CHUNK;
        disk_in_flight++;
        blk_dev_io(blk, BLK_IO_WRITE, off, WL_DISK_CHUNK, w->buf, 0,
                   wl_disk_done_cb, w);
    }
}

static gboolean wl_tick_cb(gpointer opaque)
{
    gint64 now = g_get_monotonic_time();
    double dt = (now - wl.last_us) / 1e6;

    wl.last_us = now;
    if (!runstate_is_running()) {
        return G_SOURCE_CONTINUE;
    }
    dt *= (100 - throttle_pct) / 100.0;
    wl.ram_owed = MIN(wl.ram_owed + wl.ram_rate * dt, wl.ram_rate * 0.1
                      + PHYSMEM_PAGE_SIZE);
    wl.disk_owed = MIN(wl.disk_owed + wl.disk_rate * dt,
                       wl.disk_rate * 0.1 + WL_DISK_CHUNK);
    wl_write_ram();
    wl_write_disk();
    return G_SOURCE_CONTINUE;
}

void workload_set_throttle(unsigned pct)
{
    g_assert(pct < 100);
    throttle_pct = pct;
}

static void wl_stop(void)
{
    if (wl.timer) {
        g_source_remove(wl.timer);
    }
    g_free(wl.device);
    memset(&wl, 0, sizeof(wl));
}

void workload_cleanup(void)
{
    wl_stop();
}

static bool qmp_guest_workload(const json_t *args, json_t **ret,
                               Error **errp)
{
    const char *device = qjson_get_str_or(args, "device", NULL);
    uint64_t disk_rate = qjson_get_uint_or(args, "disk-rate", 0);

    if (disk_rate && !device) {
        error_setg(errp, "Parameter 'device' is missing");
        return false;
    }
    if (device && !blk_by_dev_id(device)) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND,
                  "Device '%s' not found", device);
        return false;
    }
    wl_stop();
    if (!qjson_get_bool_or(args, "running", true)) {
        return true;
    }
    wl.ram_rate = qjson_get_uint_or(args, "ram-rate", 0);
    wl.disk_rate = disk_rate;
    wl.device = g_strdup(device);
    wl.seed = qjson_get_uint_or(args, "seed", 0);
    wl.rng = splitmix64(wl.seed) | 1;
    wl.last_us = g_get_monotonic_time();
    if (wl.ram_rate || wl.disk_rate) {
        wl.timer = g_timeout_add(WL_TICK_MS, wl_tick_cb, NULL);
    }
    return true;
}

static bool qmp_query_guest_workload(const json_t *args, json_t **ret,
                                     Error **errp)
{
    *ret = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b}",
                     "ram-rate", (json_int_t)wl.ram_rate,
                     "disk-rate", (json_int_t)wl.disk_rate,
                     "seed", (json_int_t)wl.seed,
                     "ram-written", (json_int_t)wl.ram_written,
                     "disk-written", (json_int_t)wl.disk_written,
                     "disk-errors", (json_int_t)wl.disk_errors,
                     "active", wl.timer && runstate_is_running());
    if (wl.device) {
        json_object_set_new(*ret, "device", json_string(wl.device));
    }
    return true;
}

const QapiHandler workload_qmp_handlers[] = {
    { "__com.qmpd_guest-workload", qmp_guest_workload, NULL },
    { "__com.qmpd_query-guest-workload", qmp_query_guest_workload, NULL },
    { "__com.qmpd_guest-digest", NULL, guest_digest_async },
};

const size_t workload_qmp_handlers_count = G_N_ELEMENTS(workload_qmp_handlers);
