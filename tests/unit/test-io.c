/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The request layer's write serialisation and write notifiers, on a
 * null-co node: writes wait for overlapping range locks (not for
 * disjoint ones, not when the lock's owner writes), locks wait for
 * overlapping writes in flight and for earlier overlapping locks, and
 * notifiers see each write as it starts.  FUA writes are flushed before
 * they complete, and fail when the flush does; a backend without write
 * cache makes every write FUA.  Also the I/O buffer cache: large
 * buffers are reused at their exact size, small ones never kept; the
 * request struct cache hands back zeroed memory; and libaio requests,
 * more at once than one reaping pass takes, all complete with their own
 * data.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"

static BlockNode *node;
static char buf[65536];

static void count_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    (*(int *)opaque)++;
}

static void got_lock_cb(void *opaque, BdrvRangeLock *lock)
{
    *(BdrvRangeLock **)opaque = lock;
}

/* Run the main loop until nothing is ready to run. */
static void settle(void)
{
    for (int i = 0; i < 50; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
}

static int setup(void **state)
{
    Error *err = NULL;
    json_t *o = json_pack("{s:s,s:s,s:I}", "driver", "null-co", "node-name",
                          "n", "size", (json_int_t)(1 << 20));

    assert_true(bdrv_init(&err));
    node = bdrv_open_options(o, false, &err);
    json_decref(o);
    assert_non_null(node);
    return 0;
}

static int teardown(void **state)
{
    bdrv_unref(node);
    settle();
    return 0;
}

static void test_write_waits_for_lock(void **state)
{
    BdrvRangeLock *lock = NULL;
    int done = 0;

    bdrv_range_lock(node, 4096, 8192, got_lock_cb, &lock);
    assert_non_null(lock);          /* nothing in flight: granted at once */
    bdrv_write(node, 8192, 4096, buf, 0, count_cb, &done);        /* waits */
    bdrv_write(node, 65536, 4096, buf, 0, count_cb, &done);       /* free */
    bdrv_write(node, 4096, 4096, buf, BDRV_REQ_LOCK_OWNER, count_cb,
               &done);                                            /* owner */
    settle();
    assert_int_equal(done, 2);
    bdrv_range_unlock(lock);
    settle();
    assert_int_equal(done, 3);
}

static void test_lock_waits_for_write(void **state)
{
    BdrvRangeLock *lock = NULL;
    BdrvRangeLock *second = NULL;
    int done = 0;

    bdrv_write(node, 0, 4096, buf, 0, count_cb, &done);
    bdrv_range_lock(node, 0, 65536, got_lock_cb, &lock);
    assert_null(lock);              /* the write is in flight */
    bdrv_range_lock(node, 32768, 65536, got_lock_cb, &second);
    settle();
    assert_int_equal(done, 1);
    assert_non_null(lock);
    assert_null(second);            /* overlaps the first lock */
    bdrv_range_unlock(lock);
    assert_non_null(second);
    bdrv_range_unlock(second);
}

static void test_waiting_lock_holds_new_writes(void **state)
{
    BdrvRangeLock *lock = NULL;
    int first = 0;
    int later = 0;

    bdrv_write(node, 0, 4096, buf, 0, count_cb, &first);
    bdrv_range_lock(node, 0, 4096, got_lock_cb, &lock);
    /* no overtaking: a write arriving after the lock waits for it */
    bdrv_write(node, 0, 4096, buf, 0, count_cb, &later);
    settle();
    assert_int_equal(first, 1);
    assert_non_null(lock);
    assert_int_equal(later, 0);
    bdrv_range_unlock(lock);
    settle();
    assert_int_equal(later, 1);
}

typedef struct {
    uint64_t off;
    uint64_t len;
    int calls;
} Seen;

static void notify_cb(void *opaque, uint64_t off, uint64_t len)
{
    Seen *s = opaque;

    s->off = off;
    s->len = len;
    s->calls++;
}

static void test_notifier(void **state)
{
    Seen seen = { 0 };
    int done = 0;

    bdrv_add_write_notifier(node, notify_cb, &seen);
    bdrv_write(node, 512, 1024, buf, 0, count_cb, &done);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.off, 512);
    assert_int_equal(seen.len, 1024);
    bdrv_write_zeroes(node, 4096, 4096, 0, count_cb, &done);
    assert_int_equal(seen.calls, 2);
    bdrv_read(node, 0, 4096, buf, count_cb, &done);
    assert_int_equal(seen.calls, 2);  /* reads are not writes */
    bdrv_remove_write_notifier(node, notify_cb, &seen);
    bdrv_write(node, 0, 512, buf, 0, count_cb, &done);
    assert_int_equal(seen.calls, 2);
    settle();
    assert_int_equal(done, 4);
}

/* The node's flush count when the write completed, or -errno. */
static void flushes_at_completion_cb(void *opaque, int ret)
{
    *(int64_t *)opaque = ret < 0 ? ret : (int64_t)node->stats.flush_ops;
}

static void test_fua_flushes_before_completion(void **state)
{
    uint64_t before = node->stats.flush_ops;
    int64_t seen = -1;

    bdrv_write(node, 0, 4096, buf, 0, flushes_at_completion_cb, &seen);
    settle();
    assert_int_equal(seen, before);         /* a plain write: no flush */
    bdrv_write(node, 0, 4096, buf, BDRV_REQ_FUA, flushes_at_completion_cb,
               &seen);
    settle();
    assert_int_equal(seen, before + 1);     /* flushed, then completed */
    bdrv_write_zeroes(node, 0, 4096, BDRV_REQ_FUA, flushes_at_completion_cb,
                      &seen);
    settle();
    assert_int_equal(seen, before + 2);
}

static void test_fua_fails_with_its_flush(void **state)
{
    Error *err = NULL;
    /* the write to the filter activates a rule failing its flushes */
    json_t *o = json_pack("{s:s,s:s,s:[{s:s,s:s,s:i}],s:s}",
                          "driver", "blkdebug", "node-name", "dbg",
                          "inject-error", "event", "pwritev", "iotype",
                          "flush", "errno", 5, "image", "n");
    BlockNode *dbg = bdrv_open_options(o, false, &err);
    int64_t seen = 0;
    int done = 0;

    json_decref(o);
    assert_non_null(dbg);
    bdrv_write(dbg, 0, 4096, buf, 0, count_cb, &done);
    settle();
    assert_int_equal(done, 1);              /* no flush, nothing failed */
    bdrv_write(dbg, 0, 4096, buf, BDRV_REQ_FUA, flushes_at_completion_cb,
               &seen);
    settle();
    assert_int_equal(seen, -5);             /* written, but not durable */
    bdrv_unref(dbg);
    settle();
}

static void test_backend_write_cache(void **state)
{
    Error *err = NULL;
    BlockBackend *blk = blk_new("", node, &err);
    uint64_t before = node->stats.flush_ops;
    int done = 0;

    assert_non_null(blk);
    assert_true(blk_write_cache(blk));
    blk_write(blk, 0, 4096, buf, 0, count_cb, &done);
    settle();
    assert_int_equal(node->stats.flush_ops, before);
    blk_set_write_cache(blk, false);
    blk_write(blk, 0, 4096, buf, 0, count_cb, &done);
    blk_write_zeroes(blk, 8192, 4096, 0, count_cb, &done);
    settle();
    assert_int_equal(done, 3);
    assert_int_equal(node->stats.flush_ops, before + 2);
    blk_delete(blk);
}

static void test_buf_cache(void **state)
{
    void *a = ioq_buf_alloc(1 << 20);
    void *b = ioq_buf_alloc(1 << 20);
    void *c;

    memset(a, 1, 1 << 20);
    ioq_buf_free(a);
    ioq_buf_free(b);
    /* a freed large buffer comes back for the same size */
    c = ioq_buf_alloc(1 << 20);
    assert_true(c == a || c == b);
    ioq_buf_free(c);
    /* another size gets its own, cleared when asked */
    c = ioq_buf_alloc0(128 * 1024);
    assert_true(c != a && c != b);
    for (size_t i = 0; i < 128 * 1024; i++) {
        assert_int_equal(((unsigned char *)c)[i], 0);
    }
    ioq_buf_free(c);
    /* a reused buffer is cleared too when asked */
    c = ioq_buf_alloc0(1 << 20);
    assert_int_equal(((unsigned char *)c)[4096], 0);
    ioq_buf_free(c);
    ioq_buf_free(ioq_buf_alloc(512));
}

static void test_req_cache(void **state)
{
    unsigned char *a = ioq_req_alloc0(40);
    unsigned char *b;

    memset(a, 0xff, 40);
    ioq_req_free(a, 40);
    /* the same size class comes back zeroed, whatever its exact size */
    b = ioq_req_alloc0(48);
    for (int i = 0; i < 48; i++) {
        assert_int_equal(b[i], 0);
    }
    ioq_req_free(b, 48);
    /* sizes past the classes are plain allocations */
    b = ioq_req_alloc0(4096);
    assert_int_equal(b[4095], 0);
    ioq_req_free(b, 4096);
}

#define AIO_REQS 200            /* more than one reaping pass's 64 */
#define AIO_BLOCK 4096

static void aio_done_cb(void *opaque, ssize_t ret)
{
    int *done = opaque;

    assert_int_equal(ret, AIO_BLOCK);
    (*done)++;
}

static void run_until(const int *done, int want)
{
    for (int i = 0; i < 100000 && *done < want; i++) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(*done, want);
}

static void test_aio_many(void **state)
{
    char path[] = "/var/tmp/test-io.XXXXXX";
    int fd = mkstemp(path);
    unsigned char *bufs[AIO_REQS];
    int done = 0;

    assert_true(fd >= 0);
    close(fd);
    fd = open(path, O_RDWR | O_DIRECT);
    unlink(path);
    if (fd < 0) {
        skip();                 /* a filesystem without O_DIRECT */
    }
    for (int i = 0; i < AIO_REQS; i++) {
        bufs[i] = ioq_buf_alloc(AIO_BLOCK);
        memset(bufs[i], i + 1, AIO_BLOCK);
        ioq_pwrite(fd, bufs[i], AIO_BLOCK, (off_t)i * AIO_BLOCK, 0,
                   aio_done_cb, &done);
    }
    run_until(&done, AIO_REQS);
    for (int i = 0; i < AIO_REQS; i++) {
        memset(bufs[i], 0, AIO_BLOCK);
        ioq_pread(fd, bufs[i], AIO_BLOCK, (off_t)i * AIO_BLOCK, 0,
                  aio_done_cb, &done);
    }
    run_until(&done, 2 * AIO_REQS);
    for (int i = 0; i < AIO_REQS; i++) {
        assert_int_equal(bufs[i][0], (unsigned char)(i + 1));
        assert_int_equal(bufs[i][AIO_BLOCK - 1], (unsigned char)(i + 1));
        ioq_buf_free(bufs[i]);
    }
    assert_int_equal(ioq_in_flight(), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_waits_for_lock),
        cmocka_unit_test(test_lock_waits_for_write),
        cmocka_unit_test(test_waiting_lock_holds_new_writes),
        cmocka_unit_test(test_notifier),
        cmocka_unit_test(test_fua_flushes_before_completion),
        cmocka_unit_test(test_fua_fails_with_its_flush),
        cmocka_unit_test(test_backend_write_cache),
        cmocka_unit_test(test_buf_cache),
        cmocka_unit_test(test_req_cache),
        cmocka_unit_test(test_aio_many),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
