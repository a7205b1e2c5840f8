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

/* Take the @n events of @events out of the registry (before freeing). */
void trace_unregister(TraceEvent *events, size_t n);

/* Is @pattern a glob ('*' or '?' in it), as QEMU tells them apart? */
bool trace_is_pattern(const char *pattern);

/*
 * The registered events @pattern matches (a glob, or a plain name), in
 * registration order; the array is new, its events borrowed.
 */
GPtrArray *trace_match(const char *pattern);

/*
 * Write "NAME ARGS" for enabled @ev to stderr, or to -D's file, with
 * "PID@SECONDS.MICROSECONDS:" before it under -msg timestamp=on, as
 * QEMU's log backend writes.
 */
void trace_emit(const TraceEvent *ev, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* -msg timestamp=on: the prefix above. */
void trace_set_timestamp(bool on);

/* -D FILE: lines go there, the file truncated first as QEMU opens it;
 * false with errno set. */
bool trace_set_logfile(const char *path);

/* -trace's [enable=]PATTERN: switch on what it matches ("-PATTERN"
 * switches off); false when it is a plain name of no event. */
bool trace_enable_pattern(const char *pattern);

/* Called with each name an events file gives that no event has, and
 * its line (from 1). */
typedef void TraceUnknownFn(const char *name, int line, void *opaque);

/*
 * -trace's events=FILE: trace_enable_pattern() for each line, blank
 * lines and '#' comments skipped, @unknown called for names of no
 * event.  False with errno set when the file cannot be read.
 */
bool trace_load_file(const char *path, TraceUnknownFn *unknown,
                     void *opaque);

#define TRACE(table, name, ...) do {                                    \
        if (G_UNLIKELY((table)[TRACE_##name].enabled)) {                \
            trace_emit(&(table)[TRACE_##name], __VA_ARGS__);            \
        }                                                               \
    } while (0)

#endif /* UTIL_TRACE_H */
