/* test_digest.c: unit tests of digest.c against published test vectors,
 * whole and fed in pieces. Not for: what a mismatch means (download.c). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "tap.h"

/* Digest of data fed in pieces of step bytes. */
static void check(enum digest_algo algo, const char *data, size_t step, const char *want,
		  const char *what)
{
	char hex[DIGEST_HEX_MAX] = "";
	struct digest *dg = NULL;
	size_t len = strlen(data);
	int rc = digest_new(&dg, algo, len);

	for (size_t off = 0; rc == 0 && off < len; off += step)
		rc = digest_update(dg, data + off, len - off < step ? len - off : step);
	if (rc == 0)
		rc = digest_final_hex(dg, hex);
	digest_free(dg);
	tap_ok(rc == 0 && strcmp(hex, want) == 0, "%s %s (step %zu): %s", digest_algo_name(algo),
	       what, step, hex);
}

int main(void)
{
	static const char fox[] = "The quick brown fox jumps over the lazy dog";
	struct digest_spec spec;
	char path[] = "/tmp/omnihub-test-digest-XXXXXX";
	char hex[DIGEST_HEX_MAX];
	char *big;
	int fd;

	for (size_t step = 1; step <= 64; step *= 8) {
		check(DIGEST_SHA256, "abc", step,
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
		check(DIGEST_SHA1, "abc", step, "a9993e364706816aba3e25717850c26c9cd0d89d", "abc");
		check(DIGEST_MD5, fox, step, "9e107d9d372bb6826bd81d3542a419d6", "fox");
		/* `echo hello | git hash-object --stdin` */
		check(DIGEST_GIT_BLOB_SHA1, "hello\n", step,
		      "ce013625030ba8dba906f756967f9e9ca394464a", "git blob of hello");
		check(DIGEST_ADLER32, "Wikipedia", step, "11e60398", "Wikipedia");
	}
	check(DIGEST_SHA256, "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	      "empty");
	check(DIGEST_GIT_BLOB_SHA1, "", 1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
	      "git blob of nothing");

	/* Adler-32 sums must wrap correctly past the 5552-byte block. */
	big = malloc(100001);
	memset(big, 0xff, 100000);
	big[100000] = '\0';
	{
		/* zlib: adler32(1, 100000 bytes of 0xff) */
		struct digest *dg = NULL;
		char out[DIGEST_HEX_MAX] = "";
		int rc = digest_new(&dg, DIGEST_ADLER32, 100000);
		if (rc == 0)
			rc = digest_update(dg, big, 100000);
		if (rc == 0)
			rc = digest_final_hex(dg, out);
		digest_free(dg);
		tap_ok(rc == 0 && strcmp(out, "149a302c") == 0, "adler32 of 100000 x 0xff: %s",
		       out);
	}

	fd = mkstemp(path);
	tap_ok(fd >= 0 && write(fd, big, 100000) == 100000, "temporary file written");
	tap_ok(digest_fd(fd, DIGEST_SHA256, 100000, hex) == 0, "digest_fd reads the whole file");
	{
		struct digest *dg = NULL;
		char mem[DIGEST_HEX_MAX] = "";
		digest_new(&dg, DIGEST_SHA256, 0);
		digest_update(dg, big, 100000);
		digest_final_hex(dg, mem);
		digest_free(dg);
		tap_ok(strcmp(hex, mem) == 0, "digest_fd equals the in-memory digest");
	}
	close(fd);
	unlink(path);
	free(big);

	tap_ok(digest_spec_set(&spec, DIGEST_SHA256,
			       "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD") == 0 &&
		       digest_spec_matches(&spec,
					   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	       "upper-case hex is accepted and compared in lower case");
	tap_ok(digest_spec_set(&spec, DIGEST_SHA256, "abc") == -EINVAL, "short hex refused");
	tap_ok(digest_spec_set(&spec, DIGEST_SHA256,
			       "zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") ==
		       -EINVAL,
	       "non-hex refused");
	tap_ok(digest_spec_set(&spec, DIGEST_MD5, "9e107d9d372bb6826bd81d3542a419d6") == 0 &&
		       !digest_spec_matches(&spec, "9e107d9d372bb6826bd81d3542a419d7"),
	       "a one-digit difference does not match");
	tap_ok(digest_spec_set(&spec, DIGEST_NONE, "") == -EINVAL, "no algorithm refused");

	/* Prefixes (torchvision's file names), no digest, and keys. */
	{
		const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
		struct digest_spec a, b;
		char text[DIGEST_HEX_MAX + 32];

		tap_ok(digest_spec_set_prefix(&a, DIGEST_SHA256, "BA7816BF") == 0 &&
			       digest_spec_matches(&a, abc) &&
			       !digest_spec_matches(&a, "ba7816bf") && /* not a whole digest */
			       !digest_spec_matches(
				       &a, "ba7816be8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
		       "a prefix matches a digest that begins with it, not another");
		digest_spec_format(&a, text, sizeof(text));
		tap_ok(strcmp(text, "sha256-prefix:ba7816bf") == 0, "a prefix shows as %s", text);
		tap_ok(digest_spec_set_prefix(&a, DIGEST_SHA256, "ba7816b") == -EINVAL,
		       "a prefix of 7 digits is refused");
		tap_ok(digest_spec_set_prefix(&a, DIGEST_SHA256, abc) == 0 &&
			       digest_spec_names_bytes(&a),
		       "a prefix of every digit is an exact digest");
		tap_ok(!digest_spec_names_bytes(&(struct digest_spec){ .algo = DIGEST_MD5,
								      .hex = "9e107d9d372bb6826bd81d3542a419d6" }),
		       "md5 does not name a blob alone");
		digest_spec_set_none(&a, DIGEST_SHA256);
		digest_spec_format(&a, text, sizeof(text));
		tap_ok(!digest_spec_verifies(&a) && digest_spec_matches(&a, abc) &&
			       strcmp(text, "none") == 0,
		       "no digest matches anything and shows as none");
		tap_ok(digest_spec_set_key(&a, "https://x/a.bin") == 0 && strlen(a.key) == 64,
		       "a spec without digits gets a key");
		digest_spec_set_none(&b, DIGEST_SHA256);
		tap_ok(digest_spec_set_key(&b, "https://x/b.bin") == 0 && !digest_spec_same(&a, &b),
		       "two URLs give two keys: their blobs differ");
		digest_spec_set_none(&b, DIGEST_SHA256);
		digest_spec_set_key(&b, "https://x/a.bin");
		tap_ok(digest_spec_same(&a, &b), "one URL gives one key");
		digest_spec_set(&a, DIGEST_SHA256, abc);
		tap_ok(digest_spec_set_key(&a, "https://x/a.bin") == 0 && a.key[0] == '\0',
		       "a whole sha256 names its blob: no key");
		digest_spec_set(&a, DIGEST_ADLER32, "11e60398");
		digest_spec_set_key(&a, "https://x/a.zip");
		digest_spec_set(&b, DIGEST_ADLER32, "11e60398");
		digest_spec_set_key(&b, "https://y/a.zip");
		tap_ok(!digest_spec_same(&a, &b),
		       "one adler32 from two URLs: two blobs (a weak digest does not name bytes)");
	}
	return tap_done();
}
