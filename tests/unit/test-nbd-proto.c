/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The NBD wire helpers against the spec's byte layout and numbers. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nbd/proto.h"

/* A request header as the spec lays it out, byte by byte. */
static void test_request_layout(void **state)
{
    (void)state;
    NbdRequest req = {
        .flags = NBD_CMD_FLAG_FUA, .type = NBD_CMD_WRITE,
        .handle = 0x0102030405060708ULL, .offset = 0x10000, .length = 512,
    };
    static const uint8_t want[NBD_REQUEST_SIZE] = {
        0x25, 0x60, 0x95, 0x13, 0x00, 0x01, 0x00, 0x01,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x02, 0x00,
    };
    uint8_t buf[NBD_REQUEST_SIZE];
    NbdRequest back;

    nbd_request_encode(buf, &req);
    assert_memory_equal(buf, want, sizeof(want));
    assert_true(nbd_request_decode(buf, &back));
    assert_int_equal(back.flags, req.flags);
    assert_int_equal(back.type, req.type);
    assert_true(back.handle == req.handle);
    assert_true(back.offset == req.offset);
    assert_int_equal(back.length, req.length);

    buf[0] ^= 1;
    assert_false(nbd_request_decode(buf, &back));
}

static void test_magics(void **state)
{
    (void)state;
    uint8_t buf[8];

    nbd_put64(buf, NBD_INIT_MAGIC);
    assert_memory_equal(buf, "NBDMAGIC", 8);
    nbd_put64(buf, NBD_OPTS_MAGIC);
    assert_memory_equal(buf, "IHAVEOPT", 8);
    assert_true(nbd_get64(buf) == NBD_OPTS_MAGIC);
}

/* The wire carries the spec's numbers; anything else goes out as EINVAL,
 * as QEMU sends it, and comes in as EIO. */
static void test_errors(void **state)
{
    (void)state;
    static const int known[] = {
        0, EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN,
    };

    for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
        assert_int_equal(nbd_wire_to_errno(nbd_errno_to_wire(known[i])),
                         known[i]);
    }
    assert_int_equal(nbd_errno_to_wire(EROFS), NBD_EPERM);
    assert_int_equal(nbd_errno_to_wire(EDQUOT), NBD_ENOSPC);
    assert_int_equal(nbd_errno_to_wire(ENOENT), NBD_EINVAL);
    assert_int_equal(nbd_errno_to_wire(EACCES), NBD_EINVAL);
    assert_int_equal(nbd_wire_to_errno(99), EIO);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(nbd_opt_name(NBD_OPT_GO), "NBD_OPT_GO");
    assert_string_equal(nbd_opt_name(1000), "<unknown option>");
    assert_string_equal(nbd_cmd_name(NBD_CMD_BLOCK_STATUS),
                        "NBD_CMD_BLOCK_STATUS");
    assert_string_equal(nbd_rep_name(NBD_REP_ERR_UNKNOWN),
                        "NBD_REP_ERR_UNKNOWN");
    assert_int_equal(NBD_REP_ERR_UNSUP, 0x80000001u);
    assert_int_equal(NBD_REPLY_TYPE_ERROR_OFFSET, 0x8002);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_layout),
        cmocka_unit_test(test_magics),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
