/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qom-get: properties of the QOM objects qmpd models (the machine and
 * the guest's devices), as QEMU shows them.
 */
#ifndef SYSTEM_QOM_H
#define SYSTEM_QOM_H

#include "qapi/dispatch.h"

extern const QapiHandler qom_qmp_handlers[];
extern const size_t qom_qmp_handlers_count;

#endif /* SYSTEM_QOM_H */
