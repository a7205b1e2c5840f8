/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The throttle-group object type: a named throttle group (block/
 * throttle-groups.c) whose limits come from "limits" (ThrottleLimits)
 * or the legacy flat x-bps-total... properties, checked as QEMU 7.2
 * checks them when the object is completed.  Afterwards only "limits"
 * may change (qom-set, merged over the current ones as in QEMU), and
 * the object cannot be deleted while a node or drive throttles in it.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include "block/core/throttle-groups.h"
#include "qapi/qjson.h"
#include "system/object-int.h"

/* qom-list's order, QEMU 7.2's */
static const ObjectProp throttle_group_props[] = {
    { "x-bps-write-max-length", "int" }, { "x-iops-total-max-length", "int" },
    { "x-iops-size", "int" }, { "limits", "ThrottleLimits" },
    { "x-bps-total", "int" }, { "x-iops-read-max-length", "int" },
    { "x-bps-write", "int" }, { "x-iops-write-max-length", "int" },
    { "x-bps-read-max", "int" }, { "x-iops-read-max", "int" },
    { "x-bps-total-max", "int" }, { "x-bps-read-max-length", "int" },
    { "x-iops-read", "int" }, { "x-bps-read", "int" },
    { "x-bps-write-max", "int" }, { "x-iops-total-max", "int" },
    { "x-iops-total", "int" }, { "x-iops-write", "int" },
    { "x-bps-total-max-length", "int" }, { "x-iops-write-max", "int" },
    { NULL, NULL },
};

/* A legacy x- property set while the object is being made. */
static bool set_flat(ThrottleConfig *cfg, int i, json_int_t v, Error **errp)
{
    const char *name = throttle_limit_names[i];

    if (v < 0) {
        error_setg(errp, "Property values cannot be negative");
        return false;
    }
    if (g_str_has_suffix(name, "-length") && v > UINT_MAX) {
        /* sic: QEMU 7.2's message has no space there */
        error_setg(errp, "x-%s value must be in therange [0, %u]", name,
                   UINT_MAX);
        return false;
    }
    throttle_limit_set(cfg, i, (uint64_t)v);
    return true;
}

static bool throttle_group_create(UserObject *o, const json_t *given,
                                  Error **errp)
{
    const json_t *limits = json_object_get(given, "limits");
    ThrottleConfig cfg;

    throttle_config_init(&cfg);
    /* "limits" is checked when set, the whole when the object completes */
    if (limits && !throttle_limits_apply(&cfg, limits, errp)) {
        return false;
    }
    for (int i = 0; throttle_limit_names[i]; i++) {
        g_autofree char *x = g_strconcat("x-", throttle_limit_names[i], NULL);
        json_t *v = json_object_get(given, x);

        if (v && !set_flat(&cfg, i, json_integer_value(v), errp)) {
            return false;
        }
    }
    if (throttle_group_find(o->id)) {
        error_setg(errp, "A group with this name already exists");
        return false;
    }
    if (!throttle_is_valid(&cfg, errp)) {
        return false;
    }
    o->state = throttle_group_new_object(o->id, &cfg, errp);
    return o->state != NULL;
}

static void throttle_group_finalize(UserObject *o)
{
    if (o->state) {
        throttle_group_release_object(o->state);
    }
}

static bool throttle_group_in_use(const UserObject *o)
{
    return throttle_group_has_members(o->state);
}

static json_t *throttle_group_get(const UserObject *o, const char *prop)
{
    ThrottleConfig cfg;

    throttle_group_get_config(o->state, &cfg);
    if (!strcmp(prop, "limits")) {
        return throttle_limits_to_json(&cfg);
    }
    for (int i = 0; throttle_limit_names[i]; i++) {
        if (!strcmp(prop + 2, throttle_limit_names[i])) {
            return json_integer((json_int_t)throttle_limit_get(&cfg, i));
        }
    }
    g_assert_not_reached();
}

/* What QEMU's visitor says of a "limits" value that is not ThrottleLimits */
static bool check_limits(const json_t *v, Error **errp)
{
    const char *key;
    json_t *m;

    if (!json_is_object(v)) {
        error_setg(errp, "Invalid parameter type for 'limits', expected: "
                   "object");
        return false;
    }
    json_object_foreach((json_t *)v, key, m) {
        bool known = false;

        for (int i = 0; throttle_limit_names[i]; i++) {
            known |= !strcmp(key, throttle_limit_names[i]);
        }
        if (!known) {
            error_setg(errp, "Parameter 'limits.%s' is unexpected", key);
            return false;
        }
        if (!json_is_integer(m)) {
            error_setg(errp, "Invalid parameter type for 'limits.%s', "
                       "expected: integer", key);
            return false;
        }
    }
    return true;
}

static bool throttle_group_set(UserObject *o, const char *prop,
                               const json_t *v, Error **errp)
{
    ThrottleConfig cfg;

    if (strcmp(prop, "limits")) {
        error_setg(errp, "Property cannot be set after initialization");
        return false;
    }
    if (!check_limits(v, errp)) {
        return false;
    }
    throttle_group_get_config(o->state, &cfg);
    if (!throttle_limits_apply(&cfg, v, errp)) {
        return false;
    }
    throttle_group_set_config(o->state, &cfg);
    return true;
}

const ObjectClass throttle_group_class = {
    .name = "throttle-group",
    .parent = "object",
    .props = throttle_group_props,
    .create = throttle_group_create,
    .finalize = throttle_group_finalize,
    .in_use = throttle_group_in_use,
    .get = throttle_group_get,
    .set = throttle_group_set,
};
