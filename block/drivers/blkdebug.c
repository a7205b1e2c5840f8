/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkdebug: QEMU's error-injection filter, option for option.
 *
 * Rules hang off events (the BLKDBG_* a format reports on its file
 * child, and those the request layer reports on the filter itself:
 * pwritev, pwritev_zero, pwritev_done and the read-modify-write ones).
 * When an event fires in the current state (state 0 in a rule means
 * "any"), its inject-error rules become active and its set-state rules
 * pick the state the filter enters once the event is processed.  Active
 * rules fail the next requests of their iotype touching their sector
 * (-1: any) with -errno, until a "once" rule fires and disappears.
 *
 * The limit options (align, max-transfer, opt-/max-write-zero, opt-/
 * max-discard) become the node's BdrvLimits, which the request layer
 * applies (io-align.c); as QEMU's, the filter declines zero writes
 * shorter than its alignment (they go down as data) and discards
 * shorter than its request alignment.
 *
 * Breakpoints (qemu-io break/resume/wait_break/remove_break) are
 * one-shot rules that hold the request reporting the event until
 * resumed; a request is held by keeping its continuation.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/drivers/blkdebug-config.h"
#include "qapi/qjson.h"

typedef enum {
    ACT_INJECT,
    ACT_SET_STATE,
    ACT_SUSPEND,
} RuleAction;

enum {
    IOT_READ = 1 << 0,
    IOT_WRITE = 1 << 1,
    IOT_WRITE_ZEROES = 1 << 2,
    IOT_DISCARD = 1 << 3,
    IOT_FLUSH = 1 << 4,
    IOT_BLOCK_STATUS = 1 << 5,
    IOT_ALL = 0x3f,
};

typedef struct {
    BlkdebugEvent event;
    RuleAction action;
    int64_t state;
    /* inject */
    int error;
    bool once;
    int64_t sector;
    unsigned iotypes;
    /* set-state */
    int64_t new_state;
    /* suspend */
    char *tag;
} Rule;

typedef struct {
    char *tag;
    BdrvCb *cb;
    void *opaque;
} Held;

typedef struct {
    int64_t state;
    GPtrArray *rules;       /* Rule *, most recent first (as QEMU) */
    GPtrArray *active;      /* Rule * (borrowed from @rules) */
    GPtrArray *held;        /* Held * */
    BdrvLimits limits;      /* the options; 0: the merged value stays */
    char *config;           /* the config file, as given, or NULL */
} BlkdebugState;

static BlockNode *image(BlockNode *bn)
{
    return bn->file->child;
}

static bool blkdebug_event(BlockNode *bn, BlkdebugEvent event, BdrvCb *cb,
                           void *opaque);

static void rule_free(gpointer p)
{
    Rule *r = p;

    g_free(r->tag);
    g_free(r);
}

static unsigned iotype_bit(const char *name)
{
    static const char *const names[] = {
        "read", "write", "write-zeroes", "discard", "flush", "block-status",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (!strcmp(names[i], name)) {
            return 1u << i;
        }
    }
    return 0;
}


/* An inject-error or set-state rule from its BlkdebugInjectErrorOptions
 * or BlkdebugSetStateOptions @o. */
static bool add_rule(BlkdebugState *s, RuleAction act, const json_t *o,
                     Error **errp)
{
    const char *name = json_string_value(json_object_get(o, "event"));
    const char *iotype = json_string_value(json_object_get(o, "iotype"));
    Rule *r;

    /* the schema checked the options' rules; a config file's not yet */
    if (!name) {
        error_setg(errp, "Missing event name for rule");
        return false;
    }
    if (bdrv_debug_event_by_name(name) < 0) {
        error_setg(errp, "invalid parameter value: %s", name);
        return false;
    }
    if (act == ACT_INJECT && iotype && !iotype_bit(iotype)) {
        error_setg(errp, "invalid parameter value: %s", iotype);
        return false;
    }
    if (!bdrv_debug_event_raised(name)) {
        error_setg(errp, "blkdebug event '%s' is never raised by qmpd",
                   name);
        return false;
    }
    if (act == ACT_INJECT && qjson_get_bool_or(o, "immediately", false)) {
        /* errors always complete from the main loop, after the request
         * has returned to its caller: the default's yield, always */
        error_setg(errp, "blkdebug inject-error 'immediately' is not "
                   "supported by qmpd");
        return false;
    }
    r = g_new0(Rule, 1);
    r->action = act;
    r->event = bdrv_debug_event_by_name(name);
    r->state = qjson_get_int_or(o, "state", 0);
    if (act == ACT_INJECT) {
        r->error = qjson_get_int_or(o, "errno", EIO);
        r->once = qjson_get_bool_or(o, "once", false);
        r->sector = qjson_get_int_or(o, "sector", -1);
        r->iotypes = iotype ? iotype_bit(iotype) : IOT_ALL;
    } else {
        r->new_state = qjson_get_int_or(o, "new_state", 0);
    }
    /* most recent first, as QEMU keeps them */
    g_ptr_array_insert(s->rules, 0, r);
    return true;
}

/*
 * The rules: a config file's groups first, then the options' rules, all
 * inject-error rules before all set-state ones (QEMU's order).
 */
static bool read_rules(BlkdebugState *s, const json_t *opts, Error **errp)
{
    g_autoptr(json_t) inject = json_array();
    g_autoptr(json_t) set_state = json_array();
    size_t i;
    json_t *o;

    if (s->config
        && !blkdebug_read_config(s->config, inject, set_state, errp)) {
        return false;
    }
    if (json_object_get(opts, "inject-error")) {
        json_array_extend(inject, json_object_get(opts, "inject-error"));
    }
    json_array_foreach(inject, i, o) {
        if (!add_rule(s, ACT_INJECT, o, errp)) {
            return false;
        }
    }
    if (json_object_get(opts, "set-state")) {
        json_array_extend(set_state, json_object_get(opts, "set-state"));
    }
    json_array_foreach(set_state, i, o) {
        if (!add_rule(s, ACT_SET_STATE, o, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * QEMU's name for a blkdebug node whose options are its config file (if
 * any) and a plainly named image: "blkdebug:CONFIG:IMAGE".  Any rule or
 * limit, or an image known only by its options, makes it a json: name.
 */
static char *blkdebug_plain_filename(BlockNode *bn)
{
    static const char *const strong[] = {
        "inject-error", "set-state", "align", "max-transfer",
        "opt-write-zero", "max-write-zero", "opt-discard", "max-discard",
    };
    const char *img = bdrv_filename(image(bn));

    for (size_t i = 0; i < G_N_ELEMENTS(strong); i++) {
        if (json_object_get(bn->options, strong[i])) {
            return NULL;
        }
    }
    if (!img || g_str_has_prefix(img, "json:")) {
        return NULL;
    }
    return g_strdup_printf("blkdebug:%s:%s",
                           qjson_get_str_or(bn->options, "config", ""), img);
}

static void blkdebug_refresh_limits(BlockNode *bn)
{
    BlkdebugState *s = bn->opaque;
    const BdrvLimits *l;

    if (!s) {
        return;     /* not open yet: nothing of ours to apply */
    }
    l = &s->limits;
    if (l->request_alignment) {
        bn->bl.request_alignment = l->request_alignment;
    }
    if (l->max_transfer) {
        bn->bl.max_transfer = l->max_transfer;
    }
    if (l->pwrite_zeroes_alignment) {
        bn->bl.pwrite_zeroes_alignment = l->pwrite_zeroes_alignment;
    }
    if (l->max_pwrite_zeroes) {
        bn->bl.max_pwrite_zeroes = l->max_pwrite_zeroes;
    }
    if (l->pdiscard_alignment) {
        bn->bl.pdiscard_alignment = l->pdiscard_alignment;
    }
    if (l->max_pdiscard) {
        bn->bl.max_pdiscard = l->max_pdiscard;
    }
}

static bool blkdebug_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    BlkdebugState *s = bn->opaque;
    uint64_t limits[BLKDEBUG_LIMITS];

    s->state = 1;
    s->rules = g_ptr_array_new_with_free_func(rule_free);
    s->active = g_ptr_array_new();
    s->held = g_ptr_array_new();
    s->config = g_strdup(qjson_get_str_or(opts, "config", NULL));
    /* QEMU's order: option types, the rules, then the limits' checks */
    if (!blkdebug_read_limits(opts, limits, errp)
        || !read_rules(s, opts, errp)
        || !blkdebug_check_limits(limits, image(bn)->bl.request_alignment,
                                  &s->limits, errp)) {
        g_ptr_array_unref(s->rules);
        g_ptr_array_unref(s->active);
        g_ptr_array_unref(s->held);
        g_free(s->config);
        return false;
    }
    bn->total_size = bdrv_length(bn->file->child);
    /* QEMU's blkdebug reports "none" to itself once it is open */
    blkdebug_event(bn, BLKDBG_NONE, NULL, NULL);
    return true;
}

static void blkdebug_close(BlockNode *bn)
{
    BlkdebugState *s = bn->opaque;

    /* held requests are resumed so nothing is lost with the filter */
    while (s->held->len) {
        Held *h = g_ptr_array_steal_index(s->held, 0);

        ioq_defer_int(h->cb, h->opaque, 0);
        g_free(h->tag);
        g_free(h);
    }
    g_ptr_array_unref(s->active);
    g_ptr_array_unref(s->rules);
    g_ptr_array_unref(s->held);
    g_free(s->config);
}

static bool blkdebug_event(BlockNode *bn, BlkdebugEvent event, BdrvCb *cb,
                           void *opaque)
{
    BlkdebugState *s = bn->opaque;
    int64_t new_state = s->state;
    bool injected = false;
    bool held = false;

    for (guint i = 0; i < s->rules->len; i++) {
        Rule *r = g_ptr_array_index(s->rules, i);

        if (r->event != event || (r->state && r->state != s->state)) {
            continue;
        }
        switch (r->action) {
        case ACT_INJECT:
            if (!injected) {
                g_ptr_array_set_size(s->active, 0);
                injected = true;
            }
            g_ptr_array_insert(s->active, 0, r);
            break;
        case ACT_SET_STATE:
            new_state = r->new_state;
            break;
        case ACT_SUSPEND:
            if (cb && !held) {
                Held *h = g_new0(Held, 1);

                h->tag = g_strdup(r->tag);
                h->cb = cb;
                h->opaque = opaque;
                g_ptr_array_add(s->held, h);
                g_ptr_array_remove_index(s->rules, i);
                i--;
                held = true;
            }
            break;
        }
    }
    s->state = new_state;
    return held;
}

/* The error an active rule injects into a request, or 0. */
static int rule_check(BlockNode *bn, uint64_t off, uint64_t len,
                      unsigned iotype)
{
    BlkdebugState *s = bn->opaque;

    for (guint i = 0; i < s->active->len; i++) {
        Rule *r = g_ptr_array_index(s->active, i);
        int err;

        if (!(r->iotypes & iotype)) {
            continue;
        }
        if (r->sector != -1
            && !((uint64_t)r->sector * 512 >= off
                 && (uint64_t)r->sector * 512 < off + MAX(len, 1))) {
            continue;
        }
        err = r->error;
        if (r->once) {
            g_ptr_array_remove_index(s->active, i);
            g_ptr_array_remove(s->rules, r);
        }
        return -err;
    }
    return 0;
}

static void blkdebug_read(BlockNode *bn, uint64_t off, uint64_t len,
                          void *buf, BdrvCb *cb, void *opaque)
{
    int err = rule_check(bn, off, len, IOT_READ);

    if (err) {
        ioq_defer_int(cb, opaque, err);
        return;
    }
    bdrv_read(image(bn), off, len, buf, cb, opaque);
}

static void blkdebug_write(BlockNode *bn, uint64_t off, uint64_t len,
                           const void *buf, int flags, BdrvCb *cb,
                           void *opaque)
{
    int err = rule_check(bn, off, len, IOT_WRITE);

    if (err) {
        ioq_defer_int(cb, opaque, err);
        return;
    }
    bdrv_write(image(bn), off, len, buf, flags, cb, opaque);
}

static void blkdebug_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                                  int flags, BdrvCb *cb, void *opaque)
{
    uint32_t align = MAX(bn->bl.request_alignment,
                         bn->bl.pwrite_zeroes_alignment);
    int err;

    /* as QEMU's: what is shorter than the preferred alignment goes down
     * as data (the request layer's fallback), to exercise it */
    if (len < align) {
        ioq_defer_int(cb, opaque, -ENOTSUP);
        return;
    }
    err = rule_check(bn, off, len, IOT_WRITE_ZEROES);
    if (err) {
        ioq_defer_int(cb, opaque, err);
        return;
    }
    bdrv_write_zeroes(image(bn), off, len, flags, cb, opaque);
}

static void blkdebug_discard(BlockNode *bn, uint64_t off, uint64_t len,
                             BdrvCb *cb, void *opaque)
{
    int err;

    /* declined, as QEMU's blkdebug declines them: discard is advice */
    if (len < bn->bl.request_alignment) {
        ioq_defer_int(cb, opaque, -ENOTSUP);
        return;
    }
    err = rule_check(bn, off, len, IOT_DISCARD);
    if (err) {
        ioq_defer_int(cb, opaque, err);
        return;
    }
    bdrv_discard(image(bn), off, len, cb, opaque);
}

static void blkdebug_flush(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    /* the generic layer flushes the image child after this */
    ioq_defer_int(cb, opaque, rule_check(bn, 0, 0, IOT_FLUSH));
}

typedef struct {
    BdrvStatusCb *cb;
    void *opaque;
    int err;
} StatusErr;

static void status_err_cb(void *opaque, ssize_t ret)
{
    StatusErr *e = opaque;

    e->cb(e->opaque, e->err, 0, 0);
    g_free(e);
}

static void blkdebug_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                                  BdrvStatusCb *cb, void *opaque)
{
    int err = rule_check(bn, off, len, IOT_BLOCK_STATUS);

    if (err) {
        StatusErr *e = g_new0(StatusErr, 1);

        e->cb = cb;
        e->opaque = opaque;
        e->err = err;
        ioq_defer(status_err_cb, e, 0);
        return;
    }
    bdrv_block_status(image(bn), off, len, cb, opaque);
}

/* The control path's I/O meets the rules too, as all I/O does in QEMU
 * (opening an image, growing its tables). */
static int blkdebug_pread_sync(BlockNode *bn, uint64_t off, uint64_t len,
                               void *buf)
{
    int err = rule_check(bn, off, len, IOT_READ);

    return err ? err : bdrv_pread_sync(image(bn), off, len, buf);
}

static int blkdebug_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                                const void *buf)
{
    int err;

    /* QEMU's request layer raises these around every write, the control
     * path's too (no breakpoint can hold a synchronous one) */
    bdrv_debug_event(bn, BLKDBG_PWRITEV, NULL, NULL);
    err = rule_check(bn, off, len, IOT_WRITE);
    if (!err) {
        err = bdrv_pwrite_sync(image(bn), off, len, buf);
    }
    bdrv_debug_event(bn, BLKDBG_PWRITEV_DONE, NULL, NULL);
    return err;
}

static int blkdebug_flush_sync(BlockNode *bn)
{
    int err = rule_check(bn, 0, 0, IOT_FLUSH);

    return err ? err : bdrv_flush_sync(image(bn));
}

/* take-child-perms / unshare-child-perms: QEMU's test knobs */
static void blkdebug_child_perm(const BlockNode *bn, unsigned *perm,
                                unsigned *shared)
{
    *perm |= bdrv_perm_names_mask(json_object_get(bn->options,
                                                  "take-child-perms"));
    *shared &= ~bdrv_perm_names_mask(json_object_get(bn->options,
                                                     "unshare-child-perms"));
}

/* ---- breakpoints (qemu-io, through bdrv_debug_*()) ------------------- */

static int blkdebug_breakpoint(BlockNode *b, const char *event,
                               const char *tag)
{
    BlkdebugState *s;
    Rule *r;
    int ev;

    ev = bdrv_debug_event_by_name(event);
    if (ev < 0) {
        return -ENOENT;
    }
    s = b->opaque;
    r = g_new0(Rule, 1);
    r->event = ev;
    r->action = ACT_SUSPEND;
    r->tag = g_strdup(tag);
    g_ptr_array_insert(s->rules, 0, r);
    return 0;
}

static int resume_tag(BlkdebugState *s, const char *tag, bool all)
{
    int n = 0;

    for (guint i = 0; i < s->held->len; i++) {
        Held *h = g_ptr_array_index(s->held, i);

        if (strcmp(h->tag, tag)) {
            continue;
        }
        g_ptr_array_remove_index(s->held, i);
        i--;
        ioq_defer_int(h->cb, h->opaque, 0);
        g_free(h->tag);
        g_free(h);
        n++;
        if (!all) {
            break;
        }
    }
    return n;
}

static int blkdebug_resume(BlockNode *b, const char *tag)
{
    return resume_tag(b->opaque, tag, false) ? 0 : -ENOENT;
}

static int blkdebug_remove_breakpoint(BlockNode *b, const char *tag)
{
    BlkdebugState *s = b->opaque;
    int found = 0;

    for (guint i = 0; i < s->rules->len; i++) {
        Rule *r = g_ptr_array_index(s->rules, i);

        if (r->action == ACT_SUSPEND && !strcmp(r->tag, tag)) {
            g_ptr_array_remove_index(s->rules, i);
            i--;
            found++;
        }
    }
    found += resume_tag(s, tag, true);
    return found ? 0 : -ENOENT;
}

static bool blkdebug_is_suspended(BlockNode *b, const char *tag)
{
    BlkdebugState *s = b->opaque;

    for (guint i = 0; i < s->held->len; i++) {
        if (!strcmp(((Held *)g_ptr_array_index(s->held, i))->tag, tag)) {
            return true;
        }
    }
    return false;
}

const BlockDriver bdrv_blkdebug = {
    .name = "blkdebug",
    .instance_size = sizeof(BlkdebugState),
    .is_filter = true,
    .child_name = "image",
    .open = blkdebug_open,
    .close = blkdebug_close,
    .read = blkdebug_read,
    .write = blkdebug_write,
    .write_zeroes = blkdebug_write_zeroes,
    .discard = blkdebug_discard,
    .flush = blkdebug_flush,
    .block_status = blkdebug_block_status,
    .truncate = bdrv_filter_truncate,
    .refresh_limits = blkdebug_refresh_limits,
    .plain_filename = blkdebug_plain_filename,
    .child_perm = blkdebug_child_perm,
    /* no allocated_size: QEMU's blkdebug is a protocol there, and shows
     * no actual-size */
    .get_info = bdrv_filter_get_info,
    .dirty_flag = bdrv_filter_dirty_flag,
    .debug_event = blkdebug_event,
    .debug_breakpoint = blkdebug_breakpoint,
    .debug_remove_breakpoint = blkdebug_remove_breakpoint,
    .debug_resume = blkdebug_resume,
    .debug_is_suspended = blkdebug_is_suspended,
    .pread_sync = blkdebug_pread_sync,
    .pwrite_sync = blkdebug_pwrite_sync,
    .flush_sync = blkdebug_flush_sync,
    .discard_sync = bdrv_filter_discard_sync,
};
