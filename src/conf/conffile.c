/* conffile.c: the syntax of omnihub's config files (omnihub.conf(5)):
 * comments, [sections], key = value lines, quoted values. Not for: what a
 * key means or whether its value is good (config.c). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"

#define SECTION_NAME_MAX 64

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static char *skip_space(char *p)
{
	while (is_space(*p))
		p++;
	return p;
}

static void trim_end(char *start)
{
	size_t n = strlen(start);

	while (n > 0 && is_space(start[n - 1]))
		start[--n] = '\0';
}

/* Nothing, or a comment, is all that may follow. */
static bool only_comment(const char *p)
{
	while (is_space(*p))
		p++;
	return *p == '\0' || *p == '#' || *p == ';';
}

bool conffile_section_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SECTION_NAME_MAX ||
	    !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* "[name]" at p: the name, in place, into *name; else a sentence in why. */
static int parse_section(char *p, char **name, char *why, size_t why_size)
{
	char *close = strchr(p, ']');

	if (!close || !only_comment(close + 1)) {
		snprintf(why, why_size, "\"%s\": a section line is [name], alone on its line", p);
		return -EINVAL;
	}
	*close = '\0';
	p = skip_space(p + 1);
	trim_end(p);
	if (!conffile_section_name_ok(p)) {
		snprintf(why, why_size,
		         "[%s]: a section is named after a hub (lowercase letters, digits, '.', "
		         "'_' and '-')",
		         p);
		return -EINVAL;
	}
	*name = p;
	return 0;
}

/* The value that starts at p (after '=' and blanks), unquoted into out,
 * which has room for strlen(p) + 1 bytes. */
static int parse_value(const char *key, char *p, char *out, char *why, size_t why_size)
{
	char *o = out;

	if (*p != '"') {
		/* A comment may end an unquoted value, after a blank: "a#b" is
		 * one value, "a #b" is a and a comment. */
		for (char *c = p; *c; c++)
			if (*c == '#' && c > p && is_space(c[-1])) {
				*c = '\0';
				break;
			}
		trim_end(p);
		if (!*p) {
			snprintf(why, why_size, "%s: no value after '=' (an empty one is \"\")",
			         key);
			return -EINVAL;
		}
		strcpy(out, p);
		return 0;
	}
	for (p++; *p && *p != '"'; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		switch (*++p) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 't':
			*o++ = '\t';
			break;
		case '\0':
			p--; /* the quote is not closed: said below */
			break;
		default:
			snprintf(why, why_size,
			         "%s: \\%c in quotes is no escape (\\\" \\\\ \\n \\t are)", key,
			         *p);
			return -EINVAL;
		}
	}
	if (*p != '"') {
		snprintf(why, why_size, "%s: the quote is not closed", key);
		return -EINVAL;
	}
	if (!only_comment(p + 1)) {
		snprintf(why, why_size, "%s: there is more after the closing quote", key);
		return -EINVAL;
	}
	*o = '\0';
	return 0;
}

/* One line, without its newline: a comment, a [section] or key = value. */
static int parse_line(char *text, char **section, unsigned line, conffile_fn fn, void *ctx,
                      char *why, size_t why_size)
{
	char *p = skip_space(text), *key, *value = NULL;
	size_t key_len;
	int rc;

	if (*p == '\0' || *p == '#' || *p == ';')
		return 0;
	if (*p == '[') {
		char *name;
		rc = parse_section(p, &name, why, why_size);
		if (rc)
			return rc;
		free(*section);
		*section = strdup(name);
		if (!*section) {
			snprintf(why, why_size, "out of memory");
			return -ENOMEM;
		}
		return fn(ctx, *section, NULL, NULL, line, why, why_size);
	}
	key = p;
	key_len = 0;
	while (is_key_char(key[key_len]))
		key_len++;
	p = skip_space(key + key_len);
	if (key_len == 0 || *p != '=') {
		trim_end(key);
		snprintf(why, why_size, "\"%s\" is not \"key = value\", a [section] or a comment",
		         key);
		return -EINVAL;
	}
	key[key_len] = '\0';
	p = skip_space(p + 1);
	value = malloc(strlen(p) + 1);
	if (!value) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	rc = parse_value(key, p, value, why, why_size);
	if (rc == 0)
		rc = fn(ctx, *section, key, value, line, why, why_size);
	free(value);
	return rc;
}

int conffile_parse(const char *path, conffile_fn fn, void *ctx, bool *found, char *why,
                   size_t why_size)
{
	return conffile_parse_all(path, fn, ctx, NULL, found, why, why_size);
}

int conffile_parse_all(const char *path, conffile_fn fn, void *ctx, conffile_problem_fn problem,
                       bool *found, char *why, size_t why_size)
{
	char *text = NULL, *section = NULL, what[512];
	size_t cap = 0;
	unsigned line = 0;
	ssize_t len;
	FILE *f;
	int rc = 0;

	*found = false;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		rc = -errno;
		snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
		return rc;
	}
	*found = true;
	errno = 0;
	while ((len = getline(&text, &cap, f)) >= 0) {
		char *start = text;
		line++;
		if (len > 0 && text[len - 1] == '\n')
			text[--len] = '\0';
		if (len > 0 && text[len - 1] == '\r')
			text[--len] = '\0';
		if (line == 1 && strncmp(start, "\xef\xbb\xbf", 3) == 0)
			start += 3; /* a byte order mark */
		if (strlen(text) != (size_t)len) {
			snprintf(what, sizeof(what), "the line holds a NUL byte");
			rc = -EINVAL;
		} else {
			rc = parse_line(start, &section, line, fn, ctx, what, sizeof(what));
		}
		if (rc) {
			snprintf(why, why_size, "%s:%u: %s", path, line, what);
			if (rc != -EINVAL || !problem)
				break;
			problem(ctx, why);
			rc = 0;
		}
		errno = 0;
	}
	if (rc == 0 && ferror(f)) {
		rc = errno ? -errno : -EIO;
		snprintf(why, why_size, "cannot read %s: %s", path, strerror(-rc));
	}
	free(section);
	free(text);
	fclose(f);
	return rc;
}
