/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -drive and -blockdev: block nodes and backends from the command line.
 *
 * -blockdev takes BlockdevOptions, as keyval or as JSON, and makes a
 * monitor-owned node (blockdev-del can remove it), exactly like
 * blockdev-add.  -drive is the legacy form: a format node over a file
 * node, with a named backend on top (its id), and for if=virtio the
 * guest device too; without file and driver, an empty backend (QEMU's
 * empty drive, for removable media).  Its flat options are turned into
 * BlockdevOptions (drive-options.c) and validated by the same schema
 * type, so both reject the same input.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block/core/block.h"
#include "qapi/json-stream.h"
#include "qapi/keyval.h"
#include "qapi/opts.h"
#include "qapi/qjson.h"
#include "qapi/validate.h"
#include "system/board-drives.h"
#include "system/drive-options.h"
#include "system/drive-throttle.h"
#include "system/drive.h"
#include "system/guest.h"
#include "system/machine.h"

/*
 * Where each -drive sits: QEMU gives every drive of an interface a (bus,
 * unit), names a drive without id by them ("none3", "virtio2",
 * "ide1-hd0") and refuses a second drive at the same place.
 */
typedef enum {
    DRIVE_IF_NONE,
    DRIVE_IF_VIRTIO,
    DRIVE_IF_IDE,
    DRIVE_IF_SCSI,
} DriveIf;

typedef struct {
    DriveIf iface;
    int bus;
    int unit;
    char *id;               /* the drive's; the slot is free once it is gone */
    bool cdrom;             /* media=cdrom */
    bool empty;             /* no medium */
} DriveSlot;

/*
 * -drive if=ide (-hda…, -cdrom): the board's IDE disks and CD-ROMs,
 * made before -device; if=scsi, which QEMU 7.2's pc and q35 refuse
 * there (they no longer make an lsi53c895a for it).
 */
typedef struct {
    char *arg;
    char *id;
    int bus;
    int unit;
    bool cdrom;
    bool scsi;
    bool empty;
} IdeDrive;

static GArray *drive_slots;         /* DriveSlot */
static GPtrArray *virtio_drives;    /* char *: the -drive if=virtio args */
static GPtrArray *virtio_ids;       /* char *: their ids */
static GHashTable *auto_ids;        /* ids of -drive if=virtio or ide */
static GArray *ide_drives;          /* IdeDrive, in command-line order */

/* -drive werror=/rerror= (enospc is for writes only), as QEMU reads them. */
static bool parse_error_action(const char *s, bool is_read,
                               BlockdevOnError *out, Error **errp)
{
    BlockdevOnError v = block_on_error_parse(s, BLOCKDEV_ON_ERROR_AUTO);

    if (v == BLOCKDEV_ON_ERROR_AUTO
        || (is_read && v == BLOCKDEV_ON_ERROR_ENOSPC)) {
        error_setg(errp, "'%s' invalid %s error action", s,
                   is_read ? "read" : "write");
        return false;
    }
    *out = v;
    return true;
}

/*
 * QEMU's -drive numbers (bus, unit, index): unsigned 64-bit in C's bases,
 * kept in an int, so "-1" is -1 and 2^31 wraps.
 */
static bool drive_number(const Opts *d, const char *key, int dflt, int *out,
                         Error **errp)
{
    const char *v = opts_get(d, key);
    char *end;
    uint64_t n;

    *out = dflt;
    if (!v) {
        return true;
    }
    errno = 0;
    n = strtoull(v, &end, 0);
    if (errno == ERANGE) {
        error_setg(errp, "Value '%s' is too large for parameter '%s'", v,
                   key);
        return false;
    }
    if (errno || end == v || *end) {
        error_setg(errp, "Parameter '%s' expects a number", key);
        return false;
    }
    *out = (int32_t)(uint32_t)n;
    return true;
}

static bool slot_taken(DriveIf iface, int bus, int unit)
{
    for (guint i = 0; drive_slots && i < drive_slots->len; i++) {
        DriveSlot *s = &g_array_index(drive_slots, DriveSlot, i);

        if (s->iface == iface && s->bus == bus && s->unit == unit
            && blk_by_name(s->id)) {
            return true;
        }
    }
    return false;
}

/*
 * The drive's place, as QEMU's drive_new(): index= (spread over buses of
 * @max units; none and virtio have no limit, @max 0), or bus= and unit=,
 * or the first free place from the bus on.
 */
static bool drive_slot(DriveIf iface, int max, int index, int *bus,
                       int *unit, Error **errp)
{
    if (index != -1) {
        if (*bus != 0 || *unit != -1) {
            error_setg(errp, "index cannot be used with bus and unit");
            return false;
        }
        *bus = max ? index / max : 0;
        *unit = max ? index % max : index;
    }
    if (*unit == -1) {
        *unit = 0;
        while (slot_taken(iface, *bus, *unit)) {
            if (max && ++*unit >= max) {
                *unit -= max;
                ++*bus;
            } else if (!max) {
                ++*unit;
            }
        }
    }
    if (max && *unit >= max) {
        error_setg(errp, "unit %d too big (max is %d)", *unit, max - 1);
        return false;
    }
    if (slot_taken(iface, *bus, *unit)) {
        error_setg(errp, "drive with bus=%d, unit=%d (index=%d) exists",
                   *bus, *unit, index);
        return false;
    }
    return true;
}

const char *const drive_flags[] = { "help", NULL };

/* The dotted name of @v's first leaf (@v itself when not an object:
 * "throttling.foo" for {"throttling": {"foo": "1"}}), as QEMU names it. */
static char *leaf_name(const char *key, json_t *v)
{
    const char *sub;
    json_t *sv;

    json_object_foreach(v, sub, sv) {
        g_autofree char *dotted = g_strconcat(key, ".", sub, NULL);

        return leaf_name(dotted, sv);
    }
    return g_strdup(key);
}

/*
 * QEMU opens a drive's node first and then refuses what its driver left
 * unused.  The first top-level key of @kv that BlockdevOptions has not
 * for its driver: taken out of @kv (the schema would refuse it before
 * the open), to be refused by leftover_error() once the node is open.
 */
static char *take_unknown_key(const QapiType *type, json_t *kv)
{
    const QapiType *branch = qapi_union_variant_of(type, kv);
    const char *key;
    json_t *v;

    if (!branch) {
        return NULL;            /* the schema's check says what is wrong */
    }
    json_object_foreach(kv, key, v) {
        if ((json_is_string(v) || json_is_object(v))
            && !qapi_type_member(type, key)
            && !qapi_type_member(branch, key)) {
            g_autofree char *top = g_strdup(key);
            char *taken = leaf_name(key, v);

            json_object_del(kv, top);
            return taken;
        }
    }
    return NULL;
}

/* QEMU's refusal of option @key that node @bn's driver did not use. */
static void leftover_error(BlockNode *bn, const char *key, Error **errp)
{
    error_setg(errp, "Block %s '%s' %s support the option '%s'",
               bdrv_file_child(bn) ? "format" : "protocol",
               bdrv_driver_name(bn),
               bdrv_file_child(bn) ? "does not" : "doesn't", key);
}

static void drive_slot_clear(gpointer p)
{
    g_free(((DriveSlot *)p)->id);
}

/*
 * The drive made at @slot takes its place: the table notes its id, and
 * *@where gets the slot, *@id_out the id (taken from *@id).
 */
static void drive_slot_take(DriveSlot slot, char **id, DriveSlot *where,
                            char **id_out)
{
    if (!drive_slots) {
        drive_slots = g_array_new(FALSE, FALSE, sizeof(DriveSlot));
        g_array_set_clear_func(drive_slots, drive_slot_clear);
    }
    slot.id = g_strdup(*id);
    g_array_append_val(drive_slots, slot);
    *where = slot;
    *id_out = g_steal_pointer(id);
}

/*
 * An empty drive @id: a named backend without a medium, with the
 * drive's error policy, write cache and read-only-ness (what a medium
 * changed in later with read-only-mode retain takes), as QEMU's
 * blockdev_init() makes it.
 */
static BlockBackend *drive_new_empty(const Opts *d, const char *id,
                                     Error **errp)
{
    BlockdevOnError on_read = BLOCKDEV_ON_ERROR_REPORT;
    BlockdevOnError on_write = BLOCKDEV_ON_ERROR_ENOSPC;
    const char *ro_key = opts_has(d, "readonly") ? "readonly" : "read-only";
    bool cdrom = opts_has(d, "media") && !strcmp(opts_get(d, "media"),
                                                 "cdrom");
    bool writeback = true, direct, no_flush;
    bool read_only;
    BlockBackend *blk;
    Error *err = NULL;

    if (opts_has(d, "cache") && !drive_cache_mode(opts_get(d, "cache"), &writeback,
                                            &direct, &no_flush)) {
        error_setg(errp, "invalid cache option");
        return NULL;
    }
    read_only = opts_get_bool(d, ro_key, false, &err) || cdrom;
    if (err
        || (opts_has(d, "werror")
            && !parse_error_action(opts_get(d, "werror"), false, &on_write,
                                   &err))
        || (opts_has(d, "rerror")
            && !parse_error_action(opts_get(d, "rerror"), true, &on_read,
                                   &err))) {
        error_propagate(errp, err);
        return NULL;
    }
    blk = blk_new(id, NULL, errp);
    if (!blk) {
        return NULL;
    }
    blk_set_auto_del(blk, true);
    blk_set_write_cache(blk, writeback);
    blk_set_on_error(blk, on_read, on_write);
    blk_set_root_read_only(blk, read_only);
    return blk;
}

/*
 * The drive -drive @arg describes, as QEMU's drive_new(): nodes and a
 * backend named by its id (*@id_out), placed at its interface's slot
 * (*@where, whose id stays the table's).  The devices of if=virtio and
 * if=ide are the caller's.
 */
static BlockBackend *drive_new(QapiSchema *schema, const char *arg,
                               DriveSlot *where, char **id_out,
                               Error **errp)
{
    const QapiType *type = qapi_schema_type(schema, "BlockdevOptions");
    g_autoptr(Opts) d = opts_parse(arg, NULL, NULL, drive_flags, errp);
    g_autofree char *unknown = NULL;
    g_autoptr(json_t) kv = NULL;
    g_autoptr(json_t) opts = NULL;
    g_autofree char *id = NULL;
    json_t *backing;
    const char *iface;
    DriveIf dif;
    int max;
    bool virtio;
    bool writeback;
    bool cor;
    Error *err = NULL;
    BlockNode *bn;
    BlockBackend *blk;
    BlockdevOnError on_read = BLOCKDEV_ON_ERROR_REPORT;
    BlockdevOnError on_write = BLOCKDEV_ON_ERROR_ENOSPC;
    DriveSlot slot = { 0 };
    int index;
    ThrottleConfig limits;
    const char *group = NULL;

    if (!d) {
        return NULL;
    }
    if (opts_has(d, "id") && !opts_id_wellformed(opts_get(d, "id"))) {
        error_setg(errp, "Parameter 'id' expects an identifier");
        error_append_hint(errp, "Identifiers consist of letters, digits, "
                          "'-', '.', '_', starting with a letter.\n");
        return NULL;
    }
    /* QEMU's option list refuses the id before anything is opened */
    if (opts_has(d, "id") && blk_by_name(opts_get(d, "id"))) {
        error_setg(errp, "Duplicate ID '%s' for drive", opts_get(d, "id"));
        return NULL;
    }
    if (opts_has(d, "readonly") && opts_has(d, "read-only")) {
        error_setg(errp, "'read-only' and its alias 'readonly' can't be "
                   "used at the same time");
        return NULL;
    }
    if (!drive_throttle_check_aliases(d, errp)) {
        return false;
    }
    /* QEMU's default interface is the machine's: ide, none on -M none */
    iface = opts_has(d, "if") ? opts_get(d, "if")
        : strcmp(machine_config()->type, "none") ? "ide" : "none";
    virtio = !strcmp(iface, "virtio");
    /* QEMU reads them in this order, before the interface */
    if (!drive_number(d, "index", -1, &index, errp)
        || !drive_number(d, "bus", 0, &slot.bus, errp)
        || !drive_number(d, "unit", -1, &slot.unit, errp)) {
        return NULL;
    }
    if (!drive_check_file_or_driver(d, errp)) {
        return NULL;
    }
    if (opts_has(d, "media") && strcmp(opts_get(d, "media"), "disk")
        && strcmp(opts_get(d, "media"), "cdrom")) {
        error_setg(errp, "'%s' invalid media", opts_get(d, "media"));
        return NULL;
    }
    slot.cdrom = opts_has(d, "media")
        && !strcmp(opts_get(d, "media"), "cdrom");
    if (!strcmp(iface, "ide")) {
        dif = DRIVE_IF_IDE;
    } else if (!strcmp(iface, "scsi")) {
        dif = DRIVE_IF_SCSI;
    } else if (virtio || !strcmp(iface, "none")) {
        dif = virtio ? DRIVE_IF_VIRTIO : DRIVE_IF_NONE;
    } else {
        error_setg(errp, "if=%s is not supported (if=none, if=virtio, "
                   "if=ide or if=scsi)", iface);
        return NULL;
    }
    /* two units on each IDE bus, q35's AHCI ports have one; SCSI seven */
    max = dif == DRIVE_IF_SCSI ? 7 : dif != DRIVE_IF_IDE ? 0
        : g_str_has_prefix(machine_config()->type, "pc-q35") ? 1 : 2;
    slot.iface = dif;
    if (!drive_slot(dif, max, index, &slot.bus, &slot.unit, errp)) {
        return NULL;
    }
    id = opts_has(d, "id") ? g_strdup(opts_get(d, "id"))
        : max ? g_strdup_printf("%s%d-%s%d", iface, slot.bus,
                                slot.cdrom ? "cd" : "hd", slot.unit)
        : g_strdup_printf("%s%d", iface, slot.unit);
    if (!drive_throttle_parse(d, &limits, &group, errp)) {
        return NULL;
    }
    /* neither file nor driver: QEMU's empty drive, a backend only */
    slot.empty = !opts_has(d, "file") && !opts_has(d, "format")
        && !opts_has(d, "driver");
    for (guint i = 0; slot.empty && i < opts_count(d); i++) {
        slot.empty = !g_str_has_prefix(opts_key(d, i), "file.");
    }
    if (slot.empty) {
        blk = drive_new_empty(d, id, errp);
        if (blk) {
            drive_throttle_apply(blk, id, &limits, group);
            drive_slot_take(slot, &id, where, id_out);
        }
        return blk;
    }
    kv = drive_to_blockdev(d, &writeback, errp);
    if (!kv || !keyval_make_lists(kv, errp)) {
        return NULL;
    }
    if ((opts_has(d, "werror")
         && !parse_error_action(opts_get(d, "werror"), false, &on_write,
                                errp))
        || (opts_has(d, "rerror")
            && !parse_error_action(opts_get(d, "rerror"), true, &on_read,
                                   errp))) {
        return NULL;
    }
    /*
     * backing.node-name=... without backing.driver names the images the
     * headers name (QEMU fills in driver and file): kept aside from the
     * schema check, which wants a driver.
     */
    backing = json_object_get(kv, "backing");
    if (backing && json_is_object(backing)
        && !json_object_get(backing, "driver")) {
        json_incref(backing);
        json_object_del(kv, "backing");
        if (!drive_check_backing_names(backing, errp)) {
            json_decref(backing);
            return NULL;
        }
    } else {
        backing = NULL;
    }
    unknown = take_unknown_key(type, kv);
    opts = qapi_validate_keyval(type, kv, errp);
    if (!opts) {
        json_decref(backing);
        return NULL;
    }
    if (backing) {
        json_object_set_new(opts, "backing", backing);
    }
    cor = opts_get_bool(d, "copy-on-read", false, &err);
    if (err) {
        error_propagate(errp, err);
        return NULL;
    }
    if (cor && qjson_get_bool_or(opts, "read-only", false)) {
        fprintf(stderr, "qmpd: -drive %s: warning: disabling copy-on-read "
                "on read-only drive\n", arg);
        cor = false;
    }
    bn = bdrv_open_options(opts, false, errp);
    if (!bn) {
        return NULL;
    }
    /*
     * QEMU 7.2 has no -drive serial= any more: it is left over for the
     * image's driver, which has no such option (the device has one)
     */
    if (opts_has(d, "serial") || unknown) {
        leftover_error(bn, opts_has(d, "serial") ? "serial" : unknown, errp);
        bdrv_unref(bn);
        return NULL;
    }
    if (cor) {
        /* on the node itself, not a filter node: QEMU 7.2's graph */
        bdrv_enable_copy_on_read(bn);
    }
    blk = blk_new(id, bn, errp);
    bdrv_unref(bn);
    if (!blk) {
        return NULL;
    }
    blk_set_auto_del(blk, true);
    blk_set_write_cache(blk, writeback);
    blk_set_on_error(blk, on_read, on_write);
    drive_throttle_apply(blk, id, &limits, group);
    drive_slot_take(slot, &id, where, id_out);
    return blk;
}

bool drive_ide_slot_taken(int bus, int unit)
{
    for (guint i = 0; ide_drives && i < ide_drives->len; i++) {
        const IdeDrive *ide = &g_array_index(ide_drives, IdeDrive, i);

        if (!ide->scsi && ide->bus == bus && ide->unit == unit) {
            return true;
        }
    }
    return false;
}

BlockBackend *drive_add_empty(const char *id, Error **errp)
{
    g_autoptr(Opts) d = opts_parse("", NULL, NULL, drive_flags, errp);

    if (!d) {
        return NULL;
    }
    if (!auto_ids) {
        auto_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         NULL);
    }
    g_hash_table_add(auto_ids, g_strdup(id));
    return drive_new_empty(d, id, errp);
}

bool drive_add(QapiSchema *schema, const char *arg, Error **errp)
{
    g_autofree char *id = NULL;
    DriveSlot slot;

    if (!drive_new(schema, arg, &slot, &id, errp)) {
        return false;
    }
    if (!virtio_drives) {
        virtio_drives = g_ptr_array_new_with_free_func(g_free);
        virtio_ids = g_ptr_array_new_with_free_func(g_free);
    }
    if (slot.iface != DRIVE_IF_NONE) {
        if (!auto_ids) {
            auto_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             NULL);
        }
        g_hash_table_add(auto_ids, g_strdup(id));
    }
    if (slot.iface == DRIVE_IF_IDE || slot.iface == DRIVE_IF_SCSI) {
        IdeDrive ide = { g_strdup(arg), g_steal_pointer(&id), slot.bus,
                         slot.unit, slot.cdrom,
                         slot.iface == DRIVE_IF_SCSI, slot.empty };

        if (!ide_drives) {
            ide_drives = g_array_new(FALSE, FALSE, sizeof(IdeDrive));
        }
        g_array_append_val(ide_drives, ide);
    }
    if (slot.iface == DRIVE_IF_VIRTIO) {
        g_ptr_array_add(virtio_drives, g_strdup(arg));
        g_ptr_array_add(virtio_ids, g_steal_pointer(&id));
    }
    return true;
}

bool drive_hot_add(QapiSchema *schema, const char *arg, int *refused,
                   Error **errp)
{
    /* QEMU's BlockInterfaceType numbers, which its refusal prints */
    static const int qemu_if_type[] = {
        [DRIVE_IF_NONE] = 0, [DRIVE_IF_IDE] = 1, [DRIVE_IF_SCSI] = 2,
        [DRIVE_IF_VIRTIO] = 7,
    };
    g_autofree char *id = NULL;
    BlockBackend *blk;
    DriveSlot slot;

    blk = drive_new(schema, arg, &slot, &id, errp);
    if (!blk) {
        return false;
    }
    *refused = qemu_if_type[slot.iface];
    if (slot.iface != DRIVE_IF_NONE) {
        /* made, and dropped again, as QEMU does: its slot frees with it */
        blk_delete(blk);
    }
    return true;
}

bool drive_add_node(QapiSchema *schema, const char *arg, Error **errp)
{
    const QapiType *type = qapi_schema_type(schema, "BlockdevOptions");
    g_autoptr(json_t) kv = keyval_parse(arg, NULL, errp);
    g_autoptr(json_t) opts = NULL;
    g_autofree char *unknown = NULL;
    BlockNode *bn;

    if (!kv) {
        return false;
    }
    if (!json_is_string(json_object_get(kv, "node-name"))) {
        error_setg(errp, "'node-name' needs to be specified");
        return false;
    }
    unknown = take_unknown_key(type, kv);
    opts = qapi_validate_keyval(type, kv, errp);
    if (!opts) {
        return false;
    }
    bn = bdrv_open_options(opts, false, errp);
    if (bn && unknown) {
        leftover_error(bn, unknown, errp);
        bdrv_unref(bn);
        return false;
    }
    if (bn) {
        /* the monitor's, as QEMU's: blockdev-del removes it */
        bdrv_set_monitor_owned(bn);
    }
    return bn != NULL;
}

void drive_print_formats(GString *out)
{
    static const char formats[] = "blkdebug file null-co qcow2 raw";

    g_string_append_printf(out, "Supported formats: %s\n"
                           "Supported formats (read-only): %s\n", formats,
                           formats);
}

bool drive_auto_connected(const char *id)
{
    return auto_ids && g_hash_table_contains(auto_ids, id);
}

static gint ide_order(gconstpointer a, gconstpointer b)
{
    const IdeDrive *x = a;
    const IdeDrive *y = b;

    return x->bus != y->bus ? x->bus - y->bus : x->unit - y->unit;
}

/*
 * QEMU's board makes an ide-hd for each if=ide drive, bus by bus, in
 * /machine/unattached after its own devices (board-drives.c counts
 * them); a drive beyond the controller's buses (or on a machine without
 * one) has no device, which QEMU refuses.
 */
bool drive_add_board_devices(Error **errp)
{
    const char *type = machine_config()->type;
    bool q35 = g_str_has_prefix(type, "pc-q35");
    int buses = !strcmp(type, "none") ? 0 : q35 ? 6 : 2;
    unsigned next = board_first_ide_device();
    bool ok = true;

    if (!ide_drives) {
        return true;
    }
    g_array_sort(ide_drives, ide_order);
    for (guint i = 0; i < ide_drives->len && ok; i++) {
        IdeDrive *ide = &g_array_index(ide_drives, IdeDrive, i);
        g_autofree char *bus = g_strdup_printf("ide.%d", ide->bus);
        g_autofree char *unit = g_strdup_printf("%d", ide->unit);
        g_autofree char *path = NULL;
        g_autoptr(json_t) dev = NULL;

        if (ide->bus >= buses || ide->scsi) {
            error_setg(errp, "-drive %s: machine type does not support "
                       "if=%s,bus=%d,unit=%d", ide->arg,
                       ide->scsi ? "scsi" : "ide", ide->bus, ide->unit);
            ok = false;
            break;
        }
        if (ide->empty && !ide->cdrom) {
            /* QEMU's board says so without naming the drive */
            error_setg(errp, "Device needs media, but drive is empty");
            ok = false;
            break;
        }
        path = g_strdup_printf("/machine/unattached/device[%u]", next++);
        dev = json_pack("{s:s,s:s,s:s,s:s}", "driver",
                        ide->cdrom ? "ide-cd" : "ide-hd", "drive",
                        ide->id, "bus", bus, "unit", unit);
        if (!guest_device_add_board(dev, path, errp)) {
            error_prepend(errp, "-drive %s: ", ide->arg);
            ok = false;
        }
    }
    for (guint i = 0; i < ide_drives->len; i++) {
        IdeDrive *ide = &g_array_index(ide_drives, IdeDrive, i);

        g_free(ide->arg);
        g_free(ide->id);
    }
    g_clear_pointer(&ide_drives, g_array_unref);
    return ok;
}

bool drive_add_devices(Error **errp)
{
    for (guint i = 0; virtio_drives && i < virtio_drives->len; i++) {
        g_autoptr(json_t) dev = json_pack(
            "{s:s,s:s}", "driver", "virtio-blk-pci", "drive",
            (char *)g_ptr_array_index(virtio_ids, i));

        if (!guest_device_add(dev, errp)) {
            error_prepend(errp, "-drive %s: ",
                          (char *)g_ptr_array_index(virtio_drives, i));
            return false;
        }
    }
    g_clear_pointer(&virtio_drives, g_ptr_array_unref);
    g_clear_pointer(&virtio_ids, g_ptr_array_unref);
    return true;
}

bool blockdev_add_arg(QapiSchema *schema, const char *arg, Error **errp)
{
    const QapiType *type = qapi_schema_type(schema, "BlockdevOptions");
    g_autoptr(json_t) opts = NULL;
    BlockNode *bn;

    if (arg[0] == '{') {
        GHashTable *big = NULL;

        opts = qjson_parse(arg, &big, errp);
        if (!opts) {
            return false;
        }
        if (!json_is_object(opts)) {
            error_setg(errp, "JSON argument must be an object");
            return false;
        }
        if (!qapi_validate(type, opts, big, errp)) {
            if (big) {
                g_hash_table_unref(big);
            }
            return false;
        }
        if (big) {
            g_hash_table_unref(big);
        }
    } else {
        g_autoptr(json_t) kv = keyval_parse(arg, "driver", errp);

        if (!kv) {
            return false;
        }
        opts = qapi_validate_keyval(type, kv, errp);
        if (!opts) {
            return false;
        }
    }
    /* the monitor's reference, dropped by blockdev-del */
    bn = bdrv_open_options(opts, true, errp);
    return bn != NULL;
}
