/* names.c: what an untrusted name from an index or an archive may be, and
 * how a hub's display name becomes a file name. Not for: building cache
 * paths (cache.c) or URLs (fetch.c). */
#include "build_config.h"

#include <errno.h>
#include <string.h>

#include "names.h"

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

int names_check_component(const char *name, const char **why)
{
	size_t len = strlen(name);

	if (len == 0) {
		*why = "empty path component";
		return -EINVAL;
	}
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		*why = "'.' or '..' path component";
		return -EINVAL;
	}
	if (len > NAME_MAX) {
		*why = "path component longer than NAME_MAX";
		return -EINVAL;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p == '/') {
			*why = "'/' inside a name";
			return -EINVAL;
		}
		if (is_control(*p)) {
			*why = "control character or NUL";
			return -EINVAL;
		}
	}
	return 0;
}

int names_check_relpath(const char *path, const char **why)
{
	char component[NAME_MAX + 1];
	const char *start = path;
	size_t len = strlen(path);

	if (len == 0) {
		*why = "empty path";
		return -EINVAL;
	}
	if (path[0] == '/') {
		*why = "absolute path";
		return -EINVAL;
	}
	if (len > NAMES_PATH_MAX) {
		*why = "path too long";
		return -EINVAL;
	}
	for (;;) {
		const char *slash = strchr(start, '/');
		size_t n = slash ? (size_t)(slash - start) : strlen(start);

		if (n > NAME_MAX) {
			*why = "path component longer than NAME_MAX";
			return -EINVAL;
		}
		memcpy(component, start, n);
		component[n] = '\0';
		if (names_check_component(component, why))
			return -EINVAL;
		if (!slash)
			return 0;
		start = slash + 1;
	}
}

static bool keeps(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-';
}

/* The ASCII spelling of each Latin letter of U+00C0..U+017F (Latin-1
 * Supplement and Latin Extended-A): its base letter, or the usual
 * spelling of a ligature (Æ AE, ß ss, Œ OE, Þ Th). NULL for × and ÷. */
#define TRANSLIT_FIRST 0xc0u
#define TRANSLIT_LAST 0x17fu
static const char *const translit[TRANSLIT_LAST - TRANSLIT_FIRST + 1] = {
	/* U+00C0 */ "A", "A", "A", "A", "A", "A", "AE", "C",
	/* U+00C8 */ "E", "E", "E", "E", "I", "I", "I", "I",
	/* U+00D0 */ "D", "N", "O", "O", "O", "O", "O", NULL,
	/* U+00D8 */ "O", "U", "U", "U", "U", "Y", "Th", "ss",
	/* U+00E0 */ "a", "a", "a", "a", "a", "a", "ae", "c",
	/* U+00E8 */ "e", "e", "e", "e", "i", "i", "i", "i",
	/* U+00F0 */ "d", "n", "o", "o", "o", "o", "o", NULL,
	/* U+00F8 */ "o", "u", "u", "u", "u", "y", "th", "y",
	/* U+0100 */ "A", "a", "A", "a", "A", "a", "C", "c",
	/* U+0108 */ "C", "c", "C", "c", "C", "c", "D", "d",
	/* U+0110 */ "D", "d", "E", "e", "E", "e", "E", "e",
	/* U+0118 */ "E", "e", "E", "e", "G", "g", "G", "g",
	/* U+0120 */ "G", "g", "G", "g", "H", "h", "H", "h",
	/* U+0128 */ "I", "i", "I", "i", "I", "i", "I", "i",
	/* U+0130 */ "I", "i", "IJ", "ij", "J", "j", "K", "k",
	/* U+0138 */ "k", "L", "l", "L", "l", "L", "l", "L",
	/* U+0140 */ "l", "L", "l", "N", "n", "N", "n", "N",
	/* U+0148 */ "n", "n", "N", "n", "O", "o", "O", "o",
	/* U+0150 */ "O", "o", "OE", "oe", "R", "r", "R", "r",
	/* U+0158 */ "R", "r", "S", "s", "S", "s", "S", "s",
	/* U+0160 */ "S", "s", "T", "t", "T", "t", "T", "t",
	/* U+0168 */ "U", "u", "U", "u", "U", "u", "U", "u",
	/* U+0170 */ "U", "u", "U", "u", "W", "w", "Y", "y",
	/* U+0178 */ "Y", "Z", "z", "Z", "z", "Z", "z", "s",
};

/* The ASCII spelling of the UTF-8 character at p (*used: its bytes), or
 * NULL when it is not a Latin letter of the table. */
static const char *transliterate(const unsigned char *p, size_t *used)
{
	unsigned cp;

	/* Two-byte sequences only: U+0080..U+07FF. */
	if ((p[0] & 0xe0) != 0xc0 || (p[1] & 0xc0) != 0x80)
		return NULL;
	cp = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
	if (cp < TRANSLIT_FIRST || cp > TRANSLIT_LAST)
		return NULL;
	*used = 2;
	return translit[cp - TRANSLIT_FIRST];
}

/* Appends c to out as a directory name shows it: 0, or -EINVAL when full. */
static int put(char out[NAME_MAX + 1], size_t *n, unsigned char c)
{
	if (*n == NAME_MAX)
		return -EINVAL;
	if (c >= 'A' && c <= 'Z')
		c = (unsigned char)(c - 'A' + 'a');
	/* A leading '-' or '.' would make an option of the name for cd and
	 * ls, or hide it: left out. */
	if (*n == 0 && (c == '-' || c == '.' || !keeps(c)))
		return 0;
	out[(*n)++] = keeps(c) ? (char)c : '-';
	return 0;
}

int names_to_dirname(const char *display, char out[NAME_MAX + 1], const char **why)
{
	size_t n = 0;
	bool in_sequence = false; /* inside a multi-byte UTF-8 character */
	int rc = 0;

	for (const unsigned char *p = (const unsigned char *)display; *p && rc == 0; p++) {
		const char *ascii;
		size_t used = 0;

		if ((*p & 0xc0) == 0x80 && in_sequence)
			continue; /* continuation byte: its character has its '-' */
		in_sequence = *p >= 0xc0;
		ascii = transliterate(p, &used);
		if (ascii) {
			for (; *ascii && rc == 0; ascii++)
				rc = put(out, &n, (unsigned char)*ascii);
			p += used - 1;
			in_sequence = false;
		} else {
			rc = put(out, &n, *p);
		}
	}
	if (rc) {
		*why = "name longer than NAME_MAX";
		return rc;
	}
	out[n] = '\0';
	if (n == 0) {
		*why = "name has no letter or digit";
		return -EINVAL;
	}
	return 0;
}

const char *names_for_log(const char *in, char *out, size_t out_size)
{
	size_t n = 0;

	if (out_size == 0)
		return "";
	for (; in && in[n] && n + 1 < out_size; n++)
		out[n] = is_control((unsigned char)in[n]) ? '?' : in[n];
	out[n] = '\0';
	return out;
}
