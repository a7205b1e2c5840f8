/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: arbitrary bytes from one NBD client, after the
 * server's greeting: its flags, options and requests reach the real
 * server (listener, handshake, transmission phase) on a real socket,
 * and through it the block layer: a writable export of a 16 MiB null-co
 * node with a dirty bitmap and allocation depth on offer.  Each input
 * is one connection, run until the server has dropped it and freed it.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <jansson.h>

#include "block/core/block.h"
#include "block/core/dirty-bitmap.h"
#include "util/sockets.h"
#include "nbd/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *sock_path;

/* Run @name's synchronous handler from @table on @args (taken). */
static void call(const QapiHandler *table, size_t n, const char *name,
                 json_t *args)
{
    json_t *ret = NULL;
    Error *err = NULL;

    for (size_t i = 0; i < n; i++) {
        if (!strcmp(table[i].name, name)) {
            g_assert(table[i].fn(args, &ret, &err));
            json_decref(ret);
            json_decref(args);
            return;
        }
    }
    g_assert_not_reached();
}

static void fuzz_setup(void)
{
    Error *err = NULL;
    char *scratch;
    json_t *opts;
    BlockNode *bn;

    if (sock_path) {
        return;
    }
    scratch = g_dir_make_tmp("qmpd-fuzz-nbd-XXXXXX", NULL);
    g_assert(scratch && chdir(scratch) == 0);
    g_assert(bdrv_init(NULL));
    sock_forbid_fd_param();
    opts = json_pack("{s:s,s:s,s:I,s:b}", "driver", "null-co", "node-name",
                     "n0", "size", (json_int_t)16 << 20, "read-zeroes", 1);
    bn = bdrv_open_options(opts, true, &err);
    g_assert(bn);
    json_decref(opts);
    g_assert(dbitmap_create(bn, 65536, "b0", &err));
    /* relative: the fuzz targets may create files only below their
     * scratch directory (util/confine.c) */
    sock_path = g_strdup("nbd.sock");
    call(nbd_server_qmp_handlers, nbd_server_qmp_handlers_count,
         "nbd-server-start",
         json_pack("{s:{s:s,s:{s:s}}}", "addr", "type", "unix", "data",
                   "path", sock_path));
    call(nbd_export_qmp_handlers, nbd_export_qmp_handlers_count,
         "block-export-add",
         json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:[s]}", "type", "nbd", "id",
                   "e0", "node-name", "n0", "name", "exp", "writable", 1,
                   "allocation-depth", 1, "bitmaps", "b0"));
    g_free(scratch);
}

/* Read what the server sent; false once it closed the connection. */
static bool drain(int fd)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        /* discard replies */
    }
    return !(n == 0 || (n < 0 && errno != EAGAIN));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t off = 0;
    bool open = true;
    int fd, idle = 0;

    fuzz_setup();
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    strncpy(sun.sun_path, sock_path, sizeof(sun.sun_path) - 1);
    g_assert(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    g_assert(g_unix_set_fd_nonblocking(fd, TRUE, NULL));
    while (open && off < size) {
        ssize_t n = write(fd, data + off, size - off);

        if (n > 0) {
            off += n;
        } else if (n < 0 && errno != EAGAIN) {
            break;
        }
        open = drain(fd);
        while (g_main_context_iteration(NULL, FALSE)) {
            open = open && drain(fd);
        }
    }
    shutdown(fd, SHUT_WR);
    /* until the server has hung up and freed the connection */
    while (open || idle < 3) {
        if (g_main_context_iteration(NULL, FALSE)) {
            idle = 0;
        } else {
            idle++;
            if (open) {
                g_usleep(100);
            }
        }
        open = open && drain(fd);
    }
    close(fd);
    return 0;
}
