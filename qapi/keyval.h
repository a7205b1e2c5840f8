/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's keyval syntax, "key=value,a.b=c,list.0=x", as used by
 * -blockdev and -device: dotted keys build nested objects, numeric
 * components build lists, ",," is a literal comma, the last of repeated
 * keys wins.  Values stay strings; qapi_validate_keyval() types them.
 */
#ifndef QAPI_KEYVAL_H
#define QAPI_KEYVAL_H

#include <jansson.h>

#include "qapi/error.h"

/*
 * Parse @params.  A first element without '=' is the value of
 * @implied_key (when non-NULL).  Returns a new object or NULL with
 * @errp set.
 */
json_t *keyval_parse(const char *params, const char *implied_key,
                     Error **errp);

#endif /* QAPI_KEYVAL_H */
