/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The options management tools pass for the board and the process that
 * ask for nothing qmpd lacks: -overcommit, -rtc, -boot, -no-acpi,
 * -no-shutdown, -audiodev and -msg, checked as QEMU checks them.
 */
#ifndef SYSTEM_OPTIONS_BOARD_H
#define SYSTEM_OPTIONS_BOARD_H

#include <stdbool.h>
#include <stdio.h>

#include "qapi/error.h"
#include "system/options.h"

bool board_opt_overcommit(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_rtc(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_boot(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_no_acpi(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_no_shutdown(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_audiodev(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_msg(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_smp(QmpdOptions *o, const char *arg, Error **errp);
bool board_opt_cpu(QmpdOptions *o, const char *arg, Error **errp);

/* What depends on the machine type, once every option is read. */
bool board_opts_check(const MachineConfig *mc, Error **errp);

/* Start a message on @f: QEMU's -msg timestamp=on prefix, if asked. */
void board_msg_begin(FILE *f);

#endif /* SYSTEM_OPTIONS_BOARD_H */
