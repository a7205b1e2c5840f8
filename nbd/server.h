/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmpd's NBD server: nbd-server-start/-stop, the block exports it
 * serves (block-export-add and friends) and their HMP forms.  Clients
 * are served from the main loop, their requests through the block
 * layer's asynchronous I/O.
 */
#ifndef NBD_SERVER_H
#define NBD_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "qapi/error.h"
#include "qapi/dispatch.h"

/* Whether nbd-server-start has run (and no nbd-server-stop since). */
bool nbd_server_running(void);

/* Add the NBD server's trace points to the registry. */
void nbd_trace_register(void);

/* Remove every export (nbd-server-stop, the end of the process). */
void nbd_exports_close_all(void);

/*
 * HMP nbd_server_start: start the server at @addr (SocketAddressLegacy,
 * borrowed), then with @all export every block device with a medium
 * (@writable or not), stopping the server again if one fails.
 */
bool nbd_server_start_hmp(const json_t *addr, bool all, bool writable,
                          Error **errp);

extern const QapiHandler nbd_server_qmp_handlers[];
extern const size_t nbd_server_qmp_handlers_count;
extern const QapiHandler nbd_export_qmp_handlers[];
extern const size_t nbd_export_qmp_handlers_count;

#endif /* NBD_SERVER_H */
