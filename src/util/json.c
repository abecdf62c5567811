/* json.c: thin, strict helpers over cJSON for reading untrusted indexes.
 * Not for: what any hub's fields mean (the hubs). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* cJSON decodes the escape \u0000 into a NUL that silently cuts a C string
 * short ("a.onnx\u0000/../x" would read as "a.onnx"). Rewriting it as
 * \u0001 keeps the value's length, and the name checks then refuse the
 * control character instead of using a truncated name. */
static void defuse_nul_escapes(char *text, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (text[i] != '\\')
			continue;
		if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
			text[i + 5] = '1';
		i++; /* skip the escaped character, so "\\u0000" stays text */
	}
}

cJSON *json_parse(const char *data, size_t len, char *why, size_t why_size)
{
	const char *end = NULL;
	cJSON *root = NULL;
	char *copy;

	if (memchr(data, '\0', len)) {
		snprintf(why, why_size, "not valid JSON (a NUL byte at byte %zu)",
			 (size_t)((const char *)memchr(data, '\0', len) - data));
		return NULL;
	}
	copy = malloc(len + 1);
	if (!copy) {
		snprintf(why, why_size, "out of memory");
		return NULL;
	}
	memcpy(copy, data, len);
	copy[len] = '\0';
	defuse_nul_escapes(copy, len);
	/* The length counts the NUL so that trailing garbage is refused. */
	root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
	if (!root) {
		size_t at = end && end >= copy ? (size_t)(end - copy) : 0;
		snprintf(why, why_size, "not valid JSON (error at byte %zu of %zu)", at, len);
	}
	free(copy);
	return root;
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

int json_array_each(const char *data, size_t len, json_element_fn fn, void *ctx, char *why,
		    size_t why_size)
{
	const char *p, *end, *at = NULL;
	size_t position = 0;
	char *copy = NULL;
	cJSON *element;
	int rc = -EINVAL;

	p = skip_space(data, data + len);
	if (p == data + len || *p != '[') {
		/* Not an array: say whether it is JSON at all. */
		cJSON *root = json_parse(data, len, why, why_size);
		if (root)
			snprintf(why, why_size, "not a JSON array");
		cJSON_Delete(root);
		return -EINVAL;
	}
	if (memchr(data, '\0', len)) {
		snprintf(why, why_size, "not valid JSON (a NUL byte at byte %zu)",
			 (size_t)((const char *)memchr(data, '\0', len) - data));
		return -EINVAL;
	}
	copy = malloc(len + 1);
	if (!copy) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	memcpy(copy, data, len);
	copy[len] = '\0';
	defuse_nul_escapes(copy, len);
	end = copy + len;
	p = skip_space(copy + (p - data) + 1, end);
	if (p < end && *p == ']') {
		p++;
		goto tail;
	}
	for (;;) {
		const char *next = NULL;

		/* One element; cJSON stops after it and its trailing space. */
		element = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &next, 0);
		if (!element) {
			at = next && next >= p ? next : p;
			goto invalid;
		}
		rc = fn(element, position++, ctx);
		cJSON_Delete(element);
		if (rc)
			goto out;
		rc = -EINVAL;
		p = skip_space(next, end);
		if (p < end && *p == ',') {
			p = skip_space(p + 1, end);
			continue;
		}
		if (p < end && *p == ']') {
			p++;
			break;
		}
		at = p;
		goto invalid;
	}
tail:
	p = skip_space(p, end);
	if (p != end) {
		at = p;
		goto invalid;
	}
	rc = 0;
	goto out;
invalid:
	snprintf(why, why_size, "not valid JSON (error at byte %zu of %zu)", (size_t)(at - copy),
		 len);
	rc = -EINVAL;
out:
	free(copy);
	return rc;
}

const char *json_string(const cJSON *object, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

const cJSON *json_object(const cJSON *object, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	return cJSON_IsObject(item) ? item : NULL;
}

int json_integer(const cJSON *object, const char *key, int64_t min, int64_t max, int64_t *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	double d;

	if (!cJSON_IsNumber(item))
		return -EINVAL;
	d = item->valuedouble;
	/* The range check comes first so the cast below is defined. */
	if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d)
		return -EINVAL;
	*out = (int64_t)d;
	return 0;
}
