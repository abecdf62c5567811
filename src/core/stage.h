/* stage.h: turning a verified download into what a hub shows: archives are
 * extracted safely into a fresh directory, one member of an archive or a
 * gzip'd file is written out as a file. Not for: downloading, verifying,
 * installing the result (download.c, cache.c) or running converters
 * (convert.c). */
#ifndef OMNIHUB_STAGE_H
#define OMNIHUB_STAGE_H

#include <stddef.h>
#include <stdint.h>

/* Bounds against archive bombs: entries, and bytes written as a multiple of
 * the archive's own size plus a fixed allowance (model weights barely
 * compress; test data and text do), and at most max_bytes in all. */
struct stage_limits {
	uint64_t max_entries;
	uint64_t max_ratio;
	uint64_t allowance_bytes;
	uint64_t max_bytes; /* bytes written in all; 0 = no cap */
};

/* 100,000 entries; 100 times the archive's size plus 1 GiB; no cap. */
extern const struct stage_limits stage_default_limits;

/* Each function below reads its input with pread from offset 0 (the fd's
 * own offset is neither used nor moved), and fills why with a sentence on
 * failure. Past the limits: -EFBIG; input that is not what it should be or
 * is corrupt: -EIO; a failed write: the writer's own errno (-ENOSPC,
 * -EDQUOT...), so a full disk reaches the reader as such. */

/* Extracts the archive read from archive_fd (any format and compression
 * libarchive reads) into the empty directory dest_dir (an absolute path).
 * Refuses the whole archive, with -EINVAL, if any entry is an absolute
 * path, contains "..", is a device, FIFO or socket, or is a link that would
 * leave dest_dir. why names the entry. The caller removes dest_dir on
 * failure. */
int stage_extract(int archive_fd, uint64_t archive_size, const char *dest_dir,
		  const struct stage_limits *limits, char *why, size_t why_size);

/* Writes the gzip stream read from in_fd, decompressed, to out_fd at its
 * current offset (concatenated gzip members are one stream, as gunzip
 * reads them). Data that is not gzip, or whose decompressed bytes are gzip
 * again (gunzip would undo one layer only), is -EIO. The caller removes the
 * output on failure. */
int stage_gunzip(int in_fd, uint64_t in_size, int out_fd, const struct stage_limits *limits,
		 char *why, size_t why_size);

/* Writes the regular file named member (names compared without a leading
 * "./"; the first such entry; a hard link is followed to its target) of the
 * archive read from archive_fd to out_fd at its current offset. -ENOENT
 * when the archive has no such member or it is not a regular file. The
 * caller removes the output on failure. */
int stage_extract_member(int archive_fd, uint64_t archive_size, const char *member, int out_fd,
			 const struct stage_limits *limits, char *why, size_t why_size);

#endif
