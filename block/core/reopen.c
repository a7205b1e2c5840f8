/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reopening nodes with new options: blockdev-reopen's list, and the
 * read-only switches jobs and snapshots make (reopen-quiesce.c drains
 * and flushes before them).
 *
 * QEMU 7.2's rules, which a management tool relies on:
 *
 * - An entry gives a node's options anew: a member left out means its
 *   default (detect-zeroes goes back to off), except discard, which a
 *   node named in the list keeps.  A driver applies what it can change
 *   (file: cache.direct by a new descriptor; raw: offset and size;
 *   qcow2: its cache sizes); any other option must keep its value
 *   ("Cannot change the option 'X'"), and one that was given when the
 *   node was opened may not be left out unless the driver resets it
 *   ("Option 'X' cannot be reset to its default value").
 * - Children a node opened for itself (inline, or from its image header)
 *   are reopened with it: with the options given inline under their
 *   name, or, when the entry names the same child, with their own, and
 *   in both cases with what they inherit (read-only, cache.*) from the
 *   parent's new options.  "file" and "backing" naming another node
 *   switch the child.
 * - The list is all or nothing.  Every node is drained and flushed;
 *   every entry is prepared (options checked, new descriptors opened,
 *   nothing visible changed); then the new flags and children are put in
 *   place and the permissions taken, which may fail and is undone; only
 *   then does each driver commit, which cannot fail.
 *
 * Options are compared as QEMU compares them: flattened ("cache.direct",
 * "inject-error.0.event"), and when several are wrong the one reported
 * is the first in the order QEMU's option dictionary iterates (its
 * hash), so the message names the same option.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"

/* Options every node takes; the reopen itself applies them. */
static const char *const generic_opts[] = {
    "read-only", "auto-read-only", "cache.direct", "cache.no-flush",
    "discard", "detect-zeroes", NULL
};

/* Options that may be left out of any entry (QEMU's common options). */
static const char *const common_resettable[] = {
    "node-name", "discard", "cache.direct", "cache.no-flush", "read-only",
    "auto-read-only", "detect-zeroes", NULL
};

typedef struct ReopenEntry {
    BdrvReopenState rs;
    json_t *opts;               /* flattened, as the node gets them */
    json_t *explicit_opts;      /* flattened, what the entry said itself */
    json_t *old;                /* the node's current options, flattened */
    json_t *given;              /* nested options to keep, NULL: as they are */
    bool keep_old;
    bool root;                  /* named in the list, not inherited */
    bool backing_missing;
    bool new_unmap;             /* discard=unmap after the reopen */
    BdrvDetectZeroes detect_zeroes;
    bool prepared;
    bool applied;

    /* children to switch: the new one (may be NULL for backing) */
    bool set_backing;
    BlockNode *new_backing;
    bool set_file;
    BlockNode *new_file;

    /* what apply changed, for undo and commit */
    bool old_read_only;
    bool old_direct;
    bool old_no_flush;
    bool old_unmap;
    BdrvDetectZeroes old_dz;
    BlockNode *old_backing;     /* referenced while switched away */
    const BlockNode *old_backing_inh;
    BlockNode *old_file;
    const BlockNode *old_file_inh;
    uint64_t old_size;
} ReopenEntry;

/* ---- options as QEMU sees them ---------------------------------------- */

static void flatten_into(json_t *dst, const char *prefix, json_t *v)
{
    /* empty objects and arrays stay values, as in QEMU's flattening */
    if (json_is_object(v) && json_object_size(v)) {
        const char *k;
        json_t *m;

        json_object_foreach(v, k, m) {
            g_autofree char *key = prefix ? g_strdup_printf("%s.%s", prefix,
                                                            k)
                                          : g_strdup(k);

            flatten_into(dst, key, m);
        }
    } else if (json_is_array(v) && json_array_size(v)) {
        size_t i;
        json_t *m;

        json_array_foreach(v, i, m) {
            g_autofree char *key = g_strdup_printf("%s.%zu", prefix, i);

            flatten_into(dst, key, m);
        }
    } else if (prefix) {
        json_object_set(dst, prefix, v);
    }
}

static json_t *flatten(const json_t *o)
{
    json_t *flat = json_object();

    flatten_into(flat, NULL, (json_t *)o);
    return flat;
}

/* Does @key name @name or one of its members ("name.x")? */
static bool covered_by(const char *key, const char *name)
{
    size_t n = strlen(name);

    return !strncmp(key, name, n) && (key[n] == '\0' || key[n] == '.');
}

static bool covered(const char *key, const char *const *names)
{
    for (; names && *names; names++) {
        if (covered_by(key, *names)) {
            return true;
        }
    }
    return false;
}

/* Children's options and references are not the node's own. */
static bool child_key(const char *key)
{
    static const char *const roles[] = { "file", "backing", "image", NULL };

    return covered(key, roles);
}

/*
 * The node's current options, flattened, without its children's: as it
 * was opened, or as its last reopen left them (with what it inherited
 * then, as QEMU keeps them).
 */
static json_t *current_options(const BlockNode *bn)
{
    json_t *flat = bn->reopened_opts ? json_deep_copy(bn->reopened_opts)
                                     : flatten(bn->options);
    void *tmp;
    const char *k;
    json_t *v;

    json_object_foreach_safe(flat, tmp, k, v) {
        if (child_key(k)) {
            json_object_del(flat, k);
        }
    }
    /* a force-share the node inherited is among its options in QEMU */
    if (bn->force_share && !json_object_get(flat, "force-share")) {
        json_object_set_new(flat, "force-share", json_true());
    }
    return flat;
}

/* The bucket QEMU's option dictionary puts @key in; it iterates them. */
static guint qdict_bucket(const char *key)
{
    guint32 v = 0x238F13AFu * (guint32)strlen(key);

    for (size_t i = 0; key[i]; i++) {
        v += (guint32)(unsigned char)key[i] << (i * 5 % 24);
    }
    return (1103515243u * v + 12345u) % 512;
}

typedef struct {
    const char *key;
    guint bucket;
    guint pos;
} OrderedKey;

static gint ordered_key_cmp(gconstpointer a, gconstpointer b)
{
    const OrderedKey *x = a;
    const OrderedKey *y = b;

    if (x->bucket != y->bucket) {
        return x->bucket < y->bucket ? -1 : 1;
    }
    /* a bucket lists its newest key first */
    return x->pos > y->pos ? -1 : x->pos < y->pos;
}

/* The keys of @flat in QEMU's iteration order (borrowed strings). */
static GArray *qemu_order(const json_t *flat)
{
    GArray *keys = g_array_new(FALSE, FALSE, sizeof(OrderedKey));
    const char *k;
    json_t *v;
    guint pos = 0;

    json_object_foreach((json_t *)flat, k, v) {
        OrderedKey o = { k, qdict_bucket(k), pos++ };

        g_array_append_val(keys, o);
    }
    g_array_sort(keys, ordered_key_cmp);
    return keys;
}

/* Add what @from has and @to lacks. */
static void join(json_t *to, const json_t *from)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)from, k, v) {
        if (!json_object_get(to, k)) {
            json_object_set(to, k, v);
        }
    }
}

static void copy_default(json_t *to, const json_t *from, const char *key)
{
    json_t *v = json_object_get(from, key);

    if (v && !json_object_get(to, key)) {
        json_object_set(to, key, v);
    }
}

/* Move the "@prefix." members of @from into a new object, unprefixed. */
static json_t *extract(json_t *from, const char *prefix)
{
    json_t *out = json_object();
    size_t n = strlen(prefix);
    void *tmp;
    const char *k;
    json_t *v;

    json_object_foreach_safe(from, tmp, k, v) {
        if (!strncmp(k, prefix, n) && k[n] == '.') {
            json_object_set(out, k + n + 1, v);
            json_object_del(from, k);
        }
    }
    return out;
}

/* A boolean option; -drive spells them "on"/"off". */
static bool opt_bool(const json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);

    if (json_is_boolean(v)) {
        return json_is_true(v);
    }
    if (json_is_string(v)) {
        return !strcmp(json_string_value(v), "on")
            || !strcmp(json_string_value(v), "true");
    }
    return dflt;
}

const char *bdrv_reopen_changed(const BdrvReopenState *rs,
                                const char *const *names)
{
    for (; *names; names++) {
        const json_t *sides[] = { rs->opts, rs->old_opts };

        for (size_t i = 0; i < G_N_ELEMENTS(sides); i++) {
            const char *k;
            json_t *v;

            json_object_foreach((json_t *)sides[i], k, v) {
                if (covered_by(k, *names)
                    && !json_equal(v, json_object_get(sides[!i], k))) {
                    return *names;
                }
            }
        }
    }
    return NULL;
}

/* ---- the queue ----------------------------------------------------------- */

static void entry_free(gpointer p)
{
    ReopenEntry *e = p;

    json_decref(e->opts);
    json_decref(e->explicit_opts);
    json_decref(e->old);
    json_decref(e->given);
    bdrv_unref(e->rs.bn);
    g_free(e);
}

static ReopenEntry *queue_find(GPtrArray *q, const BlockNode *bn)
{
    for (guint i = 0; i < q->len; i++) {
        ReopenEntry *e = g_ptr_array_index(q, i);

        if (e->rs.bn == bn) {
            return e;
        }
    }
    return NULL;
}

/*
 * What the node has now, as options: its own and the state that the
 * generic ones left (QEMU keeps both in its options).
 */
static json_t *effective_options(const BlockNode *bn)
{
    json_t *o = current_options(bn);

    /* what a reopen left is all QEMU keeps; open adds the state */
    if (bn->reopened_opts) {
        return o;
    }

    if (!json_object_get(o, "read-only")) {
        json_object_set_new(o, "read-only", json_boolean(bn->read_only));
    }
    if (!json_object_get(o, "auto-read-only")) {
        json_object_set_new(o, "auto-read-only", json_false());
    }
    if (!json_object_get(o, "cache.direct")) {
        json_object_set_new(o, "cache.direct",
                            json_boolean(bn->cache_direct));
    }
    if (!json_object_get(o, "cache.no-flush")) {
        json_object_set_new(o, "cache.no-flush",
                            json_boolean(bn->cache_no_flush));
    }
    if (!json_object_get(o, "discard")) {
        json_object_set_new(o, "discard", qjson_str(bn->discard_unmap
                                                    ? "unmap" : "ignore"));
    }
    return o;
}

/*
 * What a child in @role takes from its parent's new options, as when
 * the parent opened it (graph.c's open_node): read-only (a backing
 * image: read-only unless said), cache.*, and discard.
 */
static void inherit(json_t *opts, const ReopenEntry *parent,
                    const char *role)
{
    bool backing = !strcmp(role, "backing");

    copy_default(opts, parent->opts, "cache.direct");
    copy_default(opts, parent->opts, "cache.no-flush");
    copy_default(opts, parent->opts, "force-share");
    if (backing) {
        if (!json_object_get(opts, "read-only")) {
            json_object_set_new(opts, "read-only", json_true());
        }
        if (!json_object_get(opts, "auto-read-only")) {
            json_object_set_new(opts, "auto-read-only", json_false());
        }
    } else {
        copy_default(opts, parent->opts, "read-only");
        copy_default(opts, parent->opts, "auto-read-only");
    }
    if (!json_object_get(opts, "discard")) {
        json_object_set_new(opts, "discard", qjson_str(
                                !backing && parent->new_unmap ? "unmap"
                                                              : "ignore"));
    }
}

/*
 * Queue @bn with the options @flat (flattened, stolen) and, when they
 * are to replace its stored ones, @given (nested, borrowed); then the
 * children it opened for itself.  QEMU's bdrv_reopen_queue_child().
 */
static void queue_add(GPtrArray *q, BlockNode *bn, const json_t *given,
                      json_t *flat, bool keep_old, ReopenEntry *parent,
                      const char *role)
{
    ReopenEntry *e = queue_find(q, bn);
    BdrvChild *children[] = { bn->backing, bn->file };

    if (e) {
        /* named twice: what the first entry said fills in */
        join(flat, e->explicit_opts);
        json_decref(e->opts);
        json_decref(e->explicit_opts);
        json_decref(e->given);
        e->given = NULL;
    } else {
        e = g_new0(ReopenEntry, 1);
        e->rs.bn = bn;
        bdrv_ref(bn);
        e->old = current_options(bn);
        e->root = !parent;
        g_ptr_array_add(q, e);
    }
    e->explicit_opts = json_deep_copy(flat);
    if (parent) {
        inherit(flat, parent, role);
    }
    if (keep_old) {
        g_autoptr(json_t) eff = effective_options(bn);

        join(flat, eff);
    }
    e->opts = flat;
    e->keep_old = keep_old;
    e->given = given ? json_deep_copy(given) : NULL;
    /* omitted, a child's backing stays; a node named keeps its discard */
    e->backing_missing = !keep_old && !json_object_get(flat, "backing")
        && !json_object_get(flat, "backing.driver");
    e->new_unmap = json_object_get(flat, "discard")
        ? !strcmp(qjson_get_str(flat, "discard"), "unmap")
        : bn->discard_unmap;

    for (size_t i = 0; i < G_N_ELEMENTS(children); i++) {
        BdrvChild *c = children[i];
        const json_t *ref;
        const json_t *cgiven = NULL;
        json_t *cflat;
        bool ckeep = keep_old;

        if (!c || c->child->inherits_from != bn) {
            continue;
        }
        ref = json_object_get(flat, c->name);
        if (ref) {
            /* named: the same child keeps its options, another goes */
            if (!json_is_string(ref)
                || strcmp(json_string_value(ref), c->child->node_name)) {
                continue;
            }
            ckeep = true;
            cflat = json_object();
        } else {
            cflat = extract(flat, c->name);
            /* the parent no longer holds options for this child */
            json_decref(extract(e->explicit_opts, c->name));
            cgiven = given ? json_object_get(given, c->name) : NULL;
        }
        queue_add(q, c->child, ckeep ? NULL : cgiven, cflat, ckeep, e,
                  c->name);
    }
}

/* ---- prepare ------------------------------------------------------------- */

/* "backing" or "file" in @left: which node it names, checked. */
static bool parse_child(ReopenEntry *e, json_t *left, bool backing,
                        Error **errp)
{
    BlockNode *bn = e->rs.bn;
    const char *name = backing ? "backing" : "file";
    json_t *v = json_object_get(left, name);
    BlockNode *old = backing ? bdrv_backing(bn) : bdrv_file_child(bn);
    BlockNode *nb = NULL;

    if (!v) {
        return true;
    }
    if (json_is_string(v)) {
        nb = bdrv_find_node(json_string_value(v));
        if (!nb) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'",
                       json_string_value(v));
            return false;
        }
        if (bdrv_has_descendant(nb, bn)) {
            error_setg(errp, "Making '%s' a %s child of '%s' would create "
                       "a cycle", json_string_value(v), name, bn->node_name);
            return false;
        }
    }
    json_object_del(left, name);
    if (old == nb) {
        return true;
    }
    if (backing && !bn->drv->is_filter && !bn->drv->has_backing) {
        error_setg(errp, "Driver '%s' of node '%s' does not support backing "
                   "files", bn->drv->name, bn->node_name);
        return false;
    }
    if (backing) {
        e->set_backing = true;
        e->new_backing = nb;
    } else {
        e->set_file = true;
        e->new_file = nb;
    }
    return true;
}

/* QEMU's bdrv_reopen_prepare(), in its order. */
static bool entry_prepare(ReopenEntry *e, Error **errp)
{
    BlockNode *bn = e->rs.bn;
    const BlockDriver *drv = bn->drv;
    g_autoptr(json_t) left = json_deep_copy(e->opts);
    g_autoptr(GArray) order = NULL;
    const char *dz = qjson_get_str_or(e->opts, "detect-zeroes", "off");
    void *tmp;
    const char *k;
    json_t *v;

    e->rs.opts = e->opts;
    e->rs.old_opts = e->old;
    e->rs.read_only = opt_bool(e->opts, "read-only", false);
    e->rs.cache_direct = opt_bool(e->opts, "cache.direct", false);
    e->rs.cache_no_flush = opt_bool(e->opts, "cache.no-flush", false);
    e->rs.discard_unmap = e->new_unmap;
    e->detect_zeroes = !strcmp(dz, "on") ? BDRV_DETECT_ZEROES_ON
        : !strcmp(dz, "unmap") ? BDRV_DETECT_ZEROES_UNMAP
                               : BDRV_DETECT_ZEROES_OFF;
    if (e->detect_zeroes == BDRV_DETECT_ZEROES_UNMAP && !e->new_unmap) {
        error_setg(errp, "setting detect-zeroes to unmap is not allowed "
                   "without setting discard operation to unmap");
        return false;
    }
    json_object_foreach_safe(left, tmp, k, v) {
        if (covered(k, generic_opts)) {
            json_object_del(left, k);
        }
    }
    /* QEMU's bdrv_can_set_read_only(), then a driver without reopen */
    if (e->rs.read_only && bn->copy_on_read) {
        error_setg(errp, "Can't set node '%s' to r/o with copy-on-read "
                   "enabled", bdrv_device_or_node_name(bn));
        return false;
    }
    if (drv->no_reopen) {
        error_setg(errp, "Block format '%s' used by node '%s' does not "
                   "support reopening files", drv->name,
                   bdrv_device_or_node_name(bn));
        return false;
    }

    order = qemu_order(e->old);
    for (guint i = 0; i < order->len; i++) {
        const char *key = g_array_index(order, OrderedKey, i).key;

        if (!json_object_get(e->opts, key)
            && !covered(key, common_resettable)
            && !covered(key, drv->reopen_resettable)) {
            error_setg(errp, "Option '%s' cannot be reset to its default "
                       "value", key);
            return false;
        }
    }

    if (drv->reopen_prepare && !drv->reopen_prepare(&e->rs, errp)) {
        return false;
    }
    e->prepared = true;
    json_object_foreach_safe(left, tmp, k, v) {
        if (covered(k, drv->reopen_opts)) {
            json_object_del(left, k);
        }
    }

    if (drv->has_backing && e->backing_missing
        && (bdrv_backing(bn) || bn->backing_file)) {
        error_setg(errp, "backing is missing for '%s'", bn->node_name);
        goto fail;
    }
    if (!parse_child(e, left, true, errp)
        || !parse_child(e, left, false, errp)) {
        goto fail;
    }

    g_array_unref(order);
    order = qemu_order(left);
    for (guint i = 0; i < order->len; i++) {
        const char *key = g_array_index(order, OrderedKey, i).key;
        json_t *nv = json_object_get(left, key);
        BdrvChild *c = !strcmp(key, "backing") ? bn->backing
            : !strcmp(key, "file") || !strcmp(key, "image") ? bn->file
                                                            : NULL;

        /* naming the child it has is no change */
        if (json_is_string(nv) && c
            && !strcmp(c->child->node_name, json_string_value(nv))) {
            continue;
        }
        /* QEMU 7.2 refuses force-share in an entry, even unchanged */
        if (!json_equal(nv, json_object_get(e->old, key))
            || (!strcmp(key, "force-share") && e->explicit_opts
                && json_object_get(e->explicit_opts, key))) {
            error_setg(errp, "Cannot change the option '%s'", key);
            goto fail;
        }
    }
    return true;

fail:
    if (drv->reopen_abort) {
        drv->reopen_abort(&e->rs);
    }
    e->prepared = false;
    return false;
}

/* ---- apply, undo, commit ------------------------------------------------- */

static bool inherits_recursive(const BlockNode *child,
                               const BlockNode *parent)
{
    for (const BlockNode *n = child; n; n = n->inherits_from) {
        if (n == parent) {
            return true;
        }
    }
    return false;
}

/* Put @nb in place of @bn's child *@edge, keeping the old one aside. */
static void switch_child(BlockNode *bn, BdrvChild **edge, const char *name,
                         BlockNode *nb, BlockNode **old,
                         const BlockNode **old_inh)
{
    BdrvChild *c = *edge;

    *old = c ? c->child : NULL;
    if (c) {
        *old_inh = c->child->inherits_from;
        bdrv_ref(c->child);
        *edge = NULL;
        bdrv_detach_child(c);
    }
    if (nb) {
        bool own = inherits_recursive(nb, bn);

        *edge = bdrv_attach_child(bn, nb, name);
        if (own) {
            nb->inherits_from = bn;
        }
    }
    bdrv_refresh_limits(bn);
}

static void unswitch_child(BlockNode *bn, BdrvChild **edge,
                           const char *name, BlockNode *old,
                           const BlockNode *old_inh)
{
    if (*edge) {
        BdrvChild *c = *edge;

        *edge = NULL;
        bdrv_detach_child(c);
    }
    if (old) {
        *edge = bdrv_attach_child(bn, old, name);
        old->inherits_from = old_inh;
        bdrv_unref(old);
    }
    bdrv_refresh_limits(bn);
}

static void entry_apply(ReopenEntry *e)
{
    BlockNode *bn = e->rs.bn;

    e->old_read_only = bn->read_only;
    e->old_direct = bn->cache_direct;
    e->old_no_flush = bn->cache_no_flush;
    e->old_unmap = bn->discard_unmap;
    e->old_dz = bn->detect_zeroes;
    e->old_size = bn->total_size;
    bn->read_only = e->rs.read_only;
    bn->cache_direct = e->rs.cache_direct;
    bn->cache_no_flush = e->rs.cache_no_flush;
    bn->discard_unmap = e->rs.discard_unmap;
    bn->detect_zeroes = e->detect_zeroes;
    if (e->set_backing) {
        switch_child(bn, &bn->backing, "backing", e->new_backing,
                     &e->old_backing, &e->old_backing_inh);
    }
    if (e->set_file) {
        switch_child(bn, &bn->file, bn->drv->is_filter ? "image" : "file",
                     e->new_file, &e->old_file, &e->old_file_inh);
    }
    e->applied = true;
}

static void entry_unapply(ReopenEntry *e)
{
    BlockNode *bn = e->rs.bn;

    if (!e->applied) {
        return;
    }
    if (e->set_file) {
        unswitch_child(bn, &bn->file, bn->drv->is_filter ? "image" : "file",
                       e->old_file, e->old_file_inh);
    }
    if (e->set_backing) {
        unswitch_child(bn, &bn->backing, "backing", e->old_backing,
                       e->old_backing_inh);
    }
    bn->read_only = e->old_read_only;
    bn->cache_direct = e->old_direct;
    bn->cache_no_flush = e->old_no_flush;
    bn->discard_unmap = e->old_unmap;
    bn->detect_zeroes = e->old_dz;
    e->applied = false;
}

static void add_unique(GPtrArray *set, BlockNode *bn)
{
    if (bn && !g_ptr_array_find(set, bn, NULL)) {
        g_ptr_array_add(set, bn);
    }
}

/* Every node whose users change: the entries and their children. */
static GPtrArray *affected(GPtrArray *q)
{
    GPtrArray *set = g_ptr_array_new();

    for (guint i = 0; i < q->len; i++) {
        ReopenEntry *e = g_ptr_array_index(q, i);

        add_unique(set, e->rs.bn);
        add_unique(set, bdrv_backing(e->rs.bn));
        add_unique(set, bdrv_file_child(e->rs.bn));
        add_unique(set, e->old_backing);
        add_unique(set, e->old_file);
    }
    return set;
}

/* Was @bn read-only before this reopen? */
static bool was_read_only(GPtrArray *q, const BlockNode *bn)
{
    ReopenEntry *e = queue_find(q, bn);

    return e && e->applied ? e->old_read_only : bn->read_only;
}

/* A read-only node must have no writer; then the image locks follow. */
static bool check_perms(GPtrArray *q, GPtrArray *set, Error **errp)
{
    for (guint i = 0; i < set->len; i++) {
        BlockNode *n = g_ptr_array_index(set, i);

        if (n->read_only && bdrv_has_writers(n)) {
            if (was_read_only(q, n)) {
                error_setg(errp, "Block node is read-only");
            } else {
                error_setg(errp, "Read-only block node '%s' cannot support "
                           "read-write users", n->node_name);
            }
            return false;
        }
    }
    for (guint i = 0; i < set->len; i++) {
        if (!bdrv_refresh_perms(g_ptr_array_index(set, i), errp)) {
            return false;
        }
    }
    return true;
}

/* A node's name shows its children's: refresh it and its parents'. */
static void refresh_filenames_up(BlockNode *bn, int depth)
{
    bdrv_refresh_filename(bn);
    for (guint i = 0; depth < 64 && i < bn->parents->len; i++) {
        BdrvChild *c = g_ptr_array_index(bn->parents, i);

        if (c->parent && c->parent->refcnt > 0) {
            refresh_filenames_up(c->parent, depth + 1);
        }
    }
}

static void entry_commit(ReopenEntry *e)
{
    BlockNode *bn = e->rs.bn;

    if (e->prepared && bn->drv->reopen_commit) {
        bn->drv->reopen_commit(&e->rs);
    }
    if (e->given) {
        json_decref(bn->options);
        bn->options = json_deep_copy(e->given);
    }
    json_decref(bn->reopened_opts);
    bn->reopened_opts = json_deep_copy(e->opts);
    if (e->old_backing) {
        bdrv_unref(e->old_backing);
        e->old_backing = NULL;
    }
    if (e->old_file) {
        bdrv_unref(e->old_file);
        e->old_file = NULL;
    }
    if (bn->total_size != e->old_size) {
        dbitmap_node_resized(bn);
    }
}

static void queue_abort(GPtrArray *q)
{
    for (guint i = q->len; i-- > 0;) {
        ReopenEntry *e = g_ptr_array_index(q, i);

        if (e->prepared && e->rs.bn->drv->reopen_abort) {
            e->rs.bn->drv->reopen_abort(&e->rs);
        }
        e->prepared = false;
    }
}

/* Reopen every entry of @q, or none (main loop; the nodes are idle). */
static bool queue_run(GPtrArray *q, Error **errp)
{
    g_autoptr(GPtrArray) set = NULL;

    for (guint i = 0; i < q->len; i++) {
        if (!entry_prepare(g_ptr_array_index(q, i), errp)) {
            queue_abort(q);
            return false;
        }
    }
    for (guint i = 0; i < q->len; i++) {
        entry_apply(g_ptr_array_index(q, i));
    }
    set = affected(q);
    if (!check_perms(q, set, errp)) {
        for (guint i = q->len; i-- > 0;) {
            entry_unapply(g_ptr_array_index(q, i));
        }
        /* fewer or the same locks as before: cannot fail */
        for (guint i = 0; i < set->len; i++) {
            bdrv_refresh_perms(g_ptr_array_index(set, i), NULL);
        }
        queue_abort(q);
        return false;
    }
    /* children first: a format's commit may write through its file */
    for (guint i = q->len; i-- > 0;) {
        entry_commit(g_ptr_array_index(q, i));
    }
    for (guint i = 0; i < q->len; i++) {
        refresh_filenames_up(((ReopenEntry *)g_ptr_array_index(q, i))->rs.bn,
                             0);
    }
    for (guint i = q->len; i-- > 0;) {
        ReopenEntry *e = g_ptr_array_index(q, i);

        if (e->prepared && e->rs.bn->drv->reopen_post) {
            e->rs.bn->drv->reopen_post(&e->rs);
        }
    }
    return true;
}

bool bdrv_reopen_read_only(BlockNode *bn, bool read_only, Error **errp)
{
    g_autoptr(GPtrArray) q = NULL;

    if (bn->read_only == read_only) {
        return true;
    }
    q = g_ptr_array_new_with_free_func(entry_free);
    queue_add(q, bn, NULL, json_pack("{s:b}", "read-only", read_only), true,
              NULL, NULL);
    return queue_run(q, errp);
}

bool bdrv_reopen_list(const json_t *list, Error **errp)
{
    g_autoptr(GPtrArray) q = g_ptr_array_new_with_free_func(entry_free);
    size_t i;
    json_t *o;

    json_array_foreach(list, i, o) {
        const char *name = qjson_get_str(o, "node-name");
        BlockNode *bn = bdrv_find_node(name);

        if (!bn) {
            error_setg(errp, "Failed to find node with node-name='%s'",
                       name);
            return false;
        }
        queue_add(q, bn, o, flatten(o), false, NULL, NULL);
    }
    return queue_run(q, errp);
}
