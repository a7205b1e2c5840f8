/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The HMP output printers (hmp-cmds.c), looked up by the names the
 * schema's hmp entries give in "print".
 */
#ifndef MONITOR_HMP_INT_H
#define MONITOR_HMP_INT_H

#include <glib.h>
#include <jansson.h>

/* Append the human form of command result @ret (borrowed) to @out. */
typedef void HmpPrinterFn(GString *out, const json_t *ret);

typedef struct HmpPrinter {
    const char *name;
    HmpPrinterFn *fn;
} HmpPrinter;

extern const HmpPrinter hmp_printers[];
extern const size_t hmp_printers_count;

#endif /* MONITOR_HMP_INT_H */
