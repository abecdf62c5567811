/* hf_api.c: the Hugging Face Hub's HTTP API as the hub uses it: revisions,
 * file lists, authors; the token on the Hub's origin only, calls paced
 * within the Hub's limit, 429 and 5xx retried. Not for: what is kept,
 * remembered or shown (hub_hf.c). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "fetch.h"
#include "hf_api.h"
#include "json.h"
#include "log.h"

#define HF_PAGE_MAX_BYTES (64u << 20)
#define HF_REVISION_MAX_BYTES (16u << 20)
/* A rate-limited call waits at most this long per try. */
#define HF_RETRY_WAIT_MAX 60L
/* As the transfers' -o retry_time (TRANSFER_RETRY_SECONDS_DEFAULT). */
#define HF_RETRY_TIME_DEFAULT 120L
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

bool hf_api_is_commit(const char *rev)
{
	if (strlen(rev) != 40)
		return false;
	for (int i = 0; i < 40; i++)
		if (!((rev[i] >= '0' && rev[i] <= '9') || (rev[i] >= 'a' && rev[i] <= 'f')))
			return false;
	return true;
}

/* The limit a 429 names: RateLimit: "api";r=0;t=120 says "api". */
static void limit_name(const char *ratelimit, char *out, size_t out_size)
{
	const char *q = strchr(ratelimit, '"');
	size_t n = q ? strcspn(q + 1, "\"") : 0;

	if (n == 0 || n >= out_size)
		snprintf(out, out_size, "unnamed");
	else
		snprintf(out, out_size, "%.*s", (int)n, q + 1);
}

/* Seconds until the window resets, from RateLimit: "api";r=0;t=120; -1
 * when absent or absurd (over a day, or not digits). */
static long limit_reset(const char *ratelimit)
{
	const char *t = strstr(ratelimit, ";t=");
	char digits[24];
	uint64_t value;
	size_t n;

	if (!t)
		return -1;
	n = strcspn(t + 3, ";, ");
	if (n >= sizeof(digits))
		return -1;
	memcpy(digits, t + 3, n);
	digits[n] = '\0';
	return fetch_parse_u64(digits, FETCH_RETRY_AFTER_MAX, &value) == 0 ? (long)value : -1;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* A wait of our own (pacing, backoff) ended by the unmount: the call fails
 * as a request cancelled in flight does, and says so. */
static void say_cancelled(struct fetch_response *resp, const char *url)
{
	fetch_url_for_log(url, resp->url_for_log, sizeof(resp->url_for_log));
	snprintf(resp->error, sizeof(resp->error), "cancelled: unmounting");
}

int hf_api_pace(const struct hf_api *api, const char *url, struct fetch_response *resp)
{
	bool said = false;
	double wait;
	int rc = 0;

	while (rc == 0 && budgets_take(api->budgets, api->budget_name, api->budget, api->window,
				       &wait) == -EAGAIN) {
		if (!said)
			log_warn("%s: %u API calls in %u s already (the Hub's limit): holding the "
				 "next for %.1f s",
				 api->name, api->budget, api->window, wait);
		said = true;
		rc = fetcher_sleep(api->fetcher, wait < HF_RETRY_WAIT_MAX
							 ? (wait > 0.01 ? wait : 0.01)
							 : (double)HF_RETRY_WAIT_MAX);
	}
	if (rc)
		say_cancelled(resp, url);
	return rc;
}

/* The errno of a refusal, by what the Hub says it is rather than by its
 * status: it answers a missing repo with 401 when asked without a token. */
static int refusal_errno(int rc, const struct fetch_response *resp)
{
	const char *code = resp->error_code;

	if (rc != -EACCES && rc != -ENOENT)
		return rc;
	if (strcmp(code, "RepoNotFound") == 0 || strcmp(code, "RevisionNotFound") == 0 ||
	    strcmp(code, "EntryNotFound") == 0)
		return -ENOENT;
	if (strcmp(code, "GatedRepo") == 0)
		return -EACCES;
	return rc;
}

static void fill_refusal(struct hf_refusal *refusal, const struct fetch_response *resp,
			 bool with_token)
{
	if (!refusal)
		return;
	refusal->status = resp->status;
	refusal->with_token = with_token;
	snprintf(refusal->code, sizeof(refusal->code), "%s", resp->error_code);
	snprintf(refusal->message, sizeof(refusal->message), "%s", resp->error_message);
}

/* GET an API URL of the endpoint, with the token, retrying a 429 or 5xx
 * after what Retry-After (else RateLimit's reset) asks. quiet: a refusal
 * (401/403/404) is an answer the caller expects and explains, not logged
 * here; refusal (may be NULL) gets what the Hub said. */
static int api_get(const struct hf_api *api, const char *url, size_t max_bytes, bool quiet,
		   struct fetch_buffer *body, struct fetch_response *resp,
		   struct hf_refusal *refusal)
{
	const char *name = api->name;
	char *auth = NULL;
	struct fetch_request req = { .url = url, .auth_origin = api->origin };
	const long budget = api->retry_time > 0 ? api->retry_time : HF_RETRY_TIME_DEFAULT;
	unsigned retries = api->retries;
	struct timespec began;
	int rc = api->token ? hf_token_header(api->token, &auth, NULL) : 0;

	memset(body, 0, sizeof(*body));
	memset(resp, 0, sizeof(*resp));
	if (refusal)
		memset(refusal, 0, sizeof(*refusal));
	if (rc)
		goto out;
	req.auth_header = auth;
	clock_gettime(CLOCK_MONOTONIC, &began);
	for (unsigned attempt = 0;; attempt++) {
		double left;
		long wait;
		bool asked;
		/* A retry is a call too: it counts against the Hub's limit. */
		rc = hf_api_pace(api, url, resp);
		if (rc)
			break;
		memset(body, 0, sizeof(*body));
		rc = fetch_request_run(api->fetcher, &req, max_bytes, body, resp);
		if (rc == 0)
			goto out;
		free(body->data);
		memset(body, 0, sizeof(*body));
		if (!fetch_error_retryable(rc) || attempt >= retries)
			break;
		wait = resp->retry_after >= 0 ? resp->retry_after : limit_reset(resp->ratelimit);
		asked = wait >= 0;
		if (!asked)
			wait = 1L << (attempt < 5 ? attempt : 5);
		/* The give-up is retry_time, not a count: a wait the Hub asks for
		 * counts against it, and past it the call fails now rather than
		 * holding its reader; our own backoff is cut to what is left. */
		left = (double)budget - seconds_since(&began);
		if (left < 1) {
			log_warn("%s: %s: %s; failing for the %ld s of retry_time: giving up",
				 name, resp->url_for_log, resp->error, budget);
			break;
		}
		if (asked && (double)wait > left) {
			log_warn("%s: %s: %s; the Hub asks to wait %ld s, past the %ld s "
				 "retry_time budget: giving up",
				 name, resp->url_for_log, resp->error, wait, budget);
			break;
		}
		if ((double)wait > left)
			wait = (long)left;
		if (resp->status == 429) {
			char limit[32];
			limit_name(resp->ratelimit, limit, sizeof(limit));
			log_warn("%s: %s: HTTP 429, the Hub's rate limit \"%s\" was hit "
			         "(RateLimit: %s); retrying in %ld s",
			         name, resp->url_for_log, limit,
			         resp->ratelimit[0] ? resp->ratelimit : "not sent", wait);
		} else {
			log_warn("%s: %s: %s; retrying in %ld s", name, resp->url_for_log,
			         resp->error, wait);
		}
		rc = fetcher_sleep(api->fetcher, (double)wait);
		if (rc) {
			say_cancelled(resp, url);
			break;
		}
	}
	fill_refusal(refusal, resp, auth != NULL);
	rc = refusal_errno(rc, resp);
	if ((rc == -EACCES || rc == -ENOENT) && quiet)
		goto out;
	if (rc == -EACCES)
		log_error("%s: %s: refused (HTTP %ld%s%s): %s", name, resp->url_for_log,
		          resp->status, resp->error_code[0] ? ", " : "", resp->error_code,
		          resp->error_message[0] ? resp->error_message
		                                 : (auth ? "the token has no access"
		                                         : "no token given (set HF_TOKEN or run "
		                                           "`hf auth login`)"));
	else if (rc != -ENOENT)
		log_error("%s: %s: %s", name, resp->url_for_log, resp->error);
out:
	hf_token_free_header(auth);
	return rc;
}

/* "<endpoint>/api/<type>s/<repo_id>/<what>/<rev quoted>" */
static int api_url(const struct hf_api *api, const char *repo_id, const char *what, const char *rev,
		   const char *query, char **out)
{
	char quoted[3 * HF_REV_MAX + 1];
	size_t n = 0;

	/* A revision is quoted with no safe character, as the client does. */
	for (const char *p = rev; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-' || c == '~')
			quoted[n++] = (char)c;
		else
			n += (size_t)snprintf(quoted + n, sizeof(quoted) - n, "%%%02X", c);
	}
	quoted[n] = '\0';
	if (asprintf(out, "%s/api/%s/%s/%s/%s%s", api->endpoint, hf_repo_type_plural(api->type),
	             repo_id, what, quoted, query) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int hf_api_commit(const struct hf_api *api, const char *repo_id, const char *rev, bool quiet,
		  char commit[41], struct hf_repo_info *info, struct hf_refusal *refusal)
{
	struct fetch_buffer body = { 0 };
	struct fetch_response resp;
	char why[256];
	cJSON *doc = NULL, *gated;
	const char *sha;
	char *url = NULL;
	int rc = api_url(api, repo_id, "revision", rev, "", &url);

	if (rc)
		return rc;
	rc = api_get(api, url, HF_REVISION_MAX_BYTES, quiet, &body, &resp, refusal);
	if (rc)
		goto out;
	doc = json_parse(body.data, body.len, why, sizeof(why));
	sha = doc ? json_string(doc, "sha") : NULL;
	if (!sha || !hf_api_is_commit(sha)) {
		log_error("%s: %s: the answer names no commit%s%s", api->name,
		          resp.url_for_log, doc ? "" : ": ", doc ? "" : why);
		rc = -EIO;
		goto out;
	}
	memcpy(commit, sha, 41);
	if (info) {
		/* "gated" is false, or the mode ("auto", "manual"). */
		memset(info, 0, sizeof(*info));
		info->private = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "private"));
		gated = cJSON_GetObjectItemCaseSensitive(doc, "gated");
		if (cJSON_IsString(gated) && gated->valuestring[0])
			snprintf(info->gated, sizeof(info->gated), "%s", gated->valuestring);
		else if (cJSON_IsTrue(gated))
			snprintf(info->gated, sizeof(info->gated), "yes");
	}
out:
	cJSON_Delete(doc);
	free(body.data);
	free(url);
	return rc;
}

int hf_api_auth_check(const struct hf_api *api, const char *repo_id, struct hf_refusal *refusal)
{
	struct fetch_buffer body = { 0 };
	struct fetch_response resp;
	char *url = NULL;
	int rc;

	if (asprintf(&url, "%s/api/%s/%s/auth-check", api->endpoint,
		     hf_repo_type_plural(api->type), repo_id) < 0)
		return -ENOMEM;
	rc = api_get(api, url, HF_REVISION_MAX_BYTES, true, &body, &resp, refusal);
	free(body.data);
	free(url);
	return rc;
}

int hf_api_whoami(const struct hf_api *api, cJSON **account, struct hf_refusal *refusal)
{
	struct fetch_buffer body = { 0 };
	struct fetch_response resp;
	char *url = NULL, why[256];
	int rc;

	*account = NULL;
	if (asprintf(&url, "%s/api/whoami-v2", api->endpoint) < 0)
		return -ENOMEM;
	rc = api_get(api, url, HF_REVISION_MAX_BYTES, true, &body, &resp, refusal);
	if (rc == 0) {
		*account = json_parse(body.data, body.len, why, sizeof(why));
		if (!cJSON_IsObject(*account) || !json_string(*account, "name")) {
			log_error("%s: %s: the answer names no account%s%s", api->name,
				  resp.url_for_log, *account ? "" : ": ", *account ? "" : why);
			cJSON_Delete(*account);
			*account = NULL;
			rc = -EIO;
		}
	}
	free(body.data);
	free(url);
	return rc;
}

/* FNV-1a: a page URL seen twice is a loop; 64 bits make a false match
 * among 10,000 pages about one in 10^11. */
static uint64_t url_hash(const char *url)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

int hf_pages_check(struct hf_pages *pages, const char *origin, const char *url, const char *next,
		   size_t entries, const char **why)
{
	char next_origin[320];
	uint64_t h = url_hash(url);

	*why = NULL;
	if (pages->count == pages->cap) {
		size_t cap = pages->cap ? 2 * pages->cap : 16;
		uint64_t *grown = realloc(pages->seen, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		pages->seen = grown;
		pages->cap = cap;
	}
	pages->seen[pages->count++] = h;
	if (pages->count >= HF_PAGES_MAX)
		*why = "for over " STRINGIFY(HF_PAGES_MAX) " pages";
	else if (entries >= HF_ENTRIES_MAX)
		*why = "for over " STRINGIFY(HF_ENTRIES_MAX) " entries";
	else if (fetch_url_origin(next, next_origin, sizeof(next_origin)) != 0 ||
		 strcmp(next_origin, origin) != 0)
		*why = "on another scheme, host or port";
	h = url_hash(next);
	for (size_t i = 0; i < pages->count && !*why; i++)
		if (pages->seen[i] == h)
			*why = "with a page it listed already";
	return *why ? -EIO : 0;
}

void hf_pages_free(struct hf_pages *pages)
{
	free(pages->seen);
	memset(pages, 0, sizeof(*pages));
}

int hf_api_tree(const struct hf_api *api, const char *repo_id, const char *commit,
		const char *label, struct hf_tree **out)
{
	struct hf_tree *tree = calloc(1, sizeof(*tree));
	struct hf_pages seen = { 0 };
	char *url = NULL, why[256];
	const char *stop;
	size_t pages = 0;
	int rc;

	*out = NULL;
	if (!tree)
		return -ENOMEM;
	rc = api_url(api, repo_id, "tree", commit, "?recursive=true", &url);
	while (rc == 0 && url) {
		struct fetch_buffer body = { 0 };
		struct fetch_response resp;
		rc = api_get(api, url, HF_PAGE_MAX_BYTES, false, &body, &resp, NULL);
		if (rc == 0) {
			rc = hf_tree_add_page(tree, body.data, body.len, label, why, sizeof(why));
			if (rc == -EINVAL) {
				log_error("%s: %s: not a file list: %s", api->name,
					  resp.url_for_log, why);
				rc = -EIO;
			}
		}
		free(body.data);
		pages++;
		if (rc == 0 && resp.link_too_long) {
			log_error("%s: %s: the file list's next page has a URL over %zu bytes; "
				  "giving up", api->name, label, sizeof(resp.link_next) - 1);
			rc = -EIO;
		}
		if (rc || !resp.link_next[0])
			break;
		rc = hf_pages_check(&seen, api->origin, url, resp.link_next,
				    tree->count + tree->skipped, &stop);
		if (rc) {
			if (stop)
				log_error("%s: %s: the file list goes on %s; giving up", api->name,
					  label, stop);
			break;
		}
		free(url);
		url = strdup(resp.link_next);
		if (!url)
			rc = -ENOMEM;
	}
	free(url);
	hf_pages_free(&seen);
	rc = hf_tree_done(&tree, rc, time(NULL));
	if (rc)
		return rc;
	log_info("%s: %s: listed %zu files and folders in %zu page%s%s", api->name, label,
		 tree->count, pages, pages == 1 ? "" : "s", tree->skipped ? " (some skipped)" : "");
	*out = tree;
	return 0;
}

int hf_api_is_author(const struct hf_api *api, const char *name, bool *is)
{
	struct fetch_buffer body = { 0 };
	struct fetch_response resp;
	char *url = NULL, why[128];
	cJSON *list = NULL;
	int rc;

	*is = false;
	if (asprintf(&url, "%s/api/%s?author=%s&limit=1", api->endpoint,
		     hf_repo_type_plural(api->type), name) < 0)
		return -ENOMEM;
	rc = api_get(api, url, HF_REVISION_MAX_BYTES, true, &body, &resp, NULL);
	if (rc == 0) {
		list = json_parse(body.data, body.len, why, sizeof(why));
		*is = cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0;
	} else if (rc == -ENOENT || rc == -EACCES) {
		rc = 0;
	}
	cJSON_Delete(list);
	free(body.data);
	free(url);
	return rc;
}
