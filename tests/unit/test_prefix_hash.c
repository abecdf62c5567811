/* test_prefix_hash.c: unit tests of prefix_hash.c on a 10 MiB file of known
 * pseudo-random bytes whose 1 MiB pieces are marked present out of order.
 * Not for: digest algorithms themselves (test_digest.c). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "bitmap.h"
#include "digest.h"
#include "prefix_hash.h"
#include "tap.h"

enum { MIB = 1 << 20, FILE_SIZE = 10 * MIB, PIECE = MIB };

/* xorshift64: the same bytes on every run. */
static void fill(unsigned char *buf, size_t len)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)(x >> 24);
	}
}

/* OpenSSL's one-shot SHA256, independent of digest.c. */
static void sha256_hex(const unsigned char *data, size_t len, char out[DIGEST_HEX_MAX])
{
	unsigned char raw[SHA256_DIGEST_LENGTH];

	SHA256(data, len, raw);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Marks pieces in order[], advancing after each mark; checks the position
 * is the prefix each time and the final digest equals want. */
static void run_order(int fd, uint64_t size, const size_t *order, size_t n, const char *want,
                      const char *what)
{
	struct prefix_hash *ph = NULL;
	struct bitmap present;
	char hex[DIGEST_HEX_MAX] = "";
	int rc, positions_ok = 1, early_final = 0;

	rc = prefix_hash_new(&ph, DIGEST_SHA256, size, PIECE);
	bitmap_init(&present, (size_t)((size + PIECE - 1) / PIECE));
	for (size_t k = 0; rc == 0 && k < n; k++) {
		uint64_t expect;

		bitmap_set(&present, order[k]);
		rc = prefix_hash_advance(ph, fd, &present, 0);
		expect = min_u64((uint64_t)bitmap_prefix(&present) * PIECE, size);
		if (prefix_hash_position(ph) != expect)
			positions_ok = 0;
		if (!bitmap_full(&present)) {
			if (prefix_hash_done(ph) || prefix_hash_final(ph, hex) != -EINVAL)
				early_final = 1;
		}
	}
	tap_ok(rc == 0 && positions_ok, "%s: position equals the prefix after each mark", what);
	tap_ok(!early_final, "%s: not done, and final refused, until the last piece", what);
	rc = rc == 0 && prefix_hash_done(ph) ? prefix_hash_final(ph, hex) : -1;
	tap_ok(rc == 0 && strcmp(hex, want) == 0, "%s: digest %s", what, hex);
	{
		char again[DIGEST_HEX_MAX] = "";
		tap_ok(rc == 0 && prefix_hash_advance(ph, fd, &present, 0) == 0 &&
		           prefix_hash_final(ph, again) == 0 && strcmp(again, want) == 0,
		       "%s: advance and final again after done give the same digest", what);
	}
	prefix_hash_free(ph);
	bitmap_free(&present);
}

int main(void)
{
	static const size_t order[] = {3, 0, 2, 1, 7, 5, 4, 9, 6, 8};
	static const size_t reverse[] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
	char path[] = "/tmp/omnihub-test-prefix-hash-XXXXXX";
	char want[DIGEST_HEX_MAX] = "", from_fd[DIGEST_HEX_MAX] = "", hex[DIGEST_HEX_MAX] = "";
	struct prefix_hash *ph = NULL;
	struct bitmap present;
	unsigned char *data = malloc(FILE_SIZE);
	uint64_t odd = FILE_SIZE - 12345;
	int fd, rc, calls, ok;

	if (!data) {
		tap_ok(0, "10 MiB buffer allocated");
		return tap_done();
	}
	fill(data, FILE_SIZE);
	fd = mkstemp(path);
	tap_ok(fd >= 0 && write(fd, data, FILE_SIZE) == FILE_SIZE, "10 MiB file written to %s",
	       path);

	sha256_hex(data, FILE_SIZE, want);
	tap_ok(digest_fd(fd, DIGEST_SHA256, FILE_SIZE, from_fd) == 0 && strcmp(from_fd, want) == 0,
	       "digest_fd and OpenSSL SHA256 agree on the whole file: %s", want);
	run_order(fd, FILE_SIZE, order, 10, want, "order 3,0,2,1,7,5,4,9,6,8");
	run_order(fd, FILE_SIZE, reverse, 10, want, "reverse order");

	/* max_bytes: each call hashes at most 300000 bytes. */
	prefix_hash_new(&ph, DIGEST_SHA256, FILE_SIZE, PIECE);
	bitmap_init(&present, 10);
	for (size_t i = 0; i < 10; i++)
		bitmap_set(&present, i);
	rc = 0;
	ok = 1;
	for (calls = 0; rc == 0 && !prefix_hash_done(ph) && calls < 100; calls++) {
		uint64_t before = prefix_hash_position(ph);
		rc = prefix_hash_advance(ph, fd, &present, 300000);
		if (prefix_hash_position(ph) != min_u64(before + 300000, FILE_SIZE))
			ok = 0;
	}
	tap_ok(rc == 0 && ok && calls == (FILE_SIZE + 299999) / 300000,
	       "max_bytes 300000: %d calls, each advancing by the cap", calls);
	rc = prefix_hash_final(ph, hex);
	tap_ok(rc == 0 && strcmp(hex, want) == 0, "capped digest equals the whole file's");
	prefix_hash_free(ph);
	ph = NULL;
	bitmap_free(&present);

	/* A cap inside a piece, then the rest of the prefix. */
	prefix_hash_new(&ph, DIGEST_SHA256, FILE_SIZE, PIECE);
	bitmap_init(&present, 10);
	bitmap_set(&present, 0);
	bitmap_set(&present, 1);
	rc = prefix_hash_advance(ph, fd, &present, 1000);
	tap_ok(rc == 0 && prefix_hash_position(ph) == 1000, "a cap of 1000 bytes stops at 1000");
	rc = prefix_hash_advance(ph, fd, &present, 0);
	tap_ok(rc == 0 && prefix_hash_position(ph) == 2 * PIECE,
	       "no cap resumes from 1000 to the prefix end");
	bitmap_set(&present, 3);
	rc = prefix_hash_advance(ph, fd, &present, 0);
	tap_ok(rc == 0 && prefix_hash_position(ph) == 2 * PIECE,
	       "a piece after a hole adds nothing");
	{
		struct bitmap wrong;
		bitmap_init(&wrong, 11);
		tap_ok(prefix_hash_advance(ph, fd, &wrong, 0) == -EINVAL,
		       "a bitmap with the wrong number of pieces is refused");
		bitmap_free(&wrong);
	}
	prefix_hash_free(ph);
	ph = NULL;
	bitmap_free(&present);

	/* git's blob sha1 needs the size up front: check it reaches digest.c. */
	{
		char git_fd[DIGEST_HEX_MAX] = "", git_ph[DIGEST_HEX_MAX] = "";
		prefix_hash_new(&ph, DIGEST_GIT_BLOB_SHA1, FILE_SIZE, 3 * PIECE);
		bitmap_init(&present, 4);
		for (size_t i = 0; i < 4; i++)
			bitmap_set(&present, i);
		rc = prefix_hash_advance(ph, fd, &present, 0);
		if (rc == 0)
			rc = prefix_hash_final(ph, git_ph);
		tap_ok(rc == 0 && digest_fd(fd, DIGEST_GIT_BLOB_SHA1, FILE_SIZE, git_fd) == 0 &&
		           strcmp(git_fd, git_ph) == 0,
		       "git blob sha1 with 3 MiB pieces (last one 1 MiB) equals digest_fd: %s",
		       git_ph);
		prefix_hash_free(ph);
		ph = NULL;
		bitmap_free(&present);
	}

	/* A size that is not a multiple of the piece size. */
	tap_ok(ftruncate(fd, (off_t)odd) == 0, "file cut to 10 MiB - 12345 bytes");
	sha256_hex(data, odd, want);
	tap_ok(digest_fd(fd, DIGEST_SHA256, odd, from_fd) == 0 && strcmp(from_fd, want) == 0,
	       "digest_fd and OpenSSL SHA256 agree on the cut file");
	run_order(fd, odd, order, 10, want, "short last piece");

	/* A file shorter than the prefix. */
	tap_ok(ftruncate(fd, (off_t)(2 * PIECE + PIECE / 2)) == 0, "file cut to 2.5 MiB");
	prefix_hash_new(&ph, DIGEST_SHA256, FILE_SIZE, PIECE);
	bitmap_init(&present, 10);
	for (size_t i = 0; i < 4; i++)
		bitmap_set(&present, i);
	rc = prefix_hash_advance(ph, fd, &present, 0);
	tap_ok(rc == -EIO && prefix_hash_position(ph) == 2 * PIECE + PIECE / 2 &&
	           !prefix_hash_done(ph) && prefix_hash_final(ph, hex) == -EINVAL,
	       "a file shorter than the prefix gives -EIO (rc %d) after hashing what is there", rc);
	tap_ok(prefix_hash_advance(ph, -1, &present, 0) == -EBADF, "a read error is -errno");
	prefix_hash_free(ph);
	ph = NULL;
	bitmap_free(&present);

	/* Size 0: done at once, the digest of nothing. */
	prefix_hash_new(&ph, DIGEST_SHA256, 0, PIECE);
	bitmap_init(&present, 0);
	tap_ok(prefix_hash_done(ph) && prefix_hash_advance(ph, fd, &present, 0) == 0 &&
	           prefix_hash_final(ph, hex) == 0 &&
	           strcmp(hex,
	                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
	       "size 0: done at once with the empty digest");
	prefix_hash_free(ph);
	ph = NULL;
	bitmap_free(&present);

	tap_ok(prefix_hash_new(&ph, DIGEST_SHA256, 10, 0) == -EINVAL && ph == NULL,
	       "piece size 0 refused");
	tap_ok(prefix_hash_new(&ph, DIGEST_NONE, 10, 4) == -EINVAL && ph == NULL,
	       "no algorithm refused");
	prefix_hash_free(NULL);

	close(fd);
	unlink(path);
	tap_ok(access(path, F_OK) == -1 && errno == ENOENT, "temporary file removed");
	free(data);
	return tap_done();
}
