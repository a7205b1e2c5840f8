/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The registry of trace points and their output.  Tables stay in the
 * directories that fire them; the registry only points at them, so a
 * disabled trace point costs one load and a branch where it fires.
 */
#include "config.h"

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

void trace_emit(const TraceEvent *ev, const char *fmt, ...)
{
    struct timeval tv;
    va_list ap;

    gettimeofday(&tv, NULL);
    fprintf(stderr, "%d@%lld.%06ld:%s ", (int)getpid(),
            (long long)tv.tv_sec, (long)tv.tv_usec, ev->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
