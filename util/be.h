/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Big-endian fields at any alignment: on-disk formats (qcow2) and wire
 * protocols (NBD) put them at offsets a cast must not assume aligned.
 */
#ifndef UTIL_BE_H
#define UTIL_BE_H

#include <stdint.h>
#include <string.h>

#include <glib.h>

static inline void be_put16(uint8_t *p, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    memcpy(p, &v, 2);
}

static inline void be_put32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static inline void be_put64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, 8);
}

static inline uint16_t be_get16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, 2);
    return GUINT16_FROM_BE(v);
}

static inline uint32_t be_get32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

static inline uint64_t be_get64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

#endif
