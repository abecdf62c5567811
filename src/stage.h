/* stage.h: turning a verified download into what a hub shows: archives are
 * extracted safely into a fresh directory. Not for: downloading, verifying
 * or installing the result (download.c, cache.c). */
#ifndef OMNIHUB_STAGE_H
#define OMNIHUB_STAGE_H

#include <stddef.h>
#include <stdint.h>

/* Bounds against archive bombs: entries, and bytes written as a multiple of
 * the archive's own size plus a fixed allowance (model weights barely
 * compress; test data and text do). */
struct stage_limits {
	uint64_t max_entries;
	uint64_t max_ratio;
	uint64_t allowance_bytes;
};

/* 100,000 entries; 100 times the archive's size plus 1 GiB. */
extern const struct stage_limits stage_default_limits;

/* Extracts the archive read from archive_fd (any format and compression
 * libarchive reads) into the empty directory dest_dir (an absolute path).
 * Refuses the whole archive, with -EINVAL, if any entry is an absolute
 * path, contains "..", is a device, FIFO or socket, or is a link that would
 * leave dest_dir; -EFBIG past the limits; -EIO when it is not a readable
 * archive; the writer's own errno (-ENOSPC, -EDQUOT...) when writing fails.
 * why receives a sentence naming the entry. The caller removes dest_dir on
 * failure. */
int stage_extract(int archive_fd, uint64_t archive_size, const char *dest_dir,
		  const struct stage_limits *limits, char *why, size_t why_size);

#endif
