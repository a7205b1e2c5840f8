/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the emulated guest does while it runs: it dirties RAM and writes
 * to one of its disks at rates __com.qmpd_guest-workload sets, so that
 * migration and the block jobs always work under live writes; and
 * __com.qmpd_guest-digest, a hash of RAM and of each disk as the guest
 * reads it, which proves that a copy equals what the guest had.
 */
#ifndef SYSTEM_WORKLOAD_H
#define SYSTEM_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "qapi/dispatch.h"

/*
 * The page the workload writes as its @seq-th write with seed @seed:
 * PHYSMEM_PAGE_SIZE bytes, never all zeros.  Exposed for tests that
 * check what a page holds.
 */
void workload_fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t seq);

/* __com.qmpd_guest-digest (guest-digest.c). */
void guest_digest_async(const json_t *args, QapiReply *reply);

/*
 * Take @pct percent (0 to 99) of the guest's CPU time, as QEMU's CPU
 * throttle does: the workload runs at (100 - @pct)% of its rates.
 */
void workload_set_throttle(unsigned pct);

/* Stop the workload and free it (at exit). */
void workload_cleanup(void);

extern const QapiHandler workload_qmp_handlers[];
extern const size_t workload_qmp_handlers_count;

#endif /* SYSTEM_WORKLOAD_H */
