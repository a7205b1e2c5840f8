# SPDX-License-Identifier: GPL-2.0-or-later
# The qcow2 image fuzz target (included inside "if FUZZING" in tests/local.mk).
FUZZ_TARGETS += tests/fuzz/fuzz-qcow2
tests_fuzz_fuzz_qcow2_SOURCES = tests/fuzz/fuzz-qcow2.c
tests_fuzz_fuzz_qcow2_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_qcow2_LDADD = $(BLOCK_LIBS) $(QAPI_LIBS)
