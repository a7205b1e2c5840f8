/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP input splitter and parser: each case feeds bytes (whole and
 * one byte at a time) and lists what comes out, a value printed as QEMU
 * prints it or an error message.  Expected results were observed on
 * QEMU 7.2.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qapi/json-stream.h"
#include "qapi/qjson.h"

typedef struct {
    const char *input;
    size_t len;               /* 0: strlen(input) */
    const char *const out[6]; /* values or "E:message" */
} Case;

static const Case cases[] = {
    { "{\"execute\":\"query-status\"}", 0,
      { "{\"execute\": \"query-status\"}" } },
    { "{'execute':'query-name'}", 0, { "{\"execute\": \"query-name\"}" } },
    { "{\"a\":1}{\"b\":[1,2.5,true,null]}", 0,
      { "{\"a\": 1}", "{\"b\": [1, 2.5, true, null]}" } },
    { "[1,2]", 0, { "[1, 2]" } },
    { "\"str\"", 0, { "\"str\"" } },
    /* a number ends only when the next character arrives */
    { "123", 0, { NULL } },
    { "123 ", 0, { "123" } },
    { "}", 0, { "E:JSON parse error, expecting value" } },
    { "]", 0, { "E:JSON parse error, expecting value" } },
    { "{\"a\":}", 0, { "E:JSON parse error, expecting value" } },
    { "{\"a\" 1}", 0, { "E:JSON parse error, missing : in object pair" } },
    { "{\"a\":1,}", 0, { "E:JSON parse error, expecting value" } },
    { "[1,]", 0, { "E:JSON parse error, expecting value" } },
    { "{1:2}", 0, { "E:JSON parse error, key is not a string in object" } },
    { "{\"a\":1 \"b\":2}", 0,
      { "E:JSON parse error, expected separator in dict" } },
    { "[1 2]", 0, { "E:JSON parse error, expected separator in list" } },
    { "{\"a\":1,\"a\":2}", 0, { "E:JSON parse error, duplicate key" } },
    { "\"abc\\q\"", 0,
      { "E:JSON parse error, invalid escape sequence in string" } },
    { "\"\\u00\"", 0,
      { "E:JSON parse error, \\u00\" is not a valid Unicode character" } },
    { "\"\\ud800\"", 0,
      { "E:JSON parse error, \\ud800 is not a valid Unicode character" } },
    { "\"\\ud83d\\ude00\"", 0, { "\"\\uD83D\\uDE00\"" } },
    { "\"\\u0000\"", 0, { "\"\\u0000\"" } },
    { "\"\\u00e9\\/\"", 0, { "\"\\u00E9/\"" } },
    { "{bad json}", 0, { "E:JSON parse error, invalid keyword 'bad'" } },
    { "abc\n", 0, { "E:JSON parse error, invalid keyword 'abc'" } },
    { "@", 0, { "E:JSON parse error, stray '@'" } },
    { "\"\x01\"", 0, { "E:JSON parse error, stray '\"\x01'" } },
    /* after a stray token input is skipped to a structural character */
    { "01 2 {\"a\":1}", 0,
      { "E:JSON parse error, stray '01'", "{\"a\": 1}" } },
    { "-x\n[1]", 0, { "E:JSON parse error, stray '-x'", "[1]" } },
    { "{\"a\":@}", 0,
      { "E:JSON parse error, stray '@'",
        "E:JSON parse error, expecting value" } },
    { "1.5e3 -0 ", 0, { "1500", "0" } },
    { "18446744073709551615 ", 0, { "18446744073709551615" } },
    { "-9223372036854775809 ", 0, { "-9.2233720368547758e+18" } },
    { "\"\xc3\xa9\"", 0, { "\"\\u00E9\"" } },
    { "\"\xc0\xaf\"", 0,
      { "E:JSON parse error, invalid UTF-8 sequence in string" } },
    { "tru", 0, { NULL } },
    { "True", 0, { "E:JSON parse error, stray 'T'" } },
};

typedef struct {
    GPtrArray *got;
} Sink;

static void sink_cb(void *opaque, json_t *value, GHashTable *big, Error *err)
{
    Sink *s = opaque;

    if (err) {
        g_ptr_array_add(s->got, g_strdup_printf("E:%s",
                                                error_get_pretty(err)));
        error_free(err);
    } else {
        GString *out = g_string_new(NULL);

        qjson_append_wire(out, value, big, false);
        g_ptr_array_add(s->got, g_string_free(out, FALSE));
        json_decref(value);
    }
    if (big) {
        g_hash_table_unref(big);
    }
}

static void run_case(const Case *c, bool bytewise)
{
    Sink s = { g_ptr_array_new_with_free_func(g_free) };
    QJsonStream *js = qjson_stream_new(sink_cb, &s);
    size_t len = c->len ? c->len : strlen(c->input);
    size_t n = 0;

    if (bytewise) {
        for (size_t i = 0; i < len; i++) {
            qjson_stream_feed(js, c->input + i, 1);
        }
    } else {
        qjson_stream_feed(js, c->input, len);
    }
    while (n < G_N_ELEMENTS(c->out) && c->out[n]) {
        n++;
    }
    if (s.got->len != n) {
        print_error("input %s: got %u outputs\n", c->input, s.got->len);
        for (guint i = 0; i < s.got->len; i++) {
            print_error("  %s\n", (char *)g_ptr_array_index(s.got, i));
        }
    }
    assert_int_equal(s.got->len, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(g_ptr_array_index(s.got, i), c->out[i]);
    }
    qjson_stream_free(js);
    g_ptr_array_unref(s.got);
}

static void test_cases(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        run_case(&cases[i], false);
        run_case(&cases[i], true);
    }
}

static size_t count_outputs(const char *buf, size_t len, GPtrArray *got)
{
    Sink s = { got };
    QJsonStream *js = qjson_stream_new(sink_cb, &s);

    qjson_stream_feed(js, buf, len);
    qjson_stream_free(js);
    return got->len;
}

/* 100,000 open brackets: one error per 1025, bounded memory. */
static void test_nesting_limit(void **state)
{
    size_t n = 100000;
    char *buf = g_malloc(n);
    g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);

    memset(buf, '[', n);
    assert_int_equal(count_outputs(buf, n, got), n / 1025);
    assert_string_equal(g_ptr_array_index(got, 0),
                        "E:JSON nesting depth limit exceeded");
    g_free(buf);
}

/* A 65 MiB string token is cut at 64 MiB and reported. */
static void test_token_size_limit(void **state)
{
    size_t n = (65u << 20) + 2;
    char *buf = g_malloc(n);
    g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);

    memset(buf, 'a', n);
    buf[0] = '"';
    buf[n - 1] = '\n';
    count_outputs(buf, n, got);
    assert_true(got->len >= 1);
    assert_string_equal(g_ptr_array_index(got, 0),
                        "E:JSON token size limit exceeded");
    g_free(buf);
}

static void test_flush(void **state)
{
    g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);
    Sink s = { got };
    QJsonStream *js = qjson_stream_new(sink_cb, &s);

    qjson_stream_feed(js, "12", 2);
    assert_int_equal(got->len, 0);
    qjson_stream_flush(js);
    assert_int_equal(got->len, 1);
    assert_string_equal(g_ptr_array_index(got, 0), "12");
    qjson_stream_feed(js, "{\"a\":", 5);
    qjson_stream_flush(js);
    assert_int_equal(got->len, 2);
    assert_string_equal(g_ptr_array_index(got, 1),
                        "E:JSON parse error, premature EOI");
    qjson_stream_free(js);
}

static void test_parse_one(void **state)
{
    Error *err = NULL;
    json_t *v = qjson_parse("{'a': [1, 'x']}", NULL, &err);

    assert_non_null(v);
    assert_null(err);
    assert_int_equal(json_integer_value(json_array_get(
        json_object_get(v, "a"), 0)), 1);
    json_decref(v);
    assert_null(qjson_parse("{'a': 1} {}", NULL, &err));
    assert_non_null(err);
    error_free(err);
    err = NULL;
    assert_null(qjson_parse("{'a'", NULL, &err));
    assert_string_equal(error_get_pretty(err),
                        "JSON parse error, premature EOI");
    error_free(err);
}

/* The serializer: QEMU's escapes, separators and pretty layout. */
static void test_wire(void **state)
{
    json_t *v = json_pack("{s:[i,s,f],s:{},s:[]}", "a", 1, "x\t\"\x7f",
                          0.1, "b", "c");
    char *s = qjson_to_wire(v, false);

    assert_string_equal(s, "{\"a\": [1, \"x\\t\\\"\\u007F\", "
                        "0.10000000000000001], \"b\": {}, \"c\": []}");
    g_free(s);
    s = qjson_to_wire(v, true);
    assert_string_equal(s, "{\n    \"a\": [\n        1,\n        "
                        "\"x\\t\\\"\\u007F\",\n        0.10000000000000001\n"
                        "    ],\n    \"b\": {\n    },\n    \"c\": [\n    ]\n}");
    g_free(s);
    json_decref(v);
    v = qjson_str("bad \xff byte");
    s = qjson_to_wire(v, false);
    assert_string_equal(s, "\"bad \\uFFFD byte\"");
    g_free(s);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_token_size_limit),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_parse_one),
        cmocka_unit_test(test_wire),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
