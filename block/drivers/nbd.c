/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The nbd protocol driver: a node whose data lives in a remote NBD
 * export (QEMU 7.2's BlockdevOptionsNbd), so that a mirror or backup can
 * write into qemu-nbd's or qemu-storage-daemon's export.  The wire work
 * is nbd/client*.c's; this file maps block requests onto NBD commands
 * and owns the connection's life.
 *
 * A lost connection follows QEMU's reconnect-delay:
 *
 *   CONNECTED --lost, delay > 0--> WAIT --reconnected--> CONNECTED
 *       |                            | delay over: parked requests fail
 *       +--lost, delay 0--> NOWAIT <-+  (new ones fail at once with EIO)
 *                             |
 *                             +--reconnected--> CONNECTED
 *
 * In WAIT the requests that were open and those that arrive are parked
 * and sent again once a retry connects; in NOWAIT they fail with EIO at
 * once.  Retries run from a timer in both, as QEMU's connection thread
 * keeps trying in the background.  A retry connects and shakes hands
 * blocking, which is quick against a local server and bounded by the
 * handshake's socket timeout otherwise.
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "block/core/block-int.h"
#include "block/core/ioq.h"
#include "nbd/client.h"
#include "qapi/qjson.h"

#define NBD_RETRY_MS 200

typedef enum {
    NBD_STATE_CONNECTED,
    NBD_STATE_WAIT,
    NBD_STATE_NOWAIT,
} NbdLinkState;

typedef struct {
    uint16_t cmd, flags;
    uint64_t off;
    uint32_t len;
    void *buf;
    NbdReqCb *cb;
    void *opaque;
} NbdParked;

typedef struct {
    BlockNode *bn;
    char *type;                 /* "unix" or "inet" */
    char *path, *host, *port;
    char *export;
    NbdAddress addr;            /* strings point to the ones above */
    char *context;              /* metadata context asked for, or NULL */
    int64_t reconnect_delay;    /* seconds */
    NbdExportInfo info;
    NbdClient *c;
    NbdLinkState state;
    GQueue parked;              /* NbdParked *, in order */
    guint retry_timer, delay_timer;
} NbdState;

/* a block request in flight: what to call when the server answers */
typedef struct {
    BdrvCb *cb;
    BdrvStatusCb *status_cb;
    void *opaque;
    uint64_t len;
    NbdState *s;
} NbdDrvReq;

static int connect_once(NbdState *s, Error **errp)
{
    int fd = nbd_client_connect(&s->addr, errp);

    if (fd < 0) {
        return -1;
    }
    if (!nbd_client_handshake(fd, s->export ? s->export : "", s->context,
                              &s->info, errp)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void link_lost_cb(void *opaque);

static void park(void *ctx, uint16_t cmd, uint16_t flags, uint64_t off,
                 uint32_t len, void *buf, NbdReqCb *cb, void *opaque)
{
    NbdState *s = ctx;
    NbdParked *p = g_new(NbdParked, 1);

    *p = (NbdParked){ cmd, flags, off, len, buf, cb, opaque };
    g_queue_push_tail(&s->parked, p);
}

static void stop_timers(NbdState *s)
{
    if (s->retry_timer) {
        g_source_remove(s->retry_timer);
        s->retry_timer = 0;
    }
    if (s->delay_timer) {
        g_source_remove(s->delay_timer);
        s->delay_timer = 0;
    }
}

static void fail_parked(NbdState *s)
{
    NbdParked *p;

    while ((p = g_queue_pop_head(&s->parked))) {
        p->cb(p->opaque, -EIO, 0, 0);
        g_free(p);
    }
}

/* One attempt to get the link back; true when it is up again. */
static bool reconnect(NbdState *s)
{
    NbdExportInfo old = s->info;
    NbdParked *p;
    int fd = connect_once(s, NULL);

    if (fd < 0) {
        s->info = old;
        return false;
    }
    if (s->info.size != old.size) {
        /* not the export we had: QEMU refuses it too */
        close(fd);
        s->info = old;
        return false;
    }
    stop_timers(s);
    s->c = nbd_client_new(fd, &s->info, link_lost_cb, s);
    s->state = NBD_STATE_CONNECTED;
    while ((p = g_queue_pop_head(&s->parked))) {
        nbd_client_request(s->c, p->cmd, p->flags, p->off, p->len, p->buf,
                           p->cb, p->opaque);
        g_free(p);
    }
    return true;
}

static gboolean retry_cb(gpointer opaque)
{
    NbdState *s = opaque;

    if (reconnect(s)) {
        return G_SOURCE_REMOVE;     /* reconnect() cleared the id */
    }
    return G_SOURCE_CONTINUE;
}

static gboolean delay_over_cb(gpointer opaque)
{
    NbdState *s = opaque;

    s->delay_timer = 0;
    s->state = NBD_STATE_NOWAIT;
    fail_parked(s);
    return G_SOURCE_REMOVE;
}

/* @may_park: open requests wait for a reconnect (none may live on a
 * caller's stack, as the control path's does) */
static void link_lost(NbdState *s, bool may_park)
{
    NbdClient *c = s->c;

    /*
     * The client goes last, and no longer ours: the requests it fails
     * complete their callers, and one of those may close the node (a
     * blockdev-del that waited for them), which must then neither
     * close the client again nor leave timers on a freed state
     */
    s->c = NULL;
    if (s->reconnect_delay > 0) {
        s->state = NBD_STATE_WAIT;
        s->delay_timer = g_timeout_add_seconds(s->reconnect_delay,
                                               delay_over_cb, s);
    } else {
        s->state = NBD_STATE_NOWAIT;
    }
    s->retry_timer = g_timeout_add(NBD_RETRY_MS, retry_cb, s);
    nbd_client_close(c, s->reconnect_delay > 0 && may_park ? park : NULL,
                     s);
}

static void link_lost_cb(void *opaque)
{
    link_lost(opaque, true);
}

static void req_done_cb(void *opaque, int ret, uint32_t len, uint32_t flags)
{
    NbdDrvReq *r = opaque;

    if (r->status_cb) {
        int st = 0;
        uint64_t pnum = r->len;

        if (!ret && !r->s->info.has_context) {
            /* nothing to ask: all of it is data, as QEMU says */
            st = BDRV_STATUS_ALLOCATED | BDRV_STATUS_DATA;
        } else if (!ret) {
            /* a dirty bit is the hole bit: x-dirty-bitmap's trick */
            pnum = len;
            st = BDRV_STATUS_ALLOCATED
                | (flags & NBD_STATE_HOLE ? 0 : BDRV_STATUS_DATA)
                | (flags & NBD_STATE_ZERO ? BDRV_STATUS_ZERO : 0);
        }
        r->status_cb(r->opaque, ret, st, pnum);
    } else {
        r->cb(r->opaque, ret);
    }
    g_free(r);
}

static void fail_now_cb(void *opaque, ssize_t ret)
{
    req_done_cb(opaque, (int)ret, 0, 0);
}

static void submit(NbdState *s, uint16_t cmd, uint16_t flags, uint64_t off,
                   uint64_t len, void *buf, NbdDrvReq *r)
{
    r->s = s;
    r->len = len;
    if (s->state == NBD_STATE_NOWAIT) {
        /* as QEMU's: a request tries the link once more before failing */
        if (s->retry_timer) {
            g_source_remove(s->retry_timer);
            s->retry_timer = 0;
        }
        if (!reconnect(s)) {
            s->retry_timer = g_timeout_add(NBD_RETRY_MS, retry_cb, s);
            ioq_defer(fail_now_cb, r, -EIO);
            return;
        }
    }
    if (s->state == NBD_STATE_WAIT) {
        park(s, cmd, flags, off, len, buf, req_done_cb, r);
        return;
    }
    nbd_client_request(s->c, cmd, flags, off, len, buf, req_done_cb, r);
}

static NbdDrvReq *drv_req(BdrvCb *cb, void *opaque)
{
    NbdDrvReq *r = g_new0(NbdDrvReq, 1);

    r->cb = cb;
    r->opaque = opaque;
    return r;
}

/* QEMU's SocketAddress members beyond the address itself */
static bool parse_address(NbdState *s, const json_t *server, Error **errp)
{
    NbdAddress *a = &s->addr;
    bool v4 = qjson_get_bool_or(server, "ipv4", false);
    bool v6 = qjson_get_bool_or(server, "ipv6", false);

    a->is_unix = !strcmp(s->type, "unix");
    a->path = s->path;
    a->abstract = qjson_get_bool_or(server, "abstract", false);
    a->tight = qjson_get_bool_or(server, "tight", true);
    a->host = s->host;
    a->port = s->port;
    a->numeric = qjson_get_bool_or(server, "numeric", false);
    a->keep_alive = qjson_get_bool_or(server, "keep-alive", false);
    if (qjson_get_bool_or(server, "mptcp", false)) {
        error_setg(errp, "mptcp is not supported by qmpd");
        return false;
    }
    /* as QEMU's inet_ai_family_from_address(): one of them set true
     * alone picks it; ipv4=off alone means ipv6 and the other way */
    if (json_object_get(server, "ipv4") && json_object_get(server, "ipv6")) {
        a->family = v4 && !v6 ? AF_INET : v6 && !v4 ? AF_INET6 : AF_UNSPEC;
    } else if (json_object_get(server, "ipv4")) {
        a->family = v4 ? AF_INET : AF_INET6;
    } else if (json_object_get(server, "ipv6")) {
        a->family = v6 ? AF_INET6 : AF_INET;
    }
    return true;
}

static bool open_export(BlockNode *bn, const json_t *opts, Error **errp)
{
    NbdState *s = bn->opaque;
    const json_t *server = json_object_get(opts, "server");
    const char *bitmap = qjson_get_str_or(opts, "x-dirty-bitmap", NULL);
    int64_t open_timeout = qjson_get_int_or(opts, "open-timeout", 0);
    gint64 deadline;
    int fd;

    s->bn = bn;
    g_queue_init(&s->parked);
    s->type = g_strdup(qjson_get_str(server, "type"));
    if (!strcmp(s->type, "fd")) {
        error_setg(errp, "File descriptor named '%s' has not been found",
                   qjson_get_str(server, "str"));
        return false;
    }
    if (!strcmp(s->type, "vsock")) {
        error_setg(errp, "Failed to connect to '%s:%s': No such device",
                   qjson_get_str(server, "cid"),
                   qjson_get_str(server, "port"));
        return false;
    }
    if (json_object_get(opts, "tls-creds")) {
        /* qmpd has no TLS credential objects (yet) */
        error_setg(errp, "No TLS credentials with id '%s'",
                   qjson_get_str(opts, "tls-creds"));
        return false;
    }
    s->path = g_strdup(qjson_get_str_or(server, "path", NULL));
    s->host = g_strdup(qjson_get_str_or(server, "host", NULL));
    s->port = g_strdup(qjson_get_str_or(server, "port", NULL));
    s->export = g_strdup(qjson_get_str_or(opts, "export", NULL));
    if (!parse_address(s, server, errp)) {
        return false;
    }
    s->reconnect_delay = qjson_get_int_or(opts, "reconnect-delay", 0);
    s->context = bitmap ? g_strconcat(NBD_META_QEMU_DIRTY_BITMAP, bitmap,
                                      NULL)
                        : g_strdup(NBD_META_BASE_ALLOCATION);
    if (s->reconnect_delay < 0 || s->reconnect_delay > UINT32_MAX) {
        error_setg(errp, "Parameter 'reconnect-delay' expects uint32_t");
        return false;
    }
    if (open_timeout < 0 || open_timeout > UINT32_MAX) {
        error_setg(errp, "Parameter 'open-timeout' expects uint32_t");
        return false;
    }
    /* open-timeout: QEMU retries the first connection as long */
    deadline = g_get_monotonic_time() + open_timeout * G_USEC_PER_SEC;
    for (;;) {
        Error *err = NULL;

        fd = connect_once(s, &err);
        if (fd >= 0) {
            break;
        }
        if (g_get_monotonic_time() >= deadline) {
            error_propagate(errp, err);
            return false;
        }
        error_free(err);
        g_usleep(NBD_RETRY_MS * 1000);
    }
    if (bitmap && !s->info.has_context) {
        close(fd);
        error_setg(errp, "Could not open image: Invalid argument");
        return false;
    }
    if ((s->info.flags & NBD_FLAG_READ_ONLY) && !bn->read_only) {
        if (!qjson_get_bool_or(opts, "auto-read-only", false)) {
            close(fd);
            /* QEMU 7.2's words for its -EACCES here */
            error_setg(errp, "Could not open image: Permission denied");
            return false;
        }
        bn->read_only = true;
    }
    bn->total_size = s->info.size;
    s->c = nbd_client_new(fd, &s->info, link_lost_cb, s);
    s->state = NBD_STATE_CONNECTED;
    return true;
}

static void nbd_close(BlockNode *bn)
{
    NbdState *s = bn->opaque;

    stop_timers(s);
    fail_parked(s);
    if (s->c) {
        nbd_client_close(s->c, NULL, NULL);
        s->c = NULL;
    }
    g_free(s->context);
    g_free(s->type);
    g_free(s->path);
    g_free(s->host);
    g_free(s->port);
    g_free(s->export);
}

/* the generic layer does not close a node that failed to open */
static bool nbd_open(BlockNode *bn, const json_t *opts, Error **errp)
{
    if (!open_export(bn, opts, errp)) {
        nbd_close(bn);
        return false;
    }
    return true;
}

static void nbd_read(BlockNode *bn, uint64_t off, uint64_t len, void *buf,
                     BdrvCb *cb, void *opaque)
{
    submit(bn->opaque, NBD_CMD_READ, 0, off, len, buf, drv_req(cb, opaque));
}

static void nbd_write(BlockNode *bn, uint64_t off, uint64_t len,
                      const void *buf, int flags, BdrvCb *cb, void *opaque)
{
    NbdState *s = bn->opaque;
    uint16_t f = 0;

    if ((flags & BDRV_REQ_FUA) && (s->info.flags & NBD_FLAG_SEND_FUA)) {
        f |= NBD_CMD_FLAG_FUA;
    }
    submit(s, NBD_CMD_WRITE, f, off, len, (void *)buf, drv_req(cb, opaque));
}

typedef struct {
    BdrvCb *cb;
    void *opaque;
    void *zeroes;
} NbdZeroWrite;

static void zero_data_done_cb(void *opaque, int ret)
{
    NbdZeroWrite *z = opaque;

    z->cb(z->opaque, ret);
    g_free(z->zeroes);
    g_free(z);
}

static void nbd_write_zeroes(BlockNode *bn, uint64_t off, uint64_t len,
                             int flags, BdrvCb *cb, void *opaque)
{
    NbdState *s = bn->opaque;
    uint16_t f = 0;

    if (!(s->info.flags & NBD_FLAG_SEND_WRITE_ZEROES)) {
        /* a server without WRITE_ZEROES gets the zeroes as data */
        NbdZeroWrite *z = g_new(NbdZeroWrite, 1);

        *z = (NbdZeroWrite){ cb, opaque, g_malloc0(len) };
        nbd_write(bn, off, len, z->zeroes, flags, zero_data_done_cb, z);
        return;
    }
    if (!(flags & BDRV_REQ_MAY_UNMAP)) {
        f |= NBD_CMD_FLAG_NO_HOLE;
    }
    if ((flags & BDRV_REQ_FUA) && (s->info.flags & NBD_FLAG_SEND_FUA)) {
        f |= NBD_CMD_FLAG_FUA;
    }
    submit(s, NBD_CMD_WRITE_ZEROES, f, off, len, NULL, drv_req(cb, opaque));
}

static void done_now_cb(void *opaque, ssize_t ret)
{
    req_done_cb(opaque, 0, 0, 0);
}

static void nbd_discard(BlockNode *bn, uint64_t off, uint64_t len,
                        BdrvCb *cb, void *opaque)
{
    NbdState *s = bn->opaque;

    if (!(s->info.flags & NBD_FLAG_SEND_TRIM)) {
        ioq_defer(done_now_cb, drv_req(cb, opaque), 0);
        return;
    }
    submit(s, NBD_CMD_TRIM, 0, off, len, NULL, drv_req(cb, opaque));
}

static void nbd_flush(BlockNode *bn, BdrvCb *cb, void *opaque)
{
    NbdState *s = bn->opaque;

    if (!(s->info.flags & NBD_FLAG_SEND_FLUSH)) {
        ioq_defer(done_now_cb, drv_req(cb, opaque), 0);
        return;
    }
    submit(s, NBD_CMD_FLUSH, 0, 0, 0, NULL, drv_req(cb, opaque));
}

static void nbd_block_status(BlockNode *bn, uint64_t off, uint64_t len,
                             BdrvStatusCb *cb, void *opaque)
{
    NbdState *s = bn->opaque;
    NbdDrvReq *r = g_new0(NbdDrvReq, 1);

    r->status_cb = cb;
    r->opaque = opaque;
    len = MIN(len, s->bn->bl.max_transfer ? s->bn->bl.max_transfer
                                          : NBD_MAX_BUFFER_SIZE);
    if (!s->info.has_context) {
        r->s = s;
        r->len = len;
        ioq_defer(done_now_cb, r, 0);
        return;
    }
    submit(s, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, off, len, NULL, r);
}

typedef struct {
    bool done;
    int ret;
} NbdSync;

static void sync_done_cb(void *opaque, int ret, uint32_t len, uint32_t flags)
{
    NbdSync *w = opaque;

    w->done = true;
    w->ret = ret;
}

/* the control path's I/O (a format's probe, its header): the node is
 * quiet, so the reply is the only one the connection waits for */
static int sync_request(BlockNode *bn, uint16_t cmd, uint64_t off,
                        uint64_t len, void *buf)
{
    NbdState *s = bn->opaque;
    NbdSync w = { 0 };

    if (s->state != NBD_STATE_CONNECTED && !reconnect(s)) {
        return -EIO;
    }
    nbd_client_request(s->c, cmd, 0, off, len, buf, sync_done_cb, &w);
    if (!nbd_client_wait_sync(s->c, &w.done)) {
        /* the link died: our request fails with the others, as it must
         * not outlive this frame */
        link_lost(s, false);
        return -EIO;
    }
    return w.ret;
}

static int nbd_pread_sync(BlockNode *bn, uint64_t off, uint64_t len,
                          void *buf)
{
    return sync_request(bn, NBD_CMD_READ, off, len, buf);
}

static int nbd_pwrite_sync(BlockNode *bn, uint64_t off, uint64_t len,
                           const void *buf)
{
    return sync_request(bn, NBD_CMD_WRITE, off, len, (void *)buf);
}

static int nbd_flush_sync(BlockNode *bn)
{
    NbdState *s = bn->opaque;

    if (!(s->info.flags & NBD_FLAG_SEND_FLUSH)) {
        return 0;
    }
    return sync_request(bn, NBD_CMD_FLUSH, 0, 0, NULL);
}

static void nbd_refresh_limits(BlockNode *bn)
{
    NbdState *s = bn->opaque;
    uint32_t min, max;

    if (!s || !s->info.min_block) {
        return;     /* not open yet */
    }
    min = s->info.min_block;
    max = s->info.max_block ? MIN(s->info.max_block, NBD_MAX_BUFFER_SIZE)
                            : NBD_MAX_BUFFER_SIZE;
    bn->bl.request_alignment = min;
    bn->bl.max_transfer = max / min * min;
    /* one command's length is 32 bits */
    bn->bl.max_pdiscard = (INT32_MAX / min) * min;
    bn->bl.max_pwrite_zeroes = s->info.flags & NBD_FLAG_SEND_WRITE_ZEROES
        ? bn->bl.max_pdiscard : bn->bl.max_transfer;
    bn->bl.pdiscard_alignment = MAX(s->info.opt_block, min);
}

/* QEMU's nbd_refresh_filename(): a URI when the address makes one */
static char *nbd_plain_filename(BlockNode *bn)
{
    NbdState *s = bn->opaque;

    if (!strcmp(s->type, "unix")) {
        return s->export
            ? g_strdup_printf("nbd+unix:///%s?socket=%s", s->export, s->path)
            : g_strdup_printf("nbd+unix://?socket=%s", s->path);
    }
    if (strchr(s->host, ':')) {
        return NULL;    /* an IPv6 address: json:{...} */
    }
    return s->export
        ? g_strdup_printf("nbd://%s:%s/%s", s->host, s->port, s->export)
        : g_strdup_printf("nbd://%s:%s", s->host, s->port);
}

static const char *const nbd_strong_opts[] = {
    "driver", "server", "export", "tls-creds", "tls-hostname", NULL
};

const BlockDriver bdrv_nbd = {
    .name = "nbd",
    .instance_size = sizeof(NbdState),
    .strong_opts = nbd_strong_opts,
    .no_reopen = true,
    .open = nbd_open,
    .close = nbd_close,
    .read = nbd_read,
    .write = nbd_write,
    .write_zeroes = nbd_write_zeroes,
    .discard = nbd_discard,
    .flush = nbd_flush,
    .block_status = nbd_block_status,
    .pread_sync = nbd_pread_sync,
    .pwrite_sync = nbd_pwrite_sync,
    .flush_sync = nbd_flush_sync,
    .refresh_limits = nbd_refresh_limits,
    .plain_filename = nbd_plain_filename,
};
