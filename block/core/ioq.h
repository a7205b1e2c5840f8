/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The I/O engine: asynchronous pread/pwrite through libaio (one
 * io_context, completions on an eventfd watched by the main loop), a
 * small thread pool for calls that have no asynchronous form (fsync,
 * fallocate, ftruncate, buffered preadv/pwritev), and deferred
 * callbacks ("bottom halves") so that no completion ever runs inside the
 * call that started the request.
 *
 * Main loop thread only, except the pool's workers, which touch nothing
 * but their own work item.
 */
#ifndef BLOCK_CORE_IOQ_H
#define BLOCK_CORE_IOQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qapi/error.h"

/* Completion: @ret is the byte count (or 0) on success, -errno on error. */
typedef void IoqCb(void *opaque, ssize_t ret);

/* Set up the engine; false when libaio is unusable (threads still work). */
bool ioq_init(Error **errp);
void ioq_cleanup(void);

/*
 * libaio read/write of @len bytes at @off.  With O_DIRECT fds, @buf,
 * @len and @off must be aligned to the device's logical block size.
 * A short read (end of file) completes with the smaller count.
 * Requests queued in one main loop iteration go down in one io_submit();
 * with @max_batch > 0 (a file's aio-max-batch) the queue is submitted as
 * soon as it holds that many, so that no io_submit() this request joins
 * carries more (0: the engine's default, the whole queue).
 */
void ioq_pread(int fd, void *buf, size_t len, off_t off, unsigned max_batch,
               IoqCb *cb, void *opaque);
void ioq_pwrite(int fd, const void *buf, size_t len, off_t off,
                unsigned max_batch, IoqCb *cb, void *opaque);

/* The same through the thread pool (buffered files, aio=threads). */
void ioq_pread_thread(int fd, void *buf, size_t len, off_t off, IoqCb *cb,
                      void *opaque);
void ioq_pwrite_thread(int fd, const void *buf, size_t len, off_t off,
                       IoqCb *cb, void *opaque);

/* fdatasync (or fsync) in the pool. */
void ioq_fsync(int fd, bool datasync, IoqCb *cb, void *opaque);

/* fallocate(@mode) in the pool; -ENOTSUP when the filesystem refuses. */
void ioq_fallocate(int fd, int mode, off_t off, off_t len, IoqCb *cb,
                   void *opaque);

/* Run @fn(@arg) in the pool; its return value is the completion's ret. */
typedef ssize_t IoqThreadFn(void *arg);
void ioq_thread_call(IoqThreadFn *fn, void *arg, IoqCb *cb, void *opaque);

/* Call @cb(@opaque, @ret) from the main loop, soon. */
void ioq_defer(IoqCb *cb, void *opaque, ssize_t ret);

/* The same for callbacks taking an int status (BdrvCb). */
typedef void IoqIntCb(void *opaque, int ret);
void ioq_defer_int(IoqIntCb *cb, void *opaque, int ret);

/* I/O buffers, aligned for O_DIRECT (4 KiB).  Never NULL for len > 0. */
void *ioq_buf_alloc(size_t len);
void *ioq_buf_alloc0(size_t len);
void ioq_buf_free(void *buf);

/*
 * The request structs of the layers above (the request layer's, the
 * drivers'): @size zeroed bytes from a free list kept per size class, so
 * that a steady stream of requests allocates nothing.  Free with
 * ioq_req_free() and the same @size.  Main loop only.  (With
 * AddressSanitizer they are plain allocations, so that it still sees
 * every use after free.)
 */
void *ioq_req_alloc0(size_t size);
void ioq_req_free(void *p, size_t size);
#define ioq_req_new0(T) ((T *)ioq_req_alloc0(sizeof(T)))

/* Requests submitted and not yet completed (for tests and drain). */
unsigned ioq_in_flight(void);

/*
 * Name the helper threads "worker", as QEMU names its thread pool's
 * threads with -name debug-threads=on; off leaves them as GLib names
 * them.  Call before any I/O.
 */
void ioq_name_threads(bool on);

#endif /* BLOCK_CORE_IOQ_H */
