/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP's NBD server commands: nbd_server_start takes an address as
 * QEMU's socket_parse() reads it (HOST:PORT, unix:PATH, fd:NAME,
 * vsock:CID:PORT, which qmpd refuses) and
 * with -a exports every disk; nbd_server_add and nbd_server_remove are
 * nbd-server-add and nbd-server-remove (-w writable, -f mode hard).
 */
#include "config.h"

#include <string.h>

#include "monitor/hmp-int.h"
#include "nbd/server.h"
#include "qapi/qjson.h"

/* QEMU's socket_parse(), into SocketAddressLegacy; NULL: malformed. */
static json_t *parse_addr(const char *s, Error **errp)
{
    const char *colon;
    g_autofree char *host = NULL;

    if (g_str_has_prefix(s, "unix:")) {
        return json_pack("{s:s,s:{s:s}}", "type", "unix", "data", "path",
                         s + 5);
    }
    if (g_str_has_prefix(s, "vsock:")) {
        colon = strrchr(s + 6, ':');
        host = g_strndup(s + 6, colon ? (size_t)(colon - s - 6)
                         : strlen(s + 6));
        return json_pack("{s:s,s:{s:s,s:s}}", "type", "vsock", "data",
                         "cid", host, "port", colon ? colon + 1 : "");
    }
    if (g_str_has_prefix(s, "fd:")) {
        return json_pack("{s:s,s:{s:s}}", "type", "fd", "data", "str",
                         s + 3);
    }
    colon = strrchr(s, ':');
    if (!colon) {
        error_setg(errp, "error parsing address '%s'", s);
        return NULL;
    }
    host = g_strndup(s, colon - s);
    if (host[0] == '[' && strlen(host) > 1
        && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = 0;
    }
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "inet", "data", "host",
                     host, "port", colon + 1);
}

static void hmp_nbd_server_start(HmpCall *call, const json_t *args)
{
    Error *err = NULL;
    g_autoptr(json_t) addr = parse_addr(qjson_get_str(args, "uri"), &err);

    if (addr) {
        nbd_server_start_hmp(addr, qjson_get_bool_or(args, "all", false),
                             qjson_get_bool_or(args, "writable", false),
                             &err);
    }
    if (err) {
        const char *hint = error_get_hint(err);

        g_string_append_printf(hmp_call_out(call), "Error: %s\n",
                               error_get_pretty(err));
        if (hint) {
            g_string_append(hmp_call_out(call), hint);
        }
        error_free(err);
    }
    hmp_call_finish(call);
}

static void hmp_nbd_server_add(HmpCall *call, const json_t *args)
{
    json_t *q = json_pack("{s:s,s:b}", "device",
                          qjson_get_str(args, "device"), "writable",
                          qjson_get_bool_or(args, "writable", false));

    if (qjson_has(args, "name")) {
        json_object_set_new(q, "name", qjson_str(qjson_get_str(args, "name")));
    }
    hmp_call_qmp(call, "nbd-server-add", q);
}

static void hmp_nbd_server_remove(HmpCall *call, const json_t *args)
{
    hmp_call_qmp(call, "nbd-server-remove", json_pack(
        "{s:s,s:s}", "name", qjson_get_str(args, "name"), "mode",
        qjson_get_bool_or(args, "force", false) ? "hard" : "safe"));
}

const HmpHandler nbd_hmp_handlers[] = {
    { "nbd_server_start", hmp_nbd_server_start },
    { "nbd_server_add", hmp_nbd_server_add },
    { "nbd_server_remove", hmp_nbd_server_remove },
};
const size_t nbd_hmp_handlers_count = G_N_ELEMENTS(nbd_hmp_handlers);
