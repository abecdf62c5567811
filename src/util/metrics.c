/* metrics.c: the session's counters and latency histograms, counted by the
 * modules that see the events and rendered in the Prometheus text format.
 * Not for: what is in flight now (transfer_engine_list, status.c). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memtext.h"
#include "metrics.h"

/* Status classes of the requests counter; the last is "no response". */
#define STATUS_CLASSES 6
static const char *const status_class_names[STATUS_CLASSES] = {"1xx", "2xx", "3xx",
                                                               "4xx", "5xx", "error"};

static const double bucket_bounds[METRICS_BUCKET_COUNT] = {METRICS_BUCKETS};

struct histogram {
	/* Per bucket, the observations that fell in it alone (made cumulative
	 * when rendered); the last is +Inf. */
	atomic_uint_fast64_t buckets[METRICS_BUCKET_COUNT + 1];
	atomic_uint_fast64_t sum_ns;
};

struct host_counts {
	char name[128];
	atomic_uint_fast64_t requests[STATUS_CLASSES];
};

struct metrics {
	atomic_uint_fast64_t counters[METRICS_COUNTER_COUNT];
	struct histogram histograms[METRICS_HISTOGRAM_COUNT];
	atomic_uint_fast64_t files_from[METRICS_FROM_COUNT];
	atomic_uint_fast64_t bytes_from[METRICS_FROM_COUNT];
	pthread_mutex_t hosts_lock; /* guards adding to hosts (nhosts only
	                               grows; a slot's name never changes) */
	atomic_size_t nhosts;
	struct host_counts hosts[METRICS_MAX_HOSTS + 1]; /* the last: "other" */
};

static const struct {
	const char *name;
	const char *help;
} counter_info[METRICS_COUNTER_COUNT] = {
    [METRICS_HTTP_BYTES] = {"omnihub_http_received_bytes_total",
                            "Bytes of HTTP response bodies received."},
    [METRICS_RETRIES] = {"omnihub_retries_total",
                         "Requests of a download tried again after a failure."},
    [METRICS_DIGEST_FAILURES] = {"omnihub_digest_failures_total",
                                 "Downloads or copies whose digest did not match the index."},
    [METRICS_CACHE_HITS] = {"omnihub_cache_hits_total",
                            "Opens served from a file already in the cache."},
    [METRICS_CACHE_MISSES] = {"omnihub_cache_misses_total",
                              "Opens that had to wait for or stream a download."},
    [METRICS_DOWNLOADS_COMPLETED] = {"omnihub_downloads_completed_total",
                                     "Files downloaded and verified."},
    [METRICS_DOWNLOADS_FAILED] = {"omnihub_downloads_failed_total", "Downloads given up."},
};

static const struct {
	const char *name;
	const char *help;
} histogram_info[METRICS_HISTOGRAM_COUNT] = {
    [METRICS_HTTP_FIRST_BYTE] = {"omnihub_http_first_byte_seconds",
                                 "Time from the start of an HTTP request to the first byte "
                                 "of its answer."},
    [METRICS_HTTP_DURATION] = {"omnihub_http_request_duration_seconds",
                               "Time an HTTP request took, to its last byte."},
    [METRICS_OPEN_WAIT] = {"omnihub_open_wait_seconds",
                           "Time a reader waited for a file to be downloaded."},
};

int metrics_new(struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->hosts_lock, NULL);
	snprintf(m->hosts[METRICS_MAX_HOSTS].name, sizeof(m->hosts[0].name), "other");
	*out = m;
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->hosts_lock);
	free(m);
}

void metrics_add(struct metrics *m, enum metrics_counter counter, uint64_t n)
{
	if (m && counter < METRICS_COUNTER_COUNT)
		atomic_fetch_add_explicit(&m->counters[counter], n, memory_order_relaxed);
}

const char *metrics_from_name(enum metrics_from from)
{
	static const char *const names[METRICS_FROM_COUNT] = {"local", "client", "shared",
	                                                      "hub",   "mirror", "proxy"};
	return from < METRICS_FROM_COUNT ? names[from] : "unknown";
}

void metrics_file_from(struct metrics *m, enum metrics_from from)
{
	if (m && from < METRICS_FROM_COUNT)
		atomic_fetch_add_explicit(&m->files_from[from], 1, memory_order_relaxed);
}

void metrics_bytes_from(struct metrics *m, enum metrics_from from, uint64_t n)
{
	if (m && from < METRICS_FROM_COUNT)
		atomic_fetch_add_explicit(&m->bytes_from[from], n, memory_order_relaxed);
}

uint64_t metrics_files_from(struct metrics *m, enum metrics_from from)
{
	return m && from < METRICS_FROM_COUNT ? atomic_load(&m->files_from[from]) : 0;
}

uint64_t metrics_bytes_from_value(struct metrics *m, enum metrics_from from)
{
	return m && from < METRICS_FROM_COUNT ? atomic_load(&m->bytes_from[from]) : 0;
}

void metrics_observe(struct metrics *m, enum metrics_histogram histogram, double seconds)
{
	struct histogram *h;
	size_t b = 0;

	if (!m || histogram >= METRICS_HISTOGRAM_COUNT)
		return;
	if (!(seconds >= 0)) /* a clock that stepped back, or NaN */
		seconds = 0;
	h = &m->histograms[histogram];
	while (b < METRICS_BUCKET_COUNT && seconds > bucket_bounds[b])
		b++;
	atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, (uint_fast64_t)(seconds * 1e9 + 0.5),
	                          memory_order_relaxed);
}

static size_t status_class(long status)
{
	return status >= 100 && status < 600 ? (size_t)(status / 100 - 1) : STATUS_CLASSES - 1;
}

/* The slot of host, added when new (NULL only without a name). */
static struct host_counts *host_slot(struct metrics *m, const char *host, bool add)
{
	size_t n = atomic_load(&m->nhosts);
	struct host_counts *slot = NULL;

	if (!host || !host[0])
		host = "unknown";
	for (size_t i = 0; i < n; i++)
		if (strcmp(m->hosts[i].name, host) == 0)
			return &m->hosts[i];
	if (!add)
		return strcmp(host, "other") == 0 ? &m->hosts[METRICS_MAX_HOSTS] : NULL;
	pthread_mutex_lock(&m->hosts_lock);
	n = atomic_load(&m->nhosts);
	for (size_t i = 0; i < n && !slot; i++) /* another thread may have added it */
		if (strcmp(m->hosts[i].name, host) == 0)
			slot = &m->hosts[i];
	if (!slot && n < METRICS_MAX_HOSTS) {
		slot = &m->hosts[n];
		snprintf(slot->name, sizeof(slot->name), "%s", host);
		atomic_store(&m->nhosts, n + 1); /* published once named */
	}
	pthread_mutex_unlock(&m->hosts_lock);
	return slot ? slot : &m->hosts[METRICS_MAX_HOSTS];
}

void metrics_http_request(struct metrics *m, const char *host, long status)
{
	if (!m)
		return;
	atomic_fetch_add_explicit(&host_slot(m, host, true)->requests[status_class(status)], 1,
	                          memory_order_relaxed);
}

uint64_t metrics_value(struct metrics *m, enum metrics_counter counter)
{
	return m && counter < METRICS_COUNTER_COUNT ? atomic_load(&m->counters[counter]) : 0;
}

uint64_t metrics_http_requests(struct metrics *m, const char *host, long status)
{
	struct host_counts *slot = m ? host_slot(m, host, false) : NULL;

	return slot ? atomic_load(&slot->requests[status_class(status)]) : 0;
}

uint64_t metrics_observations(struct metrics *m, enum metrics_histogram histogram)
{
	uint64_t count = 0;

	if (!m || histogram >= METRICS_HISTOGRAM_COUNT)
		return 0;
	for (size_t b = 0; b <= METRICS_BUCKET_COUNT; b++)
		count += atomic_load(&m->histograms[histogram].buckets[b]);
	return count;
}

void metrics_escape_label(const char *value, char *out, size_t out_size)
{
	size_t n = 0;

	if (out_size == 0)
		return;
	for (; *value; value++) {
		const char *esc = *value == '\\'   ? "\\\\"
		                  : *value == '"'  ? "\\\""
		                  : *value == '\n' ? "\\n"
		                                   : NULL;
		size_t len = esc ? 2 : 1;

		if (n + len >= out_size)
			break;
		if (esc)
			memcpy(out + n, esc, 2);
		else
			out[n] = *value;
		n += len;
	}
	out[n] = '\0';
}

static void render_header(FILE *f, const char *name, const char *help, const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_requests(FILE *f, struct metrics *m)
{
	size_t n = atomic_load(&m->nhosts);
	char label[2 * sizeof(m->hosts[0].name)];

	render_header(f, "omnihub_http_requests_total",
	              "HTTP requests that ended, by host and status class (error: no response).",
	              "counter");
	for (size_t i = 0; i <= METRICS_MAX_HOSTS; i++) {
		struct host_counts *slot = &m->hosts[i];

		if (i >= n && i < METRICS_MAX_HOSTS)
			continue;
		metrics_escape_label(slot->name, label, sizeof(label));
		for (size_t c = 0; c < STATUS_CLASSES; c++) {
			uint64_t v = atomic_load(&slot->requests[c]);
			/* "other" only once it counted; a host's classes always */
			if (i == METRICS_MAX_HOSTS && v == 0)
				continue;
			fprintf(f, "omnihub_http_requests_total{host=\"%s\",class=\"%s\"} %llu\n",
			        label, status_class_names[c], (unsigned long long)v);
		}
	}
}

static void render_sources(FILE *f, struct metrics *m)
{
	render_header(f, "omnihub_files_total",
	              "Files served complete, by where most of their bytes came from.", "counter");
	for (size_t s = 0; s < METRICS_FROM_COUNT; s++)
		fprintf(f, "omnihub_files_total{source=\"%s\"} %llu\n", metrics_from_name(s),
		        (unsigned long long)atomic_load(&m->files_from[s]));
	render_header(f, "omnihub_source_bytes_total",
	              "Bytes of downloads, by where they came from.", "counter");
	for (size_t s = METRICS_FROM_HUB; s < METRICS_FROM_COUNT; s++)
		fprintf(f, "omnihub_source_bytes_total{source=\"%s\"} %llu\n",
		        metrics_from_name(s), (unsigned long long)atomic_load(&m->bytes_from[s]));
}

static void render_histogram(FILE *f, const char *name, const char *help, const struct histogram *h)
{
	uint64_t cumulative = 0;

	render_header(f, name, help, "histogram");
	for (size_t b = 0; b <= METRICS_BUCKET_COUNT; b++) {
		cumulative += atomic_load(&h->buckets[b]);
		if (b < METRICS_BUCKET_COUNT)
			fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_bounds[b],
			        (unsigned long long)cumulative);
		else
			fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			        (unsigned long long)cumulative);
	}
	/* _count is the buckets' total as read, so it always equals +Inf's. */
	fprintf(f, "%s_sum %.9g\n%s_count %llu\n", name, (double)atomic_load(&h->sum_ns) / 1e9,
	        name, (unsigned long long)cumulative);
}

static void render_gauge(FILE *f, const char *name, const char *help, double value)
{
	render_header(f, name, help, "gauge");
	fprintf(f, "%s %.17g\n", name, value);
}

int metrics_render(struct metrics *m, const struct metrics_gauges *gauges, char **out, size_t *len)
{
	struct memtext mt;
	FILE *f;

	if (memtext_open(&mt, out, len) != 0)
		return -ENOMEM;
	f = mt.f;
	if (m) {
		render_requests(f, m);
		render_sources(f, m);
		for (size_t c = 0; c < METRICS_COUNTER_COUNT; c++) {
			render_header(f, counter_info[c].name, counter_info[c].help, "counter");
			fprintf(f, "%s %llu\n", counter_info[c].name,
			        (unsigned long long)atomic_load(&m->counters[c]));
		}
		for (size_t h = 0; h < METRICS_HISTOGRAM_COUNT; h++)
			render_histogram(f, histogram_info[h].name, histogram_info[h].help,
			                 &m->histograms[h]);
	}
	if (gauges) {
		render_gauge(f, "omnihub_cache_bytes", "Bytes of complete files in the cache.",
		             (double)gauges->cache_bytes);
		render_gauge(f, "omnihub_cache_files", "Complete files in the cache.",
		             (double)gauges->cache_blobs);
		render_gauge(f, "omnihub_cache_partial_bytes",
		             "Bytes of files being downloaded, on disk.",
		             (double)gauges->partial_bytes);
		render_gauge(f, "omnihub_cache_max_bytes",
		             "The cache's size limit (cache_max); 0: no limit.",
		             (double)gauges->cache_max);
		render_gauge(f, "omnihub_transfers", "Downloads in flight.",
		             (double)gauges->transfers);
		render_gauge(f, "omnihub_transfer_waiters", "Readers waiting on downloads.",
		             (double)gauges->waiters);
		render_gauge(f, "omnihub_uptime_seconds", "Seconds since the session started.",
		             gauges->uptime_seconds);
	}
	return memtext_close(&mt, out, len);
}
