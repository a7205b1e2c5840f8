# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += migration/libmigration.a
migration_libmigration_a_SOURCES = \
	migration/migration.h migration/migration-int.h \
	migration/migration.c migration/options.c

MIGRATION_LIBS = migration/libmigration.a
