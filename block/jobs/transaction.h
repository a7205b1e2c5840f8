/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The transaction command: bitmap and snapshot actions applied all or
 * none, as QEMU 7.2's qmp_transaction().
 */
#ifndef BLOCK_JOBS_TRANSACTION_H
#define BLOCK_JOBS_TRANSACTION_H

#include <stddef.h>

#include "qapi/dispatch.h"

extern const QapiHandler transaction_qmp_handlers[];
extern const size_t transaction_qmp_handlers_count;

#endif /* BLOCK_JOBS_TRANSACTION_H */
