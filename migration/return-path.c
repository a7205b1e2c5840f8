/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The return path (the return-path capability): the destination's word
 * back to the source on the same socket, a stream of its own (header,
 * then one RP_SHUT record: {"status": 0} once it loaded END, or
 * {"status": 1, "error": REASON} when the load failed).  Without it the
 * source says completed as soon as its last byte is in the kernel's
 * buffers, even if the destination then failed to load them; with it
 * the source waits for RP_SHUT (its guest still stopped) and fails,
 * running its guest again, when the destination failed or went away.
 * Only a socket carries it back: a pipe (exec:, fd: of a pipe) cannot.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "migration/migration-int.h"
#include "migration/stream.h"
#include "qapi/qjson.h"

#define MIG_RP_READ_SIZE 4096

struct MigRp {
    int fd;
    guint watch;
    MigReader *reader;
    MigRpDone *done;
    void *opaque;
};

bool mig_rp_usable(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

void mig_rp_send(int fd, const char *error)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    g_autoptr(json_t) msg = error
        ? json_pack("{s:i,s:s}", "status", 1, "error", error)
        : json_pack("{s:i}", "status", 0);
    g_autofree char *text = json_dumps(msg, JSON_COMPACT);
    size_t off = 0;

    mig_stream_put_header(buf);
    mig_stream_put_record(buf, MIG_SECTION_RP_SHUT, 0, text, strlen(text));
    /* a few dozen bytes into an empty socket buffer: best effort */
    while (off < buf->len) {
        ssize_t n = write(fd, buf->data + off, buf->len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        off += n;
    }
}

static void mig_rp_finish(MigRp *rp, const char *error)
{
    MigRpDone *done = rp->done;
    void *opaque = rp->opaque;

    rp->watch = 0;
    mig_rp_free(rp);
    done(opaque, error);
}

/* What an RP_SHUT payload says: NULL for success, else the reason. */
static char *mig_rp_reason(const uint8_t *p, uint32_t len)
{
    g_autoptr(json_t) msg = json_loadb((const char *)p, len, 0, NULL);
    json_t *status = msg ? json_object_get(msg, "status") : NULL;
    json_t *error = msg ? json_object_get(msg, "error") : NULL;

    if (json_is_integer(status) && json_integer_value(status) == 0) {
        return NULL;
    }
    return g_strdup(json_is_string(error) ? json_string_value(error)
                    : "invalid return path message");
}

static gboolean mig_rp_readable_cb(gint fd, GIOCondition cond,
                                   gpointer opaque)
{
    MigRp *rp = opaque;
    uint8_t buf[MIG_RP_READ_SIZE];
    ssize_t n = read(fd, buf, sizeof(buf));
    g_autofree char *reason = NULL;
    Error *err = NULL;
    const uint8_t *payload;
    uint32_t id, len;
    uint8_t type;
    int r;

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        mig_rp_finish(rp, MIG_RP_CLOSED);
        return G_SOURCE_REMOVE;
    }
    mig_reader_feed(rp->reader, buf, n);
    r = mig_reader_next(rp->reader, &type, &id, &payload, &len, &err);
    if (r == 0) {
        return G_SOURCE_CONTINUE;
    }
    if (r < 0) {
        reason = g_strdup(error_get_pretty(err));
        error_free(err);
    } else if (type != MIG_SECTION_RP_SHUT) {
        reason = g_strdup_printf("Unknown return path message %u", type);
    } else {
        reason = mig_rp_reason(payload, len);
    }
    mig_rp_finish(rp, reason);
    return G_SOURCE_REMOVE;
}

MigRp *mig_rp_wait(int fd, MigRpDone *done, void *opaque)
{
    MigRp *rp = g_new0(MigRp, 1);

    rp->fd = fd;
    rp->reader = mig_reader_new();
    rp->done = done;
    rp->opaque = opaque;
    rp->watch = g_unix_fd_add(fd, G_IO_IN, mig_rp_readable_cb, rp);
    return rp;
}

void mig_rp_free(MigRp *rp)
{
    if (!rp) {
        return;
    }
    if (rp->watch) {
        g_source_remove(rp->watch);
    }
    mig_reader_free(rp->reader);
    g_free(rp);
}
