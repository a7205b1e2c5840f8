/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The human monitor's argument syntax, read as QEMU 7.2 reads it: the
 * args_type notation of each command ("device:B,speed:o?"), words and
 * quoted strings, sizes whose default unit is MiB, integer expressions,
 * and option letters; with QEMU's message for each way a line can be
 * wrong.  Used by hmp.c; on its own so the unit tests and the fuzzer
 * reach it without a monitor.
 */
#ifndef MONITOR_HMP_PARSE_H
#define MONITOR_HMP_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/error.h"

/* isspace() in the C locale, which is what QEMU's parser skips. */
bool hmp_isspace(char c);

/* Skip what hmp_isspace() accepts. */
const char *hmp_skip_spaces(const char *p);

/*
 * A word (up to white space) or a double-quoted string with the escapes
 * \n \r \\ \' \" at *@pp, after white space; *@pp moves past it.  NULL
 * at the end of the line, or for a bad escape or a missing closing
 * quote: QEMU prints those two on its standard output, and so does
 * this.  Like QEMU's, the result keeps at most 1023 bytes.
 */
char *hmp_get_str(const char **pp);

/*
 * A size as HMP's "o" arguments take it (QEMU's qemu_strtosz_MiB): a
 * decimal number, a hexadecimal one (0x...) or one with a fraction,
 * then an optional suffix B, K, M, G, T, P or E (either case; powers of
 * 1024); without a suffix the unit is MiB.  *@end is where parsing
 * stopped.  0, -EINVAL or -ERANGE; *@result is set on success only.
 */
int hmp_strtosz_mib(const char *nptr, const char **end, uint64_t *result);

/*
 * An integer expression as HMP's "i" and "l" arguments take it: C
 * numbers (0x, leading 0 for octal), 'c' characters, unary + - ~,
 * * / % & | ^ + - and parentheses.  qmpd has no CPU, so no "$reg".
 * On error appends QEMU's message (with "\n") to @out and returns false.
 */
bool hmp_get_expr(const char **pp, int64_t *val, GString *out);

/*
 * Is @args_type made of the types hmp_parse_args() knows?  "key:T"
 * comma-separated, T one of s S B F (strings), i l (integers), o
 * (size), b (on/off), each optionally "?" (may be left out), or -X
 * (flag -X) and -Xs (option -X taking a value).
 */
bool hmp_args_type_check(const char *args_type, Error **errp);

/*
 * Parse the arguments at *@pp of the command @name (as QEMU names it in
 * messages, "stop|s") per @args_type into a new object of QMP-typed
 * members: strings, integers, booleans (flags are present only when
 * given).  NULL after appending QEMU's message to @out.
 */
json_t *hmp_parse_args(const char *name, const char *args_type,
                       const char **pp, GString *out);

#endif /* MONITOR_HMP_PARSE_H */
