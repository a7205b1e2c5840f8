/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The drives a board makes by default (QEMU 7.2 without -nodefaults) and
 * the place of the board's devices in /machine/unattached.
 */
#ifndef SYSTEM_BOARD_DRIVES_H
#define SYSTEM_BOARD_DRIVES_H

#include <stdbool.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"
#include "qapi/schema.h"

/*
 * What the board has besides its drives: @defaults (no -nodefaults),
 * @vga (no -vga none), @serial_given (a -serial, which replaces the
 * default serial port), @devices (DeviceOpt *, the -device options).
 */
void board_drives_config(bool defaults, bool vga, bool serial_given,
                         const GPtrArray *devices);

/* device[N] of the board's first IDE device in /machine/unattached. */
unsigned board_first_ide_device(void);

/*
 * The default drives after the command line's: the IDE CD-ROM at index
 * 2 unless a drive sits there, floppy0 (pc) with its floppy device, sd0.
 */
bool board_add_default_drives(QapiSchema *schema, Error **errp);

/* The floppy device's QOM path, or NULL; its qom-get (false: not it). */
const char *board_floppy_qom_path(void);
bool board_floppy_qom_get(const char *path, const char *prop, json_t **ret,
                          Error **errp);

#endif
