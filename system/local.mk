# SPDX-License-Identifier: GPL-2.0-or-later
bin_PROGRAMS += qmpd
qmpd_SOURCES = system/main.c
qmpd_LDADD = monitor/libmonitor.a $(QAPI_LIBS) $(AIO_LIBS)
