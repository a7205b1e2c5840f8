/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD client's reply handling: header decoding and each chunk's
 * checks, table-driven, then a connection over a socketpair whose far
 * end plays the server byte by byte: pipelined requests answered out of
 * order, data split across reads, holes, errors, block status, and a
 * framing error that loses the link.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "nbd/client.h"

static void put_simple(uint8_t *b, uint32_t err, uint64_t handle)
{
    nbd_put32(b, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(b + 4, err);
    nbd_put64(b + 8, handle);
}

static void put_chunk(uint8_t *b, uint16_t flags, uint16_t type,
                      uint64_t handle, uint32_t len)
{
    nbd_put32(b, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put16(b + 4, flags);
    nbd_put16(b + 6, type);
    nbd_put64(b + 8, handle);
    nbd_put32(b + 16, len);
}

static void test_header_decode(void **state)
{
    uint8_t b[32];
    NbdReplyHeader h;

    (void)state;
    put_simple(b, NBD_EIO, 7);
    for (size_t n = 0; n < NBD_SIMPLE_REPLY_SIZE; n++) {
        assert_int_equal(nbd_reply_header_decode(b, n, &h), 0);
    }
    assert_int_equal(nbd_reply_header_decode(b, 16, &h), 16);
    assert_false(h.structured);
    assert_int_equal(h.error, NBD_EIO);
    assert_int_equal(h.handle, 7);

    put_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, 9, 520);
    assert_int_equal(nbd_reply_header_decode(b, 19, &h), 0);
    assert_int_equal(nbd_reply_header_decode(b, 20, &h), 20);
    assert_true(h.structured);
    assert_int_equal(h.type, NBD_REPLY_TYPE_OFFSET_DATA);
    assert_int_equal(h.flags, NBD_REPLY_FLAG_DONE);
    assert_int_equal(h.length, 520);

    nbd_put32(b, 0xdeadbeef);
    assert_int_equal(nbd_reply_header_decode(b, 20, &h), -EPROTO);
}

/* which chunks a command may get, and their sizes */
static void test_chunk_check(void **state)
{
    static const struct {
        uint16_t type, flags, cmd;
        uint32_t length;
        int want;
    } cases[] = {
        { NBD_REPLY_TYPE_NONE, NBD_REPLY_FLAG_DONE, NBD_CMD_READ, 0, 0 },
        { NBD_REPLY_TYPE_NONE, 0, NBD_CMD_READ, 0, -EPROTO },
        { NBD_REPLY_TYPE_NONE, NBD_REPLY_FLAG_DONE, NBD_CMD_READ, 4,
          -EPROTO },
        { NBD_REPLY_TYPE_OFFSET_DATA, 0, NBD_CMD_READ, 8 + 4096, 0 },
        { NBD_REPLY_TYPE_OFFSET_DATA, 0, NBD_CMD_READ, 8, -EPROTO },
        { NBD_REPLY_TYPE_OFFSET_DATA, 0, NBD_CMD_READ, 8 + 4097, -EPROTO },
        { NBD_REPLY_TYPE_OFFSET_DATA, 0, NBD_CMD_WRITE, 8 + 512, -EPROTO },
        { NBD_REPLY_TYPE_OFFSET_HOLE, 0, NBD_CMD_READ, 12, 0 },
        { NBD_REPLY_TYPE_OFFSET_HOLE, 0, NBD_CMD_READ, 16, -EPROTO },
        { NBD_REPLY_TYPE_OFFSET_HOLE, 0, NBD_CMD_BLOCK_STATUS, 12,
          -EPROTO },
        { NBD_REPLY_TYPE_BLOCK_STATUS, 0, NBD_CMD_BLOCK_STATUS, 12, 0 },
        { NBD_REPLY_TYPE_BLOCK_STATUS, 0, NBD_CMD_BLOCK_STATUS, 28, 0 },
        { NBD_REPLY_TYPE_BLOCK_STATUS, 0, NBD_CMD_BLOCK_STATUS, 16,
          -EPROTO },
        { NBD_REPLY_TYPE_BLOCK_STATUS, 0, NBD_CMD_READ, 12, -EPROTO },
        { NBD_REPLY_TYPE_ERROR, 0, NBD_CMD_WRITE, 6, 0 },
        { NBD_REPLY_TYPE_ERROR, 0, NBD_CMD_WRITE, 5, -EPROTO },
        { NBD_REPLY_TYPE_ERROR_OFFSET, 0, NBD_CMD_READ, 14, 0 },
        { NBD_REPLY_TYPE_ERROR_OFFSET, 0, NBD_CMD_READ, 13, -EPROTO },
        { NBD_REPLY_TYPE_ERR(9), 0, NBD_CMD_READ, 6, 0 },
        { 77, 0, NBD_CMD_READ, 0, -EPROTO },
    };

    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        NbdReplyHeader h = { .structured = true, .type = cases[i].type,
                             .flags = cases[i].flags,
                             .length = cases[i].length };

        assert_int_equal(nbd_chunk_check(&h, cases[i].cmd, 0, 4096),
                         cases[i].want);
    }
}

static void test_chunk_payloads(void **state)
{
    uint8_t p[64];
    NbdReplyHeader h = { .structured = true };
    uint64_t off;
    uint32_t len, flags;
    int err;

    (void)state;
    /* data: [off, off + len) must lie in the request [4096, 8192) */
    h.type = NBD_REPLY_TYPE_OFFSET_DATA;
    h.length = 8 + 1024;
    nbd_put64(p, 4096 + 3072);
    assert_int_equal(nbd_chunk_data_offset(&h, p, 4096, 4096, &off), 0);
    assert_int_equal(off, 7168);
    nbd_put64(p, 4096 + 3073);
    assert_int_equal(nbd_chunk_data_offset(&h, p, 4096, 4096, &off),
                     -EPROTO);
    nbd_put64(p, 4095);
    assert_int_equal(nbd_chunk_data_offset(&h, p, 4096, 4096, &off),
                     -EPROTO);

    h.type = NBD_REPLY_TYPE_OFFSET_HOLE;
    h.length = 12;
    nbd_put64(p, 4096);
    nbd_put32(p + 8, 4096);
    assert_int_equal(nbd_chunk_hole(&h, p, 4096, 4096, &off, &len), 0);
    assert_int_equal(len, 4096);
    nbd_put32(p + 8, 0);
    assert_int_equal(nbd_chunk_hole(&h, p, 4096, 4096, &off, &len),
                     -EPROTO);
    nbd_put32(p + 8, 4097);
    assert_int_equal(nbd_chunk_hole(&h, p, 4096, 4096, &off, &len),
                     -EPROTO);

    /* block status: the context we set, clamped to the request */
    h.type = NBD_REPLY_TYPE_BLOCK_STATUS;
    h.length = 12;
    nbd_put32(p, 3);
    nbd_put32(p + 4, 1 << 20);
    nbd_put32(p + 8, NBD_STATE_HOLE | NBD_STATE_ZERO);
    assert_int_equal(nbd_chunk_block_status(&h, p, 3, 65536, &len, &flags),
                     0);
    assert_int_equal(len, 65536);
    assert_int_equal(flags, NBD_STATE_HOLE | NBD_STATE_ZERO);
    assert_int_equal(nbd_chunk_block_status(&h, p, 4, 65536, &len, &flags),
                     -EPROTO);
    nbd_put32(p + 4, 0);
    assert_int_equal(nbd_chunk_block_status(&h, p, 3, 65536, &len, &flags),
                     -EPROTO);

    /* errors: the wire's numbers, a message that fits */
    h.type = NBD_REPLY_TYPE_ERROR;
    h.length = 6 + 3;
    nbd_put32(p, NBD_ENOSPC);
    nbd_put16(p + 4, 3);
    assert_int_equal(nbd_chunk_error(&h, p, &err), 0);
    assert_int_equal(err, ENOSPC);
    nbd_put16(p + 4, 4);
    assert_int_equal(nbd_chunk_error(&h, p, &err), -EPROTO);
    nbd_put16(p + 4, 3);
    nbd_put32(p, 0);
    assert_int_equal(nbd_chunk_error(&h, p, &err), -EPROTO);
    h.type = NBD_REPLY_TYPE_ERROR_OFFSET;
    h.length = 14;
    nbd_put32(p, 12345);
    nbd_put16(p + 4, 0);
    assert_int_equal(nbd_chunk_error(&h, p, &err), 0);
    assert_int_equal(err, EIO);
}

/* --- a connection against a scripted server --- */

typedef struct {
    int done;
    int ret;
    uint32_t len, flags;
} Result;

static void result_cb(void *opaque, int ret, uint32_t len, uint32_t flags)
{
    Result *r = opaque;

    r->done++;
    r->ret = ret;
    r->len = len;
    r->flags = flags;
}

static int lost;

static void lost_cb(void *opaque)
{
    lost = 1;
}

static void run_until(const int *flag)
{
    for (int i = 0; i < 10000 && !*flag; i++) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_true(*flag);
}

static void read_request(int fd, NbdRequest *req)
{
    uint8_t b[NBD_REQUEST_SIZE];

    assert_int_equal(read(fd, b, sizeof(b)), sizeof(b));
    assert_true(nbd_request_decode(b, req));
}

static void send_bytes(int fd, const void *b, size_t n)
{
    assert_int_equal(write(fd, b, n), (ssize_t)n);
}

static NbdClient *pair(int *srv)
{
    int sv[2];
    NbdExportInfo info = { .size = 1 << 20, .min_block = 1,
                           .structured = true, .has_context = true,
                           .context_id = 5 };

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    *srv = sv[1];
    lost = 0;
    return nbd_client_new(sv[0], &info, lost_cb, NULL);
}

static void test_pipelined_out_of_order(void **state)
{
    int srv;
    NbdClient *c = pair(&srv);
    uint8_t rbuf[8192], wbuf[512], b[64], data[8192];
    Result rr = { 0 }, wr = { 0 }, sr = { 0 };
    NbdRequest qr, qw, qs;

    (void)state;
    memset(wbuf, 0xab, sizeof(wbuf));
    memset(rbuf, 0xee, sizeof(rbuf));
    nbd_client_request(c, NBD_CMD_READ, 0, 4096, 8192, rbuf, result_cb, &rr);
    nbd_client_request(c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, 512, wbuf,
                       result_cb, &wr);
    nbd_client_request(c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0,
                       65536, NULL, result_cb, &sr);
    assert_int_equal(nbd_client_in_flight(c), 3);
    read_request(srv, &qr);
    read_request(srv, &qw);
    assert_int_equal(qw.flags, NBD_CMD_FLAG_FUA);
    assert_int_equal(read(srv, data, 512), 512);
    assert_memory_equal(data, wbuf, 512);
    read_request(srv, &qs);

    /* the status first, then the write, the read last and in pieces */
    put_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
              qs.handle, 12);
    nbd_put32(b + 20, 5);
    nbd_put32(b + 24, 4096);
    nbd_put32(b + 28, NBD_STATE_HOLE);
    send_bytes(srv, b, 32);
    run_until(&sr.done);
    assert_int_equal(sr.ret, 0);
    assert_int_equal(sr.len, 4096);
    assert_int_equal(sr.flags, NBD_STATE_HOLE);

    put_simple(b, 0, qw.handle);
    send_bytes(srv, b, 16);
    run_until(&wr.done);
    assert_int_equal(wr.ret, 0);

    /* second half a hole, first half data sent in two writes */
    put_chunk(b, 0, NBD_REPLY_TYPE_OFFSET_HOLE, qr.handle, 12);
    nbd_put64(b + 20, 8192);
    nbd_put32(b + 28, 4096);
    send_bytes(srv, b, 32);
    put_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, qr.handle,
              8 + 4096);
    nbd_put64(b + 20, 4096);
    send_bytes(srv, b, 28);
    memset(data, 0x5a, 4096);
    send_bytes(srv, data, 1000);
    g_main_context_iteration(NULL, FALSE);
    assert_int_equal(rr.done, 0);
    send_bytes(srv, data + 1000, 3096);
    run_until(&rr.done);
    assert_int_equal(rr.ret, 0);
    memset(data + 4096, 0, 4096);
    assert_memory_equal(rbuf, data, 8192);
    assert_int_equal(nbd_client_in_flight(c), 0);
    assert_false(lost);
    nbd_client_close(c, NULL, NULL);
    close(srv);
}

static void test_errors_and_loss(void **state)
{
    int srv;
    NbdClient *c = pair(&srv);
    uint8_t buf[512], b[64];
    Result e1 = { 0 }, e2 = { 0 }, open1 = { 0 };
    NbdRequest q1, q2, q3;

    (void)state;
    nbd_client_request(c, NBD_CMD_READ, 0, 0, 512, buf, result_cb, &e1);
    nbd_client_request(c, NBD_CMD_TRIM, 0, 0, 512, NULL, result_cb, &e2);
    nbd_client_request(c, NBD_CMD_FLUSH, 0, 0, 0, NULL, result_cb, &open1);
    read_request(srv, &q1);
    read_request(srv, &q2);
    read_request(srv, &q3);

    /* a structured error chunk, then the end of the reply */
    put_chunk(b, 0, NBD_REPLY_TYPE_ERROR, q1.handle, 6 + 2);
    nbd_put32(b + 20, NBD_EPERM);
    nbd_put16(b + 24, 2);
    memcpy(b + 26, "no", 2);
    send_bytes(srv, b, 28);
    put_chunk(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, q1.handle, 0);
    send_bytes(srv, b, 20);
    run_until(&e1.done);
    assert_int_equal(e1.ret, -EPERM);

    put_simple(b, NBD_ENOSPC, q2.handle);
    send_bytes(srv, b, 16);
    run_until(&e2.done);
    assert_int_equal(e2.ret, -ENOSPC);

    /* a reply for no request: the link is lost, the flush stays open */
    put_simple(b, 0, 999);
    send_bytes(srv, b, 16);
    run_until(&lost);
    assert_int_equal(open1.done, 0);
    assert_int_equal(nbd_client_in_flight(c), 1);
    nbd_client_close(c, NULL, NULL);
    assert_int_equal(open1.done, 1);
    assert_int_equal(open1.ret, -EIO);
    close(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_decode),
        cmocka_unit_test(test_chunk_check),
        cmocka_unit_test(test_chunk_payloads),
        cmocka_unit_test(test_pipelined_out_of_order),
        cmocka_unit_test(test_errors_and_loss),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
