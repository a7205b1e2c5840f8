/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Monitor transport: listeners accept clients, each client is a
 * session; sessions read input in chunks and hand it to their protocol
 * (qmp.c or hmp.c) and write output without blocking.
 *
 * Flow control keeps one client from hurting others or the process:
 * - output above OUT_HIGH stops reading that client's input and
 *   answering its queued requests until the backlog drains (a client
 *   that sends commands but never reads replies stalls only itself);
 * - output above OUT_LIMIT (events piling up for a client that stopped
 *   reading) disconnects it;
 * - the JSON parser bounds what a single message may hold.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <glib-unix.h>

#include "monitor/monitor-int.h"
#include "qapi/event.h"
#include "qapi/qjson.h"
#include "util/log.h"

#define READ_CHUNK 65536
#define OUT_HIGH (1u << 20)
#define OUT_LOW (256u << 10)
#define OUT_LIMIT (64u << 20)

static QapiSchema *the_schema;
static GPtrArray *monitors;
static GList *sessions;
static unsigned next_session_id;
static int stdio_flags[2] = { -1, -1 };
static struct termios saved_tty;
static bool tty_changed;
static bool exiting;
static bool cleaning_up;

static void session_close(MonSession *s);
static void session_arm_output(MonSession *s);
static void session_new(Monitor *mon, int in_fd, int out_fd, bool owns);
static void mon_reconnect_later(Monitor *mon);

QapiSchema *mon_schema(void)
{
    return the_schema;
}

static void event_sink(void *opaque, const json_t *event)
{
    for (GList *l = sessions; l; l = l->next) {
        MonSession *s = l->data;

        if (s->mon->mode == MON_MODE_CONTROL && s->negotiated && !s->closed) {
            qmp_session_event(s, event);
        }
    }
}

void mon_init(QapiSchema *schema)
{
    the_schema = schema;
    monitors = g_ptr_array_new();
    qapi_event_init(schema, event_sink, NULL);
}

bool mon_check(QapiSchema *schema, Error **errp)
{
    return hmp_check_table(schema, errp);
}

MonSession *mon_session_ref(MonSession *s)
{
    s->refcnt++;
    return s;
}

void mon_session_unref(MonSession *s)
{
    if (--s->refcnt > 0) {
        return;
    }
    g_assert(s->closed);
    mon_session_drop_msgfds(s);
    if (s->msgfds) {
        g_array_free(s->msgfds, TRUE);
    }
    g_string_free(s->out, TRUE);
    g_free(s);
}

static void restore_tty(void)
{
    if (tty_changed) {
        tcsetattr(0, TCSANOW, &saved_tty);
        tty_changed = false;
    }
}

/*
 * The terminal mode QEMU's stdio chardev sets: no line buffering or
 * echo (the line editor does both); output processing stays on, and so
 * do the signal keys unless the chardev says signal=off.
 */
static void set_tty_raw(int fd, bool signals)
{
    struct termios t;

    if (tcgetattr(fd, &saved_tty) < 0) {
        return;
    }
    t = saved_tty;
    t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL
                   | IXON);
    t.c_oflag |= OPOST;
    t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    if (!signals) {
        t.c_lflag &= ~ISIG;
    }
    t.c_cflag &= ~(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) == 0) {
        tty_changed = true;
        atexit(restore_tty);
    }
}

void mon_prepare_exit(void)
{
    exiting = true;
    for (GList *l = sessions; l; l = l->next) {
        mon_session_hold(l->data, MON_HOLD_EXIT);
    }
}

bool mon_exiting(void)
{
    return exiting;
}

static void set_nonblock(int fd, int *saved)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0) {
        return;
    }
    if (saved) {
        *saved = fl;
    }
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/*
 * A stdio monitor outlives its input: QEMU keeps writing to stdout once
 * stdin has ended, so a peer that closed its side still gets events
 * (SHUTDOWN on SIGTERM, say).  A socket's end is its client's end.
 */
static bool outlives_input(const MonSession *s)
{
    return chardev_kind(s->mon->chr) == CHARDEV_STDIO;
}

static bool session_idle(const MonSession *s)
{
    return s->mon->mode == MON_MODE_CONTROL ? qmp_session_idle(s)
                                            : hmp_session_idle(s);
}

void mon_session_idle(MonSession *s)
{
    if (s->input_ended && !s->closed && session_idle(s)
        && !outlives_input(s)) {
        mon_session_hangup(s);
    }
}

static gboolean session_readable_cb(gint fd, GIOCondition cond,
                                    gpointer opaque)
{
    MonSession *s = opaque;
    char buf[READ_CHUNK];
    ssize_t n;

    n = mon_session_recv(s, fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n == 0 && (!session_idle(s) || outlives_input(s))) {
        s->in_watch = 0;
        s->input_ended = true;
        return G_SOURCE_REMOVE;
    }
    if (n <= 0) {
        s->in_watch = 0;
        session_close(s);
        return G_SOURCE_REMOVE;
    }
    if (s->telnet) {
        n = telnet_filter(&s->telnet_state, buf, n);
        if (n == 0) {
            return G_SOURCE_CONTINUE;   /* only negotiation */
        }
    }
    mon_session_ref(s);
    if (s->mon->mode == MON_MODE_CONTROL) {
        qmp_session_input(s, buf, n);
    } else {
        hmp_session_input(s, buf, n);
    }
    /* the protocol may have held input or closed us meanwhile */
    if (s->in_watch == 0 || s->closed) {
        mon_session_unref(s);
        return G_SOURCE_REMOVE;
    }
    mon_session_unref(s);
    return G_SOURCE_CONTINUE;
}

static void session_watch_input(MonSession *s)
{
    if (!s->in_watch && !s->holds && !s->closed && !s->input_ended
        && s->in_fd >= 0) {
        s->in_watch = g_unix_fd_add(s->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                    session_readable_cb, s);
    }
}

void mon_session_hold(MonSession *s, unsigned reason)
{
    s->holds |= reason;
    if (s->in_watch) {
        g_source_remove(s->in_watch);
        s->in_watch = 0;
    }
}

void mon_session_release(MonSession *s, unsigned reason)
{
    s->holds &= ~reason;
    session_watch_input(s);
}

static gboolean close_idle_cb(gpointer opaque)
{
    MonSession *s = opaque;

    session_close(s);
    mon_session_unref(s);
    return G_SOURCE_REMOVE;
}

/*
 * Close @s from the main loop rather than here: a write can fail deep
 * inside a reply or an event fan-out whose callers still use @s.
 */
static void session_close_later(MonSession *s)
{
    if (s->broken || s->closed) {
        return;
    }
    s->broken = true;
    g_string_truncate(s->out, 0);
    s->out_off = 0;
    mon_session_hold(s, MON_HOLD_BROKEN);
    g_idle_add(close_idle_cb, mon_session_ref(s));
}

/* Write what we can; true when nothing is left to write. */
static bool session_flush(MonSession *s)
{
    while (s->out_off < s->out->len) {
        ssize_t n = write(s->out_fd, s->out->str + s->out_off,
                          s->out->len - s->out_off);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return false;
            }
            session_close_later(s);
            return true;
        }
        s->out_off += n;
    }
    g_string_truncate(s->out, 0);
    s->out_off = 0;
    return true;
}

static gboolean session_writable_cb(gint fd, GIOCondition cond,
                                    gpointer opaque)
{
    MonSession *s = opaque;

    if (!session_flush(s)) {
        return G_SOURCE_CONTINUE;
    }
    s->out_watch = 0;
    if (s->broken) {
        return G_SOURCE_REMOVE;
    }
    if (s->out->len - s->out_off < OUT_LOW
        && (s->holds & MON_HOLD_OUTPUT)) {
        mon_session_release(s, MON_HOLD_OUTPUT);
        if (s->mon->mode == MON_MODE_CONTROL && !s->closed) {
            mon_session_ref(s);
            qmp_session_drained(s);
            if (s->closed || s->broken) {
                mon_session_unref(s);
                return G_SOURCE_REMOVE;
            }
            mon_session_unref(s);
        }
    }
    if (s->hangup_after_flush) {
        session_close_later(s);
    }
    return G_SOURCE_REMOVE;
}

static void session_arm_output(MonSession *s)
{
    if (!s->out_watch && !s->closed && !s->broken) {
        s->out_watch = g_unix_fd_add(s->out_fd, G_IO_OUT | G_IO_ERR,
                                     session_writable_cb, s);
    }
}

void mon_session_write(MonSession *s, const char *buf, size_t len)
{
    size_t pending;

    if (s->closed || s->broken || s->out_fd < 0) {
        return;
    }
    g_string_append_len(s->out, buf, len);
    if (!s->out_watch && session_flush(s)) {
        return;
    }
    session_arm_output(s);
    pending = s->out->len - s->out_off;
    if (pending > OUT_LIMIT) {
        qmpd_log(LOG_WARNING, "monitor client %u does not read its output; "
                 "disconnecting it", s->id);
        session_close_later(s);
    } else if (pending > OUT_HIGH) {
        mon_session_hold(s, MON_HOLD_OUTPUT);
    }
}

void mon_session_puts(MonSession *s, const char *text)
{
    const char *p = text;

    for (const char *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        mon_session_write(s, p, nl - p);
        mon_session_write(s, "\r\n", 2);
    }
    if (*p) {
        mon_session_write(s, p, strlen(p));
    }
}

void mon_session_hangup(MonSession *s)
{
    if (s->out->len == s->out_off) {
        session_close_later(s);
    } else {
        s->hangup_after_flush = true;
    }
}

static void session_new(Monitor *mon, int in_fd, int out_fd, bool owns)
{
    MonSession *s = g_new0(MonSession, 1);

    s->mon = mon;
    s->id = ++next_session_id;
    s->refcnt = 1;
    s->in_fd = in_fd;
    s->out_fd = out_fd;
    s->owns_fds = owns;
    s->out = g_string_new(NULL);
    if (chardev_kind(mon->chr) == CHARDEV_STDIO) {
        s->is_tty = isatty(in_fd) && isatty(out_fd);
        if (s->is_tty && mon->mode == MON_MODE_READLINE) {
            set_tty_raw(in_fd, chardev_stdio_signal(mon->chr));
        }
        set_nonblock(in_fd, &stdio_flags[0]);
        set_nonblock(out_fd, &stdio_flags[1]);
    } else if (in_fd >= 0) {
        set_nonblock(in_fd, NULL);
    }
    sessions = g_list_append(sessions, s);
    qmpd_log(LOG_DEBUG, "monitor session %u opened", s->id);
    if (chardev_telnet(mon->chr)) {
        /* QEMU's offer goes out before anything the monitor says */
        s->telnet = true;
        mon_session_write(s, TELNET_OFFER, TELNET_OFFER_LEN);
    }
    if (mon->mode == MON_MODE_CONTROL) {
        qmp_session_start(s);
    } else {
        hmp_session_start(s);
    }
    session_watch_input(s);
}

static void session_close(MonSession *s)
{
    if (s->closed) {
        return;
    }
    s->closed = true;
    if (s->in_watch) {
        g_source_remove(s->in_watch);
        s->in_watch = 0;
    }
    if (s->out_watch) {
        g_source_remove(s->out_watch);
        s->out_watch = 0;
    }
    qmpd_log(LOG_DEBUG, "monitor session %u closed", s->id);
    sessions = g_list_remove(sessions, s);
    if (s->mon->mode == MON_MODE_CONTROL) {
        qmp_session_end(s);
    } else {
        hmp_session_end(s);
    }
    if (s->owns_fds) {
        close(s->in_fd);
        if (s->out_fd != s->in_fd) {
            close(s->out_fd);
        }
    }
    mon_reconnect_later(s->mon);
    mon_session_unref(s);
}

static gboolean reconnect_cb(gpointer opaque)
{
    Monitor *mon = opaque;
    int fd = chardev_reconnect(mon->chr);

    if (fd < 0) {
        return G_SOURCE_CONTINUE;
    }
    mon->reconnect_timer = 0;
    session_new(mon, fd, fd, true);
    return G_SOURCE_REMOVE;
}

/*
 * A reconnect=N client without its peer tries again every N seconds, as
 * QEMU's, and each connection is a new session (a new greeting).
 */
static void mon_reconnect_later(Monitor *mon)
{
    unsigned secs = chardev_reconnect_secs(mon->chr);

    if (secs && !mon->reconnect_timer && !exiting && !cleaning_up) {
        mon->reconnect_timer = g_timeout_add_seconds(secs, reconnect_cb,
                                                     mon);
    }
}

static gboolean listener_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;
    int conn;

    while ((conn = chardev_accept(mon->chr)) >= 0) {
        session_new(mon, conn, conn, true);
    }
    return G_SOURCE_CONTINUE;
}

bool mon_add(Chardev *chr, MonMode mode, bool pretty, Error **errp)
{
    Monitor *mon = g_new0(Monitor, 1);
    int conn;

    mon->chr = chr;
    chardev_set_frontend_open(chr);
    mon->mode = mode;
    mon->pretty = pretty;
    g_ptr_array_add(monitors, mon);

    switch (chardev_kind(chr)) {
    case CHARDEV_NULL:
        break;
    case CHARDEV_STDIO:
        session_new(mon, chardev_in_fd(chr), chardev_out_fd(chr), false);
        break;
    case CHARDEV_SOCKET:
        conn = chardev_take_connection(chr);
        if (conn >= 0) {
            session_new(mon, conn, conn, true);
        } else {
            mon_reconnect_later(mon);
        }
        if (chardev_is_listener(chr)) {
            mon->listen_watch = g_unix_fd_add(chardev_in_fd(chr), G_IO_IN,
                                              listener_cb, mon);
        }
        break;
    }
    return true;
}

bool mon_output_pending(void)
{
    for (GList *l = sessions; l; l = l->next) {
        const MonSession *s = l->data;

        if (s->out->len > s->out_off) {
            return true;
        }
    }
    return false;
}

void mon_cleanup(void)
{
    cleaning_up = true;
    while (sessions) {
        session_close(sessions->data);
    }
    for (guint i = 0; monitors && i < monitors->len; i++) {
        Monitor *mon = g_ptr_array_index(monitors, i);

        if (mon->listen_watch) {
            g_source_remove(mon->listen_watch);
        }
        if (mon->reconnect_timer) {
            g_source_remove(mon->reconnect_timer);
        }
        chardev_free(mon->chr);
        g_free(mon);
    }
    if (monitors) {
        g_ptr_array_unref(monitors);
        monitors = NULL;
    }
    for (int fd = 0; fd < 2; fd++) {
        if (stdio_flags[fd] >= 0) {
            fcntl(fd, F_SETFL, stdio_flags[fd]);
        }
    }
    restore_tty();
    qapi_event_init(the_schema, NULL, NULL);
}
