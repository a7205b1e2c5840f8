/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD handshake, server side: fixed newstyle only, as QEMU 7.2
 * serves it.  The greeting offers NO_ZEROES; then each option the
 * client sends gets its replies (doc/proto.md's "Option haggling"):
 * EXPORT_NAME and GO choose the export and end the handshake, INFO
 * describes one, LIST names them all, STRUCTURED_REPLY and the two
 * META_CONTEXT options set what the transmission phase may use, ABORT
 * ends it.  An option the server does not know, or one that is
 * malformed, gets an error reply and the haggling goes on; only a
 * broken stream (bad magic, an oversized option) drops the client.
 *
 * Metadata context ids are fixed per export: 0 base:allocation,
 * 1 qemu:allocation-depth, 2 + i the export's i-th bitmap.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include <glib.h>

#include "nbd/server-int.h"
#include "nbd/server.h"
#include "nbd/trace-events.h"

#define META_ID_BASE    0
#define META_ID_DEPTH   1
#define META_ID_BITMAP  2

#define OPT_HDR_SIZE    16      /* magic, option, length */

TraceEvent nbd_trace[NBD_TRACE_COUNT] = { NBD_TRACE_EVENTS(TRACE_ENTRY) };

void nbd_trace_register(void)
{
    trace_register(nbd_trace, NBD_TRACE_COUNT);
}

void nbd_opts_greet(NbdConn *c)
{
    uint8_t buf[18];

    TRACE(nbd_trace, nbd_negotiate_begin, "Beginning negotiation");
    nbd_put64(buf, NBD_INIT_MAGIC);
    nbd_put64(buf + 8, NBD_OPTS_MAGIC);
    nbd_put16(buf + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    nbd_conn_send(c, buf, sizeof(buf), NULL, 0);
}

/* One option reply: its header and @len bytes of @data. */
static void reply(NbdConn *c, uint32_t opt, uint32_t type, const void *data,
                  size_t len)
{
    g_autofree uint8_t *all = g_malloc(20 + len);

    nbd_put64(all, NBD_REP_MAGIC);
    nbd_put32(all + 8, opt);
    nbd_put32(all + 12, type);
    nbd_put32(all + 16, len);
    if (len) {
        memcpy(all + 20, data, len);
    }
    nbd_conn_send(c, all, 20 + len, NULL, 0);
}

/* An error reply with QEMU's kind of message. */
static void reply_err(NbdConn *c, uint32_t opt, uint32_t type,
                      const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void reply_err(NbdConn *c, uint32_t opt, uint32_t type,
                      const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    reply(c, opt, type, msg, strlen(msg));
}

/* The export size and flags: EXPORT_NAME's answer, INFO_EXPORT's body. */
static void put_export_info(NbdConn *c, const NbdExport *exp, uint8_t *p)
{
    uint16_t flags = exp->tflags;

    if (c->structured) {
        flags |= NBD_FLAG_SEND_DF;
    }
    nbd_put64(p, bdrv_length(exp->node));
    nbd_put16(p + 8, flags);
}

/* Take @exp for the transmission phase. */
static void enter_transmission(NbdConn *c, NbdExport *exp)
{
    nbd_export_ref(exp);
    c->exp = exp;
    exp->conns = g_list_prepend(exp->conns, c);
    c->phase = NBD_CONN_TRANSMISSION;
    TRACE(nbd_trace, nbd_negotiate_success, "Negotiation succeeded");
    /* a context chosen for another export does not apply */
    if (c->meta_exp != exp) {
        c->meta_base = c->meta_depth = false;
        g_clear_pointer(&c->meta_bitmaps, g_free);
        if (c->meta_exp) {
            nbd_export_unref(c->meta_exp);
            c->meta_exp = NULL;
        }
    }
}

static ssize_t opt_export_name(NbdConn *c, const uint8_t *data,
                               uint32_t len)
{
    g_autofree char *name = g_strndup((const char *)data, len);
    NbdExport *exp = nbd_export_find_name(name);
    uint8_t buf[10 + 124] = { 0 };

    if (!exp || strlen(name) != len) {
        /* this option has no error reply: the spec says hang up */
        return -1;
    }
    put_export_info(c, exp, buf);
    nbd_conn_send(c, buf, c->no_zeroes ? 10 : sizeof(buf), NULL, 0);
    enter_transmission(c, exp);
    return 0;
}

static void info_string(NbdConn *c, uint32_t opt, uint16_t type,
                        const char *s)
{
    size_t n = strlen(s);
    g_autofree uint8_t *buf = g_malloc(2 + n);

    nbd_put16(buf, type);
    memcpy(buf + 2, s, n);
    reply(c, opt, NBD_REP_INFO, buf, 2 + n);
}

/* NBD_OPT_INFO and NBD_OPT_GO: name, then the information requests. */
static void opt_info(NbdConn *c, uint32_t opt, const uint8_t *data,
                     uint32_t len)
{
    g_autofree char *name = NULL;
    uint32_t nlen;
    uint16_t nreq;
    bool want_name = false;
    NbdExport *exp;
    uint8_t buf[14];

    if (len < 6 || (nlen = nbd_get32(data)) > len - 6
        || 6 + nlen + 2 * (size_t)(nreq = nbd_get16(data + 4 + nlen))
        != len) {
        reply_err(c, opt, NBD_REP_ERR_INVALID,
                  "request data has incorrect length");
        return;
    }
    if (nlen > NBD_MAX_STRING_SIZE) {
        reply_err(c, opt, NBD_REP_ERR_INVALID, "export name too long");
        return;
    }
    name = g_strndup((const char *)data + 4, nlen);
    for (uint16_t i = 0; i < nreq; i++) {
        uint16_t r = nbd_get16(data + 6 + nlen + 2 * i);

        want_name |= r == NBD_INFO_NAME;
    }
    exp = strlen(name) == nlen ? nbd_export_find_name(name) : NULL;
    if (!exp) {
        reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "export '%s' not present",
                  name);
        return;
    }
    if (want_name) {
        info_string(c, opt, NBD_INFO_NAME, exp->name);
    }
    /* QEMU sends the description whenever there is one */
    if (exp->description) {
        info_string(c, opt, NBD_INFO_DESCRIPTION, exp->description);
    }
    /*
     * Block sizes always, asked for or not: any alignment works (the
     * block layer does the read-modify-write), so a client that did not
     * ask is never refused with BLOCK_SIZE_REQD; 4 KiB is best, and a
     * request's payload is bounded.
     */
    nbd_put16(buf, NBD_INFO_BLOCK_SIZE);
    nbd_put32(buf + 2, 1);
    nbd_put32(buf + 6, 4096);
    nbd_put32(buf + 10, NBD_MAX_BUFFER_SIZE);
    reply(c, opt, NBD_REP_INFO, buf, 14);
    nbd_put16(buf, NBD_INFO_EXPORT);
    put_export_info(c, exp, buf + 2);
    reply(c, opt, NBD_REP_INFO, buf, 12);
    reply(c, opt, NBD_REP_ACK, NULL, 0);
    if (opt == NBD_OPT_GO) {
        enter_transmission(c, exp);
    }
}

static void opt_list(NbdConn *c, uint32_t len)
{
    if (len) {
        reply_err(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                  "request data has incorrect length");
        return;
    }
    for (GList *l = g_list_last(nbd_export_list()); l; l = l->prev) {
        NbdExport *exp = l->data;
        size_t n = strlen(exp->name);
        size_t d = exp->description ? strlen(exp->description) : 0;
        g_autofree uint8_t *buf = NULL;

        if (exp->shutting_down) {
            continue;
        }
        buf = g_malloc(4 + n + d);
        nbd_put32(buf, n);
        memcpy(buf + 4, exp->name, n);
        if (d) {
            memcpy(buf + 4 + n, exp->description, d);
        }
        reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + n + d);
    }
    reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

static void meta_reply(NbdConn *c, uint32_t opt, uint32_t id,
                       const char *name)
{
    size_t n = strlen(name);
    g_autofree uint8_t *buf = g_malloc(4 + n);

    /* ids mean nothing in a list: QEMU sends 0 */
    nbd_put32(buf, opt == NBD_OPT_LIST_META_CONTEXT ? 0 : id);
    memcpy(buf + 4, name, n);
    reply(c, opt, NBD_REP_META_CONTEXT, buf, 4 + n);
}

/*
 * Which of @exp's contexts @q selects: exact names, and for a list the
 * namespaces and the bitmap prefix too.  Sets @base, @depth, @bms.
 */
static void meta_match(const NbdExport *exp, const char *q, bool list,
                       bool *base, bool *depth, bool *bms)
{
    size_t plen = strlen(NBD_META_QEMU_DIRTY_BITMAP);

    if (!strcmp(q, NBD_META_BASE_ALLOCATION)
        || (list && !strcmp(q, NBD_META_NS_BASE))) {
        *base = true;
        return;
    }
    if (list && !strcmp(q, "qemu:")) {
        *depth |= exp->alloc_depth;
        for (unsigned i = 0; i < exp->nbitmaps; i++) {
            bms[i] = true;
        }
        return;
    }
    if (!strcmp(q, NBD_META_QEMU_ALLOCATION_DEPTH)) {
        *depth |= exp->alloc_depth;
        return;
    }
    if (!strncmp(q, NBD_META_QEMU_DIRTY_BITMAP, plen)) {
        for (unsigned i = 0; i < exp->nbitmaps; i++) {
            if ((list && !q[plen])
                || !strcmp(q + plen, dbitmap_name(exp->bitmaps[i]))) {
                bms[i] = true;
            }
        }
    }
}

static void opt_meta(NbdConn *c, uint32_t opt, const uint8_t *data,
                     uint32_t len)
{
    bool list = opt == NBD_OPT_LIST_META_CONTEXT;
    g_autofree char *name = NULL;
    g_autofree bool *bms = NULL;
    bool base = false, depth = false;
    uint32_t nlen, nq;
    size_t off;
    NbdExport *exp;

    if (!c->structured) {
        reply_err(c, opt, NBD_REP_ERR_INVALID,
                  "request not valid before structured replies");
        return;
    }
    if (len < 8 || (nlen = nbd_get32(data)) > len - 8) {
        reply_err(c, opt, NBD_REP_ERR_INVALID,
                  "request data has incorrect length");
        return;
    }
    name = g_strndup((const char *)data + 4, nlen);
    exp = strlen(name) == nlen ? nbd_export_find_name(name) : NULL;
    if (!exp) {
        reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "export '%s' not present",
                  name);
        return;
    }
    bms = g_new0(bool, exp->nbitmaps + 1);
    nq = nbd_get32(data + 4 + nlen);
    off = 8 + nlen;
    if (list && !nq) {
        base = true;
        depth = exp->alloc_depth;
        for (unsigned i = 0; i < exp->nbitmaps; i++) {
            bms[i] = true;
        }
    }
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t qlen;
        g_autofree char *q = NULL;

        if (len - off < 4 || (qlen = nbd_get32(data + off)) > len - off - 4) {
            reply_err(c, opt, NBD_REP_ERR_INVALID,
                      "request data has incorrect length");
            return;
        }
        q = g_strndup((const char *)data + off + 4, qlen);
        off += 4 + qlen;
        if (strlen(q) == qlen) {
            meta_match(exp, q, list, &base, &depth, bms);
        }
    }
    if (off != len) {
        reply_err(c, opt, NBD_REP_ERR_INVALID,
                  "request data has incorrect length");
        return;
    }
    if (base) {
        meta_reply(c, opt, META_ID_BASE, NBD_META_BASE_ALLOCATION);
    }
    if (depth) {
        meta_reply(c, opt, META_ID_DEPTH, NBD_META_QEMU_ALLOCATION_DEPTH);
    }
    for (unsigned i = 0; i < exp->nbitmaps; i++) {
        if (bms[i]) {
            g_autofree char *n = g_strconcat(NBD_META_QEMU_DIRTY_BITMAP,
                                             dbitmap_name(exp->bitmaps[i]),
                                             NULL);

            meta_reply(c, opt, META_ID_BITMAP + i, n);
        }
    }
    if (!list) {
        /* a new choice replaces the last one */
        if (c->meta_exp) {
            nbd_export_unref(c->meta_exp);
        }
        nbd_export_ref(exp);
        c->meta_exp = exp;
        c->meta_base = base;
        c->meta_depth = depth;
        g_free(c->meta_bitmaps);
        c->meta_bitmaps = g_steal_pointer(&bms);
    }
    reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* One option, whole: its replies queued; -1 ends the connection. */
static int handle_option(NbdConn *c, uint32_t opt, const uint8_t *data,
                         uint32_t len)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        return opt_export_name(c, data, len);
    case NBD_OPT_ABORT:
        reply(c, opt, NBD_REP_ACK, NULL, 0);
        c->closing = true;
        return 0;
    case NBD_OPT_LIST:
        opt_list(c, len);
        return 0;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        opt_info(c, opt, data, len);
        return 0;
    case NBD_OPT_STARTTLS:
        reply_err(c, opt, NBD_REP_ERR_POLICY, "TLS not configured");
        return 0;
    case NBD_OPT_STRUCTURED_REPLY:
        if (len) {
            reply_err(c, opt, NBD_REP_ERR_INVALID,
                      "request data has incorrect length");
        } else if (c->structured) {
            reply_err(c, opt, NBD_REP_ERR_INVALID,
                      "structured reply already negotiated");
        } else {
            c->structured = true;
            reply(c, opt, NBD_REP_ACK, NULL, 0);
        }
        return 0;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        opt_meta(c, opt, data, len);
        return 0;
    default:
        reply_err(c, opt, NBD_REP_ERR_UNSUP, "Unsupported option %" PRIu32
                  " (%s)", opt, nbd_opt_name(opt));
        return 0;
    }
}

ssize_t nbd_opts_parse(NbdConn *c, const uint8_t *buf, size_t len)
{
    uint32_t flags, opt, olen;

    if (c->phase == NBD_CONN_CLIENT_FLAGS) {
        if (len < 4) {
            return 0;
        }
        flags = nbd_get32(buf);
        /* QEMU refuses a client that sets flags it does not know */
        if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
            return -1;
        }
        c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
        c->phase = NBD_CONN_OPTIONS;
        return 4;
    }
    if (len < OPT_HDR_SIZE) {
        return 0;
    }
    if (nbd_get64(buf) != NBD_OPTS_MAGIC) {
        return -1;
    }
    opt = nbd_get32(buf + 8);
    olen = nbd_get32(buf + 12);
    if (olen > NBD_MAX_OPTION_SIZE) {
        return -1;
    }
    if (len < OPT_HDR_SIZE + olen) {
        return 0;
    }
    if (handle_option(c, opt, buf + OPT_HDR_SIZE, olen) < 0) {
        return -1;
    }
    return OPT_HDR_SIZE + olen;
}
