# SPDX-License-Identifier: GPL-2.0-or-later
TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
TEST_LIBS = $(QAPI_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test-json-stream
tests_unit_test_json_stream_SOURCES = tests/unit/test-json-stream.c
tests_unit_test_json_stream_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_json_stream_LDADD = $(TEST_LIBS)

TESTS += $(check_PROGRAMS)
