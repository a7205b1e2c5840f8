/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trace points: named events a subsystem fires at its state changes,
 * off until enabled (-trace, trace-event-set-state, HMP trace-event),
 * then written to stderr as QEMU's log backend writes them.  Each
 * directory declares its own in <dir>/trace-events.h as an X-macro list
 * and registers the table at startup.
 */
#ifndef UTIL_TRACE_H
#define UTIL_TRACE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

typedef struct TraceEvent {
    const char *name;
    bool enabled;
} TraceEvent;

/* For <dir>/trace-events.h lists: an index, a table entry. */
#define TRACE_INDEX(name) TRACE_##name,
#define TRACE_ENTRY(name) { #name, false },

/* Add @n events of @events (kept, not copied) to the registry, once. */
void trace_register(TraceEvent *events, size_t n);

/* Is @pattern a glob ('*' or '?' in it), as QEMU tells them apart? */
bool trace_is_pattern(const char *pattern);

/*
 * The registered events @pattern matches (a glob, or a plain name), in
 * registration order; the array is new, its events borrowed.
 */
GPtrArray *trace_match(const char *pattern);

/* Write "PID@SECONDS.MICROSECONDS:NAME ARGS" for enabled @ev to stderr. */
void trace_emit(const TraceEvent *ev, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

#define TRACE(table, name, ...) do {                                    \
        if (G_UNLIKELY((table)[TRACE_##name].enabled)) {                \
            trace_emit(&(table)[TRACE_##name], __VA_ARGS__);            \
        }                                                               \
    } while (0)

#endif /* UTIL_TRACE_H */
