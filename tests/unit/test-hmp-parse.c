/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The human monitor's argument parser: sizes (MiB without a suffix),
 * integer expressions and the args_type walk with QEMU's messages.
 * Every expected value was read off qemu-system-x86_64 7.2's HMP
 * (block_resize and block_job_set_speed, then query-block and
 * query-block-jobs).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/hmp-parse.h"
#include "qapi/qjson.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void test_sizes(void **state)
{
    static const struct {
        const char *in;
        uint64_t val;
        const char *rest;       /* what is left after the size */
    } ok[] = {
        { "300", 300 * MiB, "" },
        { "1", MiB, "" },
        { "10 base", 10 * MiB, " base" },
        { "1.5", 3 * MiB / 2, "" },
        { "0x10", 16 * MiB, "" },
        { "0X2", 2 * MiB, "" },
        { "0x10k", 16 * KiB, "" },      /* 7.2 takes a suffix after hex */
        { "1k", KiB, "" },
        { "2048b", 2048, "" },
        { "4096B", 4096, "" },
        { "1.5k", 1536, "" },
        { "1.k", KiB, "" },
        { "12.", 12 * MiB, "" },
        { "010", 10 * MiB, "" },        /* decimal, not octal */
        { "+5", 5 * MiB, "" },
        { "0.3k", 307, "" },
        { "0.7k", 717, "" },            /* rounded half up */
        { "0.001k", 1, "" },
        { "0.00000001", 0, "" },
        { "0.0004882812k", 0, "" },
        { "0.99999999999999999k", 0, "" },  /* QEMU's x86-64 quirk */
        { "1.9999999999999999999999k", KiB, "" },
        { "1.0000000000000001", MiB, "" },
        { "1.5M", 3 * MiB / 2, "" },
        { "2.25g", 9 * GiB / 4, "" },
        { "7E", 7ull << 60, "" },
        { "0.0b", 0, "" },
        { "10x", 10 * MiB, "x" },
        { "1e3", 1ull << 60, "3" },
        { "0x", 0, "x" },
        { "1.5.5", 3 * MiB / 2, ".5" },
        { "1.nan", MiB, "nan" },
    };
    static const char *const bad[] = {
        "", "abc", ".5", "-1", "1.5b", "0.5b", "0x1.5", "1.5e3k", "nan",
        "inf", "\"10\"", "18446744073709551616b", "0x7fffffffffffffffb",
        "16E",
        "0.044e44440",      /* out of range through an exponent (fuzzer) */
    };

    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        const char *end = NULL;
        uint64_t v = 0;

        assert_int_equal(hmp_strtosz_mib(ok[i].in, &end, &v), 0);
        if (v != ok[i].val) {
            fail_msg("%s: %" PRIu64 ", not %" PRIu64, ok[i].in, v,
                     ok[i].val);
        }
        assert_string_equal(end, ok[i].rest);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        const char *end = NULL;
        uint64_t v = 42;

        /* on the heap, so that a read past the end is caught (ASan) */
        g_autofree char *in = g_strdup(bad[i]);

        if (hmp_strtosz_mib(in, &end, &v) == 0) {
            fail_msg("%s: took it as %" PRIu64, bad[i], v);
        }
        assert_int_equal(v, 42);
    }
}

static void test_expr(void **state)
{
    static const struct {
        const char *in;
        int64_t val;
        const char *msg;        /* NULL: ok */
    } cases[] = {
        { "8*1024", 8192, NULL },
        { "0x10 + 010", 24, NULL },
        { "-(2+3)*4", -20, NULL },
        { "~0", -1, NULL },
        { "'a'", 97, NULL },
        { "7 % 4 | 8 ^ 1", 10, NULL },  /* & | ^ between * and + */
        { "6 & 3", 2, NULL },
        { "", 0, "unexpected end of expression\n" },
        { "abc", 0, "invalid char 'a' in expression\n" },
        { "(1", 0, "')' expected\n" },
        { "1/0", 0, "division by zero\n" },
        { "'a", 0, "missing terminating ' character\n" },
        { "'", 0, "character constant expected\n" },
        { "$pc", 0, "unknown register\n" },
        { "99999999999999999999", 0, "number too large\n" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GString) out = g_string_new(NULL);
        const char *p = cases[i].in;
        int64_t v = 0;
        bool ok = hmp_get_expr(&p, &v, out);

        if (cases[i].msg) {
            assert_false(ok);
            assert_string_equal(out->str, cases[i].msg);
        } else {
            assert_true(ok);
            assert_int_equal(v, cases[i].val);
            assert_string_equal(out->str, "");
        }
    }
}

/* @line's arguments per @type as JSON text, or the messages. */
static char *parse(const char *name, const char *type, const char *line)
{
    g_autoptr(GString) out = g_string_new(NULL);
    json_t *args = hmp_parse_args(name, type, &line, out);
    char *s;

    if (!args) {
        return g_string_free(g_steal_pointer(&out), FALSE);
    }
    s = json_dumps(args, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(args);
    return s;
}

static void test_args(void **state)
{
    static const char mirror[] = "reuse:-n,full:-f,device:B,target:s,"
                                 "format:s?";
    static const struct {
        const char *name, *type, *line, *want;
    } cases[] = {
        { "block_resize", "device:B,size:o", "drive0 300",
          "{\"device\":\"drive0\",\"size\":314572800}" },
        { "block_resize", "device:B,size:o", "", "block_resize: block "
          "device name expected\n" },
        { "block_resize", "device:B,size:o", "drive0", "invalid size\n" },
        { "block_resize", "device:B,size:o", "drive0 10x", "block_resize: "
          "extraneous characters at the end of line\n" },
        { "block_resize", "device:B,size:o", "drive0 10\n",
          "{\"device\":\"drive0\",\"size\":10485760}" },
        { "block_resize", "device:B,size:o", "drive0 5\nx", "block_resize: "
          "extraneous characters at the end of line\n" },
        { "block_resize", "device:B,size:o", "drive0 9223372036854775808b",
          "invalid size\n" },
        { "block_stream", "device:B,speed:o?,base:s?", "d 10 b",
          "{\"base\":\"b\",\"device\":\"d\",\"speed\":10485760}" },
        { "block", "nodes:-n,verbose:-v,device:B?", "-x",
          "block: unsupported option -x\n" },
        { "block", "nodes:-n,verbose:-v,device:B?", "-nv",
          "{\"device\":\"v\",\"nodes\":true}" },
        { "block", "nodes:-n,verbose:-v,device:B?", "-v -n",
          "{\"device\":\"-n\",\"verbose\":true}" },
        { "block_job_cancel", "force:-f,device:B", "-", "block_job_cancel: "
          "unsupported option -" },
        { "block_job_cancel", "force:-f,device:B", "- d", "block_job_cancel: "
          "unsupported option - \n" },
        { "drive_mirror", mirror, "-f -n d t",
          "{\"device\":\"-n\",\"format\":\"t\",\"full\":true,"
          "\"target\":\"d\"}" },
        { "drive_mirror", mirror, "-n -f d t qcow2",
          "{\"device\":\"d\",\"format\":\"qcow2\",\"full\":true,"
          "\"reuse\":true,\"target\":\"t\"}" },
        { "drive_mirror", mirror, "-", "drive_mirror: unsupported option -" },
        { "drive_mirror", mirror, "d", "drive_mirror: string expected\n" },
        { "change", "device:B,force:-f,target:F,arg:s?,read-only-mode:s?",
          "d -o x", "{\"arg\":\"x\",\"device\":\"d\",\"target\":\"-o\"}" },
        { "change", "device:B,force:-f,target:F,arg:s?,read-only-mode:s?",
          "d", "change: filename expected\n" },
        { "drive_del", "id:B", "\"a\\nb\"", "{\"id\":\"a\\nb\"}" },
        { "drive_del", "id:B", "\"a\\\"b\\\\c\\'\"",
          "{\"id\":\"a\\\"b\\\\c'\"}" },
        { "drive_del", "id:B", "a\"b", "{\"id\":\"a\\\"b\"}" },
        { "drive_del", "id:B", "\"\"", "{\"id\":\"\"}" },
        { "drive_del", "id:B", "\"abc", "drive_del: block device name "
          "expected\n" },
        { "drive_del", "id:B", "\"a\\tb\"", "drive_del: block device name "
          "expected\n" },
        { "drive_del", "id:B", "\"x\"y", "drive_del: extraneous characters "
          "at the end of line\n" },
        { "t", "on:b", "on", "{\"on\":true}" },
        { "t", "on:b", "of", "Expected 'on' or 'off'\n" },
        { "t", "n:i", "0x100000000", "'t' has failed: integer is for 32-bit "
          "values\n" },
        { "t", "n:i", "-1", "'t' has failed: integer is for 32-bit "
          "values\n" },
        { "t", "n:l,m:l", "1 2*3", "{\"m\":6,\"n\":1}" },
        { "t", "n:l,m:l", "1", "unexpected end of expression\n" },
        { "t", "s:S", "", "t: string expected\n" },
        { "t", "s:S?", "", "{}" },
        { "t", "v:-fs", "-f", "t: value expected for -f\n" },
        { "t", "v:-fs,w:s", "-f raw x", "{\"v\":\"raw\",\"w\":\"x\"}" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = parse(cases[i].name, cases[i].type,
                                     cases[i].line);

        if (strcmp(got, cases[i].want)) {
            fail_msg("%s %s: got '%s', want '%s'", cases[i].name,
                     cases[i].line, got, cases[i].want);
        }
    }
}

static void test_long_string(void **state)
{
    g_autofree char *line = g_strnfill(2000, 'a');
    const char *p = line;
    g_autofree char *s = hmp_get_str(&p);

    /* QEMU's buffer keeps 1023 bytes and reads the rest */
    assert_int_equal(strlen(s), 1023);
    assert_string_equal(p, "");
}

static void test_args_type_check(void **state)
{
    Error *err = NULL;

    assert_true(hmp_args_type_check("", NULL));
    assert_true(hmp_args_type_check("a:-n,b:B,c:s?,d:-fs,e:o?,f:S?", NULL));
    assert_false(hmp_args_type_check("a:O", &err));
    assert_string_equal(error_get_pretty(err), "bad argument type at 'a:O'");
    g_clear_pointer(&err, error_free);
    assert_false(hmp_args_type_check("a:sx", NULL));
    assert_false(hmp_args_type_check("a:-", NULL));
    assert_false(hmp_args_type_check("nocolon", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_expr),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_long_string),
        cmocka_unit_test(test_args_type_check),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
