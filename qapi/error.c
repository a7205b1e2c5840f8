/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Error objects: created where a failure is understood, carried up by
 * pointer, consumed exactly once by the QMP or HMP front end.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qapi/error.h"

struct Error {
    ErrorClass cls;
    char *msg;
    GString *hint;
};

static const char *const error_class_names[] = {
    [ERROR_CLASS_GENERIC_ERROR] = "GenericError",
    [ERROR_CLASS_COMMAND_NOT_FOUND] = "CommandNotFound",
    [ERROR_CLASS_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
    [ERROR_CLASS_DEVICE_NOT_FOUND] = "DeviceNotFound",
    [ERROR_CLASS_KVM_MISSING_CAP] = "KVMMissingCap",
};

static void error_setv(Error **errp, ErrorClass cls, const char *suffix,
                       const char *fmt, va_list ap)
{
    Error *err;

    if (!errp) {
        return;
    }
    g_assert(*errp == NULL);
    err = g_new0(Error, 1);
    err->cls = cls;
    err->msg = g_strdup_vprintf(fmt, ap);
    if (suffix) {
        char *full = g_strconcat(err->msg, ": ", suffix, NULL);
        g_free(err->msg);
        err->msg = full;
    }
    *errp = err;
}

void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, ERROR_CLASS_GENERIC_ERROR, NULL, fmt, ap);
    va_end(ap);
}

void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, cls, NULL, fmt, ap);
    va_end(ap);
}

void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, ERROR_CLASS_GENERIC_ERROR,
               os_errno ? g_strerror(os_errno) : NULL, fmt, ap);
    va_end(ap);
}

void error_take_gerror(Error **errp, GError *gerr)
{
    error_setg(errp, "%s", gerr->message);
    g_error_free(gerr);
}

void error_append_hint(Error *const *errp, const char *fmt, ...)
{
    va_list ap;

    if (!errp || !*errp) {
        return;
    }
    if (!(*errp)->hint) {
        (*errp)->hint = g_string_new(NULL);
    }
    va_start(ap, fmt);
    g_string_append_vprintf((*errp)->hint, fmt, ap);
    va_end(ap);
}

void error_prepend(Error *const *errp, const char *fmt, ...)
{
    va_list ap;
    char *prefix;
    char *full;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    full = g_strconcat(prefix, (*errp)->msg, NULL);
    g_free(prefix);
    g_free((*errp)->msg);
    (*errp)->msg = full;
}

void error_propagate(Error **dst, Error *local)
{
    if (!local) {
        return;
    }
    if (dst && !*dst) {
        *dst = local;
    } else {
        error_free(local);
    }
}

void error_propagate_prepend(Error **dst, Error *local, const char *fmt, ...)
{
    va_list ap;
    char *prefix;
    char *full;

    if (!local) {
        return;
    }
    if (dst && !*dst) {
        va_start(ap, fmt);
        prefix = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        full = g_strconcat(prefix, local->msg, NULL);
        g_free(prefix);
        g_free(local->msg);
        local->msg = full;
    }
    error_propagate(dst, local);
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

const char *error_get_hint(const Error *err)
{
    return err->hint ? err->hint->str : NULL;
}

ErrorClass error_get_class(const Error *err)
{
    return err->cls;
}

const char *error_class_name(ErrorClass cls)
{
    g_assert((unsigned)cls < G_N_ELEMENTS(error_class_names));
    return error_class_names[cls];
}

void error_free(Error *err)
{
    if (!err) {
        return;
    }
    g_free(err->msg);
    if (err->hint) {
        g_string_free(err->hint, TRUE);
    }
    g_free(err);
}

void error_report_exit(Error *err)
{
    fprintf(stderr, "qmpd: %s\n", error_get_pretty(err));
    error_free(err);
    exit(1);
}
