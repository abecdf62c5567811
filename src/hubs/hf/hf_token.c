/* hf_token.c: the Hugging Face token as huggingface_hub finds it, trimmed,
 * its file read again when it changes. Not for: sending the token
 * (hf_api.c) or saying it anywhere: only where it came from is said. */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hf_token.h"
#include "log.h"

/* Far past any real token (hf_ and about 34 characters). */
#define HF_TOKEN_TEXT_MAX 4096

char *hf_token_trim(char *text)
{
	size_t n = 0, start;

	/* As huggingface_hub's _clean_token: every \r and \n goes, then the
	 * spaces around. */
	for (const char *p = text; *p; p++)
		if (*p != '\r' && *p != '\n')
			text[n++] = *p;
	text[n] = '\0';
	start = strspn(text, " \t\v\f");
	n -= start;
	memmove(text, text + start, n + 1);
	while (n > 0 && strchr(" \t\v\f", text[n - 1]))
		text[--n] = '\0';
	return text;
}

void hf_token_free_header(char *header)
{
	if (header)
		explicit_bzero(header, strlen(header));
	free(header);
}

/* "Authorization: Bearer <token>" into *out, NULL for an empty token;
 * -EINVAL for a character a header may not carry (a token is printable
 * ASCII without spaces: anything else could inject a header). */
static int make_header(const char *token, char **out)
{
	*out = NULL;
	if (!token[0])
		return 0;
	for (const char *p = token; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return -EINVAL;
	if (asprintf(out, "Authorization: Bearer %s", token) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* The file, trimmed, into text (a longer one is no token: cut, it fails
 * the Hub's check rather than ours). */
static int read_token_file(const char *path, char text[HF_TOKEN_TEXT_MAX])
{
	FILE *f = fopen(path, "re");
	size_t n;
	int rc = 0;

	text[0] = '\0';
	if (!f)
		return -errno;
	n = fread(text, 1, HF_TOKEN_TEXT_MAX - 1, f);
	text[n] = '\0';
	if (ferror(f))
		rc = -EIO;
	fclose(f);
	if (memchr(text, '\0', n))
		rc = -EINVAL; /* a NUL: not a text file */
	hf_token_trim(text);
	return rc;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Puts header (taken) in place of the token held, bumping the generation
 * when it differs. */
static void replace_locked(struct hf_token *tok, char *header)
{
	bool changed = (header == NULL) != (tok->header == NULL) ||
	               (header && strcmp(header, tok->header) != 0);

	hf_token_free_header(tok->header);
	tok->header = header;
	if (changed)
		tok->generation++;
}

/* Looks at the token files; reads the first that exists again when it is
 * another file than last time or has changed. opening: a failure is the
 * caller's (the mount does not start); later it is logged and the token
 * dropped. */
static int refresh_locked(struct hf_token *tok, bool opening, char *why, size_t why_size)
{
	char text[HF_TOKEN_TEXT_MAX];
	struct stat st = {0};
	char *header = NULL;
	int index = -1, rc = 0;

	if (tok->from_env)
		return 0;
	for (int i = 0; i < HF_TOKEN_FILES && index < 0; i++)
		if (tok->files[i] && stat(tok->files[i], &st) == 0)
			index = i;
	if (!opening && index == tok->seen_index && (index < 0 || same_file(&st, &tok->seen)))
		return 0;
	tok->seen_index = index;
	tok->seen = st;
	tok->from[0] = '\0';
	if (index < 0) {
		/* A file asked for by name (-o hf_token_file) must be there. */
		if (opening && tok->files[HF_TOKEN_FILES - 1]) {
			snprintf(why, why_size, "cannot read the token (%s): %s",
			         tok->files[HF_TOKEN_FILES - 1], strerror(ENOENT));
			rc = -ENOENT;
		} else if (!opening) {
			char files[3 * PATH_MAX];
			hf_token_files(tok, files, sizeof(files));
			log_info("huggingface token: no token file now (read: %s)", files);
		}
		goto out;
	}
	snprintf(tok->from, sizeof(tok->from), "%s", tok->files[index]);
	rc = read_token_file(tok->files[index], text);
	if (rc == 0)
		rc = make_header(text, &header);
	explicit_bzero(text, sizeof(text));
	if (rc == 0 && !header)
		snprintf(tok->empty_note, sizeof(tok->empty_note),
		         "the token file %s is empty once spaces are trimmed", tok->files[index]);
	else if (rc == 0)
		tok->empty_note[0] = '\0';
	if (rc && opening) {
		snprintf(why, why_size, "cannot read the token (%s): %s", tok->files[index],
		         rc == -EINVAL ? "it holds a character no token has" : strerror(-rc));
	} else if (rc) {
		log_warn("huggingface token: %s changed but cannot be read (%s): going on without "
		         "a token",
		         tok->files[index],
		         rc == -EINVAL ? "it holds a character no token has" : strerror(-rc));
		rc = 0;
	} else if (!opening) {
		log_info("huggingface token: %s changed: read again (%s)", tok->files[index],
		         header ? "a token" : "empty: no token");
	}
out:
	replace_locked(tok, header);
	return rc;
}

/* The variable's value, trimmed, into text: true when it holds a token. */
static bool env_token(struct hf_token *tok, const char *name, char text[HF_TOKEN_TEXT_MAX])
{
	const char *value = config_env(name);

	if (!value)
		return false;
	snprintf(text, HF_TOKEN_TEXT_MAX, "%s", value);
	hf_token_trim(text);
	if (text[0])
		return true;
	snprintf(tok->empty_note, sizeof(tok->empty_note),
	         "$%s is set but empty once spaces are trimmed", name);
	return false;
}

int hf_token_open(struct hf_token *tok, const struct config *cfg, char *why, size_t why_size)
{
	const char *named = config_hub_option(cfg, "hf_token_file");
	const char *home = config_env("HF_HOME"), *xdg = config_env("XDG_CACHE_HOME");
	char text[HF_TOKEN_TEXT_MAX];
	int rc = -ENOMEM, made = 0;

	memset(tok, 0, sizeof(*tok));
	pthread_mutex_init(&tok->lock, NULL);
	tok->seen_index = -1;
	snprintf(why, why_size, "out of memory");
	/* As huggingface_hub: HF_TOKEN when set (HUGGING_FACE_HUB_TOKEN only
	 * when it is not), else the files. */
	if (env_token(tok, config_env("HF_TOKEN") ? "HF_TOKEN" : "HUGGING_FACE_HUB_TOKEN", text)) {
		tok->from_env = true;
		snprintf(tok->from, sizeof(tok->from), "$%s",
		         config_env("HF_TOKEN") ? "HF_TOKEN" : "HUGGING_FACE_HUB_TOKEN");
		rc = make_header(text, &tok->header);
		explicit_bzero(text, sizeof(text));
		if (rc == -EINVAL)
			snprintf(why, why_size,
			         "cannot read the token (%s): it holds a character no "
			         "token has",
			         tok->from);
		return rc;
	}
	if (config_env("HF_TOKEN_PATH") && !(tok->files[0] = strdup(config_env("HF_TOKEN_PATH"))))
		return -ENOMEM;
	if (home)
		made = asprintf(&tok->files[1], "%s/token", home);
	else if (xdg)
		made = asprintf(&tok->files[1], "%s/huggingface/token", xdg);
	else if (config_env("HOME"))
		made = asprintf(&tok->files[1], "%s/.cache/huggingface/token", config_env("HOME"));
	if (made < 0) {
		tok->files[1] = NULL;
		return -ENOMEM;
	}
	if (named && !(tok->files[2] = strdup(named)))
		return -ENOMEM;
	pthread_mutex_lock(&tok->lock);
	rc = refresh_locked(tok, true, why, why_size);
	pthread_mutex_unlock(&tok->lock);
	return rc;
}

void hf_token_close(struct hf_token *tok)
{
	hf_token_free_header(tok->header);
	tok->header = NULL;
	for (int i = 0; i < HF_TOKEN_FILES; i++) {
		free(tok->files[i]);
		tok->files[i] = NULL;
	}
	pthread_mutex_destroy(&tok->lock);
}

int hf_token_header(struct hf_token *tok, char **header, unsigned *generation)
{
	int rc = 0;

	*header = NULL;
	pthread_mutex_lock(&tok->lock);
	refresh_locked(tok, false, NULL, 0);
	if (tok->header && !(*header = strdup(tok->header)))
		rc = -ENOMEM;
	if (generation)
		*generation = tok->generation;
	pthread_mutex_unlock(&tok->lock);
	return rc;
}

unsigned hf_token_generation(struct hf_token *tok)
{
	unsigned generation;

	pthread_mutex_lock(&tok->lock);
	refresh_locked(tok, false, NULL, 0);
	generation = tok->generation;
	pthread_mutex_unlock(&tok->lock);
	return generation;
}

void hf_token_files(const struct hf_token *tok, char *out, size_t out_size)
{
	size_t n = 0;

	out[0] = '\0';
	if (tok->from_env) {
		snprintf(out, out_size, "none: %s holds the token", tok->from);
		return;
	}
	for (int i = 0; i < HF_TOKEN_FILES; i++)
		if (tok->files[i] && n < out_size)
			n += (size_t)snprintf(out + n, out_size - n, "%s%s", n ? ", " : "",
			                      tok->files[i]);
	if (!out[0])
		snprintf(out, out_size, "none: $HF_HOME and $HOME are unset");
}

/* Why there is no token, locked. */
static void why_none_locked(const struct hf_token *tok, char *out, size_t out_size)
{
	char files[3 * PATH_MAX];

	hf_token_files(tok, files, sizeof(files));
	/* Cut when long: a message, not a path to open. */
	if ((tok->empty_note[0]
	         ? snprintf(out, out_size, "%s (token files read: %s)", tok->empty_note, files)
	         : snprintf(out, out_size, "$HF_TOKEN is unset and no token file exists (read: %s)",
	                    files)) < 0)
		out[0] = '\0';
}

void hf_token_why_none(struct hf_token *tok, char *out, size_t out_size)
{
	pthread_mutex_lock(&tok->lock);
	why_none_locked(tok, out, out_size);
	pthread_mutex_unlock(&tok->lock);
}

void hf_token_describe(struct hf_token *tok, char *out, size_t out_size)
{
	char why[4 * PATH_MAX];

	pthread_mutex_lock(&tok->lock);
	if (tok->header) {
		snprintf(out, out_size, "with the token from %s", tok->from);
	} else {
		why_none_locked(tok, why, sizeof(why));
		if (snprintf(out, out_size, "without a token: %s", why) < 0)
			out[0] = '\0';
	}
	pthread_mutex_unlock(&tok->lock);
}
