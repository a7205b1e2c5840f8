/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy-before-write filter node (cbw.c), QEMU 7.2's
 * driver=copy-before-write: the copy engine's guest-facing side, which
 * copies a range's old data to its target before a write changes it.
 */
#ifndef BLOCK_JOBS_CBW_H
#define BLOCK_JOBS_CBW_H

/*
 * Make the driver openable by name (blockdev-add, -blockdev).  At
 * start-up, after bdrv_init().
 */
void cbw_register(void);

#endif
