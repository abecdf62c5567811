/* fetch.h: HTTP(S) transfers with libcurl: verified TLS, redirects that keep
 * credentials on their host, shared connections, errors as errno values.
 * Not for: where a body goes or what it must hash to (download.c, hub.c). */
#ifndef OMNIHUB_FETCH_H
#define OMNIHUB_FETCH_H

#include <stddef.h>

/* One per mount: connection and TLS session cache, CA settings. */
struct fetcher;

int fetcher_new(struct fetcher **out, const char *cacert);
/* Every transfer still running must have returned (see fetcher_cancel_all). */
void fetcher_free(struct fetcher *fetcher);
/* Makes transfers in flight, and later ones, fail soon with -ECANCELED. */
void fetcher_cancel_all(struct fetcher *fetcher);

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
 * -EACCES (401/403), -ETIMEDOUT, -ECANCELED, the writer's error, or -EIO for
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

/* base + relpath with each path segment percent-encoded; base gets a '/' if
 * it lacks one. *out is the caller's. */
int fetch_url_join(const char *base, const char *relpath, char **out);

#endif
