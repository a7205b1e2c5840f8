/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -drive and -blockdev, as QEMU takes them.
 */
#ifndef SYSTEM_DRIVE_H
#define SYSTEM_DRIVE_H

#include <stdbool.h>

#include <glib.h>

#include "block/core/block.h"
#include "monitor/hmp.h"
#include "qapi/error.h"
#include "qapi/schema.h"

/* The bare flags -drive takes ("help": help=on). */
extern const char *const drive_flags[];

/* -drive @arg: nodes, a backend named by id, a device for if=virtio. */
bool drive_add(QapiSchema *schema, const char *arg, Error **errp);

/*
 * HMP drive_add: the drive -drive @arg makes, kept when its interface is
 * none (*@refused 0).  QEMU hot-adds no other: such a drive is made (so
 * every error comes as -drive gives it) and dropped again, and
 * *@refused is QEMU's number for its interface, which QEMU's refusal
 * line prints.  Main loop only.
 */
bool drive_hot_add(QapiSchema *schema, const char *arg, int *refused,
                   Error **errp);

/*
 * HMP drive_add -n: a monitor-owned node from block options @arg
 * (BlockdevOptions, flat and dotted), which must name its node-name.
 */
bool drive_add_node(QapiSchema *schema, const char *arg, Error **errp);

/* QEMU's "Supported formats" lines (format=help) for qmpd's drivers. */
void drive_print_formats(GString *out);

/*
 * The ide-hd devices of the -drive if=ide (-hda…) given, made by the
 * board (as QEMU) before any -device; the error names the -drive.
 */
bool drive_add_board_devices(Error **errp);

/* Whether an if=ide -drive sits at IDE @bus, @unit. */
bool drive_ide_slot_taken(int bus, int unit);

/*
 * An empty drive @id of the board's own (floppy0, sd0): a backend as
 * -drive without file= makes, connected to the board.
 */
BlockBackend *drive_add_empty(const char *id, Error **errp);

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

/* HMP's drive_add (drive-hmp.c), which makes drives against @schema. */
void drive_hmp_init(QapiSchema *schema);
extern const HmpHandler drive_hmp_handlers[];
extern const size_t drive_hmp_handlers_count;

#endif /* SYSTEM_DRIVE_H */
