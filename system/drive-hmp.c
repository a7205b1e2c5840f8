/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP drive_add, as QEMU 7.2 has it: the PCI address is read and
 * ignored (a harness passes "dummy" or 0), the options make a drive as
 * -drive does (drive.c), and only an if=none drive stays ("OK"); any
 * other interface is refused after the drive was made, with QEMU's line
 * naming its interface by number.  -n makes a bare node from block
 * options instead.  Failures print bare, as QEMU's error_report().
 */
#include "config.h"

#include "block/core/block.h"
#include "monitor/hmp.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "system/drive.h"

static QapiSchema *drive_schema;

void drive_hmp_init(QapiSchema *schema)
{
    drive_schema = schema;
}

/* Does -drive @arg ask for the format list (format=help among others)? */
static bool wants_format_help(const char *arg)
{
    g_autoptr(Opts) d = opts_parse(arg, NULL, NULL, drive_flags, NULL);

    return d && !g_strcmp0(opts_get(d, "format"), "help");
}

typedef struct {
    HmpCall *call;
    json_t *args;
} DriveAdd;

static void closed_cb(void *opaque, int ret)
{
    hmp_call_finish(opaque);
}

static void drive_add_run_cb(void *opaque, int ret)
{
    DriveAdd *da = opaque;
    HmpCall *call = da->call;
    const char *opts = qjson_get_str(da->args, "opts");
    GString *out = hmp_call_out(call);
    Error *err = NULL;
    int refused = 0;
    bool ok = true;

    if (qjson_get_bool_or(da->args, "node", false)) {
        ok = drive_add_node(drive_schema, opts, &err);
    } else if (wants_format_help(opts)) {
        drive_print_formats(out);
    } else {
        ok = drive_hot_add(drive_schema, opts, &refused, &err);
        if (ok && refused) {
            g_string_append_printf(out, "Can't hot-add drive to type %d\n",
                                   refused);
        } else if (ok) {
            g_string_append(out, "OK\n");
        }
    }
    if (!ok) {
        g_string_append_printf(out, "%s\n", error_get_pretty(err));
        if (error_get_hint(err)) {
            g_string_append(out, error_get_hint(err));
        }
        error_free(err);
    }
    json_decref(da->args);
    g_free(da);
    /* a drive dropped again (refused, or failed after its open) closes
     * in the background: answer once it is closed, as QEMU does */
    bdrv_wait_closed(closed_cb, call);
}

/*
 * QEMU closes what drive_del and blockdev-del remove before they
 * answer; qmpd closes in the background, so the images a drive_add
 * opens may still be held by a drive just deleted: it starts once they
 * are closed.
 */
static void hmp_drive_add(HmpCall *call, const json_t *args)
{
    DriveAdd *da = g_new0(DriveAdd, 1);

    da->call = call;
    da->args = json_deep_copy(args);
    bdrv_wait_closed(drive_add_run_cb, da);
}

const HmpHandler drive_hmp_handlers[] = {
    { "drive_add", hmp_drive_add },
};

const size_t drive_hmp_handlers_count = G_N_ELEMENTS(drive_hmp_handlers);
