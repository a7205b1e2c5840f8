/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every subsystem's QMP and HMP handler tables, attached to the schema
 * in one place so qmpd, the schema test and the fuzzers serve the same
 * commands.
 */
#include "config.h"

#include "block/jobs/blockjob.h"
#include "block/jobs/job.h"
#include "block/jobs/transaction.h"
#include "block/qmp/qmp-block.h"
#include "migration/migration.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "monitor/qemu-io.h"
#include "nbd/server.h"
#include "system/cpu.h"
#include "system/drive.h"
#include "system/guest.h"
#include "system/handlers.h"
#include "system/iothread.h"
#include "system/machine.h"
#include "system/machine-caps.h"
#include "system/object.h"
#include "system/qom-tree.h"
#include "system/qom.h"
#include "system/runstate.h"
#include "system/trace-cmds.h"
#include "system/workload.h"

void qmpd_register_handlers(QapiSchema *s)
{
    static bool hmp_done;

    qapi_register_handlers(s, mon_qmp_handlers, mon_qmp_handlers_count);
    qapi_register_handlers(s, mon_fd_qmp_handlers,
                           mon_fd_qmp_handlers_count);
    qapi_register_handlers(s, runstate_qmp_handlers,
                           runstate_qmp_handlers_count);
    qapi_register_handlers(s, machine_qmp_handlers,
                           machine_qmp_handlers_count);
    qapi_register_handlers(s, cpu_qmp_handlers, cpu_qmp_handlers_count);
    qapi_register_handlers(s, machine_caps_qmp_handlers,
                           machine_caps_qmp_handlers_count);
    qapi_register_handlers(s, block_qmp_handlers, block_qmp_handlers_count);
    qapi_register_handlers(s, qemu_io_qmp_handlers,
                           qemu_io_qmp_handlers_count);
    qapi_register_handlers(s, media_qmp_handlers, media_qmp_handlers_count);
    qapi_register_handlers(s, throttle_qmp_handlers,
                           throttle_qmp_handlers_count);
    qapi_register_handlers(s, reopen_qmp_handlers,
                           reopen_qmp_handlers_count);
    qapi_register_handlers(s, dirty_bitmap_qmp_handlers,
                           dirty_bitmap_qmp_handlers_count);
    qapi_register_handlers(s, create_qmp_handlers, create_qmp_handlers_count);
    qapi_register_handlers(s, job_qmp_handlers, job_qmp_handlers_count);
    qapi_register_handlers(s, blockjob_qmp_handlers,
                           blockjob_qmp_handlers_count);
    qapi_register_handlers(s, stream_qmp_handlers, stream_qmp_handlers_count);
    qapi_register_handlers(s, commit_qmp_handlers, commit_qmp_handlers_count);
    qapi_register_handlers(s, transaction_qmp_handlers,
                           transaction_qmp_handlers_count);
    qapi_register_handlers(s, mirror_qmp_handlers,
                           mirror_qmp_handlers_count);
    qapi_register_handlers(s, backup_qmp_handlers, backup_qmp_handlers_count);
    qapi_register_handlers(s, guest_qmp_handlers, guest_qmp_handlers_count);
    qapi_register_handlers(s, mig_qmp_handlers, mig_qmp_handlers_count);
    qapi_register_handlers(s, nbd_server_qmp_handlers,
                           nbd_server_qmp_handlers_count);
    qapi_register_handlers(s, nbd_export_qmp_handlers,
                           nbd_export_qmp_handlers_count);
    qapi_register_handlers(s, workload_qmp_handlers,
                           workload_qmp_handlers_count);
    qapi_register_handlers(s, qom_qmp_handlers, qom_qmp_handlers_count);
    qapi_register_handlers(s, qom_tree_qmp_handlers,
                           qom_tree_qmp_handlers_count);
    qapi_register_handlers(s, object_qmp_handlers,
                           object_qmp_handlers_count);
    qapi_register_handlers(s, iothread_qmp_handlers,
                           iothread_qmp_handlers_count);
    qapi_register_handlers(s, trace_qmp_handlers, trace_qmp_handlers_count);
    drive_hmp_init(s);
    job_trace_register();
    mig_trace_register();
    mon_trace_register();
    nbd_trace_register();
    /* HMP tables are process-wide; a second schema reuses them */
    if (!hmp_done) {
        hmp_register_handlers(guest_hmp_handlers, guest_hmp_handlers_count);
        hmp_register_handlers(drive_hmp_handlers, drive_hmp_handlers_count);
        hmp_register_handlers(trace_hmp_handlers, trace_hmp_handlers_count);
        hmp_done = true;
    }
}
