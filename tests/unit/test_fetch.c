/* test_fetch.c: unit tests of fetch.c: its URL helpers (joins, the log form,
 * origins) and one request at a time against two tiny local servers (headers
 * kept, errors mapped, a credential that never follows a redirect to another
 * port). Not for: transfers, which the integration tests make. */
#include "build_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fetch.h"
#include "tap.h"

static void join_is(const char *base, const char *rel, const char *want)
{
	char *url = NULL;
	int rc = fetch_url_join(base, rel, &url);

	tap_ok(rc == 0 && url && strcmp(url, want) == 0, "join %s + %s = %s", base, rel,
	       url ? url : "(null)");
	free(url);
}

static void log_form_is(const char *url, const char *want)
{
	char out[128];

	fetch_url_for_log(url, out, sizeof(out));
	tap_ok(strcmp(out, want) == 0, "for a log: %s", out);
}

static void link_next_is(const char *value, const char *want)
{
	char out[256];

	fetch_parse_link_next(value, out, sizeof(out));
	tap_ok(strcmp(out, want) == 0, "next of [%s] = [%s]", value, out);
}

static void origin_is(const char *url, int want_rc, const char *want)
{
	char out[128];
	int rc = fetch_url_origin(url, out, sizeof(out));

	tap_ok(rc == want_rc && (rc != 0 || strcmp(out, want) == 0), "origin of %s = %s (%d)", url,
	       rc == 0 ? out : "-", rc);
}

static void u64_is(const char *text, uint64_t max, int want_rc, uint64_t want)
{
	uint64_t got = 0;
	int rc = fetch_parse_u64(text, max, &got);

	tap_ok(rc == want_rc && (rc != 0 || got == want), "number [%s] -> %d %llu", text, rc,
	       (unsigned long long)got);
}

static void content_range_is(const char *value, int want_rc, uint64_t s, uint64_t e, uint64_t t)
{
	uint64_t start = 0, end = 0, total = 0;
	int rc = fetch_parse_content_range(value, &start, &end, &total);

	tap_ok(rc == want_rc && (rc != 0 || (start == s && end == e && total == t)),
	       "Content-Range [%s] -> %d", value, rc);
}

static void retry_after_is(const char *value, int want_rc, long want)
{
	long got = -1;
	int rc = fetch_parse_retry_after(value, &got);

	tap_ok(rc == want_rc && (rc != 0 || got == want), "Retry-After [%s] -> %d %ld", value, rc,
	       got);
}

static void numbers(void)
{
	u64_is("0", UINT64_MAX, 0, 0);
	u64_is("12345", UINT64_MAX, 0, 12345);
	u64_is("9007199254740992", UINT64_MAX, 0, 9007199254740992ull); /* 2^53 */
	u64_is("9007199254740993", UINT64_MAX, -ERANGE, 0);
	u64_is("18446744073709551615", UINT64_MAX, -ERANGE, 0);
	u64_is("99999999999999999999999", UINT64_MAX, -ERANGE, 0);
	u64_is("101", 100, -ERANGE, 0);
	u64_is("100", 100, 0, 100);
	u64_is("-1", UINT64_MAX, -EINVAL, 0);
	u64_is("+1", UINT64_MAX, -EINVAL, 0);
	u64_is(" 1", UINT64_MAX, -EINVAL, 0);
	u64_is("1 ", UINT64_MAX, -EINVAL, 0);
	u64_is("0x10", UINT64_MAX, -EINVAL, 0);
	u64_is("", UINT64_MAX, -EINVAL, 0);

	content_range_is("bytes 0-99/100", 0, 0, 99, 100);
	content_range_is("bytes 4194304-8388607/33554432", 0, 4194304, 8388607, 33554432);
	content_range_is("bytes 0-99/-1", -EINVAL, 0, 0, 0);
	content_range_is("bytes -1-99/100", -EINVAL, 0, 0, 0);
	content_range_is("bytes 0-99/18446744073709551616", -ERANGE, 0, 0, 0);
	content_range_is("bytes 0-99/18446744073709551615", -ERANGE, 0, 0, 0);
	content_range_is("bytes 0-99/9007199254740993", -ERANGE, 0, 0, 0);
	content_range_is("bytes 0-100/100", -EINVAL, 0, 0, 0);
	content_range_is("bytes 10-9/100", -EINVAL, 0, 0, 0);
	content_range_is("bytes */100", -EINVAL, 0, 0, 0);
	content_range_is("bytes 0-99/100 ", -EINVAL, 0, 0, 0);
	content_range_is("items 0-99/100", -EINVAL, 0, 0, 0);
	content_range_is("bytes 0-99", -EINVAL, 0, 0, 0);

	retry_after_is("0", 0, 0);
	retry_after_is("120", 0, 120);
	retry_after_is("86400", 0, 86400);
	retry_after_is("86401", -ERANGE, 0);
	retry_after_is("99999999999", -ERANGE, 0);
	retry_after_is("99999999999999999999999999", -ERANGE, 0);
	retry_after_is("-5", -EINVAL, 0);
	retry_after_is("Wed, 21 Oct 2015 07:28:00 GMT", -EINVAL, 0);
}

static void redact_is(const char *url, const char *mask, const char *want)
{
	char out[256];
	int rc = fetch_url_redact(url, mask, out, sizeof(out));

	tap_ok(rc == 0 && strcmp(out, want) == 0, "redacted %s -> %s", url, out);
}

static void redaction(void)
{
	char tiny[12];

	redact_is("https://user:pass@mirror.example/cache", NULL, "https://mirror.example/cache");
	redact_is("http://user:pass@mirror.example:8080/c?x=1", NULL,
		  "http://mirror.example:8080/c?x=1");
	redact_is("https://user@h.example/x", NULL, "https://h.example/x");
	redact_is("https://user:pass@h.example/x", "***", "https://***@h.example/x");
	redact_is("https://h.example/x", "***", "https://h.example/x");
	redact_is("https://h.example/a@b", NULL, "https://h.example/a@b");
	tap_ok(fetch_url_redact("https://u:p@long.example/", NULL, tiny, sizeof(tiny)) ==
			   -ENAMETOOLONG && tiny[0] == '\0',
	       "a redacted URL too long for its buffer is an error, not cut");
}

/* ---- a server of one connection at a time, for requests in full ---- */

struct server {
	int fd;
	int port;
	int other_port; /* where /away redirects */
	atomic_bool stop;
	pthread_t thread;
	pthread_mutex_t lock;
	char log[4096]; /* "<path> auth=<0|1>\n" per request; under lock */
};

static void serve_one(struct server *srv, int conn)
{
	char req[8192], path[256] = "", head[1024], body[256] = "";
	const char *status = "200 OK", *extra = "";
	size_t n = 0;
	bool auth;

	while (n + 1 < sizeof(req)) {
		ssize_t got = read(conn, req + n, sizeof(req) - 1 - n);
		if (got <= 0)
			break;
		n += (size_t)got;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[n] = '\0';
	if (sscanf(req, "GET %255s ", path) != 1)
		return;
	auth = strstr(req, "\r\nAuthorization: Bearer hf_secret\r\n") != NULL;
	pthread_mutex_lock(&srv->lock);
	n = strlen(srv->log);
	snprintf(srv->log + n, sizeof(srv->log) - n, "%s auth=%d\n", path, auth);
	pthread_mutex_unlock(&srv->lock);
	if (strcmp(path, "/away") == 0) {
		status = "302 Found";
		snprintf(head, sizeof(head), "Location: http://127.0.0.1:%d/cdn\r\n",
			 srv->other_port);
		extra = head;
	} else if (strcmp(path, "/here") == 0) {
		status = "302 Found";
		extra = "Location: /ok\r\n";
	} else if (strcmp(path, "/missing") == 0) {
		status = "404 Not Found";
		extra = "X-Error-Code: RepoNotFound\r\nX-Error-Message: Repository not found\r\n";
		snprintf(body, sizeof(body), "{\"error\":\"Repository not found\"}");
	} else if (strcmp(path, "/busy") == 0) {
		status = "429 Too Many Requests";
		extra = "Retry-After: 7\r\nRateLimit: \"api\";r=0;t=7\r\n";
	} else if (strcmp(path, "/private") == 0) {
		status = auth ? "200 OK" : "401 Unauthorized";
		snprintf(body, sizeof(body), "%s", auth ? "secret" : "");
	} else if (strcmp(path, "/big") == 0) {
		memset(body, 'x', 200);
		body[200] = '\0';
	} else {
		extra =
		    "ETag: \"abc\"\r\nX-Repo-Commit: 0123456789abcdef0123456789abcdef01234567\r\n"
		    "X-Linked-Etag: \"f00d\"\r\nRateLimit: \"api\";r=499;t=60\r\n"
		    "Link: <http://127.0.0.1/ok?cursor=2>; rel=\"next\"\r\n";
		snprintf(body, sizeof(body), "hello from %s", path);
	}
	n = (size_t)snprintf(req, sizeof(req),
			     "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			     status, extra, strlen(body), body);
	if (write(conn, req, n) < 0)
		return;
}

static void *server_main(void *arg)
{
	struct server *srv = arg;

	while (!atomic_load(&srv->stop)) {
		struct pollfd pfd = {.fd = srv->fd, .events = POLLIN};
		int conn;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		conn = accept(srv->fd, NULL, NULL);
		if (conn < 0)
			continue;
		serve_one(srv, conn);
		close(conn);
	}
	return NULL;
}

static int server_start(struct server *srv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);

	memset(srv, 0, sizeof(*srv));
	atomic_init(&srv->stop, false);
	pthread_mutex_init(&srv->lock, NULL);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->fd < 0 || bind(srv->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(srv->fd, 8) != 0 || getsockname(srv->fd, (struct sockaddr *)&addr, &len) != 0)
		return -errno;
	srv->port = ntohs(addr.sin_port);
	return -pthread_create(&srv->thread, NULL, server_main, srv);
}

static void server_stop(struct server *srv)
{
	atomic_store(&srv->stop, true);
	pthread_join(srv->thread, NULL);
	close(srv->fd);
	pthread_mutex_destroy(&srv->lock);
}

static bool server_saw(struct server *srv, const char *line)
{
	bool seen;

	pthread_mutex_lock(&srv->lock);
	seen = strstr(srv->log, line) != NULL;
	pthread_mutex_unlock(&srv->lock);
	return seen;
}

static int run(struct fetcher *fetcher, const struct server *srv, const char *path,
	       const char *auth_origin, size_t max_bytes, struct fetch_buffer *body,
	       struct fetch_response *resp)
{
	char url[128];
	struct fetch_request req = {.url = url};

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv->port, path);
	req.auth_header = auth_origin ? "Authorization: Bearer hf_secret" : NULL;
	req.auth_origin = auth_origin;
	return fetch_request_run(fetcher, &req, max_bytes, body, resp);
}

static void test_requests(void)
{
	struct server hub, cdn;
	struct fetcher *fetcher = NULL;
	struct fetch_buffer body = {0};
	struct fetch_response *resp = calloc(1, sizeof(*resp));
	char hub_origin[64];
	int rc;

	if (!resp || server_start(&hub) != 0 || server_start(&cdn) != 0 ||
	    fetcher_new(&fetcher, NULL) != 0) {
		tap_ok(0, "local servers and a fetcher");
		free(resp);
		return;
	}
	hub.other_port = cdn.port;
	snprintf(hub_origin, sizeof(hub_origin), "http://127.0.0.1:%d", hub.port);

	rc = run(fetcher, &hub, "/ok", NULL, 1024, &body, resp);
	tap_ok(rc == 0 && resp->status == 200 && body.data &&
		   strcmp(body.data, "hello from /ok") == 0,
	       "a body into memory: %d %ld [%s]", rc, resp->status, body.data ? body.data : "");
	tap_ok(strcmp(resp->etag, "\"abc\"") == 0 &&
		   strcmp(resp->repo_commit, "0123456789abcdef0123456789abcdef01234567") == 0 &&
		   strcmp(resp->linked_etag, "\"f00d\"") == 0 &&
		   strcmp(resp->ratelimit, "\"api\";r=499;t=60") == 0 &&
		   strcmp(resp->link_next, "http://127.0.0.1/ok?cursor=2") == 0,
	       "headers kept: etag %s commit %s linked %s ratelimit %s next %s", resp->etag,
	       resp->repo_commit, resp->linked_etag, resp->ratelimit, resp->link_next);
	free(body.data);

	rc = run(fetcher, &hub, "/missing", NULL, 1024, &body, resp);
	tap_ok(rc == -ENOENT && !body.data && resp->status == 404 &&
		   strcmp(resp->error_code, "RepoNotFound") == 0 &&
		   strstr(resp->error, "Repository not found") != NULL,
	       "404 is ENOENT with the hub's message: %d [%s]", rc, resp->error);
	rc = run(fetcher, &hub, "/busy", NULL, 1024, &body, resp);
	tap_ok(rc == -EAGAIN && resp->retry_after == 7 &&
		   strcmp(resp->ratelimit, "\"api\";r=0;t=7") == 0,
	       "429 is EAGAIN with Retry-After %ld and RateLimit %s", resp->retry_after,
	       resp->ratelimit);
	rc = run(fetcher, &hub, "/big", NULL, 100, &body, resp);
	tap_ok(rc == -EFBIG && !body.data, "past max_bytes: EFBIG [%s]", resp->error);
	rc = run(fetcher, &hub, "/private", NULL, 1024, &body, resp);
	tap_ok(rc == -EACCES, "401 without a credential is EACCES: %d", rc);

	rc = run(fetcher, &hub, "/private", hub_origin, 1024, &body, resp);
	tap_ok(rc == 0 && server_saw(&hub, "/private auth=1"), "the credential goes to its origin");
	free(body.data);
	rc = run(fetcher, &hub, "/here", hub_origin, 1024, &body, resp);
	tap_ok(rc == 0 && server_saw(&hub, "/here auth=1") && server_saw(&hub, "/ok auth=1"),
	       "and stays on a redirect within it");
	free(body.data);
	rc = run(fetcher, &hub, "/away", hub_origin, 1024, &body, resp);
	tap_ok(rc == 0 && server_saw(&hub, "/away auth=1") && server_saw(&cdn, "/cdn auth=0") &&
		   !server_saw(&cdn, "auth=1"),
	       "curl drops it on a redirect to another port of the same host");
	free(body.data);
	rc = run(fetcher, &cdn, "/direct", hub_origin, 1024, &body, resp);
	tap_ok(rc == 0 && server_saw(&cdn, "/direct auth=0"),
	       "never sent to another port of the same host");
	free(body.data);

	fetcher_free(fetcher);
	server_stop(&hub);
	server_stop(&cdn);
	free(resp);
}

/* Whether a request for url goes through a proxy, with the proxy variables
 * of the environment set as given (NULL: unset). */
static void proxy_is(struct fetcher *fetcher, const char *url, const char *https_proxy,
		     const char *http_proxy, const char *no_proxy, bool want)
{
	const char *vars[] = { "https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy",
			       "ALL_PROXY",   "no_proxy",    "NO_PROXY" };

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	if (https_proxy)
		setenv("https_proxy", https_proxy, 1);
	if (http_proxy)
		setenv("http_proxy", http_proxy, 1);
	if (no_proxy)
		setenv("no_proxy", no_proxy, 1);
	tap_ok(fetch_uses_proxy(fetcher, url) == want, "%s %s a proxy (https_proxy=%s http_proxy=%s "
	       "no_proxy=%s)", url, want ? "through" : "without", https_proxy ? https_proxy : "-",
	       http_proxy ? http_proxy : "-", no_proxy ? no_proxy : "-");
}

static void proxies(void)
{
	struct fetcher *fetcher = NULL;

	if (fetcher_new(&fetcher, NULL) != 0) {
		tap_ok(false, "a fetcher");
		return;
	}
	proxy_is(fetcher, "https://huggingface.co/x", NULL, NULL, NULL, false);
	proxy_is(fetcher, "https://huggingface.co/x", "http://proxy:3128", NULL, NULL, true);
	proxy_is(fetcher, "http://10.0.0.1/x", "http://proxy:3128", NULL, NULL, false);
	proxy_is(fetcher, "http://10.0.0.1/x", NULL, "http://proxy:3128", NULL, true);
	proxy_is(fetcher, "https://cdn-lfs.huggingface.co/x", "http://p:3128", NULL,
		 "localhost,.huggingface.co", false);
	proxy_is(fetcher, "https://huggingface.co/x", "http://p:3128", NULL, "huggingface.co", false);
	proxy_is(fetcher, "https://nothuggingface.co/x", "http://p:3128", NULL, "huggingface.co",
		 true);
	proxy_is(fetcher, "https://huggingface.co/x", "http://p:3128", NULL, "*", false);
	proxy_is(fetcher, "http://[::1]:8080/x", NULL, "http://p:3128", "::1", false);
	fetcher_set_proxy(fetcher, "http://squid.lan:3128");
	proxy_is(fetcher, "https://huggingface.co/x", NULL, NULL, NULL, true);
	proxy_is(fetcher, "http://mirror.lan/blobs/x", NULL, NULL, "mirror.lan", false);
	fetcher_set_proxy(fetcher, NULL);
	proxy_is(fetcher, "https://huggingface.co/x", NULL, NULL, NULL, false);
	unsetenv("no_proxy");
	fetcher_free(fetcher);
}

int main(void)
{
	char tiny[8];

	join_is("https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/",
		"validated/vision/classification/mnist/model/mnist-8.onnx",
		"https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/"
		"validated/vision/classification/mnist/model/mnist-8.onnx");
	join_is("https://m.example/zoo", "a/b.onnx", "https://m.example/zoo/a/b.onnx");
	join_is("https://m.example/", "dir with space/x?y#z%.onnx",
		"https://m.example/dir%20with%20space/x%3Fy%23z%25.onnx");
	join_is("https://m.example/", "\xc3\x9c" "ber/m.onnx", "https://m.example/%C3%9Cber/m.onnx");

	log_form_is("https://cdn.example/x/model.onnx?X-Amz-Signature=secret&X-Amz-Credential=c",
		    "https://cdn.example/x/model.onnx");
	log_form_is("https://user:token@mirror.example/zoo/m.onnx", "https://mirror.example/zoo/m.onnx");
	log_form_is("https://mirror.example/a@b/m.onnx", "https://mirror.example/a@b/m.onnx");
	log_form_is("https://h/p#frag", "https://h/p");
	log_form_is("https://h/a\nb", "https://h/a?b");
	fetch_url_for_log("https://long.example/", tiny, sizeof(tiny));
	tap_ok(strlen(tiny) == 7, "truncated to its buffer: %s", tiny);
	link_next_is("<https://hub.example/api/models/x/tree/main?cursor=abc>; rel=\"next\"",
		     "https://hub.example/api/models/x/tree/main?cursor=abc");
	link_next_is("<https://h/p?c=1>; rel=\"prev\", <https://h/p?c=3>; rel=\"next\"",
		     "https://h/p?c=3");
	link_next_is("<https://h/p?c=1>; rel=next", "https://h/p?c=1");
	link_next_is("<https://h/p?c=1>; rel=\"nextpage\"", "");
	link_next_is("<https://h/p?c=1>; rel=\"prev\"", "");
	link_next_is("<https://h/unterminated; rel=\"next\"", "");
	link_next_is("", "");
	tap_ok(fetch_parse_link_next("<https://h.example/a/very/long/next/page/url/indeed>; "
				     "rel=\"next\"", tiny, sizeof(tiny)) == -ENAMETOOLONG,
	       "a next link too long for its buffer is an error, not cut");
	numbers();
	redaction();
	proxies();

	origin_is("https://huggingface.co/api/models/gpt2", 0, "https://huggingface.co:443");
	origin_is("HTTPS://User:pw@HuggingFace.CO:443/x?y#z", 0, "https://huggingface.co:443");
	origin_is("https://huggingface.co:8443/x", 0, "https://huggingface.co:8443");
	origin_is("http://127.0.0.1:8080", 0, "http://127.0.0.1:8080");
	origin_is("http://h.example/", 0, "http://h.example:80");
	origin_is("https://h.example:/x", 0, "https://h.example:443");
	origin_is("https://[::1]:8443/x", 0, "https://[::1]:8443");
	origin_is("https://[::1]/x", 0, "https://[::1]:443");
	origin_is("https://huggingface.co\\@evil.example/x", 0, "https://evil.example:443");
	origin_is("https://a@b@evil.example/x", -EINVAL, "");
	origin_is("https://h.example:99999/", -EINVAL, "");
	origin_is("https://h.example:80x/", -EINVAL, "");
	origin_is("ftp://h.example/", -EINVAL, "");
	origin_is("h.example/x", -EINVAL, "");
	origin_is("https://[::1/x", -EINVAL, "");
	tap_ok(fetch_url_origin("https://long.example/", tiny, sizeof(tiny)) == -ENAMETOOLONG &&
		   tiny[0] == '\0',
	       "an origin too long for its buffer");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_requests();
	curl_global_cleanup();
	return tap_done();
}
