/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -drive and -blockdev, as QEMU takes them.
 */
#ifndef SYSTEM_DRIVE_H
#define SYSTEM_DRIVE_H

#include <stdbool.h>

#include "qapi/error.h"
#include "qapi/schema.h"

/* The bare flags -drive takes ("help": help=on). */
extern const char *const drive_flags[];

/* -drive @arg: nodes, a backend named by id, a device for if=virtio. */
bool drive_add(QapiSchema *schema, const char *arg, Error **errp);

/*
 * The ide-hd devices of the -drive if=ide (-hda…) given, made by the
 * board (as QEMU) before any -device; the error names the -drive.
 */
bool drive_add_board_devices(Error **errp);

/*
 * The virtio-blk-pci devices of the -drive if=virtio given, created (as
 * QEMU does) after every -device; the error names the -drive.
 */
bool drive_add_devices(Error **errp);

/* Was backend @id made by a -drive with a device of its own (if=virtio,
 * if=ide)? */
bool drive_auto_connected(const char *id);

/* -blockdev @arg (keyval or JSON): a monitor-owned node. */
bool blockdev_add_arg(QapiSchema *schema, const char *arg, Error **errp);

#endif /* SYSTEM_DRIVE_H */
