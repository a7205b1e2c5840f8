# SPDX-License-Identifier: GPL-2.0-or-later
TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
TEST_LIBS = $(QAPI_LIBS) $(CMOCKA_LIBS)

UNIT_TESTS = \
	tests/unit/test-json-stream \
	tests/unit/test-validate \
	tests/unit/test-options \
	tests/unit/test-cpu \
	tests/unit/test-schema \
	tests/unit/test-qcow2 \
	tests/unit/test-qcow2-discard \
	tests/unit/test-qemu-io \
	tests/unit/test-copy \
	tests/unit/test-copy-job \
	tests/unit/test-copy-sink \
	tests/unit/test-io \
	tests/unit/test-io-align \
	tests/unit/test-backend-media \
	tests/unit/test-activate \
	tests/unit/test-job \
	tests/unit/test-hbitmap \
	tests/unit/test-dirty-bitmap \
	tests/unit/test-hmp-parse \
	tests/unit/test-physmem \
	tests/unit/test-mig-stream \
	tests/unit/test-mig-block \
	tests/unit/test-mig-block-out \
	tests/unit/test-throttle-core \
	tests/unit/test-telnet \
	tests/unit/test-nbd-proto \
	tests/unit/test-confine \
	tests/unit/test-trace \
	tests/unit/test-sockets \
	tests/unit/test-nbd-server-opts \
	tests/unit/test-nbd-client

tests_unit_test_json_stream_SOURCES = tests/unit/test-json-stream.c
tests_unit_test_json_stream_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_json_stream_LDADD = $(TEST_LIBS)

tests_unit_test_validate_SOURCES = tests/unit/test-validate.c
tests_unit_test_validate_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_validate_LDADD = $(TEST_LIBS)

tests_unit_test_trace_SOURCES = tests/unit/test-trace.c
tests_unit_test_trace_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_trace_LDADD = $(TEST_LIBS)

tests_unit_test_cpu_SOURCES = tests/unit/test-cpu.c
tests_unit_test_cpu_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_cpu_LDADD = system/libsystem.a $(TEST_LIBS)
tests_unit_test_options_SOURCES = tests/unit/test-options.c
tests_unit_test_options_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_options_LDADD = monitor/libmonitor.a $(TEST_LIBS)

tests_unit_test_schema_SOURCES = tests/unit/test-schema.c
tests_unit_test_schema_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_schema_LDADD = system/libsystem.a monitor/libmonitor.a $(MIGRATION_LIBS) \
	$(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_physmem_SOURCES = tests/unit/test-physmem.c
tests_unit_test_physmem_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_physmem_LDADD = system/libsystem.a monitor/libmonitor.a $(MIGRATION_LIBS) \
	$(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_mig_stream_SOURCES = tests/unit/test-mig-stream.c
tests_unit_test_mig_stream_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mig_stream_LDADD = migration/libmigration.a $(TEST_LIBS) \
	$(ZLIB_LIBS)

tests_unit_test_mig_block_SOURCES = tests/unit/test-mig-block.c \
	tests/unit/block-sync.c tests/unit/block-sync.h
tests_unit_test_mig_block_CFLAGS = $(TEST_CFLAGS)
# migration/ reaches system/, which reaches monitor/ (the exit path)
tests_unit_test_mig_block_LDADD = $(MIGRATION_LIBS) monitor/libmonitor.a \
	system/libsystem.a monitor/libmonitor.a $(MIGRATION_LIBS) \
	$(BLOCK_LIBS) $(TEST_LIBS)

# the source side against a fake of outgoing.c (the link seam): its own
# copy of migration/block.c, not the library's, which brings outgoing.c
tests_unit_test_mig_block_out_SOURCES = tests/unit/test-mig-block-out.c \
	migration/block.c migration/stream.c migration/checksum.c \
	tests/unit/block-sync.c tests/unit/block-sync.h
tests_unit_test_mig_block_out_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mig_block_out_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_nbd_proto_SOURCES = tests/unit/test-nbd-proto.c
tests_unit_test_nbd_proto_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_nbd_proto_LDADD = nbd/libnbdproto.a $(TEST_LIBS)

tests_unit_test_confine_SOURCES = tests/unit/test-confine.c
tests_unit_test_confine_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_confine_LDADD = util/libutil.a $(TEST_LIBS)

tests_unit_test_sockets_SOURCES = tests/unit/test-sockets.c
tests_unit_test_sockets_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_sockets_LDADD = util/libutil.a $(TEST_LIBS)

# the handshake alone: the connection, the exports and the two block
# facts it reads are fakes in the test
tests_unit_test_nbd_server_opts_SOURCES = tests/unit/test-nbd-server-opts.c
tests_unit_test_nbd_server_opts_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_nbd_server_opts_LDADD = nbd/libnbdserver.a nbd/libnbdproto.a \
	$(TEST_LIBS)

tests_unit_test_nbd_client_SOURCES = tests/unit/test-nbd-client.c
tests_unit_test_nbd_client_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_nbd_client_LDADD = nbd/libnbdclient.a nbd/libnbdproto.a \
	$(TEST_LIBS)

tests_unit_test_qcow2_SOURCES = tests/unit/test-qcow2.c \
	tests/unit/block-sync.c tests/unit/block-sync.h
tests_unit_test_qcow2_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_qcow2_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_qcow2_discard_SOURCES = tests/unit/test-qcow2-discard.c
tests_unit_test_qcow2_discard_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_qcow2_discard_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_qemu_io_SOURCES = tests/unit/test-qemu-io.c \
	tests/unit/block-sync.c tests/unit/block-sync.h
tests_unit_test_qemu_io_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_qemu_io_LDADD = monitor/libmonitor.a $(BLOCK_LIBS) \
	$(TEST_LIBS)

COPY_FIXTURE = tests/unit/copy-fixture.c tests/unit/copy-fixture.h \
	tests/unit/block-sync.c tests/unit/block-sync.h
tests_unit_test_copy_SOURCES = tests/unit/test-copy.c $(COPY_FIXTURE)
tests_unit_test_copy_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_copy_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)
tests_unit_test_copy_job_SOURCES = tests/unit/test-copy-job.c $(COPY_FIXTURE)
tests_unit_test_copy_job_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_copy_job_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)
tests_unit_test_copy_sink_SOURCES = tests/unit/test-copy-sink.c \
	$(COPY_FIXTURE)
tests_unit_test_copy_sink_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_copy_sink_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_io_SOURCES = tests/unit/test-io.c
tests_unit_test_io_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_io_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_io_align_SOURCES = tests/unit/test-io-align.c
tests_unit_test_io_align_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_io_align_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_job_SOURCES = tests/unit/test-job.c
tests_unit_test_job_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_job_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_backend_media_SOURCES = tests/unit/test-backend-media.c
tests_unit_test_backend_media_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_backend_media_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_activate_SOURCES = tests/unit/test-activate.c
tests_unit_test_activate_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_activate_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_hbitmap_SOURCES = tests/unit/test-hbitmap.c
tests_unit_test_hbitmap_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_hbitmap_LDADD = $(TEST_LIBS)

tests_unit_test_dirty_bitmap_SOURCES = tests/unit/test-dirty-bitmap.c
tests_unit_test_dirty_bitmap_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_dirty_bitmap_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

tests_unit_test_telnet_SOURCES = tests/unit/test-telnet.c
tests_unit_test_telnet_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_telnet_LDADD = monitor/libmonitor.a $(TEST_LIBS)

tests_unit_test_hmp_parse_SOURCES = tests/unit/test-hmp-parse.c
tests_unit_test_hmp_parse_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_hmp_parse_LDADD = monitor/libmonitor.a $(TEST_LIBS)

tests_unit_test_throttle_core_SOURCES = tests/unit/test-throttle-core.c
tests_unit_test_throttle_core_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_throttle_core_LDADD = $(BLOCK_LIBS) $(TEST_LIBS)

check_PROGRAMS += $(UNIT_TESTS)

FUNCTIONAL_TESTS = \
	tests/functional/test_qmp_protocol.py \
	tests/functional/test_probe.py \
	tests/functional/test_libvirt_argv.py \
	tests/functional/test_libvirt.py \
	tests/functional/test_libvirt_backup.py \
	tests/functional/test_libvirt_block.py \
	tests/functional/test_trace.py \
	tests/functional/test_cmdline.py \
	tests/functional/test_hmp.py \
	tests/functional/test_hmp_block.py \
	tests/functional/test_hmp_drive.py \
	tests/functional/test_robustness.py \
	tests/functional/test_block.py \
	tests/functional/test_create_file.py \
	tests/functional/test_reopen.py \
	tests/functional/test_cache.py \
	tests/functional/test_blkdebug.py \
	tests/functional/test_aio_batch.py \
	tests/functional/test_transaction.py \
	tests/functional/test_stream.py \
	tests/functional/test_commit.py \
	tests/functional/test_bitmaps.py \
	tests/functional/test_mirror.py \
	tests/functional/test_job_filters.py \
	tests/functional/test_mirror_converge.py \
	tests/functional/test_mirror_ready_writing.py \
	tests/functional/test_backup.py \
	tests/functional/test_devices.py \
	tests/functional/test_memory.py \
	tests/functional/test_guest_workload.py \
	tests/functional/test_migration.py \
	tests/functional/test_migration_ram.py \
	tests/functional/test_migration_uuid.py \
	tests/functional/test_migration_fd.py \
	tests/functional/test_migration_kill.py \
	tests/functional/test_nbd_server.py \
	tests/functional/test_nbd_load.py \
	tests/functional/test_migration_switchover.py \
	tests/functional/test_migration_converge.py \
	tests/functional/test_migration_phases.py \
	tests/functional/test_migration_multifd.py \
	tests/functional/test_migration_block.py \
	tests/functional/test_objects.py \
	tests/functional/test_backup_perf.py \
	tests/functional/test_backup_cbw.py \
	tests/functional/test_backup_pull.py \
	tests/functional/test_cbw_filter.py \
	tests/functional/test_qcow2_discard.py \
	tests/functional/test_qcow2_shrink.py \
	tests/functional/test_force_share.py \
	tests/functional/test_copy_on_read.py \
	tests/functional/test_options_table.py \
	tests/functional/test_option_effects.py \
	tests/functional/test_demo.py \
	tests/functional/test_job_refusal.py \
	tests/functional/test_refused_input.py \
	tests/functional/test_target_format.py \
	tests/functional/test_stdio_eof.py \
	tests/functional/test_drive_help.py \
	tests/functional/test_hd_options.py \
	tests/functional/test_json_filename.py \
	tests/functional/test_qemu_machine.py \
	tests/functional/test_media.py \
	tests/functional/test_throttle.py \
	tests/functional/test_telnet.py \
	tests/functional/test_layers.py \
	tests/functional/test_nbd_client.py \
	tests/functional/test_storage_migration.py

COMPAT_TESTS = \
	tests/compat/test_protocol_compat.py \
	tests/compat/test_block_compat.py \
	tests/compat/test_nbd_compat.py \
	tests/compat/test_cmdline_compat.py \
	tests/compat/test_jobs_compat.py \
	tests/compat/test_mirror_compat.py \
	tests/compat/test_werror_compat.py \
	tests/compat/test_devices_compat.py \
	tests/compat/test_memory_compat.py \
	tests/compat/test_migration_compat.py \
	tests/compat/test_uuid_compat.py \
	tests/compat/test_backup_perf_compat.py \
	tests/compat/test_hmp_compat.py \
	tests/compat/test_media_compat.py \
	tests/compat/test_throttle_compat.py \
	tests/compat/test_nbd_client_compat.py \
	tests/compat/test_storage_migration_compat.py \
	tests/compat/test_backup_pull_compat.py

TESTS += $(UNIT_TESTS) $(FUNCTIONAL_TESTS) $(COMPAT_TESTS)
EXTRA_DIST += $(FUNCTIONAL_TESTS) $(COMPAT_TESTS) tests/functional/qmpd.py tests/functional/nbdwire.py \
	tests/functional/images.py tests/functional/nbdpeer.py \
	tests/functional/hmplines.py tests/functional/migpair.py \
	tests/functional/reference.py tests/functional/virshlib.py \
	tests/functional/coverage.py \
	tests/compat/schema_canon.py tests/compat/transcript.py

TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(PYTHON)
AM_TESTS_ENVIRONMENT = \
	export QMPD='$(abs_top_builddir)/qmpd'; \
	export QMPD_BUILDDIR='$(abs_top_builddir)'; \
	export QMPD_SRCDIR='$(abs_top_srcdir)'; \
	export QEMU_BIN='$(QEMU_BIN)'; \
	export QMPD_WRAPPER='$(QMPD_WRAPPER)'; \
	export MALLOC_PERTURB_=$$(( $$(date +%s) % 255 + 1 )); \
	export QMPD_COVERAGE_FILE='$(abs_top_builddir)/tests/commands-used.txt';

# libFuzzer targets: ./configure CC=clang --enable-fuzzing && make fuzz
FUZZ_TARGETS = tests/fuzz/fuzz-qmp tests/fuzz/fuzz-hmp
EXTRA_DIST += tests/fuzz/run-fuzz.sh tests/fuzz/corpus
if FUZZING
noinst_PROGRAMS = $(FUZZ_TARGETS)
tests_fuzz_fuzz_qmp_SOURCES = tests/fuzz/fuzz-qmp.c
tests_fuzz_fuzz_qmp_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_qmp_LDADD = system/libsystem.a monitor/libmonitor.a $(MIGRATION_LIBS) \
	$(BLOCK_LIBS) $(QAPI_LIBS)
tests_fuzz_fuzz_hmp_SOURCES = tests/fuzz/fuzz-hmp.c
tests_fuzz_fuzz_hmp_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_hmp_LDADD = system/libsystem.a monitor/libmonitor.a $(MIGRATION_LIBS) \
	$(BLOCK_LIBS) $(QAPI_LIBS)
include tests/fuzz/qcow2.mk
include tests/fuzz/mig-stream.mk
include tests/fuzz/nbd-server.mk
fuzz: $(FUZZ_TARGETS)
else
fuzz:
	@echo "configure with CC=clang --enable-fuzzing to build the fuzzers"; false
endif
.PHONY: fuzz

# Benchmarks (numbers, never pass/fail): "make bench"
EXTRA_DIST += tests/bench/qmp-rtt.c tests/bench/run-qmp-rtt.sh
include tests/bench/block.mk
# "make bench-multifd": RAM pre-copy over 0, 1, 2 and 4 multifd channels,
# qmpd beside QEMU 7.2 (tests/bench/multifd.py)
EXTRA_DIST += tests/bench/multifd.py
bench-multifd: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
		$(PYTHON) '$(abs_top_srcdir)/tests/bench/multifd.py'
.PHONY: bench-multifd
# "make bench-libvirt": libvirt's probe, virsh create to running,
# destroy and the virsh flows of test_libvirt_block.py, qmpd beside
# QEMU 7.2 (tests/bench/libvirt.py)
EXTRA_DIST += tests/bench/libvirt.py
bench-libvirt: qmpd$(EXEEXT)
	QMPD='$(abs_top_builddir)/qmpd$(EXEEXT)' \
	QMPD_BUILDDIR='$(abs_top_builddir)' \
		$(PYTHON) '$(abs_top_srcdir)/tests/bench/libvirt.py'
.PHONY: bench-libvirt

bench: qmpd bench-block bench-jobs bench-mirror bench-backup
	QMPD='$(abs_top_builddir)/qmpd' bash '$(abs_top_srcdir)/tests/bench/run-qmp-rtt.sh'
.PHONY: bench

# After the suite: which schema commands no test used.
check-local:
	@$(PYTHON) '$(abs_top_srcdir)/tests/functional/coverage.py' \
		'$(abs_top_srcdir)/qapi/schema' \
		'$(abs_top_builddir)/tests/commands-used.txt'
CLEANFILES += tests/commands-used.txt

# The functional and compat tests with qmpd under valgrind (not in CI:
# slow; run it now and then).  Cannot be combined with sanitizers.
check-valgrind: all
	$(MAKE) check TESTS='$(FUNCTIONAL_TESTS) $(COMPAT_TESTS)' \
		QMPD_WRAPPER='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite'
.PHONY: check-valgrind
