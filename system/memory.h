/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's RAM size as -m gives it: size, and the hotplug limits
 * slots= and maxmem=, checked as QEMU 7.2 checks them.
 */
#ifndef SYSTEM_MEMORY_H
#define SYSTEM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"
#include "system/machine.h"

/* What -m said, before the machine type is known. */
typedef struct MemoryOpts {
    bool given;             /* -m was given */
    uint64_t size;          /* 0: the machine's default */
    bool size_in_mib;       /* given without a suffix */
    bool has_slots;
    uint64_t slots;
    bool has_maxmem;
    uint64_t maxmem;
} MemoryOpts;

/* Parse one -m argument into @m (QEMU's messages, without location). */
bool memory_parse(MemoryOpts *m, const char *arg, Error **errp);

/*
 * Set @mc's RAM size, slots and maximum from @m for its machine type:
 * QEMU's default and rounding of the size, the maxmem/slots rules, and
 * for the pc machines the checks QEMU makes when it lays out their
 * address space (slot count, maxmem alignment, the 40-bit physical
 * address limit of the default CPU).
 */
bool memory_apply(MachineConfig *mc, const MemoryOpts *m, Error **errp);

/*
 * How much of @mc's RAM the machine maps from guest physical address 0;
 * the pc machines map the rest from 4 GiB (QEMU 7.2's split: q35 keeps
 * 2 GiB below 4 GiB once RAM reaches 2.75 GiB, i440fx 3 GiB once it
 * reaches 3.5 GiB).  Every other machine maps it all from 0.
 */
uint64_t memory_below_4g_size(const MachineConfig *mc);

#endif /* SYSTEM_MEMORY_H */
