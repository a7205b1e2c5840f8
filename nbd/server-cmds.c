/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD transmission phase, server side: each request is checked as
 * QEMU 7.2 checks it, then carried out through the export's backend
 * (a write through an export is a guest's write: dirty bitmaps, mirrors
 * and backups see it) and answered when it completes, in whatever order
 * the block layer finishes them.
 *
 * With structured replies a read is answered as QEMU answers it: the
 * range is walked by block status, each stretch that reads as zeroes
 * becomes an OFFSET_HOLE chunk and each other an OFFSET_DATA chunk,
 * the last flagged DONE (unless the client set DF: one data chunk).
 * Block status sends one chunk per metadata context chosen, in id
 * order; errors become ERROR chunks with a message.  Without them, a
 * simple reply (with the data of a read).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <glib.h>

#include "block/core/ioq.h"
#include "nbd/server-int.h"
#include "util/hbitmap.h"

#define META_ID_BASE    0
#define META_ID_DEPTH   1
#define META_ID_BITMAP  2

/* QEMU's bound on one context's extents in one reply (1 MiB of them) */
#define MAX_EXTENTS     (1024 * 1024 / 8)

typedef struct NbdReq {
    NbdConn *c;
    NbdRequest h;
    void *buf;                  /* a write's payload (counted in mem) */
    size_t buflen;
    uint64_t pos, end;          /* a read's or a status walk's progress */
    /* block status: the context walked now, its extents so far */
    int ctx;                    /* META_ID_* (bitmaps: 2 + index) */
    GArray *ext;                /* (length, flags) pairs, big-endian */
    uint32_t last_flags;
    bool ext_done;              /* the bound reached */
    BlockNode *depth_node;      /* allocation depth: the layer asked */
    unsigned depth;
} NbdReq;

static void req_free(NbdReq *r)
{
    NbdConn *c = r->c;

    if (r->buf) {
        ioq_buf_free(r->buf);
        c->mem -= r->buflen;
    }
    if (r->ext) {
        g_array_free(r->ext, true);
    }
    g_free(r);
    nbd_conn_request_done(c);
}

static void simple_reply(NbdReq *r, int err, void *data, size_t dlen)
{
    uint8_t hdr[NBD_SIMPLE_REPLY_SIZE];

    nbd_put32(hdr, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(hdr + 4, nbd_errno_to_wire(err));
    nbd_put64(hdr + 8, r->h.handle);
    nbd_conn_send(r->c, hdr, sizeof(hdr), data, dlen);
}

/* A structured chunk: @payload (@plen bytes, copied) then @data (taken). */
static void chunk(NbdReq *r, bool done, uint16_t type, const void *payload,
                  size_t plen, void *data, size_t dlen)
{
    g_autofree uint8_t *hdr = g_malloc(NBD_STRUCTURED_REPLY_SIZE + plen);

    nbd_put32(hdr, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put16(hdr + 4, done ? NBD_REPLY_FLAG_DONE : 0);
    nbd_put16(hdr + 6, type);
    nbd_put64(hdr + 8, r->h.handle);
    nbd_put32(hdr + 16, plen + dlen);
    memcpy(hdr + NBD_STRUCTURED_REPLY_SIZE, payload, plen);
    nbd_conn_send(r->c, hdr, NBD_STRUCTURED_REPLY_SIZE + plen, data, dlen);
}

/* The request's answer when it failed with -@err (@msg for the client). */
static void error_reply(NbdReq *r, int err, const char *msg)
{
    if (r->c->structured) {
        size_t n = strlen(msg);
        g_autofree uint8_t *p = g_malloc(6 + n);

        nbd_put32(p, nbd_errno_to_wire(err));
        nbd_put16(p + 4, n);
        memcpy(p + 6, msg, n);
        chunk(r, true, NBD_REPLY_TYPE_ERROR, p, 6 + n, NULL, 0);
    } else {
        simple_reply(r, err, NULL, 0);
    }
}

/* Answer a request without data: success or its error. */
static void generic_done_cb(void *opaque, int ret)
{
    NbdReq *r = opaque;

    if (ret < 0) {
        error_reply(r, -ret, g_strerror(-ret));
    } else {
        simple_reply(r, 0, NULL, 0);
    }
    req_free(r);
}

/* ---- READ ---- */

static void read_all_cb(void *opaque, int ret)
{
    NbdReq *r = opaque;
    NbdConn *c = r->c;
    void *buf = g_steal_pointer(&r->buf);

    if (ret < 0) {
        ioq_buf_free(buf);
        c->mem -= r->buflen;
        error_reply(r, -ret, "reading from file failed");
    } else if (c->structured) {
        uint8_t off[8];

        nbd_put64(off, r->h.offset);
        chunk(r, true, NBD_REPLY_TYPE_OFFSET_DATA, off, 8, buf, r->buflen);
    } else {
        simple_reply(r, 0, buf, r->buflen);
    }
    req_free(r);
}

static void sparse_step(NbdReq *r);

static void sparse_data_cb(void *opaque, int ret)
{
    NbdReq *r = opaque;
    void *buf = g_steal_pointer(&r->buf);
    size_t n = r->buflen;
    uint8_t off[8];

    if (ret < 0) {
        ioq_buf_free(buf);
        r->c->mem -= n;
        error_reply(r, -ret, "reading from file failed");
        req_free(r);
        return;
    }
    nbd_put64(off, r->pos);
    r->pos += n;
    chunk(r, r->pos == r->end, NBD_REPLY_TYPE_OFFSET_DATA, off, 8, buf, n);
    if (r->pos == r->end) {
        req_free(r);
        return;
    }
    sparse_step(r);
}

static void sparse_status_cb(void *opaque, int ret, int status,
                             uint64_t pnum)
{
    NbdReq *r = opaque;

    if (ret < 0) {
        error_reply(r, -ret, "unable to check for holes");
        req_free(r);
        return;
    }
    pnum = MIN(pnum, r->end - r->pos);
    if (status & BDRV_STATUS_ZERO) {
        uint8_t p[12];

        nbd_put64(p, r->pos);
        nbd_put32(p + 8, pnum);
        r->pos += pnum;
        chunk(r, r->pos == r->end, NBD_REPLY_TYPE_OFFSET_HOLE, p, 12,
              NULL, 0);
        if (r->pos == r->end) {
            req_free(r);
        } else {
            sparse_step(r);
        }
        return;
    }
    r->buf = ioq_buf_alloc(pnum);
    r->buflen = pnum;
    r->c->mem += pnum;
    blk_read(r->c->exp->blk, r->pos, pnum, r->buf, sparse_data_cb, r);
}

static void sparse_step(NbdReq *r)
{
    bdrv_block_status_above(r->c->exp->node, r->pos, r->end - r->pos,
                            sparse_status_cb, r);
}

static void do_read(NbdReq *r)
{
    NbdConn *c = r->c;

    if (c->structured && !(r->h.flags & NBD_CMD_FLAG_DF) && r->h.length) {
        r->pos = r->h.offset;
        r->end = r->h.offset + r->h.length;
        sparse_step(r);
        return;
    }
    r->buf = ioq_buf_alloc(MAX(r->h.length, 1));
    r->buflen = r->h.length;
    c->mem += r->buflen;
    blk_read(c->exp->blk, r->h.offset, r->h.length, r->buf, read_all_cb, r);
}

/* ---- BLOCK_STATUS ---- */

static void status_next_ctx(NbdReq *r);
static void status_walk(NbdReq *r);

/*
 * Add an extent, merged with the last when the flags agree (as QEMU,
 * even past the bound); at the bound, one that differs ends the walk.
 */
static void ext_add(NbdReq *r, uint64_t len, uint32_t flags)
{
    unsigned max = r->h.flags & NBD_CMD_FLAG_REQ_ONE ? 1 : MAX_EXTENTS;
    uint8_t *e;

    if (r->ext->len && r->last_flags == flags) {
        e = (uint8_t *)r->ext->data + r->ext->len - 8;
        nbd_put32(e, nbd_get32(e) + len);
    } else if (r->ext->len / 8 == max) {
        r->ext_done = true;
        return;
    } else {
        g_array_set_size(r->ext, r->ext->len + 8);
        e = (uint8_t *)r->ext->data + r->ext->len - 8;
        nbd_put32(e, len);
        nbd_put32(e + 4, flags);
        r->last_flags = flags;
    }
    r->pos += len;
}

/* Whether the context's walk is over. */
static bool ext_full(const NbdReq *r)
{
    return r->pos >= r->end || r->ext_done;
}

static void ext_send(NbdReq *r, int ctx, bool last)
{
    g_autofree uint8_t *p = g_malloc(4 + r->ext->len);

    nbd_put32(p, ctx);
    if (r->ext->len) {
        memcpy(p + 4, r->ext->data, r->ext->len);
    }
    chunk(r, last, NBD_REPLY_TYPE_BLOCK_STATUS, p, 4 + r->ext->len, NULL,
          0);
}

static void base_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    NbdReq *r = opaque;

    if (ret < 0) {
        error_reply(r, -ret, "can't get block status");
        req_free(r);
        return;
    }
    ext_add(r, MIN(pnum, r->end - r->pos),
            (status & BDRV_STATUS_DATA ? 0 : NBD_STATE_HOLE)
            | (status & BDRV_STATUS_ZERO ? NBD_STATE_ZERO : 0));
    status_walk(r);
}

static void depth_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    NbdReq *r = opaque;

    if (ret < 0) {
        error_reply(r, -ret, "can't get block status");
        req_free(r);
        return;
    }
    pnum = MIN(pnum, r->end - r->pos);
    if (!(status & BDRV_STATUS_ALLOCATED)) {
        r->depth_node = bdrv_backing_chain_next(r->depth_node);
        r->depth++;
        if (r->depth_node) {
            /* the same stretch, one layer down */
            bdrv_block_status(r->depth_node, r->pos, pnum, depth_cb, r);
            return;
        }
    }
    ext_add(r, pnum, r->depth_node ? r->depth : 0);
    /* the next stretch starts from the top again */
    r->depth_node = bdrv_skip_filters(r->c->exp->node);
    r->depth = 1;
    status_walk(r);
}

/* A bitmap's extents need no I/O: dirty (1) and clean (0) runs. */
static void bitmap_walk(NbdReq *r, DirtyBitmap *bm)
{
    HBitmap *hb = dbitmap_hbitmap(bm);
    uint64_t size = hbitmap_size(hb);

    while (!ext_full(r)) {
        bool dirty = r->pos < size && hbitmap_get(hb, r->pos);
        int64_t next = r->pos >= size ? -1 : dirty
            ? hbitmap_next_clean(hb, r->pos) : hbitmap_next_dirty(hb, r->pos);
        uint64_t stop = next < 0 || (uint64_t)next > r->end
            ? r->end : (uint64_t)next;

        ext_add(r, MAX(stop, r->pos + 1) - r->pos,
                dirty ? NBD_STATE_DIRTY : 0);
    }
}

/* Go on with the current context, or send it and go to the next. */
static void status_walk(NbdReq *r)
{
    NbdExport *exp = r->c->exp;

    if (ext_full(r)) {
        int ctx = r->ctx;

        /* whether another context follows decides DONE */
        r->ctx++;
        status_next_ctx(r);
        ext_send(r, ctx, r->ctx == -1);
        if (r->ctx == -1) {
            req_free(r);
            return;
        }
        g_array_set_size(r->ext, 0);
        r->ext_done = false;
        r->pos = r->h.offset;
        r->depth_node = bdrv_skip_filters(exp->node);
        r->depth = 1;
    }
    if (r->ctx == META_ID_BASE) {
        bdrv_block_status_above(exp->node, r->pos, r->end - r->pos,
                                base_cb, r);
    } else if (r->ctx == META_ID_DEPTH) {
        bdrv_block_status(r->depth_node, r->pos, r->end - r->pos, depth_cb,
                          r);
    } else {
        bitmap_walk(r, exp->bitmaps[r->ctx - META_ID_BITMAP]);
        status_walk(r);
    }
}

/* Move r->ctx to the first chosen context at or after it, or -1. */
static void status_next_ctx(NbdReq *r)
{
    NbdConn *c = r->c;

    for (; r->ctx < META_ID_BITMAP + (int)c->exp->nbitmaps; r->ctx++) {
        if ((r->ctx == META_ID_BASE && c->meta_base)
            || (r->ctx == META_ID_DEPTH && c->meta_depth)
            || (r->ctx >= META_ID_BITMAP
                && c->meta_bitmaps[r->ctx - META_ID_BITMAP])) {
            return;
        }
    }
    r->ctx = -1;
}

static void do_block_status(NbdReq *r)
{
    r->ext = g_array_new(false, false, 1);
    r->pos = r->h.offset;
    r->end = r->h.offset + r->h.length;
    r->ctx = 0;
    status_next_ctx(r);
    r->depth_node = bdrv_skip_filters(r->c->exp->node);
    r->depth = 1;
    status_walk(r);
}

/* ---- the rest ---- */

static void cache_done_cb(void *opaque, int ret)
{
    NbdReq *r = opaque;

    ioq_buf_free(g_steal_pointer(&r->buf));
    r->c->mem -= r->buflen;
    generic_done_cb(r, ret);
}

static void trim_done_cb(void *opaque, int ret)
{
    NbdReq *r = opaque;

    if (ret >= 0 && (r->h.flags & NBD_CMD_FLAG_FUA)) {
        blk_flush(r->c->exp->blk, generic_done_cb, r);
        return;
    }
    generic_done_cb(r, ret);
}

/* The flags each command may carry (QEMU refuses others: EINVAL). */
static uint16_t valid_flags(const NbdConn *c, uint16_t type)
{
    switch (type) {
    case NBD_CMD_READ:
        return NBD_CMD_FLAG_FUA | (c->structured ? NBD_CMD_FLAG_DF : 0);
    case NBD_CMD_WRITE_ZEROES:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE
            | NBD_CMD_FLAG_FAST_ZERO;
    case NBD_CMD_BLOCK_STATUS:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
    default:
        return NBD_CMD_FLAG_FUA;
    }
}

/* QEMU's checks, in its order; NULL when the request may go on. */
static const char *check_request(NbdReq *r, int *err)
{
    NbdConn *c = r->c;
    NbdExport *exp = c->exp;
    uint64_t size = bdrv_length(exp->node);
    uint16_t t = r->h.type;

    *err = EINVAL;
    if (t > NBD_CMD_BLOCK_STATUS || t == NBD_CMD_DISC) {
        return "invalid request type received";
    }
    if ((t == NBD_CMD_READ || t == NBD_CMD_CACHE)
        && r->h.length > NBD_MAX_BUFFER_SIZE) {
        return "len is larger than max len";
    }
    if (t != NBD_CMD_FLUSH
        && (r->h.offset > size || r->h.length > size - r->h.offset)) {
        *err = t == NBD_CMD_WRITE || t == NBD_CMD_WRITE_ZEROES
            ? ENOSPC : EINVAL;
        return "operation past end of device";
    }
    if (r->h.flags & ~valid_flags(c, t)) {
        return "unsupported flags";
    }
    if (!exp->writable && (t == NBD_CMD_WRITE || t == NBD_CMD_TRIM
                           || t == NBD_CMD_WRITE_ZEROES)) {
        *err = EPERM;
        return "export is read-only";
    }
    if (t == NBD_CMD_BLOCK_STATUS
        && (!c->structured || c->meta_exp != exp
            || !(c->meta_base || c->meta_depth
                 || memchr(c->meta_bitmaps, true, exp->nbitmaps)))) {
        return "CMD_BLOCK_STATUS not negotiated";
    }
    return NULL;
}

static void start_request(NbdReq *r)
{
    BlockBackend *blk = r->c->exp->blk;
    int fua = r->h.flags & NBD_CMD_FLAG_FUA ? BDRV_REQ_FUA : 0;
    const char *msg;
    int err;

    msg = check_request(r, &err);
    if (msg) {
        error_reply(r, err, msg);
        req_free(r);
        return;
    }
    switch (r->h.type) {
    case NBD_CMD_READ:
        do_read(r);
        break;
    case NBD_CMD_WRITE:
        blk_write(blk, r->h.offset, r->h.length, r->buf, fua,
                  generic_done_cb, r);
        break;
    case NBD_CMD_FLUSH:
        blk_flush(blk, generic_done_cb, r);
        break;
    case NBD_CMD_TRIM:
        blk_discard(blk, r->h.offset, r->h.length, trim_done_cb, r);
        break;
    case NBD_CMD_CACHE:
        /* a read that warms what lies under the export */
        r->buf = ioq_buf_alloc(MAX(r->h.length, 1));
        r->buflen = r->h.length;
        r->c->mem += r->buflen;
        blk_read(blk, r->h.offset, r->h.length, r->buf, cache_done_cb, r);
        break;
    case NBD_CMD_WRITE_ZEROES:
        blk_write_zeroes(blk, r->h.offset, r->h.length, fua
                         | (r->h.flags & NBD_CMD_FLAG_NO_HOLE
                            ? 0 : BDRV_REQ_MAY_UNMAP),
                         generic_done_cb, r);
        break;
    case NBD_CMD_BLOCK_STATUS:
        do_block_status(r);
        break;
    }
}

ssize_t nbd_cmds_parse(NbdConn *c, const uint8_t *buf, size_t len)
{
    NbdRequest h;
    NbdReq *r;
    size_t need = NBD_REQUEST_SIZE;

    if (len < NBD_REQUEST_SIZE) {
        return 0;
    }
    if (!nbd_request_decode(buf, &h)) {
        return -1;
    }
    if (h.type == NBD_CMD_DISC) {
        c->closing = true;
        return NBD_REQUEST_SIZE;
    }
    if (h.type == NBD_CMD_WRITE) {
        /* a payload we will not take leaves the stream unparsable */
        if (h.length > NBD_MAX_BUFFER_SIZE) {
            return -1;
        }
        need += h.length;
        if (len < need) {
            return 0;
        }
    }
    r = g_new0(NbdReq, 1);
    r->c = c;
    r->h = h;
    if (h.type == NBD_CMD_WRITE) {
        r->buf = ioq_buf_alloc(MAX(h.length, 1));
        r->buflen = h.length;
        memcpy(r->buf, buf + NBD_REQUEST_SIZE, h.length);
        c->mem += h.length;
    }
    c->in_flight++;
    start_request(r);
    return need;
}
