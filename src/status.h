/* status.h: the text of the mount's .omnihub/status: the downloads in
 * flight, one line each, and the cache's use, for `watch cat`. Not for:
 * gathering what it shows (fs.c, the core) or metrics (metrics.c). */
#ifndef OMNIHUB_STATUS_H
#define OMNIHUB_STATUS_H

#include <stddef.h>

#include "blob.h"
#include "transfer.h"

/* What the status shows, gathered by the caller; all borrowed. */
struct status_input {
	const struct transfer_status *transfers;
	size_t ntransfers;
	const struct blob_usage *usage; /* NULL: not known */
	double uptime_seconds;          /* since the mount started */
};

/* The status text: a summary line, the cache line, then a header and one
 * line per transfer, its path last (it may hold spaces). *out is the
 * caller's (free()), *len bytes. */
int status_render(const struct status_input *in, char **out, size_t *len);

/* 1536 -> "1.5 KiB", 12 -> "12 B" (for the status and the command). */
void status_format_bytes(double bytes, char *out, size_t out_size);
/* 75 -> "1m15s", 7300 -> "2h01m", 3 -> "3s"; "-" when not known (< 0). */
void status_format_duration(double seconds, char *out, size_t out_size);

#endif
