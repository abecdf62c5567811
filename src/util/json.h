/* json.h: thin, strict helpers over cJSON for reading untrusted indexes.
 * Not for: what any hub's fields mean (the hubs). */
#ifndef OMNIHUB_JSON_H
#define OMNIHUB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

/* Largest integer a JSON number (a double) carries exactly. */
#define JSON_MAX_SAFE_INTEGER ((1ull << 53) - 1)

/* Parses len bytes; NULL with a sentence in why (and where it went wrong)
 * on error. The tree is the caller's (cJSON_Delete). */
cJSON *json_parse(const char *data, size_t len, char *why, size_t why_size);

/* Called for each element of a top-level array, in order; the element is
 * borrowed and freed right after. A non-zero return stops the walk. */
typedef int (*json_element_fn)(const cJSON *element, size_t position, void *ctx);

/* Walks a document that must be a JSON array, parsing one element at a time
 * so that only one element's tree exists at once (a big index would take
 * many times its size as one cJSON tree). Returns 0; -EINVAL with a
 * sentence in why when the document is not valid JSON or not an array
 * ("not a JSON array"); or what fn returned. Elements before an error have
 * been passed to fn. */
int json_array_each(const char *data, size_t len, json_element_fn fn, void *ctx, char *why,
		    size_t why_size);

/* A member's string value, or NULL when absent or not a string. */
const char *json_string(const cJSON *object, const char *key);
/* A member that is an object, or NULL. */
const cJSON *json_object(const cJSON *object, const char *key);
/* A member that is an integer in [min, max]; -EINVAL otherwise (absent, not
 * a number, fractional, out of range). */
int json_integer(const cJSON *object, const char *key, int64_t min, int64_t max, int64_t *out);

#endif
