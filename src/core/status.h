/* status.h: the text of the mount's .omnihub/status: each hub's state, the
 * downloads in flight, one line each, and the cache's use, for `watch cat`
 * and `omnihub status`; and the hubs' gauges of the metrics. Not for:
 * gathering what it shows (fs.c, the core) or metrics (metrics.c). */
#ifndef OMNIHUB_STATUS_H
#define OMNIHUB_STATUS_H

#include <stddef.h>

#include "blob.h"
#include "hub_state.h"
#include "transfer.h"

/* The daemon's own directory at the mount's root, which holds the status;
 * the mount names it (tree.h), the omnihub command reads it. */
#define STATUS_DIR ".omnihub"

/* What the status shows, gathered by the caller; all borrowed. */
struct status_input {
	const struct transfer_status *transfers;
	size_t ntransfers;
	const struct blob_usage *usage; /* NULL: not known */
	double uptime_seconds;          /* since the mount started */
	const struct hub_state_view *hubs; /* every hub, in the root's order */
	size_t nhubs;
};

/* The status text: a summary line, the cache line, a header and one line
 * per hub (STATUS_HUB_HEADER: name, state, since, next try, tries, last
 * error; times in UTC as 2026-12-03T08:50:01Z, "-" for none), then a
 * header and one line per transfer, its path last (it may hold spaces).
 * *out is the caller's (free()), *len bytes. */
#define STATUS_HUB_HEADER "HUB"
int status_render(const struct status_input *in, char **out, size_t *len);

/* The hubs' gauge, omnihub_hub_up{hub="onnx"} 1 (0 while it does not
 * serve), in the Prometheus text format, to follow metrics_render's.
 * *out is the caller's (free()). */
int status_hub_metrics(const struct hub_state_view *hubs, size_t nhubs, char **out, size_t *len);

/* 1536 -> "1.5 KiB", 12 -> "12 B" (for the status and the command). */
void status_format_bytes(double bytes, char *out, size_t out_size);
/* 75 -> "1m15s", 7300 -> "2h01m", 3 -> "3s"; "-" when not known (< 0). */
void status_format_duration(double seconds, char *out, size_t out_size);

#endif
