/* sidecar.c: the text file beside a partial blob (<hex>.state) that lets a
 * later process resume it: URL, validator, size, piece size, pieces present,
 * and (optional) the file it is for.
 * Not for: reading or writing the file, locking, or the transfer itself. */
#include "build_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar.h"

#define SIDECAR_MAGIC  "omnihub-partial"
#define SIDECAR_HEADER SIDECAR_MAGIC " 1"
/* The whole text, for snprintf: size, piece size, validator, url, hex. */
#define SIDECAR_FORMAT                                                                             \
	SIDECAR_HEADER "\nsize %" PRIu64 "\npiece-size %" PRIu64 "\nvalidator %s\nurl %s\n"        \
	               "pieces %s\n%s%s%s"

/* The keys after the header line, in the order the format requires; the
 * last one (path) may be left out. */
static const char *const keys[] = {"size", "piece-size", "validator", "url", "pieces", "path"};
enum { KEY_COUNT = sizeof(keys) / sizeof(keys[0]) };

size_t sidecar_piece_count(uint64_t size, uint64_t piece_size)
{
	if (size == 0 || piece_size == 0)
		return 0;
	/* Not (size + piece_size - 1): that wraps near UINT64_MAX. */
	return (size_t)((size - 1) / piece_size + 1);
}

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_control((unsigned char)s[i]))
			return true;
	return false;
}

static bool value_ok(const char *s)
{
	return !has_control(s, strlen(s));
}

/* Relative and clean: no leading "/", no empty, "." or ".." component,
 * no control character. */
static bool path_ok(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || s[0] == '/' || has_control(s, n) || memchr(s, '\0', n))
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		if (i == start || (i - start == 1 && s[start] == '.') ||
		    (i - start == 2 && s[start] == '.' && s[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

static bool piece_size_ok(uint64_t piece_size)
{
	return piece_size > 0 && piece_size <= SIDECAR_MAX_PIECE_SIZE;
}

int sidecar_init(struct sidecar *sc, const char *url, const char *validator, uint64_t size,
                 uint64_t piece_size)
{
	int rc = -EINVAL;

	memset(sc, 0, sizeof(*sc));
	if (!validator)
		validator = "";
	if (!piece_size_ok(piece_size) || !url || url[0] == '\0' || !value_ok(url) ||
	    !value_ok(validator))
		goto out;
	rc = -ENOMEM;
	sc->url = strdup(url);
	sc->validator = strdup(validator);
	if (!sc->url || !sc->validator)
		goto out;
	rc = bitmap_init(&sc->pieces, sidecar_piece_count(size, piece_size));
	if (rc)
		goto out;
	sc->size = size;
	sc->piece_size = piece_size;
out:
	if (rc)
		sidecar_free(sc);
	return rc;
}

int sidecar_set_path(struct sidecar *sc, const char *path)
{
	char *copy = NULL;
	int rc = -EINVAL;

	if (path && !path_ok(path, strlen(path)))
		goto out;
	rc = -ENOMEM;
	if (path && !(copy = strdup(path)))
		goto out;
	free(sc->path);
	sc->path = copy;
	rc = 0;
out:
	return rc;
}

void sidecar_free(struct sidecar *sc)
{
	free(sc->url);
	free(sc->path);
	free(sc->validator);
	bitmap_free(&sc->pieces);
	memset(sc, 0, sizeof(*sc));
}

int sidecar_format(const struct sidecar *sc, char **out, size_t *len)
{
	/* The optional last line, only when there is a path. */
	const char *path_key = sc->path ? "path " : "", *path = sc->path ? sc->path : "";
	const char *path_end = sc->path ? "\n" : "";
	char *hex = NULL, *text = NULL;
	int n, rc = -EINVAL;

	*out = NULL;
	*len = 0;
	/* Refuse what sidecar_parse would refuse, so a written file reads back. */
	if (!sc->url || !sc->validator || sc->url[0] == '\0' || !value_ok(sc->url) ||
	    !value_ok(sc->validator) || !piece_size_ok(sc->piece_size) ||
	    (sc->path && !path_ok(sc->path, strlen(sc->path))) ||
	    sc->pieces.nbits != sidecar_piece_count(sc->size, sc->piece_size))
		goto out;
	/* Checked before building a hex string of that size. */
	rc = -EFBIG;
	if (bitmap_hex_len(sc->pieces.nbits) >= SIDECAR_MAX_BYTES)
		goto out;
	rc = bitmap_to_hex(&sc->pieces, &hex);
	if (rc)
		goto out;
	n = snprintf(NULL, 0, SIDECAR_FORMAT, sc->size, sc->piece_size, sc->validator, sc->url, hex,
	             path_key, path, path_end);
	rc = -EFBIG;
	if (n < 0 || (size_t)n > SIDECAR_MAX_BYTES)
		goto out;
	rc = -ENOMEM;
	text = malloc((size_t)n + 1);
	if (!text)
		goto out;
	snprintf(text, (size_t)n + 1, SIDECAR_FORMAT, sc->size, sc->piece_size, sc->validator,
	         sc->url, hex, path_key, path, path_end);
	*out = text;
	*len = (size_t)n;
	text = NULL;
	rc = 0;
out:
	free(text);
	free(hex);
	return rc;
}

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t why_size, const char *fmt,
                                                      ...)
{
	va_list ap;

	if (!why || why_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_size, fmt, ap);
	va_end(ap);
}

/* A decimal without sign or leading zeros that fits 64 bits. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Where the parse is in the text. */
struct cursor {
	const char *text;
	size_t len;
	size_t pos;    /* start of the next line */
	unsigned line; /* number of the next line, from 1 */
};

/* Takes the next whole line, "\n" excluded, refusing control characters;
 * name is what the line should hold, for the message. */
static int take_line(struct cursor *c, const char *name, const char **line, size_t *line_len,
                     char *why, size_t why_size)
{
	const char *start = c->text + c->pos;
	size_t left = c->len - c->pos;
	const char *nl = memchr(start, '\n', left);
	size_t n = nl ? (size_t)(nl - start) : left;

	if (left == 0) {
		say(why, why_size, "line %u: %s line missing (the text ends)", c->line, name);
		return -EINVAL;
	}
	if (memchr(start, '\0', n)) {
		say(why, why_size, "line %u: %s line holds a NUL byte", c->line, name);
		return -EINVAL;
	}
	if (has_control(start, n)) {
		say(why, why_size, "line %u: %s line holds a control character", c->line, name);
		return -EINVAL;
	}
	if (!nl) {
		say(why, why_size, "line %u: %s line has no final newline", c->line, name);
		return -EINVAL;
	}
	*line = start;
	*line_len = n;
	c->pos += n + 1;
	c->line++;
	return 0;
}

/* Takes the line of key keys[k]: "<key> <value>". */
static int take_key(struct cursor *c, size_t k, const char **value, size_t *value_len, char *why,
                    size_t why_size)
{
	const char *key = keys[k], *line = NULL, *space;
	size_t klen = strlen(key), n = 0;
	unsigned at = c->line;
	int rc = take_line(c, key, &line, &n, why, why_size);

	if (rc)
		return rc;
	if (n > klen && memcmp(line, key, klen) == 0 && line[klen] == ' ') {
		*value = line + klen + 1;
		*value_len = n - klen - 1;
		return 0;
	}
	/* Say whether a known line is misplaced or the key is unknown. */
	space = memchr(line, ' ', n);
	for (size_t i = 0; i < KEY_COUNT; i++) {
		size_t ilen = strlen(keys[i]);
		if ((space ? (size_t)(space - line) : n) == ilen &&
		    memcmp(line, keys[i], ilen) == 0) {
			if (i == k)
				say(why, why_size, "line %u: %s has no space before its value", at,
				    key);
			else
				say(why, why_size,
				    "line %u: %s expected, found %s (a line missing, repeated or "
				    "out "
				    "of order)",
				    at, key, keys[i]);
			return -EINVAL;
		}
	}
	say(why, why_size, "line %u: %s expected, found an unknown key", at, key);
	return -EINVAL;
}

int sidecar_parse(const char *text, size_t len, struct sidecar *out, char *why, size_t why_size)
{
	struct cursor c = {.text = text, .len = len, .pos = 0, .line = 1};
	const char *line = NULL, *v[KEY_COUNT] = {NULL};
	size_t n = 0, vlen[KEY_COUNT] = {0};
	size_t nbits, want;
	unsigned at;
	int rc;

	memset(out, 0, sizeof(*out));
	say(why, why_size, "no error");
	if (len > SIDECAR_MAX_BYTES) {
		say(why, why_size, "sidecar is %zu bytes, more than the %u allowed", len,
		    SIDECAR_MAX_BYTES);
		rc = -EFBIG;
		goto out;
	}
	rc = take_line(&c, "header", &line, &n, why, why_size);
	if (rc)
		goto out;
	if (n != strlen(SIDECAR_HEADER) || memcmp(line, SIDECAR_HEADER, n) != 0) {
		if (n > strlen(SIDECAR_MAGIC " ") &&
		    memcmp(line, SIDECAR_MAGIC " ", strlen(SIDECAR_MAGIC " ")) == 0)
			say(why, why_size, "line 1: header names an unsupported version");
		else
			say(why, why_size, "line 1: header is not \"" SIDECAR_HEADER "\"");
		rc = -EINVAL;
		goto out;
	}

	/* size */
	at = c.line;
	rc = take_key(&c, 0, &v[0], &vlen[0], why, why_size);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (!parse_u64(v[0], vlen[0], &out->size)) {
		say(why, why_size, "line %u: size is not a decimal integer", at);
		goto out;
	}

	/* piece-size */
	at = c.line;
	rc = take_key(&c, 1, &v[1], &vlen[1], why, why_size);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (!parse_u64(v[1], vlen[1], &out->piece_size) || out->piece_size == 0) {
		say(why, why_size, "line %u: piece-size is not a positive integer", at);
		goto out;
	}
	if (out->piece_size > SIDECAR_MAX_PIECE_SIZE) {
		say(why, why_size, "line %u: piece-size is more than 1 GiB", at);
		goto out;
	}

	/* validator: any value, even empty */
	rc = take_key(&c, 2, &v[2], &vlen[2], why, why_size);
	if (rc)
		goto out;

	/* url */
	at = c.line;
	rc = take_key(&c, 3, &v[3], &vlen[3], why, why_size);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (vlen[3] == 0) {
		say(why, why_size, "line %u: url is empty", at);
		goto out;
	}

	/* pieces */
	at = c.line;
	rc = take_key(&c, 4, &v[4], &vlen[4], why, why_size);
	if (rc)
		goto out;
	rc = -EINVAL;
	nbits = sidecar_piece_count(out->size, out->piece_size);
	want = bitmap_hex_len(nbits);
	if (vlen[4] != want) {
		say(why, why_size, "line %u: pieces has %zu hex digits, %zu expected", at, vlen[4],
		    want);
		goto out;
	}
	for (size_t i = 0; i < vlen[4]; i++) {
		if (!is_hex(v[4][i])) {
			say(why, why_size, "line %u: pieces holds a character that is not hex", at);
			goto out;
		}
	}
	rc = bitmap_from_hexn(&out->pieces, nbits, v[4], vlen[4]);
	if (rc == -EINVAL)
		say(why, why_size, "line %u: pieces marks a piece past the end of the blob", at);
	else if (rc)
		say(why, why_size, "out of memory");
	if (rc)
		goto out;

	/* path: optional, the last line when there */
	if (c.pos != len) {
		at = c.line;
		rc = take_key(&c, 5, &v[5], &vlen[5], why, why_size);
		if (rc)
			goto out;
		rc = -EINVAL;
		if (!path_ok(v[5], vlen[5])) {
			say(why, why_size,
			    "line %u: path is not a clean relative path (empty, absolute, or with "
			    "an empty, \".\" or \"..\" component)",
			    at);
			goto out;
		}
	}

	rc = -EINVAL;
	if (c.pos != len) {
		say(why, why_size, "line %u: trailing text after %s", c.line,
		    v[5] ? "path" : "pieces");
		goto out;
	}

	rc = -ENOMEM;
	out->validator = strndup(v[2], vlen[2]);
	out->url = strndup(v[3], vlen[3]);
	if (v[5])
		out->path = strndup(v[5], vlen[5]);
	if (!out->validator || !out->url || (v[5] && !out->path)) {
		say(why, why_size, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc)
		sidecar_free(out);
	return rc;
}
