/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block I/O benchmark through qmpd's block layer, the counterpart of
 * "qemu-img bench": it opens one image (qcow2 or raw over a file node),
 * keeps a fixed number of reads or writes in flight from the GLib main
 * loop, and prints the wall time, IOPS and MiB/s.  Offsets are either
 * sequential with a step that wraps at the end of the image (qemu-img's
 * rule, so both tools can be given the same access pattern) or random,
 * aligned to the request size, from a fixed seed.  --bitmaps N adds N
 * enabled dirty bitmaps to the node first, so that every write is tracked
 * as a guest write is (the cost run-backup.sh measures), and -f null-co
 * measures the layers above a disk that drops every write.  It is a
 * benchmark, not a test: it asserts no targets and fails only when I/O
 * fails.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "block/core/ioq.h"

typedef struct BenchOpts {
    const char *filename;
    const char *fmt;          /* "qcow2", "raw", "null-co"; NULL: probe */
    const char *cache;        /* "none" or "writeback" */
    const char *aio;          /* "native" or "threads" */
    bool write;
    bool random;
    uint64_t size;            /* bytes per request */
    unsigned depth;           /* requests in flight */
    uint64_t count;           /* requests in all */
    uint64_t offset;          /* first offset (sequential mode) */
    uint64_t step;            /* sequential stride; 0: the request size */
    uint64_t seed;            /* random mode */
    int pattern;              /* byte written */
    bool flush;               /* writes: include a final flush in the time */
    unsigned bitmaps;         /* enabled dirty bitmaps on the node */
    uint64_t granularity;     /* theirs */
} BenchOpts;

typedef struct Bench Bench;

/* One request slot: a buffer that is either idle or in flight. */
typedef struct BenchSlot {
    Bench *b;
    void *buf;
} BenchSlot;

struct Bench {
    const BenchOpts *o;
    BlockNode *bn;
    uint64_t image_size;
    uint64_t next_off;        /* sequential mode */
    uint64_t rng;             /* random mode: xorshift64* state */
    uint64_t issued;
    uint64_t completed;
    unsigned in_flight;
    int ret;                  /* first error, or 0 */
    bool flushing;
    bool done;
    BenchSlot *slots;
    GPtrArray *idle;          /* BenchSlot * ready for the next request */
};

static G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) void die(const char *fmt, ...)
{
    va_list ap;

    fputs("bench-block: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: bench-block [-w] [-r] [-f qcow2|raw|null-co] [-t none|writeback]\n"
"                   [-i native|threads] [-s size] [-d depth] [-c count]\n"
"                   [-o offset] [-S step] [--seed N] [--pattern BYTE]\n"
"                   [--flush] [--bitmaps N [--granularity G]] FILENAME\n"
"\n"
"  -w            write (default: read)\n"
"  -r            random offsets aligned to -s, from --seed (default:\n"
"                sequential from -o, advancing by -S and wrapping at the\n"
"                end of the image as qemu-img bench does)\n"
"  -f fmt        image format (default: qcow2 if the magic says so);\n"
"                null-co: no file, FILENAME is the device size (e.g. 4G)\n"
"  -t cache      none (O_DIRECT) or writeback (default: writeback)\n"
"  -i aio        native (libaio; needs -t none) or threads\n"
"                (default: native with -t none, else threads)\n"
"  -s size       bytes per request, suffixes K M G T (default: 4K)\n"
"  -d depth      requests in flight (default: 64, as qemu-img bench);\n"
"                -q is the same (not qemu-img's \"quiet\")\n"
"  -c count      requests in all (default: 75000, as qemu-img bench)\n"
"  -o offset     first offset, sequential mode (default: 0)\n"
"  -S step       sequential stride (default: the request size)\n"
"  --seed N      random mode seed (default: 1)\n"
"  --pattern B   byte value written (default: 0xa5)\n"
"  --flush       writes: time a final flush as well\n"
"  --bitmaps N   add N enabled dirty bitmaps to the node before the run\n"
"                (default: 0); the summary line then gives the first\n"
"                one's dirty bytes (bitmap_bytes)\n"
"  --granularity G  their granularity (default: 64K)\n"
"\n"
"Prints a summary and a key=value line (ops, bytes, seconds, iops,\n"
"mib_s) for scripts.\n");
}

static uint64_t parse_size(const char *s, const char *what)
{
    char *end;
    guint64 v;
    uint64_t mul = 1;

    errno = 0;
    v = g_ascii_strtoull(s, &end, 0);
    if (errno || end == s) {
        die("invalid %s '%s'", what, s);
    }
    switch (g_ascii_toupper(*end)) {
    case '\0':
        break;
    case 'K':
        mul = 1ull << 10;
        break;
    case 'M':
        mul = 1ull << 20;
        break;
    case 'G':
        mul = 1ull << 30;
        break;
    case 'T':
        mul = 1ull << 40;
        break;
    default:
        die("invalid %s '%s'", what, s);
    }
    if (*end && (end[1] && g_ascii_strcasecmp(end + 1, "iB")
                 && g_ascii_strcasecmp(end + 1, "B"))) {
        die("invalid %s '%s'", what, s);
    }
    if (v > UINT64_MAX / mul) {
        die("%s '%s' is too large", what, s);
    }
    return v * mul;
}

static void parse_args(int argc, char **argv, BenchOpts *o)
{
    enum {
        OPT_SEED = 256, OPT_PATTERN, OPT_FLUSH, OPT_BITMAPS, OPT_GRANULARITY,
        OPT_HELP
    };
    static const struct option longopts[] = {
        { "seed", required_argument, NULL, OPT_SEED },
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "flush", no_argument, NULL, OPT_FLUSH },
        { "bitmaps", required_argument, NULL, OPT_BITMAPS },
        { "granularity", required_argument, NULL, OPT_GRANULARITY },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    uint64_t v;
    int c;

    while ((c = getopt_long(argc, argv, "wrf:t:i:s:d:q:c:o:S:h", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'w':
            o->write = true;
            break;
        case 'r':
            o->random = true;
            break;
        case 'f':
            o->fmt = optarg;
            break;
        case 't':
            o->cache = optarg;
            break;
        case 'i':
            o->aio = optarg;
            break;
        case 's':
            o->size = parse_size(optarg, "request size");
            break;
        case 'd':
        case 'q':
            v = parse_size(optarg, "queue depth");
            if (v == 0 || v > 1024) {
                die("queue depth must be 1..1024");
            }
            o->depth = (unsigned)v;
            break;
        case 'c':
            o->count = parse_size(optarg, "request count");
            break;
        case 'o':
            o->offset = parse_size(optarg, "offset");
            break;
        case 'S':
            o->step = parse_size(optarg, "step");
            break;
        case OPT_SEED:
            o->seed = parse_size(optarg, "seed");
            break;
        case OPT_PATTERN:
            v = parse_size(optarg, "pattern");
            if (v > 255) {
                die("pattern must be a byte value");
            }
            o->pattern = (int)v;
            break;
        case OPT_FLUSH:
            o->flush = true;
            break;
        case OPT_BITMAPS:
            v = parse_size(optarg, "bitmap count");
            if (v > 1024) {
                die("at most 1024 bitmaps");
            }
            o->bitmaps = (unsigned)v;
            break;
        case OPT_GRANULARITY:
            o->granularity = parse_size(optarg, "granularity");
            if (o->granularity < DBITMAP_MIN_GRANULARITY
                || o->granularity > (1u << 31)
                || (o->granularity & (o->granularity - 1))) {
                die("granularity must be a power of two, 512 to 2G");
            }
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(1);
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        exit(1);
    }
    o->filename = argv[optind];
    if (strcmp(o->cache, "none") && strcmp(o->cache, "writeback")) {
        die("cache mode must be none or writeback");
    }
    if (!o->aio) {
        o->aio = strcmp(o->cache, "none") ? "threads" : "native";
    }
    if (strcmp(o->aio, "native") && strcmp(o->aio, "threads")) {
        die("aio mode must be native or threads");
    }
    if (o->size == 0 || o->size > (1u << 30)) {
        die("request size must be 1 byte..1 GiB");
    }
    if (o->step == 0) {
        o->step = o->size;
    }
}

/* qcow2 when the file starts with its magic, raw otherwise. */
static const char *probe_format(const char *filename)
{
    static const unsigned char magic[4] = { 'Q', 'F', 'I', 0xfb };
    unsigned char head[4];
    int fd = open(filename, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        die("could not open '%s': %s", filename, g_strerror(errno));
    }
    n = pread(fd, head, sizeof(head), 0);
    close(fd);
    return n == (ssize_t)sizeof(head) && !memcmp(head, magic, sizeof(magic))
        ? "qcow2" : "raw";
}

static BlockNode *open_image(const BenchOpts *o)
{
    g_autoptr(Error) err = NULL;
    bool direct = !strcmp(o->cache, "none");
    json_t *opts;
    BlockNode *bn;

    if (!strcmp(o->fmt, "null-co")) {
        opts = json_pack("{s:s,s:s,s:I}", "driver", "null-co", "node-name",
                         "bench", "size",
                         (json_int_t)parse_size(o->filename, "device size"));
    } else {
        opts = json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:{s:b}}}", "driver",
                         o->fmt, "node-name", "bench", "file", "driver",
                         "file", "filename", o->filename, "aio", o->aio,
                         "cache", "direct", direct);
    }

    if (!opts) {
        die("could not build the node options");
    }
    bn = bdrv_open_options(opts, false, &err);
    json_decref(opts);
    if (!bn) {
        die("%s", error_get_pretty(err));
    }
    return bn;
}

/* xorshift64*: fast, and the same sequence on every host for a seed. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t next_offset(Bench *b)
{
    uint64_t off;

    if (b->o->random) {
        return rng_next(&b->rng) % (b->image_size / b->o->size)
            * b->o->size;
    }
    off = b->next_off;
    /*
     * qemu-img bench (7.2) wraps the next offset modulo the image size;
     * a request that would then cross the end starts over at 0 instead of
     * failing as QEMU's would.
     */
    b->next_off = (b->next_off + b->o->step) % b->image_size;
    if (b->next_off + b->o->size > b->image_size) {
        b->next_off = 0;
    }
    return off;
}

static void request_done_cb(void *opaque, int ret);

static void pump(Bench *b)
{
    while (!b->ret && b->issued < b->o->count && b->idle->len) {
        BenchSlot *slot = g_ptr_array_steal_index_fast(b->idle,
                                                       b->idle->len - 1);
        uint64_t off = next_offset(b);

        b->issued++;
        b->in_flight++;
        if (b->o->write) {
            bdrv_write(b->bn, off, b->o->size, slot->buf, 0, request_done_cb,
                       slot);
        } else {
            bdrv_read(b->bn, off, b->o->size, slot->buf, request_done_cb,
                      slot);
        }
    }
}

static void flush_done_cb(void *opaque, int ret)
{
    Bench *b = opaque;

    if (ret < 0 && !b->ret) {
        b->ret = ret;
    }
    b->done = true;
}

static void request_done_cb(void *opaque, int ret)
{
    BenchSlot *slot = opaque;
    Bench *b = slot->b;

    b->in_flight--;
    if (ret < 0) {
        if (!b->ret) {
            b->ret = ret;
        }
    } else {
        b->completed++;
    }
    g_ptr_array_add(b->idle, slot);
    pump(b);
    if (b->in_flight > 0 || b->flushing) {
        return;
    }
    if (b->ret || b->completed == b->o->count) {
        if (!b->ret && b->o->write && b->o->flush) {
            b->flushing = true;
            bdrv_flush(b->bn, flush_done_cb, b);
        } else {
            b->done = true;
        }
    }
}

static void closed_cb(void *opaque, int ret)
{
    *(bool *)opaque = true;
}

static void close_image(BlockNode *bn)
{
    bool closed = false;

    bdrv_unref(bn);
    bdrv_wait_closed(closed_cb, &closed);
    while (!closed) {
        g_main_context_iteration(NULL, TRUE);
    }
}

int main(int argc, char **argv)
{
    BenchOpts o = {
        .cache = "writeback",
        .size = 4096,
        .depth = 64,
        .count = 75000,
        .seed = 1,
        .pattern = 0xa5,
        .granularity = 65536,
    };
    DirtyBitmap *first_bitmap = NULL;
    g_autoptr(Error) err = NULL;
    Bench b = { .o = &o };
    gint64 start_us, end_us;
    uint64_t bitmap_bytes;
    double secs;

    parse_args(argc, argv, &o);
    if (!o.fmt) {
        o.fmt = probe_format(o.filename);
    }
    if (!bdrv_init(&err)) {
        die("%s", error_get_pretty(err));
    }
    b.bn = open_image(&o);
    b.image_size = bdrv_length(b.bn);
    for (unsigned i = 0; i < o.bitmaps; i++) {
        g_autofree char *name = g_strdup_printf("bench%u", i);

        first_bitmap = dbitmap_create(b.bn, (uint32_t)o.granularity, name,
                                      &err);
        if (!first_bitmap) {
            die("%s", error_get_pretty(err));
        }
    }
    if (o.size > b.image_size || o.offset > b.image_size - o.size) {
        die("image of %" PRIu64 " bytes is too small for %" PRIu64
            "-byte requests at offset %" PRIu64, b.image_size, o.size,
            o.offset);
    }
    b.next_off = o.offset;
    /* xorshift must not start at 0; any fixed mapping of the seed will do */
    b.rng = o.seed * 0x9e3779b97f4a7c15ull + 1;
    if (!b.rng) {
        b.rng = 1;
    }

    b.slots = g_new0(BenchSlot, o.depth);
    b.idle = g_ptr_array_sized_new(o.depth);
    for (unsigned i = 0; i < o.depth; i++) {
        b.slots[i].b = &b;
        b.slots[i].buf = ioq_buf_alloc(o.size);
        memset(b.slots[i].buf, o.pattern, o.size);
        g_ptr_array_add(b.idle, &b.slots[i]);
    }

    printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %u in "
           "parallel (%s, cache=%s, aio=%s, %u dirty bitmaps, ", o.count,
           o.write ? "write" : "read", o.size, o.depth, o.fmt, o.cache,
           o.aio, o.bitmaps);
    if (o.random) {
        printf("random offsets, seed %" PRIu64 ")\n", o.seed);
    } else {
        printf("starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
               o.offset, o.step);
    }
    fflush(stdout);

    start_us = g_get_monotonic_time();
    if (o.count == 0) {
        b.done = true;
    }
    pump(&b);
    while (!b.done) {
        g_main_context_iteration(NULL, TRUE);
    }
    end_us = g_get_monotonic_time();

    /* the node's close releases its bitmaps */
    bitmap_bytes = first_bitmap ? dbitmap_count(first_bitmap) : 0;
    close_image(b.bn);
    for (unsigned i = 0; i < o.depth; i++) {
        ioq_buf_free(b.slots[i].buf);
    }
    g_free(b.slots);
    g_ptr_array_unref(b.idle);

    if (b.ret < 0) {
        die("%s failed: %s", b.flushing ? "flush"
            : o.write ? "write" : "read", g_strerror(-b.ret));
    }
    secs = (end_us - start_us) / 1e6;
    if (secs <= 0) {
        secs = 1e-6;
    }
    printf("Run completed in %.3f seconds.\n", secs);
    printf("ops=%" PRIu64 " bytes=%" PRIu64 " seconds=%.6f iops=%.0f "
           "mib_s=%.1f bitmap_bytes=%" PRIu64 "\n", b.completed,
           b.completed * o.size, secs, b.completed / secs,
           b.completed * o.size / secs / (1 << 20), bitmap_bytes);
    return 0;
}
