/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Stream sockets for the services that listen and connect: migration's
 * channels and the NBD server.  Addresses come in as QEMU spells them
 * (a host and a port, "[V6]" with brackets in a "HOST:PORT", a unix
 * path, an fd:N or fd:NAME parameter); what they mean on the wire and
 * which QAPI type carries them stays with the callers.  Errors are
 * GErrors carrying QEMU's text, which the callers pass on as theirs.
 * Every descriptor handed out is non-blocking and close-on-exec.
 */
#ifndef UTIL_SOCKETS_H
#define UTIL_SOCKETS_H

#include <stdbool.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <glib.h>

/* The domain of the GErrors set here; their codes are errno values. */
GQuark sock_error_quark(void);

/* Make @fd non-blocking and close-on-exec. */
void sock_set_nonblock(int fd);

/*
 * Split "HOST:PORT" or "[V6]:PORT" (the last colon separates the
 * port); an empty host stays empty.  False with "error parsing address
 * '@hp'" when there is no colon.
 */
bool sock_split_host_port(const char *hp, char **host, char **port,
                          GError **err);

/*
 * Resolve @host (empty or NULL: any) and @port for a stream socket,
 * @passive for a listener; free with freeaddrinfo().
 */
struct addrinfo *sock_resolve(const char *host, const char *port,
                              bool passive, GError **err);

/* Fill @sun with @path; false when it does not fit. */
bool sock_unix_addr(const char *path, struct sockaddr_un *sun,
                    GError **err);

/*
 * Start a non-blocking connect to @sa: the socket, with *@in_progress
 * set when it completes later (writable, then SO_ERROR), or -errno.
 */
int sock_connect_start(const struct sockaddr *sa, socklen_t len,
                       bool *in_progress);

/* A socket listening on @host:@port (the first address it resolves to). */
int sock_listen_inet(const char *host, const char *port, GError **err);

/*
 * A socket listening on the unix @path, owner-only; a file there is
 * replaced.  Refused (EACCES) where util/confine.h forbids writing.
 */
int sock_listen_unix(const char *path, GError **err);

/*
 * The numeric host and port a socket is bound to, and whether it is
 * IPv6; false when it is not an inet socket.
 */
bool sock_inet_name(int fd, char **host, char **port, bool *ipv6);

/*
 * The descriptor fd:@param names, the caller's: a number (a descriptor
 * open in this process) or a name the current monitor gave with getfd
 * (util/fdstore.h).  -1 with QEMU's message when there is none.
 */
int sock_fd_param(const char *param, GError **err);

/*
 * For the fuzz targets: fd: would take the fuzzer's own descriptors
 * (fd:2 closed its stderr), so from now on sock_fd_param() refuses.
 */
void sock_forbid_fd_param(void);

typedef struct SockListener SockListener;

/* A new connection, @fd the callback's. */
typedef void SockAcceptCb(void *opaque, int fd);

/*
 * Accept on @fd, a listening socket (taken), from the main loop: @cb
 * runs for each connection until sock_listener_free(), which @cb may
 * call.
 */
SockListener *sock_listener_new(int fd, SockAcceptCb *cb, void *opaque);

/* The listening socket, still @l's. */
int sock_listener_fd(const SockListener *l);

/*
 * Stop accepting (connections wait in the listen queue) or accept
 * again: a server at its connection limit.
 */
void sock_listener_pause(SockListener *l, bool paused);

/* Whether a connection waits to be accepted (never blocks). */
bool sock_listener_pending(const SockListener *l);

/* Close the socket and stop; NULL is fine. */
void sock_listener_free(SockListener *l);

#endif /* UTIL_SOCKETS_H */
