/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP printers: the text QEMU's human monitor prints for each command's
 * result.  Each takes the command's QMP result, so HMP and QMP share one
 * implementation of every command.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "monitor/hmp-int.h"
#include "qapi/qjson.h"

static void print_info_status(GString *out, const json_t *ret)
{
    bool running = qjson_get_bool(ret, "running");
    const char *status = qjson_get_str(ret, "status");

    g_string_append_printf(out, "VM status: %s",
                           running ? "running" : "paused");
    if (!running && strcmp(status, "paused")) {
        g_string_append_printf(out, " (%s)", status);
    }
    g_string_append_c(out, '\n');
}

static void print_info_version(GString *out, const json_t *ret)
{
    const json_t *q = json_object_get(ret, "qemu");

    g_string_append_printf(out, "%" PRId64 ".%" PRId64 ".%" PRId64 "%s\n",
                           qjson_get_int(q, "major"),
                           qjson_get_int(q, "minor"),
                           qjson_get_int(q, "micro"),
                           qjson_get_str(ret, "package"));
}

static void print_info_name(GString *out, const json_t *ret)
{
    if (qjson_has(ret, "name")) {
        g_string_append_printf(out, "%s\n", qjson_get_str(ret, "name"));
    }
}

static void print_info_uuid(GString *out, const json_t *ret)
{
    g_string_append_printf(out, "%s\n", qjson_get_str(ret, "UUID"));
}

static void print_info_kvm(GString *out, const json_t *ret)
{
    g_string_append(out, "kvm support: ");
    if (qjson_get_bool(ret, "present")) {
        g_string_append_printf(out, "%s\n", qjson_get_bool(ret, "enabled")
                               ? "enabled" : "disabled");
    } else {
        g_string_append(out, "not compiled\n");
    }
}

static void print_info_memory_size_summary(GString *out, const json_t *ret)
{
    g_string_append_printf(out, "base memory: %" PRIu64 "\n",
                           qjson_get_uint(ret, "base-memory"));
    if (qjson_has(ret, "plugged-memory")) {
        g_string_append_printf(out, "plugged memory: %" PRIu64 "\n",
                               qjson_get_uint(ret, "plugged-memory"));
    }
}

const HmpPrinter hmp_printers[] = {
    { "info_status", print_info_status },
    { "info_version", print_info_version },
    { "info_name", print_info_name },
    { "info_uuid", print_info_uuid },
    { "info_kvm", print_info_kvm },
    { "info_memory_size_summary", print_info_memory_size_summary },
};

const size_t hmp_printers_count = G_N_ELEMENTS(hmp_printers);
