/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The embedded schema: it loads, every command has exactly one handler,
 * the HMP table resolves, and introspection is self-consistent (every
 * type it names is described, SchemaInfo shapes hold).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/monitor.h"
#include "qapi/introspect.h"
#include "qapi/qjson.h"
#include "qapi/schema.h"
#include "system/handlers.h"
#include "system/machine.h"
#include "system/runstate.h"

static QapiSchema *load_all(void)
{
    Error *err = NULL;
    QapiSchema *s = qapi_schema_load(&err);

    if (!s) {
        print_error("%s\n", error_get_pretty(err));
    }
    assert_non_null(s);
    qmpd_register_handlers(s);
    return s;
}

static void test_self_check(void **state)
{
    QapiSchema *s = load_all();
    Error *err = NULL;

    if (!qapi_check_handlers(s, &err) || !mon_check(s, &err)) {
        print_error("%s\n", error_get_pretty(err));
        fail();
    }
    qapi_schema_free(s);
}

static void test_introspection(void **state)
{
    QapiSchema *s = load_all();
    json_t *info = qapi_introspect(s);
    g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
    size_t i;
    json_t *e;

    json_array_foreach(info, i, e) {
        const char *name = qjson_get_str(e, "name");

        assert_false(g_hash_table_contains(names, name));
        g_hash_table_add(names, (gpointer)name);
    }
    json_array_foreach(info, i, e) {
        const char *mt = qjson_get_str(e, "meta-type");
        size_t k;
        json_t *m;

        if (!strcmp(mt, "command")) {
            assert_true(g_hash_table_contains(names,
                                              qjson_get_str(e, "arg-type")));
            assert_true(g_hash_table_contains(names,
                                              qjson_get_str(e, "ret-type")));
        } else if (!strcmp(mt, "event")) {
            assert_true(g_hash_table_contains(names,
                                              qjson_get_str(e, "arg-type")));
        } else if (!strcmp(mt, "object")) {
            json_array_foreach(json_object_get(e, "members"), k, m) {
                assert_true(g_hash_table_contains(names,
                                                  qjson_get_str(m, "type")));
                /* optional members carry "default": null */
                if (json_object_get(m, "default")) {
                    assert_true(json_is_null(json_object_get(m, "default")));
                }
            }
            json_array_foreach(json_object_get(e, "variants"), k, m) {
                assert_true(g_hash_table_contains(names,
                                                  qjson_get_str(m, "type")));
            }
        } else if (!strcmp(mt, "array")) {
            assert_true(g_hash_table_contains(
                names, qjson_get_str(e, "element-type")));
        } else if (!strcmp(mt, "enum")) {
            assert_int_equal(json_array_size(json_object_get(e, "members")),
                             json_array_size(json_object_get(e, "values")));
        } else if (!strcmp(mt, "builtin")) {
            /* one entry per JSON type: no int8, size, ... */
            assert_true(strcmp(qjson_get_str(e, "name"), "size") != 0);
        }
    }
    /* argument-less commands share the empty object "0" */
    json_array_foreach(info, i, e) {
        if (!strcmp(qjson_get_str(e, "name"), "query-status")) {
            assert_string_equal(qjson_get_str(e, "arg-type"), "0");
        }
    }
    json_decref(info);
    qapi_schema_free(s);
}

/* Schema authoring mistakes are caught at load time. */
static void test_bad_schemas(void **state)
{
    static const struct {
        const char *text;
        const char *error;
    } cases[] = {
        { "[{\"command\": \"x\", \"data\": {\"a\": \"Nope\"}}]",
          "t: command 'x': unknown type 'Nope'" },
        { "[{\"struct\": \"A\", \"base\": \"A\"}]",
          "t: type 'A': base cycle" },
        { "[{\"command\": \"x\", \"bogus\": 1}]",
          "t: command 'x': unknown key 'bogus'" },
        { "[{\"frob\": \"x\"}]", "t: definition 0: unknown kind 'frob'" },
        { "[{\"enum\": \"E\", \"data\": [\"a\"]},"
          " {\"union\": \"U\", \"base\": {\"t\": \"E\"},"
          " \"discriminator\": \"t\", \"data\": {\"b\": \"q_empty\"}}]",
          "t: type 'U': 'b' is not a value of 'E'" },
        { "[{\"struct\": \"S\", \"data\": {\"a\": \"int\", \"*a\": \"int\"}}]",
          "t: type 'S': member 'a' defined twice" },
        { "[{\"command\": \"x\"}, {\"command\": \"x\"}]",
          "t: command 'x': defined twice" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *texts[] = { cases[i].text };
        const char *names[] = { "t" };
        Error *err = NULL;

        assert_null(qapi_schema_load_texts(texts, names, 1, &err));
        assert_non_null(err);
        if (strcmp(error_get_pretty(err), cases[i].error)) {
            print_error("case %zu: %s\n", i, error_get_pretty(err));
        }
        assert_string_equal(error_get_pretty(err), cases[i].error);
        error_free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_check),
        cmocka_unit_test(test_introspection),
        cmocka_unit_test(test_bad_schemas),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
