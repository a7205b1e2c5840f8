/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one error type of qmpd: a class (QEMU's ErrorClass, as it appears
 * on the wire), a message, and an optional hint that only HMP shows.
 * Rules (docs/style.md section 6): a callee never reads *errp, leaves it
 * untouched on success and sets exactly one error on failure.
 */
#ifndef QAPI_ERROR_H
#define QAPI_ERROR_H

#include <stdbool.h>

#include <glib.h>

typedef enum ErrorClass {
    ERROR_CLASS_GENERIC_ERROR,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_ACTIVE,
    ERROR_CLASS_DEVICE_NOT_FOUND,
    ERROR_CLASS_KVM_MISSING_CAP,
} ErrorClass;

typedef struct Error Error;

/* Set a GenericError; does nothing when @errp is NULL. */
void error_setg(Error **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Set an error of class @cls. */
void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* Set a GenericError "<message>: <strerror(os_errno)>" as QEMU does. */
void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* Set a GenericError with @gerr's message; @gerr is freed. */
void error_take_gerror(Error **errp, GError *gerr);

/* Add text to the hint of the error in *@errp (HMP prints hints). */
void error_append_hint(Error *const *errp, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* Prefix the message of the error in *@errp. */
void error_prepend(Error *const *errp, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/*
 * Move @local into @dst.  If @dst is NULL or already holds an error,
 * @local is freed (the first error wins).
 */
void error_propagate(Error **dst, Error *local);

/* error_propagate(), prefixing @local's message when it is kept. */
void error_propagate_prepend(Error **dst, Error *local, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

const char *error_get_pretty(const Error *err);
const char *error_get_hint(const Error *err); /* NULL when none */
ErrorClass error_get_class(const Error *err);

/* The wire name of @cls ("GenericError", ...). */
const char *error_class_name(ErrorClass cls);

void error_free(Error *err);

/* Print "qmpd: <message>" and exit(1); for startup configuration only. */
void error_report_exit(Error *err) G_GNUC_NORETURN;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Error, error_free)

#endif /* QAPI_ERROR_H */
