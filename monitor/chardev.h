/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Character devices as far as monitors and qtest need them: sockets
 * (unix or tcp; listening or connecting; or an inherited fd), stdio and
 * null.  Specs come from -chardev or the -qmp/-monitor/-qtest shorthand.
 */
#ifndef MONITOR_CHARDEV_H
#define MONITOR_CHARDEV_H

#include <stdbool.h>

#include <jansson.h>

#include "qapi/error.h"

typedef enum ChardevKind {
    CHARDEV_SOCKET,
    CHARDEV_STDIO,
    CHARDEV_NULL,
} ChardevKind;

typedef struct Chardev Chardev;

/* Parse a -chardev option string; the chardev is not opened yet. */
Chardev *chardev_parse(const char *spec, Error **errp);

/*
 * Parse the shorthand of -qmp, -monitor, -qtest and -serial:
 * "unix:PATH[,opts]", "tcp:HOST:PORT[,opts]", "telnet:HOST:PORT[,opts]",
 * "stdio", "none", or
 * "chardev:ID" (which sets *@ref to ID and returns NULL without error).
 * The new chardev gets the id @id; @loc names the option in messages.
 */
Chardev *chardev_parse_uri(const char *uri, const char *id, const char *loc,
                           char **ref, Error **errp);

/*
 * Open the chardev: bind and listen, connect, adopt the fd, or take
 * stdio.  With server=on,wait=on, blocks until the first client
 * connects, as QEMU does (after printing QEMU's notice).
 */
bool chardev_open(Chardev *c, Error **errp);

/*
 * A client socket with reconnect=N: seconds between connection attempts
 * (its peer may come and go), or 0.
 */
unsigned chardev_reconnect_secs(const Chardev *c);

/*
 * One connection attempt of a reconnecting client: the connected fd
 * (non-blocking; the caller's), or -1 after printing QEMU's "Unable to
 * connect character device" line, once per outage.
 */
int chardev_reconnect(Chardev *c);

const char *chardev_id(const Chardev *c);

/* The option that defined it ("-chardev ...", "-qmp ..."), for messages. */
const char *chardev_location(const Chardev *c);
ChardevKind chardev_kind(const Chardev *c);

/* A socket with telnet=on: its connections speak telnet. */
bool chardev_telnet(const Chardev *c);

/* stdio: whether ^C and friends stay signals (QEMU's signal=on) */
bool chardev_stdio_signal(const Chardev *c);

/* For sockets: a listening socket (accept clients) or a connection. */
bool chardev_is_listener(const Chardev *c);

/*
 * The fd to read (stdio: 0, socket: the listening or connected socket,
 * null: -1) and to write (stdio: 1, socket: the same).
 */
int chardev_in_fd(const Chardev *c);
int chardev_out_fd(const Chardev *c);

/*
 * Take a connection made while opening (wait=on, or client mode): the
 * connected fd, or -1.  The caller owns it.
 */
int chardev_take_connection(Chardev *c);

/* QEMU's filename string, e.g. "unix:/path,server=on" or "stdio". */
const char *chardev_filename(const Chardev *c);

/* A monitor or serial port now serves @c (query-chardev's frontend-open). */
void chardev_set_frontend_open(Chardev *c);

/* query-chardev's list of the opened chardevs (new reference). */
json_t *chardev_query_list(void);

/* Accept one client on a listening chardev; -1 on EAGAIN or error. */
int chardev_accept(Chardev *c);

/* Remove a unix socket path we created, close fds. */
void chardev_free(Chardev *c);

#endif /* MONITOR_CHARDEV_H */
