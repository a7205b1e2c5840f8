/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QAPI schema at run time.  qapi/schema/ (QEMU's QAPI
 * vocabulary, strict JSON) are embedded in the binary and resolved here
 * into types, commands and events.  Validation, introspection, dispatch
 * and HMP help all read this one structure.
 */
#ifndef QAPI_SCHEMA_H
#define QAPI_SCHEMA_H

#include <stdbool.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"
#include "util/trace.h"

typedef enum QapiKind {
    QAPI_KIND_BUILTIN,
    QAPI_KIND_ENUM,
    QAPI_KIND_STRUCT,       /* also the implicit argument types */
    QAPI_KIND_UNION,        /* a struct with a discriminator and variants */
    QAPI_KIND_ALTERNATE,
    QAPI_KIND_ARRAY,
} QapiKind;

typedef enum QapiBuiltin {
    QAPI_BUILTIN_NONE,
    QAPI_BUILTIN_STR,
    QAPI_BUILTIN_INT,       /* int and int64 */
    QAPI_BUILTIN_INT8,
    QAPI_BUILTIN_INT16,
    QAPI_BUILTIN_INT32,
    QAPI_BUILTIN_UINT8,
    QAPI_BUILTIN_UINT16,
    QAPI_BUILTIN_UINT32,
    QAPI_BUILTIN_UINT64,
    QAPI_BUILTIN_SIZE,
    QAPI_BUILTIN_NUMBER,
    QAPI_BUILTIN_BOOL,
    QAPI_BUILTIN_NULL,
    QAPI_BUILTIN_ANY,
} QapiBuiltin;

typedef struct QapiType QapiType;

typedef struct QapiMember {
    char *name;
    bool optional;
    QapiType *type;
    GPtrArray *features;    /* char *, may be empty */
} QapiMember;

/* A union case (enum value -> struct) or an alternate branch. */
typedef struct QapiVariant {
    char *name;
    QapiType *type;
} QapiVariant;

struct QapiType {
    char *name;
    QapiKind kind;
    QapiBuiltin builtin;
    bool implicit;          /* an anonymous argument or base type */
    GPtrArray *members;     /* QapiMember *: struct and union (base first) */
    GPtrArray *variants;    /* QapiVariant *: union cases, alternate branches */
    const QapiMember *tag;  /* union discriminator, one of @members */
    GPtrArray *values;      /* char *: enum values */
    GPtrArray *value_features; /* GPtrArray * per enum value */
    QapiType *element;      /* array element */
    GPtrArray *features;
};

enum { QAPI_TRACE_ENTER, QAPI_TRACE_EXIT, QAPI_TRACE_COUNT };

typedef struct QapiCommand {
    char *name;
    QapiType *args;         /* an object type; the empty one when none */
    QapiType *ret;          /* NULL when the command returns {} */
    bool boxed;
    bool allow_oob;
    bool async;             /* x-qmpd: replies later through a QapiReply */
    bool in_negotiation;    /* x-qmpd: usable before qmp_capabilities */
    bool open_args;         /* x-qmpd: undeclared members reach the handler */
    GPtrArray *features;
    const json_t *doc;      /* the definition, borrowed from the schema */
    const void *handler;    /* set by qapi_register_handlers() */
    /* its trace points qmp_enter_X and qmp_exit_X, as QEMU's */
    TraceEvent trace[QAPI_TRACE_COUNT];
} QapiCommand;

typedef struct QapiEvent {
    char *name;
    QapiType *data;         /* the empty object type when none */
    GPtrArray *features;
    const json_t *doc;
} QapiEvent;

typedef struct QapiSchema QapiSchema;

/* Load the schema embedded in the binary.  Fatal problems set @errp. */
QapiSchema *qapi_schema_load(Error **errp);

/*
 * Load from @n JSON texts (each an array of definitions); for tests.
 * @names label the texts in error messages.
 */
QapiSchema *qapi_schema_load_texts(const char *const *texts,
                                   const char *const *names, size_t n,
                                   Error **errp);

void qapi_schema_free(QapiSchema *s);

const QapiType *qapi_schema_type(const QapiSchema *s, const char *name);
const QapiCommand *qapi_schema_command(const QapiSchema *s,
                                       const char *name);
const QapiEvent *qapi_schema_event(const QapiSchema *s, const char *name);

/* All commands / events, in schema order. */
const GPtrArray *qapi_schema_commands(const QapiSchema *s);
const GPtrArray *qapi_schema_events(const QapiSchema *s);

/* The HMP definitions: each a json object, see qapi/schema/README. */
const GPtrArray *qapi_schema_hmp(const QapiSchema *s);

/* The enum value index of @value in enum @t, or -1. */
int qapi_enum_lookup(const QapiType *t, const char *value);

/* The member named @name of struct/union @t (union variants excluded). */
const QapiMember *qapi_type_member(const QapiType *t, const char *name);

/* The struct type of union @t for discriminator value @tag, or NULL. */
const QapiType *qapi_union_variant(const QapiType *t, const char *tag);

/*
 * The struct type of union @t that object @obj selects by its
 * discriminator (a string member), or NULL when it names none.
 */
const QapiType *qapi_union_variant_of(const QapiType *t, const json_t *obj);

#endif /* QAPI_SCHEMA_H */
