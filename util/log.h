/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Operator logging: one entry point, stderr or syslog chosen at startup.
 * Users get errors through Error and QMP replies; this is for whoever
 * runs the daemon.
 */
#ifndef UTIL_LOG_H
#define UTIL_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include <glib.h>

/* Route messages to syslog (true) or stderr (false, the default). */
void qmpd_log_use_syslog(bool on);

/* Messages above this priority (LOG_ERR..LOG_DEBUG) are dropped. */
void qmpd_log_set_level(int level);

/* True when @level would be written; guards costly debug formatting. */
bool qmpd_log_enabled(int level);

/* Write one line at @level (a syslog priority); no trailing newline. */
void qmpd_log(int level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#endif /* UTIL_LOG_H */
