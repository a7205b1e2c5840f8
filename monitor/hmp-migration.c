/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP's migration commands, with QEMU 7.2's text: the info printers
 * (info migrate, info migrate_capabilities, info migrate_parameters)
 * and the commands whose arguments HMP reads its own way.
 * migrate_set_parameter takes every value as a string and converts it
 * by the parameter's type as QEMU's string visitor does (sizes with
 * suffixes, max-bandwidth in MiB without one, on/off/yes/no), then runs
 * migrate-set-parameters, so the range checks are the QMP command's.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/hmp-int.h"
#include "monitor/monitor-int.h"
#include "monitor/hmp-parse.h"
#include "qapi/opts.h"
#include "migration/migration.h"
#include "qapi/qjson.h"

typedef enum {
    MP_SIZE,        /* a size: k, M, G... suffixes */
    MP_UINT,        /* an integer (uint8, uint32) */
    MP_BOOL,
    MP_STR,
    MP_ENUM,        /* multifd-compression */
    MP_BANDWIDTH,   /* MiB without a suffix */
    MP_QMP_ONLY,    /* block-bitmap-mapping */
} MigParamType;

/* How info migrate_parameters prints a value. */
typedef enum {
    PR_NONE,        /* not printed */
    PR_PLAIN,
    PR_MS,
    PR_BYTES,
    PR_BPS,
    PR_ONOFF,
    PR_QUOTED,
    PR_WORD,
} MigParamPrint;

static const struct {
    const char *name;
    MigParamType type;
    MigParamPrint print;
} mig_params[] = {
    /* info migrate_parameters' order */
    { "announce-initial", MP_SIZE, PR_MS },
    { "announce-max", MP_SIZE, PR_MS },
    { "announce-rounds", MP_SIZE, PR_PLAIN },
    { "announce-step", MP_SIZE, PR_MS },
    { "compress-level", MP_UINT, PR_PLAIN },
    { "compress-threads", MP_UINT, PR_PLAIN },
    { "compress-wait-thread", MP_BOOL, PR_ONOFF },
    { "decompress-threads", MP_UINT, PR_PLAIN },
    { "throttle-trigger-threshold", MP_UINT, PR_PLAIN },
    { "cpu-throttle-initial", MP_UINT, PR_PLAIN },
    { "cpu-throttle-increment", MP_UINT, PR_PLAIN },
    { "cpu-throttle-tailslow", MP_BOOL, PR_ONOFF },
    { "max-cpu-throttle", MP_UINT, PR_PLAIN },
    { "tls-creds", MP_STR, PR_QUOTED },
    { "tls-hostname", MP_STR, PR_QUOTED },
    { "max-bandwidth", MP_BANDWIDTH, PR_BPS },
    { "downtime-limit", MP_SIZE, PR_MS },
    { "x-checkpoint-delay", MP_UINT, PR_MS },
    { "block-incremental", MP_BOOL, PR_ONOFF },
    { "multifd-channels", MP_UINT, PR_PLAIN },
    { "multifd-compression", MP_ENUM, PR_WORD },
    { "xbzrle-cache-size", MP_SIZE, PR_BYTES },
    { "max-postcopy-bandwidth", MP_SIZE, PR_PLAIN },
    { "tls-authz", MP_STR, PR_QUOTED },
    { "multifd-zlib-level", MP_UINT, PR_NONE },
    { "multifd-zstd-level", MP_UINT, PR_NONE },
    { "block-bitmap-mapping", MP_QMP_ONLY, PR_NONE },
};

static void print_info_migrate_parameters(GString *out, const json_t *ret)
{
    static const char *const units[] = {
        [PR_PLAIN] = "", [PR_MS] = " ms", [PR_BYTES] = " bytes",
        [PR_BPS] = " bytes/second",
    };
    const json_t *map = json_object_get(ret, "block-bitmap-mapping");
    size_t i, j;
    json_t *n, *b;

    for (i = 0; i < G_N_ELEMENTS(mig_params); i++) {
        const char *name = mig_params[i].name;

        switch (mig_params[i].print) {
        case PR_NONE:
            break;
        case PR_ONOFF:
            g_string_append_printf(out, "%s: %s\n", name,
                                   qjson_get_bool(ret, name) ? "on" : "off");
            break;
        case PR_QUOTED:
            g_string_append_printf(out, "%s: '%s'\n", name,
                                   qjson_get_str(ret, name));
            break;
        case PR_WORD:
            g_string_append_printf(out, "%s: %s\n", name,
                                   qjson_get_str(ret, name));
            break;
        default:
            g_string_append_printf(out, "%s: %" PRIu64 "%s\n", name,
                                   qjson_get_uint(ret, name),
                                   units[mig_params[i].print]);
        }
    }
    if (!map) {
        return;
    }
    g_string_append(out, "block-bitmap-mapping:\n");
    json_array_foreach(map, i, n) {
        g_string_append_printf(out, "  '%s' -> '%s'\n",
                               qjson_get_str(n, "node-name"),
                               qjson_get_str(n, "alias"));
        json_array_foreach(json_object_get(n, "bitmaps"), j, b) {
            g_string_append_printf(out, "    '%s' -> '%s'\n",
                                   qjson_get_str(b, "name"),
                                   qjson_get_str(b, "alias"));
        }
    }
}

static void print_info_migrate_capabilities(GString *out, const json_t *ret)
{
    size_t i;
    json_t *c;

    json_array_foreach(ret, i, c) {
        g_string_append_printf(out, "%s: %s\n",
                               qjson_get_str(c, "capability"),
                               qjson_get_bool(c, "state") ? "on" : "off");
    }
}

static void print_ram(GString *out, const json_t *ram)
{
    static const char *const opt[][2] = {
        /* printed only when not zero, in kbytes or as they are */
        { "dirty-pages-rate", "dirty pages rate: %" PRIu64 " pages\n" },
        { "postcopy-requests", "postcopy request count: %" PRIu64 "\n" },
        { "precopy-bytes", "precopy ram: %" PRIu64 " kbytes\n" },
        { "downtime-bytes", "downtime ram: %" PRIu64 " kbytes\n" },
        { "postcopy-bytes", "postcopy ram: %" PRIu64 " kbytes\n" },
    };

    g_string_append_printf(out, "transferred ram: %" PRIu64 " kbytes\n",
                           qjson_get_uint(ram, "transferred") >> 10);
    g_string_append_printf(out, "throughput: %0.2f mbps\n",
                           qjson_get_number(ram, "mbps"));
    g_string_append_printf(out, "remaining ram: %" PRIu64 " kbytes\n",
                           qjson_get_uint(ram, "remaining") >> 10);
    g_string_append_printf(out, "total ram: %" PRIu64 " kbytes\n",
                           qjson_get_uint(ram, "total") >> 10);
    g_string_append_printf(out, "duplicate: %" PRIu64 " pages\n",
                           qjson_get_uint(ram, "duplicate"));
    g_string_append_printf(out, "skipped: %" PRIu64 " pages\n",
                           qjson_get_uint(ram, "skipped"));
    g_string_append_printf(out, "normal: %" PRIu64 " pages\n",
                           qjson_get_uint(ram, "normal"));
    g_string_append_printf(out, "normal bytes: %" PRIu64 " kbytes\n",
                           qjson_get_uint(ram, "normal-bytes") >> 10);
    g_string_append_printf(out, "dirty sync count: %" PRIu64 "\n",
                           qjson_get_uint(ram, "dirty-sync-count"));
    g_string_append_printf(out, "page size: %" PRIu64 " kbytes\n",
                           qjson_get_uint(ram, "page-size") >> 10);
    g_string_append_printf(out, "multifd bytes: %" PRIu64 " kbytes\n",
                           qjson_get_uint(ram, "multifd-bytes") >> 10);
    g_string_append_printf(out, "pages-per-second: %" PRIu64 "\n",
                           qjson_get_uint(ram, "pages-per-second"));
    for (size_t i = 0; i < G_N_ELEMENTS(opt); i++) {
        uint64_t v = qjson_get_uint(ram, opt[i][0]);

        if (v) {
            bool kb = strstr(opt[i][1], "kbytes") != NULL;

            g_string_append_printf(out, opt[i][1], kb ? v >> 10 : v);
        }
    }
}

static void print_info_migrate(GString *out, const json_t *ret)
{
    static const char *const times[][2] = {
        { "expected-downtime", "expected downtime" },
        { "downtime", "downtime" },
        { "setup-time", "setup" },
    };
    const json_t *ram = json_object_get(ret, "ram");
    const json_t *disk = json_object_get(ret, "disk");
    const json_t *sa = json_object_get(ret, "socket-address");

    /* the globals QEMU 7.2 prints first; qmpd's never change */
    g_string_append(out, "globals:\nstore-global-state: on\n"
                    "only-migratable: off\nsend-configuration: on\n"
                    "send-section-footer: on\ndecompress-error-check: on\n"
                    "clear-bitmap-shift: 18\n");
    if (qjson_has(ret, "status")) {
        const char *status = qjson_get_str(ret, "status");

        g_string_append_printf(out, "Migration status: %s", status);
        if (!strcmp(status, "failed") && qjson_has(ret, "error-desc")) {
            g_string_append_printf(out, " (%s)\n",
                                   qjson_get_str(ret, "error-desc"));
        } else {
            g_string_append_c(out, '\n');
        }
        g_string_append_printf(out, "total time: %" PRIu64 " ms\n",
                               qjson_get_uint_or(ret, "total-time", 0));
        for (size_t i = 0; i < G_N_ELEMENTS(times); i++) {
            if (qjson_has(ret, times[i][0])) {
                g_string_append_printf(out, "%s: %" PRIu64 " ms\n",
                                       times[i][1],
                                       qjson_get_uint(ret, times[i][0]));
            }
        }
    }
    if (ram) {
        print_ram(out, ram);
    }
    if (disk) {
        g_string_append_printf(out, "transferred disk: %" PRIu64
                               " kbytes\nremaining disk: %" PRIu64
                               " kbytes\ntotal disk: %" PRIu64 " kbytes\n",
                               qjson_get_uint(disk, "transferred") >> 10,
                               qjson_get_uint(disk, "remaining") >> 10,
                               qjson_get_uint(disk, "total") >> 10);
    }
    if (qjson_has(ret, "cpu-throttle-percentage")) {
        g_string_append_printf(out, "cpu throttle percentage: %" PRIu64 "\n",
                               qjson_get_uint(ret, "cpu-throttle-percentage"));
    }
    if (sa) {
        size_t i;
        json_t *a;

        g_string_append(out, "socket address: [\n");
        json_array_foreach(sa, i, a) {
            const char *type = qjson_get_str(a, "type");

            if (!strcmp(type, "inet")) {
                g_string_append_printf(out, "\ttcp:%s:%s\n",
                                       qjson_get_str(a, "host"),
                                       qjson_get_str(a, "port"));
            } else if (!strcmp(type, "unix")) {
                g_string_append_printf(out, "\tunix:%s\n",
                                       qjson_get_str(a, "path"));
            }
        }
        g_string_append(out, "]\n");
    }
}

/* QEMU's qapi_bool_parse(). */
static bool parse_bool(const char *s, bool *v)
{
    static const char *const yes[] = { "on", "yes", "true", "y" };
    static const char *const no[] = { "off", "no", "false", "n" };

    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
            *v = !strcmp(s, yes[i]);
            return true;
        }
    }
    return false;
}

/*
 * @value converted for parameter @i, or NULL with QEMU's message (and
 * hint lines) appended to @out.
 */
static json_t *param_value(size_t i, const char *value, GString *out)
{
    const char *name = mig_params[i].name;
    uint64_t u;
    bool b;

    switch (mig_params[i].type) {
    case MP_SIZE:
        if (!opts_parse_size(value, &u)) {
            g_string_append_printf(out, "Error: Parameter '%s' expects a "
                                   "non-negative number below 2^64\n"
                                   "Optional suffix k, M, G, T, P or E "
                                   "means kilo-, mega-, giga-, tera-, "
                                   "peta-\nand exabytes, respectively.\n",
                                   name);
            return NULL;
        }
        return json_integer((json_int_t)u);
    case MP_UINT: {
        char *end;

        errno = 0;
        u = strtoull(value, &end, 0);
        if (errno || end == value || *end) {
            g_string_append_printf(out, "Error: Parameter '%s' expects "
                                   "uint64\n", name);
            return NULL;
        }
        return json_integer((json_int_t)u);
    }
    case MP_BOOL:
        if (!parse_bool(value, &b)) {
            g_string_append_printf(out, "Error: Parameter '%s' expects 'on' "
                                   "or 'off'\n", name);
            return NULL;
        }
        return json_boolean(b);
    case MP_STR:
    case MP_ENUM:
        /* the schema refuses a value the enum lacks, as QEMU words it */
        return json_string(value);
    case MP_BANDWIDTH: {
        const char *end;

        if (hmp_strtosz_mib(value, &end, &u) < 0 || *end
            || u > INT64_MAX) {
            g_string_append_printf(out, "Error: Invalid size %s\n", value);
            return NULL;
        }
        return json_integer((json_int_t)u);
    }
    case MP_QMP_ONLY:
        g_string_append(out, "Error: The block-bitmap-mapping parameter "
                        "can only be set through QMP\n");
        return NULL;
    }
    g_assert_not_reached();
}

static void hmp_migrate_set_parameter(HmpCall *call, const json_t *args)
{
    const char *name = qjson_get_str(args, "parameter");
    json_t *v;

    for (size_t i = 0; i < G_N_ELEMENTS(mig_params); i++) {
        if (strcmp(mig_params[i].name, name)) {
            continue;
        }
        v = param_value(i, qjson_get_str(args, "value"), hmp_call_out(call));
        if (!v) {
            hmp_call_finish(call);
            return;
        }
        hmp_call_qmp(call, "migrate-set-parameters",
                     json_pack("{s:o}", name, v));
        return;
    }
    g_string_append_printf(hmp_call_out(call),
                           "Error: invalid parameter value: %s\n", name);
    hmp_call_finish(call);
}

/* An enum value HMP names: QEMU's qapi_enum_parse() message otherwise. */
static bool hmp_enum_value(HmpCall *call, const char *type,
                           const char *value)
{
    const QapiType *t = qapi_schema_type(mon_schema(), type);

    if (qapi_enum_lookup(t, value) < 0) {
        g_string_append_printf(hmp_call_out(call),
                               "Error: invalid parameter value: %s\n", value);
        hmp_call_finish(call);
        return false;
    }
    return true;
}

static void hmp_migrate_set_capability(HmpCall *call, const json_t *args)
{
    const char *cap = qjson_get_str(args, "capability");

    if (!hmp_enum_value(call, "MigrationCapability", cap)) {
        return;
    }
    hmp_call_qmp(call, "migrate-set-capabilities",
                 json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability",
                           cap, "state", qjson_get_bool(args, "state")));
}

static void hmp_migrate_continue(HmpCall *call, const json_t *args)
{
    const char *state = qjson_get_str(args, "state");

    if (!hmp_enum_value(call, "MigrationStatus", state)) {
        return;
    }
    hmp_call_qmp(call, "migrate-continue",
                 json_pack("{s:s}", "state", state));
}

typedef struct HmpMigrateWait {
    HmpCall *call;
    guint timer;
} HmpMigrateWait;

static gboolean hmp_migrate_poll_cb(gpointer opaque)
{
    HmpMigrateWait *w = opaque;
    const char *err;

    if (!mig_out_finished(&err)) {
        return G_SOURCE_CONTINUE;
    }
    if (err) {
        g_string_append_printf(hmp_call_out(w->call), "%s\n", err);
    }
    hmp_call_finish(w->call);
    g_free(w);
    return G_SOURCE_REMOVE;
}

static void hmp_migrate_started(HmpCall *call, bool detach)
{
    HmpMigrateWait *w;

    if (detach) {
        hmp_call_finish(call);
        return;
    }
    /* QEMU's monitor waits for the end without -d */
    w = g_new0(HmpMigrateWait, 1);
    w->call = call;
    w->timer = g_timeout_add(50, hmp_migrate_poll_cb, w);
}

typedef struct HmpMigrate {
    HmpCall *call;
    bool detach;
} HmpMigrate;

static void hmp_migrate_done(void *opaque, json_t *ret, Error *err)
{
    HmpMigrate *m = opaque;

    json_decref(ret);
    if (err) {
        g_string_append_printf(hmp_call_out(m->call), "Error: %s\n",
                               error_get_pretty(err));
        error_free(err);
        hmp_call_finish(m->call);
    } else {
        hmp_migrate_started(m->call, m->detach);
    }
    g_free(m);
}

static void hmp_migrate(HmpCall *call, const json_t *args)
{
    static const char *const flags[] = { "blk", "inc", "resume" };
    json_t *q = json_object();
    HmpMigrate *m = g_new0(HmpMigrate, 1);

    /* as typed: a URI need not be UTF-8, which json_pack() would refuse */
    json_object_set(q, "uri", json_object_get(args, "uri"));

    for (size_t i = 0; i < G_N_ELEMENTS(flags); i++) {
        if (qjson_get_bool_or(args, flags[i], false)) {
            json_object_set_new(q, flags[i], json_true());
        }
    }
    m->call = call;
    m->detach = qjson_get_bool_or(args, "detach", false);
    qapi_call(qapi_schema_command(mon_schema(), "migrate"), q,
              hmp_migrate_done, m);
}

const HmpHandler mig_hmp_handlers[] = {
    { "migrate", hmp_migrate },
    { "migrate_set_parameter", hmp_migrate_set_parameter },
    { "migrate_set_capability", hmp_migrate_set_capability },
    { "migrate_continue", hmp_migrate_continue },
};

const size_t mig_hmp_handlers_count = G_N_ELEMENTS(mig_hmp_handlers);

const HmpPrinter mig_hmp_printers[] = {
    { "info_migrate", print_info_migrate },
    { "info_migrate_capabilities", print_info_migrate_capabilities },
    { "info_migrate_parameters", print_info_migrate_parameters },
};

const size_t mig_hmp_printers_count = G_N_ELEMENTS(mig_hmp_printers);
