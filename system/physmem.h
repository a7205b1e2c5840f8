/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's physical memory as qtest reads and writes it: the RAM of
 * -m mapped where the machine maps it, bytes held only for pages
 * written (the rest reads as zeros, as a fresh guest's RAM does).
 */
#ifndef SYSTEM_PHYSMEM_H
#define SYSTEM_PHYSMEM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copy @len bytes at guest physical address @addr into @buf.  Addresses
 * outside RAM read as zeros, as QEMU's unassigned memory does.  Main
 * loop only; the machine's configuration must be set.
 */
void physmem_read(uint64_t addr, void *buf, size_t len);

/* Store @len bytes from @buf at @addr; outside RAM they are dropped. */
void physmem_write(uint64_t addr, const void *buf, size_t len);

/* Free every stored page. */
void physmem_reset(void);

#endif /* SYSTEM_PHYSMEM_H */
