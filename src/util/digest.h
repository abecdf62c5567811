/* digest.h: content digests behind one interface (sha256, sha1, md5, git's
 * blob sha1, adler32), computed as bytes arrive. Not for: deciding which
 * digest a hub publishes (the hubs say) or what a mismatch means (download.c). */
#ifndef OMNIHUB_DIGEST_H
#define OMNIHUB_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum digest_algo {
	DIGEST_NONE,
	DIGEST_SHA256,
	DIGEST_SHA1,
	DIGEST_MD5,
	DIGEST_GIT_BLOB_SHA1, /* sha1("blob <size>\0" + content): git's object id */
	DIGEST_ADLER32,
};

/* The longest digest is sha256: 64 hex digits and a NUL. */
#define DIGEST_HEX_MAX 65

/* A prefix is checked only when it has at least this many digits. */
#define DIGEST_PREFIX_MIN 8

/* An expected digest as a hub publishes it, in lower-case hex: all the
 * algorithm's digits (exact), a prefix of them (torchvision's file names
 * carry 8), or none at all (the source is not verified). */
struct digest_spec {
	enum digest_algo algo;
	char hex[DIGEST_HEX_MAX];
	/* "" when hex names the bytes alone (a whole sha256, sha1 or git
	 * sha1): the blob store names the blob by it. Else a sha256 of where
	 * the bytes come from and of hex, which names it instead: a prefix,
	 * md5 or adler32 can be matched by other bytes, by chance or on
	 * purpose, and must not make two sources share a blob. */
	char key[DIGEST_HEX_MAX];
};

/* A running computation; opaque. */
struct digest;

/* size is the content length; only DIGEST_GIT_BLOB_SHA1 needs it up front. */
int digest_new(struct digest **out, enum digest_algo algo, uint64_t size);
int digest_update(struct digest *dg, const void *data, size_t len);
/* Writes the lower-case hex digest; the computation cannot be updated after. */
int digest_final_hex(struct digest *dg, char out[DIGEST_HEX_MAX]);
void digest_free(struct digest *dg);

/* Digest of a whole open file read from offset 0 (for checking a file
 * already on disk); -errno on a read error. */
int digest_fd(int fd, enum digest_algo algo, uint64_t size, char out[DIGEST_HEX_MAX]);

const char *digest_algo_name(enum digest_algo algo);
/* Number of hex digits of the algorithm's value. */
size_t digest_hex_len(enum digest_algo algo);
/* Fills spec from untrusted text: exact length, hex digits only (either
 * case); -EINVAL otherwise. */
int digest_spec_set(struct digest_spec *spec, enum digest_algo algo, const char *hex);
/* The same for a prefix of DIGEST_PREFIX_MIN digits or more (all of them
 * make an exact spec). */
int digest_spec_set_prefix(struct digest_spec *spec, enum digest_algo algo, const char *hex);
/* A spec that checks nothing: the bytes are hashed with algo (for the
 * log) and any value matches. */
void digest_spec_set_none(struct digest_spec *spec, enum digest_algo algo);
/* Whether spec checks anything (some digits to match). */
bool digest_spec_verifies(const struct digest_spec *spec);
/* Whether hex names the bytes alone (see key). */
bool digest_spec_names_bytes(const struct digest_spec *spec);
/* Unless the spec names the bytes alone: sets its key from origin (the
 * URL the bytes come from), so the blob store can name them. */
int digest_spec_set_key(struct digest_spec *spec, const char *origin);
/* The same algorithm, digits and key. */
bool digest_spec_same(const struct digest_spec *a, const struct digest_spec *b);
/* "sha256:<hex>", "sha256-prefix:<hex>", "md5:<hex>" or "none", as the
 * xattr user.omnihub.digest and the log show it. */
void digest_spec_format(const struct digest_spec *spec, char *out, size_t out_size);
/* The value of one hex digit (either case), or -1. */
int digest_hex_value(char c);
/* Whether hex (a computed digest, all its digits) is what spec expects: the
 * same digits, or beginning with spec's prefix; any for a spec that checks
 * nothing. */
bool digest_spec_matches(const struct digest_spec *spec, const char *hex);

#endif
