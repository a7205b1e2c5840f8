/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 metadata cache: L2 tables and refcount blocks, one cluster each.
 *
 * A table is loaded once however many requests want it (waiters queue on
 * the loading entry).  Users pin the tables they are working with;
 * unpinned, clean tables beyond the limit are evicted, least recently
 * used first.  Dirty tables stay until written back.
 *
 * With cache-clean-interval, a timer drops the clean, unpinned tables
 * nobody used since its previous run (QEMU's qcow2_cache_clean_unused),
 * so an idle image gives its cache memory back.
 *
 * An L2 table may point to clusters whose refcount increments are not
 * on disk yet (allocated after the flush wrote the refcount blocks): it
 * is written with those entries' old values (held entries), and stays
 * dirty for the next flush.  A new L2 table is not written at all before
 * its own cluster's refcount is on disk, and the L1 table points to it
 * only once it is (qcow2-flush.c).
 *
 * Writeback writes a copy of each dirty table, so that the main loop may
 * keep changing the table while the write is in flight without the disk
 * ever receiving a half-updated entry.  A table never has two writes in
 * flight (their order on disk would be undefined): a writeback that finds
 * it being written waits for that write and then writes it again.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"

typedef struct WbRound {
    int pending;
    int ret;
    void (*cb)(void *opaque, int ret);
    void *opaque;
} WbRound;

typedef struct {
    BlockNode *bn;
    Qcow2Cache *c;
    Qcow2Table *t;
    uint8_t *copy;
    uint64_t gen;
    GPtrArray *rounds;
} TableWrite;

/* Rounds waiting for the write after the one in flight, per table. */
typedef struct {
    GPtrArray *rounds;
} Requeue;

static GHashTable *requeues;    /* Qcow2Table * -> Requeue * */

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

void qcow2_cache_init(Qcow2Cache *c, unsigned max, BlkdebugEvent ev)
{
    c->map = g_hash_table_new(g_int64_hash, g_int64_equal);
    g_queue_init(&c->lru);
    c->max = max;
    c->load_event = ev;
}

static void table_free(Qcow2Cache *c, Qcow2Table *t)
{
    g_hash_table_remove(c->map, &t->offset);
    if (t->lru_link) {
        g_queue_delete_link(&c->lru, t->lru_link);
    }
    if (t->waiters) {
        g_array_free(t->waiters, TRUE);
    }
    if (t->held) {
        g_array_free(t->held, TRUE);
    }
    ioq_buf_free(t->data);
    g_free(t);
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    GHashTableIter it;
    gpointer k, v;
    GPtrArray *all = g_ptr_array_new();

    g_hash_table_iter_init(&it, c->map);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_ptr_array_add(all, v);
    }
    for (guint i = 0; i < all->len; i++) {
        table_free(c, g_ptr_array_index(all, i));
    }
    g_ptr_array_free(all, TRUE);
    g_hash_table_destroy(c->map);
}

static void touch(Qcow2Cache *c, Qcow2Table *t)
{
    t->used = true;
    if (t->lru_link) {
        g_queue_unlink(&c->lru, t->lru_link);
        g_queue_push_tail_link(&c->lru, t->lru_link);
    } else {
        g_queue_push_tail(&c->lru, t);
        t->lru_link = g_queue_peek_tail_link(&c->lru);
    }
}

static bool evictable(const Qcow2Table *t)
{
    return t->loaded && !t->pin && !t->writing
        && t->dirty_gen == t->clean_gen;
}

static void evict(Qcow2Cache *c)
{
    GList *l = c->lru.head;

    while (l && g_hash_table_size(c->map) > c->max) {
        GList *next = l->next;
        Qcow2Table *t = l->data;

        if (evictable(t)) {
            table_free(c, t);
        }
        l = next;
    }
}

static Qcow2Table *table_alloc(BlockNode *bn, Qcow2Cache *c, uint64_t off)
{
    Qcow2Table *t = g_new0(Qcow2Table, 1);

    t->offset = off;
    t->data = ioq_buf_alloc(state(bn)->cluster_size);
    g_hash_table_insert(c->map, &t->offset, t);
    touch(c, t);
    return t;
}

typedef struct {
    Qcow2TableCb *cb;
    void *opaque;
} GetReq;

typedef struct {
    BlockNode *bn;
    Qcow2Cache *c;
    Qcow2Table *t;
} LoadReq;

static void load_done_cb(void *opaque, int ret)
{
    LoadReq *l = opaque;
    Qcow2Table *t = l->t;
    GArray *w = t->waiters;

    t->waiters = NULL;
    t->loaded = ret == 0;
    t->on_disk = t->loaded;
    t->load_ret = ret;
    for (guint i = 0; i < w->len; i++) {
        GetReq *g = &g_array_index(w, GetReq, i);

        if (ret == 0) {
            t->pin++;
        }
        g->cb(g->opaque, ret, ret == 0 ? t : NULL);
    }
    g_array_free(w, TRUE);
    if (ret < 0) {
        table_free(l->c, t);
    } else {
        evict(l->c);
    }
    g_free(l);
}

static void load_go_cb(void *opaque, int ret)
{
    LoadReq *l = opaque;

    bdrv_read(l->bn->file->child, l->t->offset, state(l->bn)->cluster_size,
              l->t->data, load_done_cb, l);
}

typedef struct {
    Qcow2TableCb *cb;
    void *opaque;
    Qcow2Table *t;
} Hit;

static void hit_deliver_cb(void *opaque, ssize_t ret)
{
    Hit *h = opaque;

    h->cb(h->opaque, 0, h->t);
    g_free(h);
}

void qcow2_table_get(BlockNode *bn, Qcow2Cache *c, uint64_t offset,
                     Qcow2TableCb *cb, void *opaque)
{
    Qcow2Table *t = g_hash_table_lookup(c->map, &offset);
    GetReq g;

    if (t && t->loaded) {
        Hit *h = g_new0(Hit, 1);

        h->cb = cb;
        h->opaque = opaque;
        h->t = t;
        t->pin++;
        touch(c, t);
        ioq_defer(hit_deliver_cb, h, 0);
        return;
    }
    g.cb = cb;
    g.opaque = opaque;
    if (t) {
        g_array_append_val(t->waiters, g);
        return;
    }
    t = table_alloc(bn, c, offset);
    t->waiters = g_array_new(FALSE, FALSE, sizeof(GetReq));
    g_array_append_val(t->waiters, g);
    {
        LoadReq *l = g_new0(LoadReq, 1);

        l->bn = bn;
        l->c = c;
        l->t = t;
        if (!bdrv_debug_event(bn->file->child, c->load_event, load_go_cb,
                              l)) {
            load_go_cb(l, 0);
        }
    }
}

Qcow2Table *qcow2_table_peek(Qcow2Cache *c, uint64_t offset)
{
    Qcow2Table *t = g_hash_table_lookup(c->map, &offset);

    if (!t || !t->loaded) {
        return NULL;
    }
    t->pin++;
    touch(c, t);
    return t;
}

Qcow2Table *qcow2_table_new(BlockNode *bn, Qcow2Cache *c, uint64_t offset)
{
    Qcow2Table *t;

    if (g_hash_table_lookup(c->map, &offset)) {
        qcow2_signal_corruption(bn, true, offset, state(bn)->cluster_size,
                                "Preventing invalid allocation of %s at "
                                "offset %#" PRIx64,
                                c == &state(bn)->l2_cache ? "L2 table"
                                                         : "refcount block",
                                offset);
        return NULL;
    }
    t = table_alloc(bn, c, offset);
    memset(t->data, 0, state(bn)->cluster_size);
    t->loaded = true;
    t->pin = 1;
    t->dirty_gen = 1;
    return t;
}

Qcow2Table *qcow2_table_get_sync(BlockNode *bn, Qcow2Cache *c,
                                 uint64_t offset, int *ret)
{
    Qcow2Table *t = qcow2_table_peek(c, offset);

    *ret = 0;
    if (t) {
        return t;
    }
    if (g_hash_table_lookup(c->map, &offset)) {
        *ret = -EBUSY;          /* being loaded asynchronously */
        return NULL;
    }
    t = table_alloc(bn, c, offset);
    *ret = bdrv_pread_sync(bn->file->child, offset,
                           state(bn)->cluster_size, t->data);
    if (*ret < 0) {
        table_free(c, t);
        return NULL;
    }
    t->loaded = true;
    t->on_disk = true;
    t->pin = 1;
    return t;
}

void qcow2_table_unpin(Qcow2Cache *c, Qcow2Table *t)
{
    g_assert(t->pin > 0);
    t->pin--;
    if (!t->pin) {
        evict(c);
    }
}

void qcow2_table_dirty(Qcow2Table *t)
{
    t->dirty_gen++;
}

void qcow2_table_hold(Qcow2Table *t, uint32_t i, uint64_t old, uint64_t gen)
{
    Qcow2HeldEntry h = { i, old, gen };

    if (!t->held) {
        t->held = g_array_new(FALSE, FALSE, sizeof(Qcow2HeldEntry));
    }
    for (guint k = 0; k < t->held->len; k++) {
        Qcow2HeldEntry *e = &g_array_index(t->held, Qcow2HeldEntry, k);

        /* what the disk may hold is still the first old value */
        if (e->index == i) {
            e->gen = MAX(e->gen, gen);
            return;
        }
    }
    g_array_append_val(t->held, h);
}

Qcow2Table *qcow2_cache_lookup(Qcow2Cache *c, uint64_t offset)
{
    return g_hash_table_lookup(c->map, &offset);
}

/*
 * Into @copy, the old value of each held entry whose clusters' refcounts
 * are not on disk; the others are let go.  True when something was held.
 */
static bool apply_holds(Qcow2State *s, Qcow2Table *t, uint8_t *copy)
{
    bool held = false;
    guint k = 0;

    while (t->held && k < t->held->len) {
        Qcow2HeldEntry *e = &g_array_index(t->held, Qcow2HeldEntry, k);

        if (e->gen > s->rb_durable_gen) {
            be64_write(copy + 8 * e->index, e->old);
            held = true;
            k++;
        } else {
            g_array_remove_index_fast(t->held, k);
        }
    }
    return held;
}

/* A new table waits until its own cluster's refcount is on disk. */
static bool may_write(Qcow2State *s, const Qcow2Table *t)
{
    return t->on_disk || t->own_gen <= s->rb_durable_gen;
}

void qcow2_cache_drop(Qcow2Cache *c, uint64_t offset)
{
    Qcow2Table *t = g_hash_table_lookup(c->map, &offset);

    if (t && evictable(t)) {
        table_free(c, t);
    }
}

bool qcow2_cache_loading(Qcow2Cache *c, uint64_t offset)
{
    Qcow2Table *t = g_hash_table_lookup(c->map, &offset);

    return t && !t->loaded;
}

void qcow2_cache_clean_unused(Qcow2Cache *c)
{
    GList *l = c->lru.head;

    while (l) {
        GList *next = l->next;
        Qcow2Table *t = l->data;

        if (evictable(t) && !t->used) {
            table_free(c, t);
        } else {
            t->used = false;
        }
        l = next;
    }
}

static gboolean cache_clean_cb(gpointer opaque)
{
    Qcow2State *s = state(opaque);

    qcow2_cache_clean_unused(&s->l2_cache);
    qcow2_cache_clean_unused(&s->rb_cache);
    return G_SOURCE_CONTINUE;
}

void qcow2_cache_clean_start(BlockNode *bn)
{
    Qcow2State *s = state(bn);

    if (s->opts.cache_clean_interval) {
        s->cache_clean_timer = g_timeout_add_seconds(
            s->opts.cache_clean_interval, cache_clean_cb, bn);
    }
}

unsigned qcow2_cache_dirty_count(Qcow2Cache *c)
{
    GHashTableIter it;
    gpointer k, v;
    unsigned n = 0;

    g_hash_table_iter_init(&it, c->map);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const Qcow2Table *t = v;

        n += t->dirty_gen != t->clean_gen;
    }
    return n;
}

static void round_done(WbRound *r, int ret)
{
    if (ret < 0 && r->ret == 0) {
        r->ret = ret;
    }
    if (--r->pending == 0) {
        r->cb(r->opaque, r->ret);
        g_free(r);
    }
}

static void start_table_write(BlockNode *bn, Qcow2Cache *c, Qcow2Table *t,
                              GPtrArray *rounds);

/* A table's write may overlap its own kind of metadata: itself. */
static unsigned ign(Qcow2State *s, Qcow2Cache *c)
{
    return c == &s->l2_cache ? QCOW2_OL_ACTIVE_L2 : QCOW2_OL_REFCOUNT_BLOCK;
}

static void table_written_cb(void *opaque, int ret)
{
    TableWrite *w = opaque;
    Qcow2Table *t = w->t;
    GPtrArray *rounds = w->rounds;
    Requeue *rq;

    t->writing = false;
    if (ret == 0 && w->gen > t->clean_gen) {
        t->clean_gen = w->gen;
    }
    if (ret == 0) {
        t->on_disk = true;
    }
    ioq_buf_free(w->copy);
    rq = requeues ? g_hash_table_lookup(requeues, t) : NULL;
    if (rq) {
        /* writebacks that arrived meanwhile want the newer contents */
        g_hash_table_remove(requeues, t);
        start_table_write(w->bn, w->c, t, rq->rounds);
        g_free(rq);
    }
    qcow2_table_unpin(w->c, t);
    g_free(w);
    /* last: finishing a round may close the node and free the cache */
    for (guint i = 0; i < rounds->len; i++) {
        round_done(g_ptr_array_index(rounds, i), ret);
    }
    g_ptr_array_free(rounds, TRUE);
}

/*
 * blkdebug's events for a table about to be written: a refcount block
 * is updated (refblock_update_part), and written for the first time
 * after its allocation (refblock_alloc_write), or as one of those that
 * describe a moved refcount table (refblock_alloc_write_blocks).
 */
static void write_events(BlockNode *bn, Qcow2Cache *c, Qcow2Table *t)
{
    Qcow2State *s = state(bn);

    if (c == &s->rb_cache) {
        if (!t->on_disk) {
            bdrv_debug_event(bn->file->child, s->reftable_moved
                             ? BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS
                             : BLKDBG_REFBLOCK_ALLOC_WRITE, NULL, NULL);
        }
        bdrv_debug_event(bn->file->child, BLKDBG_REFBLOCK_UPDATE_PART, NULL,
                         NULL);
    }
}

static void start_table_write(BlockNode *bn, Qcow2Cache *c, Qcow2Table *t,
                              GPtrArray *rounds)
{
    Qcow2State *s = state(bn);
    TableWrite *w = g_new0(TableWrite, 1);
    int r;

    w->bn = bn;
    w->c = c;
    w->t = t;
    w->gen = t->dirty_gen;
    w->rounds = rounds;
    w->copy = ioq_buf_alloc(s->cluster_size);
    memcpy(w->copy, t->data, s->cluster_size);
    if (apply_holds(s, t, w->copy)) {
        t->dirty_gen++;         /* the held entries are still to write */
    }
    if (!t->writing) {
        t->pin++;               /* held until the last write is done */
    }
    t->writing = true;
    r = qcow2_overlap_check(bn, ign(s, c), t->offset, s->cluster_size);
    if (r < 0) {
        ioq_defer_int(table_written_cb, w, r);
        return;
    }
    write_events(bn, c, t);
    bdrv_write(bn->file->child, t->offset, s->cluster_size, w->copy, 0,
               table_written_cb, w);
}

static void empty_round_cb(void *opaque, ssize_t ret)
{
    WbRound *r = opaque;

    r->cb(r->opaque, 0);
    g_free(r);
}

void qcow2_cache_writeback(BlockNode *bn, Qcow2Cache *c,
                           void (*cb)(void *opaque, int ret), void *opaque)
{
    WbRound *r = g_new0(WbRound, 1);
    GHashTableIter it;
    gpointer k, v;

    r->cb = cb;
    r->opaque = opaque;
    r->pending = 1;             /* released below */
    if (!requeues) {
        requeues = g_hash_table_new(NULL, NULL);
    }
    g_hash_table_iter_init(&it, c->map);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        Qcow2Table *t = v;
        GPtrArray *rounds;

        if (!t->loaded || t->dirty_gen == t->clean_gen
            || !may_write(state(bn), t)) {
            if (!t->writing) {
                continue;
            }
            /* clean, but a write in flight must land before we report */
        }
        r->pending++;
        if (t->writing) {
            Requeue *rq = g_hash_table_lookup(requeues, t);

            if (!rq) {
                rq = g_new0(Requeue, 1);
                rq->rounds = g_ptr_array_new();
                g_hash_table_insert(requeues, t, rq);
            }
            g_ptr_array_add(rq->rounds, r);
            continue;
        }
        rounds = g_ptr_array_new();
        g_ptr_array_add(rounds, r);
        start_table_write(bn, c, t, rounds);
    }
    if (--r->pending == 0) {
        r->pending = 1;
        ioq_defer(empty_round_cb, r, 0);
    }
}

int qcow2_cache_write_sync(BlockNode *bn, Qcow2Cache *c)
{
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, c->map);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        Qcow2Table *t = v;
        uint8_t *copy;
        bool held;
        int r;

        if (!t->loaded || t->dirty_gen == t->clean_gen) {
            continue;
        }
        if (t->writing) {
            return -EBUSY;
        }
        if (!may_write(state(bn), t)) {
            return -EBUSY;
        }
        r = qcow2_overlap_check(bn, ign(state(bn), c), t->offset,
                                state(bn)->cluster_size);
        copy = ioq_buf_alloc(state(bn)->cluster_size);
        memcpy(copy, t->data, state(bn)->cluster_size);
        held = apply_holds(state(bn), t, copy);
        if (r == 0) {
            write_events(bn, c, t);
            r = bdrv_pwrite_sync(bn->file->child, t->offset,
                                 state(bn)->cluster_size, copy);
        }
        ioq_buf_free(copy);
        if (r < 0) {
            return r;
        }
        t->on_disk = true;
        if (!held) {
            t->clean_gen = t->dirty_gen;
        }
    }
    return 0;
}
