/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 driver internals, shared by block/qcow2*.c only.
 *
 * On-disk structures are big-endian; in memory the L1 table and the
 * refcount table are host-endian arrays, while L2 tables and refcount
 * blocks stay in their on-disk byte order inside cached cluster buffers
 * (read and written as they are; entries are converted on access).
 */
#ifndef BLOCK_DRIVERS_QCOW2_H
#define BLOCK_DRIVERS_QCOW2_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "block/core/block-int.h"

#define QCOW2_MAGIC 0x514649fbu          /* "QFI\xfb" */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)

#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO 1ull
#define L1E_OFFSET_MASK 0x00fffffffffffe00ull
#define L2E_OFFSET_MASK 0x00fffffffffffe00ull
#define REFT_OFFSET_MASK 0xfffffffffffffe00ull

#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ull << 0)

#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/*
 * Why a cluster loses a reference (QEMU's qcow2_discard_type): decides,
 * with the pass-discard-* options, whether the host range of a cluster
 * whose refcount reaches 0 is discarded on the file.  Queued frees carry
 * it in the low bits of their (cluster aligned) offset.
 */
typedef enum {
    QCOW2_DISCARD_NEVER,        /* replaced by COW, an aborted allocation */
    QCOW2_DISCARD_ALWAYS,       /* bitmap tables and data */
    QCOW2_DISCARD_REQUEST,      /* guest discard, zero write with unmap */
    QCOW2_DISCARD_SNAPSHOT,     /* internal snapshot deletion */
    QCOW2_DISCARD_OTHER,        /* old L1/refcount table, bitmap directory */
    QCOW2_DISCARD__MAX,
} Qcow2DiscardType;

#define QCOW2_FREE_TYPE_MASK 7ull

/* Metadata kinds a write must not overlap (QEMU's bit order). */
enum {
    QCOW2_OL_MAIN_HEADER = 1 << 0,
    QCOW2_OL_ACTIVE_L1 = 1 << 1,
    QCOW2_OL_ACTIVE_L2 = 1 << 2,
    QCOW2_OL_REFCOUNT_TABLE = 1 << 3,
    QCOW2_OL_REFCOUNT_BLOCK = 1 << 4,
    QCOW2_OL_SNAPSHOT_TABLE = 1 << 5,
    QCOW2_OL_INACTIVE_L1 = 1 << 6,
    QCOW2_OL_INACTIVE_L2 = 1 << 7,
    QCOW2_OL_BITMAP_DIRECTORY = 1 << 8,
    QCOW2_OL_BITS = 9,
};
#define QCOW2_OL_CONSTANT (QCOW2_OL_MAIN_HEADER | QCOW2_OL_ACTIVE_L1 \
                           | QCOW2_OL_REFCOUNT_TABLE \
                           | QCOW2_OL_SNAPSHOT_TABLE \
                           | QCOW2_OL_BITMAP_DIRECTORY)
#define QCOW2_OL_CACHED (QCOW2_OL_CONSTANT | QCOW2_OL_ACTIVE_L2 \
                         | QCOW2_OL_REFCOUNT_BLOCK | QCOW2_OL_INACTIVE_L1)
#define QCOW2_OL_ALL (QCOW2_OL_CACHED | QCOW2_OL_INACTIVE_L2)

/* The runtime options of a qcow2 node (qcow2-options.c). */
typedef struct Qcow2Options {
    bool pass_discard[QCOW2_DISCARD__MAX];
    unsigned overlap_check;     /* QCOW2_OL_* */
    uint64_t l2_cache_tables;
    uint64_t rb_cache_tables;
    uint32_t cache_clean_interval;  /* seconds; 0: never */
} Qcow2Options;

/*
 * Free clusters below the end of the file, one bit each (set: free).
 * Clusters at or past the end of the file are free without a bit.
 */
typedef struct Qcow2FreeMap {
    uint64_t *words;
    uint64_t nbits;             /* clusters the words cover */
} Qcow2FreeMap;

/*
 * A host range of freed clusters: to discard, or waiting for the data
 * I/O begun before sequence number @seq to complete.
 */
typedef struct Qcow2FreeRange {
    uint64_t off;
    uint64_t len;
    uint64_t seq;
} Qcow2FreeRange;

/* A cached metadata cluster: an L2 table or a refcount block. */
typedef struct Qcow2Table {
    uint64_t offset;            /* host offset of the cluster */
    uint8_t *data;              /* cluster_size bytes, on-disk order */
    bool loaded;
    int load_ret;
    GArray *waiters;            /* requests waiting for the load */
    unsigned pin;               /* users that must not see it evicted */
    uint64_t dirty_gen;         /* bumped on every change */
    uint64_t clean_gen;         /* gen known to be on disk */
    bool writing;
    bool used;                  /* since the last cache-clean pass */
    bool on_disk;               /* loaded, or written at least once */
    uint64_t own_gen;           /* allocation generation of its cluster */
    GArray *held;               /* Qcow2HeldEntry: L2 entries not to write
                                 * yet (qcow2_table_hold) */
    GList *lru_link;
} Qcow2Table;

/* An L2 entry written as @old until increments up to @gen are on disk. */
typedef struct {
    uint32_t index;
    uint64_t old;
    uint64_t gen;
} Qcow2HeldEntry;

typedef struct {
    void (*cb)(void *opaque, int ret);
    void *opaque;
} Qcow2Waiter;

typedef struct Qcow2Cache {
    GHashTable *map;            /* offset -> Qcow2Table * */
    GQueue lru;                 /* least recently used first */
    unsigned max;               /* soft limit on clean tables kept */
    BlkdebugEvent load_event;
} Qcow2Cache;

/* A guest range whose clusters are being allocated. */
typedef struct Qcow2Alloc {
    uint64_t start;             /* guest bytes, cluster aligned */
    uint64_t end;
    GQueue *waiters;            /* Qcow2Waiter */
} Qcow2Alloc;

typedef struct Qcow2State {
    /* header */
    uint32_t version;
    uint32_t cluster_bits;
    uint32_t cluster_size;
    uint32_t l2_bits;
    uint32_t l2_size;           /* entries per L2 table */
    uint32_t header_length;
    uint64_t incompat;
    uint64_t compat;
    uint64_t autoclear;
    uint32_t refcount_order;
    uint32_t refcount_bits;
    uint64_t refblock_entries;  /* refcounts per block */
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint8_t compression_type;

    /* the bitmaps extension (persistent dirty bitmaps, qcow2-bitmap.c) */
    uint32_t nb_bitmaps;
    uint64_t bitmap_dir_offset;
    uint64_t bitmap_dir_size;
    bool drop_bitmaps_ext;      /* stale (autoclear bit off): not kept */

    /* L1 */
    uint64_t *l1;
    uint32_t l1_size;
    uint64_t l1_offset;
    bool l1_dirty;
    uint64_t l1_gen;

    /* refcounts */
    uint64_t *reftable;
    uint32_t reftable_size;     /* entries */
    uint64_t reftable_offset;
    uint32_t reftable_clusters;
    uint32_t reftable_used;     /* entries up to the last block's */
    bool reftable_dirty;
    bool header_dirty;
    /* for blkdebug's refblock_alloc events, as the writes happen */
    bool refblock_hooked;       /* new blocks in the table since written */
    bool reftable_moved;        /* the header must switch to a new table */

    Qcow2Options opts;

    /*
     * allocation: QEMU's first fit, searching from @free_index for free
     * clusters below @next_free (the end of everything in use) and
     * going on past it
     */
    uint64_t next_free;
    Qcow2FreeMap freemap;
    uint64_t free_index;        /* cluster index */
    /*
     * Clusters to dereference once the metadata that stopped using them
     * is on disk (a decrement written first could leave a referenced
     * cluster with refcount 0 after a crash).
     */
    GArray *pending_frees;      /* uint64_t host offsets, one cluster each */
    /*
     * Every allocation bumps @alloc_gen; increments of generations up to
     * @rb_durable_gen are on disk.  Metadata referring to clusters of a
     * later generation must not reach the disk before their refcounts
     * do (see qcow2-flush.c).
     */
    uint64_t alloc_gen;
    uint64_t rb_durable_gen;
    Qcow2Table *tail_rb;        /* refcount block at next_free, pinned */

    /*
     * Clusters whose refcount reached 0 on their way into @freemap
     * (qcow2-discard.c): discarded on the file first when their free's
     * type passes discards down, then held until the data I/O that was
     * in flight when they were freed has completed.
     */
    GArray *discards;           /* Qcow2Range to discard on the file */
    unsigned discards_in_flight;
    GArray *quarantine;         /* Qcow2Held */
    GArray *io_in_flight;       /* uint64_t sequence numbers */
    uint64_t io_seq;

    /* fatal corruption (QEMU's bs->drv = NULL): no more I/O at all */
    bool dead;
    bool signaled_corruption;

    Qcow2Cache l2_cache;
    Qcow2Cache rb_cache;
    GPtrArray *allocs;          /* Qcow2Alloc * in flight */

    /* writeback */
    bool flushing;
    GArray *flush_waiters;      /* Qcow2Waiter, for the flush running */
    GArray *next_flush;         /* Qcow2Waiter, queued behind it */
    guint writeback_timer;
    guint cache_clean_timer;

    GPtrArray *kept_exts;       /* GBytes: type (4 bytes BE) + data */
} Qcow2State;

/* qcow2-cache.c */
void qcow2_cache_init(Qcow2Cache *c, unsigned max, BlkdebugEvent ev);
void qcow2_cache_destroy(Qcow2Cache *c);

/*
 * Get the table at @offset, loading it if needed; @cb runs (deferred)
 * with the table pinned or an error.  Unpin with qcow2_table_unpin().
 */
typedef void Qcow2TableCb(void *opaque, int ret, Qcow2Table *t);
void qcow2_table_get(BlockNode *bn, Qcow2Cache *c, uint64_t offset,
                     Qcow2TableCb *cb, void *opaque);

/* The table if cached and loaded, pinned; else NULL. */
Qcow2Table *qcow2_table_peek(Qcow2Cache *c, uint64_t offset);

/*
 * A new zeroed table at @offset (just allocated); pinned and dirty.
 * NULL, with the image marked corrupt, when the cache already holds a
 * table there: the refcounts of a damaged image called a cluster in use
 * free.
 */
Qcow2Table *qcow2_table_new(BlockNode *bn, Qcow2Cache *c, uint64_t offset);

/* Load synchronously (control path and the rare tail refblock). */
Qcow2Table *qcow2_table_get_sync(BlockNode *bn, Qcow2Cache *c,
                                 uint64_t offset, int *ret);

void qcow2_table_unpin(Qcow2Cache *c, Qcow2Table *t);

/*
 * Entry @i of L2 table @t changes from @old to point to clusters of
 * allocation generation @gen: until their refcounts are on disk the
 * table is written with @old there.
 */
void qcow2_table_hold(Qcow2Table *t, uint32_t i, uint64_t old, uint64_t gen);

/* The table at @offset if cached (not pinned, loaded or not), or NULL. */
Qcow2Table *qcow2_cache_lookup(Qcow2Cache *c, uint64_t offset);
void qcow2_table_dirty(Qcow2Table *t);
void qcow2_cache_drop(Qcow2Cache *c, uint64_t offset);

/*
 * Write every dirty table of @c (from snapshots, so later changes are
 * safe); @cb when all writes completed.  L2 tables go out with their
 * held entries' old values, and a table never written before waits
 * until its own cluster's refcount is on disk.
 */
void qcow2_cache_writeback(BlockNode *bn, Qcow2Cache *c,
                           void (*cb)(void *opaque, int ret), void *opaque);
unsigned qcow2_cache_dirty_count(Qcow2Cache *c);

/* Write dirty tables synchronously (control path; nothing in flight). */
int qcow2_cache_write_sync(BlockNode *bn, Qcow2Cache *c);

/* qcow2-cache.c: cache-clean-interval, QEMU's qcow2_cache_clean_unused() */
void qcow2_cache_clean_unused(Qcow2Cache *c);

/* Start the node's cache-clean-interval timer (none for 0). */
void qcow2_cache_clean_start(BlockNode *bn);
bool qcow2_cache_loading(Qcow2Cache *c, uint64_t offset);

/* qcow2-freemap.c (pure: no I/O) */
void qcow2_freemap_init(Qcow2FreeMap *m);
void qcow2_freemap_destroy(Qcow2FreeMap *m);

/* Mark [@first, +@n) free or in use; the map grows as needed. */
void qcow2_freemap_mark(Qcow2FreeMap *m, uint64_t first, uint64_t n,
                        bool free);
bool qcow2_freemap_is_free(const Qcow2FreeMap *m, uint64_t c, uint64_t end);

/*
 * QEMU's first fit: the first @n free clusters in a row at or after
 * @from, where everything from @end (the end of the file) is free.
 */
uint64_t qcow2_freemap_find(const Qcow2FreeMap *m, uint64_t from, uint64_t n,
                            uint64_t end);

/* The number of free clusters below @end. */
uint64_t qcow2_freemap_count(const Qcow2FreeMap *m, uint64_t end);

/* qcow2-discard.c: freed clusters on their way back to the allocator */

/* A cluster's refcount reached 0 (in memory), for @type's reason. */
void qcow2_cluster_freed(BlockNode *bn, uint64_t off, Qcow2DiscardType type);

/*
 * Discard on the file what qcow2_cluster_freed() collected (where its
 * type passes discards down); @cb once they completed and the clusters
 * wait in quarantine.  The _sync form for the control path.
 */
void qcow2_discards_issue(BlockNode *bn, void (*cb)(void *opaque, int ret),
                          void *opaque);
void qcow2_discards_issue_sync(BlockNode *bn);

/*
 * Data I/O on the file (reads and in-place writes of clusters the L2
 * tables point to): a cluster freed while it runs is reused only once
 * it completed.  qcow2_io_begin() returns the token for qcow2_io_end().
 */
uint64_t qcow2_io_begin(BlockNode *bn);
void qcow2_io_end(BlockNode *bn, uint64_t token);

/*
 * The L2 entry replacing @old when a guest discard (@discard) or zero
 * write of its whole cluster runs, as QEMU 7.2 sets it; *@release when
 * @old's clusters lose their reference (a free of type "request").
 * Equal to @old when nothing changes.  v2 zero writes without a backing
 * file are discards.
 */
uint64_t qcow2_zero_entry(uint32_t version, bool backing, bool discard,
                          bool may_unmap, uint64_t old, bool *release);

void qcow2_discard_init(BlockNode *bn);
void qcow2_discard_cleanup(BlockNode *bn);

/* qcow2-options.c */

/*
 * The runtime options in @opts as QEMU 7.2 takes them (its messages),
 * with @bn's image already parsed and @unmap its discard option (the
 * default of pass-discard-request); refused ones name themselves.
 */
bool qcow2_options_parse(BlockNode *bn, const json_t *opts, bool unmap,
                         Qcow2Options *o, Error **errp);

/*
 * QEMU's read_cache_sizes() and its minimums: the L2 and refcount cache
 * sizes in tables for an image of @size bytes and @cluster_size.
 */
bool qcow2_cache_sizes(const json_t *opts, uint32_t cluster_size,
                       uint64_t size, uint64_t *l2_tables,
                       uint64_t *rb_tables, Error **errp);

/* qcow2-overlap.c */

/*
 * QEMU's qcow2_pre_write_overlap_check(): 0 when a write of [@off,
 * +@len) on the file touches no metadata the node's overlap-check
 * watches (minus @ign); else the image is marked corrupt and made
 * unusable (BLOCK_IMAGE_CORRUPTED) and -EIO returned.
 */
int qcow2_overlap_check(BlockNode *bn, unsigned ign, uint64_t off,
                        uint64_t len);

/* QEMU's qcow2_signal_corruption(). */
void qcow2_signal_corruption(BlockNode *bn, bool fatal, int64_t off,
                             int64_t size, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

/* qcow2-refcount.c */
bool qcow2_refcount_open(BlockNode *bn, Error **errp);

/*
 * Allocate @n contiguous clusters at the end of the image and set their
 * refcounts to 1 (in memory).  Returns the host offset or 0 with
 * -errno in *@ret.
 */
uint64_t qcow2_alloc_clusters(BlockNode *bn, uint64_t n, int *ret);

/*
 * Queue [@offset, +@n clusters) for a refcount decrement; the next flush
 * applies it after writing the L2 and L1 tables.  @type says why.
 */
void qcow2_free_clusters(BlockNode *bn, uint64_t offset, uint64_t n,
                         Qcow2DiscardType type);

/*
 * Apply the decrements @frees (taken from @pending_frees; owned from now
 * on) to the (cached) refcount blocks.
 */
void qcow2_apply_frees(BlockNode *bn, GArray *frees,
                       void (*cb)(void *opaque, int ret), void *opaque);

/* The same, synchronously (control path; no flush in flight). */
int qcow2_apply_frees_sync(BlockNode *bn);

/* The refcount of the cluster at @offset (sync; control path). */
int64_t qcow2_get_refcount_sync(BlockNode *bn, uint64_t offset);

/* Change a refcount synchronously (creation, control path). */
int qcow2_update_refcount_sync(BlockNode *bn, uint64_t offset, int delta);

/*
 * At a read-write open: the clusters below the end of the file whose
 * refcount is 0 are free (read from the refcount blocks).
 */
int qcow2_freemap_load(BlockNode *bn);

/* Keep the refcount block covering @next_free loaded and pinned. */
int qcow2_pin_tail_refblock(BlockNode *bn);

/* Write the refcount table (and header if needed) when dirty. */
/* Report the blkdebug events of a refcount table write about to start. */
void qcow2_reftable_write_events(BlockNode *bn);
void qcow2_write_reftable(BlockNode *bn, void (*cb)(void *opaque, int ret),
                          void *opaque);

/* The same, synchronously (control path; no flush in flight). */
int qcow2_write_reftable_sync(BlockNode *bn);

/* qcow2-header.c */
int qcow2_write_header_sync(BlockNode *bn);

/*
 * The header cluster for the node's state (ioq buffer of cluster_size
 * bytes); *@len is what it needs, more than a cluster when it does not
 * fit (the buffer is then not valid).
 */
uint8_t *qcow2_header_bytes(BlockNode *bn, size_t *len);

/*
 * blkdebug's events for a header about to be written: one that points
 * to a moved refcount table switches to it (refblock_alloc_switch_table).
 */
void qcow2_header_write_events(BlockNode *bn);

/* The header extensions in @hdr from @start to @limit, at open. */
bool qcow2_parse_extensions(BlockNode *bn, const uint8_t *hdr,
                            uint64_t start, uint64_t limit, Error **errp);

/* qcow2-flush.c */
void qcow2_flush_metadata(BlockNode *bn, bool sync_disk,
                          void (*cb)(void *opaque, int ret), void *opaque);

/* Write back metadata every second while anything is dirty. */
void qcow2_writeback_start(BlockNode *bn);

/*
 * qcow2_flush_metadata() run synchronously, same stages and order, for
 * control paths that must see their metadata on disk before going on
 * (storing bitmaps).  -EBUSY while an asynchronous flush is running
 * (tables may be in flight): nothing was done, flush and try again.
 */
int qcow2_flush_metadata_sync(BlockNode *bn);

/* qcow2-bitmap.c: persistent dirty bitmaps (the bitmaps extension) */

/* The extension's header fields, at open (@len bytes at @data). */
bool qcow2_bitmaps_parse_ext(BlockNode *bn, const uint8_t *data,
                             uint32_t len, Error **errp);

/*
 * At open, after the rest: create the node's bitmaps from the image.
 * Read-write, the loaded ones are marked in use in the image; read-only,
 * they are read-only.  Those found in use are inconsistent.
 */
bool qcow2_bitmaps_load(BlockNode *bn, Error **errp);

/*
 * Write every persistent, consistent, writable bitmap of the node into
 * the image (not in use); with @release they leave the node (close).
 * 0, -EBUSY (flush in flight; nothing done) or -errno with @errp set.
 */
int qcow2_bitmaps_store(BlockNode *bn, bool release, Error **errp);

/* Read-only -> read-write: mark the read-only bitmaps in use again. */
bool qcow2_bitmaps_reopen_rw(BlockNode *bn, Error **errp);

/* A resize keeps the bitmaps only when each is loaded and usable. */
bool qcow2_bitmaps_truncate_check(BlockNode *bn, Error **errp);

/* BlockDriver.bitmap_can_store / bitmap_remove */
bool qcow2_bitmap_can_store(BlockNode *bn, const char *name,
                            uint32_t granularity, Error **errp);
int qcow2_bitmap_remove(BlockNode *bn, const char *name, Error **errp);

/* qcow2-entry.c: L2 entries */

/* What an L2 entry points to. */
typedef enum {
    QCOW2_KIND_UNALLOCATED,
    QCOW2_KIND_DATA,            /* allocated, refcount 1 (COPIED) */
    QCOW2_KIND_SHARED,          /* allocated, refcount > 1 */
    QCOW2_KIND_ZERO,
    QCOW2_KIND_ZERO_ALLOC,      /* zero flag with a preallocated cluster */
    QCOW2_KIND_COMPRESSED,
} Qcow2ClusterKind;

Qcow2ClusterKind qcow2_classify(const Qcow2State *s, uint64_t e);

/* The host bytes [*@off, +*@len) holding compressed entry @e's data. */
void qcow2_compressed_range(const Qcow2State *s, uint64_t e, uint64_t *off,
                            uint64_t *len);

/*
 * Queue the host clusters entry @e used for a refcount decrement after
 * the next flush (qcow2_free_clusters()), for @type's reason.
 */
void qcow2_release_entry(BlockNode *bn, uint64_t e, Qcow2DiscardType type);

/*
 * A new, empty L2 table for L1 entry @l1i (pinned, dirty; the L1 entry
 * points to it in memory), or NULL with -errno in *@ret.
 */
Qcow2Table *qcow2_l2_alloc(BlockNode *bn, uint64_t l1i, int *ret);

/* qcow2-io.c: the data path (BlockDriver.read, write, ...) */
void qcow2_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                BdrvCb *cb, void *opaque);
void qcow2_write(BlockNode *bn, uint64_t off, uint64_t len, const void *buf,
                 int flags, BdrvCb *cb, void *opaque);
void qcow2_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len, int flags,
                        BdrvCb *cb, void *opaque);
void qcow2_discard(BlockNode *bn, uint64_t off, uint64_t len, BdrvCb *cb,
                   void *opaque);
void qcow2_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                        BdrvStatusCb *cb, void *opaque);

/* qcow2-resize.c: BlockDriver.truncate (block_resize), growing or
 * shrinking as QEMU 7.2 does; the node is drained and flushed. */
bool qcow2_truncate(BlockNode *bn, uint64_t size, Error **errp);

/* Header fields may be unaligned. */
static inline uint32_t be32_read(const void *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

static inline uint64_t be64_read(const void *p)
{
    return GUINT64_FROM_BE(*(const uint64_t *)p);
}

static inline void be64_write(void *p, uint64_t v)
{
    *(uint64_t *)p = GUINT64_TO_BE(v);
}

/* Entry @i of the L2 table @t (kept in on-disk order). */
static inline uint64_t qcow2_l2_get(const Qcow2Table *t, uint32_t i)
{
    return be64_read(t->data + 8 * i);
}

static inline void qcow2_l2_set(Qcow2Table *t, uint32_t i, uint64_t e)
{
    be64_write(t->data + 8 * i, e);
}

static inline uint64_t size_to_clusters(const Qcow2State *s, uint64_t size)
{
    return (size + s->cluster_size - 1) >> s->cluster_bits;
}

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* BlockDriver.create (qcow2-create.c): write a new, empty image over
 * @file's contents. */
bool qcow2_create(BlockNode *file, const BdrvCreateOpts *o, Error **errp);

#endif /* BLOCK_DRIVERS_QCOW2_H */
