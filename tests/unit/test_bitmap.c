/* test_bitmap.c: unit tests of bitmap.c: edges of word sizes, counting,
 * prefix and next_clear across words, the hex form and its rejections. Not
 * for: the sidecar file around it (test_sidecar.c). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "tap.h"

/* Count of set bits by asking bitmap_get for each, to check count. */
static size_t count_by_get(const struct bitmap *bm)
{
	size_t n = 0;

	for (size_t i = 0; i < bm->nbits; i++)
		n += bitmap_get(bm, i);
	return n;
}

/* Sizes around word boundaries: set every bit in order and watch prefix,
 * next_clear, full and the hex form. */
static void check_size(size_t nbits)
{
	struct bitmap bm;
	char *hex = NULL;
	size_t ndigits = (nbits + 3) / 4;
	int ok = 1, rc;

	tap_ok(bitmap_init(&bm, nbits) == 0 && bm.nbits == nbits && bm.count == 0, "%zu bits: init",
	       nbits);
	tap_ok(bitmap_prefix(&bm) == 0 && bitmap_next_clear(&bm, 0) == (nbits ? 0 : nbits) &&
	           bitmap_full(&bm) == (nbits == 0),
	       "%zu bits: empty prefix 0, next_clear(0) %zu, full only for 0 bits", nbits,
	       bitmap_next_clear(&bm, 0));
	tap_ok(bitmap_to_hex(&bm, &hex) == 0 && strlen(hex) == ndigits &&
	           strspn(hex, "0") == ndigits,
	       "%zu bits: clear hex is %zu zeros", nbits, ndigits);
	free(hex);
	hex = NULL;
	tap_ok(!bitmap_get(&bm, nbits) && !bitmap_get(&bm, nbits + 1000),
	       "%zu bits: bits past the end read clear", nbits);
	bitmap_set(&bm, nbits);
	tap_ok(bm.count == 0 && bitmap_prefix(&bm) == 0,
	       "%zu bits: setting past the end is ignored", nbits);

	for (size_t i = 0; i < nbits; i++) {
		bitmap_set(&bm, i);
		if (bitmap_prefix(&bm) != i + 1 || bm.count != i + 1 ||
		    bitmap_next_clear(&bm, 0) != (i + 1 < nbits ? i + 1 : nbits) ||
		    bitmap_full(&bm) != (i + 1 == nbits))
			ok = 0;
	}
	tap_ok(ok, "%zu bits: prefix, count, next_clear and full follow each set in order", nbits);
	tap_ok(bitmap_next_clear(&bm, 0) == nbits && bitmap_next_clear(&bm, nbits) == nbits &&
	           bitmap_next_clear(&bm, nbits + 5) == nbits,
	       "%zu bits: full: next_clear gives nbits", nbits);
	rc = bitmap_to_hex(&bm, &hex);
	tap_ok(rc == 0 && strlen(hex) == ndigits &&
	           (nbits % 4 == 0
	                ? strspn(hex, "f") == ndigits
	                : strspn(hex, "f") == ndigits - 1 && hex[ndigits - 1] == "08ce"[nbits % 4]),
	       "%zu bits: full hex is %s", nbits, hex ? hex : "(none)");
	{
		struct bitmap back = {NULL, 0, 0};
		rc = hex ? bitmap_from_hex(&back, nbits, hex) : -1;
		tap_ok(rc == 0 && back.count == nbits && bitmap_full(&back) &&
		           bitmap_prefix(&back) == nbits,
		       "%zu bits: full hex parses back full", nbits);
		bitmap_free(&back);
	}
	free(hex);
	if (nbits > 0) {
		bitmap_clear(&bm, nbits - 1);
		tap_ok(bitmap_prefix(&bm) == nbits - 1 && bm.count == nbits - 1 &&
		           bitmap_next_clear(&bm, 0) == nbits - 1 && !bitmap_full(&bm),
		       "%zu bits: clearing the last bit", nbits);
	}
	bitmap_free(&bm);
	tap_ok(bm.words == NULL && bm.nbits == 0 && bm.count == 0, "%zu bits: free zeroes", nbits);
}

/* Hex round trip of a pattern: bit i set when (i * 7 + 3) % 5 < 2. */
static void check_pattern(size_t nbits)
{
	struct bitmap bm, back;
	char *hex = NULL, *hex2 = NULL;
	int same = 1, rc;

	bitmap_init(&bm, nbits);
	for (size_t i = 0; i < nbits; i++)
		if ((i * 7 + 3) % 5 < 2)
			bitmap_set(&bm, i);
	rc = bitmap_to_hex(&bm, &hex);
	if (rc == 0)
		rc = bitmap_from_hex(&back, nbits, hex);
	if (rc == 0) {
		for (size_t i = 0; i < nbits; i++)
			if (bitmap_get(&back, i) != ((i * 7 + 3) % 5 < 2))
				same = 0;
		rc = bitmap_to_hex(&back, &hex2);
	}
	tap_ok(rc == 0 && same && back.count == bm.count && back.count == count_by_get(&bm) &&
	           hex && hex2 && strcmp(hex, hex2) == 0,
	       "%zu bits: pattern round-trips through hex", nbits);
	free(hex);
	free(hex2);
	bitmap_free(&bm);
	if (rc == 0)
		bitmap_free(&back);
}

static void check_hex_in(size_t nbits, const char *hex, int want_rc, const char *what)
{
	struct bitmap bm = {NULL, 0, 0};
	int rc = bitmap_from_hex(&bm, nbits, hex);

	tap_ok(rc == want_rc && (rc != 0 || bm.nbits == nbits) &&
	           (rc == 0 || (bm.words == NULL && bm.nbits == 0)),
	       "from_hex(%zu, \"%s\"): %s (rc %d)", nbits, hex, what, rc);
	bitmap_free(&bm);
}

int main(void)
{
	static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 63, 64, 65, 127, 128, 129, 200};
	struct bitmap bm, copy;
	char *hex = NULL;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
		check_size(sizes[k]);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
		check_pattern(sizes[k]);

	{
		struct bitmap zero;
		memset(&zero, 0, sizeof(zero));
		bitmap_free(&zero);
		tap_ok(zero.words == NULL, "free of a zeroed struct is safe");
	}

	/* Set twice, clear twice: count stays right. */
	bitmap_init(&bm, 65);
	bitmap_set(&bm, 64);
	bitmap_set(&bm, 64);
	bitmap_set(&bm, 0);
	tap_ok(bm.count == 2 && bitmap_get(&bm, 64) && bitmap_get(&bm, 0) && !bitmap_get(&bm, 63),
	       "set twice counts once (count %zu)", bm.count);
	bitmap_clear(&bm, 64);
	bitmap_clear(&bm, 64);
	bitmap_clear(&bm, 5);
	tap_ok(bm.count == 1 && !bitmap_get(&bm, 64) && bitmap_get(&bm, 0),
	       "clear twice, or of a clear bit, counts once (count %zu)", bm.count);
	bitmap_set(&bm, 1);
	bitmap_set(&bm, 64);
	bitmap_clear_all(&bm);
	tap_ok(bm.count == 0 && bm.nbits == 65 && !bitmap_get(&bm, 0) && !bitmap_get(&bm, 64) &&
	           bitmap_prefix(&bm) == 0,
	       "clear_all");
	bitmap_free(&bm);

	/* Prefix across word boundaries: 0..129 set, 130 clear, 131.. set. */
	bitmap_init(&bm, 300);
	for (size_t i = 0; i < 300; i++)
		if (i != 130)
			bitmap_set(&bm, i);
	tap_ok(bitmap_prefix(&bm) == 130, "prefix stops at the clear bit 130 in word 2: %zu",
	       bitmap_prefix(&bm));
	tap_ok(bitmap_next_clear(&bm, 131) == 300, "next_clear past the only hole gives nbits: %zu",
	       bitmap_next_clear(&bm, 131));
	tap_ok(bitmap_next_clear(&bm, 64) == 130 && bitmap_next_clear(&bm, 130) == 130,
	       "next_clear from the middle of a full word finds 130");
	bitmap_clear(&bm, 64);
	tap_ok(bitmap_prefix(&bm) == 64, "prefix stops exactly at a word boundary: %zu",
	       bitmap_prefix(&bm));
	bitmap_clear(&bm, 63);
	tap_ok(bitmap_prefix(&bm) == 63 && bitmap_next_clear(&bm, 64) == 64 &&
	           bitmap_next_clear(&bm, 65) == 130,
	       "prefix 63, next_clear from 64 and 65");
	bitmap_clear(&bm, 299);
	tap_ok(bitmap_next_clear(&bm, 131) == 299 && bitmap_next_clear(&bm, 299) == 299,
	       "next_clear finds the last bit of a partial last word");

	/* Copy is deep. */
	tap_ok(bitmap_copy(&copy, &bm) == 0 && copy.nbits == 300 && copy.count == bm.count &&
	           bitmap_prefix(&copy) == 63 && copy.words != bm.words,
	       "copy has the same bits and its own words");
	bitmap_set(&copy, 63);
	tap_ok(bitmap_get(&copy, 63) && !bitmap_get(&bm, 63),
	       "changing the copy leaves the source");
	bitmap_free(&copy);
	bitmap_free(&bm);
	bitmap_init(&bm, 0);
	tap_ok(bitmap_copy(&copy, &bm) == 0 && copy.nbits == 0 && bitmap_full(&copy),
	       "copy of 0 bits");
	bitmap_free(&copy);
	bitmap_free(&bm);

	/* A large file: 100 GB in 4 MiB pieces. */
	bitmap_init(&bm, 25600);
	for (size_t i = 0; i < 25600; i++)
		if (i != 25599 && i != 12345)
			bitmap_set(&bm, i);
	tap_ok(bitmap_prefix(&bm) == 12345 && bitmap_next_clear(&bm, 12346) == 25599 &&
	           bm.count == 25598,
	       "25600 bits: prefix 12345, next hole 25599");
	bitmap_free(&bm);

	/* The hex digit order: bit 0 is the most significant of digit 0. */
	bitmap_init(&bm, 9);
	bitmap_set(&bm, 0);
	bitmap_to_hex(&bm, &hex);
	tap_ok(hex && strcmp(hex, "800") == 0, "piece 0 alone is \"800\": %s", hex);
	free(hex);
	hex = NULL;
	bitmap_clear(&bm, 0);
	bitmap_set(&bm, 3);
	bitmap_set(&bm, 5);
	bitmap_set(&bm, 8);
	bitmap_to_hex(&bm, &hex);
	tap_ok(hex && strcmp(hex, "148") == 0, "pieces 3, 5, 8 are \"148\": %s", hex);
	free(hex);
	hex = NULL;
	bitmap_free(&bm);
	tap_ok(bitmap_from_hex(&bm, 10, "A5c") == 0 && bm.count == 6 && bitmap_get(&bm, 0) &&
	           !bitmap_get(&bm, 1) && bitmap_get(&bm, 2) && bitmap_get(&bm, 5) &&
	           bitmap_get(&bm, 7) && bitmap_get(&bm, 8) && bitmap_get(&bm, 9) &&
	           !bitmap_get(&bm, 6),
	       "\"A5c\" (upper case accepted) is pieces 0 2 5 7 8 9");
	bitmap_free(&bm);

	/* Every digit value: digit d of "0123456789abcdef" holds the value d,
	 * so bit 4d+j is set exactly when d has the bit 8 >> j. */
	{
		static const char all[] = "0123456789abcdef";
		int ok = bitmap_from_hex(&bm, 64, all) == 0 && bm.count == 32;
		for (size_t i = 0; ok && i < 64; i++)
			if (bitmap_get(&bm, i) != (((i / 4) & (8u >> (i % 4))) != 0))
				ok = 0;
		tap_ok(ok, "each of the 16 digits sets its own bits, most significant first");
		ok = ok && bitmap_to_hex(&bm, &hex) == 0 && strcmp(hex, all) == 0;
		tap_ok(ok, "and formats back as \"%s\"", all);
		free(hex);
		hex = NULL;
		bitmap_free(&bm);
		bitmap_init(&bm, 64);
		for (size_t i = 0; i < 64; i++)
			if ((15 - i / 4) & (8u >> (i % 4)))
				bitmap_set(&bm, i);
		bitmap_to_hex(&bm, &hex);
		tap_ok(hex && strcmp(hex, "fedcba9876543210") == 0,
		       "bits set by hand format as \"fedcba9876543210\": %s", hex ? hex : "");
		free(hex);
		hex = NULL;
		bitmap_free(&bm);
	}

	check_hex_in(0, "", 0, "empty for 0 bits");
	check_hex_in(1, "8", 0, "one bit set");
	check_hex_in(1, "0", 0, "one bit clear");
	check_hex_in(1, "4", -EINVAL, "bit 1 of 1 set");
	check_hex_in(1, "1", -EINVAL, "bit 3 of 1 set");
	check_hex_in(3, "e", 0, "3 bits set");
	check_hex_in(3, "f", -EINVAL, "bit 3 of 3 set");
	check_hex_in(65, "fffffffffffffffff", -EINVAL, "bit past 65 in the last digit");
	check_hex_in(65, "ffffffffffffffff8", 0, "65 bits set");
	check_hex_in(0, "0", -EINVAL, "a digit for 0 bits");
	check_hex_in(8, "f", -EINVAL, "too short");
	check_hex_in(8, "fff", -EINVAL, "too long");
	check_hex_in(8, "fg", -EINVAL, "not hex");
	check_hex_in(8, "f ", -EINVAL, "a space");
	check_hex_in(8, "-f", -EINVAL, "a sign");
	check_hex_in(8, "0x", -EINVAL, "a 0x prefix");
	{
		struct bitmap nul;
		tap_ok(bitmap_from_hexn(&nul, 8, "f\0", 2) == -EINVAL && nul.words == NULL,
		       "from_hexn refuses a NUL among the digits");
		tap_ok(bitmap_from_hexn(&nul, 8, "ffjunk", 2) == 0 && nul.count == 8,
		       "from_hexn reads only len bytes");
		bitmap_free(&nul);
	}
	return tap_done();
}
