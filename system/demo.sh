#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# "make demo": qmpd ($1) with the human monitor on this terminal and a QMP
# socket, on a disk chain base <- sn1 <- sn2 with data in every layer
# (256 + 128 + 64 MiB, so that a stream or a mirror takes long enough to
# watch).  The images stay after quit, for qemu-img check and compare.
set -u
qmpd=${1:?usage: demo.sh QMPD}
dir=$(mktemp -d /tmp/qmpd-demo.XXXXXX) || exit 1
disk=
if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null; then
    echo "making the demo disk chain in $dir ..."
    # each layer covers part of what the one below holds, with its own byte
    if qemu-img create -q -f qcow2 "$dir/base.qcow2" 512M &&
        qemu-io -f qcow2 -c "write -P 0x11 0 256M" "$dir/base.qcow2" \
            >/dev/null &&
        qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$dir/sn1.qcow2" &&
        qemu-io -f qcow2 -c "write -P 0x22 128M 128M" "$dir/sn1.qcow2" \
            >/dev/null &&
        qemu-img create -q -f qcow2 -b sn1.qcow2 -F qcow2 "$dir/sn2.qcow2" &&
        qemu-io -f qcow2 -c "write -P 0x33 192M 64M" "$dir/sn2.qcow2" \
            >/dev/null; then
        disk="-drive file=$dir/sn2.qcow2,if=none,id=drive0,format=qcow2
              -device virtio-blk-pci,drive=drive0,id=vd0"
        echo "disk chain: base.qcow2 (256 MiB of 0x11) <- sn1.qcow2" \
             "(128 MiB of 0x22) <- sn2.qcow2 (64 MiB of 0x33), as drive0"
        echo "try: info block -v drive0"
        echo "     block_stream drive0 20          (a stream limited to" \
             "20 MiB/s: watch 'info block-jobs')"
        echo "     block_job_set_speed drive0 0    (then unlimited)"
        echo "     drive_mirror -f drive0 $dir/copy.qcow2 qcow2"
        echo "     qemu-io drive0 \"read -P 0x33 192M 64M\""
        echo "     block_set_io_throttle drive0 10485760 0 0 0 0 0" \
             "(drive0's I/O capped at 10 MiB/s: the read above now takes" \
             "6 s; 'info block' shows the limit)"
    else
        echo "could not make the demo images; starting without a disk"
    fi
else
    echo "qemu-img/qemu-io not installed: starting without a disk"
fi
echo "QMP socket: $dir/qmp.sock  (try: socat - UNIX-CONNECT:$dir/qmp.sock)"
echo "HMP below; 'help' lists the commands, 'quit' ends the demo."
# $disk is split into words on purpose
# shellcheck disable=SC2086
"$qmpd" -nodefaults -name demo -m 256 -monitor stdio $disk \
    -qmp "unix:$dir/qmp.sock,server=on,wait=off"
status=$?
rm -f "$dir/qmp.sock"
if [ -n "$disk" ]; then
    echo "the images are kept in $dir: check them with" \
         "'qemu-img check $dir/sn2.qcow2'; remove the directory when done"
else
    rmdir "$dir" 2>/dev/null
fi
exit $status
