/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's buses and the addresses of the devices on them, as QEMU
 * 7.2 assigns and checks them: PCI slots and functions on the root bus
 * (pci.0 on pc, pcie.0 on q35, beside the chipset's own functions), IDE
 * units on the machine's IDE buses, SCSI channel/target/LUN on each
 * virtio-scsi-pci controller's bus.
 */
#ifndef SYSTEM_GUEST_BUS_H
#define SYSTEM_GUEST_BUS_H

#include <stdbool.h>

#include "qapi/error.h"
#include "system/guest-props.h"

typedef struct GuestBus GuestBus;

/*
 * The buses of machine type @machine (canonical name) and the devices
 * it has of its own; with @defaults (no -nodefaults), QEMU's default
 * VGA (when @vga) and NIC, which take the first PCI slots.  Called once
 * before any device is added; without it the machine has no defaults.
 */
void guest_bus_init(const char *machine, bool defaults, bool vga);

/* Forget every bus (at exit). */
void guest_bus_cleanup(void);

/*
 * The bus a @drv device goes on: the bus named @name ("pci.0", "ide.1",
 * "scsi0.0"; a trailing '/' is allowed), or with @name NULL the one
 * QEMU picks (the root bus, the machine's last IDE bus, the newest
 * SCSI controller's bus).  NULL with QEMU's message when there is no
 * such bus or it is of another type.
 */
GuestBus *guest_bus_find(const char *name, GuestDriver drv, Error **errp);

const char *guest_bus_name(const GuestBus *b);

/*
 * QEMU's number for unit @unit of IDE bus @b: the machine's IDE buses,
 * in the order it made them, count two units each, from 1 (a drive
 * without a serial is "QM%05d" of it).
 */
unsigned guest_bus_ide_number(const GuestBus *b, uint32_t unit);

/* Devices can be plugged into @b (and unplugged) while the guest runs. */
bool guest_bus_hotpluggable(const GuestBus *b);

/*
 * The SCSI bus of a new virtio-scsi-pci controller: "@ctrl_id.0", or
 * QEMU's automatic name "scsi.N" when the controller has no id.
 */
GuestBus *guest_bus_new_scsi(const char *ctrl_id);

/* Remove a controller's bus (its devices must be gone). */
void guest_bus_free(GuestBus *b);

/*
 * The address a @drv device would take on @b: the
 * one @p asks for, checked, or the first free one, written back to @p
 * (addr, unit, or channel/scsi-id/lun).  @hot: the device is hot-plugged.
 * Nothing is taken yet; QEMU's message when the address is refused.
 */
bool guest_bus_place(GuestBus *b, GuestDriver drv, bool hot,
                     GuestDevProps *p, Error **errp);

/* Take the address guest_bus_place() gave @p for @owner. */
void guest_bus_attach(GuestBus *b, GuestDriver drv, const char *id,
                      const GuestDevProps *p, const void *owner);

/* Give back what @owner took on @b. */
void guest_bus_detach(GuestBus *b, const void *owner);

#endif /* SYSTEM_GUEST_BUS_H */
