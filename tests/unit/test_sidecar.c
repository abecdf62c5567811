/* test_sidecar.c: unit tests of sidecar.c: a sample text parsed to exact
 * values, format-then-parse round trips, and each malformed variant refused
 * with its line named. Not for: the bitmap itself (test_bitmap.c). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar.h"
#include "tap.h"

#define HEAD   "omnihub-partial 1\n"
#define SIZE   "size 10000000\n"
#define PSIZE  "piece-size 1048576\n"
#define VALID  "validator \"5f0c-40000000\"\n"
#define URL    "url https://host/path?query\n"
#define PIECES "pieces a5c\n"
#define PATH   "path onnx/resnet18/opset-9/model.onnx\n"

static const char sample[] = HEAD SIZE PSIZE VALID URL PIECES;

/* Parses len bytes of text and expects rc, and why to start with "line N:"
 * when line > 0. */
static void check_bad_n(const char *text, size_t len, int want_rc, unsigned line, const char *what)
{
	struct sidecar sc;
	char why[200] = "";
	int rc = sidecar_parse(text, len, &sc, why, sizeof(why));
	int named = 1;

	if (line > 0) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "line %u: ", line);
		named = strncmp(why, prefix, strlen(prefix)) == 0;
	}
	tap_ok(rc == want_rc && named && sc.url == NULL && sc.validator == NULL &&
	           sc.pieces.words == NULL,
	       "%s refused (rc %d): %s", what, rc, why);
	sidecar_free(&sc);
}

static void check_bad(const char *text, unsigned line, const char *what)
{
	check_bad_n(text, strlen(text), -EINVAL, line, what);
}

static int same_bits(const struct bitmap *a, const struct bitmap *b)
{
	if (a->nbits != b->nbits || a->count != b->count)
		return 0;
	for (size_t i = 0; i < a->nbits; i++)
		if (bitmap_get(a, i) != bitmap_get(b, i))
			return 0;
	return 1;
}

/* Format, parse, compare every field, format again to the same text. */
static void round_trip(const char *url, const char *validator, uint64_t size, uint64_t piece_size,
                       size_t step, const char *path)
{
	struct sidecar sc, back;
	char *text = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	char why[200] = "";
	int rc = sidecar_init(&sc, url, validator, size, piece_size);

	memset(&back, 0, sizeof(back));
	if (rc == 0)
		rc = sidecar_set_path(&sc, path);
	for (size_t i = 0; rc == 0 && step && i < sc.pieces.nbits; i += step)
		bitmap_set(&sc.pieces, i);
	if (rc == 0)
		rc = sidecar_format(&sc, &text, &len);
	if (rc == 0)
		rc = sidecar_parse(text, len, &back, why, sizeof(why));
	if (rc == 0)
		rc = sidecar_format(&back, &again, &len2);
	tap_ok(rc == 0 && strlen(text) == len && strcmp(back.url, url) == 0 &&
	           strcmp(back.validator, validator ? validator : "") == 0 && back.size == size &&
	           back.piece_size == piece_size && same_bits(&back.pieces, &sc.pieces) &&
	           (path ? back.path && strcmp(back.path, path) == 0 : back.path == NULL) &&
	           len2 == len && strcmp(again, text) == 0,
	       "round trip of size %llu piece %llu one piece in %zu (0: none) (%zu pieces, %zu "
	       "bytes) path %s %s",
	       (unsigned long long)size, (unsigned long long)piece_size, step, sc.pieces.nbits, len,
	       path ? path : "(none)", why);
	free(text);
	free(again);
	sidecar_free(&sc);
	sidecar_free(&back);
}

int main(void)
{
	struct sidecar sc;
	char why[200] = "";
	char *text = NULL, *big;
	size_t len = 0;
	int rc;

	/* Piece counts. */
	tap_ok(sidecar_piece_count(0, 4) == 0 && sidecar_piece_count(1, 4) == 1 &&
	           sidecar_piece_count(4, 4) == 1 && sidecar_piece_count(5, 4) == 2 &&
	           sidecar_piece_count(107374182400ULL, 4194304) == 25600 &&
	           sidecar_piece_count(UINT64_MAX, UINT64_C(1) << 30) ==
	               (size_t)(UINT64_C(1) << 34),
	       "piece_count: 0, 1, 1, 2, 25600, and no wrap near UINT64_MAX");

	/* The sample, parsed to exact values. */
	rc = sidecar_parse(sample, strlen(sample), &sc, why, sizeof(why));
	tap_ok(rc == 0 && sc.size == 10000000 && sc.piece_size == 1048576 &&
	           strcmp(sc.validator, "\"5f0c-40000000\"") == 0 &&
	           strcmp(sc.url, "https://host/path?query") == 0 && sc.pieces.nbits == 10 &&
	           sc.pieces.count == 6 && bitmap_get(&sc.pieces, 0) &&
	           !bitmap_get(&sc.pieces, 1) && bitmap_get(&sc.pieces, 2) &&
	           bitmap_get(&sc.pieces, 5) && bitmap_get(&sc.pieces, 7) &&
	           bitmap_get(&sc.pieces, 8) && bitmap_get(&sc.pieces, 9) &&
	           bitmap_prefix(&sc.pieces) == 1,
	       "sample parsed to exact values (rc %d) %s", rc, why);
	rc = rc == 0 ? sidecar_format(&sc, &text, &len) : rc;
	tap_ok(rc == 0 && len == strlen(sample) && strcmp(text, sample) == 0,
	       "sample formats back byte for byte");
	free(text);
	text = NULL;
	sidecar_free(&sc);
	tap_ok(sc.url == NULL && sc.pieces.words == NULL, "sidecar_free zeroes");
	sidecar_free(&sc);

	/* The optional path line: parsed, formatted back byte for byte; a
	 * text without it (an older sidecar) has none. */
	rc = sidecar_parse(HEAD SIZE PSIZE VALID URL PIECES PATH,
	                   strlen(HEAD SIZE PSIZE VALID URL PIECES PATH), &sc, why, sizeof(why));
	tap_ok(rc == 0 && sc.path && strcmp(sc.path, "onnx/resnet18/opset-9/model.onnx") == 0 &&
	           sc.pieces.count == 6,
	       "a path line parsed (rc %d) %s", rc, why);
	rc = rc == 0 ? sidecar_format(&sc, &text, &len) : rc;
	tap_ok(rc == 0 && strcmp(text, HEAD SIZE PSIZE VALID URL PIECES PATH) == 0,
	       "a path line formats back byte for byte");
	free(text);
	text = NULL;
	tap_ok(sidecar_set_path(&sc, NULL) == 0 && sc.path == NULL &&
	           sidecar_format(&sc, &text, &len) == 0 && strcmp(text, sample) == 0,
	       "path forgotten: the text has no path line");
	free(text);
	text = NULL;
	sidecar_free(&sc);
	rc = sidecar_parse(sample, strlen(sample), &sc, why, sizeof(why));
	tap_ok(rc == 0 && sc.path == NULL, "a sidecar without the path line has no path");
	tap_ok(sidecar_set_path(&sc, "mine/team/big/w.bin") == 0 && sc.path &&
	           strcmp(sc.path, "mine/team/big/w.bin") == 0 &&
	           sidecar_set_path(&sc, "huggingface/models/a/b@c/x.json") == 0 &&
	           strcmp(sc.path, "huggingface/models/a/b@c/x.json") == 0,
	       "set_path records a path, and replaces it");
	{
		static const char *const bad_paths[] = {"",     "/etc/passwd", "a//b", "a/",
		                                        "./a",  "a/./b",       "../a", "a/..",
		                                        "a\nb", "a\tb"};
		int refused = 1;
		for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
			refused &= sidecar_set_path(&sc, bad_paths[i]) == -EINVAL && sc.path &&
			           strcmp(sc.path, "huggingface/models/a/b@c/x.json") == 0;
		tap_ok(refused, "set_path refuses unclean paths and keeps the one it had");
	}
	sidecar_free(&sc);
	tap_ok(sc.path == NULL, "sidecar_free frees the path");

	/* Empty validator, size 0 with empty pieces, upper-case hex. */
	rc = sidecar_parse(HEAD "size 0\n" PSIZE "validator \n" URL "pieces \n",
	                   strlen(HEAD "size 0\n" PSIZE "validator \n" URL "pieces \n"), &sc, why,
	                   sizeof(why));
	tap_ok(rc == 0 && sc.size == 0 && strcmp(sc.validator, "") == 0 && sc.pieces.nbits == 0 &&
	           bitmap_full(&sc.pieces),
	       "size 0, empty validator and empty pieces accepted %s", why);
	sidecar_free(&sc);
	rc = sidecar_parse(HEAD SIZE PSIZE VALID URL "pieces A5C\n",
	                   strlen(HEAD SIZE PSIZE VALID URL "pieces A5C\n"), &sc, why, sizeof(why));
	tap_ok(rc == 0 && sc.pieces.count == 6, "upper-case pieces accepted");
	sidecar_free(&sc);
	rc = sidecar_parse(
	    HEAD "size 18446744073709551615\npiece-size 1073741824\n" VALID URL "pieces \n",
	    strlen(HEAD "size 18446744073709551615\npiece-size 1073741824\n" VALID URL "pieces \n"),
	    &sc, why, sizeof(why));
	tap_ok(rc == -EINVAL && strncmp(why, "line 6: ", 8) == 0,
	       "UINT64_MAX size, 1 GiB pieces: the 2^34-bit bitmap is refused by length before "
	       "any allocation: %s",
	       why);
	sidecar_free(&sc);

	/* Round trips. */
	round_trip("https://host/path?query", "\"5f0c-40000000\"", 107374182400ULL, 4194304, 1,
	           NULL);
	round_trip("https://host/path?query", "W/\"abc\"", 107374182400ULL, 4194304, 3, NULL);
	round_trip("https://h/a b", NULL, 107374182400ULL, 4194304, 0, NULL);
	round_trip("https://h/x", "", 0, 4194304, 1, NULL);
	round_trip("https://h/x", "e", 1, 1, 1, NULL);
	round_trip("https://h/x", "e", 1000, 7, 2, NULL);
	round_trip("https://h/x", "e", 65 * 1024, 1024, 64, NULL);
	round_trip("https://h/x", "e", 65 * 1024, 1024, 3, "mine/team/big/weights.bin");
	round_trip("https://h/x", "", 0, 4194304, 1, "onnx/m/opset-9/model.onnx");
	round_trip("https://h/x", "e", 1, 1, 1, "huggingface/models/a/b@0123/\xc3\xa9 x.bin");
	round_trip("https://h/\xc3\xa9", "\xe2\x82\xac", 12345, 1073741824, 1, NULL);

	/* sidecar_init rejections. */
	tap_ok(sidecar_init(&sc, "https://h/x", NULL, 10, 0) == -EINVAL && sc.url == NULL,
	       "init refuses piece_size 0");
	tap_ok(sidecar_init(&sc, "https://h/x", NULL, 10, (UINT64_C(1) << 30) + 1) == -EINVAL,
	       "init refuses piece_size above 1 GiB");
	tap_ok(sidecar_init(&sc, "https://h/x\nsize 5", NULL, 10, 4) == -EINVAL,
	       "init refuses a newline in the url");
	tap_ok(sidecar_init(&sc, "https://h/x", "\"a\"\r", 10, 4) == -EINVAL,
	       "init refuses a control character in the validator");
	tap_ok(sidecar_init(&sc, "https://h/x", "a\x7f", 10, 4) == -EINVAL, "init refuses DEL");
	tap_ok(sidecar_init(&sc, "", "a", 10, 4) == -EINVAL, "init refuses an empty url");
	tap_ok(sidecar_init(&sc, "https://h/x", NULL, 10, 4) == 0 && sc.validator &&
	           strcmp(sc.validator, "") == 0 && sc.pieces.nbits == 3 && sc.pieces.count == 0,
	       "init with a NULL validator gives \"\" and 3 absent pieces");
	/* Format refuses what parse would. */
	sc.piece_size = 5;
	tap_ok(sidecar_format(&sc, &text, &len) == -EINVAL && text == NULL,
	       "format refuses a bitmap of the wrong size");
	sidecar_free(&sc);
	tap_ok(sidecar_init(&sc, "https://h/x", NULL, UINT64_C(1) << 30, 256) == 0 &&
	           sidecar_format(&sc, &text, &len) == -EFBIG && text == NULL,
	       "format refuses a text past SIDECAR_MAX_BYTES (4 Mi pieces)");
	sidecar_free(&sc);

	/* Malformed texts. */
	check_bad("", 1, "empty text");
	check_bad("omnihub-partial 2\n" SIZE PSIZE VALID URL PIECES, 1, "version 2");
	check_bad("omnihub-partial\n" SIZE PSIZE VALID URL PIECES, 1, "header without version");
	check_bad("hello 1\n" SIZE PSIZE VALID URL PIECES, 1, "wrong first line");
	check_bad(" omnihub-partial 1\n" SIZE PSIZE VALID URL PIECES, 1, "header with a space");
	check_bad("omnihub-partial 1\r\n" SIZE PSIZE VALID URL PIECES, 1, "CRLF line end");
	check_bad(HEAD, 2, "nothing after the header");
	check_bad(HEAD PSIZE VALID URL PIECES, 2, "missing size line");
	check_bad(HEAD PSIZE SIZE VALID URL PIECES, 2, "size and piece-size swapped");
	check_bad(HEAD SIZE SIZE PSIZE VALID URL PIECES, 3, "size repeated");
	check_bad(HEAD "size 010000000\n" PSIZE VALID URL PIECES, 2, "size with a leading zero");
	check_bad(HEAD "size +10000000\n" PSIZE VALID URL PIECES, 2, "size with a sign");
	check_bad(HEAD "size -1\n" PSIZE VALID URL PIECES, 2, "negative size");
	check_bad(HEAD "size \n" PSIZE VALID URL PIECES, 2, "empty size");
	check_bad(HEAD "size\n" PSIZE VALID URL PIECES, 2, "size without a value");
	check_bad(HEAD "size  10000000\n" PSIZE VALID URL PIECES, 2, "size with two spaces");
	check_bad(HEAD "size 10000000 \n" PSIZE VALID URL PIECES, 2, "size with a trailing space");
	check_bad(HEAD "size 1e7\n" PSIZE VALID URL PIECES, 2, "size in exponent form");
	check_bad(HEAD "size 0x10\n" PSIZE VALID URL PIECES, 2, "size in hex");
	check_bad(HEAD "size 18446744073709551616\n" PSIZE VALID URL PIECES, 2,
	          "size overflowing 64 bits");
	check_bad(HEAD "size 99999999999999999999999\n" PSIZE VALID URL PIECES, 2,
	          "size far past 64 bits");
	check_bad(HEAD "SIZE 10000000\n" PSIZE VALID URL PIECES, 2, "key in upper case");
	/* Numbers that fit 64 bits but ask for absurd bitmaps: refused by the
	 * length of the pieces line, before any allocation. */
	check_bad(HEAD "size 18446744073709551615\npiece-size 1\n" VALID URL PIECES, 6,
	          "size UINT64_MAX in 1-byte pieces");
	check_bad(HEAD "size 18446744073709551615\npiece-size 1\n" VALID URL "pieces \n", 6,
	          "size UINT64_MAX in 1-byte pieces, no digits");
	check_bad(HEAD "size 9223372036854775808\n" PSIZE VALID URL PIECES, 6,
	          "size 2^63 (negative as off_t)");
	check_bad(HEAD SIZE "piece-size 0\n" VALID URL PIECES, 3, "piece-size 0");
	check_bad(HEAD SIZE "piece-size 00\n" VALID URL PIECES, 3, "piece-size 00");
	check_bad(HEAD SIZE "piece-size 1073741825\n" VALID URL PIECES, 3, "piece-size over 1 GiB");
	check_bad(HEAD SIZE "piece-size -4\n" VALID URL PIECES, 3, "negative piece-size");
	check_bad(HEAD SIZE VALID URL PIECES, 3, "missing piece-size line");
	check_bad(HEAD SIZE PSIZE "etag \"x\"\n" URL PIECES, 4, "unknown key instead of validator");
	check_bad(HEAD SIZE PSIZE "validator\n" URL PIECES, 4, "validator without its space");
	check_bad(HEAD SIZE PSIZE "validator \"a\tb\"\n" URL PIECES, 4, "tab in the validator");
	check_bad(HEAD SIZE PSIZE URL VALID PIECES, 4, "url before validator");
	check_bad(HEAD SIZE PSIZE VALID "url \n" PIECES, 5, "empty url");
	check_bad(HEAD SIZE PSIZE VALID "url https://h/\x1b[0m\n" PIECES, 5, "escape in the url");
	check_bad(HEAD SIZE PSIZE VALID "url https://h/\x7f\n" PIECES, 5, "DEL in the url");
	check_bad(HEAD SIZE PSIZE VALID PIECES, 5, "missing url line");
	check_bad(HEAD SIZE PSIZE VALID URL, 6, "missing pieces line");
	check_bad(HEAD SIZE PSIZE VALID URL "pieces a5c", 6, "no final newline");
	check_bad(HEAD SIZE PSIZE VALID URL "pieces a5\n", 6, "pieces too short");
	check_bad(HEAD SIZE PSIZE VALID URL "pieces a5c0\n", 6, "pieces too long");
	check_bad(HEAD SIZE PSIZE VALID URL "pieces a5e\n", 6, "a piece past the end");
	check_bad(HEAD SIZE PSIZE VALID URL "pieces a5g\n", 6, "pieces not hex");
	check_bad(HEAD SIZE PSIZE VALID URL "pieces  a5c\n", 6, "pieces with two spaces");
	check_bad(HEAD "size 0\n" PSIZE VALID URL "pieces 0\n", 6, "a digit for size 0");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES PIECES, 7, "pieces repeated");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "x\n", 7, "trailing garbage line");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "\n", 7, "trailing empty line");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "x", 7, "trailing text without newline");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "path \n", 7, "empty path");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "path /etc/passwd\n", 7, "absolute path");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "path onnx/../../x\n", 7, "path with ..");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "path a//b\n", 7, "path with an empty part");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "path a/b", 7, "path without its newline");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES "path\n", 7, "path without its space");
	check_bad(HEAD SIZE PSIZE VALID URL PIECES PATH PATH, 8, "path repeated");
	check_bad(HEAD SIZE PSIZE VALID URL PATH PIECES, 6, "path before pieces");
	{
		static const char nul5[] = HEAD SIZE PSIZE VALID "url https://h/\0x\n" PIECES;
		static const char nul7[] = HEAD SIZE PSIZE VALID URL PIECES "\0";
		check_bad_n(nul5, sizeof(nul5) - 1, -EINVAL, 5, "NUL byte in the url");
		check_bad_n(nul7, sizeof(nul7) - 1, -EINVAL, 7, "NUL byte after the last line");
	}
	/* A NUL in the size line must not let the parser stop early. */
	{
		static const char nul2[] = HEAD "size 1\0"
		                                "0\n" PSIZE VALID URL PIECES;
		check_bad_n(nul2, sizeof(nul2) - 1, -EINVAL, 2, "NUL byte in the size");
	}

	/* Too big: refused before anything is read. */
	big = malloc(SIDECAR_MAX_BYTES + 2);
	memcpy(big, sample, strlen(sample));
	memset(big + strlen(sample), 'x', SIDECAR_MAX_BYTES + 1 - strlen(sample));
	big[SIDECAR_MAX_BYTES + 1] = '\0';
	check_bad_n(big, SIDECAR_MAX_BYTES + 1, -EFBIG, 0, "text one byte past 1 MiB");
	check_bad_n(big, SIDECAR_MAX_BYTES, -EINVAL, 7, "text of exactly 1 MiB with garbage");
	free(big);

	/* why may be NULL. */
	tap_ok(sidecar_parse("x", 1, &sc, NULL, 0) == -EINVAL, "parse with no why buffer");
	return tap_done();
}
