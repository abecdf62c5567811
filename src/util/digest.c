/* digest.c: content digests behind one interface (sha256, sha1, md5, git's
 * blob sha1, adler32), computed as bytes arrive. Not for: deciding which
 * digest a hub publishes (the hubs say) or what a mismatch means (download.c). */
#include "build_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "digest.h"
#include "full_io.h"

struct digest {
	enum digest_algo algo;
	EVP_MD_CTX *md;   /* owned; NULL for adler32 */
	uint32_t adler_a; /* adler32 running sums */
	uint32_t adler_b;
};

static const EVP_MD *evp_for(enum digest_algo algo)
{
	switch (algo) {
	case DIGEST_SHA256: return EVP_sha256();
	case DIGEST_SHA1:
	case DIGEST_GIT_BLOB_SHA1: return EVP_sha1();
	case DIGEST_MD5: return EVP_md5();
	case DIGEST_NONE:
	case DIGEST_ADLER32: break;
	}
	return NULL;
}

const char *digest_algo_name(enum digest_algo algo)
{
	switch (algo) {
	case DIGEST_SHA256: return "sha256";
	case DIGEST_SHA1: return "sha1";
	case DIGEST_MD5: return "md5";
	case DIGEST_GIT_BLOB_SHA1: return "git-sha1";
	case DIGEST_ADLER32: return "adler32";
	case DIGEST_NONE: break;
	}
	return "none";
}

size_t digest_hex_len(enum digest_algo algo)
{
	switch (algo) {
	case DIGEST_SHA256: return 64;
	case DIGEST_SHA1:
	case DIGEST_GIT_BLOB_SHA1: return 40;
	case DIGEST_MD5: return 32;
	case DIGEST_ADLER32: return 8;
	case DIGEST_NONE: break;
	}
	return 0;
}

int digest_new(struct digest **out, enum digest_algo algo, uint64_t size)
{
	struct digest *dg = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if (algo == DIGEST_NONE)
		return -EINVAL;
	dg = calloc(1, sizeof(*dg));
	if (!dg)
		goto out;
	dg->algo = algo;
	dg->adler_a = 1;
	if (algo != DIGEST_ADLER32) {
		dg->md = EVP_MD_CTX_new();
		if (!dg->md || !EVP_DigestInit_ex(dg->md, evp_for(algo), NULL)) {
			rc = -EIO;
			goto out;
		}
	}
	if (algo == DIGEST_GIT_BLOB_SHA1) {
		char header[32];
		/* git hashes the object header, NUL included. */
		int n = snprintf(header, sizeof(header), "blob %" PRIu64, size);
		if (!EVP_DigestUpdate(dg->md, header, (size_t)n + 1)) {
			rc = -EIO;
			goto out;
		}
	}
	*out = dg;
	dg = NULL;
	rc = 0;
out:
	digest_free(dg);
	return rc;
}

/* Adler-32 (RFC 1950): 5552 is the most bytes that keep the sums in 32
 * bits before the modulo. */
static void adler32_update(struct digest *dg, const unsigned char *p, size_t len)
{
	const uint32_t mod = 65521;
	uint32_t a = dg->adler_a, b = dg->adler_b;

	while (len > 0) {
		size_t n = len < 5552 ? len : 5552;
		len -= n;
		while (n--) {
			a += *p++;
			b += a;
		}
		a %= mod;
		b %= mod;
	}
	dg->adler_a = a;
	dg->adler_b = b;
}

int digest_update(struct digest *dg, const void *data, size_t len)
{
	if (dg->algo == DIGEST_ADLER32) {
		adler32_update(dg, data, len);
		return 0;
	}
	return EVP_DigestUpdate(dg->md, data, len) ? 0 : -EIO;
}

int digest_final_hex(struct digest *dg, char out[DIGEST_HEX_MAX])
{
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (dg->algo == DIGEST_ADLER32) {
		snprintf(out, DIGEST_HEX_MAX, "%08" PRIx32,
			 (dg->adler_b << 16) | dg->adler_a);
		return 0;
	}
	if (!EVP_DigestFinal_ex(dg->md, raw, &n))
		return -EIO;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

void digest_free(struct digest *dg)
{
	if (!dg)
		return;
	EVP_MD_CTX_free(dg->md);
	free(dg);
}

int digest_fd(int fd, enum digest_algo algo, uint64_t size, char out[DIGEST_HEX_MAX])
{
	enum { CHUNK = 1 << 20 };
	struct digest *dg = NULL;
	unsigned char *buf = NULL;
	off_t offset = 0;
	int rc;

	rc = digest_new(&dg, algo, size);
	if (rc)
		goto out;
	buf = malloc(CHUNK);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = full_io_pread(fd, buf, CHUNK, offset);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		rc = digest_update(dg, buf, (size_t)n);
		if (rc)
			goto out;
		if (n < CHUNK) /* short: the end of the file */
			break;
		offset += n;
	}
	rc = digest_final_hex(dg, out);
out:
	free(buf);
	digest_free(dg);
	return rc;
}

int digest_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copies n hex digits of untrusted text, lower-cased; -EINVAL on another
 * character. */
static int copy_hex(char *out, const char *hex, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (digest_hex_value(hex[i]) < 0)
			return -EINVAL;
		out[i] = "0123456789abcdef"[digest_hex_value(hex[i])];
	}
	out[n] = '\0';
	return 0;
}

int digest_spec_set(struct digest_spec *spec, enum digest_algo algo, const char *hex)
{
	size_t want = digest_hex_len(algo);

	if (want == 0 || !hex || strlen(hex) != want)
		return -EINVAL;
	memset(spec, 0, sizeof(*spec));
	if (copy_hex(spec->hex, hex, want) != 0)
		return -EINVAL;
	spec->algo = algo;
	return 0;
}

int digest_spec_set_prefix(struct digest_spec *spec, enum digest_algo algo, const char *hex)
{
	size_t max = digest_hex_len(algo), n = hex ? strlen(hex) : 0;

	if (max == 0 || n < DIGEST_PREFIX_MIN || n > max)
		return -EINVAL;
	memset(spec, 0, sizeof(*spec));
	if (copy_hex(spec->hex, hex, n) != 0)
		return -EINVAL;
	spec->algo = algo;
	return 0;
}

void digest_spec_set_none(struct digest_spec *spec, enum digest_algo algo)
{
	memset(spec, 0, sizeof(*spec));
	spec->algo = algo;
}

bool digest_spec_verifies(const struct digest_spec *spec)
{
	return spec->algo != DIGEST_NONE && spec->hex[0] != '\0';
}

bool digest_spec_names_bytes(const struct digest_spec *spec)
{
	switch (spec->algo) {
	case DIGEST_SHA256:
	case DIGEST_SHA1:
	case DIGEST_GIT_BLOB_SHA1: return strlen(spec->hex) == digest_hex_len(spec->algo);
	case DIGEST_MD5:
	case DIGEST_ADLER32:
	case DIGEST_NONE: break;
	}
	return false;
}

int digest_spec_set_key(struct digest_spec *spec, const char *origin)
{
	char label[DIGEST_HEX_MAX + 32];
	struct digest *dg = NULL;
	int rc;

	spec->key[0] = '\0';
	if (digest_spec_names_bytes(spec))
		return 0;
	digest_spec_format(spec, label, sizeof(label));
	rc = digest_new(&dg, DIGEST_SHA256, 0);
	if (rc == 0)
		rc = digest_update(dg, origin, strlen(origin) + 1); /* the NUL separates */
	if (rc == 0)
		rc = digest_update(dg, label, strlen(label));
	if (rc == 0)
		rc = digest_final_hex(dg, spec->key);
	digest_free(dg);
	return rc;
}

bool digest_spec_same(const struct digest_spec *a, const struct digest_spec *b)
{
	return a->algo == b->algo && strcmp(a->hex, b->hex) == 0 && strcmp(a->key, b->key) == 0;
}

void digest_spec_format(const struct digest_spec *spec, char *out, size_t out_size)
{
	if (!digest_spec_verifies(spec))
		snprintf(out, out_size, "none");
	else if (strlen(spec->hex) < digest_hex_len(spec->algo))
		snprintf(out, out_size, "%s-prefix:%s", digest_algo_name(spec->algo), spec->hex);
	else
		snprintf(out, out_size, "%s:%s", digest_algo_name(spec->algo), spec->hex);
}

bool digest_spec_matches(const struct digest_spec *spec, const char *hex)
{
	size_t n = strlen(spec->hex);

	if (spec->algo == DIGEST_NONE || strlen(hex) != digest_hex_len(spec->algo))
		return false;
	return strncmp(spec->hex, hex, n) == 0;
}
