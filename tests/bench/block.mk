# SPDX-License-Identifier: GPL-2.0-or-later
# Block I/O benchmark (numbers, never pass/fail): "make bench-block" builds
# bench-block, which drives qmpd's block layer the way "qemu-img bench"
# drives QEMU's, and runs run-block.sh to print both side by side.
# EXTRA_PROGRAMS: built only for this target, not by "make" or "make check".
EXTRA_PROGRAMS = tests/bench/bench-block
tests_bench_bench_block_SOURCES = tests/bench/bench-block.c
tests_bench_bench_block_LDADD = $(BLOCK_LIBS) $(QAPI_LIBS)
CLEANFILES += tests/bench/bench-block$(EXEEXT)
EXTRA_DIST += tests/bench/run-block.sh tests/bench/lib.sh

bench-block: tests/bench/bench-block$(EXEEXT)
	BENCH_BLOCK='$(abs_top_builddir)/tests/bench/bench-block$(EXEEXT)' \
		bash '$(abs_top_srcdir)/tests/bench/run-block.sh'
.PHONY: bench-block

# Block job benchmark (numbers, never pass/fail): "make bench-jobs" times
# block-stream and block-commit in qmpd and in qemu-storage-daemon on the
# same qcow2 chain, next to cp and dd (run-jobs.sh; jobclient.py speaks QMP).
EXTRA_DIST += tests/bench/run-jobs.sh tests/bench/jobclient.py

bench-jobs: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		bash '$(abs_top_srcdir)/tests/bench/run-jobs.sh'
.PHONY: bench-jobs

# Mirror benchmark (numbers, never pass/fail): "make bench-mirror" times
# blockdev-mirror in qmpd and in qemu-storage-daemon on the same images
# (qcow2 and raw sync=full, the seed's chain), next to cp and dd, and under
# a paced guest writer in qmpd, QEMU and qsd (run-mirror.sh; mirrorclient.py
# speaks QMP and runs the writer; BENCH_MIRROR_GB=1 for a quick run).
EXTRA_DIST += tests/bench/run-mirror.sh tests/bench/mirrorclient.py

bench-mirror: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		bash '$(abs_top_srcdir)/tests/bench/run-mirror.sh'
.PHONY: bench-mirror

# Dirty bitmap and backup benchmark (numbers, never pass/fail): "make
# bench-backup" measures the cost of 0, 1 and 8 dirty bitmaps on guest
# writes (bench-block in-process and HMP qemu-io, against qemu-img bench and
# QEMU), blockdev-backup sync=full/incremental in qmpd, qemu-storage-daemon
# and QEMU next to cp and dd, and the memory of bitmaps per TiB
# (run-backup.sh; backupclient.py speaks QMP; BENCH_BACKUP_GB=1 and
# BENCH_BACKUP_REPEAT=1 for a quick run).
EXTRA_DIST += tests/bench/run-backup.sh tests/bench/backupclient.py

bench-backup: qmpd$(EXEEXT) tests/bench/bench-block$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		BENCH_BLOCK='$(abs_top_builddir)/tests/bench/bench-block$(EXEEXT)' \
		bash '$(abs_top_srcdir)/tests/bench/run-backup.sh'
.PHONY: bench-backup

# I/O throttling benchmark (numbers, never pass/fail): "make bench-throttle"
# measures the rate throttled drives and throttle filters let through at
# several limits, in qmpd and QEMU 7.2 (run-throttle.sh, throttleclient.py).
EXTRA_DIST += tests/bench/run-throttle.sh tests/bench/throttleclient.py

bench-throttle: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		bash '$(abs_top_srcdir)/tests/bench/run-throttle.sh'
.PHONY: bench-throttle

# Block migration benchmark (numbers, never pass/fail): "make
# bench-migration" migrates a pc guest with a 1 GiB disk half allocated and
# 256 MiB of RAM with migrate blk, qmpd -> qmpd and QEMU 7.2 -> QEMU 7.2,
# at the default and a raised max-bandwidth, idle and under guest writes
# (run-migration.sh; migclient.py runs and measures one migration).
EXTRA_DIST += tests/bench/run-migration.sh tests/bench/migclient.py

bench-migration: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		bash '$(abs_top_srcdir)/tests/bench/run-migration.sh'
.PHONY: bench-migration

# NBD export benchmark (numbers, never pass/fail): "make bench-nbd" times
# nbdcopy reading and writing 1 GiB through qmpd's export and through
# qemu-storage-daemon's export of the same image, at nbdcopy's default
# queue depth and at QD 1, and fio's 4K random reads and writes at QD 1
# and 16, with the daemon's CPU per GiB (run-nbd.sh).
EXTRA_DIST += tests/bench/run-nbd.sh

bench-nbd: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		bash '$(abs_top_srcdir)/tests/bench/run-nbd.sh'
.PHONY: bench-nbd

# NBD client benchmark (numbers, never pass/fail): "make bench-nbd-client"
# times blockdev-mirror sync=full of a 1 GiB image into
# qemu-storage-daemon's NBD export with qmpd's nbd driver and with
# qemu-storage-daemon's own in the same run (nbdclient.py).
EXTRA_DIST += tests/bench/nbdclient.py

bench-nbd-client: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		python3 '$(abs_top_srcdir)/tests/bench/nbdclient.py'
.PHONY: bench-nbd-client
