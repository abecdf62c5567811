/* fetch.c: HTTP(S) transfers with libcurl: verified TLS, redirects that keep
 * credentials on their host, shared connections, errors as errno values.
 * Not for: where a body goes or what it must hash to (download.c, hub.c). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "fetch.h"

/* A stalled server must not hang readers forever: give up on a connection
 * after this long, and on a transfer that moves less than a byte a second
 * for LOW_SPEED_SECONDS. */
#define CONNECT_TIMEOUT_SECONDS 30L
#define LOW_SPEED_SECONDS 60L
#define MAX_REDIRECTS 10L
/* Fewer, larger writes into the cache. */
#define RECEIVE_BUFFER_BYTES (512L * 1024)

struct fetcher {
	CURLSH *share;      /* connections, DNS and TLS sessions, shared by all
			       transfers of the mount */
	char *cacert;       /* owned; NULL means the system's CAs only */
	atomic_bool cancelled;
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
	free(fetcher->cacert);
	free(fetcher);
}

void fetcher_cancel_all(struct fetcher *fetcher)
{
	atomic_store(&fetcher->cancelled, true);
}

/* The state of one transfer, seen by curl's callbacks. */
struct transfer {
	struct fetcher *fetcher;
	fetch_write_fn write;
	void *write_ctx;
	int write_error;            /* what the writer returned, if it stopped us */
	char error_code[64];        /* X-Error-Code of the last response */
	char error_message[192];    /* X-Error-Message of the last response */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct transfer *xfer = ctx;
	size_t len = size * nmemb;
	int rc = xfer->write(xfer->write_ctx, data, len);

	if (rc) {
		xfer->write_error = rc;
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
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

/* Hubs explain their errors in headers (Hugging Face: X-Error-Code and
 * X-Error-Message); keep those of the last response for the log. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ctx)
{
	static const char code_name[] = "x-error-code:";
	static const char message_name[] = "x-error-message:";
	struct transfer *xfer = ctx;
	size_t len = size * nmemb;

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		xfer->error_code[0] = '\0';
		xfer->error_message[0] = '\0';
	} else if (len > sizeof(code_name) - 1 &&
		   strncasecmp(line, code_name, sizeof(code_name) - 1) == 0) {
		header_value(line, len, sizeof(code_name) - 1, xfer->error_code,
			     sizeof(xfer->error_code));
	} else if (len > sizeof(message_name) - 1 &&
		   strncasecmp(line, message_name, sizeof(message_name) - 1) == 0) {
		header_value(line, len, sizeof(message_name) - 1, xfer->error_message,
			     sizeof(xfer->error_message));
	}
	return len;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct transfer *xfer = ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&xfer->fetcher->cancelled) ? 1 : 0;
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

static bool is_tls_trust_error(CURLcode cc)
{
	return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	       cc == CURLE_SSL_ISSUER_ERROR;
}

/* Turns curl's outcome into an errno and a sentence. */
static int outcome(CURLcode cc, long http_code, const struct transfer *xfer, const char *errbuf,
		   bool https, struct fetch_status *status)
{
	const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_WRITE_ERROR:
		if (xfer->write_error) {
			snprintf(status->error, sizeof(status->error), "stopped while receiving: %s",
				 strerror(-xfer->write_error));
			return xfer->write_error;
		}
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		snprintf(status->error, sizeof(status->error), "cancelled: unmounting");
		return -ECANCELED;
	case CURLE_HTTP_RETURNED_ERROR:
		snprintf(status->error, sizeof(status->error), "HTTP %ld%s%s%s%s", http_code,
			 xfer->error_code[0] ? " " : "", xfer->error_code,
			 xfer->error_message[0] ? ": " : "", xfer->error_message);
		if (http_code == 404 || http_code == 410)
			return -ENOENT;
		if (http_code == 401 || http_code == 403)
			return -EACCES;
		return -EIO;
	case CURLE_UNSUPPORTED_PROTOCOL:
		if (https) {
			snprintf(status->error, sizeof(status->error),
				 "refused a redirect from HTTPS to a plain HTTP URL");
			return -EIO;
		}
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(status->error, sizeof(status->error), "timed out: %s", detail);
		return -ETIMEDOUT;
	default:
		if (is_tls_trust_error(cc)) {
			snprintf(status->error, sizeof(status->error),
				 "TLS certificate not trusted: %s (name the CA with -o cacert=FILE)",
				 detail);
			return -EIO;
		}
		break;
	}
	snprintf(status->error, sizeof(status->error), "%s", detail);
	return -EIO;
}

static int perform(struct fetcher *fetcher, const char *url, bool compressed,
		   fetch_write_fn write, void *ctx, struct fetch_status *status)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct transfer xfer = {
		.fetcher = fetcher,
		.write = write,
		.write_ctx = ctx,
	};
	const bool https = strncasecmp(url, "https:", 6) == 0;
	const char *final_url = NULL;
	CURL *curl = NULL;
	CURLcode cc;
	int rc;

	memset(status, 0, sizeof(*status));
	fetch_url_for_log(url, status->final_url, sizeof(status->final_url));
	if (atomic_load(&fetcher->cancelled)) {
		snprintf(status->error, sizeof(status->error), "cancelled: unmounting");
		return -ECANCELED;
	}
	curl = curl_easy_init();
	if (!curl) {
		snprintf(status->error, sizeof(status->error), "cannot create a curl handle");
		return -ENOMEM;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_SHARE, fetcher->share);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we are multi-threaded */
	curl_easy_setopt(curl, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Model hosts redirect to CDNs; an HTTPS start never drops to HTTP.
	 * curl keeps Authorization and cookies on the first host. */
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (fetcher->cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, fetcher->cacert);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SECONDS);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECONDS);
	curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, RECEIVE_BUFFER_BYTES);
	/* Digests are of the stored bytes: ask for content encoding only for
	 * documents we parse. */
	if (compressed)
		curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &xfer);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &xfer);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &xfer);

	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status->http_code);
	if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &final_url) == CURLE_OK && final_url)
		fetch_url_for_log(final_url, status->final_url, sizeof(status->final_url));
	rc = outcome(cc, status->http_code, &xfer, errbuf, https, status);
	curl_easy_cleanup(curl);
	return rc;
}

int fetch_get(struct fetcher *fetcher, const char *url, fetch_write_fn write, void *ctx,
	      struct fetch_status *status)
{
	return perform(fetcher, url, false, write, ctx, status);
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

int fetch_get_buffer(struct fetcher *fetcher, const char *url, size_t max_bytes,
		     struct fetch_buffer *out, struct fetch_status *status)
{
	struct buffer_sink sink = { .buf = out, .max_bytes = max_bytes };
	int rc;

	out->data = NULL;
	out->len = 0;
	rc = perform(fetcher, url, true, buffer_write, &sink, status);
	if (rc == -EFBIG)
		snprintf(status->error, sizeof(status->error), "larger than the limit of %zu bytes",
			 max_bytes);
	if (rc == 0 && !out->data)
		rc = buffer_write(&sink, "", 0); /* an empty body is still a string */
	if (rc) {
		free(out->data);
		out->data = NULL;
		out->len = 0;
	}
	return rc;
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
