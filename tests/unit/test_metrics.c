/* test_metrics.c: unit tests of metrics.c: counters, requests by host and
 * status class, histogram buckets, label escaping, and the Prometheus text.
 * Not for: the counting in the modules (test_status.py, through a mount). */
#include "build_config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

/* The value of the sample line that starts with prefix (then a space). */
static double sample(const char *text, const char *prefix, int *found)
{
	size_t n = strlen(prefix);

	*found = 0;
	for (const char *line = text; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, prefix, n) == 0 && line[n] == ' ') {
			*found = 1;
			return strtod(line + n + 1, NULL);
		}
	}
	return -1;
}

static bool has(const char *text, const char *prefix)
{
	int found;

	sample(text, prefix, &found);
	return found;
}

/* Every line a comment (# HELP / # TYPE) or "name{labels} value", with the
 * metric's HELP and TYPE before its first sample. */
static bool well_formed(const char *text, char *why, size_t why_size)
{
	char *copy = strdup(text), *save = NULL;
	char typed[64][128];
	size_t ntyped = 0;
	bool ok = copy != NULL;

	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line && ok;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[128], *end;
		size_t len;

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			if (sscanf(line + 7, "%127s", typed[ntyped % 64]) == 1)
				ntyped++;
			continue;
		}
		len = strspn(line,
		             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789:");
		if (len == 0 || len >= sizeof(name)) {
			snprintf(why, why_size, "bad name: %s", line);
			ok = false;
			break;
		}
		memcpy(name, line, len);
		name[len] = '\0';
		end = line + len;
		if (*end == '{') {
			end = strchr(end, '}');
			if (!end) {
				snprintf(why, why_size, "unclosed labels: %s", line);
				ok = false;
				break;
			}
			end++;
		}
		if (*end != ' ' || (strtod(end + 1, &end), *end != '\0')) {
			snprintf(why, why_size, "bad value: %s", line);
			ok = false;
			break;
		}
		bool declared = false;
		for (size_t i = 0; i < ntyped && i < 64; i++) {
			size_t tl = strlen(typed[i]);
			if (strncmp(name, typed[i], tl) == 0 &&
			    (name[tl] == '\0' || strcmp(name + tl, "_bucket") == 0 ||
			     strcmp(name + tl, "_sum") == 0 || strcmp(name + tl, "_count") == 0))
				declared = true;
		}
		if (!declared) {
			snprintf(why, why_size, "no TYPE before %s", name);
			ok = false;
		}
	}
	free(copy);
	return ok;
}

static void *count_many(void *arg)
{
	struct metrics *m = arg;

	for (int i = 0; i < 10000; i++) {
		metrics_add(m, METRICS_HTTP_BYTES, 3);
		metrics_http_request(m, i % 2 ? "a.example" : "b.example", 200);
		metrics_observe(m, METRICS_HTTP_DURATION, 0.002);
	}
	return NULL;
}

int main(void)
{
	struct metrics *m = NULL;
	char *text = NULL, why[256] = "", label[64];
	size_t len = 0;
	int found;
	bool ok;

	tap_ok(metrics_new(&m) == 0 && m, "metrics made");

	/* A NULL metrics counts nothing and does not crash. */
	metrics_add(NULL, METRICS_RETRIES, 1);
	metrics_observe(NULL, METRICS_OPEN_WAIT, 1);
	metrics_http_request(NULL, "x", 200);
	tap_ok(metrics_value(NULL, METRICS_RETRIES) == 0, "a NULL metrics is a no-op");

	metrics_add(m, METRICS_RETRIES, 1);
	metrics_add(m, METRICS_RETRIES, 2);
	metrics_add(m, METRICS_CACHE_HITS, 1);
	tap_ok(metrics_value(m, METRICS_RETRIES) == 3 &&
	           metrics_value(m, METRICS_CACHE_HITS) == 1 &&
	           metrics_value(m, METRICS_CACHE_MISSES) == 0,
	       "counters add up, each on its own");

	metrics_http_request(m, "hub.example", 200);
	metrics_http_request(m, "hub.example", 206);
	metrics_http_request(m, "hub.example", 404);
	metrics_http_request(m, "hub.example", 503);
	metrics_http_request(m, "cdn.example:8443", 0);
	tap_ok(metrics_http_requests(m, "hub.example", 200) == 2 &&
	           metrics_http_requests(m, "hub.example", 404) == 1 &&
	           metrics_http_requests(m, "hub.example", 500) == 1 &&
	           metrics_http_requests(m, "hub.example", 300) == 0 &&
	           metrics_http_requests(m, "cdn.example:8443", 0) == 1 &&
	           metrics_http_requests(m, "nowhere", 200) == 0,
	       "requests are counted by host and status class (0: error)");

	/* Buckets: 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 ... 300, +Inf. An
	 * observation on a bound falls in that bound's bucket (le). */
	metrics_observe(m, METRICS_OPEN_WAIT, 0.001);
	metrics_observe(m, METRICS_OPEN_WAIT, 0.1);
	metrics_observe(m, METRICS_OPEN_WAIT, 0.3);
	metrics_observe(m, METRICS_OPEN_WAIT, 2.0);
	metrics_observe(m, METRICS_OPEN_WAIT, 1000.0);
	metrics_observe(m, METRICS_OPEN_WAIT, -1.0); /* a clock stepping back: 0 */
	tap_ok(metrics_observations(m, METRICS_OPEN_WAIT) == 6, "every observation is counted");

	tap_ok(metrics_render(m, NULL, &text, &len) == 0 && text && len == strlen(text),
	       "rendered");
	tap_ok(well_formed(text, why, sizeof(why)), "every line is a comment or a sample %s", why);
	tap_ok(strstr(text, "# TYPE omnihub_open_wait_seconds histogram\n") &&
	           strstr(text, "# HELP omnihub_open_wait_seconds ") &&
	           strstr(text, "# TYPE omnihub_retries_total counter\n") &&
	           strstr(text, "# TYPE omnihub_http_requests_total counter\n"),
	       "HELP and TYPE lines");
	tap_ok(sample(text, "omnihub_retries_total", &found) == 3 && found, "a counter's sample");
	tap_ok(sample(text, "omnihub_http_requests_total{host=\"hub.example\",class=\"2xx\"}",
	              &found) == 2 &&
	           sample(text, "omnihub_http_requests_total{host=\"hub.example\",class=\"5xx\"}",
	                  &found) == 1 &&
	           sample(text,
	                  "omnihub_http_requests_total{host=\"cdn.example:8443\",class=\"error\"}",
	                  &found) == 1,
	       "requests by host and class");
	tap_ok(sample(text, "omnihub_open_wait_seconds_bucket{le=\"0.005\"}", &found) == 2 &&
	           sample(text, "omnihub_open_wait_seconds_bucket{le=\"0.1\"}", &found) == 3 &&
	           sample(text, "omnihub_open_wait_seconds_bucket{le=\"0.25\"}", &found) == 3 &&
	           sample(text, "omnihub_open_wait_seconds_bucket{le=\"0.5\"}", &found) == 4 &&
	           sample(text, "omnihub_open_wait_seconds_bucket{le=\"2.5\"}", &found) == 5 &&
	           sample(text, "omnihub_open_wait_seconds_bucket{le=\"300\"}", &found) == 5 &&
	           sample(text, "omnihub_open_wait_seconds_bucket{le=\"+Inf\"}", &found) == 6 &&
	           sample(text, "omnihub_open_wait_seconds_count", &found) == 6,
	       "buckets are cumulative, +Inf equals the count");
	double sum = sample(text, "omnihub_open_wait_seconds_sum", &found);
	tap_ok(found && sum > 1002.400 && sum < 1002.402, "the sum is in seconds (%f)", sum);
	tap_ok(sample(text, "omnihub_http_first_byte_seconds_count", &found) == 0 && found &&
	           sample(text, "omnihub_http_first_byte_seconds_bucket{le=\"+Inf\"}", &found) == 0,
	       "an empty histogram is rendered whole");
	tap_ok(!has(text, "omnihub_cache_bytes"), "no gauges unless given");
	free(text);

	struct metrics_gauges gauges = {.cache_bytes = 1234,
	                                .cache_blobs = 2,
	                                .partial_bytes = 99,
	                                .cache_max = 1 << 20,
	                                .transfers = 1,
	                                .waiters = 3,
	                                .uptime_seconds = 12.5};
	tap_ok(metrics_render(m, &gauges, &text, &len) == 0 &&
	           sample(text, "omnihub_cache_bytes", &found) == 1234 &&
	           sample(text, "omnihub_transfer_waiters", &found) == 3 &&
	           sample(text, "omnihub_uptime_seconds", &found) == 12.5 &&
	           strstr(text, "# TYPE omnihub_cache_bytes gauge\n") &&
	           well_formed(text, why, sizeof(why)),
	       "gauges %s", why);
	free(text);

	metrics_escape_label("a\"b\\c\nd", label, sizeof(label));
	tap_ok(strcmp(label, "a\\\"b\\\\c\\nd") == 0, "label values are escaped (%s)", label);
	metrics_escape_label("abc\"", label, 5);
	tap_ok(strcmp(label, "abc") == 0, "an escape that does not fit is left out whole");
	metrics_http_request(m, "we\"ird\nhost", 200);
	tap_ok(metrics_render(m, NULL, &text, &len) == 0 &&
	           strstr(text, "{host=\"we\\\"ird\\nhost\",class=\"2xx\"} 1\n") &&
	           well_formed(text, why, sizeof(why)),
	       "a host is escaped in the text");
	free(text);
	metrics_free(m);

	/* Past METRICS_MAX_HOSTS, hosts share "other". */
	metrics_new(&m);
	for (int i = 0; i < METRICS_MAX_HOSTS + 5; i++) {
		snprintf(label, sizeof(label), "h%d", i);
		metrics_http_request(m, label, 200);
	}
	tap_ok(metrics_http_requests(m, "h0", 200) == 1 &&
	           metrics_http_requests(m, "other", 200) == 5,
	       "hosts past the limit are counted as other");
	metrics_free(m);

	/* Counting from many threads loses nothing. */
	metrics_new(&m);
	pthread_t threads[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, count_many, m);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	ok = metrics_value(m, METRICS_HTTP_BYTES) == 120000 &&
	     metrics_http_requests(m, "a.example", 200) == 20000 &&
	     metrics_http_requests(m, "b.example", 200) == 20000 &&
	     metrics_observations(m, METRICS_HTTP_DURATION) == 40000;
	tap_ok(ok, "four threads counting at once lose nothing");
	metrics_free(m);
	return tap_done();
}
