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
#include "monitor/qemu-io.h"
#include "qapi/dispatch.h"
#include "qapi/error.h"
#include "qapi/qjson.h"

/* QEMU's BDRV_REQUEST_MAX_BYTES: INT_MAX rounded down to 512 bytes. */
#define QIO_MAX_BYTES ((int64_t)0x7ffffe00)

typedef struct QioCmd QioCmd;
typedef struct QioCmdInfo QioCmdInfo;

/*
 * A command implementation.  It must end the command with cmd_finish()
 * exactly once, now or from a later callback.
 */
typedef void QioCmdFn(QioCmd *c, int argc, char **argv);

struct QioCmdInfo {
    const char *name;
    const char *altname;
    QioCmdFn *fn;
    int argmin;
    int argmax;                 /* -1: no limit */
    const char *args;           /* NULL: takes none worth describing */
    const char *oneline;
    const char *help;           /* extended help, or NULL */
    bool write;                 /* needs a writable target */
};

struct QioCmd {
    QemuIoTarget t;
    BlockNode *ref;             /* t.node or the backend's root, held */
    GString *out;               /* qemu-io's stdout */
    GString *err;               /* its stderr */
    GString *mon;               /* error_report(): the monitor in QEMU */
    char *input;                /* argv points into it */
    char **argv;
    const QioCmdInfo *info;
    QemuIoDoneCb *done;
    void *opaque;
    int ret;

    const char *tag;            /* wait_break */

    /* alloc and map walk the allocation status */
    bool map;
    int64_t start;
    int64_t offset;
    int64_t remaining;
    int64_t count;
    int64_t step;               /* bytes asked for in the status call */
    int64_t sum;
    int run_alloc;              /* map: -1 before the first extent */
    int64_t run_start;
    int64_t run_len;
};

typedef enum {
    QIO_READ,
    QIO_WRITE,
    QIO_ZERO,
    QIO_DISCARD,
} QioReqType;

/* One request of read/write/discard/readv/writev/aio_read/aio_write. */
typedef struct {
    QioCmd *cmd;                /* NULL: aio, reported to the sink */
    QemuIoTarget t;
    BlockNode *ref;             /* aio only: held until completion */
    QioReqType type;
    const char *verb;           /* "read", "wrote", "discard" */
    const char *fail;           /* "<fail> failed: <strerror>" */
    int64_t offset;
    int64_t count;
    uint8_t *buf;
    int flags;
    bool qflag;
    bool vflag;
    bool cflag;                 /* -C: machine-readable report */
    bool pflag;
    int pattern;
    int64_t poff;
    int64_t plen;
    struct timespec t1;
} QioReq;

static QemuIoSink *async_sink;
static GPtrArray *aio_reqs;         /* QioReq * started by aio_* */
static GPtrArray *flush_waiters;    /* QioCmd * in aio_flush */

/* ---- output and number formats ------------------------------------------ */

static void G_GNUC_PRINTF(2, 3) out(GString *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_string_append_vprintf(o, fmt, ap);
    va_end(ap);
}

/* qemu-io's size text: "4 KiB", "1.500 KiB", "512 bytes", "0.5 bytes"... */
static void cvtstr(double value, char *str, size_t size)
{
    static const struct {
        unsigned shift;
        const char *suffix;
    } units[] = {
        { 60, " EiB" }, { 50, " PiB" }, { 40, " TiB" },
        { 30, " GiB" }, { 20, " MiB" }, { 10, " KiB" },
    };
    const char *suffix = " bytes";
    char *trim;

    /* below 1 KiB qemu-io prints with %f, hence "0.445017 bytes" */
    snprintf(str, size, "%f", value);
    for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
        double unit = (double)(UINT64_C(1) << units[i].shift);

        if (value >= unit) {
            snprintf(str, size, "%.3f", value / unit);
            suffix = units[i].suffix;
            break;
        }
    }
    trim = strstr(str, ".000");
    if (trim) {
        *trim = '\0';
    }
    g_strlcat(str, suffix, size);
}

static void timestr(const struct timespec *t, char *ts, size_t size,
                    bool verbose)
{
    double frac = t->tv_nsec / 1e9;

    if (verbose || t->tv_sec) {
        snprintf(ts, size, "%u:%02u:%05.2f", (unsigned)(t->tv_sec / 3600),
                 (unsigned)(t->tv_sec % 3600 / 60),
                 (double)(t->tv_sec % 60) + frac);
    } else {
        snprintf(ts, size, "%05.2f sec", frac);
    }
}

static struct timespec tsub(struct timespec t2, struct timespec t1)
{
    t2.tv_sec -= t1.tv_sec;
    t2.tv_nsec -= t1.tv_nsec;
    if (t2.tv_nsec < 0) {
        t2.tv_nsec += 1000000000;
        t2.tv_sec--;
    }
    return t2;
}

static double tdiv(double value, const struct timespec *t)
{
    return value / ((double)t->tv_sec + (double)t->tv_nsec / 1e9);
}

static void print_report(GString *o, const char *op,
                         const struct timespec *t, int64_t offset,
                         int64_t count, int64_t total, int cnt, bool cflag)
{
    char s1[64], s2[64], ts[64];

    timestr(t, ts, sizeof(ts), cflag);
    if (cflag) {
        out(o, "%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
            tdiv((double)total, t), tdiv((double)cnt, t));
        return;
    }
    cvtstr((double)total, s1, sizeof(s1));
    cvtstr(tdiv((double)total, t), s2, sizeof(s2));
    out(o, "%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", op,
        total, count, offset);
    out(o, "%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, cnt, ts, s2,
        tdiv((double)cnt, t));
}

static void dump_buffer(GString *o, const uint8_t *buf, int64_t offset,
                        int64_t len)
{
    for (int64_t i = 0; i < len; i += 16) {
        int64_t n = MIN(16, len - i);

        out(o, "%08" PRIx64 ":  ", (uint64_t)(offset + i));
        for (int64_t j = 0; j < n; j++) {
            out(o, "%02x ", buf[i + j]);
        }
        g_string_append_c(o, ' ');
        for (int64_t j = 0; j < n; j++) {
            /* ASCII, not the locale's idea of a letter: stable output */
            g_string_append_c(o, g_ascii_isalnum(buf[i + j]) ? buf[i + j]
                                                              : '.');
        }
        g_string_append_c(o, '\n');
    }
}

/* log2 of the multiplier of a size suffix, or -1 (qemu's suffix_mul). */
static int suffix_shift(char c)
{
    switch (g_ascii_toupper(c)) {
    case 'B':
        return 0;
    case 'K':
        return 10;
    case 'M':
        return 20;
    case 'G':
        return 30;
    case 'T':
        return 40;
    case 'P':
        return 50;
    case 'E':
        return 60;
    }
    return -1;
}

/*
 * qemu_strtosz as qemu-io 7.2 has it: decimal or 0x hex, a fraction
 * (only together with a suffix; rounded to the nearest byte), a suffix
 * B/K/M/G/T/P/E in powers of 1024.  *@endp is where parsing stopped;
 * the caller rejects anything left over.
 */
static int strtosz_parse(GString *o, const char *s, const char **endp,
                         uint64_t *result)
{
    char *e;
    uint64_t val;
    uint64_t valf = 0;          /* the fraction, 0.64 fixed point */
    bool hex = false;
    int shift;
    uint64_t hi, lo, add;

    errno = 0;
    val = strtoull(s, &e, 10);
    *endp = e;
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (e == s) {
        return -EINVAL;
    }
    if (memchr(s, '-', e - s)) {
        *endp = s;
        return -EINVAL;
    }
    if (val == 0 && (*e == 'x' || *e == 'X')) {
        errno = 0;
        val = strtoull(s, &e, 16);
        *endp = e;
        if (errno == ERANGE) {
            return -ERANGE;
        }
        if (*e == '.') {
            *endp = s;
            return -EINVAL;
        }
        hex = true;
    } else if (*e == '.') {
        const char *f = e;
        double fraction;

        errno = 0;
        fraction = strtod(f, &e);
        if (e == f || errno == ERANGE) {
            /* "1.k": a point without digits; qemu skips just the point */
            e++;
        } else if (memchr(f, 'e', e - f) || memchr(f, 'E', e - f)) {
            *endp = s;
            return -EINVAL;
        } else {
            double scaled = fraction * 18446744073709551616.0;

            /*
             * .99999999999999999 rounds to 1.0; QEMU's (uint64_t) cast of
             * 2^64 yields 0 on x86, so the fraction then counts as none.
             */
            valf = scaled < 18446744073709551616.0 ? (uint64_t)scaled : 0;
        }
        *endp = e;
    }

    shift = suffix_shift(*e);
    if (shift >= 0) {
        if (hex) {
            out(o, "warning: Using a multiplier suffix on hex numbers is "
                "deprecated: %s\n", s);
        }
        e++;
        *endp = e;
    } else {
        shift = 0;
    }
    if (shift == 0) {
        if (valf) {
            *endp = s;
            return -EINVAL;
        }
        *result = val;
        return 0;
    }

    /* val * 2^shift + round(valf * 2^shift), 128 bits wide */
    hi = val >> (64 - shift);
    lo = val << shift;
    add = valf >> (64 - shift);
    lo += add;
    hi += lo < add;
    add = (valf << shift) >> 63;
    lo += add;
    hi += lo < add;
    if (hi) {
        return -ERANGE;
    }
    *result = lo;
    return 0;
}

/* A byte count or offset: the value, or -EINVAL / -ERANGE. */
static int64_t cvtnum(GString *o, const char *s)
{
    const char *end = s;
    uint64_t val = 0;
    int ret = strtosz_parse(o, s, &end, &val);

    if (*end) {
        return -EINVAL;
    }
    if (ret < 0) {
        return ret;
    }
    return val > INT64_MAX ? -ERANGE : (int64_t)val;
}

static void print_cvtnum_err(GString *o, int64_t rc, const char *arg)
{
    if (rc == -ERANGE) {
        out(o, "Parsing error: argument too large -- %s\n", arg);
    } else {
        out(o, "Parsing error: non-numeric argument, or "
            "extraneous/unrecognized suffix -- %s\n", arg);
    }
}

/* A fill or verification byte: 0..255 in strtol's base 0, or -1. */
static int parse_pattern(GString *o, const char *arg)
{
    char *end = NULL;
    long pattern = strtol(arg, &end, 0);

    if (pattern < 0 || pattern > 255 || *end != '\0') {
        out(o, "%s is not a valid pattern byte\n", arg);
        return -1;
    }
    return pattern;
}

/* ---- getopt ------------------------------------------------------------- */

/*
 * glibc's getopt, reentrant: options may follow operands (operands are
 * collected, in order, in @pos), "--" ends the options, errors print
 * glibc's messages with the command name.
 */
typedef struct {
    int argc;
    char **argv;
    int idx;
    const char *cluster;        /* rest of "-abc" still to return */
    const char *optarg;
    GPtrArray *pos;             /* char *, borrowed from argv */
} OptIter;

static void opt_init(OptIter *it, int argc, char **argv)
{
    it->argc = argc;
    it->argv = argv;
    it->idx = 1;
    it->cluster = NULL;
    it->optarg = NULL;
    it->pos = g_ptr_array_new();
}

static void opt_free(OptIter *it)
{
    g_ptr_array_free(it->pos, TRUE);
}

/* The next option letter, '?' after printing an error, -1 at the end. */
static int opt_next(OptIter *it, GString *o, const char *optstring)
{
    const char *spec;
    char ch;

    while (!it->cluster || !*it->cluster) {
        const char *a;

        it->cluster = NULL;
        if (it->idx >= it->argc) {
            return -1;
        }
        a = it->argv[it->idx++];
        if (!strcmp(a, "--")) {
            while (it->idx < it->argc) {
                g_ptr_array_add(it->pos, it->argv[it->idx++]);
            }
            return -1;
        }
        if (a[0] != '-' || a[1] == '\0') {
            g_ptr_array_add(it->pos, (char *)a);
            continue;
        }
        it->cluster = a + 1;
    }
    ch = *it->cluster++;
    spec = ch == ':' ? NULL : strchr(optstring, ch);
    if (!spec) {
        out(o, "%s: invalid option -- '%c'\n", it->argv[0], ch);
        return '?';
    }
    if (spec[1] == ':') {
        if (*it->cluster) {
            it->optarg = it->cluster;
        } else if (it->idx < it->argc) {
            it->optarg = it->argv[it->idx++];
        } else {
            out(o, "%s: option requires an argument -- '%c'\n", it->argv[0],
                ch);
            return '?';
        }
        it->cluster = NULL;
    }
    return ch;
}

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
static void cmd_finish(QioCmd *c, int ret)
{
    c->ret = ret;
    /* callers may be inside qemu_io_run(); done must come later */
    ioq_defer_int(cmd_done_cb, c, 0);
}

static void cmd_usage(QioCmd *c)
{
    out(c->out, "%s %s -- %s\n", c->info->name, c->info->args,
        c->info->oneline);
    cmd_finish(c, -EINVAL);
}

static bool target_equal(const QemuIoTarget *a, const QemuIoTarget *b)
{
    return a->blk == b->blk && a->node == b->node && a->qdev == b->qdev;
}

static BlockNode *target_root(const QemuIoTarget *t)
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

static QioReq *req_new(QioCmd *c, QioReqType type, const char *verb,
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

static void req_free(QioReq *r)
{
    if (r->buf) {
        ioq_buf_free(r->buf);
    }
    if (r->ref) {
        bdrv_unref(r->ref);
    }
    g_free(r);
}

static size_t aio_outstanding(const QemuIoTarget *t)
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

        if (!aio_outstanding(&w->t)) {
            g_ptr_array_remove_index(flush_waiters, i--);
            cmd_finish(w, 0);
        }
    }
    if (flush_waiters && !flush_waiters->len) {
        g_ptr_array_free(flush_waiters, TRUE);
        flush_waiters = NULL;
    }
}

static void req_done_cb(void *opaque, int ret)
{
    QioReq *r = opaque;
    GString *o = r->cmd ? r->cmd->out : g_string_new(NULL);
    struct timespec t2;
    int result = 0;

    clock_gettime(CLOCK_MONOTONIC, &t2);
    t2 = tsub(t2, r->t1);
    if (ret < 0) {
        out(o, "%s failed: %s\n", r->fail, g_strerror(-ret));
        result = ret;
        goto done;
    }
    if (r->pflag) {
        for (int64_t i = 0; i < r->plen; i++) {
            if (r->buf[r->poff + i] != r->pattern) {
                out(o, "Pattern verification failed at offset %" PRId64
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
        dump_buffer(o, r->buf, r->offset, r->count);
    }
    print_report(o, r->verb, &t2, r->offset, r->count, r->count, 1,
                 r->cflag);

done:
    if (r->cmd) {
        cmd_finish(r->cmd, result);
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
    req_free(r);
}

/*
 * Start @r.  A request of a command finishes the command; an aio
 * request (@aio) detaches from it and finishes the command at once.
 */
static void req_start(QioReq *r, bool aio)
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
        cmd_finish(c, 0);
    }
}

/*
 * Sum the lengths of readv/writev/aio_* ("off len [len..]") into one
 * buffer size, with qemu-io's create_iovec checks.  -1 on error.
 */
static int64_t iovec_size(QioCmd *c, int n, char **lens)
{
    int64_t total = 0;

    for (int i = 0; i < n; i++) {
        int64_t len = cvtnum(c->out, lens[i]);

        if (len < 0) {
            print_cvtnum_err(c->out, len, lens[i]);
            return -1;
        }
        if (len > QIO_MAX_BYTES) {
            out(c->out, "Argument '%s' exceeds maximum size %" PRIu64 "\n",
                lens[i], (uint64_t)QIO_MAX_BYTES);
            return -1;
        }
        if (total > QIO_MAX_BYTES - len) {
            out(c->out, "The total number of bytes exceed the maximum size "
                "%" PRIu64 "\n", (uint64_t)QIO_MAX_BYTES);
            return -1;
        }
        total += len;
    }
    return total;
}

static void *filled_buf(int64_t len, int pattern)
{
    void *buf = ioq_buf_alloc(len);

    memset(buf, pattern, len);
    return buf;
}

/* Options qemu-io 7.2 has and qmpd does not (vmstate, compression...). */
static void cmd_unsupported(QioCmd *c, char opt)
{
    out(c->out, "%s: option -%c is not supported\n", c->argv[0], opt);
    cmd_finish(c, -ENOTSUP);
}

/* ---- read, write, readv, writev, discard -------------------------------- */

static void read_f(QioCmd *c, int argc, char **argv)
{
    OptIter it;
    bool bflag = false, sflag = false, lflag = false;
    QioReq *r = req_new(c, QIO_READ, "read", "read");
    int64_t offset, count;
    char **pos;
    int ch;

    opt_init(&it, argc, argv);
    while ((ch = opt_next(&it, c->out, "bCl:pP:qs:v")) != -1) {
        switch (ch) {
        case 'b':
            bflag = true;
            break;
        case 'C':
            r->cflag = true;
            break;
        case 'l':
            lflag = true;
            r->plen = cvtnum(c->out, it.optarg);
            if (r->plen < 0) {
                print_cvtnum_err(c->out, r->plen, it.optarg);
                cmd_finish(c, r->plen);
                goto out;
            }
            break;
        case 'p':
            break;              /* ignored for backwards compatibility */
        case 'P':
            r->pflag = true;
            r->pattern = parse_pattern(c->out, it.optarg);
            if (r->pattern < 0) {
                cmd_finish(c, -EINVAL);
                goto out;
            }
            break;
        case 'q':
            r->qflag = true;
            break;
        case 's':
            sflag = true;
            r->poff = cvtnum(c->out, it.optarg);
            if (r->poff < 0) {
                print_cvtnum_err(c->out, r->poff, it.optarg);
                cmd_finish(c, r->poff);
                goto out;
            }
            break;
        case 'v':
            r->vflag = true;
            break;
        default:
            cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len != 2) {
        cmd_usage(c);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = cvtnum(c->out, pos[0]);
    if (offset < 0) {
        print_cvtnum_err(c->out, offset, pos[0]);
        cmd_finish(c, offset);
        goto out;
    }
    count = cvtnum(c->out, pos[1]);
    if (count < 0) {
        print_cvtnum_err(c->out, count, pos[1]);
        cmd_finish(c, count);
        goto out;
    }
    if (count > QIO_MAX_BYTES) {
        out(c->out, "length cannot exceed %" PRIu64 ", given %s\n",
            (uint64_t)QIO_MAX_BYTES, pos[1]);
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if (!r->pflag && (lflag || sflag)) {
        cmd_usage(c);
        goto out;
    }
    if (!lflag) {
        r->plen = count - r->poff;
    }
    if (r->plen < 0 || r->poff > count || r->plen > count - r->poff) {
        out(c->out, "pattern verification range exceeds end of read data\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if (bflag) {
        cmd_unsupported(c, 'b');
        goto out;
    }
    r->offset = offset;
    r->count = count;
    r->buf = filled_buf(count, 0xab);
    req_start(r, false);
    opt_free(&it);
    return;

out:
    req_free(r);
    opt_free(&it);
}

static void write_f(QioCmd *c, int argc, char **argv)
{
    OptIter it;
    bool bflag = false, cflag = false, nflag = false, pflag = false;
    bool sflag = false, zflag = false;
    QioReq *r = req_new(c, QIO_WRITE, "wrote", "write");
    int pattern = 0xcd;
    int64_t offset, count;
    char **pos;
    int ch;

    opt_init(&it, argc, argv);
    while ((ch = opt_next(&it, c->out, "bcCfnpP:qs:uz")) != -1) {
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
            pattern = parse_pattern(c->out, it.optarg);
            if (pattern < 0) {
                cmd_finish(c, -EINVAL);
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
            cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len != 2) {
        cmd_usage(c);
        goto out;
    }
    if (bflag && zflag) {
        out(c->out, "-b and -z cannot be specified at the same time\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if ((r->flags & BDRV_REQ_FUA) && (bflag || cflag)) {
        out(c->out, "-f and -b or -c cannot be specified at the same time\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if (nflag && !zflag) {
        out(c->out, "-n requires -z to be specified\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if ((r->flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        out(c->out, "-u requires -z to be specified\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if (zflag + pflag + sflag > 1) {
        out(c->out, "Only one of -z, -P, and -s can be specified at the "
            "same time\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = cvtnum(c->out, pos[0]);
    if (offset < 0) {
        print_cvtnum_err(c->out, offset, pos[0]);
        cmd_finish(c, offset);
        goto out;
    }
    count = cvtnum(c->out, pos[1]);
    if (count < 0) {
        print_cvtnum_err(c->out, count, pos[1]);
        cmd_finish(c, count);
        goto out;
    }
    if (count > QIO_MAX_BYTES && !nflag) {
        out(c->out, "length cannot exceed %" PRIu64 " without -n, given %s\n",
            (uint64_t)QIO_MAX_BYTES, pos[1]);
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if (bflag || cflag || nflag || sflag) {
        cmd_unsupported(c, bflag ? 'b' : cflag ? 'c' : nflag ? 'n' : 's');
        goto out;
    }
    r->offset = offset;
    r->count = count;
    if (zflag) {
        r->type = QIO_ZERO;
    } else {
        r->buf = filled_buf(count, pattern);
    }
    req_start(r, false);
    opt_free(&it);
    return;

out:
    req_free(r);
    opt_free(&it);
}

/* readv and writev: like read and write, several lengths, one request. */
static void rwv_f(QioCmd *c, int argc, char **argv, bool write)
{
    OptIter it;
    QioReq *r = write ? req_new(c, QIO_WRITE, "wrote", "writev")
                      : req_new(c, QIO_READ, "read", "readv");
    int pattern = write ? 0xcd : 0;
    int64_t offset, count;
    char **pos;
    int ch;

    opt_init(&it, argc, argv);
    while ((ch = opt_next(&it, c->out, write ? "CfP:q" : "CP:qv")) != -1) {
        switch (ch) {
        case 'C':
            r->cflag = true;
            break;
        case 'f':
            r->flags |= BDRV_REQ_FUA;
            break;
        case 'P':
            r->pflag = !write;
            pattern = parse_pattern(c->out, it.optarg);
            if (pattern < 0) {
                cmd_finish(c, -EINVAL);
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
            cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len < 2) {
        cmd_usage(c);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = cvtnum(c->out, pos[0]);
    if (offset < 0) {
        print_cvtnum_err(c->out, offset, pos[0]);
        cmd_finish(c, offset);
        goto out;
    }
    count = iovec_size(c, it.pos->len - 1, pos + 1);
    if (count < 0) {
        cmd_finish(c, -EINVAL);
        goto out;
    }
    r->offset = offset;
    r->count = count;
    r->pattern = pattern;
    r->plen = count;
    r->buf = filled_buf(count, write ? pattern : 0xab);
    req_start(r, false);
    opt_free(&it);
    return;

out:
    req_free(r);
    opt_free(&it);
}

static void readv_f(QioCmd *c, int argc, char **argv)
{
    rwv_f(c, argc, argv, false);
}

static void writev_f(QioCmd *c, int argc, char **argv)
{
    rwv_f(c, argc, argv, true);
}

static void discard_f(QioCmd *c, int argc, char **argv)
{
    OptIter it;
    QioReq *r = req_new(c, QIO_DISCARD, "discard", "discard");
    int64_t offset, count;
    char **pos;
    int ch;

    opt_init(&it, argc, argv);
    while ((ch = opt_next(&it, c->out, "Cq")) != -1) {
        switch (ch) {
        case 'C':
            r->cflag = true;
            break;
        case 'q':
            r->qflag = true;
            break;
        default:
            cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len != 2) {
        cmd_usage(c);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = cvtnum(c->out, pos[0]);
    if (offset < 0) {
        print_cvtnum_err(c->out, offset, pos[0]);
        cmd_finish(c, offset);
        goto out;
    }
    count = cvtnum(c->out, pos[1]);
    if (count < 0) {
        print_cvtnum_err(c->out, count, pos[1]);
        cmd_finish(c, count);
        goto out;
    }
    if (count > QIO_MAX_BYTES) {
        out(c->out, "length cannot exceed %" PRIu64 ", given %s\n",
            (uint64_t)QIO_MAX_BYTES, pos[1]);
        cmd_finish(c, -EINVAL);
        goto out;
    }
    r->offset = offset;
    r->count = count;
    req_start(r, false);
    opt_free(&it);
    return;

out:
    req_free(r);
    opt_free(&it);
}

/* ---- aio_read, aio_write, aio_flush, flush ------------------------------ */

/* "-i": count an invalid request in the backend's statistics, as QEMU. */
static void account_invalid(QioCmd *c, bool write)
{
    out(c->out, "injecting invalid %s request\n", write ? "write" : "read");
    if (c->t.blk) {
        if (write) {
            blk_stats(c->t.blk)->invalid_wr++;
        } else {
            blk_stats(c->t.blk)->invalid_rd++;
        }
    }
    cmd_finish(c, 0);
}

static void aio_rw_f(QioCmd *c, int argc, char **argv, bool write)
{
    OptIter it;
    QioReq *r = write ? req_new(c, QIO_WRITE, "wrote", "aio_write")
                      : req_new(c, QIO_READ, "read", "readv");
    bool zflag = false;
    int pattern = write ? 0xcd : 0;
    int64_t offset, count;
    char **pos;
    int ch;

    opt_init(&it, argc, argv);
    while ((ch = opt_next(&it, c->out, write ? "CfiP:quz" : "CiP:qv"))
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
            pattern = parse_pattern(c->out, it.optarg);
            if (pattern < 0) {
                cmd_finish(c, -EINVAL);
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
            cmd_usage(c);
            goto out;
        }
    }
    if (it.pos->len < 2) {
        cmd_usage(c);
        goto out;
    }
    if (zflag && it.pos->len != 2) {
        out(c->out, "-z supports only a single length parameter\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    if ((r->flags & BDRV_REQ_MAY_UNMAP) && !zflag) {
        out(c->out, "-u requires -z to be specified\n");
        cmd_finish(c, -EINVAL);
        goto out;
    }
    pos = (char **)it.pos->pdata;
    offset = cvtnum(c->out, pos[0]);
    if (offset < 0) {
        print_cvtnum_err(c->out, offset, pos[0]);
        cmd_finish(c, offset);
        goto out;
    }
    if (zflag) {
        count = cvtnum(c->out, pos[1]);
        if (count < 0) {
            print_cvtnum_err(c->out, count, pos[1]);
            cmd_finish(c, count);
            goto out;
        }
        r->type = QIO_ZERO;
    } else {
        count = iovec_size(c, it.pos->len - 1, pos + 1);
        if (count < 0) {
            if (c->t.blk) {
                if (write) {
                    blk_stats(c->t.blk)->invalid_wr++;
                } else {
                    blk_stats(c->t.blk)->invalid_rd++;
                }
            }
            cmd_finish(c, -EINVAL);
            goto out;
        }
        r->buf = filled_buf(count, write ? pattern : 0xab);
    }
    r->offset = offset;
    r->count = count;
    r->pattern = pattern;
    r->plen = count;
    req_start(r, true);
    opt_free(&it);
    return;

out:
    req_free(r);
    opt_free(&it);
}

static void aio_read_f(QioCmd *c, int argc, char **argv)
{
    aio_rw_f(c, argc, argv, false);
}

static void aio_write_f(QioCmd *c, int argc, char **argv)
{
    aio_rw_f(c, argc, argv, true);
}

static void aio_flush_f(QioCmd *c, int argc, char **argv)
{
    if (!aio_outstanding(&c->t)) {
        cmd_finish(c, 0);
        return;
    }
    if (!flush_waiters) {
        flush_waiters = g_ptr_array_new();
    }
    g_ptr_array_add(flush_waiters, c);
}

static void flush_done_cb(void *opaque, int ret)
{
    /* qemu-io 7.2 prints nothing when a flush fails */
    cmd_finish(opaque, ret);
}

static void flush_f(QioCmd *c, int argc, char **argv)
{
    if (c->t.blk) {
        (c->t.qdev ? blk_dev_io : blk_io)(c->t.blk, BLK_IO_FLUSH, 0, 0, NULL,
                                           0, flush_done_cb, c);
    } else {
        bdrv_flush(c->t.node, flush_done_cb, c);
    }
}

/* ---- length, alloc, map ------------------------------------------------- */

static void length_f(QioCmd *c, int argc, char **argv)
{
    char s1[64];

    if (!c->ref) {
        out(c->out, "getlength: %s\n", g_strerror(ENOMEDIUM));
        cmd_finish(c, -ENOMEDIUM);
        return;
    }
    cvtstr((double)bdrv_length(c->ref), s1, sizeof(s1));
    out(c->out, "%s\n", s1);
    cmd_finish(c, 0);
}

static void walk_next(QioCmd *c);

static void walk_error(QioCmd *c, int ret)
{
    if (c->map) {
        out(c->out, "Failed to get allocation status: %s\n",
            g_strerror(-ret));
    } else {
        out(c->out, "is_allocated failed: %s\n", g_strerror(-ret));
    }
    cmd_finish(c, ret);
}

static void map_print_run(QioCmd *c)
{
    char s1[64], s2[64];

    cvtstr((double)c->run_len, s1, sizeof(s1));
    cvtstr((double)c->run_start, s2, sizeof(s2));
    out(c->out, "%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
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
            out(c->out, "Unexpected end of image\n");
            cmd_finish(c, -EIO);
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
        cvtstr((double)c->start, s1, sizeof(s1));
        out(c->out, "%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n",
            c->sum, c->count, s1);
    }
    cmd_finish(c, 0);
}

static void alloc_f(QioCmd *c, int argc, char **argv)
{
    int64_t offset = cvtnum(c->out, argv[1]);
    int64_t count = 512;

    if (offset < 0) {
        print_cvtnum_err(c->out, offset, argv[1]);
        cmd_finish(c, offset);
        return;
    }
    if (argc == 3) {
        count = cvtnum(c->out, argv[2]);
        if (count < 0) {
            print_cvtnum_err(c->out, count, argv[2]);
            cmd_finish(c, count);
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

static void map_f(QioCmd *c, int argc, char **argv)
{
    c->map = true;
    if (!c->ref) {
        out(c->out, "Failed to query image length: %s\n",
            g_strerror(ENOMEDIUM));
        cmd_finish(c, -ENOMEDIUM);
        return;
    }
    c->run_alloc = -1;
    c->offset = 0;
    c->count = c->remaining = (int64_t)bdrv_length(c->ref);
    walk_next(c);
}

/* ---- blkdebug breakpoints, sleep ---------------------------------------- */

static void break_f(QioCmd *c, int argc, char **argv)
{
    int ret;

    if (!bdrv_debug_event_raised(argv[1])) {
        out(c->out, "Could not set breakpoint: blkdebug event '%s' is never "
            "raised by qmpd\n", argv[1]);
        cmd_finish(c, -ENOTSUP);
        return;
    }
    ret = bdrv_debug_breakpoint(c->ref, argv[1], argv[2]);
    if (ret < 0) {
        out(c->out, "Could not set breakpoint: %s\n", g_strerror(-ret));
    }
    cmd_finish(c, ret);
}

static void remove_break_f(QioCmd *c, int argc, char **argv)
{
    int ret = bdrv_debug_remove_breakpoint(c->ref, argv[1]);

    if (ret < 0) {
        out(c->out, "Could not remove breakpoint %s: %s\n", argv[1],
            g_strerror(-ret));
    }
    cmd_finish(c, ret);
}

static void resume_f(QioCmd *c, int argc, char **argv)
{
    int ret = bdrv_debug_resume(c->ref, argv[1]);

    if (ret < 0) {
        out(c->out, "Could not resume request: %s\n", g_strerror(-ret));
    }
    cmd_finish(c, ret);
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
    cmd_finish(c, 0);
    return G_SOURCE_REMOVE;
}

static void wait_break_f(QioCmd *c, int argc, char **argv)
{
    c->tag = argv[1];
    if (bdrv_debug_is_suspended(c->ref, c->tag)) {
        cmd_finish(c, 0);
        return;
    }
    g_timeout_add(1, wait_break_tick_cb, c);
}

static gboolean sleep_done_cb(gpointer opaque)
{
    QioCmd *c = opaque;

    cmd_finish(c, 0);
    return G_SOURCE_REMOVE;
}

static void sleep_f(QioCmd *c, int argc, char **argv)
{
    char *end;
    long ms = strtol(argv[1], &end, 0);

    if (ms < 0 || *end != '\0') {
        out(c->out, "%s is not a valid number\n", argv[1]);
        cmd_finish(c, -EINVAL);
        return;
    }
    g_timeout_add(MIN(ms, (long)G_MAXUINT), sleep_done_cb, c);
}

/* ---- help and the table ------------------------------------------------- */

static void help_oneline(GString *o, const char *name, const QioCmdInfo *ci)
{
    out(o, "%s ", name);
    if (ci->args) {
        out(o, "%s ", ci->args);
    }
    out(o, "-- %s\n", ci->oneline);
}

static void help_f(QioCmd *c, int argc, char **argv);

/*
 * Sorted by name, as qemu-io lists them.  The args strings are qemu-io
 * 7.2's, so usage lines match; options qmpd lacks are refused when used.
 */
static const QioCmdInfo commands[] = {
    {
        .name = "aio_flush", .fn = aio_flush_f,
        .oneline = "completes all outstanding aio requests",
    },
    {
        .name = "aio_read", .fn = aio_read_f, .argmin = 2, .argmax = -1,
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
        .name = "aio_write", .fn = aio_write_f, .argmin = 2, .argmax = -1,
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
        .name = "alloc", .altname = "a", .fn = alloc_f, .argmin = 1,
        .argmax = 2, .args = "offset [count]",
        .oneline = "checks if offset is allocated in the file",
    },
    {
        .name = "break", .fn = break_f, .argmin = 2, .argmax = 2,
        .args = "event tag",
        .oneline = "sets a breakpoint on event and tags the stopped request "
                   "as tag",
    },
    {
        .name = "discard", .altname = "d", .fn = discard_f, .argmin = 2,
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
        .name = "flush", .altname = "f", .fn = flush_f,
        .oneline = "flush all in-core file state to disk",
    },
    {
        .name = "help", .altname = "?", .fn = help_f, .argmin = 0,
        .argmax = 1, .args = "[command]",
        .oneline = "help for one or all commands",
    },
    {
        .name = "length", .altname = "l", .fn = length_f,
        .oneline = "gets the length of the current file",
    },
    {
        .name = "map", .fn = map_f, .args = "",
        .oneline = "prints the allocated areas of a file",
    },
    {
        .name = "read", .altname = "r", .fn = read_f, .argmin = 2,
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
        .name = "readv", .fn = readv_f, .argmin = 2, .argmax = -1,
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
        .name = "remove_break", .fn = remove_break_f, .argmin = 1,
        .argmax = 1, .args = "tag", .oneline = "remove a breakpoint by tag",
    },
    {
        .name = "resume", .fn = resume_f, .argmin = 1, .argmax = 1,
        .args = "tag", .oneline = "resumes the request tagged as tag",
    },
    {
        .name = "sleep", .fn = sleep_f, .argmin = 1, .argmax = 1,
        .oneline = "waits for the given value in milliseconds",
    },
    {
        .name = "wait_break", .fn = wait_break_f, .argmin = 1, .argmax = 1,
        .args = "tag", .oneline = "waits for the suspension of a request",
    },
    {
        .name = "write", .altname = "w", .fn = write_f, .argmin = 2,
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
        .name = "writev", .fn = writev_f, .argmin = 2, .argmax = -1,
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
        out(c->out, "\nUse 'help commandname' for extended help.\n");
        cmd_finish(c, 0);
        return;
    }
    ci = find_command(argv[1]);
    if (!ci) {
        out(c->out, "command %s not found\n", argv[1]);
        cmd_finish(c, -EINVAL);
        return;
    }
    /* qemu-io names the command as typed, alias or not */
    help_oneline(c->out, argv[1], ci);
    if (ci->help) {
        out(c->out, "%s", ci->help);
    }
    cmd_finish(c, 0);
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
        cmd_finish(c, 0);
        return;
    }
    ci = find_command(c->argv[0]);
    if (!ci) {
        out(c->err, "command \"%s\" not found\n", c->argv[0]);
        cmd_finish(c, -EINVAL);
        return;
    }
    c->info = ci;
    if (argc - 1 < ci->argmin || (ci->argmax != -1 && argc - 1 > ci->argmax)) {
        if (ci->argmax == -1) {
            out(c->err, "bad argument count %d to %s, expected at least %d "
                "arguments\n", argc - 1, c->argv[0], ci->argmin);
        } else if (ci->argmin == ci->argmax) {
            out(c->err, "bad argument count %d to %s, expected %d "
                "arguments\n", argc - 1, c->argv[0], ci->argmin);
        } else {
            out(c->err, "bad argument count %d to %s, expected between %d "
                "and %d arguments\n", argc - 1, c->argv[0], ci->argmin,
                ci->argmax);
        }
        cmd_finish(c, -EINVAL);
        return;
    }
    /* QEMU asks for the write permission, which a read-only node refuses */
    if (ci->write && c->ref && bdrv_is_read_only(c->ref)) {
        out(c->mon, "Block node is read-only\n");
        cmd_finish(c, -EPERM);
        return;
    }
    if (ci->write && c->ref && !bdrv_check_write_unresized(c->ref, &err)) {
        out(c->mon, "%s\n", error_get_pretty(err));
        error_free(err);
        cmd_finish(c, -EPERM);
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
    c->ref = target_root(t);
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
