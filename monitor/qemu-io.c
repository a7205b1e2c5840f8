/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-io's command language on a backend or a node, for HMP's qemu-io
 * command and its QMP extension.  The texts, the option letters, the
 * checks and their order follow qemu-io 7.2 (checked against the real
 * binary), so that iotests-style scripts and differential tests see the
 * same output; only the timings differ.
 *
 * qemu-io runs a command to completion with a nested main loop.  Here
 * each command is a small state machine instead: it prints into the
 * command's buffer, starts its I/O and finishes from the completion,
 * so the main loop never blocks:
 *
 *     qemu_io_run -> parse -> cmd->fn -> (I/O, timers) -> cmd_finish
 *                                                             |
 *                           done(opaque, output, failed) <- deferred
 *
 * aio_read/aio_write requests outlive their command: they are kept in
 * a list (for aio_flush) and print to the async sink on completion.
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
#include "block/core/ioq.h"
#include "monitor/qemu-io-int.h"
#include "monitor/qemu-io.h"
#include "qapi/dispatch.h"
#include "qapi/error.h"
#include "qapi/qjson.h"
static QemuIoSink *async_sink;
static GPtrArray *aio_reqs;         /* QioReq * started by aio_* */
static GPtrArray *flush_waiters;    /* QioCmd * in aio_flush */

/* ---- commands: plumbing ------------------------------------------------- */

static void cmd_done_cb(void *opaque, int unused)
{
    QioCmd *c = opaque;

    if (c->ref) {
        bdrv_unref(c->ref);
    }
    {
        QemuIoResult r = {
            c->out->str, c->err->str, c->mon->str, c->ret < 0
        };

        c->done(c->opaque, &r);
    }
    g_string_free(c->out, TRUE);
    g_string_free(c->err, TRUE);
    g_string_free(c->mon, TRUE);
    g_free(c->argv);
    g_free(c->input);
    g_free(c);
}

/* End the command with qemu-io's return value (negative: failed). */
void qio_cmd_finish(QioCmd *c, int ret)
{
    c->ret = ret;
    /* callers may be inside qemu_io_run(); done must come later */
    ioq_defer_int(cmd_done_cb, c, 0);
}

void qio_cmd_usage(QioCmd *c)
{
    qio_out(c->out, "%s %s -- %s\n", c->info->name, c->info->args,
        c->info->oneline);
    qio_cmd_finish(c, -EINVAL);
}

static bool target_equal(const QemuIoTarget *a, const QemuIoTarget *b)
{
    return a->blk == b->blk && a->node == b->node && a->qdev == b->qdev;
}

BlockNode *qio_target_root(const QemuIoTarget *t)
{
    return t->node ? t->node : blk_root(t->blk);
}

static void target_io(const QemuIoTarget *t, QioReqType type, uint64_t off,
                      uint64_t len, void *buf, int flags, BdrvCb *cb,
                      void *opaque)
{
    static const BlkIoType blk_types[] = {
        [QIO_READ] = BLK_IO_READ, [QIO_WRITE] = BLK_IO_WRITE,
        [QIO_ZERO] = BLK_IO_ZERO, [QIO_DISCARD] = BLK_IO_DISCARD,
    };
    BlockNode *bn = t->node;

    if (t->blk) {
        if (type != QIO_READ) {
            blk_qemu_io_take_write(t->blk);
        }
        (t->qdev ? blk_dev_io : blk_io)(t->blk, blk_types[type], off, len,
                                         buf, flags, cb, opaque);
        return;
    }
    /* QEMU goes through a temporary backend, which fails these so */
    if (off > bdrv_length(bn) || len > bdrv_length(bn) - off) {
        ioq_defer_int(cb, opaque, -EIO);
        return;
    }
    switch (type) {
    case QIO_READ:
        bdrv_read(bn, off, len, buf, cb, opaque);
        break;
    case QIO_WRITE:
        bdrv_write(bn, off, len, buf, flags, cb, opaque);
        break;
    case QIO_ZERO:
        bdrv_write_zeroes(bn, off, len, flags | BDRV_REQ_FROM_BACKEND, cb,
                          opaque);
        break;
    case QIO_DISCARD:
        bdrv_discard(bn, off, len, cb, opaque);
        break;
    }
}

/* ---- requests ----------------------------------------------------------- */

QioReq *qio_req_new(QioCmd *c, QioReqType type, const char *verb,
                       const char *fail)
{
    QioReq *r = g_new0(QioReq, 1);

    r->cmd = c;
    r->t = c->t;
    r->type = type;
    r->verb = verb;
    r->fail = fail;
    return r;
}

void qio_req_free(QioReq *r)
{
    if (r->buf) {
        ioq_buf_free(r->buf);
    }
    if (r->ref) {
        bdrv_unref(r->ref);
    }
    g_free(r);
}

size_t qio_aio_outstanding(const QemuIoTarget *t)
{
    size_t n = 0;

    for (guint i = 0; aio_reqs && i < aio_reqs->len; i++) {
        QioReq *r = g_ptr_array_index(aio_reqs, i);

        n += target_equal(&r->t, t);
    }
    return n;
}

static void flush_waiters_check(void)
{
    for (guint i = 0; flush_waiters && i < flush_waiters->len; i++) {
        QioCmd *w = g_ptr_array_index(flush_waiters, i);

        if (!qio_aio_outstanding(&w->t)) {
            g_ptr_array_remove_index(flush_waiters, i--);
            qio_cmd_finish(w, 0);
        }
    }
    if (flush_waiters && !flush_waiters->len) {
        g_ptr_array_free(flush_waiters, TRUE);
        flush_waiters = NULL;
    }
}

void qio_wait_for_aio(QioCmd *c)
{
    if (!qio_aio_outstanding(&c->t)) {
        qio_cmd_finish(c, 0);
        return;
    }
    if (!flush_waiters) {
        flush_waiters = g_ptr_array_new();
    }
    g_ptr_array_add(flush_waiters, c);
}

static void req_done_cb(void *opaque, int ret)
{
    QioReq *r = opaque;
    GString *o = r->cmd ? r->cmd->out : g_string_new(NULL);
    struct timespec t2;
    int result = 0;

    clock_gettime(CLOCK_MONOTONIC, &t2);
    t2 = qio_tsub(t2, r->t1);
    if (ret < 0) {
        qio_out(o, "%s failed: %s\n", r->fail, g_strerror(-ret));
        result = ret;
        goto done;
    }
    if (r->pflag) {
        for (int64_t i = 0; i < r->plen; i++) {
            if (r->buf[r->poff + i] != r->pattern) {
                qio_out(o, "Pattern verification failed at offset %" PRId64
                    ", %" PRId64 " bytes\n", r->offset + r->poff, r->plen);
                result = -EINVAL;
                break;
            }
        }
    }
    if (r->qflag) {
        goto done;
    }
    if (r->vflag) {
        qio_dump_buffer(o, r->buf, r->offset, r->count);
    }
    qio_print_report(o, r->verb, &t2, r->offset, r->count, r->count, 1,
                 r->cflag);

done:
    if (r->cmd) {
        qio_cmd_finish(r->cmd, result);
    } else {
        /* an aio command succeeded when it started; this only reports */
        if (o->len && async_sink) {
            async_sink(o->str);
        } else if (o->len) {
            fputs(o->str, stdout);
            fflush(stdout);
        }
        g_string_free(o, TRUE);
        g_ptr_array_remove(aio_reqs, r);
        if (!aio_reqs->len) {
            g_ptr_array_free(aio_reqs, TRUE);
            aio_reqs = NULL;
        }
        flush_waiters_check();
    }
    qio_req_free(r);
}

/*
 * Start @r.  A request of a command finishes the command; an aio
 * request (@aio) detaches from it and finishes the command at once.
 */
void qio_req_start(QioReq *r, bool aio)
{
    QioCmd *c = r->cmd;

    if (aio) {
        r->cmd = NULL;
        r->ref = c->ref;
        if (r->ref) {
            bdrv_ref(r->ref);
        }
        if (!aio_reqs) {
            aio_reqs = g_ptr_array_new();
        }
        g_ptr_array_add(aio_reqs, r);
    }
    clock_gettime(CLOCK_MONOTONIC, &r->t1);
    target_io(&r->t, r->type, r->offset, r->count, r->buf, r->flags,
              req_done_cb, r);
    if (aio) {
        qio_cmd_finish(c, 0);
    }
}

/*
 * Sum the lengths of readv/writev/aio_* ("off len [len..]") into one
 * buffer size, with qemu-io's create_iovec checks.  -1 on error.
 */
int64_t qio_iovec_size(QioCmd *c, int n, char **lens)
{
    int64_t total = 0;

    for (int i = 0; i < n; i++) {
        int64_t len = qio_cvtnum(c->out, lens[i]);

        if (len < 0) {
            qio_print_cvtnum_err(c->out, len, lens[i]);
            return -1;
        }
        if (len > QIO_MAX_BYTES) {
            qio_out(c->out, "Argument '%s' exceeds maximum size %" PRIu64 "\n",
                lens[i], (uint64_t)QIO_MAX_BYTES);
            return -1;
        }
        if (total > QIO_MAX_BYTES - len) {
            qio_out(c->out, "The total number of bytes exceed the maximum size "
                "%" PRIu64 "\n", (uint64_t)QIO_MAX_BYTES);
            return -1;
        }
        total += len;
    }
    return total;
}

void *qio_filled_buf(int64_t len, int pattern)
{
    void *buf = ioq_buf_alloc(len);

    memset(buf, pattern, len);
    return buf;
}

/* Options qemu-io 7.2 has and qmpd does not (vmstate, compression...). */
void qio_cmd_unsupported(QioCmd *c, char opt)
{
    qio_out(c->out, "%s: option -%c is not supported\n", c->argv[0], opt);
    qio_cmd_finish(c, -ENOTSUP);
}

/* ---- help and the table ------------------------------------------------- */

static void help_oneline(GString *o, const char *name, const QioCmdInfo *ci)
{
    qio_out(o, "%s ", name);
    if (ci->args) {
        qio_out(o, "%s ", ci->args);
    }
    qio_out(o, "-- %s\n", ci->oneline);
}

static void help_f(QioCmd *c, int argc, char **argv);

/*
 * Sorted by name, as qemu-io lists them.  The args strings are qemu-io
 * 7.2's, so usage lines match; options qmpd lacks are refused when used.
 */
static const QioCmdInfo commands[] = {
    {
        .name = "aio_flush", .fn = qio_aio_flush_f,
        .oneline = "completes all outstanding aio requests",
    },
    {
        .name = "aio_read", .fn = qio_aio_read_f, .argmin = 2, .argmax = -1,
        .args = "[-Ciqv] [-P pattern] off len [len..]",
        .oneline = "asynchronously reads a number of bytes",
        .help = "\n"
                " asynchronously reads a range of bytes from the given "
                "offset into one buffer\n"
                " (several lengths are added up); aio_flush waits for it\n"
                " The command succeeds once the request is started; errors "
                "and pattern\n"
                " mismatches are only reported on completion.\n"
                " -C, -- report statistics in a machine parsable format\n"
                " -i, -- count an invalid request in the statistics, "
                "no I/O\n"
                " -P, -- verify the data read against a pattern byte\n"
                " -q, -- quiet mode, do not show I/O statistics\n"
                " -v, -- dump buffer to standard output\n"
                "\n",
    },
    {
        .name = "aio_write", .fn = qio_aio_write_f, .argmin = 2, .argmax = -1,
        .write = true,
        .args = "[-Cfiquz] [-P pattern] off len [len..]",
        .oneline = "asynchronously writes a number of bytes",
        .help = "\n"
                " asynchronously writes a range of bytes at the given "
                "offset (default\n"
                " pattern 0xcd; several lengths are added up); aio_flush "
                "waits for it\n"
                " -C, -- report statistics in a machine parsable format\n"
                " -f, -- use Force Unit Access semantics\n"
                " -i, -- count an invalid request in the statistics, "
                "no I/O\n"
                " -P, -- fill the buffer with this pattern byte\n"
                " -q, -- quiet mode, do not show I/O statistics\n"
                " -u, -- with -z, allow unmapping\n"
                " -z, -- write zeroes\n"
                "\n",
    },
    {
        .name = "alloc", .altname = "a", .fn = qio_alloc_f, .argmin = 1,
        .argmax = 2, .args = "offset [count]",
        .oneline = "checks if offset is allocated in the file",
    },
    {
        .name = "break", .fn = qio_break_f, .argmin = 2, .argmax = 2,
        .args = "event tag",
        .oneline = "sets a breakpoint on event and tags the stopped request "
                   "as tag",
    },
    {
        .name = "discard", .altname = "d", .fn = qio_discard_f, .argmin = 2,
        .write = true,
        .argmax = -1, .args = "[-Cq] off len",
        .oneline = "discards a number of bytes at a specified offset",
        .help = "\n"
                " discards a range of bytes at the given offset\n"
                " -C, -- report statistics in a machine parsable format\n"
                " -q, -- quiet mode, do not show I/O statistics\n"
                "\n",
    },
    {
        .name = "flush", .altname = "f", .fn = qio_flush_f,
        .oneline = "flush all in-core file state to disk",
    },
    {
        .name = "help", .altname = "?", .fn = help_f, .argmin = 0,
        .argmax = 1, .args = "[command]",
        .oneline = "help for one or all commands",
    },
    {
        .name = "length", .altname = "l", .fn = qio_length_f,
        .oneline = "gets the length of the current file",
    },
    {
        .name = "map", .fn = qio_map_f, .args = "",
        .oneline = "prints the allocated areas of a file",
    },
    {
        .name = "read", .altname = "r", .fn = qio_read_f, .argmin = 2,
        .argmax = -1, .args = "[-abCqv] [-P pattern [-s off] [-l len]] off len",
        .oneline = "reads a number of bytes at a specified offset",
        .help = "\n"
                " reads a range of bytes at the given offset, e.g. "
                "'read -v 512 1k'\n"
                " -C, -- report statistics in a machine parsable format\n"
                " -l, -- length for pattern verification (only with -P)\n"
                " -p, -- ignored for backwards compatibility\n"
                " -P, -- verify the data read against a pattern byte\n"
                " -q, -- quiet mode, do not show I/O statistics\n"
                " -s, -- start offset for pattern verification (only with "
                "-P)\n"
                " -v, -- dump buffer to standard output\n"
                " (-b, reading the VM state, is not supported)\n"
                "\n",
    },
    {
        .name = "readv", .fn = qio_readv_f, .argmin = 2, .argmax = -1,
        .args = "[-Cqv] [-P pattern] off len [len..]",
        .oneline = "reads a number of bytes at a specified offset",
        .help = "\n"
                " reads a range of bytes at the given offset; several "
                "lengths are added up\n"
                " -C, -- report statistics in a machine parsable format\n"
                " -P, -- verify the data read against a pattern byte\n"
                " -q, -- quiet mode, do not show I/O statistics\n"
                " -v, -- dump buffer to standard output\n"
                "\n",
    },
    {
        .name = "remove_break", .fn = qio_remove_break_f, .argmin = 1,
        .argmax = 1, .args = "tag", .oneline = "remove a breakpoint by tag",
    },
    {
        .name = "resume", .fn = qio_resume_f, .argmin = 1, .argmax = 1,
        .args = "tag", .oneline = "resumes the request tagged as tag",
    },
    {
        .name = "sleep", .fn = qio_sleep_f, .argmin = 1, .argmax = 1,
        .oneline = "waits for the given value in milliseconds",
    },
    {
        .name = "wait_break", .fn = qio_wait_break_f, .argmin = 1, .argmax = 1,
        .args = "tag", .oneline = "waits for the suspension of a request",
    },
    {
        .name = "write", .altname = "w", .fn = qio_write_f, .argmin = 2,
        .write = true,
        .argmax = -1,
        .args = "[-bcCfnquz] [-P pattern | -s source_file] off len",
        .oneline = "writes a number of bytes at a specified offset",
        .help = "\n"
                " writes a range of bytes at the given offset, e.g. "
                "'write 512 1k'\n"
                " The buffer is filled with 0xcd unless -P says otherwise.\n"
                " -C, -- report statistics in a machine parsable format\n"
                " -f, -- use Force Unit Access semantics\n"
                " -p, -- ignored for backwards compatibility\n"
                " -P, -- fill the buffer with this pattern byte\n"
                " -q, -- quiet mode, do not show I/O statistics\n"
                " -u, -- with -z, allow unmapping\n"
                " -z, -- write zeroes\n"
                " (-b, -c, -n and -s are not supported)\n"
                "\n",
    },
    {
        .name = "writev", .fn = qio_writev_f, .argmin = 2, .argmax = -1,
        .write = true,
        .args = "[-Cfq] [-P pattern] off len [len..]",
        .oneline = "writes a number of bytes at a specified offset",
        .help = "\n"
                " writes a range of bytes at the given offset; several "
                "lengths are added up\n"
                " -C, -- report statistics in a machine parsable format\n"
                " -f, -- use Force Unit Access semantics\n"
                " -P, -- fill the buffer with this pattern byte\n"
                " -q, -- quiet mode, do not show I/O statistics\n"
                "\n",
    },
};

static const QioCmdInfo *find_command(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        const QioCmdInfo *ci = &commands[i];

        if (!strcmp(ci->name, name)
            || (ci->altname && !strcmp(ci->altname, name))) {
            return ci;
        }
    }
    return NULL;
}

static void help_f(QioCmd *c, int argc, char **argv)
{
    const QioCmdInfo *ci;

    if (argc < 2) {
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
            help_oneline(c->out, commands[i].name, &commands[i]);
        }
        qio_out(c->out, "\nUse 'help commandname' for extended help.\n");
        qio_cmd_finish(c, 0);
        return;
    }
    ci = find_command(argv[1]);
    if (!ci) {
        qio_out(c->out, "command %s not found\n", argv[1]);
        qio_cmd_finish(c, -EINVAL);
        return;
    }
    /* qemu-io names the command as typed, alias or not */
    help_oneline(c->out, argv[1], ci);
    if (ci->help) {
        qio_out(c->out, "%s", ci->help);
    }
    qio_cmd_finish(c, 0);
}

/* ---- entry points ------------------------------------------------------- */

static void run_command(QioCmd *c)
{
    GPtrArray *words = g_ptr_array_new();
    const QioCmdInfo *ci;
    Error *err = NULL;
    char *p = c->input;
    char *w;
    int argc;

    while ((w = strsep(&p, " ")) != NULL) {
        if (*w) {
            g_ptr_array_add(words, w);
        }
    }
    argc = words->len;
    g_ptr_array_add(words, NULL);
    c->argv = (char **)g_ptr_array_free(words, FALSE);
    if (argc == 0) {
        qio_cmd_finish(c, 0);
        return;
    }
    ci = find_command(c->argv[0]);
    if (!ci) {
        qio_out(c->err, "command \"%s\" not found\n", c->argv[0]);
        qio_cmd_finish(c, -EINVAL);
        return;
    }
    c->info = ci;
    if (argc - 1 < ci->argmin || (ci->argmax != -1 && argc - 1 > ci->argmax)) {
        if (ci->argmax == -1) {
            qio_out(c->err, "bad argument count %d to %s, expected at least %d "
                "arguments\n", argc - 1, c->argv[0], ci->argmin);
        } else if (ci->argmin == ci->argmax) {
            qio_out(c->err, "bad argument count %d to %s, expected %d "
                "arguments\n", argc - 1, c->argv[0], ci->argmin);
        } else {
            qio_out(c->err, "bad argument count %d to %s, expected between %d "
                "and %d arguments\n", argc - 1, c->argv[0], ci->argmin,
                ci->argmax);
        }
        qio_cmd_finish(c, -EINVAL);
        return;
    }
    /*
     * QEMU asks for the write permission, which a read-only node
     * refuses, and so does an inactive one (an incoming destination's)
     */
    if (ci->write && c->ref
        && (bdrv_is_read_only(c->ref) || bdrv_is_inactive(c->ref))) {
        qio_out(c->mon, "Block node is read-only\n");
        qio_cmd_finish(c, -EPERM);
        return;
    }
    if (ci->write && c->ref && !bdrv_check_write_unresized(c->ref, &err)) {
        qio_out(c->mon, "%s\n", error_get_pretty(err));
        error_free(err);
        qio_cmd_finish(c, -EPERM);
        return;
    }
    /*
     * On a node, QEMU writes through a backend of its own that asks for
     * "write": a parent that does not share it (a copy-before-write
     * filter over the node) refuses.
     */
    if (ci->write && c->t.node
        && bdrv_perm_conflict_unnamed(c->t.node, BLK_PERM_WRITE, &err)) {
        qio_out(c->mon, "%s\n", error_get_pretty(err));
        error_free(err);
        qio_cmd_finish(c, -EPERM);
        return;
    }
    ci->fn(c, argc, c->argv);
}

void qemu_io_run(const QemuIoTarget *t, const char *cmdline,
                 QemuIoDoneCb *done, void *opaque)
{
    QioCmd *c = g_new0(QioCmd, 1);

    g_assert(!t->blk != !t->node);
    c->t = *t;
    c->ref = qio_target_root(t);
    if (c->ref) {
        bdrv_ref(c->ref);
    }
    c->out = g_string_new(NULL);
    c->err = g_string_new(NULL);
    c->mon = g_string_new(NULL);
    c->input = g_strdup(cmdline);
    c->done = done;
    c->opaque = opaque;
    run_command(c);
}

void qemu_io_set_async_sink(QemuIoSink *sink)
{
    async_sink = sink;
}

/* ---- qemu-io through QMP (extension) ------------------------------------ */

/* Everything qemu-io printed, on whichever channel, goes to the client. */
static void qemu_io_reply_cb(void *opaque, const QemuIoResult *r)
{
    QapiReply *reply = opaque;
    g_autofree char *text = g_strconcat(r->mon, r->err, r->out, NULL);
    Error *err = NULL;

    if (r->failed) {
        g_strchomp(text);
        error_setg(&err, "%s", *text ? text : "qemu-io command failed");
        qapi_reply_error(reply, err);
        return;
    }
    qapi_reply_return(reply, qjson_str(text));
}

static void qmp_qemu_io(const json_t *args, QapiReply *reply)
{
    const char *device = qjson_get_str(args, "device");
    QemuIoTarget t = { NULL, NULL, false };
    Error *err = NULL;

    if (qjson_get_bool_or(args, "qdev", false)) {
        t.blk = blk_by_qdev_id(device, &err);
        t.qdev = true;
    } else {
        t.blk = blk_by_name(device);
        if (!t.blk) {
            t.node = bdrv_lookup(NULL, device, &err);
        }
    }
    if (err) {
        qapi_reply_error(reply, err);
        return;
    }
    qemu_io_run(&t, qjson_get_str(args, "command"), qemu_io_reply_cb, reply);
}

const QapiHandler qemu_io_qmp_handlers[] = {
    { "__com.qmpd_qemu-io", NULL, qmp_qemu_io },
};

const size_t qemu_io_qmp_handlers_count = G_N_ELEMENTS(qemu_io_qmp_handlers);
