/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disk model behind a guest disk device (virtio-blk-pci, scsi-hd,
 * ide-hd, and the CD-ROMs scsi-cd and ide-cd with their tray): the QEMU
 * properties it takes (serial, block sizes, rerror and
 * werror) and the path the guest's requests take through it, with the
 * device error policy: report, ignore, or stop the guest and retry the
 * request once it runs again.
 */
#ifndef SYSTEM_GUEST_DISK_H
#define SYSTEM_GUEST_DISK_H

#include <stdbool.h>

#include <jansson.h>

#include "block/core/block.h"
#include "qapi/error.h"

typedef struct GuestDisk GuestDisk;

/*
 * The disk of a @driver device ("virtio-blk-pci", "scsi-hd", "ide-hd",
 * "scsi-cd", "ide-cd") with id @id (NULL: none), from its properties
 * @props (string values; other keys are ignored): each value is checked
 * as QEMU's property setters check it, in the order given.  NULL with
 * QEMU's message.
 */
GuestDisk *guest_disk_new(const char *driver, const char *id,
                          const json_t *props, Error **errp);

/*
 * Realize the disk on @blk: QEMU's realize checks (block sizes against
 * each other and the bus), then the error policy goes to the backend
 * (auto keeps the backend's, e.g. -drive werror=) and the guest's
 * requests through blk_dev_io() reach the disk.  @ide_number: an IDE
 * disk's place (guest_bus_ide_number()), its default serial.  On
 * failure nothing has changed.
 */
bool guest_disk_realize(GuestDisk *disk, BlockBackend *blk,
                        unsigned ide_number, Error **errp);

/*
 * Unplug: the backend no longer reaches the disk, and requests held by
 * the stop policy complete with -ECANCELED (the guest is gone).  NULL
 * is ignored.
 */
void guest_disk_free(GuestDisk *disk);

/*
 * The value qom-get gives for the disk's property @name (a new
 * reference), or NULL when the disk has no such property.
 */
json_t *guest_disk_prop(const GuestDisk *disk, const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestDisk, guest_disk_free)

#endif /* SYSTEM_GUEST_DISK_H */
