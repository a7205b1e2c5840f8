/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The iothread object type: its event-loop parameters (QEMU's defaults
 * and checks), settable while it exists, and query-iothreads.  The
 * parameters tune QEMU's polling and thread pool; qmpd's single event
 * loop neither polls nor has a per-iothread pool, so they are kept and
 * reported, which is all a client can observe of them.  Devices link to
 * an iothread (iothread=); as in QEMU 7.2 the link does not keep it:
 * object-del takes it, and the link then reads "".
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "qapi/qjson.h"
#include "system/iothread.h"
#include "system/object-int.h"

static const ObjectProp iothread_props[] = {
    { "thread-pool-min", "int" },
    { "aio-max-batch", "int" },
    { "thread-pool-max", "int" },
    { "poll-max-ns", "int" },
    { "poll-grow", "int" },
    { "poll-shrink", "int" },
    { NULL, NULL },
};

/* QEMU's order of applying them (the schema's) */
static const char *const param_order[] = {
    "aio-max-batch", "thread-pool-min", "thread-pool-max", "poll-max-ns",
    "poll-grow", "poll-shrink", NULL
};

static bool set_param(UserObject *o, const char *name, const json_t *v,
                      Error **errp)
{
    if (!object_expect_int(name, v, errp)) {
        return false;
    }
    if (json_integer_value(v) < 0) {
        error_setg(errp, "%s value must be in range [0, %" PRId64 "]", name,
                   INT64_MAX);
        return false;
    }
    json_object_set(o->props, name, (json_t *)v);
    return true;
}

/* QEMU checks the thread pool's bounds whenever they are applied */
static bool check_pool(const UserObject *o, Error **errp)
{
    int64_t min = qjson_get_int(o->props, "thread-pool-min");
    int64_t max = qjson_get_int(o->props, "thread-pool-max");

    if (min > max || !max || min > G_MAXINT || max > G_MAXINT) {
        error_setg(errp, "bad thread-pool-min/thread-pool-max values");
        return false;
    }
    return true;
}

static bool iothread_create(UserObject *o, const json_t *given, Error **errp)
{
    json_object_set_new(o->props, "thread-pool-min", json_integer(0));
    json_object_set_new(o->props, "aio-max-batch", json_integer(0));
    json_object_set_new(o->props, "thread-pool-max", json_integer(64));
    json_object_set_new(o->props, "poll-max-ns", json_integer(32768));
    json_object_set_new(o->props, "poll-grow", json_integer(0));
    json_object_set_new(o->props, "poll-shrink", json_integer(0));
    for (int i = 0; param_order[i]; i++) {
        json_t *v = json_object_get(given, param_order[i]);

        if (v && !set_param(o, param_order[i], v, errp)) {
            return false;
        }
    }
    if (!check_pool(o, errp)) {
        return false;
    }
    return true;
}

static bool iothread_set(UserObject *o, const char *prop, const json_t *v,
                         Error **errp)
{
    if (!set_param(o, prop, v, errp)) {
        return false;
    }
    /* as in QEMU, a refused bound is still what qom-get shows */
    return !g_str_has_prefix(prop, "thread-pool-") || check_pool(o, errp);
}

const ObjectClass iothread_class = {
    .name = "iothread",
    .parent = "event-loop-base",
    .props = iothread_props,
    .create = iothread_create,
    .set = iothread_set,
};

bool iothread_link(const char *id, uint64_t *serial, Error **errp)
{
    UserObject *o;

    if (!*id) {
        *serial = 0;
        return true;
    }
    o = object_find(id);
    if (!o) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
                  id);
        return false;
    }
    if (strcmp(object_type(o), "iothread")) {
        error_setg(errp, "Invalid parameter type for 'iothread', expected: "
                   "iothread");
        return false;
    }
    *serial = object_serial(o);
    return true;
}

json_t *iothread_link_path(uint64_t serial)
{
    const UserObject *o = object_by_serial(serial);
    g_autofree char *path = o ? g_strdup_printf("/objects/%s", object_id(o))
                              : NULL;

    return json_string(path ? path : "");
}

static bool qmp_query_iothreads(const json_t *args, json_t **ret,
                                Error **errp)
{
    json_t *list = json_array();
    /* every iothread is served by the main loop's thread */
    json_int_t tid = syscall(SYS_gettid);
    json_t *children = json_array();

    object_list_children(children);
    for (size_t i = 0; i < json_array_size(children); i++) {
        const char *id = qjson_get_str(json_array_get(children, i), "name");
        UserObject *o = object_find(id);

        if (strcmp(object_type(o), "iothread")) {
            continue;
        }
        json_array_append_new(list, json_pack(
            "{s:s,s:I,s:O,s:O,s:O,s:O}", "id", id, "thread-id", tid,
            "poll-max-ns", json_object_get(o->props, "poll-max-ns"),
            "poll-grow", json_object_get(o->props, "poll-grow"),
            "poll-shrink", json_object_get(o->props, "poll-shrink"),
            "aio-max-batch", json_object_get(o->props, "aio-max-batch")));
    }
    json_decref(children);
    *ret = list;
    return true;
}

const QapiHandler iothread_qmp_handlers[] = {
    { "query-iothreads", qmp_query_iothreads, NULL },
};

const size_t iothread_qmp_handlers_count =
    G_N_ELEMENTS(iothread_qmp_handlers);
