/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The node graph.
 *
 * Nodes are opened from BlockdevOptions.  A node holds references on its
 * children (BdrvChild edges named "file", "backing", "image"); backends
 * and jobs hold references on the nodes they use; nodes added by the
 * monitor carry one more reference that blockdev-del drops.  When the
 * last reference goes, the node leaves the name registry at once (so
 * the name can be reused), then is drained, flushed and closed, and
 * only then releases its children: metadata reaches the file before the
 * file is closed.
 *
 * Options a child inherits when it is opened inline (QEMU's rules):
 * read-only, cache.direct, cache.no-flush and discard for "file"
 * children; cache.* for backing children, which are always read-only;
 * force-share for both.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"

#define NODE_NAME_MAX 31
#define MAX_BACKING_DEPTH 256

typedef struct {
    bool read_only;
    bool cache_direct;
    bool no_flush;
    bool discard_unmap;
    bool force_share;
    int depth;
    GPtrArray *chain_files;     /* filenames being opened, for loops */
} Inherit;

typedef struct {
    BdrvCb *cb;
    void *opaque;
} CloseWaiter;

static GPtrArray *nodes;
static unsigned auto_name_counter;

static const BlockDriver *const drivers[] = {
    &bdrv_file, &bdrv_raw, &bdrv_qcow2, &bdrv_null_co, &bdrv_null_aio,
    &bdrv_blkdebug, &bdrv_cor, &bdrv_throttle, &bdrv_nbd,
};

bool bdrv_init(Error **errp)
{
    if (!nodes) {
        nodes = g_ptr_array_new();
    }
    return ioq_init(errp);
}

/* drivers from above the core (bdrv_register_driver()) */
static const BlockDriver *registered[4];

void bdrv_register_driver(const BlockDriver *drv)
{
    for (size_t i = 0; i < G_N_ELEMENTS(registered); i++) {
        if (!registered[i] || registered[i] == drv) {
            registered[i] = drv;
            return;
        }
    }
    g_assert_not_reached();
}

const BlockDriver *bdrv_find_driver(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
        if (!strcmp(drivers[i]->name, name)) {
            return drivers[i];
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(registered) && registered[i]; i++) {
        if (!strcmp(registered[i]->name, name)) {
            return registered[i];
        }
    }
    return NULL;
}

BdrvChild *bdrv_other_child(const BlockNode *bn)
{
    return bn->drv->other_child ? bn->drv->other_child(bn) : NULL;
}

GPtrArray *bdrv_all_nodes(void)
{
    if (!nodes) {
        nodes = g_ptr_array_new();
    }
    return nodes;
}

BlockNode *bdrv_find_node(const char *name)
{
    for (guint i = 0; nodes && i < nodes->len; i++) {
        BlockNode *bn = g_ptr_array_index(nodes, i);

        if (!strcmp(bn->node_name, name)) {
            return bn;
        }
    }
    return NULL;
}

BlockNode *bdrv_lookup(const char *device, const char *node, Error **errp)
{
    if (device) {
        BlockBackend *blk = blk_by_name(device);

        if (blk) {
            if (!blk_root(blk)) {
                error_setg(errp, "Device '%s' has no medium", device);
                return NULL;
            }
            return blk_root(blk);
        }
    }
    if (node) {
        BlockNode *bn = bdrv_find_node(node);

        if (bn) {
            return bn;
        }
    }
    error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
               device ? device : "", node ? node : "");
    return NULL;
}

const char *bdrv_node_name(const BlockNode *bn)
{
    return bn->node_name;
}

const char *bdrv_device_or_node_name(const BlockNode *bn)
{
    GPtrArray *blks = blk_all();

    for (guint i = 0; i < blks->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blks, i);

        if (blk_root(blk) == bn && *blk_name(blk)) {
            return blk_name(blk);
        }
    }
    return bn->node_name;
}

const char *bdrv_driver_name(const BlockNode *bn)
{
    return bn->drv->name;
}

const char *bdrv_filename(const BlockNode *bn)
{
    return bn->filename ? bn->filename : "";
}

bool bdrv_is_read_only(const BlockNode *bn)
{
    return bn->read_only;
}

bool bdrv_is_inserted(BlockNode *bn)
{
    if (bn->drv->is_inserted && !bn->drv->is_inserted(bn)) {
        return false;
    }
    return (!bn->file || bdrv_is_inserted(bn->file->child))
        && (!bn->backing || bdrv_is_inserted(bn->backing->child));
}

uint64_t bdrv_length(const BlockNode *bn)
{
    return bn->total_size;
}

BlockNode *bdrv_backing(const BlockNode *bn)
{
    return bn->backing ? bn->backing->child : NULL;
}

BlockNode *bdrv_file_child(const BlockNode *bn)
{
    return bn->file ? bn->file->child : NULL;
}

BlockNode *bdrv_skip_filters(BlockNode *bn)
{
    while (bn && bn->drv->is_filter && bn->file) {
        bn = bn->file->child;
    }
    return bn;
}

const char *bdrv_backing_file(const BlockNode *bn)
{
    return bn->backing_file;
}

const char *bdrv_backing_format(const BlockNode *bn)
{
    return bn->backing_format;
}

void bdrv_ref(BlockNode *bn)
{
    bn->refcnt++;
}

BdrvChild *bdrv_attach_child(BlockNode *parent, BlockNode *child,
                             const char *name)
{
    BdrvChild *c = g_new0(BdrvChild, 1);

    c->name = g_strdup(name);
    c->parent = parent;
    c->child = child;
    bdrv_ref(child);
    g_ptr_array_add(child->parents, c);
    return c;
}

void bdrv_detach_child(BdrvChild *c)
{
    BlockNode *child = c->child;

    if (child->inherits_from == c->parent) {
        child->inherits_from = NULL;
    }
    g_ptr_array_remove(child->parents, c);
    g_free(c->name);
    g_free(c);
    /* the parent's needs go: only ever fewer locks, which cannot fail */
    bdrv_refresh_perms(child, NULL);
    bdrv_unref(child);
}

/* ---- permissions ----------------------------------------------------- */

bool bdrv_has_writers(const BlockNode *bn)
{
    unsigned perm, shared;

    bdrv_node_perm(bn, &perm, &shared);
    return perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED);
}

bool bdrv_has_descendant(const BlockNode *bn, const BlockNode *child)
{
    BdrvChild *o = bdrv_other_child(bn);

    return bn == child
        || (bn->file && bdrv_has_descendant(bn->file->child, child))
        || (bn->backing && bdrv_has_descendant(bn->backing->child, child))
        || (o && bdrv_has_descendant(o->child, child));
}

bool bdrv_refresh_perms(BlockNode *bn, Error **errp)
{
    unsigned perm, shared;

    bdrv_node_perm(bn, &perm, &shared);
    /*
     * QEMU's bdrv_node_refresh_perm(): no writer on a read-only node,
     * nor on an inactive one (bdrv_is_writable_after_reopen())
     */
    if ((perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED))
        && (bn->read_only || bn->inactive)) {
        error_setg(errp, "Block node is read-only");
        return false;
    }
    /* a caller that cannot fail (fewer users) is not asked */
    if (errp && !bdrv_parents_compatible(bn, errp)) {
        return false;
    }
    /* an inactive image holds no locks (QEMU's file-posix skips them) */
    if (bn->inactive) {
        perm = 0;
        shared = BLK_PERM_ALL;
    }
    if (bn->drv->set_perm && !bn->drv->set_perm(bn, perm, shared, errp)) {
        return false;
    }
    /* what the children are asked for follows from what @bn is asked */
    if (bn->file && !bdrv_refresh_perms(bn->file->child, errp)) {
        return false;
    }
    if (bdrv_other_child(bn)
        && !bdrv_refresh_perms(bdrv_other_child(bn)->child, errp)) {
        return false;
    }
    return !bn->backing || bdrv_refresh_perms(bn->backing->child, errp);
}

void bdrv_set_backing(BlockNode *bn, BlockNode *backing)
{
    BdrvChild *old = bn->backing;

    bn->backing = backing ? bdrv_attach_child(bn, backing, "backing") : NULL;
    if (old) {
        bdrv_detach_child(old);
    }
    bdrv_refresh_limits(bn);
    bdrv_refresh_filename(bn);
}

void bdrv_replace_node(BlockNode *from, BlockNode *to)
{
    GPtrArray *blks = blk_all();

    for (guint i = 0; i < blks->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blks, i);

        if (blk_root(blk) == from) {
            blk_set_root(blk, to);
        }
    }
    for (guint i = 0; i < from->parents->len; i++) {
        BdrvChild *c = g_ptr_array_index(from->parents, i);

        /*
         * a closing parent has left the graph already; an edge below
         * @to stays, or the graph would loop (QEMU's
         * should_update_child(): @to's own child edge, and a target
         * backed by the node a copy-before-write filter goes over)
         */
        if (c->parent && !bdrv_has_descendant(to, c->parent)
            && c->parent->refcnt > 0) {
            if (from->inherits_from == c->parent) {
                from->inherits_from = NULL;
            }
            bdrv_ref(to);
            g_ptr_array_add(to->parents, c);
            c->child = to;
            g_ptr_array_remove_index(from->parents, i);
            i--;
            bdrv_unref(from);
            bdrv_refresh_limits(c->parent);
        }
    }
}

static bool assign_node_name(BlockNode *bn, const char *name, Error **errp)
{
    if (!name) {
        bn->node_name = g_strdup_printf("#block%03u", ++auto_name_counter);
        bn->auto_named = true;
        return true;
    }
    if (!opts_id_wellformed(name)) {
        error_setg(errp, "Invalid node-name: '%s'", name);
        return false;
    }
    if (blk_by_name(name)) {
        error_setg(errp, "node-name=%s is conflicting with a device id",
                   name);
        return false;
    }
    if (bdrv_find_node(name)) {
        error_setg(errp, "Duplicate nodes with node-name='%s'", name);
        return false;
    }
    if (strlen(name) > NODE_NAME_MAX) {
        error_setg(errp, "Node name too long");
        return false;
    }
    bn->node_name = g_strdup(name);
    return true;
}

static BlockNode *open_node(const json_t *opts, const Inherit *inh,
                            bool monitor_owned, Error **errp);

/*
 * A child given as BlockdevRef: a node name or inline options.  *@own:
 * the parent opened it for itself: inline, or a node nobody else holds
 * that the caller opened just to hand it over (as qmpd's jobs and
 * snapshot-sync open an image's file, where QEMU opens it inline).
 */
static BlockNode *open_child(const json_t *ref, const Inherit *inh,
                             bool *own, Error **errp)
{
    if (json_is_string(ref)) {
        BlockNode *bn = bdrv_find_node(json_string_value(ref));

        if (!bn) {
            error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
                       json_string_value(ref), json_string_value(ref));
            return NULL;
        }
        *own = !bn->monitor_owned && bn->refcnt == 1 && !bn->parents->len
            && !bn->backend_users && !bn->inherits_from;
        bdrv_ref(bn);
        return bn;
    }
    *own = true;
    return open_node(ref, inh, false, errp);
}

const char *bdrv_probe_format(BlockNode *file)
{
    size_t len = MIN(4096, MAX(bdrv_length(file), 512));
    void *buf = ioq_buf_alloc(4096);
    const char *fmt = "raw";
    int best = 0;

    if (bdrv_length(file) >= 4 && bdrv_pread_sync(file, 0, len, buf) >= 0) {
        for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
            int score = drivers[i]->probe ? drivers[i]->probe(buf, len) : 0;

            if (score > best) {
                best = score;
                fmt = drivers[i]->name;
            }
        }
    }
    ioq_buf_free(buf);
    return fmt;
}

/* Open the backing chain recorded in the image header of @bn. */
/*
 * Open the backing image the header of @bn names.  @extra (may be NULL)
 * holds options for it given without a driver, as -drive's
 * backing.node-name=...: they are added to what the header implies.
 */
static bool open_default_backing(BlockNode *bn, const Inherit *inh,
                                 const json_t *extra, Error **errp)
{
    g_autofree char *full = bdrv_full_backing_filename(bn->filename,
                                                       bn->backing_file);
    g_autoptr(json_t) opts = NULL;
    Inherit child = *inh;
    BlockNode *b;
    const char *fmt = bn->backing_format;
    g_autofree char *json_name = NULL;  /* the driver a json: name gives */

    if (inh->depth >= MAX_BACKING_DEPTH) {
        error_setg(errp, "Backing file chain too deep");
        return false;
    }
    for (guint i = 0; i < inh->chain_files->len; i++) {
        if (!strcmp(g_ptr_array_index(inh->chain_files, i), full)) {
            error_setg(errp, "Backing file '%s' creates an infinite loop.",
                       full);
            return false;
        }
    }
    child.read_only = true;
    child.discard_unmap = false;
    child.depth = inh->depth + 1;
    if (bdrv_filename_is_json(full)) {
        /* the name holds the backing node's options (QEMU writes such
         * names); the header's format wins over the name's driver */
        Error *err = NULL;

        opts = bdrv_json_filename_options(full, fmt, &err);
        if (!opts) {
            error_propagate_prepend(errp, err, "Could not open backing "
                                    "file: ");
            return false;
        }
        json_object_set_new(opts, "read-only", json_true());
        fmt = json_name = g_strdup(qjson_get_str_or(opts, "driver", NULL));
    } else {
        Error *err = NULL;
        json_t *fo = bdrv_filename_options(full, &err);

        if (!fo) {
            error_propagate_prepend(errp, err, "Could not open backing "
                                    "file: ");
            return false;
        }
        opts = json_pack("{s:s,s:o,s:b}", "driver", "raw", "file", fo,
                         "read-only", 1);
    }
    if (extra) {
        json_object_update(opts, (json_t *)extra);
    }
    if (!fmt) {
        /* open the file alone first, to see what it holds */
        Error *err = NULL;
        BlockNode *f = open_node(json_object_get(opts, "file"), &child,
                                 false, &err);

        if (!f) {
            error_propagate_prepend(errp, err, "Could not open backing "
                                    "file: ");
            return false;
        }
        fmt = bdrv_probe_format(f);
        json_object_set_new(opts, "file", qjson_str(f->node_name));
        b = NULL;
        json_object_set_new(opts, "driver", qjson_str(fmt));
        g_ptr_array_add(child.chain_files, g_strdup(full));
        b = open_node(opts, &child, false, &err);
        g_free(g_ptr_array_steal_index(child.chain_files,
                                       child.chain_files->len - 1));
        bdrv_unref(f);
        if (!b) {
            error_propagate_prepend(errp, err, "Could not open backing "
                                    "file: ");
            return false;
        }
    } else {
        Error *err = NULL;

        if (!bdrv_find_driver(fmt)) {
            error_setg(errp, "Could not open backing file: Unknown driver "
                       "'%s'", fmt);
            return false;
        }
        json_object_set_new(opts, "driver", qjson_str(fmt));
        g_ptr_array_add(child.chain_files, g_strdup(full));
        b = open_node(opts, &child, false, &err);
        g_free(g_ptr_array_steal_index(child.chain_files,
                                       child.chain_files->len - 1));
        if (!b) {
            error_propagate_prepend(errp, err, "Could not open backing "
                                    "file: ");
            return false;
        }
    }
    bn->backing = bdrv_attach_child(bn, b, "backing");
    b->inherits_from = bn;
    bdrv_unref(b);
    g_free(bn->full_backing_filename);
    bn->full_backing_filename = g_strdup(full);
    return true;
}

bool bdrv_change_backing_file(BlockNode *bn, const char *file,
                              const char *fmt, Error **errp)
{
    if (!bn->drv->change_backing_file) {
        error_setg(errp, "Driver '%s' does not support backing files",
                   bn->drv->name);
        return false;
    }
    if (!bn->drv->change_backing_file(bn, file, fmt, errp)) {
        return false;
    }
    g_free(bn->auto_backing_file);
    bn->auto_backing_file = g_strdup(file ? file : "");
    bdrv_refresh_filename(bn);
    return true;
}

static void node_free(BlockNode *bn)
{
    dbitmap_node_free(bn);
    json_decref(bn->options);
    json_decref(bn->reopened_opts);
    g_free(bn->node_name);
    g_free(bn->filename);
    g_free(bn->backing_file);
    g_free(bn->backing_format);
    g_free(bn->full_backing_filename);
    g_free(bn->auto_backing_file);
    g_ptr_array_unref(bn->parents);
    if (bn->drain_waiters) {
        g_array_free(bn->drain_waiters, TRUE);
    }
    if (bn->write_notifiers) {
        g_array_free(bn->write_notifiers, TRUE);
    }
    g_assert(!bn->writes && !bn->range_locks);
    g_free(bn->opaque);
    g_free(bn);
}

static const char *opt_str(const json_t *o, const char *key, const char *d)
{
    return qjson_get_str_or(o, key, d);
}

/* @drv: the driver @opts name, or a job's filter that no user may name */
static BlockNode *open_node_drv(const BlockDriver *drv, const json_t *opts,
                                const Inherit *inh, bool monitor_owned,
                                Error **errp)
{
    const char *driver = qjson_get_str(opts, "driver");
    const json_t *cache = json_object_get(opts, "cache");
    const char *discard = opt_str(opts, "discard", NULL);
    const char *dz = opt_str(opts, "detect-zeroes", "off");
    BlockNode *bn;
    Inherit child;

    if (!drv) {
        error_setg(errp, "Unknown driver '%s'", driver);
        return NULL;
    }
    bn = g_new0(BlockNode, 1);
    bn->drv = drv;
    bn->refcnt = 1;
    bn->parents = g_ptr_array_new();
    bn->inactive = bdrv_incoming();
    bn->options = json_deep_copy(opts);
    bn->stats.last_access_ns = -1;
    if (!assign_node_name(bn, opt_str(opts, "node-name", NULL), errp)) {
        node_free(bn);
        return NULL;
    }
    bn->read_only = qjson_get_bool_or(opts, "read-only", inh->read_only);
    bn->force_share = qjson_get_bool_or(opts, "force-share",
                                        inh->force_share);
    if (bn->force_share && !bn->read_only) {
        error_setg(errp, "force-share=on can only be used with read-only "
                   "images");
        node_free(bn);
        return NULL;
    }
    bn->cache_direct = qjson_get_bool_or(cache, "direct", inh->cache_direct);
    bn->cache_no_flush = qjson_get_bool_or(cache, "no-flush", inh->no_flush);
    bn->discard_unmap = discard ? !strcmp(discard, "unmap")
                                : inh->discard_unmap;
    bn->detect_zeroes = !strcmp(dz, "on") ? BDRV_DETECT_ZEROES_ON
        : !strcmp(dz, "unmap") ? BDRV_DETECT_ZEROES_UNMAP
                               : BDRV_DETECT_ZEROES_OFF;
    if (bn->detect_zeroes == BDRV_DETECT_ZEROES_UNMAP && !bn->discard_unmap) {
        error_setg(errp, "setting detect-zeroes to unmap is not allowed "
                   "without setting discard operation to unmap");
        node_free(bn);
        return NULL;
    }

    child = *inh;
    child.read_only = bn->read_only;
    child.force_share = bn->force_share;
    child.cache_direct = bn->cache_direct;
    child.no_flush = bn->cache_no_flush;
    /*
     * as QEMU's bdrv_inherited_options(): a parent applies its own
     * discard policy, so its children default to unmap (a qcow2 node's
     * freed metadata reaches the file whatever the node's discard says)
     */
    child.discard_unmap = true;
    if (drv->is_format || drv->is_filter) {
        const char *role = drv->child_name ? drv->child_name : "file";
        bool own;
        BlockNode *f = open_child(json_object_get(opts, role), &child, &own,
                                  errp);

        if (!f) {
            node_free(bn);
            return NULL;
        }
        bn->file = bdrv_attach_child(bn, f, role);
        if (own) {
            f->inherits_from = bn;
        }
        bdrv_unref(f);
        if (!bdrv_refresh_perms(f, errp)) {
            bdrv_detach_child(bn->file);
            bn->file = NULL;
            node_free(bn);
            return NULL;
        }
    }
    if (drv->instance_size) {
        bn->opaque = g_malloc0(drv->instance_size);
    }
    if (!drv->open(bn, opts, errp)) {
        if (bn->file) {
            bdrv_detach_child(bn->file);
        }
        node_free(bn);
        return NULL;
    }
    bdrv_refresh_limits(bn);
    bdrv_refresh_filename(bn);
    /* the node is usable (and nameable) from here on */
    g_ptr_array_add(bdrv_all_nodes(), bn);
    bn->monitor_owned = monitor_owned;

    if (drv->has_backing) {
        const json_t *b = json_object_get(opts, "backing");
        Error *err = NULL;
        bool ok = true;

        if (b && json_is_null(b)) {
            /* explicitly no backing */
        } else if (b && json_is_object(b) && !json_object_get(b, "driver")) {
            /* options for the image the header names */
            ok = bn->backing_file
                && open_default_backing(bn, &child, b, &err);
            if (!bn->backing_file) {
                error_setg(&err, "Parameter 'backing.driver' is missing");
            }
        } else if (b) {
            Inherit bi = child;
            BlockNode *bb;
            bool own;

            bi.read_only = true;
            bi.discard_unmap = false;
            bb = open_child(b, &bi, &own, &err);
            if (bb) {
                bn->backing = bdrv_attach_child(bn, bb, "backing");
                if (own) {
                    bb->inherits_from = bn;
                }
                bdrv_unref(bb);
                g_free(bn->full_backing_filename);
                bn->full_backing_filename = g_strdup(bdrv_filename(bb));
            } else {
                error_prepend(&err, "Could not open backing file: ");
                ok = false;
            }
        } else if (bn->backing_file) {
            ok = open_default_backing(bn, &child, NULL, &err);
        }
        if (!ok) {
            error_propagate(errp, err);
            bn->monitor_owned = false;
            bdrv_unref(bn);
            return NULL;
        }
        bdrv_refresh_limits(bn);
        /* opened from the header: its name is what the header implies */
        bn->auto_backing_file = g_strdup(
            (!b || !json_object_get(b, "driver")) && bn->backing
            ? bdrv_filename(bn->backing->child)
            : bn->backing_file ? bn->backing_file : "");
        bdrv_refresh_filename(bn);
    }
    return bn;
}

static BlockNode *open_node(const json_t *opts, const Inherit *inh,
                            bool monitor_owned, Error **errp)
{
    return open_node_drv(bdrv_find_driver(qjson_get_str(opts, "driver")),
                         opts, inh, monitor_owned, errp);
}

BlockNode *bdrv_open_filter(const BlockDriver *drv, BlockNode *child,
                            const char *node_name, const json_t *opts,
                            bool read_only, Error **errp)
{
    Inherit inh = { .chain_files = g_ptr_array_new_with_free_func(g_free),
                    .read_only = read_only };
    g_autoptr(json_t) all = json_pack("{s:s,s:s}", "driver", drv->name,
                                      drv->child_name ? drv->child_name
                                                      : "file",
                                      bdrv_node_name(child));
    BlockNode *bn;

    if (opts) {
        json_object_update(all, (json_t *)opts);
    }
    if (node_name) {
        json_object_set_new(all, "node-name", qjson_str(node_name));
    }
    bn = open_node_drv(drv, all, &inh, false, errp);
    g_ptr_array_unref(inh.chain_files);
    if (bn && !node_name) {
        bn->implicit = true;
        bdrv_refresh_filename(bn);
    }
    return bn;
}

BlockNode *bdrv_skip_implicit_filters(BlockNode *bn)
{
    while (bn && bn->implicit && bdrv_filter_child(bn)) {
        bn = bdrv_filter_child(bn);
    }
    return bn;
}

BlockNode *bdrv_open_options(const json_t *opts, bool monitor_owned,
                             Error **errp)
{
    Inherit inh = { .chain_files = g_ptr_array_new_with_free_func(g_free) };
    BlockNode *bn;

    if (!qjson_has(opts, "node-name") && monitor_owned) {
        error_setg(errp, "'node-name' must be specified for the root node");
        g_ptr_array_unref(inh.chain_files);
        return NULL;
    }
    bn = open_node(opts, &inh, monitor_owned, errp);
    g_ptr_array_unref(inh.chain_files);
    return bn;
}

void bdrv_set_monitor_owned(BlockNode *bn)
{
    bn->monitor_owned = true;
}

bool bdrv_open_backing_file(BlockNode *bn, Error **errp)
{
    Inherit inh = {
        .read_only = bn->read_only, .force_share = bn->force_share,
        .cache_direct = bn->cache_direct,
        .no_flush = bn->cache_no_flush, .discard_unmap = bn->discard_unmap,
        .chain_files = g_ptr_array_new_with_free_func(g_free),
    };
    char *old_auto = bn->auto_backing_file;
    bool ok = true;

    if (bn->backing || !bn->backing_file) {
        g_ptr_array_unref(inh.chain_files);
        return true;
    }
    /*
     * The header decides from now on, as if opened without options: the
     * node's plain file name is what a relative backing name is
     * resolved against
     */
    bn->auto_backing_file = g_strdup("");
    bdrv_refresh_filename(bn);
    ok = open_default_backing(bn, &inh, NULL, errp);
    g_ptr_array_unref(inh.chain_files);
    g_free(bn->auto_backing_file);
    if (ok) {
        g_free(old_auto);
        json_object_del(bn->options, "backing");
        bn->auto_backing_file = g_strdup(bdrv_filename(bn->backing->child));
    } else {
        bn->auto_backing_file = old_auto;
    }
    bdrv_refresh_filename(bn);
    return ok;
}

/* ---- closing ------------------------------------------------------------- */

typedef struct {
    BlockNode *bn;
} Closing;

static GPtrArray *closing_nodes;
static GArray *idle_waiters;    /* CloseWaiter: nothing left closing */

static void close_finish(Closing *c)
{
    BlockNode *bn = c->bn;

    if (bn->drv->close) {
        bn->drv->close(bn);
    }
    /* children may start closing now: their parent is done with them */
    if (bn->backing) {
        bdrv_detach_child(bn->backing);
        bn->backing = NULL;
    }
    if (bn->file) {
        bdrv_detach_child(bn->file);
        bn->file = NULL;
    }
    g_ptr_array_remove(closing_nodes, c);
    node_free(bn);
    g_free(c);
    if (!closing_nodes->len && idle_waiters && idle_waiters->len) {
        GArray *w = idle_waiters;

        idle_waiters = NULL;
        for (guint i = 0; i < w->len; i++) {
            CloseWaiter *cw = &g_array_index(w, CloseWaiter, i);

            ioq_defer_int(cw->cb, cw->opaque, 0);
        }
        g_array_free(w, TRUE);
    }
}

static void close_flushed_cb(void *opaque, int ret)
{
    /* a failed flush loses unflushed data, as QEMU's close would */
    close_finish(opaque);
}

static void close_drained_cb(void *opaque, int ret)
{
    Closing *c = opaque;
    BlockNode *bn = c->bn;

    if (!bn->read_only && bn->drv->flush) {
        bn->drv->flush(bn, close_flushed_cb, c);
    } else {
        close_finish(c);
    }
}

/*
 * A closing node and the children only it uses leave the node list at
 * once, as they would in QEMU's synchronous close; they are released
 * when the close has flushed.
 */
static void hide_subtree(BlockNode *bn)
{
    g_ptr_array_remove(bdrv_all_nodes(), bn);
    if (bn->file && bn->file->child->refcnt == 1) {
        hide_subtree(bn->file->child);
    }
    if (bn->backing && bn->backing->child->refcnt == 1) {
        hide_subtree(bn->backing->child);
    }
}

void bdrv_unref(BlockNode *bn)
{
    Closing *c;

    g_assert(bn->refcnt > 0);
    if (--bn->refcnt > 0) {
        return;
    }
    hide_subtree(bn);
    if (!closing_nodes) {
        closing_nodes = g_ptr_array_new();
    }
    c = g_new0(Closing, 1);
    c->bn = bn;
    g_ptr_array_add(closing_nodes, c);
    bdrv_drain(bn, close_drained_cb, c);
}

void bdrv_wait_closed(BdrvCb *cb, void *opaque)
{
    CloseWaiter w = { cb, opaque };

    if (!closing_nodes || !closing_nodes->len) {
        ioq_defer_int(cb, opaque, 0);
        return;
    }
    if (!idle_waiters) {
        idle_waiters = g_array_new(FALSE, FALSE, sizeof(CloseWaiter));
    }
    g_array_append_val(idle_waiters, w);
}

void bdrv_close_all(BdrvCb *cb, void *opaque)
{
    GPtrArray *blks = blk_all();
    g_autoptr(GPtrArray) owned = g_ptr_array_new();
    GPtrArray *all = bdrv_all_nodes();

    while (blks->len) {
        blk_delete(g_ptr_array_index(blks, blks->len - 1));
    }
    /* collect first: an unref may close nodes and shrink the list */
    for (guint i = 0; i < all->len; i++) {
        BlockNode *bn = g_ptr_array_index(all, i);

        if (bn->monitor_owned) {
            g_ptr_array_add(owned, bn);
        }
    }
    for (guint i = owned->len; i-- > 0;) {
        BlockNode *bn = g_ptr_array_index(owned, i);

        bn->monitor_owned = false;
        bdrv_unref(bn);
    }
    bdrv_wait_closed(cb, opaque);
}
