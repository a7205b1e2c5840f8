/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2: open, close, the control path, and the data path.
 *
 * A request walks its guest range L2 table by L2 table.  Within a table
 * it takes runs of clusters of one kind (data, zero, unallocated,
 * compressed) and issues one sub-request per run: contiguous data
 * clusters become one read or write on the file.
 *
 * Writes to clusters that are not plain allocated data (unallocated,
 * zero, compressed, shared) allocate new clusters.  Two requests must not
 * allocate the same guest cluster at once, so an allocating write first
 * claims its cluster-aligned guest range (Qcow2Alloc); a request meeting
 * a claimed range waits and then looks again (it will find the data in
 * place).  The allocating write fills the partial clusters at its edges
 * from the old contents (copy on write, read through this driver's own
 * read path), writes the data, and only then points the L2 entries at
 * the new clusters: data reaches the file before any metadata that
 * refers to it.  A zero cluster that kept its allocation is written in
 * place (zeroes around the data), as QEMU does.
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
 * Metadata writeback is qcow2-flush.c, the header qcow2-header.c.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "block/dirty-bitmap.h"
#include "block/ioq.h"
#include "block/qcow2.h"
#include "qapi/qjson.h"
#include "util/log.h"

typedef enum {
    QREQ_READ,
    QREQ_WRITE,
    QREQ_ZERO,
    QREQ_DISCARD,
} QReqType;

typedef struct Qcow2Req {
    BlockNode *bn;
    QReqType type;
    uint64_t off;
    uint64_t end;
    uint64_t pos;           /* next guest byte to dispatch */
    uint8_t *buf;
    int flags;
    int pending;            /* sub-requests in flight, +1 while stepping */
    int ret;
    int rest_zero;          /* zero write in one cluster: 1 when the rest
                             * of the cluster reads as zeroes, -1 not */
    Qcow2Table *l2;         /* pinned L2 table in use */
    BdrvCb *cb;
    void *opaque;
} Qcow2Req;

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

/* ---- allocation claims ------------------------------------------------- */

typedef struct {
    Qcow2Req *r;
} AllocWaiter;

static Qcow2Alloc *claimed(Qcow2State *s, uint64_t start, uint64_t end)
{
    for (guint i = 0; i < s->allocs->len; i++) {
        Qcow2Alloc *a = g_ptr_array_index(s->allocs, i);

        if (a->start < end && start < a->end) {
            return a;
        }
    }
    return NULL;
}

static Qcow2Alloc *claim(Qcow2State *s, uint64_t start, uint64_t end)
{
    Qcow2Alloc *a = g_new0(Qcow2Alloc, 1);

    a->start = start;
    a->end = end;
    a->waiters = g_queue_new();
    g_ptr_array_add(s->allocs, a);
    return a;
}

static void req_step(Qcow2Req *r);
static Qcow2Req *req_new(BlockNode *bn, QReqType type, uint64_t off,
                         uint64_t len, const void *buf, int flags,
                         BdrvCb *cb, void *opaque);

static void release_claim(Qcow2State *s, Qcow2Alloc *a)
{
    Qcow2Req *w;

    g_ptr_array_remove(s->allocs, a);
    while ((w = g_queue_pop_head(a->waiters))) {
        w->pending--;           /* the wait held one */
        req_step(w);
    }
    g_queue_free(a->waiters);
    g_free(a);
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
    g_free(r);
}

static void sub_done(Qcow2Req *r, int ret)
{
    if (ret < 0 && r->ret == 0) {
        r->ret = ret;
    }
    if (--r->pending == 0) {
        req_finish(r);
    }
}

static void sub_done_cb(void *opaque, int ret)
{
    sub_done(opaque, ret);
}

/*
 * A data read or write on the file, after reporting @ev; a blkdebug
 * breakpoint on the event holds it there.
 */
typedef enum {
    DATA_READ,
    DATA_WRITE,
    DATA_ZERO,              /* zeroes written in place (no unmap) */
} DataOp;

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
    g_free(d);
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

static void data_io(BlockNode *bn, BlkdebugEvent ev, DataOp op,
                    uint64_t host, uint64_t len, const uint8_t *buf,
                    int flags, BdrvCb *done, void *done_opaque)
{
    DataIo *d = g_new0(DataIo, 1);

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
    sub_done(d->r, ret);
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
        bdrv_read(b, pos, from_b, dst, sub_done_cb, r);
    }
    if (from_b < len) {
        memset(dst + from_b, 0, len - from_b);
    }
}

/* ---- writes ----------------------------------------------------------------- */

typedef struct {
    Qcow2Req *r;
    Qcow2Alloc *claim;
    uint64_t host;          /* new clusters */
    uint64_t gstart;        /* guest range of the clusters */
    uint64_t gend;
    uint64_t data_off;      /* the request's part */
    uint64_t data_len;
    uint8_t *bounce;        /* gstart..gend when COW was needed */
    int cow_pending;
    int ret;
    bool zero;              /* the request writes zeroes */
    bool in_place;          /* into the preallocated clusters of a zero
                             * run (QEMU keeps them), nothing allocated */
    uint64_t gen;           /* allocation generation of the new clusters */
} AllocWrite;

static void qcow2_do_read(BlockNode *bn, uint64_t off, uint64_t len,
                          uint8_t *buf, BdrvCb *cb, void *opaque);

static void alloc_l2_updated(AllocWrite *w, Qcow2Table *t)
{
    Qcow2State *s = state(w->r->bn);
    uint64_t n = (w->gend - w->gstart) >> s->cluster_bits;
    uint32_t l2i = (w->gstart >> s->cluster_bits) & (s->l2_size - 1);

    bdrv_debug_event(file_of(w->r->bn), BLKDBG_L2_UPDATE, NULL, NULL);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t old = qcow2_l2_get(t, l2i + k);

        /* QEMU passes no discard down for clusters replaced so */
        if (!w->in_place) {
            qcow2_release_entry(w->r->bn, old, QCOW2_DISCARD_NEVER);
            qcow2_table_hold(t, l2i + k, old, w->gen);
        }
        qcow2_l2_set(t, l2i + k, (w->host + (k << s->cluster_bits))
               | QCOW2_OFLAG_COPIED);
    }
    qcow2_table_dirty(t);
}

static void alloc_finish(AllocWrite *w, int ret)
{
    Qcow2Req *r = w->r;
    Qcow2State *s = state(r->bn);

    if (w->bounce) {
        ioq_buf_free(w->bounce);
    }
    release_claim(s, w->claim);
    g_free(w);
    sub_done(r, ret);
}

static void alloc_l2_loaded_cb(void *opaque, int ret, Qcow2Table *t)
{
    AllocWrite *w = opaque;
    Qcow2State *s = state(w->r->bn);

    if (ret == 0) {
        alloc_l2_updated(w, t);
        qcow2_table_unpin(&s->l2_cache, t);
    }
    alloc_finish(w, ret);
}

/*
 * The data never reached the new clusters: nothing points to them yet,
 * so they are freed again (as QEMU does) rather than left leaked.
 */
static void alloc_abort(AllocWrite *w, int ret)
{
    Qcow2State *s = state(w->r->bn);

    if (!w->in_place) {
        qcow2_free_clusters(w->r->bn, w->host,
                            (w->gend - w->gstart) >> s->cluster_bits,
                            QCOW2_DISCARD_NEVER);
    }
    alloc_finish(w, ret);
}

static void alloc_data_written_cb(void *opaque, int ret)
{
    AllocWrite *w = opaque;
    Qcow2State *s = state(w->r->bn);
    uint64_t l1i = w->gstart >> (s->l2_bits + s->cluster_bits);

    if (ret < 0) {
        alloc_abort(w, ret);
        return;
    }
    qcow2_table_get(w->r->bn, &s->l2_cache, s->l1[l1i] & L1E_OFFSET_MASK,
                    alloc_l2_loaded_cb, w);
}

static void alloc_write_data(AllocWrite *w)
{
    Qcow2Req *r = w->r;
    const uint8_t *src;
    uint64_t len;

    if (w->ret < 0) {
        alloc_abort(w, w->ret);
        return;
    }
    if (w->bounce) {
        if (w->zero) {
            memset(w->bounce + (w->data_off - w->gstart), 0, w->data_len);
        } else {
            memcpy(w->bounce + (w->data_off - w->gstart),
                   r->buf + (w->data_off - r->off), w->data_len);
        }
        src = w->bounce;
        len = w->gend - w->gstart;
    } else {
        src = r->buf + (w->data_off - r->off);
        len = w->data_len;
    }
    data_io(r->bn, BLKDBG_WRITE_AIO, DATA_WRITE, w->host, len, src,
            r->flags & BDRV_REQ_FUA, alloc_data_written_cb, w);
}

static void cow_read_cb(void *opaque, int ret)
{
    AllocWrite *w = opaque;

    if (ret < 0 && w->ret == 0) {
        w->ret = ret;
    }
    if (--w->cow_pending == 0) {
        bdrv_debug_event(file_of(w->r->bn), BLKDBG_COW_WRITE, NULL, NULL);
        alloc_write_data(w);
    }
}

/*
 * Write [@pos, +@len) (edges filled from the old contents) into new
 * clusters, or into @host when the run's clusters are preallocated.
 */
static void start_alloc_write(Qcow2Req *r, uint64_t pos, uint64_t len,
                              uint64_t host)
{
    Qcow2State *s = state(r->bn);
    AllocWrite *w = g_new0(AllocWrite, 1);
    uint64_t head, tail;
    int ret;

    w->r = r;
    w->gstart = pos & ~((uint64_t)s->cluster_size - 1);
    w->gend = align_up(pos + len, s->cluster_size);
    w->data_off = pos;
    w->data_len = len;
    w->zero = r->type == QREQ_ZERO;
    w->claim = claim(s, w->gstart, w->gend);
    w->in_place = host != 0;
    ret = 0;
    w->host = host ? host
                   : qcow2_alloc_clusters(r->bn, (w->gend - w->gstart)
                                          >> s->cluster_bits, &ret);
    w->gen = s->alloc_gen;
    r->pending++;
    if (!w->host) {
        alloc_finish(w, ret ? ret : -EIO);
        return;
    }
    head = pos - w->gstart;
    tail = w->gend - (pos + len);
    if (!head && !tail && !w->zero) {
        alloc_write_data(w);
        return;
    }
    w->bounce = ioq_buf_alloc(w->gend - w->gstart);
    w->cow_pending = 1;
    bdrv_debug_event(file_of(r->bn), BLKDBG_COW_READ, NULL, NULL);
    if (head) {
        w->cow_pending++;
        qcow2_do_read(r->bn, w->gstart, head, w->bounce, cow_read_cb, w);
    }
    if (tail) {
        w->cow_pending++;
        qcow2_do_read(r->bn, pos + len, tail,
                      w->bounce + (pos + len - w->gstart), cow_read_cb, w);
    }
    cow_read_cb(w, 0);
}

/* ---- zero and discard of whole clusters ------------------------------------ */

/* QEMU's discard_in_l2_slice() / zero_in_l2_slice() on @n clusters. */
static void set_clusters(Qcow2Req *r, Qcow2Table *t, uint32_t l2i,
                         uint64_t n, bool discard)
{
    Qcow2State *s = state(r->bn);
    bool backing = bdrv_backing(r->bn) != NULL;
    bool changed = false;

    for (uint64_t k = 0; k < n; k++) {
        uint64_t old = qcow2_l2_get(t, l2i + k);
        bool release;
        uint64_t e = qcow2_zero_entry(s->version, backing, discard,
                                      r->flags & BDRV_REQ_MAY_UNMAP, old,
                                      &release);

        if (e == old) {
            continue;
        }
        if (release) {
            qcow2_release_entry(r->bn, old, QCOW2_DISCARD_REQUEST);
        }
        qcow2_l2_set(t, l2i + k, e);
        changed = true;
    }
    if (changed) {
        qcow2_table_dirty(t);
    }
}

/* ---- the stepping engine --------------------------------------------------- */

/*
 * The L2 table for guest offset @pos in r->l2 (pinned), or false when
 * the caller must return (a load was started and will re-step, or the
 * request failed).  With @create, a missing table is allocated.
 */
static bool need_l2(Qcow2Req *r, uint64_t pos, bool create, bool *none);

/*
 * An L2 table offset from the L1 table must be cluster aligned and lie
 * before @next_free: new tables are allocated there, and a second cache
 * entry for the same offset would break the cache (corrupt image: EIO).
 */
static bool l2_offset_valid(const Qcow2State *s, uint64_t l2off)
{
    return !(l2off & (s->cluster_size - 1)) && l2off < s->next_free;
}

static void l2_loaded_cb(void *opaque, int ret, Qcow2Table *t)
{
    Qcow2Req *r = opaque;

    if (ret < 0) {
        if (r->ret == 0) {
            r->ret = ret;
        }
    } else {
        g_assert(!r->l2);
        r->l2 = t;
    }
    r->pending--;
    req_step(r);
}

static bool need_l2(Qcow2Req *r, uint64_t pos, bool create, bool *none)
{
    Qcow2State *s = state(r->bn);
    uint64_t l1i = pos >> (s->l2_bits + s->cluster_bits);
    uint64_t l2off;
    Qcow2Table *t;
    int ret;

    *none = false;
    if (l1i >= s->l1_size) {
        if (create) {
            r->ret = -EIO;      /* beyond the L1 table: corrupt image */
            return false;
        }
        *none = true;
        return true;
    }
    l2off = s->l1[l1i] & L1E_OFFSET_MASK;
    if (r->l2 && r->l2->offset == l2off && l2off) {
        return true;
    }
    if (r->l2) {
        qcow2_table_unpin(&s->l2_cache, r->l2);
        r->l2 = NULL;
    }
    if (!l2off) {
        if (!create) {
            *none = true;
            return true;
        }
        r->l2 = qcow2_l2_alloc(r->bn, l1i, &ret);
        if (!r->l2) {
            r->ret = ret;
            return false;
        }
        return true;
    }
    if (!l2_offset_valid(s, l2off)) {
        r->ret = -EIO;
        return false;
    }
    t = qcow2_table_peek(&s->l2_cache, l2off);
    if (t) {
        r->l2 = t;
        return true;
    }
    r->pending++;
    qcow2_table_get(r->bn, &s->l2_cache, l2off, l2_loaded_cb, r);
    return false;
}

/* How many clusters from @l2i continue the run that @first starts. */
static uint64_t run_length(const Qcow2State *s, const Qcow2Table *t,
                           uint32_t l2i, uint64_t max, uint64_t first)
{
    Qcow2ClusterKind kind = qcow2_classify(s, first);
    uint64_t n = 1;

    if (kind == QCOW2_KIND_COMPRESSED) {
        return 1;
    }
    while (n < max) {
        uint64_t e = qcow2_l2_get(t, l2i + n);

        if (qcow2_classify(s, e) != kind) {
            break;
        }
        if ((kind == QCOW2_KIND_DATA || kind == QCOW2_KIND_SHARED)
            && (e & L2E_OFFSET_MASK)
               != (first & L2E_OFFSET_MASK) + (n << s->cluster_bits)) {
            break;
        }
        n++;
    }
    return n;
}

/*
 * How a write treats a cluster: in place when the entry owns an
 * allocated cluster (plain data, or a zero cluster that kept its
 * allocation), else into new clusters.  A run mixes kinds only among
 * new allocations, as QEMU's count_single_write_clusters().
 */
typedef enum {
    WRITE_IN_PLACE,
    WRITE_ZERO_ALLOC,       /* in place, with zeroes around the data */
    WRITE_NEW,
} WriteMode;

static WriteMode write_mode(const Qcow2State *s, uint64_t e)
{
    switch (qcow2_classify(s, e)) {
    case QCOW2_KIND_DATA:
        return WRITE_IN_PLACE;
    case QCOW2_KIND_ZERO_ALLOC:
        return (e & QCOW2_OFLAG_COPIED) ? WRITE_ZERO_ALLOC : WRITE_NEW;
    default:
        return WRITE_NEW;
    }
}

static uint64_t write_run(const Qcow2State *s, const Qcow2Table *t,
                          uint32_t l2i, uint64_t max, uint64_t first)
{
    WriteMode m = write_mode(s, first);
    uint64_t n = 1;

    while (n < max) {
        uint64_t e = qcow2_l2_get(t, l2i + n);

        if (write_mode(s, e) != m
            || (m != WRITE_NEW && (e & L2E_OFFSET_MASK)
                != (first & L2E_OFFSET_MASK) + (n << s->cluster_bits))) {
            break;
        }
        n++;
    }
    return n;
}

/*
 * Requests wait while a range they touch is being allocated; true when
 * @r now waits (it steps again when the allocation is done).
 */
static bool wait_for_claim(Qcow2Req *r, uint64_t start, uint64_t end)
{
    Qcow2State *s = state(r->bn);
    Qcow2Alloc *a = claimed(s, start, end);

    if (!a) {
        return false;
    }
    r->pending++;               /* the wait holds the request open */
    g_queue_push_tail(a->waiters, r);
    if (r->l2) {
        qcow2_table_unpin(&s->l2_cache, r->l2);
        r->l2 = NULL;
    }
    return true;
}

/* Write [@pos, +@len) of the run entry @e starts, as data (or zeroes). */
static void write_as_data(Qcow2Req *r, uint64_t pos, uint64_t len,
                          uint64_t e)
{
    Qcow2State *s = state(r->bn);
    uint64_t host = (e & L2E_OFFSET_MASK) + (pos & (s->cluster_size - 1));

    switch (write_mode(s, e)) {
    case WRITE_IN_PLACE:
        r->pending++;
        if (r->type == QREQ_WRITE) {
            data_io(r->bn, BLKDBG_WRITE_AIO, DATA_WRITE, host, len,
                    r->buf + (pos - r->off), r->flags & BDRV_REQ_FUA,
                    sub_done_cb, r);
        } else {
            data_io(r->bn, BLKDBG_WRITE_AIO, DATA_ZERO, host, len, NULL,
                    r->flags & BDRV_REQ_FUA, sub_done_cb, r);
        }
        break;
    case WRITE_ZERO_ALLOC:
        start_alloc_write(r, pos, len, e & L2E_OFFSET_MASK);
        break;
    case WRITE_NEW:
        start_alloc_write(r, pos, len, 0);
        break;
    }
}

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
    sub_done(opaque, ret);
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
        req_step(z);
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

    if (!need_l2(r, pos, true, &none)
        || wait_for_claim(r, cstart, cstart + s->cluster_size)) {
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
        set_clusters(r, r->l2, l2i, 1, s->version < 3);
    } else {
        write_as_data(r, pos, len, e);
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
    if (!need_l2(r, pos, true, &none)
        || wait_for_claim(r, pos, align_up(wend, s->cluster_size))) {
        return false;
    }
    l2i = (pos >> s->cluster_bits) & (s->l2_size - 1);
    if (v2_backing) {
        /* no zero flag, and discarding would show the backing file */
        uint64_t e = qcow2_l2_get(r->l2, l2i);
        uint64_t n = write_run(s, r->l2, l2i, whole, e);

        wend = MIN(wend, pos + (n << s->cluster_bits));
        write_as_data(r, pos, wend - pos, e);
    } else {
        set_clusters(r, r->l2, l2i, whole,
                     r->type == QREQ_DISCARD || s->version < 3);
    }
    r->pos = wend;
    return true;
}

static void req_step(Qcow2Req *r)
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
        if (!need_l2(r, pos, r->type == QREQ_WRITE, &none)) {
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
        n = r->type == QREQ_WRITE ? write_run(s, r->l2, l2i, nclusters, e)
                                  : run_length(s, r->l2, l2i, nclusters, e);
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
                data_io(r->bn, BLKDBG_READ_AIO, DATA_READ, host, len, dst, 0,
                        sub_done_cb, r);
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
        if (wait_for_claim(r, pos & ~cmask, align_up(pos + len,
                                                     s->cluster_size))) {
            break;
        }
        write_as_data(r, pos, len, e);
        r->pos += len;
    }
    if (r->pos >= r->end && r->l2) {
        qcow2_table_unpin(&s->l2_cache, r->l2);
        r->l2 = NULL;
    }
    sub_done(r, 0);
}

static Qcow2Req *req_new(BlockNode *bn, QReqType type, uint64_t off,
                         uint64_t len, const void *buf, int flags,
                         BdrvCb *cb, void *opaque)
{
    Qcow2Req *r = g_new0(Qcow2Req, 1);

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

static void qcow2_do_read(BlockNode *bn, uint64_t off, uint64_t len,
                          uint8_t *buf, BdrvCb *cb, void *opaque)
{
    req_step(req_new(bn, QREQ_READ, off, len, buf, 0, cb, opaque));
}

static void qcow2_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                       BdrvCb *cb, void *opaque)
{
    if (off + len > bn->total_size) {
        uint64_t valid = off < bn->total_size ? bn->total_size - off : 0;

        memset((uint8_t *)buf + valid, 0, len - valid);
        len = valid;
    }
    qcow2_do_read(bn, off, len, buf, cb, opaque);
}

static void qcow2_write(BlockNode *bn, uint64_t off, uint64_t len,
                        const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    if (off + len > bn->total_size) {
        ioq_defer_int(cb, opaque, -EIO);
        return;
    }
    req_step(req_new(bn, QREQ_WRITE, off, len, buf, flags, cb, opaque));
}

static void qcow2_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                               int flags, BdrvCb *cb, void *opaque)
{
    if (off + len > bn->total_size) {
        ioq_defer_int(cb, opaque, -EIO);
        return;
    }
    req_step(req_new(bn, QREQ_ZERO, off, len, NULL, flags, cb, opaque));
}

static void qcow2_discard(BlockNode *bn, uint64_t off, uint64_t len,
                          BdrvCb *cb, void *opaque)
{
    req_step(req_new(bn, QREQ_DISCARD, off, MIN(len, bn->total_size - off),
                     NULL, 0, cb, opaque));
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

static void qcow2_block_status(BlockNode *bn, uint64_t off, uint64_t len,
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
    if (!l2_offset_valid(s, l2off)) {
        ioq_defer(status_error_cb, q, -EIO);
        return;
    }
    qcow2_table_get(bn, &s->l2_cache, l2off, status_loaded_cb, q);
}

static void qcow2_flush(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    qcow2_flush_metadata(bn, true, cb, opaque);
}

/* ---- open and close --------------------------------------------------------- */

static bool check_writable(BlockNode *bn, Error **errp)
{
    Qcow2State *s = state(bn);

    if (s->refcount_order != 4) {
        error_setg(errp, "qmpd writes only 16-bit refcounts; this image "
                   "has %u-bit refcounts (open it read-only)",
                   s->refcount_bits);
        return false;
    }
    if (s->nb_snapshots) {
        error_setg(errp, "qmpd does not write to qcow2 images with internal "
                   "snapshots (open it read-only)");
        return false;
    }
    if (s->incompat & QCOW2_INCOMPAT_CORRUPT) {
        error_setg(errp, "qcow2: Image is corrupt; cannot be opened "
                   "read/write");
        return false;
    }
    if (s->incompat & QCOW2_INCOMPAT_DIRTY) {
        error_setg(errp, "qcow2: image is dirty (lazy refcounts); repair it "
                   "with 'qemu-img check -r all' first");
        return false;
    }
    /*
     * Allocation appends at @next_free: refcount metadata beyond it would
     * be allocated over (and a second cached block at one offset breaks
     * the cache).
     */
    if (s->reftable_offset
        + (uint64_t)s->reftable_clusters * s->cluster_size > s->next_free) {
        error_setg(errp, "qcow2: Refcount table lies beyond the end of the "
                   "file; cannot be opened read/write");
        return false;
    }
    for (uint32_t i = 0; i < s->reftable_size; i++) {
        if (s->reftable[i] && (s->reftable[i] >= s->next_free
                               || s->reftable[i] & (s->cluster_size - 1))) {
            error_setg(errp, "qcow2: Invalid refcount block offset 0x%"
                       G_GINT64_MODIFIER "x; cannot be opened read/write",
                       (guint64)s->reftable[i]);
            return false;
        }
    }
    return true;
}

static bool qcow2_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    Qcow2State *s = state(bn);
    BlockNode *f = file_of(bn);
    uint64_t flen = bdrv_length(f);
    uint64_t hbytes = MIN(MAX(flen, 512), 2u << 20);
    uint8_t *hdr = ioq_buf_alloc0(align_up(hbytes, 4096));
    uint64_t backing_off, l1_bytes, needed, size;
    uint32_t backing_len;
    uint8_t *l1buf;
    int r;
    bool ok = false;

    s->kept_exts = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    s->allocs = g_ptr_array_new();
    qcow2_discard_init(bn);
    if (qjson_has(opts, "data-file")) {
        error_setg(errp, "qmpd does not support qcow2 external data files");
        goto out;
    }
    if (qjson_has(opts, "encrypt")) {
        error_setg(errp, "qmpd does not support encrypted qcow2 images");
        goto out;
    }
    /* past the end reads as zeroes, as QEMU reads a short header */
    r = flen < 4 ? 0 : bdrv_pread_sync(f, 0, MIN(flen, hbytes), hdr);
    if (r < 0) {
        error_setg_errno(errp, -r, "Could not read qcow2 header");
        goto out;
    }
    if (flen < 4 || be32_read(hdr) != QCOW2_MAGIC) {
        error_setg(errp, "Image is not in qcow2 format");
        goto out;
    }
    s->version = be32_read(hdr + 4);
    if (s->version < 2 || s->version > 3) {
        error_setg(errp, "Unsupported qcow2 version %u", s->version);
        goto out;
    }
    s->cluster_bits = be32_read(hdr + 20);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS
        || s->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        error_setg(errp, "Unsupported cluster size: 2^%u", s->cluster_bits);
        goto out;
    }
    s->cluster_size = 1u << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1u << s->l2_bits;
    size = be64_read(hdr + 24);
    if (be32_read(hdr + 32) != 0) {
        error_setg(errp, "qmpd does not support encrypted qcow2 images");
        goto out;
    }
    s->l1_size = be32_read(hdr + 36);
    s->l1_offset = be64_read(hdr + 40);
    s->reftable_offset = be64_read(hdr + 48);
    s->reftable_clusters = be32_read(hdr + 56);
    s->nb_snapshots = be32_read(hdr + 60);
    s->snapshots_offset = be64_read(hdr + 64);
    backing_off = be64_read(hdr + 8);
    backing_len = be32_read(hdr + 16);
    if (s->version >= 3) {
        s->incompat = be64_read(hdr + 72);
        s->compat = be64_read(hdr + 80);
        s->autoclear = be64_read(hdr + 88);
        s->refcount_order = be32_read(hdr + 96);
        s->header_length = be32_read(hdr + 100);
        if (s->header_length < 104 || s->header_length > s->cluster_size) {
            error_setg(errp, "qcow2 header too short");
            goto out;
        }
        if (s->header_length > 104) {
            s->compression_type = hdr[104];
        }
    } else {
        s->refcount_order = 4;
        s->header_length = 72;
    }
    if (s->incompat & QCOW2_INCOMPAT_DATA_FILE) {
        error_setg(errp, "qmpd does not support qcow2 images with an "
                   "external data file");
        goto out;
    }
    if (s->incompat & QCOW2_INCOMPAT_EXTL2) {
        error_setg(errp, "qmpd does not support qcow2 images with extended "
                   "L2 entries (subclusters)");
        goto out;
    }
    if ((s->incompat & QCOW2_INCOMPAT_COMPRESSION) || s->compression_type) {
        error_setg(errp, "qmpd supports only zlib compression in qcow2 "
                   "images");
        goto out;
    }
    if (s->incompat & ~0x1full) {
        error_setg(errp, "Unsupported qcow2 feature(s): 0x%" G_GINT64_MODIFIER
                   "x", (guint64)(s->incompat & ~0x1full));
        goto out;
    }
    if (s->refcount_order > 6) {
        error_setg(errp, "Reference count entry width too large; may not "
                   "exceed 64 bits");
        goto out;
    }
    s->refcount_bits = 1u << s->refcount_order;
    s->refblock_entries = (uint64_t)s->cluster_size * 8 / s->refcount_bits;

    needed = (size + ((uint64_t)s->cluster_size << s->l2_bits) - 1)
        >> (s->cluster_bits + s->l2_bits);
    l1_bytes = (uint64_t)s->l1_size * 8;
    if (l1_bytes > QCOW2_MAX_L1_BYTES) {
        error_setg(errp, "Active L1 table too large");
        goto out;
    }
    if (s->l1_size < needed) {
        error_setg(errp, "L1 table is too small");
        goto out;
    }
    if (s->l1_size && (s->l1_offset % s->cluster_size
                       || s->l1_offset + l1_bytes > flen)) {
        error_setg(errp, "Invalid L1 table offset");
        goto out;
    }
    bn->total_size = size;

    /*
     * The area ends at the backing file name or the first cluster's end,
     * as in QEMU, but never past what hdr holds: a file shorter than a
     * cluster has only zeros after its end, and an extension running
     * beyond it is refused ("Header extension too large").
     */
    if (!qcow2_parse_extensions(bn, hdr, s->header_length,
                                MIN(backing_off && backing_off < hbytes
                                    ? backing_off : s->cluster_size,
                                    align_up(hbytes, 4096)),
                                errp)) {
        goto out;
    }
    if (backing_off) {
        if (backing_len > 1023 || backing_off + backing_len > s->cluster_size
            || backing_off + backing_len > hbytes) {
            error_setg(errp, "Backing file name too long");
            goto out;
        }
        bn->backing_file = g_strndup((const char *)hdr + backing_off,
                                     backing_len);
    } else {
        g_clear_pointer(&bn->backing_format, g_free);
    }

    s->l1 = g_new0(uint64_t, MAX(s->l1_size, 1));
    if (l1_bytes) {
        l1buf = ioq_buf_alloc(align_up(l1_bytes, 512));
        r = bdrv_pread_sync(f, s->l1_offset, l1_bytes, l1buf);
        if (r < 0) {
            ioq_buf_free(l1buf);
            error_setg_errno(errp, -r, "Could not read L1 table");
            goto out;
        }
        for (uint32_t i = 0; i < s->l1_size; i++) {
            s->l1[i] = be64_read(l1buf + 8 * i);
        }
        ioq_buf_free(l1buf);
    }
    if (!qcow2_refcount_open(bn, errp)
        || !qcow2_options_parse(bn, opts, bn->discard_unmap, &s->opts,
                                errp)) {
        goto out;
    }
    /* tables are allocated as they are loaded: a big limit costs nothing */
    qcow2_cache_init(&s->l2_cache, s->opts.l2_cache_tables, BLKDBG_L2_LOAD);
    qcow2_cache_init(&s->rb_cache, s->opts.rb_cache_tables,
                     BLKDBG_REFBLOCK_LOAD);
    if (!bn->read_only) {
        if (!check_writable(bn, errp)) {
            goto out;
        }
        /*
         * Features we do not maintain must be marked stale, and a stale
         * bitmaps extension goes (as QEMU drops it)
         */
        if ((s->autoclear & ~QCOW2_AUTOCLEAR_BITMAPS)
            || s->drop_bitmaps_ext) {
            s->autoclear &= QCOW2_AUTOCLEAR_BITMAPS;
            r = qcow2_write_header_sync(bn);
            if (r < 0) {
                error_setg_errno(errp, -r, "Could not update qcow2 header");
                goto out;
            }
        }
        r = qcow2_pin_tail_refblock(bn);
        if (r == 0) {
            r = qcow2_freemap_load(bn);
        }
        if (r < 0) {
            error_setg_errno(errp, -r, "Could not read refcount block");
            goto out;
        }
    }
    if (!qcow2_bitmaps_load(bn, errp)) {
        goto out;
    }
    if (!bn->read_only) {
        qcow2_writeback_start(bn);
    }
    qcow2_cache_clean_start(bn);
    ok = true;
out:
    ioq_buf_free(hdr);
    if (!ok) {
        g_free(s->l1);
        g_free(s->reftable);
        g_ptr_array_unref(s->kept_exts);
        g_ptr_array_unref(s->allocs);
        if (s->pending_frees) {
            g_array_free(s->pending_frees, TRUE);
        }
        if (s->l2_cache.map) {
            qcow2_cache_destroy(&s->l2_cache);
            qcow2_cache_destroy(&s->rb_cache);
        }
        qcow2_discard_cleanup(bn);
        memset(s, 0, sizeof(*s));
    }
    return ok;
}

static void qcow2_close(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    Error *err = NULL;
    /* a node that met corruption writes nothing more */
    int r = s->dead ? 0 : qcow2_bitmaps_store(bn, true, &err);

    if (r < 0) {
        /* nobody waits for a close: the operator hears of it */
        qmpd_log(LOG_WARNING, "Lost persistent bitmaps during inactivation "
                 "of node '%s': %s", bn->node_name,
                 err ? error_get_pretty(err) : g_strerror(-r));
        error_free(err);
    }
    if (s->writeback_timer) {
        g_source_remove(s->writeback_timer);
    }
    if (s->cache_clean_timer) {
        g_source_remove(s->cache_clean_timer);
    }
    if (s->tail_rb) {
        qcow2_table_unpin(&s->rb_cache, s->tail_rb);
    }
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    g_free(s->l1);
    g_free(s->reftable);
    g_array_free(s->pending_frees, TRUE);
    g_ptr_array_unref(s->kept_exts);
    g_ptr_array_unref(s->allocs);
    qcow2_discard_cleanup(bn);
}

/* ---- control path ---------------------------------------------------------- */

static bool qcow2_change_backing_file(BlockNode *bn, const char *file,
                                      const char *fmt, Error **errp)
{
    Qcow2State *s = state(bn);
    char *old_file = bn->backing_file;
    char *old_fmt = bn->backing_format;
    size_t len;
    uint8_t *buf;
    int r;

    bn->backing_file = file && *file ? g_strdup(file) : NULL;
    bn->backing_format = bn->backing_file && fmt ? g_strdup(fmt) : NULL;
    buf = qcow2_header_bytes(bn, &len);
    ioq_buf_free(buf);
    r = len > s->cluster_size ? -ENOSPC : qcow2_write_header_sync(bn);
    if (r < 0) {
        g_free(bn->backing_file);
        g_free(bn->backing_format);
        bn->backing_file = old_file;
        bn->backing_format = old_fmt;
        error_setg_errno(errp, -r, "Could not update the backing file name "
                         "in the image header");
        return false;
    }
    g_free(old_file);
    g_free(old_fmt);
    return true;
}

/*
 * Reopen.  The cache sizes are limits on clean tables kept: a new limit
 * holds from the next load on.  Going read-only, the bitmaps are stored
 * first, while the file is still writable; going read-write, the image
 * is checked in prepare, and the bitmaps are marked in use once every
 * node of the reopen (the file too) is writable, as QEMU does after its
 * commit.
 */
typedef struct {
    Qcow2Options opts;
    bool to_rw;
} Qcow2Reopen;

static const char *const qcow2_reopen_opts[] = {
    "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
    "pass-discard-other", "overlap-check", "cache-size",
    "l2-cache-entry-size", "cache-clean-interval", "l2-cache-size",
    "refcount-cache-size", NULL
};

static bool qcow2_reopen_prepare(BdrvReopenState *rs, Error **errp)
{
    BlockNode *bn = rs->bn;
    Qcow2Reopen *q = g_new0(Qcow2Reopen, 1);

    /* as QEMU's qcow2_update_options(): all of them, checked first */
    if (!qcow2_options_parse(bn, rs->opts, rs->discard_unmap, &q->opts,
                             errp)) {
        g_free(q);
        return false;
    }
    q->to_rw = bn->read_only && !rs->read_only;
    if (q->to_rw) {
        int r;

        if (!check_writable(bn, errp)) {
            g_free(q);
            return false;
        }
        r = qcow2_pin_tail_refblock(bn);
        if (r == 0) {
            r = qcow2_freemap_load(bn);
        }
        if (r < 0) {
            error_setg_errno(errp, -r, "Could not read refcount block");
            g_free(q);
            return false;
        }
    } else if (!bn->read_only && rs->read_only) {
        /* QEMU's qcow2_reopen_bitmaps_ro(): stored before read-only */
        Error *err = NULL;
        int r = qcow2_bitmaps_store(bn, false, &err);

        if (r < 0) {
            if (!err) {
                error_setg_errno(&err, -r, "Cannot store the bitmaps of "
                                 "'%s' while its metadata is written back",
                                 bn->node_name);
            }
            error_propagate(errp, err);
            g_free(q);
            return false;
        }
    }
    rs->opaque = q;
    return true;
}

static void qcow2_reopen_commit(BdrvReopenState *rs)
{
    BlockNode *bn = rs->bn;
    Qcow2State *s = state(bn);
    Qcow2Reopen *q = rs->opaque;

    bool new_interval = q->opts.cache_clean_interval
        != s->opts.cache_clean_interval;

    s->opts = q->opts;
    s->l2_cache.max = s->opts.l2_cache_tables;
    s->rb_cache.max = s->opts.rb_cache_tables;
    if (new_interval) {
        if (s->cache_clean_timer) {
            g_source_remove(s->cache_clean_timer);
            s->cache_clean_timer = 0;
        }
        qcow2_cache_clean_start(bn);
    }
    if (bn->read_only) {
        for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
             bm = dbitmap_next(bn, bm)) {
            if (dbitmap_persistent(bm)) {
                dbitmap_set_readonly(bm, true);
            }
        }
        if (s->writeback_timer) {
            g_source_remove(s->writeback_timer);
            s->writeback_timer = 0;
        }
    } else if (!s->writeback_timer) {
        qcow2_writeback_start(bn);
    }
}

static void qcow2_reopen_abort(BdrvReopenState *rs)
{
    g_free(rs->opaque);
    rs->opaque = NULL;
}

static void qcow2_reopen_post(BdrvReopenState *rs)
{
    Qcow2Reopen *q = rs->opaque;
    Error *err = NULL;

    /* as QEMU, a failure here is reported, the reopen stands */
    if (q->to_rw && !qcow2_bitmaps_reopen_rw(rs->bn, &err)) {
        qmpd_log(LOG_ERR, "%s", error_get_pretty(err));
        error_free(err);
    }
    g_free(q);
    rs->opaque = NULL;
}

static json_t *qcow2_format_specific(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    json_t *data;

    if (s->version < 3) {
        data = json_pack("{s:s,s:s,s:i}", "compat", "0.10",
                         "compression-type", "zlib",
                         "refcount-bits", s->refcount_bits);
    } else {
        data = json_pack("{s:s,s:s,s:b,s:i,s:b,s:b}", "compat", "1.1",
                         "compression-type", "zlib", "lazy-refcounts",
                         !!(s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS),
                         "refcount-bits", s->refcount_bits,
                         "corrupt", !!(s->incompat & QCOW2_INCOMPAT_CORRUPT),
                         "extended-l2", 0);
    }
    return json_pack("{s:s,s:o}", "type", "qcow2", "data", data);
}

static uint32_t qcow2_cluster_size(BlockNode *bn)
{
    return state(bn)->cluster_size;
}

static bool qcow2_dirty_flag(BlockNode *bn)
{
    return state(bn)->incompat & QCOW2_INCOMPAT_DIRTY;
}

static bool qcow2_is_inserted(BlockNode *bn)
{
    return !state(bn)->dead;
}

static int64_t qcow2_allocated_size(BlockNode *bn)
{
    BlockNode *f = file_of(bn);

    return f->drv->allocated_size ? f->drv->allocated_size(f) : -1;
}

const BlockDriver bdrv_qcow2 = {
    .name = "qcow2",
    .instance_size = sizeof(Qcow2State),
    .is_format = true,
    .has_backing = true,
    .open = qcow2_open,
    .close = qcow2_close,
    .read = qcow2_read,
    .write = qcow2_write,
    .write_zeroes = qcow2_write_zeroes,
    .discard = qcow2_discard,
    .flush = qcow2_flush,
    .block_status = qcow2_block_status,
    .truncate = qcow2_truncate,
    .change_backing_file = qcow2_change_backing_file,
    .reopen_opts = qcow2_reopen_opts,
    .reopen_resettable = qcow2_reopen_opts,
    .reopen_prepare = qcow2_reopen_prepare,
    .reopen_commit = qcow2_reopen_commit,
    .reopen_abort = qcow2_reopen_abort,
    .reopen_post = qcow2_reopen_post,
    .allocated_size = qcow2_allocated_size,
    .format_specific = qcow2_format_specific,
    .cluster_size = qcow2_cluster_size,
    .dirty_flag = qcow2_dirty_flag,
    .is_inserted = qcow2_is_inserted,
    .bitmap_can_store = qcow2_bitmap_can_store,
    .bitmap_remove = qcow2_bitmap_remove,
};
