/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iothread objects.  qmpd serves every device, node and job from its one
 * GLib main loop, so an iothread is where QEMU would run a device's I/O,
 * not a thread of its own: it exists, is listed by query-iothreads with
 * its parameters (the id of the thread that serves it), may be given to
 * the devices that take one (virtio-blk-pci, virtio-scsi-pci), and may be
 * deleted while a device links to it, as in QEMU 7.2.
 */
#ifndef SYSTEM_IOTHREAD_H
#define SYSTEM_IOTHREAD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"

/*
 * A device's iothread= value: its serial in @serial (0 for ""), or QEMU's
 * error for an id that is no iothread.
 */
bool iothread_link(const char *id, uint64_t *serial, Error **errp);
/* What qom-get shows of such a link: "/objects/ID", or "" once deleted. */
json_t *iothread_link_path(uint64_t serial);

extern const QapiHandler iothread_qmp_handlers[];
extern const size_t iothread_qmp_handlers_count;

#endif /* SYSTEM_IOTHREAD_H */
