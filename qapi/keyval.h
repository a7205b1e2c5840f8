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

/*
 * Turn the objects of @root whose keys are 0..n-1 into lists, as
 * keyval_parse() does (for options built key by key, as -drive's).
 * False with @errp set when indices are missing or mixed with names.
 */
bool keyval_make_lists(json_t *root, Error **errp);

#endif /* QAPI_KEYVAL_H */
