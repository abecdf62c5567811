/* hub_hf.c: the Hugging Face Hub as files. huggingface/<org>/<name>[@rev]/
 * (and huggingface-datasets/) is a repo at one commit: the revision API
 * names the commit, the tree API lists its files with their sizes and
 * digests. What a commit holds never changes, so its tree is kept on disk
 * for good; a branch is asked again after hf_ttl. The Hub has millions of
 * repos: its top level is never listed, only names asked for are (and
 * remembered, found or not). Not for: downloading or verifying files (the
 * core does, from the source given), the tree's layout (hf_tree.c). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "client_cache.h"
#include "config.h"
#include "fetch.h"
#include "hf_api.h"
#include "hf_cache.h"
#include "hf_token.h"
#include "hf_tree.h"
#include "hub_hf.h"
#include "json.h"
#include "log.h"
#include "names.h"

/* The real Hub: the default for users with internet. */
#define HF_ENDPOINT_DEFAULT "https://huggingface.co"
#define HF_TTL_DEFAULT 600u
#define HF_TTL_MAX (365u * 86400u)
#define HF_MAX_REPOS_DEFAULT 64u
#define HF_MAX_REPOS_MAX (1u << 20)
/* Names at the top level remembered (found or not); the oldest go first. */
#define HF_NAMES_MAX 1024u
/* A repo or org id part: the Hub allows 96 characters of [A-Za-z0-9._-]. */
#define HF_ID_PART_MAX 96
#define HF_REPO_ID_MAX (2 * HF_ID_PART_MAX + 1)
#define HF_TREE_MAX_BYTES (1024u << 20)
/* The Hub's API limits (2026): calls per 5-minute window and IP,
 * anonymous and with a free account's token. */
#define HF_API_BUDGET_ANONYMOUS 500u
#define HF_API_BUDGET_TOKEN 1000u
#define HF_API_WINDOW_DEFAULT 300u
#define HF_API_BUDGET_MAX 1000000u
#define HF_META_DIR CACHE_INDEX_DIR "/huggingface"
/* Our metadata beside a repo's name; '@' is in no repo or org name. */
#define HF_REFS_DIR "@refs"
#define HF_TREES_DIR "@trees"

enum name_kind {
	NAME_LOADING, /* being asked; wait for it */
	NAME_ORG,
	NAME_REPO,    /* a legacy repo id without an org (gpt2) */
	NAME_MISSING,
};

/* What a top-level name is, as the Hub last said. */
struct hf_name {
	char name[HF_ID_PART_MAX + 1];
	enum name_kind kind;
	int error;    /* NAME_MISSING: -ENOENT or -EACCES */
	time_t until; /* when to ask again */
	unsigned generation; /* the token's when asked: another token asks again */
	time_t used;
};

/* A repo at one revision as asked ("" for the default branch). */
struct hf_repo {
	char repo_id[HF_REPO_ID_MAX + 1];
	char rev[HF_REV_MAX + 1];
	char commit[41];      /* "" until known */
	time_t checked;       /* when the commit was last asked */
	struct hf_tree *tree; /* owned; NULL until loaded */
	int error;            /* of the last load, 0 when it worked */
	time_t error_until;   /* a failure is remembered until then */
	unsigned error_generation; /* the token's then: another token asks again */
	bool private;         /* as the revision API last said */
	char gated[16];       /* "" not gated, else the Hub's mode */
	bool loading;         /* one thread loads; the others wait */
	unsigned users;       /* lookups using tree now: not evicted */
	time_t used;
};

struct hf_hub {
	enum hf_repo_type type;
	char *endpoint;              /* owned; no trailing '/' */
	char origin[300];            /* the endpoint's: where the token may go */
	char *client_cache;          /* owned; huggingface_hub's own cache
					(client_cache_dir), read before a
					download and offline */
	struct hf_token token;       /* owned; open when token_open */
	bool token_open;
	const struct hub *hub; /* borrowed: the hub this is the state of */
	bool env_offline;      /* $HF_HUB_OFFLINE or $TRANSFORMERS_OFFLINE */
	time_t started; /* the mtime of folders that have no other */
	unsigned ttl;
	unsigned max_repos;
	struct hf_api api; /* its strings point into this hub */
	char **pinned; /* owned; "org/name[@rev]" or "name[@rev]" */
	size_t npinned;
	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t loaded;
	struct hf_name *names; /* owned; HF_NAMES_MAX slots */
	size_t nnames;
	struct hf_repo **repos; /* owned; at most max_repos not in use */
	size_t nrepos;
};

/* Offline by the environment, or by the settings (hub->offline, which a
 * reload may change while mounted). */
static bool hf_offline(const struct hf_hub *hf)
{
	return hf->env_offline || hf->hub->offline;
}

/* ---- names ---- */

/* An org or repo name as the Hub allows it: [A-Za-z0-9._-], not starting
 * with '.' or '-', no "--" or "..": it also keeps stat storms of names such
 * as ".git" or "desktop.ini" from reaching the Hub. */
static bool valid_id_part(const char *s, size_t len)
{
	if (len == 0 || len > HF_ID_PART_MAX || s[0] == '.' || s[0] == '-' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
		if (i > 0 && (c == '-' || c == '.') && s[i - 1] == c)
			return false;
	}
	return true;
}

/* "<name>[@<rev>]": the name's length, and the revision (with %2F read as
 * '/', so refs/pr/1 fits in one path component) into rev. */
static int split_rev(const char *component, size_t len, size_t *name_len, char rev[HF_REV_MAX + 1])
{
	const char *at = memchr(component, '@', len);
	size_t n = 0;

	rev[0] = '\0';
	*name_len = at ? (size_t)(at - component) : len;
	if (!valid_id_part(component, *name_len))
		return -ENOENT;
	if (!at)
		return 0;
	for (const char *p = at + 1; p < component + len; p++) {
		char c = *p;
		if (c == '%' && p + 2 < component + len && p[1] == '2' &&
		    (p[2] == 'F' || p[2] == 'f')) {
			c = '/';
			p += 2;
		}
		if (n == HF_REV_MAX || (unsigned char)c < 0x20 || c == '%')
			return -ENOENT;
		rev[n++] = c;
	}
	rev[n] = '\0';
	if (n == 0 || strcmp(rev, ".") == 0 || strstr(rev, "..") || rev[0] == '/')
		return -ENOENT;
	return 0;
}

/* What a path inside the hub's directory names. */
struct hf_place {
	enum { PLACE_ROOT, PLACE_ORG, PLACE_REPO } what;
	char org[HF_ID_PART_MAX + 1];        /* PLACE_ORG, and a repo's org */
	char repo_id[HF_REPO_ID_MAX + 1];    /* PLACE_REPO */
	char rev[HF_REV_MAX + 1];            /* PLACE_REPO: "" the default */
	const char *inside;                  /* PLACE_REPO: path in the repo */
};

/* ---- metadata kept on disk: .index/huggingface/<type>s/<repo_id>/ ---- */

static int meta_rel(const struct hf_hub *hf, const char *repo_id, const char *dir, const char *name,
		    const char *suffix, char **out)
{
	char flat[3 * HF_REV_MAX + 1];
	size_t n = 0;

	/* A ref such as refs/pr/1 is one file name. */
	for (const char *p = name; *p && n + 4 < sizeof(flat); p++) {
		if (*p == '/' || *p == '%')
			n += (size_t)snprintf(flat + n, sizeof(flat) - n, "%%%02X",
			                      (unsigned char)*p);
		else
			flat[n++] = *p;
	}
	flat[n] = '\0';
	if (asprintf(out, HF_META_DIR "/%s/%s/%s/%s%s", hf_repo_type_plural(hf->type), repo_id, dir,
		     flat, suffix) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* The commit a revision had when last asked, and when that was; info
 * (may be NULL) from the second line, "private=0|1 gated=MODE" (none in
 * files an older version wrote: then not private, not gated). */
static int read_ref(struct hub *hub, const char *repo_id, const char *rev, char commit[41],
		    time_t *when, struct hf_repo_info *info)
{
	char *rel = NULL, *data = NULL, *second;
	size_t len = 0;
	int rc = meta_rel(hub->priv, repo_id, HF_REFS_DIR, rev, "", &rel);

	if (info)
		memset(info, 0, sizeof(*info));
	if (rc == 0)
		rc = cache_read_small(hub->env->cache, rel, 128, &data, &len, when);
	if (rc == 0) {
		second = data + strcspn(data, "\n");
		if (*second)
			*second++ = '\0';
		rc = hf_api_is_commit(data) ? 0 : -EINVAL;
		if (rc == 0)
			memcpy(commit, data, 41);
		if (rc == 0 && info) {
			int private = 0;
			char gated[16] = "";
			if (sscanf(second, "private=%d gated=%15[a-z]", &private, gated) >= 1)
				info->private = private == 1;
			if (strcmp(gated, "no") != 0)
				snprintf(info->gated, sizeof(info->gated), "%s", gated);
		}
	}
	free(data);
	free(rel);
	return rc;
}

static void write_ref(struct hub *hub, const char *repo_id, const char *rev, const char *commit,
		      const struct hf_repo_info *info)
{
	char *rel = NULL, line[96];
	int rc = meta_rel(hub->priv, repo_id, HF_REFS_DIR, rev, "", &rel);

	snprintf(line, sizeof(line), "%s\nprivate=%d gated=%s\n", commit,
		 info && info->private ? 1 : 0, info && info->gated[0] ? info->gated : "no");
	if (rc == 0)
		rc = cache_write_small_nosync(hub->env->cache, rel, line, strlen(line));
	if (rc)
		log_warn("%s: cannot keep the commit of %s@%s in the cache: %s", hub->name,
			 repo_id, rev, strerror(-rc));
	free(rel);
}

/* ---- revisions ---- */

/* The Hub's URL of a repo's page (where access to a gated one is asked). */
static void repo_page(const struct hf_hub *hf, const char *repo_id, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s/%s%s", hf->endpoint,
		 hf->type == HF_REPO_DATASET ? "datasets/" : "", repo_id);
}

/* One log line a person can act on, for the Hub's refusal (rc) of repo_id:
 * what it means, and what to do (a token, and where it is looked for). */
static void explain_refusal(struct hub *hub, const char *repo_id, const char *rev, int rc,
			    const struct hf_refusal *r)
{
	struct hf_hub *hf = hub->priv;
	char files[3 * PATH_MAX], how[4 * PATH_MAX], page[HF_REPO_ID_MAX + 320];
	const char *code = r->code;

	hf_token_files(&hf->token, files, sizeof(files));
	hf_token_describe(&hf->token, how, sizeof(how));
	repo_page(hf, repo_id, page, sizeof(page));
	if (rc == -ENOENT && strcmp(code, "RevisionNotFound") == 0)
		log_warn("%s: %s: the Hub has no revision '%s' (HTTP %ld RevisionNotFound)",
			 hub->name, repo_id, rev[0] ? rev : "main", r->status);
	else if (rc == -ENOENT && !r->with_token)
		log_warn("%s: %s: repository not found (HTTP %ld%s%s). A private repo looks the "
			 "same without a token: set HF_TOKEN, or run `hf auth login` (token files "
			 "read: %s)",
			 hub->name, repo_id, r->status, code[0] ? " " : "", code, files);
	else if (rc == -ENOENT)
		log_warn("%s: %s: repository not found (HTTP %ld%s%s): it does not exist, or it is "
			 "private and the account of the token (%s) has no access to it",
			 hub->name, repo_id, r->status, code[0] ? " " : "", code, how);
	else if (rc == -EACCES && strcmp(code, "GatedRepo") == 0)
		log_warn("%s: %s is gated: %s%s Ask for access at %s, then %s", hub->name, repo_id,
			 r->message[0] ? r->message : "access is restricted",
			 r->message[0] && r->message[strlen(r->message) - 1] == '.' ? "" : ".", page,
			 r->with_token ? "read again with the token of the account granted access"
				       : "set HF_TOKEN to a token of that account, or run `hf auth "
					 "login`");
	else if (rc == -EACCES && r->with_token)
		log_warn("%s: %s: the Hub refused the token (HTTP %ld%s%s): it is wrong, revoked or "
			 "lacks read access; check it with `omnihub whoami`, make one at "
			 "%s/settings/tokens, then set HF_TOKEN or run `hf auth login` (%s)",
			 hub->name, repo_id, r->status, r->message[0] ? ": " : "", r->message,
			 hf->endpoint, how);
	else if (rc == -EACCES)
		log_warn("%s: %s: refused without a token (HTTP %ld%s%s): set HF_TOKEN, or run "
			 "`hf auth login` (token files read: %s)",
			 hub->name, repo_id, r->status, r->message[0] ? ": " : "", r->message, files);
}

/* The commit of rev ("" for main): a commit names itself; a branch or tag
 * is asked after the TTL, else read from what we kept, else (offline) from
 * huggingface_hub's refs. A failed ask falls back to what we kept. info:
 * private and gated as last known ("" when the commit was given). */
static int resolve_commit(struct hub *hub, const char *repo_id, const char *rev, char commit[41],
			  struct hf_repo_info *info)
{
	struct hf_hub *hf = hub->priv;
	const char *branch = rev[0] ? rev : "main";
	struct hf_refusal refusal;
	time_t when = 0;
	bool kept;
	int rc;

	memset(info, 0, sizeof(*info));
	if (hf_api_is_commit(rev)) {
		memcpy(commit, rev, 41);
		return 0;
	}
	kept = read_ref(hub, repo_id, branch, commit, &when, info) == 0;
	if (kept && (hf_offline(hf) || time(NULL) - when < (time_t)hf->ttl))
		return 0;
	if (hf_offline(hf)) {
		rc = hf_cache_read_ref(hf->client_cache, hf->type, repo_id, branch,
				       commit);
		if (rc)
			log_info("%s: offline, and the commit of %s@%s was never seen",
			         hub->name, repo_id, branch);
		return rc == 0 ? 0 : -ENOENT;
	}
	rc = hf_api_commit(&hf->api, repo_id, branch, true, commit, info, &refusal);
	if (rc == 0) {
		write_ref(hub, repo_id, branch, commit, info);
		return 0;
	}
	if (rc == -ENOENT || rc == -EACCES)
		explain_refusal(hub, repo_id, rev, rc, &refusal);
	if (kept && rc != -ENOENT && rc != -EACCES) {
		log_warn("%s: cannot ask the Hub for %s@%s; using commit %.12s seen before",
			 hub->name, repo_id, branch, commit);
		return 0;
	}
	return rc;
}

/* ---- trees ---- */

static int read_tree(struct hub *hub, const char *rel, const char *label, struct hf_tree **out)
{
	struct hf_tree *tree = NULL;
	char *data = NULL, why[256];
	size_t len = 0;
	time_t mtime = 0;
	int rc = cache_read_small(hub->env->cache, rel, HF_TREE_MAX_BYTES, &data, &len, &mtime);

	if (rc)
		return rc;
	tree = calloc(1, sizeof(*tree));
	rc = tree ? hf_tree_add_page(tree, data, len, label, why, sizeof(why)) : -ENOMEM;
	rc = hf_tree_done(&tree, rc, mtime);
	if (rc)
		log_warn("%s: ignoring the kept file list %s/%s: %s", hub->name,
			 cache_root(hub->env->cache), rel, rc == -EINVAL ? why : strerror(-rc));
	free(data);
	*out = tree;
	return rc;
}

/* A file of huggingface_hub's snapshot: its etag is our digest. */
static int snapshot_file(void *ctx, const char *path, const char *etag, uint64_t size)
{
	struct hf_tree *tree = ctx;
	struct digest_spec digest;
	const char *why;

	if (names_check_relpath(path, &why) != 0 ||
	    (digest_spec_set(&digest, DIGEST_SHA256, etag) != 0 &&
	     digest_spec_set(&digest, DIGEST_GIT_BLOB_SHA1, etag) != 0))
		return 0;
	return hf_tree_add(tree, path, false, size, &digest);
}

/* Offline, a commit never listed here: the files huggingface_hub keeps of
 * it, as its own offline mode shows them. */
static int snapshot_tree(struct hub *hub, const char *repo_id, const char *commit,
			 const char *label, struct hf_tree **out)
{
	struct hf_hub *hf = hub->priv;
	struct hf_tree *tree = calloc(1, sizeof(*tree));
	int rc = tree ? 0 : -ENOMEM;

	if (rc == 0)
		rc = hf_cache_snapshot_files(hf->client_cache, hf->type, repo_id,
		                             commit, snapshot_file, tree);
	rc = hf_tree_done(&tree, rc, time(NULL));
	if (rc)
		return rc;
	log_info("%s: offline: %s from huggingface_hub's snapshot (%zu files and folders)",
		 hub->name, label, tree->count);
	*out = tree;
	return 0;
}

/* A commit's tree: kept on disk for good once fetched. */
static int load_tree(struct hub *hub, const char *repo_id, const char *commit, struct hf_tree **out)
{
	struct hf_hub *hf = hub->priv;
	char label[HF_REPO_ID_MAX + 64], *rel = NULL, *json = NULL;
	size_t len = 0;
	int rc;

	snprintf(label, sizeof(label), "%s@%.12s", repo_id, commit);
	rc = meta_rel(hf, repo_id, HF_TREES_DIR, commit, ".json", &rel);
	if (rc)
		return rc;
	rc = read_tree(hub, rel, label, out);
	if (rc == 0 || rc == -ENOMEM)
		goto out;
	if (hf_offline(hf)) {
		rc = snapshot_tree(hub, repo_id, commit, label, out);
		if (rc)
			log_info("%s: offline, and the files of %s were never listed",
			         hub->name, label);
		goto out;
	}
	rc = hf_api_tree(&hf->api, repo_id, commit, label, out);
	if (rc == 0 && hf_tree_to_json(*out, &json, &len) == 0) {
		int saved = cache_write_small_nosync(hub->env->cache, rel, json, len);
		if (saved)
			log_warn("%s: cannot keep the file list of %s: %s", hub->name, label,
				 strerror(-saved));
	}
out:
	free(json);
	free(rel);
	return rc;
}

/* ---- repos in memory: single-flight loads, least recently used evicted ---- */

static struct hf_repo *find_repo_locked(struct hf_hub *hf, const char *repo_id, const char *rev)
{
	for (size_t i = 0; i < hf->nrepos; i++)
		if (strcmp(hf->repos[i]->repo_id, repo_id) == 0 &&
		    strcmp(hf->repos[i]->rev, rev) == 0)
			return hf->repos[i];
	return NULL;
}

static void repo_free(struct hf_repo *repo)
{
	if (repo)
		hf_tree_free(repo->tree);
	free(repo);
}

/* Makes room for one more repo: drops the least recently used one that no
 * lookup is using. */
static void evict_locked(struct hf_hub *hf)
{
	while (hf->nrepos >= hf->max_repos) {
		size_t victim = hf->nrepos;
		for (size_t i = 0; i < hf->nrepos; i++) {
			const struct hf_repo *r = hf->repos[i];
			if (r->users || r->loading)
				continue;
			if (victim == hf->nrepos || r->used < hf->repos[victim]->used)
				victim = i;
		}
		if (victim == hf->nrepos)
			return; /* all in use: go over the bound for now */
		repo_free(hf->repos[victim]);
		hf->repos[victim] = hf->repos[--hf->nrepos];
	}
}

static int add_repo_locked(struct hf_hub *hf, const char *repo_id, const char *rev,
			   struct hf_repo **out)
{
	struct hf_repo **grown, *repo;

	evict_locked(hf);
	grown = realloc(hf->repos, (hf->nrepos + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	hf->repos = grown;
	repo = calloc(1, sizeof(*repo));
	if (!repo)
		return -ENOMEM;
	snprintf(repo->repo_id, sizeof(repo->repo_id), "%s", repo_id);
	snprintf(repo->rev, sizeof(repo->rev), "%s", rev);
	hf->repos[hf->nrepos++] = repo;
	*out = repo;
	return 0;
}

static bool repo_fresh_locked(const struct hf_hub *hf, const struct hf_repo *repo, time_t now)
{
	if (!repo->tree)
		return false;
	return hf_api_is_commit(repo->rev) || hf_offline(hf) || now - repo->checked < (time_t)hf->ttl;
}

/* Loads (or refreshes) repo outside the lock; returns with it held. */
static int repo_load(struct hub *hub, struct hf_repo *repo)
{
	struct hf_hub *hf = hub->priv;
	char repo_id[HF_REPO_ID_MAX + 1], rev[HF_REV_MAX + 1], commit[41], old_commit[41];
	struct hf_tree *tree = NULL;
	struct hf_repo_info info;
	unsigned generation = hf_token_generation(&hf->token);
	bool changed = false;
	int rc;

	memcpy(repo_id, repo->repo_id, sizeof(repo_id));
	memcpy(rev, repo->rev, sizeof(rev));
	memcpy(old_commit, repo->commit, sizeof(old_commit));
	repo->loading = true;
	pthread_mutex_unlock(&hf->lock);

	rc = resolve_commit(hub, repo_id, rev, commit, &info);
	if (rc == 0 && strcmp(commit, old_commit) != 0)
		rc = load_tree(hub, repo_id, commit, &tree);
	if (rc == 0 && info.gated[0] && !hf_offline(hf)) {
		/* Its files are listed to anyone; reading them needs access:
		 * say now how to get it, rather than a bare EACCES later. */
		struct hf_refusal refusal;
		int access = hf_api_auth_check(&hf->api, repo_id, &refusal);
		if (access == -EACCES || access == -ENOENT)
			explain_refusal(hub, repo_id, rev, -EACCES, &refusal);
	}

	pthread_mutex_lock(&hf->lock);
	repo->loading = false;
	repo->checked = time(NULL);
	repo->private = info.private;
	memcpy(repo->gated, info.gated, sizeof(repo->gated));
	if (rc == 0) {
		if (tree) {
			changed = repo->tree != NULL;
			hf_tree_free(repo->tree);
			repo->tree = tree;
			memcpy(repo->commit, commit, sizeof(repo->commit));
		}
		repo->error = 0;
	} else if (repo->tree && rc != -ENOENT && rc != -EACCES) {
		/* The network failed: keep serving the commit we have; ask
		 * again in a minute rather than a whole TTL. */
		repo->checked = time(NULL) - (time_t)hf->ttl + 60;
		rc = 0;
	} else {
		hf_tree_free(repo->tree);
		repo->tree = NULL;
		repo->commit[0] = '\0';
		repo->error = rc;
		repo->error_until = time(NULL) + (time_t)hf->ttl;
		repo->error_generation = generation;
	}
	pthread_cond_broadcast(&hf->loaded);
	if (changed) {
		log_info("%s: %s%s%s moved to commit %.12s", hub->name, repo_id,
		         rev[0] ? "@" : "", rev, commit);
		if (hub->env->index_changed) {
			pthread_mutex_unlock(&hf->lock);
			hub->env->index_changed(hub->env->index_changed_ctx, hub);
			pthread_mutex_lock(&hf->lock);
		}
	}
	return rc;
}

/* The repo at rev, loaded, held (users) until repo_put; many lookups of one
 * repo at once cause one load. */
static int repo_get(struct hub *hub, const char *repo_id, const char *rev, struct hf_repo **out)
{
	struct hf_hub *hf = hub->priv;
	struct hf_repo *repo;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&hf->lock);
	repo = find_repo_locked(hf, repo_id, rev);
	if (!repo)
		rc = add_repo_locked(hf, repo_id, rev, &repo);
	if (rc)
		goto out;
	repo->users++;
	for (;;) {
		time_t now = time(NULL);
		if (repo->loading) {
			pthread_cond_wait(&hf->loaded, &hf->lock);
			continue;
		}
		if (repo_fresh_locked(hf, repo, now))
			break;
		if (!repo->tree && repo->error && now < repo->error_until &&
		    repo->error_generation == hf_token_generation(&hf->token)) {
			rc = repo->error;
			break;
		}
		rc = repo_load(hub, repo);
		break;
	}
	repo->used = time(NULL);
	if (rc == 0 && repo->tree) {
		*out = repo;
	} else {
		repo->users--;
		if (rc == 0)
			rc = -EIO;
	}
out:
	pthread_mutex_unlock(&hf->lock);
	return rc;
}

static void repo_put(struct hub *hub, struct hf_repo *repo)
{
	struct hf_hub *hf = hub->priv;

	pthread_mutex_lock(&hf->lock);
	repo->users--;
	pthread_mutex_unlock(&hf->lock);
}

/* ---- top-level names: orgs and legacy repos ---- */

static bool pinned_org(const struct hf_hub *hf, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < hf->npinned; i++)
		if (strncmp(hf->pinned[i], name, len) == 0 && hf->pinned[i][len] == '/')
			return true;
	return false;
}

static bool pinned_repo(const struct hf_hub *hf, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < hf->npinned; i++)
		if (strncmp(hf->pinned[i], name, len) == 0 &&
		    (hf->pinned[i][len] == '\0' || hf->pinned[i][len] == '@'))
			return true;
	return false;
}

/* What we kept on disk says (a legacy repo has our metadata right below
 * its name, an org has repos below it), else huggingface_hub's cache. */
static enum name_kind kept_kind(struct hub *hub, const char *name)
{
	const struct hf_hub *hf = hub->priv;
	char rel[PATH_MAX];
	DIR *dir;

	snprintf(rel, sizeof(rel), HF_META_DIR "/%s/%s/" HF_REFS_DIR, hf_repo_type_plural(hf->type),
		 name);
	dir = cache_opendir(hub->env->cache, rel);
	if (dir) {
		closedir(dir);
		return NAME_REPO;
	}
	*strrchr(rel, '/') = '\0';
	dir = cache_opendir(hub->env->cache, rel);
	if (dir) {
		closedir(dir);
		return NAME_ORG;
	}
	/* Or what huggingface_hub keeps: models--gpt2, models--org--name. */
	switch (hf_cache_name_kind(hf->client_cache, hf->type, name)) {
	case 2:
		return NAME_REPO;
	case 1:
		return NAME_ORG;
	default:
		return NAME_MISSING;
	}
}

/* Asks the Hub what name is: a legacy repo (its revision answers), else an
 * org (it authors something), else nothing. */
static int ask_kind(struct hub *hub, const char *name, enum name_kind *kind)
{
	struct hf_hub *hf = hub->priv;
	char commit[41];
	bool author = false;
	struct hf_repo_info info;
	struct hf_refusal refusal;
	int rc = hf_api_commit(&hf->api, name, "main", true, commit, &info, &refusal);

	if (rc == 0) {
		write_ref(hub, name, "main", commit, &info);
		*kind = NAME_REPO;
		return 0;
	}
	if (rc == -EACCES && refusal.with_token && !refusal.code[0]) {
		/* Not about this name: the Hub refuses the token for every call. */
		explain_refusal(hub, name, "", rc, &refusal);
		return rc;
	}
	if (rc != -ENOENT && rc != -EACCES)
		return rc;
	rc = hf_api_is_author(&hf->api, name, &author);
	*kind = author ? NAME_ORG : NAME_MISSING;
	/* A legacy id mistyped (gpt3) says so, as an org/name does. */
	if (rc == 0 && !author && strcmp(refusal.code, "RepoNotFound") == 0)
		explain_refusal(hub, name, "", -ENOENT, &refusal);
	return rc;
}

static struct hf_name *find_name_locked(struct hf_hub *hf, const char *name)
{
	for (size_t i = 0; i < hf->nnames; i++)
		if (strcmp(hf->names[i].name, name) == 0)
			return &hf->names[i];
	return NULL;
}

static struct hf_name *add_name_locked(struct hf_hub *hf, const char *name)
{
	struct hf_name *slot;

	if (hf->nnames == HF_NAMES_MAX) {
		size_t oldest = 0;
		for (size_t i = 1; i < hf->nnames; i++)
			if (hf->names[i].kind != NAME_LOADING &&
			    (hf->names[oldest].kind == NAME_LOADING ||
			     hf->names[i].used < hf->names[oldest].used))
				oldest = i;
		if (hf->names[oldest].kind == NAME_LOADING)
			return NULL;
		slot = &hf->names[oldest];
	} else {
		slot = &hf->names[hf->nnames++];
	}
	memset(slot, 0, sizeof(*slot));
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->kind = NAME_LOADING;
	return slot;
}

/* What a top-level name is: pinned, kept, remembered, else asked (once,
 * however many threads ask at the same time). */
static int classify(struct hub *hub, const char *name, enum name_kind *kind)
{
	struct hf_hub *hf = hub->priv;
	struct hf_name *entry;
	enum name_kind asked = NAME_MISSING;
	unsigned generation;
	int rc = 0;

	if (pinned_repo(hf, name)) {
		*kind = NAME_REPO;
		return 0;
	}
	if (pinned_org(hf, name)) {
		*kind = NAME_ORG;
		return 0;
	}
	pthread_mutex_lock(&hf->lock);
	for (;;) {
		entry = find_name_locked(hf, name);
		if (!entry || entry->kind != NAME_LOADING)
			break;
		pthread_cond_wait(&hf->loaded, &hf->lock);
	}
	if (entry && time(NULL) < entry->until &&
	    (entry->kind != NAME_MISSING || entry->generation == hf_token_generation(&hf->token))) {
		entry->used = time(NULL);
		*kind = entry->kind;
		rc = entry->kind == NAME_MISSING ? entry->error : 0;
		pthread_mutex_unlock(&hf->lock);
		return rc;
	}
	if (!entry)
		entry = add_name_locked(hf, name);
	if (!entry) {
		pthread_mutex_unlock(&hf->lock);
		return -EAGAIN;
	}
	entry->kind = NAME_LOADING;
	pthread_mutex_unlock(&hf->lock);

	generation = hf_token_generation(&hf->token);
	asked = kept_kind(hub, name);
	if (asked == NAME_MISSING && !hf_offline(hf))
		rc = ask_kind(hub, name, &asked);

	pthread_mutex_lock(&hf->lock);
	/* The slot may have been reused only while not loading: it is ours. */
	entry->kind = rc ? NAME_MISSING : asked;
	entry->error = rc ? rc : (asked == NAME_MISSING ? -ENOENT : 0);
	/* A network failure is not remembered as an answer. */
	entry->until = rc && rc != -EACCES ? 0 : time(NULL) + (time_t)hf->ttl;
	entry->used = time(NULL);
	entry->generation = generation;
	*kind = entry->kind;
	if (entry->kind == NAME_MISSING)
		rc = entry->error;
	pthread_cond_broadcast(&hf->loaded);
	pthread_mutex_unlock(&hf->lock);
	return rc;
}

/* ---- paths ---- */

static int parse_place(struct hub *hub, const char *path, struct hf_place *place)
{
	const char *slash, *rest;
	size_t len, name_len;
	enum name_kind kind;
	int rc;

	memset(place, 0, sizeof(*place));
	if (!path[0]) {
		place->what = PLACE_ROOT;
		return 0;
	}
	slash = strchr(path, '/');
	len = slash ? (size_t)(slash - path) : strlen(path);
	rest = slash ? slash + 1 : "";
	rc = split_rev(path, len, &name_len, place->rev);
	if (rc)
		return rc;
	snprintf(place->org, sizeof(place->org), "%.*s", (int)name_len, path);
	/* name@rev at the top is a legacy repo; a bare name may be either. */
	if (name_len == len) {
		rc = classify(hub, place->org, &kind);
		if (rc)
			return rc;
	} else {
		kind = NAME_REPO;
	}
	if (kind == NAME_REPO) {
		snprintf(place->repo_id, sizeof(place->repo_id), "%s", place->org);
		place->org[0] = '\0';
		place->what = PLACE_REPO;
		place->inside = rest;
		return 0;
	}
	if (!slash) {
		place->what = PLACE_ORG;
		return 0;
	}
	slash = strchr(rest, '/');
	len = slash ? (size_t)(slash - rest) : strlen(rest);
	rc = split_rev(rest, len, &name_len, place->rev);
	if (rc)
		return rc;
	snprintf(place->repo_id, sizeof(place->repo_id), "%s/%.*s", place->org, (int)name_len,
	         rest);
	place->what = PLACE_REPO;
	place->inside = slash ? slash + 1 : "";
	return 0;
}

/* A name or repo known now is known this much longer at least, so that a
 * caller told "no request" is not made one by the clock meanwhile. */
#define HF_NOWAIT_MARGIN 1

/* Whether the top-level name would be asked (classify) now. */
static bool name_would_block(struct hub *hub, const char *name, enum name_kind *kind)
{
	struct hf_hub *hf = hub->priv;
	struct hf_name *entry;
	bool block = true;

	if (pinned_repo(hf, name) || pinned_org(hf, name)) {
		*kind = pinned_repo(hf, name) ? NAME_REPO : NAME_ORG;
		return false;
	}
	pthread_mutex_lock(&hf->lock);
	entry = find_name_locked(hf, name);
	if (entry && entry->kind != NAME_LOADING && time(NULL) + HF_NOWAIT_MARGIN < entry->until &&
	    (entry->kind != NAME_MISSING || entry->generation == hf_token_generation(&hf->token))) {
		*kind = entry->kind;
		block = false;
	}
	pthread_mutex_unlock(&hf->lock);
	return block;
}

/* Whether repo_get would load the repo now, or wait for its load. */
static bool repo_would_block(struct hub *hub, const char *repo_id, const char *rev)
{
	struct hf_hub *hf = hub->priv;
	struct hf_repo *repo;
	time_t now = time(NULL);
	bool block = true;

	pthread_mutex_lock(&hf->lock);
	repo = find_repo_locked(hf, repo_id, rev);
	if (repo && !repo->loading)
		block = !repo_fresh_locked(hf, repo, now + HF_NOWAIT_MARGIN) &&
			!(!repo->tree && repo->error && now + HF_NOWAIT_MARGIN < repo->error_until &&
			  repo->error_generation == hf_token_generation(&hf->token));
	pthread_mutex_unlock(&hf->lock);
	return block;
}

/* hub_ops.would_block: what parse_place and repo_get would do, from what
 * is in memory; a path it cannot parse is answered at once (an error). */
static bool hf_would_block(struct hub *hub, const char *path, bool list)
{
	char name[HF_ID_PART_MAX + 1], rev[HF_REV_MAX + 1], repo_id[HF_REPO_ID_MAX + 1];
	const char *slash, *rest;
	size_t len, name_len;
	enum name_kind kind = NAME_REPO;

	(void)list;
	if (!path[0])
		return false; /* the root lists what is known */
	slash = strchr(path, '/');
	len = slash ? (size_t)(slash - path) : strlen(path);
	rest = slash ? slash + 1 : "";
	if (split_rev(path, len, &name_len, rev) != 0)
		return false;
	snprintf(name, sizeof(name), "%.*s", (int)name_len, path);
	if (name_len == len && name_would_block(hub, name, &kind))
		return true;
	if (kind == NAME_MISSING || (kind == NAME_ORG && !slash))
		return false;
	if (kind == NAME_REPO)
		return repo_would_block(hub, name, rev);
	slash = strchr(rest, '/');
	len = slash ? (size_t)(slash - rest) : strlen(rest);
	if (split_rev(rest, len, &name_len, rev) != 0)
		return false;
	snprintf(repo_id, sizeof(repo_id), "%s/%.*s", name, (int)name_len, rest);
	return repo_would_block(hub, repo_id, rev);
}

static void item_entry(const struct hf_tree *tree, const struct hf_item *item, const char *name,
		       struct entry *entry)
{
	entry_make(entry, name, item->dir ? ENTRY_DIR : ENTRY_FILE, item->size, tree->mtime);
	entry->digest = item->digest;
}

/* ---- the hub ---- */

/* An option of a number, checked by config_resolve with these bounds
 * already; absent: *out keeps the default. */
static int parse_unsigned(const char *text, unsigned min, unsigned max, unsigned *out)
{
	uint64_t value;
	int rc = 0;

	if (text)
		rc = config_parse_unsigned(text, min, max, &value);
	if (text && rc == 0)
		*out = (unsigned)value;
	return rc;
}

/* "CALLS[/SECONDS]"; absent: the defaults (set once the token is known). */
static int parse_budget(const char *text, unsigned *calls, unsigned *window)
{
	*window = HF_API_WINDOW_DEFAULT;
	return text ? config_parse_rate(text, HF_API_BUDGET_MAX, 1, HUB_OPTION_BUDGET_SECONDS_MAX,
					calls, window)
		    : 0;
}

/* -o hf_repos=org/a,org/b@rev,datasets/org/c: those of this hub's type. */
static int parse_pinned(struct hf_hub *hf, const char *list, char *why, size_t why_size)
{
	char *copy = list ? strdup(list) : NULL, *save = NULL;
	int rc = 0;

	if (list && !copy)
		return -ENOMEM;
	for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; item && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		bool dataset = strncmp(item, "datasets/", 9) == 0;
		char *id = dataset ? item + 9 : item, rev[HF_REV_MAX + 1], **grown;
		char *slash = strchr(id, '/');
		size_t name_len;
		if (strncmp(id, "models/", 7) == 0)
			id += 7;
		slash = strchr(id, '/');
		if ((slash && (!valid_id_part(id, (size_t)(slash - id)) ||
			       split_rev(slash + 1, strlen(slash + 1), &name_len, rev) != 0)) ||
		    (!slash && split_rev(id, strlen(id), &name_len, rev) != 0)) {
			snprintf(why, why_size, "hf_repos: '%s' is not a repo id (org/name[@rev])",
			         item);
			rc = -EINVAL;
			break;
		}
		if (dataset != (hf->type == HF_REPO_DATASET))
			continue;
		grown = realloc(hf->pinned, (hf->npinned + 1) * sizeof(*grown));
		if (!grown || !(grown[hf->npinned] = strdup(id))) {
			if (grown)
				hf->pinned = grown;
			rc = -ENOMEM;
			break;
		}
		hf->pinned = grown;
		hf->npinned++;
	}
	free(copy);
	return rc;
}

static void hf_close(struct hub *hub)
{
	struct hf_hub *hf = hub->priv;

	if (!hf)
		return;
	for (size_t i = 0; i < hf->nrepos; i++)
		repo_free(hf->repos[i]);
	free(hf->repos);
	for (size_t i = 0; i < hf->npinned; i++)
		free(hf->pinned[i]);
	free(hf->pinned);
	free(hf->names);
	free(hf->endpoint);
	free(hf->client_cache);
	if (hf->token_open)
		hf_token_close(&hf->token);
	pthread_cond_destroy(&hf->loaded);
	pthread_mutex_destroy(&hf->lock);
	free(hf);
	hub->priv = NULL;
}

static int hf_open_type(struct hub *hub, enum hf_repo_type type, char *why, size_t why_size)
{
	const struct config *cfg = hub->env->config;
	const char *endpoint = config_hub_option(cfg, "hf_endpoint");
	char token_how[4 * PATH_MAX];
	struct hf_hub *hf = calloc(1, sizeof(*hf));
	int rc = -ENOMEM;

	snprintf(why, why_size, "out of memory");
	if (!hf)
		return -ENOMEM;
	pthread_mutex_init(&hf->lock, NULL);
	pthread_cond_init(&hf->loaded, NULL);
	hub->priv = hf;
	hf->type = type;
	hf->started = time(NULL);
	hf->ttl = HF_TTL_DEFAULT;
	hf->max_repos = HF_MAX_REPOS_DEFAULT;
	hf->hub = hub;
	hf->env_offline = config_env_true("HF_HUB_OFFLINE") || config_env_true("TRANSFORMERS_OFFLINE");
	hf->endpoint = strdup(endpoint ? endpoint : HF_ENDPOINT_DEFAULT);
	hf->names = calloc(HF_NAMES_MAX, sizeof(*hf->names));
	if (!hf->endpoint || !hf->names || client_cache_dir("huggingface", &hf->client_cache))
		goto fail;
	hf->endpoint[strcspn(hf->endpoint, "?#")] = '\0';
	while (hf->endpoint[0] && hf->endpoint[strlen(hf->endpoint) - 1] == '/')
		hf->endpoint[strlen(hf->endpoint) - 1] = '\0';
	rc = fetch_url_origin(hf->endpoint, hf->origin, sizeof(hf->origin));
	if (rc) {
		snprintf(why, why_size, "hf_endpoint: %s is not an http(s) URL", hf->endpoint);
		goto fail;
	}
	if (parse_unsigned(config_hub_option(cfg, "hf_ttl"), 0, HF_TTL_MAX, &hf->ttl) != 0 ||
	    parse_unsigned(config_hub_option(cfg, "hf_max_repos"), 1, HF_MAX_REPOS_MAX,
			   &hf->max_repos) != 0) {
		snprintf(why, why_size, "hf_ttl must be seconds and hf_max_repos at least 1");
		rc = -EINVAL;
		goto fail;
	}
	rc = parse_budget(config_hub_option(cfg, "hf_api_budget"), &hf->api.budget,
			  &hf->api.window);
	if (rc) {
		snprintf(why, why_size, "hf_api_budget must be CALLS or CALLS/SECONDS (say 500/300)");
		goto fail;
	}
	rc = parse_pinned(hf, config_hub_option(cfg, "hf_repos"), why, why_size);
	if (rc)
		goto fail;
	rc = hf_token_open(&hf->token, cfg, why, why_size);
	hf->token_open = true;
	if (rc)
		goto fail;
	hf_token_describe(&hf->token, token_how, sizeof(token_how));
	/* The budget follows the token found now; one found later is paced
	 * as anonymous, which stays within the Hub's limit. */
	if (!config_hub_option(cfg, "hf_api_budget"))
		hf->api.budget = hf->token.header ? HF_API_BUDGET_TOKEN : HF_API_BUDGET_ANONYMOUS;
	/* One budget for the endpoint, whichever hub (models, datasets) calls. */
	snprintf(hf->api.budget_name, sizeof(hf->api.budget_name), "%s api", hf->origin);
	hf->api.name = hub->name;
	hf->api.type = type;
	hf->api.fetcher = hub->env->fetcher;
	hf->api.budgets = hub->env->budgets;
	hf->api.endpoint = hf->endpoint;
	hf->api.origin = hf->origin;
	hf->api.token = &hf->token;
	hf->api.retries = cfg->retries;
	hf->api.retry_time = (long)cfg->retry_time;
	log_info("%s: %s%s, %s", hub->name, hf->endpoint, hf_offline(hf) ? " (offline)" : "",
		 token_how);
	return 0;
fail:
	hf_close(hub);
	return rc;
}

static int hf_open_models(struct hub *hub, char *why, size_t why_size)
{
	return hf_open_type(hub, HF_REPO_MODEL, why, why_size);
}

static int hf_open_datasets(struct hub *hub, char *why, size_t why_size)
{
	return hf_open_type(hub, HF_REPO_DATASET, why, why_size);
}

/* Its open, on a hub no mount serves: open reads its settings and the
 * token's file, and sends no request. */
static int hf_check(const struct config *cfg, char *why, size_t why_size)
{
	const struct hub_env env = { .config = cfg };
	struct hub hub = { .env = &env, .name = hub_hf_models_ops.name };
	int rc = hf_open_type(&hub, HF_REPO_MODEL, why, why_size);

	hf_close(&hub);
	return rc;
}

/* Names listed at the top or in an org: those pinned, kept on disk, or
 * remembered; duplicates dropped. */
struct name_set {
	char **names;
	size_t count;
};

static int name_set_add(struct name_set *set, const char *name, size_t len)
{
	char **grown;

	for (size_t i = 0; i < set->count; i++)
		if (strlen(set->names[i]) == len && strncmp(set->names[i], name, len) == 0)
			return 0;
	grown = realloc(set->names, (set->count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	set->names = grown;
	set->names[set->count] = strndup(name, len);
	if (!set->names[set->count])
		return -ENOMEM;
	set->count++;
	return 0;
}

static void name_set_free(struct name_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free(set->names[i]);
	free(set->names);
}

/* The names kept on disk below rel: every folder with a valid name. */
static int add_kept_names(struct hub *hub, const char *rel, struct name_set *set)
{
	DIR *dir = cache_opendir(hub->env->cache, rel);
	struct dirent *d;
	int rc = 0;

	if (!dir)
		return 0;
	while ((d = readdir(dir)) != NULL && rc == 0)
		if (d->d_type == DT_DIR && valid_id_part(d->d_name, strlen(d->d_name)))
			rc = name_set_add(set, d->d_name, strlen(d->d_name));
	closedir(dir);
	return rc;
}

static int list_known(struct hub *hub, const char *org, struct entry_list *out)
{
	struct hf_hub *hf = hub->priv;
	struct name_set set = { 0 };
	size_t org_len = org ? strlen(org) : 0;
	char rel[PATH_MAX];
	struct entry entry;
	int rc = 0;

	for (size_t i = 0; i < hf->npinned && rc == 0; i++) {
		const char *p = hf->pinned[i];
		if (!org)
			rc = name_set_add(&set, p, strcspn(p, "/@"));
		else if (strncmp(p, org, org_len) == 0 && p[org_len] == '/')
			rc = name_set_add(&set, p + org_len + 1, strlen(p + org_len + 1));
	}
	snprintf(rel, sizeof(rel), HF_META_DIR "/%s%s%s", hf_repo_type_plural(hf->type),
		 org ? "/" : "", org ? org : "");
	if (rc == 0)
		rc = add_kept_names(hub, rel, &set);
	pthread_mutex_lock(&hf->lock);
	for (size_t i = 0; i < hf->nnames && rc == 0 && !org; i++)
		if (hf->names[i].kind == NAME_ORG || hf->names[i].kind == NAME_REPO)
			rc = name_set_add(&set, hf->names[i].name, strlen(hf->names[i].name));
	for (size_t i = 0; i < hf->nrepos && rc == 0 && org; i++) {
		const struct hf_repo *r = hf->repos[i];
		if (r->tree && !r->rev[0] && strncmp(r->repo_id, org, org_len) == 0 &&
		    r->repo_id[org_len] == '/')
			rc = name_set_add(&set, r->repo_id + org_len + 1,
			                  strlen(r->repo_id + org_len + 1));
	}
	pthread_mutex_unlock(&hf->lock);
	for (size_t i = 0; i < set.count && rc == 0; i++) {
		entry_make(&entry, set.names[i], ENTRY_DIR, 0, hf->started);
		rc = entry_list_add(out, &entry);
	}
	name_set_free(&set);
	return rc;
}

struct list_walk {
	const struct hf_tree *tree;
	struct entry_list *out;
};

static int list_child(void *ctx, const char *name, const struct hf_item *item)
{
	struct list_walk *walk = ctx;
	struct entry entry;

	item_entry(walk->tree, item, name, &entry);
	return entry_list_add(walk->out, &entry);
}

static int hf_list(struct hub *hub, const char *dir, struct entry_list *out)
{
	struct hf_place place;
	struct hf_repo *repo;
	int rc = parse_place(hub, dir, &place);

	if (rc)
		return rc;
	if (place.what != PLACE_REPO)
		return list_known(hub, place.what == PLACE_ORG ? place.org : NULL, out);
	rc = repo_get(hub, place.repo_id, place.rev, &repo);
	if (rc)
		return rc;
	struct list_walk walk = { .tree = repo->tree, .out = out };
	rc = hf_tree_children(repo->tree, place.inside, list_child, &walk);
	repo_put(hub, repo);
	return rc;
}

static int hf_lookup(struct hub *hub, const char *path, struct entry *out)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	const struct hf_item *item;
	struct hf_place place;
	struct hf_repo *repo;
	int rc = parse_place(hub, path, &place);

	if (rc)
		return rc;
	if (place.what != PLACE_REPO) {
		entry_make(out, name, ENTRY_DIR, 0, ((struct hf_hub *)hub->priv)->started);
		return 0;
	}
	rc = repo_get(hub, place.repo_id, place.rev, &repo);
	if (rc)
		return rc;
	if (!place.inside[0]) {
		entry_make(out, name, ENTRY_DIR, 0, repo->tree->mtime);
	} else {
		item = hf_tree_find(repo->tree, place.inside);
		if (item)
			item_entry(repo->tree, item, name, out);
		else
			rc = -ENOENT;
	}
	repo_put(hub, repo);
	return rc;
}

static int fill_source(struct hub *hub, const struct hf_repo *repo, const char *inside,
		       const struct hf_item *item, struct source *out)
{
	struct hf_hub *hf = hub->priv;
	const char *plural = hf_repo_type_plural(hf->type);
	char *base = NULL;
	int rc = -ENOMEM;

	memset(out, 0, sizeof(*out));
	out->kind = SOURCE_FILE;
	out->digest = item->digest;
	out->size = item->size;
	/* The resolve URL of the commit, not the branch: every file of one
	 * listing comes from one commit. */
	if (asprintf(&base, "%s/%s%s/resolve/%s/", hf->endpoint,
	             hf->type == HF_REPO_DATASET ? "datasets/" : "", repo->repo_id,
	             repo->commit) < 0) {
		base = NULL;
		goto out;
	}
	rc = fetch_url_join(base, inside, &out->url);
	if (rc)
		goto out;
	rc = -ENOMEM;
	if (asprintf(&out->cache_path, "huggingface/%s/%s@%s/%s", plural, repo->repo_id,
		     repo->commit, inside) < 0) {
		out->cache_path = NULL;
		goto out;
	}
	rc = hf_token_header(&hf->token, &out->auth_header, NULL);
	if (rc)
		goto out;
	rc = -ENOMEM;
	if (out->auth_header && !(out->auth_origin = strdup(hf->origin)))
		goto out;
	out->offline = hf_offline(hf);
	/* huggingface_hub names a blob by its etag: the sha256 of an LFS
	 * file, git's blob id of any other; both are our digest. */
	rc = source_add_local_take(out, hf_cache_blob_path(hf->client_cache, hf->type,
							   repo->repo_id, item->digest.hex));
out:
	free(base);
	if (rc)
		source_clear(out);
	return rc;
}

/* The file at path: its place, its repo (a reference for the caller to
 * put back) and its item. -EISDIR for a folder, -ENOENT for no file. */
static int find_file(struct hub *hub, const char *path, struct hf_place *place,
		     struct hf_repo **repo, const struct hf_item **item)
{
	int rc = parse_place(hub, path, place);

	if (rc)
		return rc;
	if (place->what != PLACE_REPO || !place->inside[0])
		return -EISDIR;
	rc = repo_get(hub, place->repo_id, place->rev, repo);
	if (rc)
		return rc;
	*item = hf_tree_find((*repo)->tree, place->inside);
	rc = !*item ? -ENOENT : (*item)->dir ? -EISDIR : 0;
	if (rc)
		repo_put(hub, *repo);
	return rc;
}

static int hf_source(struct hub *hub, const char *path, struct source *out)
{
	const struct hf_item *item;
	struct hf_place place;
	struct hf_repo *repo;
	int rc = find_file(hub, path, &place, &repo, &item);

	if (rc)
		return rc;
	rc = fill_source(hub, repo, place.inside, item, out);
	repo_put(hub, repo);
	return rc;
}

/* A repo folder's metadata: the commit its revision is, how many files and
 * bytes it holds, whether it is private or gated (omnihub info). */
static int repo_meta(struct hub *hub, const struct hf_place *place, char **json)
{
	struct hf_hub *hf = hub->priv;
	struct hf_repo *repo;
	uint64_t files = 0, bytes = 0;
	cJSON *meta;
	int rc = repo_get(hub, place->repo_id, place->rev, &repo);

	if (rc)
		return rc;
	for (size_t i = 0; i < repo->tree->count; i++) {
		if (repo->tree->items[i].dir)
			continue;
		files++;
		bytes += repo->tree->items[i].size;
	}
	rc = -ENOMEM;
	meta = cJSON_CreateObject();
	pthread_mutex_lock(&hf->lock); /* private and gated change with a load */
	if (meta &&
	    cJSON_AddStringToObject(meta, "repo_type",
				    hf->type == HF_REPO_DATASET ? "dataset" : "model") &&
	    cJSON_AddStringToObject(meta, "repo", repo->repo_id) &&
	    cJSON_AddStringToObject(meta, "revision", repo->rev[0] ? repo->rev : "main") &&
	    cJSON_AddStringToObject(meta, "commit", repo->commit) &&
	    cJSON_AddNumberToObject(meta, "files", (double)files) &&
	    cJSON_AddNumberToObject(meta, "size", (double)bytes) &&
	    cJSON_AddBoolToObject(meta, "private", repo->private) &&
	    (repo->gated[0] ? cJSON_AddStringToObject(meta, "gated", repo->gated)
			    : cJSON_AddFalseToObject(meta, "gated")) &&
	    (*json = cJSON_PrintUnformatted(meta)) != NULL)
		rc = 0;
	pthread_mutex_unlock(&hf->lock);
	cJSON_Delete(meta);
	repo_put(hub, repo);
	return rc;
}

/* user.omnihub.meta: where in the Hub a file is; of a repo folder, what
 * the repo is (repo_meta). */
static int hf_meta(struct hub *hub, const char *path, char **json)
{
	struct hf_hub *hf = hub->priv;
	const struct hf_item *item;
	struct hf_place place;
	struct hf_repo *repo;
	cJSON *meta;
	int rc = find_file(hub, path, &place, &repo, &item);

	if (rc == -EISDIR && place.what == PLACE_REPO && !place.inside[0])
		return repo_meta(hub, &place, json);
	if (rc)
		return rc == -EISDIR ? -ENOENT : rc;
	rc = -ENOMEM;
	meta = cJSON_CreateObject();
	if (meta &&
	    cJSON_AddStringToObject(meta, "repo_type",
				    hf->type == HF_REPO_DATASET ? "dataset" : "model") &&
	    cJSON_AddStringToObject(meta, "repo", repo->repo_id) &&
	    cJSON_AddStringToObject(meta, "commit", repo->commit) &&
	    cJSON_AddStringToObject(meta, "path", place.inside) &&
	    cJSON_AddBoolToObject(meta, "lfs", item->digest.algo == DIGEST_SHA256) &&
	    (*json = cJSON_PrintUnformatted(meta)) != NULL)
		rc = 0;
	cJSON_Delete(meta);
	repo_put(hub, repo);
	return rc;
}

/* hub_ops.commit_of: the repo as a lookup of its folder resolves it. */
static int hf_commit_of(struct hub *hub, const char *path, char out[41])
{
	struct hf_place place;
	struct hf_repo *repo;
	int rc = parse_place(hub, path, &place);

	if (rc == 0 && (place.what != PLACE_REPO || place.inside[0]))
		rc = -ENOENT;
	if (rc == 0)
		rc = repo_get(hub, place.repo_id, place.rev, &repo);
	if (rc == 0) {
		snprintf(out, 41, "%s", repo->commit);
		repo_put(hub, repo);
	}
	return rc;
}

static const struct hub_option_spec hf_options[] = {
	{ "hf_endpoint", "URL", "the Hub (default: $HF_ENDPOINT, else\n" HF_ENDPOINT_DEFAULT ")",
	  HUB_OPTION_TEXT, "HF_ENDPOINT", 0, 0 },
	{ "hf_token_file", "FILE",
	  "token file, used when neither $HF_TOKEN nor\n$HF_TOKEN_PATH nor $HF_HOME/token has one",
	  HUB_OPTION_TEXT, NULL, 0, 0 },
	{ "hf_repos", "REPO[,REPO...]",
	  "repos always listed: org/name[@rev], or\ndatasets/org/name for a dataset", HUB_OPTION_LIST,
	  NULL, 0, 0 },
	{ "hf_ttl", "SECONDS",
	  "ask a branch's commit, and a name found\nmissing, again after this long (default: 600)",
	  HUB_OPTION_SECONDS, NULL, 0, HF_TTL_MAX },
	{ "hf_api_budget", "CALLS[/SECONDS]",
	  "API calls the models and datasets hubs make\ntogether per window; 0: no pacing "
	  "(default:\n500/300, 1000/300 with a token: the Hub's\nlimits)",
	  HUB_OPTION_BUDGET, NULL, 0, HF_API_BUDGET_MAX },
	{ "hf_max_repos", "N",
	  "repos' file lists kept in memory; the least\nrecently used go first (default: 64)",
	  HUB_OPTION_UNSIGNED, NULL, 1, HF_MAX_REPOS_MAX },
	{ NULL, NULL, NULL, HUB_OPTION_TEXT, NULL, 0, 0 },
};

/* ---- search ---- */

/* The Hub's search: /api/<type>s?search=QUERY&limit=N, as huggingface_hub's
 * list_models(search=...); one call, with the token (a private repo of
 * the user's is found too). Ids that are no repo id are left out. */
static int hf_search(struct hub *hub, const char *query, unsigned limit,
		     int (*fn)(void *ctx, const char *path), void *ctx)
{
	static const char hex[] = "0123456789ABCDEF";
	struct hf_hub *hf = hub->priv;
	struct fetch_request req = { .auth_origin = hf->origin };
	struct fetch_buffer body = { 0 };
	struct fetch_response resp;
	char *escaped = NULL, *url = NULL, *auth = NULL, why[128];
	const cJSON *item;
	cJSON *list = NULL;
	size_t n = 0;
	int rc = 0;

	escaped = malloc(3 * strlen(query) + 1);
	if (!escaped) {
		rc = -ENOMEM;
		goto out;
	}
	for (const unsigned char *p = (const unsigned char *)query; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			escaped[n++] = (char)*p;
		} else {
			escaped[n++] = '%';
			escaped[n++] = hex[*p >> 4];
			escaped[n++] = hex[*p & 15];
		}
	}
	escaped[n] = '\0';
	if (asprintf(&url, "%s/api/%s?search=%s&limit=%u", hf->endpoint,
		     hf_repo_type_plural(hf->type), escaped, limit) < 0) {
		url = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (hf->token_open) {
		rc = hf_token_header(&hf->token, &auth, NULL);
		if (rc)
			goto out;
	}
	req.url = url;
	req.auth_header = auth;
	/* A search is an API call like the others: within the Hub's limit. */
	rc = hf_api_pace(&hf->api, url, &resp);
	if (rc == 0)
		rc = fetch_request_run(hf->api.fetcher, &req, HF_TREE_MAX_BYTES, &body, &resp);
	if (rc) {
		log_error("%s: %s: %s", hub->name, resp.url_for_log, resp.error);
		goto out;
	}
	list = json_parse(body.data, body.len, why, sizeof(why));
	if (!cJSON_IsArray(list)) {
		log_error("%s: %s: not a list of repos: %s", hub->name, resp.url_for_log,
			  list ? "another JSON value" : why);
		rc = -EIO;
		goto out;
	}
	n = 0;
	cJSON_ArrayForEach(item, list) {
		const char *id = json_string(item, "id"), *slash;
		if (!id || n >= limit)
			continue;
		slash = strchr(id, '/');
		if (slash ? !valid_id_part(id, (size_t)(slash - id)) ||
			    !valid_id_part(slash + 1, strlen(slash + 1))
			  : !valid_id_part(id, strlen(id)))
			continue;
		n++;
		rc = fn(ctx, id);
		if (rc)
			break;
	}
out:
	cJSON_Delete(list);
	free(body.data);
	if (auth)
		hf_token_free_header(auth);
	free(url);
	free(escaped);
	return rc;
}

const struct hub_ops hub_hf_models_ops = {
	.name = "huggingface",
	.flags = HUB_SIZES_KNOWN | HUB_USES_TOKEN,
	.options = hf_options,
	.check = hf_check,
	.open = hf_open_models,
	.list = hf_list,
	.lookup = hf_lookup,
	.would_block = hf_would_block,
	.source = hf_source,
	.meta = hf_meta,
	.client_repos = "huggingface/hub/models--",
	.commit_of = hf_commit_of,
	.close = hf_close,
	.search = hf_search,
};

/* The same options serve both: they are declared once, above. */
const struct hub_ops hub_hf_datasets_ops = {
	.name = "huggingface-datasets",
	.flags = HUB_SIZES_KNOWN | HUB_USES_TOKEN,
	.open = hf_open_datasets,
	.list = hf_list,
	.lookup = hf_lookup,
	.would_block = hf_would_block,
	.source = hf_source,
	.meta = hf_meta,
	.client_repos = "huggingface/hub/datasets--",
	.commit_of = hf_commit_of,
	.close = hf_close,
	.search = hf_search,
};
