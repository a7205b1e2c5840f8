/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside migration/: capabilities and parameters (options.c) and the
 * state of the current migration (migration.c).
 */
#ifndef MIGRATION_MIGRATION_INT_H
#define MIGRATION_MIGRATION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <glib.h>

#include "migration/stream.h"
#include "qapi/error.h"
#include "util/hbitmap.h"

/* QEMU 7.2's MigrationCapability, in its order. */
typedef enum MigCapability {
    MIG_CAP_XBZRLE,
    MIG_CAP_RDMA_PIN_ALL,
    MIG_CAP_AUTO_CONVERGE,
    MIG_CAP_ZERO_BLOCKS,
    MIG_CAP_COMPRESS,
    MIG_CAP_EVENTS,
    MIG_CAP_POSTCOPY_RAM,
    MIG_CAP_X_COLO,
    MIG_CAP_RELEASE_RAM,
    MIG_CAP_BLOCK,
    MIG_CAP_RETURN_PATH,
    MIG_CAP_PAUSE_BEFORE_SWITCHOVER,
    MIG_CAP_MULTIFD,
    MIG_CAP_DIRTY_BITMAPS,
    MIG_CAP_POSTCOPY_BLOCKTIME,
    MIG_CAP_LATE_BLOCK_ACTIVATE,
    MIG_CAP_X_IGNORE_SHARED,
    MIG_CAP_VALIDATE_UUID,
    MIG_CAP_BACKGROUND_SNAPSHOT,
    MIG_CAP_ZERO_COPY_SEND,
    MIG_CAP_POSTCOPY_PREEMPT,
    MIG_CAP__MAX,
} MigCapability;

/* QEMU 7.2's MigrationStatus (the ones qmpd reaches, and the rest). */
typedef enum MigStatus {
    MIG_STATUS_NONE,
    MIG_STATUS_SETUP,
    MIG_STATUS_CANCELLING,
    MIG_STATUS_CANCELLED,
    MIG_STATUS_ACTIVE,
    MIG_STATUS_POSTCOPY_ACTIVE,
    MIG_STATUS_POSTCOPY_PAUSED,
    MIG_STATUS_POSTCOPY_RECOVER,
    MIG_STATUS_COMPLETED,
    MIG_STATUS_FAILED,
    MIG_STATUS_COLO,
    MIG_STATUS_PRE_SWITCHOVER,
    MIG_STATUS_DEVICE,
    MIG_STATUS_WAIT_UNPLUG,
} MigStatus;

const char *mig_cap_name(MigCapability cap);
bool mig_cap_lookup(const char *name, MigCapability *cap);
bool mig_cap_enabled(MigCapability cap);

/* migrate-set-capabilities' list (validated): all or nothing. */
bool mig_caps_set(const json_t *list, Error **errp);
json_t *mig_caps_query(void);

/*
 * migrate's blk/inc: the block capability (and with @inc the
 * block-incremental parameter) for this migration only, as 7.2's
 * deprecated arguments; dropped when it ends (or fails to start).
 */
void mig_block_options_for_one(bool inc);
void mig_block_options_drop(void);

/* migrate-set-parameters' arguments (validated): all or nothing. */
bool mig_params_set(const json_t *args, Error **errp);
json_t *mig_params_query(void);
uint64_t mig_param_uint(const char *name);
bool mig_param_bool(const char *name);

const char *mig_status_name(MigStatus s);

/* Whether an outgoing migration is between setup and its end. */
bool mig_is_running(void);

/*
 * The current (or last) migration as query-migrate shows it.  One
 * migration at a time, outgoing or incoming.
 */
typedef struct MigInfo {
    MigStatus status;
    bool outgoing;
    char *error_desc;
    gint64 start_us, end_us;    /* end_us 0: still running */
    int64_t setup_ms, downtime_ms, expected_downtime_ms;
    /* ram{} */
    uint64_t transferred, remaining, total, duplicate, normal;
    uint64_t dirty_sync_count, dirty_pages_rate, pages_per_second;
    uint64_t precopy_bytes, downtime_bytes, multifd_bytes;
    bool disk;                  /* the disks go too: disk{} */
    uint64_t disk_bytes;        /* block records on the wire */
    double mbps;
    json_t *socket_address;     /* a listening destination's */
} MigInfo;

MigInfo *mig_info(void);

/* Start a new migration's record (status none, counters zero). */
void mig_info_reset(bool outgoing);

/* Change the status; MIGRATION is sent when the events capability is. */
void mig_set_status(MigStatus s);

/* MIGRATION_PASS after a dirty-log read (with the events capability). */
void mig_pass_event(void);

/* outgoing.c */

/* Start migrating to @uri, with the disks when @blk (-i: @inc). */
bool mig_out_start(const char *uri, bool blk, bool inc, Error **errp);
void mig_out_cancel(void);

/* migrate-continue of a migration in pre-switchover; false otherwise. */
bool mig_out_continue(void);

/* block.c's side of the pump: may a read go out now (buffer, window)? */
bool mig_out_room(void);

/* Charge (or, negative, refund) max-bandwidth's current window. */
void mig_out_reserve(int64_t bytes);

/* Append a record for the disks; returns the bytes it took. */
uint64_t mig_out_append(MigSection type, uint32_t id, const void *payload,
                        uint32_t len);

/* Run the pump from the main loop (a read completed). */
void mig_out_schedule(void);

/* Fail the migration from the main loop with @desc (taken). */
void mig_out_fail_later(char *desc);

/* incoming.c */
bool mig_in_deferred(void);

/* QEMU's end of a failed load: @reason, the errno line, exit 1. */
void G_GNUC_NORETURN mig_in_fail(const char *reason, int err);

/*
 * Load a whole stream held in memory into the guest's RAM, as a
 * destination would (the stream fuzzer's entry): 1 when it reached END,
 * 0 when it ended early, -1 with the reason the destination would give.
 * Starts and runs nothing; no incoming migration may be running.
 */
int mig_in_load_bytes(const void *data, size_t len, Error **errp);

/* converge.c: auto-converge */

/* A migration starts, @transferred bytes sent so far. */
void mig_converge_start(uint64_t transferred);

/* A read of the dirty log found @dirty_bytes; may throttle the guest. */
void mig_converge_sync(uint64_t dirty_bytes, uint64_t transferred);

/* The guest's CPU throttle now (0: none). */
unsigned mig_throttle_percentage(void);

/* The migration ended: the guest runs at full speed again. */
void mig_converge_stop(void);

/* multifd.c */

/* A channel failed: the migration fails with @reason. */
typedef void MigMultifdFail(const char *reason);

/* A channel that was full took all it held: the pump may go on. */
typedef void MigMultifdDrained(void);

/* Source: connect @channels more channels to @uri. */
bool mig_multifd_out_start(const char *uri, unsigned channels,
                           MigMultifdFail *fail, MigMultifdDrained *drained,
                           Error **errp);
/* Whether every channel is connected. */
bool mig_multifd_out_ready(void);
/* Why a channel failed while the pump wrote to it, or NULL. */
const char *mig_multifd_out_error(void);
/* Bytes the channels hold, not written yet. */
size_t mig_multifd_out_buffered(void);
/* Send a RAM record (taken) on a channel; false when one failed. */
bool mig_multifd_out_queue(GByteArray *rec);
/* SYNC on every channel and in @main_buf; false when one failed. */
bool mig_multifd_out_sync(GByteArray *main_buf);
void mig_multifd_out_free(void);

/* The main channel may read on after a SYNC. */
typedef void MigMultifdResume(void);

/* Destination: expect @channels channels after the main one. */
void mig_multifd_in_start(unsigned channels, MigMultifdResume *resume);
/* A channel connected; false when none is expected. */
bool mig_multifd_in_add(int fd);
/* Channels still to connect. */
unsigned mig_multifd_in_wanted(void);
/* The main channel read SYNC (@payload): it waits for the channels. */
bool mig_multifd_in_sync(const uint8_t *payload, uint32_t len,
                         Error **errp);
/* Check whether the main channel's SYNC is reached by all. */
void mig_multifd_in_poll(void);
void mig_multifd_in_free(void);

/* return-path.c */
typedef struct MigRp MigRp;

/* The error when the destination closed without a word. */
#define MIG_RP_CLOSED "the destination closed the return path"

/* Called once: @error NULL when the destination loaded the stream. */
typedef void MigRpDone(void *opaque, const char *error);

/* Whether @fd can carry the return path (a socket). */
bool mig_rp_usable(int fd);

/* Destination: say how the load ended (@error NULL: it succeeded). */
void mig_rp_send(int fd, const char *error);

/* Source: wait on @fd (still the caller's) for the destination's word. */
MigRp *mig_rp_wait(int fd, MigRpDone *done, void *opaque);
void mig_rp_free(MigRp *rp);

/* ram.c: RAM entries of the stream */

/*
 * Append a RAM record with entries for the dirty pages of @dirty from
 * *@scan on (at most @max_pages, runs of zero pages as one entry),
 * clearing their bits and advancing *@scan; counts go to mig_info().
 * Returns the pages covered; 0 (and nothing appended) when nothing is
 * dirty from *@scan on.
 */
uint64_t mig_ram_put_dirty(GByteArray *out, HBitmap *dirty, uint64_t *scan,
                           uint64_t max_pages);

/* Apply a RAM section's entries; false with the reason. */
bool mig_ram_load(const uint8_t *p, uint32_t len, Error **errp);

#endif /* MIGRATION_MIGRATION_INT_H */
