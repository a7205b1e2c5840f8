/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Two levels: words[] holds one bit per granule; top[] one bit per word
 * of words[] that has any bit set.  A search scans top[] for the next
 * non-empty word, so a 1 TiB disk at 64 KiB granularity (16 Mi granules,
 * 256 Ki words) is crossed in 4 Ki top words.
 */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "util/hbitmap.h"

struct HBitmap {
    uint64_t size;
    unsigned shift;             /* log2(granularity) */
    uint64_t granules;
    uint64_t nwords;
    uint64_t *words;
    uint64_t *top;              /* bit w: words[w] != 0 */
    uint64_t count;             /* granules set */
};

static uint64_t granules_for(uint64_t size, unsigned shift)
{
    return (size + (1ull << shift) - 1) >> shift;
}

static void alloc_levels(HBitmap *hb)
{
    hb->granules = granules_for(hb->size, hb->shift);
    hb->nwords = (hb->granules + 63) / 64;
    hb->words = g_new0(uint64_t, MAX(1, hb->nwords));
    hb->top = g_new0(uint64_t, MAX(1, (hb->nwords + 63) / 64));
}

HBitmap *hbitmap_new(uint64_t size, uint64_t granularity)
{
    HBitmap *hb = g_new0(HBitmap, 1);

    g_assert(granularity && !(granularity & (granularity - 1)));
    hb->size = size;
    hb->shift = __builtin_ctzll(granularity);
    alloc_levels(hb);
    return hb;
}

void hbitmap_free(HBitmap *hb)
{
    if (hb) {
        g_free(hb->words);
        g_free(hb->top);
        g_free(hb);
    }
}

uint64_t hbitmap_size(const HBitmap *hb)
{
    return hb->size;
}

uint64_t hbitmap_granularity(const HBitmap *hb)
{
    return 1ull << hb->shift;
}

/* Granules [*first, *last] touched by [off, off + len), clipped. */
static bool granule_range(const HBitmap *hb, uint64_t off, uint64_t len,
                          uint64_t *first, uint64_t *last)
{
    if (!len || off >= hb->size) {
        return false;
    }
    len = MIN(len, hb->size - off);
    *first = off >> hb->shift;
    *last = (off + len - 1) >> hb->shift;
    return true;
}

static void update_top(HBitmap *hb, uint64_t w)
{
    if (hb->words[w]) {
        hb->top[w / 64] |= 1ull << (w % 64);
    } else {
        hb->top[w / 64] &= ~(1ull << (w % 64));
    }
}

/*
 * Set or clear granules [first, last].  This runs for every enabled
 * bitmap on every guest write, and guests rewrite hot areas, so a word
 * that already holds the bits is left alone: no store (its cache line
 * stays clean) and no summary update.  One popcount of the flipped bits
 * keeps the count (without -mpopcnt each is a libgcc call).
 */
static void change(HBitmap *hb, uint64_t first, uint64_t last, bool set)
{
    for (uint64_t w = first / 64; w <= last / 64; w++) {
        uint64_t lo = w == first / 64 ? first % 64 : 0;
        uint64_t hi = w == last / 64 ? last % 64 : 63;
        uint64_t mask = (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1)
            & ~((1ull << lo) - 1);
        uint64_t old = hb->words[w];
        uint64_t flip = set ? mask & ~old : mask & old;

        if (!flip) {
            continue;
        }
        hb->words[w] = old ^ flip;
        if (set) {
            hb->count += __builtin_popcountll(flip);
        } else {
            hb->count -= __builtin_popcountll(flip);
        }
        update_top(hb, w);
    }
}

void hbitmap_set(HBitmap *hb, uint64_t off, uint64_t len)
{
    uint64_t first, last;

    if (granule_range(hb, off, len, &first, &last)) {
        change(hb, first, last, true);
    }
}

void hbitmap_reset(HBitmap *hb, uint64_t off, uint64_t len)
{
    uint64_t first, last;

    if (granule_range(hb, off, len, &first, &last)) {
        change(hb, first, last, false);
    }
}

void hbitmap_reset_all(HBitmap *hb)
{
    memset(hb->words, 0, MAX(1, hb->nwords) * sizeof(uint64_t));
    memset(hb->top, 0, MAX(1, (hb->nwords + 63) / 64) * sizeof(uint64_t));
    hb->count = 0;
}

bool hbitmap_get(const HBitmap *hb, uint64_t off)
{
    uint64_t g = off >> hb->shift;

    return off < hb->size && (hb->words[g / 64] >> (g % 64)) & 1;
}

uint64_t hbitmap_count(const HBitmap *hb)
{
    uint64_t bytes = hb->count << hb->shift;

    /* the last granule may be cut at the size */
    if (hb->granules && hbitmap_get(hb, hb->size - 1)) {
        bytes -= (hb->granules << hb->shift) - hb->size;
    }
    return bytes;
}

/* The first granule >= @g whose bit is @want, or granules. */
static uint64_t find(const HBitmap *hb, uint64_t g, bool want)
{
    while (g < hb->granules) {
        uint64_t w = g / 64;
        uint64_t bits = want ? hb->words[w] : ~hb->words[w];

        bits &= ~0ull << (g % 64);
        if (bits) {
            g = w * 64 + __builtin_ctzll(bits);
            return MIN(g, hb->granules);
        }
        g = (w + 1) * 64;
        if (want) {
            /* skip clean words through the summary */
            uint64_t t = g / 64;

            while (t < hb->nwords) {
                uint64_t tb = hb->top[t / 64] & (~0ull << (t % 64));

                if (tb) {
                    t = (t / 64) * 64 + __builtin_ctzll(tb);
                    break;
                }
                t = (t / 64 + 1) * 64;
            }
            if (t >= hb->nwords) {
                return hb->granules;
            }
            g = MAX(g, t * 64);
        }
    }
    return hb->granules;
}

int64_t hbitmap_next_dirty(const HBitmap *hb, uint64_t off)
{
    uint64_t g;

    if (off >= hb->size) {
        return -1;
    }
    g = find(hb, off >> hb->shift, true);
    return g < hb->granules ? (int64_t)MAX(g << hb->shift, off) : -1;
}

int64_t hbitmap_next_clean(const HBitmap *hb, uint64_t off)
{
    uint64_t g;

    if (off >= hb->size) {
        return -1;
    }
    g = find(hb, off >> hb->shift, false);
    return g < hb->granules ? (int64_t)MAX(g << hb->shift, off) : -1;
}

bool hbitmap_next_dirty_area(const HBitmap *hb, uint64_t off,
                             uint64_t max_len, uint64_t *start,
                             uint64_t *len)
{
    int64_t s = hbitmap_next_dirty(hb, off);
    int64_t e;
    uint64_t end;

    if (s < 0 || !max_len) {
        return false;
    }
    e = hbitmap_next_clean(hb, s);
    end = e < 0 ? hb->size : (uint64_t)e;
    *start = s;
    *len = MIN(end - s, max_len);
    return true;
}

void hbitmap_merge(HBitmap *dst, const HBitmap *src)
{
    g_assert(dst->size == src->size && dst->shift == src->shift);
    for (uint64_t w = 0; w < dst->nwords; w++) {
        uint64_t old = dst->words[w];

        dst->words[w] |= src->words[w];
        dst->count += __builtin_popcountll(dst->words[w])
            - __builtin_popcountll(old);
        update_top(dst, w);
    }
}

void hbitmap_truncate(HBitmap *hb, uint64_t size)
{
    uint64_t *old = hb->words;
    uint64_t old_nwords = hb->nwords;

    g_free(hb->top);
    hb->size = size;
    alloc_levels(hb);
    memcpy(hb->words, old, MIN(old_nwords, hb->nwords) * sizeof(uint64_t));
    g_free(old);
    /* bits past the new end go */
    if (hb->granules % 64 && hb->nwords) {
        hb->words[hb->nwords - 1] &= (1ull << (hb->granules % 64)) - 1;
    }
    hb->count = 0;
    for (uint64_t w = 0; w < hb->nwords; w++) {
        hb->count += __builtin_popcountll(hb->words[w]);
        update_top(hb, w);
    }
}

size_t hbitmap_serialized_size(const HBitmap *hb)
{
    return (hb->granules + 7) / 8;
}

void hbitmap_serialize(const HBitmap *hb, uint8_t *buf)
{
    size_t n = hbitmap_serialized_size(hb);

    for (size_t i = 0; i < n; i++) {
        buf[i] = hb->words[i / 8] >> (8 * (i % 8));
    }
}

void hbitmap_deserialize(HBitmap *hb, const uint8_t *buf)
{
    size_t n = hbitmap_serialized_size(hb);

    hbitmap_reset_all(hb);
    for (size_t i = 0; i < n; i++) {
        hb->words[i / 8] |= (uint64_t)buf[i] << (8 * (i % 8));
    }
    if (hb->granules % 64 && hb->nwords) {
        hb->words[hb->nwords - 1] &= (1ull << (hb->granules % 64)) - 1;
    }
    for (uint64_t w = 0; w < hb->nwords; w++) {
        hb->count += __builtin_popcountll(hb->words[w]);
        update_top(hb, w);
    }
}
