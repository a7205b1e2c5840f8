/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The argument validator against a small schema that uses every kind of
 * type.  Each case gives arguments and the expected QEMU message (or
 * NULL for success).  Messages were observed on QEMU 7.2.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qapi/json-stream.h"
#include "qapi/keyval.h"
#include "qapi/qjson.h"
#include "qapi/validate.h"

static const char test_schema[] =
    "[\n"
    "{\"enum\": \"Mode\", \"data\": [\"fast\", \"safe\"]},\n"
    "{\"struct\": \"Inner\", \"data\": {\"state\": \"bool\", \"*n\": \"int\"}},\n"
    "{\"struct\": \"Base\", \"data\": {\"driver\": \"Mode\", \"*id\": \"str\"}},\n"
    "{\"struct\": \"FastOpts\", \"data\": {\"speed\": \"uint32\"}},\n"
    "{\"union\": \"Opts\", \"base\": \"Base\", \"discriminator\": \"driver\",\n"
    " \"data\": {\"fast\": \"FastOpts\"}},\n"
    "{\"alternate\": \"Ref\", \"data\": {\"definition\": \"Opts\",\n"
    "                                 \"reference\": \"str\"}},\n"
    "{\"alternate\": \"RefOrNull\", \"data\": {\"definition\": \"Opts\",\n"
    "                                       \"null\": \"null\"}},\n"
    "{\"command\": \"all\", \"data\": {\n"
    "   \"*i\": \"int\", \"*i8\": \"int8\", \"*i32\": \"int32\",\n"
    "   \"*u8\": \"uint8\", \"*u32\": \"uint32\", \"*u64\": \"uint64\",\n"
    "   \"*sz\": \"size\", \"*num\": \"number\", \"*b\": \"bool\",\n"
    "   \"*s\": \"str\", \"*nul\": \"null\", \"*any\": \"any\",\n"
    "   \"*mode\": \"Mode\", \"*inner\": \"Inner\", \"*list\": [\"Inner\"],\n"
    "   \"*modes\": [\"Mode\"], \"*ref\": \"Ref\", \"*rn\": \"RefOrNull\"}},\n"
    "{\"command\": \"req\", \"data\": {\"a\": \"str\", \"b\": \"int\"}},\n"
    "{\"command\": \"boxed\", \"data\": \"Opts\", \"boxed\": true}\n"
    "]\n";

static QapiSchema *schema;

typedef struct {
    const char *cmd;
    const char *args;
    const char *error;      /* NULL: valid */
} Case;

static const Case json_cases[] = {
    { "all", "{}", NULL },
    { "all", "{'i': -5, 'i8': -128, 'i32': 2147483647}", NULL },
    { "all", "{'i': 1.5}",
      "Invalid parameter type for 'i', expected: integer" },
    { "all", "{'i': '1'}",
      "Invalid parameter type for 'i', expected: integer" },
    { "all", "{'i': 18446744073709551615}",
      "Invalid parameter type for 'i', expected: integer" },
    { "all", "{'i': null}",
      "Invalid parameter type for 'i', expected: integer" },
    { "all", "{'i8': 128}", "Parameter 'i8' expects int8_t" },
    { "all", "{'i32': -2147483649}", "Parameter 'i32' expects int32_t" },
    { "all", "{'u8': 300}", "Parameter 'u8' expects uint8_t" },
    { "all", "{'u8': -300}", "Parameter 'u8' expects uint8_t" },
    { "all", "{'u32': 4294967295}", NULL },
    { "all", "{'u32': -1}", "Parameter 'u32' expects uint32_t" },
    { "all", "{'u64': -1}", NULL },
    { "all", "{'u64': 18446744073709551615}", NULL },
    { "all", "{'u64': 1e3}", "Parameter 'u64' expects uint64" },
    { "all", "{'u64': 'x'}", "Parameter 'u64' expects uint64" },
    { "all", "{'sz': 1.0}", "Parameter 'sz' expects uint64" },
    { "all", "{'num': 1}", NULL },
    { "all", "{'num': 18446744073709551615}", NULL },
    { "all", "{'num': true}",
      "Invalid parameter type for 'num', expected: number" },
    { "all", "{'b': 1}", "Invalid parameter type for 'b', expected: boolean" },
    { "all", "{'s': 1}", "Invalid parameter type for 's', expected: string" },
    { "all", "{'nul': 0}", "Invalid parameter type for 'nul', expected: null" },
    { "all", "{'any': [1, {'x': null}]}", NULL },
    { "all", "{'mode': 'slow'}", "Parameter 'mode' does not accept value "
      "'slow'" },
    { "all", "{'mode': 1}",
      "Invalid parameter type for 'mode', expected: string" },
    { "all", "{'inner': 1}",
      "Invalid parameter type for 'inner', expected: object" },
    { "all", "{'inner': {}}", "Parameter 'inner.state' is missing" },
    { "all", "{'inner': {'state': true, 'x': 1}}",
      "Parameter 'inner.x' is unexpected" },
    { "all", "{'list': {}}",
      "Invalid parameter type for 'list', expected: array" },
    { "all", "{'list': [{'state': true}, {}]}",
      "Parameter 'list[1].state' is missing" },
    { "all", "{'list': [{'state': true, 'n': 'x'}]}",
      "Invalid parameter type for 'list[0].n', expected: integer" },
    { "all", "{'modes': ['fast', 'x']}",
      "Parameter 'null' does not accept value 'x'" },
    { "all", "{'ref': 'node0'}", NULL },
    { "all", "{'ref': {'driver': 'fast', 'speed': 1}}", NULL },
    { "all", "{'ref': {'driver': 'fast'}}",
      "Parameter 'ref.speed' is missing" },
    { "all", "{'ref': {'driver': 'safe', 'speed': 1}}",
      "Parameter 'ref.speed' is unexpected" },
    { "all", "{'ref': {'driver': 'x'}}",
      "Parameter 'driver' does not accept value 'x'" },
    { "all", "{'ref': {}}", "Parameter 'ref.driver' is missing" },
    { "all", "{'ref': 5}",
      "Invalid parameter type for 'ref', expected: Ref" },
    { "all", "{'ref': null}",
      "Invalid parameter type for 'ref', expected: Ref" },
    { "all", "{'rn': null}", NULL },
    { "all", "{'rn': 'x'}",
      "Invalid parameter type for 'rn', expected: RefOrNull" },
    { "all", "{'zzz': 1}", "Parameter 'zzz' is unexpected" },
    /* required members are checked before unexpected ones */
    { "req", "{'zzz': 1}", "Parameter 'a' is missing" },
    { "req", "{'a': 'x', 'zzz': 1}", "Parameter 'b' is missing" },
    { "req", "{'a': 'x', 'b': 1, 'zzz': 1}", "Parameter 'zzz' is unexpected" },
    /* a boxed union command */
    { "boxed", "{}", "Parameter 'driver' is missing" },
    { "boxed", "{'driver': 'foo'}",
      "Parameter 'driver' does not accept value 'foo'" },
    { "boxed", "{'driver': 'safe', 'id': 'x'}", NULL },
    { "boxed", "{'driver': 'fast', 'speed': 'x'}",
      "Parameter 'speed' expects uint64" },
};

/* keyval input: every scalar is a string */
static const Case keyval_cases[] = {
    { "all", "i=0x10,u64=18446744073709551615,b=on,s=text", NULL },
    { "all", "i=abc", "Parameter 'i' expects integer" },
    { "all", "u32=-1", "Parameter 'u32' expects integer" },
    { "all", "u8=256", "Parameter 'u8' expects uint8_t" },
    { "all", "sz=64M", NULL },
    { "all", "sz=lots", "Parameter 'sz' expects size" },
    { "all", "b=yes", "Parameter 'b' expects 'on' or 'off'" },
    { "all", "num=x", "Invalid parameter type for 'num', expected: number" },
    { "all", "mode=fast", NULL },
    { "all", "mode=x", "Parameter 'mode' does not accept value 'x'" },
    { "all", "inner.state=on,inner.n=3", NULL },
    { "all", "inner.n=3", "Parameter 'inner.state' is missing" },
    { "all", "list.0.state=on,list.1.n=2", "Parameter 'list.1.state' is "
      "missing" },
    { "all", "s.x=1", "Parameters 's.*' are unexpected" },
    { "all", "ref=node0", NULL },
    { "all", "ref.driver=fast,ref.speed=5", NULL },
    { "all", "bogus=1", "Parameter 'bogus' is unexpected" },
};

static int setup(void **state)
{
    const char *texts[] = { test_schema };
    const char *names[] = { "test" };
    Error *err = NULL;

    schema = qapi_schema_load_texts(texts, names, 1, &err);
    if (!schema) {
        print_error("%s\n", error_get_pretty(err));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    qapi_schema_free(schema);
    return 0;
}

static void check_json(const Case *c)
{
    Error *err = NULL;
    GHashTable *big = NULL;
    json_t *args = qjson_parse(c->args, &big, &err);
    const QapiCommand *cmd = qapi_schema_command(schema, c->cmd);
    bool ok;

    assert_non_null(args);
    assert_non_null(cmd);
    ok = qapi_validate(cmd->args, args, big, &err);
    json_decref(args);
    if (big) {
        g_hash_table_unref(big);
    }
    if (c->error) {
        if (ok) {
            print_error("%s: expected error '%s'\n", c->args, c->error);
        }
        assert_false(ok);
        assert_string_equal(error_get_pretty(err), c->error);
        assert_int_equal(error_get_class(err), ERROR_CLASS_GENERIC_ERROR);
        error_free(err);
    } else {
        if (!ok) {
            print_error("%s: %s\n", c->args, error_get_pretty(err));
        }
        assert_true(ok);
    }
}

static void test_json(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(json_cases); i++) {
        check_json(&json_cases[i]);
    }
}

static void test_keyval(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keyval_cases); i++) {
        const Case *c = &keyval_cases[i];
        Error *err = NULL;
        json_t *kv = keyval_parse(c->args, NULL, &err);
        json_t *typed;

        assert_non_null(kv);
        typed = qapi_validate_keyval(qapi_schema_command(schema,
                                                         c->cmd)->args,
                                     kv, &err);
        if (c->error) {
            if (typed) {
                print_error("%s: expected error '%s'\n", c->args, c->error);
            }
            assert_null(typed);
            assert_string_equal(error_get_pretty(err), c->error);
            error_free(err);
        } else {
            if (!typed) {
                print_error("%s: %s\n", c->args, error_get_pretty(err));
            }
            assert_non_null(typed);
            json_decref(typed);
        }
        json_decref(kv);
    }
}

/* keyval values come out typed; numbers in JSON mode become reals */
static void test_conversions(void **state)
{
    Error *err = NULL;
    json_t *kv = keyval_parse("i=0x10,u64=18446744073709551615,b=on,sz=1k,"
                              "num=2.5,inner.state=off", NULL, &err);
    json_t *t = qapi_validate_keyval(qapi_schema_command(schema,
                                                         "all")->args,
                                     kv, &err);
    json_t *args;

    assert_non_null(t);
    assert_int_equal(qjson_get_int(t, "i"), 16);
    assert_true(qjson_get_uint(t, "u64") == UINT64_MAX);
    assert_true(qjson_get_bool(t, "b"));
    assert_int_equal(qjson_get_uint(t, "sz"), 1024);
    assert_true(qjson_get_number(t, "num") == 2.5);
    assert_false(qjson_get_bool(json_object_get(t, "inner"), "state"));
    json_decref(t);
    json_decref(kv);

    args = qjson_parse("{'num': 3}", NULL, &err);
    assert_true(qapi_validate(qapi_schema_command(schema, "all")->args, args,
                              NULL, &err));
    assert_true(json_is_real(json_object_get(args, "num")));
    json_decref(args);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_keyval),
        cmocka_unit_test(test_conversions),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
