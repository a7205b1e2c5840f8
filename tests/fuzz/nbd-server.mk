# SPDX-License-Identifier: GPL-2.0-or-later
# The NBD server fuzz target (included inside "if FUZZING" in
# tests/local.mk): one client's bytes through the handshake and the
# transmission phase into the block layer.
FUZZ_TARGETS += tests/fuzz/fuzz-nbd-server
tests_fuzz_fuzz_nbd_server_SOURCES = tests/fuzz/fuzz-nbd-server.c
tests_fuzz_fuzz_nbd_server_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_nbd_server_LDADD = $(MIGRATION_LIBS) monitor/libmonitor.a \
	$(MIGRATION_LIBS) $(BLOCK_LIBS) $(QAPI_LIBS)
