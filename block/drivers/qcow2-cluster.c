/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2: from guest clusters to host clusters, for the data path in
 * qcow2-io.c.  It finds a request's L2 table (loading or allocating it),
 * measures runs of clusters a read or write treats alike, and allocates.
 *
 * Two requests must not allocate the same guest cluster at once, so an
 * allocating write first claims its cluster-aligned guest range
 * (Qcow2Alloc); a request meeting a claimed range waits and then steps
 * again (it will find the data in place).  The allocating write fills
 * the partial clusters at its edges from the old contents (copy on
 * write, read through qcow2's own read path), writes the data, and only
 * then points the L2 entries at the new clusters: data reaches the file
 * before any metadata that refers to it, so a crash in between leaks
 * clusters and never exposes stale ones.  A zero cluster that kept its
 * allocation is written in place (zeroes around the data), as QEMU does.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

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

/* ---- allocation claims ------------------------------------------------- */

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

static void release_claim(Qcow2State *s, Qcow2Alloc *a)
{
    Qcow2Req *w;

    g_ptr_array_remove(s->allocs, a);
    while ((w = g_queue_pop_head(a->waiters))) {
        w->pending--;           /* the wait held one */
        qcow2_req_step(w);
    }
    g_queue_free(a->waiters);
    g_free(a);
}

/* ---- allocating writes ------------------------------------------------ */

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
    qcow2_sub_done(r, ret);
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
    qcow2_data_io(r->bn, BLKDBG_WRITE_AIO, DATA_WRITE, w->host, len, src,
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

/* ---- zero and discard of whole clusters -------------------------------- */

/* QEMU's discard_in_l2_slice() / zero_in_l2_slice() on @n clusters. */
void qcow2_set_clusters(Qcow2Req *r, Qcow2Table *t, uint32_t l2i, uint64_t n,
                        bool discard)
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

/* ---- mapping ------------------------------------------------------------ */

/* New tables are allocated at next_free: one beyond it is corrupt. */
bool qcow2_l2_offset_valid(const Qcow2State *s, uint64_t l2off)
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
    qcow2_req_step(r);
}

bool qcow2_need_l2(Qcow2Req *r, uint64_t pos, bool create, bool *none)
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
    if (!qcow2_l2_offset_valid(s, l2off)) {
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
uint64_t qcow2_run_length(const Qcow2State *s, const Qcow2Table *t,
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

uint64_t qcow2_write_run(const Qcow2State *s, const Qcow2Table *t,
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
bool qcow2_wait_for_claim(Qcow2Req *r, uint64_t start, uint64_t end)
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
void qcow2_write_as_data(Qcow2Req *r, uint64_t pos, uint64_t len, uint64_t e)
{
    Qcow2State *s = state(r->bn);
    uint64_t host = (e & L2E_OFFSET_MASK) + (pos & (s->cluster_size - 1));

    switch (write_mode(s, e)) {
    case WRITE_IN_PLACE:
        r->pending++;
        if (r->type == QREQ_WRITE) {
            qcow2_data_io(r->bn, BLKDBG_WRITE_AIO, DATA_WRITE, host, len,
                          r->buf + (pos - r->off), r->flags & BDRV_REQ_FUA,
                          qcow2_sub_done_cb, r);
        } else {
            qcow2_data_io(r->bn, BLKDBG_WRITE_AIO, DATA_ZERO, host, len,
                          NULL, r->flags & BDRV_REQ_FUA, qcow2_sub_done_cb,
                          r);
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
