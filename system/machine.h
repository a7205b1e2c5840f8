/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The emulated machine: its type (none, pc, q35 and their versioned
 * names), accelerator, RAM size and name, as -machine, -accel, -m and
 * -name set them and the query commands report them.
 */
#ifndef SYSTEM_MACHINE_H
#define SYSTEM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"

typedef struct MachineConfig {
    const char *type;       /* canonical name, e.g. "pc-i440fx-7.2" */
    const char *accel;      /* "tcg" or "qtest" */
    uint64_t ram_size;
    uint64_t maxram_size;   /* -m maxmem=, else ram_size */
    uint64_t ram_slots;     /* -m slots=, else 0 */
    char *name;             /* -name guest=..., or NULL */
    char *uuid;             /* -uuid, lower case; NULL: none given */
    const char *memory_backend; /* -machine memory-backend=, or the
                                 * default RAM backend's id; NULL: none */
} MachineConfig;

/*
 * @s as -uuid takes it (QEMU's format: 8-4-4-4-12 hex digits, either
 * case): a new string in lower case, or NULL.
 */
char *machine_uuid_parse(const char *s);

/* The guest's UUID as query-uuid shows it (all zeros when none). */
const char *machine_uuid(void);

/* Parse a -machine option string into @mc (type and properties). */
bool machine_parse(MachineConfig *mc, const char *spec, Error **errp);

/* Parse -accel NAME[,props]. */
bool machine_parse_accel(MachineConfig *mc, const char *spec, Error **errp);

/* Print "-machine help". */
void machine_print_help(FILE *f);

/*
 * The value qom-get gives for /machine's property @name (a new
 * reference), or NULL when qmpd's machine has no such property.
 */
json_t *machine_qom_get(const char *name);

/* QEMU's QOM type of the machine, e.g. "pc-i440fx-7.2-machine". */
char *machine_qom_type(void);

/* The configuration the queries report; set once at start-up. */
void machine_set_config(const MachineConfig *mc);
const MachineConfig *machine_config(void);

/*
 * How many CPUs the machine has: none for "none", one otherwise (qmpd
 * takes no -smp; QEMU's default is one CPU).  HMP commands run "on" one
 * of them (human-monitor-command's cpu-index).
 */
int machine_cpu_count(void);

/* The most vCPUs the machine type takes (query-machines' cpu-max). */
int machine_cpu_max(const char *type);

extern const QapiHandler machine_qmp_handlers[];
extern const size_t machine_qmp_handlers_count;

#endif /* SYSTEM_MACHINE_H */
