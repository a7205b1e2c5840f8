/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Machine types.  qmpd emulates the storage side of a guest, so a
 * machine type decides only what the queries report; the list mirrors
 * QEMU 7.2's values for the same types.
 */
#include "config.h"

#include <string.h>

#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/cpu.h"
#include "system/machine.h"

typedef struct {
    const char *name;
    const char *alias;
    const char *desc;
    bool is_default;
    int cpu_max;
    bool hotpluggable_cpus;
    const char *default_cpu_type;
    const char *default_ram_id;
} MachineType;

static const MachineType machine_types[] = {
    { "pc-i440fx-7.2", "pc", "Standard PC (i440FX + PIIX, 1996)", true, 255,
      true, "qemu64-x86_64-cpu", "pc.ram" },
    { "pc-q35-7.2", "q35", "Standard PC (Q35 + ICH9, 2009)", false, 288,
      true, "qemu64-x86_64-cpu", "pc.ram" },
    { "none", NULL, "empty machine", false, 1, false, NULL, "ram" },
};

/*
 * Machine properties that management tools always set.  qmpd has no
 * firmware, display, vCPUs or core-dumped guest RAM, so each value that
 * asks for nothing (and the defaults) means the same here as in QEMU;
 * one that asks for hardware qmpd lacks is refused.  x86 marks the
 * properties only pc and q35 have.
 */
typedef struct {
    const char *name;
    bool x86;
    const char *const *values;  /* NULL: a bool */
    bool refuse_on;             /* "on" asks for hardware qmpd lacks */
} MachineProp;

static const char *const on_off_auto[] = { "on", "off", "auto", NULL };

static const MachineProp machine_props[] = {
    { "usb", false, NULL, true },
    { "dump-guest-core", false, NULL, false },
    { "graphics", false, NULL, false },
    { "suppress-vmdesc", false, NULL, false },
    { "vmport", true, on_off_auto, true },
    { "smm", true, on_off_auto, true },
};

static bool check_machine_prop(const MachineType *t, const Opts *o,
                               const char *key, Error **errp)
{
    const char *val = opts_get(o, key);
    const MachineProp *p = NULL;
    Error *err = NULL;
    bool on;

    for (size_t i = 0; i < G_N_ELEMENTS(machine_props); i++) {
        if (!strcmp(machine_props[i].name, key)) {
            p = &machine_props[i];
        }
    }
    if (!p || (p->x86 && !t->alias)) {
        error_setg(errp, "Property '%s-machine.%s' not found", t->name, key);
        return false;
    }
    if (p->values) {
        if (!g_strv_contains(p->values, val)) {
            error_setg(errp, "Parameter '%s' does not accept value '%s'",
                       key, val);
            return false;
        }
        on = !strcmp(val, "on");
    } else {
        on = opts_get_bool(o, key, false, &err);
        if (err) {
            error_propagate(errp, err);
            return false;
        }
    }
    /* -M none has no bus for such hardware: QEMU adds none either */
    if (p->refuse_on && on && t->alias) {
        error_setg(errp, "%s=on is not supported by qmpd", key);
        return false;
    }
    return true;
}

static MachineConfig the_config;

static const MachineType *find_type(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(machine_types); i++) {
        const MachineType *t = &machine_types[i];

        if (!strcmp(t->name, name) || (t->alias && !strcmp(t->alias, name))) {
            return t;
        }
    }
    return NULL;
}

/*
 * qmpd runs no guest code, so of QEMU's accelerators it has tcg (the
 * emulated guest) and qtest; KVM is not built in, as in a QEMU built
 * without it, whose messages these are.
 */
static bool check_accel(const char *accel, Error **errp)
{
    if (strcmp(accel, "tcg") && strcmp(accel, "qtest")) {
        error_setg(errp, "invalid accelerator %s", accel);
        return false;
    }
    return true;
}

/*
 * -machine accel=A:B:... picks the first one this binary has, warning
 * about each one before it, as QEMU's list; NULL when none is.
 */
static const char *pick_accel(const char *list, Error **errp)
{
    g_auto(GStrv) names = g_strsplit(list, ":", -1);
    Error *err = NULL;

    for (guint i = 0; names[i]; i++) {
        if (check_accel(names[i], &err)) {
            if (i) {
                fprintf(stderr, "qmpd: falling back to %s\n", names[i]);
            }
            return g_intern_string(names[i]);
        }
        if (!names[i + 1]) {
            error_propagate(errp, err);
            return NULL;
        }
        fprintf(stderr, "qmpd: %s\n", error_get_pretty(err));
        error_free(err);
        err = NULL;
    }
    error_setg(errp, "invalid accelerator %s", list);
    return NULL;
}

bool machine_parse(MachineConfig *mc, const char *spec, Error **errp)
{
    g_autoptr(Opts) o = opts_parse(spec, "type", NULL, NULL, errp);
    const char *type;
    const MachineType *t;
    const char *accel;

    if (!o) {
        return false;
    }
    type = opts_get(o, "type");
    t = type ? find_type(type) : find_type("pc");
    if (!t) {
        error_setg(errp, "unsupported machine type");
        error_append_hint(errp, "Use -machine help to list supported "
                          "machines\n");
        return false;
    }
    mc->type = t->name;
    for (guint i = 0; i < opts_count(o); i++) {
        const char *key = opts_key(o, i);

        if (strcmp(key, "type") && strcmp(key, "accel")
            && strcmp(key, "memory-backend")
            && !check_machine_prop(t, o, key, errp)) {
            return false;
        }
    }
    /* linked to the object once the objects exist (memory-backend.c) */
    if (opts_has(o, "memory-backend")) {
        mc->memory_backend = g_intern_string(opts_get(o, "memory-backend"));
    }
    accel = opts_get(o, "accel");
    if (accel) {
        mc->accel = pick_accel(accel, errp);
        if (!mc->accel) {
            return false;
        }
    }
    return true;
}

bool machine_parse_accel(MachineConfig *mc, const char *spec, Error **errp)
{
    static const char *const accel_keys[] = { "accel", "thread", NULL };
    g_autoptr(Opts) o = opts_parse(spec, "accel", accel_keys, NULL, errp);
    const char *accel;
    const char *thread;

    if (!o) {
        return false;
    }
    accel = opts_get(o, "accel");
    if (!accel) {
        error_setg(errp, "Parameter 'accel' is missing");
        return false;
    }
    if (!check_accel(accel, errp)) {
        return false;
    }
    /* TCG's threading; qmpd runs no vCPUs, so either is what it does */
    thread = opts_get(o, "thread");
    if (thread && strcmp(accel, "tcg")) {
        error_setg(errp, "Property '%s-accel.thread' not found", accel);
        return false;
    }
    if (thread && strcmp(thread, "single") && strcmp(thread, "multi")) {
        error_setg(errp, "Invalid 'thread' setting %s", thread);
        return false;
    }
    mc->accel = g_intern_string(accel);
    return true;
}

void machine_print_help(FILE *f)
{
    fprintf(f, "Supported machines are:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(machine_types); i++) {
        const MachineType *t = &machine_types[i];

        if (t->alias) {
            fprintf(f, "%-20s %s (alias of %s)\n", t->alias, t->desc,
                    t->name);
        }
        fprintf(f, "%-20s %s%s\n", t->name, t->desc,
                t->is_default ? " (default)" : "");
    }
}

void machine_set_config(const MachineConfig *mc)
{
    the_config = *mc;
}

const MachineConfig *machine_config(void)
{
    return &the_config;
}

int machine_cpu_count(void)
{
    return (int)cpu_count();
}

int machine_cpu_max(const char *type)
{
    return find_type(type)->cpu_max;
}

static bool qmp_query_machines(const json_t *args, json_t **ret,
                               Error **errp)
{
    json_t *list = json_array();

    for (size_t i = 0; i < G_N_ELEMENTS(machine_types); i++) {
        const MachineType *t = &machine_types[i];
        json_t *m = json_pack("{s:s,s:i,s:b,s:b,s:b,s:s}", "name", t->name,
                              "cpu-max", t->cpu_max,
                              "hotpluggable-cpus", t->hotpluggable_cpus,
                              "numa-mem-supported", 0, "deprecated", 0,
                              "default-ram-id", t->default_ram_id);

        if (t->alias) {
            json_object_set_new(m, "alias", qjson_str(t->alias));
        }
        if (t->is_default) {
            json_object_set_new(m, "is-default", json_true());
        }
        if (t->default_cpu_type) {
            json_object_set_new(m, "default-cpu-type",
                                qjson_str(t->default_cpu_type));
        }
        json_array_append_new(list, m);
    }
    *ret = list;
    return true;
}

static bool qmp_query_kvm(const json_t *args, json_t **ret, Error **errp)
{
    /* KVM is not built into qmpd */
    *ret = json_pack("{s:b,s:b}", "enabled", 0, "present", 0);
    return true;
}

static bool qmp_query_memory_size_summary(const json_t *args, json_t **ret,
                                          Error **errp)
{
    *ret = json_pack("{s:I,s:I}", "base-memory",
                     (json_int_t)the_config.ram_size, "plugged-memory",
                     (json_int_t)0);
    return true;
}

char *machine_qom_type(void)
{
    return g_strdup_printf("%s-machine", the_config.type);
}

json_t *machine_qom_get(const char *name)
{
    if (!strcmp(name, "type")) {
        g_autofree char *type = machine_qom_type();

        return json_string(type);
    }
    if (!strcmp(name, "memory-backend")) {
        g_autofree char *path = the_config.memory_backend
            ? g_strdup_printf("/objects/%s", the_config.memory_backend)
            : NULL;

        return json_string(path ? path : "");
    }
    if (!strcmp(name, "memory")) {
        json_t *mem = json_pack("{s:I}", "size",
                                (json_int_t)the_config.ram_size);

        /* QEMU shows the hotplug limits only when there are slots */
        if (the_config.ram_slots) {
            json_object_set_new(mem, "slots",
                                json_integer(the_config.ram_slots));
            json_object_set_new(mem, "max-size",
                                json_integer(the_config.maxram_size));
        }
        return mem;
    }
    return NULL;
}

static bool qmp_query_target(const json_t *args, json_t **ret, Error **errp)
{
    *ret = json_pack("{s:s}", "arch", "x86_64");
    return true;
}

char *machine_uuid_parse(const char *s)
{
    if (strlen(s) != 36) {
        return NULL;
    }
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !g_ascii_isxdigit(s[i])) {
            return NULL;
        }
    }
    return g_ascii_strdown(s, -1);
}

const char *machine_uuid(void)
{
    return the_config.uuid ? the_config.uuid
        : "00000000-0000-0000-0000-000000000000";
}

static bool qmp_query_uuid(const json_t *args, json_t **ret, Error **errp)
{
    *ret = json_pack("{s:s}", "UUID", machine_uuid());
    return true;
}

static bool qmp_query_name(const json_t *args, json_t **ret, Error **errp)
{
    *ret = json_object();
    if (the_config.name) {
        json_object_set_new(*ret, "name", qjson_str(the_config.name));
    }
    return true;
}

static bool qmp_query_version(const json_t *args, json_t **ret, Error **errp)
{
    /* member order as QEMU prints it */
    *ret = json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu",
                     "micro", QMPD_QEMU_MICRO, "minor", QMPD_QEMU_MINOR,
                     "major", QMPD_QEMU_MAJOR,
                     "package", PACKAGE_NAME " " PACKAGE_VERSION);
    return true;
}

const QapiHandler machine_qmp_handlers[] = {
    { "query-machines", qmp_query_machines, NULL },
    { "query-kvm", qmp_query_kvm, NULL },
    { "query-memory-size-summary", qmp_query_memory_size_summary, NULL },
    { "query-target", qmp_query_target, NULL },
    { "query-name", qmp_query_name, NULL },
    { "query-uuid", qmp_query_uuid, NULL },
    { "query-version", qmp_query_version, NULL },
};

const size_t machine_qmp_handlers_count = G_N_ELEMENTS(machine_qmp_handlers);
