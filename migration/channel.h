/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Migration channels from QEMU's URIs: tcp:HOST:PORT and unix:PATH
 * (connected or listened on), exec:CMD (a shell command whose stdin the
 * source writes, whose stdout the destination reads) and fd:N (an
 * inherited descriptor) or fd:NAME (one the monitor running the command
 * took with getfd; the migration takes it over).  Each gives a
 * non-blocking file descriptor to the caller.
 */
#ifndef MIGRATION_CHANNEL_H
#define MIGRATION_CHANNEL_H

#include <stdbool.h>

#include <jansson.h>

#include "qapi/error.h"

/* @fd >= 0 (the caller's), or -1 with @err (taken). */
typedef void MigChannelCb(void *opaque, int fd, Error *err);

/*
 * For the fuzz targets: exec: would run a shell command of the fuzzer's
 * making and fd: take the fuzzer's own descriptors (fd:2 closed its
 * stderr), so from now on both are refused.
 */
void mig_channel_forbid_outside(void);

/* Whether @uri names a protocol migrate takes. */
bool mig_uri_valid(const char *uri);

/*
 * Open the source's channel to @uri; @cb runs once, later, from the
 * main loop (a TCP connection completes asynchronously).  False with
 * the error when @uri cannot be used at all.
 */
bool mig_channel_connect(const char *uri, MigChannelCb *cb, void *opaque,
                         Error **errp);

typedef struct MigListener MigListener;

/*
 * Wait for the source at @uri: @cb runs for each connection (multifd
 * opens several) until mig_listener_free(), which @cb may call; for
 * exec: and fd: once, at once, from the main loop.
 */
MigListener *mig_channel_listen(const char *uri, MigChannelCb *cb,
                                void *opaque, Error **errp);

/* query-migrate's socket-address while listening (new reference). */
json_t *mig_listener_address(const MigListener *l);

void mig_listener_free(MigListener *l);

/* Whether a connection waits to be accepted (never blocks). */
bool mig_listener_pending(const MigListener *l);

#endif /* MIGRATION_CHANNEL_H */
