/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SchemaInfo generation.  Entities are emitted in schema order: each
 * command or event, followed by the types it uses that were not emitted
 * yet (depth first), the same walk QEMU's generator makes.  All sized
 * integer types show as the built-in "int"; the empty object type used
 * by argument-less commands and events is named "0".
 */
#include "config.h"

#include <string.h>

#include "qapi/introspect.h"
#include "qapi/qjson.h"

typedef struct {
    json_t *out;            /* the list being built */
    GHashTable *names;      /* QapiType * -> masked name (owned) */
    GHashTable *emitted;    /* QapiType * already in @out */
    GPtrArray *pending;     /* types used but not yet emitted */
    GHashTable *builtins;   /* built-in names already queued */
    const QapiType *empty;  /* the empty object type */
    unsigned next;
} Intro;

static const char *builtin_json_type(QapiBuiltin b)
{
    switch (b) {
    case QAPI_BUILTIN_STR:
        return "string";
    case QAPI_BUILTIN_NUMBER:
        return "number";
    case QAPI_BUILTIN_BOOL:
        return "boolean";
    case QAPI_BUILTIN_NULL:
        return "null";
    case QAPI_BUILTIN_ANY:
        return "value";
    default:
        return "int";
    }
}

static const char *builtin_name(QapiBuiltin b)
{
    switch (b) {
    case QAPI_BUILTIN_STR:
        return "str";
    case QAPI_BUILTIN_NUMBER:
        return "number";
    case QAPI_BUILTIN_BOOL:
        return "bool";
    case QAPI_BUILTIN_NULL:
        return "null";
    case QAPI_BUILTIN_ANY:
        return "any";
    default:
        return "int";
    }
}

/* Name @t as introspection shows it, queueing it for emission. */
static const char *use_type(Intro *in, const QapiType *t)
{
    char *name = g_hash_table_lookup(in->names, t);

    if (name) {
        return name;
    }
    switch (t->kind) {
    case QAPI_KIND_BUILTIN:
        name = g_strdup(builtin_name(t->builtin));
        g_hash_table_insert(in->names, (gpointer)t, name);
        /* the sized integer types share the one "int" entry */
        if (g_hash_table_add(in->builtins, name)) {
            g_ptr_array_add(in->pending, (gpointer)t);
        }
        return name;
    case QAPI_KIND_ARRAY:
        name = g_strdup_printf("[%s]", use_type(in, t->element));
        g_hash_table_insert(in->names, (gpointer)t, name);
        /* so are their arrays: [uint32] is [int] too */
        if (g_hash_table_add(in->builtins, name)) {
            g_ptr_array_add(in->pending, (gpointer)t);
        }
        return name;
    default:
        name = g_strdup_printf("%u", in->next++);
        break;
    }
    g_hash_table_insert(in->names, (gpointer)t, name);
    g_ptr_array_add(in->pending, (gpointer)t);
    return name;
}

static json_t *features_json(const GPtrArray *f)
{
    json_t *arr = json_array();

    for (guint i = 0; i < f->len; i++) {
        json_array_append_new(arr, qjson_str(g_ptr_array_index(f, i)));
    }
    return arr;
}

static void add_features(json_t *obj, const GPtrArray *f)
{
    if (f && f->len) {
        json_object_set_new(obj, "features", features_json(f));
    }
}

static json_t *type_info(Intro *in, const QapiType *t)
{
    json_t *o = json_object();

    json_object_set_new(o, "name", qjson_str(use_type(in, t)));
    switch (t->kind) {
    case QAPI_KIND_BUILTIN:
        json_object_set_new(o, "json-type",
                            qjson_str(builtin_json_type(t->builtin)));
        json_object_set_new(o, "meta-type", qjson_str("builtin"));
        break;
    case QAPI_KIND_ENUM: {
        json_t *members = json_array();
        json_t *values = json_array();

        for (guint i = 0; i < t->values->len; i++) {
            const char *v = g_ptr_array_index(t->values, i);
            json_t *m = json_pack("{s:o}", "name", qjson_str(v));

            add_features(m, g_ptr_array_index(t->value_features, i));
            json_array_append_new(members, m);
            json_array_append_new(values, qjson_str(v));
        }
        json_object_set_new(o, "members", members);
        json_object_set_new(o, "meta-type", qjson_str("enum"));
        json_object_set_new(o, "values", values);
        break;
    }
    case QAPI_KIND_ARRAY:
        json_object_set_new(o, "element-type",
                            qjson_str(use_type(in, t->element)));
        json_object_set_new(o, "meta-type", qjson_str("array"));
        break;
    case QAPI_KIND_STRUCT:
    case QAPI_KIND_UNION: {
        json_t *members = json_array();

        for (guint i = 0; i < t->members->len; i++) {
            const QapiMember *m = g_ptr_array_index(t->members, i);
            json_t *mi = json_object();

            json_object_set_new(mi, "name", qjson_str(m->name));
            if (m->optional) {
                json_object_set_new(mi, "default", json_null());
            }
            json_object_set_new(mi, "type", qjson_str(use_type(in, m->type)));
            add_features(mi, m->features);
            json_array_append_new(members, mi);
        }
        if (t->kind == QAPI_KIND_UNION) {
            json_t *variants = json_array();
            const GPtrArray *tags = t->tag->type->values;

            json_object_set_new(o, "tag", qjson_str(t->tag->name));
            /* every tag value has a variant; omitted ones are empty */
            for (guint i = 0; i < tags->len; i++) {
                const char *tag = g_ptr_array_index(tags, i);
                const QapiType *vt = qapi_union_variant(t, tag);

                json_array_append_new(variants, json_pack(
                    "{s:o,s:o}", "case", qjson_str(tag),
                    "type", qjson_str(use_type(in, vt ? vt
                                               : in->empty))));
            }
            json_object_set_new(o, "variants", variants);
        }
        json_object_set_new(o, "members", members);
        json_object_set_new(o, "meta-type", qjson_str("object"));
        break;
    }
    case QAPI_KIND_ALTERNATE: {
        json_t *members = json_array();

        for (guint i = 0; i < t->variants->len; i++) {
            const QapiVariant *v = g_ptr_array_index(t->variants, i);

            json_array_append_new(members, json_pack(
                "{s:o}", "type", qjson_str(use_type(in, v->type))));
        }
        json_object_set_new(o, "members", members);
        json_object_set_new(o, "meta-type", qjson_str("alternate"));
        break;
    }
    }
    add_features(o, t->features);
    return o;
}

/* Emit every queued type (and what they use in turn). */
static void flush_pending(Intro *in)
{
    while (in->pending->len) {
        const QapiType *t = g_ptr_array_steal_index(in->pending, 0);

        if (g_hash_table_contains(in->emitted, t)) {
            continue;
        }
        g_hash_table_add(in->emitted, (gpointer)t);
        json_array_append_new(in->out, type_info(in, t));
    }
}

json_t *qapi_introspect(const QapiSchema *s)
{
    const GPtrArray *cmds = qapi_schema_commands(s);
    const GPtrArray *evs = qapi_schema_events(s);
    Intro in = {
        .out = json_array(),
        .names = g_hash_table_new_full(NULL, NULL, NULL, g_free),
        .emitted = g_hash_table_new(NULL, NULL),
        .pending = g_ptr_array_new(),
        .builtins = g_hash_table_new(g_str_hash, g_str_equal),
    };

    in.empty = qapi_schema_type(s, "q_empty");
    use_type(&in, in.empty);

    /*
     * Commands and events interleave in QEMU's output in definition
     * order; ours keeps commands then events, which is equivalent for
     * consumers (the list is unordered by contract).
     */
    for (guint i = 0; i < cmds->len; i++) {
        const QapiCommand *c = g_ptr_array_index(cmds, i);
        json_t *o = json_object();

        json_object_set_new(o, "name", qjson_str(c->name));
        json_object_set_new(o, "ret-type",
                            qjson_str(c->ret ? use_type(&in, c->ret)
                                      : use_type(&in, qapi_schema_type(
                                                     s, "q_empty"))));
        json_object_set_new(o, "meta-type", qjson_str("command"));
        json_object_set_new(o, "arg-type", qjson_str(use_type(&in, c->args)));
        if (c->allow_oob) {
            json_object_set_new(o, "allow-oob", json_true());
        }
        add_features(o, c->features);
        json_array_append_new(in.out, o);
        flush_pending(&in);
    }
    for (guint i = 0; i < evs->len; i++) {
        const QapiEvent *e = g_ptr_array_index(evs, i);
        json_t *o = json_object();

        json_object_set_new(o, "name", qjson_str(e->name));
        json_object_set_new(o, "meta-type", qjson_str("event"));
        json_object_set_new(o, "arg-type", qjson_str(use_type(&in, e->data)));
        add_features(o, e->features);
        json_array_append_new(in.out, o);
        flush_pending(&in);
    }
    g_hash_table_unref(in.names);
    g_hash_table_unref(in.emitted);
    g_ptr_array_unref(in.pending);
    g_hash_table_unref(in.builtins);
    return in.out;
}

json_t *qapi_command_list(const QapiSchema *s)
{
    const GPtrArray *cmds = qapi_schema_commands(s);
    json_t *out = json_array();

    for (guint i = 0; i < cmds->len; i++) {
        const QapiCommand *c = g_ptr_array_index(cmds, i);

        json_array_append_new(out, json_pack("{s:o}", "name",
                                             qjson_str(c->name)));
    }
    return out;
}
