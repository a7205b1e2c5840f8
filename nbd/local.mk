# SPDX-License-Identifier: GPL-2.0-or-later
# nbd/ speaks the NBD protocol: the wire definitions shared by qmpd's
# server and the nbd block driver's client side
noinst_LIBRARIES += nbd/libnbdproto.a
nbd_libnbdproto_a_SOURCES = nbd/proto.h nbd/proto.c
