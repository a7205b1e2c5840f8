/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: one human monitor command line, parsed and run
 * against the real command table and handlers.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "block/core/block.h"
#include "migration/channel.h"
#include "monitor/monitor-int.h"
#include "system/handlers.h"
#include "system/machine.h"
#include "system/runstate.h"
#include "util/confine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *scratch;       /* the working directory, kept for the run */

static void done_cb(void *opaque, const char *output)
{
    *(bool *)opaque = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static QapiSchema *s;
    static MachineConfig mc = {
        .type = "pc-q35-7.2", .accel = "qtest",
        .ram_size = 64 << 20, .maxram_size = 64 << 20, .name = "f",
    };
    g_autofree char *line = g_strndup((const char *)data, size);
    bool done = false;

    if (!s) {
        s = qapi_schema_load(NULL);
        g_assert(s);
        /* block commands may create files: keep them in a scratch dir */
        scratch = g_dir_make_tmp("qmpd-fuzz-XXXXXX", NULL);
        g_assert(scratch && chdir(scratch) == 0);
        g_assert(bdrv_init(NULL));
        qmpd_register_handlers(s);
        /* the fuzzer's input must not reach outside its scratch dir:
         * no exec:/fd: migrations, no files written outside it */
        mig_channel_forbid_outside();
        fs_confine();
        g_assert(hmp_check_table(s, NULL));
        mon_init(s);
        machine_set_config(&mc);
        runstate_init(RUN_STATE_PAUSED);
    }
    /* "quit" would only set the exit flag; keep the run state varied */
    hmp_run_line(line, done_cb, &done);
    /*
     * A command whose QMP side has asynchronous steps (drive_backup
     * opening its target) answers from the main loop; one that never
     * answers is a hang, which libFuzzer's -timeout reports.
     */
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
    }
    return 0;
}
