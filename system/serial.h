/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's serial ports (-serial): the board's isa-serial devices on
 * their chardevs.
 */
#ifndef SYSTEM_SERIAL_H
#define SYSTEM_SERIAL_H

#include "monitor/chardev.h"

/*
 * Attach the next serial port to @chr (opened; taken).  Main loop
 * only, before the board's devices are made.
 */
void serial_attach(Chardev *chr);

/* How many isa-serial devices the board makes (pc and q35: up to 4). */
unsigned serial_isa_devices(void);

/* Close every port and its chardev. */
void serial_cleanup(void);

#endif /* SYSTEM_SERIAL_H */
