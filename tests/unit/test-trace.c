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
    g_autofree char *stamped = NULL;
    g_autofree char *prefix = g_strdup_printf("%d@", (int)getpid());

    assert_string_equal(off, "");
    /* no prefix but with -msg timestamp=on, as QEMU's log backend */
    assert_true(g_str_has_prefix(on, "job_completed job 0x"));
    assert_true(g_str_has_suffix(on, " ret -5\n"));
    trace_set_timestamp(true);
    stamped = fire(true);
    trace_set_timestamp(false);
    assert_true(g_str_has_prefix(stamped, prefix));
    assert_non_null(strstr(stamped, ":job_completed job 0x"));
    events[TRACE_job_completed].enabled = false;
}

static GString *unknown_seen;

static void unknown(const char *name, int line, void *opaque)
{
    g_string_append_printf(unknown_seen, "%s:%d ", name, line);
}

/* events=FILE: patterns in order, '-' switching off, unknown by line */
static void test_file_and_log(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("qmpd-trace-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "events", NULL);
    g_autofree char *log = g_build_filename(dir, "log", NULL);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);
    g_autofree char *text = NULL;

    unknown_seen = g_string_new(NULL);
    assert_true(g_file_set_contents(path, "job_*\n# x\n\n  -job_completed "
                                    "\nnosuch\n-gone\n", -1, NULL));
    assert_true(trace_load_file(path, unknown, NULL));
    assert_true(events[TRACE_job_state_transition].enabled);
    assert_false(events[TRACE_job_completed].enabled);
    assert_string_equal(unknown_seen->str, "nosuch:5 gone:6 ");
    assert_false(trace_load_file(missing, unknown, NULL));
    assert_false(trace_enable_pattern("nosuch"));
    assert_true(trace_enable_pattern("nosuch*"));
    assert_true(trace_enable_pattern("-job_*"));
    assert_false(events[TRACE_job_state_transition].enabled);

    assert_true(trace_set_logfile(log));
    events[TRACE_job_completed].enabled = true;
    TRACE(events, job_completed, "job %s ret %d", "J", 0);
    events[TRACE_job_completed].enabled = false;
    assert_true(g_file_get_contents(log, &text, NULL, NULL));
    assert_string_equal(text, "job_completed job J ret 0\n");
    assert_false(trace_set_logfile("/nonexistent/dir/log"));

    /* a table taken out is matched no more */
    trace_unregister(events, TEST_TRACE_COUNT);
    {
        g_autoptr(GPtrArray) evs = trace_match("*");

        assert_int_equal(evs->len, 0);
    }
    g_string_free(unknown_seen, TRUE);
    unlink(path);
    unlink(log);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_fire),
        cmocka_unit_test(test_file_and_log),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
