/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QEMU-style command line.  Parsing only collects and checks what
 * was asked; main() then opens chardevs and monitors in order.
 */
#ifndef SYSTEM_OPTIONS_H
#define SYSTEM_OPTIONS_H

#include <stdbool.h>

#include <glib.h>

#include "monitor/chardev.h"
#include "monitor/monitor.h"
#include "qapi/error.h"
#include "system/machine.h"
#include "system/memory.h"

typedef struct MonitorOpt {
    char *chardev_id;       /* the chardev to serve */
    MonMode mode;
    bool pretty;
    char *loc;              /* the option as given, for messages */
    char *id;               /* -mon id=, unique among them as in QEMU */
} MonitorOpt;

typedef struct DeviceOpt {
    char *driver;
    char *id;
    char *drive;
    char *arg;              /* as given, for the device's properties */
} DeviceOpt;

typedef struct DriveOpt {
    bool blockdev;          /* -blockdev, else -drive */
    char *arg;
    char *label;            /* "-hda FILE" for errors, else NULL */
} DriveOpt;

typedef enum OptAction {
    OPT_RUN,                /* start the service */
    OPT_EXIT,               /* printed what was asked (help, version) */
} OptAction;

typedef struct QmpdOptions {
    GPtrArray *chardevs;    /* Chardev *, in order */
    GPtrArray *monitors;    /* MonitorOpt * */
    GPtrArray *devices;     /* DeviceOpt * */
    GPtrArray *drives;      /* DriveOpt *, in command-line order */
    GPtrArray *objects;     /* char *: each -object's argument, in order */
    GPtrArray *traces;      /* char *: each -trace's argument, in order */
    GPtrArray *serials;     /* char *: the serial ports' chardev ids */
    char *qtest;            /* the chardev id serving qtest */
    char *qtest_log;
    MachineConfig machine;
    MemoryOpts memory;      /* -m */
    bool start_paused;
    bool daemonize;
    char *pidfile;
    char *incoming;
    char *process_name;     /* -name process=, for the thread's comm */
    bool debug_threads;     /* -name debug-threads=on */
    bool nodefaults;
    bool nographic;
    bool no_vga;            /* -vga none */
    bool serial_given;      /* any -serial (none too): no default one */
    int log_level;
} QmpdOptions;

/*
 * Parse @argv.  Returns OPT_RUN with @o filled in, OPT_EXIT after
 * printing help or version, or -1 with @errp set; the message names the
 * offending option ("-foo: invalid option").
 */
int qmpd_parse_options(QmpdOptions *o, int argc, char **argv, Error **errp);

void qmpd_options_free(QmpdOptions *o);

/* The chardev with id @id from @o, or NULL. */
Chardev *qmpd_options_chardev(const QmpdOptions *o, const char *id);

#endif /* SYSTEM_OPTIONS_H */
