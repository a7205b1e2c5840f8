/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's vCPUs: -smp and -cpu, and their QMP queries and QOM
 * objects.
 */
#ifndef SYSTEM_CPU_H
#define SYSTEM_CPU_H

#include <stdbool.h>

#include <glib.h>
#include <jansson.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"
#include "system/machine.h"

/*
 * -cpu MODEL[,FEATURE=off...]: one of the models query-cpu-definitions
 * lists, with feature flags turned off (the models have none).
 */
bool cpu_parse_model(const char *spec, Error **errp);

/*
 * The ",FEATURE=on|off,+FEATURE,-FEATURE" list after -cpu's @model:
 * true when each names a QEMU 7.2 CPUID flag turned off; else false
 * with @errp set (QEMU's message for an unknown flag or value).
 */
bool cpu_parse_features(const char *model, const char *features,
                        Error **errp);

/* -smp [cpus=]N[,maxcpus=,sockets=,dies=,cores=,threads=], QEMU's rules. */
bool cpu_parse_smp(const char *spec, Error **errp);

/* Check the topology against the machine type's CPU limit (after -M). */
bool cpu_check_machine(const MachineConfig *mc, Error **errp);

/* The vCPUs the guest has (none on -M none). */
unsigned cpu_count(void);

/* How far the CPUs after the first move the board's device numbers. */
unsigned cpu_board_shift(void);

/* Append the CPUs' QOM paths to @paths (new strings: @paths frees them). */
void cpu_qom_paths(GPtrArray *paths);

/* The properties of qmpd's CPU types (new reference). */
json_t *cpu_class_properties(void);

/* qom-list of the CPU at @path (new reference), or NULL: not a CPU. */
json_t *cpu_qom_list(const char *path);

/*
 * qom-get of @prop on the CPU at @path: false when @path is not a CPU;
 * else true with *ret the value (new reference) or NULL and @errp set.
 */
bool cpu_qom_get(const char *path, const char *prop, json_t **ret,
                 Error **errp);

extern const QapiHandler cpu_qmp_handlers[];
extern const size_t cpu_qmp_handlers_count;

#endif /* SYSTEM_CPU_H */
