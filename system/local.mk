# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += system/libsystem.a
system_libsystem_a_SOURCES = \
	system/options.c system/options.h \
	system/runstate.c system/runstate.h \
	system/machine.c system/machine.h \
	system/machine-caps.c system/machine-caps.h \
	system/cpu.c system/cpu.h system/cpu-features.c \
	system/options-board.c system/options-board.h \
	system/memory.c system/memory.h \
	system/vclock.c system/vclock.h \
	system/qtest.c system/qtest.h \
	system/physmem.c system/physmem.h \
	system/serial.c system/serial.h \
	system/drive.c system/drive.h system/drive-hmp.c \
	system/drive-options.c system/drive-options.h \
	system/drive-throttle.c system/drive-throttle.h \
	system/board-drives.c system/board-drives.h \
	system/guest.c system/guest.h \
	system/workload.c system/workload.h system/guest-digest.c \
	system/guest-disk.c system/guest-disk.h \
	system/guest-props.c system/guest-props.h \
	system/guest-bus.c system/guest-bus.h \
	system/qom.c system/qom.h system/qom-tree.c system/qom-tree.h \
	system/object.c system/object.h system/object-int.h \
	system/iothread.c system/iothread.h \
	system/secret.c system/secret.h system/throttle-group.c \
	system/memory-backend.c system/memory-backend.h \
	system/trace-cmds.c system/trace-cmds.h \
	system/handlers.c system/handlers.h

bin_PROGRAMS += qmpd
qmpd_SOURCES = system/main.c
qmpd_LDADD = system/libsystem.a monitor/libmonitor.a $(MIGRATION_LIBS) \
	$(BLOCK_LIBS) \
	$(QAPI_LIBS)

# "make demo": qmpd with the human monitor on this terminal and a QMP
# socket, on a disk chain with data in every layer (system/demo.sh)
demo: qmpd
	@$(SHELL) $(srcdir)/system/demo.sh ./qmpd
EXTRA_DIST += system/demo.sh
.PHONY: demo
