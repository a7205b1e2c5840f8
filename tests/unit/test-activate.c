/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inactive nodes (block/core/activate.c): nodes opened while incoming
 * are inactive with their children, a device on one takes nothing and
 * an export cannot write it; activation wakes a node and its subtree
 * and takes the locks its users need, and one that another user of the
 * image prevents fails with the lock's error and leaves the nodes
 * inactive.  Two open file descriptions of one file in this process
 * stand for two processes: the image locks are OFD locks.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "block/core/block-int.h"
#include "qapi/qjson.h"

static char *dir;
static char *image;

static int setup(void **state)
{
    Error *err = NULL;
    FILE *f;

    assert_true(bdrv_init(&err));
    dir = g_dir_make_tmp("qmpd-activate-XXXXXX", NULL);
    assert_non_null(dir);
    image = g_build_filename(dir, "disk.img", NULL);
    f = fopen(image, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 1 << 20), 0);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    unlink(image);
    rmdir(dir);
    g_free(image);
    g_free(dir);
    return 0;
}

/* raw over the file of the image, named @name. */
static BlockNode *raw_node(const char *name)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s}}", "driver", "raw",
                          "node-name", name, "file", "driver", "file",
                          "filename", image);
    BlockNode *bn = bdrv_open_options(o, false, &err);

    json_decref(o);
    assert_non_null(bn);
    return bn;
}

/* A guest disk's backend on @bn. */
static BlockBackend *disk_on(BlockNode *bn)
{
    BlockBackend *blk = blk_new("", bn, NULL);

    assert_non_null(blk);
    assert_true(blk_attach_dev(blk, "/machine/peripheral/d", "d", NULL));
    return blk;
}

static void test_opened_inactive(void **state)
{
    BlockNode *bn;
    BlockBackend *blk;
    BlockBackend *exp;
    Error *err = NULL;

    bdrv_set_incoming(true);
    bn = raw_node("in");
    bdrv_set_incoming(false);
    assert_true(bdrv_is_inactive(bn));
    assert_true(bdrv_is_inactive(bdrv_file_child(bn)));
    blk = disk_on(bn);
    /* QEMU's disable_perm: the device waits for the activation */
    assert_false(bdrv_has_writers(bn));
    exp = blk_new_export(bn, true, &err);
    assert_null(exp);
    assert_string_equal(error_get_pretty(err), "Block node is read-only");
    g_clear_pointer(&err, error_free);

    assert_true(bdrv_activate(bn, &err));
    assert_false(bdrv_is_inactive(bn));
    assert_false(bdrv_is_inactive(bdrv_file_child(bn)));
    assert_true(bdrv_has_writers(bn));
    exp = blk_new_export(bn, true, &err);
    assert_non_null(exp);
    /* a node opened now is active */
    assert_true(bdrv_activate_all(&err));
    blk_delete(exp);
    blk_set_qdev(blk, NULL, NULL);
    blk_delete(blk);
    bdrv_unref(bn);
}

static void test_activation_refused(void **state)
{
    BlockNode *owner = raw_node("owner");
    BlockBackend *ob = disk_on(owner);
    BlockNode *in;
    BlockBackend *blk;
    Error *err = NULL;

    /* the image's other user (the source) writes it: opening is fine */
    bdrv_set_incoming(true);
    in = raw_node("in");
    blk = disk_on(in);
    assert_true(bdrv_is_inactive(in));

    /* the top node first, with its file: the write the disk needs */
    assert_false(bdrv_activate_all(&err));
    assert_string_equal(error_get_pretty(err), "Failed to get \"write\" lock");
    g_clear_pointer(&err, error_free);
    assert_true(bdrv_is_inactive(in));
    assert_true(bdrv_is_inactive(bdrv_file_child(in)));

    /* once the other user is gone, the image is ours */
    blk_set_qdev(ob, NULL, NULL);
    blk_delete(ob);
    bdrv_unref(owner);
    assert_true(bdrv_activate_all(&err));
    assert_false(bdrv_is_inactive(in));
    bdrv_set_incoming(false);
    blk_set_qdev(blk, NULL, NULL);
    blk_delete(blk);
    bdrv_unref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opened_inactive),
        cmocka_unit_test(test_activation_refused),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
