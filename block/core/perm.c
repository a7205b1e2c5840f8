/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Permissions, as QEMU 7.2 derives them: what each edge of the graph
 * takes from its child and lets others do with it.
 *
 * A node's cumulative permissions are the union of what its parent
 * edges (and backends) take and the intersection of what they share.
 * Each edge derives its permissions from its parent's cumulative ones
 * by the role of the child (QEMU's bdrv_default_perms()): a filter
 * passes its users' needs on, a format adds that it reads its file
 * consistently and, when writable, writes and resizes it and lets
 * nobody else do either, a backing image is read and may be written by
 * others only where the overlay's users allow it.  A child opened with
 * force-share lets its parent edges share everything, so a read-only
 * node opened so reads an image another process writes.
 *
 * The same answers serve three readers: the file driver's image locks
 * (bdrv_refresh_perms), x-debug-query-block-graph, and the conflicts
 * QEMU reports when a command would take what a parent does not share.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"
#include "qapi/qjson.h"

bool bdrv_edge_live(const BdrvChild *c)
{
    return !c->parent || (c->parent->refcnt > 0 && !c->parent->detached);
}

void blk_root_perm(BlockBackend *blk, unsigned *perm, unsigned *shared)
{
    BlockNode *r = blk_root(blk);

    bool cd = blk_dev_has_tray(blk);

    if (blk_explicit_perm(blk, perm, shared)) {
        return;
    }
    /*
     * QEMU's disable_perm: a device on an inactive node takes nothing
     * until the node is activated, so an incoming destination locks
     * nothing its source still uses
     */
    if (r->inactive) {
        *perm = 0;
        *shared = BLK_PERM_ALL;
        return;
    }

    /*
     * A device writes a node writable when it was attached, even once
     * the node is read-only; a -drive alone takes "write" once qemu-io
     * writes through it.  A CD-ROM only reads, and its medium cannot
     * be resized under it (QEMU's ide-cd and scsi-cd).
     */
    *perm = BLK_PERM_CONSISTENT_READ
        | ((blk_qdev(blk) && !cd && (!r->read_only || blk_dev_writes(blk)))
           || (!r->read_only && blk_qemu_io_wrote(blk))
           ? BLK_PERM_WRITE : 0);
    /* blkconf_apply_backend_options(); blk_new_open() shares all */
    *shared = blk_qdev(blk) ? BLK_PERM_CONSISTENT_READ
        | BLK_PERM_WRITE_UNCHANGED | (cd ? 0 : BLK_PERM_RESIZE)
        : BLK_PERM_ALL;
}

void bdrv_child_perm(const BdrvChild *c, unsigned *perm, unsigned *shared)
{
    const BlockNode *p = c->parent;
    unsigned pp;
    unsigned ps;

    if (!p) {
        *perm = 0;
        *shared = BLK_PERM_ALL;
        return;
    }
    bdrv_node_perm(p, &pp, &ps);
    if (c == bdrv_other_child(p)) {
        p->drv->other_child_perm(c, perm, shared);
    } else if (c == p->backing) {
        /* bdrv_default_perms_for_cow() */
        *perm = pp & BLK_PERM_CONSISTENT_READ;
        *shared = (ps & BLK_PERM_WRITE ? BLK_PERM_WRITE | BLK_PERM_RESIZE : 0)
            | BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
    } else {
        /* bdrv_filter_default_perms(), the base of the other roles */
        *perm = pp;
        *shared = ps;
        if (!strcmp(p->drv->name, "raw")) {
            /* a filter unless it shows only part of its file */
            if (qjson_has(p->options, "offset")
                || qjson_has(p->options, "size")) {
                *shared &= ~BLK_PERM_RESIZE;
            }
        } else if (p->drv->is_filter) {
            if (p->drv->child_perm) {
                p->drv->child_perm(p, perm, shared);
            }
        } else if (p->drv->is_format && p->drv->child_perm) {
            /* a format that decides alone (snapshot-access) */
            p->drv->child_perm(p, perm, shared);
        } else if (p->drv->is_format) {
            /* bdrv_default_perms_for_storage(): data and metadata */
            if (!p->read_only && !p->inactive) {
                *perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
            }
            *perm |= BLK_PERM_CONSISTENT_READ;
            *shared &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
            if (*perm & BLK_PERM_WRITE_UNCHANGED) {
                *perm |= BLK_PERM_WRITE;
            }
            if (*perm & BLK_PERM_WRITE) {
                *perm |= BLK_PERM_RESIZE;
            }
        }
    }
    /* bdrv_child_perm(): the child's force-share overrides its parent */
    if (c->child->force_share) {
        *shared = BLK_PERM_ALL;
    }
}

void bdrv_node_perm(const BlockNode *bn, unsigned *perm, unsigned *shared)
{
    GPtrArray *blks = blk_all();

    *perm = bn->job_held ? bn->job_perm : 0;
    *shared = bn->job_held ? bn->job_shared : BLK_PERM_ALL;
    for (guint i = 0; i < bn->parents->len; i++) {
        const BdrvChild *c = g_ptr_array_index(bn->parents, i);
        unsigned p;
        unsigned s;

        if (bdrv_edge_live(c)) {
            bdrv_child_perm(c, &p, &s);
            *perm |= p;
            *shared &= s;
        }
    }
    for (guint i = 0; i < blks->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blks, i);
        unsigned p;
        unsigned s;

        if (blk_root(blk) == bn) {
            blk_root_perm(blk, &p, &s);
            *perm |= p;
            *shared &= s;
        }
    }
}

unsigned bdrv_perm_names_mask(const json_t *list)
{
    static const char *const names[] = {
        "consistent-read", "write", "write-unchanged", "resize",
    };
    unsigned mask = 0;
    size_t i;
    json_t *v;

    json_array_foreach((json_t *)list, i, v) {
        for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
            if (!strcmp(json_string_value(v), names[k])) {
                mask |= 1u << k;
            }
        }
    }
    return mask;
}

static const char *const perm_names[] = {
    "consistent read", "write", "write unchanged", "resize",
};

/* QEMU's bdrv_perm_names(): "write, resize" */
static GString *perm_list(unsigned mask)
{
    GString *s = g_string_new(NULL);

    for (size_t k = 0; k < G_N_ELEMENTS(perm_names); k++) {
        if (mask & (1u << k)) {
            g_string_append_printf(s, "%s%s", s->len ? ", " : "",
                                   perm_names[k]);
        }
    }
    return s;
}

bool bdrv_parents_compatible(const BlockNode *bn, Error **errp)
{
    /* QEMU's parents list is newest first: so are its pairs */
    for (guint i = bn->parents->len; i-- > 0;) {
        const BdrvChild *a = g_ptr_array_index(bn->parents, i);
        unsigned ap, as;

        if (!a->parent || !bdrv_edge_live(a)) {
            continue;
        }
        bdrv_child_perm(a, &ap, &as);
        for (guint j = bn->parents->len; j-- > 0;) {
            const BdrvChild *b = g_ptr_array_index(bn->parents, j);
            g_autoptr(GString) clash = NULL;
            unsigned bp, bs;

            if (b == a || !b->parent || !bdrv_edge_live(b)) {
                continue;
            }
            bdrv_child_perm(b, &bp, &bs);
            if (!(bp & ~as)) {
                continue;
            }
            clash = perm_list(bp & ~as);
            error_setg(errp, "Permission conflict on node '%s': permissions "
                       "'%s' are both required by node '%s' (uses node '%s' "
                       "as '%s' child) and unshared by node '%s' (uses node "
                       "'%s' as '%s' child).", bn->node_name, clash->str,
                       b->parent->node_name, bn->node_name, b->name,
                       a->parent->node_name, bn->node_name, a->name);
            return false;
        }
    }
    /* and an export's backend (QEMU lists it among the parents) */
    for (guint i = 0; i < blk_all()->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blk_all(), i);
        unsigned p, s;

        if (blk_root(blk) == bn && blk_explicit_perm(blk, &p, &s)
            && bdrv_perm_conflict_unnamed((BlockNode *)bn, p, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * A new user taking @perm on @bn (sharing everything) conflicts with a
 * parent that does not share it: QEMU's bdrv_a_allow_b() message, for
 * the unnamed backend that QMP commands like block_resize create.
 */
bool bdrv_perm_conflict_unnamed(BlockNode *bn, unsigned perm, Error **errp)
{
    for (guint i = bn->parents->len; i-- > 0;) {
        const BdrvChild *c = g_ptr_array_index(bn->parents, i);
        g_autoptr(GString) missing = NULL;
        unsigned p;
        unsigned s;

        if (!bdrv_edge_live(c)) {
            continue;
        }
        bdrv_child_perm(c, &p, &s);
        missing = perm_list(perm & ~s);
        if (missing->len) {
            error_setg(errp, "Permission conflict on node '%s': permissions "
                       "'%s' are both required by an unnamed block device "
                       "(uses node '%s' as 'root' child) and unshared by "
                       "node '%s' (uses node '%s' as '%s' child).",
                       bn->node_name, missing->str, bn->node_name,
                       c->parent->node_name, bn->node_name, c->name);
            return true;
        }
    }
    return false;
}

/*
 * QEMU's op blockers: a backing node refuses most operations (delete,
 * resize, snapshot, backing file change) while it is one.  The newest
 * blocker is the one reported.
 */
bool bdrv_backing_blocked(const BlockNode *bn, Error **errp)
{
    for (guint i = bn->parents->len; i-- > 0;) {
        const BdrvChild *c = g_ptr_array_index(bn->parents, i);

        if (bdrv_edge_live(c) && c->parent && c == c->parent->backing) {
            error_setg(errp, "Node '%s' is busy: node is used as backing hd "
                       "of '%s'", bn->node_name,
                       bdrv_device_or_node_name(c->parent));
            return true;
        }
    }
    return false;
}
