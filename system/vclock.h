/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's virtual clock.  Normally it is monotonic host time since
 * start; under -accel qtest it stands still and only qtest's clock_step
 * and clock_set move it, so tests decide when guest time passes.
 */
#ifndef SYSTEM_VCLOCK_H
#define SYSTEM_VCLOCK_H

#include <stdbool.h>
#include <stdint.h>

void vclock_init(bool manual);
int64_t vclock_get_ns(void);

/* Manual mode: advance to @dest_ns; the clock never goes back. */
void vclock_warp(int64_t dest_ns);

#endif /* SYSTEM_VCLOCK_H */
