/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server's handshake (nbd/server-opts.c) on its own: bytes in,
 * replies out, against fake exports.  The connection's writes, the
 * export registry and the two block-layer facts the handshake asks for
 * (a node's length, a bitmap's name) are link-seam fakes here, so every
 * option, malformed length and refusal is checked byte for byte.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "nbd/server-int.h"

/* ---- fakes ---- */

static GByteArray *sent;
static GList *fake_exports;     /* newest first, as export.c keeps them */

void nbd_conn_send(NbdConn *c, const void *hdr, size_t len, void *data,
                   size_t dlen)
{
    (void)c;
    g_byte_array_append(sent, hdr, len);
    g_assert(!data && !dlen);
}

NbdExport *nbd_export_find_name(const char *name)
{
    for (GList *l = fake_exports; l; l = l->next) {
        NbdExport *exp = l->data;

        if (!exp->shutting_down && !strcmp(exp->name, name)) {
            return exp;
        }
    }
    return NULL;
}

GList *nbd_export_list(void)
{
    return fake_exports;
}

void nbd_export_ref(NbdExport *exp)
{
    exp->refcnt++;
}

void nbd_export_unref(NbdExport *exp)
{
    exp->refcnt--;
}

uint64_t bdrv_length(const BlockNode *bn)
{
    (void)bn;
    return 64 << 20;
}

/* the fake bitmaps are their names */
const char *dbitmap_name(const DirtyBitmap *bm)
{
    return (const char *)bm;
}

/* ---- helpers ---- */

static NbdExport exp_a = { .name = (char *)"a", .description = (char *)"A",
                           .tflags = 0x0503, .refcnt = 1 };
static DirtyBitmap *bitmaps_b[] = { (DirtyBitmap *)"b0",
                                    (DirtyBitmap *)"b1" };
static NbdExport exp_b = { .name = (char *)"bee", .tflags = 0x0d6d,
                           .alloc_depth = true, .bitmaps = bitmaps_b,
                           .nbitmaps = 2, .refcnt = 1 };

static int setup(void **state)
{
    (void)state;
    sent = g_byte_array_new();
    fake_exports = g_list_prepend(g_list_prepend(NULL, &exp_a), &exp_b);
    exp_a.refcnt = exp_b.refcnt = 1;
    exp_a.conns = exp_b.conns = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    g_byte_array_free(sent, true);
    g_list_free(fake_exports);
    g_list_free(exp_a.conns);
    g_list_free(exp_b.conns);
    fake_exports = NULL;
    return 0;
}

/* A connection past the client's flags (no zeroes). */
static NbdConn *conn(void)
{
    NbdConn *c = g_new0(NbdConn, 1);
    uint8_t flags[4] = { 0, 0, 0, 3 };

    assert_int_equal(nbd_opts_parse(c, flags, 4), 4);
    assert_int_equal(c->phase, NBD_CONN_OPTIONS);
    assert_true(c->no_zeroes);
    return c;
}

static void conn_free(NbdConn *c)
{
    g_free(c->meta_bitmaps);
    g_free(c);
}

/* Feed option @opt with @len bytes of @data whole; its return. */
static ssize_t option(NbdConn *c, uint32_t opt, const void *data,
                      uint32_t len)
{
    g_autofree uint8_t *buf = g_malloc(16 + len);

    nbd_put64(buf, NBD_OPTS_MAGIC);
    nbd_put32(buf + 8, opt);
    nbd_put32(buf + 12, len);
    if (len) {
        memcpy(buf + 16, data, len);    /* (data may be NULL then) */
    }
    g_byte_array_set_size(sent, 0);
    return nbd_opts_parse(c, buf, 16 + len);
}

/* The @i-th option reply sent: its type, and its data in @data/@len. */
static uint32_t reply_at(int i, uint32_t opt, const uint8_t **data,
                         uint32_t *len)
{
    size_t off = 0;

    for (;;) {
        uint32_t n;

        g_assert(off + 20 <= sent->len);
        assert_true(nbd_get64(sent->data + off) == NBD_REP_MAGIC);
        assert_int_equal(nbd_get32(sent->data + off + 8), opt);
        n = nbd_get32(sent->data + off + 16);
        if (!i--) {
            *data = sent->data + off + 20;
            *len = n;
            return nbd_get32(sent->data + off + 12);
        }
        off += 20 + n;
    }
}

static int replies(void)
{
    size_t off = 0;
    int n = 0;

    while (off < sent->len) {
        off += 20 + nbd_get32(sent->data + off + 16);
        n++;
    }
    assert_int_equal(off, sent->len);
    return n;
}

/* name length, name, then @n 16-bit info requests */
static size_t go_data(uint8_t *buf, const char *name, int n,
                      const uint16_t *reqs)
{
    size_t l = strlen(name);

    nbd_put32(buf, l);
    memcpy(buf + 4, name, l);
    nbd_put16(buf + 4 + l, n);
    for (int i = 0; i < n; i++) {
        nbd_put16(buf + 6 + l + 2 * i, reqs[i]);
    }
    return 6 + l + 2 * n;
}

/* ---- tests ---- */

static void test_greeting_and_flags(void **state)
{
    NbdConn c = { 0 };
    uint8_t bad[4] = { 0, 0, 0, 4 };
    uint8_t ok[4] = { 0, 0, 0, 1 };

    (void)state;
    nbd_opts_greet(&c);
    assert_int_equal(sent->len, 18);
    assert_true(nbd_get64(sent->data) == NBD_INIT_MAGIC);
    assert_true(nbd_get64(sent->data + 8) == NBD_OPTS_MAGIC);
    assert_int_equal(nbd_get16(sent->data + 16), 3);
    assert_int_equal(nbd_opts_parse(&c, ok, 3), 0);
    assert_int_equal(nbd_opts_parse(&c, bad, 4), -1);
    assert_int_equal(nbd_opts_parse(&c, ok, 4), 4);
    assert_false(c.no_zeroes);
}

static void test_framing(void **state)
{
    NbdConn *c = conn();
    uint8_t hdr[16];

    (void)state;
    nbd_put64(hdr, NBD_OPTS_MAGIC);
    nbd_put32(hdr + 8, NBD_OPT_LIST);
    nbd_put32(hdr + 12, 4);
    /* a header, or an option, not yet whole */
    assert_int_equal(nbd_opts_parse(c, hdr, 15), 0);
    assert_int_equal(nbd_opts_parse(c, hdr, 16), 0);
    nbd_put32(hdr + 12, NBD_MAX_OPTION_SIZE + 1);
    assert_int_equal(nbd_opts_parse(c, hdr, 16), -1);
    nbd_put64(hdr, 0x1234);
    assert_int_equal(nbd_opts_parse(c, hdr, 16), -1);
    conn_free(c);
}

static void test_list(void **state)
{
    NbdConn *c = conn();
    const uint8_t *d;
    uint32_t n;

    (void)state;
    assert_int_equal(option(c, NBD_OPT_LIST, NULL, 0), 16);
    assert_int_equal(replies(), 3);
    /* oldest first, with the description after the name */
    assert_int_equal(reply_at(0, NBD_OPT_LIST, &d, &n), NBD_REP_SERVER);
    assert_int_equal(n, 4 + 1 + 1);
    assert_int_equal(nbd_get32(d), 1);
    assert_memory_equal(d + 4, "aA", 2);
    assert_int_equal(reply_at(1, NBD_OPT_LIST, &d, &n), NBD_REP_SERVER);
    assert_int_equal(n, 7);
    assert_memory_equal(d + 4, "bee", 3);
    assert_int_equal(reply_at(2, NBD_OPT_LIST, &d, &n), NBD_REP_ACK);
    assert_int_equal(n, 0);
    /* data where there must be none */
    assert_int_equal(option(c, NBD_OPT_LIST, "x", 1), 17);
    assert_int_equal(reply_at(0, NBD_OPT_LIST, &d, &n),
                     NBD_REP_ERR_INVALID);
    assert_int_equal(replies(), 1);
    conn_free(c);
}

static void test_info_and_go(void **state)
{
    NbdConn *c = conn();
    uint8_t buf[64];
    const uint16_t want[] = { NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE };
    const uint8_t *d;
    uint32_t n;
    size_t l;

    (void)state;
    l = go_data(buf, "nope", 0, NULL);
    option(c, NBD_OPT_INFO, buf, l);
    assert_int_equal(reply_at(0, NBD_OPT_INFO, &d, &n),
                     NBD_REP_ERR_UNKNOWN);
    assert_int_equal(n, strlen("export 'nope' not present"));
    assert_memory_equal(d, "export 'nope' not present", n);

    /* a name length past the data, a request count that does not fit */
    nbd_put32(buf, 200);
    option(c, NBD_OPT_GO, buf, l);
    assert_int_equal(reply_at(0, NBD_OPT_GO, &d, &n), NBD_REP_ERR_INVALID);
    l = go_data(buf, "a", 0, NULL);
    nbd_put16(buf + 5, 3);
    option(c, NBD_OPT_GO, buf, l);
    assert_int_equal(reply_at(0, NBD_OPT_GO, &d, &n), NBD_REP_ERR_INVALID);
    assert_int_equal(c->phase, NBD_CONN_OPTIONS);

    /* INFO: name asked for, description always, sizes, export, ACK */
    l = go_data(buf, "a", 2, want);
    option(c, NBD_OPT_INFO, buf, l);
    assert_int_equal(replies(), 5);
    reply_at(0, NBD_OPT_INFO, &d, &n);
    assert_int_equal(nbd_get16(d), NBD_INFO_NAME);
    assert_memory_equal(d + 2, "a", 1);
    reply_at(1, NBD_OPT_INFO, &d, &n);
    assert_int_equal(nbd_get16(d), NBD_INFO_DESCRIPTION);
    reply_at(2, NBD_OPT_INFO, &d, &n);
    assert_int_equal(nbd_get16(d), NBD_INFO_BLOCK_SIZE);
    assert_int_equal(nbd_get32(d + 2), 1);
    assert_int_equal(nbd_get32(d + 6), 4096);
    assert_int_equal(nbd_get32(d + 10), NBD_MAX_BUFFER_SIZE);
    reply_at(3, NBD_OPT_INFO, &d, &n);
    assert_int_equal(n, 12);
    assert_int_equal(nbd_get16(d), NBD_INFO_EXPORT);
    assert_true(nbd_get64(d + 2) == 64 << 20);
    assert_int_equal(nbd_get16(d + 10), 0x0503);
    assert_int_equal(reply_at(4, NBD_OPT_INFO, &d, &n), NBD_REP_ACK);
    assert_int_equal(c->phase, NBD_CONN_OPTIONS);

    /* GO after STRUCTURED_REPLY: DF added, transmission on "bee" */
    option(c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    assert_int_equal(reply_at(0, NBD_OPT_STRUCTURED_REPLY, &d, &n),
                     NBD_REP_ACK);
    option(c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    assert_int_equal(reply_at(0, NBD_OPT_STRUCTURED_REPLY, &d, &n),
                     NBD_REP_ERR_INVALID);
    l = go_data(buf, "bee", 0, NULL);
    option(c, NBD_OPT_GO, buf, l);
    assert_int_equal(replies(), 3);
    reply_at(1, NBD_OPT_GO, &d, &n);
    assert_int_equal(nbd_get16(d + 10), 0x0d6d | NBD_FLAG_SEND_DF);
    assert_int_equal(c->phase, NBD_CONN_TRANSMISSION);
    assert_ptr_equal(c->exp, &exp_b);
    assert_int_equal(exp_b.refcnt, 2);
    conn_free(c);
}

static void test_export_name(void **state)
{
    NbdConn *c = conn();
    NbdConn *z = g_new0(NbdConn, 1);
    uint8_t flags[4] = { 0, 0, 0, 1 };

    (void)state;
    assert_int_equal(option(c, NBD_OPT_EXPORT_NAME, "nope", 4), -1);
    assert_int_equal(option(c, NBD_OPT_EXPORT_NAME, "a", 1), 17);
    assert_int_equal(sent->len, 10);
    assert_int_equal(nbd_get16(sent->data + 8), 0x0503);
    assert_int_equal(c->phase, NBD_CONN_TRANSMISSION);
    /* a client without NO_ZEROES gets the 124 zero bytes */
    nbd_opts_parse(z, flags, 4);
    assert_int_equal(option(z, NBD_OPT_EXPORT_NAME, "bee", 3), 19);
    assert_int_equal(sent->len, 134);
    conn_free(c);
    conn_free(z);
}

/* The META_CONTEXT option data: export name, then @n queries. */
static size_t meta_data(uint8_t *buf, const char *name, int n,
                        const char *const *q)
{
    size_t off = 4 + strlen(name);

    nbd_put32(buf, strlen(name));
    memcpy(buf + 4, name, strlen(name));
    nbd_put32(buf + off, n);
    off += 4;
    for (int i = 0; i < n; i++) {
        nbd_put32(buf + off, strlen(q[i]));
        memcpy(buf + off + 4, q[i], strlen(q[i]));
        off += 4 + strlen(q[i]);
    }
    return off;
}

static void test_meta_contexts(void **state)
{
    NbdConn *c = conn();
    uint8_t buf[256];
    const char *const prefix[] = { "qemu:dirty-bitmap:" };
    const char *const set[] = { "qemu:dirty-bitmap:b1", "base:allocation",
                                "qemu:nope", "qemu:allocation-depth" };
    const uint8_t *d;
    uint32_t n;
    size_t l;

    (void)state;
    l = meta_data(buf, "bee", 0, NULL);
    option(c, NBD_OPT_SET_META_CONTEXT, buf, l);
    assert_int_equal(reply_at(0, NBD_OPT_SET_META_CONTEXT, &d, &n),
                     NBD_REP_ERR_INVALID);
    option(c, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

    /* an empty list: every context, ids 0 in a list */
    option(c, NBD_OPT_LIST_META_CONTEXT, buf, l);
    assert_int_equal(replies(), 5);
    reply_at(3, NBD_OPT_LIST_META_CONTEXT, &d, &n);
    assert_int_equal(nbd_get32(d), 0);
    assert_memory_equal(d + 4, "qemu:dirty-bitmap:b1", n - 4);

    /* the bitmap prefix lists every bitmap, only in a list */
    l = meta_data(buf, "bee", 1, prefix);
    option(c, NBD_OPT_LIST_META_CONTEXT, buf, l);
    assert_int_equal(replies(), 3);
    option(c, NBD_OPT_SET_META_CONTEXT, buf, l);
    assert_int_equal(replies(), 1);

    /* SET: exact names, ids fixed per export, unknown names left out */
    l = meta_data(buf, "bee", 4, set);
    option(c, NBD_OPT_SET_META_CONTEXT, buf, l);
    assert_int_equal(replies(), 4);
    reply_at(0, NBD_OPT_SET_META_CONTEXT, &d, &n);
    assert_int_equal(nbd_get32(d), 0);
    reply_at(1, NBD_OPT_SET_META_CONTEXT, &d, &n);
    assert_int_equal(nbd_get32(d), 1);
    reply_at(2, NBD_OPT_SET_META_CONTEXT, &d, &n);
    assert_int_equal(nbd_get32(d), 3);
    assert_true(c->meta_base && c->meta_depth);
    assert_false(c->meta_bitmaps[0]);
    assert_true(c->meta_bitmaps[1]);
    assert_ptr_equal(c->meta_exp, &exp_b);

    /* malformed: a query running past the data; an unknown export */
    nbd_put32(buf + l - 4 - strlen(set[3]), 200);
    option(c, NBD_OPT_SET_META_CONTEXT, buf, l);
    assert_int_equal(reply_at(0, NBD_OPT_SET_META_CONTEXT, &d, &n),
                     NBD_REP_ERR_INVALID);
    l = meta_data(buf, "zz", 0, NULL);
    option(c, NBD_OPT_LIST_META_CONTEXT, buf, l);
    assert_int_equal(reply_at(0, NBD_OPT_LIST_META_CONTEXT, &d, &n),
                     NBD_REP_ERR_UNKNOWN);
    nbd_export_unref(c->meta_exp);
    conn_free(c);
}

static void test_other_options(void **state)
{
    NbdConn *c = conn();
    const char *msg = "Unsupported option 4 (NBD_OPT_PEEK_EXPORT)";
    const uint8_t *d;
    uint32_t n;

    (void)state;
    option(c, NBD_OPT_PEEK_EXPORT, NULL, 0);
    assert_int_equal(reply_at(0, NBD_OPT_PEEK_EXPORT, &d, &n),
                     NBD_REP_ERR_UNSUP);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(d, msg, n);
    option(c, NBD_OPT_STARTTLS, NULL, 0);
    assert_int_equal(reply_at(0, NBD_OPT_STARTTLS, &d, &n),
                     NBD_REP_ERR_POLICY);
    assert_false(c->closing);
    option(c, NBD_OPT_ABORT, NULL, 0);
    assert_int_equal(reply_at(0, NBD_OPT_ABORT, &d, &n), NBD_REP_ACK);
    assert_true(c->closing);
    conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greeting_and_flags, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_and_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_contexts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_options, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
