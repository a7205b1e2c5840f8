/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmpd's migration stream (docs/migration-stream.md): a header (magic,
 * version), then records, each a section type, a section id, a payload
 * length, the payload and a CRC-32C of all of them.  The writer appends
 * records to a byte buffer; the reader takes bytes as they arrive and
 * hands out whole records once their checksum holds.
 */
#ifndef MIGRATION_STREAM_H
#define MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

#include "qapi/error.h"

#define MIG_STREAM_MAGIC "QMPDMIG\n"
#define MIG_STREAM_VERSION 2
#define MIG_STREAM_HEADER_SIZE 12
/* type, id, length before the payload; CRC after it */
#define MIG_RECORD_OVERHEAD 13
/* the largest payload a reader accepts */
#define MIG_RECORD_MAX (16u << 20)

typedef enum MigSection {
    MIG_SECTION_CONFIG = 1,     /* JSON: {"ram-size", "page-size"} */
    MIG_SECTION_RAM = 2,        /* page entries */
    MIG_SECTION_END = 3,        /* JSON: {"running"} */
    MIG_SECTION_BLOCK_SETUP = 4,    /* JSON: {"incremental", "disks"} */
    MIG_SECTION_BLOCK = 5,      /* a disk's data or zero run */
    MIG_SECTION_BITMAP = 6,     /* a dirty bitmap: JSON head, bits */
    MIG_SECTION_RP_SHUT = 8,    /* return path: JSON {"status", "error"?} */
    MIG_SECTION_MULTIFD_SYNC = 9,   /* JSON {"sync": N}, every channel */
    MIG_SECTION_MULTIFD_HELLO = 10, /* a multifd channel's first */
} MigSection;

/* RAM entry flags, in the low bits of the page-aligned offset */
#define MIG_RAM_ZERO 0x1        /* then a u32 count of zero pages */
#define MIG_RAM_PAGE 0x2        /* then the page's bytes */

void mig_stream_put_header(GByteArray *out);

/* Append one record; the payload is @len bytes at @payload. */
void mig_stream_put_record(GByteArray *out, MigSection type, uint32_t id,
                           const void *payload, uint32_t len);

/*
 * A record built in place: begin appends its head and returns where it
 * starts, the caller appends the payload, end fills in the length and
 * appends the checksum.
 */
guint mig_stream_begin_record(GByteArray *out, MigSection type, uint32_t id);
void mig_stream_end_record(GByteArray *out, guint start);

/* CRC-32C of @len bytes at @buf, going on from @crc (0 to start). */
uint32_t mig_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t mig_crc32c_soft(uint32_t crc, const void *buf, size_t len);

void mig_put_be32(GByteArray *out, uint32_t v);
void mig_put_be64(GByteArray *out, uint64_t v);
uint32_t mig_get_be32(const uint8_t *p);
uint64_t mig_get_be64(const uint8_t *p);

/*
 * Write @buf from *@sent on to non-blocking @fd: 0 when all of it went
 * (then @buf is emptied and *@sent 0), 1 when @fd would block, or a
 * negative errno (-EPIPE for a peer that took nothing).
 */
int mig_write_buffered(int fd, GByteArray *buf, size_t *sent);

typedef struct MigReader MigReader;

MigReader *mig_reader_new(void);
void mig_reader_free(MigReader *r);

/* Take @len more bytes of the stream. */
void mig_reader_feed(MigReader *r, const void *data, size_t len);

/*
 * Read at most @max bytes of the stream from @fd straight into the
 * reader's buffer: read()'s result, errno set when negative.
 */
ssize_t mig_reader_read(MigReader *r, int fd, size_t max);

/* Bytes fed and not handed out yet (a record's start, or nothing). */
size_t mig_reader_pending(const MigReader *r);

/*
 * The next whole record: 1 with *@type, *@id, *@payload (valid until
 * the next call) and *@len; 0 when more bytes are needed; -1 with the
 * reason when the stream is not one this reader understands (bad
 * magic, another version, a checksum mismatch, an oversized record).
 */
int mig_reader_next(MigReader *r, uint8_t *type, uint32_t *id,
                    const uint8_t **payload, uint32_t *len, Error **errp);

#endif /* MIGRATION_STREAM_H */
