# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += util/libutil.a
util_libutil_a_SOURCES = util/log.c util/log.h util/hbitmap.c util/hbitmap.h \
	util/fdstore.c util/fdstore.h util/be.h util/confine.c util/confine.h \
	util/trace.c util/trace.h \
	util/sockets.c util/sockets.h
