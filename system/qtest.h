/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's qtest protocol (-qtest), for harnesses that drive QEMU that
 * way: qmpd connects to the harness's socket and answers the commands a
 * storage-only machine can honour.
 */
#ifndef SYSTEM_QTEST_H
#define SYSTEM_QTEST_H

#include <stdbool.h>

#include "monitor/chardev.h"
#include "qapi/error.h"

/*
 * Serve qtest on @chr (opened; taken).  @log_path, when non-NULL, gets
 * QEMU's qtest log ("[R +secs] cmd" / "[S +secs] reply").
 */
bool qtest_start(Chardev *chr, const char *log_path, Error **errp);

/* Whether a qtest harness drives qmpd (-qtest served), QEMU's test. */
bool qtest_driver(void);

/* Close the qtest connection and log. */
void qtest_stop(void);

#endif /* SYSTEM_QTEST_H */
