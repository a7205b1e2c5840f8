/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Command dispatch: the QMP envelope, negotiation mode, argument
 * validation and the call of the registered handler, sync or async.
 * Protocol-neutral: the monitor supplies parsed requests and gets back
 * response objects; HMP calls handlers through qapi_call().
 */
#ifndef QAPI_DISPATCH_H
#define QAPI_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"
#include "qapi/schema.h"

/*
 * A synchronous handler.  @args is validated against the schema
 * (borrowed).  On success it may set *@ret (a new reference; NULL means
 * {}) and returns true; on failure it sets @errp and returns false.
 */
typedef bool QapiHandlerFn(const json_t *args, json_t **ret, Error **errp);

/* A pending reply of an async handler; finished exactly once. */
typedef struct QapiReply QapiReply;

/*
 * An async handler ("x-qmpd": {"async": true} in the schema).  It must
 * eventually call qapi_reply_return() or qapi_reply_error() on @reply,
 * possibly before returning.  @args is valid until then.
 */
typedef void QapiAsyncHandlerFn(const json_t *args, QapiReply *reply);

typedef struct QapiHandler {
    const char *name;
    QapiHandlerFn *fn;
    QapiAsyncHandlerFn *async_fn;
} QapiHandler;

/*
 * Attach a table of handlers to the schema's commands.  Each name must
 * be a schema command, registered once, async exactly when the schema
 * says so; violations abort (they are build errors).
 */
void qapi_register_handlers(QapiSchema *s, const QapiHandler *table,
                            size_t n);

/* Start-up self-check: every schema command has a handler. */
bool qapi_check_handlers(const QapiSchema *s, Error **errp);

/* Finish an async call; @ret is taken (NULL means {}). */
void qapi_reply_return(QapiReply *reply, json_t *ret);

/* Finish an async call with an error; @err is taken. */
void qapi_reply_error(QapiReply *reply, Error *err);

/* Completion of qapi_call(): exactly one of @ret / @err, both taken. */
typedef void QapiCallDone(void *opaque, json_t *ret, Error *err);

/*
 * Run @cmd with already validated @args (taken).  @done is called
 * exactly once, before return for sync handlers.
 */
void qapi_call(const QapiCommand *cmd, json_t *args, QapiCallDone *done,
               void *opaque);

typedef struct QapiDispatchOpts {
    bool negotiation;       /* only "in-negotiation" commands exist */
    bool oob;               /* the client enabled the oob capability */
    void *caller;           /* returned by qapi_dispatch_caller() */
} QapiDispatchOpts;

/*
 * A response: {"return": ..., "id"?} or {"id"?, "error": {...}}.  @rsp
 * is taken; @big (borrowed) is the request's set of integers >= 2^63,
 * needed to print an echoed id.
 */
typedef void QapiResponseFn(void *opaque, json_t *rsp, GHashTable *big);

/*
 * Dispatch one parsed request (@req and @big taken; @big may be NULL).
 * @respond is called exactly once, possibly after return for async
 * commands.  @opts is copied.
 */
void qapi_dispatch(const QapiSchema *s, json_t *req, GHashTable *big,
                   const QapiDispatchOpts *opts, QapiResponseFn *respond,
                   void *opaque);

/* The error response for @err (taken), without id. */
json_t *qapi_error_response(Error *err);

/*
 * The opts->caller of the request whose handler is running right now
 * (synchronous part only); NULL outside of a dispatch.
 */
void *qapi_dispatch_caller(void);

#endif /* QAPI_DISPATCH_H */
