/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What qcow2-bitmap.c (bitmap data and the life cycle) and
 * qcow2-bitmap-dir.c (the header extension and the directory) share: the
 * on-disk constants, a directory entry, and the directory's operations.
 * The format and the life cycle are described at the top of
 * qcow2-bitmap.c.
 */
#ifndef QCOW2_BITMAP_INT_H
#define QCOW2_BITMAP_INT_H

#include <string.h>

#include "block/core/dirty-bitmap.h"
#include "block/drivers/qcow2.h"
#include "util/be.h"

#define BME_MAX_BITMAPS 65535u
#define BME_MAX_DIR_SIZE (1024u * BME_MAX_BITMAPS)
#define BME_MAX_TABLE_SIZE 0x8000000u
#define BME_MAX_PHYS_SIZE 0x20000000u
#define BME_MIN_GRANULARITY_BITS 9
#define BME_MAX_GRANULARITY_BITS 31
#define BME_MAX_NAME_SIZE 1023u
#define BME_FLAG_IN_USE (1u << 0)
#define BME_FLAG_AUTO (1u << 1)
#define BME_RESERVED_FLAGS 0xfffffffcu
#define BME_ENTRY_RESERVED_MASK 0xff000000000001feull
#define BME_ENTRY_OFFSET_MASK 0x00fffffffffffe00ull
#define BME_ENTRY_ALL_ONES 1ull
#define BT_DIRTY_TRACKING_BITMAP 1
#define DIR_ENTRY_FIXED 24

/* A directory entry, and the in-memory bitmap it is loaded into or
 * stored from. */
typedef struct {
    uint64_t table_offset;
    uint32_t table_size;
    uint32_t flags;
    uint8_t gbits;
    char *name;
    DirtyBitmap *bm;
} BmEntry;

static inline Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static inline BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

static inline void entry_free(gpointer p)
{
    BmEntry *e = p;

    g_free(e->name);
    g_free(e);
}

static inline uint64_t entry_size(size_t name_len)
{
    return align_up(DIR_ENTRY_FIXED + name_len, 8);
}

/* QEMU's bdrv_getlength(): what a bitmap of the node covers. */
static inline uint64_t node_len(BlockNode *bn)
{
    return align_up(bdrv_length(bn), 512);
}

/* Bytes of serialized bitmap for @len bytes at 2^@gbits granularity. */
static inline uint64_t bitmap_bytes(uint64_t len, unsigned gbits)
{
    uint64_t granules = (len + (1ull << gbits) - 1) >> gbits;

    return (granules + 7) / 8;
}

static inline BmEntry *find_entry(GPtrArray *list, const char *name)
{
    for (guint i = 0; i < list->len; i++) {
        BmEntry *e = g_ptr_array_index(list, i);

        if (!strcmp(e->name, name)) {
            return e;
        }
    }
    return NULL;
}

/* The directory as the image holds it: a list of BmEntry (entry_free). */
GPtrArray *qcow2_bm_dir_load(BlockNode *bn, Error **errp);
/* Rewrite the directory where it is (same size, flags changed). */
int qcow2_bm_dir_rewrite_in_place(BlockNode *bn, GPtrArray *list);
/* Write @list as a new directory and point the header at it. */
int qcow2_bm_dir_replace(BlockNode *bn, GPtrArray *list);
/* Free the table at @off (@size entries) and the data clusters it names. */
void qcow2_bm_free_table(BlockNode *bn, uint64_t off, uint32_t size);

#endif
