/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy-before-write filter (blockdev-add driver=copy-before-write),
 * as QEMU 7.2's: a node over "file" (the source) with a second child,
 * "target".  Reads pass through; a write, zero write or discard first
 * has the copy engine (copy.c) copy the old data of its clusters to the
 * target, those not copied yet (block_copy_range_now()), so the target
 * keeps the source's data as it was when the filter was opened: what
 * image fleecing reads.  Clusters leave the engine's bitmap once copied
 * and are never copied again.
 *
 * Like QEMU's, the filter keeps an anonymous bitmap on the source (what
 * is left to copy: all of it, or the clusters of the "bitmap" option)
 * and two on itself: "access" (what a reader of the snapshot may read,
 * as the copy bitmap was at the start) and "done" (what was copied).
 * A failed copy fails the guest's write (on-cbw-error
 * break-guest-write) or lets it through and leaves the snapshot broken
 * (break-snapshot).  A copy still running after cbw-timeout seconds
 * counts as failed (ETIMEDOUT) for the guest's write, as QEMU's: the
 * write fails or goes on at once, and the copy itself runs on to its
 * end, the filter kept busy meanwhile, as QEMU leaves it running rather
 * than cancel a write to the target half done.
 *
 * The target edge takes write and shares all but resize; the source
 * edge, once the filter has users, reads consistently for them when
 * they write and lets nobody else write or resize (QEMU's
 * cbw_child_perm()).
 *
 * The snapshot API (QEMU's, what a snapshot-access node reads through)
 * serves the point-in-time view without a backing chain on the target:
 * a cluster "done" is read from the target, any other from the source,
 * and only where "access" allows (else EACCES, as after a failed copy
 * under break-snapshot).  A source piece is "frozen" while it is read:
 * a guest write there, its copy done, waits for the read before its
 * new data goes in.  So every guest write marks its clusters done, as
 * QEMU's, copied now or before (by a backup job's engine, say): from
 * then on only the target holds the old data.  A snapshot discard
 * drops whole clusters from "access" and from what is left to copy,
 * and discards them on the target.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "block/jobs/cbw.h"
#include "block/jobs/copy.h"
#include "block/jobs/job-filter.h"
#include "qapi/qjson.h"

#define CBW_CLUSTER_MIN (64 * 1024)
#define CBW_STEP (1024 * 1024)

typedef struct {
    BdrvChild *target;
    BlockCopy *bc;
    DirtyBitmap *copy_bm;       /* anonymous, on the source */
    DirtyBitmap *done_bm;       /* on the filter */
    DirtyBitmap *access_bm;     /* on the filter */
    uint64_t cluster;
    bool break_snapshot;        /* on-cbw-error */
    guint timeout_s;            /* cbw-timeout; 0: none */
    bool broken;                /* a copy failed under break-snapshot */
    GList *frozen;              /* CbwSnapRead * reading the source */
    GQueue held;                /* CbwReq * waiting for frozen reads */
} CbwState;

/* A request held until the old data of its clusters is on the target. */
typedef struct {
    BlockNode *bn;
    int type;                   /* BDRV_HOOK_* */
    uint64_t off;
    uint64_t len;
    const void *buf;
    int flags;
    BdrvCb *cb;
    void *opaque;
    guint timer;
    bool timed_out;             /* the guest's request went on without it */
} CbwReq;

/* A snapshot read (cbw_snapshot_read()), one piece at a time. */
typedef struct {
    BlockNode *bn;              /* the filter, referenced */
    uint64_t off;               /* what is left to read */
    uint64_t len;
    uint8_t *buf;
    uint64_t cur;               /* the piece being read */
    bool frozen;                /* ... from the source: in s->frozen */
    BdrvCb *cb;
    void *opaque;
} CbwSnapRead;

/* cbw_append()'s sizes for the engine of the filter it opens */
static const BlockCopyConfig *append_tmpl;

/* The filter copies only when the guest writes: no background. */
static bool cbw_may_run(void *opaque)
{
    return false;
}

static BlockCopyErrorResult cbw_error(void *opaque, bool is_read, int ret)
{
    return BLOCK_COPY_ERROR_RETRY;
}

static void cbw_idle(void *opaque)
{
}

static const BlockCopyOps cbw_copy_ops = {
    .may_run = cbw_may_run,
    .error = cbw_error,
    .idle = cbw_idle,
};

static void cbw_continue(CbwReq *r)
{
    switch (r->type) {
    case BDRV_HOOK_WRITE:
        bdrv_filter_write(r->bn, r->off, r->len, r->buf, r->flags, r->cb,
                          r->opaque);
        break;
    case BDRV_HOOK_ZERO:
        bdrv_filter_write_zeroes(r->bn, r->off, r->len, r->flags, r->cb,
                                 r->opaque);
        break;
    default:
        bdrv_filter_discard(r->bn, r->off, r->len, r->cb, r->opaque);
        break;
    }
}

static void cluster_range(const CbwState *s, const CbwReq *r,
                          uint64_t *start, uint64_t *end)
{
    *start = r->off / s->cluster * s->cluster;
    *end = MIN(bdrv_length(r->bn),
               (r->off + r->len + s->cluster - 1) / s->cluster * s->cluster);
}

static bool frozen_in(const CbwState *s, uint64_t start, uint64_t end)
{
    for (GList *l = s->frozen; l; l = l->next) {
        const CbwSnapRead *sr = l->data;

        if (sr->off < end && start < sr->off + sr->cur) {
            return true;
        }
    }
    return false;
}

/*
 * The old data of @r's clusters is safe (or given up): mark them done
 * and let the request go on, once no snapshot read of the source
 * overlaps them (@r may be on the caller's stack: a held one is copied).
 */
static void go_on(CbwState *s, CbwReq *r, bool done)
{
    uint64_t start;
    uint64_t end;
    CbwReq *h;

    cluster_range(s, r, &start, &end);
    if (done && start < end) {
        dbitmap_set_range(s->done_bm, start, end - start);
    }
    if (!frozen_in(s, start, end)) {
        cbw_continue(r);
        return;
    }
    h = g_memdup2(r, sizeof(*r));
    h->timer = 0;
    h->timed_out = false;
    g_queue_push_tail(&s->held, h);
}

/* A frozen read ended: the held requests it no longer blocks go on. */
static void release_held(CbwState *s)
{
    GList *l = s->held.head;

    while (l) {
        GList *next = l->next;
        CbwReq *h = l->data;
        uint64_t start;
        uint64_t end;

        cluster_range(s, h, &start, &end);
        if (!frozen_in(s, start, end)) {
            g_queue_delete_link(&s->held, l);
            cbw_continue(h);
            g_free(h);
        }
        l = next;
    }
}

/* The guest's request goes on (or fails) once its copy ended with @ret. */
static void copy_ended(CbwReq *r, int ret)
{
    CbwState *s = r->bn->opaque;

    if (ret < 0 && !s->break_snapshot) {
        r->cb(r->opaque, ret);
        return;
    }
    if (ret < 0) {
        s->broken = true;
    }
    go_on(s, r, ret >= 0);
}

static void copied_cb(void *opaque, int ret)
{
    CbwReq *r = opaque;

    BlockNode *bn = r->bn;

    if (!r->timed_out) {
        if (r->timer) {
            g_source_remove(r->timer);
        }
        copy_ended(r, ret);
        g_free(r);
        return;
    }
    /* what it copied stays copied, but "done" is not told */
    g_free(r);
    bdrv_dec_in_flight(bn);
    bdrv_unref(bn);
}

static gboolean copy_timed_out(gpointer opaque)
{
    CbwReq *r = opaque;

    r->timer = 0;
    r->timed_out = true;
    /*
     * The copy still reads or writes for this node: drains wait for it,
     * and the node and its engine stay until it ends (a blockdev-del
     * meanwhile finds it in use, where QEMU's would wait)
     */
    bdrv_inc_in_flight(r->bn);
    bdrv_ref(r->bn);
    copy_ended(r, -ETIMEDOUT);
    return G_SOURCE_REMOVE;
}

static void cbw_before(BlockNode *bn, int type, uint64_t off, uint64_t len,
                       const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    CbwState *s = bn->opaque;
    CbwReq req = {
        .bn = bn, .type = type, .off = off, .len = len, .buf = buf,
        .flags = flags, .cb = cb, .opaque = opaque,
    };
    CbwReq *r;
    uint64_t size = bdrv_length(bn);

    if (s->broken || off >= size || (flags & BDRV_REQ_WRITE_UNCHANGED)) {
        cbw_continue(&req);
        return;
    }
    if (block_copy_range_clean(s->bc, off, MIN(len, size - off))) {
        /* most writes: nothing to save first, nothing to allocate */
        go_on(s, &req, true);
        return;
    }
    r = g_memdup2(&req, sizeof(req));
    /* g_timeout_add_seconds() may fire up to a second early */
    if (s->timeout_s && s->timeout_s <= G_MAXUINT / 1000) {
        r->timer = g_timeout_add(s->timeout_s * 1000, copy_timed_out, r);
    } else if (s->timeout_s) {
        r->timer = g_timeout_add_seconds(s->timeout_s, copy_timed_out, r);
    }
    block_copy_range_now(s->bc, off, MIN(len, size - off), copied_cb, r);
}

static void cbw_write(BlockNode *bn, uint64_t off, uint64_t len,
                      const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    cbw_before(bn, BDRV_HOOK_WRITE, off, len, buf, flags, cb, opaque);
}

static void cbw_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                             int flags, BdrvCb *cb, void *opaque)
{
    cbw_before(bn, BDRV_HOOK_ZERO, off, len, NULL, flags, cb, opaque);
}

static void cbw_discard(BlockNode *bn, uint64_t off, uint64_t len,
                        BdrvCb *cb, void *opaque)
{
    cbw_before(bn, BDRV_HOOK_DISCARD, off, len, NULL, 0, cb, opaque);
}

/* A BlockdevRef: a node's name, or the options of a new node. */
static BlockNode *open_target(const json_t *ref, Error **errp)
{
    BlockNode *bn;

    if (json_is_string(ref)) {
        const char *name = json_string_value(ref);

        bn = bdrv_lookup(name, name, errp);
        if (bn) {
            bdrv_ref(bn);
        }
        return bn;
    }
    return bdrv_open_options(ref, false, errp);
}

/* The engine starts from all of it, or from the "bitmap" option's bits. */
static bool fill_copy_bitmap(CbwState *s, const json_t *opts, uint64_t len,
                             Error **errp)
{
    const json_t *b = json_object_get(opts, "bitmap");
    HBitmap *copy = dbitmap_hbitmap(s->copy_bm);
    const HBitmap *bits;
    uint64_t off = 0, start, n;
    DirtyBitmap *bm;

    if (!b) {
        hbitmap_set(copy, 0, len);
        return true;
    }
    bm = dbitmap_lookup(qjson_get_str(b, "node"), qjson_get_str(b, "name"),
                        NULL, errp);
    if (!bm) {
        return false;
    }
    bits = dbitmap_hbitmap(bm);
    while (off < len
           && hbitmap_next_dirty_area(bits, off, UINT64_MAX, &start, &n)
           && start < len) {
        hbitmap_set(copy, start, MIN(n, len - start));
        off = start + n;
    }
    return true;
}

static void cbw_close(BlockNode *bn)
{
    CbwState *s = bn->opaque;

    g_clear_pointer(&s->bc, block_copy_free);
    if (s->copy_bm) {
        dbitmap_release(s->copy_bm);
        s->copy_bm = NULL;
    }
    if (s->target) {
        bdrv_detach_child(s->target);
        s->target = NULL;
    }
}

static bool cbw_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    CbwState *s = bn->opaque;
    BlockNode *src = bn->file->child;
    const char *on_err = qjson_get_str_or(opts, "on-cbw-error", NULL);
    BlockNode *target = open_target(json_object_get(opts, "target"), errp);
    BlockNode *t;
    BlockCopyConfig cfg = { 0 };

    if (!target) {
        return false;
    }
    s->target = bdrv_attach_child(bn, target, "target");
    bdrv_unref(target);
    if (!bdrv_refresh_perms(target, errp)) {
        cbw_close(bn);
        return false;
    }
    bn->total_size = bdrv_length(src);
    s->break_snapshot = on_err && !strcmp(on_err, "break-snapshot");
    s->timeout_s = qjson_get_uint_or(opts, "cbw-timeout", 0);
    /* QEMU's block-copy cluster: at least 64 KiB, else the target's */
    t = bdrv_skip_filters(target);
    s->cluster = MAX(CBW_CLUSTER_MIN, bdrv_cluster_size(t));
    s->copy_bm = dbitmap_create(src, s->cluster, NULL, NULL);
    dbitmap_set_enabled(s->copy_bm, false);
    if (!fill_copy_bitmap(s, opts, bn->total_size, errp)) {
        cbw_close(bn);
        return false;
    }
    /* QEMU makes "done" first, then "access": the newest lists first */
    s->done_bm = dbitmap_create(bn, s->cluster, NULL, NULL);
    dbitmap_set_enabled(s->done_bm, false);
    s->access_bm = dbitmap_create(bn, s->cluster, NULL, NULL);
    dbitmap_set_enabled(s->access_bm, false);
    hbitmap_merge(dbitmap_hbitmap(s->access_bm), dbitmap_hbitmap(s->copy_bm));
    if (append_tmpl) {
        cfg = *append_tmpl;
    }
    cfg.source = src;
    cfg.target = target;
    /*
     * QEMU's block-copy writes zeroes, a backed target (the fleecing
     * overlay) included: zero clusters there read as zeroes, not as
     * the backing (no BDRV_REQ_MAY_UNMAP)
     */
    cfg.zeroes = BLOCK_COPY_ZEROES_WRITE;
    cfg.zero_flags = 0;
    cfg.len = bn->total_size;
    cfg.granularity = s->cluster;
    if (!append_tmpl) {
        cfg.chunk = CBW_STEP;
        cfg.step = MAX(CBW_STEP, s->cluster);
        cfg.max_ops = 1;
    }
    cfg.job = NULL;
    cfg.dirty = dbitmap_hbitmap(s->copy_bm);
    cfg.ops = &cbw_copy_ops;
    cfg.opaque = s;
    s->bc = block_copy_new(&cfg);
    return true;
}

/* (The file child is attached before the driver's state exists.) */
static BdrvChild *cbw_other_child(const BlockNode *bn)
{
    const CbwState *s = bn->opaque;

    return s ? s->target : NULL;
}

/* QEMU's cbw_child_perm() for the target */
static void cbw_target_perm(const BdrvChild *c, unsigned *perm,
                            unsigned *shared)
{
    *perm = BLK_PERM_WRITE;
    *shared = BLK_PERM_ALL & ~BLK_PERM_RESIZE;
}

/* ... and for the source, once the filter has users */
static void cbw_child_perm(const BlockNode *bn, unsigned *perm,
                           unsigned *shared)
{
    if (!bn->parents->len && !bn->backend_users && !bn->job_held) {
        return;
    }
    if (*perm & BLK_PERM_WRITE) {
        *perm |= BLK_PERM_CONSISTENT_READ;
    }
    *shared &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
}

static const BlockDriver bdrv_cbw = {
    .name = "copy-before-write",
    .instance_size = sizeof(CbwState),
    .is_filter = true,
    .no_reopen = true,
    .open = cbw_open,
    .close = cbw_close,
    .read = bdrv_filter_read,
    .write = cbw_write,
    .write_zeroes = cbw_write_zeroes,
    .discard = cbw_discard,
    .child_perm = cbw_child_perm,
    .other_child = cbw_other_child,
    .other_child_perm = cbw_target_perm,
    .plain_filename = bdrv_filter_plain_filename,
    BDRV_FILTER_PASSTHROUGH_INFO,
};

void cbw_register(void)
{
    bdrv_register_driver(&bdrv_cbw);
}

BlockNode *cbw_append(BlockNode *bs, BlockNode *target, const char *name,
                      const BlockCopyConfig *tmpl, Error **errp)
{
    g_autoptr(json_t) opts = json_pack("{s:s,s:s}", "file",
                                       bdrv_node_name(bs), "target",
                                       bdrv_node_name(target));
    BlockNode *f;

    append_tmpl = tmpl;
    /* the job on it takes nothing and shares everything, as QEMU's */
    f = job_filter_insert(&bdrv_cbw, bs, name, opts, 0, BLK_PERM_ALL, errp);
    append_tmpl = NULL;
    if (f) {
        /* QEMU's backup shows its filter, auto-named or not */
        f->implicit = false;
    }
    return f;
}

static CbwState *state_of(BlockNode *filter)
{
    g_assert(filter->drv == &bdrv_cbw);
    return filter->opaque;
}

BlockCopy *cbw_block_copy(BlockNode *filter)
{
    return state_of(filter)->bc;
}

HBitmap *cbw_copy_bitmap(BlockNode *filter)
{
    return dbitmap_hbitmap(state_of(filter)->copy_bm);
}

uint64_t cbw_cluster_size(BlockNode *filter)
{
    return state_of(filter)->cluster;
}

void cbw_release(BlockNode *filter)
{
    CbwState *s = state_of(filter);

    block_copy_set_owner(s->bc, NULL, &cbw_copy_ops, s);
}

/* ---- the snapshot API (snapshot-access.c reads through it) ------------- */

typedef struct {
    BdrvCb *cb;
    BdrvStatusCb *status_cb;
    void *opaque;
} CbwFail;

static void fail_cb(void *opaque, int ret)
{
    CbwFail *f = opaque;

    if (f->status_cb) {
        f->status_cb(f->opaque, ret, 0, 0);
    } else {
        f->cb(f->opaque, ret);
    }
    g_free(f);
}

/* End a request at once (from the main loop) with @ret. */
static void fail_later(BdrvCb *cb, BdrvStatusCb *status_cb, void *opaque,
                       int ret)
{
    CbwFail *f = g_new0(CbwFail, 1);

    f->cb = cb;
    f->status_cb = status_cb;
    f->opaque = opaque;
    ioq_defer_int(fail_cb, f, ret);
}

/* @bn's state if it offers the snapshot API, else NULL (QEMU: ENOTSUP). */
static CbwState *snapshot_state(BlockNode *bn)
{
    return bn->drv == &bdrv_cbw ? bn->opaque : NULL;
}

/* May a reader of the snapshot see [@off, @off + @len)? */
static bool accessible(CbwState *s, uint64_t off, uint64_t len)
{
    int64_t c = hbitmap_next_clean(dbitmap_hbitmap(s->access_bm), off);

    return !s->broken && (c < 0 || (uint64_t)c >= off + len);
}

/*
 * Where the snapshot's data at @off is, for how many bytes of @len: the
 * target once copied, else the source.
 */
static BlockNode *snapshot_child(BlockNode *bn, uint64_t off, uint64_t len,
                                 uint64_t *n)
{
    CbwState *s = bn->opaque;
    HBitmap *done = dbitmap_hbitmap(s->done_bm);
    bool is_done = hbitmap_get(done, off);
    int64_t next = is_done ? hbitmap_next_clean(done, off)
                           : hbitmap_next_dirty(done, off);

    *n = next < 0 ? len : MIN(len, (uint64_t)next - off);
    return is_done ? s->target->child : bn->file->child;
}

static void snap_read_step(CbwSnapRead *sr);

static void snap_read_end(CbwSnapRead *sr, int ret)
{
    BlockNode *bn = sr->bn;

    sr->cb(sr->opaque, ret);
    g_free(sr);
    bdrv_dec_in_flight(bn);
    bdrv_unref(bn);
}

static void snap_read_cb(void *opaque, int ret)
{
    CbwSnapRead *sr = opaque;
    CbwState *s = sr->bn->opaque;

    if (sr->frozen) {
        s->frozen = g_list_remove(s->frozen, sr);
        sr->frozen = false;
        release_held(s);
    }
    if (ret < 0) {
        snap_read_end(sr, ret);
        return;
    }
    sr->off += sr->cur;
    sr->buf += sr->cur;
    sr->len -= sr->cur;
    snap_read_step(sr);
}

static void snap_read_step(CbwSnapRead *sr)
{
    CbwState *s = sr->bn->opaque;
    BlockNode *from;

    if (!sr->len) {
        snap_read_end(sr, 0);
        return;
    }
    /* checked per piece, as QEMU's: a copy may fail in between */
    if (!accessible(s, sr->off, sr->len)) {
        snap_read_end(sr, -EACCES);
        return;
    }
    from = snapshot_child(sr->bn, sr->off, sr->len, &sr->cur);
    if (from == sr->bn->file->child) {
        sr->frozen = true;
        s->frozen = g_list_prepend(s->frozen, sr);
    }
    bdrv_read(from, sr->off, sr->cur, sr->buf, snap_read_cb, sr);
}

void cbw_snapshot_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                       BdrvCb *cb, void *opaque)
{
    CbwSnapRead *sr;

    if (!snapshot_state(bn)) {
        fail_later(cb, NULL, opaque, -ENOTSUP);
        return;
    }
    sr = g_new0(CbwSnapRead, 1);
    sr->bn = bn;
    sr->off = off;
    sr->len = len;
    sr->buf = buf;
    sr->cb = cb;
    sr->opaque = opaque;
    bdrv_ref(bn);
    bdrv_inc_in_flight(bn);
    snap_read_step(sr);
}

typedef struct {
    BlockNode *from;
    BdrvStatusCb *cb;
    void *opaque;
} CbwSnapStatus;

/* As QEMU's bdrv_block_status(): a node without backing holds zeroes
 * where it holds nothing */
static void snap_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    CbwSnapStatus *sst = opaque;

    if (ret == 0 && !(status & BDRV_STATUS_ALLOCATED)
        && !bdrv_backing(bdrv_skip_filters(sst->from))) {
        status |= BDRV_STATUS_ZERO;
    }
    sst->cb(sst->opaque, ret, status, pnum);
    g_free(sst);
}

void cbw_snapshot_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                               BdrvStatusCb *cb, void *opaque)
{
    CbwState *s = snapshot_state(bn);
    CbwSnapStatus *sst;
    BlockNode *from;
    uint64_t n;

    if (!s) {
        fail_later(NULL, cb, opaque, -ENOTSUP);
        return;
    }
    /* QEMU's answers for the whole range or refuses it */
    if (!accessible(s, off, len)) {
        fail_later(NULL, cb, opaque, -EACCES);
        return;
    }
    from = snapshot_child(bn, off, len, &n);
    sst = g_new0(CbwSnapStatus, 1);
    sst->from = from;
    sst->cb = cb;
    sst->opaque = opaque;
    bdrv_block_status(from, off, n, snap_status_cb, sst);
}

void cbw_snapshot_discard(BlockNode *bn, uint64_t off, uint64_t len,
                          BdrvCb *cb, void *opaque)
{
    CbwState *s = snapshot_state(bn);
    uint64_t start;
    uint64_t end;

    if (!s) {
        fail_later(cb, NULL, opaque, -ENOTSUP);
        return;
    }
    /* only whole clusters: the rest of one may still be read */
    start = (off + s->cluster - 1) / s->cluster * s->cluster;
    end = (off + len) / s->cluster * s->cluster;
    if (end <= start) {
        fail_later(cb, NULL, opaque, 0);
        return;
    }
    hbitmap_reset(dbitmap_hbitmap(s->access_bm), start, end - start);
    hbitmap_reset(dbitmap_hbitmap(s->copy_bm), start, end - start);
    bdrv_discard(s->target->child, start, end - start, cb, opaque);
}
