/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a management tool's capability probe asks of the machine beyond
 * its configuration: the QOM types of the board, its devices and CPUs
 * with their properties, the command-line options, and the hardware
 * qmpd does not have (TPM, SEV, SGX).
 */
#ifndef SYSTEM_MACHINE_CAPS_H
#define SYSTEM_MACHINE_CAPS_H

#include <stdbool.h>

#include <jansson.h>

#include "qapi/dispatch.h"

/*
 * Append to @list qom-list-types' entries for the machine, device and
 * CPU types that implement @want (NULL: all), abstract ones only when
 * @abstract.
 */
void machine_caps_list_types(json_t *list, const char *want, bool abstract);

extern const QapiHandler machine_caps_qmp_handlers[];
extern const size_t machine_caps_qmp_handlers_count;

#endif /* SYSTEM_MACHINE_CAPS_H */
