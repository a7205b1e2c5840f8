/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The memory-backend-ram object type.  qmpd's guest RAM has a size and
 * nothing behind it that the host could share, preallocate, reserve or
 * bind to NUMA nodes, so the properties asking for that are refused by
 * name; dump= and merge= only hint at what to do with memory the host
 * allocated, and mean the same here either way.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "qapi/qjson.h"
#include "system/memory-backend.h"
#include "system/object-int.h"

typedef struct {
    bool used;                  /* the machine's RAM */
} MemoryBackend;

static const ObjectProp mb_props[] = {
    { "share", "bool" },
    { "size", "int" },
    { "dump", "bool" },
    { "prealloc-threads", "int" },
    { "x-use-canonical-path-for-ramblock-id", "bool" },
    { "policy", "HostMemPolicy" },
    { "prealloc-context", "link<thread-context>" },
    { "prealloc", "bool" },
    { "reserve", "bool" },
    { "host-nodes", "int" },
    { "merge", "bool" },
    { NULL, NULL },
};

/* What asks for host memory qmpd does not have: the value that doesn't */
static bool refuse_unsupported(const json_t *given, Error **errp)
{
    static const char *const off_only[] = { "share", "prealloc", NULL };
    const json_t *v;

    for (int i = 0; off_only[i]; i++) {
        v = json_object_get(given, off_only[i]);
        if (v && json_is_true(v)) {
            error_setg(errp, "memory-backend-ram property '%s' is not "
                       "supported by qmpd", off_only[i]);
            return false;
        }
    }
    v = json_object_get(given, "reserve");
    if (v && json_is_false(v)) {
        error_setg(errp, "memory-backend-ram property 'reserve' is not "
                   "supported by qmpd");
        return false;
    }
    v = json_object_get(given, "policy");
    if (v && strcmp(json_string_value(v), "default")) {
        error_setg(errp, "memory-backend-ram property 'policy' is not "
                   "supported by qmpd");
        return false;
    }
    v = json_object_get(given, "host-nodes");
    if (v && json_array_size(v)) {
        error_setg(errp, "memory-backend-ram property 'host-nodes' is not "
                   "supported by qmpd");
        return false;
    }
    if (json_object_get(given, "prealloc-context")) {
        error_setg(errp, "memory-backend-ram property 'prealloc-context' is "
                   "not supported by qmpd");
        return false;
    }
    return true;
}

static bool mb_create(UserObject *o, const json_t *given, Error **errp)
{
    const char *key;
    json_t *v;

    if (!qjson_get_int(given, "size")) {
        error_setg(errp, "property 'size' of memory-backend-ram doesn't "
                   "take value '0'");
        return false;
    }
    if (!refuse_unsupported(given, errp)) {
        return false;
    }
    json_object_set_new(o->props, "share", json_false());
    json_object_set_new(o->props, "dump", json_true());
    json_object_set_new(o->props, "prealloc-threads", json_integer(1));
    json_object_set_new(o->props, "x-use-canonical-path-for-ramblock-id",
                        json_false());
    json_object_set_new(o->props, "policy", json_string("default"));
    json_object_set_new(o->props, "prealloc-context", json_string(""));
    json_object_set_new(o->props, "prealloc", json_false());
    json_object_set_new(o->props, "reserve", json_true());
    json_object_set_new(o->props, "host-nodes", json_array());
    json_object_set_new(o->props, "merge", json_true());
    json_object_foreach((json_t *)given, key, v) {
        json_object_set(o->props, key, v);
    }
    o->state = g_new0(MemoryBackend, 1);
    return true;
}

static void mb_finalize(UserObject *o)
{
    g_free(o->state);
}

static bool mb_in_use(const UserObject *o)
{
    return ((const MemoryBackend *)o->state)->used;
}

/*
 * QEMU lets the hints change on a live backend and keeps the NUMA
 * settings it only reads at creation; size, share and reserve shape the
 * mapping and stay.
 */
static bool mb_set(UserObject *o, const char *prop, const json_t *v,
                   Error **errp)
{
    static const char *const bools[] = {
        "dump", "merge", "prealloc", "x-use-canonical-path-for-ramblock-id",
        NULL
    };

    if (!strcmp(prop, "size")) {
        /* sic: QEMU's message, with its trailing space */
        error_setg(errp, "cannot change property %s of memory-backend-ram ",
                   prop);
        return false;
    }
    if (!strcmp(prop, "share") || !strcmp(prop, "reserve")) {
        error_setg(errp, "cannot change property value");
        return false;
    }
    if (g_strv_contains(bools, prop)) {
        if (!object_expect_bool(prop, v, errp)) {
            return false;
        }
        /* preallocating now would touch host memory qmpd does not map */
        if (!strcmp(prop, "prealloc") && json_is_true(v)) {
            error_setg(errp, "memory-backend-ram property 'prealloc' is not "
                       "supported by qmpd");
            return false;
        }
    } else if (!strcmp(prop, "prealloc-threads")) {
        if (!object_expect_int(prop, v, errp)) {
            return false;
        }
    } else if (!strcmp(prop, "policy")) {
        static const char *const policies[] = {
            "default", "preferred", "bind", "interleave", NULL
        };

        if (!object_expect_str(prop, v, errp)) {
            return false;
        }
        if (!g_strv_contains(policies, json_string_value(v))) {
            error_setg(errp, "Parameter 'policy' does not accept value '%s'",
                       json_string_value(v));
            return false;
        }
    } else if (!strcmp(prop, "host-nodes")) {
        size_t i;
        json_t *n;

        if (!json_is_array(v)) {
            error_setg(errp, "Invalid parameter type for 'host-nodes', "
                       "expected: array");
            return false;
        }
        json_array_foreach(v, i, n) {
            if (!object_expect_int("host-nodes", n, errp)) {
                return false;
            }
        }
    } else if (!strcmp(prop, "prealloc-context")) {
        if (!object_expect_str(prop, v, errp)) {
            return false;
        }
        if (*json_string_value(v)) {
            error_setg(errp, "memory-backend-ram property 'prealloc-context' "
                       "is not supported by qmpd");
            return false;
        }
    }
    json_object_set(o->props, prop, (json_t *)v);
    return true;
}

const ObjectClass memory_backend_ram_class = {
    .name = "memory-backend-ram",
    .parent = "memory-backend",
    .props = mb_props,
    .create = mb_create,
    .finalize = mb_finalize,
    .in_use = mb_in_use,
    .set = mb_set,
};

bool memory_backend_link(MachineConfig *mc, const MemoryOpts *m,
                         Error **errp)
{
    bool none = !strcmp(mc->type, "none");
    const char *dflt = none ? "ram" : "pc.ram";
    UserObject *o;

    if (mc->memory_backend) {
        MemoryOpts sized = *m;

        o = object_find(mc->memory_backend);
        if (!o || strcmp(object_type(o), "memory-backend-ram")) {
            error_setg(errp, "Memory backend '%s' not found",
                       mc->memory_backend);
            return false;
        }
        sized.size = qjson_get_int(o->props, "size");
        sized.size_in_mib = false;
        if (m->size) {
            if (!memory_apply(mc, m, errp)) {
                return false;
            }
            if (mc->ram_size != sized.size) {
                error_setg(errp, "Machine memory size does not match the "
                           "size of the memory backend");
                return false;
            }
        }
        if (!memory_apply(mc, &sized, errp)) {
            return false;
        }
        ((MemoryBackend *)o->state)->used = true;
        return true;
    }
    if (none && !m->size) {
        return true;
    }
    if (object_find(dflt)) {
        error_setg(errp, "object name '%s' is reserved for the default RAM "
                   "backend, it can't be used for any other purposes. Change "
                   "the object's 'id' to something else", dflt);
        return false;
    }
    {
        g_autoptr(json_t) opts = json_pack("{s:s,s:s,s:I}", "qom-type",
                                           "memory-backend-ram", "id", dflt,
                                           "size",
                                           (json_int_t)mc->ram_size);

        if (!object_add(opts, errp)) {
            return false;
        }
    }
    o = object_find(dflt);
    ((MemoryBackend *)o->state)->used = true;
    mc->memory_backend = g_intern_string(dflt);
    return true;
}
