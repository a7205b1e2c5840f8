/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <glib.h>

#include "qapi/error.h"
#include "tests/unit/block-sync.h"

BlockNode *test_open_sync(json_t *options)
{
    Error *err = NULL;
    BlockNode *bn = bdrv_open_options(options, false, &err);

    json_decref(options);
    if (!bn) {
        print_error("%s\n", error_get_pretty(err));
        error_free(err);
    }
    assert_non_null(bn);
    return bn;
}

static void closed_cb(void *opaque, int ret)
{
    *(bool *)opaque = true;
}

void test_close_sync(BlockNode *bn)
{
    bool done = false;

    bdrv_unref(bn);
    bdrv_wait_closed(closed_cb, &done);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
    }
}
