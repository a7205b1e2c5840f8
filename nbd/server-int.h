/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server's insides, shared by its files only: an export (what
 * block-export-add made: a node behind an anonymous backend, a name on
 * the wire, the metadata contexts it offers) and a connection (one
 * client: its socket, buffers, handshake state and requests in flight).
 * export.c owns exports and the QMP commands on them, server.c the
 * listener and connections, server-opts.c the handshake, server-cmds.c
 * the requests of the transmission phase.
 */
#ifndef NBD_SERVER_INT_H
#define NBD_SERVER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "nbd/proto.h"

typedef struct NbdExport NbdExport;
typedef struct NbdConn NbdConn;

struct NbdExport {
    char *id;                   /* block-export-add's id */
    char *name;                 /* the NBD name clients ask for */
    char *description;          /* NULL: none */
    BlockNode *node;            /* referenced */
    BlockBackend *blk;          /* anonymous, on @node */
    bool writable;
    bool alloc_depth;           /* offers qemu:allocation-depth */
    DirtyBitmap **bitmaps;      /* offered as qemu:dirty-bitmap:NAME */
    unsigned nbitmaps;
    uint16_t tflags;            /* transmission flags, without DF */
    unsigned refcnt;            /* the registry's (until removed), clients' */
    bool shutting_down;
    GList *conns;               /* NbdConn * in transmission on it */
};

/* Bounds on what one client may hold at once: past either, its
 * socket is not read until requests finish */
#define NBD_CONN_MAX_IN_FLIGHT  16
#define NBD_CONN_MAX_MEM        (64u * 1024 * 1024)

typedef enum NbdConnPhase {
    NBD_CONN_CLIENT_FLAGS,      /* waiting for the client's 32 bits */
    NBD_CONN_OPTIONS,           /* haggling */
    NBD_CONN_TRANSMISSION,
} NbdConnPhase;

struct NbdConn {
    int fd;
    GSource *src;               /* the socket's watch, for its life */
    gpointer tag;               /* its fd in @src; NULL: not watched */
    GIOCondition watch_cond;
    NbdConnPhase phase;

    uint8_t *in;                /* unparsed input: [in_off, in_len) */
    size_t in_off, in_len, in_size;

    GQueue out;                 /* NbdOut * to write, oldest first */

    bool no_zeroes;             /* the client's NBD_FLAG_C_NO_ZEROES */
    bool structured;            /* NBD_OPT_STRUCTURED_REPLY agreed */
    NbdExport *exp;             /* referenced, once chosen */
    /* SET_META_CONTEXT's choice, for @meta_exp only */
    NbdExport *meta_exp;
    bool meta_base, meta_depth;
    bool *meta_bitmaps;         /* [meta_exp->nbitmaps] */

    unsigned in_flight;         /* requests not answered yet */
    size_t mem;                 /* payload and reply bytes held */
    bool closing;               /* read no more; close once drained */
    bool dead;                  /* socket closed; freed at in_flight 0 */
    bool busy, again;           /* in nbd_conn_update(); run it again */
    bool reaping;               /* its free is scheduled */
};

/* ---- export.c ---- */

/* The export named @name on the wire, or NULL. */
NbdExport *nbd_export_find_name(const char *name);

/* Every export that takes clients, newest first (borrowed). */
GList *nbd_export_list(void);

/* nbd-server-add's work: export @device under its own name. */
bool nbd_export_add_device(const char *device, bool writable, Error **errp);

void nbd_export_ref(NbdExport *exp);
/* The last reference gone: BLOCK_EXPORT_DELETED and free. */
void nbd_export_unref(NbdExport *exp);

/* ---- server.c ---- */

/* Queue @len bytes at @hdr (copied) followed by @data (taken: an ioq
 * buffer of @dlen bytes, counted in the connection's memory, or NULL). */
void nbd_conn_send(NbdConn *c, const void *hdr, size_t len, void *data,
                   size_t dlen);

/* Drop the connection now (a protocol error, hard removal, stop). */
void nbd_conn_close(NbdConn *c);

/*
 * Take in now what @c's client has already sent (main loop only; @c may
 * be closed by it): a client that said goodbye (NBD_CMD_DISC, then its
 * socket closed) before the loop read it does not use its export.
 */
void nbd_conn_catch_up(NbdConn *c);

/* A request finished: accounting, and maybe reading resumes. */
void nbd_conn_request_done(NbdConn *c);

/* Read and write as the connection's state now allows. */
void nbd_conn_update(NbdConn *c);

/* Connections on @exp are closed (hard removal). */
void nbd_conns_close_export(NbdExport *exp);

/* ---- server-opts.c ---- */

/* The server's greeting, sent on accept. */
void nbd_opts_greet(NbdConn *c);

/*
 * Parse one handshake step from the input; >0 consumed that many
 * bytes, 0 needs more input, <0 the connection must be dropped.
 */
ssize_t nbd_opts_parse(NbdConn *c, const uint8_t *buf, size_t len);

/* ---- server-cmds.c ---- */

/* As nbd_opts_parse(), for one request of the transmission phase. */
ssize_t nbd_cmds_parse(NbdConn *c, const uint8_t *buf, size_t len);

#endif /* NBD_SERVER_INT_H */
