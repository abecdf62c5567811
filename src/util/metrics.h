/* metrics.h: the session's counters and latency histograms, counted by the
 * modules that see the events and rendered in the Prometheus text format.
 * Not for: what is in flight now (transfer_engine_list, status.c). */
#ifndef OMNIHUB_METRICS_H
#define OMNIHUB_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* One per session, owned by whoever assembles it (the core); the modules
 * that count are lent it by a setter. Every function takes a NULL metrics
 * and then does nothing, so a module runs the same without one. Counting
 * is lock-free (atomics) but for the first request to a new host. */
struct metrics;

enum metrics_counter {
	METRICS_HTTP_BYTES,          /* response body bytes received */
	METRICS_RETRIES,             /* requests of a transfer tried again */
	METRICS_DIGEST_FAILURES,     /* downloads or copies whose digest was wrong */
	METRICS_CACHE_HITS,          /* opens served from a blob already present */
	METRICS_CACHE_MISSES,        /* opens that had to download */
	METRICS_DOWNLOADS_COMPLETED, /* blobs fetched and verified */
	METRICS_DOWNLOADS_FAILED,    /* transfers given up */
	METRICS_COUNTER_COUNT,
};

/* Where a file's bytes came from, as a label of omnihub_files_total and
 * omnihub_source_bytes_total. */
enum metrics_from {
	METRICS_FROM_LOCAL,  /* the local cache already had it */
	METRICS_FROM_CLIENT, /* a hub client's own cache (huggingface_hub's,
				torch.hub's...) had it */
	METRICS_FROM_SHARED, /* another process, or machine, over a shared
				cache directory, wrote it */
	METRICS_FROM_HUB,    /* the hub (or its CDN), directly */
	METRICS_FROM_MIRROR, /* a blob mirror (-o mirror) */
	METRICS_FROM_PROXY,  /* the hub through an HTTP proxy */
	METRICS_FROM_COUNT,
};

enum metrics_histogram {
	METRICS_HTTP_FIRST_BYTE, /* request start to the first byte of the answer */
	METRICS_HTTP_DURATION,   /* a whole request */
	METRICS_OPEN_WAIT,       /* a reader waiting for a file's download */
	METRICS_HISTOGRAM_COUNT,
};

/* Upper bounds of the histograms' buckets, in seconds (+Inf follows). */
#define METRICS_BUCKETS                                                                            \
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0
#define METRICS_BUCKET_COUNT 14

/* Hosts beyond this many share the label "other". */
#define METRICS_MAX_HOSTS 64

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

void metrics_add(struct metrics *m, enum metrics_counter counter, uint64_t n);
void metrics_observe(struct metrics *m, enum metrics_histogram histogram, double seconds);
/* One HTTP request ended: host as a label ("huggingface.co",
 * "127.0.0.1:8080"), status the last response's (0 when none came). */
void metrics_http_request(struct metrics *m, const char *host, long status);

/* "local", "client", "shared", "hub", "mirror", "proxy". */
const char *metrics_from_name(enum metrics_from from);
/* A file was served complete, mostly from `from`. */
void metrics_file_from(struct metrics *m, enum metrics_from from);
/* n bytes of a download came from `from` (hub, mirror or proxy). */
void metrics_bytes_from(struct metrics *m, enum metrics_from from, uint64_t n);

/* For tests and the status file. */
uint64_t metrics_value(struct metrics *m, enum metrics_counter counter);
uint64_t metrics_http_requests(struct metrics *m, const char *host, long status);
uint64_t metrics_files_from(struct metrics *m, enum metrics_from from);
uint64_t metrics_bytes_from_value(struct metrics *m, enum metrics_from from);
uint64_t metrics_observations(struct metrics *m, enum metrics_histogram histogram);

/* What the renderer shows beside the counters: values of the moment, read
 * by the caller (from blob_store_usage, transfer_engine_list). */
struct metrics_gauges {
	uint64_t cache_bytes; /* complete blobs */
	uint64_t cache_blobs;
	uint64_t partial_bytes;
	uint64_t cache_max; /* 0: no limit */
	uint64_t transfers; /* in flight */
	uint64_t waiters;   /* readers waiting on them */
	double uptime_seconds;
};

/* The Prometheus text exposition (format 0.0.4) of everything counted,
 * then the gauges (when not NULL). *out is the caller's (free()); its
 * length in *len. */
int metrics_render(struct metrics *m, const struct metrics_gauges *gauges, char **out, size_t *len);

/* A label value as the format wants it: backslash, double quote and line
 * feed escaped. Writes at most out_size bytes, always terminated. */
void metrics_escape_label(const char *value, char *out, size_t out_size);

#endif
