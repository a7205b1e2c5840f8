/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The emulated guest's hardware: disk devices (virtio-blk-pci, scsi-hd,
 * ide-hd, and the virtio-scsi-pci controller scsi-hd needs), created by
 * -device or device_add and removed by device_del.  A device attached to
 * a drive is what the guest writes through.
 */
#ifndef SYSTEM_GUEST_H
#define SYSTEM_GUEST_H

#include <stdbool.h>

#include <jansson.h>

#include "block/core/block.h"
#include "monitor/hmp.h"
#include "qapi/dispatch.h"
#include "qapi/error.h"

/*
 * The machine's buses and own devices, after machine_set_config():
 * @defaults when QEMU would add its default devices (no -nodefaults),
 * whose VGA (@vga) and NIC take PCI slots before any -device.
 */
void guest_init(bool defaults, bool vga);

/*
 * Add a device from @props ({"driver", "id"?, "drive"?, "bus"?, ...}
 * with string values, as -device and device_add give them).
 */
bool guest_device_add(const json_t *props, Error **errp);

/* Add a device from a -device style string "driver,key=value,...". */
bool guest_device_add_arg(const char *arg, Error **errp);

/* A device the board makes (-drive if=ide's ide-hd), at @path. */
bool guest_device_add_board(const json_t *props, const char *path,
                            Error **errp);

/* Remove every device (at exit; no events). */
void guest_cleanup(void);

/* The backend of the disk device with id @id, or NULL. */
BlockBackend *guest_device_backend(const char *id);

/* Add every device's QOM path (borrowed) to @paths, for qom-get. */
void guest_qom_paths(GPtrArray *paths);

/*
 * qom-get on the device at @path (one guest_qom_paths() gave): the
 * value (new reference), or NULL with QEMU's error.
 */
json_t *guest_qom_get(const char *path, const char *prop, Error **errp);

extern const HmpHandler guest_hmp_handlers[];
extern const size_t guest_hmp_handlers_count;

extern const QapiHandler guest_qmp_handlers[];
extern const size_t guest_qmp_handlers_count;

#endif /* SYSTEM_GUEST_H */
