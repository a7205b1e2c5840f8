# SPDX-License-Identifier: GPL-2.0-or-later
#
# The block layer, one folder per layer; includes only go downward:
# qmp/ and jobs/ use core/, drivers/ implement core/'s BlockDriver.
noinst_LIBRARIES += block/libblock.a

# core/: nodes and the graph, backends, requests and their queue, dirty
# bitmaps, reopen, throttling
block_libblock_a_SOURCES = \
	block/core/block.h block/core/block-int.h \
	block/core/ioq.c block/core/ioq.h \
	block/core/io.c block/core/io-align.c block/core/io-align.h \
	block/core/io-cor.c \
	block/core/graph.c block/core/filename.c block/core/json-filename.c \
	block/core/open-name.c block/core/perm.c block/core/filter.c \
	block/core/activate.c \
	block/core/backend.c block/core/reopen.c block/core/reopen-quiesce.c \
	block/core/snapshot.c block/core/create.c block/core/driver-info.c \
	block/core/debug.c \
	block/core/dirty-bitmap.c block/core/dirty-bitmap.h \
	block/core/throttle-core.c block/core/throttle-core.h \
	block/core/throttle-groups.c block/core/throttle-groups.h

# drivers/: image formats, protocols and filters
block_libblock_a_SOURCES += \
	block/drivers/file.c block/drivers/file-lock.c block/drivers/file-lock.h \
	block/drivers/raw.c block/drivers/null.c \
	block/drivers/blkdebug.c \
	block/drivers/blkdebug-config.c block/drivers/blkdebug-config.h \
	block/drivers/cor.c block/drivers/throttle.c \
	block/drivers/nbd.c block/drivers/nbd-filename.c \
	block/drivers/job-filters.c \
	block/drivers/qcow2.c block/drivers/qcow2.h \
	block/drivers/qcow2-io.c block/drivers/qcow2-io.h \
	block/drivers/qcow2-cluster.c block/drivers/qcow2-entry.c \
	block/drivers/qcow2-cache.c block/drivers/qcow2-refcount.c \
	block/drivers/qcow2-freemap.c block/drivers/qcow2-discard.c \
	block/drivers/qcow2-overlap.c block/drivers/qcow2-options.c \
	block/drivers/qcow2-flush.c block/drivers/qcow2-header.c \
	block/drivers/qcow2-bitmap.c block/drivers/qcow2-bitmap-dir.c \
	block/drivers/qcow2-bitmap-int.h block/drivers/qcow2-resize.c \
	block/drivers/qcow2-create.c

# jobs/: the job core and each job's policy
block_libblock_a_SOURCES += \
	block/jobs/job.c block/jobs/job.h block/jobs/job-int.h \
	block/jobs/blockjob.c block/jobs/blockjob.h \
	block/jobs/copy.c block/jobs/copy-wait.c block/jobs/copy.h \
	block/jobs/copy-int.h \
	block/jobs/job-filter.c block/jobs/job-filter.h \
	block/jobs/stream.c block/jobs/commit.c block/jobs/mirror.c \
	block/jobs/mirror-start.c block/jobs/mirror-active.c \
	block/jobs/mirror-int.h \
	block/jobs/backup.c block/jobs/backup-qmp.c block/jobs/backup-int.h \
	block/jobs/cbw.c block/jobs/cbw.h block/jobs/snapshot-access.c \
	block/jobs/create.c \
	block/jobs/transaction.c block/jobs/transaction.h

# qmp/: the block layer's QMP handlers
block_libblock_a_SOURCES += \
	block/qmp/qmp-block.c block/qmp/qmp-block.h \
	block/qmp/qmp-media.c block/qmp/qmp-throttle.c \
	block/qmp/qmp-reopen.c block/qmp/qmp-dirty-bitmap.c

BLOCK_LIBS = block/libblock.a nbd/libnbdclient.a nbd/libnbdproto.a \
	$(AIO_LIBS) $(ZLIB_LIBS)
