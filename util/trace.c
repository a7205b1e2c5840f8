/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The registry of trace points and their output.  Tables stay in the
 * directories that fire them; the registry only points at them, so a
 * disabled trace point costs one load and a branch where it fires.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/trace.h"

static GPtrArray *registry;     /* TraceEvent *, borrowed */

void trace_register(TraceEvent *events, size_t n)
{
    if (!registry) {
        registry = g_ptr_array_new();
    }
    for (size_t i = 0; i < registry->len; i++) {
        if (g_ptr_array_index(registry, i) == events) {
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        g_ptr_array_add(registry, &events[i]);
    }
}

void trace_unregister(TraceEvent *events, size_t n)
{
    for (guint i = registry ? registry->len : 0; i-- > 0;) {
        TraceEvent *ev = g_ptr_array_index(registry, i);

        if (ev >= events && ev < events + n) {
            g_ptr_array_remove_index(registry, i);
        }
    }
}

bool trace_is_pattern(const char *pattern)
{
    return strpbrk(pattern, "*?") != NULL;
}

GPtrArray *trace_match(const char *pattern)
{
    GPtrArray *out = g_ptr_array_new();

    for (guint i = 0; registry && i < registry->len; i++) {
        TraceEvent *ev = g_ptr_array_index(registry, i);

        if (g_pattern_match_simple(pattern, ev->name)) {
            g_ptr_array_add(out, ev);
        }
    }
    return out;
}

static bool timestamp;
static FILE *logfile;

void trace_set_timestamp(bool on)
{
    timestamp = on;
}

bool trace_set_logfile(const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f) {
        return false;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    if (logfile) {
        fclose(logfile);
    }
    logfile = f;
    return true;
}

bool trace_enable_pattern(const char *pattern)
{
    bool on = pattern[0] != '-';
    const char *p = on ? pattern : pattern + 1;
    g_autoptr(GPtrArray) evs = trace_match(p);

    for (guint i = 0; i < evs->len; i++) {
        ((TraceEvent *)g_ptr_array_index(evs, i))->enabled = on;
    }
    return evs->len || trace_is_pattern(p);
}

bool trace_load_file(const char *path, TraceUnknownFn *unknown,
                     void *opaque)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;

    errno = 0;
    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        if (!errno) {
            errno = EIO;
        }
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        char *line = g_strstrip(lines[i]);

        if (*line && *line != '#' && !trace_enable_pattern(line)) {
            unknown(line[0] == '-' ? line + 1 : line, i + 1, opaque);
        }
    }
    return true;
}

void trace_emit(const TraceEvent *ev, const char *fmt, ...)
{
    FILE *out = logfile ? logfile : stderr;
    va_list ap;

    if (timestamp) {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        fprintf(out, "%d@%lld.%06ld:", (int)getpid(), (long long)tv.tv_sec,
                (long)tv.tv_usec);
    }
    fprintf(out, "%s ", ev->name);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}
