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

#include <glib.h>

#include "util/hbitmap.h"

/*
 * Copy @len bytes at guest physical address @addr into @buf.  Addresses
 * outside RAM read as zeros, as QEMU's unassigned memory does.  Main
 * loop only; the machine's configuration must be set.
 */
void physmem_read(uint64_t addr, void *buf, size_t len);

/* Store @len bytes from @buf at @addr; outside RAM they are dropped. */
void physmem_write(uint64_t addr, const void *buf, size_t len);

/* Free every stored page (and stop the dirty log). */
void physmem_reset(void);

/*
 * RAM as migration sees it: one block of physmem_ram_size() bytes,
 * addressed by offset (QEMU's ram_addr_t in pc.ram), whatever guest
 * physical addresses map it.  Pages are PHYSMEM_PAGE_SIZE bytes.
 */
#define PHYSMEM_PAGE_SIZE 4096

uint64_t physmem_ram_size(void);

/*
 * The bytes of the page at RAM offset @off (page-aligned), borrowed
 * until the next write to it; NULL when the page was never written
 * (it reads as zeros).
 */
const uint8_t *physmem_ram_page(uint64_t off);

/*
 * Store a whole page at RAM offset @off (page-aligned); @data NULL
 * makes it a zero page and frees it.  Marks it dirty like any write.
 */
void physmem_ram_store_page(uint64_t off, const void *data);

/*
 * Make RAM's mapping now, on the main thread: from then on
 * physmem_ram_store_page() may run on several threads at once for
 * different pages (a migration's destination channels; no dirty log
 * runs there).
 */
void physmem_ram_prepare(void);

/*
 * RAM offsets of the pages that hold bytes, ascending (a new array of
 * uint64_t); a page not in it reads as zeros.
 */
GArray *physmem_ram_stored_pages(void);

/*
 * The dirty log: from physmem_dirty_log_start() on, every write marks
 * the pages it touches (one bit a page, RAM offsets) until
 * physmem_dirty_log_stop().  physmem_dirty_log_sync() ORs the marks
 * into @into (an HBitmap of physmem_ram_size() at page granularity)
 * and clears them: pages written after it are marked again.  The log
 * costs a bit per page of RAM while it runs, nothing otherwise.
 */
void physmem_dirty_log_start(void);
void physmem_dirty_log_stop(void);
bool physmem_dirty_log_running(void);
void physmem_dirty_log_sync(HBitmap *into);

/* Bytes marked in the log since the last sync (log running). */
uint64_t physmem_dirty_log_count(void);

#endif /* SYSTEM_PHYSMEM_H */
