/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qom-get over the objects qmpd models: the machine (/machine) with its
 * memory, the /machine/peripheral and /machine/peripheral-anon
 * containers, and the guest's devices.  A path is absolute, or partial
 * as QEMU resolves it: the one object whose path ends with it (none or
 * several: not found).
 */
#include "config.h"

#include <string.h>

#include "qapi/qjson.h"
#include "system/guest.h"
#include "system/machine.h"
#include "system/qom-tree.h"
#include "system/qom.h"

/* Properties QEMU's machines have that qmpd does not model. */
static const char *const machine_unmodelled[] = {
    "kernel", "dt-compatible", "boot", "initrd",
    "confidential-guest-support", "graphics", "usb", "firmware",
    "memory-encryption", "smp", "dump-guest-core", "phandle-start",
    "dumpdtb", "dtb", "mem-merge", "append",
    "suppress-vmdesc", "peripheral-anon", "peripheral", "unattached",
    "smm", "acpi", "pit", "pic", "vmport", "sata", "i8042", NULL
};

static bool qmp_qom_get(const json_t *args, json_t **ret, Error **errp)
{
    const char *path = qjson_get_str(args, "path");
    const char *prop = qjson_get_str(args, "property");
    g_autofree char *type = NULL;
    const char *obj = qom_resolve(path, errp);

    if (!obj) {
        return false;
    }
    if (qom_tree_get(obj, prop, ret, errp)) {
        return *ret != NULL;
    }
    if (strcmp(obj, "/machine")) {
        /* what is neither a container nor the machine is a device */
        *ret = guest_qom_get(obj, prop, errp);
        return *ret != NULL;
    }
    *ret = machine_qom_get(prop);
    if (*ret) {
        return true;
    }
    type = machine_qom_type();
    if (g_strv_contains(machine_unmodelled, prop)) {
        error_setg(errp, "Property '%s.%s' is not modelled by qmpd", type,
                   prop);
    } else {
        error_setg(errp, "Property '%s.%s' not found", type, prop);
    }
    return false;
}

const QapiHandler qom_qmp_handlers[] = {
    { "qom-get", qmp_qom_get, NULL },
};

const size_t qom_qmp_handlers_count = G_N_ELEMENTS(qom_qmp_handlers);
