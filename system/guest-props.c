/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device models and their properties, as a table.  Each property
 * qmpd takes has its QEMU 7.2 type, which decides how a -device or
 * device_add value is read and which message refuses it (QEMU's keyval
 * visitor: integers in C's bases with the type's range, booleans as
 * on/off words, PCI addresses in hex), its help line, and where qom-get
 * finds it.  The disk properties (serial, block sizes, error policy)
 * are read by the disk model (guest-disk.c); they are listed here so
 * that one table says what each model accepts.
 *
 * A property is either taken and acted on (or shown where QEMU shows
 * it), or refused: "not found" when QEMU's model has no such property
 * either, "not supported by qmpd" when QEMU's has it and qmpd does not
 * model it.  The lists of QEMU's property names are those QEMU 7.2's
 * -device DRIVER,help prints.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/guest-props.h"
#include "system/iothread.h"

typedef enum {
    PT_STR,
    PT_BOOL,
    PT_INT32,
    PT_UINT16,
    PT_UINT32,
    PT_SIZE,
    PT_ON_OFF_AUTO,
    PT_ON_ERROR,
    PT_PCI_DEVFN,
    PT_IOTHREAD,
} PropType;

/* Where a property's value lives: GuestDevProps, or the disk model. */
typedef enum {
    AT_DISK,
    AT_DRIVE,
    AT_WRITE_CACHE,
    AT_ADDR,
    AT_MULTIFUNCTION,
    AT_BOOTINDEX,
    AT_NUM_QUEUES,
    AT_CHANNEL,
    AT_SCSI_ID,
    AT_LUN,
    AT_UNIT,
    AT_IOTHREAD,
} PropAt;

#define VBLK (1u << GUEST_DRIVER_VIRTIO_BLK)
#define SCSI (1u << GUEST_DRIVER_SCSI_HD | 1u << GUEST_DRIVER_SCSI_CD)
#define IDE (1u << GUEST_DRIVER_IDE_HD | 1u << GUEST_DRIVER_IDE_CD)
#define VSCSI (1u << GUEST_DRIVER_VIRTIO_SCSI)
#define CDS (1u << GUEST_DRIVER_IDE_CD | 1u << GUEST_DRIVER_SCSI_CD)
#define DISKS (VBLK | SCSI | IDE)
#define UHCI (1u << GUEST_DRIVER_PIIX3_USB_UHCI)
#define PCI (VBLK | VSCSI | UHCI)

typedef struct {
    const char *name;
    PropType type;
    unsigned drivers;       /* the models that have it */
    bool pci_level;         /* virtio-blk-pci's own, not its inner device's */
    PropAt at;
    const char *desc;       /* QEMU's help text; NULL: none */
    const char *dflt;       /* QEMU's default, as JSON; NULL: none */
} DevProp;

static const DevProp dev_props[] = {
    { "addr", PT_PCI_DEVFN, PCI, true, AT_ADDR,
      "Slot and optional function number, example: 06.0 or 06", "-1" },
    { "bootindex", PT_INT32, DISKS, false, AT_BOOTINDEX, NULL, NULL },
    { "channel", PT_UINT32, SCSI, false, AT_CHANNEL, "", "0" },
    { "discard_granularity", PT_SIZE, DISKS, false, AT_DISK, "",
      "4294967295" },
    { "drive", PT_STR, DISKS, false, AT_DRIVE,
      "Node name or ID of a block device to use as a backend", NULL },
    /* qmpd's one event loop serves the device either way */
    { "iothread", PT_IOTHREAD, PCI, false, AT_IOTHREAD, NULL, NULL },
    { "logical_block_size", PT_SIZE, DISKS, false, AT_DISK,
      "A power of two between 512 B and 2 MiB", "0" },
    { "lun", PT_UINT32, SCSI, false, AT_LUN, "", "4294967295" },
    { "min_io_size", PT_SIZE, DISKS, false, AT_DISK, "", "0" },
    { "multifunction", PT_BOOL, PCI, true, AT_MULTIFUNCTION, "on/off",
      "false" },
    { "num-queues", PT_UINT16, VBLK, false, AT_NUM_QUEUES, "", "65535" },
    { "opt_io_size", PT_SIZE, DISKS, false, AT_DISK, "", "0" },
    { "physical_block_size", PT_SIZE, DISKS, false, AT_DISK,
      "A power of two between 512 B and 2 MiB", "0" },
    { "rerror", PT_ON_ERROR, DISKS, false, AT_DISK,
      "Error handling policy, report/ignore/enospc/stop/auto", "\"auto\"" },
    { "scsi-id", PT_UINT32, SCSI, false, AT_SCSI_ID, "", "4294967295" },
    { "serial", PT_STR, DISKS, false, AT_DISK, NULL, NULL },
    { "unit", PT_UINT32, IDE, false, AT_UNIT, "", "4294967295" },
    { "werror", PT_ON_ERROR, DISKS, false, AT_DISK,
      "Error handling policy, report/ignore/enospc/stop/auto", "\"auto\"" },
    { "write-cache", PT_ON_OFF_AUTO, DISKS, false, AT_WRITE_CACHE,
      "on/off/auto", "\"auto\"" },
};

static const char *const type_names[] = {
    [PT_STR] = "str", [PT_BOOL] = "bool", [PT_INT32] = "int32",
    [PT_UINT16] = "uint16", [PT_UINT32] = "uint32", [PT_SIZE] = "size",
    [PT_ON_OFF_AUTO] = "OnOffAuto", [PT_ON_ERROR] = "BlockdevOnError",
    [PT_PCI_DEVFN] = "int32", [PT_IOTHREAD] = "link<iothread>",
};

/* QEMU 7.2's properties of each model (-device DRIVER,help). */
static const char *const qemu_piix3_usb_uhci[] = {
    "acpi-index", "addr", "bandwidth", "failover_pair_id", "maxframes",
    "multifunction", "rombar", "romfile", "romsize", "x-pcie-extcap-init",
    "x-pcie-lnksta-dllla", NULL
};

static const char *const qemu_virtio_blk_pci[] = {
    "account-failed", "account-invalid", "acpi-index", "addr", "aer",
    "any_layout", "ats", "backend_defaults", "bootindex", "class",
    "config-wce", "cyls", "disable-legacy", "disable-modern", "discard",
    "discard_granularity", "drive", "event_idx", "failover_pair_id", "heads",
    "indirect_desc", "ioeventfd", "iommu_platform", "iothread", "lcyls",
    "lheads", "logical_block_size", "lsecs", "max-discard-sectors",
    "max-write-zeroes-sectors", "migrate-extra", "min_io_size",
    "modern-pio-notify", "multifunction", "notify_on_empty", "num-queues",
    "opt_io_size", "packed", "page-per-vq", "physical_block_size",
    "queue-size", "queue_reset", "report-discard-granularity",
    "request-merging", "rerror", "rombar", "romfile", "romsize", "scsi",
    "secs", "seg-max-adjust", "serial", "share-rw", "use-disabled-flag",
    "use-started", "vectors", "virtio-backend",
    "virtio-pci-bus-master-bug-migration", "werror", "write-cache",
    "write-zeroes", "x-ats-page-aligned", "x-disable-legacy-check",
    "x-disable-pcie", "x-enable-wce-if-config-wce",
    "x-ignore-backend-features", "x-pcie-deverr-init", "x-pcie-extcap-init",
    "x-pcie-flr-init", "x-pcie-lnkctl-init", "x-pcie-lnksta-dllla",
    "x-pcie-pm-init", NULL
};

static const char *const qemu_virtio_blk_device[] = {
    "account-failed", "account-invalid", "any_layout", "backend_defaults",
    "bootindex", "config-wce", "cyls", "discard", "discard_granularity",
    "drive", "event_idx", "heads", "indirect_desc", "iommu_platform",
    "iothread", "lcyls", "lheads", "logical_block_size", "lsecs",
    "max-discard-sectors", "max-write-zeroes-sectors", "min_io_size",
    "notify_on_empty", "num-queues", "opt_io_size", "packed",
    "physical_block_size", "queue-size", "queue_reset",
    "report-discard-granularity", "request-merging", "rerror", "scsi", "secs",
    "seg-max-adjust", "serial", "share-rw", "use-disabled-flag",
    "use-started", "werror", "write-cache", "write-zeroes",
    "x-disable-legacy-check", "x-enable-wce-if-config-wce", NULL
};

static const char *const qemu_scsi_hd[] = {
    "account-failed", "account-invalid", "backend_defaults", "bootindex",
    "channel", "cyls", "device_id", "discard_granularity", "dpofua", "drive",
    "heads", "lcyls", "lheads", "logical_block_size", "lsecs", "lun",
    "max_io_size", "max_unmap_size", "min_io_size", "opt_io_size",
    "physical_block_size", "port_index", "port_wwn", "product",
    "quirk_mode_page_vendor_specific_apple", "removable", "rerror",
    "rotation_rate", "scsi-id", "scsi_version", "secs", "serial", "share-rw",
    "vendor", "ver", "werror", "write-cache", "wwn", NULL
};

static const char *const qemu_ide_hd[] = {
    "account-failed", "account-invalid", "backend_defaults", "bios-chs-trans",
    "bootindex", "cyls", "discard_granularity", "drive", "heads", "lcyls",
    "lheads", "logical_block_size", "lsecs", "min_io_size", "model",
    "opt_io_size", "physical_block_size", "rerror", "rotation_rate", "secs",
    "serial", "share-rw", "unit", "ver", "werror", "write-cache", "wwn", NULL
};

static const char *const qemu_ide_cd[] = {
    "account-failed", "account-invalid", "backend_defaults", "bootindex",
    "discard_granularity", "drive", "logical_block_size", "min_io_size",
    "model", "opt_io_size", "physical_block_size", "rerror", "serial",
    "share-rw", "unit", "ver", "werror", "write-cache", "wwn", NULL
};

static const char *const qemu_scsi_cd[] = {
    "account-failed", "account-invalid", "backend_defaults", "bootindex",
    "channel", "device_id", "discard_granularity", "drive",
    "logical_block_size", "lun", "max_io_size", "min_io_size", "opt_io_size",
    "physical_block_size", "port_index", "port_wwn", "product",
    "quirk_mode_page_apple_vendor", "quirk_mode_page_truncated",
    "quirk_mode_page_vendor_specific_apple", "quirk_mode_sense_rom_use_dbd",
    "rerror", "scsi-id", "scsi_version", "serial", "share-rw", "vendor",
    "ver", "werror", "write-cache", "wwn", NULL
};

static const char *const qemu_virtio_scsi_pci[] = {
    "acpi-index", "addr", "aer", "any_layout", "ats", "cmd_per_lun",
    "disable-legacy", "disable-modern", "event_idx", "failover_pair_id",
    "hotplug", "indirect_desc", "ioeventfd", "iommu_platform", "iothread",
    "max_sectors", "migrate-extra", "modern-pio-notify", "multifunction",
    "notify_on_empty", "num_queues", "packed", "page-per-vq", "param_change",
    "queue_reset", "rombar", "romfile", "romsize", "seg_max_adjust",
    "use-disabled-flag", "use-started", "vectors", "virtio-backend",
    "virtio-pci-bus-master-bug-migration", "virtqueue_size",
    "x-ats-page-aligned", "x-disable-legacy-check", "x-disable-pcie",
    "x-ignore-backend-features", "x-pcie-deverr-init", "x-pcie-extcap-init",
    "x-pcie-flr-init", "x-pcie-lnkctl-init", "x-pcie-lnksta-dllla",
    "x-pcie-pm-init", NULL
};

/* What every QEMU device (and a PCI one) also shows to qom-get. */
static const char *const qemu_qom_only[] = {
    "realized", "hotplugged", "hotpluggable", "parent_bus", NULL
};

typedef struct {
    const char *name;
    const char *alias;
    const char *bus_type;
    const char *desc;               /* the -device help line's tail */
    const char *const *qemu_props;
} DriverInfo;

static const DriverInfo drivers[] = {
    [GUEST_DRIVER_VIRTIO_BLK] = { "virtio-blk-pci", "virtio-blk", "PCI",
                                  NULL, qemu_virtio_blk_pci },
    [GUEST_DRIVER_SCSI_HD] = { "scsi-hd", NULL, "SCSI", "virtual SCSI disk",
                               qemu_scsi_hd },
    [GUEST_DRIVER_IDE_HD] = { "ide-hd", NULL, "IDE", "virtual IDE disk",
                              qemu_ide_hd },
    [GUEST_DRIVER_VIRTIO_SCSI] = { "virtio-scsi-pci", "virtio-scsi", "PCI",
                                   NULL, qemu_virtio_scsi_pci },
    [GUEST_DRIVER_IDE_CD] = { "ide-cd", NULL, "IDE", "virtual IDE CD-ROM",
                              qemu_ide_cd },
    [GUEST_DRIVER_SCSI_CD] = { "scsi-cd", NULL, "SCSI",
                               "virtual SCSI CD-ROM", qemu_scsi_cd },
    /*
     * libvirt gives every pc domain a USB controller; with no USB
     * device model behind it there is nothing for it to drive
     */
    [GUEST_DRIVER_PIIX3_USB_UHCI] = { "piix3-usb-uhci", NULL, "PCI", NULL,
                                      qemu_piix3_usb_uhci },
};

bool guest_driver_lookup(const char *name, GuestDriver *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
        if (!strcmp(name, drivers[i].name)
            || (drivers[i].alias && !strcmp(name, drivers[i].alias))) {
            *out = (GuestDriver)i;
            return true;
        }
    }
    return false;
}

const char *guest_driver_name(GuestDriver drv)
{
    return drivers[drv].name;
}

const char *guest_driver_bus_type(GuestDriver drv)
{
    return drivers[drv].bus_type;
}

bool guest_driver_is_disk(GuestDriver drv)
{
    return (DISKS >> drv) & 1;
}

bool guest_driver_is_cd(GuestDriver drv)
{
    return (CDS >> drv) & 1;
}

static const DevProp *find_prop(GuestDriver drv, const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(dev_props); i++) {
        if (!strcmp(dev_props[i].name, name)
            && (dev_props[i].drivers >> drv) & 1) {
            return &dev_props[i];
        }
    }
    return NULL;
}

/* ---- values -------------------------------------------------------------- */

/*
 * QEMU's keyval integers: C's bases (0x10, 010), the whole string, then
 * the type's range.  An unsigned one wraps a minus sign around, so "-1"
 * is out of its range.
 */
static bool parse_integer(const DevProp *dp, const char *s, int64_t *out,
                          Error **errp)
{
    static const struct {
        int64_t min, max;
        const char *name;
    } ranges[] = {
        [PT_INT32] = { INT32_MIN, INT32_MAX, "int32_t" },
        [PT_UINT16] = { 0, UINT16_MAX, "uint16_t" },
        [PT_UINT32] = { 0, UINT32_MAX, "uint32_t" },
    };
    char *end;
    int64_t v;

    errno = 0;
    if (dp->type == PT_INT32) {
        v = strtoll(s, &end, 0);
    } else {
        v = (int64_t)MIN(strtoull(s, &end, 0), (unsigned long long)INT64_MAX);
    }
    if (errno || end == s || *end) {
        error_setg(errp, "Parameter '%s' expects integer", dp->name);
        return false;
    }
    if (v < ranges[dp->type].min || v > ranges[dp->type].max) {
        error_setg(errp, "Parameter '%s' expects %s", dp->name,
                   ranges[dp->type].name);
        return false;
    }
    *out = v;
    return true;
}

/*
 * A PCI address "SLOT[.FN]" in hex, as QEMU reads it (strtoul's rules:
 * a 0x prefix or a sign are taken), slot 0..31, function 0..7.
 */
static bool parse_devfn(GuestDriver drv, const char *key, const char *s,
                        int32_t *out, Error **errp)
{
    const char *p = s;
    char *end;
    unsigned long slot, fn = 0;

    slot = strtoul(p, &end, 16);
    if (end == p) {
        goto invalid;
    }
    if (*end == '.') {
        p = end + 1;
        fn = strtoul(p, &end, 16);
        if (end == p) {
            goto invalid;
        }
    }
    if (*end || slot > 31 || fn > 7) {
        goto invalid;
    }
    *out = (int32_t)(slot << 3 | fn);
    return true;

invalid:
    error_setg(errp, "Property '%s.%s' doesn't take value '%s'",
               drivers[drv].name, key, s);
    return false;
}

static bool set_prop(GuestDriver drv, const DevProp *dp, const char *val,
                     GuestDevProps *p, Error **errp)
{
    static const char *const on_off_auto[] = { "on", "off", "auto", NULL };
    int64_t n;

    switch (dp->type) {
    case PT_STR:
        if (dp->at == AT_DRIVE) {
            p->drive = val;
        }
        return true;
    case PT_BOOL:
        return opts_parse_bool(dp->name, val, &p->multifunction, errp);
    case PT_INT32:
    case PT_UINT16:
    case PT_UINT32:
        if (!parse_integer(dp, val, &n, errp)) {
            return false;
        }
        if (dp->at == AT_BOOTINDEX) {
            p->bootindex = (int32_t)n;
        } else if (dp->at == AT_NUM_QUEUES) {
            p->num_queues = (uint16_t)n;
        } else {
            *(dp->at == AT_CHANNEL ? &p->channel : dp->at == AT_SCSI_ID
              ? &p->scsi_id : dp->at == AT_LUN ? &p->lun : &p->unit) =
                (uint32_t)n;
        }
        return true;
    case PT_ON_OFF_AUTO:
        for (size_t k = 0; on_off_auto[k]; k++) {
            if (!strcmp(val, on_off_auto[k])) {
                p->write_cache = on_off_auto[k];
                return true;
            }
        }
        error_setg(errp, "Parameter '%s' does not accept value '%s'",
                   dp->name, val);
        return false;
    case PT_PCI_DEVFN:
        return parse_devfn(drv, dp->name, val, &p->addr, errp);
    case PT_IOTHREAD:
        return iothread_link(val, &p->iothread, errp);
    case PT_SIZE:
    case PT_ON_ERROR:
        /* the disk model's: guest_disk_new() reads them */
        return true;
    }
    g_assert_not_reached();
}

bool guest_props_parse(GuestDriver drv, const json_t *props,
                       GuestDevProps *p, Error **errp)
{
    const char *key;
    json_t *val;

    *p = (GuestDevProps) {
        .write_cache = "auto", .addr = -1, .bootindex = -1,
        .num_queues = UINT16_MAX, .scsi_id = GUEST_PROP_AUTO,
        .lun = GUEST_PROP_AUTO, .unit = GUEST_PROP_AUTO,
    };
    json_object_foreach((json_t *)props, key, val) {
        const DevProp *dp;

        if (!strcmp(key, "driver") || !strcmp(key, "id")
            || !strcmp(key, "bus")) {
            continue;
        }
        dp = find_prop(drv, key);
        if (!dp) {
            if (g_strv_contains(drivers[drv].qemu_props, key)) {
                error_setg(errp, "Property '%s.%s' is not supported by qmpd",
                           drivers[drv].name, key);
            } else {
                error_setg(errp, "Property '%s.%s' not found",
                           drivers[drv].name, key);
            }
            return false;
        }
        if (!set_prop(drv, dp, json_string_value(val), p, errp)) {
            return false;
        }
    }
    return true;
}

/* ---- qom-get ------------------------------------------------------------- */

json_t *guest_props_qom_get(GuestDriver drv, bool inner,
                            const GuestDevProps *p, const char *name)
{
    const DevProp *dp = find_prop(drv, name);

    if (!dp || (inner && dp->pci_level)) {
        return NULL;
    }
    switch (dp->at) {
    case AT_WRITE_CACHE:
        return json_string(p->write_cache);
    case AT_ADDR:
        return json_integer(p->addr);
    case AT_MULTIFUNCTION:
        return json_boolean(p->multifunction);
    case AT_BOOTINDEX:
        return json_integer(p->bootindex);
    case AT_NUM_QUEUES:
        /* QEMU's automatic number: one per vCPU, and qmpd has one */
        return json_integer(p->num_queues == UINT16_MAX ? 1
                                                        : p->num_queues);
    case AT_CHANNEL:
        return json_integer(p->channel);
    case AT_SCSI_ID:
        return json_integer(p->scsi_id);
    case AT_LUN:
        return json_integer(p->lun);
    case AT_UNIT:
        return json_integer(p->unit);
    case AT_IOTHREAD:
        return iothread_link_path(p->iothread);
    case AT_DISK:
    case AT_DRIVE:
        return NULL;
    }
    g_assert_not_reached();
}

bool guest_props_qemu_has(GuestDriver drv, bool inner, const char *name)
{
    const char *const *names = inner ? qemu_virtio_blk_device
                                     : drivers[drv].qemu_props;

    return g_strv_contains(names, name)
        || g_strv_contains(qemu_qom_only, name)
        || (!inner && !strcmp(drivers[drv].bus_type, "PCI")
            && !strcmp(name, "legacy-addr"));
}

/* ---- help ---------------------------------------------------------------- */

json_t *guest_props_list(GuestDriver drv)
{
    json_t *list = json_array();

    for (size_t i = 0; i < G_N_ELEMENTS(dev_props); i++) {
        const DevProp *dp = &dev_props[i];
        json_t *o;

        if (!((dp->drivers >> drv) & 1)) {
            continue;
        }
        o = json_pack("{s:s,s:s}", "name", dp->name, "type",
                      type_names[dp->type]);
        /* "" is a help line's empty description; QEMU's has none */
        if (dp->desc && *dp->desc) {
            json_object_set_new(o, "description", json_string(dp->desc));
        }
        if (dp->dflt) {
            json_object_set_new(o, "default-value",
                                json_loads(dp->dflt, JSON_DECODE_ANY,
                                           NULL));
        }
        json_array_append_new(list, o);
    }
    return list;
}

void guest_props_print_models(GString *out)
{
    /* by name, as QEMU sorts them */
    static const GuestDriver order[] = {
        GUEST_DRIVER_IDE_CD, GUEST_DRIVER_IDE_HD, GUEST_DRIVER_SCSI_CD,
        GUEST_DRIVER_SCSI_HD, GUEST_DRIVER_VIRTIO_BLK,
        GUEST_DRIVER_VIRTIO_SCSI,
    };

    /* QEMU's categories in its order, a blank line between them */
    g_string_append(out, "USB devices:\nname \"piix3-usb-uhci\", bus PCI\n"
                    "\nStorage devices:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
        const DriverInfo *d = &drivers[order[i]];

        g_string_append_printf(out, "name \"%s\", bus %s", d->name,
                               d->bus_type);
        if (d->alias) {
            g_string_append_printf(out, ", alias \"%s\"", d->alias);
        }
        if (d->desc) {
            g_string_append_printf(out, ", desc \"%s\"", d->desc);
        }
        g_string_append_c(out, '\n');
    }
}

static gint compare_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* QEMU's help line: "  name=<type>", padded to 24, " - desc (default)". */
static char *prop_help(const DevProp *dp)
{
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, "  %s=<%s>", dp->name, type_names[dp->type]);
    if (dp->desc || dp->dflt) {
        while (s->len < 24) {
            g_string_append_c(s, ' ');
        }
        g_string_append_printf(s, " - %s", dp->desc ? dp->desc : "");
    }
    if (dp->dflt) {
        g_string_append_printf(s, " (default: %s)", dp->dflt);
    }
    return g_string_free(s, FALSE);
}

bool guest_props_print_help(const char *arg, GString *out, GString *err)
{
    static const char *const help_words[] = { "help", "?", NULL };
    g_autoptr(Opts) o = opts_parse(arg, "driver", NULL, help_words, NULL);
    g_autoptr(GPtrArray) lines = NULL;
    const char *name;
    GuestDriver drv;

    if (!o || !opts_has(o, "driver")) {
        return false;
    }
    name = opts_get(o, "driver");
    if (g_strv_contains(help_words, name)) {
        guest_props_print_models(out);
        return true;
    }
    if (!opts_has(o, "help") && !opts_has(o, "?")) {
        return false;
    }
    if (!guest_driver_lookup(name, &drv)) {
        g_string_append_printf(err, "Device '%s' not found\n", name);
        return true;
    }
    lines = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(dev_props); i++) {
        if ((dev_props[i].drivers >> drv) & 1) {
            g_ptr_array_add(lines, prop_help(&dev_props[i]));
        }
    }
    g_ptr_array_sort(lines, compare_str);
    g_string_append_printf(out, "%s options:\n", drivers[drv].name);
    for (guint i = 0; i < lines->len; i++) {
        g_string_append_printf(out, "%s\n",
                               (char *)g_ptr_array_index(lines, i));
    }
    return true;
}
