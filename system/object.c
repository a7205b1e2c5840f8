/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-creatable objects: the /objects container of QEMU's QOM tree.
 *
 * -object and object-add take the same ObjectOptions (the schema checks
 * them: members, types, and "qom-type" against QEMU's list of types);
 * the object's class then applies the properties one by one and
 * completes the object, with QEMU's checks in QEMU's order.  An object
 * keeps its property values in a JSON object, which qom-get reads and
 * qom-set changes through the class.  QEMU's types that qmpd does not
 * have are refused by name, never accepted and ignored.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qapi/json-stream.h"
#include "qapi/keyval.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "qapi/validate.h"
#include "system/machine-caps.h"
#include "system/object-int.h"

static const ObjectClass *const classes[] = {
    &iothread_class, &memory_backend_ram_class, &secret_class,
    &throttle_group_class,
};

static GPtrArray *objects;      /* UserObject *, creation order */
static uint64_t last_serial;
static bool root_exists;

static const ObjectClass *class_by_name(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
        if (!strcmp(classes[i]->name, name)) {
            return classes[i];
        }
    }
    return NULL;
}

bool object_expect_int(const char *name, const json_t *v, Error **errp)
{
    if (!json_is_integer(v)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: integer",
                   name);
        return false;
    }
    return true;
}

bool object_expect_str(const char *name, const json_t *v, Error **errp)
{
    if (!json_is_string(v)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: string",
                   name);
        return false;
    }
    return true;
}

bool object_expect_bool(const char *name, const json_t *v, Error **errp)
{
    if (!json_is_boolean(v)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: "
                   "boolean", name);
        return false;
    }
    return true;
}

static bool check_id(const char *id, Error **errp)
{
    if (!opts_id_wellformed(id)) {
        error_setg(errp, "Parameter 'id' expects an identifier");
        error_append_hint(errp, "Identifiers consist of letters, digits, "
                          "'-', '.', '_', starting with a letter.\n");
        return false;
    }
    return true;
}

UserObject *object_find(const char *id)
{
    for (guint i = 0; objects && i < objects->len; i++) {
        UserObject *o = g_ptr_array_index(objects, i);

        if (!strcmp(o->id, id)) {
            return o;
        }
    }
    return NULL;
}

UserObject *object_by_serial(uint64_t serial)
{
    for (guint i = 0; serial && objects && i < objects->len; i++) {
        UserObject *o = g_ptr_array_index(objects, i);

        if (o->serial == serial) {
            return o;
        }
    }
    return NULL;
}

uint64_t object_serial(const UserObject *o)
{
    return o->serial;
}

const char *object_id(const UserObject *o)
{
    return o->id;
}

const char *object_type(const UserObject *o)
{
    return o->cls->name;
}

void *object_state(const UserObject *o)
{
    return o->state;
}

bool object_root_exists(void)
{
    return root_exists;
}

static void object_free(UserObject *o)
{
    if (o->cls->finalize) {
        o->cls->finalize(o);
    }
    json_decref(o->props);
    g_free(o->id);
    g_free(o);
}

bool object_add(const json_t *opts, Error **errp)
{
    const char *type = qjson_get_str(opts, "qom-type");
    const char *id = qjson_get_str(opts, "id");
    const ObjectClass *cls = class_by_name(type);
    g_autoptr(json_t) given = json_deep_copy(opts);
    UserObject *o;

    /* the container exists from the first attempt on, as in QEMU */
    root_exists = true;
    if (!check_id(id, errp)) {
        return false;
    }
    if (!cls) {
        error_setg(errp, "object type '%s' is not supported by qmpd", type);
        return false;
    }
    if (object_find(id)) {
        error_setg(errp, "attempt to add duplicate property '%s' to object "
                   "(type 'container')", id);
        return false;
    }
    json_object_del(given, "qom-type");
    json_object_del(given, "id");
    o = g_new0(UserObject, 1);
    o->id = g_strdup(id);
    o->serial = ++last_serial;
    o->cls = cls;
    o->props = json_object();
    if (!cls->create(o, given, errp)) {
        object_free(o);
        return false;
    }
    if (!objects) {
        objects = g_ptr_array_new();
    }
    g_ptr_array_add(objects, o);
    return true;
}

/*
 * QemuOpts is flat: a dotted key (throttle-group's "limits.bps-total")
 * names no parameter.  QEMU reports one of them (the first in the
 * member's schema order, as far as observed).
 */
static bool check_flat(const QapiType *branch, const json_t *kv,
                       Error **errp)
{
    for (guint i = 0; i < branch->members->len; i++) {
        const QapiMember *m = g_ptr_array_index(branch->members, i);
        json_t *v = json_object_get(kv, m->name);
        const char *key;
        json_t *sub;

        if (!v || !json_is_object(v) || !m->type->members) {
            continue;
        }
        for (guint j = 0; j < m->type->members->len; j++) {
            const QapiMember *n = g_ptr_array_index(m->type->members, j);

            if (json_object_get(v, n->name)) {
                error_setg(errp, "Invalid parameter '%s.%s'", m->name,
                           n->name);
                return false;
            }
        }
        json_object_foreach(v, key, sub) {
            error_setg(errp, "Invalid parameter '%s.%s'", m->name, key);
            return false;
        }
    }
    return true;
}

/*
 * QEMU 7.2 reads a keyval -object through QemuOpts and its options
 * visitor, not the keyval visitor of -blockdev: numbers and unknown keys
 * get that visitor's messages, member by member in the schema's order.
 */
static bool check_opts_style(const QapiType *type, const json_t *kv,
                             Error **errp)
{
    const QapiType *branch = qapi_union_variant_of(type, kv);
    const char *key;
    json_t *v;

    if (!branch) {
        return true;            /* the schema's check says what is wrong */
    }
    for (guint i = 0; branch->members && i < branch->members->len; i++) {
        const QapiMember *m = g_ptr_array_index(branch->members, i);
        const char *s;
        char *end;
        uint64_t size;

        v = json_object_get(kv, m->name);
        if (!v || !json_is_string(v) || m->type->kind != QAPI_KIND_BUILTIN) {
            continue;
        }
        s = json_string_value(v);
        if (m->type->builtin == QAPI_BUILTIN_INT) {
            errno = 0;
            (void)strtoll(s, &end, 0);
            if (errno || end == s || *end) {
                error_setg(errp, "Parameter '%s' expects an int64 value",
                           m->name);
                return false;
            }
        } else if (m->type->builtin == QAPI_BUILTIN_SIZE
                   && !opts_parse_size(s, &size)) {
            error_setg(errp, "Parameter '%s' expects a size value", m->name);
            return false;
        }
    }
    json_object_foreach((json_t *)kv, key, v) {
        if (strcmp(key, "qom-type") && strcmp(key, "id")
            && !qapi_type_member(branch, key)) {
            error_setg(errp, "Invalid parameter '%s'", key);
            return false;
        }
    }
    return check_flat(branch, kv, errp);
}

/* @arg as ObjectOptions, with the command line's checks and messages. */
static json_t *parse_arg(QapiSchema *schema, const char *arg, Error **errp)
{
    const QapiType *type = qapi_schema_type(schema, "ObjectOptions");
    g_autoptr(json_t) opts = NULL;

    if (arg[0] == '{') {
        GHashTable *big = NULL;
        bool ok;

        opts = qjson_parse(arg, &big, errp);
        if (!opts) {
            return NULL;
        }
        if (!json_is_object(opts)) {
            error_setg(errp, "JSON argument must be an object");
            return NULL;
        }
        ok = qapi_validate(type, opts, big, errp);
        if (big) {
            g_hash_table_unref(big);
        }
        if (!ok) {
            return NULL;
        }
    } else {
        g_autoptr(json_t) kv = keyval_parse(arg, "qom-type", errp);

        if (!kv || !check_opts_style(type, kv, errp)) {
            return NULL;
        }
        opts = qapi_validate_keyval(type, kv, errp);
        if (!opts) {
            return NULL;
        }
    }
    /* QemuOpts checks the id while parsing, before any type's check */
    if (!check_id(qjson_get_str(opts, "id"), errp)) {
        return NULL;
    }
    if (object_find(qjson_get_str(opts, "id"))) {
        error_setg(errp, "Duplicate ID '%s' for object",
                   qjson_get_str(opts, "id"));
        return NULL;
    }
    return g_steal_pointer(&opts);
}

bool object_add_arg(QapiSchema *schema, const char *arg, Error **errp)
{
    g_autoptr(json_t) opts = parse_arg(schema, arg, errp);

    if (!opts) {
        /* QEMU names the option in a parse error, not in a refusal */
        error_prepend(errp, "-object %s: ", arg);
        return false;
    }
    return object_add(opts, errp);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
    return strcmp((*(const ObjectProp *const *)a)->name,
                  (*(const ObjectProp *const *)b)->name);
}

bool object_print_help(const char *arg)
{
    g_autoptr(GPtrArray) props = g_ptr_array_new();
    g_autofree char *type = NULL;
    const ObjectClass *cls;

    if (!strcmp(arg, "help") || !strcmp(arg, "?")) {
        printf("List of user creatable objects:\n");
        for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
            printf("  %s\n", classes[i]->name);
        }
        return true;
    }
    if (!g_str_has_suffix(arg, ",help") && !g_str_has_suffix(arg, ",?")) {
        return false;
    }
    type = g_strndup(arg, strcspn(arg, ","));
    cls = class_by_name(type);
    if (!cls) {
        return false;
    }
    for (const ObjectProp *p = cls->props; p->name; p++) {
        /* the deprecated "loaded" is not offered, as in QEMU */
        if (strcmp(p->name, "loaded")) {
            g_ptr_array_add(props, (gpointer)p);
        }
    }
    g_ptr_array_sort(props, by_name);
    printf("%s options:\n", cls->name);
    for (guint i = 0; i < props->len; i++) {
        const ObjectProp *p = g_ptr_array_index(props, i);

        printf("  %s=<%s>\n", p->name, p->qom_type);
    }
    return true;
}

void object_list_children(json_t *list)
{
    for (guint i = 0; objects && i < objects->len; i++) {
        const UserObject *o = g_ptr_array_index(objects, i);
        g_autofree char *t = g_strdup_printf("child<%s>", o->cls->name);

        json_array_append_new(list, json_pack("{s:s,s:s}", "name", o->id,
                                              "type", t));
    }
}

static const ObjectProp *find_prop(const UserObject *o, const char *name)
{
    for (const ObjectProp *p = o->cls->props; p->name; p++) {
        if (!strcmp(p->name, name)) {
            return p;
        }
    }
    return NULL;
}

static json_t *class_qom_list(const ObjectClass *cls)
{
    json_t *list = json_array();

    json_array_append_new(list, json_pack("{s:s,s:s}", "name", "type",
                                          "type", "string"));
    for (const ObjectProp *p = cls->props; p->name; p++) {
        json_array_append_new(list, json_pack("{s:s,s:s}", "name", p->name,
                                              "type", p->qom_type));
    }
    return list;
}

json_t *object_qom_list(const UserObject *o)
{
    return class_qom_list(o->cls);
}

json_t *object_class_properties(const char *type)
{
    const ObjectClass *cls = class_by_name(type);

    return cls ? class_qom_list(cls) : NULL;
}

json_t *object_qom_get(const UserObject *o, const char *prop, Error **errp)
{
    json_t *v;

    if (!strcmp(prop, "type")) {
        return json_string(o->cls->name);
    }
    if (!find_prop(o, prop)) {
        error_setg(errp, "Property '%s.%s' not found", o->cls->name, prop);
        return NULL;
    }
    if (o->cls->get && (v = o->cls->get(o, prop))) {
        return v;
    }
    v = json_object_get(o->props, prop);
    g_assert(v);
    return json_deep_copy(v);
}

bool object_qom_set(UserObject *o, const char *prop, const json_t *value,
                    Error **errp)
{
    if (!strcmp(prop, "type")) {
        error_setg(errp, "Property '%s.type' is not writable", o->cls->name);
        return false;
    }
    if (!find_prop(o, prop)) {
        error_setg(errp, "Property '%s.%s' not found", o->cls->name, prop);
        return false;
    }
    return o->cls->set(o, prop, value, errp);
}

/* ---- QMP ---------------------------------------------------------------- */

static bool qmp_object_add(const json_t *args, json_t **ret, Error **errp)
{
    return object_add(args, errp);
}

static bool qmp_object_del(const json_t *args, json_t **ret, Error **errp)
{
    const char *id = qjson_get_str(args, "id");
    UserObject *o = object_find(id);

    if (!o) {
        error_setg(errp, "object '%s' not found", id);
        return false;
    }
    if (o->cls->in_use && o->cls->in_use(o)) {
        error_setg(errp, "object '%s' is in use, can not be deleted", id);
        return false;
    }
    g_ptr_array_remove(objects, o);
    object_free(o);
    return true;
}

/* The abstract types qmpd's own implement, as QEMU's tree has them. */
static const struct {
    const char *name;
    const char *parent;
} abstract_types[] = {
    { "object", NULL },
    { "event-loop-base", "object" },
    { "memory-backend", "object" },
    { "secret_common", "object" },
    { "user-creatable", "interface" },
    { "interface", NULL },
};

static bool implements(const char *type, const char *parent, const char *want)
{
    if (!strcmp(type, want)) {
        return true;
    }
    /* every user-creatable type and its ancestors but "object" */
    if (!strcmp(want, "user-creatable") && strcmp(type, "object")
        && strcmp(type, "interface")) {
        return true;
    }
    while (parent) {
        const char *next = NULL;

        if (!strcmp(parent, want)) {
            return true;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(abstract_types); i++) {
            if (!strcmp(abstract_types[i].name, parent)) {
                next = abstract_types[i].parent;
            }
        }
        parent = next;
    }
    return false;
}

static bool qmp_qom_list_types(const json_t *args, json_t **ret, Error **errp)
{
    const char *want = qjson_get_str_or(args, "implements", NULL);
    bool abstract = qjson_get_bool_or(args, "abstract", false);
    json_t *list = json_array();

    for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
        const ObjectClass *c = classes[i];

        if (!want || implements(c->name, c->parent, want)) {
            json_array_append_new(list, json_pack("{s:s,s:s}", "name",
                                                  c->name, "parent",
                                                  c->parent));
        }
    }
    for (size_t i = 0; abstract && i < G_N_ELEMENTS(abstract_types); i++) {
        json_t *e;

        if (want && !implements(abstract_types[i].name,
                                abstract_types[i].parent, want)) {
            continue;
        }
        e = json_pack("{s:s,s:b}", "name", abstract_types[i].name,
                      "abstract", 1);
        if (abstract_types[i].parent) {
            json_object_set_new(e, "parent",
                                json_string(abstract_types[i].parent));
        }
        json_array_append_new(list, e);
    }
    machine_caps_list_types(list, want, abstract);
    *ret = list;
    return true;
}

const QapiHandler object_qmp_handlers[] = {
    { "object-add", qmp_object_add, NULL },
    { "object-del", qmp_object_del, NULL },
    { "qom-list-types", qmp_qom_list_types, NULL },
};

const size_t object_qmp_handlers_count = G_N_ELEMENTS(object_qmp_handlers);
