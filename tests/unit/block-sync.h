/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Blocking helpers the block layer's unit tests share: they run the
 * main loop until the block layer is done.
 */
#ifndef TESTS_UNIT_BLOCK_SYNC_H
#define TESTS_UNIT_BLOCK_SYNC_H

#include <jansson.h>

#include "block/core/block.h"

/*
 * Open the node @options describe (taken), writable; the test fails
 * with the error's message if it cannot be opened.
 */
BlockNode *test_open_sync(json_t *options);

/* Drop the test's reference to @bn and wait until it is closed. */
void test_close_sync(BlockNode *bn);

#endif /* TESTS_UNIT_BLOCK_SYNC_H */
