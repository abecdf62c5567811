/* fetch.h: HTTP(S) transfers with libcurl: verified TLS, redirects that keep
 * credentials on their origin, shared connections, errors as errno values.
 * Not for: where a body goes or what it must hash to (download.c, hub.c). */
#ifndef OMNIHUB_FETCH_H
#define OMNIHUB_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One per mount: connection and TLS session cache, CA settings. */
struct fetcher;
struct metrics;

int fetcher_new(struct fetcher **out, const char *cacert);
/* Sends every request through this HTTP(S) proxy (-o proxy=URL; copied),
 * instead of the one http_proxy, https_proxy or all_proxy name; no_proxy
 * still holds. NULL: the environment's. Call before the first request. */
int fetcher_set_proxy(struct fetcher *fetcher, const char *proxy);
/* Whether a request for url goes through a proxy (the one set, else the
 * environment's, unless no_proxy names its host). */
bool fetch_uses_proxy(const struct fetcher *fetcher, const char *url);
/* Every transfer still running must have returned (see fetcher_cancel_all). */
void fetcher_free(struct fetcher *fetcher);
/* Counts every request that ends (by host and status class, with its time
 * to first byte and duration) and the body bytes received into metrics
 * (borrowed; NULL: none). Set before the first request. */
void fetcher_set_metrics(struct fetcher *fetcher, struct metrics *metrics);
/* Makes transfers in flight, and later ones, fail soon with -EINTR, and
 * ends every fetcher_sleep. */
void fetcher_cancel_all(struct fetcher *fetcher);
/* Waits seconds, as a caller's backoff or pacing between requests does,
 * unless fetcher_cancel_all comes first (-EINTR; at once if it came
 * before): an unmount never waits for a sleep to end. 0 or -EINTR. */
int fetcher_sleep(struct fetcher *fetcher, double seconds);

/* Receives the body of a successful response in order; returns 0, or -errno
 * to stop the transfer (fetch_get then returns that errno). */
typedef int (*fetch_write_fn)(void *ctx, const void *data, size_t len);

/* What happened, for one log line. */
struct fetch_status {
	long http_code;          /* status of the last response, 0 if none came */
	char final_url[512];     /* where the body came from, as fetch_url_for_log
				    shows it */
	char error[512];         /* why it failed, empty on success */
};

/* GET url, following redirects. Returns 0, or -ENOENT (HTTP 404/410),
 * -EACCES (401/403), -ETIMEDOUT, -EINTR (cancelled), the writer's error, or -EIO for
 * any other failure (status->error says which). */
int fetch_get(struct fetcher *fetcher, const char *url, fetch_write_fn write, void *ctx,
	      struct fetch_status *status);

/* A whole small document in memory; data is NUL-terminated and owned by the
 * caller (free()). */
struct fetch_buffer {
	char *data;
	size_t len;
};

/* fetch_get into memory, failing with -EFBIG past max_bytes. */
int fetch_get_buffer(struct fetcher *fetcher, const char *url, size_t max_bytes,
		     struct fetch_buffer *out, struct fetch_status *status);

/* The URL as a log may show it: no user:password@, no query string or
 * fragment (signed URLs carry credentials there). */
void fetch_url_for_log(const char *url, char *out, size_t out_size);

/* url without its user information (user:password@), as curl's URL
 * parser finds it: what a log line, the cache, status or metrics may hold
 * (the request itself still uses the credential). mask: written in its
 * place ("***") when there was one; NULL: dropped. -ENAMETOOLONG (out "")
 * when out is too small; -EINVAL for what curl does not parse (out then
 * holds fetch_url_for_log's form). */
int fetch_url_redact(const char *url, const char *mask, char *out, size_t out_size);

/* Numbers from the network, refused when absurd: decimal digits only (no
 * sign, space or base prefix), at most max and never over FETCH_NUMBER_MAX
 * (2^53: the largest integer a JSON double keeps exact). 0, -EINVAL (not a
 * number) or -ERANGE (too large). */
#define FETCH_NUMBER_MAX (1ull << 53)
int fetch_parse_u64(const char *text, uint64_t max, uint64_t *out);
/* "bytes START-END/TOTAL" with START <= END < TOTAL, each <= 2^53. */
int fetch_parse_content_range(const char *value, uint64_t *start, uint64_t *end,
			      uint64_t *total);
/* Retry-After in seconds (an HTTP date is not read: -EINVAL); over a day is
 * absurd (-ERANGE). */
#define FETCH_RETRY_AFTER_MAX 86400L
int fetch_parse_retry_after(const char *value, long *seconds);

/* base + relpath with each path segment percent-encoded; base gets a '/' if
 * it lacks one. *out is the caller's. */
int fetch_url_join(const char *base, const char *relpath, char **out);

/* ---- requests described in full, run many at once (transfers) ---- */

/* The origin of an http(s) URL in the one form fetch compares:
 * "<scheme>://<host>:<port>", scheme and host lower-cased, no user:password@,
 * the port always written (80 for http, 443 for https when the URL has
 * none); an IPv6 host keeps its brackets ("https://[::1]:8443"). -EINVAL
 * for another scheme or a URL curl would not parse, -ENAMETOOLONG when out
 * is too small. */
int fetch_url_origin(const char *url, char *out, size_t out_size);

/* What to ask. Strings are borrowed for the duration of fetch_multi_add. */
struct fetch_request {
	const char *url;
	bool has_range;       /* Range: bytes=range_start-range_end (inclusive) */
	uint64_t range_start;
	uint64_t range_end;
	const char *if_range; /* a validator (ETag) for If-Range, or NULL */
	/* A credential header ("Authorization: Bearer ...") sent only when url
	 * is on auth_origin (same scheme, host and port, as fetch_url_origin
	 * gives them), and never after a redirect to another origin (curl
	 * drops it there). Never logged. */
	const char *auth_header;
	const char *auth_origin;
	long stall_seconds;   /* give up when under FETCH_STALL_BYTES_PER_SECOND
				 for this long; 0: the default */
};

/* Below this rate for stall_seconds a connection is stalled: a trickle is
 * given up like a silence, and retried on another connection. */
#define FETCH_STALL_BYTES_PER_SECOND 1024L
/* libcurl's receive buffer per request (fewer, larger writes into the
 * cache): part of what one request in flight costs (transfer.c). */
#define FETCH_RECEIVE_BUFFER_BYTES (512L * 1024)

/* What came back, filled as the response arrives: the status line and
 * headers are complete before the first body byte is written. */
struct fetch_response {
	long status;             /* of the last response (after redirects) */
	char etag[256];          /* ETag as sent (quotes kept), "" if none */
	bool has_content_range;
	uint64_t range_start, range_end, range_total; /* Content-Range */
	bool has_length;         /* the body's length is known: Content-Length of
				    a body sent as it is (no Content-Encoding) */
	uint64_t length;
	bool encoded;            /* a Content-Encoding other than identity */
	long retry_after;        /* Retry-After in seconds; -1 when absent */
	char link_next[2048];    /* Link: <URL>; rel="next" (paged listings) */
	bool link_too_long;      /* a Link header or its next URL did not fit:
				    a listing must fail, not end */
	char final_url[4096];    /* the URL that answered, query included: it
				    may be asked again (a signed CDN URL) but is
				    never logged */
	char error_code[64];     /* X-Error-Code */
	char error_message[192]; /* X-Error-Message */
	char ratelimit[128];     /* RateLimit ("\"api\";r=0;t=120"), for a log */
	char repo_commit[64];    /* X-Repo-Commit: the commit a Hub file came from */
	char linked_etag[80];    /* X-Linked-Etag: the ETag of the file behind a
				    redirect (an LFS file's sha256, quoted) */
	char url_for_log[512];   /* final_url as a log may show it */
	bool via_proxy;          /* final_url was asked through a proxy */
	char error[512];         /* why it failed, empty on success */
};

/* A set of requests in flight over reused connections, driven by one
 * thread (fetch_multi_run); fetch_multi_wakeup may be called from any. */
struct fetch_multi;
struct fetch_call;

int fetch_multi_new(struct fetcher *fetcher, struct fetch_multi **out);
/* Aborts every call still in flight (without calling done). */
void fetch_multi_free(struct fetch_multi *multi);

/* Starts req. Body bytes go to write(ctx) in order (a non-zero return stops
 * the call with that errno); resp must live until the call is done. A body
 * of an error status (>= 300 once redirects are followed) is not written. */
int fetch_multi_add(struct fetch_multi *multi, const struct fetch_request *req,
		    fetch_write_fn write, void *ctx, struct fetch_response *resp,
		    struct fetch_call **out);

/* How a call ended: 0, or -errno with resp->error saying why:
 * -EAGAIN     HTTP 429 or 5xx: retry later (resp->retry_after if sent);
 * -ECONNRESET the connection failed or broke: retry;
 * -ETIMEDOUT  connecting took too long or the transfer stalled: retry;
 * -ENOENT     404/410; -EACCES 401/403; -ERANGE 416;
 * -EINTR      fetcher_cancel_all; the writer's own errno; -EIO otherwise. */
typedef void (*fetch_done_fn)(void *done_ctx, void *call_ctx, int rc);

/* Runs the calls for up to timeout_ms, or until fetch_multi_wakeup; calls
 * done for each call that ended (the call is freed after done returns).
 * Returns the number of calls still running. */
int fetch_multi_run(struct fetch_multi *multi, int timeout_ms, fetch_done_fn done,
		    void *done_ctx);
void fetch_multi_wakeup(struct fetch_multi *multi);
/* Aborts one call without calling done. */
void fetch_multi_remove(struct fetch_multi *multi, struct fetch_call *call);

/* One request run to its end in the calling thread, for API calls: GET
 * req->url following redirects, the body (of a status under 300) into
 * memory, NUL-terminated and the caller's (free(body->data)); resp filled
 * as for fetch_multi_add. Returns 0 or an errno of fetch_done_fn, or -EFBIG
 * past max_bytes; on failure body->data is NULL. */
int fetch_request_run(struct fetcher *fetcher, const struct fetch_request *req, size_t max_bytes,
		      struct fetch_buffer *body, struct fetch_response *resp);

/* The URL of rel="next" in a Link header's value into out ("" when there
 * is none); -ENAMETOOLONG when it does not fit. */
int fetch_parse_link_next(const char *value, char *out, size_t out_size);

/* Whether an errno from a call is worth another try. */
bool fetch_error_retryable(int rc);

#endif
