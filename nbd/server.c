/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server's listener and connections: nbd-server-start and
 * nbd-server-stop, and the socket side of each client.
 *
 * A connection is a byte pump on the main loop.  Input is read into
 * one buffer and parsed as whole messages (an option, or a request with
 * its payload): server-opts.c during the handshake, server-cmds.c
 * after.  Replies are queued and written as the socket takes them, so
 * requests finish and are answered in any order.  Memory is bounded
 * per client: while NBD_CONN_MAX_IN_FLIGHT requests are unanswered or
 * NBD_CONN_MAX_MEM bytes of payloads and replies are held, the socket
 * is not read, and the client's own sends block.  A protocol error
 * drops that client alone.  A dropped connection stays allocated until
 * its last request has completed, since the block layer's callbacks
 * point at it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "block/core/ioq.h"
#include "nbd/server-int.h"
#include "nbd/server.h"
#include "qapi/qjson.h"
#include "util/sockets.h"

/* One queued write: a header (copied) and maybe a payload (owned). */
typedef struct NbdOut {
    size_t hlen;
    void *data;
    size_t dlen;
    size_t done;                /* bytes of hdr, then data, written */
    uint8_t hdr[];
} NbdOut;

typedef struct NbdServer {
    SockListener *listener;
    unsigned max_conns;         /* 0: no limit */
    GList *conns;               /* every NbdConn not yet freed */
    unsigned live;              /* of those, not dead */
} NbdServer;

static NbdServer *server;
/* connections outlive the server only while requests finish */
static GList *orphans;

#define NBD_CONN_READ_CHUNK     (256u * 1024)
/* the largest message: a write's header and payload */
#define NBD_CONN_IN_MAX         (NBD_REQUEST_SIZE + NBD_MAX_BUFFER_SIZE)

bool nbd_server_running(void)
{
    return server != NULL;
}

static bool conn_wants_input(const NbdConn *c)
{
    return !c->closing && c->in_flight < NBD_CONN_MAX_IN_FLIGHT
        && c->mem < NBD_CONN_MAX_MEM;
}

/*
 * A connection's watch is one source kept for its life, with its fd's
 * events changed as its needs change.  A source made and dropped per
 * event (g_unix_fd_add() and G_SOURCE_REMOVE) wakes GLib's loop through
 * its wake-up fd at each add and remove of the fd and at the block and
 * unblock around each dispatch: four writes, a read and a poll more per
 * request at queue depth 1 (strace of a 4K random write load), a
 * quarter of qmpd's time per request.  The source may "recurse" so that
 * GLib does not block it around its dispatch (nothing runs a nested
 * loop), as ioq's completion watch.
 */
typedef struct ConnSource {
    GSource src;
    NbdConn *c;
} ConnSource;

static void conn_read(NbdConn *c);

static gboolean conn_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    NbdConn *c = ((ConnSource *)src)->c;
    GIOCondition cond = c->tag ? g_source_query_unix_fd(src, c->tag) : 0;

    if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR)) {
        conn_read(c);
    }
    nbd_conn_update(c);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = {
    .dispatch = conn_dispatch,
};

static void conn_watch_start(NbdConn *c)
{
    c->src = g_source_new(&conn_source_funcs, sizeof(ConnSource));
    ((ConnSource *)c->src)->c = c;
    g_source_set_can_recurse(c->src, TRUE);
    g_source_set_name(c->src, "nbd-conn");
    g_source_attach(c->src, NULL);
}

static void conn_watch_stop(NbdConn *c)
{
    if (c->src) {
        g_source_destroy(c->src);
        g_clear_pointer(&c->src, g_source_unref);
        c->tag = NULL;
    }
}

/*
 * Watch for what the connection wants now.  An fd polled for nothing
 * still reports a hang-up, every turn of the loop: wanting nothing
 * takes it out of the poll set instead.
 */
static void conn_set_watch(NbdConn *c)
{
    GIOCondition want = (conn_wants_input(c) ? G_IO_IN : 0)
        | (g_queue_is_empty(&c->out) ? 0 : G_IO_OUT);

    if (want == 0) {
        if (c->tag) {
            g_source_remove_unix_fd(c->src, c->tag);
            c->tag = NULL;
        }
    } else if (!c->tag) {
        c->tag = g_source_add_unix_fd(c->src, c->fd, want);
    } else if (want != c->watch_cond) {
        g_source_modify_unix_fd(c->src, c->tag, want);
    }
    c->watch_cond = want;
}

void nbd_conn_send(NbdConn *c, const void *hdr, size_t len, void *data,
                   size_t dlen)
{
    NbdOut *o;

    if (c->dead) {
        if (data) {
            ioq_buf_free(data);
            c->mem -= dlen;
        }
        return;
    }
    o = g_malloc0(sizeof(*o) + len);
    memcpy(o->hdr, hdr, len);
    o->hlen = len;
    o->data = data;
    o->dlen = dlen;
    g_queue_push_tail(&c->out, o);
}

static void out_free(NbdConn *c, NbdOut *o)
{
    if (o->data) {
        ioq_buf_free(o->data);
        c->mem -= o->dlen;
    }
    g_free(o);
}

static void conn_free(NbdConn *c)
{
    NbdOut *o;

    while ((o = g_queue_pop_head(&c->out))) {
        out_free(c, o);
    }
    if (c->exp) {
        nbd_export_unref(c->exp);
    }
    if (c->meta_exp) {
        nbd_export_unref(c->meta_exp);
    }
    g_free(c->meta_bitmaps);
    g_free(c->in);
    g_free(c);
}

static gboolean conn_reap_cb(gpointer opaque)
{
    NbdConn *c = opaque;

    if (server && g_list_find(server->conns, c)) {
        server->conns = g_list_remove(server->conns, c);
    } else {
        orphans = g_list_remove(orphans, c);
    }
    conn_free(c);
    return G_SOURCE_REMOVE;
}

/*
 * Free @c once it is dead and idle, from the main loop: whoever called
 * in (a parser, a completion) may still look at it on the way out.
 */
static void conn_reap(NbdConn *c)
{
    if (c->dead && !c->in_flight && !c->reaping) {
        c->reaping = true;
        g_idle_add(conn_reap_cb, c);
    }
}

void nbd_conn_close(NbdConn *c)
{
    NbdOut *o;

    if (c->dead) {
        return;
    }
    c->dead = true;
    c->closing = true;
    conn_watch_stop(c);
    close(c->fd);
    c->fd = -1;
    while ((o = g_queue_pop_head(&c->out))) {
        out_free(c, o);
    }
    if (c->exp) {
        c->exp->conns = g_list_remove(c->exp->conns, c);
        /*
         * A client gone with nothing in flight holds its export no
         * more, now rather than at the reap: the reap waits for an idle
         * turn of the loop, after a block-export-del that came in
         * meanwhile, which found the export "still in use" (as QEMU's
         * would not), or, in mode hard, sent BLOCK_EXPORT_DELETED only
         * after its reply (QEMU's comes first).  The shutdown's own
         * reference keeps the export alive while it closes its clients.
         */
        if (!c->in_flight) {
            nbd_export_unref(g_steal_pointer(&c->exp));
        }
    }
    /* and so does the export its metadata context was chosen for */
    if (c->meta_exp && !c->in_flight) {
        nbd_export_unref(g_steal_pointer(&c->meta_exp));
    }
    if (server && g_list_find(server->conns, c)) {
        bool was_full = server->max_conns
            && server->live >= server->max_conns;

        server->live--;
        if (was_full) {
            sock_listener_pause(server->listener, false);
        }
    }
    conn_reap(c);
}

void nbd_conn_catch_up(NbdConn *c)
{
    if (!c->dead) {
        conn_read(c);
        nbd_conn_update(c);
    }
}

void nbd_conn_request_done(NbdConn *c)
{
    g_assert(c->in_flight > 0);
    c->in_flight--;
    if (c->dead) {
        conn_reap(c);
        return;
    }
    nbd_conn_update(c);
}

void nbd_conns_close_export(NbdExport *exp)
{
    while (exp->conns) {
        nbd_conn_close(exp->conns->data);
    }
}

/* Write what the socket takes; false when the connection died. */
static bool conn_flush(NbdConn *c)
{
    NbdOut *o;

    while ((o = g_queue_peek_head(&c->out))) {
        struct iovec iov[2];
        int n = 0;
        ssize_t r;

        if (o->done < o->hlen) {
            iov[n].iov_base = o->hdr + o->done;
            iov[n++].iov_len = o->hlen - o->done;
        }
        if (o->dlen) {
            size_t d = o->done > o->hlen ? o->done - o->hlen : 0;

            iov[n].iov_base = (uint8_t *)o->data + d;
            iov[n++].iov_len = o->dlen - d;
        }
        r = writev(c->fd, iov, n);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return true;
            }
            nbd_conn_close(c);
            return false;
        }
        o->done += r;
        if (o->done < o->hlen + o->dlen) {
            return true;
        }
        g_queue_pop_head(&c->out);
        out_free(c, o);
        /* an NBD_OPT_ABORT's ACK, a refused NBD_OPT_EXPORT_NAME */
        if (c->closing && g_queue_is_empty(&c->out) && !c->in_flight) {
            nbd_conn_close(c);
            return false;
        }
    }
    return true;
}

/* Parse what the input holds; false when the connection died. */
static bool conn_parse(NbdConn *c)
{
    while (conn_wants_input(c) && c->in_off < c->in_len) {
        const uint8_t *p = c->in + c->in_off;
        size_t n = c->in_len - c->in_off;
        ssize_t r = c->phase == NBD_CONN_TRANSMISSION
            ? nbd_cmds_parse(c, p, n) : nbd_opts_parse(c, p, n);

        if (r < 0) {
            nbd_conn_close(c);
            return false;
        }
        if (r == 0) {
            break;
        }
        c->in_off += r;
    }
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
    }
    return !c->dead;
}

static void conn_read(NbdConn *c)
{
    ssize_t r;

    if (c->in_off && c->in_size - c->in_len < NBD_CONN_READ_CHUNK) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len >= NBD_CONN_IN_MAX) {
        /* a message larger than any the parser accepts */
        nbd_conn_close(c);
        return;
    }
    if (c->in_size - c->in_len < NBD_CONN_READ_CHUNK) {
        c->in_size = MIN(MAX(c->in_size * 2, c->in_len
                             + NBD_CONN_READ_CHUNK), NBD_CONN_IN_MAX);
        c->in = g_realloc(c->in, c->in_size);
    }
    r = read(c->fd, c->in + c->in_len, c->in_size - c->in_len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        /* the client hung up (or broke): answers to it are moot */
        nbd_conn_close(c);
        return;
    }
    c->in_len += r;
}

void nbd_conn_update(NbdConn *c)
{
    /* a completion that runs while we parse comes back here */
    if (c->busy) {
        c->again = true;
        return;
    }
    c->busy = true;
    do {
        c->again = false;
        if (!conn_parse(c) || !conn_flush(c)) {
            break;
        }
        if (c->closing && g_queue_is_empty(&c->out) && !c->in_flight) {
            nbd_conn_close(c);
        }
    } while (c->again && !c->dead);
    c->busy = false;
    if (!c->dead) {
        conn_set_watch(c);
    }
}

static void accept_cb(void *opaque, int fd)
{
    NbdConn *c;

    c = g_new0(NbdConn, 1);
    c->fd = fd;
    c->phase = NBD_CONN_CLIENT_FLAGS;
    g_queue_init(&c->out);
    conn_watch_start(c);
    server->conns = g_list_prepend(server->conns, c);
    server->live++;
    if (server->max_conns && server->live >= server->max_conns) {
        sock_listener_pause(server->listener, true);
    }
    nbd_opts_greet(c);
    nbd_conn_update(c);
}

/* A socket listening where SocketAddressLegacy @addr says. */
static int listen_legacy(const json_t *addr, Error **errp)
{
    const char *type = qjson_get_str(addr, "type");
    const json_t *data = json_object_get(addr, "data");
    GError *gerr = NULL;
    int fd;

    if (!strcmp(type, "inet")) {
        fd = sock_listen_inet(qjson_get_str(data, "host"),
                              qjson_get_str(data, "port"), &gerr);
    } else if (!strcmp(type, "unix")) {
        fd = sock_listen_unix(qjson_get_str(data, "path"), &gerr);
    } else if (!strcmp(type, "fd")) {
        fd = sock_fd_param(qjson_get_str(data, "str"), &gerr);
    } else {
        error_setg(errp, "Socket family %s is not supported", type);
        return -1;
    }
    if (fd < 0) {
        error_take_gerror(errp, gerr);
    }
    return fd;
}

/* nbd-server-start's work, with @args borrowed. */
static bool server_start(const json_t *args, Error **errp)
{
    const json_t *addr = json_object_get(args, "addr");
    int fd;

    if (server) {
        error_setg(errp, "NBD server already running");
        return false;
    }
    if (qjson_has(args, "tls-creds")) {
        /* qmpd has no TLS credentials objects: none can be named */
        error_setg(errp, "No TLS credentials with id '%s'",
                   qjson_get_str(args, "tls-creds"));
        return false;
    }
    fd = listen_legacy(addr, errp);
    if (fd < 0) {
        return false;
    }
    server = g_new0(NbdServer, 1);
    server->listener = sock_listener_new(fd, accept_cb, NULL);
    server->max_conns = qjson_get_uint_or(args, "max-connections", 0);
    return true;
}

static bool qmp_nbd_server_start(const json_t *args, json_t **ret,
                                 Error **errp)
{
    return server_start(args, errp);
}

static bool qmp_nbd_server_stop(const json_t *args, json_t **ret,
                                Error **errp)
{
    if (!server) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    nbd_exports_close_all();
    sock_listener_free(server->listener);
    /* clients still in the handshake go too */
    while (server->conns) {
        NbdConn *c = server->conns->data;

        server->conns = g_list_remove(server->conns, c);
        orphans = g_list_prepend(orphans, c);
        nbd_conn_close(c);
    }
    g_clear_pointer(&server, g_free);
    return true;
}

bool nbd_server_start_hmp(const json_t *addr, bool all, bool writable,
                          Error **errp)
{
    g_autoptr(json_t) args = json_pack("{s:O}", "addr", addr);
    GPtrArray *blks = blk_all();

    if (!server_start(args, errp)) {
        return false;
    }
    for (guint i = 0; all && i < blks->len; i++) {
        BlockBackend *blk = g_ptr_array_index(blks, i);

        if (*blk_name(blk) && blk_root(blk)
            && !nbd_export_add_device(blk_name(blk), writable, errp)) {
            qmp_nbd_server_stop(NULL, NULL, NULL);
            return false;
        }
    }
    return true;
}

const QapiHandler nbd_server_qmp_handlers[] = {
    { "nbd-server-start", qmp_nbd_server_start, NULL },
    { "nbd-server-stop", qmp_nbd_server_stop, NULL },
};
const size_t nbd_server_qmp_handlers_count =
    G_N_ELEMENTS(nbd_server_qmp_handlers);
