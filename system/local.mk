# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += system/libsystem.a
system_libsystem_a_SOURCES = \
	system/options.c system/options.h \
	system/runstate.c system/runstate.h \
	system/machine.c system/machine.h \
	system/vclock.c system/vclock.h \
	system/qtest.c system/qtest.h

bin_PROGRAMS += qmpd
qmpd_SOURCES = system/main.c
qmpd_LDADD = system/libsystem.a monitor/libmonitor.a $(QAPI_LIBS) $(AIO_LIBS)
