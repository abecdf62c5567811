/* source.h: where the bytes of one hub file come from and how to check
 * them; what a hub hands to the core. Not for: fetching them (download.c). */
#ifndef OMNIHUB_SOURCE_H
#define OMNIHUB_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

enum source_kind {
	SOURCE_FILE,    /* one file, served as downloaded */
	SOURCE_ARCHIVE, /* an archive, served as the directory it extracts to */
	SOURCE_MADE,    /* a file made from the download by a stage step */
};

/* SOURCE_MADE: how the served file is made from the verified download. */
enum source_step {
	SOURCE_STEP_GUNZIP,  /* decompressed */
	SOURCE_STEP_MEMBER,  /* one member of the archive */
	SOURCE_STEP_CONVERT, /* a converter command's output */
};

#define SOURCE_MAX_EXPECT 8

#define SOURCE_MAX_LOCAL 4

struct source {
	enum source_kind kind;
	char *url;        /* owned */
	char *cache_path; /* owned; below the cache root */
	char *local[SOURCE_MAX_LOCAL]; /* owned; other clients' copies of the same
					  bytes, used only after their digest is
					  checked, never modified */
	size_t nlocal;
	struct digest_spec digest; /* of the downloaded bytes (the archive) */
	uint64_t size;             /* of the downloaded bytes */
	/* A credential for url ("Authorization: Bearer ..."), sent only to
	 * auth_origin (fetch_url_origin's form) and never logged; both owned,
	 * NULL when none. */
	char *auth_header;
	char *auth_origin;
	bool offline; /* its hub is offline (HF_HUB_OFFLINE): the cache only */
	unsigned connections; /* requests in flight for it; 0: the engine's */
	/* SOURCE_MADE: the step, and its argument (all owned): */
	enum source_step step;
	char *member;  /* SOURCE_STEP_MEMBER: its path in the archive */
	char *command; /* SOURCE_STEP_CONVERT: run by /bin/sh -c */
	char *input_tree; /* SOURCE_STEP_CONVERT of an archive: where the
			     archive is extracted (below the cache root),
			     the converter's input; NULL for a file's */
	/* SOURCE_ARCHIVE: paths that must be in the extracted tree, checked
	 * before it is installed (owned). */
	char *expect[SOURCE_MAX_EXPECT];
	size_t nexpect;
};

/* Takes ownership of path (freed here on failure too); silently drops it
 * past SOURCE_MAX_LOCAL. */
int source_add_local_take(struct source *src, char *path);
int source_copy(struct source *dst, const struct source *src);
/* Frees what src owns (wiping the credential) and zeroes it. */
void source_clear(struct source *src);

#endif
