/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2: the data path (reads, writes, zero writes, discards, block
 * status), for the driver table in qcow2.c.
 *
 * A request walks its guest range L2 table by L2 table.  Within a table
 * it takes runs of clusters of one kind (data, zero, unallocated,
 * compressed) and issues one sub-request per run: contiguous data
 * clusters become one read or write on the file.
 *
 * Writes to clusters that are not plain allocated data (unallocated,
 * zero, compressed, shared) allocate new clusters, which
 * qcow2-cluster.c does (claims, copy on write, L2 updates).
 *
 * Zero writes and discards follow QEMU 7.2's generic layer and driver:
 * whole clusters change their L2 entries (qcow2_zero_entry() says how;
 * the clusters they stop using are freed with the reason "request"), a
 * discard skips partial clusters, and a zero write of part of a cluster
 * sets the zero flag only when the rest of the cluster reads as zeroes
 * already (down the backing chain if need be), else writes zeroes as
 * data.  v2 images have no zero flag: without a backing file zero
 * writes discard, with one they write zeroes and discards do nothing.
 *
 * Metadata writeback is qcow2-flush.c, the header qcow2-header.c, open,
 * close and reopen qcow2.c.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2-io.h"

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

/* ---- request completion ------------------------------------------------- */

static void req_finish(Qcow2Req *r)
{
    Qcow2State *s = state(r->bn);

    if (r->l2) {
        qcow2_table_unpin(&s->l2_cache, r->l2);
        r->l2 = NULL;
    }
    r->cb(r->opaque, r->ret);
    ioq_req_free(r, sizeof(*r));
}

void qcow2_sub_done(Qcow2Req *r, int ret)
{
    if (ret < 0 && r->ret == 0) {
        r->ret = ret;
    }
    if (--r->pending == 0) {
        req_finish(r);
    }
}

void qcow2_sub_done_cb(void *opaque, int ret)
{
    qcow2_sub_done(opaque, ret);
}

typedef struct {
    BlockNode *bn;
    DataOp op;
    uint64_t host;
    uint64_t len;
    uint8_t *buf;
    int flags;
    uint64_t token;         /* qcow2_io_begin() */
    int ret;
    BdrvCb *done;
    void *done_opaque;
} DataIo;

static void data_io_done_cb(void *opaque, int ret)
{
    DataIo *d = opaque;

    qcow2_io_end(d->bn, d->token);
    d->done(d->done_opaque, ret < 0 ? ret : d->ret);
    ioq_req_free(d, sizeof(*d));
}

static void data_io_go_cb(void *opaque, int ret)
{
    DataIo *d = opaque;
    BlockNode *f = file_of(d->bn);

    if (state(d->bn)->dead) {
        ioq_defer_int(data_io_done_cb, d, -ENOMEDIUM);
        return;
    }
    if (d->op == DATA_READ) {
        bdrv_read(f, d->host, d->len, d->buf, data_io_done_cb, d);
        return;
    }
    d->ret = qcow2_overlap_check(d->bn, 0, d->host, d->len);
    if (d->ret < 0) {
        ioq_defer_int(data_io_done_cb, d, d->ret);
    } else if (d->op == DATA_WRITE) {
        bdrv_write(f, d->host, d->len, d->buf, d->flags, data_io_done_cb, d);
    } else {
        bdrv_write_zeroes(f, d->host, d->len, d->flags, data_io_done_cb, d);
    }
}

void qcow2_data_io(BlockNode *bn, BlkdebugEvent ev, DataOp op, uint64_t host,
                   uint64_t len, const uint8_t *buf, int flags, BdrvCb *done,
                   void *done_opaque)
{
    DataIo *d = ioq_req_new0(DataIo);

    d->bn = bn;
    d->op = op;
    d->host = host;
    d->len = len;
    d->buf = (uint8_t *)buf;
    d->flags = flags;
    d->done = done;
    d->done_opaque = done_opaque;
    d->token = qcow2_io_begin(bn);
    if (!bdrv_debug_event(file_of(bn), ev, data_io_go_cb, d)) {
        data_io_go_cb(d, 0);
    }
}

/* ---- reads ---------------------------------------------------------------- */

typedef struct {
    Qcow2Req *r;
    uint8_t *cbuf;          /* compressed bytes */
    uint64_t clen;
    uint8_t *dst;
    uint64_t in_off;        /* offset of the wanted bytes in the cluster */
    uint64_t len;
    uint64_t token;
} Decompress;

static int inflate_cluster(const uint8_t *src, uint64_t slen, uint8_t *dst,
                           uint32_t dlen)
{
    z_stream z = { 0 };
    int r;

    if (inflateInit2(&z, -12) != Z_OK) {
        return -EIO;
    }
    z.next_in = (Bytef *)src;
    z.avail_in = slen;
    z.next_out = dst;
    z.avail_out = dlen;
    r = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    /* the stream may end before the buffer: QEMU pads with nothing */
    if ((r != Z_STREAM_END && r != Z_BUF_ERROR) || z.avail_out != 0) {
        return -EIO;
    }
    return 0;
}

static void decompress_read_cb(void *opaque, int ret)
{
    Decompress *d = opaque;
    Qcow2State *s = state(d->r->bn);

    if (ret == 0) {
        uint8_t *out = g_malloc(s->cluster_size);

        ret = inflate_cluster(d->cbuf, d->clen, out, s->cluster_size);
        if (ret == 0) {
            memcpy(d->dst, out + d->in_off, d->len);
        }
        g_free(out);
    }
    ioq_buf_free(d->cbuf);
    qcow2_io_end(d->r->bn, d->token);
    qcow2_sub_done(d->r, ret);
    g_free(d);
}

static void read_compressed(Qcow2Req *r, uint64_t e, uint64_t in_off,
                            uint64_t len, uint8_t *dst)
{
    Qcow2State *s = state(r->bn);
    Decompress *d = g_new0(Decompress, 1);
    uint64_t coff;

    qcow2_compressed_range(s, e, &coff, &d->clen);
    d->r = r;
    d->dst = dst;
    d->in_off = in_off;
    d->len = len;
    d->cbuf = ioq_buf_alloc(d->clen);
    r->pending++;
    d->token = qcow2_io_begin(r->bn);
    bdrv_debug_event(file_of(r->bn), BLKDBG_READ_COMPRESSED, NULL, NULL);
    bdrv_read(file_of(r->bn), coff, d->clen, d->cbuf, decompress_read_cb, d);
}

/* Unallocated: the backing file's bytes, zeroes beyond its end. */
static void read_unallocated(Qcow2Req *r, uint64_t pos, uint64_t len,
                             uint8_t *dst)
{
    BlockNode *b = bdrv_backing(r->bn);
    uint64_t blen = b ? bdrv_length(b) : 0;
    uint64_t from_b = pos < blen ? MIN(len, blen - pos) : 0;

    if (from_b) {
        r->pending++;
        bdrv_debug_event(file_of(r->bn), BLKDBG_READ_BACKING_AIO, NULL,
                         NULL);
        bdrv_read(b, pos, from_b, dst, qcow2_sub_done_cb, r);
    }
    if (from_b < len) {
        memset(dst + from_b, 0, len - from_b);
    }
}

static Qcow2Req *req_new(BlockNode *bn, QReqType type, uint64_t off,
                         uint64_t len, const void *buf, int flags,
                         BdrvCb *cb, void *opaque);

/* ---- zero writes within one cluster ------------------------------------- */

/*
 * QEMU zeroes a part of a cluster through the zero flag only when the
 * rest of the cluster reads as zeroes already; for a cluster that falls
 * through to the backing file that is a block status query down the
 * chain, after which the zero write runs again, knowing.
 */
typedef struct {
    Qcow2Req *r;            /* the zero write waiting */
    uint64_t pos;
    uint64_t len;
    uint64_t off[2];        /* the rest: before and after */
    uint64_t end[2];
    int i;
    bool zero;
} RestCheck;

static void rest_check_next(RestCheck *c);

static void rest_zero_done_cb(void *opaque, int ret)
{
    qcow2_sub_done(opaque, ret);
}

static void rest_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    RestCheck *c = opaque;

    if (ret < 0 || !(status & BDRV_STATUS_ZERO) || !pnum) {
        c->zero = false;
        c->i = 2;
    } else {
        c->off[c->i] += pnum;
    }
    rest_check_next(c);
}

static void rest_check_next(RestCheck *c)
{
    BlockNode *b = bdrv_backing(c->r->bn);
    uint64_t blen = bdrv_length(b);

    while (c->i < 2) {
        /* past the backing file's end everything reads as zeroes */
        uint64_t end = MIN(c->end[c->i], blen);

        if (c->off[c->i] >= end) {
            c->i++;
            continue;
        }
        bdrv_block_status_above(b, c->off[c->i], end - c->off[c->i],
                                rest_status_cb, c);
        return;
    }
    {
        Qcow2Req *z = req_new(c->r->bn, QREQ_ZERO, c->pos, c->len, NULL,
                              c->r->flags, rest_zero_done_cb, c->r);

        z->rest_zero = c->zero ? 1 : -1;
        g_free(c);
        qcow2_req_step(z);
    }
}

/* A zero write of [@pos, +@len), inside one cluster and not all of it. */
static bool zero_partial(Qcow2Req *r, uint64_t pos, uint64_t len)
{
    Qcow2State *s = state(r->bn);
    BlockNode *bn = r->bn;
    uint64_t cstart = pos & ~((uint64_t)s->cluster_size - 1);
    bool backing = bdrv_backing(bn) != NULL;
    bool none, rest_zero;
    uint32_t l2i;
    uint64_t e;

    if (!qcow2_need_l2(r, pos, true, &none)
        || qcow2_wait_for_claim(r, cstart, cstart + s->cluster_size)) {
        return false;
    }
    l2i = (pos >> s->cluster_bits) & (s->l2_size - 1);
    e = qcow2_l2_get(r->l2, l2i);
    switch (s->version < 3 && backing ? QCOW2_KIND_DATA
                                      : qcow2_classify(s, e)) {
    case QCOW2_KIND_ZERO:
    case QCOW2_KIND_ZERO_ALLOC:
        rest_zero = true;
        break;
    case QCOW2_KIND_UNALLOCATED:
        if (!backing) {
            rest_zero = true;
        } else if (r->rest_zero) {
            rest_zero = r->rest_zero > 0;
        } else {
            RestCheck *c = g_new0(RestCheck, 1);

            c->r = r;
            c->pos = pos;
            c->len = len;
            c->off[0] = cstart;
            c->end[0] = pos;
            c->off[1] = pos + len;
            c->end[1] = MIN(cstart + s->cluster_size, bn->total_size);
            c->zero = true;
            r->pending++;
            r->pos += len;
            rest_check_next(c);
            return true;
        }
        break;
    default:
        rest_zero = false;
        break;
    }
    /*
     * v2 has no zero flag: without a backing file it zeroes by
     * discarding, with one it writes zeroes as data
     */
    if (rest_zero) {
        qcow2_set_clusters(r, r->l2, l2i, 1, s->version < 3);
    } else {
        qcow2_write_as_data(r, pos, len, e);
    }
    r->pos += len;
    return true;
}

/*
 * Zero writes and discards from r->pos to @chunk_end (one L2 table), as
 * QEMU's generic layer splits them: whole clusters change their L2
 * entries (a partial cluster at the end of the image counts as whole);
 * a discard ignores partial clusters, a zero write zeroes them as
 * zero_partial() says.  False when the request waits.
 */
static bool zero_discard_step(Qcow2Req *r, uint64_t chunk_end)
{
    Qcow2State *s = state(r->bn);
    uint64_t pos = r->pos;
    uint64_t cmask = s->cluster_size - 1;
    uint64_t cstart = pos & ~cmask;
    uint64_t lim = MIN(r->end, chunk_end);
    bool v2_backing = s->version < 3 && bdrv_backing(r->bn);
    uint64_t whole = 0, wend;
    uint32_t l2i;
    bool none;

    if (r->type == QREQ_DISCARD && v2_backing) {
        /* without a zero flag the backing file's old data would show */
        r->pos = r->end;
        return true;
    }
    if (pos == cstart) {
        whole = (lim - pos) >> s->cluster_bits;
        if (lim == r->bn->total_size && (lim & cmask)) {
            whole++;
        }
    }
    if (!whole) {
        uint64_t piece = MIN(r->end, cstart + s->cluster_size) - pos;

        if (r->type == QREQ_DISCARD) {
            r->pos += piece;
            return true;
        }
        return zero_partial(r, pos, piece);
    }
    wend = MIN(r->end, pos + (whole << s->cluster_bits));
    if (!qcow2_need_l2(r, pos, true, &none)
        || qcow2_wait_for_claim(r, pos, align_up(wend, s->cluster_size))) {
        return false;
    }
    l2i = (pos >> s->cluster_bits) & (s->l2_size - 1);
    if (v2_backing) {
        /* no zero flag, and discarding would show the backing file */
        uint64_t e = qcow2_l2_get(r->l2, l2i);
        uint64_t n = qcow2_write_run(s, r->l2, l2i, whole, e);

        wend = MIN(wend, pos + (n << s->cluster_bits));
        qcow2_write_as_data(r, pos, wend - pos, e);
    } else {
        qcow2_set_clusters(r, r->l2, l2i, whole,
                           r->type == QREQ_DISCARD || s->version < 3);
    }
    r->pos = wend;
    return true;
}

void qcow2_req_step(Qcow2Req *r)
{
    Qcow2State *s = state(r->bn);
    uint64_t cmask = s->cluster_size - 1;

    r->pending++;
    if (s->dead && r->ret == 0) {
        r->ret = -ENOMEDIUM;
    }
    while (r->pos < r->end && r->ret == 0) {
        uint64_t pos = r->pos;
        uint64_t span = 1ull << (s->l2_bits + s->cluster_bits);
        uint64_t chunk_end = MIN(r->end, (pos & ~(span - 1)) + span);
        bool none;
        uint32_t l2i;
        uint64_t e, nclusters, n, len;
        Qcow2ClusterKind kind;

        if (r->type == QREQ_ZERO || r->type == QREQ_DISCARD) {
            if (!zero_discard_step(r, chunk_end)) {
                break;
            }
            continue;
        }
        /* without an L2 table reads come from the backing file, or zeroes */
        if (!qcow2_need_l2(r, pos, r->type == QREQ_WRITE, &none)) {
            break;
        }
        if (none) {
            len = chunk_end - pos;
            read_unallocated(r, pos, len, r->buf + (pos - r->off));
            r->pos += len;
            continue;
        }
        l2i = (pos >> s->cluster_bits) & (s->l2_size - 1);
        e = qcow2_l2_get(r->l2, l2i);
        kind = qcow2_classify(s, e);
        nclusters = ((chunk_end - 1) >> s->cluster_bits)
            - (pos >> s->cluster_bits) + 1;
        n = r->type == QREQ_WRITE
            ? qcow2_write_run(s, r->l2, l2i, nclusters, e)
            : qcow2_run_length(s, r->l2, l2i, nclusters, e);
        len = MIN((n << s->cluster_bits) - (pos & cmask), chunk_end - pos);
        if ((kind == QCOW2_KIND_DATA || kind == QCOW2_KIND_SHARED)
            && !r->bn->read_only
            && (e & L2E_OFFSET_MASK) + (pos & cmask) + len > s->next_free) {
            /*
             * data past the end of the file (corrupt): new clusters go
             * there.  A read-only node allocates nothing, and a writer
             * that shares the image with it (force-share) grows the file
             */
            r->ret = -EIO;
            break;
        }

        if (r->type == QREQ_READ) {
            uint8_t *dst = r->buf + (pos - r->off);

            switch (kind) {
            case QCOW2_KIND_DATA:
            case QCOW2_KIND_SHARED: {
                uint64_t host = (e & L2E_OFFSET_MASK) + (pos & cmask);

                r->pending++;
                qcow2_data_io(r->bn, BLKDBG_READ_AIO, DATA_READ, host, len,
                              dst, 0, qcow2_sub_done_cb, r);
                break;
            }
            case QCOW2_KIND_ZERO:
            case QCOW2_KIND_ZERO_ALLOC:
                memset(dst, 0, len);
                break;
            case QCOW2_KIND_UNALLOCATED:
                read_unallocated(r, pos, len, dst);
                break;
            case QCOW2_KIND_COMPRESSED:
                read_compressed(r, e, pos & cmask, len, dst);
                break;
            }
            r->pos += len;
            continue;
        }
        if (qcow2_wait_for_claim(r, pos & ~cmask, align_up(pos + len,
                                                     s->cluster_size))) {
            break;
        }
        qcow2_write_as_data(r, pos, len, e);
        r->pos += len;
    }
    if (r->pos >= r->end && r->l2) {
        qcow2_table_unpin(&s->l2_cache, r->l2);
        r->l2 = NULL;
    }
    qcow2_sub_done(r, 0);
}

static Qcow2Req *req_new(BlockNode *bn, QReqType type, uint64_t off,
                         uint64_t len, const void *buf, int flags,
                         BdrvCb *cb, void *opaque)
{
    Qcow2Req *r = ioq_req_new0(Qcow2Req);

    r->bn = bn;
    r->type = type;
    r->off = off;
    r->pos = off;
    r->end = off + len;
    r->buf = (uint8_t *)buf;
    r->flags = flags;
    r->cb = cb;
    r->opaque = opaque;
    return r;
}

void qcow2_do_read(BlockNode *bn, uint64_t off, uint64_t len, uint8_t *buf,
                   BdrvCb *cb, void *opaque)
{
    qcow2_req_step(req_new(bn, QREQ_READ, off, len, buf, 0, cb, opaque));
}

void qcow2_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                BdrvCb *cb, void *opaque)
{
    if (off + len > bn->total_size) {
        uint64_t valid = off < bn->total_size ? bn->total_size - off : 0;

        memset((uint8_t *)buf + valid, 0, len - valid);
        len = valid;
    }
    qcow2_do_read(bn, off, len, buf, cb, opaque);
}

void qcow2_write(BlockNode *bn, uint64_t off, uint64_t len,
                 const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    if (off + len > bn->total_size) {
        ioq_defer_int(cb, opaque, -EIO);
        return;
    }
    qcow2_req_step(req_new(bn, QREQ_WRITE, off, len, buf, flags, cb, opaque));
}

void qcow2_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                        int flags, BdrvCb *cb, void *opaque)
{
    if (off + len > bn->total_size) {
        ioq_defer_int(cb, opaque, -EIO);
        return;
    }
    qcow2_req_step(req_new(bn, QREQ_ZERO, off, len, NULL, flags, cb, opaque));
}

void qcow2_discard(BlockNode *bn, uint64_t off, uint64_t len,
                   BdrvCb *cb, void *opaque)
{
    qcow2_req_step(req_new(bn, QREQ_DISCARD, off,
                           MIN(len, bn->total_size - off), NULL, 0, cb,
                           opaque));
}

/* ---- block status ------------------------------------------------------- */

typedef struct {
    BlockNode *bn;
    uint64_t off;
    uint64_t len;
    BdrvStatusCb *cb;
    void *opaque;
} StatusReq;

static void status_reply(StatusReq *q, int ret, int status, uint64_t pnum)
{
    q->cb(q->opaque, ret, status, pnum);
    g_free(q);
}

static void status_from_table(StatusReq *q, Qcow2Table *t)
{
    Qcow2State *s = state(q->bn);
    uint64_t cmask = s->cluster_size - 1;
    uint64_t span = 1ull << (s->l2_bits + s->cluster_bits);
    uint64_t chunk_end = MIN(q->off + q->len, (q->off & ~(span - 1)) + span);
    int status = 0;
    uint64_t pnum = chunk_end - q->off;

    if (t) {
        uint32_t l2i = (q->off >> s->cluster_bits) & (s->l2_size - 1);
        uint64_t e = qcow2_l2_get(t, l2i);
        uint64_t nclusters = ((chunk_end - 1) >> s->cluster_bits)
            - (q->off >> s->cluster_bits) + 1;
        uint64_t n = 1;

        while (n < nclusters
               && qcow2_classify(s, qcow2_l2_get(t, l2i + n))
                  == qcow2_classify(s, e)) {
            n++;
        }
        pnum = MIN((n << s->cluster_bits) - (q->off & cmask), pnum);
        switch (qcow2_classify(s, e)) {
        case QCOW2_KIND_DATA:
        case QCOW2_KIND_SHARED:
        case QCOW2_KIND_COMPRESSED:
            status = BDRV_STATUS_DATA | BDRV_STATUS_ALLOCATED;
            break;
        case QCOW2_KIND_ZERO:
        case QCOW2_KIND_ZERO_ALLOC:
            status = BDRV_STATUS_ZERO | BDRV_STATUS_ALLOCATED;
            break;
        case QCOW2_KIND_UNALLOCATED:
            break;
        }
    }
    if (!(status & BDRV_STATUS_ALLOCATED) && !bdrv_backing(q->bn)) {
        status = BDRV_STATUS_ZERO;
    }
    status_reply(q, 0, status, pnum);
}

static void status_unallocated_cb(void *opaque, ssize_t ret)
{
    status_from_table(opaque, NULL);
}

static void status_error_cb(void *opaque, ssize_t ret)
{
    status_reply(opaque, ret, 0, 0);
}

static void status_loaded_cb(void *opaque, int ret, Qcow2Table *t)
{
    StatusReq *q = opaque;
    Qcow2State *s = state(q->bn);

    if (ret < 0) {
        status_reply(q, ret, 0, 0);
        return;
    }
    status_from_table(q, t);        /* frees q */
    qcow2_table_unpin(&s->l2_cache, t);
}

void qcow2_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                        BdrvStatusCb *cb, void *opaque)
{
    Qcow2State *s = state(bn);
    StatusReq *q = g_new0(StatusReq, 1);
    uint64_t l1i = off >> (s->l2_bits + s->cluster_bits);
    uint64_t l2off = l1i < s->l1_size ? s->l1[l1i] & L1E_OFFSET_MASK : 0;

    q->bn = bn;
    q->off = off;
    q->len = len;
    q->cb = cb;
    q->opaque = opaque;
    if (!l2off) {
        /* answer from the main loop, like every other completion */
        ioq_defer(status_unallocated_cb, q, 0);
        return;
    }
    if (!qcow2_l2_offset_valid(s, l2off)) {
        ioq_defer(status_error_cb, q, -EIO);
        return;
    }
    qcow2_table_get(bn, &s->l2_cache, l2off, status_loaded_cb, q);
}
