/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The NBD server's trace points (QEMU's names): a client's handshake
 * beginning and its move to the transmission phase. */
#ifndef NBD_TRACE_EVENTS_H
#define NBD_TRACE_EVENTS_H

#include "util/trace.h"

#define NBD_TRACE_EVENTS(X)                     \
    X(nbd_negotiate_begin)                      \
    X(nbd_negotiate_success)

enum { NBD_TRACE_EVENTS(TRACE_INDEX) NBD_TRACE_COUNT };

extern TraceEvent nbd_trace[NBD_TRACE_COUNT];

#endif /* NBD_TRACE_EVENTS_H */
