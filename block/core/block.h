/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block layer's public API: the node graph (format, protocol and
 * filter nodes joined by "file" and "backing" children), block backends
 * (what a guest device or a -drive id refers to), and asynchronous I/O
 * on both.
 *
 * Everything runs on the main loop thread.  I/O functions start a
 * request and return; the callback runs later from the main loop, never
 * before the function returns.  Control operations (open, reopen,
 * resize, header updates) take Error ** and finish before returning;
 * they do small, bounded metadata I/O on quiesced nodes.
 */
#ifndef BLOCK_CORE_BLOCK_H
#define BLOCK_CORE_BLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"

typedef struct BlockNode BlockNode;
typedef struct BlockBackend BlockBackend;

/* Completion of an I/O request: 0 or -errno. */
typedef void BdrvCb(void *opaque, int ret);

/* Completion of a control operation: NULL or its error (taken). */
typedef void BdrvDoneCb(void *opaque, Error *err);

/* QEMU's BlockdevOnError: what a device or a job does on an I/O error. */
typedef enum BlockdevOnError {
    BLOCKDEV_ON_ERROR_REPORT,
    BLOCKDEV_ON_ERROR_IGNORE,
    BLOCKDEV_ON_ERROR_ENOSPC,
    BLOCKDEV_ON_ERROR_STOP,
    BLOCKDEV_ON_ERROR_AUTO,
} BlockdevOnError;

/* What is done about one error (BLOCK_IO_ERROR's, BLOCK_JOB_ERROR's action). */
typedef enum BlockErrorAction {
    BLOCK_ERROR_ACTION_IGNORE,
    BLOCK_ERROR_ACTION_REPORT,
    BLOCK_ERROR_ACTION_STOP,
} BlockErrorAction;

/* "report", ... from QMP (NULL: @dflt). */
BlockdevOnError block_on_error_parse(const char *s, BlockdevOnError dflt);

/* Request flags. */
enum {
    BDRV_REQ_MAY_UNMAP = 1,     /* zero writes may deallocate */
    BDRV_REQ_FUA = 2,           /* durable on completion */
    BDRV_REQ_LOCK_OWNER = 4,    /* by the holder of a range lock: no wait */
    /*
     * From a backend, not a parent node: as in QEMU, only a node's
     * parents lose MAY_UNMAP to its discard=ignore
     */
    BDRV_REQ_FROM_BACKEND = 8,
    /* the data does not change (a copy-on-read): no write notifier or
     * hook sees it */
    BDRV_REQ_WRITE_UNCHANGED = 16,
};

/* Block status bits. */
enum {
    BDRV_STATUS_DATA = 1,       /* reads come from this node's data */
    BDRV_STATUS_ZERO = 2,       /* reads return zeroes */
    BDRV_STATUS_ALLOCATED = 4,  /* this node (not a backing) decides */
};

/*
 * Status of [@off, @off + *pnum): @ret is 0 or -errno, @status a mask of
 * BDRV_STATUS_*, @pnum how many bytes from @off share it (at least one
 * byte when @ret == 0 and the range was not empty).
 */
typedef void BdrvStatusCb(void *opaque, int ret, int status, uint64_t pnum);

/* ---- nodes ---------------------------------------------------------------- */

/* Set up the block layer (the I/O engine). */
bool bdrv_init(Error **errp);

/*
 * Open a node from BlockdevOptions (@opts, validated against the
 * schema; borrowed).  Children given inline are opened too; children
 * given by name are referenced.  With @monitor_owned the node can be
 * removed with blockdev-del.  Returns the node (one reference, held by
 * the caller) or NULL.
 */
BlockNode *bdrv_open_options(const json_t *opts, bool monitor_owned,
                             Error **errp);

/*
 * The options of the protocol node a file name stands for, as QEMU reads
 * file names: QEMU's legacy "blkdebug:CONFIG:IMAGE" / "blkdebug::IMAGE"
 * is a blkdebug node (with config file CONFIG) over the file IMAGE; an
 * NBD name is an nbd node; any other name is a file.  (A json: name
 * describes a whole node: see bdrv_json_filename_options() and
 * bdrv_open_filename().)  A new reference, or NULL with QEMU's message.
 */
json_t *bdrv_filename_options(const char *filename, Error **errp);

/* Does @filename use QEMU's json:{...} pseudo-protocol? */
bool bdrv_filename_is_json(const char *filename);

/*
 * The options of the node the json: name @filename stands for, opened
 * in @format (NULL: the name's own driver, which @format overrides as
 * QEMU's explicit options override the name's), dotted keys nested.
 * Without a driver the options have a file child whose format the
 * caller probes.
 * A new reference, or NULL with QEMU's message.
 */
json_t *bdrv_json_filename_options(const char *filename, const char *format,
                                   Error **errp);

/*
 * Open the node a command's file name stands for (drive-mirror's and
 * drive-backup's targets, a new medium): @format (NULL: probed from the
 * file) over the protocol node of @filename, @file_extra added to the
 * protocol node's options and @node_extra to the format node's, and
 * "backing": null when @no_backing and the format has backing files.
 * A json: name may give the format node's options too (@format wins
 * over its driver); one of a protocol node alone, without @format, opens
 * that node.  The new node (a reference for the caller) or NULL.
 */
BlockNode *bdrv_open_filename(const char *filename, const char *format,
                              const json_t *file_extra,
                              const json_t *node_extra, bool no_backing,
                              Error **errp);

/* Does @filename name an NBD export (nbd:..., nbd://, nbd+unix://)? */
bool bdrv_filename_is_nbd(const char *filename);

/* The nbd driver's options for such a name (QEMU's messages if bad). */
json_t *bdrv_nbd_filename_options(const char *filename, Error **errp);

/* Does @filename use the legacy blkdebug syntax? */
bool bdrv_filename_is_blkdebug(const char *filename);

/* The node named @name, or NULL. */
BlockNode *bdrv_find_node(const char *name);

/* A node by node name or by the name of the backend whose root it is. */
BlockNode *bdrv_lookup(const char *device, const char *node, Error **errp);

void bdrv_ref(BlockNode *bn);

/*
 * Drop a reference.  The last one closes the node: it leaves the name
 * registry at once; it is drained, its metadata flushed, then closed,
 * and its children released (which may close them in turn).
 */
void bdrv_unref(BlockNode *bn);

/*
 * Shut down: delete every backend, drop the monitor's references, and
 * call @cb once every node that closes has flushed and closed.
 */
void bdrv_close_all(BdrvCb *cb, void *opaque);

/*
 * Give @bn to the monitor, as blockdev-add's nodes are: blockdev-del
 * may remove it, and the caller's reference becomes the monitor's.
 */
void bdrv_set_monitor_owned(BlockNode *bn);

/* Call @cb once no node is closing any more. */
void bdrv_wait_closed(BdrvCb *cb, void *opaque);

const char *bdrv_node_name(const BlockNode *bn);
/* The name of the backend whose root @bn is, else its node name (QEMU's
 * bdrv_get_device_or_node_name(), as messages name a node). */
const char *bdrv_device_or_node_name(const BlockNode *bn);
const char *bdrv_driver_name(const BlockNode *bn);
const char *bdrv_filename(const BlockNode *bn);
bool bdrv_is_read_only(const BlockNode *bn);

/*
 * Incoming migration (activate.c).  Nodes opened while @incoming is
 * set (from -incoming until the destination leaves inmigrate) are
 * inactive, as QEMU's: their images stay unlocked and nothing writes
 * them, for the source may still.  bdrv_activate() makes @bn and the
 * nodes below it active (locks taken as their users need): false with
 * the lock's error, @bn left inactive.  bdrv_activate_all() does so
 * for every node, reporting the first failure.  Main loop only.
 */
void bdrv_set_incoming(bool incoming);
bool bdrv_is_inactive(const BlockNode *bn);
bool bdrv_activate(BlockNode *bn, Error **errp);
bool bdrv_activate_all(Error **errp);

/* QEMU's: false once a node of the subtree can do no more I/O at all. */
bool bdrv_is_inserted(BlockNode *bn);
uint64_t bdrv_length(const BlockNode *bn);

/* The backing child's node, or NULL. */
BlockNode *bdrv_backing(const BlockNode *bn);

/* The "file" child's node (protocol under a format), or NULL. */
BlockNode *bdrv_file_child(const BlockNode *bn);

/* Skip filter nodes (blkdebug) down to the node with the data. */
BlockNode *bdrv_skip_filters(BlockNode *bn);

/* QEMU's bdrv_filter_or_cow_bs(): a filter's child, else the backing. */
BlockNode *bdrv_filter_or_cow(BlockNode *bn);

/* Whether @bn is @top or below it, through filters and backing links. */
bool bdrv_chain_contains(BlockNode *top, BlockNode *bn);

/* QEMU's bdrv_backing_chain_next(): the next image with data below. */
BlockNode *bdrv_backing_chain_next(BlockNode *bn);

/* The backing file name and format recorded in the image, or NULL. */
const char *bdrv_backing_file(const BlockNode *bn);
const char *bdrv_backing_format(const BlockNode *bn);

/* Every node, in creation order (borrowed; do not keep). */
GPtrArray *bdrv_all_nodes(void);

/* ---- I/O on nodes ------------------------------------------------------- */

void bdrv_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
               BdrvCb *cb, void *opaque);

/*
 * A read by the holder of a range lock on @bn covering the range (a
 * job's copy): copy-on-read, which otherwise waits for such a lock
 * itself, relies on the caller's.
 */
void bdrv_read_locked(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                      BdrvCb *cb, void *opaque);

/*
 * Reads of @bn copy what its backing chain holds into it (-drive
 * copy-on-read=on); @bn must be writable.
 */
void bdrv_enable_copy_on_read(BlockNode *bn);

void bdrv_write(BlockNode *bn, uint64_t off, uint64_t len, const void *buf,
                int flags, BdrvCb *cb, void *opaque);
void bdrv_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len, int flags,
                       BdrvCb *cb, void *opaque);
void bdrv_discard(BlockNode *bn, uint64_t off, uint64_t len, BdrvCb *cb,
                  void *opaque);
void bdrv_flush(BlockNode *bn, BdrvCb *cb, void *opaque);
void bdrv_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                       BdrvStatusCb *cb, void *opaque);

/*
 * Whether [@off, ...) is allocated in @top or any node of its backing
 * chain above @base (exclusive; NULL: the whole chain).  The callback's
 * @status is 1 (allocated) or 0, for @pnum bytes.
 */
void bdrv_is_allocated_above(BlockNode *top, BlockNode *base, uint64_t off,
                             uint64_t len, BdrvStatusCb *cb, void *opaque);

/*
 * QEMU's bdrv_block_status_above(top, NULL): what reads of [@off, ...)
 * return, from the first node of the chain that decides.  The
 * callback's @status is BDRV_STATUS_DATA, BDRV_STATUS_ZERO or 0.
 */
void bdrv_block_status_above(BlockNode *top, uint64_t off, uint64_t len,
                             BdrvStatusCb *cb, void *opaque);

/*
 * Write serialisation, for jobs that read a range and write it back
 * (stream's copy-on-read into the active layer): while a range lock is
 * held or waited for, writes to @bn overlapping it wait, except those
 * flagged BDRV_REQ_LOCK_OWNER.  A lock is granted once no overlapping
 * write is in flight and no overlapping lock is held; @cb may run
 * before bdrv_range_lock() returns.
 */
typedef struct BdrvRangeLock BdrvRangeLock;
typedef void BdrvRangeLockCb(void *opaque, BdrvRangeLock *lock);

void bdrv_range_lock(BlockNode *bn, uint64_t off, uint64_t len,
                     BdrvRangeLockCb *cb, void *opaque);
void bdrv_range_unlock(BdrvRangeLock *lock);

/*
 * Called as each write, zero write or discard to @bn starts (after any
 * wait for a range lock), with its range: dirty tracking for jobs.
 */
typedef void BdrvWriteNotifyFn(void *opaque, uint64_t off, uint64_t len);

void bdrv_add_write_notifier(BlockNode *bn, BdrvWriteNotifyFn *fn,
                             void *opaque);
void bdrv_remove_write_notifier(BlockNode *bn, BdrvWriteNotifyFn *fn,
                                void *opaque);

/*
 * A write hook (the write-blocking mirror): consulted as a write or zero
 * write to @bn is submitted (not a discard, not one flagged
 * BDRV_REQ_LOCK_OWNER, not on a read-only node, not an empty one).  It
 * returns false to let the request go on as usual, or true to take it
 * over: it then carries the request out on @bn with
 * bdrv_hook_continue() when it sees fit, and calls @cb itself, later.
 * One hook per node; NULL removes it.
 */
enum {
    BDRV_HOOK_WRITE,            /* @buf holds the data */
    BDRV_HOOK_ZERO,             /* @buf is NULL */
    BDRV_HOOK_DISCARD,          /* only with bdrv_set_write_hook_discards */
};

typedef bool BdrvWriteHookFn(void *opaque, int type, uint64_t off,
                             uint64_t len, const void *buf, int flags,
                             BdrvCb *cb, void *cb_opaque);

void bdrv_set_write_hook(BlockNode *bn, BdrvWriteHookFn *fn, void *opaque);

/*
 * Let the hook take over discards too (BDRV_HOOK_DISCARD, @buf NULL,
 * @flags 0), those that would reach the driver (discard=unmap): the
 * backup job's copy-before-write.  Cleared by bdrv_set_write_hook().
 */
void bdrv_set_write_hook_discards(BlockNode *bn, bool on);

/*
 * Submit a request a write hook took over, as the request layer would
 * have (range locks, statistics, the driver), except that the write
 * notifier registered with the hook's opaque is not called: the hook's
 * owner tracks it itself.  Other notifiers (dirty bitmaps) are.
 */
void bdrv_hook_continue(BlockNode *bn, int type, uint64_t off, uint64_t len,
                        const void *buf, int flags, BdrvCb *cb,
                        void *opaque);

/* Call @cb once no request is in flight on @bn (possibly at once, later). */
void bdrv_drain(BlockNode *bn, BdrvCb *cb, void *opaque);

/* ---- backends ------------------------------------------------------------ */

/*
 * A backend named @name ("" for an anonymous one, as devices create for
 * -blockdev nodes) on @root.
 */
BlockBackend *blk_new(const char *name, BlockNode *root, Error **errp);

/*
 * A block export's anonymous backend on @root, as QEMU's blk_exp_add()
 * makes it: it reads @root consistently and, when @writable, writes it,
 * and lets others do anything.  NULL with QEMU's message when a parent
 * of @root does not share that ("Permission conflict on node ...") or
 * @root cannot be written ("Block node is read-only").  Main loop only.
 */
BlockBackend *blk_new_export(BlockNode *root, bool writable, Error **errp);
void blk_delete(BlockBackend *blk);

BlockBackend *blk_by_name(const char *name);
const char *blk_name(const BlockBackend *blk);

/* Drop @blk's name (HMP drive_del): it goes when its device goes. */
void blk_make_anonymous(BlockBackend *blk);
BlockNode *blk_root(const BlockBackend *blk);
void blk_set_root(BlockBackend *blk, BlockNode *root);

/*
 * A job's private backend on @bn, as QEMU's mirror and commit jobs keep on
 * their target and base: nameless, no device, listed nowhere; it only
 * makes @bn "in use" (blockdev-del: "Node x is in use").
 */
void blk_job_hold(BlockNode *bn);
void blk_job_release(BlockNode *bn);

/*
 * The same for a backend that only writes @bn, as QEMU's mirror target:
 * @bn is in use, but may still become an overlay (blockdev-snapshot,
 * libvirt's blockcopy --shallow --reuse-external pivot).
 */
void blk_job_hold_writer(BlockNode *bn);
void blk_job_release_writer(BlockNode *bn);

/* All backends, in creation order (borrowed). */
GPtrArray *blk_all(void);

/* The guest device attached, as "/machine/peripheral/ID/..." or NULL. */
const char *blk_qdev(const BlockBackend *blk);
void blk_set_qdev(BlockBackend *blk, const char *qdev, const char *id);

/*
 * Attach the guest device @qdev (id @id) to @blk, which takes the
 * device's permissions on the root; fails, attaching nothing, with
 * QEMU's message when they conflict (another process's image locks).
 */
bool blk_attach_dev(BlockBackend *blk, const char *qdev, const char *id,
                    Error **errp);

const char *blk_dev_id(const BlockBackend *blk);

/*
 * A -drive backend: QEMU deletes it with the device that used it
 * (blockdev_mark_auto_del), so device_del makes the drive go too.
 */
void blk_set_auto_del(BlockBackend *blk, bool auto_del);
bool blk_auto_del(const BlockBackend *blk);

/* The backend of the guest device with id (or QOM path) @id, or NULL. */
BlockBackend *blk_by_dev_id(const char *id);

/*
 * The backend a device path names, as qemu-io -d takes it: "ID" for
 * scsi-hd and ide-hd, "ID/virtio-backend" for virtio-blk-pci (whose
 * proxy "ID" has none), or the device's absolute QOM path
 * (/machine/peripheral/ID/virtio-backend).  NULL with QEMU's error
 * otherwise.
 */
BlockBackend *blk_by_qdev_id(const char *id, Error **errp);

/*
 * The device's io-status: "ok", "failed" or "nospace".  As in QEMU it is
 * kept (and shown) only while a device is attached and its policy can
 * stop the guest: werror enospc or stop, or rerror stop.
 */
bool blk_iostatus_is_enabled(const BlockBackend *blk);
const char *blk_io_status_name(const BlockBackend *blk);

/* "ok" again (cont does this for every named backend). */
void blk_iostatus_reset(BlockBackend *blk);

/*
 * The device error policy (QEMU's on_read_error/on_write_error): a new
 * backend reports read errors and stops on ENOSPC for the rest
 * (enospc); -drive rerror=/werror= and the device's own properties
 * change it.  Never BLOCKDEV_ON_ERROR_AUTO.
 */
void blk_set_on_error(BlockBackend *blk, BlockdevOnError on_read_error,
                      BlockdevOnError on_write_error);
BlockdevOnError blk_get_on_error(const BlockBackend *blk, bool is_read);

/* What @on_err does about -@error (auto: as enospc, as jobs have it). */
BlockErrorAction block_error_action_for(BlockdevOnError on_err, int error);

/*
 * A device request on @blk failed with -@error (positive errno): what
 * its policy says to do.  Then blk_error_action() reports the action the
 * device took: for stop it sets the io-status (first error wins), then
 * sends BLOCK_IO_ERROR for every action; stopping the guest is the
 * device's business, after this call (QEMU's order: the event, then
 * STOP).
 */
BlockErrorAction blk_get_error_action(const BlockBackend *blk, bool is_read,
                                      int error);
void blk_error_action(BlockBackend *blk, BlockErrorAction action,
                      bool is_read, int error);

/* The kinds of request a backend takes. */
typedef enum BlkIoType {
    BLK_IO_READ,
    BLK_IO_WRITE,
    BLK_IO_ZERO,
    BLK_IO_DISCARD,
    BLK_IO_FLUSH,
} BlkIoType;

/*
 * The guest device's side of its backend (QEMU's BlockDevOps): @io
 * issues one guest request of @type through the device model (its
 * checks and its error policy); @buf is borrowed until @cb.  A device
 * with removable media (a CD-ROM) also has @change_media, which loads
 * (closes the tray) or unloads (opens it), and @is_tray_open; the
 * others leave both NULL.  A device without @io (the board's floppy)
 * lets requests go to the backend as they are.
 */
typedef struct BlockDevOps {
    void (*io)(void *dev, BlkIoType type, uint64_t off, uint64_t len,
               void *buf, int flags, BdrvCb *cb, void *opaque);
    void (*change_media)(void *dev, bool load);
    bool (*is_tray_open)(void *dev);
} BlockDevOps;

/* Attach (@ops with its @dev) or detach (NULL) the device's side. */
void blk_set_dev_ops(BlockBackend *blk, const BlockDevOps *ops, void *dev);

/*
 * Removable media, as QEMU's BlockBackend has them.  A backend without a
 * device counts as removable (its medium may change at will) but has no
 * tray; a device's backend is removable when the device has a tray.
 */
bool blk_dev_has_removable_media(const BlockBackend *blk);
bool blk_dev_has_tray(const BlockBackend *blk);
bool blk_dev_is_tray_open(const BlockBackend *blk);

/*
 * Tell the device its medium was loaded (@load: the tray closes) or
 * unloaded (the tray opens); DEVICE_TRAY_MOVED follows when the tray
 * moved.  Nothing for a device without removable media.
 */
void blk_dev_change_media(BlockBackend *blk, bool load);

/*
 * Put @bn (a new reference is taken) into @blk, which has no medium;
 * fails, inserting nothing, when the device's permissions conflict
 * with the node's other users.
 */
bool blk_insert_medium(BlockBackend *blk, BlockNode *bn, Error **errp);

/* Take the medium out of @blk (if any), keeping its read-only-ness. */
void blk_remove_medium(BlockBackend *blk);

/*
 * QEMU's root state: whether a medium opened for @blk with
 * read-only-mode retain is read-only (the drive's option, then the
 * last medium removed).
 */
bool blk_root_read_only(const BlockBackend *blk);
void blk_set_root_read_only(BlockBackend *blk, bool read_only);

/*
 * A guest request through the device attached to @blk (qemu-io -d):
 * the device's ops, or, with no device ops, plain backend I/O.
 */
void blk_dev_io(BlockBackend *blk, BlkIoType type, uint64_t off,
                uint64_t len, void *buf, int flags, BdrvCb *cb,
                void *opaque);

/*
 * Backend I/O for a device model, as blk_io() but: a request out of
 * range or whose offset or length is not a multiple of @align (the
 * device's block size) is counted as invalid and refused: false, and
 * @cb is never called (the device fails it without its error policy);
 * a request that reaches the node is not counted in the statistics:
 * the device counts it with blk_account() once its policy has decided
 * what the guest sees.
 */
bool blk_dev_submit(BlockBackend *blk, BlkIoType type, uint64_t off,
                    uint64_t len, void *buf, int flags, uint32_t align,
                    BdrvCb *cb, void *opaque);

/*
 * Count a finished request in @blk's statistics: failed when @ret < 0,
 * else @len bytes at @off done in @ns nanoseconds.
 */
void blk_account(BlockBackend *blk, BlkIoType type, uint64_t off,
                 uint64_t len, gint64 ns, int ret);

/*
 * A request of any @type (@buf unused for zeroes, discard and flush;
 * @off, @len and @flags unused for flush).
 */
void blk_io(BlockBackend *blk, BlkIoType type, uint64_t off, uint64_t len,
            void *buf, int flags, BdrvCb *cb, void *opaque);

/*
 * The backend's write cache (QEMU's enable_write_cache; on for a new
 * backend).  Off, every write and zero write through the backend is
 * durable before it completes (BDRV_REQ_FUA); query-block's
 * "cache"."writeback" reports it.
 */
void blk_set_write_cache(BlockBackend *blk, bool on);
bool blk_write_cache(const BlockBackend *blk);

/* I/O through a backend: bounds-checked against the root's length. */
void blk_read(BlockBackend *blk, uint64_t off, uint64_t len, void *buf,
              BdrvCb *cb, void *opaque);
void blk_write(BlockBackend *blk, uint64_t off, uint64_t len,
               const void *buf, int flags, BdrvCb *cb, void *opaque);
void blk_write_zeroes(BlockBackend *blk, uint64_t off, uint64_t len,
                      int flags, BdrvCb *cb, void *opaque);
void blk_discard(BlockBackend *blk, uint64_t off, uint64_t len, BdrvCb *cb,
                 void *opaque);
void blk_flush(BlockBackend *blk, BdrvCb *cb, void *opaque);

/* ---- reopen (reopen.c, reopen-quiesce.c) ------------------------------ */

/*
 * Make @bn read-only or writable, with the children it opened for
 * itself, keeping its other options (QEMU's bdrv_reopen_set_read_only()).
 * Main loop; the caller has drained it.
 */
bool bdrv_reopen_read_only(BlockNode *bn, bool read_only, Error **errp);

/*
 * Make @bn read-only once its metadata is on disk (drain, flush,
 * reopen); @cb gets 0 or -errno, from the main loop.
 */
void bdrv_make_read_only(BlockNode *bn, BdrvCb *cb, void *opaque);

/*
 * Reopen every node of @list (BlockdevOptions, borrowed) with its new
 * options, all or nothing: QEMU's bdrv_reopen_multiple().  The nodes
 * must be quiesced.
 */
bool bdrv_reopen_list(const json_t *list, Error **errp);

/*
 * blockdev-reopen: check @list's names (taken), drain and flush its
 * nodes, reopen it with bdrv_reopen_list() and wait until what it let
 * go of has closed; then @cb.
 */
void bdrv_reopen_quiesced(json_t *list, BdrvDoneCb *cb, void *opaque);

/* ---- creating images (create.c) --------------------------------------- */

/* Create (or truncate) a regular file of @size bytes. */
bool bdrv_create_file(const char *filename, uint64_t size, Error **errp);

/* What a new image is made with; a driver ignores what it has not. */
typedef struct BdrvCreateOpts {
    uint64_t size;
    uint32_t cluster_size;
    int version;                /* qcow2's: 2 or 3 */
    const char *backing_file;
    const char *backing_fmt;
    bool prealloc_metadata;
} BdrvCreateOpts;

/*
 * Write a new, empty image of @format over @file's contents through the
 * driver's BlockDriver.create (control path; @file open and writable).
 */
bool bdrv_create(BlockNode *file, const char *format,
                 const BdrvCreateOpts *o, Error **errp);

/*
 * Create the image @filename in @format (qcow2 or raw) of @size bytes,
 * backed by @backing when given, saying so on stdout as QEMU's
 * bdrv_img_create() does: a drive-mirror or drive-backup target
 * (@what: "mirror", "backup"; it names the job in the message refusing
 * other formats).
 */
bool bdrv_img_create(const char *what, const char *filename,
                     const char *format, uint64_t size, BlockNode *backing,
                     Error **errp);

/*
 * The format of the image in @file, by the drivers' BlockDriver.probe
 * (qcow2 by its magic), else raw.
 */
const char *bdrv_probe_format(BlockNode *file);

/* ---- what a driver tells of an image (driver-info.c) ------------------ */

/* QEMU's BlockDriverInfo, the part qmpd uses. */
typedef struct BlockDriverInfo {
    uint32_t cluster_size;      /* 0 when not meaningful */
    /* a zero write with BDRV_REQ_MAY_UNMAP leaves the range reading
     * zeroes without data (qcow2 v3's zero clusters, a file's holes) */
    bool can_write_zeroes_with_unmap;
} BlockDriverInfo;

/*
 * Fill @bdi for @bn (QEMU's bdrv_get_info()): false when its driver
 * cannot say, @bdi zeroed then.
 */
bool bdrv_get_info(BlockNode *bn, BlockDriverInfo *bdi);

/* @bn's cluster size from bdrv_get_info(), 0 when it has none. */
uint32_t bdrv_cluster_size(BlockNode *bn);

/*
 * May a job write zeroes to @bn with BDRV_REQ_MAY_UNMAP and rely on
 * them reading back (QEMU's bdrv_can_write_zeroes_with_unmap())?
 */
bool bdrv_can_write_zeroes_with_unmap(BlockNode *bn);

/* ---- debug breakpoints (debug.c) -------------------------------------- */

/*
 * False for a debug event qmpd never reports (no such code path:
 * compressed writes, VM state...), on which a breakpoint would wait
 * forever; true for the others and for unknown names.
 */
bool bdrv_debug_event_raised(const char *event);

/*
 * qemu-io's breakpoints, on the first node at or below @bn (through
 * file children) that takes them; -ENOTSUP when none does.  Hold the
 * next request that reports @event under @tag (one-shot; -ENOENT: no
 * such event); release one request held under @tag (-ENOENT: none is);
 * drop breakpoints with @tag and release what they hold; is a request
 * held under @tag?
 */
int bdrv_debug_breakpoint(BlockNode *bn, const char *event, const char *tag);
int bdrv_debug_resume(BlockNode *bn, const char *tag);
int bdrv_debug_remove_breakpoint(BlockNode *bn, const char *tag);
bool bdrv_debug_is_suspended(BlockNode *bn, const char *tag);

/* ---- snapshots (snapshot.c) ------------------------------------------ */

/*
 * External snapshots (snapshot.c), as blockdev-snapshot(-sync) and
 * their transaction actions run them (@sync: blockdev-snapshot-sync's
 * arguments @data, else blockdev-snapshot's; borrowed).  prepare() attaches the
 * overlay as blockdev-snapshot does and gives the old top and the
 * overlay, referenced; abort() puts the graph back as it was, commit()
 * makes the old top read-only (@cb gets 0 or -errno); both drop the
 * references.  Main loop only.
 */
bool bdrv_snapshot_prepare(const json_t *data, bool sync, BlockNode **old,
                           BlockNode **overlay, Error **errp);
void bdrv_snapshot_abort(BlockNode *old, BlockNode *overlay);
void bdrv_snapshot_commit(BlockNode *old, BlockNode *overlay, BdrvCb *cb,
                          void *opaque);

#endif /* BLOCK_CORE_BLOCK_H */
