/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One NBD connection in transmission, driven by the main loop.
 *
 * Requests are pipelined: each gets a handle, goes into the send queue
 * and into the table of open requests at once, and leaves the table when
 * the server's last reply for it arrives, in whatever order the server
 * answers.  The socket is non-blocking; what cannot be sent now waits
 * for POLLOUT, and replies are read in large gulps into one buffer and
 * parsed out of it:
 *
 *     rbuf: [hdr][payload ...][hdr][payl|   <- recv() appends here
 *            ^ parse position             ^ rlen
 *
 * A read's data (a simple reply's, or an OFFSET_DATA chunk's) is copied
 * to the request's buffer as it arrives, so a reply larger than rbuf
 * streams through it; other chunks are small (block status asks for one
 * extent) and are parsed once whole.  Anything the protocol does not
 * allow ends the connection: after a framing error nothing that follows
 * can be trusted.  The connection never ends a request on its own: the
 * owner decides in nbd_client_close() whether open requests fail or are
 * sent again on a new connection (reconnect-delay).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib-unix.h>

#include "nbd/client.h"

#define RBUF_SIZE (256 * 1024)
/* a non-data chunk larger than this is not one we asked for */
#define MAX_CHUNK (1024 * 1024)

typedef struct NbdReq {
    uint64_t handle;
    uint16_t cmd, flags;
    uint64_t off;
    uint32_t len;
    uint8_t *buf;
    NbdReqCb *cb;
    void *opaque;
    uint8_t hdr[NBD_REQUEST_SIZE];
    size_t sent;                /* of header and payload */
    int ret;                    /* the first error a chunk reported */
    bool got_status;
    uint32_t st_len, st_flags;
} NbdReq;

struct NbdClient {
    int fd;
    NbdExportInfo info;
    guint in_watch, out_watch, lost_idle;
    uint64_t next_handle;
    GQueue open;                /* NbdReq *, in submission order */
    GQueue sendq;               /* NbdReq * not wholly sent */
    GHashTable *by_handle;
    bool dead;
    /* a request's callback may close the connection from inside the
     * reply loop: then the loop frees it on its way out */
    int busy;
    bool closed;
    NbdLostCb *lost;
    void *lost_opaque;

    uint8_t *rbuf;
    size_t rcap, rlen;
    /* the reply being read */
    bool in_reply;
    NbdReplyHeader h;
    NbdReq *cur;
    uint64_t remaining;         /* payload bytes still to come */
    uint8_t *dest;              /* where a read's data goes, or NULL */
};

static gboolean lost_cb(gpointer opaque)
{
    NbdClient *c = opaque;

    c->lost_idle = 0;
    c->lost(c->lost_opaque);
    return G_SOURCE_REMOVE;
}

static void stop_watches(NbdClient *c)
{
    if (c->in_watch) {
        g_source_remove(c->in_watch);
        c->in_watch = 0;
    }
    if (c->out_watch) {
        g_source_remove(c->out_watch);
        c->out_watch = 0;
    }
}

/* The link is gone: stop using it and tell the owner, once. */
static void fail_link(NbdClient *c)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    stop_watches(c);
    shutdown(c->fd, SHUT_RDWR);
    c->lost_idle = g_idle_add(lost_cb, c);
}

static void finish(NbdClient *c, NbdReq *r)
{
    int ret = r->ret;

    g_hash_table_remove(c->by_handle, &r->handle);
    g_queue_remove(&c->open, r);
    if (!ret && r->cmd == NBD_CMD_BLOCK_STATUS && !r->got_status) {
        /* we asked for a context: a server must answer for it */
        ret = -EIO;
    }
    r->cb(r->opaque, ret, r->st_len, r->st_flags);
    g_free(r);
}

static gboolean out_ready_cb(int fd, GIOCondition cond, gpointer opaque);

static void send_some(NbdClient *c)
{
    while (!c->dead && !g_queue_is_empty(&c->sendq)) {
        NbdReq *r = g_queue_peek_head(&c->sendq);
        size_t plen = r->cmd == NBD_CMD_WRITE ? r->len : 0;
        struct iovec iov[2];
        int n = 0;
        ssize_t w;

        if (r->sent < NBD_REQUEST_SIZE) {
            iov[n].iov_base = r->hdr + r->sent;
            iov[n++].iov_len = NBD_REQUEST_SIZE - r->sent;
        }
        if (plen) {
            size_t done = r->sent > NBD_REQUEST_SIZE
                ? r->sent - NBD_REQUEST_SIZE : 0;

            iov[n].iov_base = r->buf + done;
            iov[n++].iov_len = plen - done;
        }
        w = sendmsg(c->fd, &(struct msghdr){ .msg_iov = iov,
                                             .msg_iovlen = n },
                    MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (w < 0) {
            fail_link(c);
            return;
        }
        r->sent += w;
        if (r->sent == NBD_REQUEST_SIZE + plen) {
            g_queue_pop_head(&c->sendq);
        }
    }
    if (!g_queue_is_empty(&c->sendq) && !c->dead && !c->out_watch) {
        c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT, out_ready_cb, c);
    }
}

static gboolean out_ready_cb(int fd, GIOCondition cond, gpointer opaque)
{
    NbdClient *c = opaque;

    c->out_watch = 0;
    send_some(c);
    return G_SOURCE_REMOVE;
}

/* A chunk (or a simple reply) is over: the request may be too. */
static void chunk_done(NbdClient *c)
{
    NbdReq *r = c->cur;

    c->in_reply = false;
    c->cur = NULL;
    if (!c->h.structured || (c->h.flags & NBD_REPLY_FLAG_DONE)) {
        finish(c, r);
    }
}

/* A whole non-data chunk's payload at @p. */
static int apply_chunk(NbdClient *c, const uint8_t *p)
{
    NbdReq *r = c->cur;
    uint64_t off;
    uint32_t len, flags;
    int err;

    switch (c->h.type) {
    case NBD_REPLY_TYPE_NONE:
        return 0;
    case NBD_REPLY_TYPE_OFFSET_HOLE:
        if (nbd_chunk_hole(&c->h, p, r->off, r->len, &off, &len) < 0) {
            return -EPROTO;
        }
        memset(r->buf + (off - r->off), 0, len);
        return 0;
    case NBD_REPLY_TYPE_BLOCK_STATUS:
        if (!c->info.has_context
            || nbd_chunk_block_status(&c->h, p, c->info.context_id, r->len,
                                      &len, &flags) < 0) {
            return -EPROTO;
        }
        r->got_status = true;
        r->st_len = len;
        r->st_flags = flags;
        return 0;
    default:
        if (nbd_chunk_error(&c->h, p, &err) < 0) {
            return -EPROTO;
        }
        if (!r->ret) {
            r->ret = -err;
        }
        return 0;
    }
}

/* Parse what rbuf holds; -EPROTO ends the link. */
static int parse(NbdClient *c)
{
    size_t pos = 0;
    int ret = 0;

    for (;;) {
        size_t avail = c->rlen - pos;
        uint8_t *p = c->rbuf + pos;

        if (!c->in_reply) {
            int hs = nbd_reply_header_decode(p, avail, &c->h);

            if (hs <= 0) {
                ret = hs;
                break;
            }
            c->cur = g_hash_table_lookup(c->by_handle, &c->h.handle);
            if (!c->cur || (c->h.structured && !c->info.structured)) {
                ret = -EPROTO;
                break;
            }
            pos += hs;
            c->in_reply = true;
            c->dest = NULL;
            if (!c->h.structured) {
                if (c->h.error) {
                    c->cur->ret = -nbd_wire_to_errno(c->h.error);
                    c->remaining = 0;
                } else if (c->cur->cmd == NBD_CMD_READ) {
                    c->dest = c->cur->buf;
                    c->remaining = c->cur->len;
                } else {
                    c->remaining = 0;
                }
            } else {
                if (nbd_chunk_check(&c->h, c->cur->cmd, c->cur->off,
                                    c->cur->len) < 0
                    || (c->h.type != NBD_REPLY_TYPE_OFFSET_DATA
                        && c->h.length > MAX_CHUNK)) {
                    ret = -EPROTO;
                    break;
                }
                c->remaining = c->h.length;
            }
            continue;
        }
        if (c->h.structured && c->h.type == NBD_REPLY_TYPE_OFFSET_DATA
            && !c->dest) {
            uint64_t off;

            if (avail < 8) {
                break;
            }
            if (nbd_chunk_data_offset(&c->h, p, c->cur->off, c->cur->len,
                                      &off) < 0) {
                ret = -EPROTO;
                break;
            }
            c->dest = c->cur->buf + (off - c->cur->off);
            c->remaining -= 8;
            pos += 8;
            continue;
        }
        if (c->dest) {
            size_t n = MIN(avail, c->remaining);

            memcpy(c->dest, p, n);
            c->dest += n;
            c->remaining -= n;
            pos += n;
            if (c->remaining) {
                break;
            }
            chunk_done(c);
            if (c->closed) {
                return 0;
            }
            continue;
        }
        if (c->h.structured) {
            if (avail < c->remaining) {
                if (c->remaining > c->rcap) {
                    /* only from pos on is kept: room for the chunk */
                    memmove(c->rbuf, p, avail);
                    c->rlen = avail;
                    pos = 0;
                    c->rcap = c->remaining;
                    c->rbuf = g_realloc(c->rbuf, c->rcap);
                }
                break;
            }
            if (apply_chunk(c, p) < 0) {
                ret = -EPROTO;
                break;
            }
            pos += c->remaining;
        }
        chunk_done(c);
        if (c->closed) {
            return 0;
        }
    }
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
    return ret;
}

/* Read and parse what the socket has; false once the link is lost. */
static bool receive(NbdClient *c)
{
    for (;;) {
        ssize_t n;

        if (c->rlen == c->rcap) {
            /* parse() always leaves room unless a chunk needs it all */
            c->rcap *= 2;
            c->rbuf = g_realloc(c->rbuf, c->rcap);
        }
        n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n <= 0) {
            fail_link(c);
            return false;
        }
        c->rlen += n;
        if (parse(c) < 0) {
            fail_link(c);
            return false;
        }
        if (c->closed) {
            return false;
        }
    }
}

static void client_free(NbdClient *c)
{
    g_free(c->rbuf);
    g_free(c);
}

static gboolean in_ready_cb(int fd, GIOCondition cond, gpointer opaque)
{
    NbdClient *c = opaque;
    bool ok;

    c->busy++;
    ok = receive(c);
    c->busy--;
    if (c->closed) {
        client_free(c);
        return G_SOURCE_REMOVE;
    }
    if (!ok) {
        c->in_watch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

NbdClient *nbd_client_new(int fd, const NbdExportInfo *info,
                          NbdLostCb *lost, void *opaque)
{
    NbdClient *c = g_new0(NbdClient, 1);

    c->fd = fd;
    c->info = *info;
    c->lost = lost;
    c->lost_opaque = opaque;
    c->next_handle = 1;
    c->by_handle = g_hash_table_new(g_int64_hash, g_int64_equal);
    c->rcap = RBUF_SIZE;
    c->rbuf = g_malloc(c->rcap);
    g_queue_init(&c->open);
    g_queue_init(&c->sendq);
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    /* a mirror keeps MiBs of writes in flight: let the kernel hold them
     * rather than wake us for every socket-buffer's worth */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ 4 << 20 }, sizeof(int));
    c->in_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                in_ready_cb, c);
    return c;
}

void nbd_client_request(NbdClient *c, uint16_t cmd, uint16_t flags,
                        uint64_t off, uint32_t len, void *buf, NbdReqCb *cb,
                        void *opaque)
{
    NbdReq *r = g_new0(NbdReq, 1);

    r->handle = c->next_handle++;
    r->cmd = cmd;
    r->flags = flags;
    r->off = off;
    r->len = len;
    r->buf = buf;
    r->cb = cb;
    r->opaque = opaque;
    nbd_request_encode(r->hdr, &(NbdRequest){ .flags = flags, .type = cmd,
                                              .handle = r->handle,
                                              .offset = off,
                                              .length = len });
    g_hash_table_insert(c->by_handle, &r->handle, r);
    g_queue_push_tail(&c->open, r);
    g_queue_push_tail(&c->sendq, r);
    /* a full queue goes out from the POLLOUT watch */
    if (!c->out_watch) {
        send_some(c);
    }
}

unsigned nbd_client_in_flight(const NbdClient *c)
{
    return c->open.length;
}

bool nbd_client_wait_sync(NbdClient *c, const bool *done)
{
    /* the control path's caller holds the connection: none of the
     * callbacks run here may close it */
    while (!*done && !c->dead) {
        struct pollfd pfd = {
            .fd = c->fd,
            .events = POLLIN | (g_queue_is_empty(&c->sendq) ? 0 : POLLOUT),
        };

        if (poll(&pfd, 1, 10000) <= 0) {
            fail_link(c);
            break;
        }
        if (pfd.revents & POLLOUT) {
            send_some(c);
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            receive(c);
        }
    }
    return *done;
}

void nbd_client_close(NbdClient *c, NbdResendFn *resend, void *ctx)
{
    NbdReq *r;

    if (!c->dead && g_queue_is_empty(&c->sendq)) {
        uint8_t disc[NBD_REQUEST_SIZE];

        nbd_request_encode(disc, &(NbdRequest){ .type = NBD_CMD_DISC });
        /* best effort: the server sees EOF anyway */
        if (send(c->fd, disc, sizeof(disc), MSG_NOSIGNAL | MSG_DONTWAIT)) {
            /* nothing to do either way */
        }
    }
    stop_watches(c);
    if (c->lost_idle) {
        g_source_remove(c->lost_idle);
    }
    close(c->fd);
    while ((r = g_queue_pop_head(&c->open))) {
        if (resend) {
            resend(ctx, r->cmd, r->flags, r->off, r->len, r->buf, r->cb,
                   r->opaque);
        } else {
            r->cb(r->opaque, -EIO, 0, 0);
        }
        g_free(r);
    }
    g_queue_clear(&c->sendq);
    g_hash_table_destroy(c->by_handle);
    c->closed = true;
    if (!c->busy) {
        client_free(c);
    }
}
