/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU 7.2's trace-event-get-state and trace-event-set-state, and HMP's
 * trace-event and info trace-events, over qmpd's own trace points
 * (util/trace.h).  A plain name must exist; a pattern may match none.
 * No trace point is per-vCPU, so a vCPU index only narrows to nothing.
 */
#include "config.h"

#include <string.h>

#include "monitor/hmp.h"
#include "qapi/qjson.h"
#include "system/cpu.h"
#include "system/trace-cmds.h"
#include "util/trace.h"

/*
 * The trace points @name matches for vCPU @vcpu (-1: any), QEMU's
 * checks in its order; NULL with @errp set.
 */
static GPtrArray *matching(const char *name, int64_t vcpu, Error **errp)
{
    bool pattern = trace_is_pattern(name);
    g_autoptr(GPtrArray) evs = NULL;

    if (vcpu >= 0 && vcpu >= cpu_count()) {
        error_setg(errp, "invalid vCPU index %" G_GINT64_FORMAT, vcpu);
        return NULL;
    }
    evs = trace_match(name);
    if (!pattern && !evs->len) {
        error_setg(errp, "unknown event \"%s\"", name);
        return NULL;
    }
    if (vcpu >= 0) {
        if (!pattern) {
            error_setg(errp, "event \"%s\" is not vCPU-specific", name);
            return NULL;
        }
        g_ptr_array_set_size(evs, 0);
    }
    return g_steal_pointer(&evs);
}

static int64_t vcpu_arg(const json_t *args)
{
    return qjson_has(args, "vcpu") ? qjson_get_int(args, "vcpu") : -1;
}

static json_t *get_state(const json_t *args, Error **errp)
{
    g_autoptr(GPtrArray) evs = matching(qjson_get_str(args, "name"),
                                        vcpu_arg(args), errp);
    json_t *list;

    if (!evs) {
        return NULL;
    }
    list = json_array();
    /* the last registered first, as QEMU lists its events */
    for (guint i = evs->len; i-- > 0;) {
        const TraceEvent *ev = g_ptr_array_index(evs, i);

        json_array_append_new(list, json_pack(
            "{s:s,s:s,s:b}", "name", ev->name, "state",
            ev->enabled ? "enabled" : "disabled", "vcpu", false));
    }
    return list;
}

static bool set_state(const json_t *args, Error **errp)
{
    g_autoptr(GPtrArray) evs = matching(qjson_get_str(args, "name"),
                                        vcpu_arg(args), errp);

    if (!evs) {
        return false;
    }
    for (guint i = 0; i < evs->len; i++) {
        ((TraceEvent *)g_ptr_array_index(evs, i))->enabled =
            qjson_get_bool(args, "enable");
    }
    return true;
}

static bool qmp_trace_event_get_state(const json_t *args, json_t **ret,
                                      Error **errp)
{
    *ret = get_state(args, errp);
    return *ret != NULL;
}

static bool qmp_trace_event_set_state(const json_t *args, json_t **ret,
                                      Error **errp)
{
    return set_state(args, errp);
}

/* QEMU reports these with error_report(): no "Error: " before them */
static void hmp_trace_event(HmpCall *call, const json_t *args)
{
    Error *err = NULL;

    if (!set_state(args, &err)) {
        g_string_append_printf(hmp_call_out(call), "%s\n",
                               error_get_pretty(err));
        error_free(err);
    }
    hmp_call_finish(call);
}

static void hmp_info_trace_events(HmpCall *call, const json_t *args)
{
    g_autoptr(json_t) a = json_deep_copy(args);
    Error *err = NULL;
    g_autoptr(json_t) list = NULL;
    size_t i;
    json_t *v;

    if (!qjson_has(a, "name")) {
        json_object_set_new(a, "name", json_string("*"));
    }
    list = get_state(a, &err);
    if (!list) {
        g_string_append_printf(hmp_call_out(call), "%s\n",
                               error_get_pretty(err));
        error_free(err);
    }
    json_array_foreach(list, i, v) {
        g_string_append_printf(hmp_call_out(call), "%s : state %d\n",
                               qjson_get_str(v, "name"),
                               !strcmp(qjson_get_str(v, "state"),
                                       "enabled"));
    }
    hmp_call_finish(call);
}

const QapiHandler trace_qmp_handlers[] = {
    { "trace-event-get-state", qmp_trace_event_get_state, NULL },
    { "trace-event-set-state", qmp_trace_event_set_state, NULL },
};

const size_t trace_qmp_handlers_count = G_N_ELEMENTS(trace_qmp_handlers);

const HmpHandler trace_hmp_handlers[] = {
    { "trace-event", hmp_trace_event },
    { "info_trace_events", hmp_info_trace_events },
};

const size_t trace_hmp_handlers_count = G_N_ELEMENTS(trace_hmp_handlers);
