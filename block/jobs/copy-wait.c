/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine's granules (copy.h): which are taken, and the
 * requests that wait for them.  A granule is taken by at most one of a
 * background operation (its area), a copy-before-write range being
 * copied (block_copy_range_now()) or a write-blocking write
 * (block_copy_write_blocking()), so two copies of one granule never race
 * to the target.  The two kinds of request wait the same way, in one
 * queue in their order:
 *
 *     arrives --> waiting --(none of its granules taken, no earlier
 *                            waiting request overlapping)--> takes them
 *                            --> copies or writes --> gives them back
 *
 * Each waiting request looks only at those before it (two that overlap
 * must not wait for each other), and the background takes no area a
 * waiting request wants (it would wait for ever behind a busy copy
 * under a guest that keeps writing).  A copy-before-write range also
 * cuts the busy operations over it back to their requests in flight,
 * so it waits for one request, not for an operation's whole area; an
 * operation gives the granules below its next request back as it goes.
 */
#include "config.h"

#include "block/core/ioq.h"
#include "block/jobs/copy-int.h"
#include "block/jobs/copy.h"
#include "util/hbitmap.h"

/* ---- taken granules and the wait ---------------------------------------- */

static bool taken_in(const BlockCopy *bc, uint64_t lo, uint64_t hi)
{
    int64_t b = lo < hi ? hbitmap_next_dirty(bc->taken, lo) : -1;

    return b >= 0 && (uint64_t)b < hi;
}

/* The first waiting request before @upto (NULL: any) wanting [lo, hi). */
static const CopyWait *waiter_in(const BlockCopy *bc, uint64_t lo,
                                 uint64_t hi, const CopyWait *upto)
{
    for (const GList *l = bc->waiting.head; l && l->data != upto;
         l = l->next) {
        const CopyWait *w = l->data;

        if (w->lo < hi && lo < w->hi) {
            return w;
        }
    }
    return NULL;
}

void block_copy_waits_retry(BlockCopy *bc)
{
    if (bc->retrying) {
        bc->retry_again = true;
        return;
    }
    bc->retrying = true;
    do {
        bc->retry_again = false;
        for (GList *l = bc->waiting.head; l; l = l->next) {
            CopyWait *w = l->data;

            if (taken_in(bc, w->lo, w->hi) || waiter_in(bc, w->lo, w->hi, w)) {
                continue;
            }
            g_queue_delete_link(&bc->waiting, l);
            if (w->lo < w->hi) {
                hbitmap_set(bc->taken, w->lo, w->hi - w->lo);
            }
            w->go(w);
            /* the queue may have changed under it: from the head again */
            bc->retry_again = true;
            break;
        }
    } while (bc->retry_again);
    bc->retrying = false;
}

void block_copy_release(BlockCopy *bc, uint64_t lo, uint64_t hi)
{
    if (lo < hi) {
        hbitmap_reset(bc->taken, lo, hi - lo);
    }
}

/* ---- the background's areas --------------------------------------------- */

/*
 * Whole units of area_align around [*@start, + *@len), unless part of
 * them is taken or waited for (false: look further on).
 */
static bool widen_area(const BlockCopy *bc, uint64_t *start, uint64_t *len)
{
    uint64_t a = bc->cfg.area_align;
    uint64_t es = *start / a * a;
    uint64_t ee = MIN(bc->cfg.len, (*start + *len + a - 1) / a * a);

    if (taken_in(bc, es, ee) || waiter_in(bc, es, ee, NULL)) {
        return false;
    }
    *start = es;
    *len = ee - es;
    return true;
}

/* The area from @pos on, for one that starts before @limit. */
static bool find_area_from(const BlockCopy *bc, uint64_t pos, uint64_t limit,
                           uint64_t *pstart, uint64_t *plen)
{
    while (pos < limit) {
        uint64_t start;
        uint64_t len;
        const CopyWait *w;
        int64_t b;

        if (!hbitmap_next_dirty_area(bc->dirty, pos, bc->cfg.chunk, &start,
                                     &len) || start >= limit) {
            return false;
        }
        b = hbitmap_next_dirty(bc->taken, start);
        if (b == (int64_t)start) {
            b = hbitmap_next_clean(bc->taken, start);
            pos = b < 0 ? bc->cfg.len : (uint64_t)b;
            continue;
        }
        if (b >= 0 && (uint64_t)b < start + len) {
            len = b - start;
        }
        w = waiter_in(bc, start, start + len, NULL);
        if (w && w->lo <= start) {
            pos = w->hi;
            continue;
        }
        if (w) {
            len = w->lo - start;
        }
        if (bc->cfg.area_align && !widen_area(bc, &start, &len)) {
            pos = start + len;
            continue;
        }
        *pstart = start;
        *plen = len;
        return true;
    }
    return false;
}

/*
 * The lowest free dirty area of at most a chunk, or with sweep the
 * next one from the cursor, wrapping.
 */
bool block_copy_find_area(const BlockCopy *bc, uint64_t *pstart,
                          uint64_t *plen)
{
    uint64_t from = bc->cfg.sweep ? bc->cursor : 0;

    return find_area_from(bc, from, bc->cfg.len, pstart, plen)
        || (from && find_area_from(bc, 0, from, pstart, plen));
}

/*
 * Without lock_source the area's bits are cleared now, with it under
 * each request's lock.
 */
void block_copy_take_area(BlockCopy *bc, uint64_t start, uint64_t len)
{
    hbitmap_set(bc->taken, start, len);
    if (!bc->cfg.lock_source) {
        hbitmap_reset(bc->dirty, start, len);
    }
    if (bc->cfg.sweep) {
        bc->cursor = start + len < bc->cfg.len ? start + len : 0;
    }
}

/* ---- copy-before-write: a range copied now ------------------------------ */

typedef struct {
    uint64_t off;
    uint64_t len;
} CopyArea;

struct CopyNow {
    CopyWait wait;              /* whole granules, cut at the length */
    GArray *areas;              /* CopyArea: what was dirty when it went */
    guint next;                 /* the next area to copy */
    void (*cb)(void *opaque, int ret);
    void *opaque;
    CopyOp op;                  /* copies the areas one after another */
};

static bool overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
    return a < a_end && b < b_end && a < b_end && b < a_end;
}

/*
 * Where a busy operation's reads may still reach: a request in flight
 * may have been widened to its granules, a parked one has none.
 */
static uint64_t op_low(const CopyOp *op)
{
    return op->parked ? op->cur : MIN(op->cur, op->off);
}

/* The end of its request in flight: what it keeps when cut back. */
static uint64_t op_keep(const CopyOp *op)
{
    uint64_t g = op->bc->cfg.granularity;
    uint64_t e = op->parked ? op->cur : MAX(op->cur, op->off + op->n);

    return MIN(op->end, (e + g - 1) / g * g);
}

/* Busy operations over the range give back what they have not begun. */
static void now_cut_ops(BlockCopy *bc, const CopyNow *now)
{
    for (unsigned i = 0; i < bc->cfg.max_ops; i++) {
        CopyOp *op = &bc->op[i];
        uint64_t keep;

        if (!op->busy || !overlaps(op_low(op), op->end, now->wait.lo,
                                   now->wait.hi)) {
            continue;
        }
        keep = op_keep(op);
        if (keep < op->end) {
            hbitmap_set(bc->dirty, keep, op->end - keep);
            hbitmap_reset(bc->taken, keep, op->end - keep);
            op->end = keep;
            op->cleared_end = MIN(op->cleared_end, keep);
        }
    }
}

/* What is dirty in the range is the request's to copy. */
static void now_take(BlockCopy *bc, CopyNow *now)
{
    uint64_t off = now->wait.lo;
    uint64_t end = now->wait.hi;
    CopyArea a;

    while (off < end
           && hbitmap_next_dirty_area(bc->dirty, off, end - off, &a.off,
                                      &a.len)
           && a.off < end) {
        a.len = MIN(a.len, end - a.off);
        hbitmap_reset(bc->dirty, a.off, a.len);
        g_array_append_val(now->areas, a);
        off = a.off + a.len;
    }
}

static void now_finish(CopyNow *now, int ret)
{
    BlockCopy *bc = now->op.bc;
    void (*cb)(void *opaque, int ret) = now->cb;
    void *opaque = now->opaque;

    g_queue_remove(&bc->now, now);
    if (now->op.buf) {
        ioq_buf_free(now->op.buf);
    }
    g_array_free(now->areas, TRUE);
    bc->busy--;
    block_copy_release(bc, now->wait.lo, now->wait.hi);
    g_free(now);
    block_copy_report_progress(bc);
    cb(opaque, ret);
    /* the idle hook, and operations for what a failure left dirty */
    block_copy_kick(bc);
}

bool block_copy_now_next(CopyOp *op)
{
    CopyNow *now = op->now;
    CopyArea *a;

    if (op->cur < op->end) {
        return true;
    }
    if (now->next == now->areas->len) {
        now_finish(now, 0);
        return false;
    }
    a = &g_array_index(now->areas, CopyArea, now->next++);
    op->start = op->cur = a->off;
    op->end = a->off + a->len;
    return true;
}

void block_copy_now_failed(CopyOp *op, int ret)
{
    CopyNow *now = op->now;
    BlockCopy *bc = op->bc;

    if (op->cur < op->end) {
        hbitmap_set(bc->dirty, op->cur, op->end - op->cur);
    }
    for (guint i = now->next; i < now->areas->len; i++) {
        CopyArea *a = &g_array_index(now->areas, CopyArea, i);

        hbitmap_set(bc->dirty, a->off, a->len);
    }
    now_finish(now, ret);
}

uint64_t block_copy_now_low(const BlockCopy *bc)
{
    uint64_t low = bc->cfg.len;

    for (GList *l = bc->now.head; l; l = l->next) {
        const CopyNow *now = l->data;

        if (now->op.cur < now->op.end) {
            low = MIN(low, now->op.cur);
        }
        for (guint i = now->next; i < now->areas->len; i++) {
            low = MIN(low, g_array_index(now->areas, CopyArea, i).off);
        }
    }
    return low;
}

uint64_t block_copy_now_bytes(const BlockCopy *bc)
{
    uint64_t n = 0;

    for (GList *l = bc->now.head; l; l = l->next) {
        const CopyNow *now = l->data;

        n += now->op.end - now->op.cur;
        for (guint i = now->next; i < now->areas->len; i++) {
            n += g_array_index(now->areas, CopyArea, i).len;
        }
    }
    return n;
}

/* Its granules are its own: copy what is dirty there. */
static void now_go(CopyWait *w)
{
    CopyNow *now = (CopyNow *)w;
    BlockCopy *bc = now->op.bc;

    /* a failed copy of a busy operation made its range dirty again */
    now_take(bc, now);
    if (now->areas->len) {
        now->op.buf = ioq_buf_alloc(bc->cfg.step);
    }
    block_copy_op_step(&now->op);
}

void block_copy_range_now(BlockCopy *bc, uint64_t off, uint64_t len,
                          void (*cb)(void *opaque, int ret), void *opaque)
{
    uint64_t g = bc->cfg.granularity;
    CopyNow *now = g_new0(CopyNow, 1);

    now->wait.lo = MIN(off / g * g, bc->cfg.len);
    now->wait.hi = MIN((off + len + g - 1) / g * g, bc->cfg.len);
    now->wait.go = now_go;
    now->areas = g_array_new(FALSE, FALSE, sizeof(CopyArea));
    now->cb = cb;
    now->opaque = opaque;
    now->op.bc = bc;
    now->op.now = now;
    now_cut_ops(bc, now);
    g_queue_push_tail(&bc->now, now);
    bc->busy++;
    g_queue_push_tail(&bc->waiting, &now->wait);
    /* it may go and end at once: inside a kick, whose end is the idle */
    block_copy_kick(bc);
}

bool block_copy_range_clean(const BlockCopy *bc, uint64_t off, uint64_t len)
{
    uint64_t g = bc->cfg.granularity;
    uint64_t start = MIN(off / g * g, bc->cfg.len);
    uint64_t end = MIN((off + len + g - 1) / g * g, bc->cfg.len);
    int64_t d = hbitmap_next_dirty(bc->dirty, start);

    if (d >= 0 && (uint64_t)d < end) {
        return false;
    }
    return !taken_in(bc, start, end) && !waiter_in(bc, start, end, NULL);
}

/* ---- write-blocking ----------------------------------------------------- */

typedef struct {
    CopyWait wait;              /* the granules it touches */
    BlockCopy *bc;
    uint64_t off;
    uint64_t len;
    uint64_t clear_lo;          /* ... and those it covers whole */
    uint64_t clear_hi;
    const void *buf;
    int flags;
    BdrvCb *cb;
    void *opaque;
} ActiveWrite;

unsigned block_copy_active_writes(const BlockCopy *bc)
{
    return bc->active_writes;
}

static void active_cb(void *opaque, int ret)
{
    ActiveWrite *w = opaque;
    BlockCopy *bc = w->bc;
    BdrvCb *cb = w->cb;
    void *cb_opaque = w->opaque;

    bc->active_bytes -= w->len;
    if (ret < 0) {
        if (bc->cfg.ops->error(bc->cfg.opaque, false, ret)
            == BLOCK_COPY_ERROR_RETRY && w->clear_lo < w->clear_hi) {
            hbitmap_set(bc->dirty, w->clear_lo, w->clear_hi - w->clear_lo);
        }
    } else {
        bc->written += w->len;
        bc->done += w->len;
    }
    bc->active_writes--;
    block_copy_report_progress(bc);
    block_copy_release(bc, w->wait.lo, w->wait.hi);
    g_free(w);
    block_copy_waits_retry(bc);
    /* the callback may end the owner (and free us): kick from the loop */
    block_copy_kick_later(bc);
    cb(cb_opaque, ret);
}

static void active_go(CopyWait *cw)
{
    ActiveWrite *w = (ActiveWrite *)cw;
    BlockCopy *bc = w->bc;

    if (w->clear_lo < w->clear_hi) {
        hbitmap_reset(bc->dirty, w->clear_lo, w->clear_hi - w->clear_lo);
    }
    if (!w->buf) {
        bdrv_write_zeroes(bc->cfg.target, w->off, w->len, w->flags,
                          active_cb, w);
        return;
    }
    bdrv_write(bc->cfg.target, w->off, w->len, w->buf, w->flags, active_cb,
               w);
}

void block_copy_write_blocking(BlockCopy *bc, uint64_t off, uint64_t len,
                               const void *buf, int flags, BdrvCb *cb,
                               void *opaque)
{
    ActiveWrite *w = g_new0(ActiveWrite, 1);
    uint64_t g = bc->cfg.granularity;

    g_assert(len > 0 && off + len <= bc->cfg.len && bc->cfg.target);
    w->bc = bc;
    w->off = off;
    w->len = len;
    w->wait.lo = off / g * g;
    w->wait.hi = MIN(bc->cfg.len, (off + len + g - 1) / g * g);
    w->wait.go = active_go;
    w->clear_lo = (off + g - 1) / g * g;
    w->clear_hi = off + len == bc->cfg.len ? bc->cfg.len : (off + len) / g * g;
    if (w->clear_hi < w->clear_lo) {
        w->clear_hi = w->clear_lo;
    }
    w->buf = buf;
    w->flags = flags;
    w->cb = cb;
    w->opaque = opaque;
    bc->active_writes++;
    bc->active_bytes += len;
    block_copy_report_progress(bc);
    g_queue_push_tail(&bc->waiting, &w->wait);
    block_copy_waits_retry(bc);
}
