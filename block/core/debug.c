/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Debug events and breakpoints (QEMU's bdrv_debug_*()): the core and
 * the formats report events on the nodes below them, and qemu-io's
 * break, resume, remove_break and wait_break reach the first node at or
 * below the one they name, through file children, whose driver takes
 * breakpoints (blkdebug).  No such node: -ENOTSUP.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/block-int.h"

const char *const blkdbg_event_names[BLKDBG__MAX] = {
    [BLKDBG_L1_UPDATE] = "l1_update",
    [BLKDBG_L1_GROW_ALLOC_TABLE] = "l1_grow_alloc_table",
    [BLKDBG_L1_GROW_WRITE_TABLE] = "l1_grow_write_table",
    [BLKDBG_L1_GROW_ACTIVATE_TABLE] = "l1_grow_activate_table",
    [BLKDBG_L2_LOAD] = "l2_load",
    [BLKDBG_L2_UPDATE] = "l2_update",
    [BLKDBG_L2_UPDATE_COMPRESSED] = "l2_update_compressed",
    [BLKDBG_L2_ALLOC_COW_READ] = "l2_alloc_cow_read",
    [BLKDBG_L2_ALLOC_WRITE] = "l2_alloc_write",
    [BLKDBG_READ_AIO] = "read_aio",
    [BLKDBG_READ_BACKING_AIO] = "read_backing_aio",
    [BLKDBG_READ_COMPRESSED] = "read_compressed",
    [BLKDBG_WRITE_AIO] = "write_aio",
    [BLKDBG_WRITE_COMPRESSED] = "write_compressed",
    [BLKDBG_VMSTATE_LOAD] = "vmstate_load",
    [BLKDBG_VMSTATE_SAVE] = "vmstate_save",
    [BLKDBG_COW_READ] = "cow_read",
    [BLKDBG_COW_WRITE] = "cow_write",
    [BLKDBG_REFTABLE_LOAD] = "reftable_load",
    [BLKDBG_REFTABLE_GROW] = "reftable_grow",
    [BLKDBG_REFTABLE_UPDATE] = "reftable_update",
    [BLKDBG_REFBLOCK_LOAD] = "refblock_load",
    [BLKDBG_REFBLOCK_UPDATE] = "refblock_update",
    [BLKDBG_REFBLOCK_UPDATE_PART] = "refblock_update_part",
    [BLKDBG_REFBLOCK_ALLOC] = "refblock_alloc",
    [BLKDBG_REFBLOCK_ALLOC_HOOKUP] = "refblock_alloc_hookup",
    [BLKDBG_REFBLOCK_ALLOC_WRITE] = "refblock_alloc_write",
    [BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS] = "refblock_alloc_write_blocks",
    [BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE] = "refblock_alloc_write_table",
    [BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE] = "refblock_alloc_switch_table",
    [BLKDBG_CLUSTER_ALLOC] = "cluster_alloc",
    [BLKDBG_CLUSTER_ALLOC_BYTES] = "cluster_alloc_bytes",
    [BLKDBG_CLUSTER_FREE] = "cluster_free",
    [BLKDBG_FLUSH_TO_OS] = "flush_to_os",
    [BLKDBG_FLUSH_TO_DISK] = "flush_to_disk",
    [BLKDBG_PWRITEV_RMW_HEAD] = "pwritev_rmw_head",
    [BLKDBG_PWRITEV_RMW_AFTER_HEAD] = "pwritev_rmw_after_head",
    [BLKDBG_PWRITEV_RMW_TAIL] = "pwritev_rmw_tail",
    [BLKDBG_PWRITEV_RMW_AFTER_TAIL] = "pwritev_rmw_after_tail",
    [BLKDBG_PWRITEV] = "pwritev",
    [BLKDBG_PWRITEV_ZERO] = "pwritev_zero",
    [BLKDBG_PWRITEV_DONE] = "pwritev_done",
    [BLKDBG_EMPTY_IMAGE_PREPARE] = "empty_image_prepare",
    [BLKDBG_L1_SHRINK_WRITE_TABLE] = "l1_shrink_write_table",
    [BLKDBG_L1_SHRINK_FREE_L2_CLUSTERS] = "l1_shrink_free_l2_clusters",
    [BLKDBG_COR_WRITE] = "cor_write",
    [BLKDBG_CLUSTER_ALLOC_SPACE] = "cluster_alloc_space",
    [BLKDBG_NONE] = "none",
};

/*
 * Events whose code path qmpd does not have: a rule on one would never
 * fire, so it is refused.  (QEMU 7.2 itself never reports
 * "refblock_update"; rules on it are accepted, as QEMU accepts them.
 * "cor_write" waits for the copy-on-read filter.)
 */
static const BlkdebugEvent never_raised[] = {
    BLKDBG_CLUSTER_ALLOC_BYTES,         /* compressed writes */
    BLKDBG_CLUSTER_ALLOC_SPACE,         /* zeroing new clusters */
    BLKDBG_EMPTY_IMAGE_PREPARE,         /* emptying an image (commit) */
    BLKDBG_L2_ALLOC_COW_READ,           /* L2 tables shared by snapshots */
    BLKDBG_L2_UPDATE_COMPRESSED,
    BLKDBG_VMSTATE_LOAD,                /* VM state in the image */
    BLKDBG_VMSTATE_SAVE,
    BLKDBG_WRITE_COMPRESSED,
};

int bdrv_debug_event_by_name(const char *name)
{
    for (int i = 0; i < BLKDBG__MAX; i++) {
        if (!strcmp(blkdbg_event_names[i], name)) {
            return i;
        }
    }
    return -1;
}

bool bdrv_debug_event_raised(const char *name)
{
    int ev = bdrv_debug_event_by_name(name);

    for (size_t i = 0; i < G_N_ELEMENTS(never_raised); i++) {
        if ((int)never_raised[i] == ev) {
            return false;
        }
    }
    return true;
}

bool bdrv_debug_event(BlockNode *bn, BlkdebugEvent event, BdrvCb *cb,
                      void *opaque)
{
    if (!bn || !bn->drv->debug_event) {
        return false;
    }
    return bn->drv->debug_event(bn, event, cb, opaque);
}

/* The first node at or below @bn whose driver takes breakpoints. */
static BlockNode *debug_node(BlockNode *bn)
{
    while (bn && !bn->drv->debug_breakpoint) {
        bn = bn->file ? bn->file->child : NULL;
    }
    return bn;
}

int bdrv_debug_breakpoint(BlockNode *bn, const char *event, const char *tag)
{
    BlockNode *b = debug_node(bn);

    return b ? b->drv->debug_breakpoint(b, event, tag) : -ENOTSUP;
}

int bdrv_debug_remove_breakpoint(BlockNode *bn, const char *tag)
{
    BlockNode *b = debug_node(bn);

    return b ? b->drv->debug_remove_breakpoint(b, tag) : -ENOTSUP;
}

int bdrv_debug_resume(BlockNode *bn, const char *tag)
{
    BlockNode *b = debug_node(bn);

    return b ? b->drv->debug_resume(b, tag) : -ENOTSUP;
}

bool bdrv_debug_is_suspended(BlockNode *bn, const char *tag)
{
    BlockNode *b = debug_node(bn);

    return b && b->drv->debug_is_suspended(b, tag);
}
