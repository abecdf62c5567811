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

int names_to_dirname(const char *display, char out[NAME_MAX + 1], const char **why)
{
	size_t n = 0;
	bool in_sequence = false; /* inside a multi-byte UTF-8 character */

	for (const unsigned char *p = (const unsigned char *)display; *p; p++) {
		unsigned char c = *p;

		if ((c & 0xc0) == 0x80 && in_sequence)
			continue; /* continuation byte: its character has its '-' */
		in_sequence = c >= 0xc0;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (n == NAME_MAX) {
			*why = "name longer than NAME_MAX";
			return -EINVAL;
		}
		out[n++] = keeps(c) ? (char)c : '-';
	}
	out[n] = '\0';
	if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
		*why = "name is empty, '.' or '..'";
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
