/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Serial ports.  qmpd's guest runs no code, so its UARTs never send a
 * byte; what a peer types is read and dropped, as a UART no driver
 * reads.  The chardevs are still served as QEMU serves them, so a
 * harness that connects to a console socket (QEMUMachine's
 * set_console()) finds it there: a listening socket takes one client at
 * a time, the next once the first hangs up.
 *
 * QEMU's pc and q35 boards make an isa-serial device for each of the
 * first four ports, before their IDE controller: that shifts where the
 * board's later devices sit in /machine/unattached (drive.c counts it).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "monitor/telnet.h"
#include "system/machine.h"
#include "system/serial.h"

#define MAX_ISA_SERIAL_PORTS 4

typedef struct {
    Chardev *chr;
    int conn;               /* the client being served, or -1 */
    guint listen_watch;
    guint conn_watch;
} SerialPort;

static GPtrArray *ports;    /* SerialPort * */

static void serial_watch_listener(SerialPort *p);

static gboolean serial_readable_cb(gint fd, GIOCondition cond, gpointer data)
{
    SerialPort *p = data;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) {
        return G_SOURCE_CONTINUE;   /* nobody reads a guest's UART here */
    }
    close(p->conn);
    p->conn = -1;
    p->conn_watch = 0;
    if (chardev_is_listener(p->chr)) {
        serial_watch_listener(p);
    }
    return G_SOURCE_REMOVE;
}

static void serial_serve(SerialPort *p, int fd)
{
    p->conn = fd;
    /* what the peer answers is dropped with the rest of its input */
    if (chardev_telnet(p->chr)) {
        telnet_send_offer(fd);
    }
    p->conn_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                  serial_readable_cb, p);
}

static gboolean serial_accept_cb(gint fd, GIOCondition cond, gpointer data)
{
    SerialPort *p = data;
    int conn = chardev_accept(p->chr);

    if (conn < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* one client at a time, as QEMU's socket chardev */
    p->listen_watch = 0;
    serial_serve(p, conn);
    return G_SOURCE_REMOVE;
}

static void serial_watch_listener(SerialPort *p)
{
    p->listen_watch = g_unix_fd_add(chardev_in_fd(p->chr), G_IO_IN,
                                    serial_accept_cb, p);
}

void serial_attach(Chardev *chr)
{
    SerialPort *p = g_new0(SerialPort, 1);
    int conn;

    p->chr = chr;
    chardev_set_frontend_open(chr);
    p->conn = -1;
    if (!ports) {
        ports = g_ptr_array_new();
    }
    g_ptr_array_add(ports, p);
    if (chardev_kind(chr) != CHARDEV_SOCKET) {
        return;         /* stdio stays the monitor's or nobody's; null */
    }
    conn = chardev_take_connection(chr);
    if (conn >= 0) {
        serial_serve(p, conn);
    } else if (chardev_is_listener(chr)) {
        serial_watch_listener(p);
    }
}

unsigned serial_isa_devices(void)
{
    const char *type = machine_config()->type;

    if (!ports || !strcmp(type, "none")) {
        return 0;
    }
    return MIN(ports->len, MAX_ISA_SERIAL_PORTS);
}

void serial_cleanup(void)
{
    for (guint i = 0; ports && i < ports->len; i++) {
        SerialPort *p = g_ptr_array_index(ports, i);

        if (p->listen_watch) {
            g_source_remove(p->listen_watch);
        }
        if (p->conn_watch) {
            g_source_remove(p->conn_watch);
        }
        if (p->conn >= 0) {
            close(p->conn);
        }
        chardev_free(p->chr);
        g_free(p);
    }
    g_clear_pointer(&ports, g_ptr_array_unref);
}
