/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The request layer between callers (backends, jobs, qemu-io, formats
 * calling their children) and drivers.  It counts requests in flight per
 * node (so a node can be drained), keeps the statistics, applies the
 * node's options (read-only, discard=ignore, no-flush), serialises
 * writes against range locks, and supplies allocation status for
 * protocol nodes.  What reaches the driver is cut and aligned to the
 * node's block limits by io-align.c (also detect-zeroes, and zero
 * writes as data where the driver has none); an unaligned write holds a
 * range lock over the blocks it reads back.  A flush flushes the node's
 * own metadata, then its children.
 *
 * FUA ("durable on completion") is emulated here for every driver, as
 * QEMU 7.2 does: the write goes down without the flag, and once it has
 * completed the node it was addressed to is flushed (a format's metadata,
 * then the file below, down to fdatasync) before the caller hears of it.
 * Each completed write bumps the node's write generation, so that a
 * protocol driver can tell a flush with nothing new to make durable.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/io-align.h"
#include "block/core/ioq.h"

typedef enum {
    IO_READ,
    IO_WRITE,
    IO_ZERO,
    IO_DISCARD,
    IO_FLUSH,
} IoType;

typedef struct {
    BlockNode *bn;
    IoType type;
    uint64_t off;
    uint64_t len;
    gint64 start_ns;
    BdrvCb *cb;
    void *opaque;
    /* writes: what to start once serialisation allows */
    const void *buf;
    int flags;
    bool tracked;               /* in bn->writes */
    bool no_notify;             /* continued by a write hook */
    bool fua;                   /* flush @bn before completing */
    BdrvRangeLock *pad_lock;    /* held over a read-modify-write */
} IoReq;

struct BdrvRangeLock {
    BlockNode *bn;
    uint64_t off;
    uint64_t len;
    bool held;
    BdrvRangeLockCb *cb;
    void *opaque;
};

typedef struct {
    BdrvWriteNotifyFn *fn;
    void *opaque;
} WriteNotifier;

static void grant_locks(BlockNode *bn);

typedef struct {
    BdrvCb *cb;
    void *opaque;
} DrainWaiter;

static gint64 now_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

void bdrv_inc_in_flight(BlockNode *bn)
{
    bn->in_flight++;
}

void bdrv_dec_in_flight(BlockNode *bn)
{
    g_assert(bn->in_flight > 0);
    if (--bn->in_flight == 0 && bn->drain_waiters
        && bn->drain_waiters->len) {
        GArray *w = bn->drain_waiters;

        bn->drain_waiters = NULL;
        for (guint i = 0; i < w->len; i++) {
            DrainWaiter *d = &g_array_index(w, DrainWaiter, i);

            ioq_defer_int(d->cb, d->opaque, 0);
        }
        g_array_free(w, TRUE);
    }
}

/* Release what throttle nodes at or below @bn hold back. */
static void drain_release(BlockNode *bn)
{
    if (bn->drv->drain_release) {
        bn->drv->drain_release(bn);
    }
    if (bn->file) {
        drain_release(bn->file->child);
    }
    if (bn->backing) {
        drain_release(bn->backing->child);
    }
}

void bdrv_drain(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    DrainWaiter d = { cb, opaque };

    drain_release(bn);
    if (bn->in_flight == 0) {
        ioq_defer_int(cb, opaque, 0);
        return;
    }
    if (!bn->drain_waiters) {
        bn->drain_waiters = g_array_new(FALSE, FALSE, sizeof(DrainWaiter));
    }
    g_array_append_val(bn->drain_waiters, d);
}

static void account(BlockStats *st, IoType type, uint64_t off, uint64_t len,
                    gint64 elapsed, int ret)
{
    st->last_access_ns = now_ns();
    switch (type) {
    case IO_READ:
        if (ret < 0) {
            st->failed_rd++;
        } else {
            st->rd_ops++;
            st->rd_bytes += len;
            st->rd_time_ns += elapsed;
        }
        break;
    case IO_WRITE:
    case IO_ZERO:
        if (ret < 0) {
            st->failed_wr++;
        } else {
            st->wr_ops++;
            st->wr_bytes += len;
            st->wr_time_ns += elapsed;
            st->wr_highest_offset = MAX(st->wr_highest_offset, off + len);
        }
        break;
    case IO_DISCARD:
        if (ret < 0) {
            st->failed_unmap++;
        } else {
            st->unmap_ops++;
            st->unmap_bytes += len;
            st->unmap_time_ns += elapsed;
        }
        break;
    case IO_FLUSH:
        if (ret < 0) {
            st->failed_flush++;
        } else {
            st->flush_ops++;
            st->flush_time_ns += elapsed;
        }
        break;
    }
}

static void io_done_cb(void *opaque, int ret)
{
    IoReq *r = opaque;
    BlockNode *bn = r->bn;
    bool tracked = r->tracked;
    BdrvRangeLock *pad_lock = r->pad_lock;

    BdrvCb *cb = r->cb;
    void *cb_opaque = r->opaque;

    /* QEMU's copy-on-read writes bypass the node's accounting */
    if (!(r->flags & BDRV_REQ_WRITE_UNCHANGED)) {
        account(&bn->stats, r->type, r->off, r->len,
                now_ns() - r->start_ns, ret);
    }
    if (tracked) {
        bn->writes = g_list_remove(bn->writes, r);
    }
    ioq_req_free(r, sizeof(*r));
    if (pad_lock) {
        bdrv_range_unlock(pad_lock);
    } else if (tracked) {
        grant_locks(bn);
    }
    bdrv_dec_in_flight(bn);
    cb(cb_opaque, ret);
}

/*
 * A driver finished a write, zero write or discard: what it wrote is in
 * the node's next generation; a FUA write is not complete before the
 * flush that makes it durable is.
 */
static void write_done_cb(void *opaque, int ret)
{
    IoReq *r = opaque;

    r->bn->write_gen++;
    if (ret == 0 && r->fua) {
        bdrv_flush(r->bn, io_done_cb, r);
        return;
    }
    io_done_cb(r, ret);
}

static IoReq *io_start(BlockNode *bn, IoType type, uint64_t off,
                       uint64_t len, BdrvCb *cb, void *opaque)
{
    IoReq *r = ioq_req_new0(IoReq);

    r->bn = bn;
    r->type = type;
    r->off = off;
    r->len = len;
    r->start_ns = now_ns();
    r->cb = cb;
    r->opaque = opaque;
    bdrv_inc_in_flight(bn);
    return r;
}

/* Fail or finish a request without a driver call, from the main loop. */
static void io_complete_now(IoReq *r, int ret)
{
    ioq_defer_int(io_done_cb, r, ret);
}

void bdrv_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
               BdrvCb *cb, void *opaque)
{
    /* a read-only node (a snapshot made it a backing) just reads */
    if (bn->copy_on_read && !bn->read_only && len) {
        bdrv_cor_read(bn, NULL, off, len, buf, 0, cb, opaque);
        return;
    }
    bdrv_read_plain(bn, off, len, buf, cb, opaque);
}

void bdrv_read_locked(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                      BdrvCb *cb, void *opaque)
{
    if (bn->copy_on_read && !bn->read_only && len) {
        bdrv_cor_read(bn, NULL, off, len, buf, BDRV_REQ_LOCK_OWNER, cb,
                      opaque);
        return;
    }
    bdrv_read_plain(bn, off, len, buf, cb, opaque);
}

void bdrv_enable_copy_on_read(BlockNode *bn)
{
    bn->copy_on_read = true;
}

void bdrv_read_plain(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                     BdrvCb *cb, void *opaque)
{
    IoReq *r = io_start(bn, IO_READ, off, len, cb, opaque);

    if (len == 0) {
        io_complete_now(r, 0);
        return;
    }
    bdrv_limited_read(bn, off, len, buf, io_done_cb, r);
}

/* ---- write serialisation ------------------------------------------------ */

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* May write @r start, or must it wait for a range lock? */
static bool write_blocked(const IoReq *r)
{
    if (r->flags & BDRV_REQ_LOCK_OWNER) {
        return false;
    }
    for (GList *l = r->bn->range_locks; l; l = l->next) {
        const BdrvRangeLock *k = l->data;

        if (overlaps(r->off, r->len, k->off, k->len)) {
            return true;
        }
    }
    return false;
}

static bool lock_blocked(const BdrvRangeLock *k)
{
    for (GList *l = k->bn->writes; l; l = l->next) {
        const IoReq *w = l->data;

        if (!(w->flags & BDRV_REQ_LOCK_OWNER)
            && overlaps(w->off, w->len, k->off, k->len)) {
            return true;
        }
    }
    for (GList *l = k->bn->range_locks; l && l->data != k; l = l->next) {
        const BdrvRangeLock *o = l->data;

        /* earlier locks go first: no overtaking */
        if (overlaps(o->off, o->len, k->off, k->len)) {
            return true;
        }
    }
    return false;
}

static void write_start(IoReq *r)
{
    BlockNode *bn = r->bn;

    r->tracked = true;
    bn->writes = g_list_prepend(bn->writes, r);
    if (r->flags & BDRV_REQ_FUA) {
        r->fua = true;
        r->flags &= ~BDRV_REQ_FUA;
    }
    /* a copy-on-read changes nothing that dirty tracking cares about */
    for (guint i = 0; bn->write_notifiers
         && !(r->flags & BDRV_REQ_WRITE_UNCHANGED)
         && i < bn->write_notifiers->len; i++) {
        WriteNotifier *n = &g_array_index(bn->write_notifiers,
                                          WriteNotifier, i);

        /* a hook's owner tracks what it continues; the others (dirty
         * bitmaps) see every write, as QEMU's bitmaps do */
        if (r->no_notify && n->opaque == bn->write_hook_opaque) {
            continue;
        }
        n->fn(n->opaque, r->off, r->len);
    }
    switch (r->type) {
    case IO_WRITE:
        bdrv_limited_write(bn, r->off, r->len, r->buf,
                           r->flags & BDRV_REQ_MAY_UNMAP, write_done_cb, r);
        return;
    case IO_ZERO:
        bdrv_limited_write_zeroes(bn, r->off, r->len,
                                  r->flags & BDRV_REQ_MAY_UNMAP,
                                  write_done_cb, r);
        return;
    case IO_DISCARD:
        bdrv_limited_discard(bn, r->off, r->len, write_done_cb, r);
        return;
    default:
        g_assert_not_reached();
    }
}

static void write_submit(IoReq *r)
{
    if (write_blocked(r)) {
        g_queue_push_tail(&r->bn->queued_writes, r);
        return;
    }
    write_start(r);
}

static void pad_locked_cb(void *opaque, BdrvRangeLock *lock)
{
    IoReq *r = opaque;

    r->pad_lock = lock;
    r->flags |= BDRV_REQ_LOCK_OWNER;
    write_start(r);
}

/*
 * A write the driver must see widened reads the partial blocks back
 * first: it holds a range lock over them until it completes, so that no
 * write to those blocks comes between its read and its write.  (A
 * caller that holds a lock itself, BDRV_REQ_LOCK_OWNER, serialises.)
 */
static void write_submit_widened(IoReq *r)
{
    uint64_t aoff, alen;

    if (!(r->flags & BDRV_REQ_LOCK_OWNER)
        && bdrv_needs_rmw(r->bn, r->off, r->len)) {
        bdrv_rmw_extent(r->bn, r->off, r->len, &aoff, &alen);
        bdrv_range_lock(r->bn, aoff, alen, pad_locked_cb, r);
        return;
    }
    write_submit(r);
}

/* After a lock went away: start the writes it held back. */
static void release_writes(BlockNode *bn)
{
    guint n = g_queue_get_length(&bn->queued_writes);

    while (n--) {
        IoReq *r = g_queue_pop_head(&bn->queued_writes);

        if (write_blocked(r)) {
            g_queue_push_tail(&bn->queued_writes, r);
        } else {
            write_start(r);
        }
    }
}

static void grant_locks(BlockNode *bn)
{
    GList *l = bn->range_locks;

    while (l) {
        BdrvRangeLock *k = l->data;

        l = l->next;
        if (!k->held && !lock_blocked(k)) {
            k->held = true;
            k->cb(k->opaque, k);
            /* the callback may have unlocked anything: start over */
            l = bn->range_locks;
        }
    }
}

void bdrv_range_lock(BlockNode *bn, uint64_t off, uint64_t len,
                     BdrvRangeLockCb *cb, void *opaque)
{
    BdrvRangeLock *k = g_new0(BdrvRangeLock, 1);

    k->bn = bn;
    k->off = off;
    k->len = len;
    k->cb = cb;
    k->opaque = opaque;
    bn->range_locks = g_list_append(bn->range_locks, k);
    grant_locks(bn);
}

void bdrv_range_unlock(BdrvRangeLock *k)
{
    BlockNode *bn = k->bn;

    g_assert(k->held);
    bn->range_locks = g_list_remove(bn->range_locks, k);
    g_free(k);
    release_writes(bn);
    grant_locks(bn);
}

void bdrv_range_unlock_redirect(BdrvRangeLock *k, BlockNode *to)
{
    BlockNode *bn = k->bn;

    g_assert(k->held);
    bn->range_locks = g_list_remove(bn->range_locks, k);
    g_free(k);
    while (!g_queue_is_empty(&bn->queued_writes)) {
        IoReq *r = g_queue_pop_head(&bn->queued_writes);

        r->bn = to;
        bdrv_inc_in_flight(to);
        bdrv_dec_in_flight(bn);
        if (to->read_only) {
            io_complete_now(r, -EPERM);
        } else if (r->off > to->total_size
                   || r->len > to->total_size - r->off) {
            io_complete_now(r, -EIO);
        } else if (r->type == IO_DISCARD
                   && (!to->discard_unmap || !to->drv->discard)) {
            io_complete_now(r, 0);
        } else {
            if (r->type == IO_ZERO && !to->discard_unmap
                && !(r->flags & BDRV_REQ_FROM_BACKEND)) {
                r->flags &= ~BDRV_REQ_MAY_UNMAP;
            }
            write_submit(r);
        }
    }
    grant_locks(bn);
}

void bdrv_add_write_notifier(BlockNode *bn, BdrvWriteNotifyFn *fn,
                             void *opaque)
{
    WriteNotifier n = { fn, opaque };

    if (!bn->write_notifiers) {
        bn->write_notifiers = g_array_new(FALSE, FALSE,
                                          sizeof(WriteNotifier));
    }
    g_array_append_val(bn->write_notifiers, n);
}

void bdrv_remove_write_notifier(BlockNode *bn, BdrvWriteNotifyFn *fn,
                                void *opaque)
{
    for (guint i = 0; bn->write_notifiers && i < bn->write_notifiers->len;
         i++) {
        WriteNotifier *n = &g_array_index(bn->write_notifiers,
                                          WriteNotifier, i);

        if (n->fn == fn && n->opaque == opaque) {
            g_array_remove_index(bn->write_notifiers, i);
            return;
        }
    }
}

void bdrv_set_write_hook(BlockNode *bn, BdrvWriteHookFn *fn, void *opaque)
{
    bn->write_hook = fn;
    bn->write_hook_opaque = opaque;
    bn->write_hook_discards = false;
}

void bdrv_set_write_hook_discards(BlockNode *bn, bool on)
{
    bn->write_hook_discards = on;
}

static bool hooked(BlockNode *bn, int type, uint64_t off, uint64_t len,
                   const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    return bn->write_hook && !(flags & BDRV_REQ_LOCK_OWNER)
        && !bn->read_only && len
        && bn->write_hook(bn->write_hook_opaque, type, off, len, buf, flags,
                          cb, opaque);
}

/* ---- writes --------------------------------------------------------------- */

static void do_write(BlockNode *bn, uint64_t off, uint64_t len,
                     const void *buf, int flags, BdrvCb *cb, void *opaque,
                     bool notify)
{
    IoReq *r = io_start(bn, IO_WRITE, off, len, cb, opaque);

    r->no_notify = !notify;
    if (bn->read_only) {
        io_complete_now(r, -EPERM);
        return;
    }
    if (len == 0) {
        io_complete_now(r, 0);
        return;
    }
    r->buf = buf;
    r->flags = flags;
    write_submit_widened(r);
}

static void do_write_zeroes_req(BlockNode *bn, uint64_t off, uint64_t len,
                                int flags, BdrvCb *cb, void *opaque,
                                bool notify)
{
    IoReq *r = io_start(bn, IO_ZERO, off, len, cb, opaque);

    r->no_notify = !notify;
    if (bn->read_only) {
        io_complete_now(r, -EPERM);
        return;
    }
    if (len == 0) {
        io_complete_now(r, 0);
        return;
    }
    if (!bn->discard_unmap && !(flags & BDRV_REQ_FROM_BACKEND)) {
        flags &= ~BDRV_REQ_MAY_UNMAP;
    }
    r->flags = flags;
    write_submit_widened(r);
}

void bdrv_write(BlockNode *bn, uint64_t off, uint64_t len, const void *buf,
                int flags, BdrvCb *cb, void *opaque)
{
    if (!hooked(bn, BDRV_HOOK_WRITE, off, len, buf, flags, cb, opaque)) {
        do_write(bn, off, len, buf, flags, cb, opaque, true);
    }
}

void bdrv_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len, int flags,
                       BdrvCb *cb, void *opaque)
{
    if (!hooked(bn, BDRV_HOOK_ZERO, off, len, NULL, flags, cb, opaque)) {
        do_write_zeroes_req(bn, off, len, flags, cb, opaque, true);
    }
}

static void do_discard(BlockNode *bn, uint64_t off, uint64_t len,
                       BdrvCb *cb, void *opaque, bool notify);

void bdrv_hook_continue(BlockNode *bn, int type, uint64_t off, uint64_t len,
                        const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    if (type == BDRV_HOOK_WRITE) {
        do_write(bn, off, len, buf, flags, cb, opaque, false);
    } else if (type == BDRV_HOOK_DISCARD) {
        do_discard(bn, off, len, cb, opaque, false);
    } else {
        do_write_zeroes_req(bn, off, len, flags, cb, opaque, false);
    }
}

static void do_discard(BlockNode *bn, uint64_t off, uint64_t len,
                       BdrvCb *cb, void *opaque, bool notify)
{
    IoReq *r = io_start(bn, IO_DISCARD, off, len, cb, opaque);

    r->no_notify = !notify;
    if (bn->read_only) {
        io_complete_now(r, -EPERM);
        return;
    }
    if (!bn->discard_unmap || !bn->drv->discard || len == 0) {
        io_complete_now(r, 0);
        return;
    }
    write_submit(r);
}

void bdrv_discard(BlockNode *bn, uint64_t off, uint64_t len, BdrvCb *cb,
                  void *opaque)
{
    if (!(bn->write_hook_discards && bn->discard_unmap && bn->drv->discard
          && hooked(bn, BDRV_HOOK_DISCARD, off, len, NULL, 0, cb, opaque))) {
        do_discard(bn, off, len, cb, opaque, true);
    }
}

/*
 * A flush: the node's own part (format metadata), then the file child,
 * then the backing child, each after the previous one completed.  As in
 * QEMU, flush_to_os is reported to the file child before the node's own
 * part, and flush_to_disk after it when something was written to the
 * node since its last good flush (and no-flush is off).
 */
enum {
    FLUSH_TO_OS_EVENT,
    FLUSH_OWN,
    FLUSH_TO_DISK_EVENT,
    FLUSH_FILE,
    FLUSH_BACKING,
    FLUSH_DONE,
};

typedef struct {
    IoReq *r;
    int step;
    int ret;
    uint64_t gen;               /* the node's write_gen as it began */
} Flush;

static void flush_step_cb(void *opaque, int ret)
{
    Flush *f = opaque;
    BlockNode *bn = f->r->bn;
    BlockNode *file = bn->file ? bn->file->child : NULL;

    if (ret < 0 && f->ret == 0) {
        f->ret = ret;
    }
    for (;;) {
        switch (f->step++) {
        case FLUSH_TO_OS_EVENT:
            if (file && bdrv_debug_event(file, BLKDBG_FLUSH_TO_OS,
                                         flush_step_cb, f)) {
                return;
            }
            break;
        case FLUSH_OWN:
            if (bn->drv->flush && !f->ret) {
                bn->drv->flush(bn, flush_step_cb, f);
                return;
            }
            break;
        case FLUSH_TO_DISK_EVENT:
            if (file && !f->ret && !bn->cache_no_flush
                && bn->flushed_gen != f->gen
                && bdrv_debug_event(file, BLKDBG_FLUSH_TO_DISK,
                                    flush_step_cb, f)) {
                return;
            }
            break;
        case FLUSH_FILE:
            if (file && !f->ret) {
                bdrv_flush(file, flush_step_cb, f);
                return;
            }
            break;
        case FLUSH_BACKING:
            if (bn->backing && !bn->backing->child->read_only && !f->ret) {
                bdrv_flush(bn->backing->child, flush_step_cb, f);
                return;
            }
            break;
        default:
            if (!f->ret) {
                bn->flushed_gen = f->gen;
            }
            io_done_cb(f->r, f->ret);
            g_free(f);
            return;
        }
    }
}

void bdrv_flush(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    Flush *f = g_new0(Flush, 1);

    f->r = io_start(bn, IO_FLUSH, 0, 0, cb, opaque);
    f->gen = bn->write_gen;
    if (bn->read_only) {
        f->step = FLUSH_DONE;
    }
    ioq_defer_int(flush_step_cb, f, 0);
}

typedef struct {
    BlockNode *bn;
    uint64_t len;
    BdrvStatusCb *cb;
    void *opaque;
} StatusReq;

static void status_default_cb(void *opaque, ssize_t ret)
{
    StatusReq *s = opaque;

    s->cb(s->opaque, 0, BDRV_STATUS_DATA | BDRV_STATUS_ALLOCATED, s->len);
    bdrv_dec_in_flight(s->bn);
    g_free(s);
}

static void status_done_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    StatusReq *s = opaque;

    s->cb(s->opaque, ret, status, pnum);
    bdrv_dec_in_flight(s->bn);
    g_free(s);
}

void bdrv_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                       BdrvStatusCb *cb, void *opaque)
{
    StatusReq *s = g_new0(StatusReq, 1);

    s->bn = bn;
    s->len = len;
    s->cb = cb;
    s->opaque = opaque;
    bdrv_inc_in_flight(bn);
    if (bn->drv->block_status && len) {
        bn->drv->block_status(bn, off, len, status_done_cb, s);
    } else {
        ioq_defer(status_default_cb, s, 0);
    }
}

/*
 * Allocation above @base, or (@status) what reads return: ask each node
 * from @top down; the first that reports ALLOCATED decides.  The answer
 * covers the shortest run any asked node reported, so it is exact for
 * the whole of @pnum.
 */
typedef struct {
    BlockNode *cur;
    BlockNode *base;
    bool status;
    uint64_t off;
    uint64_t len;
    BdrvStatusCb *cb;
    void *opaque;
} AllocAbove;

static void alloc_above_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    AllocAbove *a = opaque;
    BlockNode *next;

    if (ret < 0) {
        a->cb(a->opaque, ret, 0, 0);
        g_free(a);
        return;
    }
    a->len = MIN(a->len, MAX(pnum, 1));
    if (status & BDRV_STATUS_ALLOCATED) {
        a->cb(a->opaque, 0, a->status
              ? status & (BDRV_STATUS_DATA | BDRV_STATUS_ZERO) : 1, a->len);
        g_free(a);
        return;
    }
    next = bdrv_backing(bdrv_skip_filters(a->cur));
    if (!next || next == a->base || a->off >= bdrv_length(next)) {
        /* nothing below decides: reads return zeroes */
        a->cb(a->opaque, 0, a->status ? BDRV_STATUS_ZERO : 0, a->len);
        g_free(a);
        return;
    }
    a->cur = next;
    a->len = MIN(a->len, bdrv_length(next) - a->off);
    bdrv_block_status(bdrv_skip_filters(next), a->off, a->len,
                      alloc_above_cb, a);
}

static void walk_above(BlockNode *top, BlockNode *base, bool status,
                       uint64_t off, uint64_t len, BdrvStatusCb *cb,
                       void *opaque)
{
    AllocAbove *a = g_new0(AllocAbove, 1);

    a->cur = top;
    a->base = base;
    a->status = status;
    a->off = off;
    a->len = len;
    a->cb = cb;
    a->opaque = opaque;
    bdrv_block_status(bdrv_skip_filters(top), off, len, alloc_above_cb, a);
}

void bdrv_is_allocated_above(BlockNode *top, BlockNode *base, uint64_t off,
                             uint64_t len, BdrvStatusCb *cb, void *opaque)
{
    walk_above(top, base, false, off, len, cb, opaque);
}

void bdrv_block_status_above(BlockNode *top, uint64_t off, uint64_t len,
                             BdrvStatusCb *cb, void *opaque)
{
    walk_above(top, NULL, true, off, len, cb, opaque);
}

int bdrv_pread_sync(BlockNode *bn, uint64_t off, uint64_t len, void *buf)
{
    g_assert(bn->drv->pread_sync);
    return bn->drv->pread_sync(bn, off, len, buf);
}

int bdrv_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                     const void *buf)
{
    int ret;

    if (bn->read_only) {
        return -EPERM;
    }
    g_assert(bn->drv->pwrite_sync);
    ret = bn->drv->pwrite_sync(bn, off, len, buf);
    bn->write_gen++;
    return ret;
}

int bdrv_flush_sync(BlockNode *bn)
{
    return bn->drv->flush_sync ? bn->drv->flush_sync(bn) : 0;
}

int bdrv_discard_sync(BlockNode *bn, uint64_t off, uint64_t len)
{
    if (bn->read_only) {
        return -EPERM;
    }
    if (!bn->discard_unmap || !bn->drv->discard_sync || !len) {
        return 0;
    }
    return bn->drv->discard_sync(bn, off, len);
}
