/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The migration stream's framing: records written and read back whole
 * however the bytes arrive (one at a time too), and each way a reader
 * refuses a stream: magic, version, checksum, length; the checksum is
 * CRC-32C, the same whichever way the CPU lets us compute it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "migration/stream.h"

static GByteArray *two_records(void)
{
    GByteArray *out = g_byte_array_new();

    mig_stream_put_header(out);
    mig_stream_put_record(out, MIG_SECTION_CONFIG, 0, "{}", 2);
    mig_stream_put_record(out, MIG_SECTION_RAM, 1, "abcdef", 6);
    return out;
}

/* Feed @data @step bytes at a time; expect the two records. */
static void read_back(const GByteArray *data, size_t step)
{
    MigReader *r = mig_reader_new();
    const uint8_t *payload;
    uint32_t id, len;
    uint8_t type;
    size_t off = 0;
    int got = 0;

    while (off < data->len) {
        size_t n = MIN(step, data->len - off);
        int ret;

        mig_reader_feed(r, data->data + off, n);
        off += n;
        while ((ret = mig_reader_next(r, &type, &id, &payload, &len,
                                      NULL)) > 0) {
            if (got == 0) {
                assert_int_equal(type, MIG_SECTION_CONFIG);
                assert_int_equal(id, 0);
                assert_int_equal(len, 2);
                assert_memory_equal(payload, "{}", 2);
            } else {
                assert_int_equal(type, MIG_SECTION_RAM);
                assert_int_equal(id, 1);
                assert_int_equal(len, 6);
                assert_memory_equal(payload, "abcdef", 6);
            }
            got++;
        }
        assert_int_equal(ret, 0);
    }
    assert_int_equal(got, 2);
    mig_reader_free(r);
}

static void test_round_trip(void **state)
{
    GByteArray *data = two_records();

    (void)state;
    assert_int_equal(data->len, MIG_STREAM_HEADER_SIZE
                     + 2 * MIG_RECORD_OVERHEAD + 8);
    assert_memory_equal(data->data, "QMPDMIG\n\0\0\0\2", 12);
    for (size_t step = 1; step <= data->len; step++) {
        read_back(data, step);
    }
    g_byte_array_unref(data);
}

/* The message reading @data whole gives. */
static char *refusal(const GByteArray *data)
{
    MigReader *r = mig_reader_new();
    const uint8_t *payload;
    uint32_t id, len;
    uint8_t type;
    Error *err = NULL;
    char *msg;
    int ret;

    mig_reader_feed(r, data->data, data->len);
    while ((ret = mig_reader_next(r, &type, &id, &payload, &len,
                                  &err)) > 0) {
        continue;
    }
    assert_int_equal(ret, -1);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    mig_reader_free(r);
    return msg;
}

static void test_crc32c(void **state)
{
    g_autofree uint8_t *buf = g_malloc(8192 + 7);

    (void)state;
    /* the check value of the CRC catalogue, and RFC 3720's 32 zeros */
    assert_int_equal(mig_crc32c(0, "123456789", 9), 0xe3069283);
    assert_int_equal(mig_crc32c_soft(0, "123456789", 9), 0xe3069283);
    memset(buf, 0, 32);
    assert_int_equal(mig_crc32c(0, buf, 32), 0x8a9136aa);
    /* every length and misalignment, in one go or in two parts */
    for (size_t i = 0; i < 8192 + 7; i++) {
        buf[i] = i * 7 + (i >> 8);
    }
    for (size_t skew = 0; skew < 8; skew++) {
        for (size_t len = 0; len < 300; len += 1 + len / 16) {
            uint32_t want = mig_crc32c_soft(0, buf + skew, len);

            assert_int_equal(mig_crc32c(0, buf + skew, len), want);
            assert_int_equal(mig_crc32c(mig_crc32c(0, buf + skew, len / 3),
                                        buf + skew + len / 3,
                                        len - len / 3), want);
        }
    }
    assert_int_equal(mig_crc32c(0, buf, 8192 + 7),
                     mig_crc32c_soft(0, buf, 8192 + 7));
}

static void test_refused(void **state)
{
    static const struct {
        size_t off;         /* byte to change */
        uint8_t value;
        const char *msg;
    } cases[] = {
        { 0, 'X', "Not a migration stream" },
        { 7, 0, "Not a migration stream" },
        { 11, 1, "Unsupported migration stream version 1" },
        /* the first record's payload, then its CRC */
        { 12 + 9, '[', "Checksum mismatch in section 0" },
        { 12 + 11, 0, "Checksum mismatch in section 0" },
        /* the second record's length: 16 MiB + 6 */
        { 12 + 15 + 5, 1, "Section 1 too long (16777222 bytes)" },
    };

    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GByteArray *data = two_records();
        char *msg;

        data->data[cases[i].off] = cases[i].value;
        msg = refusal(data);
        assert_string_equal(msg, cases[i].msg);
        g_free(msg);
        g_byte_array_unref(data);
    }
}

static void test_short_garbage(void **state)
{
    GByteArray *data = g_byte_array_new();
    char *msg;

    (void)state;
    /* three bytes that cannot start the magic fail at once */
    g_byte_array_append(data, (const guint8 *)"QEV", 3);
    msg = refusal(data);
    assert_string_equal(msg, "Not a migration stream");
    g_free(msg);
    g_byte_array_unref(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_short_garbage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
