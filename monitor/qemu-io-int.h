/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-io's interpreter inside: the command and request types and what
 * its three files share.  qemu-io.c runs commands (plumbing, requests,
 * the table, the entry points), qemu-io-format.c prints and parses as
 * qemu-io 7.2 (numbers, sizes, reports, getopt), qemu-io-cmds.c holds
 * the commands.
 */
#ifndef MONITOR_QEMU_IO_INT_H
#define MONITOR_QEMU_IO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <glib.h>

#include "block/core/block-int.h"
#include "monitor/qemu-io.h"

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

/*
 * qemu-io-format.c: output, numbers and sizes as qemu-io prints and
 * parses them, and a reentrant getopt.
 */
void G_GNUC_PRINTF(2, 3) qio_out(GString *o, const char *fmt, ...);
void qio_cvtstr(double value, char *str, size_t size);
struct timespec qio_tsub(struct timespec t2, struct timespec t1);
void qio_print_report(GString *o, const char *op, const struct timespec *t,
                      int64_t offset, int64_t count, int64_t total, int cnt,
                      bool cflag);
void qio_dump_buffer(GString *o, const uint8_t *buf, int64_t offset,
                     int64_t len);
int64_t qio_cvtnum(GString *o, const char *s);
void qio_print_cvtnum_err(GString *o, int64_t rc, const char *arg);
int qio_parse_pattern(GString *o, const char *arg);
void qio_opt_init(OptIter *it, int argc, char **argv);
void qio_opt_free(OptIter *it);
int qio_opt_next(OptIter *it, GString *o, const char *optstring);

/* qemu-io.c: finishing commands, targets, requests */
void qio_cmd_finish(QioCmd *c, int ret);
void qio_cmd_usage(QioCmd *c);
BlockNode *qio_target_root(const QemuIoTarget *t);
QioReq *qio_req_new(QioCmd *c, QioReqType type, const char *verb,
                    const char *fail);
void qio_req_free(QioReq *r);
size_t qio_aio_outstanding(const QemuIoTarget *t);
void qio_req_start(QioReq *r, bool aio);
int64_t qio_iovec_size(QioCmd *c, int n, char **lens);
void *qio_filled_buf(int64_t len, int pattern);
void qio_cmd_unsupported(QioCmd *c, char opt);
void qio_wait_for_aio(QioCmd *c);

/* qemu-io-cmds.c: the commands of the table */
void qio_read_f(QioCmd *c, int argc, char **argv);
void qio_write_f(QioCmd *c, int argc, char **argv);
void qio_readv_f(QioCmd *c, int argc, char **argv);
void qio_writev_f(QioCmd *c, int argc, char **argv);
void qio_discard_f(QioCmd *c, int argc, char **argv);
void qio_aio_read_f(QioCmd *c, int argc, char **argv);
void qio_aio_write_f(QioCmd *c, int argc, char **argv);
void qio_aio_flush_f(QioCmd *c, int argc, char **argv);
void qio_flush_f(QioCmd *c, int argc, char **argv);
void qio_length_f(QioCmd *c, int argc, char **argv);
void qio_alloc_f(QioCmd *c, int argc, char **argv);
void qio_map_f(QioCmd *c, int argc, char **argv);
void qio_break_f(QioCmd *c, int argc, char **argv);
void qio_remove_break_f(QioCmd *c, int argc, char **argv);
void qio_resume_f(QioCmd *c, int argc, char **argv);
void qio_wait_break_f(QioCmd *c, int argc, char **argv);
void qio_sleep_f(QioCmd *c, int argc, char **argv);

#endif /* MONITOR_QEMU_IO_INT_H */
