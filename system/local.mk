# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += system/libsystem.a
system_libsystem_a_SOURCES = \
	system/options.c system/options.h \
	system/runstate.c system/runstate.h \
	system/machine.c system/machine.h \
	system/memory.c system/memory.h \
	system/vclock.c system/vclock.h \
	system/qtest.c system/qtest.h \
	system/drive.c system/drive.h \
	system/guest.c system/guest.h \
	system/guest-disk.c system/guest-disk.h \
	system/guest-props.c system/guest-props.h \
	system/guest-bus.c system/guest-bus.h \
	system/qom.c system/qom.h \
	system/handlers.c system/handlers.h

bin_PROGRAMS += qmpd
qmpd_SOURCES = system/main.c
qmpd_LDADD = system/libsystem.a monitor/libmonitor.a $(BLOCK_LIBS) \
	$(QAPI_LIBS)

# "make demo": qmpd with the human monitor on this terminal and a QMP
# socket, in a scratch directory removed afterwards.  The demo disk chain
# base <- sn1 <- sn2 is made with qemu-img when it is installed.
demo: qmpd
	@dir=$$(mktemp -d /tmp/qmpd-demo.XXXXXX); \
	if command -v qemu-img >/dev/null; then \
	    qemu-img create -q -f qcow2 $$dir/base.qcow2 64M && \
	    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 \
	        $$dir/sn1.qcow2 && \
	    qemu-img create -q -f qcow2 -b sn1.qcow2 -F qcow2 \
	        $$dir/sn2.qcow2 && \
	    echo "demo disk chain: $$dir/base.qcow2 <- sn1.qcow2 <- sn2.qcow2"; \
	fi; \
	echo "QMP socket: $$dir/qmp.sock  (try: socat - UNIX-CONNECT:$$dir/qmp.sock)"; \
	echo "HMP below; 'help' lists the commands, 'quit' ends the demo."; \
	disk=; if [ -f $$dir/sn2.qcow2 ]; then \
	    disk="-drive file=$$dir/sn2.qcow2,if=none,id=drive0,format=qcow2 \
	          -device virtio-blk-pci,drive=drive0,id=vd0"; \
	    echo "drive0 (sn2 on top): try 'info block' or" \
	         "'qemu-io drive0 \"write -P 0x5a 0 64k\"'"; \
	fi; \
	./qmpd -nodefaults -name demo -m 256 -monitor stdio $$disk \
	    -qmp unix:$$dir/qmp.sock,server=on,wait=off; \
	rm -rf $$dir
.PHONY: demo
