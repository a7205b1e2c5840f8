/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reopens that must wait for I/O first: a node going read-only (jobs,
 * snapshots) and blockdev-reopen's list.  Each node is drained and
 * flushed, so that what its metadata cache holds is on disk before it
 * turns read-only (a later close flushes only writable nodes), then
 * reopen.c does the reopen.
 */
#include "config.h"

#include <errno.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"

/* ---- one node going read-only ----------------------------------------- */

typedef struct {
    BlockNode *bn;
    BdrvCb *cb;
    void *opaque;
    int ret;
} MakeReadOnly;

static void make_ro_flushed_cb(void *opaque, int ret)
{
    MakeReadOnly *m = opaque;
    Error *err = NULL;

    if (ret < 0) {
        m->ret = ret;
    } else if (!bdrv_reopen_read_only(m->bn, true, &err)) {
        m->ret = -EIO;
        error_free(err);
    }
    bdrv_unref(m->bn);
    m->cb(m->opaque, m->ret);
    g_free(m);
}

static void make_ro_drained_cb(void *opaque, int ret)
{
    MakeReadOnly *m = opaque;

    bdrv_flush(m->bn, make_ro_flushed_cb, m);
}

void bdrv_make_read_only(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    MakeReadOnly *m = g_new0(MakeReadOnly, 1);

    if (bn->read_only) {
        g_free(m);
        ioq_defer_int(cb, opaque, 0);
        return;
    }
    m->bn = bn;
    m->cb = cb;
    m->opaque = opaque;
    bdrv_ref(bn);
    bdrv_drain(bn, make_ro_drained_cb, m);
}

/* ---- blockdev-reopen's list ------------------------------------------- */

/*
 * The nodes it names are drained and flushed one after the other, then,
 * once nothing is in flight anywhere below them, the whole list is
 * reopened in one go.
 */
typedef struct {
    json_t *list;
    GPtrArray *nodes;           /* referenced: named or to be attached */
    guint next;
    BdrvDoneCb *cb;
    void *opaque;
} ReopenList;

static void list_free(ReopenList *r)
{
    json_decref(r->list);
    g_ptr_array_unref(r->nodes);
    g_free(r);
}

static void list_fail(ReopenList *r, Error *err)
{
    r->cb(r->opaque, err);
    list_free(r);
}

static BlockNode *busy_node(BlockNode *bn)
{
    BlockNode *b;

    if (!bn) {
        return NULL;
    }
    if (bn->in_flight) {
        return bn;
    }
    b = busy_node(bdrv_file_child(bn));
    return b ? b : busy_node(bdrv_backing(bn));
}

static void list_closed_cb(void *opaque, int ret)
{
    ReopenList *r = opaque;

    r->cb(r->opaque, NULL);
    list_free(r);
}

static void list_run(ReopenList *r)
{
    Error *err = NULL;

    if (!bdrv_reopen_list(r->list, &err)) {
        list_fail(r, err);
        return;
    }
    /* children switched away close before the reply, as in QEMU */
    bdrv_wait_closed(list_closed_cb, r);
}

static void list_quiesce(ReopenList *r);

static void list_idle_cb(void *opaque, int ret)
{
    ReopenList *r = opaque;

    /* nothing new may have started below another node meanwhile */
    for (guint i = 0; i < r->nodes->len; i++) {
        BlockNode *b = busy_node(g_ptr_array_index(r->nodes, i));

        if (b) {
            bdrv_drain(b, list_idle_cb, r);
            return;
        }
    }
    list_run(r);
}

static void list_flushed_cb(void *opaque, int ret)
{
    ReopenList *r = opaque;
    Error *err = NULL;

    if (ret < 0) {
        error_setg_errno(&err, -ret, "Error flushing drive");
        list_fail(r, err);
        return;
    }
    r->next++;
    list_quiesce(r);
}

static void list_drained_cb(void *opaque, int ret)
{
    ReopenList *r = opaque;

    bdrv_flush(g_ptr_array_index(r->nodes, r->next), list_flushed_cb, r);
}

static void list_quiesce(ReopenList *r)
{
    if (r->next < r->nodes->len) {
        bdrv_drain(g_ptr_array_index(r->nodes, r->next), list_drained_cb, r);
        return;
    }
    list_idle_cb(r, 0);
}

void bdrv_reopen_quiesced(json_t *list, BdrvDoneCb *cb, void *opaque)
{
    ReopenList *r = g_new0(ReopenList, 1);
    Error *err = NULL;
    size_t i;
    json_t *o;

    r->list = list;
    r->nodes = g_ptr_array_new_with_free_func((GDestroyNotify)bdrv_unref);
    r->cb = cb;
    r->opaque = opaque;
    /* every name first: a wrong one fails the list before any I/O */
    json_array_foreach(r->list, i, o) {
        const char *name = qjson_get_str_or(o, "node-name", NULL);
        const char *refs[] = { "file", "backing" };
        BlockNode *bn;

        if (!name) {
            error_setg(&err, "node-name not specified");
            list_fail(r, err);
            return;
        }
        bn = bdrv_find_node(name);
        if (!bn) {
            error_setg(&err, "Failed to find node with node-name='%s'",
                       name);
            list_fail(r, err);
            return;
        }
        bdrv_ref(bn);
        g_ptr_array_add(r->nodes, bn);
        /* a node about to be attached is quiesced too */
        for (size_t k = 0; k < G_N_ELEMENTS(refs); k++) {
            json_t *ref = json_object_get(o, refs[k]);
            BlockNode *c = json_is_string(ref)
                ? bdrv_find_node(json_string_value(ref)) : NULL;

            if (c) {
                bdrv_ref(c);
                g_ptr_array_add(r->nodes, c);
            }
        }
    }
    list_quiesce(r);
}
