/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a node's driver tells of its image (BlockDriver.get_info): the
 * cluster size that image info shows and that jobs, copy-on-read and
 * dirty bitmaps align to, and whether zero writes may unmap.  Filters
 * and raw pass the question to their child, as in QEMU.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"

bool bdrv_get_info(BlockNode *bn, BlockDriverInfo *bdi)
{
    memset(bdi, 0, sizeof(*bdi));
    if (!bn->drv->get_info || !bn->drv->get_info(bn, bdi)) {
        memset(bdi, 0, sizeof(*bdi));
        return false;
    }
    return true;
}

uint32_t bdrv_cluster_size(BlockNode *bn)
{
    BlockDriverInfo bdi;

    return bdrv_get_info(bn, &bdi) ? bdi.cluster_size : 0;
}

bool bdrv_can_write_zeroes_with_unmap(BlockNode *bn)
{
    BlockDriverInfo bdi;

    /* the node must have been opened with discard=unmap, as in QEMU */
    return bn->discard_unmap && bdrv_get_info(bn, &bdi)
           && bdi.can_write_zeroes_with_unmap;
}
