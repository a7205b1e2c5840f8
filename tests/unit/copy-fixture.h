/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the copy engine's unit tests share (test-copy.c without a job,
 * test-copy-job.c with one): real nodes in a temporary directory, an
 * owner that records what the engine asked of it, and a
 * copy-before-write caller that records what it saw.
 */
#ifndef TESTS_UNIT_COPY_FIXTURE_H
#define TESTS_UNIT_COPY_FIXTURE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "block/jobs/blockjob.h"
#include "block/jobs/copy.h"
#include "qapi/qjson.h"
#include "tests/unit/block-sync.h"
#include "util/hbitmap.h"

#define MiB (1024 * 1024)
#define LEN (4 * MiB)
#define G (64 * 1024)

/* The owner: a policy that records what the engine asked. */
typedef struct {
    BlockCopy *bc;
    bool stop;                  /* may_run says no */
    bool idle;
    unsigned max_busy;
    int errors;
    int last_error;
    bool last_is_read;
    BlockCopyErrorResult on_error;
    BlockJob *job;
    bool progress_ok;           /* total == current + remaining, always */
    uint64_t first_sleep_bytes; /* the job's counted bytes, first sleep */
    uint64_t first_sleep_dirty; /* block_copy_dirty_bytes() then */
    bool slept;
    /* a write to make while the copy runs, once */
    BlockNode *race_node;
    uint64_t race_off;
    uint8_t *race_buf;
    int race_pending;
} Owner;

/* A copy-before-write caller: what it saw when its range was done. */
typedef struct {
    Owner *o;
    int done;
    int ret;
    int order;                  /* among the callers, from 1 */
    uint64_t written;           /* block_copy_written() then */
    /* as a guest write held for it: overwrite the source now */
    BlockNode *src;
    uint64_t off;
    uint8_t *buf;
    int *pending;
} Cbw;

extern const BlockCopyOps owner_ops;
extern int cbw_count;

/* The owner's hooks (owner_ops); check_progress: total == done + left. */
void check_progress(Owner *o);
bool owner_may_run(void *opaque);
BlockCopyErrorResult owner_error(void *opaque, bool is_read, int ret);
void owner_idle(void *opaque);
void owner_sleeping(void *opaque);
/* Files and nodes in the temporary directory (see copy-fixture.c). */
char *path_of(const char *name);
void make_file(const char *name, uint64_t len, int fill);
BlockNode *open_file(const char *name);
void create_qcow2(const char *name, const char *backing);
BlockNode *open_qcow2(const char *name);
/* Blocking I/O: run the main loop until the request is done. */
void io_cb(void *opaque, int ret);
void wait_for(const int *pending);
void write_sync(BlockNode *bn, uint64_t off, uint64_t len, int byte);
void fill_image(const char *name, uint64_t off, uint64_t len, int byte);
bool holds(BlockNode *bn, uint64_t off, uint64_t len, int byte);
/* blkdebug over a file (breakpoints); wait until @tag holds a request. */
BlockNode *open_debug(const char *name);
void wait_suspended(BlockNode *bn, const char *tag);
/* Run the loop until nothing is ready to dispatch. */
void settle(void);
/* An engine over two nodes, run until idle, closed. */
BlockCopyConfig config(Owner *o, BlockNode *src, BlockNode *dst);
BlockCopyConfig file_pair(Owner *o, BlockNode **src, BlockNode **dst);
void run(Owner *o);
void close_pair(Owner *o, BlockNode *src, BlockNode *dst);
/* A copy-before-write caller's completion; wait_cbw waits for it. */
void cbw_cb(void *opaque, int ret);
void wait_cbw(const Cbw *w);
/* The group's temporary directory and block layer. */
int copy_setup(void **state);
int copy_teardown(void **state);

#endif /* TESTS_UNIT_COPY_FIXTURE_H */
