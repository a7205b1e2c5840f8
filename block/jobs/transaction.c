/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The transaction command, as QEMU 7.2's qmp_transaction(): every
 * action is prepared in order; the first that fails makes the ones
 * prepared before it abort, newest first, and its error is the reply;
 * otherwise every action commits, in order.  Prepare does the visible
 * work in a form that abort can undo exactly (a cleared or merged
 * bitmap keeps its old bits aside, a snapshot keeps the old top and the
 * overlay referenced); commit only lets go.  Two commits wait for I/O
 * (a persistent bitmap leaving the image, an old snapshot top becoming
 * read-only), so the handler is async and commits one action at a time.
 *
 * Backup actions create their job in prepare and start it paused in
 * commit; the jobs run once every action committed (QEMU's drained
 * sections end in its clean phase).  With completion-mode grouped the
 * jobs form one job transaction (block/job-int.h): they finish, or
 * fail and are cancelled, together.  drive-backup creates and opens
 * its target in prepare, so the transaction first waits for images
 * still closing, and after an abort for the targets it closed.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <jansson.h>

#include "block/core/dirty-bitmap.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/transaction.h"
#include "qapi/error.h"
#include "qapi/qjson.h"

typedef enum {
    TXN_ABORT,
    TXN_BITMAP_ADD,
    TXN_BITMAP_REMOVE,
    TXN_BITMAP_CLEAR,
    TXN_BITMAP_ENABLE,
    TXN_BITMAP_DISABLE,
    TXN_BITMAP_MERGE,
    TXN_SNAPSHOT,
    TXN_SNAPSHOT_SYNC,
    TXN_BACKUP,
    TXN_DRIVE_BACKUP,
    TXN_UNSUPPORTED,
} TxnKind;

static const struct {
    const char *name;
    TxnKind kind;
} txn_kinds[] = {
    { "abort", TXN_ABORT },
    { "block-dirty-bitmap-add", TXN_BITMAP_ADD },
    { "block-dirty-bitmap-remove", TXN_BITMAP_REMOVE },
    { "block-dirty-bitmap-clear", TXN_BITMAP_CLEAR },
    { "block-dirty-bitmap-enable", TXN_BITMAP_ENABLE },
    { "block-dirty-bitmap-disable", TXN_BITMAP_DISABLE },
    { "block-dirty-bitmap-merge", TXN_BITMAP_MERGE },
    { "blockdev-snapshot", TXN_SNAPSHOT },
    { "blockdev-snapshot-sync", TXN_SNAPSHOT_SYNC },
    { "blockdev-backup", TXN_BACKUP },
    { "drive-backup", TXN_DRIVE_BACKUP },
};

typedef struct {
    TxnKind kind;
    const char *type;
    const json_t *data;     /* borrowed from Txn.actions */
    DirtyBitmap *bm;
    HBitmap *backup;        /* clear, merge: the old bits */
    bool was_enabled;       /* enable, disable */
    BlockNode *old;         /* snapshots: the old top, referenced */
    BlockNode *overlay;     /* snapshots: referenced */
    Job *job;               /* backups: created, started by commit;
                               referenced */
} TxnAction;

typedef struct {
    QapiReply *reply;
    json_t *actions;        /* referenced */
    TxnAction *acts;
    size_t n;
    size_t next;            /* the next action to commit */
    Error *err;             /* the first commit failure */
    JobTxn *jobs;           /* completion-mode grouped */
    bool opens;             /* a drive-backup action opens images */
} Txn;

static TxnKind txn_kind(const char *type)
{
    for (size_t i = 0; i < G_N_ELEMENTS(txn_kinds); i++) {
        if (!strcmp(txn_kinds[i].name, type)) {
            return txn_kinds[i].kind;
        }
    }
    return TXN_UNSUPPORTED;
}

static DirtyBitmap *txn_lookup(const TxnAction *a, unsigned flags,
                               Error **errp)
{
    DirtyBitmap *bm = dbitmap_lookup(qjson_get_str(a->data, "node"),
                                     qjson_get_str(a->data, "name"), NULL,
                                     errp);

    return bm && dbitmap_check(bm, flags, errp) ? bm : NULL;
}

static bool is_backup(const TxnAction *a)
{
    return a->kind == TXN_BACKUP || a->kind == TXN_DRIVE_BACKUP;
}

static bool txn_prepare(TxnAction *a, JobTxn *grouped, Error **errp)
{
    const json_t *d = a->data;

    if (a->kind == TXN_UNSUPPORTED) {
        error_setg(errp, "Transaction action '%s' is not supported by qmpd "
                   "yet", a->type);
        return false;
    }
    /* QEMU checks this first in each action that has no job */
    if (grouped && a->kind != TXN_ABORT && !is_backup(a)) {
        error_setg(errp, "Action '%s' does not support Transaction property "
                   "completion-mode = grouped", a->type);
        return false;
    }
    switch (a->kind) {
    case TXN_ABORT:
        error_setg(errp, "Transaction aborted using Abort action");
        return false;
    case TXN_BACKUP:
    case TXN_DRIVE_BACKUP:
        a->job = backup_txn_prepare(d, a->kind == TXN_DRIVE_BACKUP, grouped,
                                    errp);
        if (!a->job) {
            return false;
        }
        job_ref(a->job);
        return true;
    case TXN_BITMAP_ADD:
        a->bm = dbitmap_qmp_add(qjson_get_str(d, "node"),
                                qjson_get_str(d, "name"),
                                qjson_has(d, "granularity"),
                                qjson_get_uint_or(d, "granularity", 0),
                                qjson_get_bool_or(d, "persistent", false),
                                qjson_get_bool_or(d, "disabled", false),
                                errp);
        return a->bm != NULL;
    case TXN_BITMAP_REMOVE:
        a->bm = txn_lookup(a, DBITMAP_CHECK_BUSY | DBITMAP_CHECK_RO, errp);
        if (!a->bm) {
            return false;
        }
        /* later actions of this transaction find it in use, as in QEMU */
        dbitmap_set_busy(a->bm, true);
        return true;
    case TXN_BITMAP_CLEAR:
        a->bm = txn_lookup(a, DBITMAP_CHECK_DEFAULT, errp);
        if (!a->bm) {
            return false;
        }
        dbitmap_clear(a->bm, &a->backup);
        return true;
    case TXN_BITMAP_ENABLE:
    case TXN_BITMAP_DISABLE:
        a->bm = txn_lookup(a, DBITMAP_CHECK_ALLOW_RO, errp);
        if (!a->bm) {
            return false;
        }
        a->was_enabled = dbitmap_enabled(a->bm);
        dbitmap_set_enabled(a->bm, a->kind == TXN_BITMAP_ENABLE);
        return true;
    case TXN_BITMAP_MERGE:
        if (!dbitmap_qmp_merge(d, &a->backup, errp)) {
            return false;
        }
        a->bm = dbitmap_lookup(qjson_get_str(d, "node"),
                               qjson_get_str(d, "target"), NULL, NULL);
        return true;
    case TXN_SNAPSHOT:
    case TXN_SNAPSHOT_SYNC:
        return bdrv_snapshot_prepare(d, a->kind == TXN_SNAPSHOT_SYNC,
                                     &a->old, &a->overlay, errp);
    case TXN_UNSUPPORTED:
        break;
    }
    g_assert_not_reached();
}

static void txn_abort(TxnAction *a)
{
    switch (a->kind) {
    case TXN_BITMAP_ADD:
        dbitmap_release(a->bm);
        break;
    case TXN_BITMAP_REMOVE:
        dbitmap_set_busy(a->bm, false);
        break;
    case TXN_BITMAP_CLEAR:
    case TXN_BITMAP_MERGE:
        dbitmap_restore(a->bm, a->backup);
        break;
    case TXN_BITMAP_ENABLE:
    case TXN_BITMAP_DISABLE:
        dbitmap_set_enabled(a->bm, a->was_enabled);
        break;
    case TXN_SNAPSHOT:
    case TXN_SNAPSHOT_SYNC:
        bdrv_snapshot_abort(a->old, a->overlay);
        break;
    case TXN_BACKUP:
    case TXN_DRIVE_BACKUP:
        backup_job_abort(a->job);
        break;
    case TXN_ABORT:
    case TXN_UNSUPPORTED:
        break;
    }
}

static void txn_free(Txn *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->acts[i].job) {
            job_unref(t->acts[i].job);
        }
    }
    job_txn_unref(t->jobs);
    json_decref(t->actions);
    g_free(t->acts);
    g_free(t);
}

static void txn_commit_next(Txn *t);

static void txn_removed_cb(void *opaque, Error *err)
{
    Txn *t = opaque;

    if (err && !t->err) {
        t->err = err;
    } else if (err) {
        error_free(err);
    }
    txn_commit_next(t);
}

static void txn_read_only_cb(void *opaque, int ret)
{
    /* as QEMU, a failure to reopen the old top read-only is not fatal */
    txn_commit_next(opaque);
}

static void txn_commit_next(Txn *t)
{
    while (t->next < t->n) {
        TxnAction *a = &t->acts[t->next++];

        switch (a->kind) {
        case TXN_BITMAP_REMOVE:
            dbitmap_set_busy(a->bm, false);
            dbitmap_qmp_remove(qjson_get_str(a->data, "node"),
                               qjson_get_str(a->data, "name"),
                               txn_removed_cb, t);
            return;
        case TXN_SNAPSHOT:
        case TXN_SNAPSHOT_SYNC:
            bdrv_snapshot_commit(a->old, a->overlay, txn_read_only_cb, t);
            return;
        case TXN_BITMAP_CLEAR:
        case TXN_BITMAP_MERGE:
            hbitmap_free(a->backup);
            break;
        case TXN_BACKUP:
        case TXN_DRIVE_BACKUP:
            backup_job_start(a->job);
            break;
        default:
            break;
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->acts[i].job) {
            backup_job_resume(t->acts[i].job);
        }
    }
    if (t->err) {
        qapi_reply_error(t->reply, t->err);
    } else {
        qapi_reply_return(t->reply, NULL);
    }
    txn_free(t);
}

static void txn_failed_cb(void *opaque, int ret)
{
    Txn *t = opaque;

    qapi_reply_error(t->reply, t->err);
    t->err = NULL;
    txn_free(t);
}

static void txn_prepare_all_cb(void *opaque, int ret)
{
    Txn *t = opaque;
    size_t i;
    const json_t *v;

    json_array_foreach(t->actions, i, v) {
        TxnAction *a = &t->acts[i];

        if (!txn_prepare(a, t->jobs, &t->err)) {
            while (i-- > 0) {
                txn_abort(&t->acts[i]);
            }
            if (t->opens) {
                /* the targets drive-backup opened are closed first */
                bdrv_wait_closed(txn_failed_cb, t);
            } else {
                txn_failed_cb(t, 0);
            }
            return;
        }
    }
    txn_commit_next(t);
}

static void qmp_transaction(const json_t *args, QapiReply *reply)
{
    Txn *t = g_new0(Txn, 1);
    const json_t *props = json_object_get(args, "properties");
    size_t i;
    const json_t *v;

    t->reply = reply;
    t->actions = json_incref(json_object_get(args, "actions"));
    t->n = json_array_size(t->actions);
    t->acts = g_new0(TxnAction, t->n ? t->n : 1);
    if (props && !strcmp(qjson_get_str_or(props, "completion-mode",
                                          "individual"), "grouped")) {
        t->jobs = job_txn_new();
    }
    json_array_foreach(t->actions, i, v) {
        TxnAction *a = &t->acts[i];

        a->type = qjson_get_str(v, "type");
        a->kind = txn_kind(a->type);
        a->data = json_object_get(v, "data");
        t->opens |= a->kind == TXN_DRIVE_BACKUP;
    }
    if (t->opens) {
        /* images still closing hold their locks (drive-backup's too) */
        bdrv_wait_closed(txn_prepare_all_cb, t);
        return;
    }
    txn_prepare_all_cb(t, 0);
}

const QapiHandler transaction_qmp_handlers[] = {
    { "transaction", NULL, qmp_transaction },
};

const size_t transaction_qmp_handlers_count =
    G_N_ELEMENTS(transaction_qmp_handlers);
