/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The current migration's state and the QMP commands that read or
 * steer it.  There is one migration at a time, outgoing or incoming, as
 * in QEMU: its status goes none -> setup -> active -> completed, or to
 * failed, or through cancelling to cancelled, and query-migrate shows
 * the last one until the next begins.  Every status change is a
 * MIGRATION event when the events capability is on.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "migration/block.h"
#include "migration/migration-int.h"
#include "migration/migration.h"
#include "migration/trace-events.h"
#include "qapi/event.h"
#include "migration/channel.h"
#include "qapi/qjson.h"
#include "system/runstate.h"

static const char *const mig_status_names[] = {
    [MIG_STATUS_NONE] = "none",
    [MIG_STATUS_SETUP] = "setup",
    [MIG_STATUS_CANCELLING] = "cancelling",
    [MIG_STATUS_CANCELLED] = "cancelled",
    [MIG_STATUS_ACTIVE] = "active",
    [MIG_STATUS_POSTCOPY_ACTIVE] = "postcopy-active",
    [MIG_STATUS_POSTCOPY_PAUSED] = "postcopy-paused",
    [MIG_STATUS_POSTCOPY_RECOVER] = "postcopy-recover",
    [MIG_STATUS_COMPLETED] = "completed",
    [MIG_STATUS_FAILED] = "failed",
    [MIG_STATUS_COLO] = "colo",
    [MIG_STATUS_PRE_SWITCHOVER] = "pre-switchover",
    [MIG_STATUS_DEVICE] = "device",
    [MIG_STATUS_WAIT_UNPLUG] = "wait-unplug",
};

static MigInfo info;

const char *mig_status_name(MigStatus s)
{
    return mig_status_names[s];
}

MigInfo *mig_info(void)
{
    return &info;
}

void mig_info_reset(bool outgoing)
{
    g_free(info.error_desc);
    json_decref(info.socket_address);
    memset(&info, 0, sizeof(info));
    info.outgoing = outgoing;
    info.start_us = g_get_monotonic_time();
}

TraceEvent mig_trace[MIG_TRACE_COUNT] = { MIG_TRACE_EVENTS(TRACE_ENTRY) };

void mig_trace_register(void)
{
    trace_register(mig_trace, MIG_TRACE_COUNT);
}

void mig_set_status(MigStatus s)
{
    TRACE(mig_trace, migrate_set_state, "new state %s", mig_status_name(s));
    info.status = s;
    if (s == MIG_STATUS_COMPLETED || s == MIG_STATUS_FAILED
        || s == MIG_STATUS_CANCELLED) {
        mig_block_options_drop();
    }
    if (mig_cap_enabled(MIG_CAP_EVENTS)) {
        qapi_event_send("MIGRATION", json_pack("{s:s}", "status",
                                               mig_status_name(s)));
    }
}

void mig_pass_event(void)
{
    if (mig_cap_enabled(MIG_CAP_EVENTS)) {
        qapi_event_send("MIGRATION_PASS",
                        json_pack("{s:I}", "pass",
                                  (json_int_t)info.dirty_sync_count));
    }
}

bool mig_is_running(void)
{
    if (!info.outgoing) {
        return false;
    }
    switch (info.status) {
    case MIG_STATUS_SETUP:
    case MIG_STATUS_ACTIVE:
    case MIG_STATUS_CANCELLING:
    case MIG_STATUS_PRE_SWITCHOVER:
    case MIG_STATUS_DEVICE:
        return true;
    default:
        return false;
    }
}

bool mig_out_finished(const char **error_desc)
{
    *error_desc = info.outgoing && info.status == MIG_STATUS_FAILED
        ? info.error_desc : NULL;
    return !mig_is_running();
}

static json_t *ram_stats(void)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:i,s:I,s:I,s:I,s:f,s:I,s:i,s:i,"
                     "s:I,s:I,s:I,s:I,s:i,s:i}",
                     "transferred", (json_int_t)info.transferred,
                     "remaining", (json_int_t)info.remaining,
                     "total", (json_int_t)info.total,
                     "duplicate", (json_int_t)info.duplicate,
                     "skipped", 0,
                     "normal", (json_int_t)info.normal,
                     "normal-bytes", (json_int_t)(info.normal * 4096),
                     "dirty-pages-rate", (json_int_t)info.dirty_pages_rate,
                     "mbps", info.mbps,
                     "dirty-sync-count", (json_int_t)info.dirty_sync_count,
                     "postcopy-requests", 0, "page-size", 4096,
                     "multifd-bytes", (json_int_t)info.multifd_bytes,
                     "pages-per-second", (json_int_t)info.pages_per_second,
                     "precopy-bytes", (json_int_t)info.precopy_bytes,
                     "downtime-bytes", (json_int_t)info.downtime_bytes,
                     "postcopy-bytes", 0,
                     "dirty-sync-missed-zero-copy", 0);
}

static bool qmp_query_migrate(const json_t *args, json_t **ret,
                              Error **errp)
{
    gint64 end = info.end_us ? info.end_us : g_get_monotonic_time();

    *ret = json_object();
    if (info.socket_address) {
        json_object_set(*ret, "socket-address", info.socket_address);
    }
    if (info.status == MIG_STATUS_NONE) {
        return true;
    }
    json_object_set_new(*ret, "status",
                        json_string(mig_status_name(info.status)));
    if (!info.outgoing) {
        return true;
    }
    switch (info.status) {
    case MIG_STATUS_ACTIVE:
    case MIG_STATUS_PRE_SWITCHOVER:
    case MIG_STATUS_DEVICE:
        json_object_set_new(*ret, "total-time",
                            json_integer((end - info.start_us) / 1000));
        json_object_set_new(*ret, "expected-downtime",
                            json_integer(info.expected_downtime_ms));
        json_object_set_new(*ret, "setup-time",
                            json_integer(info.setup_ms));
        json_object_set_new(*ret, "ram", ram_stats());
        if (info.disk) {
            json_object_set_new(*ret, "disk", mig_blk_out_stats());
        }
        if (mig_throttle_percentage()) {
            json_object_set_new(*ret, "cpu-throttle-percentage",
                                json_integer(mig_throttle_percentage()));
        }
        break;
    case MIG_STATUS_COMPLETED:
        json_object_set_new(*ret, "total-time",
                            json_integer((end - info.start_us) / 1000));
        json_object_set_new(*ret, "downtime",
                            json_integer(info.downtime_ms));
        json_object_set_new(*ret, "setup-time",
                            json_integer(info.setup_ms));
        json_object_set_new(*ret, "ram", ram_stats());
        break;
    case MIG_STATUS_FAILED:
        if (info.error_desc) {
            json_object_set_new(*ret, "error-desc",
                                json_string(info.error_desc));
        }
        break;
    default:
        break;
    }
    return true;
}

static bool qmp_migrate(const json_t *args, json_t **ret, Error **errp)
{
    const char *uri = qjson_get_str(args, "uri");
    bool blk = qjson_get_bool_or(args, "blk", false);
    bool inc = qjson_get_bool_or(args, "inc", false);

    if (qjson_get_bool_or(args, "resume", false)) {
        error_setg(errp, "Cannot resume if there is no paused migration");
        return false;
    }
    if (mig_is_running()) {
        error_setg(errp, "There's a migration process in progress");
        return false;
    }
    if (runstate_get() == RUN_STATE_INMIGRATE) {
        error_setg(errp, "Guest is waiting for an incoming migration");
        return false;
    }
    if (runstate_get() == RUN_STATE_POSTMIGRATE) {
        error_setg(errp, "Can't migrate the vm that was paused due to "
                   "previous migration");
        return false;
    }
    if (!mig_uri_valid(uri)) {
        error_setg(errp, "Parameter 'uri' expects a valid migration "
                   "protocol");
        return false;
    }
    if (blk || inc) {
        /* 7.2: the arguments or the capability and parameter, not both */
        if (mig_cap_enabled(MIG_CAP_BLOCK)
            || mig_param_bool("block-incremental")) {
            error_setg(errp, "Command options are incompatible with "
                       "current migration capabilities");
            return false;
        }
        mig_block_options_for_one(inc);
    }
    if (!mig_out_start(uri, mig_cap_enabled(MIG_CAP_BLOCK),
                       mig_param_bool("block-incremental"), errp)) {
        mig_block_options_drop();
        return false;
    }
    return true;
}

static bool qmp_migrate_incoming(const json_t *args, json_t **ret,
                                 Error **errp)
{
    if (runstate_get() != RUN_STATE_INMIGRATE) {
        error_setg(errp, "'-incoming' was not specified on the command "
                   "line");
        return false;
    }
    if (!mig_in_deferred()) {
        error_setg(errp, "The incoming migration has already been started");
        return false;
    }
    /*
     * QEMU 7.2 announces the start before it reads the URI, with or
     * without the events capability, and whether the URI then works or
     * not; libvirt's restore waits for a MIGRATION event once
     * migrate-incoming returns, and fails ("job 'start' is not active")
     * if none came before the reply
     */
    qapi_event_send("MIGRATION", json_pack("{s:s}", "status", "setup"));
    return mig_in_start(qjson_get_str(args, "uri"), errp);
}

static bool qmp_migrate_set_capabilities(const json_t *args, json_t **ret,
                                         Error **errp)
{
    return mig_caps_set(json_object_get(args, "capabilities"), errp);
}

static bool qmp_query_migrate_capabilities(const json_t *args, json_t **ret,
                                           Error **errp)
{
    *ret = mig_caps_query();
    return true;
}

static bool qmp_migrate_set_parameters(const json_t *args, json_t **ret,
                                       Error **errp)
{
    return mig_params_set(args, errp);
}

static bool qmp_query_migrate_parameters(const json_t *args, json_t **ret,
                                         Error **errp)
{
    *ret = mig_params_query();
    return true;
}

static bool qmp_migrate_cancel(const json_t *args, json_t **ret,
                               Error **errp)
{
    mig_out_cancel();
    return true;
}

static bool qmp_migrate_continue(const json_t *args, json_t **ret,
                                 Error **errp)
{
    const char *state = qjson_get_str(args, "state");

    MigStatus cur = info.outgoing ? info.status : MIG_STATUS_NONE;

    if (strcmp(state, mig_status_name(cur))) {
        error_setg(errp, "Migration not in expected state: %s",
                   mig_status_name(cur));
        return false;
    }
    /* in another state it matches, QEMU's does nothing either */
    mig_out_continue();
    return true;
}

const QapiHandler mig_qmp_handlers[] = {
    { "query-migrate", qmp_query_migrate, NULL },
    { "migrate-set-capabilities", qmp_migrate_set_capabilities, NULL },
    { "query-migrate-capabilities", qmp_query_migrate_capabilities, NULL },
    { "migrate-set-parameters", qmp_migrate_set_parameters, NULL },
    { "query-migrate-parameters", qmp_query_migrate_parameters, NULL },
    { "migrate", qmp_migrate, NULL },
    { "migrate-incoming", qmp_migrate_incoming, NULL },
    { "migrate_cancel", qmp_migrate_cancel, NULL },
    { "migrate-continue", qmp_migrate_continue, NULL },
};

const size_t mig_qmp_handlers_count = G_N_ELEMENTS(mig_qmp_handlers);
