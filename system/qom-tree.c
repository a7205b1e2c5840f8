/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qom-list and qom-set over qmpd's QOM tree, and path resolution for
 * them and qom-get.  The tree:
 *
 *     /                       container
 *       machine               TYPE-machine (memory, memory-backend ...)
 *         unattached          container: device[N] the board made
 *                             (the IDE disks of -hda and -drive if=ide,
 *                             the default floppy)
 *         peripheral          container: devices with an id
 *         peripheral-anon     container: device[N]
 *       objects               container (once an object was created)
 *         ID                  iothread, secret, memory-backend-ram
 *
 * Devices' own property lists are QEMU's device models', which qmpd
 * models only as far as qom-get goes: qom-list on a device says so.
 */
#include "config.h"

#include <string.h>

#include "qapi/qjson.h"
#include "system/board-drives.h"
#include "system/cpu.h"
#include "system/guest.h"
#include "system/machine.h"
#include "system/object.h"
#include "system/qom-tree.h"

static GPtrArray *tree_paths;   /* char *, rebuilt by every resolve */

static void add(const char *p)
{
    g_ptr_array_add(tree_paths, g_strdup(p));
}

static void collect(void)
{
    g_autoptr(GPtrArray) devs = g_ptr_array_new();
    g_autoptr(GPtrArray) cpus = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(json_t) children = json_array();

    if (tree_paths) {
        g_ptr_array_unref(tree_paths);
    }
    tree_paths = g_ptr_array_new_with_free_func(g_free);
    add("/");
    add("/machine");
    add("/machine/peripheral");
    add("/machine/peripheral-anon");
    add("/machine/unattached");
    cpu_qom_paths(cpus);
    for (guint i = 0; i < cpus->len; i++) {
        add(g_ptr_array_index(cpus, i));
    }
    guest_qom_paths(devs);
    for (guint i = 0; i < devs->len; i++) {
        add(g_ptr_array_index(devs, i));
    }
    if (board_floppy_qom_path()) {
        add(board_floppy_qom_path());
    }
    if (object_root_exists()) {
        add("/objects");
    }
    object_list_children(children);
    for (size_t i = 0; i < json_array_size(children); i++) {
        g_autofree char *p = g_strdup_printf(
            "/objects/%s", qjson_get_str(json_array_get(children, i),
                                         "name"));

        add(p);
    }
}

const char *qom_resolve(const char *path, Error **errp)
{
    g_autofree char *tail = g_strconcat("/", path, NULL);
    const char *found = NULL;
    bool ambiguous = false;

    collect();
    for (guint i = 0; i < tree_paths->len; i++) {
        const char *p = g_ptr_array_index(tree_paths, i);

        if (path[0] == '/' ? !strcmp(p, path)
                           : *path && g_str_has_suffix(p, tail)) {
            ambiguous = found != NULL;
            found = p;
        }
    }
    if (!found || ambiguous) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
                  path);
        return NULL;
    }
    return found;
}

static UserObject *object_at(const char *obj)
{
    return g_str_has_prefix(obj, "/objects/")
        ? object_find(obj + strlen("/objects/")) : NULL;
}

static bool is_container(const char *obj)
{
    return !strcmp(obj, "/") || !strcmp(obj, "/objects")
        || !strcmp(obj, "/machine/peripheral")
        || !strcmp(obj, "/machine/peripheral-anon")
        || !strcmp(obj, "/machine/unattached");
}

bool qom_tree_get(const char *obj, const char *prop, json_t **ret,
                  Error **errp)
{
    UserObject *o = object_at(obj);

    if (o) {
        *ret = object_qom_get(o, prop, errp);
        return true;
    }
    if (board_floppy_qom_get(obj, prop, ret, errp)
        || cpu_qom_get(obj, prop, ret, errp)) {
        return true;
    }
    if (!is_container(obj)) {
        return false;
    }
    if (!strcmp(prop, "type")) {
        *ret = json_string("container");
    } else {
        *ret = NULL;
        error_setg(errp, "Property 'container.%s' not found", prop);
    }
    return true;
}

static json_t *entry(const char *name, const char *type)
{
    return json_pack("{s:s,s:s}", "name", name, "type", type);
}

/* The children of container @obj, "child<TYPE>" each. */
static void list_children(const char *obj, json_t *list)
{
    g_autofree char *prefix = g_strconcat(obj, "/", NULL);

    if (!strcmp(obj, "/objects")) {
        object_list_children(list);
        return;
    }
    if (!strcmp(obj, "/")) {
        g_autofree char *mt = machine_qom_type();
        g_autofree char *t = g_strdup_printf("child<%s>", mt);

        /* QEMU's order; its /chardevs is not modelled */
        if (object_root_exists()) {
            json_array_append_new(list, entry("objects", "child<container>"));
        }
        json_array_append_new(list, entry("machine", t));
        return;
    }
    for (guint i = 0; i < tree_paths->len; i++) {
        const char *p = g_ptr_array_index(tree_paths, i);
        const char *rest = p + strlen(prefix);
        g_autoptr(json_t) type = NULL;
        g_autofree char *t = NULL;

        if (!g_str_has_prefix(p, prefix) || !*rest || strchr(rest, '/')
            || !strcmp(p, "/")) {
            continue;
        }
        if (!strcmp(p, "/machine")) {
            g_autofree char *mt = machine_qom_type();

            t = g_strdup_printf("child<%s>", mt);
        } else if (is_container(p)) {
            t = g_strdup("child<container>");
        } else {
            if (!board_floppy_qom_get(p, "type", &type, NULL)
                && !cpu_qom_get(p, "type", &type, NULL)) {
                type = guest_qom_get(p, "type", NULL);
            }
            t = g_strdup_printf("child<%s>", type ? json_string_value(type)
                                                  : "device");
        }
        json_array_append_new(list, entry(rest, t));
    }
}

static bool qmp_qom_list(const json_t *args, json_t **ret, Error **errp)
{
    const char *obj = qom_resolve(qjson_get_str(args, "path"), errp);
    UserObject *o;
    json_t *list;

    if (!obj) {
        return false;
    }
    o = object_at(obj);
    if (o) {
        *ret = object_qom_list(o);
        return true;
    }
    *ret = cpu_qom_list(obj);
    if (*ret) {
        return true;
    }
    list = json_array();
    json_array_append_new(list, entry("type", "string"));
    if (!strcmp(obj, "/machine")) {
        json_array_append_new(list, entry("memory",
                                          "MemorySizeConfiguration"));
        json_array_append_new(list, entry("memory-backend",
                                          "link<memory-backend>"));
        json_array_append_new(list, entry("unattached", "child<container>"));
        json_array_append_new(list, entry("peripheral-anon",
                                          "child<container>"));
        json_array_append_new(list, entry("peripheral", "child<container>"));
    } else if (is_container(obj)) {
        list_children(obj, list);
    } else {
        json_decref(list);
        error_setg(errp, "qom-list of device '%s' is not supported by qmpd "
                   "(qom-get gives its properties)", obj);
        return false;
    }
    *ret = list;
    return true;
}

static bool qmp_qom_set(const json_t *args, json_t **ret, Error **errp)
{
    const char *obj = qom_resolve(qjson_get_str(args, "path"), errp);
    const char *prop = qjson_get_str(args, "property");
    UserObject *o;

    if (!obj) {
        return false;
    }
    o = object_at(obj);
    if (o) {
        return object_qom_set(o, prop, json_object_get(args, "value"),
                              errp);
    }
    if (is_container(obj)) {
        error_setg(errp, !strcmp(prop, "type")
                   ? "Property 'container.type' is not writable"
                   : "Property 'container.%s' not found", prop);
        return false;
    }
    error_setg(errp, "qom-set on '%s' is not supported by qmpd", obj);
    return false;
}

const QapiHandler qom_tree_qmp_handlers[] = {
    { "qom-list", qmp_qom_list, NULL },
    { "qom-set", qmp_qom_set, NULL },
};

const size_t qom_tree_qmp_handlers_count =
    G_N_ELEMENTS(qom_tree_qmp_handlers);
