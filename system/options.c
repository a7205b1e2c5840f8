/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Command-line parsing.  Options are QEMU's (one or two leading dashes,
 * the argument in the next word).  Each supported option has a handler;
 * options QEMU has that qmpd does not implement are named in an error,
 * never ignored.  Chardevs may be defined after the -mon that uses them,
 * so references are resolved once everything is parsed.
 */
#include "config.h"

#include <errno.h>

#include <stdio.h>
#include <string.h>

#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/drive.h"
#include "system/guest-props.h"
#include "system/memory.h"
#include "system/object.h"
#include "system/options.h"
#include "system/options-board.h"
#include "util/trace.h"

typedef bool OptionFn(QmpdOptions *o, const char *arg, Error **errp);

typedef struct {
    const char *name;
    bool has_arg;
    OptionFn *fn;
    bool bare_errors;       /* QEMU reports these without the option */
} Option;

/* QEMU options qmpd knows of but does not implement. */
static const char *const unsupported[] = {
    "vnc", "spice", "parallel", "netdev", "net", "nic",
    "fda", "fdb", "mtdblock", "sd", "pflash",
    "global", "sandbox",
    "enable-kvm", "kernel", "initrd", "append", "dtb", "bios",
    "usb", "usbdevice", "audio", "soundhw", "snapshot", "loadvm",
    "k", "mem-path", "mem-prealloc", "numa", "smbios", "fw_cfg",
    "icount", "d", "L", "chroot", "runas", "tpmdev",
    "watchdog", "watchdog-action", "iscsi", "add-fd", "readconfig",
    "writeconfig", "plugin", "preconfig", "compat", "action", "semihosting",
    "semihosting-config", "virtfs", "fsdev", "mon-pretty", "gdb", "s",
    "singlestep", "no-reboot", "no-hpet", "device-helper",
    "acpitable", "echr", "show-cursor", "full-screen", "alt-grab",
    "ctrl-grab", "sdl", "curses", "portrait", "rotate", "g", "option-rom",
    "prom-env", "old-param", "xen-domid", "xen-attach", "seed", "set",
    "incoming-x", "only-migratable", "nouserconfig", "machine-help",
    NULL
};

static MonitorOpt *monitor_opt_new(QmpdOptions *o, const char *id,
                                   MonMode mode, bool pretty, const char *loc)
{
    MonitorOpt *m = g_new0(MonitorOpt, 1);

    m->chardev_id = g_strdup(id);
    m->mode = mode;
    m->pretty = pretty;
    m->loc = g_strdup(loc);
    g_ptr_array_add(o->monitors, m);
    return m;
}

static bool add_chardev(QmpdOptions *o, Chardev *c, Error **errp)
{
    if (qmpd_options_chardev(o, chardev_id(c))) {
        error_setg(errp, "Duplicate ID '%s' for chardev", chardev_id(c));
        chardev_free(c);
        return false;
    }
    g_ptr_array_add(o->chardevs, c);
    return true;
}

/* -qmp, -qmp-pretty, -monitor: a chardev shorthand plus a monitor. */
static bool monitor_shorthand(QmpdOptions *o, const char *opt,
                              const char *arg, MonMode mode, bool pretty,
                              Error **errp)
{
    g_autofree char *id = g_strdup_printf("compat_monitor%u",
                                          o->monitors->len);
    g_autofree char *ref = NULL;
    g_autofree char *loc = g_strdup_printf("-%s %s", opt, arg);
    Chardev *c;

    if (mode == MON_MODE_READLINE && !strcmp(arg, "none")) {
        return true;
    }
    c = chardev_parse_uri(arg, id, loc, &ref, errp);
    if (ref) {
        monitor_opt_new(o, ref, mode, pretty, loc);
        return true;
    }
    if (!c || !add_chardev(o, c, errp)) {
        return false;
    }
    monitor_opt_new(o, id, mode, pretty, loc);
    return true;
}

static bool opt_qmp(QmpdOptions *o, const char *arg, Error **errp)
{
    return monitor_shorthand(o, "qmp", arg, MON_MODE_CONTROL, false, errp);
}

static bool opt_qmp_pretty(QmpdOptions *o, const char *arg, Error **errp)
{
    return monitor_shorthand(o, "qmp-pretty", arg, MON_MODE_CONTROL, true,
                             errp);
}

static bool opt_monitor(QmpdOptions *o, const char *arg, Error **errp)
{
    return monitor_shorthand(o, "monitor", arg, MON_MODE_READLINE, false,
                             errp);
}

static bool opt_chardev(QmpdOptions *o, const char *arg, Error **errp)
{
    Chardev *c = chardev_parse(arg, errp);

    return c && add_chardev(o, c, errp);
}

static bool opt_mon(QmpdOptions *o, const char *arg, Error **errp)
{
    static const char *const keys[] = { "chardev", "mode", "pretty", "id",
                                        NULL };
    static const char *const bools[] = { "pretty", NULL };
    g_autoptr(Opts) m = opts_parse(arg, "chardev", keys, bools, errp);
    g_autofree char *loc = g_strdup_printf("-mon %s", arg);
    const char *mode;
    Error *err = NULL;
    bool pretty;

    if (!m) {
        return false;
    }
    if (!opts_has(m, "chardev")) {
        error_setg(errp, "chardev name must be given");
        return false;
    }
    for (guint i = 0; opts_has(m, "id") && i < o->monitors->len; i++) {
        const MonitorOpt *other = g_ptr_array_index(o->monitors, i);

        if (!g_strcmp0(other->id, opts_get(m, "id"))) {
            error_setg(errp, "Duplicate ID '%s' for mon", other->id);
            return false;
        }
    }
    mode = opts_get(m, "mode");
    if (mode && strcmp(mode, "control") && strcmp(mode, "readline")) {
        error_setg(errp, "Parameter 'mode' does not accept value '%s'", mode);
        return false;
    }
    pretty = opts_get_bool(m, "pretty", false, &err);
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    monitor_opt_new(o, opts_get(m, "chardev"),
                    mode && !strcmp(mode, "control") ? MON_MODE_CONTROL
                                                     : MON_MODE_READLINE,
                    pretty, loc)->id = g_strdup(opts_get(m, "id"));
    return true;
}

static bool opt_qtest(QmpdOptions *o, const char *arg, Error **errp)
{
    g_autofree char *ref = NULL;
    g_autofree char *loc = g_strdup_printf("-qtest %s", arg);
    Chardev *c = chardev_parse_uri(arg, "qtest", loc, &ref, errp);

    if (ref) {
        o->qtest = g_steal_pointer(&ref);
        return true;
    }
    if (!c || !add_chardev(o, c, errp)) {
        return false;
    }
    o->qtest = g_strdup("qtest");
    return true;
}

/* -serial: a chardev shorthand for the next serial port ("none": none). */
static bool opt_serial(QmpdOptions *o, const char *arg, Error **errp)
{
    g_autofree char *ref = NULL;
    g_autofree char *loc = g_strdup_printf("-serial %s", arg);
    g_autofree char *id = g_strdup_printf("serial%u", o->serials->len);
    Chardev *c;

    o->serial_given = true;
    if (!strcmp(arg, "none")) {
        return true;
    }
    c = chardev_parse_uri(arg, id, loc, &ref, errp);
    if (ref) {
        g_ptr_array_add(o->serials, g_steal_pointer(&ref));
        return true;
    }
    if (!c || !add_chardev(o, c, errp)) {
        return false;
    }
    g_ptr_array_add(o->serials, g_steal_pointer(&id));
    return true;
}

static bool opt_qtest_log(QmpdOptions *o, const char *arg, Error **errp)
{
    g_free(o->qtest_log);
    o->qtest_log = g_strdup(arg);
    return true;
}

static bool opt_S(QmpdOptions *o, const char *arg, Error **errp)
{
    o->start_paused = true;
    return true;
}

static bool opt_daemonize(QmpdOptions *o, const char *arg, Error **errp)
{
    o->daemonize = true;
    return true;
}

static bool opt_nodefaults(QmpdOptions *o, const char *arg, Error **errp)
{
    o->nodefaults = true;
    return true;
}

static bool opt_nographic(QmpdOptions *o, const char *arg, Error **errp)
{
    o->nographic = true;
    return true;
}

static bool opt_noop(QmpdOptions *o, const char *arg, Error **errp)
{
    /* -no-user-config: qmpd reads no configuration files anyway */
    return true;
}

static bool opt_uuid(QmpdOptions *o, const char *arg, Error **errp)
{
    char *uuid = machine_uuid_parse(arg);

    if (!uuid) {
        error_setg(errp, "failed to parse UUID string: wrong format");
        return false;
    }
    g_free(o->machine.uuid);
    o->machine.uuid = uuid;
    return true;
}

static bool opt_name(QmpdOptions *o, const char *arg, Error **errp)
{
    static const char *const keys[] = { "guest", "process", "debug-threads",
                                        NULL };
    static const char *const bools[] = { "debug-threads", NULL };
    g_autoptr(Opts) n = opts_parse(arg, "guest", keys, bools, errp);
    Error *err = NULL;
    bool debug_threads;

    if (!n) {
        return false;
    }
    debug_threads = opts_get_bool(n, "debug-threads", false, &err);
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    o->debug_threads = debug_threads;
    g_free(o->machine.name);
    o->machine.name = g_strdup(opts_get(n, "guest"));
    g_free(o->process_name);
    o->process_name = g_strdup(opts_get(n, "process"));
    return true;
}

static bool opt_pidfile(QmpdOptions *o, const char *arg, Error **errp)
{
    g_free(o->pidfile);
    o->pidfile = g_strdup(arg);
    return true;
}

static bool opt_display(QmpdOptions *o, const char *arg, Error **errp)
{
    /* DisplayOptions' common members; "none" has no others */
    static const char *const keys[] = { "type", "full-screen",
                                        "window-close", "show-cursor", "gl",
                                        NULL };
    static const char *const bools[] = { "full-screen", "window-close",
                                         "show-cursor", NULL };
    g_autoptr(Opts) d = opts_parse(arg, "type", NULL, bools, errp);
    Error *err = NULL;
    const char *type;
    const char *gl;

    if (!d) {
        return false;
    }
    type = opts_get(d, "type");
    if (!type || strcmp(type, "none")) {
        error_setg(errp, "display '%s' is not supported by qmpd (only "
                   "'none')", type ? type : "");
        return false;
    }
    for (guint i = 0; i < opts_count(d); i++) {
        if (!g_strv_contains(keys, opts_key(d, i))) {
            error_setg(errp, "Parameter '%s' is unexpected", opts_key(d, i));
            return false;
        }
    }
    for (guint i = 0; bools[i]; i++) {
        opts_get_bool(d, bools[i], false, &err);
    }
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    /* QEMU's gl values: off, on, core, es; only "off" needs no GPU */
    gl = opts_get(d, "gl");
    if (gl && strcmp(gl, "off")) {
        if (strcmp(gl, "on") && strcmp(gl, "core") && strcmp(gl, "es")) {
            error_setg(errp, "Parameter 'gl' does not accept value '%s'", gl);
        } else {
            error_setg(errp, "OpenGL is not supported by the display");
        }
        return false;
    }
    return true;
}

static bool opt_vga(QmpdOptions *o, const char *arg, Error **errp)
{
    if (strcmp(arg, "none")) {
        error_setg(errp, "VGA '%s' is not supported by qmpd (only 'none')",
                   arg);
        return false;
    }
    o->no_vga = true;
    return true;
}

static bool opt_machine(QmpdOptions *o, const char *arg, Error **errp)
{
    return machine_parse(&o->machine, arg, errp);
}

static bool opt_accel(QmpdOptions *o, const char *arg, Error **errp)
{
    return machine_parse_accel(&o->machine, arg, errp);
}

static bool opt_m(QmpdOptions *o, const char *arg, Error **errp)
{
    return memory_parse(&o->memory, arg, errp);
}


/* Checked when the device is created, after the drives exist. */
/* The string member @key of -device's JSON form, or NULL. */
static char *json_member(const json_t *spec, const char *key)
{
    return g_strdup(json_string_value(json_object_get(spec, key)));
}

static bool opt_device(QmpdOptions *o, const char *arg, Error **errp)
{
    g_autoptr(Opts) d = NULL;
    DeviceOpt *dev;

    if (arg[0] == '{') {
        json_error_t jerr;
        g_autoptr(json_t) spec = json_loads(arg, 0, &jerr);

        if (!json_is_object(spec)) {
            error_setg(errp, "%s", jerr.text);
            return false;
        }
        dev = g_new0(DeviceOpt, 1);
        dev->driver = json_member(spec, "driver");
        dev->id = json_member(spec, "id");
        dev->drive = json_member(spec, "drive");
        dev->arg = g_strdup(arg);
        g_ptr_array_add(o->devices, dev);
        return true;
    }
    d = opts_parse(arg, "driver", NULL, NULL, errp);
    if (!d) {
        return false;
    }
    dev = g_new0(DeviceOpt, 1);
    dev->driver = g_strdup(opts_get(d, "driver"));
    dev->id = g_strdup(opts_get(d, "id"));
    dev->drive = g_strdup(opts_get(d, "drive"));
    dev->arg = g_strdup(arg);
    g_ptr_array_add(o->devices, dev);
    return true;
}

static DriveOpt *add_drive(QmpdOptions *o, bool blockdev, const char *arg)
{
    DriveOpt *d = g_new0(DriveOpt, 1);

    d->blockdev = blockdev;
    d->arg = g_strdup(arg);
    g_ptr_array_add(o->drives, d);
    return d;
}

/*
 * -hda FILE is QEMU's -drive file=FILE,index=0,media=disk on the
 * machine's default interface (an IDE disk on pc/q35); -hdb..-hdd take
 * indexes 1..3, -cdrom FILE is index 2 with media=cdrom.  Errors name
 * the option, as QEMU's.
 */
static bool opt_hd_media(QmpdOptions *o, int index, const char *name,
                         const char *arg, const char *media)
{
    g_autoptr(GString) drive = g_string_new("file=");
    DriveOpt *d;

    /* the file name is one value: its commas are doubled */
    for (const char *p = arg; *p; p++) {
        g_string_append_c(drive, *p);
        if (*p == ',') {
            g_string_append_c(drive, ',');
        }
    }
    g_string_append_printf(drive, ",index=%d,media=%s", index, media);
    d = add_drive(o, false, drive->str);
    d->label = g_strdup_printf("-%s %s", name, arg);
    return true;
}

static bool opt_hd(QmpdOptions *o, int index, const char *name,
                   const char *arg)
{
    return opt_hd_media(o, index, name, arg, "disk");
}

static bool opt_cdrom(QmpdOptions *o, const char *arg, Error **errp)
{
    return opt_hd_media(o, 2, "cdrom", arg, "cdrom");
}

static bool opt_hda(QmpdOptions *o, const char *arg, Error **errp)
{
    return opt_hd(o, 0, "hda", arg);
}

static bool opt_hdb(QmpdOptions *o, const char *arg, Error **errp)
{
    return opt_hd(o, 1, "hdb", arg);
}

static bool opt_hdc(QmpdOptions *o, const char *arg, Error **errp)
{
    return opt_hd(o, 2, "hdc", arg);
}

static bool opt_hdd(QmpdOptions *o, const char *arg, Error **errp)
{
    return opt_hd(o, 3, "hdd", arg);
}

/* Checked when opened, once the schema is loaded. */
static bool opt_drive(QmpdOptions *o, const char *arg, Error **errp)
{
    add_drive(o, false, arg);
    return true;
}

static bool opt_blockdev(QmpdOptions *o, const char *arg, Error **errp)
{
    add_drive(o, true, arg);
    return true;
}

static bool opt_incoming(QmpdOptions *o, const char *arg, Error **errp)
{
    g_free(o->incoming);
    o->incoming = g_strdup(arg);
    return true;
}

/* Created once the schema is loaded, before the drives that use them. */
static bool opt_object(QmpdOptions *o, const char *arg, Error **errp)
{
    g_ptr_array_add(o->objects, g_strdup(arg));
    return true;
}

/*
 * -trace [enable=]PATTERN,events=FILE,file=FILE: checked now, applied
 * once the trace points are registered (trace_opts_apply()).  file=
 * names the output of QEMU's "simple" backend; its log backend, like
 * qmpd's, writes to stderr or -D's file, and ignores it.
 */
static bool opt_trace(QmpdOptions *o, const char *arg, Error **errp)
{
    static const char *const keys[] = { "enable", "events", "file", NULL };
    g_autoptr(Opts) opts = opts_parse(arg, "enable", keys, NULL, errp);

    if (!opts) {
        return false;
    }
    g_ptr_array_add(o->traces, g_strdup(arg));
    return true;
}

/* -D FILE: the trace lines' file, opened now as QEMU opens it. */
static bool opt_logfile(QmpdOptions *o, const char *arg, Error **errp)
{
    if (!trace_set_logfile(arg)) {
        error_setg(errp, "Error opening logfile %s: %s", arg,
                   g_strerror(errno));
        return false;
    }
    return true;
}

static const Option options[] = {
    { "qmp", true, opt_qmp, false },
    { "qmp-pretty", true, opt_qmp_pretty, false },
    { "monitor", true, opt_monitor, false },
    { "chardev", true, opt_chardev, false },
    { "mon", true, opt_mon, false },
    { "qtest", true, opt_qtest, false },
    { "qtest-log", true, opt_qtest_log, false },
    { "serial", true, opt_serial, false },
    { "S", false, opt_S, false },
    { "daemonize", false, opt_daemonize, false },
    { "nodefaults", false, opt_nodefaults, false },
    { "nographic", false, opt_nographic, false },
    { "no-user-config", false, opt_noop, false },
    { "name", true, opt_name, false },
    { "uuid", true, opt_uuid, false },
    { "trace", true, opt_trace, false },
    { "D", true, opt_logfile, true },
    { "smp", true, board_opt_smp, true },
    { "cpu", true, board_opt_cpu, true },
    { "overcommit", true, board_opt_overcommit, false },
    { "rtc", true, board_opt_rtc, false },
    { "boot", true, board_opt_boot, true },
    { "no-acpi", false, board_opt_no_acpi, false },
    { "no-shutdown", false, board_opt_no_shutdown, false },
    { "audiodev", true, board_opt_audiodev, false },
    { "msg", true, board_opt_msg, false },
    { "pidfile", true, opt_pidfile, false },
    { "display", true, opt_display, false },
    { "vga", true, opt_vga, false },
    { "M", true, opt_machine, true },
    { "machine", true, opt_machine, true },
    { "accel", true, opt_accel, false },
    { "m", true, opt_m, false },
    { "device", true, opt_device, false },
    { "drive", true, opt_drive, false },
    { "hda", true, opt_hda, false },
    { "cdrom", true, opt_cdrom, false },
    { "hdb", true, opt_hdb, false },
    { "hdc", true, opt_hdc, false },
    { "hdd", true, opt_hdd, false },
    { "blockdev", true, opt_blockdev, false },
    { "incoming", true, opt_incoming, false },
    { "object", true, opt_object, false },
};

static void print_usage(void)
{
    printf("QEMU emulator version %d.%d.%d (%s %s)\n"
           "usage: qmpd [options]\n\n"
           "qmpd serves the QEMU monitor protocols (QMP and HMP) over a real "
           "block layer.\n\n"
           "Monitors:\n"
           "-qmp unix:PATH,server=on,wait=off | tcp:HOST:PORT,server=on,"
           "wait=off | stdio\n"
           "     (telnet:HOST:PORT,... is tcp: with telnet=on)\n"
           "-qmp-pretty DEV            QMP with indented replies\n"
           "-monitor DEV               human monitor (HMP)\n"
           "-chardev socket,id=ID,path=PATH|host=H,port=P|fd=N"
           "[,server=on,wait=off][,telnet=on]\n"
           "-chardev stdio,id=ID | null,id=ID\n"
           "-mon chardev=ID[,mode=control|readline][,pretty=on]\n"
           "-qtest DEV [-qtest-log FILE]\n"
           "-serial DEV | none          a serial port (input dropped)\n\n"
           "Machine:\n"
           "-M, -machine none|pc|q35[,accel=tcg|qtest[:...]]   "
           "(-machine help)\n"
           "-accel tcg|qtest[,thread=single|multi]\n"
           "-m [size=]SIZE[,slots=N,maxmem=SIZE]   guest RAM (MiB without "
           "suffix)\n"
           "-smp [cpus=]N[,maxcpus=N][,sockets=N][,dies=N][,cores=N]"
           "[,threads=N]   vCPUs\n"
           "-cpu qemu64|qemu64-v1|max|base[,FLAG=off]   CPU model (no "
           "feature flags)\n"
           "-overcommit mem-lock=off[,cpu-pm=off]  -rtc base=utc  "
           "-boot strict=on|off\n"
           "-no-acpi  -no-shutdown  -audiodev none,id=ID  "
           "-msg timestamp=on|off\n"
           "-device virtio-blk-pci|scsi-hd|scsi-cd|ide-hd|ide-cd|"
           "virtio-scsi-pci|piix3-usb-uhci\n"
           "        [,drive=ID][,id=ID][,PROP=VALUE...]\n"
           "                           (-device help, -device MODEL,help)\n"
           "-name NAME | guest=NAME[,process=NAME][,debug-threads=on|off]\n"
           "-uuid UUID                 the guest's UUID (query-uuid)\n"
           "-trace [enable=]PATTERN[,events=FILE]  -D FILE   trace points, "
           "their output (stderr)\n"
           "-object iothread|secret|memory-backend-ram|throttle-group,"
           "id=ID[,...]\n"
           "                           (-object help, -object TYPE,help)\n"
           "-S                         start paused (prelaunch)\n"
           "-incoming tcp:[host]:port | unix:path | exec:cmdline | fd:n | defer\n"
           "                          start in the inmigrate state and wait\n"
           "                          for a migration (defer: for\n"
           "                          migrate-incoming)\n\n"
           "Disks:\n"
           "-drive [file=FILE][,format=qcow2|raw][,if=none|virtio|ide|scsi]"
           "[,id=ID]\n"
           "       [,media=disk|cdrom]"
           "[,index=N|bus=N,unit=N][,readonly=on][,cache=MODE]\n       "
           "[,aio=threads|native]\n"
           "       [,discard=ignore|unmap][,detect-zeroes=on|off|unmap]"
           "[,werror=..][,rerror=..]\n"
           "       [,copy-on-read=on][,force-share=on][,node-name=NAME]"
           "[,DRIVER-OPTION=..]\n"
           "       [,throttling.bps-total=N|bps=N,...][,throttling.group="
           "NAME|group=NAME]\n"
           "                           (-drive format=help)\n"
           "-blockdev driver=DRIVER,node-name=NAME,... | JSON   a node, as "
           "blockdev-add\n"
           "-hda, -hdb, -hdc, -hdd FILE   an IDE disk at index 0..3\n"
           "-cdrom FILE                an IDE CD-ROM at index 2\n\n"
           "Process:\n"
           "-daemonize  -pidfile FILE  -nodefaults  -nographic  "
           "-no-user-config\n"
           "-display none  -vga none  -version  -h, -help\n",
           QMPD_QEMU_MAJOR, QMPD_QEMU_MINOR, QMPD_QEMU_MICRO, PACKAGE_NAME,
           PACKAGE_VERSION);
}

static void print_version(void)
{
    printf("QEMU emulator version %d.%d.%d (%s %s)\n"
           "qmpd serves the QEMU %d.%d monitor interface; it is not QEMU\n",
           QMPD_QEMU_MAJOR, QMPD_QEMU_MINOR, QMPD_QEMU_MICRO, PACKAGE_NAME,
           PACKAGE_VERSION, QMPD_QEMU_MAJOR, QMPD_QEMU_MINOR);
}

static bool is_help(const char *arg)
{
    return !strcmp(arg, "help") || !strcmp(arg, "?");
}

/* The introspection forms: true when @name/@arg asked for help. */
static bool handle_help_forms(const char *name, const char *arg)
{
    if ((!strcmp(name, "M") || !strcmp(name, "machine")) && is_help(arg)) {
        machine_print_help(stdout);
        return true;
    }
    if (!strcmp(name, "device")) {
        g_autoptr(GString) out = g_string_new(NULL);
        g_autoptr(GString) err = g_string_new(NULL);

        if (!guest_props_print_help(arg, out, err)) {
            return false;
        }
        fputs(out->str, stdout);
        if (err->len) {
            fprintf(stderr, "qmpd: -device %s: %s", arg, err->str);
        }
        return true;
    }
    if (!strcmp(name, "accel") && is_help(arg)) {
        printf("Accelerators supported in QEMU binary:\ntcg\nqtest\n");
        return true;
    }
    if (!strcmp(name, "object") && object_print_help(arg)) {
        return true;
    }
    if (!strcmp(name, "drive")) {
        /* format=help among any other keys, as QEMU's -drive */
        g_autoptr(Opts) d = opts_parse(arg, NULL, NULL, drive_flags, NULL);

        if (d && !g_strcmp0(opts_get(d, "format"), "help")) {
            g_autoptr(GString) out = g_string_new(NULL);

            drive_print_formats(out);
            fputs(out->str, stdout);
            return true;
        }
    }
    return false;
}

static bool resolve(QmpdOptions *o, Error **errp)
{
    unsigned stdio_users = 0;

    if (!o->monitors->len && o->nographic && !o->nodefaults) {
        Chardev *c;
        g_autofree char *ref = NULL;

        c = chardev_parse_uri("stdio", "compat_monitor0", "-nographic", &ref,
                              errp);
        if (!add_chardev(o, c, errp)) {
            return false;
        }
        monitor_opt_new(o, "compat_monitor0", MON_MODE_READLINE, false,
                        "-nographic");
    }
    for (guint i = 0; i < o->monitors->len; i++) {
        const MonitorOpt *m = g_ptr_array_index(o->monitors, i);

        if (!qmpd_options_chardev(o, m->chardev_id)) {
            error_setg(errp, "%s: chardev \"%s\" not found", m->loc,
                       m->chardev_id);
            return false;
        }
    }
    if (o->qtest && !qmpd_options_chardev(o, o->qtest)) {
        error_setg(errp, "-qtest: chardev \"%s\" not found", o->qtest);
        return false;
    }
    for (guint i = 0; i < o->chardevs->len; i++) {
        Chardev *c = g_ptr_array_index(o->chardevs, i);

        if (chardev_kind(c) == CHARDEV_STDIO) {
            if (o->daemonize) {
                error_setg(errp, "%s: cannot use stdio with -daemonize",
                           chardev_location(c));
                return false;
            }
            if (++stdio_users > 1) {
                error_setg(errp, "%s: cannot use stdio by multiple character "
                           "devices", chardev_location(c));
                return false;
            }
        }
    }
    /* after -M, whatever the order: sizes and limits depend on it */
    if (!memory_apply(&o->machine, &o->memory, errp)
        || !board_opts_check(&o->machine, errp)) {
        return false;
    }
    if (!o->machine.accel) {
        /*
         * As QEMU: -qtest without an accelerator named takes the qtest
         * one, whose virtual clock then belongs to the qtest client
         */
        o->machine.accel = o->qtest ? "qtest" : "tcg";
    }
    return true;
}

int qmpd_parse_options(QmpdOptions *o, int argc, char **argv, Error **errp)
{
    memset(o, 0, sizeof(*o));
    o->chardevs = g_ptr_array_new_with_free_func((GDestroyNotify)chardev_free);
    o->monitors = g_ptr_array_new();
    o->devices = g_ptr_array_new();
    o->drives = g_ptr_array_new();
    o->objects = g_ptr_array_new_with_free_func(g_free);
    o->traces = g_ptr_array_new_with_free_func(g_free);
    o->serials = g_ptr_array_new_with_free_func(g_free);
    o->machine.type = "pc-i440fx-7.2";

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name;
        const char *arg = NULL;
        const Option *opt = NULL;

        if (a[0] != '-') {
            error_setg(errp, "%s: disk image arguments are not supported; "
                       "use -drive or -blockdev", a);
            return -1;
        }
        name = a + 1 + (a[1] == '-');
        if (!strcmp(name, "h") || !strcmp(name, "help")) {
            print_usage();
            return OPT_EXIT;
        }
        if (!strcmp(name, "version")) {
            print_version();
            return OPT_EXIT;
        }
        if (i + 1 < argc && handle_help_forms(name, argv[i + 1])) {
            return OPT_EXIT;
        }
        for (size_t k = 0; k < G_N_ELEMENTS(options); k++) {
            if (!strcmp(options[k].name, name)) {
                opt = &options[k];
            }
        }
        if (!opt && g_strv_contains(unsupported, name)) {
            error_setg(errp, "-%s: option not supported by qmpd", name);
            return -1;
        }
        if (!opt) {
            error_setg(errp, "%s: invalid option", a);
            return -1;
        }
        if (opt->has_arg) {
            if (i + 1 >= argc) {
                error_setg(errp, "%s: requires an argument", a);
                return -1;
            }
            arg = argv[++i];
        }
        if (!opt->fn(o, arg, errp)) {
            if (!opt->bare_errors) {
                error_prepend(errp, "%s%s%s: ", a, arg ? " " : "",
                              arg ? arg : "");
            }
            return -1;
        }
    }
    return resolve(o, errp) ? OPT_RUN : -1;
}

void qmpd_options_free(QmpdOptions *o)
{
    for (guint i = 0; i < o->monitors->len; i++) {
        MonitorOpt *m = g_ptr_array_index(o->monitors, i);

        g_free(m->chardev_id);
        g_free(m->loc);
        g_free(m->id);
        g_free(m);
    }
    g_ptr_array_unref(o->monitors);
    for (guint i = 0; i < o->devices->len; i++) {
        DeviceOpt *d = g_ptr_array_index(o->devices, i);

        g_free(d->driver);
        g_free(d->id);
        g_free(d->drive);
        g_free(d->arg);
        g_free(d);
    }
    g_ptr_array_unref(o->devices);
    for (guint i = 0; i < o->drives->len; i++) {
        DriveOpt *d = g_ptr_array_index(o->drives, i);

        g_free(d->arg);
        g_free(d->label);
        g_free(d);
    }
    g_ptr_array_unref(o->drives);
    g_ptr_array_unref(o->objects);
    g_ptr_array_unref(o->traces);
    g_ptr_array_unref(o->serials);
    g_ptr_array_unref(o->chardevs);
    g_free(o->qtest);
    g_free(o->qtest_log);
    g_free(o->pidfile);
    g_free(o->incoming);
    g_free(o->process_name);
    g_free(o->machine.name);
    g_free(o->machine.uuid);
}

Chardev *qmpd_options_chardev(const QmpdOptions *o, const char *id)
{
    for (guint i = 0; i < o->chardevs->len; i++) {
        Chardev *c = g_ptr_array_index(o->chardevs, i);

        if (!strcmp(chardev_id(c), id)) {
            return c;
        }
    }
    return NULL;
}
