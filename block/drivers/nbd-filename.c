/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file names that mean an NBD export, as QEMU 7.2's nbd driver
 * parses them for -drive file=, drive-mirror's target and the like:
 * the legacy "nbd:unix:PATH[:exportname=X]" and "nbd:HOST:PORT[:...]",
 * and the URIs "nbd://HOST[:PORT]/EXPORT", "nbd+tcp://..." and
 * "nbd+unix:///EXPORT?socket=PATH", each turned into the blockdev-add
 * options it stands for.
 */
#include "config.h"

#include <string.h>

#include "block/core/block-int.h"
#include "nbd/proto.h"
#include "qapi/qjson.h"

#define EN_OPTSTR ":exportname="

bool bdrv_filename_is_nbd(const char *filename)
{
    return g_str_has_prefix(filename, "nbd:")
        || g_str_has_prefix(filename, "nbd+tcp:")
        || g_str_has_prefix(filename, "nbd+unix:");
}

static json_t *server_unix(const char *path)
{
    json_t *s = json_pack("{s:s}", "type", "unix");

    json_object_set_new(s, "path", qjson_str(path));
    return s;
}

static json_t *server_inet(const char *host, const char *port)
{
    json_t *s = json_pack("{s:s}", "type", "inet");

    json_object_set_new(s, "host", qjson_str(host));
    json_object_set_new(s, "port", qjson_str(port));
    return s;
}

static bool parse_uri(const char *filename, json_t *o)
{
    g_autoptr(GUri) uri = g_uri_parse(filename, G_URI_FLAGS_ENCODED_QUERY,
                                      NULL);
    g_autoptr(GHashTable) qp = NULL;
    const char *scheme, *path, *query;
    bool is_unix;

    if (!uri) {
        return false;
    }
    scheme = g_uri_get_scheme(uri);
    if (!strcmp(scheme, "nbd") || !strcmp(scheme, "nbd+tcp")) {
        is_unix = false;
    } else if (!strcmp(scheme, "nbd+unix")) {
        is_unix = true;
    } else {
        return false;
    }
    path = g_uri_get_path(uri);
    if (path[0] == '/') {
        path++;
    }
    if (path[0]) {
        json_object_set_new(o, "export", qjson_str(path));
    }
    query = g_uri_get_query(uri);
    qp = query ? g_uri_parse_params(query, -1, "&", G_URI_PARAMS_NONE, NULL)
               : NULL;
    if (query && !qp) {
        return false;
    }
    if (is_unix) {
        const char *sock = qp ? g_hash_table_lookup(qp, "socket") : NULL;

        if (!sock || g_hash_table_size(qp) != 1
            || (g_uri_get_host(uri) && *g_uri_get_host(uri))
            || g_uri_get_port(uri) > 0) {
            return false;
        }
        json_object_set_new(o, "server", server_unix(sock));
    } else {
        g_autofree char *port = NULL;

        if (qp || !g_uri_get_host(uri) || !*g_uri_get_host(uri)) {
            return false;
        }
        port = g_strdup_printf("%d", g_uri_get_port(uri) > 0
                                     ? g_uri_get_port(uri)
                                     : NBD_DEFAULT_PORT);
        json_object_set_new(o, "server",
                            server_inet(g_uri_get_host(uri), port));
    }
    return true;
}

static bool parse_legacy(const char *filename, json_t *o, Error **errp)
{
    g_autofree char *file = g_strdup(filename);
    char *en = strstr(file, EN_OPTSTR);
    const char *spec;
    const char *colon;

    if (en) {
        *en = '\0';
        json_object_set_new(o, "export", qjson_str(en + strlen(EN_OPTSTR)));
    }
    if (!g_str_has_prefix(file, "nbd:")) {
        error_setg(errp, "File name string for NBD must start with 'nbd:'");
        return false;
    }
    spec = file + strlen("nbd:");
    if (!*spec) {
        return true;
    }
    if (g_str_has_prefix(spec, "unix:")) {
        json_object_set_new(o, "server", server_unix(spec + strlen("unix:")));
        return true;
    }
    colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1]) {
        error_setg(errp, "error parsing address '%s'", spec);
        return false;
    }
    if (spec[0] == '[' && colon[-1] == ']') {
        g_autofree char *host = g_strndup(spec + 1, colon - spec - 2);

        json_object_set_new(o, "server", server_inet(host, colon + 1));
    } else {
        g_autofree char *host = g_strndup(spec, colon - spec);

        json_object_set_new(o, "server", server_inet(host, colon + 1));
    }
    return true;
}

json_t *bdrv_nbd_filename_options(const char *filename, Error **errp)
{
    g_autoptr(json_t) o = json_pack("{s:s}", "driver", "nbd");

    if (strstr(filename, "://")) {
        if (!parse_uri(filename, o)) {
            error_setg(errp, "No valid URL specified");
            return NULL;
        }
    } else if (!parse_legacy(filename, o, errp)) {
        return NULL;
    }
    if (!json_object_get(o, "server")) {
        error_setg(errp, "NBD server address missing");
        return NULL;
    }
    return g_steal_pointer(&o);
}
