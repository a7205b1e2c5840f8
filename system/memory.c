/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -m: the guest's RAM and its hotplug limits.  QEMU takes the option in
 * three steps, and so do we: the option's own syntax (messages name the
 * option), the machine's memory property (size rounded up to 8 KiB,
 * maxmem and slots against it), then, for the pc machines only, the
 * layout of the guest physical address space, where QEMU places the
 * hotplug area after the RAM above 4 GiB and refuses what does not fit
 * the default CPU's 40 physical address bits.  qmpd has no DIMM devices
 * to plug; the limits are kept and shown (qom-get /machine memory) as
 * QEMU shows them.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qapi/opts.h"
#include "system/memory.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

#define PC_PHYS_BITS 40                 /* the qemu64 CPU's */
#define PC_MAX_RAM_SLOTS 256            /* ACPI's limit */
#define PC_PAGE_SIZE 4096
#define AMD_HT_START 0xfd00000000ULL    /* below it: the HyperTransport hole */
#define AMD_ABOVE_1TB_START TiB

/* QEMU's ROUND_UP, wrapping as it does */
#define ALIGN_UP(n, d) (((n) + (d) - 1) & -(d))

/* Is @s a size QEMU reads, but one too large for 64 bits? */
static bool size_out_of_range(const char *s)
{
    static const char suffixes[] = "KMGTPE";
    const char *unit;
    char *end;
    double d;

    if (!*s || *s == '-') {
        return false;
    }
    errno = 0;
    d = g_ascii_strtod(s, &end);
    if (end == s || (*end && end[1])) {
        return false;
    }
    unit = *end ? strchr(suffixes, g_ascii_toupper(*end)) : NULL;
    if (*end && !unit && g_ascii_toupper(*end) != 'B') {
        return false;
    }
    if (unit) {
        d = ldexp(d, 10 * (int)(unit - suffixes + 1));
    }
    return errno == ERANGE || d >= 0x1p64;
}

static bool parse_size(const char *key, const char *s, uint64_t *out,
                       Error **errp)
{
    if (opts_parse_size(s, out)) {
        return true;
    }
    if (size_out_of_range(s)) {
        error_setg(errp, "Value '%s' is out of range for parameter '%s'", s,
                   key);
        return false;
    }
    error_setg(errp, "Parameter '%s' expects a non-negative number below "
               "2^64", key);
    error_append_hint(errp, "Optional suffix k, M, G, T, P or E means kilo-, "
                      "mega-, giga-, tera-, peta-\nand exabytes, "
                      "respectively.\n");
    return false;
}

/* A QEMU number option: decimal, 0x hex or 0 octal; "-1" wraps, as QEMU. */
static bool parse_number(const char *key, const char *s, uint64_t *out,
                         Error **errp)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    if (errno == ERANGE) {
        error_setg(errp, "Value '%s' is too large for parameter '%s'", s,
                   key);
        return false;
    }
    if (!*s || end == s || *end) {
        error_setg(errp, "Parameter '%s' expects a number", key);
        return false;
    }
    return true;
}

bool memory_parse(MemoryOpts *m, const char *arg, Error **errp)
{
    static const char *const keys[] = { "size", "slots", "maxmem", NULL };
    g_autoptr(Opts) o = opts_parse(arg, "size", keys, NULL, errp);
    const char *size;
    uint64_t v;

    if (!o) {
        return false;
    }
    m->given = true;
    size = opts_get(o, "size");
    if (size && !parse_size("size", size, &v, errp)) {
        return false;
    }
    /* a size of 0 means the default, as when it is absent */
    if (size && v) {
        m->size = v;
        m->size_in_mib = g_ascii_isdigit(size[strlen(size) - 1]);
    }
    if (opts_has(o, "slots")) {
        if (!parse_number("slots", opts_get(o, "slots"), &m->slots, errp)) {
            return false;
        }
        m->has_slots = true;
    }
    if (opts_has(o, "maxmem")) {
        if (!parse_size("maxmem", opts_get(o, "maxmem"), &m->maxmem, errp)) {
            return false;
        }
        m->has_maxmem = true;
    }
    return true;
}

uint64_t memory_below_4g_size(const MachineConfig *mc)
{
    uint64_t lowmem;

    if (!g_str_has_prefix(mc->type, "pc")) {
        return mc->ram_size;
    }
    if (g_str_has_prefix(mc->type, "pc-q35")) {
        lowmem = mc->ram_size >= 0xb0000000 ? 0x80000000 : 0xb0000000;
    } else {
        /* max-ram-below-4g 3.5 GiB, cut to 3 GiB by gigabyte alignment */
        lowmem = mc->ram_size >= 0xe0000000 ? 0xc0000000 : 0xe0000000;
    }
    return MIN(mc->ram_size, lowmem);
}

/* Where the pc machines put RAM above 4 GiB, given the ram size. */
static uint64_t pc_above_4g_size(const MachineConfig *mc)
{
    return mc->ram_size - memory_below_4g_size(mc);
}

/*
 * The highest guest physical address the pc machine uses with RAM above
 * 4 GiB from @above_4g_start: the hotplug area (maxmem - size, plus a
 * GiB per slot for alignment) follows that RAM, then the 64-bit PCI
 * hole.  Unsigned arithmetic wraps as QEMU's does.
 */
static uint64_t pc_max_used_gpa(const MachineConfig *mc,
                                uint64_t above_4g_start)
{
    uint64_t hole64 = g_str_has_prefix(mc->type, "pc-q35") ? 32 * GiB
                                                           : 2 * GiB;
    uint64_t start = above_4g_start + pc_above_4g_size(mc);

    if (mc->ram_size < mc->maxram_size) {
        start = ALIGN_UP(start, GiB) + mc->maxram_size - mc->ram_size
            + GiB * mc->ram_slots;
    }
    return ALIGN_UP(start, GiB) + hole64 - 1;
}

static bool pc_memory_check(const MachineConfig *mc, Error **errp)
{
    uint64_t max_phys = (1ULL << PC_PHYS_BITS) - 1;
    uint64_t used = pc_max_used_gpa(mc, 4 * GiB);

    /* qemu64 is an AMD CPU: RAM crossing the HT hole moves above 1 TiB */
    if (used >= AMD_HT_START) {
        used = pc_max_used_gpa(mc, AMD_ABOVE_1TB_START);
    }
    if (used > max_phys) {
        error_setg(errp, "Address space limit 0x%" PRIx64 " < 0x%" PRIx64
                   " phys-bits too low (%d)", max_phys, used, PC_PHYS_BITS);
        return false;
    }
    if (mc->ram_size >= mc->maxram_size) {
        return true;
    }
    if (mc->ram_slots > PC_MAX_RAM_SLOTS) {
        error_setg(errp, "unsupported amount of memory slots: %" PRIu64,
                   mc->ram_slots);
        return false;
    }
    if (mc->maxram_size % PC_PAGE_SIZE) {
        /* sic: QEMU's wording */
        error_setg(errp, "maximum memory size must by aligned to multiple "
                   "of %d bytes", PC_PAGE_SIZE);
        return false;
    }
    return true;
}

bool memory_apply(MachineConfig *mc, const MemoryOpts *m, Error **errp)
{
    bool none = !strcmp(mc->type, "none");
    uint64_t size = m->size ? m->size : none ? 0 : 128 * MiB;

    /* a bare number is in MiB: QEMU reads it again as "<n>M" */
    if (m->size_in_mib) {
        if (size > UINT64_MAX / MiB) {
            error_setg(errp, "Parameter 'memory.size' expects size");
            return false;
        }
        size *= MiB;
    }
    size = ALIGN_UP(size, 8 * KiB);
    if (m->has_maxmem) {
        if (m->maxmem < size) {
            error_setg(errp, "invalid value of maxmem: maximum memory size "
                       "(0x%" PRIx64 ") must be at least the initial memory "
                       "size (0x%" PRIx64 ")", m->maxmem, size);
            return false;
        }
        if (m->has_slots && m->slots && m->maxmem == size) {
            error_setg(errp, "invalid value of maxmem: memory slots were "
                       "specified but maximum memory size (0x%" PRIx64
                       ") is equal to the initial memory size (0x%" PRIx64
                       ")", m->maxmem, size);
            return false;
        }
    } else if (m->has_slots) {
        error_setg(errp, "slots specified but no max-size");
        return false;
    }
    mc->ram_size = size;
    mc->maxram_size = m->has_maxmem ? m->maxmem : size;
    mc->ram_slots = m->has_slots ? m->slots : 0;
    return none || pc_memory_check(mc, errp);
}
