/* hf_api.h: the Hugging Face Hub's HTTP API as the hub uses it: which
 * commit a revision is, a commit's file list (every page), whether a name
 * authors repos. The token goes to the Hub's origin only; calls are paced
 * within the Hub's published limit; a 429 or 5xx is retried after what the
 * Hub asks. Not for: what is kept, remembered or shown (hub_hf.c). */
#ifndef OMNIHUB_HF_API_H
#define OMNIHUB_HF_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hf_cache.h"
#include "hf_tree.h"

struct budgets;
struct fetcher;

/* Longest revision name taken from a path (a branch, tag or commit). */
#define HF_REV_MAX 255

/* Strings are borrowed from the hub that owns this. */
struct hf_api {
	const char *name; /* the hub's, for log lines */
	enum hf_repo_type type;
	struct fetcher *fetcher;
	struct budgets *budgets;
	const char *endpoint;    /* no trailing '/' */
	const char *origin;      /* the endpoint's (fetch_url_origin) */
	const char *auth_header; /* "Authorization: Bearer ...", or NULL */
	unsigned retries;
	long retry_time; /* seconds a call's retries may take in all (-o
			    retry_time); 0: the default */
	unsigned budget; /* calls per window; 0: not paced */
	unsigned window; /* seconds */
	char budget_name[320];
};

/* Whether rev is a full commit id (40 lower-case hex digits). */
bool hf_api_is_commit(const char *rev);

/* The commit rev of repo_id is now; quiet: a refusal (401/403/404) is an
 * answer the caller expects, not worth a log line. 0 or -errno (-ENOENT,
 * -EACCES, -EIO, ...). */
int hf_api_commit(const struct hf_api *api, const char *repo_id, const char *rev, bool quiet,
		  char commit[41]);

/* Every page of the tree API for one commit, following Link: rel="next"
 * on the endpoint only; the tree is finished, with its mtime now. */
int hf_api_tree(const struct hf_api *api, const char *repo_id, const char *commit,
		const char *label, struct hf_tree **out);

/* A paged listing is bounded: a server that sends a loop of pages, or
 * pages without end, fails the listing instead of keeping a reader (and
 * memory) forever. Far past any real repo: the largest hold about a
 * million files, at 1,000 entries a page. */
#define HF_PAGES_MAX 10000u
#define HF_ENTRIES_MAX 10000000u

/* The pages of one listing asked so far (hashes of their URLs). */
struct hf_pages {
	uint64_t *seen; /* owned */
	size_t count, cap;
};

/* Records url as asked; then whether next (a page's Link rel="next") may
 * be asked too, with entries listed so far: 0, or -EIO with *why saying
 * why not (a page seen before, too many pages or entries, another scheme,
 * host or port than origin, a fetch_url_origin form). -ENOMEM. */
int hf_pages_check(struct hf_pages *pages, const char *origin, const char *url, const char *next,
		   size_t entries, const char **why);
void hf_pages_free(struct hf_pages *pages);

/* Whether name authors a repo of the API's type (an org or a user). */
int hf_api_is_author(const struct hf_api *api, const char *name, bool *is);

#endif
