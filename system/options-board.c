/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Options libvirt passes to every domain that describe a guest qmpd's
 * already is, checked with QEMU 7.2's messages: guest RAM not locked
 * (-overcommit mem-lock=off), an RTC in UTC, a strict boot order, no
 * ACPI tables, no guest-initiated shutdown to turn into a pause, and
 * the "none" audio backend.  qmpd's guest runs no code, has no firmware,
 * RTC, ACPI or sound card, and never shuts itself down (quit and
 * signals still end qmpd, as they end QEMU with -no-shutdown), so each
 * of these means what it means in QEMU.  A value asking for something
 * qmpd does not have is refused by name.  -msg timestamp=on prefixes
 * qmpd's messages on stderr with the time, as QEMU's.
 */
#include "config.h"

#include <string.h>

#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/cpu.h"
#include "system/options-board.h"
#include "util/trace.h"

static bool no_acpi;
static bool msg_timestamp;

/* Each key of @keys a bool that must not be on (NULL: anything). */
static bool check_off(const Opts *o, const char *const *keys,
                      const char *const *off_only, const char *what,
                      Error **errp)
{
    for (int i = 0; keys[i]; i++) {
        Error *err = NULL;
        bool on;

        if (!opts_has(o, keys[i])) {
            continue;
        }
        on = opts_get_bool(o, keys[i], false, &err);
        if (err) {
            error_propagate(errp, err);
            return false;
        }
        if (on && g_strv_contains(off_only, keys[i])) {
            error_setg(errp, "%s %s=on is not supported by qmpd", what,
                       keys[i]);
            return false;
        }
    }
    return true;
}

bool board_opt_overcommit(QmpdOptions *o, const char *arg, Error **errp)
{
    static const char *const keys[] = { "mem-lock", "cpu-pm", NULL };
    g_autoptr(Opts) opts = opts_parse(arg, NULL, keys, NULL, errp);

    /* no host memory to lock, no vCPU to let idle the host's CPUs */
    return opts && check_off(opts, keys, keys, "-overcommit", errp);
}

bool board_opt_rtc(QmpdOptions *o, const char *arg, Error **errp)
{
    static const char *const keys[] = { "base", "clock", "driftfix", NULL };
    g_autoptr(Opts) opts = opts_parse(arg, NULL, keys, NULL, errp);
    const char *base;

    if (!opts) {
        return false;
    }
    base = opts_get(opts, "base");
    /* QEMU's defaults; the guest has no RTC to run otherwise */
    if (base && strcmp(base, "utc")) {
        error_setg(errp, "-rtc base=%s is not supported by qmpd (only utc: "
                   "the guest has no RTC)", base);
        return false;
    }
    if (opts_has(opts, "clock") && strcmp(opts_get(opts, "clock"), "host")) {
        error_setg(errp, "-rtc clock=%s is not supported by qmpd (only host)",
                   opts_get(opts, "clock"));
        return false;
    }
    if (opts_has(opts, "driftfix")
        && strcmp(opts_get(opts, "driftfix"), "none")) {
        error_setg(errp, "-rtc driftfix=%s is not supported by qmpd (only "
                   "none)", opts_get(opts, "driftfix"));
        return false;
    }
    return true;
}

bool board_opt_boot(QmpdOptions *o, const char *arg, Error **errp)
{
    static const char *const firmware[] = {
        "order", "once", "menu", "splash", "splash-time", "reboot-timeout",
        NULL
    };
    g_autoptr(Opts) opts = opts_parse(arg, "order", NULL, NULL, errp);
    Error *err = NULL;

    if (!opts) {
        return false;
    }
    for (guint i = 0; i < opts_count(opts); i++) {
        const char *key = opts_key(opts, i);

        if (g_strv_contains(firmware, key)) {
            error_setg(errp, "-boot %s is not supported by qmpd (the guest "
                       "has no firmware)", key);
            return false;
        }
        if (strcmp(key, "strict")) {
            error_setg(errp, "Parameter 'boot.%s' is unexpected", key);
            return false;
        }
    }
    /* strict: boot only from the listed devices; nothing boots here */
    opts_get_bool(opts, "strict", false, &err);
    if (err) {
        error_setg(errp, "Parameter 'boot.strict' expects 'on' or 'off'");
        error_free(err);
        return false;
    }
    return true;
}

bool board_opt_no_acpi(QmpdOptions *o, const char *arg, Error **errp)
{
    no_acpi = true;
    return true;
}

bool board_opt_no_shutdown(QmpdOptions *o, const char *arg, Error **errp)
{
    return true;
}

bool board_opt_audiodev(QmpdOptions *o, const char *arg, Error **errp)
{
    g_autoptr(json_t) spec = NULL;
    const char *driver;

    if (arg[0] == '{') {
        json_error_t jerr;

        spec = json_loads(arg, 0, &jerr);
        if (!json_is_object(spec)) {
            error_setg(errp, "%s", jerr.text);
            return false;
        }
    } else {
        g_autoptr(Opts) opts = opts_parse(arg, "driver", NULL, NULL, errp);

        if (!opts) {
            return false;
        }
        spec = json_object();
        for (guint i = 0; i < opts_count(opts); i++) {
            json_object_set_new(spec, opts_key(opts, i), json_string(
                opts_get(opts, opts_key(opts, i))));
        }
    }
    driver = json_string_value(json_object_get(spec, "driver"));
    if (!driver) {
        error_setg(errp, "Parameter 'driver' is missing");
        return false;
    }
    if (!json_is_string(json_object_get(spec, "id"))) {
        error_setg(errp, "Parameter 'id' is missing");
        return false;
    }
    /* no sound card plays into it; "none" is the backend that discards */
    if (strcmp(driver, "none")) {
        error_setg(errp, "audiodev driver '%s' is not supported by qmpd "
                   "(only 'none': the guest has no sound card)", driver);
        return false;
    }
    if (json_object_size(spec) > 2) {
        error_setg(errp, "audiodev properties other than id and driver are "
                   "not supported by qmpd");
        return false;
    }
    return true;
}

bool board_opt_msg(QmpdOptions *o, const char *arg, Error **errp)
{
    static const char *const keys[] = { "timestamp", "guest-name", NULL };
    g_autoptr(Opts) opts = opts_parse(arg, NULL, keys, NULL, errp);
    Error *err = NULL;

    if (!opts) {
        return false;
    }
    if (opts_has(opts, "guest-name")) {
        error_setg(errp, "-msg guest-name is not supported by qmpd");
        return false;
    }
    msg_timestamp = opts_get_bool(opts, "timestamp", false, &err);
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    trace_set_timestamp(msg_timestamp);
    return true;
}

bool board_opt_smp(QmpdOptions *o, const char *arg, Error **errp)
{
    return cpu_parse_smp(arg, errp);
}

bool board_opt_cpu(QmpdOptions *o, const char *arg, Error **errp)
{
    return cpu_parse_model(arg, errp);
}

bool board_opts_check(const MachineConfig *mc, Error **errp)
{
    /* QEMU 7.2's -no-acpi is acpi=off, a property only pc and q35 have */
    if (no_acpi && !strcmp(mc->type, "none")) {
        error_setg(errp, "Property 'none-machine.acpi' not found");
        return false;
    }
    return cpu_check_machine(mc, errp);
}

void board_msg_begin(FILE *f)
{
    if (msg_timestamp) {
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        g_autofree char *ts = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");

        fprintf(f, "%s.%06dZ ", ts, g_date_time_get_microsecond(now));
    }
}
