/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * RAM in the stream.  An entry is a big-endian u64, the page's RAM
 * offset with flags in its low bits: MIG_RAM_PAGE and the 4096 bytes,
 * or MIG_RAM_ZERO and a u32 count of zero pages from there.  A page
 * the guest never wrote, or wrote with zeros, costs 12 bytes per run
 * instead of 4096 per page (QEMU's "duplicate" pages, counted per
 * page).  The destination stores a zero run by freeing the pages,
 * which also undoes what an earlier pass sent for them.
 */
#include "config.h"

#include <string.h>

#include "migration/migration-int.h"
#include "migration/stream.h"
#include "system/physmem.h"

#define PAGE PHYSMEM_PAGE_SIZE

static bool page_zero(const uint8_t *p)
{
    static const uint8_t zero[PAGE];

    return !p || !memcmp(p, zero, PAGE);
}

uint64_t mig_ram_put_dirty(GByteArray *out, HBitmap *dirty, uint64_t *scan,
                           uint64_t max_pages)
{
    MigInfo *mi = mig_info();
    uint64_t size = hbitmap_size(dirty);
    guint start = mig_stream_begin_record(out, MIG_SECTION_RAM, 1);
    uint64_t done = 0;

    while (done < max_pages) {
        int64_t off = hbitmap_next_dirty(dirty, *scan);
        const uint8_t *p;
        uint64_t n = 1;

        if (off < 0) {
            break;
        }
        p = physmem_ram_page(off);
        if (page_zero(p)) {
            /* the run: dirty zero pages that follow each other */
            while (done + n < max_pages && off + n * PAGE < size
                   && hbitmap_get(dirty, off + n * PAGE)
                   && page_zero(physmem_ram_page(off + n * PAGE))) {
                n++;
            }
            mig_put_be64(out, off | MIG_RAM_ZERO);
            mig_put_be32(out, n);
            mi->duplicate += n;
        } else {
            mig_put_be64(out, off | MIG_RAM_PAGE);
            g_byte_array_append(out, p, PAGE);
            mi->normal++;
        }
        hbitmap_reset(dirty, off, n * PAGE);
        done += n;
        *scan = off + n * PAGE;
    }
    if (!done) {
        g_byte_array_set_size(out, start);
        return 0;
    }
    mig_stream_end_record(out, start);
    return done;
}

bool mig_ram_load(const uint8_t *p, uint32_t len, Error **errp)
{
    uint64_t size = physmem_ram_size();
    const uint8_t *end = p + len;

    while (p < end) {
        uint64_t e, off, n;

        if (end - p < 8) {
            error_setg(errp, "Truncated RAM entry");
            return false;
        }
        e = mig_get_be64(p);
        p += 8;
        off = e & ~(uint64_t)(PAGE - 1);
        if ((e & (PAGE - 1)) == MIG_RAM_PAGE) {
            if (end - p < PAGE || off >= size) {
                error_setg(errp, "Invalid RAM page at 0x%" G_GINT64_MODIFIER
                           "x", off);
                return false;
            }
            physmem_ram_store_page(off, p);
            p += PAGE;
        } else if ((e & (PAGE - 1)) == MIG_RAM_ZERO) {
            if (end - p < 4) {
                error_setg(errp, "Truncated RAM entry");
                return false;
            }
            n = mig_get_be32(p);
            p += 4;
            if (off >= size || n > (size - off) / PAGE) {
                error_setg(errp, "Invalid RAM zero run at 0x%"
                           G_GINT64_MODIFIER "x", off);
                return false;
            }
            for (uint64_t i = 0; i < n; i++) {
                physmem_ram_store_page(off + i * PAGE, NULL);
            }
        } else {
            error_setg(errp, "Unknown RAM entry flags 0x%x",
                       (unsigned)(e & (PAGE - 1)));
            return false;
        }
    }
    return true;
}
