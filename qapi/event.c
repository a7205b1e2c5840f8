/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event construction: the timestamp is wall-clock time, as QEMU's, and
 * "data" is present exactly when the event's type has members.
 */
#include "config.h"

#include "qapi/event.h"
#include "qapi/qjson.h"
#include "qapi/validate.h"
#include "util/log.h"

static const QapiSchema *event_schema;
static QapiEventSink *event_sink;
static void *event_opaque;

void qapi_event_init(const QapiSchema *s, QapiEventSink *sink, void *opaque)
{
    event_schema = s;
    event_sink = sink;
    event_opaque = opaque;
}

void qapi_event_send(const char *name, json_t *data)
{
    const QapiEvent *ev = event_schema ? qapi_schema_event(event_schema, name)
                                       : NULL;
    gint64 now = g_get_real_time();
    json_t *obj;

    if (event_schema) {
        Error *err = NULL;

        if (!ev) {
            qmpd_log(LOG_ERR, "bug: event %s is not in the schema", name);
        } else if (data && !qapi_validate_value(ev->data, data, &err)) {
            qmpd_log(LOG_ERR, "bug: event %s: %s", name,
                     error_get_pretty(err));
            error_free(err);
        }
    }
    if (!event_sink) {
        json_decref(data);
        return;
    }
    obj = json_pack("{s:{s:I,s:I},s:o}", "timestamp",
                    "seconds", (json_int_t)(now / G_USEC_PER_SEC),
                    "microseconds", (json_int_t)(now % G_USEC_PER_SEC),
                    "event", qjson_str(name));
    if (ev && ev->data->members->len) {
        json_object_set_new(obj, "data", data ? data : json_object());
    } else {
        json_decref(data);
    }
    event_sink(event_opaque, obj);
    json_decref(obj);
}
