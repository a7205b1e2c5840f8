/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inactive nodes, QEMU's BDRV_O_INACTIVE: on an incoming destination
 * the source still owns the images (shared storage, or a disk that
 * libvirt copies over NBD before the switch), so every node opened
 * while the destination is inmigrate takes no image lock and lets
 * nothing write it.  A node becomes active when something must write
 * it before the switch (a block export, block migration's load), when
 * the incoming migration ends (unless late-block-activate leaves that
 * to cont), or on cont.
 *
 * Activation wakes a node and everything below it, then takes what
 * their users need (the locks of the files below): so a lock another
 * process holds is reported as QEMU reports it ('Failed to get "write"
 * lock', the write the format needs) and leaves them all inactive.
 */
#include "config.h"

#include "block/core/block-int.h"
#include "block/core/block.h"

static bool incoming;

void bdrv_set_incoming(bool on)
{
    incoming = on;
}

bool bdrv_incoming(void)
{
    return incoming;
}

bool bdrv_is_inactive(const BlockNode *bn)
{
    return bn->inactive;
}

/* Mark @bn's subtree active, collecting in @woken the nodes that were not. */
static void wake(BlockNode *bn, GPtrArray *woken)
{
    BdrvChild *o = bdrv_other_child(bn);

    if (bn->inactive) {
        bn->inactive = false;
        g_ptr_array_add(woken, bn);
    }
    if (bn->file) {
        wake(bn->file->child, woken);
    }
    if (bn->backing) {
        wake(bn->backing->child, woken);
    }
    if (o) {
        wake(o->child, woken);
    }
}

bool bdrv_activate(BlockNode *bn, Error **errp)
{
    g_autoptr(GPtrArray) woken = g_ptr_array_new();

    wake(bn, woken);
    if (!woken->len) {
        return true;
    }
    /* the file below then takes what its active users need at once */
    if (!bdrv_refresh_perms(bn, errp)) {
        for (guint i = 0; i < woken->len; i++) {
            ((BlockNode *)g_ptr_array_index(woken, i))->inactive = true;
        }
        bdrv_refresh_perms(bn, NULL);
        return false;
    }
    return true;
}

bool bdrv_activate_all(Error **errp)
{
    g_autoptr(GPtrArray) all = g_ptr_array_copy(bdrv_all_nodes(), NULL,
                                                NULL);

    /* the top nodes first, as QEMU's bdrv_next() walks them */
    for (int pass = 0; pass < 2; pass++) {
        for (guint i = 0; i < all->len; i++) {
            BlockNode *bn = g_ptr_array_index(all, i);

            if ((pass || !bn->parents->len) && !bdrv_activate(bn, errp)) {
                return false;
            }
        }
    }
    return true;
}
