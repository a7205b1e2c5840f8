/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmpd as an NBD client: the handshake that opens an export
 * (client-handshake.c), the parsing of the server's replies
 * (client-reply.c) and one connection's pipelined transmission phase on
 * the main loop (client.c).  The nbd block driver (block/drivers/nbd.c)
 * is its one user; it owns reconnects and policy, this layer only moves
 * requests and replies.
 */
#ifndef NBD_CLIENT_H
#define NBD_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nbd/proto.h"
#include "qapi/error.h"

/* What the handshake learnt about the export. */
typedef struct NbdExportInfo {
    uint64_t size;
    uint16_t flags;             /* NBD_FLAG_* transmission flags */
    uint32_t min_block;         /* 1 when the server gave no sizes */
    uint32_t opt_block;
    uint32_t max_block;         /* 0: none given */
    bool structured;            /* structured replies negotiated */
    bool has_context;           /* the metadata context below was set */
    uint32_t context_id;
} NbdExportInfo;

/* Where the server is: QEMU's SocketAddress, unix or inet. */
typedef struct NbdAddress {
    bool is_unix;
    const char *path;           /* unix */
    bool abstract, tight;       /* Linux abstract namespace */
    const char *host, *port;    /* inet */
    int family;                 /* AF_UNSPEC, or ipv4/ipv6 only */
    bool numeric, keep_alive;
} NbdAddress;

/*
 * Connect to @addr and return the connected, blocking socket, or -1
 * with QEMU's "Failed to connect to 'ADDR': REASON" in @errp.
 */
int nbd_client_connect(const NbdAddress *addr, Error **errp);

/*
 * Run the fixed newstyle handshake on the blocking socket @fd for export
 * @name ("" for the default): STRUCTURED_REPLY, SET_META_CONTEXT of
 * @context (NULL: none; "base:allocation" or "qemu:dirty-bitmap:X"),
 * then GO asking for block sizes, falling back to EXPORT_NAME for a
 * server without GO.  On success the socket is in transmission.  Errors
 * carry QEMU 7.2's messages ("Requested export not available").
 */
bool nbd_client_handshake(int fd, const char *name, const char *context,
                          NbdExportInfo *info, Error **errp);

/* --- reply parsing (pure; tests/unit/test-nbd-client.c) --- */

/* A reply header, simple or structured. */
typedef struct NbdReplyHeader {
    bool structured;
    uint16_t flags;             /* NBD_REPLY_FLAG_DONE */
    uint16_t type;              /* NBD_REPLY_TYPE_* */
    uint32_t error;             /* simple replies: the wire error */
    uint64_t handle;
    uint32_t length;            /* structured: the payload's length */
} NbdReplyHeader;

/*
 * Decode a reply header from the @avail bytes at @buf.  Returns the
 * header's size when it is all there (16 simple, 20 structured), 0 when
 * more bytes are needed, -EPROTO on a bad magic (the stream is lost).
 */
int nbd_reply_header_decode(const uint8_t *buf, size_t avail,
                            NbdReplyHeader *h);

/*
 * Check a structured chunk against the request it answers (@cmd,
 * @req_off, @req_len) before its payload is used: the types a command
 * may get, payload sizes, ranges inside the request.  0 or -EPROTO.
 */
int nbd_chunk_check(const NbdReplyHeader *h, uint16_t cmd, uint64_t req_off,
                    uint32_t req_len);

/* An OFFSET_DATA chunk's offset from its first 8 payload bytes, checked
 * to lie with its data inside the request: 0 or -EPROTO. */
int nbd_chunk_data_offset(const NbdReplyHeader *h, const uint8_t *payload,
                          uint64_t req_off, uint32_t req_len,
                          uint64_t *off);

/* An OFFSET_HOLE chunk's range, checked likewise. */
int nbd_chunk_hole(const NbdReplyHeader *h, const uint8_t *payload,
                   uint64_t req_off, uint32_t req_len, uint64_t *off,
                   uint32_t *len);

/*
 * A BLOCK_STATUS chunk: its first extent for metadata context @ctx_id,
 * clamped to @req_len (servers may answer past it).  0 or -EPROTO.
 */
int nbd_chunk_block_status(const NbdReplyHeader *h, const uint8_t *payload,
                           uint32_t ctx_id, uint32_t req_len,
                           uint32_t *len, uint32_t *flags);

/*
 * An ERROR or ERROR_OFFSET chunk: the host errno it carries (positive;
 * a zero wire error is a protocol error: -EPROTO returned).
 */
int nbd_chunk_error(const NbdReplyHeader *h, const uint8_t *payload,
                    int *err);

/* --- transmission --- */

typedef struct NbdClient NbdClient;

/*
 * A request's end: @ret 0 or -errno (-EIO for a lost connection, a
 * server's error mapped by nbd_wire_to_errno()).  For block status,
 * @len and @flags are the first extent (NBD_STATE_*).
 */
typedef void NbdReqCb(void *opaque, int ret, uint32_t len, uint32_t flags);

/* The connection died (EOF, a socket error, a protocol error). */
typedef void NbdLostCb(void *opaque);

/*
 * Take over the socket @fd (in transmission after the handshake) and
 * serve requests on the main loop; @lost is called once, from the main
 * loop, when the connection dies.  Requests then stay open (new ones
 * are kept too) until nbd_client_close() fails them or hands them back.
 */
NbdClient *nbd_client_new(int fd, const NbdExportInfo *info,
                          NbdLostCb *lost, void *opaque);

/*
 * Send a request.  @buf: READ's destination, WRITE's source (borrowed
 * until @cb).  @flags: NBD_CMD_FLAG_*.  @cb runs from the main loop,
 * never before this returns.
 */
void nbd_client_request(NbdClient *c, uint16_t cmd, uint16_t flags,
                        uint64_t off, uint32_t len, void *buf, NbdReqCb *cb,
                        void *opaque);

/*
 * Control path only (format probing): run the connection's I/O here,
 * blocking, until *@done is set by a request's callback or the link is
 * lost.  Returns *@done.
 */
bool nbd_client_wait_sync(NbdClient *c, const bool *done);

/* Requests not finished. */
unsigned nbd_client_in_flight(const NbdClient *c);

/*
 * Close: send NBD_CMD_DISC when the link is up, close the socket; with
 * @requeue, requests still open are handed to @resend (each once, in
 * order) instead of failing with -EIO, so a new connection can send them
 * again.
 */
typedef void NbdResendFn(void *ctx, uint16_t cmd, uint16_t flags,
                         uint64_t off, uint32_t len, void *buf, NbdReqCb *cb,
                         void *opaque);
void nbd_client_close(NbdClient *c, NbdResendFn *resend, void *ctx);

#endif
