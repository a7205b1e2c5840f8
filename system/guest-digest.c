/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * __com.qmpd_guest-digest: SHA-256 of the guest's RAM and of each disk
 * as its device reads it, so that a test can show that what arrived
 * somewhere equals what the guest had.
 *
 * RAM is hashed as its size, then every page that holds a non-zero
 * byte as (RAM offset, bytes), offsets ascending: a page never written
 * and one written with zeros hash alike, as they read alike, and a
 * 4 TiB guest costs what it stores.  A disk is hashed as its bytes from
 * 0 to its length, read through the device DIGEST_CHUNK at a time, one
 * disk after another; the reply waits for the last read.
 */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <nettle/sha2.h>

#include "block/core/block.h"
#include "block/core/ioq.h"
#include "qapi/qjson.h"
#include "system/physmem.h"
#include "system/workload.h"

#define DIGEST_CHUNK (1024 * 1024)

typedef struct Digest {
    QapiReply *reply;
    json_t *disks;          /* the reply's "disks" so far */
    GPtrArray *todo;        /* BlockBackend, still to hash */
    BlockBackend *blk;      /* the one being read */
    uint64_t off, len;
    uint8_t *buf;
    struct sha256_ctx ctx;
    char *ram;
} Digest;

static char *digest_hex(struct sha256_ctx *ctx)
{
    uint8_t d[SHA256_DIGEST_SIZE];
    GString *s = g_string_sized_new(2 * sizeof(d) + 1);

    sha256_digest(ctx, sizeof(d), d);
    for (size_t i = 0; i < sizeof(d); i++) {
        g_string_append_printf(s, "%02x", d[i]);
    }
    return g_string_free(s, FALSE);
}

static bool page_is_zero(const uint8_t *p)
{
    static const uint8_t zero[PHYSMEM_PAGE_SIZE];

    return !memcmp(p, zero, PHYSMEM_PAGE_SIZE);
}

static char *digest_ram(void)
{
    g_autoptr(GArray) offs = physmem_ram_stored_pages();
    struct sha256_ctx ctx;
    uint64_t size = GUINT64_TO_LE(physmem_ram_size());

    sha256_init(&ctx);
    sha256_update(&ctx, sizeof(size), (const uint8_t *)&size);
    for (guint i = 0; i < offs->len; i++) {
        uint64_t off = g_array_index(offs, uint64_t, i);
        const uint8_t *p = physmem_ram_page(off);
        uint64_t le = GUINT64_TO_LE(off);

        if (page_is_zero(p)) {
            continue;
        }
        sha256_update(&ctx, sizeof(le), (const uint8_t *)&le);
        sha256_update(&ctx, PHYSMEM_PAGE_SIZE, p);
    }
    return digest_hex(&ctx);
}

static void digest_next_disk(Digest *d);

static void digest_finish(Digest *d, Error *err)
{
    if (err) {
        qapi_reply_error(d->reply, err);
        json_decref(d->disks);
    } else {
        qapi_reply_return(d->reply, json_pack("{s:s,s:o}", "ram", d->ram,
                                              "disks", d->disks));
    }
    ioq_buf_free(d->buf);
    g_ptr_array_unref(d->todo);
    g_free(d->ram);
    g_free(d);
}

static void digest_read_cb(void *opaque, int ret)
{
    Digest *d = opaque;
    uint64_t n = MIN(DIGEST_CHUNK, d->len - d->off);
    g_autofree char *hex = NULL;

    if (ret < 0) {
        Error *err = NULL;

        error_setg_errno(&err, -ret, "Could not read device '%s'",
                         blk_qdev(d->blk));
        digest_finish(d, err);
        return;
    }
    sha256_update(&d->ctx, n, d->buf);
    d->off += n;
    if (d->off < d->len) {
        blk_dev_io(d->blk, BLK_IO_READ, d->off,
                   MIN(DIGEST_CHUNK, d->len - d->off), d->buf, 0,
                   digest_read_cb, d);
        return;
    }
    hex = digest_hex(&d->ctx);
    json_array_append_new(d->disks, json_pack("{s:s,s:s,s:I,s:s}",
                                              "device", blk_name(d->blk),
                                              "qdev", blk_qdev(d->blk),
                                              "size", (json_int_t)d->len,
                                              "digest", hex));
    digest_next_disk(d);
}

static void digest_next_disk(Digest *d)
{
    if (!d->todo->len) {
        digest_finish(d, NULL);
        return;
    }
    d->blk = g_ptr_array_steal_index(d->todo, 0);
    d->len = bdrv_length(blk_root(d->blk));
    d->off = 0;
    sha256_init(&d->ctx);
    if (!d->len) {
        d->off = d->len;
        digest_read_cb(d, 0);
        return;
    }
    blk_dev_io(d->blk, BLK_IO_READ, 0, MIN(DIGEST_CHUNK, d->len), d->buf, 0,
               digest_read_cb, d);
}

void guest_digest_async(const json_t *args, QapiReply *reply)
{
    Digest *d = g_new0(Digest, 1);
    GPtrArray *all = blk_all();

    d->reply = reply;
    d->disks = json_array();
    d->todo = g_ptr_array_new();
    d->buf = ioq_buf_alloc(DIGEST_CHUNK);
    d->ram = digest_ram();
    /* the guest's disks: backends a device reads, with a medium */
    for (guint i = 0; i < all->len; i++) {
        BlockBackend *blk = g_ptr_array_index(all, i);

        if (blk_qdev(blk) && blk_root(blk)) {
            g_ptr_array_add(d->todo, blk);
        }
    }
    digest_next_disk(d);
}
