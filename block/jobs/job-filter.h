/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The filter node a block job puts above the node it works on while it
 * runs (QEMU 7.2's mirror_top, commit_top, copy-on-read and
 * copy-before-write), and takes out again when it ends.
 */
#ifndef BLOCK_JOBS_JOB_FILTER_H
#define BLOCK_JOBS_JOB_FILTER_H

#include "block/core/block-int.h"
#include "block/jobs/blockjob.h"

/*
 * Open a filter of driver @drv over @bs, named @name (filter-node-name;
 * NULL: auto-named and implicit), with the driver's options @opts
 * (borrowed; may be NULL: a filter with options is QEMU's
 * bdrv_insert_node(), whose errors begin "Could not create node: "),
 * and put it in @bs's place: every
 * backend and parent of @bs uses the filter instead (QEMU's
 * bdrv_append()).  Returns the filter, with a reference for the caller;
 * NULL with QEMU's error (a bad or taken name, a permission the filter
 * cannot get), and the graph as it was.  The job's own use of the
 * filter, @job_perm taken and @job_shared shared (QEMU's job edge or
 * backend on it), counts with its parents' until it is removed.  The
 * job made on it should be
 * created on the filter (QEMU's main node: it names the job after the
 * device and keeps other jobs off it).  Main loop only.
 */
BlockNode *job_filter_insert(const BlockDriver *drv, BlockNode *bs,
                             const char *name, const json_t *opts,
                             unsigned job_perm, unsigned job_shared,
                             Error **errp);

/*
 * Take the filter *@filter out of the graph (nothing when NULL): job
 * @bj (if not NULL) lets go of it, its parents and backends use its
 * child (whatever node that is by now) again, the caller's reference
 * goes and *@filter is NULL.  Main loop only.
 */
void job_filter_remove(BlockJob *bj, BlockNode **filter);

#endif
