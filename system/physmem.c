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
 *
 * Migration addresses the same bytes by RAM offset (the pages below
 * 4 GiB first, then those mapped above it), and reads which pages
 * changed from the dirty log: a bitmap in RAM offsets that every store
 * marks while it runs.  Pages stay keyed by guest physical page number;
 * the two address spaces differ by one subtraction.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "system/machine.h"
#include "system/memory.h"
#include "system/physmem.h"

#define PAGE_SIZE PHYSMEM_PAGE_SIZE
#define FOUR_GIB (1ULL << 32)

static GHashTable *pages;       /* page number -> PAGE_SIZE bytes */
static HBitmap *dirty_log;      /* RAM offsets; NULL: not logging */

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

/* The RAM offset of @addr, which is RAM. */
static uint64_t physmem_ram_offset(uint64_t addr)
{
    return addr < FOUR_GIB ? addr
        : addr - FOUR_GIB + memory_below_4g_size(machine_config());
}

/* The guest physical address of RAM offset @off. */
static uint64_t physmem_ram_addr(uint64_t off)
{
    uint64_t below = memory_below_4g_size(machine_config());

    return off < below ? off : FOUR_GIB + off - below;
}

static void physmem_mark_dirty(uint64_t addr, size_t len)
{
    if (dirty_log) {
        hbitmap_set(dirty_log, physmem_ram_offset(addr), len);
    }
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
            physmem_mark_dirty(addr, n);
        }
        in += n;
        addr += n;
        len -= n;
    }
}

void physmem_reset(void)
{
    g_clear_pointer(&pages, g_hash_table_destroy);
    physmem_dirty_log_stop();
}

uint64_t physmem_ram_size(void)
{
    return machine_config()->ram_size;
}

const uint8_t *physmem_ram_page(uint64_t off)
{
    g_assert(off % PAGE_SIZE == 0 && off < physmem_ram_size());
    return physmem_page(physmem_ram_addr(off), false);
}

void physmem_ram_store_page(uint64_t off, const void *data)
{
    uint64_t addr = physmem_ram_addr(off);

    g_assert(off % PAGE_SIZE == 0 && off < physmem_ram_size());
    if (data) {
        memcpy(physmem_page(addr, true), data, PAGE_SIZE);
    } else if (pages) {
        uint64_t key = addr / PAGE_SIZE;

        g_hash_table_remove(pages, &key);
    }
    physmem_mark_dirty(addr, PAGE_SIZE);
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

GArray *physmem_ram_stored_pages(void)
{
    GArray *offs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    GHashTableIter it;
    gpointer key;

    if (!pages) {
        return offs;
    }
    g_hash_table_iter_init(&it, pages);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        uint64_t off = physmem_ram_offset(*(uint64_t *)key * PAGE_SIZE);

        g_array_append_val(offs, off);
    }
    g_array_sort(offs, cmp_u64);
    return offs;
}

void physmem_dirty_log_start(void)
{
    if (!dirty_log) {
        dirty_log = hbitmap_new(physmem_ram_size(), PAGE_SIZE);
    }
}

void physmem_dirty_log_stop(void)
{
    g_clear_pointer(&dirty_log, hbitmap_free);
}

bool physmem_dirty_log_running(void)
{
    return dirty_log != NULL;
}

void physmem_dirty_log_sync(HBitmap *into)
{
    g_assert(dirty_log);
    hbitmap_merge(into, dirty_log);
    hbitmap_reset_all(dirty_log);
}

uint64_t physmem_dirty_log_count(void)
{
    g_assert(dirty_log);
    return hbitmap_count(dirty_log);
}
