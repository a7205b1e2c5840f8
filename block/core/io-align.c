/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block limits: what a node's driver is handed, as QEMU's generic block
 * layer hands it.  io.c checks, accounts and serialises a request; this
 * file turns it into driver requests that fit the node's BdrvLimits:
 *
 *   max_transfer       reads and writes go down in pieces of at most
 *                      this many bytes, one after another;
 *   request_alignment  every driver request starts and ends on it.  A
 *                      read is widened and the extra bytes dropped.  A
 *                      write is widened by reading the partial first and
 *                      last blocks back and writing whole blocks
 *                      (read-modify-write).  For a zero write the partial
 *                      blocks go down as data, the whole ones as zeroes;
 *   pwrite_zeroes_alignment, max_pwrite_zeroes
 *                      zero writes are cut so that the bulk is aligned;
 *                      a piece the driver declines (-ENOTSUP) is written
 *                      as zeroed data instead;
 *   pdiscard_alignment, max_pdiscard
 *                      the same for discards, whose declined pieces are
 *                      simply dropped.
 *
 * Example, request_alignment 4096, a write of 512 bytes at 512:
 *
 *     0   512  1024                 4096
 *     |hhh|dddd|ttttttttttttttttttttt|     one block, head and tail
 *     read [0, 4096) (events pwritev_rmw_head, pwritev_rmw_tail before,
 *     .._after_head, .._after_tail after), copy the data in at 512,
 *     write [0, 4096) (pwritev before, pwritev_done after).
 *
 * Why the read-back is safe: io.c takes a range lock over the widened
 * extent before such a write starts, so no other write to those blocks
 * is in flight between our read and our write, and none starts until
 * ours has completed.  A read-back that fails fails the write: the
 * bytes it should have supplied are never written from a guess.  (QEMU
 * 7.2 ignores that error and writes the block anyway.)
 *
 * blkdebug's generic events are raised here on the node itself, as
 * QEMU's request layer raises them, so that they fire once per request
 * whatever the splitting; each may hold the request at a breakpoint.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/io-align.h"
#include "block/core/ioq.h"

/* Zeroes written as data, at most this much at a time. */
#define ZERO_CHUNK (1u << 20)

/* QEMU's ceiling for one read or write request (INT_MAX). */
#define MAX_RW_BYTES ((uint64_t)G_MAXINT32)

/* QEMU's bounce buffer for zeroes written as data: an unaligned zero
 * head is never longer. */
#define MAX_BOUNCE (16ull << 20)

static uint64_t min_nonzero(uint64_t a, uint64_t b)
{
    return !a ? b : !b ? a : MIN(a, b);
}

static uint64_t round_down(uint64_t v, uint64_t align)
{
    return v - v % align;
}

static uint64_t round_up(uint64_t v, uint64_t align)
{
    return round_down(v + align - 1, align);
}

/* The longest read or write piece @bn's driver takes (aligned). */
static uint64_t max_piece(const BdrvLimits *bl)
{
    uint64_t max = round_down(min_nonzero(bl->max_transfer, MAX_RW_BYTES),
                              bl->request_alignment);

    return MAX(max, bl->request_alignment);
}

void bdrv_refresh_limits(BlockNode *bn)
{
    BdrvChild *kids[] = { bn->file, bn->backing };
    BdrvLimits bl = { .request_alignment = 1 };

    /* what a parent inherits from the children it passes data to */
    for (size_t i = 0; i < G_N_ELEMENTS(kids); i++) {
        const BdrvLimits *c;

        if (!kids[i]) {
            continue;
        }
        c = &kids[i]->child->bl;
        bl.max_transfer = min_nonzero(bl.max_transfer, c->max_transfer);
        bl.pdiscard_alignment = MAX(bl.pdiscard_alignment,
                                    c->pdiscard_alignment);
    }
    bn->bl = bl;
    if (bn->drv->refresh_limits) {
        bn->drv->refresh_limits(bn);
    }
    for (guint i = 0; bn->parents && i < bn->parents->len; i++) {
        BdrvChild *c = g_ptr_array_index(bn->parents, i);

        if (c->parent) {
            bdrv_refresh_limits(c->parent);
        }
    }
}

bool bdrv_check_write_unresized(const BlockNode *bn, Error **errp)
{
    while (bn) {
        if (round_up(bdrv_length(bn), 512) % bn->bl.request_alignment) {
            error_setg(errp, "Cannot get 'write' permission without "
                       "'resize': Image size is not a multiple of request "
                       "alignment");
            return false;
        }
        /* a format's metadata child is written with resize */
        if (!bn->drv->is_filter && strcmp(bn->drv->name, "raw")) {
            break;
        }
        bn = bn->file ? bn->file->child : NULL;
    }
    return true;
}

bool bdrv_padding(uint64_t off, uint64_t len, uint32_t align,
                  BdrvPadding *p)
{
    uint64_t sum;

    p->head = off % align;
    p->tail = (off + len) % align;
    if (p->tail) {
        p->tail = align - p->tail;
    }
    if (!p->head && !p->tail) {
        return false;
    }
    sum = p->head + len + p->tail;
    p->buf_len = sum > align && p->head && p->tail ? 2 * (uint64_t)align
                                                     : align;
    p->merge = sum == p->buf_len;
    return true;
}

uint64_t bdrv_zero_piece(const BdrvLimits *bl, uint64_t off, uint64_t len)
{
    uint64_t align = MAX(bl->pwrite_zeroes_alignment, bl->request_alignment);
    uint64_t max = round_down(min_nonzero(bl->max_pwrite_zeroes, INT64_MAX),
                              align);
    uint64_t head = off % align;
    uint64_t tail = (off + len) % align;
    uint64_t n = len;

    if (head) {
        /* up to the next boundary; never more than one transfer */
        n = MIN(MIN(len, min_nonzero(bl->max_transfer, MAX_BOUNCE)),
                align - head);
    } else if (tail && n > align) {
        n -= tail;
    }
    return MIN(n, max);
}

uint64_t bdrv_discard_piece(const BdrvLimits *bl, uint64_t off,
                            uint64_t len)
{
    uint64_t ra = bl->request_alignment;
    uint64_t align = MAX(bl->pdiscard_alignment, ra);
    uint64_t max = round_down(min_nonzero(bl->max_pdiscard, INT64_MAX),
                              align);
    uint64_t head = off % align;
    uint64_t tail = (off + len) % align;
    uint64_t n = len;

    if (head) {
        n = MIN(len, align - head);
        if (n % ra) {
            n %= ra;
        }
    } else if (tail) {
        if (n > align) {
            n -= tail;
        } else if (tail % ra && tail > ra) {
            n -= tail % ra;
        }
    }
    return MIN(n, max);
}

bool bdrv_needs_rmw(const BlockNode *bn, uint64_t off, uint64_t len)
{
    uint32_t align = bn->bl.request_alignment;

    return align > 1 && (off % align || len % align);
}

void bdrv_rmw_extent(const BlockNode *bn, uint64_t off, uint64_t len,
                     uint64_t *aoff, uint64_t *alen)
{
    uint32_t align = bn->bl.request_alignment;

    *aoff = round_down(off, align);
    *alen = round_up(off + len, align) - *aoff;
}

/* Report @ev on @bn; false when the caller goes on at once, true when a
 * breakpoint holds it and @cb(@opaque, 0) continues later. */
static bool event_holds(BlockNode *bn, BlkdebugEvent ev, BdrvCb *cb,
                        void *opaque)
{
    return bdrv_debug_event(bn, ev, cb, opaque);
}

/* ---- aligned reads (QEMU's bdrv_aligned_preadv) ------------------------- */

typedef struct {
    BlockNode *bn;
    uint64_t off;               /* next byte, aligned */
    uint64_t end;
    uint64_t max_bytes;         /* readable from @off: to the aligned EOF */
    uint8_t *buf;               /* where @off goes */
    BdrvCb *cb;
    void *opaque;
} AlignedRead;

static void aligned_read_cb(void *opaque, int ret)
{
    AlignedRead *a = opaque;
    uint64_t max = max_piece(&a->bn->bl);
    uint64_t n;

    if (ret >= 0 && a->off < a->end && !a->max_bytes) {
        /* past the end of the image: reads as zeroes */
        memset(a->buf, 0, a->end - a->off);
        a->off = a->end;
    }
    if (ret < 0 || a->off >= a->end) {
        a->cb(a->opaque, ret < 0 ? ret : 0);
        g_free(a);
        return;
    }
    n = MIN(a->end - a->off, MIN(a->max_bytes, max));
    a->off += n;
    a->buf += n;
    a->max_bytes -= n;
    a->bn->drv->read(a->bn, a->off - n, n, a->buf - n, aligned_read_cb, a);
}

/* Read the aligned [@off, @off + @len) through @bn's driver. */
static void aligned_read(BlockNode *bn, uint64_t off, uint64_t len,
                         void *buf, BdrvCb *cb, void *opaque)
{
    AlignedRead *a = g_new0(AlignedRead, 1);
    uint64_t eof = bdrv_length(bdrv_skip_filters(bn));

    a->bn = bn;
    a->off = off;
    a->end = off + len;
    a->max_bytes = round_up(eof > off ? eof - off : 0,
                            bn->bl.request_alignment);
    a->buf = buf;
    a->cb = cb;
    a->opaque = opaque;
    if (!a->max_bytes) {
        /* nothing for the driver: finish from the main loop */
        ioq_defer_int(aligned_read_cb, a, 0);
        return;
    }
    aligned_read_cb(a, 0);
}

typedef struct {
    uint8_t *bounce;
    uint64_t skip;
    uint64_t len;
    void *buf;
    BdrvCb *cb;
    void *opaque;
} PaddedRead;

static void padded_read_cb(void *opaque, int ret)
{
    PaddedRead *p = opaque;

    if (ret >= 0) {
        memcpy(p->buf, p->bounce + p->skip, p->len);
    }
    ioq_buf_free(p->bounce);
    p->cb(p->opaque, ret);
    g_free(p);
}

void bdrv_limited_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                       BdrvCb *cb, void *opaque)
{
    PaddedRead *p;
    uint64_t aoff, alen;

    if (bn->bl.request_alignment == 1 && !bn->bl.max_transfer) {
        bn->drv->read(bn, off, len, buf, cb, opaque);
        return;
    }
    if (!bdrv_needs_rmw(bn, off, len)) {
        aligned_read(bn, off, len, buf, cb, opaque);
        return;
    }
    bdrv_rmw_extent(bn, off, len, &aoff, &alen);
    p = g_new0(PaddedRead, 1);
    p->bounce = ioq_buf_alloc(alen);
    p->skip = off - aoff;
    p->len = len;
    p->buf = buf;
    p->cb = cb;
    p->opaque = opaque;
    aligned_read(bn, aoff, alen, p->bounce, padded_read_cb, p);
}

/* ---- aligned writes (QEMU's bdrv_aligned_pwritev) ----------------------- */

typedef struct {
    BlockNode *bn;
    uint64_t off;               /* aligned to request_alignment */
    uint64_t len;
    const uint8_t *buf;         /* NULL: zeroes */
    int flags;                  /* BDRV_REQ_MAY_UNMAP */
    int step;
    int ret;
    uint64_t done;              /* bytes of finished pieces */
    uint64_t piece;             /* the piece in flight */
    uint64_t fb_done;           /* of @piece, written as zeroed data */
    uint8_t *zeroes;
    BdrvCb *cb;
    void *opaque;
} AlignedWrite;

static bool buffer_is_zero(const uint8_t *p, uint64_t len)
{
    /* cheap rejection first: most data is not zero */
    if (len && (p[0] || p[len - 1] || p[len / 2])) {
        return false;
    }
    for (uint64_t i = 0; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static void aligned_write_cb(void *opaque, int ret);

/* A zero piece the driver declined or cannot do: zeroed data instead. */
static void zero_fallback_cb(void *opaque, int ret)
{
    AlignedWrite *w = opaque;
    uint64_t max = min_nonzero(w->bn->bl.max_transfer, ZERO_CHUNK);
    uint64_t n;

    if (ret < 0 || w->fb_done >= w->piece) {
        w->fb_done = 0;
        aligned_write_cb(w, ret);
        return;
    }
    n = MIN(w->piece - w->fb_done, max);
    if (!w->zeroes) {
        w->zeroes = ioq_buf_alloc0(MIN(w->len, max));
    }
    w->fb_done += n;
    w->bn->drv->write(w->bn, w->off + w->done + w->fb_done - n, n,
                      w->zeroes, 0, zero_fallback_cb, w);
}

static void zero_piece_cb(void *opaque, int ret)
{
    AlignedWrite *w = opaque;

    if (ret == -ENOTSUP) {
        zero_fallback_cb(w, 0);
        return;
    }
    aligned_write_cb(w, ret);
}

enum {
    AW_EVENT,                   /* pwritev / pwritev_zero */
    AW_PIECES,
    AW_DONE_EVENT,
    AW_FINISH,
};

static void aligned_write_cb(void *opaque, int ret)
{
    AlignedWrite *w = opaque;
    BlockNode *bn = w->bn;

    if (ret < 0 && !w->ret) {
        w->ret = ret;
    }
    for (;;) {
        switch (w->step) {
        case AW_EVENT:
            w->step = AW_PIECES;
            if (event_holds(bn, w->buf ? BLKDBG_PWRITEV : BLKDBG_PWRITEV_ZERO,
                            aligned_write_cb, w)) {
                return;
            }
            break;
        case AW_PIECES:
            w->done += w->piece;
            w->piece = 0;
            if (w->ret || w->done >= w->len) {
                w->step = AW_DONE_EVENT;
                break;
            }
            if (w->buf) {
                w->piece = MIN(w->len - w->done, max_piece(&bn->bl));
                bn->drv->write(bn, w->off + w->done, w->piece,
                               w->buf + w->done, w->flags, aligned_write_cb,
                               w);
                return;
            }
            w->piece = bdrv_zero_piece(&bn->bl, w->off + w->done,
                                       w->len - w->done);
            if (!bn->drv->write_zeroes) {
                zero_fallback_cb(w, 0);
                return;
            }
            bn->drv->write_zeroes(bn, w->off + w->done, w->piece, w->flags,
                                  zero_piece_cb, w);
            return;
        case AW_DONE_EVENT:
            w->step = AW_FINISH;
            if (event_holds(bn, BLKDBG_PWRITEV_DONE, aligned_write_cb, w)) {
                return;
            }
            break;
        default:
            if (w->zeroes) {
                ioq_buf_free(w->zeroes);
            }
            w->cb(w->opaque, w->ret);
            g_free(w);
            return;
        }
    }
}

/*
 * Write the aligned [@off, @off + @len) from @buf (NULL: zeroes) through
 * @bn's driver.  With detect-zeroes, data that is all zero goes down as
 * zeroes (deallocating with detect-zeroes=unmap and discard=unmap).
 */
static void aligned_write(BlockNode *bn, uint64_t off, uint64_t len,
                          const void *buf, int flags, BdrvCb *cb,
                          void *opaque)
{
    AlignedWrite *w = g_new0(AlignedWrite, 1);

    w->bn = bn;
    w->off = off;
    w->len = len;
    w->buf = buf;
    w->flags = flags & BDRV_REQ_MAY_UNMAP;
    w->cb = cb;
    w->opaque = opaque;
    if (buf && bn->detect_zeroes != BDRV_DETECT_ZEROES_OFF
        && buffer_is_zero(buf, len)) {
        w->buf = NULL;
        w->flags = bn->detect_zeroes == BDRV_DETECT_ZEROES_UNMAP
            && bn->discard_unmap ? BDRV_REQ_MAY_UNMAP : 0;
    }
    aligned_write_cb(w, 0);
}

/* ---- read-modify-write ---------------------------------------------------- */

typedef struct {
    BlockNode *bn;
    uint64_t off;               /* the caller's request */
    uint64_t len;
    const void *buf;            /* NULL: a zero write */
    int flags;
    BdrvPadding pad;
    uint64_t aoff;              /* the widened extent, read into @bounce */
    uint64_t alen;
    uint8_t *bounce;
    uint64_t zoff;              /* zero writes: the next part's offset */
    int step;
    BdrvCb *cb;
    void *opaque;
} Rmw;

static void rmw_finish(Rmw *m, int ret)
{
    ioq_buf_free(m->bounce);
    m->cb(m->opaque, ret);
    g_free(m);
}

/*
 * A zero write, once its partial blocks are read back and the rest of
 * @bounce zeroed: the head block (or all of it, merged) as data, the
 * aligned middle as zeroes, the tail block as data.
 */
static void rmw_zero_parts_cb(void *opaque, int ret)
{
    Rmw *m = opaque;
    uint32_t align = m->bn->bl.request_alignment;
    uint64_t end = m->off + m->len;
    uint64_t n;

    if (ret < 0) {
        rmw_finish(m, ret);
        return;
    }
    switch (m->step++) {
    case 0:
        m->zoff = m->off;
        if (m->pad.head || m->pad.merge) {
            n = m->pad.merge ? m->pad.buf_len : align;
            m->zoff = m->aoff + n;
            if (m->pad.merge) {
                m->step = 3;
            }
            aligned_write(m->bn, m->aoff, n, m->bounce, m->flags,
                          rmw_zero_parts_cb, m);
            return;
        }
        /* fall through */
    case 1:
        m->step = 2;
        if (end - m->zoff >= align) {
            n = round_down(end - m->zoff, align);
            m->zoff += n;
            aligned_write(m->bn, m->zoff - n, n, NULL, m->flags,
                          rmw_zero_parts_cb, m);
            return;
        }
        /* fall through */
    case 2:
        m->step = 3;
        if (m->zoff < end) {
            aligned_write(m->bn, m->aoff + m->alen - align, align,
                          m->bounce + m->alen - align, m->flags,
                          rmw_zero_parts_cb, m);
            return;
        }
        /* fall through */
    default:
        rmw_finish(m, 0);
        return;
    }
}

static void rmw_written_cb(void *opaque, int ret)
{
    rmw_finish(opaque, ret);
}

/* The partial blocks are in @bounce: put the request's bytes in. */
static void rmw_modify(Rmw *m)
{
    if (m->buf) {
        memcpy(m->bounce + m->pad.head, m->buf, m->len);
        aligned_write(m->bn, m->aoff, m->alen, m->bounce, m->flags,
                      rmw_written_cb, m);
        return;
    }
    memset(m->bounce + m->pad.head, 0, m->len);
    m->step = 0;
    rmw_zero_parts_cb(m, 0);
}

enum {
    RMW_HEAD_EVENT,
    RMW_MERGED_TAIL_EVENT,
    RMW_FIRST_READ,
    RMW_AFTER_HEAD_EVENT,
    RMW_MERGED_AFTER_TAIL_EVENT,
    RMW_TAIL_EVENT,
    RMW_TAIL_READ,
    RMW_AFTER_TAIL_EVENT,
    RMW_MODIFY,
};

/* Read the partial blocks back, with QEMU's events around the reads. */
static void rmw_read_cb(void *opaque, int ret)
{
    Rmw *m = opaque;
    BlockNode *bn = m->bn;
    uint32_t align = bn->bl.request_alignment;
    bool first = m->pad.head || m->pad.merge;
    bool merged_tail = m->pad.merge && m->pad.tail;

    if (ret < 0) {
        rmw_finish(m, ret);
        return;
    }
    for (;;) {
        switch (m->step++) {
        case RMW_HEAD_EVENT:
            if (m->pad.head && event_holds(bn, BLKDBG_PWRITEV_RMW_HEAD,
                                           rmw_read_cb, m)) {
                return;
            }
            break;
        case RMW_MERGED_TAIL_EVENT:
            if (merged_tail && event_holds(bn, BLKDBG_PWRITEV_RMW_TAIL,
                                           rmw_read_cb, m)) {
                return;
            }
            break;
        case RMW_FIRST_READ:
            if (first) {
                aligned_read(bn, m->aoff, m->pad.merge ? m->pad.buf_len
                                                       : align,
                             m->bounce, rmw_read_cb, m);
                return;
            }
            m->step = RMW_TAIL_EVENT;
            break;
        case RMW_AFTER_HEAD_EVENT:
            if (m->pad.head && event_holds(bn, BLKDBG_PWRITEV_RMW_AFTER_HEAD,
                                           rmw_read_cb, m)) {
                return;
            }
            break;
        case RMW_MERGED_AFTER_TAIL_EVENT:
            if (m->pad.merge) {
                m->step = RMW_MODIFY;
            }
            if (merged_tail
                && event_holds(bn, BLKDBG_PWRITEV_RMW_AFTER_TAIL,
                               rmw_read_cb, m)) {
                return;
            }
            break;
        case RMW_TAIL_EVENT:
            if (!m->pad.tail) {
                m->step = RMW_MODIFY;
                break;
            }
            if (event_holds(bn, BLKDBG_PWRITEV_RMW_TAIL, rmw_read_cb, m)) {
                return;
            }
            break;
        case RMW_TAIL_READ:
            aligned_read(bn, m->aoff + m->alen - align, align,
                         m->bounce + m->alen - align, rmw_read_cb, m);
            return;
        case RMW_AFTER_TAIL_EVENT:
            if (event_holds(bn, BLKDBG_PWRITEV_RMW_AFTER_TAIL, rmw_read_cb,
                            m)) {
                return;
            }
            break;
        default:
            rmw_modify(m);
            return;
        }
    }
}

static void rmw_start(BlockNode *bn, uint64_t off, uint64_t len,
                      const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    Rmw *m = g_new0(Rmw, 1);

    m->bn = bn;
    m->off = off;
    m->len = len;
    m->buf = buf;
    m->flags = flags;
    m->cb = cb;
    m->opaque = opaque;
    bdrv_padding(off, len, bn->bl.request_alignment, &m->pad);
    bdrv_rmw_extent(bn, off, len, &m->aoff, &m->alen);
    m->bounce = ioq_buf_alloc(m->alen);
    rmw_read_cb(m, 0);
}

void bdrv_limited_write(BlockNode *bn, uint64_t off, uint64_t len,
                        const void *buf, int flags, BdrvCb *cb,
                        void *opaque)
{
    if (bdrv_needs_rmw(bn, off, len)) {
        rmw_start(bn, off, len, buf, flags, cb, opaque);
        return;
    }
    aligned_write(bn, off, len, buf, flags, cb, opaque);
}

void bdrv_limited_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                               int flags, BdrvCb *cb, void *opaque)
{
    if (bdrv_needs_rmw(bn, off, len)) {
        rmw_start(bn, off, len, NULL, flags, cb, opaque);
        return;
    }
    aligned_write(bn, off, len, NULL, flags, cb, opaque);
}

/* ---- discards --------------------------------------------------------------- */

typedef struct {
    BlockNode *bn;
    uint64_t off;
    uint64_t end;
    BdrvCb *cb;
    void *opaque;
} Discard;

static void discard_cb(void *opaque, int ret)
{
    Discard *d = opaque;
    uint64_t n;

    if ((ret < 0 && ret != -ENOTSUP) || d->off >= d->end) {
        d->cb(d->opaque, ret == -ENOTSUP ? 0 : ret);
        g_free(d);
        return;
    }
    n = bdrv_discard_piece(&d->bn->bl, d->off, d->end - d->off);
    d->off += n;
    d->bn->drv->discard(d->bn, d->off - n, n, discard_cb, d);
}

void bdrv_limited_discard(BlockNode *bn, uint64_t off, uint64_t len,
                          BdrvCb *cb, void *opaque)
{
    Discard *d;

    if (bn->bl.request_alignment == 1 && !bn->bl.pdiscard_alignment
        && !bn->bl.max_pdiscard) {
        bn->drv->discard(bn, off, len, cb, opaque);
        return;
    }
    d = g_new0(Discard, 1);
    d->bn = bn;
    d->off = off;
    d->end = off + len;
    d->cb = cb;
    d->opaque = opaque;
    discard_cb(d, 0);
}
