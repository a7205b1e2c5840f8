/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/confine.c: nothing changes until fs_confine(); then only relative
 * paths without '..' may be written, created or removed, and reads go
 * anywhere.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "util/confine.h"

static void test_confine(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("qmpd-confine-XXXXXX", NULL);
    g_autofree char *outside = g_build_filename(dir, "outside", NULL);
    int fd;

    (void)state;
    assert_non_null(dir);
    assert_true(fs_may_write("/anything"));
    fd = fs_open(outside, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chdir(dir), 0);

    fs_confine();
    assert_false(fs_may_write(outside));
    assert_false(fs_may_write("../x"));
    assert_false(fs_may_write("a/../../x"));
    assert_false(fs_may_write("a//.."));
    assert_true(fs_may_write("a/b"));
    assert_true(fs_may_write("..x/y"));
    assert_true(fs_may_write("./x"));

    /* reading is not confined; writing, creating, truncating, removing is */
    fd = fs_open(outside, O_RDONLY, 0);
    assert_true(fd >= 0);
    close(fd);
    errno = 0;
    assert_int_equal(fs_open(outside, O_WRONLY, 0), -1);
    assert_int_equal(errno, EACCES);
    assert_int_equal(fs_open(outside, O_RDONLY | O_TRUNC, 0), -1);
    assert_int_equal(fs_unlink(outside), -1);
    assert_int_equal(errno, EACCES);
    assert_true(g_file_test(outside, G_FILE_TEST_EXISTS));

    fd = fs_open("inside", O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(fs_unlink("inside"), 0);

    /* the process stays confined: clean up with the plain calls */
    assert_int_equal(unlink(outside), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confine),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
