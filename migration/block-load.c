/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block migration, the destination side: BLOCK_SETUP names the source's
 * disks (each must be here, by device or node name, writable and as
 * large), BLOCK records write them.  Writes go out in the order the
 * records came, up to MB_IN_DEPTH at once, and one that overlaps a
 * write still in flight waits for it: a later pass's data for a range
 * always lands after an earlier pass's.  While MB_IN_DEPTH writes wait,
 * incoming.c stops reading the socket, so a slow disk bounds memory.
 *
 * Nothing written here is used before END: the guest stays in
 * inmigrate until then, and a load that fails exits the process.  At
 * END the guest may run once every write completed; the disks are
 * flushed meanwhile.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <glib.h>

#include "block/core/block.h"
#include "block/core/ioq.h"
#include "migration/block.h"
#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"

#define MB_IN_DEPTH 4

typedef struct MigBlkWrite {
    BlockNode *bn;
    uint64_t off, len;
    uint8_t *buf;               /* NULL: zeroes */
    bool issued, done;
} MigBlkWrite;

typedef struct MigBlkIn {
    GPtrArray *nodes;           /* by section id */
    GQueue writes;              /* in stream order: in flight, waiting */
    unsigned in_flight;
    bool issuing, issue_again;
    void (*resume)(void);
    void (*done)(int ret);
} MigBlkIn;

static MigBlkIn *in;

static void mbi_node_unref(gpointer p)
{
    bdrv_unref(p);
}

bool mig_blk_in_setup(const uint8_t *p, uint32_t len, Error **errp)
{
    g_autoptr(json_t) setup = json_loadb((const char *)p, len, 0, NULL);
    json_t *disks = setup ? json_object_get(setup, "disks") : NULL;
    size_t i;
    json_t *d;

    if (in || !json_is_array(disks)) {
        error_setg(errp, "Invalid block migration setup section");
        return false;
    }
    in = g_new0(MigBlkIn, 1);
    in->nodes = g_ptr_array_new_with_free_func(mbi_node_unref);
    g_queue_init(&in->writes);
    json_array_foreach(disks, i, d) {
        json_t *name = json_object_get(d, "name");
        json_t *size = json_object_get(d, "size");
        BlockBackend *blk;
        BlockNode *bn;

        if (!json_is_string(name) || !json_is_integer(size)) {
            error_setg(errp, "Invalid block migration setup section");
            return false;
        }
        blk = blk_by_name(json_string_value(name));
        bn = blk ? blk_root(blk) : bdrv_find_node(json_string_value(name));
        if (!bn) {
            error_setg(errp, "Error unknown block device %s",
                       json_string_value(name));
            return false;
        }
        if (bdrv_is_read_only(bn)) {
            error_setg(errp, "Block device %s is read-only",
                       json_string_value(name));
            return false;
        }
        if (bdrv_length(bn) != (uint64_t)json_integer_value(size)) {
            error_setg(errp, "Block device %s has size %" G_GUINT64_FORMAT
                       ", the source's has %" JSON_INTEGER_FORMAT,
                       json_string_value(name), bdrv_length(bn),
                       json_integer_value(size));
            return false;
        }
        /* written from now on: ours, locked, before the switch */
        if (!bdrv_activate(bn, errp)) {
            return false;
        }
        bdrv_ref(bn);
        g_ptr_array_add(in->nodes, bn);
    }
    return true;
}

static bool overlaps(const MigBlkWrite *a, const MigBlkWrite *b)
{
    return a->bn == b->bn && a->off < b->off + b->len
        && b->off < a->off + a->len;
}

static void mbi_issue(void);

static void mbi_write_cb(void *opaque, int ret)
{
    MigBlkWrite *w = opaque;

    if (ret < 0) {
        g_autofree char *why = g_strdup_printf(
            "Error writing block device %s: %s",
            bdrv_device_or_node_name(w->bn), g_strerror(-ret));

        mig_in_fail(why, -ret);
    }
    /* taken off the list by mbi_issue(), which may be walking it now */
    w->done = true;
    in->in_flight--;
    mbi_issue();
}

static void mbi_reap(void)
{
    GList *l = in->writes.head;

    while (l) {
        GList *next = l->next;
        MigBlkWrite *w = l->data;

        if (w->done) {
            g_queue_delete_link(&in->writes, l);
            ioq_buf_free(w->buf);
            g_free(w);
        }
        l = next;
    }
}

/* Start waiting writes, in order, that overlap nothing before them. */
static void mbi_issue(void)
{
    if (in->issuing) {
        in->issue_again = true;
        return;
    }
    in->issuing = true;
    do {
        in->issue_again = false;
        mbi_reap();
        for (GList *l = in->writes.head; l && in->in_flight < MB_IN_DEPTH;
             l = l->next) {
            MigBlkWrite *w = l->data;
            bool blocked = false;

            if (w->issued) {
                continue;
            }
            for (GList *k = in->writes.head; k != l && !blocked;
                 k = k->next) {
                blocked = !((MigBlkWrite *)k->data)->done
                    && overlaps(k->data, w);
            }
            if (blocked) {
                continue;
            }
            w->issued = true;
            in->in_flight++;
            if (w->buf) {
                bdrv_write(w->bn, w->off, w->len, w->buf, 0, mbi_write_cb, w);
            } else {
                bdrv_write_zeroes(w->bn, w->off, w->len, BDRV_REQ_MAY_UNMAP,
                                  mbi_write_cb, w);
            }
        }
    } while (in->issue_again);
    in->issuing = false;
    if (g_queue_get_length(&in->writes) < MB_IN_DEPTH && in->resume) {
        void (*resume)(void) = in->resume;

        in->resume = NULL;
        resume();
    }
    if (in && g_queue_is_empty(&in->writes) && in->done) {
        mig_blk_in_finish(in->done);
    }
}

bool mig_blk_in_load(uint32_t id, const uint8_t *p, uint32_t len,
                     Error **errp)
{
    MigBlkWrite *w;
    uint64_t off, n;
    BlockNode *bn;

    if (!in || id >= in->nodes->len) {
        error_setg(errp, "Block section %u without a block device", id);
        return false;
    }
    bn = g_ptr_array_index(in->nodes, id);
    if (len < 13) {
        error_setg(errp, "Truncated block entry");
        return false;
    }
    off = mig_get_be64(p);
    n = mig_get_be32(p + 8);
    if (n == 0 || off > bdrv_length(bn) || n > bdrv_length(bn) - off
        || (off | n) & 511 || p[12] > 1
        || len != 13 + (p[12] ? 0 : n)) {
        error_setg(errp, "Invalid block entry at 0x%" G_GINT64_MODIFIER "x",
                   off);
        return false;
    }
    w = g_new0(MigBlkWrite, 1);
    w->bn = bn;
    w->off = off;
    w->len = n;
    /*
     * Zeroes sent as data (without zero-blocks) are written as zeroes,
     * as QEMU 7.2's destination leaves them: not allocated as data
     */
    if (!p[12] && !(p[13] == 0 && !memcmp(p + 13, p + 14, n - 1))) {
        w->buf = ioq_buf_alloc(n);
        memcpy(w->buf, p + 13, n);
    }
    g_queue_push_tail(&in->writes, w);
    mbi_issue();
    return true;
}

bool mig_blk_in_busy(void (*resume)(void))
{
    if (!in || g_queue_get_length(&in->writes) < MB_IN_DEPTH) {
        return false;
    }
    in->resume = resume;
    return true;
}

/*
 * A flush after the switch-over: its failure is only reported.  It
 * holds no reference (@opaque is the disk's name): one would keep a
 * node that a quit closes from closing, and a node closes only once
 * its requests are done.
 */
static void mbi_flush_cb(void *opaque, int ret)
{
    g_autofree char *name = opaque;

    if (ret < 0) {
        fprintf(stderr, "qmpd: Error flushing block device %s after the "
                "migration: %s\n", name, g_strerror(-ret));
    }
}

void mig_blk_in_finish(void (*done)(int ret))
{
    if (!in) {
        done(0);
        return;
    }
    in->done = done;
    if (!g_queue_is_empty(&in->writes)) {
        return;                 /* mbi_issue() comes back here */
    }
    /*
     * Every write completed, so the guest reads what the source had; the
     * flush makes it durable without the guest waiting for it (an
     * fdatasync of a disk's worth of page cache can take a second).
     */
    for (guint i = 0; i < in->nodes->len; i++) {
        BlockNode *bn = g_ptr_array_index(in->nodes, i);

        bdrv_flush(bn, mbi_flush_cb,
                   g_strdup(bdrv_device_or_node_name(bn)));
    }
    g_ptr_array_unref(in->nodes);
    g_clear_pointer(&in, g_free);
    done(0);
}
