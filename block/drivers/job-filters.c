/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The filter nodes jobs put into the graph while they run, as QEMU 7.2
 * does: mirror_top above a mirror's source (and an active commit's
 * top), commit_top above an intermediate commit's top.  They are real
 * nodes: the guest's requests pass through them to their child, the
 * queries show them (query-block looks through the implicit ones), and
 * what they take from their child is what QEMU's take.  The jobs' own
 * interest in guest writes is still their write hook and notifier on
 * the source (io.c), which the requests reach through the filter.
 *
 * The child is called "backing", as QEMU's, though it is the filter's
 * filtered child here (bn->file), so that the chain walks (filter.c)
 * see through it like any other filter.
 */
#include "config.h"

#include "block/core/block-int.h"

static bool job_filter_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    bn->total_size = bdrv_length(bn->file->child);
    return true;
}

/*
 * An active commit's mirror_top (QEMU's is_commit) cannot read
 * consistently, which the nodes above base do not share, and must let
 * others write, or it would block its own writes to base.  (A mirror's
 * passes its users' on, the job's among them.)
 */
static void mirror_top_commit_child_perm(const BlockNode *bn, unsigned *perm,
                                         unsigned *shared)
{
    *perm &= ~BLK_PERM_CONSISTENT_READ;
    *shared |= BLK_PERM_WRITE;
}

/* QEMU's commit_top takes nothing and shares everything. */
static void commit_top_child_perm(const BlockNode *bn, unsigned *perm,
                                  unsigned *shared)
{
    *perm = 0;
    *shared = BLK_PERM_ALL;
}

#define JOB_FILTER(filter_name, perm_fn, ro)                            \
    {                                                                   \
        .name = (filter_name),                                          \
        .read_only_filter = (ro),                                       \
        .is_filter = true,                                              \
        .child_name = "backing",                                        \
        .no_reopen = true,                                              \
        .open = job_filter_open,                                        \
        .child_perm = (perm_fn),                                        \
        .plain_filename = bdrv_filter_plain_filename,                   \
        BDRV_FILTER_PASSTHROUGH_IO,                                     \
        BDRV_FILTER_PASSTHROUGH_INFO,                                   \
    }

const BlockDriver bdrv_mirror_top = JOB_FILTER("mirror_top", NULL, false);
const BlockDriver bdrv_mirror_top_commit =
    JOB_FILTER("mirror_top", mirror_top_commit_child_perm, false);
/* QEMU opens commit_top read-only: nothing writes through it */
const BlockDriver bdrv_commit_top = JOB_FILTER("commit_top",
                                               commit_top_child_perm, true);
