/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The machine's UUID.  QEMU hands it to the firmware (SMBIOS); qmpd has
 * no firmware, so the UUID is what management tools set and read back
 * (query-uuid), all zeroes when -uuid was not given, as in QEMU.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "qapi/qjson.h"
#include "system/uuid.h"

static char the_uuid[37] = "00000000-0000-0000-0000-000000000000";

bool uuid_parse_option(const char *arg, Error **errp)
{
    bool ok = strlen(arg) == 36;

    for (int i = 0; ok && i < 36; i++) {
        ok = (i == 8 || i == 13 || i == 18 || i == 23)
            ? arg[i] == '-' : isxdigit((unsigned char)arg[i]);
    }
    if (!ok) {
        error_setg(errp, "failed to parse UUID string: wrong format");
        return false;
    }
    /* QEMU prints it back in lower case */
    for (int i = 0; i < 36; i++) {
        the_uuid[i] = tolower((unsigned char)arg[i]);
    }
    return true;
}

static bool qmp_query_uuid(const json_t *args, json_t **ret, Error **errp)
{
    *ret = json_pack("{s:s}", "UUID", the_uuid);
    return true;
}

const QapiHandler uuid_qmp_handlers[] = {
    { "query-uuid", qmp_query_uuid, NULL },
};

const size_t uuid_qmp_handlers_count = G_N_ELEMENTS(uuid_qmp_handlers);
