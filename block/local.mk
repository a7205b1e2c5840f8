# SPDX-License-Identifier: GPL-2.0-or-later
noinst_LIBRARIES += block/libblock.a
block_libblock_a_SOURCES = \
	block/block.h block/block-int.h \
	block/ioq.c block/ioq.h \
	block/io.c block/io-align.c block/io-align.h block/io-cor.c \
	block/graph.c block/perm.c block/filter.c block/backend.c \
	block/file.c block/raw.c block/null.c \
	block/blkdebug.c block/blkdebug.h block/cor.c block/throttle.c \
	block/blkdebug-config.c block/blkdebug-config.h \
	block/qcow2.c block/qcow2-io.c block/qcow2.h block/qcow2-cache.c block/qcow2-refcount.c \
	block/qcow2-freemap.c block/qcow2-discard.c block/qcow2-overlap.c \
	block/qcow2-options.c block/qcow2-flush.c block/qcow2-header.c \
	block/dirty-bitmap.c block/dirty-bitmap.h block/qcow2-bitmap.c \
	block/qcow2-create.c block/qcow2-create.h block/qcow2-entry.c \
	block/qcow2-resize.c \
	block/job.c block/job.h block/job-int.h block/create.c \
	block/blockjob.c block/blockjob.h block/stream.c block/commit.c \
	block/mirror.c \
	block/qmp-block.c block/qmp-block.h block/qmp-media.c \
	block/qmp-throttle.c block/reopen.c \
	block/transaction.c block/transaction.h \
	block/throttle-core.c block/throttle-core.h \
	block/throttle-groups.c block/throttle-groups.h

BLOCK_LIBS = block/libblock.a $(AIO_LIBS) $(ZLIB_LIBS)
block_libblock_a_SOURCES += block/qemu-io.c block/qemu-io.h
block_libblock_a_SOURCES += block/backup.c
