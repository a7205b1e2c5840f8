/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Monitor internals shared by monitor.c (transport), qmp.c and hmp.c
 * (protocols).  A session owns one connection: an input fd, an output
 * fd (the same socket, or stdin/stdout) and a bounded output buffer.
 */
#ifndef MONITOR_MONITOR_INT_H
#define MONITOR_MONITOR_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "monitor/monitor.h"
#include "monitor/telnet.h"
#include "qapi/json-stream.h"

typedef struct Readline Readline;
typedef struct HmpSession HmpSession;

typedef struct Monitor {
    Chardev *chr;
    MonMode mode;
    bool pretty;
    guint listen_watch;
    guint reconnect_timer;  /* reconnect=N client: the next attempt */
} Monitor;

typedef struct MonSession {
    Monitor *mon;
    unsigned id;
    int refcnt;
    int in_fd;
    int out_fd;
    bool owns_fds;          /* close on free (not stdio) */
    bool is_tty;            /* stdio on a terminal */
    guint in_watch;
    guint out_watch;
    GString *out;
    size_t out_off;         /* bytes of @out already written */
    bool closed;            /* peer gone or we hung up */
    bool broken;            /* write failed; closing from the main loop */
    bool hangup_after_flush;
    bool input_ended;       /* EOF seen; closing once the queue is done */
    unsigned holds;         /* reasons to stop reading input */
    bool telnet;            /* input goes through telnet_filter() */
    TelnetState telnet_state;
    GArray *msgfds;         /* int: descriptors of the latest message */

    /* QMP */
    QJsonStream *parser;
    GQueue *requests;       /* QmpRequest *, parsed but not dispatched */
    bool busy;              /* a request is being handled */
    bool dispatching;       /* inside the queue loop */
    bool negotiated;
    bool oob_offered;
    bool oob_enabled;

    /* HMP */
    HmpSession *hmp;
} MonSession;

/* Reasons to stop reading a session's input (a bit each). */
enum {
    MON_HOLD_OUTPUT = 1,    /* output above the high-water mark */
    MON_HOLD_QUEUE = 2,     /* QMP request queue full */
    MON_HOLD_BUSY = 4,      /* HMP command running */
    MON_HOLD_EXIT = 8,      /* the process is exiting */
    MON_HOLD_BROKEN = 16,   /* closing */
};

/* Queue bytes for the peer, as they are. */
void mon_session_write(MonSession *s, const char *buf, size_t len);

/* Queue text, turning every "\n" into "\r\n" as QEMU's monitor does. */
void mon_session_puts(MonSession *s, const char *text);

/* Stop / restart reading input for @reason (MON_HOLD_*). */
void mon_session_hold(MonSession *s, unsigned reason);
void mon_session_release(MonSession *s, unsigned reason);

/* Close after the output queued so far is written. */
void mon_session_hangup(MonSession *s);

MonSession *mon_session_ref(MonSession *s);
void mon_session_unref(MonSession *s);

/* The schema the monitor was initialised with. */
QapiSchema *mon_schema(void);

/* getfd.c */

/*
 * Read input from @fd (a socket or not) into @buf, keeping descriptors
 * passed with it; read()'s return.
 */
ssize_t mon_session_recv(MonSession *s, int fd, char *buf, size_t len);

/* Close the descriptors passed and not taken with getfd. */
void mon_session_drop_msgfds(MonSession *s);

/*
 * The session whose command runs now (NULL when none): getfd takes the
 * descriptors it received, fd: URIs the names of its monitor.  Returns
 * the one before, to be set again after the command (they nest when a
 * command's end starts another's).
 */
MonSession *mon_set_current(MonSession *s);

/* qmp.c */
void qmp_session_start(MonSession *s);
void qmp_session_input(MonSession *s, const char *buf, size_t len);
/* The output backlog drained: go on with queued requests. */
void qmp_session_drained(MonSession *s);
void qmp_session_end(MonSession *s);
bool qmp_session_idle(const MonSession *s);
void qmp_session_event(MonSession *s, const json_t *event);

/* hmp.c */
void hmp_session_start(MonSession *s);
void hmp_session_input(MonSession *s, const char *buf, size_t len);
void hmp_session_end(MonSession *s);
bool hmp_session_idle(const MonSession *s);

/*
 * The protocol has nothing left to run: after end of input the session
 * closes once its last reply is written (the peer may have sent
 * commands and then closed its side, as a script piping into -qmp stdio
 * does; QEMU answers them all).
 */
void mon_session_idle(MonSession *s);

/* Build (again) the HMP command table from the schema. */
bool hmp_check_table(QapiSchema *schema, Error **errp);

/* Run one HMP command line; @done gets the output text (borrowed). */
typedef void HmpLineDone(void *opaque, const char *output);
void hmp_run_line(const char *line, HmpLineDone *done, void *opaque);

#endif /* MONITOR_MONITOR_INT_H */
