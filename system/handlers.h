/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef SYSTEM_HANDLERS_H
#define SYSTEM_HANDLERS_H

#include "qapi/schema.h"

/* Attach every subsystem's QMP handlers (and HMP-only commands). */
void qmpd_register_handlers(QapiSchema *s);

#endif /* SYSTEM_HANDLERS_H */
