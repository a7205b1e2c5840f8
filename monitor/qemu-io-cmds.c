/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-io's commands: read, write, readv, writev, discard, aio_read,
 * aio_write, aio_flush, flush, length, alloc, map, the blkdebug
 * breakpoints and sleep.  Each ends with qio_cmd_finish(), now or from
 * its I/O's completion.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "block/core/block-int.h"
#include "monitor/qemu-io-int.h"

/* ---- read, write, readv, writev, discard -------------------------------- */

void qio_read_f(QioCmd *c, int argc, char **argv)
{
    OptIter it;
    bool bflag = false, sflag = false, lflag = false;
    QioReq *r = qio_req_new(c, QIO_READ, "read", "read");
    int64_t offset, count;
    char **pos;
    int ch;

    qio_opt_init(&it, argc, argv);
    while ((ch = qio_opt_next(&it, c->out, "bCl:pP:qs:v")) != -1) {
        switch (ch) {
        case 'b':
            bflag = true;
            break;
        case 'C':
            r->cflag = true;
            break;
        case 'l':
            lflag = true;
            r->plen = qio_cvtnum(c->out, it.optarg);
            if (r->plen < 0) {
                qio_print_cvtnum_err(c->out, r->plen, it.optarg);
                qio_cmd_finish(c, r->plen);
                goto out;
            }
            break;
        case 'p':
            break;              /* ignored for backwards compatibility */
        case 'P':
            r->pflag = true;
            r->pattern = qio_parse_pattern(c->out, it.optarg);
            if (r->pattern < 0) {
                qio_cmd_finish(c, -EINVAL);
                goto out;
            }
            break;
        case 'q':
            r->qflag = true;
            break;
        case 's':
            sflag = true;
            r->poff = qio_cvtnum(c->out, it.optarg);
            if (r->poff < 0) {
                qio_print_cvtnum_err(c->out, r->poff, it.optarg);
                qio_cmd_finish(c, r->poff);
                goto out;
            }
            break;
        case 'v':
            r->vflag = true;
            break;
        default:
            qio_cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len != 2) {
        qio_cmd_usage(c);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = qio_cvtnum(c->out, pos[0]);
    if (offset < 0) {
        qio_print_cvtnum_err(c->out, offset, pos[0]);
        qio_cmd_finish(c, offset);
        goto out;
    }
    count = qio_cvtnum(c->out, pos[1]);
    if (count < 0) {
        qio_print_cvtnum_err(c->out, count, pos[1]);
        qio_cmd_finish(c, count);
        goto out;
    }
    if (count > QIO_MAX_BYTES) {
        qio_out(c->out, "length cannot exceed %" PRIu64 ", given %s\n",
            (uint64_t)QIO_MAX_BYTES, pos[1]);
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if (!r->pflag && (lflag || sflag)) {
        qio_cmd_usage(c);
        goto out;
    }
    if (!lflag) {
        r->plen = count - r->poff;
    }
    if (r->plen < 0 || r->poff > count || r->plen > count - r->poff) {
        qio_out(c->out, "pattern verification range exceeds end of read data\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if (bflag) {
        qio_cmd_unsupported(c, 'b');
        goto out;
    }
    r->offset = offset;
    r->count = count;
    r->buf = qio_filled_buf(count, 0xab);
    qio_req_start(r, false);
    qio_opt_free(&it);
    return;

out:
    qio_req_free(r);
    qio_opt_free(&it);
}

void qio_write_f(QioCmd *c, int argc, char **argv)
{
    OptIter it;
    bool bflag = false, cflag = false, nflag = false, pflag = false;
    bool sflag = false, zflag = false;
    QioReq *r = qio_req_new(c, QIO_WRITE, "wrote", "write");
    int pattern = 0xcd;
    int64_t offset, count;
    char **pos;
    int ch;

    qio_opt_init(&it, argc, argv);
    while ((ch = qio_opt_next(&it, c->out, "bcCfnpP:qs:uz")) != -1) {
        switch (ch) {
        case 'b':
            bflag = true;
            break;
        case 'c':
            cflag = true;
            break;
        case 'C':
            r->cflag = true;
            break;
        case 'f':
            r->flags |= BDRV_REQ_FUA;
            break;
        case 'n':
            nflag = true;
            break;
        case 'p':
            break;              /* ignored for backwards compatibility */
        case 'P':
            pflag = true;
            pattern = qio_parse_pattern(c->out, it.optarg);
            if (pattern < 0) {
                qio_cmd_finish(c, -EINVAL);
                goto out;
            }
            break;
        case 'q':
            r->qflag = true;
            break;
        case 's':
            sflag = true;
            break;
        case 'u':
            r->flags |= BDRV_REQ_MAY_UNMAP;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            qio_cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len != 2) {
        qio_cmd_usage(c);
        goto out;
    }
    if (bflag && zflag) {
        qio_out(c->out, "-b and -z cannot be specified at the same time\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if ((r->flags & BDRV_REQ_FUA) && (bflag || cflag)) {
        qio_out(c->out, "-f and -b or -c cannot be specified at the same time\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if (nflag && !zflag) {
        qio_out(c->out, "-n requires -z to be specified\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if ((r->flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        qio_out(c->out, "-u requires -z to be specified\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if (zflag + pflag + sflag > 1) {
        qio_out(c->out, "Only one of -z, -P, and -s can be specified at the "
            "same time\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = qio_cvtnum(c->out, pos[0]);
    if (offset < 0) {
        qio_print_cvtnum_err(c->out, offset, pos[0]);
        qio_cmd_finish(c, offset);
        goto out;
    }
    count = qio_cvtnum(c->out, pos[1]);
    if (count < 0) {
        qio_print_cvtnum_err(c->out, count, pos[1]);
        qio_cmd_finish(c, count);
        goto out;
    }
    if (count > QIO_MAX_BYTES && !nflag) {
        qio_out(c->out, "length cannot exceed %" PRIu64 " without -n, given %s\n",
            (uint64_t)QIO_MAX_BYTES, pos[1]);
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if (bflag || cflag || nflag || sflag) {
        qio_cmd_unsupported(c, bflag ? 'b' : cflag ? 'c' : nflag ? 'n' : 's');
        goto out;
    }
    r->offset = offset;
    r->count = count;
    if (zflag) {
        r->type = QIO_ZERO;
    } else {
        r->buf = qio_filled_buf(count, pattern);
    }
    qio_req_start(r, false);
    qio_opt_free(&it);
    return;

out:
    qio_req_free(r);
    qio_opt_free(&it);
}

/* readv and writev: like read and write, several lengths, one request. */
static void rwv_f(QioCmd *c, int argc, char **argv, bool write)
{
    OptIter it;
    QioReq *r = write ? qio_req_new(c, QIO_WRITE, "wrote", "writev")
                      : qio_req_new(c, QIO_READ, "read", "readv");
    int pattern = write ? 0xcd : 0;
    int64_t offset, count;
    char **pos;
    int ch;

    qio_opt_init(&it, argc, argv);
    while ((ch = qio_opt_next(&it, c->out, write ? "CfP:q" : "CP:qv")) != -1) {
        switch (ch) {
        case 'C':
            r->cflag = true;
            break;
        case 'f':
            r->flags |= BDRV_REQ_FUA;
            break;
        case 'P':
            r->pflag = !write;
            pattern = qio_parse_pattern(c->out, it.optarg);
            if (pattern < 0) {
                qio_cmd_finish(c, -EINVAL);
                goto out;
            }
            break;
        case 'q':
            r->qflag = true;
            break;
        case 'v':
            r->vflag = true;
            break;
        default:
            qio_cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len < 2) {
        qio_cmd_usage(c);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = qio_cvtnum(c->out, pos[0]);
    if (offset < 0) {
        qio_print_cvtnum_err(c->out, offset, pos[0]);
        qio_cmd_finish(c, offset);
        goto out;
    }
    count = qio_iovec_size(c, it.pos->len - 1, pos + 1);
    if (count < 0) {
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    r->offset = offset;
    r->count = count;
    r->pattern = pattern;
    r->plen = count;
    r->buf = qio_filled_buf(count, write ? pattern : 0xab);
    qio_req_start(r, false);
    qio_opt_free(&it);
    return;

out:
    qio_req_free(r);
    qio_opt_free(&it);
}

void qio_readv_f(QioCmd *c, int argc, char **argv)
{
    rwv_f(c, argc, argv, false);
}

void qio_writev_f(QioCmd *c, int argc, char **argv)
{
    rwv_f(c, argc, argv, true);
}

void qio_discard_f(QioCmd *c, int argc, char **argv)
{
    OptIter it;
    QioReq *r = qio_req_new(c, QIO_DISCARD, "discard", "discard");
    int64_t offset, count;
    char **pos;
    int ch;

    qio_opt_init(&it, argc, argv);
    while ((ch = qio_opt_next(&it, c->out, "Cq")) != -1) {
        switch (ch) {
        case 'C':
            r->cflag = true;
            break;
        case 'q':
            r->qflag = true;
            break;
        default:
            qio_cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len != 2) {
        qio_cmd_usage(c);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = qio_cvtnum(c->out, pos[0]);
    if (offset < 0) {
        qio_print_cvtnum_err(c->out, offset, pos[0]);
        qio_cmd_finish(c, offset);
        goto out;
    }
    count = qio_cvtnum(c->out, pos[1]);
    if (count < 0) {
        qio_print_cvtnum_err(c->out, count, pos[1]);
        qio_cmd_finish(c, count);
        goto out;
    }
    if (count > QIO_MAX_BYTES) {
        qio_out(c->out, "length cannot exceed %" PRIu64 ", given %s\n",
            (uint64_t)QIO_MAX_BYTES, pos[1]);
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    r->offset = offset;
    r->count = count;
    qio_req_start(r, false);
    qio_opt_free(&it);
    return;

out:
    qio_req_free(r);
    qio_opt_free(&it);
}

/* ---- aio_read, aio_write, aio_flush, flush ------------------------------ */

/* "-i": count an invalid request in the backend's statistics, as QEMU. */
static void account_invalid(QioCmd *c, bool write)
{
    qio_out(c->out, "injecting invalid %s request\n", write ? "write" : "read");
    if (c->t.blk) {
        if (write) {
            blk_stats(c->t.blk)->invalid_wr++;
        } else {
            blk_stats(c->t.blk)->invalid_rd++;
        }
    }
    qio_cmd_finish(c, 0);
}

static void aio_rw_f(QioCmd *c, int argc, char **argv, bool write)
{
    OptIter it;
    QioReq *r = write ? qio_req_new(c, QIO_WRITE, "wrote", "aio_write")
                      : qio_req_new(c, QIO_READ, "read", "readv");
    bool zflag = false;
    int pattern = write ? 0xcd : 0;
    int64_t offset, count;
    char **pos;
    int ch;

    qio_opt_init(&it, argc, argv);
    while ((ch = qio_opt_next(&it, c->out, write ? "CfiP:quz" : "CiP:qv"))
           != -1) {
        switch (ch) {
        case 'C':
            r->cflag = true;
            break;
        case 'f':
            r->flags |= BDRV_REQ_FUA;
            break;
        case 'i':
            account_invalid(c, write);
            goto out;
        case 'P':
            /* qemu-io 7.2 never checks -P against -z for aio_write */
            r->pflag = !write;
            pattern = qio_parse_pattern(c->out, it.optarg);
            if (pattern < 0) {
                qio_cmd_finish(c, -EINVAL);
                goto out;
            }
            break;
        case 'q':
            r->qflag = true;
            break;
        case 'u':
            r->flags |= BDRV_REQ_MAY_UNMAP;
            break;
        case 'v':
            r->vflag = true;
            break;
        case 'z':
            zflag = true;
            break;
        default:
            qio_cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len < 2) {
        qio_cmd_usage(c);
        goto out;
    }
    if (zflag && it.pos->len != 2) {
        qio_out(c->out, "-z supports only a single length parameter\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    if ((r->flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        qio_out(c->out, "-u requires -z to be specified\n");
        qio_cmd_finish(c, -EINVAL);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = qio_cvtnum(c->out, pos[0]);
    if (offset < 0) {
        qio_print_cvtnum_err(c->out, offset, pos[0]);
        qio_cmd_finish(c, offset);
        goto out;
    }
    if (zflag) {
        count = qio_cvtnum(c->out, pos[1]);
        if (count < 0) {
            qio_print_cvtnum_err(c->out, count, pos[1]);
            qio_cmd_finish(c, count);
            goto out;
        }
        r->type = QIO_ZERO;
    } else {
        count = qio_iovec_size(c, it.pos->len - 1, pos + 1);
        if (count < 0) {
            if (c->t.blk) {
                if (write) {
                    blk_stats(c->t.blk)->invalid_wr++;
                } else {
                    blk_stats(c->t.blk)->invalid_rd++;
                }
            }
            qio_cmd_finish(c, -EINVAL);
            goto out;
        }
        r->buf = qio_filled_buf(count, write ? pattern : 0xab);
    }
    r->offset = offset;
    r->count = count;
    r->pattern = pattern;
    r->plen = count;
    qio_req_start(r, true);
    qio_opt_free(&it);
    return;

out:
    qio_req_free(r);
    qio_opt_free(&it);
}

void qio_aio_read_f(QioCmd *c, int argc, char **argv)
{
    aio_rw_f(c, argc, argv, false);
}

void qio_aio_write_f(QioCmd *c, int argc, char **argv)
{
    aio_rw_f(c, argc, argv, true);
}

void qio_aio_flush_f(QioCmd *c, int argc, char **argv)
{
    qio_wait_for_aio(c);
}

static void flush_done_cb(void *opaque, int ret)
{
    /* qemu-io 7.2 prints nothing when a flush fails */
    qio_cmd_finish(opaque, ret);
}

void qio_flush_f(QioCmd *c, int argc, char **argv)
{
    if (c->t.blk) {
        (c->t.qdev ? blk_dev_io : blk_io)(c->t.blk, BLK_IO_FLUSH, 0, 0, NULL,
                                           0, flush_done_cb, c);
    } else {
        bdrv_flush(c->t.node, flush_done_cb, c);
    }
}

/* ---- length, alloc, map ------------------------------------------------- */

void qio_length_f(QioCmd *c, int argc, char **argv)
{
    char s1[64];

    if (!c->ref) {
        qio_out(c->out, "getlength: %s\n", g_strerror(ENOMEDIUM));
        qio_cmd_finish(c, -ENOMEDIUM);
        return;
    }
    qio_cvtstr((double)bdrv_length(c->ref), s1, sizeof(s1));
    qio_out(c->out, "%s\n", s1);
    qio_cmd_finish(c, 0);
}

static void walk_next(QioCmd *c);

static void walk_error(QioCmd *c, int ret)
{
    if (c->map) {
        /* QEMU's error_report(): the monitor's text, not stdout */
        qio_out(c->mon, "Failed to get allocation status: %s\n",
            g_strerror(-ret));
    } else {
        qio_out(c->out, "is_allocated failed: %s\n", g_strerror(-ret));
    }
    qio_cmd_finish(c, ret);
}

static void map_print_run(QioCmd *c)
{
    char s1[64], s2[64];

    qio_cvtstr((double)c->run_len, s1, sizeof(s1));
    qio_cvtstr((double)c->run_start, s2, sizeof(s2));
    qio_out(c->out, "%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
        s1, (uint64_t)c->run_len,
        c->run_alloc ? "    allocated" : "not allocated", s2,
        (uint64_t)c->run_start);
}

static void walk_status_cb(void *opaque, int ret, int status, uint64_t pnum)
{
    QioCmd *c = opaque;
    int alloc = !!(status & BDRV_STATUS_ALLOCATED);
    int64_t n = (int64_t)MIN(pnum, (uint64_t)c->step);

    if (ret < 0) {
        walk_error(c, ret);
        return;
    }
    if (n == 0) {
        if (c->map) {
            qio_out(c->out, "Unexpected end of image\n");
            qio_cmd_finish(c, -EIO);
            return;
        }
        /* as bdrv_is_allocated at the end of the image */
        c->count -= c->remaining;
        c->remaining = 0;
        walk_next(c);
        return;
    }
    if (c->map) {
        if (c->run_alloc >= 0 && c->run_alloc != alloc) {
            map_print_run(c);
            c->run_alloc = -1;
        }
        if (c->run_alloc < 0) {
            c->run_alloc = alloc;
            c->run_start = c->offset;
            c->run_len = 0;
        }
        c->run_len += n;
    } else if (alloc) {
        c->sum += n;
    }
    c->offset += n;
    c->remaining -= n;
    walk_next(c);
}

static void walk_next(QioCmd *c)
{
    int64_t len = (int64_t)bdrv_length(c->ref);
    char s1[64];

    if (c->remaining > 0 && c->offset >= len) {
        /* bdrv_is_allocated reports nothing past the end */
        c->count -= c->remaining;
        c->remaining = 0;
    }
    if (c->remaining > 0) {
        c->step = MIN(c->remaining, len - c->offset);
        bdrv_block_status(c->ref, c->offset, c->step, walk_status_cb, c);
        return;
    }
    if (c->map) {
        if (c->run_alloc >= 0) {
            map_print_run(c);
        }
    } else {
        qio_cvtstr((double)c->start, s1, sizeof(s1));
        qio_out(c->out, "%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n",
            c->sum, c->count, s1);
    }
    qio_cmd_finish(c, 0);
}

void qio_alloc_f(QioCmd *c, int argc, char **argv)
{
    int64_t offset = qio_cvtnum(c->out, argv[1]);
    int64_t count = 512;

    if (offset < 0) {
        qio_print_cvtnum_err(c->out, offset, argv[1]);
        qio_cmd_finish(c, offset);
        return;
    }
    if (argc == 3) {
        count = qio_cvtnum(c->out, argv[2]);
        if (count < 0) {
            qio_print_cvtnum_err(c->out, count, argv[2]);
            qio_cmd_finish(c, count);
            return;
        }
    }
    if (!c->ref) {
        walk_error(c, -ENOMEDIUM);
        return;
    }
    c->start = c->offset = offset;
    c->count = c->remaining = count;
    walk_next(c);
}

void qio_map_f(QioCmd *c, int argc, char **argv)
{
    c->map = true;
    if (!c->ref) {
        qio_out(c->out, "Failed to query image length: %s\n",
            g_strerror(ENOMEDIUM));
        qio_cmd_finish(c, -ENOMEDIUM);
        return;
    }
    c->run_alloc = -1;
    c->offset = 0;
    c->count = c->remaining = (int64_t)bdrv_length(c->ref);
    walk_next(c);
}

/* ---- blkdebug breakpoints, sleep ---------------------------------------- */

void qio_break_f(QioCmd *c, int argc, char **argv)
{
    int ret;

    if (!bdrv_debug_event_raised(argv[1])) {
        qio_out(c->out, "Could not set breakpoint: blkdebug event '%s' is never "
            "raised by qmpd\n", argv[1]);
        qio_cmd_finish(c, -ENOTSUP);
        return;
    }
    ret = bdrv_debug_breakpoint(c->ref, argv[1], argv[2]);
    if (ret < 0) {
        qio_out(c->out, "Could not set breakpoint: %s\n", g_strerror(-ret));
    }
    qio_cmd_finish(c, ret);
}

void qio_remove_break_f(QioCmd *c, int argc, char **argv)
{
    int ret = bdrv_debug_remove_breakpoint(c->ref, argv[1]);

    if (ret < 0) {
        qio_out(c->out, "Could not remove breakpoint %s: %s\n", argv[1],
            g_strerror(-ret));
    }
    qio_cmd_finish(c, ret);
}

void qio_resume_f(QioCmd *c, int argc, char **argv)
{
    int ret = bdrv_debug_resume(c->ref, argv[1]);

    if (ret < 0) {
        qio_out(c->out, "Could not resume request: %s\n", g_strerror(-ret));
    }
    qio_cmd_finish(c, ret);
}

/*
 * blkdebug has no "a request was held" notification; polling keeps it
 * that way, and a millisecond is short next to a test's round trip.
 */
static gboolean wait_break_tick_cb(gpointer opaque)
{
    QioCmd *c = opaque;

    if (!bdrv_debug_is_suspended(c->ref, c->tag)) {
        return G_SOURCE_CONTINUE;
    }
    qio_cmd_finish(c, 0);
    return G_SOURCE_REMOVE;
}

void qio_wait_break_f(QioCmd *c, int argc, char **argv)
{
    c->tag = argv[1];
    if (bdrv_debug_is_suspended(c->ref, c->tag)) {
        qio_cmd_finish(c, 0);
        return;
    }
    g_timeout_add(1, wait_break_tick_cb, c);
}

static gboolean sleep_done_cb(gpointer opaque)
{
    QioCmd *c = opaque;

    qio_cmd_finish(c, 0);
    return G_SOURCE_REMOVE;
}

void qio_sleep_f(QioCmd *c, int argc, char **argv)
{
    char *end;
    long ms = strtol(argv[1], &end, 0);

    if (ms < 0 || *end != '\0') {
        qio_out(c->out, "%s is not a valid number\n", argv[1]);
        qio_cmd_finish(c, -EINVAL);
        return;
    }
    g_timeout_add(MIN(ms, (long)G_MAXUINT), sleep_done_cb, c);
}
