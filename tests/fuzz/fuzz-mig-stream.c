/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: bytes as an incoming migration stream, loaded into
 * a 64 MiB guest's RAM the way a destination loads them (header,
 * records and their checksums, CONFIG, RAM entries, END), in memory.
 * Whatever the bytes, the load ends with END, an early end or a
 * refusal, never a crash; RAM is emptied between inputs.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "migration/migration-int.h"
#include "system/machine.h"
#include "system/physmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static MachineConfig mc = {
        .type = "pc-i440fx-7.2", .accel = "qtest",
        .ram_size = 64 << 20, .maxram_size = 64 << 20,
    };
    static bool ready;
    Error *err = NULL;

    if (!ready) {
        machine_set_config(&mc);
        ready = true;
    }
    if (mig_in_load_bytes(data, size, &err) < 0) {
        /* the reason is what a destination prints: one line of text */
        g_assert(*error_get_pretty(err) && !strchr(error_get_pretty(err),
                                                   '\n'));
        error_free(err);
    }
    physmem_reset();
    return 0;
}
