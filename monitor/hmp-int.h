/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The HMP output printers (hmp-cmds.c), looked up by the names the
 * schema's hmp entries give in "print".
 */
#ifndef MONITOR_HMP_INT_H
#define MONITOR_HMP_INT_H

#include <glib.h>
#include <jansson.h>

#include "monitor/hmp.h"

extern const HmpPrinter hmp_printers[];
extern const size_t hmp_printers_count;

/* hmp-block.c */
extern const HmpHandler block_hmp_handlers[];
extern const size_t block_hmp_handlers_count;
extern const HmpPrinter block_hmp_printers[];
extern const size_t block_hmp_printers_count;

/* hmp-block-cmds.c */
extern const HmpHandler block_cmds_hmp_handlers[];
extern const size_t block_cmds_hmp_handlers_count;

/* hmp-media.c */
extern const HmpHandler media_hmp_handlers[];
extern const size_t media_hmp_handlers_count;

/* hmp-migration.c */
extern const HmpHandler mig_hmp_handlers[];
extern const size_t mig_hmp_handlers_count;
extern const HmpPrinter mig_hmp_printers[];
extern const size_t mig_hmp_printers_count;

/* hmp-nbd.c */
extern const HmpHandler nbd_hmp_handlers[];
extern const size_t nbd_hmp_handlers_count;

#endif /* MONITOR_HMP_INT_H */
