/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memory-backend-ram objects and the machine's RAM: -machine
 * memory-backend=ID makes the guest RAM that object (its size is the
 * RAM size; -m must agree), else the machine's default backend is
 * created under /objects ("pc.ram" for pc and q35, "ram" for none when
 * -m is given), as QEMU 7.2 links them.
 */
#ifndef SYSTEM_MEMORY_BACKEND_H
#define SYSTEM_MEMORY_BACKEND_H

#include <stdbool.h>

#include "qapi/error.h"
#include "system/machine.h"
#include "system/memory.h"

/*
 * Link @mc's RAM to its backend once every -object exists (QEMU's
 * checks and messages); @m is what -m said.  May change the RAM size.
 */
bool memory_backend_link(MachineConfig *mc, const MemoryOpts *m,
                         Error **errp);

#endif /* SYSTEM_MEMORY_BACKEND_H */
