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

#include <glib.h>

#include "migration/migration-int.h"
#include "migration/migration.h"
#include "qapi/event.h"
#include "qapi/qjson.h"

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

static MigStatus out_status = MIG_STATUS_NONE;

const char *mig_status_name(MigStatus s)
{
    return mig_status_names[s];
}

bool mig_is_running(void)
{
    switch (out_status) {
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

static bool qmp_query_migrate(const json_t *args, json_t **ret,
                              Error **errp)
{
    *ret = json_object();
    if (out_status == MIG_STATUS_NONE) {
        return true;
    }
    json_object_set_new(*ret, "status",
                        json_string(mig_status_name(out_status)));
    return true;
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
    return true;
}

static bool qmp_migrate_continue(const json_t *args, json_t **ret,
                                 Error **errp)
{
    const char *state = qjson_get_str(args, "state");

    if (strcmp(state, mig_status_name(out_status))) {
        error_setg(errp, "Migration not in expected state: %s",
                   mig_status_name(out_status));
        return false;
    }
    return true;
}

const QapiHandler mig_qmp_handlers[] = {
    { "query-migrate", qmp_query_migrate, NULL },
    { "migrate-set-capabilities", qmp_migrate_set_capabilities, NULL },
    { "query-migrate-capabilities", qmp_query_migrate_capabilities, NULL },
    { "migrate-set-parameters", qmp_migrate_set_parameters, NULL },
    { "query-migrate-parameters", qmp_query_migrate_parameters, NULL },
    { "migrate_cancel", qmp_migrate_cancel, NULL },
    { "migrate-continue", qmp_migrate_continue, NULL },
};

const size_t mig_qmp_handlers_count = G_N_ELEMENTS(mig_qmp_handlers);
