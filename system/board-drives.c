/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A pc or q35 board started without -nodefaults has drives nobody asked
 * for, as QEMU 7.2's: an empty IDE CD-ROM at index 2 (ide1-cd0 on pc,
 * ide2-cd0 on q35) unless a -drive or -cdrom takes that place or a
 * -device ide-cd, ide-hd, scsi-cd or scsi-hd is given, floppy0
 * on pc (q35 has no floppy controller) and sd0, which no device uses on
 * either board.  -M none has none of them.
 *
 * QEMU's pc gives floppy0 an isa-fdc controller and a "floppy" device
 * on it.  qmpd's guest has no floppy controller to drive: what stands
 * for the device here is what query-block and qom-get show of it (its
 * QOM path, type and drive, removable media without a tray).  -fda and
 * -drive if=floppy stay refused.
 *
 * The board's devices are numbered in /machine/unattached in the order
 * QEMU's board makes them, which qmpd follows where it models them: on
 * pc VGA, the isa-serial ports, the default parallel port, the floppy
 * (device[13] with nothing before it), the default NIC, then the IDE
 * devices (device[18] with nothing before them); on q35 the serial and
 * parallel ports come before the IDE devices (device[16]), VGA and the
 * NIC after them.
 */
#include "config.h"

#include <string.h>

#include "block/core/block.h"
#include "system/board-drives.h"
#include "system/cpu.h"
#include "system/drive.h"
#include "system/machine.h"
#include "system/options.h"
#include "system/serial.h"

#define PC_FIRST_FLOPPY 13
#define PC_FIRST_IDE 18
#define Q35_FIRST_IDE 16

static bool with_defaults;
static bool with_vga;
static bool with_default_serial;
static bool with_default_cdrom;
static char *floppy_path;       /* NULL: no floppy device */
static BlockBackend *floppy_blk;

/* QEMU takes a -device of these as the user's own disks: no CD-ROM */
static bool is_disk_model(const char *driver)
{
    static const char *const models[] = {
        "ide-cd", "ide-hd", "scsi-cd", "scsi-hd", NULL
    };

    return driver && g_strv_contains(models, driver);
}

void board_drives_config(bool defaults, bool vga, bool serial_given,
                         const GPtrArray *devices)
{
    with_defaults = defaults;
    with_vga = defaults && vga;
    with_default_serial = defaults && !serial_given;
    with_default_cdrom = defaults;
    for (guint i = 0; i < devices->len; i++) {
        const DeviceOpt *d = g_ptr_array_index(devices, i);

        if (is_disk_model(d->driver)) {
            with_default_cdrom = false;
        }
    }
}

static bool is_q35(void)
{
    return g_str_has_prefix(machine_config()->type, "pc-q35");
}

static bool is_none(void)
{
    return !strcmp(machine_config()->type, "none");
}

/* The isa-serial and isa-parallel devices, which both boards have. */
static unsigned isa_ports(void)
{
    /* qmpd refuses -parallel: the default port is the only one */
    return serial_isa_devices() + with_default_serial + with_defaults;
}

static unsigned pc_floppy_device(void)
{
    return PC_FIRST_FLOPPY + cpu_board_shift() + with_vga + isa_ports();
}

unsigned board_first_ide_device(void)
{
    if (is_q35()) {
        return Q35_FIRST_IDE + cpu_board_shift() + isa_ports();
    }
    /* the floppy device and the default NIC (qmpd refuses -nic) */
    return PC_FIRST_IDE + cpu_board_shift() + with_vga + isa_ports() + 2 * with_defaults;
}

/* The floppy drive has removable media without a tray. */
static void floppy_change_media(void *dev, bool load)
{
    /* no guest reads the floppy's change line here: nothing to tell */
    (void)dev;
    (void)load;
}

static const BlockDevOps floppy_dev_ops = {
    .change_media = floppy_change_media,
};

static bool add_floppy(Error **errp)
{
    BlockBackend *blk = drive_add_empty("floppy0", errp);

    if (!blk) {
        return false;
    }
    floppy_path = g_strdup_printf("/machine/unattached/device[%u]",
                                  pc_floppy_device());
    if (!blk_attach_dev(blk, floppy_path, NULL, errp)) {
        return false;
    }
    blk_set_dev_ops(blk, &floppy_dev_ops, NULL);
    floppy_blk = blk;
    return true;
}

bool board_add_default_drives(QapiSchema *schema, Error **errp)
{
    int cd_bus = is_q35() ? 2 : 1;

    if (!with_defaults || is_none()) {
        return true;
    }
    /* index 2: the -cdrom place, one unit a bus on q35, two on pc */
    if (with_default_cdrom && !drive_ide_slot_taken(cd_bus, 0)
        && !drive_add(schema, "if=ide,index=2,media=cdrom", errp)) {
        return false;
    }
    if (!is_q35() && !add_floppy(errp)) {
        return false;
    }
    return drive_add_empty("sd0", errp) != NULL;
}

const char *board_floppy_qom_path(void)
{
    return floppy_path;
}

bool board_floppy_qom_get(const char *path, const char *prop, json_t **ret,
                          Error **errp)
{
    if (!floppy_path || strcmp(path, floppy_path)) {
        return false;
    }
    if (!strcmp(prop, "type")) {
        *ret = json_string("floppy");
    } else if (!strcmp(prop, "drive")) {
        /* drive_del leaves the device a nameless backend, as QEMU's */
        *ret = json_string(blk_name(floppy_blk));
    } else {
        *ret = NULL;
        error_setg(errp, "Property 'floppy.%s' not found", prop);
    }
    return true;
}
