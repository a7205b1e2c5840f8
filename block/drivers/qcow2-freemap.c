/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 free clusters below the end of the file, for QEMU's allocator.
 *
 * QEMU allocates first fit: from a free-cluster index it looks for the
 * first @n clusters in a row whose refcount is 0, counting everything
 * past the end of the file as free; a free moves the index back to the
 * freed cluster, an allocation moves it past what it took.  Reading
 * refcount blocks on every allocation is what QEMU does; here the
 * refcounts that are 0 are kept as one bit per cluster (2 MiB of bits
 * for a 1 TiB image of 64 KiB clusters), so an allocation never waits
 * for I/O.  Bits past the map's end read as "in use"; the caller says
 * where the file ends.
 */
#include "config.h"

#include <string.h>

#include "block/drivers/qcow2.h"

#define WORD_BITS 64

void qcow2_freemap_init(Qcow2FreeMap *m)
{
    m->words = NULL;
    m->nbits = 0;
}

void qcow2_freemap_destroy(Qcow2FreeMap *m)
{
    g_free(m->words);
    m->words = NULL;
    m->nbits = 0;
}

static void grow(Qcow2FreeMap *m, uint64_t nbits)
{
    uint64_t old_words = (m->nbits + WORD_BITS - 1) / WORD_BITS;
    uint64_t words;

    if (nbits <= m->nbits) {
        return;
    }
    /* doubling keeps a file that grows cluster by cluster cheap */
    nbits = MAX(nbits, m->nbits * 2);
    words = (nbits + WORD_BITS - 1) / WORD_BITS;
    m->words = g_renew(uint64_t, m->words, words);
    memset(m->words + old_words, 0, (words - old_words) * sizeof(uint64_t));
    m->nbits = words * WORD_BITS;
}

void qcow2_freemap_mark(Qcow2FreeMap *m, uint64_t first, uint64_t n,
                        bool free)
{
    uint64_t c = first;
    uint64_t end = first + n;

    if (!n) {
        return;
    }
    if (free) {
        grow(m, end);
    } else {
        end = MIN(end, m->nbits);
    }
    while (c < end) {
        uint64_t bit = c % WORD_BITS;
        uint64_t span = MIN(WORD_BITS - bit, end - c);
        uint64_t mask = (span == WORD_BITS ? ~0ull
                                           : ((1ull << span) - 1) << bit);

        if (free) {
            m->words[c / WORD_BITS] |= mask;
        } else {
            m->words[c / WORD_BITS] &= ~mask;
        }
        c += span;
    }
}

static bool bit(const Qcow2FreeMap *m, uint64_t c)
{
    return c < m->nbits && (m->words[c / WORD_BITS] >> (c % WORD_BITS)) & 1;
}

bool qcow2_freemap_is_free(const Qcow2FreeMap *m, uint64_t c, uint64_t end)
{
    return c >= end || bit(m, c);
}

/* The first cluster in [@c, @limit) whose bit is @want, else @limit. */
static uint64_t next_with(const Qcow2FreeMap *m, uint64_t c, uint64_t limit,
                          bool want)
{
    /* past the words every bit is 0: no 1 there, a 0 at once */
    uint64_t scan_end = want ? MIN(limit, m->nbits) : limit;

    while (c < scan_end) {
        uint64_t w;

        if (c >= m->nbits) {
            return c;
        }
        w = m->words[c / WORD_BITS];
        w = want ? w : ~w;
        w &= ~0ull << (c % WORD_BITS);
        if (w) {
            uint64_t r = c - c % WORD_BITS + __builtin_ctzll(w);

            return MIN(r, limit);
        }
        c = c - c % WORD_BITS + WORD_BITS;
    }
    return limit;
}

uint64_t qcow2_freemap_find(const Qcow2FreeMap *m, uint64_t from, uint64_t n,
                            uint64_t end)
{
    uint64_t c = from;

    while (c < end) {
        uint64_t run_end;

        c = next_with(m, c, end, true);
        if (c >= end) {
            break;
        }
        run_end = next_with(m, c, end, false);
        /* a run reaching the end of the file goes on past it */
        if (run_end >= end || run_end - c >= n) {
            return c;
        }
        c = run_end;
    }
    return c;
}

uint64_t qcow2_freemap_count(const Qcow2FreeMap *m, uint64_t end)
{
    uint64_t n = 0;
    uint64_t limit = MIN(end, m->nbits);

    for (uint64_t i = 0; i * WORD_BITS < limit; i++) {
        uint64_t w = m->words[i];

        if ((i + 1) * WORD_BITS > limit) {
            w &= (1ull << (limit - i * WORD_BITS)) - 1;
        }
        n += __builtin_popcountll(w);
    }
    return n;
}
