/* config.c: the settings of one mount or command, resolved once at start-up
 * from its options, then the environment, then the user's config file, then
 * the system's, then built-in defaults; and where each came from. Not for:
 * parsing the command line (main.c) or a file's syntax (conffile.c). */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "conffile.h"
#include "config.h"

int config_parse_unsigned(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long value;
	char *end = NULL;

	/* strtoull alone takes blanks, a sign and "-1" as 2^64-1. */
	if (!text || !(*text >= '0' && *text <= '9'))
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || value < min || value > max)
		return -ERANGE;
	*out = value;
	return 0;
}

int config_parse_seconds(const char *text, unsigned min, unsigned max, unsigned *out)
{
	uint64_t value;
	int rc = config_parse_unsigned(text, min, max, &value);

	if (rc == 0)
		*out = (unsigned)value;
	return rc;
}

int config_parse_size(const char *text, uint64_t *out)
{
	unsigned long long value;
	unsigned shift = 0;
	char *end = NULL;

	if (!text || !(*text >= '0' && *text <= '9'))
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default:
		return -EINVAL;
	}
	if (shift && strcmp(end, "iB") == 0)
		end += 2; /* "4MiB" */
	else if (shift && *end == 'B')
		end++; /* "4MB" */
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || value > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)value << shift;
	return 0;
}

int config_parse_rate(const char *text, unsigned calls_max, unsigned seconds_min,
		      unsigned seconds_max, unsigned *calls, unsigned *seconds)
{
	const char *slash = text ? strchr(text, '/') : NULL;
	char head[32];
	uint64_t n, s = 0;
	int rc;

	if (!text)
		return -EINVAL;
	if (slash && (size_t)(slash - text) >= sizeof(head)) {
		/* More digits than any bound has, or not a number. */
		for (const char *c = text; c < slash; c++)
			if (!(*c >= '0' && *c <= '9'))
				return -EINVAL;
		return -ERANGE;
	}
	if (slash)
		snprintf(head, sizeof(head), "%.*s", (int)(slash - text), text);
	rc = config_parse_unsigned(slash ? head : text, 0, calls_max, &n);
	if (rc == 0 && slash)
		rc = config_parse_unsigned(slash + 1, seconds_min, seconds_max, &s);
	if (rc == 0) {
		*calls = (unsigned)n;
		if (slash)
			*seconds = (unsigned)s;
	}
	return rc;
}

const char *config_env(const char *name)
{
	const char *value = getenv(name);
	return value && *value ? value : NULL;
}

bool config_env_true(const char *name)
{
	const char *value = config_env(name);
	return value && (strcmp(value, "1") == 0 || strcasecmp(value, "true") == 0 ||
			 strcasecmp(value, "yes") == 0 || strcasecmp(value, "on") == 0);
}

/* The first non-NULL of a and b, copied; NULL when both are. */
static int dup_first(char **out, const char *a, const char *b)
{
	const char *pick = a ? a : b;

	*out = NULL;
	if (!pick)
		return 0;
	*out = strdup(pick);
	return *out ? 0 : -ENOMEM;
}

/* base + suffix, or NULL with -ENOMEM. */
static int join(char **out, const char *base, const char *suffix)
{
	*out = NULL;
	if (asprintf(out, "%s%s", base, suffix) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int config_parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the general settings ---- */

static void redact(const char *value, char *out, size_t out_size);

enum kind {
	KIND_PATH,
	KIND_BOOL,
	KIND_NUMBER,
	KIND_SECONDS,
	KIND_SIZE,
	KIND_RATE, /* CALLS[/SECONDS]: calls up to max, seconds 1 to a day */
	KIND_TEXT, /* checked where it is applied */
};

struct key_info {
	const char *name;
	enum kind kind;
	uint64_t min, max; /* a number's or a size's bounds */
	bool per_hub;      /* may be set in a [hub] section too */
};

static const struct key_info keys[CONFIG_NKEYS] = {
	[CONFIG_CACHE] = { .name = "cache", .kind = KIND_PATH, .per_hub = true },
	[CONFIG_CACERT] = { .name = "cacert", .kind = KIND_PATH },
	[CONFIG_OFFLINE] = { .name = "offline", .kind = KIND_BOOL, .per_hub = true },
	[CONFIG_INDEX_TTL] = { .name = "index_ttl", .kind = KIND_SECONDS,
			       .max = CONFIG_INDEX_TTL_MAX, .per_hub = true },
	[CONFIG_STREAM] = { .name = "stream", .kind = KIND_BOOL, .per_hub = true },
	[CONFIG_CONNECTIONS] = { .name = "connections", .kind = KIND_NUMBER, .min = 1,
				 .max = CONFIG_CONNECTIONS_MAX, .per_hub = true },
	[CONFIG_PIECE_SIZE] = { .name = "piece_size", .kind = KIND_SIZE,
				.min = CONFIG_PIECE_SIZE_MIN, .max = CONFIG_PIECE_SIZE_MAX },
	[CONFIG_CACHE_MAX] = { .name = "cache_max", .kind = KIND_SIZE, .max = CONFIG_BYTES_MAX,
			       .per_hub = true },
	[CONFIG_RETRIES] = { .name = "retries", .kind = KIND_NUMBER, .max = CONFIG_RETRIES_MAX },
	[CONFIG_STALL_TIMEOUT] = { .name = "stall_timeout", .kind = KIND_SECONDS, .min = 1,
				   .max = CONFIG_STALL_TIMEOUT_MAX },
	[CONFIG_RETRY_TIME] = { .name = "retry_time", .kind = KIND_SECONDS, .min = 1,
				.max = CONFIG_RETRY_TIME_MAX },
	[CONFIG_MEMORY_MAX] = { .name = "memory_max", .kind = KIND_SIZE,
				.min = CONFIG_MEMORY_MAX_MIN, .max = CONFIG_MEMORY_MAX_MAX },
	[CONFIG_MAX_UNPACK_RATIO] = { .name = "max_unpack_ratio", .kind = KIND_NUMBER,
				      .min = 1, .max = CONFIG_MAX_UNPACK_RATIO_MAX },
	[CONFIG_MAX_UNPACK_SIZE] = { .name = "max_unpack_size", .kind = KIND_SIZE, .min = 1,
				     .max = CONFIG_BYTES_MAX },
	[CONFIG_MIRROR] = { .name = "mirror", .kind = KIND_TEXT },
	[CONFIG_PROXY] = { .name = "proxy", .kind = KIND_TEXT },
};

#define RATE_SECONDS_MAX HUB_OPTION_BUDGET_SECONDS_MAX

static int key_find(const char *name)
{
	for (int k = 0; k < CONFIG_NKEYS; k++)
		if (strcmp(keys[k].name, name) == 0)
			return k;
	return -1;
}

/* A hub option's kind and bounds, as a setting's (hub_option_spec); false
 * for text and lists, which only must not be empty here. */
static bool hub_key(const struct hub_option_spec *spec, struct key_info *out)
{
	static const enum kind kinds[] = {
		[HUB_OPTION_UNSIGNED] = KIND_NUMBER, [HUB_OPTION_SECONDS] = KIND_SECONDS,
		[HUB_OPTION_SIZE] = KIND_SIZE,       [HUB_OPTION_BUDGET] = KIND_RATE,
		[HUB_OPTION_BOOL] = KIND_BOOL,
	};

	if (spec->kind == HUB_OPTION_TEXT || spec->kind == HUB_OPTION_LIST)
		return false;
	*out = (struct key_info){ .name = spec->name, .kind = kinds[spec->kind],
				  .min = spec->min, .max = spec->max };
	return true;
}

/* A size as the user would write it: "4M" rather than 4194304. */
static void format_size(uint64_t bytes, char *out, size_t out_size)
{
	static const char units[] = "KMGT";
	int unit = -1;

	while (unit < 3 && bytes && bytes % 1024 == 0) {
		bytes /= 1024;
		unit++;
	}
	if (unit < 0)
		snprintf(out, out_size, "%llu", (unsigned long long)bytes);
	else
		snprintf(out, out_size, "%llu%c", (unsigned long long)bytes, units[unit]);
}

/* What key accepts, for the sentence that refuses a value. */
static void accepted(const struct key_info *key, char *out, size_t out_size)
{
	char low[32], high[32];

	switch (key->kind) {
	case KIND_BOOL:
		snprintf(out, out_size, "yes/no, true/false, on/off or 1/0");
		break;
	case KIND_SIZE:
		format_size(key->min, low, sizeof(low));
		format_size(key->max, high, sizeof(high));
		snprintf(out, out_size, "%s to %s", low, high);
		break;
	case KIND_RATE:
		snprintf(out, out_size, "CALLS 0 to %llu, or CALLS/SECONDS with SECONDS 1 to %u",
			 (unsigned long long)key->max, RATE_SECONDS_MAX);
		break;
	case KIND_NUMBER:
	case KIND_SECONDS:
		snprintf(out, out_size, "%llu to %llu%s", (unsigned long long)key->min,
			 (unsigned long long)key->max, key->kind == KIND_SECONDS ? " seconds" : "");
		break;
	default:
		out[0] = '\0'; /* any text but an empty one */
		break;
	}
}

/* Checks a value of key, its number (or boolean) into *number; else one
 * sentence: subject (the key, "-o key", "$VARIABLE"), what is wrong and
 * what is accepted. */
static int check_value(const struct key_info *key, const char *text, const char *subject,
		       uint64_t *number, char *why, size_t why_size)
{
	char range[128];
	unsigned calls = 0, seconds = 0;
	bool yes = false;
	int rc = 0;

	*number = 0;
	accepted(key, range, sizeof(range));
	if (!*text) {
		snprintf(why, why_size, "%s: the value is empty%s%s%s", subject,
			 range[0] ? " (" : "", range, range[0] ? ")" : "");
		return -EINVAL;
	}
	switch (key->kind) {
	case KIND_PATH:
	case KIND_TEXT:
		return 0;
	case KIND_BOOL:
		rc = config_parse_bool(text, &yes);
		*number = yes;
		break;
	case KIND_NUMBER:
	case KIND_SECONDS:
		rc = config_parse_unsigned(text, key->min, key->max, number);
		break;
	case KIND_SIZE:
		rc = config_parse_size(text, number);
		if (rc == 0 && (*number < key->min || *number > key->max))
			rc = -ERANGE;
		break;
	case KIND_RATE:
		rc = config_parse_rate(text, (unsigned)key->max, 1, RATE_SECONDS_MAX, &calls,
				       &seconds);
		*number = calls;
		break;
	}
	if (rc == -ERANGE)
		snprintf(why, why_size, "%s: %.64s is out of range (%s)", subject, text, range);
	else if (rc)
		snprintf(why, why_size, "%s: \"%.64s\" is not %s (%s%s)", subject, text,
			 key->kind == KIND_BOOL      ? "yes or no"
			 : key->kind == KIND_SIZE    ? "a size"
			 : key->kind == KIND_RATE    ? "CALLS or CALLS/SECONDS"
			 : key->kind == KIND_SECONDS ? "a number of seconds"
						     : "a number",
			 range,
			 key->kind == KIND_SIZE ? "; bytes, or with K, M, G or T: say 4M" : "");
	return rc ? -EINVAL : 0;
}

/* Who to name in a refusal, from a value's origin: a file's line names
 * the key after "FILE:LINE", an option "-o key", the environment its
 * variable. */
static void subject_of(const char *origin, const char *name, char *out, size_t out_size)
{
	if (strcmp(origin, "option") == 0)
		snprintf(out, out_size, "-o %s", name);
	else if (strncmp(origin, "environment ", 12) == 0)
		snprintf(out, out_size, "%s", origin + 12);
	else
		snprintf(out, out_size, "%s: %s", origin, name);
}

/* A comma-separated list with the blanks around each item dropped, and
 * empty items too: "a/b, c/d" is "a/b,c/d" (a hub splits at commas only).
 * Into *out (the caller's); empty when no item is left. */
static int list_tidy(const char *text, char **out)
{
	char *o = malloc(strlen(text) + 1);
	const char *item = text;

	*out = o;
	if (!o)
		return -ENOMEM;
	*o = '\0';
	while (item) {
		const char *comma = strchr(item, ',');
		size_t n = comma ? (size_t)(comma - item) : strlen(item);
		while (n && (*item == ' ' || *item == '\t')) {
			item++;
			n--;
		}
		while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
			n--;
		if (n) {
			if (o != *out)
				*o++ = ',';
			memcpy(o, item, n);
			o += n;
			*o = '\0';
		}
		item = comma ? comma + 1 : NULL;
	}
	return 0;
}

/* ---- problems: the first stops, or each is reported (config_check) ---- */

struct report {
	config_problem_fn fn; /* NULL: the first problem fails config_resolve */
	void *ctx;
	unsigned count;
};

/* A problem found (rc -EINVAL, sentence in why): passed on, or reported
 * and 0 when every problem is wanted. */
static int report(struct report *r, int rc, const char *why)
{
	if (rc != -EINVAL || !r || !r->fn)
		return rc;
	r->fn(r->ctx, why);
	r->count++;
	return 0;
}

/* ---- a config file, read into a layer ---- */

struct values {
	struct config_value *items; /* owned */
	size_t count;
};

/* What one file sets; every string owned. */
struct layer {
	const char *path; /* borrowed */
	char *general[CONFIG_NKEYS];
	char *general_origin[CONFIG_NKEYS];
	struct values hub_options;  /* name = value */
	struct values hub_settings; /* hub, name = value */
	struct values sections;     /* name: a [section] naming no hub known yet */
	const struct hub_option_hubs *hubs; /* borrowed: the hubs known */
	bool in_hub; /* the current section is a hub of hubs' */
	const struct hub_option_spec *hub_specs; /* that hub's options (may be NULL) */
	struct report *report;      /* borrowed */
};

static void value_clear(struct config_value *v)
{
	free(v->hub);
	free(v->name);
	free(v->value);
	free(v->origin);
	memset(v, 0, sizeof(*v));
}

static void values_free(struct config_value *items, size_t count)
{
	for (size_t i = 0; i < count; i++)
		value_clear(&items[i]);
	free(items);
}

static struct config_value *values_find(const struct values *list, const char *hub,
					const char *name)
{
	for (size_t i = 0; i < list->count; i++) {
		struct config_value *v = &list->items[i];
		if (strcmp(v->name, name) == 0 &&
		    ((!hub && !v->hub) || (hub && v->hub && strcmp(hub, v->hub) == 0)))
			return v;
	}
	return NULL;
}

/* Appends a copy of each string (hub may be NULL). */
static int values_add(struct values *list, const char *hub, const char *name, const char *value,
		      const char *origin)
{
	struct config_value *grown, *v;

	grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	list->items = grown;
	v = &grown[list->count];
	memset(v, 0, sizeof(*v));
	v->hub = hub ? strdup(hub) : NULL;
	v->name = strdup(name);
	v->value = value ? strdup(value) : NULL;
	v->origin = strdup(origin);
	if ((hub && !v->hub) || !v->name || (value && !v->value) || !v->origin) {
		value_clear(v);
		return -ENOMEM;
	}
	list->count++;
	return 0;
}

static void layer_free(struct layer *layer)
{
	for (int k = 0; k < CONFIG_NKEYS; k++) {
		free(layer->general[k]);
		free(layer->general_origin[k]);
	}
	values_free(layer->hub_options.items, layer->hub_options.count);
	values_free(layer->hub_settings.items, layer->hub_settings.count);
	values_free(layer->sections.items, layer->sections.count);
	memset(layer, 0, sizeof(*layer));
}

/* A path in a file: ~/ is $HOME, and it must be absolute (a file has no
 * current directory to be relative to). Each item of a list. */
static int file_paths(const char *key, const char *text, bool list, char **out, char *why,
		      size_t why_size)
{
	const char *home = config_env("HOME");
	size_t cap = strlen(text) + 1, items = 1;
	char *copy = strdup(text), *save = NULL, *item;
	int rc = 0;

	*out = NULL;
	if (!copy)
		return -ENOMEM;
	for (const char *c = text; *c; c++)
		items += *c == ',';
	cap += items * (home ? strlen(home) : 0);
	*out = calloc(1, cap);
	if (!*out) {
		free(copy);
		return -ENOMEM;
	}
	for (item = list ? strtok_r(copy, ",", &save) : copy; item;
	     item = list ? strtok_r(NULL, ",", &save) : NULL) {
		if (**out)
			strcat(*out, ",");
		if (strncmp(item, "~/", 2) == 0 && home) {
			strcat(*out, home);
			strcat(*out, item + 1);
		} else if (item[0] == '/') {
			strcat(*out, item);
		} else {
			snprintf(why, why_size, "%s: \"%s\" is not an absolute path (nor ~/...)",
				 key, item);
			rc = -EINVAL;
			break;
		}
	}
	free(copy);
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* The hub option that a key in a hub's section names (options: the hub's):
 * its full name, or that name without the prefix all the hub's options
 * share ("hf_"). */
static const struct hub_option_spec *section_option(const struct hub_option_spec *options,
						    const char *key)
{
	const struct hub_option_spec *spec;
	size_t prefix = 0;

	if (!options)
		return NULL;
	for (spec = options; spec->name; spec++)
		if (strcmp(spec->name, key) == 0)
			return spec;
	prefix = strcspn(options[0].name, "_");
	for (spec = options; spec->name; spec++)
		if (strncmp(spec->name, options[0].name, prefix + 1) != 0 ||
		    spec->name[prefix] != '_')
			return NULL; /* no prefix shared by all */
	for (spec = options; spec->name; spec++)
		if (strcmp(spec->name + prefix + 1, key) == 0)
			return spec;
	return NULL;
}

/* Whether name is one of hubs', with its options in *options. */
static bool registry_hub(const struct hub_option_hubs *hubs, const char *name,
			 const struct hub_option_spec **options)
{
	*options = NULL;
	for (size_t i = 0; hubs && i < hubs->count; i++) {
		if (strcmp(hubs->name(i), name) == 0) {
			*options = hubs->options(i);
			return true;
		}
	}
	return false;
}

static int origin_of(const struct layer *layer, unsigned line, char **out)
{
	if (asprintf(out, "%s:%u", layer->path, line) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* A hub option's line: a list adds to what the file set before. */
static int layer_hub_option(struct layer *layer, const struct hub_option_spec *spec,
			    const char *value, unsigned line, char *why, size_t why_size)
{
	struct config_value *v = values_find(&layer->hub_options, NULL, spec->name);
	struct key_info number;
	char *text = NULL, *origin = NULL, *tidy = NULL;
	uint64_t n;
	int rc = 0;

	if (spec->kind == HUB_OPTION_LIST) {
		rc = list_tidy(value, &tidy);
		if (rc)
			goto out;
		value = tidy;
	}
	if (!*value) {
		snprintf(why, why_size, "%s: the value is empty", spec->name);
		rc = -EINVAL;
		goto out;
	}
	if (hub_key(spec, &number)) {
		rc = check_value(&number, value, spec->name, &n, why, why_size);
		if (rc)
			goto out;
	}
	if (spec->value &&
	    (strcmp(spec->value, "FILE") == 0 || strcmp(spec->value, "DIR") == 0)) {
		rc = file_paths(spec->name, value, spec->kind == HUB_OPTION_LIST, &text, why,
				why_size);
		if (rc)
			goto out;
		value = text;
	}
	if (!v) {
		rc = origin_of(layer, line, &origin);
		if (rc == 0)
			rc = values_add(&layer->hub_options, NULL, spec->name, value, origin);
		goto out;
	}
	if (spec->kind == HUB_OPTION_LIST) {
		char *joined = NULL;
		if (asprintf(&joined, "%s,%s", v->value, value) < 0 ||
		    asprintf(&origin, "%s,%u", v->origin, line) < 0) {
			free(joined);
			origin = NULL;
			rc = -ENOMEM;
			goto out;
		}
		free(v->value);
		v->value = joined;
		free(v->origin);
		v->origin = origin;
		origin = NULL;
		goto out;
	}
	/* Said again: the later line wins, as in git's files. */
	rc = origin_of(layer, line, &origin);
	if (rc == 0 && !text && !(text = strdup(value)))
		rc = -ENOMEM;
	if (rc == 0) {
		free(v->value);
		v->value = text;
		text = NULL;
		free(v->origin);
		v->origin = origin;
		origin = NULL;
	}
out:
	if (rc == -ENOMEM)
		snprintf(why, why_size, "out of memory");
	free(tidy);
	free(text);
	free(origin);
	return rc;
}

/* A general setting's line, or a [hub]'s own offline, stream... */
static int layer_setting(struct layer *layer, const char *section, int k, const char *value,
			 unsigned line, char *why, size_t why_size)
{
	char *text = NULL, *origin = NULL;
	uint64_t number;
	int rc;

	rc = check_value(&keys[k], value, keys[k].name, &number, why, why_size);
	if (rc)
		return rc;
	if (keys[k].kind == KIND_PATH)
		rc = file_paths(keys[k].name, value, false, &text, why, why_size);
	else if (!(text = strdup(value)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = origin_of(layer, line, &origin);
	if (rc == 0 && section) {
		struct config_value *v = values_find(&layer->hub_settings, section, keys[k].name);
		if (v) {
			free(v->value);
			free(v->origin);
			v->value = text;
			v->origin = origin;
			text = origin = NULL;
		} else {
			rc = values_add(&layer->hub_settings, section, keys[k].name, text, origin);
		}
	} else if (rc == 0) {
		free(layer->general[k]);
		free(layer->general_origin[k]);
		layer->general[k] = text;
		layer->general_origin[k] = origin;
		text = origin = NULL;
	}
	if (rc == -ENOMEM)
		snprintf(why, why_size, "out of memory");
	free(text);
	free(origin);
	return rc;
}

/* "convert = FROM:TO:COMMAND" in the section of a hub made from catalogs:
 * that hub's own converters (the catalog hubs share one option table, so
 * the general option cannot say whose). Lines add up, like -o convert. */
static int layer_hub_convert(struct layer *layer, const char *section, const char *value,
			     unsigned line, char *why, size_t why_size)
{
	struct config_value *v = values_find(&layer->hub_settings, section, CONFIG_HUB_CONVERT);
	char *origin = NULL, *joined = NULL, *tidy = NULL;
	int rc = list_tidy(value, &tidy);

	if (rc == 0 && !*tidy) {
		snprintf(why, why_size, "[%s]: %s: the value is empty", section, CONFIG_HUB_CONVERT);
		rc = -EINVAL;
	}
	value = tidy;
	if (rc == 0)
		rc = origin_of(layer, line, &origin);
	if (rc == 0 && !v) {
		rc = values_add(&layer->hub_settings, section, CONFIG_HUB_CONVERT, value, origin);
	} else if (rc == 0) {
		if (asprintf(&joined, "%s,%s", v->value, value) < 0) {
			joined = NULL;
			rc = -ENOMEM;
		} else {
			free(v->value);
			v->value = joined;
		}
	}
	if (rc == -ENOMEM)
		snprintf(why, why_size, "out of memory");
	free(tidy);
	free(origin);
	return rc;
}

/* conffile_parse_all's report of a bad line. */
static void layer_problem(void *ctx, const char *sentence)
{
	const struct layer *layer = ctx;

	report(layer->report, -EINVAL, sentence);
}

static int layer_line(void *ctx, const char *section, const char *key, const char *value,
		      unsigned line, char *why, size_t why_size)
{
	struct layer *layer = ctx;
	const struct hub_option_spec *spec = NULL;
	int k;

	if (!key) {
		/* A hub made from a catalog is only known once the catalogs are
		 * read: keep the name for config_check_sections. */
		char *origin = NULL;
		int rc;
		layer->in_hub = registry_hub(layer->hubs, section, &layer->hub_specs);
		if (layer->in_hub || values_find(&layer->sections, NULL, section))
			return 0;
		rc = origin_of(layer, line, &origin);
		if (rc == 0)
			rc = values_add(&layer->sections, NULL, section, NULL, origin);
		free(origin);
		if (rc)
			snprintf(why, why_size, "out of memory");
		return rc;
	}
	k = key_find(key);
	if (!section) {
		if (k >= 0)
			return layer_setting(layer, NULL, k, value, line, why, why_size);
		spec = hub_option_find(layer->hubs, key);
		if (spec)
			return layer_hub_option(layer, spec, value, line, why, why_size);
		snprintf(why, why_size, "unknown key \"%s\"", key);
		return -EINVAL;
	}
	if (k >= 0 && keys[k].per_hub)
		return layer_setting(layer, section, k, value, line, why, why_size);
	if (k >= 0) {
		snprintf(why, why_size,
			 "[%s]: %s is not set per hub: put it before the first [section]",
			 section, key);
		return -EINVAL;
	}
	if (layer->in_hub)
		spec = section_option(layer->hub_specs, key);
	if (spec)
		return layer_hub_option(layer, spec, value, line, why, why_size);
	if (!layer->in_hub && strcmp(key, CONFIG_HUB_CONVERT) == 0)
		return layer_hub_convert(layer, section, value, line, why, why_size);
	snprintf(why, why_size, "[%s]: unknown key \"%s\"", section, key);
	return -EINVAL;
}

/* ---- resolving ---- */

/* A general setting given as an option, as the user wrote it; NULL when
 * not given. */
static const char *option_text(const struct config_options *opts, int k)
{
	switch (k) {
	case CONFIG_CACHE: return opts->cache;
	case CONFIG_CACERT: return opts->cacert;
	case CONFIG_OFFLINE: return opts->offline_value ? opts->offline_value
					     : opts->offline   ? "yes"
							       : NULL;
	case CONFIG_STREAM: return opts->stream_value ? opts->stream_value
					   : opts->stream   ? "yes"
							    : NULL;
	case CONFIG_INDEX_TTL: return opts->index_ttl;
	case CONFIG_CONNECTIONS: return opts->connections;
	case CONFIG_PIECE_SIZE: return opts->piece_size;
	case CONFIG_CACHE_MAX: return opts->cache_max;
	case CONFIG_RETRIES: return opts->retries;
	case CONFIG_STALL_TIMEOUT: return opts->stall_timeout;
	case CONFIG_MAX_UNPACK_RATIO: return opts->max_unpack_ratio;
	case CONFIG_MAX_UNPACK_SIZE: return opts->max_unpack_size;
	case CONFIG_MIRROR: return opts->mirror;
	case CONFIG_PROXY: return opts->proxy;
	case CONFIG_RETRY_TIME: return opts->retry_time;
	case CONFIG_MEMORY_MAX: return opts->memory_max;
	}
	return NULL;
}

/* A general setting from the environment, with the variable's name. */
static const char *env_text(int k, const char **name)
{
	static const char *const cache_vars[] = { "OMNIHUB_HOME", "MODELHUB_PATH" };
	static const char *const proxy_vars[] = { "https_proxy", "HTTPS_PROXY", "http_proxy",
						  "all_proxy", "ALL_PROXY" };

	*name = NULL;
	switch (k) {
	case CONFIG_CACHE:
		for (size_t i = 0; i < 2; i++)
			if (config_env(cache_vars[i])) {
				*name = cache_vars[i];
				return config_env(*name);
			}
		return NULL;
	case CONFIG_CACERT:
		/* libcurl does not read CURL_CA_BUNDLE itself; the curl tool
		 * does, and users expect the same here. */
		*name = "CURL_CA_BUNDLE";
		return config_env(*name);
	case CONFIG_OFFLINE:
		/* As written: "maybe" is refused, not taken as no. */
		*name = "OMNIHUB_OFFLINE";
		return config_env(*name);
	case CONFIG_MIRROR:
		*name = "OMNIHUB_MIRRORS";
		return config_env(*name);
	case CONFIG_PROXY:
		/* The ones libcurl reads (http_proxy only in lower case). */
		for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++)
			if (config_env(proxy_vars[i])) {
				*name = proxy_vars[i];
				return config_env(*name);
			}
		return NULL;
	}
	return NULL;
}

/* The cache directory, absolute: the daemon changes to / once mounted. */
static int set_cache_dir(struct config *cfg, const char *text, char *why, size_t why_size)
{
	const char *home = config_env("HOME");
	char cwd[PATH_MAX];

	if (!text && !home) {
		snprintf(why, why_size,
			 "no cache directory: set -o cache=DIR, $OMNIHUB_HOME, cache in %s, "
			 "or $HOME",
			 CONFIG_SYSTEM_FILE);
		return -EINVAL;
	}
	if (!text)
		return join(&cfg->cache_dir, home, "/.omnihub");
	if (text[0] == '/')
		return dup_first(&cfg->cache_dir, text, NULL);
	if (!getcwd(cwd, sizeof(cwd))) {
		snprintf(why, why_size, "cannot find the current directory for a relative cache "
					"path");
		return -errno;
	}
	if (asprintf(&cfg->cache_dir, "%s/%s", cwd, text) < 0) {
		cfg->cache_dir = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Sets general setting k from text (NULL: its default), which came from
 * origin. */
static int apply_setting(struct config *cfg, int k, const char *text, const char *origin,
			 char *why, size_t why_size)
{
	char subject[512] = "";
	uint64_t n = 0;
	int rc;

	if (text) {
		subject_of(origin, keys[k].name, subject, sizeof(subject));
		rc = check_value(&keys[k], text, subject, &n, why, why_size);
		if (rc)
			return rc;
	}
	switch (k) {
	case CONFIG_CACHE: return set_cache_dir(cfg, text, why, why_size);
	case CONFIG_CACERT: return dup_first(&cfg->cacert, text, NULL);
	case CONFIG_OFFLINE: cfg->offline = text && n; break;
	case CONFIG_STREAM: cfg->stream = text && n; break;
	case CONFIG_INDEX_TTL: cfg->index_ttl = text ? (unsigned)n : CONFIG_INDEX_TTL_DEFAULT; break;
	case CONFIG_CONNECTIONS:
		cfg->connections = text ? (unsigned)n : CONFIG_CONNECTIONS_DEFAULT;
		break;
	case CONFIG_PIECE_SIZE: cfg->piece_size = text ? n : CONFIG_PIECE_SIZE_DEFAULT; break;
	case CONFIG_CACHE_MAX: cfg->cache_max = n; break;
	case CONFIG_RETRIES: cfg->retries = text ? (unsigned)n : CONFIG_RETRIES_DEFAULT; break;
	case CONFIG_STALL_TIMEOUT:
		cfg->stall_timeout = text ? (unsigned)n : CONFIG_STALL_TIMEOUT_DEFAULT;
		break;
	case CONFIG_RETRY_TIME:
		cfg->retry_time = text ? (unsigned)n : CONFIG_RETRY_TIME_DEFAULT;
		break;
	case CONFIG_MEMORY_MAX: cfg->memory_max = text ? n : CONFIG_MEMORY_MAX_DEFAULT; break;
	case CONFIG_MAX_UNPACK_RATIO:
		cfg->max_unpack_ratio = text ? (unsigned)n : CONFIG_MAX_UNPACK_RATIO_DEFAULT;
		break;
	case CONFIG_MAX_UNPACK_SIZE: cfg->max_unpack_size = n; break;
	case CONFIG_MIRROR: {
		char what[512];
		mirror_list_free(&cfg->mirrors);
		rc = text ? mirror_list_parse(&cfg->mirrors, text, what, sizeof(what)) : 0;
		/* Where it came from, before what is wrong (which names the key);
		 * the mirror is named as written: hide its password. */
		if (rc == -EINVAL) {
			char shown[sizeof(what)];
			redact(what, shown, sizeof(shown));
			snprintf(what, sizeof(what), "%s", shown);
		}
		if (rc == -EINVAL)
			snprintf(why, why_size, "%s: %s",
				 strncmp(origin, "environment ", 12) == 0 ? origin + 12
				 : strcmp(origin, "option") == 0	  ? "-o mirror"
									  : origin,
				 what);
		else if (rc)
			snprintf(why, why_size, "%s", what);
		return rc;
	}
	case CONFIG_PROXY: return dup_first(&cfg->proxy, text, NULL);
	}
	return 0;
}

static int resolve_general(struct config *cfg, const struct config_options *opts,
			   const struct layer *layers, size_t nlayers, struct report *r, char *why,
			   size_t why_size)
{
	for (int k = 0; k < CONFIG_NKEYS; k++) {
		const char *env_name, *text = option_text(opts, k);
		char *origin = NULL;
		int rc = 0;

		if (text) {
			origin = strdup("option");
		} else if ((text = env_text(k, &env_name)) != NULL) {
			if (asprintf(&origin, "environment $%s", env_name) < 0)
				origin = NULL;
		} else {
			for (size_t i = 0; i < nlayers && !text; i++)
				if (layers[i].general[k]) {
					text = layers[i].general[k];
					origin = strdup(layers[i].general_origin[k]);
				}
			if (!text)
				origin = strdup("default");
		}
		if (!origin)
			return -ENOMEM;
		cfg->origins[k] = origin;
		if (k == CONFIG_PROXY)
			cfg->proxy_from_env = strncmp(origin, "environment", 11) == 0;
		rc = report(r, apply_setting(cfg, k, text, origin, why, why_size), why);
		if (rc == 0 && text && r && r->fn && why[0]) /* reported: go on with the default */
			rc = report(r, apply_setting(cfg, k, NULL, "default", why, why_size), why);
		if (rc)
			return rc;
		why[0] = '\0';
	}
	return 0;
}

/* A hub option's value from one origin: a list tidied (blanks around the
 * items dropped), a number checked; into out. */
static int add_hub_option(struct values *out, const struct hub_option_spec *spec,
			  const char *value, const char *origin, char *why, size_t why_size)
{
	struct key_info number;
	char subject[512], *tidy = NULL;
	uint64_t n;
	int rc = 0;

	subject_of(origin, spec->name, subject, sizeof(subject));
	if (spec->kind == HUB_OPTION_LIST) {
		rc = list_tidy(value, &tidy);
		if (rc)
			goto out;
		value = tidy;
	}
	if (hub_key(spec, &number)) {
		rc = check_value(&number, value, subject, &n, why, why_size);
	} else if (!*value) {
		snprintf(why, why_size, "%s: the value is empty", subject);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = values_add(out, NULL, spec->name, value, origin);
out:
	free(tidy);
	return rc;
}

static int resolve_hub_options(struct config *cfg, const struct config_options *opts,
			       const struct layer *layers, size_t nlayers, struct report *r,
			       char *why, size_t why_size)
{
	struct values out = { 0 };
	int rc = 0;

	/* Every option the hubs declare, in their order (main.c and
	 * options.c take no other). */
	for (size_t h = 0; opts->hubs && h < opts->hubs->count && rc == 0; h++) {
		const struct hub_option_spec *spec = opts->hubs->options(h);
		for (; spec && spec->name && rc == 0; spec++) {
			const char *value = NULL, *origin = "option";
			char *env_origin = NULL;
			if (values_find(&out, NULL, spec->name))
				continue; /* two hubs share the table */
			for (size_t i = 0; i < opts->nhub_options; i++)
				if (strcmp(opts->hub_options[i].name, spec->name) == 0)
					value = opts->hub_options[i].value; /* the last wins */
			if (!value && spec->env && config_env(spec->env)) {
				value = config_env(spec->env);
				if (asprintf(&env_origin, "environment $%s", spec->env) < 0) {
					rc = -ENOMEM;
					break;
				}
				origin = env_origin;
			}
			for (size_t i = 0; i < nlayers && !value; i++) {
				const struct config_value *v =
				    values_find(&layers[i].hub_options, NULL, spec->name);
				if (v) {
					value = v->value;
					origin = v->origin;
				}
			}
			if (value)
				rc = report(r, add_hub_option(&out, spec, value, origin, why,
							      why_size),
					    why);
			free(env_origin);
		}
	}
	cfg->hub_options = out.items;
	cfg->nhub_options = out.count;
	return rc;
}

/* A [hub]'s own cache and cache_max make a store of its own, apart from
 * the general cache: -o cache and $OMNIHUB_HOME move the general one only. */
static bool is_store_key(const char *name)
{
	return strcmp(name, keys[CONFIG_CACHE].name) == 0 ||
	       strcmp(name, keys[CONFIG_CACHE_MAX].name) == 0;
}

/* Per-hub settings from the files, unless -o or the environment set the
 * general one: what the user says for this run holds for every hub. */
static int resolve_hub_settings(struct config *cfg, const struct layer *layers, size_t nlayers)
{
	struct values settings = { 0 }, sections = { 0 };
	int rc = 0;

	for (size_t i = 0; i < nlayers && rc == 0; i++) {
		for (size_t j = 0; j < layers[i].hub_settings.count && rc == 0; j++) {
			const struct config_value *v = &layers[i].hub_settings.items[j];
			int k = key_find(v->name);
			const char *general = k >= 0 ? cfg->origins[k] : "";
			if (values_find(&settings, v->hub, v->name))
				continue;
			/* An option or the environment holds for every hub; a
			 * hub's own converters add to the general ones. */
			if (k >= 0 && !is_store_key(v->name) &&
			    (strcmp(general, "option") == 0 ||
			     strncmp(general, "environment ", 12) == 0))
				continue;
			rc = values_add(&settings, v->hub, v->name, v->value, v->origin);
		}
		for (size_t j = 0; j < layers[i].sections.count && rc == 0; j++) {
			const struct config_value *v = &layers[i].sections.items[j];
			rc = values_add(&sections, NULL, v->name, NULL, v->origin);
		}
	}
	cfg->hub_settings = settings.items;
	cfg->nhub_settings = settings.count;
	cfg->sections = sections.items;
	cfg->nsections = sections.count;
	return rc;
}

/* A [hub] cache_max limits the hub's own store: without one, the hub's
 * bytes are in the general cache, under the general limit. */
static int check_hub_stores(const struct config *cfg, struct report *r, char *why,
			    size_t why_size)
{
	const struct values list = { cfg->hub_settings, cfg->nhub_settings };
	int rc = 0;

	for (size_t i = 0; i < cfg->nhub_settings && rc == 0; i++) {
		const struct config_value *v = &cfg->hub_settings[i];
		if (strcmp(v->name, keys[CONFIG_CACHE_MAX].name) != 0 ||
		    values_find(&list, v->hub, keys[CONFIG_CACHE].name))
			continue;
		snprintf(why, why_size,
			 "%s: [%s]: cache_max per hub needs the hub's own cache directory "
			 "(cache in [%s])",
			 v->origin, v->hub, v->hub);
		rc = report(r, -EINVAL, why);
	}
	return rc;
}

/* Where the files are: the variables let tests and users name others. */
static int file_paths_of(struct config *cfg)
{
	const char *user = config_env("OMNIHUB_CONFIG"), *home = config_env("HOME");
	int rc = 0;

	if (user)
		rc = dup_first(&cfg->user_file, user, NULL);
	else if (config_env("XDG_CONFIG_HOME"))
		rc = join(&cfg->user_file, config_env("XDG_CONFIG_HOME"), "/omnihub/config");
	else if (home)
		rc = join(&cfg->user_file, home, CONFIG_USER_FILE_TAIL);
	if (rc == 0)
		rc = dup_first(&cfg->system_file, config_env("OMNIHUB_SYSTEM_CONFIG"),
			       CONFIG_SYSTEM_FILE);
	return rc;
}

/* config_resolve, with each problem to r when r->fn is set. */
static int resolve(struct config *cfg, const struct config_options *opts, struct report *r,
		   const char **why)
{
	struct layer layers[2]; /* the user's file, then the system's */
	char msg[sizeof(cfg->error)] = "out of memory";
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	memset(layers, 0, sizeof(layers));
	rc = file_paths_of(cfg);
	if (rc)
		goto out;
	layers[0].path = cfg->user_file;
	layers[1].path = cfg->system_file;
	layers[0].report = layers[1].report = r;
	layers[0].hubs = layers[1].hubs = opts->hubs;
	rc = conffile_parse_all(cfg->system_file, layer_line, &layers[1],
				r && r->fn ? layer_problem : NULL, &cfg->system_file_found, msg,
				sizeof(msg));
	if (rc == 0 && cfg->user_file)
		rc = conffile_parse_all(cfg->user_file, layer_line, &layers[0],
					r && r->fn ? layer_problem : NULL, &cfg->user_file_found,
					msg, sizeof(msg));
	if (rc)
		goto out;
	msg[0] = '\0';
	rc = resolve_general(cfg, opts, layers, 2, r, msg, sizeof(msg));
	if (rc == 0)
		rc = resolve_hub_options(cfg, opts, layers, 2, r, msg, sizeof(msg));
	if (rc == 0)
		rc = resolve_hub_settings(cfg, layers, 2);
	if (rc == 0)
		rc = check_hub_stores(cfg, r, msg, sizeof(msg));
out:
	layer_free(&layers[0]);
	layer_free(&layers[1]);
	*why = NULL;
	if (rc) {
		config_free(cfg);
		snprintf(cfg->error, sizeof(cfg->error), "%s",
			 rc == -ENOMEM || !msg[0] ? "out of memory" : msg);
		*why = cfg->error;
	}
	return rc;
}

int config_resolve(struct config *cfg, const struct config_options *opts, const char **why)
{
	return resolve(cfg, opts, NULL, why);
}

int config_check(const struct config_options *opts, config_problem_fn fn, void *ctx)
{
	struct report r = { fn, ctx, 0 };
	struct config cfg;
	const char *why = NULL;
	int rc = resolve(&cfg, opts, &r, &why);

	/* What stops the reading (a file that cannot be read) is a problem
	 * too; only memory is not the settings' fault. */
	if (rc && rc != -ENOMEM) {
		fn(ctx, why);
		r.count++;
		rc = 0;
	}
	config_free(&cfg);
	return rc ? rc : (int)r.count;
}

void config_free(struct config *cfg)
{
	free(cfg->cache_dir);
	free(cfg->cacert);
	free(cfg->proxy);
	mirror_list_free(&cfg->mirrors);
	values_free(cfg->hub_options, cfg->nhub_options);
	values_free(cfg->hub_settings, cfg->nhub_settings);
	values_free(cfg->sections, cfg->nsections);
	for (int k = 0; k < CONFIG_NKEYS; k++)
		free(cfg->origins[k]);
	free(cfg->user_file);
	free(cfg->system_file);
	memset(cfg, 0, sizeof(*cfg));
}

const char *config_hub_option(const struct config *cfg, const char *name)
{
	const struct values list = { cfg->hub_options, cfg->nhub_options };
	const struct config_value *v = values_find(&list, NULL, name);

	return v ? v->value : NULL;
}

/* A list set on several lines of a file has the origin "PATH:L1,L2...":
 * the line that holds the item the sentence quotes ('item') is the one to
 * name. Read again from the file, on this error path only; 0 when none. */
static unsigned line_of_item(const char *origin, const char *sentence)
{
	const char *colon = strrchr(origin, ':'), *quote = strchr(sentence, '\'');
	const char *end = quote ? strchr(quote + 1, '\'') : NULL;
	char path[PATH_MAX], item[256], *line = NULL;
	unsigned found = 0, number = 0;
	size_t cap = 0;
	FILE *f;

	if (!colon || !strchr(colon, ',') || !end || end - quote - 1 <= 0 ||
	    (size_t)(end - quote - 1) >= sizeof(item) || (size_t)(colon - origin) >= sizeof(path))
		return 0;
	snprintf(path, sizeof(path), "%.*s", (int)(colon - origin), origin);
	snprintf(item, sizeof(item), "%.*s", (int)(end - quote - 1), quote + 1);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		char listed[16];
		const char *at = colon + 1;

		number++;
		if (!strstr(line, item))
			continue;
		/* Only a line the origin lists: the item may be in a comment too. */
		while (*at && !found) {
			size_t n = strcspn(at, ",");
			snprintf(listed, sizeof(listed), "%.*s", (int)n, at);
			if ((unsigned)strtoul(listed, NULL, 10) == number)
				found = number;
			at += n + (at[n] == ',');
		}
	}
	free(line);
	fclose(f);
	return found;
}

int config_locate_refusal(const struct config *cfg, const char *sentence, char *out,
			  size_t out_size)
{
	int rc = -ENOENT;

	snprintf(out, out_size, "%s", sentence);
	for (size_t i = 0; i < cfg->nhub_options && rc; i++) {
		const struct config_value *v = &cfg->hub_options[i];
		size_t n = strlen(v->name);
		unsigned line;

		if (strncmp(sentence, v->name, n) != 0 || (sentence[n] != ':' && sentence[n] != ' '))
			continue;
		if (strcmp(v->origin, "option") == 0)
			snprintf(out, out_size, "-o %s", sentence);
		else if (strncmp(v->origin, "environment ", 12) == 0)
			snprintf(out, out_size, "%s: %s", v->origin + 12, sentence);
		else if ((line = line_of_item(v->origin, sentence)) != 0)
			snprintf(out, out_size, "%.*s:%u: %s",
				 (int)(strrchr(v->origin, ':') - v->origin), v->origin, line,
				 sentence);
		else
			snprintf(out, out_size, "%s: %s", v->origin, sentence);
		rc = 0;
	}
	return rc;
}

/* A [hub]'s own value of a per-hub setting, or NULL. */
static const char *hub_setting(const struct config *cfg, const char *hub, int k)
{
	const struct values list = { cfg->hub_settings, cfg->nhub_settings };
	const struct config_value *v = hub ? values_find(&list, hub, keys[k].name) : NULL;

	return v ? v->value : NULL;
}

const char *config_hub_convert(const struct config *cfg, const char *hub)
{
	const struct values list = { cfg->hub_settings, cfg->nhub_settings };
	const struct config_value *v = hub ? values_find(&list, hub, CONFIG_HUB_CONVERT) : NULL;

	return v ? v->value : NULL;
}

bool config_hub_offline(const struct config *cfg, const char *hub)
{
	const char *text = hub_setting(cfg, hub, CONFIG_OFFLINE);
	bool yes;

	return text && config_parse_bool(text, &yes) == 0 ? yes : cfg->offline;
}

bool config_hub_stream(const struct config *cfg, const char *hub)
{
	const char *text = hub_setting(cfg, hub, CONFIG_STREAM);
	bool yes;

	return text && config_parse_bool(text, &yes) == 0 ? yes : cfg->stream;
}

unsigned config_hub_connections(const struct config *cfg, const char *hub)
{
	const char *text = hub_setting(cfg, hub, CONFIG_CONNECTIONS);

	return text ? (unsigned)strtoul(text, NULL, 10) : cfg->connections;
}

unsigned config_hub_index_ttl(const struct config *cfg, const char *hub)
{
	const char *text = hub_setting(cfg, hub, CONFIG_INDEX_TTL);

	return text ? (unsigned)strtoul(text, NULL, 10) : cfg->index_ttl;
}

const char *config_hub_cache(const struct config *cfg, const char *hub)
{
	const char *dir = hub_setting(cfg, hub, CONFIG_CACHE);

	return dir ? dir : cfg->cache_dir;
}

uint64_t config_hub_cache_max(const struct config *cfg, const char *hub)
{
	const char *text = hub_setting(cfg, hub, CONFIG_CACHE_MAX);
	uint64_t n;

	if (!hub_setting(cfg, hub, CONFIG_CACHE))
		return cfg->cache_max;
	return text && config_parse_size(text, &n) == 0 ? n : 0;
}

int config_check_sections(const struct config *cfg, const char *const *hubs, size_t nhubs,
			  char *why, size_t why_size)
{
	for (size_t i = 0; i < cfg->nsections; i++) {
		bool known = false;
		for (size_t j = 0; j < nhubs && !known; j++)
			known = strcmp(hubs[j], cfg->sections[i].name) == 0;
		if (!known) {
			snprintf(why, why_size, "%s: [%s]: no hub has this name",
				 cfg->sections[i].origin, cfg->sections[i].name);
			return -EINVAL;
		}
	}
	return 0;
}

/* One URL with its user information hidden: "***" for the password, or
 * for the user when there is none (a token given as the user). libcurl
 * says what the user information is, parsing the URL as it will when the
 * URL is used; the rest is shown as written. Kept here, for what `omnihub
 * config` prints; fetch.c hides URLs in logs and sidecars with its own. */
static void redact_url(const char *url, size_t len, char *out, size_t out_size)
{
	char *copy = strndup(url, len), *user = NULL, *password = NULL;
	const char *host, *at;
	CURLU *u = curl_url();
	bool parsed;
	size_t authority;

	snprintf(out, out_size, "%.*s", (int)len, url);
	host = copy ? strstr(copy, "://") : NULL;
	if (!host || !u)
		goto out;
	host += 3;
	parsed = curl_url_set(u, CURLUPART_URL, copy, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK;
	/* Refused by libcurl ("u:p/w@h"): up to the last '@' before a query
	 * may be user information, a '/' in it too. */
	authority = strcspn(host, parsed ? "/?#" : "?#");
	at = memrchr(host, '@', authority);
	if (parsed) {
		curl_url_get(u, CURLUPART_USER, &user, 0);
		curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
	}
	if (parsed && !user && !password)
		goto out;
	/* Taken by libcurl with user information where this finds none: the
	 * whole URL but its scheme is hidden. */
	if (!at && parsed)
		snprintf(out, out_size, "%.*s***", (int)(host - copy), copy);
	else if (!at)
		goto out;
	else if (password && user)
		snprintf(out, out_size, "%.*s%s:***%s", (int)(host - copy), copy, user, at);
	else
		snprintf(out, out_size, "%.*s***%s", (int)(host - copy), copy, at);
out:
	curl_free(password);
	curl_free(user);
	curl_url_cleanup(u);
	free(copy);
}

/* A value as it may be shown: each URL in it (a word with "://" in a list
 * split at blanks or commas) with its user information hidden. */
static void redact(const char *value, char *out, size_t out_size)
{
	static const char separators[] = " \t,";
	size_t used = 0;

	out[0] = '\0';
	while (*value && used + 1 < out_size) {
		size_t gap = strspn(value, separators), word;
		char shown[2048];
		snprintf(out + used, out_size - used, "%.*s", (int)gap, value);
		used += strlen(out + used);
		value += gap;
		word = strcspn(value, separators);
		if (!word)
			break;
		if (memmem(value, word, "://", 3))
			redact_url(value, word, shown, sizeof(shown));
		else
			snprintf(shown, sizeof(shown), "%.*s", (int)word, value);
		snprintf(out + used, out_size - used, "%s", shown);
		used += strlen(out + used);
		value += word;
	}
}

void config_describe(const struct config *cfg, config_describe_fn fn, void *ctx)
{
	char text[4096], shown[4096];

	for (int k = 0; k < CONFIG_NKEYS; k++) {
		const char *value = text;
		switch (k) {
		case CONFIG_CACHE: value = cfg->cache_dir; break;
		case CONFIG_CACERT: value = cfg->cacert; break;
		case CONFIG_OFFLINE: value = cfg->offline ? "yes" : "no"; break;
		case CONFIG_STREAM: value = cfg->stream ? "yes" : "no"; break;
		case CONFIG_INDEX_TTL: snprintf(text, sizeof(text), "%u", cfg->index_ttl); break;
		case CONFIG_CONNECTIONS: snprintf(text, sizeof(text), "%u", cfg->connections); break;
		case CONFIG_PIECE_SIZE: format_size(cfg->piece_size, text, sizeof(text)); break;
		case CONFIG_CACHE_MAX: format_size(cfg->cache_max, text, sizeof(text)); break;
		case CONFIG_RETRIES: snprintf(text, sizeof(text), "%u", cfg->retries); break;
		case CONFIG_STALL_TIMEOUT:
			snprintf(text, sizeof(text), "%u", cfg->stall_timeout);
			break;
		case CONFIG_RETRY_TIME: snprintf(text, sizeof(text), "%u", cfg->retry_time); break;
		case CONFIG_MEMORY_MAX: format_size(cfg->memory_max, text, sizeof(text)); break;
		case CONFIG_MAX_UNPACK_RATIO:
			snprintf(text, sizeof(text), "%u", cfg->max_unpack_ratio);
			break;
		case CONFIG_MAX_UNPACK_SIZE:
			if (cfg->max_unpack_size)
				format_size(cfg->max_unpack_size, text, sizeof(text));
			else
				value = NULL; /* no cap */
			break;
		case CONFIG_MIRROR:
			text[0] = '\0';
			for (size_t i = 0; i < cfg->mirrors.count; i++)
				snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s",
					 i ? " " : "", cfg->mirrors.bases[i]);
			value = cfg->mirrors.count ? text : NULL;
			break;
		case CONFIG_PROXY: value = cfg->proxy; break;
		}
		if (value) {
			snprintf(shown, sizeof(shown), "%s", value);
			redact(shown, text, sizeof(text));
		}
		fn(ctx, NULL, keys[k].name, value ? text : NULL,
		   cfg->origins[k] ? cfg->origins[k] : "default");
	}
	for (size_t i = 0; i < cfg->nhub_options; i++) {
		redact(cfg->hub_options[i].value, text, sizeof(text));
		fn(ctx, NULL, cfg->hub_options[i].name, text, cfg->hub_options[i].origin);
	}
	for (size_t i = 0; i < cfg->nhub_settings; i++) {
		redact(cfg->hub_settings[i].value, text, sizeof(text));
		fn(ctx, cfg->hub_settings[i].hub, cfg->hub_settings[i].name, text,
		   cfg->hub_settings[i].origin);
	}
}
