/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP commands and printers that live with the subsystem they serve
 * (the block layer's "info block", "qemu-io", the guest's "device_add").
 * The schema's "hmp" entries name them by "handler" and "print"; tables
 * are registered before mon_check().
 */
#ifndef MONITOR_HMP_H
#define MONITOR_HMP_H

#include <stddef.h>

#include <glib.h>
#include <jansson.h>

typedef struct HmpCall HmpCall;

/*
 * An HMP-only command: @args holds the parsed arguments (as QMP would
 * get them).  It appends its text ("\n" line ends) to hmp_call_out()
 * and calls hmp_call_finish() once, now or later from the main loop.
 */
typedef void HmpHandlerCb(HmpCall *call, const json_t *args);

typedef struct HmpHandler {
    const char *name;
    HmpHandlerCb *fn;
} HmpHandler;

/* Append the human form of command result @ret (borrowed) to @out. */
typedef void HmpPrinterFn(GString *out, const json_t *ret);

typedef struct HmpPrinter {
    const char *name;
    HmpPrinterFn *fn;
} HmpPrinter;

void hmp_register_handlers(const HmpHandler *h, size_t n);
void hmp_register_printers(const HmpPrinter *p, size_t n);

GString *hmp_call_out(HmpCall *call);
void hmp_call_finish(HmpCall *call);

/*
 * Finish @call by running the QMP command @command with @args (taken),
 * validated against the schema as QMP would: nothing printed on
 * success, "Error: <message>" and its hints on failure.
 */
void hmp_call_qmp(HmpCall *call, const char *command, json_t *args);

/* hmp_call_qmp(), with a failure printed bare, as QEMU's error_report(). */
void hmp_call_qmp_plain(HmpCall *call, const char *command, json_t *args);

#endif /* MONITOR_HMP_H */
