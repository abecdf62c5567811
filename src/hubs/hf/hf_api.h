/* hf_api.h: the Hugging Face Hub's HTTP API as the hub uses it: which
 * commit a revision is, a commit's file list (every page), whether a name
 * authors repos, whether the token may read a repo, whose the token is. The
 * token goes to the Hub's origin only; calls are paced within the Hub's
 * published limit; a 429 or 5xx is retried after what the Hub asks; a
 * refusal is told by its X-Error-Code. Not for: what is kept, remembered or
 * shown (hub_hf.c), or finding the token (hf_token.c). */
#ifndef OMNIHUB_HF_API_H
#define OMNIHUB_HF_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "hf_cache.h"
#include "hf_token.h"
#include "hf_tree.h"

struct budgets;
struct fetch_response;
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
	struct hf_token *token; /* sent as Authorization: Bearer; NULL: none */
	unsigned retries;
	long retry_time; /* seconds a call's retries may take in all (-o
			    retry_time); 0: the default */
	unsigned budget; /* calls per window; 0: not paced */
	unsigned window; /* seconds */
	char budget_name[320];
};

/* Whether rev is a full commit id (40 lower-case hex digits). */
bool hf_api_is_commit(const char *rev);

/* What the Hub said when it refused a call: for a log line a person can
 * act on (the caller writes it, knowing what was asked). */
struct hf_refusal {
	long status;       /* HTTP status; 0 when none came */
	char code[64];     /* X-Error-Code: RepoNotFound, GatedRepo, ... or "" */
	char message[192]; /* X-Error-Message, or "" */
	bool with_token;   /* the call carried a token */
};

/* What the revision API says of a repo beside its commit. */
struct hf_repo_info {
	bool private;
	char gated[16]; /* "" when not gated, else the Hub's mode ("auto",
			   "manual") */
};

/* The commit rev of repo_id is now, and (info, may be NULL) whether the
 * repo is private or gated. quiet: a refusal is an answer the caller
 * expects, explains itself from *refusal (may be NULL), and is not logged
 * here. 0 or -errno: -ENOENT for X-Error-Code RepoNotFound (the Hub's 401
 * to a call without a token, as for a private repo, and its 404 with one),
 * RevisionNotFound, EntryNotFound, a 404; -EACCES for GatedRepo or another
 * 401/403 (a token the Hub refuses); -EIO, ... */
/* Waits, if need be, until the mount's API budget for the endpoint has a
 * call left: the Hub's published limit is kept rather than run into. Every
 * API call (to url) takes its turn here (each function below does). 0, or
 * -EINTR when the mount ends meanwhile (fetcher_cancel_all), with resp
 * filled as for a request to url cancelled in flight, for the log line. */
int hf_api_pace(const struct hf_api *api, const char *url, struct fetch_response *resp);

int hf_api_commit(const struct hf_api *api, const char *repo_id, const char *rev, bool quiet,
		  char commit[41], struct hf_repo_info *info, struct hf_refusal *refusal);

/* Whether the token (or none) may read repo_id's files (the Hub's
 * /api/<type>s/<repo>/auth-check, as huggingface_hub's auth_check): 0, or
 * -EACCES (GatedRepo: *refusal has the Hub's message), -ENOENT, -EIO ...
 * Not logged. */
int hf_api_auth_check(const struct hf_api *api, const char *repo_id, struct hf_refusal *refusal);

/* The account of the token (<endpoint>/api/whoami-v2) as the Hub's JSON,
 * the caller's to cJSON_Delete. -EACCES (401: no token or one the Hub
 * refuses; *refusal says), -EIO ... Not logged. */
int hf_api_whoami(const struct hf_api *api, cJSON **account, struct hf_refusal *refusal);

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
