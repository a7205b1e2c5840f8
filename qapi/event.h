/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP events: every subsystem emits through qapi_event_send(); the
 * monitor registers the one sink that fans them out to its sessions.
 */
#ifndef QAPI_EVENT_H
#define QAPI_EVENT_H

#include <jansson.h>

#include "qapi/schema.h"

/* Receives each event object (borrowed): timestamp, event, data. */
typedef void QapiEventSink(void *opaque, const json_t *event);

/* Set the schema events are checked against and where they go. */
void qapi_event_init(const QapiSchema *s, QapiEventSink *sink, void *opaque);

/*
 * Emit event @name with @data (taken; NULL for an event without data).
 * The data is checked against the schema; a mismatch is a bug and is
 * logged.  Without a sink (unit tests) events are dropped.
 */
void qapi_event_send(const char *name, json_t *data);

#endif /* QAPI_EVENT_H */
