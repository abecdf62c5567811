/* hf_token.h: the Hugging Face token as huggingface_hub finds it ($HF_TOKEN,
 * the token files), trimmed, read again when its file changes, and where it
 * came from. Not for: sending it (hf_api.c, fetch.c) or logging it (never). */
#ifndef OMNIHUB_HF_TOKEN_H
#define OMNIHUB_HF_TOKEN_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

struct config;

/* The token files read, in order, when no variable holds a token:
 * $HF_TOKEN_PATH, $HF_HOME/token (else $XDG_CACHE_HOME/huggingface/token,
 * else ~/.cache/huggingface/token), then -o hf_token_file. */
#define HF_TOKEN_FILES 3

/* One per hub (or command); its strings are its own. */
struct hf_token {
	pthread_mutex_t lock;           /* guards what follows */
	char *header;                   /* owned; "Authorization: Bearer ..." or NULL */
	char from[PATH_MAX];            /* "$HF_TOKEN", a file's path, or "" for none */
	char empty_note[PATH_MAX + 64]; /* why a source held none ("" when
	                                   none did): said in place of "with
	                                   the token from" */
	char *files[HF_TOKEN_FILES];    /* owned; NULL where not set */
	bool from_env;                  /* a variable holds it: no file is watched */
	int seen_index;                 /* the file last read (-1: none existed) */
	struct stat seen;               /* its identity then: dev, ino, size, times */
	unsigned generation;            /* bumped each time the token changes */
};

/* Finds the token: HF_TOKEN (else HUGGING_FACE_HUB_TOKEN), else the first
 * token file that exists. Surrounding spaces and newlines are trimmed, as
 * huggingface_hub does; a variable or file empty after that holds none.
 * 0, or -errno with a sentence in why (a hf_token_file that cannot be read,
 * a token with a character no header may carry). */
int hf_token_open(struct hf_token *tok, const struct config *cfg, char *why, size_t why_size);
void hf_token_close(struct hf_token *tok);

/* A copy of the header now (NULL: no token), the caller's to wipe and free
 * (hf_token_free_header); the token file is looked at (stat) first and
 * read again when it is another file, or its inode, size or times changed.
 * generation (may be NULL): the token's generation. 0 or -ENOMEM. */
int hf_token_header(struct hf_token *tok, char **header, unsigned *generation);
void hf_token_free_header(char *header);
/* The token's generation now, the file looked at first as above: what a
 * refusal remembered under another generation was not said to this token. */
unsigned hf_token_generation(struct hf_token *tok);

/* Where the token now comes from ("$HF_TOKEN", a path), or why there is
 * none, for a log line; never the token. */
void hf_token_describe(struct hf_token *tok, char *out, size_t out_size);
/* Why there is no token ("$HF_TOKEN is set but empty ...", "... no token
 * file exists (read: FILES)"), for a message. */
void hf_token_why_none(struct hf_token *tok, char *out, size_t out_size);
/* The token files read, comma-separated, for a hint. */
void hf_token_files(const struct hf_token *tok, char *out, size_t out_size);

/* text without any \r or \n and without the spaces around it, in place
 * (what huggingface_hub does to a token); returns text. */
char *hf_token_trim(char *text);

#endif
