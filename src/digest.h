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

/* An expected digest as a hub publishes it, in lower-case hex. */
struct digest_spec {
	enum digest_algo algo;
	char hex[DIGEST_HEX_MAX];
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
/* The value of one hex digit (either case), or -1. */
int digest_hex_value(char c);
bool digest_spec_matches(const struct digest_spec *spec, const char *hex);

#endif
