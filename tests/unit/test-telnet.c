/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The telnet input filter.  The expected bytes are what QEMU 7.2's
 * monitor ran when the same input was typed into its telnet:...,server
 * socket (IAC IP then 'i' loses the 'i'; IAC IAC reaches the line as
 * one 0xff).  Each case is also fed in every two-read split and byte by
 * byte, since a client's commands can straddle reads.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/telnet.h"

typedef struct {
    const char *in;
    size_t in_len;
    const char *out;
    size_t out_len;
} TelnetCase;

#define CASE(i, o) { i, sizeof(i) - 1, o, sizeof(o) - 1 }

static const TelnetCase cases[] = {
    CASE("info status\r\n", "info status\r\n"),
    /* IAC IAC: a data byte 0xff */
    CASE("st\xff\xff" "atus", "st\xff" "atus"),
    /* IAC BREAK: two bytes, the next one is data again */
    CASE("info \xff\xf3status", "info status"),
    /* IAC IP (interrupt process) takes the byte after it as its option */
    CASE("info \xff\xf4istatus", "info status"),
    /* a client's answers to the offer */
    CASE("\xff\xfd\x01\xff\xfd\x03\xff\xfb\x00\xff\xfd\x00" "x",
         "x"),
    CASE("a\xff\xfb\x01" "b\xff\xfc\x03" "c", "abc"),
    /* the option byte may be IAC itself: it does not start a command */
    CASE("a\xff\xfd\xff" "b", "ab"),
    /* NOP (0xf1) is no exception: it eats a byte too */
    CASE("a\xff\xf1zb", "ab"),
    CASE("\xff\xff\xff\xff", "\xff\xff"),
    CASE("", ""),
};

static void run(const TelnetCase *c, const size_t *cuts, size_t ncuts)
{
    char buf[64];
    char got[64];
    size_t got_len = 0;
    size_t from = 0;
    TelnetState st = TELNET_DATA;

    assert_true(c->in_len <= sizeof(buf));
    for (size_t k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : c->in_len;
        size_t n;

        memcpy(buf, c->in + from, to - from);
        n = telnet_filter(&st, buf, to - from);
        assert_true(n <= to - from);
        memcpy(got + got_len, buf, n);
        got_len += n;
        from = to;
    }
    assert_int_equal(got_len, c->out_len);
    assert_memory_equal(got, c->out, c->out_len);
    assert_int_equal(st, TELNET_DATA);
}

static void test_whole(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run(&cases[i], NULL, 0);
    }
}

static void test_two_reads(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t cut = 0; cut <= cases[i].in_len; cut++) {
            run(&cases[i], &cut, 1);
        }
    }
}

static void test_byte_by_byte(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t cuts[64];

        for (size_t k = 0; k < cases[i].in_len; k++) {
            cuts[k] = k + 1;
        }
        run(&cases[i], cuts, cases[i].in_len ? cases[i].in_len - 1 : 0);
    }
}

/* A command cut off at the end of a read finishes in the next one. */
static void test_state_between_reads(void **state)
{
    TelnetState st = TELNET_DATA;
    char a[] = "ab\xff";
    char b[] = "\xfb";
    char c[] = "\x01" "cd";

    assert_int_equal(telnet_filter(&st, a, 3), 2);
    assert_memory_equal(a, "ab", 2);
    assert_int_equal(st, TELNET_IAC);
    assert_int_equal(telnet_filter(&st, b, 1), 0);
    assert_int_equal(st, TELNET_OPTION);
    assert_int_equal(telnet_filter(&st, c, 3), 2);
    assert_memory_equal(c, "cd", 2);
    assert_int_equal(st, TELNET_DATA);
}

static void test_offer(void **state)
{
    static const unsigned char want[] = {
        0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00
    };

    assert_int_equal(TELNET_OFFER_LEN, sizeof(want));
    assert_memory_equal(TELNET_OFFER, want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_two_reads),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_state_between_reads),
        cmocka_unit_test(test_offer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
