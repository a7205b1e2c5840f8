/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The human monitor's block commands: "info block", "info blockstats"
 * and "qemu-io", with QEMU 7.2's text.  They print from the same QMP
 * results query-block and query-blockstats return.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "block/qmp/qmp-block.h"
#include "monitor/hmp-int.h"
#include "monitor/qemu-io.h"
#include "qapi/qjson.h"

/* A size as QEMU's size_to_str() prints it: "64 MiB", "1.5 GiB". */
static void append_size(GString *out, uint64_t val)
{
    static const char *const suffixes[] = {
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"
    };
    int i;

    frexp(val / (1000.0 / 1024.0), &i);
    i = (i - 1) / 10;
    if (i < 0) {
        i = 0;
    }
    g_string_append_printf(out, "%0.3g %sB",
                           (double)val / (double)(1ull << (i * 10)),
                           suffixes[i]);
}

/* Format-specific data: "compression-type" shown as "compression type". */
static void print_specific(GString *out, const json_t *data)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)data, key, v) {
        g_autofree char *name = g_strdelimit(g_strdup(key), "-", ' ');

        if (json_is_string(v)) {
            g_string_append_printf(out, "    %s: %s\n", name,
                                   json_string_value(v));
        } else if (json_is_boolean(v)) {
            g_string_append_printf(out, "    %s: %s\n", name,
                                   json_is_true(v) ? "true" : "false");
        } else if (json_is_integer(v)) {
            g_string_append_printf(out, "    %s: %" JSON_INTEGER_FORMAT "\n",
                                   name, json_integer_value(v));
        }
    }
}

/* The image chain as QEMU's bdrv_image_info_dump() prints it. */
static void print_image(GString *out, const json_t *img)
{
    for (; img; img = json_object_get(img, "backing-image")) {
        const json_t *spec = json_object_get(img, "format-specific");

        g_string_append_printf(out, "image: %s\nfile format: %s\n",
                               qjson_get_str(img, "filename"),
                               qjson_get_str(img, "format"));
        g_string_append(out, "virtual size: ");
        append_size(out, qjson_get_uint(img, "virtual-size"));
        g_string_append_printf(out, " (%" PRIu64 " bytes)\ndisk size: ",
                               qjson_get_uint(img, "virtual-size"));
        if (json_object_get(img, "actual-size")) {
            append_size(out, qjson_get_uint(img, "actual-size"));
        } else {
            g_string_append(out, "unavailable");
        }
        g_string_append_c(out, '\n');
        if (json_object_get(img, "cluster-size")) {
            g_string_append_printf(out, "cluster_size: %" PRId64 "\n",
                                   qjson_get_int(img, "cluster-size"));
        }
        if (qjson_get_bool_or(img, "dirty-flag", false)) {
            g_string_append(out, "cleanly shut down: no\n");
        }
        if (json_object_get(img, "backing-filename")) {
            const char *b = qjson_get_str(img, "backing-filename");
            const char *full = qjson_get_str_or(img, "full-backing-filename",
                                                b);

            g_string_append_printf(out, "backing file: %s", b);
            if (strcmp(b, full)) {
                g_string_append_printf(out, " (actual path: %s)", full);
            }
            g_string_append_c(out, '\n');
        }
        if (json_object_get(img, "backing-filename-format")) {
            g_string_append_printf(out, "backing file format: %s\n",
                                   qjson_get_str(img,
                                                 "backing-filename-format"));
        }
        if (spec) {
            g_string_append(out, "Format specific information:\n");
            print_specific(out, json_object_get(spec, "data"));
        }
    }
}

/* One backend (@info) or one named node (@info NULL), as QEMU prints. */

/* QEMU's "I/O throttling:" line, when any of the six rates is set. */
static void print_throttling(GString *out, const json_t *ins)
{
    static const char *const rates[] = {
        "bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr",
    };
    static const char *const shown[] = {
        "bps", "bps_rd", "bps_wr", "bps_max", "bps_rd_max", "bps_wr_max",
        "iops", "iops_rd", "iops_wr", "iops_max", "iops_rd_max",
        "iops_wr_max", "iops_size",
    };
    bool any = false;

    for (size_t i = 0; i < G_N_ELEMENTS(rates); i++) {
        any |= qjson_get_int(ins, rates[i]) != 0;
    }
    if (!any) {
        return;
    }
    g_string_append(out, "    I/O throttling:  ");
    for (size_t i = 0; i < G_N_ELEMENTS(shown); i++) {
        json_t *v = json_object_get(ins, shown[i]);

        g_string_append_printf(out, " %s=%" JSON_INTEGER_FORMAT, shown[i],
                               v ? json_integer_value(v) : 0);
    }
    g_string_append_printf(out, " group=%s\n",
                           qjson_get_str_or(ins, "group", ""));
}

static void print_block_info(GString *out, const json_t *info,
                             const json_t *ins, bool verbose)
{
    const char *device = info ? qjson_get_str(info, "device") : "";
    const json_t *cache;

    if (*device) {
        g_string_append(out, device);
        if (ins) {
            g_string_append_printf(out, " (%s)",
                                   qjson_get_str(ins, "node-name"));
        }
    } else {
        g_string_append(out, ins ? qjson_get_str(ins, "node-name")
                        : qjson_get_str_or(info, "qdev", "<anonymous>"));
    }
    if (ins) {
        g_string_append_printf(out, ": %s (%s%s%s)\n",
                               qjson_get_str(ins, "file"),
                               qjson_get_str(ins, "drv"),
                               qjson_get_bool(ins, "ro") ? ", read-only" : "",
                               qjson_get_bool(ins, "encrypted")
                               ? ", encrypted" : "");
    } else {
        g_string_append(out, ": [not inserted]\n");
    }
    if (info) {
        const char *io = qjson_get_str_or(info, "io-status", "ok");

        if (json_object_get(info, "qdev")) {
            g_string_append_printf(out, "    Attached to:      %s\n",
                                   qjson_get_str(info, "qdev"));
        }
        if (strcmp(io, "ok")) {
            g_string_append_printf(out, "    I/O status:       %s\n", io);
        }
        if (qjson_get_bool_or(info, "removable", false)) {
            g_string_append_printf(out, "    Removable device: %slocked, "
                                   "tray %s\n",
                                   qjson_get_bool_or(info, "locked", false)
                                   ? "" : "not ",
                                   qjson_get_bool_or(info, "tray_open", false)
                                   ? "open" : "closed");
        }
    }
    if (!ins) {
        return;
    }
    cache = json_object_get(ins, "cache");
    g_string_append_printf(out, "    Cache mode:       %s%s%s\n",
                           qjson_get_bool(cache, "writeback")
                           ? "writeback" : "writethrough",
                           qjson_get_bool(cache, "direct") ? ", direct" : "",
                           qjson_get_bool(cache, "no-flush")
                           ? ", ignore flushes" : "");
    if (json_object_get(ins, "backing_file")) {
        g_string_append_printf(out, "    Backing file:     %s "
                               "(chain depth: %" PRId64 ")\n",
                               qjson_get_str(ins, "backing_file"),
                               qjson_get_int(ins, "backing_file_depth"));
    }
    if (strcmp(qjson_get_str(ins, "detect_zeroes"), "off")) {
        g_string_append_printf(out, "    Detect zeroes:    %s\n",
                               qjson_get_str(ins, "detect_zeroes"));
    }
    print_throttling(out, ins);
    if (verbose) {
        g_string_append(out, "\nImages:\n");
        print_image(out, json_object_get(ins, "image"));
    }
}

static void hmp_info_block(HmpCall *call, const json_t *args)
{
    GString *out = hmp_call_out(call);
    const char *device = qjson_get_str_or(args, "device", NULL);
    bool verbose = qjson_get_bool_or(args, "verbose", false);
    bool nodes = qjson_get_bool_or(args, "nodes", false);
    bool printed = false;
    GPtrArray *all;

    if (!nodes) {
        all = blk_all();
        for (guint i = 0; i < all->len; i++) {
            BlockBackend *blk = g_ptr_array_index(all, i);
            json_t *info;

            if (!*blk_name(blk) && !blk_qdev(blk)) {
                continue;
            }
            if (device && strcmp(device, blk_name(blk))) {
                continue;
            }
            if (printed) {
                g_string_append_c(out, '\n');
            }
            info = blk_info(blk);
            print_block_info(out, info, json_object_get(info, "inserted"),
                             verbose);
            json_decref(info);
            printed = true;
        }
    }
    if ((!device && !nodes) || printed) {
        hmp_call_finish(call);
        return;
    }
    all = bdrv_all_nodes();
    printed = false;
    for (guint i = all->len; i-- > 0;) {
        BlockNode *bn = g_ptr_array_index(all, i);
        json_t *ins;

        if (device && strcmp(device, bdrv_node_name(bn))) {
            continue;
        }
        if (printed) {
            g_string_append_c(out, '\n');
        }
        ins = bdrv_device_info(bn, false);
        print_block_info(out, NULL, ins, verbose);
        json_decref(ins);
        printed = true;
    }
    hmp_call_finish(call);
}

static void print_info_blockstats(GString *out, const json_t *ret)
{
    size_t i;
    const json_t *e;

    json_array_foreach(ret, i, e) {
        const json_t *st = json_object_get(e, "stats");

        if (!json_object_get(e, "device")) {
            continue;
        }
        g_string_append_printf(
            out, "%s: rd_bytes=%" PRId64 " wr_bytes=%" PRId64
            " rd_operations=%" PRId64 " wr_operations=%" PRId64
            " flush_operations=%" PRId64 " wr_total_time_ns=%" PRId64
            " rd_total_time_ns=%" PRId64 " flush_total_time_ns=%" PRId64
            " rd_merged=%" PRId64 " wr_merged=%" PRId64
            " idle_time_ns=%" PRId64 "\n",
            qjson_get_str(e, "device"), qjson_get_int(st, "rd_bytes"),
            qjson_get_int(st, "wr_bytes"), qjson_get_int(st, "rd_operations"),
            qjson_get_int(st, "wr_operations"),
            qjson_get_int(st, "flush_operations"),
            qjson_get_int(st, "wr_total_time_ns"),
            qjson_get_int(st, "rd_total_time_ns"),
            qjson_get_int(st, "flush_total_time_ns"),
            qjson_get_int(st, "rd_merged"), qjson_get_int(st, "wr_merged"),
            qjson_get_int_or(st, "idle_time_ns", 0));
    }
}

/*
 * QEMU prints qemu-io's output on its own stdout and stderr; only what
 * it reports with error_report() reaches the monitor.
 */
static void qemu_io_done_cb(void *opaque, const QemuIoResult *r)
{
    HmpCall *call = opaque;

    fputs(r->out, stdout);
    fflush(stdout);
    fputs(r->err, stderr);
    g_string_append(hmp_call_out(call), r->mon);
    hmp_call_finish(call);
}

static void hmp_qemu_io(HmpCall *call, const json_t *args)
{
    const char *device = qjson_get_str(args, "device");
    QemuIoTarget t = { NULL, NULL, false };
    Error *err = NULL;

    if (qjson_get_bool_or(args, "qdev", false)) {
        t.blk = blk_by_qdev_id(device, &err);
        t.qdev = true;
    } else {
        t.blk = blk_by_name(device);
        if (!t.blk) {
            t.node = bdrv_lookup(NULL, device, &err);
        }
    }
    if (err) {
        g_string_append_printf(hmp_call_out(call), "Error: %s\n",
                               error_get_pretty(err));
        error_free(err);
        hmp_call_finish(call);
        return;
    }
    qemu_io_run(&t, qjson_get_str(args, "command"), qemu_io_done_cb, call);
}

const HmpHandler block_hmp_handlers[] = {
    { "info_block", hmp_info_block },
    { "qemu-io", hmp_qemu_io },
};
const size_t block_hmp_handlers_count = G_N_ELEMENTS(block_hmp_handlers);

static void print_info_block_jobs(GString *out, const json_t *ret)
{
    size_t i;
    const json_t *j;

    if (!json_array_size(ret)) {
        g_string_append(out, "No active jobs\n");
        return;
    }
    json_array_foreach(ret, i, j) {
        const char *type = qjson_get_str(j, "type");

        if (!strcmp(type, "stream")) {
            g_string_append_printf(out, "Streaming device %s:",
                                   qjson_get_str(j, "device"));
        } else {
            g_string_append_printf(out, "Type %s, device %s:", type,
                                   qjson_get_str(j, "device"));
        }
        g_string_append_printf(out, " Completed %" PRId64 " of %" PRId64
                               " bytes, speed limit %" PRId64 " bytes/s\n",
                               qjson_get_int(j, "offset"),
                               qjson_get_int(j, "len"),
                               qjson_get_int(j, "speed"));
    }
}

const HmpPrinter block_hmp_printers[] = {
    { "info_blockstats", print_info_blockstats },
    { "info_block_jobs", print_info_block_jobs },
};
const size_t block_hmp_printers_count = G_N_ELEMENTS(block_hmp_printers);
