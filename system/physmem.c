/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest physical memory for qtest's readb..readq, read, write, memset
 * and the base64 forms.  qmpd has no CPU to run, so nothing but the
 * harness touches this memory.  RAM is one anonymous mapping of its
 * size, reserved but not committed (MAP_NORESERVE), in RAM offsets: a
 * 4 TiB guest costs nothing until its pages are written, a page that
 * was never written reads as the kernel's zero page, and migration
 * copies a page straight to where it belongs.  A bitmap (mapped the
 * same way) says which pages were stored: the others are zeros that
 * migration sends as such without reading them.  Transparent huge
 * pages are asked for: a migration's destination fills RAM in order,
 * and a 2 MiB fault costs about what a 4 KiB one does.
 *
 * The map is the RAM's alone: [0, below_4g) and, on the pc machines,
 * [4 GiB, 4 GiB + the rest).  QEMU also maps firmware and device
 * windows (the BIOS below 1 MiB and below 4 GiB, VGA); qmpd has none of
 * them, so those read as unassigned memory does, zeros.
 *
 * Migration addresses the same bytes by RAM offset (the pages below
 * 4 GiB first, then those mapped above it), and reads which pages
 * changed from the dirty log: a bitmap in RAM offsets that every store
 * marks while it runs.  The two address spaces differ by one
 * subtraction.
 */
#include "config.h"

#include <string.h>
#include <sys/mman.h>

#include <glib.h>

#include "system/machine.h"
#include "system/memory.h"
#include "system/physmem.h"

#define PAGE_SIZE PHYSMEM_PAGE_SIZE
#define FOUR_GIB (1ULL << 32)

static uint8_t *ram;            /* NULL: nothing stored yet */
static uint64_t *stored;        /* a bit a page: it holds bytes */
static uint64_t mapped_size;    /* the RAM size ram was made for */
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

static void *map_reserved(uint64_t len)
{
    void *p = mmap(NULL, MAX(len, 1), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        g_error("cannot reserve %" G_GUINT64_FORMAT " bytes of guest RAM",
                len);
    }
    return p;
}

static uint64_t stored_bytes(uint64_t size)
{
    return (size / PAGE_SIZE + 63) / 64 * 8;
}

static void physmem_unmap(void)
{
    if (ram) {
        munmap(ram, MAX(mapped_size, 1));
        munmap(stored, MAX(stored_bytes(mapped_size), 1));
        ram = NULL;
        stored = NULL;
    }
}

/* The mapping, made on the first store (the machine is configured). */
static void physmem_map(void)
{
    uint64_t size = physmem_ram_size();

    if (ram && mapped_size == size) {
        return;
    }
    physmem_unmap();
    mapped_size = size;
    ram = map_reserved(size);
    stored = map_reserved(stored_bytes(size));
#ifdef MADV_HUGEPAGE
    madvise(ram, size, MADV_HUGEPAGE);
#endif
}

void physmem_ram_prepare(void)
{
    physmem_map();
}

static bool page_stored(uint64_t off)
{
    uint64_t pn = off / PAGE_SIZE;

    return ram && mapped_size == physmem_ram_size()
        && (__atomic_load_n(&stored[pn / 64], __ATOMIC_RELAXED)
            >> (pn % 64)) & 1;
}

/*
 * The page at RAM offset @off for writing (the mapping made, the page
 * counted as stored); its bytes are zeros if it was not stored.
 */
static uint8_t *page_for_store(uint64_t off)
{
    uint64_t pn = off / PAGE_SIZE;

    physmem_map();
    /* atomic: migration's channel threads store neighbouring pages */
    __atomic_fetch_or(&stored[pn / 64], 1ull << (pn % 64),
                      __ATOMIC_RELAXED);
    return ram + off;
}

void physmem_read(uint64_t addr, void *buf, size_t len)
{
    uint8_t *out = buf;

    while (len) {
        size_t off = addr % PAGE_SIZE;
        size_t n = MIN(len, PAGE_SIZE - off);
        const uint8_t *p = physmem_is_ram(addr)
            ? physmem_ram_page(physmem_ram_offset(addr - off)) : NULL;

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
            memcpy(page_for_store(physmem_ram_offset(addr - off)) + off,
                   in, n);
            physmem_mark_dirty(addr, n);
        }
        in += n;
        addr += n;
        len -= n;
    }
}

void physmem_reset(void)
{
    physmem_unmap();
    physmem_dirty_log_stop();
}

uint64_t physmem_ram_size(void)
{
    return machine_config()->ram_size;
}

const uint8_t *physmem_ram_page(uint64_t off)
{
    g_assert(off % PAGE_SIZE == 0 && off < physmem_ram_size());
    return page_stored(off) ? ram + off : NULL;
}

void physmem_ram_store_page(uint64_t off, const void *data)
{
    g_assert(off % PAGE_SIZE == 0 && off < physmem_ram_size());
    if (data) {
        memcpy(page_for_store(off), data, PAGE_SIZE);
    } else if (page_stored(off)) {
        uint64_t pn = off / PAGE_SIZE;

        /* it reads as zeros again, and a later write starts from them */
        memset(ram + off, 0, PAGE_SIZE);
        __atomic_fetch_and(&stored[pn / 64], ~(1ull << (pn % 64)),
                           __ATOMIC_RELAXED);
    }
    physmem_mark_dirty(physmem_ram_addr(off), PAGE_SIZE);
}

GArray *physmem_ram_stored_pages(void)
{
    GArray *offs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t words;

    if (!ram || mapped_size != physmem_ram_size()) {
        return offs;
    }
    words = stored_bytes(mapped_size) / 8;
    for (uint64_t w = 0; w < words; w++) {
        for (uint64_t bits = stored[w]; bits; bits &= bits - 1) {
            uint64_t off = (w * 64 + __builtin_ctzll(bits)) * PAGE_SIZE;

            g_array_append_val(offs, off);
        }
    }
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
