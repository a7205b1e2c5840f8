/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP request handling in QEMU 7.2's order: the request must be an
 * object; its members must be execute/exec-oob, arguments and id; the
 * command must exist (and, in negotiation mode, be allowed there); oob
 * execution must be allowed; then the arguments are validated and the
 * handler runs.  Every failure becomes a response with the request's id.
 */
#include "config.h"

#include <string.h>

#include "qapi/dispatch.h"
#include "qapi/qjson.h"
#include "qapi/validate.h"

struct QapiReply {
    QapiCallDone *done;
    void *opaque;
    json_t *args;
    const TraceEvent *trace_exit;   /* a QMP request's, or NULL */
};

typedef struct {
    json_t *id;
    GHashTable *big;
    bool negotiation;
    QapiResponseFn *respond;
    void *opaque;
} Pending;

static void *current_caller;

void qapi_register_handlers(QapiSchema *s, const QapiHandler *table,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        QapiCommand *c = (QapiCommand *)qapi_schema_command(s, table[i].name);

        if (!c) {
            g_error("handler for '%s', which is not in the schema",
                    table[i].name);
        }
        if (c->handler) {
            g_error("two handlers for '%s'", c->name);
        }
        if (c->async != (table[i].async_fn != NULL)) {
            g_error("'%s': async in the schema and the handler disagree",
                    c->name);
        }
        c->handler = &table[i];
    }
}

bool qapi_check_handlers(const QapiSchema *s, Error **errp)
{
    const GPtrArray *cmds = qapi_schema_commands(s);

    for (guint i = 0; i < cmds->len; i++) {
        const QapiCommand *c = g_ptr_array_index(cmds, i);

        if (!c->handler) {
            error_setg(errp, "schema command '%s' has no handler", c->name);
            return false;
        }
    }
    return true;
}

static void reply_finish(QapiReply *reply, json_t *ret, Error *err)
{
    json_decref(reply->args);
    if (!err && !ret) {
        ret = json_object();
    }
    if (reply->trace_exit && reply->trace_exit->enabled) {
        g_autofree char *j = err ? NULL : qjson_to_wire(ret, false);

        trace_emit(reply->trace_exit, "%s %d",
                   err ? error_get_pretty(err) : j, !err);
    }
    reply->done(reply->opaque, err ? NULL : ret, err);
    if (err) {
        json_decref(ret);
    }
    g_free(reply);
}

void qapi_reply_return(QapiReply *reply, json_t *ret)
{
    reply_finish(reply, ret, NULL);
}

void qapi_reply_error(QapiReply *reply, Error *err)
{
    g_assert(err);
    reply_finish(reply, NULL, err);
}

/* @traced: a QMP request, whose command's trace points fire (HMP runs
 * the same handlers untraced, as QEMU's calls the functions directly). */
static void call(const QapiCommand *cmd, json_t *args, QapiCallDone *done,
                 void *opaque, bool traced)
{
    const QapiHandler *h = cmd->handler;
    QapiReply *reply = g_new0(QapiReply, 1);

    g_assert(h);
    reply->done = done;
    reply->opaque = opaque;
    reply->args = args;
    if (traced) {
        reply->trace_exit = &cmd->trace[QAPI_TRACE_EXIT];
        if (cmd->trace[QAPI_TRACE_ENTER].enabled) {
            g_autofree char *j = qjson_to_wire(args, false);

            trace_emit(&cmd->trace[QAPI_TRACE_ENTER], "%s", j);
        }
    }
    if (h->async_fn) {
        h->async_fn(args, reply);
    } else {
        json_t *ret = NULL;
        Error *err = NULL;

        if (h->fn(args, &ret, &err)) {
            g_assert(!err);
            qapi_reply_return(reply, ret);
        } else {
            g_assert(err);
            json_decref(ret);
            qapi_reply_error(reply, err);
        }
    }
}

void qapi_call(const QapiCommand *cmd, json_t *args, QapiCallDone *done,
               void *opaque)
{
    call(cmd, args, done, opaque, false);
}

json_t *qapi_error_response(Error *err)
{
    json_t *rsp = json_pack("{s:{s:o,s:o}}", "error",
                            "class",
                            qjson_str(error_class_name(error_get_class(err))),
                            "desc", qjson_str(error_get_pretty(err)));

    error_free(err);
    return rsp;
}

static void pending_respond(Pending *p, json_t *ret, Error *err)
{
    json_t *rsp;

    if (err) {
        /* In negotiation mode QEMU explains what it is waiting for. */
        if (p->negotiation
            && error_get_class(err) == ERROR_CLASS_COMMAND_NOT_FOUND) {
            error_free(err);
            err = NULL;
            error_set(&err, ERROR_CLASS_COMMAND_NOT_FOUND,
                      "Expecting capabilities negotiation with "
                      "'qmp_capabilities'");
        }
        json_t *e = qapi_error_response(err);

        /* QEMU prints the id first in errors and last in returns. */
        rsp = json_object();
        if (p->id) {
            json_object_set(rsp, "id", p->id);
        }
        json_object_update(rsp, e);
        json_decref(e);
    } else {
        rsp = json_object();
        json_object_set_new(rsp, "return", ret);
        if (p->id) {
            json_object_set(rsp, "id", p->id);
        }
    }
    p->respond(p->opaque, rsp, p->big);
    json_decref(p->id);
    if (p->big) {
        g_hash_table_unref(p->big);
    }
    g_free(p);
}

static void pending_done_cb(void *opaque, json_t *ret, Error *err)
{
    pending_respond(opaque, ret, err);
}

/* The envelope check; sets *@exec to the command name on success. */
static bool check_envelope(const json_t *req, bool oob, const char **exec,
                           bool *is_oob, Error **errp)
{
    const char *exec_key = NULL;
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)req, key, val) {
        if (!strcmp(key, "execute") || (oob && !strcmp(key, "exec-oob"))) {
            if (!json_is_string(val)) {
                error_setg(errp, "QMP input member '%s' must be a string",
                           key);
                return false;
            }
            if (exec_key) {
                error_setg(errp, "QMP input member '%s' clashes with '%s'",
                           key, exec_key);
                return false;
            }
            exec_key = key;
        } else if (!strcmp(key, "arguments")) {
            if (!json_is_object(val)) {
                error_setg(errp,
                           "QMP input member 'arguments' must be an object");
                return false;
            }
        } else if (strcmp(key, "id")) {
            error_setg(errp, "QMP input member '%s' is unexpected", key);
            return false;
        }
    }
    if (!exec_key) {
        error_setg(errp, "QMP input lacks member 'execute'");
        return false;
    }
    *exec = json_string_value(json_object_get(req, exec_key));
    *is_oob = !strcmp(exec_key, "exec-oob");
    return true;
}

void qapi_dispatch(const QapiSchema *s, json_t *req, GHashTable *big,
                   const QapiDispatchOpts *opts, QapiResponseFn *respond,
                   void *opaque)
{
    Pending *p = g_new0(Pending, 1);
    const QapiCommand *cmd;
    const char *name;
    json_t *args;
    Error *err = NULL;
    bool is_oob;

    p->big = big;
    p->negotiation = opts->negotiation;
    p->respond = respond;
    p->opaque = opaque;

    if (!json_is_object(req)) {
        error_setg(&err, "QMP input must be a JSON object");
        goto fail;
    }
    p->id = json_incref(json_object_get(req, "id"));
    if (!check_envelope(req, opts->oob, &name, &is_oob, &err)) {
        goto fail;
    }
    cmd = qapi_schema_command(s, name);
    if (!cmd || (opts->negotiation && !cmd->in_negotiation)) {
        error_set(&err, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "The command %s has not been found", name);
        goto fail;
    }
    if (is_oob && !cmd->allow_oob) {
        error_setg(&err, "The command %s does not support OOB", name);
        goto fail;
    }
    args = json_object_get(req, "arguments");
    args = args ? json_incref(args) : json_object();
    if (!(cmd->open_args ? qapi_validate_open(cmd->args, args, big, &err)
                         : qapi_validate(cmd->args, args, big, &err))) {
        json_decref(args);
        goto fail;
    }
    json_decref(req);
    current_caller = opts->caller;
    call(cmd, args, pending_done_cb, p, true);
    current_caller = NULL;
    return;

fail:
    json_decref(req);
    pending_respond(p, NULL, err);
}

void *qapi_dispatch_caller(void)
{
    return current_caller;
}
