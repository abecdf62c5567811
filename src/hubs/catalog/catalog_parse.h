/* catalog_parse.h: catalogs, the JSON files that name the models of hubs without
 * a listing API (torchvision, Keras, TF Hub, Deeplearning4j, datasets, the
 * user's own): parsed, checked field by field, and merged by hub. The format
 * is man/omnihub.catalog.5. Not for: serving them (hub_catalog.c) or
 * fetching anything (they are local files). */
#ifndef OMNIHUB_CATALOG_PARSE_H
#define OMNIHUB_CATALOG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

#define CATALOG_VERSION 1
#define CATALOG_MAX_BYTES (16u << 20)
#define CATALOG_MAX_DIGESTS 4

enum catalog_stage {
	CATALOG_STAGE_NONE,    /* a file, served as downloaded */
	CATALOG_STAGE_ARCHIVE, /* a directory: the extracted archive */
	CATALOG_STAGE_MEMBER,  /* a file: one member of the archive */
	CATALOG_STAGE_GUNZIP,  /* a file: the download decompressed */
};

/* A converter a user catalog names for one entry. */
struct catalog_convert {
	char *to;      /* owned; a format token: the new file is <stem>.<to> */
	char *command; /* owned; run by /bin/sh -c */
};

struct catalog_entry {
	char *name;   /* owned; "IMAGENET1K_V1" */
	char *file;   /* owned; its name in the mount */
	char *url;    /* owned; absolute, base_url applied */
	struct digest_spec digests[CATALOG_MAX_DIGESTS]; /* a prefix spec has
							   fewer hex digits */
	size_t ndigests;
	uint64_t size; /* of the download; 0 with size_known false: unknown */
	bool size_known;
	uint64_t unpacked_size; /* MEMBER/GUNZIP: of the served file; 0: unknown */
	char *format;           /* owned */
	enum catalog_stage stage;
	char *member;           /* owned; CATALOG_STAGE_MEMBER */
	char **expect;          /* owned; CATALOG_STAGE_ARCHIVE: paths that
				   must exist after extraction */
	size_t nexpect;
	struct catalog_convert *converts; /* owned; only from user catalogs */
	size_t nconverts;
	char *client_id; /* owned; the name its hub's client caches it under,
			    or NULL (then the URL's last segment) */
	char *meta_json; /* owned; the model's meta with the entry's over it,
			    compact JSON, "{}" when none */
	const char *source_file; /* the catalog it came from (the set's string) */
};

struct catalog_model {
	char *path;     /* owned; "resnet18", "google/mobilenet_v2" */
	struct catalog_entry *entries; /* owned */
	size_t nentries;
	long default_entry; /* index in entries, or -1 */
};

struct catalog_hub {
	char *name;         /* owned */
	char *client_cache; /* owned; "torch", "keras", "tfhub" or NULL */
	struct catalog_model *models; /* owned; sorted by path (strcmp) */
	size_t nmodels;
};

struct catalog_set {
	struct catalog_hub *hubs; /* owned; sorted by name */
	size_t nhubs;
	char **files;             /* owned; every file loaded, for source_file */
	size_t nfiles;
	size_t nrefused;          /* files refused (each logged) */
};

enum catalog_trust {
	CATALOG_SHIPPED, /* installed with omnihub-fuse: no commands */
	CATALOG_USER,    /* the user's own: may name converter commands */
};

/* Parses one catalog's bytes into the set (label names it in messages).
 * On a problem nothing is added and why gets "<json path>: <problem>"
 * (e.g. "models.resnet18.entries.V1.digests.sha256: not 64 hex digits");
 * returns -EINVAL (-ENOMEM on memory). */
int catalog_set_add_json(struct catalog_set *set, const char *json, size_t len,
			 const char *label, enum catalog_trust trust, char *why, size_t why_size);
/* Every *.json of dir, in name order; a missing dir is no error. A refused
 * file is logged ("<file>: <why>") and counted; the others load. Returns
 * the number of files added, or -errno when dir cannot be read. */
int catalog_set_add_dir(struct catalog_set *set, const char *dir, enum catalog_trust trust);
void catalog_set_free(struct catalog_set *set);

const struct catalog_hub *catalog_set_hub(const struct catalog_set *set, const char *name);
/* The model at path in hub, or NULL (binary search). */
const struct catalog_model *catalog_hub_model(const struct catalog_hub *hub, const char *path);
/* The strongest of an entry's digests (sha256, then sha1, md5, a sha256
 * prefix, adler32), or NULL when it has none. */
const struct digest_spec *catalog_entry_strongest(const struct catalog_entry *entry);

#endif
