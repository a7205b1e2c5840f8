/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest devices.  Each disk device is attached to a block backend: the
 * -drive's, or an anonymous one created on a node given by node name
 * (the -blockdev way).  Device paths are QEMU's: /machine/peripheral/ID
 * (or /machine/peripheral-anon/device[N]).  query-block's "qdev" is, as
 * in QEMU, the device's id (else its path), except for virtio-blk, whose
 * backend belongs to the inner device at .../virtio-backend.
 *
 * Buses follow the machine type: none has none, pc has the IDE buses
 * ide.0 and ide.1, q35 the AHCI buses ide.0 to ide.5; PCI on pc and
 * q35; a SCSI bus per virtio-scsi-pci controller ("ID.0").
 */
#include "config.h"

#include <string.h>

#include "monitor/hmp.h"
#include "qapi/event.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/guest-disk.h"
#include "system/guest.h"
#include "system/machine.h"

typedef struct {
    char *id;               /* NULL: anonymous */
    char *driver;
    char *path;             /* /machine/peripheral/ID */
    char *qdev;             /* what query-block shows */
    BlockBackend *blk;
    GuestDisk *disk;        /* disk devices: properties, guest I/O */
    bool anon_backend;      /* created for this device */
    guint unplug_source;    /* device_del accepted, removal pending */
} GuestDevice;

static void device_free(GuestDevice *d);

static GPtrArray *devices;
static unsigned anon_count;

static const char *const disk_drivers[] = {
    "virtio-blk-pci", "scsi-hd", "ide-hd", NULL
};

static GuestDevice *find_device(const char *id)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        GuestDevice *d = g_ptr_array_index(devices, i);

        if (d->id && !strcmp(d->id, id)) {
            return d;
        }
    }
    return NULL;
}

BlockBackend *guest_device_backend(const char *id)
{
    GuestDevice *d = find_device(id);

    return d ? d->blk : NULL;
}

/* The property name QEMU reports in drive errors. */
static const char *drive_prop_owner(const char *driver)
{
    return !strcmp(driver, "virtio-blk-pci") ? "virtio-blk-device" : driver;
}

static bool bus_available(const char *driver, const char *bus, Error **errp)
{
    const char *machine = machine_config()->type;
    bool is_none = !strcmp(machine, "none");
    const char *kind = !strcmp(driver, "scsi-hd") ? "SCSI"
        : !strcmp(driver, "ide-hd") ? "IDE" : "PCI";

    if (!strcmp(kind, "SCSI")) {
        for (guint i = 0; devices && i < devices->len; i++) {
            GuestDevice *d = g_ptr_array_index(devices, i);

            if (!strcmp(d->driver, "virtio-scsi-pci")
                && (!bus || (d->id && g_str_has_prefix(bus, d->id)))) {
                return true;
            }
        }
        if (bus) {
            error_setg(errp, "Bus '%s' not found", bus);
            return false;
        }
    } else if (!is_none) {
        if (!strcmp(kind, "IDE") && bus
            && !(g_str_has_prefix(bus, "ide.") && strlen(bus) == 5
                 && bus[4] >= '0'
                 && bus[4] <= (g_str_has_prefix(machine, "pc-q35") ? '5'
                                                                   : '1'))) {
            error_setg(errp, "Bus '%s' not found", bus);
            return false;
        }
        return true;
    }
    error_setg(errp, "No '%s' bus found for device '%s'", kind, driver);
    return false;
}

/*
 * The bus a hot-plugged device would go on refuses hotplug: IDE buses
 * always, and q35's PCIe root bus (QEMU's QERR_BUS_NO_HOTPLUG).  With
 * no bus given, QEMU picks the last bus of the first controller.
 */
static bool bus_hotpluggable(const char *driver, const char *bus,
                             Error **errp)
{
    const char *machine = machine_config()->type;
    bool q35 = g_str_has_prefix(machine, "pc-q35");

    if (!strcmp(driver, "ide-hd")) {
        error_setg(errp, "Bus '%s' does not support hotplugging",
                   bus ? bus : q35 ? "ide.5" : "ide.1");
        return false;
    }
    if (q35 && strcmp(driver, "scsi-hd")) {
        error_setg(errp, "Bus '%s' does not support hotplugging",
                   bus ? bus : "pcie.0");
        return false;
    }
    return true;
}

/*
 * Add a device; @hot when the machine is running already (device_add).
 * The checks follow QEMU's qdev_device_add(): model, bus, hotplug, id,
 * properties, then the drive.
 */
static bool device_add(const json_t *props, bool hot, Error **errp)
{
    static const char *const known[] = {
        "driver", "id", "drive", "bus", "addr", "serial", "bootindex",
        "write-cache", "num-queues", "scsi-id", "lun", "channel", "unit",
        "logical_block_size", "physical_block_size", "discard_granularity",
        "min_io_size", "opt_io_size", "rerror", "werror",
        NULL
    };
    const char *driver = qjson_get_str(props, "driver");
    const char *id = qjson_get_str_or(props, "id", NULL);
    const char *drive = qjson_get_str_or(props, "drive", NULL);
    const char *bus = qjson_get_str_or(props, "bus", NULL);
    const char *wce = qjson_get_str_or(props, "write-cache", "auto");
    const char *key;
    json_t *val;
    GuestDevice *d;
    BlockBackend *blk = NULL;
    g_autoptr(GuestDisk) disk = NULL;
    bool anon = false;

    if (!strcmp(driver, "virtio-blk")) {
        driver = "virtio-blk-pci";
    }
    if (!g_strv_contains(disk_drivers, driver)
        && strcmp(driver, "virtio-scsi-pci")) {
        error_setg(errp, "'%s' is not a valid device model name", driver);
        return false;
    }
    if (!bus_available(driver, bus, errp)) {
        return false;
    }
    if (hot && !bus_hotpluggable(driver, bus, errp)) {
        return false;
    }
    if (id && find_device(id)) {
        error_setg(errp, "Duplicate device ID '%s'", id);
        return false;
    }
    json_object_foreach((json_t *)props, key, val) {
        if (!g_strv_contains(known, key)) {
            error_setg(errp, "Property '%s.%s' not found",
                       drive_prop_owner(driver), key);
            return false;
        }
    }
    if (strcmp(wce, "on") && strcmp(wce, "off") && strcmp(wce, "auto")) {
        error_setg(errp, "Parameter 'write-cache' does not accept value "
                   "'%s'", wce);
        return false;
    }
    if (g_strv_contains(disk_drivers, driver)) {
        disk = guest_disk_new(driver, id, props, errp);
        if (!disk) {
            return false;
        }
        if (!drive) {
            error_setg(errp, "drive property not set");
            return false;
        }
        blk = blk_by_name(drive);
        if (blk && blk_qdev(blk)) {
            error_setg(errp, "Property '%s.drive' can't take value '%s', "
                       "it's in use", drive_prop_owner(driver), drive);
            return false;
        }
        if (!blk) {
            BlockNode *bn = bdrv_find_node(drive);

            if (!bn) {
                error_setg(errp, "Property '%s.drive' can't find value '%s'",
                           drive_prop_owner(driver), drive);
                return false;
            }
            blk = blk_new("", bn, errp);
            if (!blk) {
                return false;
            }
            anon = true;
        }
        if (!guest_disk_realize(disk, blk, errp)) {
            if (anon) {
                blk_delete(blk);
            }
            return false;
        }
    }
    d = g_new0(GuestDevice, 1);
    d->id = g_strdup(id);
    d->driver = g_strdup(driver);
    d->path = id ? g_strdup_printf("/machine/peripheral/%s", id)
                 : g_strdup_printf("/machine/peripheral-anon/device[%u]",
                                   anon_count++);
    /*
     * QEMU names the device by its id, else its path; virtio-blk's
     * backend belongs to the inner virtio-blk-device, which has no id
     */
    d->qdev = !strcmp(driver, "virtio-blk-pci")
        ? g_strdup_printf("%s/virtio-backend", d->path)
        : g_strdup(id ? id : d->path);
    d->blk = blk;
    d->disk = g_steal_pointer(&disk);
    d->anon_backend = anon;
    /* the device's permissions may meet another process's image locks */
    if (blk && !blk_attach_dev(blk, d->qdev, id, errp)) {
        guest_disk_free(d->disk);
        if (anon) {
            blk_delete(blk);
        }
        device_free(d);
        return false;
    }
    /* as QEMU's blkconf_apply_backend_options: auto keeps the drive's */
    if (blk && strcmp(wce, "auto")) {
        blk_set_write_cache(blk, !strcmp(wce, "on"));
    }
    if (!devices) {
        devices = g_ptr_array_new();
    }
    g_ptr_array_add(devices, d);
    return true;
}

bool guest_device_add(const json_t *props, Error **errp)
{
    return device_add(props, false, errp);
}

static bool device_add_arg(const char *arg, bool hot, Error **errp)
{
    g_autoptr(Opts) o = opts_parse(arg, "driver", NULL, NULL, errp);
    g_autoptr(json_t) props = json_object();

    if (!o) {
        return false;
    }
    for (guint i = 0; i < opts_count(o); i++) {
        const char *key = opts_key(o, i);

        json_object_set_new(props, key, qjson_str(opts_get(o, key)));
    }
    if (!json_object_get(props, "driver")) {
        error_setg(errp, "Parameter 'driver' is missing");
        return false;
    }
    return device_add(props, hot, errp);
}

bool guest_device_add_arg(const char *arg, Error **errp)
{
    return device_add_arg(arg, false, errp);
}

static void device_free(GuestDevice *d)
{
    g_free(d->id);
    g_free(d->driver);
    g_free(d->path);
    g_free(d->qdev);
    g_free(d);
}

static bool qmp_device_add(const json_t *args, json_t **ret, Error **errp)
{
    g_autoptr(json_t) props = json_object();
    const char *key;
    json_t *val;

    /* device_add takes QOM properties: values as strings, like -device
     * (QEMU's QemuOpts spell booleans on/off) */
    json_object_foreach((json_t *)args, key, val) {
        if (json_is_string(val)) {
            json_object_set(props, key, val);
        } else if (json_is_boolean(val)) {
            json_object_set_new(props, key,
                                qjson_str(json_is_true(val) ? "on" : "off"));
        } else {
            g_autofree char *s = qjson_to_wire(val, false);

            json_object_set_new(props, key, qjson_str(s));
        }
    }
    return device_add(props, true, errp);
}

/* The unplug completes: the device goes, then its DEVICE_DELETED events. */
static gboolean unplug_cb(gpointer opaque)
{
    GuestDevice *d = opaque;

    g_ptr_array_remove(devices, d);
    /* the disk lets go of the backend (and fails what it held) first */
    guest_disk_free(d->disk);
    if (d->blk) {
        blk_set_qdev(d->blk, NULL, NULL);
        if (d->anon_backend || blk_auto_del(d->blk)) {
            blk_delete(d->blk);
        }
    }
    if (!strcmp(d->driver, "virtio-blk-pci")) {
        /* the inner virtio-blk-device goes first */
        qapi_event_send("DEVICE_DELETED",
                        json_pack("{s:s}", "path", d->qdev));
    }
    qapi_event_send("DEVICE_DELETED",
                    d->id ? json_pack("{s:s,s:s}", "device", d->id, "path",
                                      d->path)
                          : json_pack("{s:s}", "path", d->path));
    device_free(d);
    return G_SOURCE_REMOVE;
}

static bool qmp_device_del(const json_t *args, json_t **ret, Error **errp)
{
    const char *id = qjson_get_str(args, "id");
    GuestDevice *d = find_device(id);

    if (!d) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND,
                  "Device '%s' not found", id);
        return false;
    }
    if (d->unplug_source) {
        error_setg(errp, "Device %s is already in the process of unplug",
                   id);
        return false;
    }
    /*
     * The emulated guest acknowledges the unplug at once, but as in
     * QEMU the device goes (and DEVICE_DELETED is sent) only after the
     * command's reply
     */
    d->unplug_source = g_idle_add_full(G_PRIORITY_DEFAULT, unplug_cb, d,
                                       NULL);
    return true;
}

void guest_cleanup(void)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        GuestDevice *d = g_ptr_array_index(devices, i);

        if (d->unplug_source) {
            g_source_remove(d->unplug_source);
        }
        guest_disk_free(d->disk);
        if (d->blk) {
            blk_set_qdev(d->blk, NULL, NULL);
            if (d->anon_backend) {
                blk_delete(d->blk);
            }
        }
        device_free(d);
    }
    g_clear_pointer(&devices, g_ptr_array_unref);
}

/* Properties QEMU's disk devices have that qmpd does not model. */
static const char *const unmodelled_props[] = {
    "bus", "addr", "bootindex", "write-cache", "num-queues", "scsi-id",
    "lun", "channel", "unit", "realized", "hotplugged", "hotpluggable",
    "parent_bus", "share-rw", "account-invalid", "account-failed",
    "backend_defaults", NULL
};

void guest_qom_paths(GPtrArray *paths)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        GuestDevice *d = g_ptr_array_index(devices, i);

        g_ptr_array_add(paths, d->path);
        if (strcmp(d->qdev, d->path) && g_str_has_prefix(d->qdev, "/")) {
            g_ptr_array_add(paths, d->qdev);
        }
    }
}

json_t *guest_qom_get(const char *path, const char *prop, Error **errp)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        GuestDevice *d = g_ptr_array_index(devices, i);
        bool inner = !strcmp(path, d->qdev) && strcmp(d->qdev, d->path);
        const char *type = inner ? "virtio-blk-device" : d->driver;
        json_t *v = NULL;

        if (strcmp(path, d->path) && !inner) {
            continue;
        }
        if (!strcmp(prop, "type")) {
            return json_string(type);
        }
        if (d->blk && !strcmp(prop, "drive")) {
            /* the -drive id, or the node name for a -blockdev node */
            return json_string(*blk_name(d->blk)
                               ? blk_name(d->blk)
                               : bdrv_node_name(blk_root(d->blk)));
        }
        if (d->disk) {
            v = guest_disk_prop(d->disk, prop);
        }
        if (v) {
            return v;
        }
        if (g_strv_contains(unmodelled_props, prop)
            && (d->disk || !strcmp(prop, "realized"))) {
            error_setg(errp, "Property '%s.%s' is not modelled by qmpd", type,
                       prop);
            return NULL;
        }
        error_setg(errp, "Property '%s.%s' not found", type, prop);
        return NULL;
    }
    error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
              path);
    return NULL;
}

static void hmp_device_add(HmpCall *call, const json_t *args)
{
    Error *err = NULL;

    if (!device_add_arg(qjson_get_str(args, "device"), true, &err)) {
        g_string_append_printf(hmp_call_out(call), "Error: %s\n",
                               error_get_pretty(err));
        error_free(err);
    }
    hmp_call_finish(call);
}

const HmpHandler guest_hmp_handlers[] = {
    { "device_add", hmp_device_add },
};

const size_t guest_hmp_handlers_count = G_N_ELEMENTS(guest_hmp_handlers);

const QapiHandler guest_qmp_handlers[] = {
    { "device_add", qmp_device_add, NULL },
    { "device_del", qmp_device_del, NULL },
};

const size_t guest_qmp_handlers_count = G_N_ELEMENTS(guest_qmp_handlers);
