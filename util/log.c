/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Operator logging to stderr (prefixed with the program name, as QEMU
 * prints its own diagnostics) or to syslog once daemonized.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "util/log.h"

static bool log_syslog;
static int log_level = LOG_WARNING;

void qmpd_log_use_syslog(bool on)
{
    if (on && !log_syslog) {
        openlog("qmpd", LOG_PID, LOG_DAEMON);
    }
    log_syslog = on;
}

void qmpd_log_set_level(int level)
{
    log_level = level;
}

bool qmpd_log_enabled(int level)
{
    return level <= log_level;
}

void qmpd_log(int level, const char *fmt, ...)
{
    va_list ap;

    if (!qmpd_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    if (log_syslog) {
        vsyslog(level, fmt, ap);
    } else {
        fputs("qmpd: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
}
