/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block exports: block-export-add, block-export-del, query-block-exports
 * and the older nbd-server-add and nbd-server-remove, with QEMU 7.2's
 * order of checks and its messages.
 *
 * An export is referenced by the registry from its creation until it
 * is removed, and by each connection in transmission on it; a
 * connection lives until its last request has finished.  So the export
 * (and its backend, through which those requests went) outlives every
 * request, and BLOCK_EXPORT_DELETED tells the user when that is.
 * Meanwhile query-block-exports shows it "shutting-down", as QEMU does.
 */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <jansson.h>

#include "nbd/server-int.h"
#include "nbd/server.h"
#include "qapi/event.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"

/* Every export not yet freed, newest first (QEMU lists them so). */
static GList *exports;

GList *nbd_export_list(void)
{
    return exports;
}

NbdExport *nbd_export_find_name(const char *name)
{
    for (GList *l = exports; l; l = l->next) {
        NbdExport *exp = l->data;

        if (!exp->shutting_down && !strcmp(exp->name, name)) {
            return exp;
        }
    }
    return NULL;
}

static NbdExport *find_id(const char *id)
{
    for (GList *l = exports; l; l = l->next) {
        NbdExport *exp = l->data;

        if (!strcmp(exp->id, id)) {
            return exp;
        }
    }
    return NULL;
}

void nbd_export_ref(NbdExport *exp)
{
    exp->refcnt++;
}

void nbd_export_unref(NbdExport *exp)
{
    g_assert(exp->refcnt > 0);
    if (--exp->refcnt) {
        return;
    }
    exports = g_list_remove(exports, exp);
    for (unsigned i = 0; i < exp->nbitmaps; i++) {
        dbitmap_set_busy(exp->bitmaps[i], false);
    }
    blk_delete(exp->blk);
    qapi_event_send("BLOCK_EXPORT_DELETED",
                    json_pack("{s:s}", "id", exp->id));
    g_free(exp->bitmaps);
    g_free(exp->id);
    g_free(exp->name);
    g_free(exp->description);
    g_free(exp);
}

/* A bitmap of @bn or of a node below it (filters and backing files). */
static DirtyBitmap *find_bitmap(BlockNode *bn, const char *name)
{
    for (; bn; bn = bdrv_filter_or_cow(bn)) {
        DirtyBitmap *bm = dbitmap_find(bn, name);

        if (bm) {
            return bm;
        }
    }
    return NULL;
}

/* The checks that need the server (QEMU's nbd_export_create()). */
static bool check_nbd(const char *name, const char *desc, BlockNode *bn,
                      bool writable, const json_t *bitmaps,
                      DirtyBitmap ***out, Error **errp)
{
    g_autofree DirtyBitmap **bms = NULL;
    size_t i;
    json_t *v;

    if (!nbd_server_running()) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    if (strlen(name) > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "export name '%s' too long", name);
        return false;
    }
    if (desc && strlen(desc) > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "description '%s' too long", desc);
        return false;
    }
    if (nbd_export_find_name(name)) {
        error_setg(errp, "NBD server already has export named '%s'", name);
        return false;
    }
    bms = g_new0(DirtyBitmap *, json_array_size(bitmaps) + 1);
    json_array_foreach(bitmaps, i, v) {
        const char *bname = json_is_string(v) ? json_string_value(v)
            : qjson_get_str(v, "name");
        DirtyBitmap *bm;

        if (json_is_string(v)) {
            bm = find_bitmap(bn, bname);
            if (!bm) {
                error_setg(errp, "Bitmap '%s' is not found", bname);
                return false;
            }
        } else {
            /* any node's bitmap, as QEMU's block_dirty_bitmap_lookup() */
            bm = dbitmap_lookup(qjson_get_str(v, "node"), bname, NULL, errp);
            if (!bm) {
                return false;
            }
        }
        if (!dbitmap_check(bm, DBITMAP_CHECK_ALLOW_RO, errp)) {
            return false;
        }
        if (!writable && !bdrv_is_read_only(bn) && dbitmap_enabled(bm)) {
            error_setg(errp,
                       "Enabled bitmap '%s' incompatible with readonly export",
                       bname);
            return false;
        }
        bms[i] = bm;
    }
    *out = g_steal_pointer(&bms);
    return true;
}

/*
 * QEMU's transmission flags for an export: everything but resizing,
 * the writes only on a writable one; several connections see each
 * other's writes (one backend), so multi-conn too.
 */
static uint16_t export_flags(bool writable)
{
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA
        | NBD_FLAG_SEND_CACHE | NBD_FLAG_CAN_MULTI_CONN;

    if (writable) {
        f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES
            | NBD_FLAG_SEND_FAST_ZERO;
    } else {
        f |= NBD_FLAG_READ_ONLY;
    }
    return f;
}

/*
 * block-export-add's work, for nbd-server-add too (@a: its arguments
 * in block-export-add's form, borrowed).
 */
static bool export_add(const json_t *a, Error **errp)
{
    const char *id = qjson_get_str(a, "id");
    const char *type = qjson_get_str(a, "type");
    const char *node = qjson_get_str(a, "node-name");
    const char *name = qjson_get_str_or(a, "name", node);
    const char *desc = qjson_get_str_or(a, "description", NULL);
    bool writable = qjson_get_bool_or(a, "writable", false);
    json_t *bitmaps = json_object_get(a, "bitmaps");
    g_autofree DirtyBitmap **bms = NULL;
    BlockNode *bn;
    NbdExport *exp;
    BlockBackend *blk;

    if (!opts_id_wellformed(id)) {
        error_setg(errp, "Invalid block export id");
        return false;
    }
    if (find_id(id)) {
        error_setg(errp, "Block export id '%s' is already in use", id);
        return false;
    }
    if (strcmp(type, "nbd")) {
        error_setg(errp, "Export type '%s' is not supported", type);
        return false;
    }
    bn = bdrv_lookup(NULL, node, errp);
    if (!bn) {
        return false;
    }
    if (qjson_has(a, "iothread")) {
        error_setg(errp, "iothread \"%s\" not found",
                   qjson_get_str(a, "iothread"));
        return false;
    }
    if (writable && bdrv_is_read_only(bn)) {
        error_setg(errp, "Cannot export read-only node as writable");
        return false;
    }
    /*
     * QEMU's: an export serves non-shared storage migration, so an
     * incoming destination's node is activated for it (an error leaves
     * it inactive, which the permissions below then refuse to write)
     */
    bdrv_activate(bn, NULL);
    blk = blk_new_export(bn, writable, errp);
    if (!blk) {
        return false;
    }
    if (!check_nbd(name, desc, bn, writable, bitmaps, &bms, errp)) {
        blk_delete(blk);
        return false;
    }
    blk_set_root_read_only(blk, !writable);
    blk_set_write_cache(blk, !qjson_get_bool_or(a, "writethrough", false));

    exp = g_new0(NbdExport, 1);
    exp->id = g_strdup(id);
    exp->name = g_strdup(name);
    exp->description = g_strdup(desc);
    exp->node = bn;
    exp->blk = blk;
    exp->writable = writable;
    exp->alloc_depth = qjson_get_bool_or(a, "allocation-depth", false);
    exp->nbitmaps = json_array_size(bitmaps);
    exp->bitmaps = g_steal_pointer(&bms);
    for (unsigned i = 0; i < exp->nbitmaps; i++) {
        dbitmap_set_busy(exp->bitmaps[i], true);
    }
    exp->tflags = export_flags(writable);
    exp->refcnt = 1;
    exports = g_list_prepend(exports, exp);
    return true;
}

static bool qmp_block_export_add(const json_t *args, json_t **ret,
                                 Error **errp)
{
    return export_add(args, errp);
}

/* Take @exp out of service: its name is free again at once. */
static void export_shutdown(NbdExport *exp)
{
    exp->shutting_down = true;
    nbd_conns_close_export(exp);
    nbd_export_unref(exp);
}

static bool export_del(const char *id, const char *mode, Error **errp)
{
    NbdExport *exp = find_id(id);

    if (!exp) {
        error_setg(errp, "Export '%s' is not found", id);
        return false;
    }
    if (exp->shutting_down) {
        error_setg(errp, "Export '%s' is already shutting down", id);
        return false;
    }
    if (strcmp(mode, "hard")) {
        g_autoptr(GList) conns = g_list_copy(exp->conns);

        for (GList *l = conns; l; l = l->next) {
            nbd_conn_catch_up(l->data);
        }
    }
    if (strcmp(mode, "hard") && exp->refcnt > 1) {
        error_setg(errp, "export '%s' still in use", id);
        error_append_hint(errp, "Use mode='hard' to force client "
                          "disconnect\n");
        return false;
    }
    export_shutdown(exp);
    return true;
}

static bool qmp_block_export_del(const json_t *args, json_t **ret,
                                 Error **errp)
{
    return export_del(qjson_get_str(args, "id"),
                      qjson_get_str_or(args, "mode", "safe"), errp);
}

static bool qmp_nbd_server_remove(const json_t *args, json_t **ret,
                                  Error **errp)
{
    return export_del(qjson_get_str(args, "name"),
                      qjson_get_str_or(args, "mode", "safe"), errp);
}

static bool qmp_nbd_server_add(const json_t *args, json_t **ret,
                               Error **errp)
{
    const char *device = qjson_get_str(args, "device");
    const char *name = qjson_get_str_or(args, "name", device);
    g_autoptr(json_t) a = NULL;
    BlockNode *bn = bdrv_lookup(device, device, errp);

    if (!bn) {
        return false;
    }
    /*
     * QEMU exports the node the device name stands for, by its name; a
     * read-only one read-only, whatever writable says
     */
    a = json_pack("{s:s,s:s,s:s,s:s,s:b}", "type", "nbd", "id", name,
                  "node-name", bdrv_node_name(bn), "name", name,
                  "writable", qjson_get_bool_or(args, "writable", false)
                  && !bdrv_is_read_only(bn));
    if (qjson_has(args, "description")) {
        json_object_set_new(a, "description",
                            qjson_str(qjson_get_str(args, "description")));
    }
    if (qjson_has(args, "bitmap")) {
        json_object_set_new(a, "bitmaps",
                            json_pack("[s]", qjson_get_str(args, "bitmap")));
    }
    return export_add(a, errp);
}

bool nbd_export_add_device(const char *device, bool writable, Error **errp)
{
    g_autoptr(json_t) a = json_pack("{s:s,s:b}", "device", device,
                                     "writable", writable);

    return qmp_nbd_server_add(a, NULL, errp);
}

static bool qmp_query_block_exports(const json_t *args, json_t **ret,
                                    Error **errp)
{
    json_t *list = json_array();

    for (GList *l = exports; l; l = l->next) {
        NbdExport *exp = l->data;

        json_array_append_new(list, json_pack(
            "{s:s,s:s,s:s,s:b}", "id", exp->id, "type", "nbd",
            /* the backend follows its node's replacement (a backup's
             * filter inserted above it), as QEMU's */
            "node-name", bdrv_node_name(blk_root(exp->blk)),
            "shutting-down", exp->shutting_down));
    }
    *ret = list;
    return true;
}

void nbd_exports_close_all(void)
{
    /* QEMU's deletions run oldest first */
    g_autoptr(GList) all = g_list_reverse(g_list_copy(exports));

    for (GList *l = all; l; l = l->next) {
        NbdExport *exp = l->data;

        if (!exp->shutting_down) {
            export_shutdown(exp);
        }
    }
}

const QapiHandler nbd_export_qmp_handlers[] = {
    { "block-export-add", qmp_block_export_add, NULL },
    { "block-export-del", qmp_block_export_del, NULL },
    { "query-block-exports", qmp_query_block_exports, NULL },
    { "nbd-server-add", qmp_nbd_server_add, NULL },
    { "nbd-server-remove", qmp_nbd_server_remove, NULL },
};
const size_t nbd_export_qmp_handlers_count =
    G_N_ELEMENTS(nbd_export_qmp_handlers);
