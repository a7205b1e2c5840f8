/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stream's framing.  Everything is big-endian.  The reader keeps
 * unconsumed bytes in one buffer, reads into its tail, and drops what
 * it handed out once that is at least as long as what is left (moving
 * a partial record costs no more than the bytes it follows), so its
 * memory is bounded by twice one record plus one read.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "migration/stream.h"

struct MigReader {
    GByteArray *buf;
    size_t pos;             /* first byte not handed out */
    bool header_done;
};

void mig_put_be32(GByteArray *out, uint32_t v)
{
    uint32_t be = GUINT32_TO_BE(v);

    g_byte_array_append(out, (const guint8 *)&be, 4);
}

void mig_put_be64(GByteArray *out, uint64_t v)
{
    uint64_t be = GUINT64_TO_BE(v);

    g_byte_array_append(out, (const guint8 *)&be, 8);
}

uint32_t mig_get_be32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

uint64_t mig_get_be64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

void mig_stream_put_header(GByteArray *out)
{
    g_byte_array_append(out, (const guint8 *)MIG_STREAM_MAGIC, 8);
    mig_put_be32(out, MIG_STREAM_VERSION);
}

guint mig_stream_begin_record(GByteArray *out, MigSection type, uint32_t id)
{
    guint start = out->len;
    uint8_t t = type;

    g_byte_array_append(out, &t, 1);
    mig_put_be32(out, id);
    mig_put_be32(out, 0);
    return start;
}

void mig_stream_end_record(GByteArray *out, guint start)
{
    uint32_t be = GUINT32_TO_BE(out->len - start - 9);

    memcpy(out->data + start + 5, &be, 4);
    mig_put_be32(out, mig_crc32c(0, out->data + start, out->len - start));
}

void mig_stream_put_record(GByteArray *out, MigSection type, uint32_t id,
                           const void *payload, uint32_t len)
{
    guint start = mig_stream_begin_record(out, type, id);

    g_byte_array_append(out, payload, len);
    mig_stream_end_record(out, start);
}

MigReader *mig_reader_new(void)
{
    MigReader *r = g_new0(MigReader, 1);

    r->buf = g_byte_array_new();
    return r;
}

void mig_reader_free(MigReader *r)
{
    if (r) {
        g_byte_array_unref(r->buf);
        g_free(r);
    }
}

int mig_write_buffered(int fd, GByteArray *buf, size_t *sent)
{
    while (*sent < buf->len) {
        ssize_t n = write(fd, buf->data + *sent, buf->len - *sent);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return 1;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EPIPE;
        }
        *sent += n;
    }
    g_byte_array_set_size(buf, 0);
    *sent = 0;
    return 0;
}

/* Drop what was handed out, when that is cheap enough. */
static void reader_compact(MigReader *r)
{
    if (r->pos && r->pos >= r->buf->len - r->pos) {
        g_byte_array_remove_range(r->buf, 0, r->pos);
        r->pos = 0;
    }
}

void mig_reader_feed(MigReader *r, const void *data, size_t len)
{
    reader_compact(r);
    g_byte_array_append(r->buf, data, len);
}

ssize_t mig_reader_read(MigReader *r, int fd, size_t max)
{
    guint len;
    ssize_t n;
    int e;

    reader_compact(r);
    len = r->buf->len;
    g_byte_array_set_size(r->buf, len + max);
    n = read(fd, r->buf->data + len, max);
    e = errno;
    g_byte_array_set_size(r->buf, len + MAX(n, 0));
    errno = e;
    return n;
}

size_t mig_reader_pending(const MigReader *r)
{
    return r->buf->len - r->pos;
}

int mig_reader_next(MigReader *r, uint8_t *type, uint32_t *id,
                    const uint8_t **payload, uint32_t *len, Error **errp)
{
    const uint8_t *p;
    size_t avail = r->buf->len - r->pos;
    uint32_t n;

    if (!avail) {
        return 0;       /* (nothing fed yet: no buffer to point into) */
    }
    p = r->buf->data + r->pos;
    if (!r->header_done) {
        if (avail < MIG_STREAM_HEADER_SIZE) {
            /* a stream that cannot be ours fails at once */
            if (memcmp(p, MIG_STREAM_MAGIC, MIN(avail, 8))) {
                error_setg(errp, "Not a migration stream");
                return -1;
            }
            return 0;
        }
        if (memcmp(p, MIG_STREAM_MAGIC, 8)) {
            error_setg(errp, "Not a migration stream");
            return -1;
        }
        if (mig_get_be32(p + 8) != MIG_STREAM_VERSION) {
            error_setg(errp, "Unsupported migration stream version %u",
                       mig_get_be32(p + 8));
            return -1;
        }
        r->header_done = true;
        r->pos += MIG_STREAM_HEADER_SIZE;
        p += MIG_STREAM_HEADER_SIZE;
        avail -= MIG_STREAM_HEADER_SIZE;
    }
    if (avail < 9) {
        return 0;
    }
    n = mig_get_be32(p + 5);
    if (n > MIG_RECORD_MAX) {
        error_setg(errp, "Section %u too long (%u bytes)",
                   mig_get_be32(p + 1), n);
        return -1;
    }
    if (avail < (size_t)n + MIG_RECORD_OVERHEAD) {
        return 0;
    }
    if (mig_crc32c(0, p, 9 + n) != mig_get_be32(p + 9 + n)) {
        error_setg(errp, "Checksum mismatch in section %u",
                   mig_get_be32(p + 1));
        return -1;
    }
    *type = p[0];
    *id = mig_get_be32(p + 1);
    *len = n;
    *payload = p + 9;
    r->pos += n + MIG_RECORD_OVERHEAD;
    return 1;
}
