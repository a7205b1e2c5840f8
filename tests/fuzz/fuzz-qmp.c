/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: arbitrary bytes arrive on a real QMP session (a
 * socketpair into the monitor code), are parsed, dispatched to the real
 * handlers and answered.  Each input is one client connection.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "block/core/block.h"
#include "migration/channel.h"
#include "monitor/monitor.h"
#include "qapi/schema.h"
#include "system/handlers.h"
#include "system/machine.h"
#include "system/runstate.h"
#include "util/confine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *scratch;       /* the working directory, kept for the run */

static QapiSchema *fuzz_schema(void)
{
    static QapiSchema *s;
    static MachineConfig mc = {
        .type = "pc-i440fx-7.2", .accel = "tcg",
        .ram_size = 128 << 20, .maxram_size = 128 << 20,
    };

    if (!s) {
        Error *err = NULL;

        s = qapi_schema_load(&err);
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
        g_assert(qapi_check_handlers(s, NULL) && mon_check(s, NULL));
        machine_set_config(&mc);
        runstate_init(RUN_STATE_RUNNING);
    }
    return s;
}

static void drain(int fd)
{
    char buf[65536];

    while (read(fd, buf, sizeof(buf)) > 0) {
        /* discard replies */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    QapiSchema *s = fuzz_schema();
    g_autofree char *spec = NULL;
    Chardev *chr;
    size_t off = 0;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv) < 0) {
        return 0;
    }
    spec = g_strdup_printf("socket,id=fuzz,fd=%d", sv[0]);
    chr = chardev_parse(spec, NULL);
    g_assert(chr && chardev_open(chr, NULL));
    mon_init(s);
    g_assert(mon_add(chr, MON_MODE_CONTROL, size & 1, NULL));
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);

        if (n > 0) {
            off += n;
        } else if (n < 0 && errno != EAGAIN) {
            break;
        }
        drain(sv[1]);
        while (g_main_context_iteration(NULL, FALSE)) {
            drain(sv[1]);
        }
    }
    shutdown(sv[1], SHUT_WR);
    while (g_main_context_iteration(NULL, FALSE)) {
        drain(sv[1]);
    }
    mon_cleanup();
    close(sv[1]);
    return 0;
}
