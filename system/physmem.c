/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest physical memory for qtest's readb..readq, read, write, memset
 * and the base64 forms.  qmpd has no CPU to run, so nothing but the
 * harness touches this memory: a 4 TiB guest costs nothing until its
 * pages are written, and a page comes into being on its first write.
 *
 * The map is the RAM's alone: [0, below_4g) and, on the pc machines,
 * [4 GiB, 4 GiB + the rest).  QEMU also maps firmware and device
 * windows (the BIOS below 1 MiB and below 4 GiB, VGA); qmpd has none of
 * them, so those read as unassigned memory does, zeros.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "system/machine.h"
#include "system/memory.h"
#include "system/physmem.h"

#define PAGE_SIZE 4096
#define FOUR_GIB (1ULL << 32)

static GHashTable *pages;       /* page number -> PAGE_SIZE bytes */

/* Whether @addr is RAM. */
static bool physmem_is_ram(uint64_t addr)
{
    const MachineConfig *mc = machine_config();
    uint64_t below = memory_below_4g_size(mc);

    if (addr < below) {
        return true;
    }
    return below < mc->ram_size && addr >= FOUR_GIB
        && addr - FOUR_GIB < mc->ram_size - below;
}

static uint8_t *physmem_page(uint64_t addr, bool create)
{
    uint64_t key = addr / PAGE_SIZE;
    uint8_t *p;

    if (!pages) {
        if (!create) {
            return NULL;
        }
        pages = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                      g_free);
    }
    p = g_hash_table_lookup(pages, &key);
    if (!p && create) {
        p = g_malloc0(PAGE_SIZE);
        g_hash_table_insert(pages, g_memdup2(&key, sizeof(key)), p);
    }
    return p;
}

void physmem_read(uint64_t addr, void *buf, size_t len)
{
    uint8_t *out = buf;

    while (len) {
        size_t off = addr % PAGE_SIZE;
        size_t n = MIN(len, PAGE_SIZE - off);
        const uint8_t *p = physmem_is_ram(addr)
            ? physmem_page(addr, false) : NULL;

        if (p) {
            memcpy(out, p + off, n);
        } else {
            memset(out, 0, n);
        }
        out += n;
        addr += n;
        len -= n;
    }
}

void physmem_write(uint64_t addr, const void *buf, size_t len)
{
    const uint8_t *in = buf;

    while (len) {
        size_t off = addr % PAGE_SIZE;
        size_t n = MIN(len, PAGE_SIZE - off);

        /* RAM bounds are page-aligned: a page is all RAM or none */
        if (physmem_is_ram(addr)) {
            memcpy(physmem_page(addr, true) + off, in, n);
        }
        in += n;
        addr += n;
        len -= n;
    }
}

void physmem_reset(void)
{
    g_clear_pointer(&pages, g_hash_table_destroy);
}
