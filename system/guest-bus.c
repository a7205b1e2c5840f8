/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Buses and addresses.  The machine's buses are created once: pc has the
 * PCI root bus pci.0 and the PIIX IDE buses ide.0 and ide.1 (two units
 * each), q35 the PCIe root bus pcie.0 and the AHCI buses ide.0 to ide.5
 * (one unit each), none has no bus.  Each virtio-scsi-pci controller
 * adds a SCSI bus (channel 0, targets 0..255, LUNs 0..16383).
 *
 * QEMU finds a bus by walking the device tree depth first, newest device
 * first; the list below is kept in that order, so the first bus of a
 * type is the one QEMU picks for a device given no bus= (the newest
 * SCSI controller's, the machine's last IDE bus), and the first of a
 * name the one bus= names.
 *
 * On the root bus the chipset's functions are taken from the start: pc
 * has i440FX at 00.0 and the PIIX3 at 01.0 (multifunction) with its IDE
 * at 01.1 and power management at 01.3; q35 has the MCH at 00.0 and
 * the ICH9 at 1f.0, 1f.2 (AHCI) and 1f.3.  Without -nodefaults QEMU also
 * puts its default VGA and NIC in the first free slots, before any
 * -device; qmpd has neither device, but keeps their slots so that a
 * device lands where it would in QEMU.  A device address is checked and
 * assigned as QEMU's PCI, IDE and SCSI buses do it, with their messages.
 */
#include "config.h"

#include <string.h>

#include "system/guest-bus.h"

#define SCSI_MAX_CHANNEL 0
#define SCSI_MAX_TARGET 255
#define SCSI_MAX_LUN 16383
#define PCI_SLOTS 32
#define PCI_FUNCS 8

typedef enum {
    BUS_PCI,
    BUS_IDE,
    BUS_SCSI,
} BusKind;

/* A device on a bus, with the address it has there. */
typedef struct {
    const void *owner;          /* NULL: one of the machine's own */
    char *type;                 /* QEMU's type name, for messages */
    char *id;                   /* NULL: none */
    int32_t devfn;
    bool multifunction;
    uint32_t unit;
    uint32_t channel, target, lun;
} Occupant;

struct GuestBus {
    BusKind kind;
    char *name;
    const char *type_name;      /* "PCI", "PCIE", "IDE", "SCSI" */
    bool hotpluggable;
    uint32_t max_units;         /* IDE */
    GPtrArray *occupants;       /* Occupant * */
};

static GPtrArray *buses;        /* GuestBus *, in QEMU's search order */
static unsigned scsi_auto_ids;  /* QEMU's automatic SCSI bus numbers */

static void occupant_free(gpointer p)
{
    Occupant *o = p;

    g_free(o->type);
    g_free(o->id);
    g_free(o);
}

static void bus_free(gpointer p)
{
    GuestBus *b = p;

    g_ptr_array_unref(b->occupants);
    g_free(b->name);
    g_free(b);
}

static GuestBus *bus_new(BusKind kind, const char *name,
                         const char *type_name, bool hotpluggable)
{
    GuestBus *b = g_new0(GuestBus, 1);

    b->kind = kind;
    b->name = g_strdup(name);
    b->type_name = type_name;
    b->hotpluggable = hotpluggable;
    b->occupants = g_ptr_array_new_with_free_func(occupant_free);
    return b;
}

static Occupant *pci_at(const GuestBus *b, int devfn)
{
    for (guint i = 0; i < b->occupants->len; i++) {
        Occupant *o = g_ptr_array_index(b->occupants, i);

        if (o->devfn == devfn) {
            return o;
        }
    }
    return NULL;
}

static void add_builtin(GuestBus *b, const char *type, int devfn, bool mf)
{
    Occupant *o = g_new0(Occupant, 1);

    o->type = g_strdup(type);
    o->devfn = devfn;
    o->multifunction = mf;
    g_ptr_array_add(b->occupants, o);
}

/* A default device in the first free slot, as QEMU's machine init. */
static void add_default(GuestBus *b, const char *type)
{
    for (int slot = 0; slot < PCI_SLOTS; slot++) {
        if (!pci_at(b, slot * PCI_FUNCS)) {
            add_builtin(b, type, slot * PCI_FUNCS, false);
            return;
        }
    }
}

void guest_bus_init(const char *machine, bool defaults, bool vga)
{
    bool q35 = g_str_has_prefix(machine, "pc-q35");
    unsigned ide_buses = q35 ? 6 : 2;
    GuestBus *root;

    guest_bus_cleanup();
    buses = g_ptr_array_new_with_free_func(bus_free);
    if (!strcmp(machine, "none")) {
        return;
    }
    root = bus_new(BUS_PCI, q35 ? "pcie.0" : "pci.0", q35 ? "PCIE" : "PCI",
                   !q35);
    g_ptr_array_add(buses, root);
    if (q35) {
        add_builtin(root, "mch", 0, false);
        add_builtin(root, "ICH9-LPC", 0x1f << 3, true);
        add_builtin(root, "ich9-ahci", 0x1f << 3 | 2, true);
        add_builtin(root, "ICH9-SMB", 0x1f << 3 | 3, true);
    } else {
        add_builtin(root, "i440FX", 0, false);
        add_builtin(root, "PIIX3", 1 << 3, true);
        add_builtin(root, "piix3-ide", 1 << 3 | 1, false);
        add_builtin(root, "PIIX4_PM", 1 << 3 | 3, false);
    }
    if (defaults && vga) {
        add_default(root, "VGA");
    }
    if (defaults) {
        add_default(root, q35 ? "e1000e" : "e1000");
    }
    for (unsigned i = ide_buses; i > 0; i--) {
        g_autofree char *name = g_strdup_printf("ide.%u", i - 1);
        GuestBus *b = bus_new(BUS_IDE, name, "IDE", false);

        b->max_units = q35 ? 1 : 2;
        g_ptr_array_add(buses, b);
    }
}

void guest_bus_cleanup(void)
{
    g_clear_pointer(&buses, g_ptr_array_unref);
    scsi_auto_ids = 0;
}

static GPtrArray *bus_list(void)
{
    if (!buses) {
        buses = g_ptr_array_new_with_free_func(bus_free);
    }
    return buses;
}

static bool type_fits(const GuestBus *b, GuestDriver drv)
{
    const char *want = guest_driver_bus_type(drv);

    /* a PCIe bus is a PCI bus */
    return !strcmp(want, b->kind == BUS_PCI ? "PCI" : b->type_name);
}

GuestBus *guest_bus_find(const char *name, GuestDriver drv, Error **errp)
{
    GPtrArray *list = bus_list();
    g_autofree char *elem = NULL;
    GuestBus *found = NULL;

    if (!name) {
        for (guint i = 0; i < list->len; i++) {
            GuestBus *b = g_ptr_array_index(list, i);

            if (type_fits(b, drv)) {
                return b;
            }
        }
        error_setg(errp, "No '%s' bus found for device '%s'",
                   guest_driver_bus_type(drv), guest_driver_name(drv));
        return NULL;
    }
    elem = g_strdup(name);
    while (*elem && elem[strlen(elem) - 1] == '/') {
        elem[strlen(elem) - 1] = '\0';
    }
    if (strchr(elem, '/')) {
        /* QEMU also walks device paths; qmpd takes bus names */
        error_setg(errp, "Bus path '%s' is not supported by qmpd "
                   "(give the bus name)", name);
        return NULL;
    }
    for (guint i = 0; i < list->len && !found; i++) {
        GuestBus *b = g_ptr_array_index(list, i);

        if (!strcmp(b->name, elem)) {
            found = b;
        }
    }
    if (!found) {
        error_setg(errp, "Bus '%s' not found", elem);
        return NULL;
    }
    if (!type_fits(found, drv)) {
        error_setg(errp, "Device '%s' can't go on %s bus",
                   guest_driver_name(drv), found->type_name);
        return NULL;
    }
    return found;
}

const char *guest_bus_name(const GuestBus *b)
{
    return b->name;
}

unsigned guest_bus_ide_number(const GuestBus *b, uint32_t unit)
{
    unsigned n = 1 + unit;

    /* @buses holds the newest first: those made before @b come after it */
    for (guint i = buses->len; i > 0 && g_ptr_array_index(buses, i - 1) != b;
         i--) {
        const GuestBus *other = g_ptr_array_index(buses, i - 1);

        if (other->kind == BUS_IDE) {
            n += 2;
        }
    }
    return n;
}

bool guest_bus_hotpluggable(const GuestBus *b)
{
    return b->hotpluggable;
}

GuestBus *guest_bus_new_scsi(const char *ctrl_id)
{
    GPtrArray *list = bus_list();
    g_autofree char *name = ctrl_id ? g_strdup_printf("%s.0", ctrl_id)
                            : g_strdup_printf("scsi.%u", scsi_auto_ids++);
    GuestBus *b = bus_new(BUS_SCSI, name, "SCSI", true);
    guint pos = 0;

    /* the newest controller comes first, after the root bus */
    if (list->len && ((GuestBus *)g_ptr_array_index(list, 0))->kind
        == BUS_PCI) {
        pos = 1;
    }
    g_ptr_array_insert(list, pos, b);
    return b;
}

void guest_bus_free(GuestBus *b)
{
    g_ptr_array_remove(bus_list(), b);
}

/* ---- addresses ----------------------------------------------------------- */

static bool place_pci(GuestBus *b, const char *type, bool hot,
                      GuestDevProps *p, Error **errp)
{
    int devfn = p->addr;
    int slot, fn;
    Occupant *o;

    if (devfn < 0) {
        for (slot = 0; slot < PCI_SLOTS; slot++) {
            if (!pci_at(b, slot * PCI_FUNCS)) {
                break;
            }
        }
        if (slot == PCI_SLOTS) {
            error_setg(errp, "PCI: no slot/function available for %s, all "
                       "in use or reserved", type);
            return false;
        }
        devfn = slot * PCI_FUNCS;
    } else if ((o = pci_at(b, devfn))) {
        error_setg(errp, "PCI: slot %d function %d not available for %s, "
                   "in use by %s,id=%s", devfn / PCI_FUNCS,
                   devfn % PCI_FUNCS, type, o->type,
                   o->id ? o->id : "(null)");
        return false;
    } else if (hot && devfn % PCI_FUNCS
               && (o = pci_at(b, devfn - devfn % PCI_FUNCS))) {
        /* the guest scans a slot when its function 0 appears */
        error_setg(errp, "PCI: slot %d function 0 already occupied by %s, "
                   "new func %s cannot be exposed to guest.",
                   devfn / PCI_FUNCS, o->type, type);
        return false;
    }
    slot = devfn / PCI_FUNCS;
    fn = devfn % PCI_FUNCS;
    if (fn) {
        o = pci_at(b, slot * PCI_FUNCS);
        if (o && !o->multifunction) {
            error_setg(errp, "PCI: single function device can't be "
                       "populated in function %x.%x", slot, fn);
            return false;
        }
    } else if (!p->multifunction) {
        for (int f = 1; f < PCI_FUNCS; f++) {
            if (pci_at(b, slot * PCI_FUNCS + f)) {
                error_setg(errp, "PCI: %x.0 indicates single function, but "
                           "%x.%x is already populated.", slot, slot, f);
                return false;
            }
        }
    }
    p->addr = devfn;
    return true;
}

static bool place_ide(GuestBus *b, GuestDevProps *p, Error **errp)
{
    bool used[2] = { false, false };
    uint32_t unit = p->unit;

    for (guint i = 0; i < b->occupants->len; i++) {
        Occupant *o = g_ptr_array_index(b->occupants, i);

        used[o->unit] = true;
    }
    if (unit == GUEST_PROP_AUTO) {
        unit = used[0] ? 1 : 0;
    }
    if (unit >= b->max_units) {
        error_setg(errp, "Can't create IDE unit %d, bus supports only %u "
                   "units", (int32_t)unit, b->max_units);
        return false;
    }
    if (used[unit]) {
        error_setg(errp, "IDE unit %u is in use", unit);
        return false;
    }
    p->unit = unit;
    return true;
}

static Occupant *scsi_at(const GuestBus *b, uint32_t channel,
                         uint32_t target, uint32_t lun)
{
    for (guint i = 0; i < b->occupants->len; i++) {
        Occupant *o = g_ptr_array_index(b->occupants, i);

        if (o->channel == channel && o->target == target && o->lun == lun) {
            return o;
        }
    }
    return NULL;
}

/* The first free value of @coord (@p's target or LUN), up to @max. */
static bool scsi_first_free(const GuestBus *b, const GuestDevProps *p,
                            uint32_t *coord, uint32_t max, const char *what,
                            Error **errp)
{
    for (*coord = 0; *coord <= max; (*coord)++) {
        if (!scsi_at(b, p->channel, p->scsi_id, p->lun)) {
            return true;
        }
    }
    error_setg(errp, "no free %s", what);
    return false;
}

static bool place_scsi(GuestBus *b, GuestDevProps *p, Error **errp)
{
    Occupant *o;

    /* QEMU keeps these as signed numbers in its messages */
    if (p->channel > SCSI_MAX_CHANNEL) {
        error_setg(errp, "bad scsi channel id: %d", (int32_t)p->channel);
        return false;
    }
    if (p->scsi_id != GUEST_PROP_AUTO && p->scsi_id > SCSI_MAX_TARGET) {
        error_setg(errp, "bad scsi device id: %d", (int32_t)p->scsi_id);
        return false;
    }
    if (p->lun != GUEST_PROP_AUTO && p->lun > SCSI_MAX_LUN) {
        error_setg(errp, "bad scsi device lun: %d", (int32_t)p->lun);
        return false;
    }
    if (p->scsi_id == GUEST_PROP_AUTO) {
        if (p->lun == GUEST_PROP_AUTO) {
            p->lun = 0;
        }
        return scsi_first_free(b, p, &p->scsi_id, SCSI_MAX_TARGET, "target",
                               errp);
    }
    if (p->lun == GUEST_PROP_AUTO) {
        return scsi_first_free(b, p, &p->lun, SCSI_MAX_LUN, "lun", errp);
    }
    if ((o = scsi_at(b, p->channel, p->scsi_id, p->lun))) {
        error_setg(errp, "lun already used by '%s'",
                   o->id ? o->id : "(null)");
        return false;
    }
    return true;
}

bool guest_bus_place(GuestBus *b, GuestDriver drv, bool hot,
                     GuestDevProps *p, Error **errp)
{
    switch (b->kind) {
    case BUS_PCI:
        return place_pci(b, guest_driver_name(drv), hot, p, errp);
    case BUS_IDE:
        return place_ide(b, p, errp);
    case BUS_SCSI:
        return place_scsi(b, p, errp);
    }
    g_assert_not_reached();
}

void guest_bus_attach(GuestBus *b, GuestDriver drv, const char *id,
                      const GuestDevProps *p, const void *owner)
{
    Occupant *o = g_new0(Occupant, 1);

    o->owner = owner;
    o->type = g_strdup(guest_driver_name(drv));
    o->id = g_strdup(id);
    o->devfn = p->addr;
    o->multifunction = p->multifunction;
    o->unit = p->unit;
    o->channel = p->channel;
    o->target = p->scsi_id;
    o->lun = p->lun;
    g_ptr_array_add(b->occupants, o);
}

void guest_bus_detach(GuestBus *b, const void *owner)
{
    for (guint i = 0; i < b->occupants->len; i++) {
        Occupant *o = g_ptr_array_index(b->occupants, i);

        if (o->owner == owner) {
            g_ptr_array_remove_index(b->occupants, i);
            return;
        }
    }
}
