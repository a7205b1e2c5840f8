/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest devices.  Each disk device is attached to a block backend: the
 * -drive's, or an anonymous one created on a node given by node name
 * (the -blockdev way), or for a CD-ROM without drive an anonymous empty
 * one, as QEMU's ide-cd and scsi-cd make.  Device paths are QEMU's: /machine/peripheral/ID
 * (or /machine/peripheral-anon/device[N]).  query-block's "qdev" is, as
 * in QEMU, the device's id (else its path), except for virtio-blk, whose
 * backend belongs to the inner device at .../virtio-backend.
 *
 * A device is added as QEMU's qdev_device_add() does it: the model, its
 * bus (guest-bus.c), hotplug, the id, the properties (guest-props.c: one
 * table says what each model takes), then realize: the address on the
 * bus, the drive, the disk model (guest-disk.c).  A controller's
 * devices go with it.
 */
#include "config.h"

#include <string.h>

#include "monitor/hmp.h"
#include "qapi/event.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/drive.h"
#include "system/guest-bus.h"
#include "system/guest-disk.h"
#include "system/guest-props.h"
#include "system/guest.h"
#include "system/machine.h"

#define VIRTIO_QUEUE_MAX 1024

typedef struct {
    char *id;               /* NULL: anonymous */
    char *driver;
    char *path;             /* /machine/peripheral/ID */
    char *qdev;             /* what query-block shows */
    BlockBackend *blk;
    GuestDisk *disk;        /* disk devices: properties, guest I/O */
    bool anon_backend;      /* created for this device */
    guint unplug_source;    /* device_del accepted, removal pending */
    GuestDriver drv;
    GuestDevProps props;    /* with the address it was given */
    GuestBus *bus;          /* the bus it is on */
    GuestBus *child_bus;    /* a SCSI controller's */
} GuestDevice;

static void device_free(GuestDevice *d);

static GPtrArray *devices;

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

static bool bootindex_used(int32_t bootindex)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        GuestDevice *d = g_ptr_array_index(devices, i);

        if (d->props.bootindex == bootindex) {
            return true;
        }
    }
    return false;
}

/* QEMU's "device[*]": the first index no anonymous device has. */
static char *anon_path(void)
{
    for (unsigned n = 0;; n++) {
        g_autofree char *path =
            g_strdup_printf("/machine/peripheral-anon/device[%u]", n);
        bool used = false;

        for (guint i = 0; devices && i < devices->len && !used; i++) {
            GuestDevice *d = g_ptr_array_index(devices, i);

            used = !strcmp(d->path, path);
        }
        if (!used) {
            return g_steal_pointer(&path);
        }
    }
}

/*
 * The drive property names a backend (-drive id) no device has, or a
 * node; QEMU's messages name the inner device of virtio-blk-pci.
 */
static bool find_drive(GuestDriver drv, const char *drive,
                       BlockBackend **blk, BlockNode **node, Error **errp)
{
    const char *owner = drv == GUEST_DRIVER_VIRTIO_BLK ? "virtio-blk-device"
                                                       : guest_driver_name(drv);

    *blk = blk_by_name(drive);
    if (*blk && blk_qdev(*blk)) {
        /* QEMU names the drive's interface, whichever device came first */
        if (drive_auto_connected(drive)) {
            error_setg(errp, "Drive '%s' is already in use because it has "
                       "been automatically connected to another device "
                       "(did you need 'if=none' in the drive options?)",
                       drive);
        } else {
            error_setg(errp, "Drive '%s' is already in use by another "
                       "device", drive);
        }
        return false;
    }
    if (!*blk) {
        *node = bdrv_find_node(drive);
        if (!*node) {
            error_setg(errp, "Property '%s.drive' can't find value '%s'",
                       owner, drive);
            return false;
        }
    }
    return true;
}

/* What a device's realize checks before the disk model's. */
static bool device_check(GuestDriver drv, const GuestDevProps *p,
                         const BlockBackend *blk, Error **errp)
{
    /* a CD-ROM without a drive gets an empty one */
    if (guest_driver_is_disk(drv) && !guest_driver_is_cd(drv)) {
        if (!p->drive) {
            error_setg(errp, drv == GUEST_DRIVER_IDE_HD
                       ? "No drive specified" : "drive property not set");
            return false;
        }
        if (blk && !blk_root(blk)) {
            error_setg(errp, "Device needs media, but drive is empty");
            return false;
        }
    }
    if (drv == GUEST_DRIVER_VIRTIO_BLK && !p->num_queues) {
        error_setg(errp, "num-queues property must be larger than 0");
        return false;
    }
    /* QEMU 7.2 aborts here; later QEMU refuses so */
    if (drv == GUEST_DRIVER_VIRTIO_BLK && p->num_queues != UINT16_MAX
        && p->num_queues > VIRTIO_QUEUE_MAX) {
        error_setg(errp, "num-queues property must be <= %d",
                   VIRTIO_QUEUE_MAX);
        return false;
    }
    return true;
}

/*
 * Add a device; @hot when the machine is running already (device_add).
 * The checks follow QEMU's qdev_device_add(): id syntax, model, bus,
 * hotplug, id, properties (the drive among them), then realize: the
 * address on the bus, the device's own checks, the disk model.
 */
static bool device_add(const json_t *props, bool hot, const char *path,
                       Error **errp)
{
    const char *id = qjson_get_str_or(props, "id", NULL);
    const char *driver;
    const char *wce;
    GuestDriver drv;
    GuestDevProps p;
    GuestBus *bus;
    GuestDevice *d;
    BlockBackend *blk = NULL;
    BlockNode *node = NULL;
    g_autoptr(GuestDisk) disk = NULL;
    bool anon = false;

    if (id && !opts_id_wellformed(id)) {
        error_setg(errp, "Parameter 'id' expects an identifier");
        error_append_hint(errp, "Identifiers consist of letters, digits, "
                          "'-', '.', '_', starting with a letter.\n");
        return false;
    }
    if (!guest_driver_lookup(qjson_get_str(props, "driver"), &drv)) {
        error_setg(errp, "'%s' is not a valid device model name",
                   qjson_get_str(props, "driver"));
        return false;
    }
    driver = guest_driver_name(drv);
    bus = guest_bus_find(qjson_get_str_or(props, "bus", NULL), drv, errp);
    if (!bus) {
        return false;
    }
    if (hot && !guest_bus_hotpluggable(bus)) {
        error_setg(errp, "Bus '%s' does not support hotplugging",
                   guest_bus_name(bus));
        return false;
    }
    if (id && find_device(id)) {
        error_setg(errp, "Duplicate device ID '%s'", id);
        return false;
    }
    if (!guest_props_parse(drv, props, &p, errp)) {
        return false;
    }
    if (p.bootindex >= 0 && bootindex_used(p.bootindex)) {
        error_setg(errp, "The bootindex %d has already been used",
                   p.bootindex);
        return false;
    }
    wce = p.write_cache;
    if (guest_driver_is_disk(drv)) {
        disk = guest_disk_new(driver, id, props, errp);
        if (!disk
            || (p.drive && !find_drive(drv, p.drive, &blk, &node, errp))) {
            return false;
        }
    }
    if (!guest_bus_place(bus, drv, hot, &p, errp)
        || !device_check(drv, &p, blk, errp)) {
        return false;
    }
    if (node || (!blk && guest_driver_is_cd(drv))) {
        blk = blk_new("", node, errp);
        if (!blk) {
            return false;
        }
        anon = true;
    }
    if (disk && !guest_disk_realize(disk, blk,
                                    guest_bus_ide_number(bus, p.unit),
                                    errp)) {
        if (anon) {
            blk_delete(blk);
        }
        return false;
    }
    d = g_new0(GuestDevice, 1);
    d->id = g_strdup(id);
    d->driver = g_strdup(driver);
    d->path = path ? g_strdup(path)
        : id ? g_strdup_printf("/machine/peripheral/%s", id) : anon_path();
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
    d->drv = drv;
    d->props = p;
    d->props.drive = NULL;      /* borrowed from @props */
    d->bus = bus;
    guest_bus_attach(bus, drv, id, &d->props, d);
    if (drv == GUEST_DRIVER_VIRTIO_SCSI) {
        d->child_bus = guest_bus_new_scsi(id);
    }
    return true;
}

void guest_init(bool defaults, bool vga)
{
    guest_bus_init(machine_config()->type, defaults, vga);
}

bool guest_device_add(const json_t *props, Error **errp)
{
    return device_add(props, false, NULL, errp);
}

bool guest_device_add_board(const json_t *props, const char *path,
                            Error **errp)
{
    return device_add(props, false, path, errp);
}

/*
 * device_add and -device's JSON form take QOM properties: values as
 * strings, like -device's keyval form (QEMU's QemuOpts spell booleans
 * on/off).  Borrows @args; returns a new object.
 */
static json_t *props_from_json(const json_t *args)
{
    json_t *props = json_object();
    const char *key;
    json_t *val;

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
    return props;
}

static bool device_add_arg(const char *arg, bool hot, Error **errp)
{
    g_autoptr(Opts) o = NULL;
    g_autoptr(json_t) props = NULL;

    if (arg && arg[0] == '{') {
        json_error_t jerr;
        g_autoptr(json_t) spec = json_loads(arg, 0, &jerr);

        if (!json_is_object(spec)) {
            error_setg(errp, "%s", jerr.text);
            return false;
        }
        props = props_from_json(spec);
        if (!json_object_get(props, "driver")) {
            error_setg(errp, "Parameter 'driver' is missing");
            return false;
        }
        return device_add(props, hot, NULL, errp);
    }
    /* no argument at all (HMP) is QMP's device_add without arguments */
    o = arg ? opts_parse(arg, "driver", NULL, NULL, errp) : NULL;
    props = json_object();
    if (arg && !o) {
        return false;
    }
    for (guint i = 0; o && i < opts_count(o); i++) {
        const char *key = opts_key(o, i);

        json_object_set_new(props, key, qjson_str(opts_get(o, key)));
    }
    if (!json_object_get(props, "driver")) {
        error_setg(errp, "Parameter 'driver' is missing");
        return false;
    }
    return device_add(props, hot, NULL, errp);
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
    g_autoptr(json_t) props = props_from_json(args);

    return device_add(props, true, NULL, errp);
}

/* The device on @bus added last, or NULL. */
static GuestDevice *newest_on(const GuestBus *bus)
{
    for (guint i = devices->len; i > 0; i--) {
        GuestDevice *d = g_ptr_array_index(devices, i - 1);

        if (d->bus == bus) {
            return d;
        }
    }
    return NULL;
}

/*
 * The device goes, then its DEVICE_DELETED events.  As in QEMU, a
 * controller's devices go before it (newest first), and a virtio
 * device's inner device before the device.
 */
static void device_remove(GuestDevice *d)
{
    if (d->child_bus) {
        GuestDevice *c;

        while ((c = newest_on(d->child_bus))) {
            if (c->unplug_source) {
                g_source_remove(c->unplug_source);
            }
            device_remove(c);
        }
        guest_bus_free(d->child_bus);
    }
    g_ptr_array_remove(devices, d);
    guest_bus_detach(d->bus, d);
    /* the disk lets go of the backend (and fails what it held) first */
    guest_disk_free(d->disk);
    if (d->blk) {
        blk_set_qdev(d->blk, NULL, NULL);
        if (d->anon_backend || blk_auto_del(d->blk)) {
            blk_delete(d->blk);
        }
    }
    if (d->drv == GUEST_DRIVER_VIRTIO_BLK
        || d->drv == GUEST_DRIVER_VIRTIO_SCSI) {
        g_autofree char *inner = g_strdup_printf("%s/virtio-backend",
                                                 d->path);

        qapi_event_send("DEVICE_DELETED", json_pack("{s:s}", "path", inner));
    }
    qapi_event_send("DEVICE_DELETED",
                    d->id ? json_pack("{s:s,s:s}", "device", d->id, "path",
                                      d->path)
                          : json_pack("{s:s}", "path", d->path));
    device_free(d);
}

static gboolean unplug_cb(gpointer opaque)
{
    GuestDevice *d = opaque;

    d->unplug_source = 0;
    device_remove(d);
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
    if (!guest_bus_hotpluggable(d->bus)) {
        error_setg(errp, "Bus '%s' does not support hotplugging",
                   guest_bus_name(d->bus));
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
    guest_bus_cleanup();
}

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
            return json_string(*blk_name(d->blk) ? blk_name(d->blk)
                               : blk_root(d->blk)
                               ? bdrv_node_name(blk_root(d->blk)) : "");
        }
        if (d->disk) {
            v = guest_disk_prop(d->disk, prop);
        }
        if (!v) {
            v = guest_props_qom_get(d->drv, inner, &d->props, prop);
        }
        if (v) {
            return v;
        }
        if (guest_props_qemu_has(d->drv, inner, prop)) {
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

static bool qmp_device_list_properties(const json_t *args, json_t **ret,
                                       Error **errp)
{
    const char *name = qjson_get_str(args, "typename");
    GuestDriver drv;

    /* a type name: QEMU's aliases (virtio-blk) are -device's only */
    if (!guest_driver_lookup(name, &drv)
        || strcmp(name, guest_driver_name(drv))) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND,
                  "Device '%s' not found", name);
        return false;
    }
    *ret = guest_props_list(drv);
    return true;
}

static void hmp_device_add(HmpCall *call, const json_t *args)
{
    const char *arg = qjson_get_str_or(args, "device", NULL);
    g_autoptr(GString) help_err = g_string_new(NULL);
    Error *err = NULL;

    if (arg && guest_props_print_help(arg, hmp_call_out(call), help_err)) {
        g_string_append(hmp_call_out(call), help_err->str);
    } else if (!device_add_arg(arg, true, &err)) {
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
    { "device-list-properties", qmp_device_list_properties, NULL },
};

const size_t guest_qmp_handlers_count = G_N_ELEMENTS(guest_qmp_handlers);
