/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A backend's removable media, with a fake device: a backend no device
 * uses is removable and has no tray; a device with a tray (a CD-ROM's
 * ops) makes it removable, a device without (a disk's) not.  Loading
 * and unloading move the tray, and DEVICE_TRAY_MOVED is sent only when
 * it moved, naming the backend and the device's id or path.  A medium
 * taken out keeps its read-only-ness for the next one; an empty
 * backend fails requests with ENOMEDIUM.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "qapi/event.h"
#include "qapi/qjson.h"

typedef struct {
    bool tray_open;
} FakeCd;

static GPtrArray *events;           /* json_t *, as sent */
static QapiSchema *schema;

static void sink_cb(void *opaque, const json_t *event)
{
    g_ptr_array_add(events, json_deep_copy(event));
}

static void fake_io(void *dev, BlkIoType type, uint64_t off, uint64_t len,
                    void *buf, int flags, BdrvCb *cb, void *opaque)
{
    fail();
}

static void fake_change_media(void *dev, bool load)
{
    ((FakeCd *)dev)->tray_open = !load;
}

static bool fake_is_tray_open(void *dev)
{
    return ((FakeCd *)dev)->tray_open;
}

static const BlockDevOps cd_ops = {
    .io = fake_io,
    .change_media = fake_change_media,
    .is_tray_open = fake_is_tray_open,
};

static const BlockDevOps disk_ops = { .io = fake_io };

static int setup(void **state)
{
    Error *err = NULL;

    assert_true(bdrv_init(&err));
    schema = qapi_schema_load(&err);
    assert_non_null(schema);
    events = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
    qapi_event_init(schema, sink_cb, NULL);
    return 0;
}

static int teardown(void **state)
{
    qapi_event_init(NULL, NULL, NULL);
    g_ptr_array_unref(events);
    qapi_schema_free(schema);
    return 0;
}

static BlockNode *null_node(bool read_only)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:I,s:b}", "driver", "null-co", "size",
                          (json_int_t)(1 << 20), "read-only", read_only);
    BlockNode *bn = bdrv_open_options(o, false, &err);

    json_decref(o);
    assert_non_null(bn);
    return bn;
}

/* The tray-open of the event sent @i-th, after checking its names. */
static bool event_tray(guint i, const char *device, const char *id)
{
    const json_t *e = g_ptr_array_index(events, i);
    const json_t *data = json_object_get(e, "data");

    assert_string_equal(qjson_get_str(e, "event"), "DEVICE_TRAY_MOVED");
    assert_string_equal(qjson_get_str(data, "device"), device);
    assert_string_equal(qjson_get_str(data, "id"), id);
    return qjson_get_bool(data, "tray-open");
}

static void test_no_device(void **state)
{
    BlockBackend *blk = blk_new("lone", NULL, NULL);

    assert_true(blk_dev_has_removable_media(blk));
    assert_false(blk_dev_has_tray(blk));
    assert_false(blk_dev_is_tray_open(blk));
    blk_dev_change_media(blk, false);
    assert_int_equal(events->len, 0);
    blk_delete(blk);
}

static void test_disk_is_not_removable(void **state)
{
    int dev = 0;
    BlockBackend *blk = blk_new("hd0", NULL, NULL);

    blk_set_dev_ops(blk, &disk_ops, &dev);
    blk_set_qdev(blk, "idehd", "idehd");
    assert_false(blk_dev_has_removable_media(blk));
    assert_false(blk_dev_has_tray(blk));
    blk_dev_change_media(blk, false);
    assert_int_equal(events->len, 0);
    blk_set_qdev(blk, NULL, NULL);
    blk_set_dev_ops(blk, NULL, NULL);
    blk_delete(blk);
}

static void test_tray_moves_and_events(void **state)
{
    FakeCd cd = { false };
    BlockBackend *blk = blk_new("", NULL, NULL);

    blk_set_dev_ops(blk, &cd_ops, &cd);
    /* a device without id is named by its path */
    blk_set_qdev(blk, "/machine/peripheral-anon/device[0]", NULL);
    assert_true(blk_dev_has_removable_media(blk));
    assert_true(blk_dev_has_tray(blk));
    assert_false(blk_dev_is_tray_open(blk));
    g_ptr_array_set_size(events, 0);
    blk_dev_change_media(blk, false);
    blk_dev_change_media(blk, false);       /* open already: no event */
    assert_true(blk_dev_is_tray_open(blk));
    blk_dev_change_media(blk, true);
    assert_false(blk_dev_is_tray_open(blk));
    assert_int_equal(events->len, 2);
    assert_true(event_tray(0, "", "/machine/peripheral-anon/device[0]"));
    assert_false(event_tray(1, "", "/machine/peripheral-anon/device[0]"));
    blk_set_qdev(blk, NULL, NULL);
    blk_set_dev_ops(blk, NULL, NULL);
    blk_delete(blk);
}

static void test_medium_in_and_out(void **state)
{
    FakeCd cd = { true };
    BlockBackend *blk = blk_new("cd0", NULL, NULL);
    BlockNode *rw = null_node(false);
    BlockNode *ro = null_node(true);
    Error *err = NULL;

    /* QEMU's blk_new(): no open flags, read-only until told */
    assert_true(blk_root_read_only(blk));
    blk_set_dev_ops(blk, &cd_ops, &cd);
    blk_set_qdev(blk, "idecd", "idecd");
    assert_true(blk_insert_medium(blk, rw, &err));
    assert_ptr_equal(blk_root(blk), rw);
    /* a CD-ROM never writes: the medium is not written through it */
    assert_false(blk_dev_writes(blk));
    blk_remove_medium(blk);
    assert_null(blk_root(blk));
    assert_false(blk_root_read_only(blk));
    assert_true(blk_insert_medium(blk, ro, &err));
    blk_remove_medium(blk);
    assert_true(blk_root_read_only(blk));
    blk_remove_medium(blk);                 /* none: nothing happens */
    assert_true(blk_root_read_only(blk));
    blk_set_qdev(blk, NULL, NULL);
    blk_set_dev_ops(blk, NULL, NULL);
    blk_delete(blk);
    bdrv_unref(rw);
    bdrv_unref(ro);
}

static void enomedium_cb(void *opaque, int ret)
{
    *(int *)opaque = ret;
}

static void test_empty_backend_io(void **state)
{
    BlockBackend *blk = blk_new("e", NULL, NULL);
    char buf[512];
    int ret = 1;

    blk_read(blk, 0, sizeof(buf), buf, enomedium_cb, &ret);
    for (int i = 0; i < 50 && ret == 1; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    assert_int_equal(ret, -ENOMEDIUM);
    blk_delete(blk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_device),
        cmocka_unit_test(test_disk_is_not_removable),
        cmocka_unit_test(test_tray_moves_and_events),
        cmocka_unit_test(test_medium_in_and_out),
        cmocka_unit_test(test_empty_backend_io),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
