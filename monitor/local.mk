# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += monitor/libmonitor.a
monitor_libmonitor_a_SOURCES = \
	monitor/monitor.c monitor/monitor.h monitor/monitor-int.h \
	monitor/chardev.c monitor/chardev.h \
	monitor/telnet.c monitor/telnet.h \
	monitor/qmp.c monitor/getfd.c \
	monitor/hmp.c monitor/hmp.h monitor/hmp-int.h monitor/hmp-cmds.c \
	monitor/hmp-parse.c monitor/hmp-parse.h \
	monitor/hmp-block.c monitor/hmp-block-cmds.c \
	monitor/hmp-media.c monitor/hmp-migration.c monitor/hmp-nbd.c \
	monitor/readline.c monitor/readline.h \
	monitor/qemu-io.c monitor/qemu-io.h monitor/qemu-io-int.h \
	monitor/qemu-io-format.c monitor/qemu-io-cmds.c
