/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps over a byte range: one bit per @granularity bytes (a
 * power of two), with a summary level (one bit per 64-bit word that is
 * non-zero) so that finding the next dirty or clean area skips clean
 * stretches a word of words at a time.  What mirror, active commit,
 * backup and the user-visible dirty bitmaps track.
 *
 * Ranges are in bytes; a range marks every granule it touches.
 */
#ifndef UTIL_HBITMAP_H
#define UTIL_HBITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HBitmap HBitmap;

/* A clean bitmap for @size bytes; @granularity a power of two >= 1. */
HBitmap *hbitmap_new(uint64_t size, uint64_t granularity);
void hbitmap_free(HBitmap *hb);

uint64_t hbitmap_size(const HBitmap *hb);
uint64_t hbitmap_granularity(const HBitmap *hb);

void hbitmap_set(HBitmap *hb, uint64_t off, uint64_t len);
void hbitmap_reset(HBitmap *hb, uint64_t off, uint64_t len);
void hbitmap_reset_all(HBitmap *hb);
bool hbitmap_get(const HBitmap *hb, uint64_t off);

/* Dirty bytes: dirty granules times the granularity (the last may be
 * cut at the size). */
uint64_t hbitmap_count(const HBitmap *hb);

/*
 * The first dirty area at or after @off: true with [*start, *start +
 * *len) (len at most @max_len, granule-aligned except at the end), or
 * false when everything from @off on is clean.
 */
bool hbitmap_next_dirty_area(const HBitmap *hb, uint64_t off,
                             uint64_t max_len, uint64_t *start,
                             uint64_t *len);

/* The first dirty byte (granule start) at or after @off, or -1. */
int64_t hbitmap_next_dirty(const HBitmap *hb, uint64_t off);

/* The first clean granule start at or after @off, or -1. */
int64_t hbitmap_next_clean(const HBitmap *hb, uint64_t off);

/* @dst |= @src; both have the same size and granularity. */
void hbitmap_merge(HBitmap *dst, const HBitmap *src);

/* Grow or shrink to @size bytes (new space clean). */
void hbitmap_truncate(HBitmap *hb, uint64_t size);

/*
 * The bits as bytes, little-endian bit order (bit i of byte j is granule
 * 8j + i: the qcow2 bitmap extension's order), ceil(granules / 8) long.
 */
size_t hbitmap_serialized_size(const HBitmap *hb);
void hbitmap_serialize(const HBitmap *hb, uint8_t *buf);
void hbitmap_deserialize(HBitmap *hb, const uint8_t *buf);

#endif /* UTIL_HBITMAP_H */
