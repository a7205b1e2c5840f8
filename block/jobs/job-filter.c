/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Putting a job's filter node into the graph and taking it out, as
 * QEMU 7.2's jobs do with bdrv_append() and bdrv_replace_node(): the
 * filter takes the place of the node the job works on, so the guest's
 * requests and the queries go through it; its child edge stays where
 * the job leaves it (a mirror's switch moves it to the target) and
 * whatever it points at takes the filter's place again at the end.
 */
#include "config.h"

#include "block/jobs/job-filter.h"

BlockNode *job_filter_insert(const BlockDriver *drv, BlockNode *bs,
                             const char *name, const json_t *opts,
                             unsigned job_perm, unsigned job_shared,
                             Error **errp)
{
    Error *err = NULL;
    BlockNode *f = bdrv_open_filter(drv, bs, name, opts,
                                    drv->read_only_filter, &err);

    if (!f) {
        /* QEMU's bdrv_insert_node() says what failed; its other jobs
         * open their filter without options and do not */
        if (opts) {
            error_prepend(&err, "Could not create node: ");
        }
        error_propagate(errp, err);
        return NULL;
    }
    f->job_held = true;
    f->job_perm = job_perm;
    f->job_shared = job_shared;
    bdrv_replace_node(bs, f);
    if (!bdrv_refresh_perms(f, errp)) {
        job_filter_remove(NULL, &f);
    }
    return f;
}

void job_filter_remove(BlockJob *bj, BlockNode **pfilter)
{
    BlockNode *filter = g_steal_pointer(pfilter);
    BlockNode *child;

    if (!filter) {
        return;
    }
    if (bj) {
        block_job_drop_node(bj, filter);
    }
    filter->job_held = false;
    child = bdrv_filter_child(filter);
    bdrv_ref(child);
    bdrv_replace_node(filter, child);
    /*
     * QEMU drains the filter first; here guest requests that went
     * through it may still be on their way (held by a mirror's final
     * lock below it, say) and hold it: it is gone for everyone else
     */
    filter->detached = true;
    g_ptr_array_remove(bdrv_all_nodes(), filter);
    bdrv_unref(filter);
    bdrv_refresh_perms(child, NULL);
    bdrv_unref(child);
}
