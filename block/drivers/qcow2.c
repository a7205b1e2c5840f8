/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2: the driver table, open and close, reopen, and what a node
 * reports of itself (format-specific information, cluster size, dirty
 * flag).  The data path is qcow2-io.c, resizing qcow2-resize.c, the
 * metadata's parts the other qcow2-*.c files (see qcow2.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"
#include "block/drivers/qcow2.h"
#include "qapi/qjson.h"
#include "util/log.h"

static Qcow2State *state(BlockNode *bn)
{
    return bn->opaque;
}

static BlockNode *file_of(BlockNode *bn)
{
    return bn->file->child;
}

/* ---- open and close --------------------------------------------------------- */

static bool check_writable(BlockNode *bn, Error **errp)
{
    Qcow2State *s = state(bn);

    if (s->refcount_order != 4) {
        error_setg(errp, "qmpd writes only 16-bit refcounts; this image "
                   "has %u-bit refcounts (open it read-only)",
                   s->refcount_bits);
        return false;
    }
    if (s->nb_snapshots) {
        error_setg(errp, "qmpd does not write to qcow2 images with internal "
                   "snapshots (open it read-only)");
        return false;
    }
    if (s->incompat & QCOW2_INCOMPAT_CORRUPT) {
        error_setg(errp, "qcow2: Image is corrupt; cannot be opened "
                   "read/write");
        return false;
    }
    if (s->incompat & QCOW2_INCOMPAT_DIRTY) {
        error_setg(errp, "qcow2: image is dirty (lazy refcounts); repair it "
                   "with 'qemu-img check -r all' first");
        return false;
    }
    /*
     * Allocation appends at @next_free: refcount metadata beyond it would
     * be allocated over (and a second cached block at one offset breaks
     * the cache).
     */
    if (s->reftable_offset
        + (uint64_t)s->reftable_clusters * s->cluster_size > s->next_free) {
        error_setg(errp, "qcow2: Refcount table lies beyond the end of the "
                   "file; cannot be opened read/write");
        return false;
    }
    for (uint32_t i = 0; i < s->reftable_size; i++) {
        if (s->reftable[i] && (s->reftable[i] >= s->next_free
                               || s->reftable[i] & (s->cluster_size - 1))) {
            error_setg(errp, "qcow2: Invalid refcount block offset 0x%"
                       G_GINT64_MODIFIER "x; cannot be opened read/write",
                       (guint64)s->reftable[i]);
            return false;
        }
    }
    return true;
}

static bool qcow2_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    Qcow2State *s = state(bn);
    BlockNode *f = file_of(bn);
    uint64_t flen = bdrv_length(f);
    uint64_t hbytes = MIN(MAX(flen, 512), 2u << 20);
    uint8_t *hdr = ioq_buf_alloc0(align_up(hbytes, 4096));
    uint64_t backing_off, l1_bytes, needed, size;
    uint32_t backing_len;
    uint8_t *l1buf;
    int r;
    bool ok = false;

    s->kept_exts = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    s->allocs = g_ptr_array_new();
    qcow2_discard_init(bn);
    if (qjson_has(opts, "data-file")) {
        error_setg(errp, "qmpd does not support qcow2 external data files");
        goto out;
    }
    if (qjson_has(opts, "encrypt")) {
        error_setg(errp, "qmpd does not support encrypted qcow2 images");
        goto out;
    }
    /* past the end reads as zeroes, as QEMU reads a short header */
    r = flen < 4 ? 0 : bdrv_pread_sync(f, 0, MIN(flen, hbytes), hdr);
    if (r < 0) {
        error_setg_errno(errp, -r, "Could not read qcow2 header");
        goto out;
    }
    if (flen < 4 || be32_read(hdr) != QCOW2_MAGIC) {
        error_setg(errp, "Image is not in qcow2 format");
        goto out;
    }
    s->version = be32_read(hdr + 4);
    if (s->version < 2 || s->version > 3) {
        error_setg(errp, "Unsupported qcow2 version %u", s->version);
        goto out;
    }
    s->cluster_bits = be32_read(hdr + 20);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS
        || s->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        error_setg(errp, "Unsupported cluster size: 2^%u", s->cluster_bits);
        goto out;
    }
    s->cluster_size = 1u << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1u << s->l2_bits;
    size = be64_read(hdr + 24);
    if (be32_read(hdr + 32) != 0) {
        error_setg(errp, "qmpd does not support encrypted qcow2 images");
        goto out;
    }
    s->l1_size = be32_read(hdr + 36);
    s->l1_offset = be64_read(hdr + 40);
    s->reftable_offset = be64_read(hdr + 48);
    s->reftable_clusters = be32_read(hdr + 56);
    s->nb_snapshots = be32_read(hdr + 60);
    s->snapshots_offset = be64_read(hdr + 64);
    backing_off = be64_read(hdr + 8);
    backing_len = be32_read(hdr + 16);
    if (s->version >= 3) {
        s->incompat = be64_read(hdr + 72);
        s->compat = be64_read(hdr + 80);
        s->autoclear = be64_read(hdr + 88);
        s->refcount_order = be32_read(hdr + 96);
        s->header_length = be32_read(hdr + 100);
        if (s->header_length < 104 || s->header_length > s->cluster_size) {
            error_setg(errp, "qcow2 header too short");
            goto out;
        }
        if (s->header_length > 104) {
            s->compression_type = hdr[104];
        }
    } else {
        s->refcount_order = 4;
        s->header_length = 72;
    }
    if (s->incompat & QCOW2_INCOMPAT_DATA_FILE) {
        error_setg(errp, "qmpd does not support qcow2 images with an "
                   "external data file");
        goto out;
    }
    if (s->incompat & QCOW2_INCOMPAT_EXTL2) {
        error_setg(errp, "qmpd does not support qcow2 images with extended "
                   "L2 entries (subclusters)");
        goto out;
    }
    if ((s->incompat & QCOW2_INCOMPAT_COMPRESSION) || s->compression_type) {
        error_setg(errp, "qmpd supports only zlib compression in qcow2 "
                   "images");
        goto out;
    }
    if (s->incompat & ~0x1full) {
        error_setg(errp, "Unsupported qcow2 feature(s): 0x%" G_GINT64_MODIFIER
                   "x", (guint64)(s->incompat & ~0x1full));
        goto out;
    }
    if (s->refcount_order > 6) {
        error_setg(errp, "Reference count entry width too large; may not "
                   "exceed 64 bits");
        goto out;
    }
    s->refcount_bits = 1u << s->refcount_order;
    s->refblock_entries = (uint64_t)s->cluster_size * 8 / s->refcount_bits;

    needed = (size + ((uint64_t)s->cluster_size << s->l2_bits) - 1)
        >> (s->cluster_bits + s->l2_bits);
    l1_bytes = (uint64_t)s->l1_size * 8;
    if (l1_bytes > QCOW2_MAX_L1_BYTES) {
        error_setg(errp, "Active L1 table too large");
        goto out;
    }
    if (s->l1_size < needed) {
        error_setg(errp, "L1 table is too small");
        goto out;
    }
    if (s->l1_size && (s->l1_offset % s->cluster_size
                       || s->l1_offset + l1_bytes > flen)) {
        error_setg(errp, "Invalid L1 table offset");
        goto out;
    }
    bn->total_size = size;

    /*
     * The area ends at the backing file name or the first cluster's end,
     * as in QEMU, but never past what hdr holds: a file shorter than a
     * cluster has only zeros after its end, and an extension running
     * beyond it is refused ("Header extension too large").
     */
    if (!qcow2_parse_extensions(bn, hdr, s->header_length,
                                MIN(backing_off && backing_off < hbytes
                                    ? backing_off : s->cluster_size,
                                    align_up(hbytes, 4096)),
                                errp)) {
        goto out;
    }
    if (backing_off) {
        if (backing_len > 1023 || backing_off + backing_len > s->cluster_size
            || backing_off + backing_len > hbytes) {
            error_setg(errp, "Backing file name too long");
            goto out;
        }
        bn->backing_file = g_strndup((const char *)hdr + backing_off,
                                     backing_len);
    } else {
        g_clear_pointer(&bn->backing_format, g_free);
    }

    s->l1 = g_new0(uint64_t, MAX(s->l1_size, 1));
    if (l1_bytes) {
        l1buf = ioq_buf_alloc(align_up(l1_bytes, 512));
        r = bdrv_pread_sync(f, s->l1_offset, l1_bytes, l1buf);
        if (r < 0) {
            ioq_buf_free(l1buf);
            error_setg_errno(errp, -r, "Could not read L1 table");
            goto out;
        }
        for (uint32_t i = 0; i < s->l1_size; i++) {
            s->l1[i] = be64_read(l1buf + 8 * i);
        }
        ioq_buf_free(l1buf);
    }
    if (!qcow2_refcount_open(bn, errp)
        || !qcow2_options_parse(bn, opts, bn->discard_unmap, &s->opts,
                                errp)) {
        goto out;
    }
    /* tables are allocated as they are loaded: a big limit costs nothing */
    qcow2_cache_init(&s->l2_cache, s->opts.l2_cache_tables, BLKDBG_L2_LOAD);
    qcow2_cache_init(&s->rb_cache, s->opts.rb_cache_tables,
                     BLKDBG_REFBLOCK_LOAD);
    if (!bn->read_only) {
        if (!check_writable(bn, errp)) {
            goto out;
        }
        /*
         * Features we do not maintain must be marked stale, and a stale
         * bitmaps extension goes (as QEMU drops it)
         */
        if (!bn->inactive && ((s->autoclear & ~QCOW2_AUTOCLEAR_BITMAPS)
                              || s->drop_bitmaps_ext)) {
            s->autoclear &= QCOW2_AUTOCLEAR_BITMAPS;
            r = qcow2_write_header_sync(bn);
            if (r < 0) {
                error_setg_errno(errp, -r, "Could not update qcow2 header");
                goto out;
            }
        }
        r = qcow2_pin_tail_refblock(bn);
        if (r == 0) {
            r = qcow2_freemap_load(bn);
        }
        if (r < 0) {
            error_setg_errno(errp, -r, "Could not read refcount block");
            goto out;
        }
    }
    if (!qcow2_bitmaps_load(bn, errp)) {
        goto out;
    }
    if (!bn->read_only) {
        qcow2_writeback_start(bn);
    }
    qcow2_cache_clean_start(bn);
    ok = true;
out:
    ioq_buf_free(hdr);
    if (!ok) {
        g_free(s->l1);
        g_free(s->reftable);
        g_ptr_array_unref(s->kept_exts);
        g_ptr_array_unref(s->allocs);
        if (s->pending_frees) {
            g_array_free(s->pending_frees, TRUE);
        }
        if (s->l2_cache.map) {
            qcow2_cache_destroy(&s->l2_cache);
            qcow2_cache_destroy(&s->rb_cache);
        }
        qcow2_discard_cleanup(bn);
        memset(s, 0, sizeof(*s));
    }
    return ok;
}

static void qcow2_close(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    Error *err = NULL;
    /*
     * a node that met corruption writes nothing more, nor does one still
     * inactive (its image is its migration source's, as in QEMU)
     */
    int r = s->dead || bn->inactive ? 0
        : qcow2_bitmaps_store(bn, true, &err);

    if (r < 0) {
        /* nobody waits for a close: the operator hears of it */
        qmpd_log(LOG_WARNING, "Lost persistent bitmaps during inactivation "
                 "of node '%s': %s", bn->node_name,
                 err ? error_get_pretty(err) : g_strerror(-r));
        error_free(err);
    }
    if (s->writeback_timer) {
        g_source_remove(s->writeback_timer);
    }
    if (s->cache_clean_timer) {
        g_source_remove(s->cache_clean_timer);
    }
    if (s->tail_rb) {
        qcow2_table_unpin(&s->rb_cache, s->tail_rb);
    }
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    g_free(s->l1);
    g_free(s->reftable);
    g_array_free(s->pending_frees, TRUE);
    g_ptr_array_unref(s->kept_exts);
    g_ptr_array_unref(s->allocs);
    qcow2_discard_cleanup(bn);
}

static void qcow2_flush(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    qcow2_flush_metadata(bn, true, cb, opaque);
}

/* ---- control path ---------------------------------------------------------- */

static bool qcow2_change_backing_file(BlockNode *bn, const char *file,
                                      const char *fmt, Error **errp)
{
    Qcow2State *s = state(bn);
    char *old_file = bn->backing_file;
    char *old_fmt = bn->backing_format;
    size_t len;
    uint8_t *buf;
    int r;

    bn->backing_file = file && *file ? g_strdup(file) : NULL;
    bn->backing_format = bn->backing_file && fmt ? g_strdup(fmt) : NULL;
    buf = qcow2_header_bytes(bn, &len);
    ioq_buf_free(buf);
    r = len > s->cluster_size ? -ENOSPC : qcow2_write_header_sync(bn);
    if (r < 0) {
        g_free(bn->backing_file);
        g_free(bn->backing_format);
        bn->backing_file = old_file;
        bn->backing_format = old_fmt;
        error_setg_errno(errp, -r, "Could not update the backing file name "
                         "in the image header");
        return false;
    }
    g_free(old_file);
    g_free(old_fmt);
    return true;
}

/*
 * Reopen.  The cache sizes are limits on clean tables kept: a new limit
 * holds from the next load on.  Going read-only, the bitmaps are stored
 * first, while the file is still writable; going read-write, the image
 * is checked in prepare, and the bitmaps are marked in use once every
 * node of the reopen (the file too) is writable, as QEMU does after its
 * commit.
 */
typedef struct {
    Qcow2Options opts;
    bool to_rw;
} Qcow2Reopen;

static const char *const qcow2_reopen_opts[] = {
    "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
    "pass-discard-other", "overlap-check", "cache-size",
    "l2-cache-entry-size", "cache-clean-interval", "l2-cache-size",
    "refcount-cache-size", NULL
};

static bool qcow2_reopen_prepare(BdrvReopenState *rs, Error **errp)
{
    BlockNode *bn = rs->bn;
    Qcow2Reopen *q = g_new0(Qcow2Reopen, 1);

    /* as QEMU's qcow2_update_options(): all of them, checked first */
    if (!qcow2_options_parse(bn, rs->opts, rs->discard_unmap, &q->opts,
                             errp)) {
        g_free(q);
        return false;
    }
    q->to_rw = bn->read_only && !rs->read_only;
    if (q->to_rw) {
        int r;

        if (!check_writable(bn, errp)) {
            g_free(q);
            return false;
        }
        r = qcow2_pin_tail_refblock(bn);
        if (r == 0) {
            r = qcow2_freemap_load(bn);
        }
        if (r < 0) {
            error_setg_errno(errp, -r, "Could not read refcount block");
            g_free(q);
            return false;
        }
    } else if (!bn->read_only && rs->read_only) {
        /* QEMU's qcow2_reopen_bitmaps_ro(): stored before read-only */
        Error *err = NULL;
        int r = qcow2_bitmaps_store(bn, false, &err);

        if (r < 0) {
            if (!err) {
                error_setg_errno(&err, -r, "Cannot store the bitmaps of "
                                 "'%s' while its metadata is written back",
                                 bn->node_name);
            }
            error_propagate(errp, err);
            g_free(q);
            return false;
        }
    }
    rs->opaque = q;
    return true;
}

static void qcow2_reopen_commit(BdrvReopenState *rs)
{
    BlockNode *bn = rs->bn;
    Qcow2State *s = state(bn);
    Qcow2Reopen *q = rs->opaque;

    bool new_interval = q->opts.cache_clean_interval
        != s->opts.cache_clean_interval;

    s->opts = q->opts;
    s->l2_cache.max = s->opts.l2_cache_tables;
    s->rb_cache.max = s->opts.rb_cache_tables;
    if (new_interval) {
        if (s->cache_clean_timer) {
            g_source_remove(s->cache_clean_timer);
            s->cache_clean_timer = 0;
        }
        qcow2_cache_clean_start(bn);
    }
    if (bn->read_only) {
        for (DirtyBitmap *bm = dbitmap_next(bn, NULL); bm;
             bm = dbitmap_next(bn, bm)) {
            if (dbitmap_persistent(bm)) {
                dbitmap_set_readonly(bm, true);
            }
        }
        if (s->writeback_timer) {
            g_source_remove(s->writeback_timer);
            s->writeback_timer = 0;
        }
    } else if (!s->writeback_timer) {
        qcow2_writeback_start(bn);
    }
}

static void qcow2_reopen_abort(BdrvReopenState *rs)
{
    g_free(rs->opaque);
    rs->opaque = NULL;
}

static void qcow2_reopen_post(BdrvReopenState *rs)
{
    Qcow2Reopen *q = rs->opaque;
    Error *err = NULL;

    /* as QEMU, a failure here is reported, the reopen stands */
    if (q->to_rw && !qcow2_bitmaps_reopen_rw(rs->bn, &err)) {
        qmpd_log(LOG_ERR, "%s", error_get_pretty(err));
        error_free(err);
    }
    g_free(q);
    rs->opaque = NULL;
}

static json_t *qcow2_format_specific(BlockNode *bn)
{
    Qcow2State *s = state(bn);
    json_t *data;

    if (s->version < 3) {
        data = json_pack("{s:s,s:s,s:i}", "compat", "0.10",
                         "compression-type", "zlib",
                         "refcount-bits", s->refcount_bits);
    } else {
        data = json_pack("{s:s,s:s,s:b,s:i,s:b,s:b}", "compat", "1.1",
                         "compression-type", "zlib", "lazy-refcounts",
                         !!(s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS),
                         "refcount-bits", s->refcount_bits,
                         "corrupt", !!(s->incompat & QCOW2_INCOMPAT_CORRUPT),
                         "extended-l2", 0);
    }
    return json_pack("{s:s,s:o}", "type", "qcow2", "data", data);
}

static bool qcow2_get_info(BlockNode *bn, BlockDriverInfo *bdi)
{
    bdi->cluster_size = state(bn)->cluster_size;
    /* version 2 has no zero clusters: a zero write writes data */
    bdi->can_write_zeroes_with_unmap = state(bn)->version >= 3;
    return true;
}

static bool qcow2_dirty_flag(BlockNode *bn)
{
    return state(bn)->incompat & QCOW2_INCOMPAT_DIRTY;
}

static bool qcow2_is_inserted(BlockNode *bn)
{
    return !state(bn)->dead;
}

static int64_t qcow2_allocated_size(BlockNode *bn)
{
    BlockNode *f = file_of(bn);

    return f->drv->allocated_size ? f->drv->allocated_size(f) : -1;
}

static int qcow2_probe(const uint8_t *buf, size_t len)
{
    return be32_read(buf) == QCOW2_MAGIC ? 100 : 0;
}

const BlockDriver bdrv_qcow2 = {
    .name = "qcow2",
    .instance_size = sizeof(Qcow2State),
    .is_format = true,
    .has_backing = true,
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .read = qcow2_read,
    .write = qcow2_write,
    .write_zeroes = qcow2_write_zeroes,
    .discard = qcow2_discard,
    .flush = qcow2_flush,
    .block_status = qcow2_block_status,
    .truncate = qcow2_truncate,
    .change_backing_file = qcow2_change_backing_file,
    .create = qcow2_create,
    .reopen_opts = qcow2_reopen_opts,
    .reopen_resettable = qcow2_reopen_opts,
    .reopen_prepare = qcow2_reopen_prepare,
    .reopen_commit = qcow2_reopen_commit,
    .reopen_abort = qcow2_reopen_abort,
    .reopen_post = qcow2_reopen_post,
    .allocated_size = qcow2_allocated_size,
    .format_specific = qcow2_format_specific,
    .get_info = qcow2_get_info,
    .dirty_flag = qcow2_dirty_flag,
    .is_inserted = qcow2_is_inserted,
    .bitmap_can_store = qcow2_bitmap_can_store,
    .bitmap_remove = qcow2_bitmap_remove,
};
