/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/trace: registration (once per table), matching by name and glob
 * in registration order, and TRACE() firing only when enabled.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/trace.h"

#define TEST_TRACE_EVENTS(X) X(job_state_transition) X(job_completed) \
    X(migrate_set_state)

enum { TEST_TRACE_EVENTS(TRACE_INDEX) TEST_TRACE_COUNT };

static TraceEvent events[TEST_TRACE_COUNT] = {
    TEST_TRACE_EVENTS(TRACE_ENTRY)
};

static const struct {
    const char *pattern;
    bool is_pattern;
    const char *names;      /* matched, space-separated, in order */
} cases[] = {
    { "job_completed", false, "job_completed" },
    { "job_*", true, "job_state_transition job_completed" },
    { "*state*", true, "job_state_transition migrate_set_state" },
    { "job_complete?", true, "job_completed" },
    { "nosuch", false, "" },
    { "nosuch*", true, "" },
    { "*", true, "job_state_transition job_completed migrate_set_state" },
};

static void test_match(void **state)
{
    trace_register(events, TEST_TRACE_COUNT);
    trace_register(events, TEST_TRACE_COUNT);   /* a second time: no-op */
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GPtrArray) evs = trace_match(cases[i].pattern);
        g_autoptr(GString) names = g_string_new(NULL);

        assert_int_equal(trace_is_pattern(cases[i].pattern),
                         cases[i].is_pattern);
        for (guint k = 0; k < evs->len; k++) {
            g_string_append_printf(names, "%s%s", k ? " " : "",
                                   ((TraceEvent *)evs->pdata[k])->name);
        }
        assert_string_equal(names->str, cases[i].names);
    }
}

/* What TRACE() wrote to stderr while @on. */
static char *fire(bool on)
{
    char buf[256] = "";
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    assert_non_null(tmp);
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    events[TRACE_job_completed].enabled = on;
    TRACE(events, job_completed, "job %p ret %d", (void *)buf, -5);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return g_strdup(buf);
}

static void test_fire(void **state)
{
    g_autofree char *off = fire(false);
    g_autofree char *on = fire(true);
    g_autofree char *prefix = g_strdup_printf("%d@", (int)getpid());

    assert_string_equal(off, "");
    assert_true(g_str_has_prefix(on, prefix));
    assert_non_null(strstr(on, ":job_completed job 0x"));
    assert_true(g_str_has_suffix(on, " ret -5\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_fire),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
