/* fetch.c: HTTP(S) transfers with libcurl: verified TLS, redirects that keep
 * credentials on their origin, shared connections, errors as errno values.
 * Not for: where a body goes or what it must hash to (download.c, hub.c). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "monotonic.h"

/* A stalled server must not hang readers forever: give up on a connection
 * after this long, and on a transfer that moves less than a byte a second
 * for LOW_SPEED_SECONDS. */
#define CONNECT_TIMEOUT_SECONDS 30L
#define LOW_SPEED_SECONDS 60L
#define MAX_REDIRECTS 10L

struct fetcher {
	CURLSH *share;      /* connections, DNS and TLS sessions, shared by all
			       transfers of the mount */
	char *cacert;       /* owned; NULL means the system's CAs only */
	char *proxy;        /* owned; NULL: libcurl reads http_proxy,
			       https_proxy, all_proxy and no_proxy itself */
	atomic_bool cancelled;
	pthread_mutex_t sleep_lock; /* with sleep_cond: fetcher_sleep's waits, */
	pthread_cond_t sleep_cond;  /* which fetcher_cancel_all ends; on
				       CLOCK_MONOTONIC */
	struct metrics *metrics; /* borrowed, NULL when none; set before any
				    request */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST]; /* one per kind of
							     shared data */
};

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *ctx)
{
	struct fetcher *fetcher = ctx;
	(void)handle;
	(void)access;
	pthread_mutex_lock(&fetcher->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *ctx)
{
	struct fetcher *fetcher = ctx;
	(void)handle;
	pthread_mutex_unlock(&fetcher->share_locks[data]);
}

int fetcher_new(struct fetcher **out, const char *cacert)
{
	struct fetcher *fetcher;
	int rc = -ENOMEM;

	*out = NULL;
	fetcher = calloc(1, sizeof(*fetcher));
	if (!fetcher)
		return -ENOMEM;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&fetcher->share_locks[i], NULL);
	atomic_init(&fetcher->cancelled, false);
	pthread_mutex_init(&fetcher->sleep_lock, NULL);
	rc = monotonic_cond_init(&fetcher->sleep_cond);
	if (rc)
		goto out;
	rc = -ENOMEM;
	if (cacert && !(fetcher->cacert = strdup(cacert)))
		goto out;
	fetcher->share = curl_share_init();
	if (!fetcher->share)
		goto out;
	curl_share_setopt(fetcher->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(fetcher->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(fetcher->share, CURLSHOPT_USERDATA, fetcher);
	curl_share_setopt(fetcher->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(fetcher->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(fetcher->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	*out = fetcher;
	fetcher = NULL;
	rc = 0;
out:
	fetcher_free(fetcher);
	return rc;
}

void fetcher_free(struct fetcher *fetcher)
{
	if (!fetcher)
		return;
	if (fetcher->share)
		curl_share_cleanup(fetcher->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&fetcher->share_locks[i]);
	pthread_cond_destroy(&fetcher->sleep_cond);
	pthread_mutex_destroy(&fetcher->sleep_lock);
	free(fetcher->cacert);
	free(fetcher->proxy);
	free(fetcher);
}

int fetcher_set_proxy(struct fetcher *fetcher, const char *proxy)
{
	char *copy = NULL;

	if (proxy && proxy[0] && !(copy = strdup(proxy)))
		return -ENOMEM;
	free(fetcher->proxy);
	fetcher->proxy = copy;
	return 0;
}

/* A no_proxy entry matches host: the name itself or a domain it is in
 * ("example.com" and ".example.com" both match "cdn.example.com"), or
 * "*" for every host; as libcurl reads it (but for CIDR ranges). */
static bool no_proxy_matches(const char *list, const char *host)
{
	size_t host_len = strlen(host);

	while (list && *list) {
		size_t len;
		const char *entry;

		list += strspn(list, ", \t");
		len = strcspn(list, ", \t");
		entry = list;
		list += len;
		if (len == 1 && entry[0] == '*')
			return true;
		if (len > 0 && entry[0] == '.') {
			entry++;
			len--;
		}
		if (len == 0 || len > host_len || strncasecmp(host + host_len - len, entry, len) != 0)
			continue;
		if (len == host_len || host[host_len - len - 1] == '.')
			return true;
	}
	return false;
}

static const char *env_either(const char *lower, const char *upper)
{
	const char *value = getenv(lower);

	if ((!value || !value[0]) && upper)
		value = getenv(upper);
	return value && value[0] ? value : NULL;
}

bool fetch_uses_proxy(const struct fetcher *fetcher, const char *url)
{
	const bool https = strncasecmp(url, "https:", 6) == 0;
	const char *proxy = fetcher->proxy, *no_proxy;
	char host[256];
	CURLU *u;
	char *h = NULL;

	/* libcurl takes http_proxy only in lower case: HTTP_PROXY may come
	 * from a CGI request's Proxy: header. */
	if (!proxy)
		proxy = https ? env_either("https_proxy", "HTTPS_PROXY") : env_either("http_proxy", NULL);
	if (!proxy)
		proxy = env_either("all_proxy", "ALL_PROXY");
	if (!proxy)
		return false;
	no_proxy = env_either("no_proxy", "NO_PROXY");
	if (!no_proxy)
		return true;
	u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		return true;
	}
	/* An IPv6 host keeps its brackets in curl's URL; no_proxy lists it bare. */
	bool cut = snprintf(host, sizeof(host), "%.*s",
			    (int)strcspn(h[0] == '[' ? h + 1 : h, "]"),
			    h[0] == '[' ? h + 1 : h) >= (int)sizeof(host);
	curl_free(h);
	curl_url_cleanup(u);
	return cut || !no_proxy_matches(no_proxy, host); /* no host name is that long */
}

void fetcher_set_metrics(struct fetcher *fetcher, struct metrics *metrics)
{
	fetcher->metrics = metrics;
}

void fetcher_cancel_all(struct fetcher *fetcher)
{
	pthread_mutex_lock(&fetcher->sleep_lock);
	atomic_store(&fetcher->cancelled, true);
	pthread_cond_broadcast(&fetcher->sleep_cond);
	pthread_mutex_unlock(&fetcher->sleep_lock);
}

int fetcher_sleep(struct fetcher *fetcher, double seconds)
{
	struct timespec until;
	int rc = 0;

	monotonic_deadline(&until, seconds);
	pthread_mutex_lock(&fetcher->sleep_lock);
	while (!atomic_load(&fetcher->cancelled) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&fetcher->sleep_cond, &fetcher->sleep_lock, &until);
	rc = atomic_load(&fetcher->cancelled) ? -EINTR : 0;
	pthread_mutex_unlock(&fetcher->sleep_lock);
	return rc;
}

/* Copies a header's value without its line ending into out. */
static void header_value(const char *line, size_t len, size_t name_len, char *out, size_t out_size)
{
	const char *value = line + name_len;
	size_t n = len - name_len;

	while (n > 0 && (*value == ' ' || *value == '\t')) {
		value++;
		n--;
	}
	while (n > 0 && (value[n - 1] == '\r' || value[n - 1] == '\n' || value[n - 1] == ' '))
		n--;
	if (n >= out_size)
		n = out_size - 1;
	for (size_t i = 0; i < n; i++) /* a header must not forge log lines */
		out[i] = (unsigned char)value[i] < 0x20 ? '?' : value[i];
	out[n] = '\0';
}

void fetch_url_for_log(const char *url, char *out, size_t out_size)
{
	const char *scheme_end = strstr(url, "://");
	size_t n = 0;

	if (out_size == 0)
		return;
	if (scheme_end) {
		const char *host = scheme_end + 3;
		size_t authority = strcspn(host, "/?#");
		const char *at = memchr(host, '@', authority);

		n = (size_t)(host - url);
		if (n >= out_size)
			n = out_size - 1;
		memcpy(out, url, n);
		url = at ? at + 1 : host; /* user:password@ is a credential */
	}
	for (; *url && !strchr("?#", *url) && n + 1 < out_size; url++)
		out[n++] = (unsigned char)*url < 0x20 ? '?' : *url;
	out[n] = '\0';
}

/* out as snprintf makes it; empty, and -ENAMETOOLONG, when it does not
 * fit: a URL cut short would name another. */
__attribute__((format(printf, 3, 4))) static int format_whole(char *out, size_t out_size,
							       const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, out_size, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < out_size)
		return 0;
	if (out_size)
		out[0] = '\0';
	return -ENAMETOOLONG;
}

int fetch_url_redact(const char *url, const char *mask, char *out, size_t out_size)
{
	CURLU *u = curl_url();
	char *text = NULL, *user = NULL;
	int rc = -EINVAL;

	if (out_size)
		out[0] = '\0';
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		fetch_url_for_log(url, out, out_size); /* not a URL curl reads: the safe form */
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	if (curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_USER, user && mask ? mask : NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &text, 0) != CURLUE_OK)
		goto out;
	rc = format_whole(out, out_size, "%s", text);
out:
	curl_free(user);
	curl_free(text);
	curl_url_cleanup(u);
	return rc;
}

static bool is_tls_trust_error(CURLcode cc)
{
	return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	       cc == CURLE_SSL_ISSUER_ERROR;
}

/* What every request of ours has: TLS verified, HTTP(S) only, redirects that
 * never leave HTTPS, shared DNS and TLS sessions, bounded connects. */
static void setup_common(struct fetcher *fetcher, CURL *curl, const char *url, char *errbuf)
{
	const bool https = strncasecmp(url, "https:", 6) == 0;

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_SHARE, fetcher->share);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we are multi-threaded */
	curl_easy_setopt(curl, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Model hosts redirect to CDNs; an HTTPS start never drops to HTTP.
	 * curl keeps Authorization and cookies on the first origin. */
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (fetcher->cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, fetcher->cacert);
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SECONDS);
	curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, FETCH_RECEIVE_BUFFER_BYTES);
	/* -o proxy: as https_proxy and http_proxy would be; no_proxy still
	 * holds. The proxy's own certificate is checked like a server's. */
	if (fetcher->proxy)
		curl_easy_setopt(curl, CURLOPT_PROXY, fetcher->proxy);
}

struct buffer_sink {
	struct fetch_buffer *buf;
	size_t cap;
	size_t max_bytes;
};

static int buffer_write(void *ctx, const void *data, size_t len)
{
	struct buffer_sink *sink = ctx;
	struct fetch_buffer *buf = sink->buf;

	if (len > sink->max_bytes - buf->len)
		return -EFBIG;
	if (buf->len + len + 1 > sink->cap) {
		size_t cap = sink->cap ? sink->cap : 64 * 1024;
		char *grown;

		while (cap < buf->len + len + 1)
			cap *= 2;
		grown = realloc(buf->data, cap);
		if (!grown)
			return -ENOMEM;
		buf->data = grown;
		sink->cap = cap;
	}
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int fetch_url_join(const char *base, const char *relpath, char **out)
{
	size_t base_len = strlen(base);
	size_t cap = base_len + 2 + 3 * strlen(relpath) + 1;
	const char *segment = relpath;
	char *url;
	size_t n;

	*out = NULL;
	url = malloc(cap);
	if (!url)
		return -ENOMEM;
	memcpy(url, base, base_len);
	n = base_len;
	if (n == 0 || url[n - 1] != '/')
		url[n++] = '/';
	for (;;) {
		size_t seg_len = strcspn(segment, "/");
		char *escaped = curl_easy_escape(NULL, segment, (int)seg_len);

		if (!escaped) {
			free(url);
			return -ENOMEM;
		}
		/* Escaping at most triples a segment: cap holds it. */
		n += (size_t)snprintf(url + n, cap - n, "%s", escaped);
		curl_free(escaped);
		if (segment[seg_len] != '/')
			break;
		url[n++] = '/';
		segment += seg_len + 1;
	}
	url[n] = '\0';
	*out = url;
	return 0;
}

/* ---- requests described in full, run many at once ---- */

struct fetch_multi {
	struct fetcher *fetcher;
	CURLM *multi;
	struct fetch_call *calls; /* in flight; owned */
};

/* One request in flight; owned by the multi from add until done. */
struct fetch_call {
	struct fetch_call *prev, *next; /* in multi->calls */
	CURL *curl;
	struct fetcher *fetcher;
	struct fetch_response *resp;
	fetch_write_fn write;
	void *ctx;
	struct curl_slist *headers;
	int write_error;
	bool https;
	char host[128]; /* the request's host as metrics label it */
	char errbuf[CURL_ERROR_SIZE];
};

int fetch_multi_new(struct fetcher *fetcher, struct fetch_multi **out)
{
	struct fetch_multi *multi = calloc(1, sizeof(*multi));

	*out = NULL;
	if (!multi)
		return -ENOMEM;
	multi->fetcher = fetcher;
	multi->multi = curl_multi_init();
	if (!multi->multi) {
		free(multi);
		return -ENOMEM;
	}
	/* Each piece on a connection of its own: CDNs limit the rate per
	 * connection, so multiplexing pieces on one HTTP/2 connection would
	 * share one connection's rate. */
	curl_multi_setopt(multi->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	*out = multi;
	return 0;
}

static void call_free(struct fetch_multi *multi, struct fetch_call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		multi->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	curl_multi_remove_handle(multi->multi, call->curl);
	curl_easy_cleanup(call->curl);
	curl_slist_free_all(call->headers);
	free(call);
}

void fetch_multi_free(struct fetch_multi *multi)
{
	if (!multi)
		return;
	while (multi->calls)
		call_free(multi, multi->calls);
	curl_multi_cleanup(multi->multi);
	free(multi);
}

/* Parsed by curl's own URL parser, so the origin compared is the one curl
 * connects to, whatever odd spelling the URL has. */
int fetch_url_origin(const char *url, char *out, size_t out_size)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	CURLU *parsed = curl_url();
	int rc = -EINVAL;

	if (out_size)
		out[0] = '\0';
	if (!parsed)
		return -ENOMEM;
	if (curl_url_set(parsed, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(parsed, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(parsed, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	if ((strcasecmp(scheme, "https") != 0 && strcasecmp(scheme, "http") != 0) || !host[0])
		goto out;
	for (char *p = scheme; *p; p++)
		*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
	for (char *p = host; *p; p++)
		*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
	rc = format_whole(out, out_size, "%s://%s:%s", scheme, host, port);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(parsed);
	return rc;
}

static bool header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0;
}

/* Digits only: no sign, no space, no "0x" (strtoull takes all three, and
 * wraps "-1" to 2^64-1). */
static int parse_digits(const char *text, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t value = 0;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned digit = (unsigned)(text[i] - '0');
		if (digit > 9)
			return -EINVAL;
		if (value > (max - digit) / 10)
			return -ERANGE;
		value = value * 10 + digit;
	}
	*out = value;
	return 0;
}

int fetch_parse_u64(const char *text, uint64_t max, uint64_t *out)
{
	if (max > FETCH_NUMBER_MAX)
		max = FETCH_NUMBER_MAX;
	return parse_digits(text, strlen(text), max, out);
}

int fetch_parse_content_range(const char *value, uint64_t *start, uint64_t *end,
			      uint64_t *total)
{
	const char *dash, *slash;
	int rc;

	if (strncasecmp(value, "bytes ", 6) != 0)
		return -EINVAL;
	value += 6;
	dash = strchr(value, '-');
	slash = dash ? strchr(dash, '/') : NULL;
	if (!slash)
		return -EINVAL;
	rc = parse_digits(value, (size_t)(dash - value), FETCH_NUMBER_MAX, start);
	if (rc == 0)
		rc = parse_digits(dash + 1, (size_t)(slash - dash - 1), FETCH_NUMBER_MAX, end);
	if (rc == 0)
		rc = parse_digits(slash + 1, strlen(slash + 1), FETCH_NUMBER_MAX, total);
	if (rc == 0 && !(*start <= *end && *end < *total))
		rc = -EINVAL;
	return rc;
}

int fetch_parse_retry_after(const char *value, long *seconds)
{
	uint64_t n;
	int rc = parse_digits(value, strlen(value), FETCH_RETRY_AFTER_MAX, &n);

	if (rc == 0)
		*seconds = (long)n;
	return rc;
}

/* Content-Range: bytes START-END/TOTAL; an absurd one is no Content-Range
 * (a range check then refuses the response). */
static void parse_content_range(const char *value, struct fetch_response *resp)
{
	uint64_t start, end, total;

	if (fetch_parse_content_range(value, &start, &end, &total) == 0) {
		resp->has_content_range = true;
		resp->range_start = start;
		resp->range_end = end;
		resp->range_total = total;
	} else if (strncasecmp(value, "bytes */", 8) != 0) { /* a 416's is not absurd */
		log_warn("%s: refused the header Content-Range: %s", resp->url_for_log, value);
	}
}

static size_t call_on_header(char *line, size_t size, size_t nmemb, void *ctx)
{
	struct fetch_call *call = ctx;
	struct fetch_response *resp = call->resp;
	size_t len = size * nmemb;
	char value[512];

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect): forget the last one's. */
		const char *sp = memchr(line, ' ', len);
		resp->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		resp->etag[0] = resp->error_code[0] = resp->error_message[0] = '\0';
		resp->link_next[0] = resp->ratelimit[0] = '\0';
		resp->link_too_long = false;
		resp->repo_commit[0] = resp->linked_etag[0] = '\0';
		resp->has_content_range = false;
		resp->has_length = resp->encoded = false;
		resp->retry_after = -1;
	} else if (header_is(line, len, "etag:")) {
		header_value(line, len, 5, resp->etag, sizeof(resp->etag));
	} else if (header_is(line, len, "content-range:")) {
		header_value(line, len, 14, value, sizeof(value));
		parse_content_range(value, resp);
	} else if (header_is(line, len, "content-length:")) {
		header_value(line, len, 15, value, sizeof(value));
		resp->has_length = !resp->encoded &&
				   fetch_parse_u64(value, FETCH_NUMBER_MAX, &resp->length) == 0;
	} else if (header_is(line, len, "content-encoding:")) {
		header_value(line, len, 17, value, sizeof(value));
		if (strcasecmp(value, "identity") != 0) {
			resp->encoded = true; /* Content-Length is then the wire's */
			resp->has_length = false;
		}
	} else if (header_is(line, len, "retry-after:")) {
		/* Seconds only; an HTTP date is rare and gets the default wait, and
		 * so does an absurd number (with a log line). */
		long seconds;
		header_value(line, len, 12, value, sizeof(value));
		if (fetch_parse_retry_after(value, &seconds) == 0)
			resp->retry_after = seconds;
		else if (value[0] >= '0' && value[0] <= '9')
			log_warn("%s: refused the header Retry-After: %s (over %ld s)",
				 resp->url_for_log, value, (long)FETCH_RETRY_AFTER_MAX);
	} else if (header_is(line, len, "link:")) {
		char link[2 * sizeof(resp->link_next)];
		/* A cut Link header would end a listing early, or name another
		 * page: the listing fails instead (link_too_long). */
		if (len - 5 >= sizeof(link) ||
		    (header_value(line, len, 5, link, sizeof(link)),
		     fetch_parse_link_next(link, resp->link_next, sizeof(resp->link_next)) != 0))
			resp->link_too_long = true;
	} else if (header_is(line, len, "x-error-code:")) {
		header_value(line, len, 13, resp->error_code, sizeof(resp->error_code));
	} else if (header_is(line, len, "x-error-message:")) {
		header_value(line, len, 16, resp->error_message, sizeof(resp->error_message));
	} else if (header_is(line, len, "ratelimit:")) {
		header_value(line, len, 10, resp->ratelimit, sizeof(resp->ratelimit));
	} else if (header_is(line, len, "x-repo-commit:")) {
		header_value(line, len, 14, resp->repo_commit, sizeof(resp->repo_commit));
	} else if (header_is(line, len, "x-linked-etag:")) {
		header_value(line, len, 14, resp->linked_etag, sizeof(resp->linked_etag));
	} else if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		/* End of this response's headers: record who answered. */
		const char *effective = NULL;
		if (curl_easy_getinfo(call->curl, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK &&
		    effective) {
			fetch_url_for_log(effective, resp->url_for_log, sizeof(resp->url_for_log));
			/* A cut signed URL must never be asked again: none at all. */
			if (snprintf(resp->final_url, sizeof(resp->final_url), "%s", effective) >=
			    (int)sizeof(resp->final_url)) {
				resp->final_url[0] = '\0';
				log_warn("%s: the URL that answered is over %zu bytes: not kept",
					 resp->url_for_log, sizeof(resp->final_url) - 1);
			}
			resp->via_proxy = fetch_uses_proxy(call->fetcher, effective);
		}
	}
	return len;
}

static size_t call_on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct fetch_call *call = ctx;
	size_t len = size * nmemb;
	int rc;

	metrics_add(call->fetcher->metrics, METRICS_HTTP_BYTES, len);
	if (call->resp->status >= 300)
		return len; /* an error page: not content */
	rc = call->write(call->ctx, data, len);
	if (rc) {
		call->write_error = rc;
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

static int call_on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			    curl_off_t ulnow)
{
	struct fetch_call *call = ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&call->fetcher->cancelled) ? 1 : 0;
}

/* A credential rides only on the origin it is for: we add it only when the
 * request starts there, and curl (7.83 and later: CVE-2022-27776) drops a
 * custom Authorization header on a redirect to another host, port or
 * scheme. Comparing origins, not host names, keeps it from a CDN on another
 * port of the same host. */
static int add_auth_header(struct fetch_call *call, const struct fetch_request *req)
{
	char origin[320], want[320];
	struct curl_slist *grown;

	if (!req->auth_header || !req->auth_origin)
		return 0;
	if (fetch_url_origin(req->url, origin, sizeof(origin)) != 0 ||
	    fetch_url_origin(req->auth_origin, want, sizeof(want)) != 0 ||
	    strcmp(origin, want) != 0)
		return 0;
	grown = curl_slist_append(call->headers, req->auth_header);
	if (!grown)
		return -ENOMEM;
	call->headers = grown;
	return 0;
}

/* "host" or "host:port" of url (the port when not the scheme's own), the
 * label metrics count its requests under. */
static void metrics_host(const char *url, char *out, size_t out_size)
{
	char origin[320];
	const char *host, *port;
	size_t len;

	if (fetch_url_origin(url, origin, sizeof(origin)) != 0) {
		snprintf(out, out_size, "unknown");
		return;
	}
	host = strstr(origin, "://") + 3;
	port = strrchr(host, ':');
	len = strlen(host);
	if ((strncmp(origin, "https:", 6) == 0 && strcmp(port, ":443") == 0) ||
	    (strncmp(origin, "http:", 5) == 0 && strcmp(port, ":80") == 0))
		len = (size_t)(port - host);
	snprintf(out, out_size, "%.*s", (int)len, host);
}

/* One call ended: counted by host and status class, with its times. */
static void count_call(struct fetch_call *call)
{
	struct metrics *metrics = call->fetcher->metrics;
	curl_off_t first_byte = 0, total = 0;
	long status = 0;

	if (!metrics)
		return;
	curl_easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &status);
	metrics_http_request(metrics, call->host, status);
	if (status == 0)
		return; /* no answer: no time to first byte */
	curl_easy_getinfo(call->curl, CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
	curl_easy_getinfo(call->curl, CURLINFO_TOTAL_TIME_T, &total);
	metrics_observe(metrics, METRICS_HTTP_FIRST_BYTE, (double)first_byte / 1e6);
	metrics_observe(metrics, METRICS_HTTP_DURATION, (double)total / 1e6);
}

/* fetch_multi_add; compressed asks for a content encoding, for documents
 * we parse (a blob's digest is of the bytes as stored). */
static int call_start(struct fetch_multi *multi, const struct fetch_request *req, bool compressed,
		      fetch_write_fn write, void *ctx, struct fetch_response *resp,
		      struct fetch_call **out)
{
	struct fetch_call *call;
	char line[512];
	int rc = -ENOMEM;

	*out = NULL;
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	fetch_url_for_log(req->url, resp->url_for_log, sizeof(resp->url_for_log));
	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	call->fetcher = multi->fetcher;
	call->resp = resp;
	call->write = write;
	call->ctx = ctx;
	call->https = strncasecmp(req->url, "https:", 6) == 0;
	if (multi->fetcher->metrics)
		metrics_host(req->url, call->host, sizeof(call->host));
	call->curl = curl_easy_init();
	if (!call->curl)
		goto fail;
	setup_common(multi->fetcher, call->curl, req->url, call->errbuf);
	if (req->has_range) {
		snprintf(line, sizeof(line), "%llu-%llu", (unsigned long long)req->range_start,
			 (unsigned long long)req->range_end);
		curl_easy_setopt(call->curl, CURLOPT_RANGE, line);
	}
	if (req->if_range && req->if_range[0]) {
		struct curl_slist *grown;
		if (snprintf(line, sizeof(line), "If-Range: %s", req->if_range) >=
		    (int)sizeof(line)) {
			rc = -ENAMETOOLONG;
			goto fail;
		}
		grown = curl_slist_append(call->headers, line);
		if (!grown)
			goto fail;
		call->headers = grown;
	}
	if (add_auth_header(call, req) != 0)
		goto fail;
	if (compressed)
		curl_easy_setopt(call->curl, CURLOPT_ACCEPT_ENCODING, "");
	if (call->headers)
		curl_easy_setopt(call->curl, CURLOPT_HTTPHEADER, call->headers);
	curl_easy_setopt(call->curl, CURLOPT_LOW_SPEED_LIMIT, FETCH_STALL_BYTES_PER_SECOND);
	curl_easy_setopt(call->curl, CURLOPT_LOW_SPEED_TIME,
			 req->stall_seconds > 0 ? req->stall_seconds : LOW_SPEED_SECONDS);
	curl_easy_setopt(call->curl, CURLOPT_WRITEFUNCTION, call_on_body);
	curl_easy_setopt(call->curl, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(call->curl, CURLOPT_HEADERFUNCTION, call_on_header);
	curl_easy_setopt(call->curl, CURLOPT_HEADERDATA, call);
	curl_easy_setopt(call->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(call->curl, CURLOPT_XFERINFOFUNCTION, call_on_progress);
	curl_easy_setopt(call->curl, CURLOPT_XFERINFODATA, call);
	curl_easy_setopt(call->curl, CURLOPT_PRIVATE, call);
	if (curl_multi_add_handle(multi->multi, call->curl) != CURLM_OK) {
		rc = -EIO;
		goto fail;
	}
	call->next = multi->calls;
	if (multi->calls)
		multi->calls->prev = call;
	multi->calls = call;
	*out = call;
	return 0;
fail:
	if (call->curl)
		curl_easy_cleanup(call->curl);
	curl_slist_free_all(call->headers);
	free(call);
	return rc;
}

int fetch_multi_add(struct fetch_multi *multi, const struct fetch_request *req,
		    fetch_write_fn write, void *ctx, struct fetch_response *resp,
		    struct fetch_call **out)
{
	return call_start(multi, req, false, write, ctx, resp, out);
}

static bool is_connection_error(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* How a finished call ended, as an errno and a sentence in resp->error. */
static int call_outcome(struct fetch_call *call, CURLcode cc)
{
	struct fetch_response *resp = call->resp;
	const char *detail = call->errbuf[0] ? call->errbuf : curl_easy_strerror(cc);
	long status = 0;

	curl_easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status)
		resp->status = status;
	if (cc == CURLE_WRITE_ERROR && call->write_error) {
		if (!resp->error[0]) /* the writer may have said why itself */
			snprintf(resp->error, sizeof(resp->error), "stopped while receiving: %s",
				 strerror(-call->write_error));
		return call->write_error;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(resp->error, sizeof(resp->error), "cancelled: unmounting");
		return -EINTR; /* what a waiting reader is told at an unmount */
	}
	if (cc == CURLE_OK && resp->status >= 300) {
		snprintf(resp->error, sizeof(resp->error), "HTTP %ld%s%s%s%s", resp->status,
			 resp->error_code[0] ? " " : "", resp->error_code,
			 resp->error_message[0] ? ": " : "", resp->error_message);
		if (resp->status == 429 || resp->status >= 500)
			return -EAGAIN;
		if (resp->status == 404 || resp->status == 410)
			return -ENOENT;
		if (resp->status == 401 || resp->status == 403)
			return -EACCES;
		if (resp->status == 416)
			return -ERANGE;
		return -EIO;
	}
	if (cc == CURLE_OK)
		return 0;
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(resp->error, sizeof(resp->error), "stalled or timed out: %s", detail);
		return -ETIMEDOUT;
	}
	if (cc == CURLE_UNSUPPORTED_PROTOCOL && call->https) {
		snprintf(resp->error, sizeof(resp->error),
			 "refused a redirect from HTTPS to a plain HTTP URL");
		return -EIO;
	}
	if (is_tls_trust_error(cc)) {
		snprintf(resp->error, sizeof(resp->error),
			 "TLS certificate not trusted: %s (name the CA with -o cacert=FILE)", detail);
		return -EIO;
	}
	snprintf(resp->error, sizeof(resp->error), "%s", detail);
	return is_connection_error(cc) ? -ECONNRESET : -EIO;
}

/* Calls done for every call that ended; returns how many did. */
static unsigned drain_done(struct fetch_multi *multi, fetch_done_fn done, void *done_ctx)
{
	unsigned ended = 0;
	int queued;
	CURLMsg *msg;

	while ((msg = curl_multi_info_read(multi->multi, &queued)) != NULL) {
		struct fetch_call *call = NULL;
		int rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
		rc = call_outcome(call, msg->data.result);
		count_call(call);
		void *ctx = call->ctx;
		call_free(multi, call); /* msg is invalid from here */
		done(done_ctx, ctx, rc);
		ended++;
	}
	return ended;
}

int fetch_multi_run(struct fetch_multi *multi, int timeout_ms, fetch_done_fn done,
		    void *done_ctx)
{
	int running = 0;

	curl_multi_perform(multi->multi, &running);
	/* A call that ended in that perform is handled now: the poll would
	 * wait its whole timeout, since nothing of it is left to wake it. */
	if (drain_done(multi, done, done_ctx) > 0)
		return running;
	curl_multi_poll(multi->multi, NULL, 0, timeout_ms, NULL);
	curl_multi_perform(multi->multi, &running);
	drain_done(multi, done, done_ctx);
	return running;
}

void fetch_multi_wakeup(struct fetch_multi *multi)
{
	curl_multi_wakeup(multi->multi);
}

void fetch_multi_remove(struct fetch_multi *multi, struct fetch_call *call)
{
	if (call)
		call_free(multi, call);
}

/* ---- one request at a time, in the caller's thread ---- */

struct run_result {
	bool done;
	int rc;
};

static void run_done(void *done_ctx, void *call_ctx, int rc)
{
	struct run_result *result = done_ctx;

	(void)call_ctx;
	result->done = true;
	result->rc = rc;
}

/* One call on a multi of its own, run to its end: the same headers, errors
 * and credential rules as the transfers' calls. Connections still come
 * from the fetcher's shared pool. */
static int request_run(struct fetcher *fetcher, const struct fetch_request *req, bool compressed,
		       fetch_write_fn write, void *ctx, struct fetch_response *resp)
{
	struct run_result result = {.done = false};
	struct fetch_multi *multi = NULL;
	struct fetch_call *call;
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	fetch_url_for_log(req->url, resp->url_for_log, sizeof(resp->url_for_log));
	if (atomic_load(&fetcher->cancelled)) {
		snprintf(resp->error, sizeof(resp->error), "cancelled: unmounting");
		return -EINTR;
	}
	rc = fetch_multi_new(fetcher, &multi);
	if (rc == 0)
		rc = call_start(multi, req, compressed, write, ctx, resp, &call);
	if (rc) {
		snprintf(resp->error, sizeof(resp->error), "cannot start a request: %s",
			 strerror(-rc));
		goto out;
	}
	while (!result.done)
		fetch_multi_run(multi, 1000, run_done, &result);
	rc = result.rc;
out:
	fetch_multi_free(multi);
	return rc;
}

/* The body comes compressed on the wire: it is parsed, never hashed. */
int fetch_request_run(struct fetcher *fetcher, const struct fetch_request *req, size_t max_bytes,
		      struct fetch_buffer *body, struct fetch_response *resp)
{
	struct buffer_sink sink = {.buf = body, .max_bytes = max_bytes};
	int rc;

	body->data = NULL;
	body->len = 0;
	rc = request_run(fetcher, req, true, buffer_write, &sink, resp);
	if (rc == -EFBIG)
		snprintf(resp->error, sizeof(resp->error), "larger than the limit of %zu bytes",
			 max_bytes);
	if (rc == 0 && !body->data)
		rc = buffer_write(&sink, "", 0); /* an empty body is still a string */
	if (rc) {
		free(body->data);
		body->data = NULL;
		body->len = 0;
	}
	return rc;
}

/* fetch_get's callers do not retry: what a transfer would retry is -EIO
 * to them, as fetch.h promises. */
static int simple_result(int rc, const struct fetch_response *resp, struct fetch_status *status)
{
	status->http_code = resp->status;
	snprintf(status->final_url, sizeof(status->final_url), "%s", resp->url_for_log);
	snprintf(status->error, sizeof(status->error), "%s", resp->error);
	if (rc == -EAGAIN || rc == -ECONNRESET || rc == -ERANGE)
		return -EIO;
	return rc;
}

int fetch_get(struct fetcher *fetcher, const char *url, fetch_write_fn write, void *ctx,
	      struct fetch_status *status)
{
	const struct fetch_request req = {.url = url};
	struct fetch_response *resp = malloc(sizeof(*resp));
	int rc;

	memset(status, 0, sizeof(*status));
	if (!resp) {
		snprintf(status->error, sizeof(status->error), "out of memory");
		return -ENOMEM;
	}
	rc = request_run(fetcher, &req, false, write, ctx, resp);
	rc = simple_result(rc, resp, status);
	free(resp);
	return rc;
}

int fetch_get_buffer(struct fetcher *fetcher, const char *url, size_t max_bytes,
		     struct fetch_buffer *out, struct fetch_status *status)
{
	const struct fetch_request req = {.url = url};
	struct fetch_response *resp = malloc(sizeof(*resp));
	int rc;

	memset(status, 0, sizeof(*status));
	out->data = NULL;
	out->len = 0;
	if (!resp) {
		snprintf(status->error, sizeof(status->error), "out of memory");
		return -ENOMEM;
	}
	rc = fetch_request_run(fetcher, &req, max_bytes, out, resp);
	rc = simple_result(rc, resp, status);
	free(resp);
	return rc;
}

int fetch_parse_link_next(const char *value, char *out, size_t out_size)
{
	const char *p = value;

	out[0] = '\0';
	/* Link: <a>; rel="prev", <b>; rel="next" -- links separated by commas,
	 * each <URL> then parameters separated by semicolons. */
	while ((p = strchr(p, '<')) != NULL) {
		const char *end = strchr(p, '>');
		const char *params, *next_link;
		if (!end)
			return 0;
		params = end + 1;
		next_link = strchr(params, '<');
		size_t params_len = next_link ? (size_t)(next_link - params) : strlen(params);
		for (const char *q = params; q < params + params_len; q++) {
			if (strncasecmp(q, "rel=", 4) != 0)
				continue;
			q += 4;
			if (*q == '"')
				q++;
			if (strncasecmp(q, "next", 4) == 0 && (q[4] == '"' || q[4] == ';' ||
								 q[4] == ',' || q[4] == ' ' ||
								 q[4] == '\0')) {
				size_t n = (size_t)(end - p - 1);
				if (n >= out_size)
					return -ENAMETOOLONG;
				memcpy(out, p + 1, n);
				out[n] = '\0';
				return 0;
			}
		}
		p = end;
	}
	return 0;
}

bool fetch_error_retryable(int rc)
{
	return rc == -EAGAIN || rc == -ECONNRESET || rc == -ETIMEDOUT;
}
