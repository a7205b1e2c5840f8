/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's vCPUs: -smp's topology, -cpu's model, and what the
 * queries show of them (query-cpus-fast, query-hotpluggable-cpus, the
 * CPU objects in /machine/unattached, the CPU model list and its
 * expansion).  No guest code runs, so a vCPU is its place in the
 * topology and its model's identity; the models carry no CPUID feature
 * flags, which their expansion and "unavailable-features" say plainly
 * (nothing is filtered because nothing is asked for).
 *
 * QOM paths follow QEMU's pc and q35 boards: the first CPU is
 * /machine/unattached/device[0], the board's kvmvapic device[1], the
 * other CPUs device[2] on; the board's later devices come after them
 * (board-drives.c adds cpu_board_shift()).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/cpu.h"
#include "system/machine.h"

typedef struct {
    const char *name;
    const char *alias_of;
    bool is_static;
    bool migration_safe;
    const char *vendor;
    const char *model_id;
    int family, model, stepping;
} CpuModel;

/* QEMU 7.2's identity values for the models qmpd offers */
static const CpuModel cpu_models[] = {
    { "max", NULL, false, false, "AuthenticAMD",
      "QEMU TCG CPU version 2.5+", 6, 6, 3 },
    { "base", NULL, true, true, "", "", 0, 0, 0 },
    { "qemu64", "qemu64-v1", false, true, "AuthenticAMD",
      "QEMU Virtual CPU version 2.5+", 15, 107, 1 },
    { "qemu64-v1", NULL, false, true, "AuthenticAMD",
      "QEMU Virtual CPU version 2.5+", 15, 107, 1 },
};

static struct {
    unsigned cpus, maxcpus, sockets, dies, cores, threads;
    const CpuModel *model;
} topo = { 1, 1, 1, 1, 1, 1, &cpu_models[2] };

static const CpuModel *find_model(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cpu_models); i++) {
        if (!strcmp(cpu_models[i].name, name)) {
            return &cpu_models[i];
        }
    }
    return NULL;
}

static char *model_type(const CpuModel *m)
{
    return g_strdup_printf("%s-x86_64-cpu", m->name);
}

bool cpu_parse_model(const char *spec, Error **errp)
{
    g_autofree char *name = g_strdup(spec);
    char *features = strchr(name, ',');
    const CpuModel *m;

    if (features) {
        *features++ = '\0';
    }
    if (!strcmp(name, "host")) {
        error_setg(errp, "CPU model 'host' requires KVM or HVF");
        return false;
    }
    m = find_model(name);
    if (!m) {
        error_setg(errp, "unable to find CPU model '%s'", name);
        return false;
    }
    if (features && !cpu_parse_features(m->name, features, errp)) {
        return false;
    }
    topo.model = m;
    return true;
}

/* The product of the topology's levels, saturating (no wrap to a match). */
static uint64_t topo_product(unsigned s, unsigned d, unsigned c, unsigned t)
{
    uint64_t p = (uint64_t)s * d;

    p = p > UINT32_MAX ? UINT64_MAX : p * c;
    return p > UINT32_MAX ? UINT64_MAX : p * t;
}

bool cpu_parse_smp(const char *spec, Error **errp)
{
    static const char *const keys[] = {
        "cpus", "maxcpus", "sockets", "dies", "cores", "threads", NULL
    };
    g_autoptr(Opts) o = opts_parse(spec, "cpus", NULL, NULL, errp);
    unsigned v[6] = { 0 };
    unsigned *cpus = &v[0], *maxcpus = &v[1], *sockets = &v[2];
    unsigned *dies = &v[3], *cores = &v[4], *threads = &v[5];

    if (!o) {
        return false;
    }
    for (guint i = 0; i < opts_count(o); i++) {
        if (!g_strv_contains(keys, opts_key(o, i))) {
            error_setg(errp, "Parameter 'smp.%s' is unexpected",
                       opts_key(o, i));
            return false;
        }
    }
    for (int k = 0; keys[k]; k++) {
        const char *s = opts_get(o, keys[k]);
        char *end;
        unsigned long n;

        if (!s) {
            continue;
        }
        n = strtoul(s, &end, 10);
        if (!*s || *end || n > UINT32_MAX || s[0] == '-') {
            error_setg(errp, "Parameter 'smp.%s' expects integer", keys[k]);
            return false;
        }
        if (!n) {
            fprintf(stderr, "qmpd: warning: Deprecated CPU topology "
                    "(considered invalid): CPU topology parameters must be "
                    "greater than zero\n");
        }
        v[k] = n;
    }
    /* QEMU 7.2's machine_parse_smp_config(), cores before sockets */
    *dies = *dies ? *dies : 1;
    if (!*cpus && !*maxcpus) {
        *sockets = *sockets ? *sockets : 1;
        *cores = *cores ? *cores : 1;
        *threads = *threads ? *threads : 1;
    } else {
        *maxcpus = *maxcpus ? *maxcpus : *cpus;
        if (!*cores) {
            *sockets = *sockets ? *sockets : 1;
            *threads = *threads ? *threads : 1;
            *cores = *maxcpus / topo_product(*sockets, *dies, 1, *threads);
        } else if (!*sockets) {
            *threads = *threads ? *threads : 1;
            *sockets = *maxcpus / topo_product(1, *dies, *cores, *threads);
        }
    }
    if (!*threads) {
        *threads = *maxcpus / topo_product(*sockets, *dies, *cores, 1);
    }
    if (!*maxcpus) {
        uint64_t p = topo_product(*sockets, *dies, *cores, *threads);

        *maxcpus = p > UINT32_MAX ? UINT32_MAX : p;
    }
    *cpus = *cpus ? *cpus : *maxcpus;
    if (topo_product(*sockets, *dies, *cores, *threads) != *maxcpus) {
        error_setg(errp, "Invalid CPU topology: product of the hierarchy "
                   "must match maxcpus: sockets (%u) * dies (%u) * cores (%u) "
                   "* threads (%u) != maxcpus (%u)", *sockets, *dies, *cores,
                   *threads, *maxcpus);
        return false;
    }
    if (*maxcpus < *cpus) {
        error_setg(errp, "Invalid CPU topology: maxcpus must be equal to or "
                   "greater than smp: sockets (%u) * dies (%u) * cores (%u) * "
                   "threads (%u) == maxcpus (%u) < smp_cpus (%u)", *sockets,
                   *dies, *cores, *threads, *maxcpus, *cpus);
        return false;
    }
    topo.cpus = *cpus;
    topo.maxcpus = *maxcpus;
    topo.sockets = *sockets;
    topo.dies = *dies;
    topo.cores = *cores;
    topo.threads = *threads;
    return true;
}

bool cpu_check_machine(const MachineConfig *mc, Error **errp)
{
    int max = machine_cpu_max(mc->type);

    if ((int)topo.maxcpus > max) {
        error_setg(errp, "Invalid SMP CPUs %u. The max CPUs supported by "
                   "machine '%s' is %d", topo.maxcpus, mc->type, max);
        return false;
    }
    return true;
}

unsigned cpu_count(void)
{
    const char *type = machine_config()->type;

    /* -M none has no board to put vCPUs on */
    return type && strcmp(type, "none") ? topo.cpus : 0;
}

unsigned cpu_board_shift(void)
{
    return cpu_count() > 1 ? cpu_count() - 1 : 0;
}

static char *cpu_path(unsigned i)
{
    return g_strdup_printf("/machine/unattached/device[%u]", i ? i + 1 : 0);
}

static json_t *cpu_props(unsigned i)
{
    json_t *p = json_object();

    /* QEMU shows die-id only where the topology has dies */
    json_object_set_new(p, "core-id",
                        json_integer(i / topo.threads % topo.cores));
    json_object_set_new(p, "thread-id", json_integer(i % topo.threads));
    if (topo.dies > 1) {
        json_object_set_new(p, "die-id", json_integer(
            i / (topo.threads * topo.cores) % topo.dies));
    }
    json_object_set_new(p, "socket-id", json_integer(
        i / (topo.threads * topo.cores * topo.dies)));
    return p;
}

static bool qmp_query_cpus_fast(const json_t *args, json_t **ret,
                                Error **errp)
{
    /* no vCPU threads: the one thread that serves the guest */
    json_int_t tid = syscall(SYS_gettid);
    json_t *list = json_array();

    for (unsigned i = 0; i < cpu_count(); i++) {
        g_autofree char *path = cpu_path(i);

        json_array_append_new(list, json_pack(
            "{s:I,s:o,s:s,s:i,s:s}", "thread-id", tid, "props", cpu_props(i),
            "qom-path", path, "cpu-index", i, "target", "x86_64"));
    }
    *ret = list;
    return true;
}

static bool qmp_query_hotpluggable_cpus(const json_t *args, json_t **ret,
                                        Error **errp)
{
    g_autofree char *type = model_type(topo.model);
    json_t *list;

    if (!cpu_count()) {
        error_setg(errp, "machine does not support hot-plugging CPUs");
        return false;
    }
    list = json_array();
    /* QEMU lists the slots last first */
    for (unsigned i = topo.maxcpus; i-- > 0;) {
        json_t *e = json_pack("{s:o,s:i,s:s}", "props", cpu_props(i),
                              "vcpus-count", 1, "type", type);

        if (i < topo.cpus) {
            g_autofree char *path = cpu_path(i);

            json_object_set_new(e, "qom-path", json_string(path));
        }
        json_array_append_new(list, e);
    }
    *ret = list;
    return true;
}

static bool qmp_query_cpu_definitions(const json_t *args, json_t **ret,
                                      Error **errp)
{
    json_t *list = json_array();

    for (size_t i = 0; i < G_N_ELEMENTS(cpu_models); i++) {
        const CpuModel *m = &cpu_models[i];
        g_autofree char *type = model_type(m);
        json_t *e = json_pack("{s:s,s:s,s:[],s:b,s:b,s:b}", "name", m->name,
                              "typename", type, "unavailable-features",
                              "static", m->is_static, "migration-safe",
                              m->migration_safe, "deprecated", 0);

        if (m->alias_of) {
            json_object_set_new(e, "alias-of", json_string(m->alias_of));
        }
        json_array_append_new(list, e);
    }
    *ret = list;
    return true;
}

static bool qmp_query_cpu_model_expansion(const json_t *args, json_t **ret,
                                          Error **errp)
{
    const json_t *model = json_object_get(args, "model");
    const char *name = qjson_get_str(model, "name");
    const json_t *props = json_object_get(model, "props");
    const CpuModel *m = find_model(name);
    g_autofree char *type = NULL;
    json_t *out = json_object();
    const char *key;
    json_t *val;

    if (!m) {
        json_decref(out);
        error_setg(errp, "CPU model '%s' not found", name);
        return false;
    }
    type = model_type(m);
    if (props && !json_is_object(props)) {
        json_decref(out);
        error_setg(errp, "Invalid parameter type for 'props', expected: "
                   "dict");
        return false;
    }
    json_object_foreach((json_t *)props, key, val) {
        /* max's "migratable" is the one property a model here has */
        if (strcmp(m->name, "max") || strcmp(key, "migratable")) {
            json_decref(out);
            error_setg(errp, "Property '%s.%s' not found", type, key);
            return false;
        }
        if (!json_is_boolean(val)) {
            json_decref(out);
            error_setg(errp, "Invalid parameter type for 'migratable', "
                       "expected: boolean");
            return false;
        }
        json_object_set(out, key, val);
    }
    /* static expansions are in terms of "base", as QEMU's */
    if (!strcmp(qjson_get_str(args, "type"), "static")) {
        json_object_clear(out);
        *ret = json_pack("{s:{s:s,s:o}}", "model", "name", "base", "props",
                         out);
    } else {
        *ret = json_pack("{s:{s:s,s:o}}", "model", "name", name, "props",
                         out);
    }
    return true;
}

void cpu_qom_paths(GPtrArray *paths)
{
    for (unsigned i = 0; i < cpu_count(); i++) {
        g_ptr_array_add(paths, cpu_path(i));
    }
}

/* The CPU at @path, or -1. */
static int cpu_at(const char *path)
{
    for (unsigned i = 0; i < cpu_count(); i++) {
        g_autofree char *p = cpu_path(i);

        if (!strcmp(p, path)) {
            return i;
        }
    }
    return -1;
}

static const char *const cpu_prop_names[] = {
    "type", "realized", "hotplugged", "hotpluggable", "start-powered-off",
    "socket-id", "die-id", "core-id", "thread-id", "apic-id", "vendor",
    "model-id", "family", "model", "stepping", "unavailable-features",
    NULL
};

static const char *const cpu_prop_types[] = {
    "string", "bool", "bool", "bool", "bool", "int32", "int32", "int32",
    "int32", "uint32", "string", "string", "int", "int", "int", "strList",
};

json_t *cpu_qom_list(const char *path)
{
    return cpu_at(path) < 0 ? NULL : cpu_class_properties();
}

json_t *cpu_class_properties(void)
{
    json_t *list = json_array();

    for (int i = 0; cpu_prop_names[i]; i++) {
        json_array_append_new(list, json_pack("{s:s,s:s}", "name",
                                              cpu_prop_names[i], "type",
                                              cpu_prop_types[i]));
    }
    return list;
}

bool cpu_qom_get(const char *path, const char *prop, json_t **ret,
                 Error **errp)
{
    int i = cpu_at(path);
    g_autofree char *type = NULL;
    g_autoptr(json_t) ids = NULL;
    const CpuModel *m = topo.model;

    if (i < 0) {
        return false;
    }
    type = model_type(m);
    ids = cpu_props(i);
    if (!strcmp(prop, "type")) {
        *ret = json_string(type);
    } else if (!strcmp(prop, "realized") || !strcmp(prop, "hotpluggable")) {
        *ret = json_true();
    } else if (!strcmp(prop, "hotplugged")
               || !strcmp(prop, "start-powered-off")) {
        *ret = json_false();
    } else if (g_str_has_suffix(prop, "-id") && strcmp(prop, "apic-id")) {
        json_t *v = json_object_get(ids, prop);

        *ret = v ? json_incref(v) : json_integer(0);
    } else if (!strcmp(prop, "apic-id")) {
        *ret = json_integer(i);
    } else if (!strcmp(prop, "vendor")) {
        *ret = json_string(m->vendor);
    } else if (!strcmp(prop, "model-id")) {
        *ret = json_string(m->model_id);
    } else if (!strcmp(prop, "family")) {
        *ret = json_integer(m->family);
    } else if (!strcmp(prop, "model")) {
        *ret = json_integer(m->model);
    } else if (!strcmp(prop, "stepping")) {
        *ret = json_integer(m->stepping);
    } else if (!strcmp(prop, "unavailable-features")) {
        *ret = json_array();
    } else {
        *ret = NULL;
        error_setg(errp, "Property '%s.%s' not found", type, prop);
    }
    return true;
}

const QapiHandler cpu_qmp_handlers[] = {
    { "query-cpus-fast", qmp_query_cpus_fast, NULL },
    { "query-hotpluggable-cpus", qmp_query_hotpluggable_cpus, NULL },
    { "query-cpu-definitions", qmp_query_cpu_definitions, NULL },
    { "query-cpu-model-expansion", qmp_query_cpu_model_expansion, NULL },
};

const size_t cpu_qmp_handlers_count = G_N_ELEMENTS(cpu_qmp_handlers);
