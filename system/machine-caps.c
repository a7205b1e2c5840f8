/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The answers to a capability probe (libvirt's runs on every new
 * binary) about what the machine is made of: the QOM types of the
 * machines, devices and CPU models qmpd emulates, their properties,
 * the command-line options with their parameters, and QEMU's own
 * errors and empty lists for what it lacks (no TPM, no SEV, no SGX:
 * those need KVM or a TPM backend).  Names, property types and help
 * texts are QEMU 7.2's for the same things.
 */
#include "config.h"

#include <string.h>

#include "qapi/qjson.h"
#include "system/cpu.h"
#include "system/guest-props.h"
#include "system/machine-caps.h"
#include "system/object.h"

typedef struct {
    const char *name;
    const char *parent;
    const char *root;           /* what it is: machine, device, cpu, accel */
    bool abstract;
} QomType;

static const QomType qom_types[] = {
    { "pc-i440fx-7.2-machine", "generic-pc-machine", "machine", false },
    { "pc-q35-7.2-machine", "generic-pc-machine", "machine", false },
    { "none-machine", "machine", "machine", false },
    { "generic-pc-machine", "x86-machine", "machine", true },
    { "x86-machine", "machine", "machine", true },
    { "machine", "object", "machine", true },
    { "virtio-blk-pci", "virtio-blk-pci-base", "device", false },
    { "virtio-scsi-pci", "virtio-scsi-pci-base", "device", false },
    { "scsi-hd", "scsi-disk-base", "device", false },
    { "scsi-cd", "scsi-disk-base", "device", false },
    { "ide-hd", "ide-device", "device", false },
    { "ide-cd", "ide-device", "device", false },
    { "piix3-usb-uhci", "pci-uhci-usb", "device", false },
    { "device", "object", "device", true },
    { "max-x86_64-cpu", "x86_64-cpu", "cpu", false },
    { "base-x86_64-cpu", "x86_64-cpu", "cpu", false },
    { "qemu64-x86_64-cpu", "x86_64-cpu", "cpu", false },
    { "qemu64-v1-x86_64-cpu", "x86_64-cpu", "cpu", false },
    { "x86_64-cpu", "cpu", "cpu", true },
    { "cpu", "device", "cpu", true },
    { "tcg-accel", "accel", "accel", false },
    { "qtest-accel", "accel", "accel", false },
    { "accel", "object", "accel", true },
};

static bool type_implements(const QomType *t, const char *want)
{
    return !want || !strcmp(t->name, want) || !strcmp(t->parent, want)
        || !strcmp(t->root, want)
        || (!strcmp(t->root, "cpu") && !strcmp(want, "device"));
}

void machine_caps_list_types(json_t *list, const char *want, bool abstract)
{
    for (size_t i = 0; i < G_N_ELEMENTS(qom_types); i++) {
        const QomType *t = &qom_types[i];
        json_t *e;

        if ((t->abstract && !abstract) || !type_implements(t, want)) {
            continue;
        }
        e = json_pack("{s:s,s:s}", "name", t->name, "parent", t->parent);
        if (t->abstract) {
            json_object_set_new(e, "abstract", json_true());
        }
        json_array_append_new(list, e);
    }
}

static const QomType *find_type(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(qom_types); i++) {
        if (!strcmp(qom_types[i].name, name)) {
            return &qom_types[i];
        }
    }
    return NULL;
}

/* The -machine properties qmpd takes (machine.c), as QEMU lists them. */
static const char machine_props[] =
    "[{\"name\": \"type\", \"type\": \"string\"},"
    " {\"name\": \"memory\", \"description\": \"Memory size configuration\","
    "  \"type\": \"MemorySizeConfiguration\"},"
    " {\"name\": \"graphics\", \"description\": \"Set on/off to "
    "enable/disable graphics emulation\", \"type\": \"bool\"},"
    " {\"name\": \"usb\", \"description\": \"Set on/off to enable/disable "
    "usb\", \"type\": \"bool\"},"
    " {\"name\": \"smp\", \"description\": \"CPU topology\","
    "  \"type\": \"SMPConfiguration\"},"
    " {\"name\": \"dump-guest-core\", \"description\": \"Include guest "
    "memory in a core dump\", \"type\": \"bool\"},"
    " {\"name\": \"memory-backend\", \"description\": \"Set RAM "
    "backendValid value is ID of hostmem based backend\","
    "  \"type\": \"link<memory-backend>\"},"
    " {\"name\": \"suppress-vmdesc\", \"description\": \"Set on to disable "
    "self-describing migration\", \"type\": \"bool\"},"
    " {\"name\": \"peripheral-anon\", \"type\": \"child<container>\"},"
    " {\"name\": \"peripheral\", \"type\": \"child<container>\"}]";

static const char pc_props[] =
    "[{\"name\": \"smm\", \"description\": \"Enable SMM\","
    "  \"type\": \"OnOffAuto\"},"
    " {\"name\": \"vmport\", \"description\": \"Enable vmport (pc & q35)\","
    "  \"type\": \"OnOffAuto\"}]";

/*
 * memory-backend-file is in the schema's ObjectType, and object-add
 * refuses it by name (qmpd's guest RAM is not file-backed); its
 * properties are described as QEMU 7.2 has them because libvirt 9.0
 * asks for them on every probe, whatever qom-list-types says, and cannot
 * take an error there (it reads the missing list).
 */
static const char memory_backend_file_props[] =
    "["
    "{\"name\": \"type\", \"type\": \"string\"},"
    " {\"name\": \"share\", \"description\": \"Mark the memory as private to QEMU or shared\", \"type\": \"bool\"},"
    " {\"name\": \"size\", \"description\": \"Size of the memory region (ex: 500M)\", \"type\": \"int\"},"
    " {\"name\": \"dump\", \"description\": \"Set to 'off' to exclude from core dump\", \"type\": \"bool\"},"
    " {\"name\": \"prealloc-threads\", \"description\": \"Number of CPU threads to use for prealloc\", \"type\": \"int\"},"
    " {\"name\": \"x-use-canonical-path-for-ramblock-id\", \"type\": \"bool\"},"
    " {\"name\": \"policy\", \"description\": \"Set the NUMA policy\", \"type\": \"HostMemPolicy\"},"
    " {\"name\": \"prealloc-context\", \"description\": \"Context to use for creating CPU threads for preallocation\", \"type\": \"link<thread-context>\"},"
    " {\"name\": \"prealloc\", \"description\": \"Preallocate memory\", \"type\": \"bool\"},"
    " {\"name\": \"reserve\", \"description\": \"Reserve swap space (or huge pages) if applicable\", \"type\": \"bool\"},"
    " {\"name\": \"host-nodes\", \"description\": \"Binds memory to the list of NUMA host nodes\", \"type\": \"int\"},"
    " {\"name\": \"merge\", \"description\": \"Mark memory as mergeable\", \"type\": \"bool\"},"
    " {\"name\": \"readonly\", \"type\": \"bool\"},"
    " {\"name\": \"align\", \"type\": \"int\"},"
    " {\"name\": \"pmem\", \"type\": \"bool\"},"
    " {\"name\": \"mem-path\", \"type\": \"string\"},"
    " {\"name\": \"discard-data\", \"type\": \"bool\"}]";

static json_t *machine_class_props(const QomType *t)
{
    json_t *list = json_loads(machine_props, 0, NULL);

    if (strcmp(t->name, "none-machine")) {
        g_autoptr(json_t) pc = json_loads(pc_props, 0, NULL);

        json_array_extend(list, pc);
    }
    return list;
}

static bool qmp_qom_list_properties(const json_t *args, json_t **ret,
                                    Error **errp)
{
    const char *name = qjson_get_str(args, "typename");
    const QomType *t = find_type(name);
    GuestDriver drv;

    *ret = object_class_properties(name);
    if (*ret) {
        return true;
    }
    if (!strcmp(name, "memory-backend-file")) {
        *ret = json_loads(memory_backend_file_props, 0, NULL);
        return true;
    }
    if (t && !strcmp(t->root, "machine") && !t->abstract) {
        *ret = machine_class_props(t);
        return true;
    }
    if (t && !strcmp(t->root, "cpu") && !t->abstract) {
        *ret = cpu_class_properties();
        return true;
    }
    if (t && !strcmp(t->root, "accel") && !t->abstract) {
        /* the properties -accel takes (machine.c) */
        *ret = json_pack("[{s:s,s:s}]", "name", "type", "type", "string");
        if (!strcmp(name, "tcg-accel")) {
            json_array_append_new(*ret, json_pack("{s:s,s:s}", "name",
                                                  "thread", "type",
                                                  "string"));
        }
        return true;
    }
    if (t && guest_driver_lookup(name, &drv)) {
        *ret = guest_props_list(drv);
        return true;
    }
    if (t) {
        /* an abstract type: QEMU lists no properties of its own */
        *ret = json_array();
        return true;
    }
    error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Class '%s' not found",
              name);
    return false;
}

/*
 * The options qmpd takes whose parameters QEMU lists (a QemuOptsList
 * each), with the parameters qmpd takes, in QEMU's order and words.
 */
static const char cmdline_options[] =
    "[{\"option\": \"machine\", \"parameters\": ["
    "  {\"name\": \"suppress-vmdesc\", \"help\": \"Set on to disable "
    "self-describing migration\", \"type\": \"boolean\"},"
    "  {\"name\": \"usb\", \"help\": \"Set on/off to enable/disable usb\","
    "   \"type\": \"boolean\"},"
    "  {\"name\": \"dump-guest-core\", \"help\": \"Include guest memory in  "
    "a core dump\", \"type\": \"boolean\"},"
    "  {\"name\": \"accel\", \"help\": \"accelerator list\","
    "   \"type\": \"string\"},"
    "  {\"name\": \"type\", \"help\": \"emulated machine\","
    "   \"type\": \"string\"}]},"
    " {\"option\": \"name\", \"parameters\": ["
    "  {\"name\": \"debug-threads\", \"help\": \"When enabled, name the "
    "individual threads; defaults off.\\nNOTE: The thread names are for "
    "debugging and not a\\nstable API.\", \"type\": \"boolean\"},"
    "  {\"name\": \"process\", \"help\": \"Sets the name of the QEMU "
    "process, as shown in top etc\", \"type\": \"string\"},"
    "  {\"name\": \"guest\", \"help\": \"Sets the name of the guest.\\nThis "
    "name will be displayed in the SDL window caption.\\nThe name will also "
    "be used for the VNC server\", \"type\": \"string\"}]},"
    " {\"option\": \"msg\", \"parameters\": ["
    "  {\"name\": \"timestamp\", \"type\": \"boolean\"}]},"
    " {\"option\": \"overcommit\", \"parameters\": ["
    "  {\"name\": \"mem-lock\", \"type\": \"boolean\"}]},"
    " {\"option\": \"object\", \"parameters\": []},"
    " {\"option\": \"boot-opts\", \"parameters\": ["
    "  {\"name\": \"strict\", \"type\": \"boolean\"}]},"
    " {\"option\": \"smp-opts\", \"parameters\": ["
    "  {\"name\": \"maxcpus\", \"type\": \"number\"},"
    "  {\"name\": \"threads\", \"type\": \"number\"},"
    "  {\"name\": \"cores\", \"type\": \"number\"},"
    "  {\"name\": \"dies\", \"type\": \"number\"},"
    "  {\"name\": \"sockets\", \"type\": \"number\"},"
    "  {\"name\": \"cpus\", \"type\": \"number\"}]},"
    " {\"option\": \"memory\", \"parameters\": ["
    "  {\"name\": \"maxmem\", \"type\": \"size\"},"
    "  {\"name\": \"slots\", \"type\": \"number\"},"
    "  {\"name\": \"size\", \"type\": \"size\"}]},"
    " {\"option\": \"accel\", \"parameters\": []},"
    " {\"option\": \"mon\", \"parameters\": ["
    "  {\"name\": \"pretty\", \"type\": \"boolean\"},"
    "  {\"name\": \"chardev\", \"type\": \"string\"},"
    "  {\"name\": \"mode\", \"type\": \"string\"}]},"
    " {\"option\": \"rtc\", \"parameters\": ["
    "  {\"name\": \"base\", \"type\": \"string\"}]},"
    " {\"option\": \"device\", \"parameters\": []},"
    " {\"option\": \"chardev\", \"parameters\": []},"
    " {\"option\": \"drive\", \"parameters\": []}]";

static bool qmp_query_command_line_options(const json_t *args, json_t **ret,
                                           Error **errp)
{
    const char *want = qjson_get_str_or(args, "option", NULL);
    json_t *all = json_loads(cmdline_options, 0, NULL);
    json_t *list;
    size_t i;
    json_t *o;

    g_assert(all);
    if (!want) {
        *ret = all;
        return true;
    }
    list = json_array();
    json_array_foreach(all, i, o) {
        if (!strcmp(qjson_get_str(o, "option"), want)) {
            json_array_append(list, o);
        }
    }
    json_decref(all);
    if (!json_array_size(list)) {
        json_decref(list);
        error_setg(errp, "invalid option name: %s", want);
        return false;
    }
    *ret = list;
    return true;
}

/* qmpd has no TPM devices and no TPM backends */
static bool qmp_query_tpm_models(const json_t *args, json_t **ret,
                                 Error **errp)
{
    *ret = json_array();
    return true;
}

static bool qmp_query_tpm_types(const json_t *args, json_t **ret,
                                Error **errp)
{
    *ret = json_array();
    return true;
}

/* QEMU 7.2's answers where KVM is not enabled, which it never is here */
static bool qmp_query_sev_capabilities(const json_t *args, json_t **ret,
                                       Error **errp)
{
    error_setg(errp, "KVM not enabled");
    return false;
}

static bool qmp_query_sgx_capabilities(const json_t *args, json_t **ret,
                                       Error **errp)
{
    error_setg(errp, "SGX is not enabled in KVM");
    return false;
}

const QapiHandler machine_caps_qmp_handlers[] = {
    { "qom-list-properties", qmp_qom_list_properties, NULL },
    { "query-command-line-options", qmp_query_command_line_options, NULL },
    { "query-tpm-models", qmp_query_tpm_models, NULL },
    { "query-tpm-types", qmp_query_tpm_types, NULL },
    { "query-sev-capabilities", qmp_query_sev_capabilities, NULL },
    { "query-sgx-capabilities", qmp_query_sgx_capabilities, NULL },
};

const size_t machine_caps_qmp_handlers_count =
    G_N_ELEMENTS(machine_caps_qmp_handlers);
