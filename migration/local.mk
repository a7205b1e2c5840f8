# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += migration/libmigration.a
migration_libmigration_a_SOURCES = \
	migration/migration.h migration/migration-int.h \
	migration/migration.c migration/options.c \
	migration/channel.c migration/channel.h \
	migration/stream.c migration/stream.h \
	migration/outgoing.c migration/incoming.c migration/ram.c \
	migration/block.c migration/block.h migration/block-load.c \
	migration/block-bitmaps.c \
	migration/return-path.c migration/converge.c migration/multifd.c \
	migration/checksum.c

# migration/ reads the guest's RAM and run state (system/)
MIGRATION_LIBS = $(NBD_LIBS) migration/libmigration.a system/libsystem.a
