/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The client's checks of what a server answers, kept free of sockets so
 * that the unit test can feed them bytes: a reply's header, and each
 * structured chunk against the request it answers.  A server that breaks
 * the protocol loses its connection (-EPROTO), as in QEMU: nothing it
 * said after that can be trusted to be framed right.
 */
#include "config.h"

#include <errno.h>

#include "nbd/client.h"

int nbd_reply_header_decode(const uint8_t *buf, size_t avail,
                            NbdReplyHeader *h)
{
    uint32_t magic;

    if (avail < 4) {
        return 0;
    }
    magic = nbd_get32(buf);
    memset(h, 0, sizeof(*h));
    if (magic == NBD_SIMPLE_REPLY_MAGIC) {
        if (avail < NBD_SIMPLE_REPLY_SIZE) {
            return 0;
        }
        h->error = nbd_get32(buf + 4);
        h->handle = nbd_get64(buf + 8);
        return NBD_SIMPLE_REPLY_SIZE;
    }
    if (magic == NBD_STRUCTURED_REPLY_MAGIC) {
        if (avail < NBD_STRUCTURED_REPLY_SIZE) {
            return 0;
        }
        h->structured = true;
        h->flags = nbd_get16(buf + 4);
        h->type = nbd_get16(buf + 6);
        h->handle = nbd_get64(buf + 8);
        h->length = nbd_get32(buf + 16);
        return NBD_STRUCTURED_REPLY_SIZE;
    }
    return -EPROTO;
}

/* both ends of [off, off + len) inside [req_off, req_off + req_len) */
static bool inside(uint64_t off, uint64_t len, uint64_t req_off,
                   uint32_t req_len)
{
    return off >= req_off && len <= req_len
        && off - req_off <= req_len - len;
}

int nbd_chunk_check(const NbdReplyHeader *h, uint16_t cmd, uint64_t req_off,
                    uint32_t req_len)
{
    switch (h->type) {
    case NBD_REPLY_TYPE_NONE:
        /* only as the last chunk, and with nothing in it */
        return (h->flags & NBD_REPLY_FLAG_DONE) && !h->length ? 0 : -EPROTO;
    case NBD_REPLY_TYPE_OFFSET_DATA:
        return cmd == NBD_CMD_READ && h->length > 8
            && h->length - 8 <= req_len ? 0 : -EPROTO;
    case NBD_REPLY_TYPE_OFFSET_HOLE:
        return cmd == NBD_CMD_READ && h->length == 12 ? 0 : -EPROTO;
    case NBD_REPLY_TYPE_BLOCK_STATUS:
        /* a context id and at least one extent, whole extents only */
        return cmd == NBD_CMD_BLOCK_STATUS && h->length >= 12
            && (h->length - 4) % 8 == 0 ? 0 : -EPROTO;
    case NBD_REPLY_TYPE_ERROR:
        return h->length >= 6 ? 0 : -EPROTO;
    case NBD_REPLY_TYPE_ERROR_OFFSET:
        return h->length >= 14 ? 0 : -EPROTO;
    default:
        /* an unknown error type still says the request failed; other
         * unknown types cannot be skipped safely */
        return (h->type & NBD_REPLY_TYPE_ERR(0)) && h->length >= 6
            ? 0 : -EPROTO;
    }
    (void)req_off;
}

int nbd_chunk_data_offset(const NbdReplyHeader *h, const uint8_t *payload,
                          uint64_t req_off, uint32_t req_len, uint64_t *off)
{
    *off = nbd_get64(payload);
    return inside(*off, h->length - 8, req_off, req_len) ? 0 : -EPROTO;
}

int nbd_chunk_hole(const NbdReplyHeader *h, const uint8_t *payload,
                   uint64_t req_off, uint32_t req_len, uint64_t *off,
                   uint32_t *len)
{
    *off = nbd_get64(payload);
    *len = nbd_get32(payload + 8);
    (void)h;
    return *len && inside(*off, *len, req_off, req_len) ? 0 : -EPROTO;
}

int nbd_chunk_block_status(const NbdReplyHeader *h, const uint8_t *payload,
                           uint32_t ctx_id, uint32_t req_len, uint32_t *len,
                           uint32_t *flags)
{
    (void)h;
    if (nbd_get32(payload) != ctx_id) {
        return -EPROTO;
    }
    *len = nbd_get32(payload + 4);
    *flags = nbd_get32(payload + 8);
    if (!*len) {
        return -EPROTO;
    }
    *len = MIN(*len, req_len);
    return 0;
}

int nbd_chunk_error(const NbdReplyHeader *h, const uint8_t *payload,
                    int *err)
{
    uint32_t wire = nbd_get32(payload);
    uint16_t msg_len = nbd_get16(payload + 4);
    uint32_t fixed = h->type == NBD_REPLY_TYPE_ERROR_OFFSET ? 14 : 6;

    if (!wire || (uint64_t)fixed + msg_len > h->length) {
        return -EPROTO;
    }
    *err = nbd_wire_to_errno(wire);
    return 0;
}
