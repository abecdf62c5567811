/* mirror_list.c: the blob mirrors a setting names: base URLs, checked and in
 * order. Not for: which blobs they serve or at what URL (net/mirror.c). */
#include "build_config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mirror_list.h"

/* http:// or https://: then strstr(url, "://") is not NULL. */
static bool has_scheme(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* Takes one URL (len bytes of item). */
static int add_one(struct mirror_list *list, const char *item, size_t len, char *why,
                   size_t why_size)
{
	char *base;

	while (len > 0 && item[len - 1] == '/')
		len--;
	base = strndup(item, len);
	if (!base)
		return -ENOMEM;
	if (!has_scheme(base) || strcspn(strstr(base, "://") + 3, "/") == 0 ||
	    strcspn(base, "?#") != len) {
		snprintf(why, why_size,
		         "mirror '%s': not a base URL (http:// or https://, without ? or #)", base);
		free(base);
		return -EINVAL;
	}
	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(list->bases[i], base) == 0) {
			free(base);
			return 0;
		}
	}
	if (list->count == MIRROR_MAX) {
		snprintf(why, why_size, "mirror '%s': more than %d mirrors", base, MIRROR_MAX);
		free(base);
		return -EINVAL;
	}
	list->bases[list->count++] = base;
	return 0;
}

int mirror_list_parse(struct mirror_list *list, const char *text, char *why, size_t why_size)
{
	static const char separators[] = " \t,";

	while (text && *text) {
		size_t len;
		int rc;

		text += strspn(text, separators);
		len = strcspn(text, separators);
		if (len == 0)
			break;
		rc = add_one(list, text, len, why, why_size);
		if (rc)
			return rc;
		text += len;
	}
	return 0;
}

void mirror_list_free(struct mirror_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->bases[i]);
	memset(list, 0, sizeof(*list));
}
