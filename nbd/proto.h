/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD wire protocol as doc/proto.md of NetworkBlockDevice/nbd defines
 * it: the numbers both qmpd's server (nbd/server*.c) and its client (the
 * nbd block driver) put on the wire, and the byte-order helpers they use.
 * Everything on the wire is big-endian.
 */
#ifndef NBD_PROTO_H
#define NBD_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "util/be.h"

#define NBD_DEFAULT_PORT        10809

/* handshake */
#define NBD_INIT_MAGIC          0x4e42444d41474943ULL   /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC          0x49484156454f5054ULL   /* "IHAVEOPT" */
#define NBD_REP_MAGIC           0x0003e889045565a9ULL

/* handshake flags (server, 16 bits) */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)
/* client flags (32 bits) */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* transmission flags (16 bits), sent with the export size */
#define NBD_FLAG_HAS_FLAGS      (1u << 0)
#define NBD_FLAG_READ_ONLY      (1u << 1)
#define NBD_FLAG_SEND_FLUSH     (1u << 2)
#define NBD_FLAG_SEND_FUA       (1u << 3)
#define NBD_FLAG_ROTATIONAL     (1u << 4)
#define NBD_FLAG_SEND_TRIM      (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF        (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_RESIZE    (1u << 9)
#define NBD_FLAG_SEND_CACHE     (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

/* options (client → server during the handshake) */
enum {
    NBD_OPT_EXPORT_NAME = 1,
    NBD_OPT_ABORT = 2,
    NBD_OPT_LIST = 3,
    NBD_OPT_PEEK_EXPORT = 4,            /* withdrawn */
    NBD_OPT_STARTTLS = 5,
    NBD_OPT_INFO = 6,
    NBD_OPT_GO = 7,
    NBD_OPT_STRUCTURED_REPLY = 8,
    NBD_OPT_LIST_META_CONTEXT = 9,
    NBD_OPT_SET_META_CONTEXT = 10,
};

/* option replies; errors have bit 31 set */
#define NBD_REP_ERR(v)          ((1u << 31) | (v))
enum {
    NBD_REP_ACK = 1,
    NBD_REP_SERVER = 2,
    NBD_REP_INFO = 3,
    NBD_REP_META_CONTEXT = 4,
};
#define NBD_REP_ERR_UNSUP       NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY      NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID     NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM    NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD    NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN     NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN    NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG     NBD_REP_ERR(9)

/* NBD_REP_INFO types (also what NBD_OPT_INFO/GO may request) */
enum {
    NBD_INFO_EXPORT = 0,
    NBD_INFO_NAME = 1,
    NBD_INFO_DESCRIPTION = 2,
    NBD_INFO_BLOCK_SIZE = 3,
};

/* transmission */
#define NBD_REQUEST_MAGIC       0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC  0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

#define NBD_REQUEST_SIZE        28  /* magic, flags, type, handle, offset, length */
#define NBD_SIMPLE_REPLY_SIZE   16  /* magic, error, handle */
#define NBD_STRUCTURED_REPLY_SIZE 20 /* magic, flags, type, handle, length */

enum {
    NBD_CMD_READ = 0,
    NBD_CMD_WRITE = 1,
    NBD_CMD_DISC = 2,
    NBD_CMD_FLUSH = 3,
    NBD_CMD_TRIM = 4,
    NBD_CMD_CACHE = 5,
    NBD_CMD_WRITE_ZEROES = 6,
    NBD_CMD_BLOCK_STATUS = 7,
    NBD_CMD_RESIZE = 8,
};

/* command flags (16 bits) */
#define NBD_CMD_FLAG_FUA        (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE    (1u << 1)
#define NBD_CMD_FLAG_DF         (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE    (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO  (1u << 4)

/* structured reply chunks */
#define NBD_REPLY_FLAG_DONE     (1u << 0)
#define NBD_REPLY_TYPE_ERR(v)   ((1u << 15) | (v))
enum {
    NBD_REPLY_TYPE_NONE = 0,
    NBD_REPLY_TYPE_OFFSET_DATA = 1,
    NBD_REPLY_TYPE_OFFSET_HOLE = 2,
    NBD_REPLY_TYPE_BLOCK_STATUS = 5,
};
#define NBD_REPLY_TYPE_ERROR        NBD_REPLY_TYPE_ERR(1)
#define NBD_REPLY_TYPE_ERROR_OFFSET NBD_REPLY_TYPE_ERR(2)

/* errors on the wire: the protocol's own numbers, not the host's errno */
enum {
    NBD_SUCCESS = 0,
    NBD_EPERM = 1,
    NBD_EIO = 5,
    NBD_ENOMEM = 12,
    NBD_EINVAL = 22,
    NBD_ENOSPC = 28,
    NBD_EOVERFLOW = 75,
    NBD_ENOTSUP = 95,
    NBD_ESHUTDOWN = 108,
};

/* metadata contexts */
#define NBD_META_NS_BASE        "base:"
#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_META_QEMU_DIRTY_BITMAP "qemu:dirty-bitmap:"
#define NBD_META_QEMU_ALLOCATION_DEPTH "qemu:allocation-depth"
#define NBD_STATE_HOLE          (1u << 0)   /* base:allocation */
#define NBD_STATE_ZERO          (1u << 1)
#define NBD_STATE_DIRTY         (1u << 0)   /* qemu:dirty-bitmap: */

/* limits: the spec's string bound, QEMU's payload bound */
#define NBD_MAX_STRING_SIZE     4096
#define NBD_MAX_BUFFER_SIZE     (32u * 1024 * 1024)
#define NBD_MAX_OPTION_SIZE     (1u << 20)

/* the wire is big-endian (util/be.h) */
#define nbd_put16 be_put16
#define nbd_put32 be_put32
#define nbd_put64 be_put64
#define nbd_get16 be_get16
#define nbd_get32 be_get32
#define nbd_get64 be_get64

/* A request's or reply's header, decoded. */
typedef struct NbdRequest {
    uint16_t flags;
    uint16_t type;
    uint64_t handle;
    uint64_t offset;
    uint32_t length;
} NbdRequest;

void nbd_request_encode(uint8_t buf[NBD_REQUEST_SIZE], const NbdRequest *req);
/* false when the magic is wrong: the stream is lost, drop the connection */
bool nbd_request_decode(const uint8_t buf[NBD_REQUEST_SIZE], NbdRequest *req);

/* Host errno → wire error (unknown ones become EINVAL, as QEMU sends). */
uint32_t nbd_errno_to_wire(int err);
/* Wire error → host errno (unknown ones become EIO; 0 stays 0). */
int nbd_wire_to_errno(uint32_t err);

/* Names for diagnostics and traces ("NBD_OPT_GO", "NBD_CMD_READ", ...). */
const char *nbd_opt_name(uint32_t opt);
const char *nbd_cmd_name(uint16_t cmd);
const char *nbd_rep_name(uint32_t rep);

#endif
