/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device models qmpd's guest has (virtio-blk-pci, scsi-hd, ide-hd,
 * virtio-scsi-pci, ide-cd, scsi-cd) and, per model, the QEMU 7.2 properties qmpd takes:
 * their types, how a value is read and refused (QEMU's messages), their
 * -device DRIVER,help lines, and what qom-get shows.  A property QEMU
 * has that qmpd does not model is refused by name.
 */
#ifndef SYSTEM_GUEST_PROPS_H
#define SYSTEM_GUEST_PROPS_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"

typedef enum GuestDriver {
    GUEST_DRIVER_VIRTIO_BLK,
    GUEST_DRIVER_SCSI_HD,
    GUEST_DRIVER_IDE_HD,
    GUEST_DRIVER_VIRTIO_SCSI,
    GUEST_DRIVER_IDE_CD,
    GUEST_DRIVER_SCSI_CD,
    GUEST_DRIVER_PIIX3_USB_UHCI,
} GuestDriver;

/* QEMU's "unset" of the uint32 address properties (scsi-id, lun, unit). */
#define GUEST_PROP_AUTO UINT32_MAX

/* The device-level properties of one device, typed. */
typedef struct GuestDevProps {
    const char *drive;          /* borrowed from the parsed props; NULL */
    const char *write_cache;    /* "on", "off" or "auto" (static) */
    int32_t addr;               /* PCI devfn; -1: the first free slot */
    bool multifunction;
    int32_t bootindex;          /* -1: none */
    uint16_t num_queues;        /* 65535: QEMU's automatic number */
    uint32_t channel;
    uint32_t scsi_id;           /* GUEST_PROP_AUTO: the first free */
    uint32_t lun;               /* GUEST_PROP_AUTO: the first free */
    uint32_t unit;              /* GUEST_PROP_AUTO: the first free */
    uint64_t iothread;          /* its object's serial; 0: none */
} GuestDevProps;

/*
 * The driver named @name (a model name or QEMU's alias for it, e.g.
 * "virtio-blk"); false when qmpd has no such model.
 */
bool guest_driver_lookup(const char *name, GuestDriver *out);

/* The model name ("virtio-blk-pci"), its bus type ("PCI", "SCSI", "IDE"). */
const char *guest_driver_name(GuestDriver drv);
const char *guest_driver_bus_type(GuestDriver drv);

/* A disk (it takes a drive), not a controller. */
bool guest_driver_is_disk(GuestDriver drv);

/* A CD-ROM: removable media, a tray, and no drive needed. */
bool guest_driver_is_cd(GuestDriver drv);

/*
 * Read @props (string values; "driver", "id" and "bus" are not
 * properties and are skipped) into @p, in the order given, as QEMU's
 * property setters read them: an unknown property, one qmpd does not
 * model, or a bad value fails with QEMU's message (or one naming what
 * qmpd lacks).  The disk properties (serial, block sizes, rerror,
 * werror) are only recognised here; guest_disk_new() reads them.
 */
bool guest_props_parse(GuestDriver drv, const json_t *props,
                       GuestDevProps *p, Error **errp);

/*
 * qom-get of device-level property @name on a @drv device (@inner: its
 * virtio-blk-device, which has no PCI properties): a new reference, or
 * NULL when it is not one of them.
 */
json_t *guest_props_qom_get(GuestDriver drv, bool inner,
                            const GuestDevProps *p, const char *name);

/* QEMU's @drv device (or its inner device) has a property @name. */
bool guest_props_qemu_has(GuestDriver drv, bool inner, const char *name);

/*
 * device-list-properties of @drv: the properties qmpd takes, each as
 * QEMU's ObjectPropertyInfo (a new reference).
 */
json_t *guest_props_list(GuestDriver drv);

/* "-device help": the models, as QEMU lists them. */
void guest_props_print_models(GString *out);

/*
 * "-device DRIVER,help": when @arg (a -device argument) asks for help,
 * print it to @out (or QEMU's error for an unknown model to @err) and
 * return true.
 */
bool guest_props_print_help(const char *arg, GString *out, GString *err);

#endif /* SYSTEM_GUEST_PROPS_H */
