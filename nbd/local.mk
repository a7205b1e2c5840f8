# SPDX-License-Identifier: GPL-2.0-or-later
# nbd/ speaks the NBD protocol: the wire definitions shared by qmpd's
# server and the nbd block driver's client side
noinst_LIBRARIES += nbd/libnbdproto.a
nbd_libnbdproto_a_SOURCES = nbd/proto.h nbd/proto.c

# qmpd's NBD server: exports, the listener and connections, the
# handshake and the transmission phase
noinst_LIBRARIES += nbd/libnbdserver.a
nbd_libnbdserver_a_SOURCES = nbd/server.h nbd/server-int.h \
	nbd/export.c nbd/server.c nbd/server-opts.c nbd/server-cmds.c
NBD_LIBS = nbd/libnbdserver.a nbd/libnbdproto.a

# the client side, used by the nbd block driver (block/drivers/nbd.c)
noinst_LIBRARIES += nbd/libnbdclient.a
nbd_libnbdclient_a_SOURCES = nbd/client.h nbd/client.c \
	nbd/client-handshake.c nbd/client-reply.c
