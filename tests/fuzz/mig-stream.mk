# SPDX-License-Identifier: GPL-2.0-or-later
# The migration stream fuzz target (included inside "if FUZZING" in
# tests/local.mk).
FUZZ_TARGETS += tests/fuzz/fuzz-mig-stream
tests_fuzz_fuzz_mig_stream_SOURCES = tests/fuzz/fuzz-mig-stream.c
tests_fuzz_fuzz_mig_stream_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
# migration pulls in system's run state, which reaches the monitor's
tests_fuzz_fuzz_mig_stream_LDADD = $(MIGRATION_LIBS) monitor/libmonitor.a \
	$(MIGRATION_LIBS) $(BLOCK_LIBS) $(QAPI_LIBS)
