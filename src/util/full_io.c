/* full_io.c: whole reads and writes on a file descriptor, across short
 * transfers and EINTR. Not for: non-blocking descriptors or polling loops. */
#include "build_config.h"

#include "full_io.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <unistd.h>

/* One loop for all four: offset < 0 means the file offset (read/write). */
static ssize_t transfer_all(int fd, void *buf, size_t len, off_t offset, bool writing)
{
	char *p = buf;
	size_t done = 0;
	ssize_t rc;

	if (len > SSIZE_MAX) { /* the count could not be returned */
		rc = -EINVAL;
		goto out;
	}
	while (done < len) {
		ssize_t n;

		if (writing)
			n = offset < 0 ? write(fd, p + done, len - done)
				       : pwrite(fd, p + done, len - done, offset + (off_t)done);
		else
			n = offset < 0 ? read(fd, p + done, len - done)
				       : pread(fd, p + done, len - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0) {
			/* A read's 0 is the end of the file; a write's would loop
			 * for ever. */
			if (writing) {
				rc = -EIO;
				goto out;
			}
			break;
		}
		done += (size_t)n;
	}
	rc = (ssize_t)done;
out:
	return rc;
}

ssize_t full_io_read(int fd, void *buf, size_t len)
{
	return transfer_all(fd, buf, len, -1, false);
}

ssize_t full_io_pread(int fd, void *buf, size_t len, off_t offset)
{
	return offset < 0 ? -EINVAL : transfer_all(fd, buf, len, offset, false);
}

ssize_t full_io_write(int fd, const void *buf, size_t len)
{
	/* transfer_all only reads buf when writing. */
	return transfer_all(fd, (void *)buf, len, -1, true);
}

ssize_t full_io_pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	return offset < 0 ? -EINVAL : transfer_all(fd, (void *)buf, len, offset, true);
}
