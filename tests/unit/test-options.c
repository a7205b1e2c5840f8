/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Option-string parsers: QemuOpts style (-chardev, -mon, -machine),
 * keyval (-blockdev, -device) and the chardev specs with their socket
 * URI shorthands.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/chardev.h"
#include "qapi/keyval.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"

static void test_opts(void **state)
{
    static const char *const keys[] = { "backend", "id", "path", "server",
                                        "wait", NULL };
    static const char *const bools[] = { "server", "wait", NULL };
    Error *err = NULL;
    g_autoptr(Opts) o = opts_parse("socket,id=a,,b,path=/x,server,nowait",
                                   "backend", keys, bools, &err);
    uint64_t v;

    assert_non_null(o);
    assert_string_equal(opts_get(o, "backend"), "socket");
    assert_string_equal(opts_get(o, "id"), "a,b");
    assert_string_equal(opts_get(o, "server"), "on");
    assert_string_equal(opts_get(o, "wait"), "off");
    assert_true(opts_get_bool(o, "server", false, &err));
    assert_false(opts_get_bool(o, "wait", true, &err));
    assert_true(opts_get_bool(o, "missing", true, &err));
    assert_null(err);
    assert_int_equal(opts_count(o), 5);
    assert_string_equal(opts_key(o, 2), "path");

    /* the last repetition wins */
    opts_free(g_steal_pointer(&o));
    o = opts_parse("id=a,id=b", NULL, keys, bools, &err);
    assert_string_equal(opts_get(o, "id"), "b");

    assert_null(opts_parse("socket,bogus=1", "backend", keys, bools, &err));
    assert_string_equal(error_get_pretty(err), "Invalid parameter 'bogus'");
    g_clear_pointer(&err, error_free);
    assert_null(opts_parse("socket,flag", "backend", keys, bools, &err));
    assert_string_equal(error_get_pretty(err), "Invalid parameter 'flag'");
    g_clear_pointer(&err, error_free);

    assert_true(opts_parse_size("64", &v) && v == 64);
    assert_true(opts_parse_size("64k", &v) && v == 64 << 10);
    assert_true(opts_parse_size("1.5G", &v) && v == 3ULL << 29);
    assert_true(opts_parse_size("18446744073709551615", &v)
                && v == UINT64_MAX);
    assert_false(opts_parse_size("-1", &v));
    assert_false(opts_parse_size("1.5", &v));
    assert_false(opts_parse_size("12Q", &v));
    assert_false(opts_parse_size("16E", &v));
}

static void test_keyval(void **state)
{
    Error *err = NULL;
    json_t *v = keyval_parse("driver=qcow2,file.driver=file,"
                             "file.filename=/a,,b,list.0=x,list.1=y,"
                             "node-name=n,node-name=m", NULL, &err);
    char *s;

    assert_non_null(v);
    s = qjson_to_wire(v, false);
    assert_string_equal(s, "{\"driver\": \"qcow2\", \"file\": {\"driver\": "
                        "\"file\", \"filename\": \"/a,b\"}, \"list\": "
                        "[\"x\", \"y\"], \"node-name\": \"m\"}");
    g_free(s);
    json_decref(v);

    v = keyval_parse("virtio-blk-pci,drive=d0", "driver", &err);
    assert_string_equal(qjson_get_str(v, "driver"), "virtio-blk-pci");
    json_decref(v);

    assert_null(keyval_parse("a=1,a.b=2", NULL, &err));
    assert_string_equal(error_get_pretty(err),
                        "Parameter 'a' used inconsistently");
    g_clear_pointer(&err, error_free);
    assert_null(keyval_parse("a.b=1,a=2", NULL, &err));
    assert_string_equal(error_get_pretty(err),
                        "Parameters 'a.*' used inconsistently");
    g_clear_pointer(&err, error_free);
    assert_null(keyval_parse("noequals", NULL, &err));
    assert_string_equal(error_get_pretty(err),
                        "Expected '=' after parameter 'noequals'");
    g_clear_pointer(&err, error_free);
    assert_null(keyval_parse("l.0=a,l.2=b", NULL, &err));
    assert_string_equal(error_get_pretty(err), "Parameter 'l.1' missing");
    g_clear_pointer(&err, error_free);
    assert_null(keyval_parse("a..b=1", NULL, &err));
    assert_string_equal(error_get_pretty(err), "Invalid parameter 'a..b'");
    g_clear_pointer(&err, error_free);
}

typedef struct {
    const char *uri;
    const char *filename;   /* after a successful parse+describe */
    const char *error;
} UriCase;

static const UriCase uri_cases[] = {
    { "stdio", "stdio", NULL },
    { "none", "null", NULL },
    { "tcp:127.0.0.1:4444,server=on,wait=off",
      "tcp:127.0.0.1:4444,server=on", NULL },
    { "tcp:[::1]:4444,server,nowait", "tcp:::1:4444,server=on", NULL },
    { "tcp::4444,server=on,wait=off", "tcp::4444,server=on", NULL },
    { "unix:/run/x.sock,server=on,wait=off", "unix:/run/x.sock,server=on",
      NULL },
    { "unix:/run/x.sock", "unix:/run/x.sock", NULL },
    { "unix:/run/x.sock,wait=off", NULL,
      "'wait' option is incompatible with socket in client connect mode" },
    { "tcp:4444", NULL, "parse error: tcp:4444" },
    { "tcp:host:", NULL, "parse error: tcp:host:" },
    { "tcp:host=127.0.0.1,port=4444,server=on", NULL,
      "parse error: tcp:host=127.0.0.1,port=4444,server=on" },
    { "unix:path=/run/x.sock,server=on,wait=off",
      "unix:/run/x.sock,server=on", NULL },
    { "unix:path=/run/x.sock", "unix:/run/x.sock", NULL },
    { "unix:/run/x.sock,server,nowait", "unix:/run/x.sock,server=on",
      NULL },
    { "unix:", NULL, "Unable to parse FD number " },
    { "unix:path=", NULL, "chardev: socket: no path given" },
    { "pty", NULL, "'pty' is not a valid char driver" },
    { "unix:/x,bogus=1", NULL, "Invalid parameter 'bogus'" },
    { "unix:/x,server=on,telnet=on", "", NULL },
    { "telnet:127.0.0.1:4444,server,nowait", "", NULL },
    { "telnet:4444,server,nowait", NULL,
      "parse error: telnet:4444,server,nowait" },
    { "unix:/x,server=on,websocket=on", NULL,
      "websocket is not supported by qmpd" },
    { "tcp:h:1,server=on,tn3270=on", NULL, "tn3270 is not supported by qmpd" },
};

static void test_chardev_uri(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(uri_cases); i++) {
        const UriCase *c = &uri_cases[i];
        Error *err = NULL;
        char *ref = NULL;
        Chardev *chr = chardev_parse_uri(c->uri, "m0", "-qmp x", &ref, &err);

        assert_null(ref);
        if (c->error) {
            assert_null(chr);
            assert_string_equal(error_get_pretty(err), c->error);
            error_free(err);
            continue;
        }
        assert_non_null(chr);
        assert_string_equal(chardev_id(chr), "m0");
        /* only describe: opening would create sockets */
        if (chardev_kind(chr) != CHARDEV_SOCKET) {
            assert_true(chardev_open(chr, &err));
            assert_string_equal(chardev_filename(chr), c->filename);
        }
        chardev_free(chr);
    }
}

/* telnet: is tcp: with telnet=on, which its options cannot turn off */
static void test_chardev_telnet(void **state)
{
    static const struct {
        const char *uri;
        bool telnet;
    } t[] = {
        { "telnet:127.0.0.1:4444,server=on,wait=off", true },
        { "telnet:127.0.0.1:4444,server=on,wait=off,telnet=off", true },
        { "tcp:127.0.0.1:4444,server=on,wait=off", false },
        { "tcp:127.0.0.1:4444,server=on,wait=off,telnet=on", true },
        { "unix:/x,server=on,telnet=on", true },
        { "stdio", false },
    };
    Error *err = NULL;
    char *ref = NULL;
    Chardev *c;

    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        c = chardev_parse_uri(t[i].uri, "m0", "-monitor x", &ref, &err);
        assert_non_null(c);
        assert_int_equal(chardev_telnet(c), t[i].telnet);
        chardev_free(c);
    }
    c = chardev_parse("socket,id=t,host=127.0.0.1,port=1,server=on,"
                      "wait=off,telnet=on", &err);
    assert_non_null(c);
    assert_true(chardev_telnet(c));
    chardev_free(c);
    assert_null(chardev_parse("socket,id=t,path=/x,telnet=maybe", &err));
    assert_string_equal(error_get_pretty(err),
                        "Parameter 'telnet' expects 'on' or 'off'");
    g_clear_pointer(&err, error_free);
}

static void test_chardev_spec(void **state)
{
    Error *err = NULL;
    char *ref = NULL;
    Chardev *c = chardev_parse("socket,id=mon0,path=/tmp/m,server=on,"
                               "wait=off", &err);

    assert_non_null(c);
    assert_string_equal(chardev_id(c), "mon0");
    assert_int_equal(chardev_kind(c), CHARDEV_SOCKET);
    chardev_free(c);

    c = chardev_parse("socket,id=f,fd=7,server=on,wait=off", &err);
    assert_non_null(c);
    chardev_free(c);

    c = chardev_parse("stdio,id=s,signal=off", &err);
    assert_int_equal(chardev_kind(c), CHARDEV_STDIO);
    chardev_free(c);

    assert_null(chardev_parse("socket,path=/x", &err));
    assert_string_equal(error_get_pretty(err), "chardev: no id specified");
    g_clear_pointer(&err, error_free);
    assert_null(chardev_parse("socket,id=x", &err));
    assert_string_equal(error_get_pretty(err), "Unable to parse FD number ");
    g_clear_pointer(&err, error_free);
    assert_null(chardev_parse("socket,id=x,host=h", &err));
    assert_string_equal(error_get_pretty(err),
                        "chardev: socket: no port given");
    g_clear_pointer(&err, error_free);
    assert_null(chardev_parse("socket,id=x,fd=abc", &err));
    g_clear_pointer(&err, error_free);
    assert_null(chardev_parse("pty,id=x", &err));
    assert_string_equal(error_get_pretty(err),
                        "chardev backend 'pty' is not supported by qmpd");
    g_clear_pointer(&err, error_free);

    assert_null(chardev_parse_uri("chardev:mon0", "m", "-qmp", &ref, &err));
    assert_string_equal(ref, "mon0");
    g_free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_keyval),
        cmocka_unit_test(test_chardev_uri),
        cmocka_unit_test(test_chardev_spec),
        cmocka_unit_test(test_chardev_telnet),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
