/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The copy engine's unit-test fixture: see copy-fixture.h. */
#include "config.h"

#include "tests/unit/copy-fixture.h"

static char *tmpdir;

/* The job's len - offset is what the engine says is left. */
void check_progress(Owner *o)
{
    if (o->job && (uint64_t)o->job->job.progress_total
        != o->job->job.progress_current + block_copy_remaining(o->bc)) {
        o->progress_ok = false;
    }
}

bool owner_may_run(void *opaque)
{
    Owner *o = opaque;

    o->max_busy = MAX(o->max_busy, block_copy_busy(o->bc));
    check_progress(o);
    return !o->stop;
}

BlockCopyErrorResult owner_error(void *opaque, bool is_read, int ret)
{
    Owner *o = opaque;

    o->errors++;
    o->last_error = ret;
    o->last_is_read = is_read;
    if (o->on_error == BLOCK_COPY_ERROR_RETRY) {
        o->stop = true;         /* as a job's report or stop */
    }
    return o->on_error;
}

void owner_idle(void *opaque)
{
    ((Owner *)opaque)->idle = true;
}

void owner_sleeping(void *opaque)
{
    Owner *o = opaque;

    if (!o->slept) {
        o->slept = true;
        o->first_sleep_bytes = o->job->slice_bytes;
        o->first_sleep_dirty = block_copy_dirty_bytes(o->bc);
    }
}

const BlockCopyOps owner_ops = {
    .may_run = owner_may_run,
    .error = owner_error,
    .sleeping = owner_sleeping,
    .idle = owner_idle,
};

char *path_of(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* A file of @len bytes, each MiB filled with @fill + its index (0: zero). */
void make_file(const char *name, uint64_t len, int fill)
{
    g_autofree char *p = path_of(name);
    FILE *f = fopen(p, "w");
    static uint8_t mb[MiB];

    assert_non_null(f);
    for (uint64_t i = 0; i < len / MiB; i++) {
        memset(mb, fill ? fill + (int)i : 0, sizeof(mb));
        assert_int_equal(fwrite(mb, 1, sizeof(mb), f), sizeof(mb));
    }
    fclose(f);
}

BlockNode *open_file(const char *name)
{
    g_autofree char *p = path_of(name);

    return test_open_sync(json_pack("{s:s,s:s}", "driver", "file", "filename",
                               p));
}

void create_qcow2(const char *name, const char *backing)
{
    g_autofree char *p = path_of(name);
    g_autofree char *b = backing ? path_of(backing) : NULL;
    BdrvCreateOpts opts = {
        .size = LEN, .cluster_size = G, .version = 3,
        .backing_file = b, .backing_fmt = b ? "qcow2" : NULL,
    };
    Error *err = NULL;
    BlockNode *file;

    make_file(name, 0, 0);
    file = open_file(name);
    assert_true(bdrv_create(file, "qcow2", &opts, &err));
    test_close_sync(file);
}

BlockNode *open_qcow2(const char *name)
{
    g_autofree char *p = path_of(name);

    return test_open_sync(json_pack("{s:s,s:{s:s,s:s}}", "driver", "qcow2",
                               "file", "driver", "file", "filename", p));
}

void io_cb(void *opaque, int ret)
{
    assert_int_equal(ret, 0);
    (*(int *)opaque)--;
}

void wait_for(const int *pending)
{
    while (*pending > 0) {
        g_main_context_iteration(NULL, TRUE);
    }
}

void write_sync(BlockNode *bn, uint64_t off, uint64_t len, int byte)
{
    uint8_t *buf = ioq_buf_alloc(len);
    int pending = 1;

    memset(buf, byte, len);
    bdrv_write(bn, off, len, buf, 0, io_cb, &pending);
    wait_for(&pending);
    ioq_buf_free(buf);
}

/* Give image @name (its own layer) @byte at [@off, @off + @len). */
void fill_image(const char *name, uint64_t off, uint64_t len,
                       int byte)
{
    BlockNode *bn = open_qcow2(name);

    write_sync(bn, off, len, byte);
    test_close_sync(bn);
}

/* Is [@off, @off + @len) of @bn filled with @byte? */
bool holds(BlockNode *bn, uint64_t off, uint64_t len, int byte)
{
    uint8_t *buf = ioq_buf_alloc(len);
    int pending = 1;
    bool ok = true;

    bdrv_read(bn, off, len, buf, io_cb, &pending);
    wait_for(&pending);
    for (uint64_t i = 0; i < len && ok; i++) {
        ok = buf[i] == byte;
    }
    ioq_buf_free(buf);
    return ok;
}

/* A raw node on blkdebug on a file, for breakpoints. */
BlockNode *open_debug(const char *name)
{
    g_autofree char *p = path_of(name);

    return test_open_sync(json_pack(
        "{s:s,s:{s:s,s:{s:s,s:s}}}", "driver", "raw", "file", "driver",
        "blkdebug", "image", "driver", "file", "filename", p));
}

void wait_suspended(BlockNode *bn, const char *tag)
{
    while (!bdrv_debug_is_suspended(bn, tag)) {
        g_main_context_iteration(NULL, TRUE);
    }
}

void settle(void)
{
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}

BlockCopyConfig config(Owner *o, BlockNode *src, BlockNode *dst)
{
    BlockCopyConfig c = {
        .source = src, .target = dst, .len = LEN, .granularity = G,
        .chunk = 4 * G, .step = 2 * G, .max_ops = 4,
        .ops = &owner_ops, .opaque = o,
    };

    return c;
}

/* src holds data (each MiB its own byte), dst zeroes: a copy of it all. */
BlockCopyConfig file_pair(Owner *o, BlockNode **src, BlockNode **dst)
{
    make_file("src", LEN, 1);
    make_file("dst", LEN, 0);
    *src = open_file("src");
    *dst = open_file("dst");
    return config(o, *src, *dst);
}

void run(Owner *o)
{
    o->idle = false;
    block_copy_kick(o->bc);
    while (!o->idle) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(block_copy_busy(o->bc), 0);
}

void close_pair(Owner *o, BlockNode *src, BlockNode *dst)
{
    block_copy_free(o->bc);
    test_close_sync(dst);
    test_close_sync(src);
}

int cbw_count;

void cbw_cb(void *opaque, int ret)
{
    Cbw *w = opaque;

    w->done++;
    w->ret = ret;
    w->order = ++cbw_count;
    w->written = block_copy_written(w->o->bc);
    if (w->src && ret == 0) {
        /* the old data is on the target: the guest's write goes on */
        assert_true(block_copy_range_clean(w->o->bc, w->off, G));
        w->buf = ioq_buf_alloc(G);
        memset(w->buf, 0x55, G);
        (*w->pending)++;
        bdrv_write(w->src, w->off, G, w->buf, 0, io_cb, w->pending);
    }
}

void wait_cbw(const Cbw *w)
{
    while (!w->done) {
        g_main_context_iteration(NULL, TRUE);
    }
}

int copy_setup(void **state)
{
    tmpdir = g_dir_make_tmp("qmpd-copy-XXXXXX", NULL);
    return bdrv_init(NULL) ? 0 : -1;
}

int copy_teardown(void **state)
{
    const char *names[] = { "src", "dst", "base.qcow2", "mid.qcow2",
                            "top.qcow2", "z.qcow2", "t.qcow2" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *p = path_of(names[i]);

        unlink(p);
    }
    rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}
