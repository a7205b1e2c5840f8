/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An interpreter for qemu-io's command language (read, write, aio_*,
 * discard, alloc, map, break/resume/wait_break, ...), as HMP's
 * "qemu-io DEVICE COMMAND" runs it.  Commands print what qemu-io 7.2
 * prints, byte for byte apart from timings, and never block the main
 * loop: a command that does I/O finishes from the I/O's completion.
 */
#ifndef MONITOR_QEMU_IO_H
#define MONITOR_QEMU_IO_H

#include <stdbool.h>

#include "block/core/block.h"
#include "qapi/dispatch.h"

/*
 * What a command works on: exactly one of @blk and @node is set.  I/O
 * goes through the backend (bounds-checked, counted in the backend's
 * statistics) when @blk is set, else straight to @node (bounds-checked
 * here, as QEMU's temporary backend would).  Control commands (alloc,
 * map, break, ...) use @node or the backend's root.  With @qdev (a
 * backend target only, qemu-io -d) reads, writes, discards and flushes
 * are the guest's: they go through the attached device (blk_dev_io()),
 * its checks and its error policy.
 */
typedef struct QemuIoTarget {
    BlockBackend *blk;
    BlockNode *node;
    bool qdev;
} QemuIoTarget;

/*
 * What a command printed, split as qemu-io splits it: @out is its
 * stdout, @err its stderr (unknown command, bad argument count), @mon
 * what QEMU reports with error_report(), which lands on the monitor
 * that ran the command.  "\n" line ends; "" when nothing.  @failed is
 * true when qemu-io would return an error: a bad command or argument, a
 * failed request, a read -P mismatch.
 */
typedef struct QemuIoResult {
    const char *out;
    const char *err;
    const char *mon;
    bool failed;
} QemuIoResult;

/* A command has finished; @r is borrowed for the duration of the call. */
typedef void QemuIoDoneCb(void *opaque, const QemuIoResult *r);

/* Where completions of aio_read/aio_write print; one call per report. */
typedef void QemuIoSink(const char *text);

/*
 * Run one qemu-io command line (split on spaces, no quoting) on @t,
 * which is copied.  @done(@opaque, ...) is called exactly once, later,
 * from the main loop, never inside this call.  aio_read and aio_write
 * finish as soon as the request is started; its report goes to the
 * async sink when it completes.  aio_flush finishes once every aio
 * request earlier commands started on the same target has completed.
 *
 * A node target is referenced while the command (and each aio request)
 * runs.  A backend target must stay alive until @done and until its aio
 * requests have completed.  Main loop only.
 */
void qemu_io_run(const QemuIoTarget *t, const char *cmdline,
                 QemuIoDoneCb *done, void *opaque);

/*
 * Send aio completion reports to @sink; NULL restores the default,
 * which writes them to stdout (as QEMU prints qemu-io output on its own
 * stdout).  Main loop only.
 */
void qemu_io_set_async_sink(QemuIoSink *sink);

/* QMP's __com.qmpd_qemu-io: one qemu-io command line on a drive or node. */
extern const QapiHandler qemu_io_qmp_handlers[];
extern const size_t qemu_io_qmp_handlers_count;

#endif /* MONITOR_QEMU_IO_H */
