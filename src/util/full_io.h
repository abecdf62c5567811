/* full_io.h: whole reads and writes on a file descriptor, across short
 * transfers and EINTR. Not for: non-blocking descriptors (EAGAIN is an
 * error here), sockets' polling loops, or buffering (stdio does that). */
#ifndef OMNIHUB_FULL_IO_H
#define OMNIHUB_FULL_IO_H

#include <stddef.h>
#include <sys/types.h>

/* Reads until len bytes are in buf or the file ends, retrying EINTR.
 * Returns the bytes read (fewer than len only at the end of the file, 0
 * when it starts there) or -errno; bytes read before an error are in buf
 * but not counted. */
ssize_t full_io_read(int fd, void *buf, size_t len);

/* full_io_read at offset, leaving the file offset alone. */
ssize_t full_io_pread(int fd, void *buf, size_t len, off_t offset);

/* Writes all len bytes, retrying EINTR and short writes. Returns len or
 * -errno (-EIO when the kernel takes no byte and names no error); how much
 * was written before an error is not said, so the file is the caller's to
 * discard. */
ssize_t full_io_write(int fd, const void *buf, size_t len);

/* full_io_write at offset, leaving the file offset alone. */
ssize_t full_io_pwrite(int fd, const void *buf, size_t len, off_t offset);

#endif
