/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP session protocol.  Input is split into messages by the JSON
 * stream parser and queued; requests are dispatched one at a time, in
 * order, so replies keep request order even when a handler completes
 * later (async).  A full queue stops reading the socket, as QEMU
 * suspends a monitor whose queue is full.
 */
#include "config.h"

#include <string.h>

#include "monitor/monitor-int.h"
#include "monitor/trace-events.h"
#include "qapi/introspect.h"
#include "qapi/qjson.h"
#include "system/machine.h"
#include "util/log.h"

#define QUEUE_MAX 8

typedef struct {
    json_t *req;
    GHashTable *big;
    Error *err;
} QmpRequest;

static json_t *schema_info_cache;

TraceEvent mon_trace[MON_TRACE_COUNT] = { MON_TRACE_EVENTS(TRACE_ENTRY) };

void mon_trace_register(void)
{
    trace_register(mon_trace, MON_TRACE_COUNT);
}

static void send_json(MonSession *s, const json_t *v, GHashTable *big)
{
    GString *out = g_string_new(NULL);

    qjson_append_wire(out, v, big, s->mon->pretty);
    TRACE(mon_trace, monitor_qmp_respond, "mon %p resp: %s", (void *)s->mon,
          out->str);
    g_string_append_c(out, '\n');
    if (qmpd_log_enabled(LOG_DEBUG)) {
        qmpd_log(LOG_DEBUG, "qmp %u <- %.*s", s->id, (int)out->len - 1,
                 out->str);
    }
    mon_session_puts(s, out->str);
    g_string_free(out, TRUE);
}

static void send_greeting(MonSession *s)
{
    json_t *caps = json_array();
    json_t *g;

    if (s->oob_offered) {
        json_array_append_new(caps, qjson_str("oob"));
    }
    g = json_pack("{s:{s:{s:{s:i,s:i,s:i},s:s},s:o}}", "QMP",
                  "version", "qemu",
                  "micro", QMPD_QEMU_MICRO, "minor", QMPD_QEMU_MINOR,
                  "major", QMPD_QEMU_MAJOR,
                  "package", PACKAGE_NAME " " PACKAGE_VERSION,
                  "capabilities", caps);
    send_json(s, g, NULL);
    json_decref(g);
}

static void parsed_cb(void *opaque, json_t *value, GHashTable *big,
                      Error *err)
{
    MonSession *s = opaque;
    QmpRequest *r = g_new0(QmpRequest, 1);

    r->req = value;
    r->big = big;
    r->err = err;
    if (!err && mon_trace[TRACE_handle_qmp_command].enabled) {
        g_autofree char *txt = qjson_to_wire(value, false);

        TRACE(mon_trace, handle_qmp_command, "mon %p req: %s",
              (void *)s->mon, txt);
    }
    g_queue_push_tail(s->requests, r);
    if (g_queue_get_length(s->requests) >= QUEUE_MAX) {
        mon_session_hold(s, MON_HOLD_QUEUE);
    }
}

static void process_queue(MonSession *s);

static void respond_cb(void *opaque, json_t *rsp, GHashTable *big)
{
    MonSession *s = opaque;

    send_json(s, rsp, big);
    json_decref(rsp);
    s->busy = false;
    if (!s->closed) {
        process_queue(s);
    }
    mon_session_unref(s);
}

static void process_queue(MonSession *s)
{
    QmpRequest *r;

    /* a synchronous reply lands here again; the running loop goes on */
    if (s->dispatching) {
        return;
    }
    s->dispatching = true;
    /*
     * A client that does not read its replies gets no more of them
     * computed until it does: one chunk of input can queue thousands of
     * requests, and answering them all at once would starve every other
     * client (QEMU reads QMP input a byte at a time and cannot get here)
     */
    while (!s->busy && !s->closed && !(s->holds & MON_HOLD_OUTPUT)
           && (r = g_queue_pop_head(s->requests))) {
        if (r->err) {
            json_t *rsp = qapi_error_response(r->err);

            send_json(s, rsp, NULL);
            json_decref(rsp);
        } else {
            QapiDispatchOpts opts = {
                .negotiation = !s->negotiated,
                .oob = s->oob_enabled,
                .caller = s,
            };
            MonSession *prev;

            if (qmpd_log_enabled(LOG_DEBUG)) {
                g_autofree char *txt = qjson_to_wire(r->req, false);

                qmpd_log(LOG_DEBUG, "qmp %u -> %s", s->id, txt);
            }
            if (mon_trace[TRACE_monitor_qmp_cmd_in_band].enabled) {
                json_t *id = json_is_object(r->req)
                    ? json_object_get(r->req, "id") : NULL;
                g_autofree char *txt = id ? qjson_to_wire(id, false) : NULL;

                TRACE(mon_trace, monitor_qmp_cmd_in_band, "%s",
                      txt ? txt : "");
            }
            s->busy = true;
            mon_session_ref(s);
            prev = mon_set_current(s);
            qapi_dispatch(mon_schema(), r->req, r->big, &opts, respond_cb, s);
            mon_set_current(prev);
        }
        g_free(r);
    }
    s->dispatching = false;
    if (g_queue_get_length(s->requests) < QUEUE_MAX) {
        mon_session_release(s, MON_HOLD_QUEUE);
    }
    mon_session_idle(s);
}

bool qmp_session_idle(const MonSession *s)
{
    return !s->busy && g_queue_is_empty(s->requests);
}

void qmp_session_start(MonSession *s)
{
    s->parser = qjson_stream_new(parsed_cb, s);
    s->requests = g_queue_new();
    /* QEMU 7.2 offers oob on every QMP monitor, stdio included */
    s->oob_offered = true;
    send_greeting(s);
}

void qmp_session_input(MonSession *s, const char *buf, size_t len)
{
    qjson_stream_feed(s->parser, buf, len);
    process_queue(s);
}

void qmp_session_drained(MonSession *s)
{
    process_queue(s);
}

static void request_free(gpointer p)
{
    QmpRequest *r = p;

    json_decref(r->req);
    if (r->big) {
        g_hash_table_unref(r->big);
    }
    error_free(r->err);
    g_free(r);
}

void qmp_session_end(MonSession *s)
{
    qjson_stream_free(s->parser);
    s->parser = NULL;
    g_queue_free_full(s->requests, request_free);
    s->requests = NULL;
}

void qmp_session_event(MonSession *s, const json_t *event)
{
    send_json(s, event, NULL);
}

/* ---- the monitor's own commands ---------------------------------------- */

static bool qmp_qmp_capabilities(const json_t *args, json_t **ret,
                                 Error **errp)
{
    MonSession *s = qapi_dispatch_caller();
    const json_t *enable = json_object_get(args, "enable");
    bool oob = false;
    size_t i;
    json_t *cap;

    g_assert(s);
    if (s->negotiated) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Capabilities negotiation is already complete, command "
                  "ignored");
        return false;
    }
    json_array_foreach((json_t *)enable, i, cap) {
        if (!strcmp(json_string_value(cap), "oob")) {
            if (!s->oob_offered) {
                error_setg(errp, "Capability 'oob' not available");
                return false;
            }
            oob = true;
        }
    }
    s->negotiated = true;
    s->oob_enabled = oob;
    return true;
}

static bool qmp_query_commands(const json_t *args, json_t **ret, Error **errp)
{
    *ret = qapi_command_list(mon_schema());
    return true;
}

static bool qmp_query_qmp_schema(const json_t *args, json_t **ret,
                                 Error **errp)
{
    if (!schema_info_cache) {
        schema_info_cache = qapi_introspect(mon_schema());
    }
    *ret = json_incref(schema_info_cache);
    return true;
}

static void hmc_done_cb(void *opaque, const char *output)
{
    qapi_reply_return(opaque, qjson_str(output));
}

static void qmp_human_monitor_command(const json_t *args, QapiReply *reply)
{
    int64_t cpu = qjson_get_int_or(args, "cpu-index", 0);

    /* QEMU: an index of no CPU, which on -M none is any index at all */
    if (qjson_has(args, "cpu-index")
        && (cpu < 0 || cpu >= machine_cpu_count())) {
        Error *err = NULL;

        error_setg(&err, "Parameter 'cpu-index' expects a CPU number");
        qapi_reply_error(reply, err);
        return;
    }
    hmp_run_line(qjson_get_str(args, "command-line"), hmc_done_cb, reply);
}

static bool qmp_query_chardev(const json_t *args, json_t **ret,
                              Error **errp)
{
    *ret = chardev_query_list();
    return true;
}

const QapiHandler mon_qmp_handlers[] = {
    { "query-chardev", qmp_query_chardev, NULL },
    { "qmp_capabilities", qmp_qmp_capabilities, NULL },
    { "query-commands", qmp_query_commands, NULL },
    { "query-qmp-schema", qmp_query_qmp_schema, NULL },
    { "human-monitor-command", NULL, qmp_human_monitor_command },
};

const size_t mon_qmp_handlers_count = G_N_ELEMENTS(mon_qmp_handlers);
