/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block layer internals shared by the graph, the request layer and the
 * drivers: node and child structures, the driver vtable, statistics.
 * Only block/ and its unit tests include this.
 */
#ifndef BLOCK_CORE_BLOCK_INT_H
#define BLOCK_CORE_BLOCK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#include "block/core/block.h"

typedef struct BdrvChild BdrvChild;
typedef struct BlockDriver BlockDriver;

/* Debug events formats report to their file child (blkdebug's "event"). */
typedef enum {
    BLKDBG_L1_UPDATE,
    BLKDBG_L1_GROW_ALLOC_TABLE,
    BLKDBG_L1_GROW_WRITE_TABLE,
    BLKDBG_L1_GROW_ACTIVATE_TABLE,
    BLKDBG_L2_LOAD,
    BLKDBG_L2_UPDATE,
    BLKDBG_L2_UPDATE_COMPRESSED,
    BLKDBG_L2_ALLOC_COW_READ,
    BLKDBG_L2_ALLOC_WRITE,
    BLKDBG_READ_AIO,
    BLKDBG_READ_BACKING_AIO,
    BLKDBG_READ_COMPRESSED,
    BLKDBG_WRITE_AIO,
    BLKDBG_WRITE_COMPRESSED,
    BLKDBG_VMSTATE_LOAD,
    BLKDBG_VMSTATE_SAVE,
    BLKDBG_COW_READ,
    BLKDBG_COW_WRITE,
    BLKDBG_REFTABLE_LOAD,
    BLKDBG_REFTABLE_GROW,
    BLKDBG_REFTABLE_UPDATE,
    BLKDBG_REFBLOCK_LOAD,
    BLKDBG_REFBLOCK_UPDATE,
    BLKDBG_REFBLOCK_UPDATE_PART,
    BLKDBG_REFBLOCK_ALLOC,
    BLKDBG_REFBLOCK_ALLOC_HOOKUP,
    BLKDBG_REFBLOCK_ALLOC_WRITE,
    BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS,
    BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE,
    BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE,
    BLKDBG_CLUSTER_ALLOC,
    BLKDBG_CLUSTER_ALLOC_BYTES,
    BLKDBG_CLUSTER_FREE,
    BLKDBG_FLUSH_TO_OS,
    BLKDBG_FLUSH_TO_DISK,
    BLKDBG_PWRITEV_RMW_HEAD,
    BLKDBG_PWRITEV_RMW_AFTER_HEAD,
    BLKDBG_PWRITEV_RMW_TAIL,
    BLKDBG_PWRITEV_RMW_AFTER_TAIL,
    BLKDBG_PWRITEV,
    BLKDBG_PWRITEV_ZERO,
    BLKDBG_PWRITEV_DONE,
    BLKDBG_EMPTY_IMAGE_PREPARE,
    BLKDBG_L1_SHRINK_WRITE_TABLE,
    BLKDBG_L1_SHRINK_FREE_L2_CLUSTERS,
    BLKDBG_COR_WRITE,
    BLKDBG_CLUSTER_ALLOC_SPACE,
    BLKDBG_NONE,
    BLKDBG__MAX,
} BlkdebugEvent;


/* Permissions, as QEMU 7.2's image locking understands them (bits). */
enum {
    BLK_PERM_CONSISTENT_READ = 1 << 0,
    BLK_PERM_WRITE = 1 << 1,
    BLK_PERM_WRITE_UNCHANGED = 1 << 2,
    BLK_PERM_RESIZE = 1 << 3,
    BLK_PERM_ALL = 0x0f,
};

/* I/O accounting, reported by query-blockstats. */
typedef struct BlockStats {
    uint64_t rd_bytes, wr_bytes, unmap_bytes;
    uint64_t rd_ops, wr_ops, flush_ops, unmap_ops, zone_ops;
    uint64_t failed_rd, failed_wr, failed_flush, failed_unmap;
    uint64_t invalid_rd, invalid_wr, invalid_flush, invalid_unmap;
    uint64_t rd_time_ns, wr_time_ns, flush_time_ns, unmap_time_ns;
    uint64_t wr_highest_offset;
    int64_t last_access_ns;     /* monotonic; -1: never */
} BlockStats;

/* An edge: @parent (a node; NULL when a backend holds it) uses @child. */
struct BdrvChild {
    char *name;                 /* "file", "backing", "image" */
    BlockNode *parent;
    BlockNode *child;
};

/*
 * What a node's driver can take in one request (QEMU's BlockLimits); 0
 * means no limit, and request_alignment is at least 1.  The request
 * layer (io-align.c) cuts and widens requests to fit before the driver
 * sees them.  Computed by bdrv_refresh_limits(): merged from the
 * children as QEMU merges them, then the driver's own.
 */
typedef struct BdrvLimits {
    uint32_t request_alignment;         /* offsets and lengths */
    uint64_t max_transfer;              /* reads and writes */
    uint32_t pwrite_zeroes_alignment;   /* preferred for zero writes */
    uint64_t max_pwrite_zeroes;
    uint32_t pdiscard_alignment;        /* preferred for discards */
    uint64_t max_pdiscard;
} BdrvLimits;

typedef enum {
    BDRV_DETECT_ZEROES_OFF,
    BDRV_DETECT_ZEROES_ON,
    BDRV_DETECT_ZEROES_UNMAP,
} BdrvDetectZeroes;

struct BlockNode {
    char *node_name;
    bool auto_named;            /* "#blockN", not chosen by the user */
    /* a job's filter the user did not name: query-block looks through
     * it, as QEMU's implicit nodes */
    bool implicit;
    /* a job's filter: what the job takes on it and shares (QEMU's job
     * edge or job backend there), on top of its parents' */
    bool job_held;
    unsigned job_perm;
    unsigned job_shared;
    /* taken out of the graph (a job's filter at the job's end) while
     * requests that went through it still hold it: out of the node
     * list, and its edges count for nothing (bdrv_edge_live()) */
    bool detached;
    const BlockDriver *drv;
    void *opaque;               /* driver state, drv->instance_size */
    int refcnt;
    bool monitor_owned;         /* added by blockdev-add / -blockdev */
    /*
     * The parent that opened this node for itself (inline options, the
     * image header's backing file): it hands on its options when it is
     * reopened (QEMU's inherits_from).  Only ever compared.
     */
    const BlockNode *inherits_from;

    BdrvChild *file;
    BdrvChild *backing;
    GPtrArray *parents;         /* BdrvChild * whose child we are */
    unsigned backend_users;     /* backends with us as root */
    unsigned job_writers;       /* of them, jobs' that only write (a
                                 * mirror's target) */

    json_t *options;            /* the options we were opened with */
    json_t *reopened_opts;      /* flattened, as the last reopen gave
                                 * them with what they inherited (reopen.c);
                                 * NULL before */
    char *filename;             /* what query-block shows as "file" */
    char *backing_file;         /* as recorded in the image header */
    char *backing_format;
    char *full_backing_filename;
    char *auto_backing_file;    /* QEMU's: decides "json:" filenames */

    bool read_only;
    /*
     * QEMU's BDRV_O_INACTIVE: opened on an incoming destination, whose
     * source may still write the image; no image locks, no writers,
     * until bdrv_activate() (activate.c)
     */
    bool inactive;
    bool force_share;           /* lets its parents share everything */
    bool copy_on_read;          /* -drive copy-on-read=on */
    bool cache_direct;
    bool cache_no_flush;
    bool discard_unmap;         /* discard=unmap (else ignore) */
    BdrvDetectZeroes detect_zeroes;
    uint64_t total_size;        /* bytes */

    unsigned in_flight;
    GArray *drain_waiters;      /* DrainWaiter */
    /* completed writes, zero writes, discards, sync writes, truncates:
     * a flush need not reach the disk if none came since the last one */
    uint64_t write_gen;
    uint64_t flushed_gen;       /* write_gen the last good flush covered */
    BdrvLimits bl;

    /* write serialisation (io.c) */
    GList *writes;              /* IoReq *: writes that started */
    GList *range_locks;         /* BdrvRangeLock *: held or waiting */
    GQueue queued_writes;       /* IoReq *: waiting for a lock */
    GArray *write_notifiers;
    BdrvWriteHookFn *write_hook;
    void *write_hook_opaque;
    bool write_hook_discards;   /* discards go to the hook too */
    BlockStats stats;
};

/*
 * One node's part of a reopen (block/reopen.c): the options it is
 * reopened with, flattened as QEMU flattens them ("cache.direct",
 * "inject-error.0.event"; borrowed), the generic state it gets, and
 * what its driver staged.
 */
typedef struct BdrvReopenState {
    BlockNode *bn;
    const json_t *opts;
    const json_t *old_opts;     /* the node's current ones, flattened */
    bool read_only;
    bool cache_direct;
    bool cache_no_flush;
    bool discard_unmap;
    void *opaque;               /* the driver's, between prepare and end */
} BdrvReopenState;

/*
 * A driver.  I/O callbacks are asynchronous: the driver calls @cb later
 * (through ioq_defer if it finishes at once).  Offsets and lengths are
 * already checked by the request layer.
 */
struct BlockDriver {
    const char *name;
    size_t instance_size;
    bool is_format;             /* has a "file" child, format info */
    bool is_filter;             /* data passes through to one child */
    bool has_backing;           /* may have a "backing" child */
    /*
     * A protocol's options that change what it serves (QEMU's
     * strong_runtime_opts), "driver" among them, in the order QEMU's
     * "json:" file names print them; given none but the driver, the
     * file name is "DRIVER://".  NULL: the options as given.
     */
    const char *const *strong_opts;
    const char *child_name;     /* its file child's, if not "file" */
    /* a filter QEMU names json:{...} always, never by its child's name */
    bool json_filename;
    /* a filter's own options that name carries, before "driver" (QEMU's
     * strong runtime options: throttle's "throttle-group") */
    const char *const *json_opts;
    /* blockdev-reopen refuses it (QEMU: no bdrv_reopen_prepare) */
    bool no_reopen;
    /* a job's filter QEMU opens read-only (commit_top) */
    bool read_only_filter;

    /*
     * Open @bn from @opts (the driver's BlockdevOptions members, borrowed).
     * The generic layer has already opened or looked up "file" (for
     * formats and filters).  Set bn->total_size.  A format that wants a
     * backing child sets bn->backing_file/backing_format; the generic
     * layer opens it unless the options say otherwise.
     */
    bool (*open)(BlockNode *bn, const json_t *opts, Error **errp);
    void (*close)(BlockNode *bn);
    /*
     * optional: how surely the first @len bytes of an image (at least
     * 512) are this format's, 0 for not at all (bdrv_probe_format())
     */
    int (*probe)(const uint8_t *buf, size_t len);

    void (*read)(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                 BdrvCb *cb, void *opaque);
    void (*write)(BlockNode *bn, uint64_t off, uint64_t len,
                  const void *buf, int flags, BdrvCb *cb, void *opaque);
    /* optional; without it zeroes are written as data */
    void (*write_zeroes)(BlockNode *bn, uint64_t off, uint64_t len,
                         int flags, BdrvCb *cb, void *opaque);
    /* optional; without it discard does nothing */
    void (*discard)(BlockNode *bn, uint64_t off, uint64_t len, BdrvCb *cb,
                    void *opaque);
    /* this node's own part of a flush; children are flushed after */
    void (*flush)(BlockNode *bn, BdrvCb *cb, void *opaque);
    /* optional; without it everything is data (protocols) */
    void (*block_status)(BlockNode *bn, uint64_t off, uint64_t len,
                         BdrvStatusCb *cb, void *opaque);

    /* Control path (node quiesced). */
    bool (*truncate)(BlockNode *bn, uint64_t size, Error **errp);
    bool (*change_backing_file)(BlockNode *bn, const char *file,
                                const char *fmt, Error **errp);
    /*
     * optional: write a new, empty image of this format over @file's
     * contents (bdrv_create()); without it the format cannot create
     */
    bool (*create)(BlockNode *file, const BdrvCreateOpts *o, Error **errp);
    /*
     * Reopen (all optional; a driver without them reopens with its
     * options unchanged).  reopen_opts: the options reopen_prepare
     * applies (a name covers its members: "overlap-check" takes in
     * "overlap-check.template"); any other must keep its value.
     * reopen_resettable: those that may be left out, meaning their
     * default.  reopen_prepare checks @rs and stages the change in
     * rs->opaque, changing nothing anyone sees (it may write what must
     * be on disk before the node is read-only); then exactly one of
     * reopen_commit (which cannot fail) or reopen_abort, which ends
     * rs->opaque.  With reopen_post, commit leaves rs->opaque to it; it
     * runs once every node of the reopen has committed.
     */
    const char *const *reopen_opts;
    const char *const *reopen_resettable;
    bool (*reopen_prepare)(BdrvReopenState *rs, Error **errp);
    void (*reopen_commit)(BdrvReopenState *rs);
    void (*reopen_abort)(BdrvReopenState *rs);
    void (*reopen_post)(BdrvReopenState *rs);
    /* what the parents use (@perm) and let others do (@shared): image
     * locks for protocol nodes */
    bool (*set_perm)(BlockNode *bn, unsigned perm, unsigned shared,
                     Error **errp);
    /*
     * Filters: adjust what the filter takes from its child (@perm) and
     * shares (@shared), given its users' (already in both); optional.
     * A format with it decides alone what it takes from its file.
     */
    void (*child_perm)(const BlockNode *bn, unsigned *perm,
                       unsigned *shared);
    /*
     * optional: the node's child that is neither its file nor its
     * backing (copy-before-write's "target"), or NULL; the graph's
     * walks, permissions and queries see it, and other_child_perm says
     * what its edge takes and shares
     */
    BdrvChild *(*other_child)(const BlockNode *bn);
    void (*other_child_perm)(const BdrvChild *c, unsigned *perm,
                             unsigned *shared);
    /* bytes the image occupies on disk ("actual-size"), or -1 */
    int64_t (*allocated_size)(BlockNode *bn);
    /* "format-specific" for query-block's image info, or NULL */
    json_t *(*format_specific)(BlockNode *bn);
    /* optional: image facts (bdrv_get_info()); false: none to give */
    bool (*get_info)(BlockNode *bn, BlockDriverInfo *bdi);
    bool (*dirty_flag)(BlockNode *bn);
    /* optional: false once the node does no more I/O (a corrupt image) */
    bool (*is_inserted)(BlockNode *bn);

    /* optional: the node's name when it has a plain one of its own
     * (QEMU's exact_filename, e.g. blkdebug's "blkdebug::FILE"), else
     * NULL for the generic rules (bdrv_refresh_filename) */
    char *(*plain_filename)(BlockNode *bn);
    /* optional: set the driver's own limits in bn->bl over the merged
     * ones (called from the child's attach on, before open too) */
    void (*refresh_limits)(BlockNode *bn);

    /* optional: a drain begins; let every request held back go now
     * (throttle, as QEMU disables I/O limits while draining) */
    void (*drain_release)(BlockNode *bn);

    /* blkdebug: an event happened; see bdrv_debug_event() */
    bool (*debug_event)(BlockNode *bn, BlkdebugEvent event, BdrvCb *cb,
                        void *opaque);
    /* blkdebug: breakpoints on this node, as bdrv_debug_breakpoint()
     * and the others below; all four or none */
    int (*debug_breakpoint)(BlockNode *bn, const char *event,
                            const char *tag);
    int (*debug_remove_breakpoint)(BlockNode *bn, const char *tag);
    int (*debug_resume)(BlockNode *bn, const char *tag);
    bool (*debug_is_suspended)(BlockNode *bn, const char *tag);

    /* Synchronous I/O for the control path (open, header updates). */
    int (*pread_sync)(BlockNode *bn, uint64_t off, uint64_t len, void *buf);
    int (*pwrite_sync)(BlockNode *bn, uint64_t off, uint64_t len,
                       const void *buf);
    int (*flush_sync)(BlockNode *bn);
    /* optional, as discard: a discard the caller must see done */
    int (*discard_sync)(BlockNode *bn, uint64_t off, uint64_t len);

    /*
     * Persistent dirty bitmaps (optional; without them a bitmap cannot
     * be persistent).  bitmap_can_store: may a new bitmap @name of
     * @granularity be stored (QEMU's checks and messages)?
     * bitmap_remove: drop the stored bitmap @name from the image (absent
     * is not an error); 0, -EBUSY while metadata writeback is in flight
     * (flush and try again; @errp untouched), or -errno with @errp set.
     */
    bool (*bitmap_can_store)(BlockNode *bn, const char *name,
                             uint32_t granularity, Error **errp);
    int (*bitmap_remove)(BlockNode *bn, const char *name, Error **errp);
};

extern const char *const blkdbg_event_names[BLKDBG__MAX];

/* The event called @name (QEMU's BlkdebugEvent names), or -1. */
int bdrv_debug_event_by_name(const char *name);

/*
 * Report @event on @bn (normally a format's file child).  Returns false
 * when the caller goes on at once (no blkdebug, or no breakpoint on the
 * event); true when a breakpoint holds the request, in which case
 * @cb(@opaque, 0) resumes it later.  @cb may be NULL for events whose
 * caller cannot wait; they are never held.
 */
bool bdrv_debug_event(BlockNode *bn, BlkdebugEvent event, BdrvCb *cb,
                      void *opaque);

/*
 * Recompute @bn's limits (QEMU's bdrv_refresh_limits): max_transfer and
 * pdiscard_alignment merged from its children, then the driver's; and
 * so for its parents, whose merged limits may follow.
 */
void bdrv_refresh_limits(BlockNode *bn);

/*
 * QEMU's check as a user that cannot resize takes the write permission
 * on @bn (qemu-io): every node the permission reaches through filters
 * and raw must have a size that is a multiple of its request alignment,
 * or its widened writes would grow it.
 */
bool bdrv_check_write_unresized(const BlockNode *bn, Error **errp);

/* A read without @bn's own copy-on-read (what copy-on-read reads with). */
void bdrv_read_plain(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                     BdrvCb *cb, void *opaque);

/*
 * Read [@off, @off + @len) of @bn, copying into @bn what it does not
 * hold itself (io-cor.c): all of it, or with @bottom (a node of @bn's
 * backing chain, or @bn) only what the chain holds down to @bottom.
 * @flags: BDRV_REQ_LOCK_OWNER when the caller holds a range lock on @bn
 * over the cluster-aligned range.  @len > 0.
 */
void bdrv_cor_read(BlockNode *bn, BlockNode *bottom, uint64_t off,
                   uint64_t len, void *buf, int flags, BdrvCb *cb,
                   void *opaque);

/* Synchronous control-path I/O on a (quiesced) node. */
int bdrv_pread_sync(BlockNode *bn, uint64_t off, uint64_t len, void *buf);
int bdrv_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                     const void *buf);
int bdrv_flush_sync(BlockNode *bn);

/* A discard as bdrv_discard() would do it (nothing with discard=ignore). */
int bdrv_discard_sync(BlockNode *bn, uint64_t off, uint64_t len);

/*
 * Filter nodes' common code (filter.c): the child a filter shows (NULL
 * for other nodes), and BlockDriver entries that pass everything a
 * filter does not intercept straight to that child.
 */
BlockNode *bdrv_filter_child(const BlockNode *bn);
void bdrv_filter_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                      BdrvCb *cb, void *opaque);
void bdrv_filter_write(BlockNode *bn, uint64_t off, uint64_t len,
                       const void *buf, int flags, BdrvCb *cb, void *opaque);
void bdrv_filter_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                              int flags, BdrvCb *cb, void *opaque);
void bdrv_filter_discard(BlockNode *bn, uint64_t off, uint64_t len,
                         BdrvCb *cb, void *opaque);
void bdrv_filter_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                              BdrvStatusCb *cb, void *opaque);
bool bdrv_filter_truncate(BlockNode *bn, uint64_t size, Error **errp);
int64_t bdrv_filter_allocated_size(BlockNode *bn);
bool bdrv_filter_get_info(BlockNode *bn, BlockDriverInfo *bdi);
bool bdrv_filter_dirty_flag(BlockNode *bn);
int bdrv_filter_pread_sync(BlockNode *bn, uint64_t off, uint64_t len,
                           void *buf);
int bdrv_filter_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                            const void *buf);
int bdrv_filter_flush_sync(BlockNode *bn);
int bdrv_filter_discard_sync(BlockNode *bn, uint64_t off, uint64_t len);

/*
 * A job's filter node (QEMU's mirror_top, commit_top, copy-on-read,
 * copy-before-write): @drv opened over @child (referenced by the new
 * node), named @node_name, or auto-named and then implicit, read-only
 * or not, with the driver's options @opts (borrowed; may be NULL).  Not yet in
 * @child's place: see bdrv_replace_node().  NULL with QEMU's error for
 * a bad or taken name.  Main loop only.
 */
BlockNode *bdrv_open_filter(const BlockDriver *drv, BlockNode *child,
                            const char *node_name, const json_t *opts,
                            bool read_only, Error **errp);

/* @bn, or below it the first node that is not an implicit filter. */
BlockNode *bdrv_skip_implicit_filters(BlockNode *bn);

/*
 * A filter driver's entries that pass straight to its child: requests,
 * and the image facts queries show.  For a BlockDriver initializer,
 * after the entries the driver sets itself.
 */
#define BDRV_FILTER_PASSTHROUGH_IO                                      \
    .read = bdrv_filter_read,                                           \
    .write = bdrv_filter_write,                                         \
    .write_zeroes = bdrv_filter_write_zeroes,                           \
    .discard = bdrv_filter_discard
#define BDRV_FILTER_PASSTHROUGH_INFO                                    \
    .block_status = bdrv_filter_block_status,                           \
    .allocated_size = bdrv_filter_allocated_size,                       \
    .get_info = bdrv_filter_get_info,                                   \
    .dirty_flag = bdrv_filter_dirty_flag,                               \
    .pread_sync = bdrv_filter_pread_sync,                               \
    .pwrite_sync = bdrv_filter_pwrite_sync,                             \
    .flush_sync = bdrv_filter_flush_sync,                               \
    .discard_sync = bdrv_filter_discard_sync

/* A filter's name is its child's file name (QEMU's job filters). */
char *bdrv_filter_plain_filename(BlockNode *bn);

/* Register a driver (called once per driver at bdrv_init). */
const BlockDriver *bdrv_find_driver(const char *name);

/*
 * Make @drv openable by name, for a driver outside drivers/ (the job
 * layer's copy-before-write filter, which runs the copy engine).  At
 * start-up, once per driver.
 */
void bdrv_register_driver(const BlockDriver *drv);

/* @bn's child that is neither file nor backing, or NULL. */
BdrvChild *bdrv_other_child(const BlockNode *bn);

extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_raw;
extern const BlockDriver bdrv_qcow2;
extern const BlockDriver bdrv_null_co;
extern const BlockDriver bdrv_nbd;
extern const BlockDriver bdrv_null_aio;
extern const BlockDriver bdrv_blkdebug;
extern const BlockDriver bdrv_cor;
extern const BlockDriver bdrv_throttle;
/* the filters jobs insert (job-filters.c), never opened by name */
extern const BlockDriver bdrv_mirror_top;
extern const BlockDriver bdrv_mirror_top_commit;
extern const BlockDriver bdrv_commit_top;

/* Graph helpers for drivers and jobs. */
BdrvChild *bdrv_attach_child(BlockNode *parent, BlockNode *child,
                             const char *name);
void bdrv_detach_child(BdrvChild *c);
void bdrv_set_backing(BlockNode *bn, BlockNode *backing);

/*
 * Recompute what @bn's parents (and backends) need from it, as QEMU's
 * default permissions do, and apply it to @bn and the nodes below it
 * (file nodes: their image locks).  Fails with QEMU's message when a
 * read-only node would be written or another process's locks conflict.
 */
bool bdrv_refresh_perms(BlockNode *bn, Error **errp);

/* Whether nodes opened now start inactive (bdrv_set_incoming()). */
bool bdrv_incoming(void);

/* ---- permissions (perm.c) ------------------------------------------- */

/* An edge whose parent is closing has left the graph, as in QEMU. */
bool bdrv_edge_live(const BdrvChild *c);

/* What edge @c takes from its child and shares, QEMU's way. */
void bdrv_child_perm(const BdrvChild *c, unsigned *perm, unsigned *shared);

/* @bn's cumulative permissions: its parents' and backends' together. */
void bdrv_node_perm(const BlockNode *bn, unsigned *perm, unsigned *shared);

/* What a backend takes on its root: the guest device's, or -drive's. */
void blk_root_perm(BlockBackend *blk, unsigned *perm, unsigned *shared);

/* The permission bits a list of QEMU's names ("write", ...) stands for. */
unsigned bdrv_perm_names_mask(const json_t *list);

/*
 * Would a new unnamed user taking @perm on @bn (sharing everything)
 * conflict with a parent that does not share it?  True, with QEMU's
 * message, when it would (block_resize's backend).
 */
bool bdrv_perm_conflict_unnamed(BlockNode *bn, unsigned perm, Error **errp);

/*
 * Do @bn's parent nodes allow each other what they take?  QEMU's
 * bdrv_check_parents_compliance(), with its message ("Permission
 * conflict on node 'src': permissions 'write, resize' are both
 * required by node 'q2' (...) and unshared by node 'cbw' (...).").
 */
bool bdrv_parents_compatible(const BlockNode *bn, Error **errp);

/*
 * QEMU's op blockers on a backing node: true, with QEMU's message, when
 * @bn is one (delete, resize, snapshot and backing changes refuse it).
 */
bool bdrv_backing_blocked(const BlockNode *bn, Error **errp);

/*
 * Does something using @bn need to write it: a writable format above it,
 * or a guest device that took write access when it was attached?
 */
bool bdrv_has_writers(const BlockNode *bn);

/*
 * The first of @names (NULL-terminated; a name covers its members) whose
 * value @rs->opts changes from @rs->old_opts, or NULL: for a driver that
 * takes some of its options only unchanged.
 */
const char *bdrv_reopen_changed(const BdrvReopenState *rs,
                                const char *const *names);

/* Does @bn have @child anywhere below it (or is it @child)? */
bool bdrv_has_descendant(const BlockNode *bn, const BlockNode *child);

/* A guest device on @blk was attached writable (QEMU keeps that). */
bool blk_dev_writes(const BlockBackend *blk);

/*
 * The permissions @blk was created with (blk_new_export()): true, with
 * them in @perm and @shared, for such a backend; false for the others,
 * whose permissions follow from their device (blk_root_perm()).
 */
bool blk_explicit_perm(const BlockBackend *blk, unsigned *perm,
                       unsigned *shared);

/*
 * Put @to where @from is: every backend whose root @from is and every
 * node using @from as a child (closing parents, and @to and the nodes
 * below it, excepted) use @to instead.  Main loop only; the caller
 * holds a reference on both.
 */
void bdrv_replace_node(BlockNode *from, BlockNode *to);

/*
 * Release @lock (held, on a node that @to has just replaced with
 * bdrv_replace_node()): the writes it held back on its node are
 * started on @to instead, as QEMU resubmits requests queued at a
 * backend on the backend's new root.
 */
void bdrv_range_unlock_redirect(BdrvRangeLock *lock, BlockNode *to);

/*
 * Open the backing image @bn's header names, as a node opened without
 * "backing" options would have (a no-op when @bn has a backing or its
 * image names none): QEMU's bdrv_open_backing_file(), for a node first
 * opened with "backing": null.  Main loop only.
 */
bool bdrv_open_backing_file(BlockNode *bn, Error **errp);

/*
 * Write a new backing file name and format into @bn's image header (the
 * graph does not change) and refresh the names derived from it.
 */
bool bdrv_change_backing_file(BlockNode *bn, const char *file,
                              const char *fmt, Error **errp);

/*
 * Recompute bn->filename: the file's name for a plain format or filter,
 * or QEMU's "json:{...}" when options or an overridden backing make the
 * file name alone not enough to open the node again.
 */
void bdrv_refresh_filename(BlockNode *bn);

/* @backing as a path relative to the directory of image @filename. */
char *bdrv_full_backing_filename(const char *filename, const char *backing);

/*
 * QEMU's HMP qemu-io takes "write" on a backend for its write commands
 * and keeps it: a backend no device uses takes only "consistent read"
 * until then.
 */
void blk_qemu_io_take_write(BlockBackend *blk);
bool blk_qemu_io_wrote(const BlockBackend *blk);

/* The per-device statistics of a backend. */
BlockStats *blk_stats(BlockBackend *blk);

/* Request accounting done by the request layer. */
void bdrv_inc_in_flight(BlockNode *bn);
void bdrv_dec_in_flight(BlockNode *bn);

#endif /* BLOCK_CORE_BLOCK_INT_H */
