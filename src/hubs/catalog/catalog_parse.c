/* catalog_parse.c: catalogs, the JSON files that name the models of hubs without
 * a listing API: parsed, checked field by field, and merged by hub. Not for:
 * serving them (hub_catalog.c) or fetching anything (they are local files). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog_parse.h"
#include "full_io.h"
#include "json.h"
#include "log.h"
#include "names.h"

#define HUB_NAME_MAX 64
/* Room for a json path of a model path (NAMES_PATH_MAX) and the keys under it. */
#define JSON_PATH_MAX 1600
/* Bytes of an untrusted key or value quoted in a message. */
#define SHOWN_MAX   256
#define ADLER32_MAX 4294967295.0

/* set->files holds the name part of these: a model's trust is then found
 * from its entries' source_file, which catalog_parse.h already has. */
struct file_label {
	enum catalog_trust trust;
	char name[];
};

static const struct file_label *label_of(const char *name)
{
	return (const struct file_label *)(const void *)(name - offsetof(struct file_label, name));
}

/* One file being parsed: where messages go, and what its entries' URLs are
 * relative to. */
struct parse {
	char *why;
	size_t why_size;
	enum catalog_trust trust;
	const char *base_url; /* borrowed (the tree's or the environment's); NULL: none */
};

/* A file's catalog before it is merged: nothing here is in the set yet. */
struct parsed {
	char *hub;                    /* owned */
	char *client_cache;           /* owned, or NULL */
	struct catalog_model *models; /* owned; sorted by path once parsed */
	size_t nmodels;
};

__attribute__((format(printf, 3, 4))) static int fail(struct parse *p, const char *path,
                                                      const char *fmt, ...)
{
	char problem[3 * SHOWN_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	if (path && *path)
		snprintf(p->why, p->why_size, "%s: %s", path, problem);
	else
		snprintf(p->why, p->why_size, "%s", problem);
	return -EINVAL;
}

static int out_of_memory(struct parse *p)
{
	snprintf(p->why, p->why_size, "out of memory");
	return -ENOMEM;
}

/* An untrusted string as a message may quote it: bounded, no control
 * characters. */
static const char *shown(const char *s, char out[SHOWN_MAX])
{
	return names_for_log(s, out, SHOWN_MAX);
}

/* Appends s to out (size bytes, used so far), cutting what does not fit. */
static size_t append(char *out, size_t size, size_t used, const char *s)
{
	size_t n = strlen(s);

	if (used + n >= size)
		n = size - 1 - used;
	memcpy(out + used, s, n);
	out[used + n] = '\0';
	return used + n;
}

/* parent.key into out; a path too long for out is cut (the message still
 * says where). */
static void sub_path(char *out, size_t size, const char *parent, const char *key)
{
	char key_shown[SHOWN_MAX * 5];
	size_t used = 0;

	names_for_log(key, key_shown, sizeof(key_shown)); /* a model path may be long */
	if (out != parent)
		used = append(out, size, 0, parent);
	else
		used = strlen(out);
	if (*parent)
		used = append(out, size, used, ".");
	append(out, size, used, key_shown);
}

static bool is_lower_or_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z');
}

/* [A-Za-z0-9_][A-Za-z0-9_.+-]*, at most NAME_MAX bytes: a model path's
 * segment, an entry's name, a file's name. */
static bool is_name(const char *s, size_t len)
{
	if (len == 0 || len > NAME_MAX || !(is_alnum(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alnum(s[i]) && !strchr("_.+-", s[i]))
			return false;
	return true;
}

/* [a-z0-9][a-z0-9_.-]*: a hub's name (at most HUB_NAME_MAX) or a format. */
static bool is_token(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max || !is_lower_or_digit(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower_or_digit(s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* [A-Z_][A-Z0-9_]*: an environment variable's name. */
static bool is_env_name(const char *s)
{
	if (!((s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (size_t i = 1; s[i]; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool has_control_or_space(const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= 0x20 || *c == 0x7f)
			return true;
	return false;
}

/* Whether url begins with a scheme ("[A-Za-z][A-Za-z0-9+.-]*:"). */
static bool has_scheme(const char *url)
{
	size_t i = 0;

	if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
		return false;
	while (is_alnum(url[i]) || url[i] == '+' || url[i] == '.' || url[i] == '-')
		i++;
	return url[i] == ':';
}

static bool is_http_url(const char *url)
{
	const char *host;

	if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return false;
	return *host != '\0' && *host != '/' && !has_control_or_space(url);
}

/* The extension a name's file shows: ".tar.gz" as one, else from the last
 * dot (not a leading one), else "". */
static const char *name_ext(const char *name)
{
	size_t len = strlen(name);
	const char *dot = strrchr(name, '.');

	if (len > 7 && strcmp(name + len - 7, ".tar.gz") == 0)
		return name + len - 7;
	return dot && dot != name ? dot : name + len;
}

/* The last segment of an absolute URL's path, query and fragment left out;
 * the caller frees it. */
static char *url_last_segment(const char *url)
{
	const char *host = strstr(url, "://");
	const char *path, *end, *start;

	host = host ? host + 3 : url;
	end = host + strcspn(host, "?#");
	path = memchr(host, '/', (size_t)(end - host));
	if (!path)
		return strdup("");
	for (start = end; start > path && start[-1] != '/'; start--)
		;
	return strndup(start, (size_t)(end - start));
}

/* "DEFAULT<ext>", the link a model's default entry shows. */
static void default_link_name(const struct catalog_model *m, char *out, size_t size)
{
	if (m->default_entry < 0)
		*out = '\0';
	else
		snprintf(out, size, "DEFAULT%s", name_ext(m->entries[m->default_entry].file));
}

static void entry_free(struct catalog_entry *e)
{
	free(e->name);
	free(e->file);
	free(e->url);
	free(e->format);
	free(e->member);
	for (size_t i = 0; i < e->nexpect; i++)
		free(e->expect[i]);
	free(e->expect);
	for (size_t i = 0; i < e->nconverts; i++) {
		free(e->converts[i].to);
		free(e->converts[i].command);
	}
	free(e->converts);
	free(e->client_id);
	free(e->meta_json);
	memset(e, 0, sizeof(*e));
}

static void model_free(struct catalog_model *m)
{
	for (size_t i = 0; i < m->nentries; i++)
		entry_free(&m->entries[i]);
	free(m->entries);
	free(m->path);
	memset(m, 0, sizeof(*m));
}

static void parsed_free(struct parsed *np)
{
	for (size_t i = 0; i < np->nmodels; i++)
		model_free(&np->models[i]);
	free(np->models);
	free(np->hub);
	free(np->client_cache);
}

/* Refuses a key outside allowed (NULL-terminated) and a key given twice
 * (cJSON keeps both; a reader would see only the first). */
static int check_keys(struct parse *p, const char *path, const cJSON *obj,
                      const char *const *allowed)
{
	char sub[JSON_PATH_MAX];

	for (const cJSON *c = obj->child; c; c = c->next) {
		bool known = false;

		for (size_t i = 0; allowed[i] && !known; i++)
			known = strcmp(c->string, allowed[i]) == 0;
		sub_path(sub, sizeof(sub), path, c->string);
		if (!known)
			return fail(p, sub, "unknown key");
		for (const cJSON *d = obj->child; d != c; d = d->next)
			if (strcmp(d->string, c->string) == 0)
				return fail(p, sub, "given twice");
	}
	return 0;
}

/* A member that must be a string when present; *out NULL when absent. */
static int get_string(struct parse *p, const char *path, const cJSON *obj, const char *key,
                      bool required, const char **out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	char sub[JSON_PATH_MAX];

	*out = NULL;
	sub_path(sub, sizeof(sub), path, key);
	if (!item)
		return required ? fail(p, sub, "missing") : 0;
	if (!cJSON_IsString(item))
		return fail(p, sub, "not a string");
	*out = item->valuestring;
	return 0;
}

/* A member that must be an object when present; *out NULL when absent. */
static int get_object(struct parse *p, const char *path, const cJSON *obj, const char *key,
                      bool required, const cJSON **out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	char sub[JSON_PATH_MAX];

	*out = NULL;
	sub_path(sub, sizeof(sub), path, key);
	if (!item)
		return required ? fail(p, sub, "missing") : 0;
	if (!cJSON_IsObject(item))
		return fail(p, sub, "not an object");
	*out = item;
	return 0;
}

static int get_size(struct parse *p, const char *path, const cJSON *obj, const char *key,
                    bool *present, uint64_t *out)
{
	char sub[JSON_PATH_MAX];
	int64_t n;

	*present = cJSON_GetObjectItemCaseSensitive(obj, key) != NULL;
	if (!*present)
		return 0;
	sub_path(sub, sizeof(sub), path, key);
	if (json_integer(obj, key, 0, (int64_t)JSON_MAX_SAFE_INTEGER, &n) != 0)
		return fail(p, sub, "not an integer from 0 to 2^53-1");
	*out = (uint64_t)n;
	return 0;
}

static int copy_string(struct parse *p, const char *s, char **out)
{
	*out = strdup(s);
	return *out ? 0 : out_of_memory(p);
}

/* The entry's URL, made absolute with the catalog's base URL. */
static int entry_url(struct parse *p, const char *path, const char *url, char **out)
{
	const char *rel = url;
	size_t base_len;
	char s[SHOWN_MAX];

	if (has_scheme(url)) {
		if (!is_http_url(url))
			return fail(p, path, "\"%s\" is not an http(s) URL", shown(url, s));
		return copy_string(p, url, out);
	}
	if (*url == '\0' || has_control_or_space(url))
		return fail(p, path, "\"%s\" is not a URL", shown(url, s));
	if (!p->base_url)
		return fail(p, path, "a relative URL and the catalog has no base_url");
	/* Exactly one '/' between them. */
	base_len = strlen(p->base_url);
	while (base_len > 0 && p->base_url[base_len - 1] == '/')
		base_len--;
	while (*rel == '/')
		rel++;
	if (asprintf(out, "%.*s/%s", (int)base_len, p->base_url, rel) < 0) {
		*out = NULL;
		return out_of_memory(p);
	}
	return 0;
}

static const struct {
	const char *key;
	enum digest_algo algo;
	bool prefix;
} digest_keys[] = {
    {"sha256", DIGEST_SHA256, false},   {"sha256-prefix", DIGEST_SHA256, true},
    {"md5", DIGEST_MD5, false},         {"sha1", DIGEST_SHA1, false},
    {"adler32", DIGEST_ADLER32, false},
};

static const char *const digest_key_names[] = {"sha256", "sha256-prefix", "md5",
                                               "sha1",   "adler32",       NULL};

/* The Deeplearning4j zoo prints its Adler-32 as a decimal long. */
static bool adler32_number(const cJSON *item, char hex[DIGEST_HEX_MAX])
{
	double d = item->valuedouble;

	if (!(d >= 0 && d <= ADLER32_MAX) || d != (double)(uint32_t)d)
		return false;
	snprintf(hex, DIGEST_HEX_MAX, "%08" PRIx32, (uint32_t)d);
	return true;
}

static int parse_digest(struct parse *p, const char *path, const cJSON *item,
                        struct digest_spec *spec)
{
	char hex[DIGEST_HEX_MAX];
	size_t k = 0;

	while (strcmp(digest_keys[k].key, item->string) != 0)
		k++; /* check_keys let only these through */
	if (digest_keys[k].algo == DIGEST_ADLER32 && cJSON_IsNumber(item)) {
		if (!adler32_number(item, hex))
			return fail(p, path, "not an integer from 0 to 4294967295");
		digest_spec_set(spec, DIGEST_ADLER32, hex);
		return 0;
	}
	if (digest_keys[k].prefix) {
		if (!cJSON_IsString(item) || strlen(item->valuestring) >= 64 ||
		    digest_spec_set_prefix(spec, digest_keys[k].algo, item->valuestring) != 0)
			return fail(p, path, "not %d to 63 hex digits", DIGEST_PREFIX_MIN);
		return 0;
	}
	if (!cJSON_IsString(item) || digest_spec_set(spec, digest_keys[k].algo, item->valuestring))
		return fail(p, path, "not %zu hex digits", digest_hex_len(digest_keys[k].algo));
	return 0;
}

static int parse_digests(struct parse *p, const char *path, const cJSON *obj,
                         struct catalog_entry *e)
{
	const struct digest_spec *whole = NULL, *prefix = NULL;
	char sub[JSON_PATH_MAX];
	int rc;

	rc = check_keys(p, path, obj, digest_key_names);
	if (rc)
		return rc;
	for (const cJSON *c = obj->child; c; c = c->next) {
		struct digest_spec *spec = &e->digests[e->ndigests];

		if (e->ndigests == CATALOG_MAX_DIGESTS)
			return fail(p, path, "more than %d digests", CATALOG_MAX_DIGESTS);
		sub_path(sub, sizeof(sub), path, c->string);
		rc = parse_digest(p, sub, c, spec);
		if (rc)
			return rc;
		e->ndigests++;
		if (spec->algo == DIGEST_SHA256)
			*(strcmp(c->string, "sha256") == 0 ? &whole : &prefix) = spec;
	}
	if (whole && prefix && strncmp(whole->hex, prefix->hex, strlen(prefix->hex)) != 0)
		return fail(p, path, "the sha256-prefix does not begin the sha256");
	return 0;
}

static int parse_relpath(struct parse *p, const char *path, const cJSON *item, char **out)
{
	const char *why = NULL;
	char s[SHOWN_MAX];

	if (!cJSON_IsString(item))
		return fail(p, path, "not a string");
	if (names_check_relpath(item->valuestring, &why) != 0)
		return fail(p, path, "\"%s\" is not a safe relative path (%s)",
		            shown(item->valuestring, s), why);
	return copy_string(p, item->valuestring, out);
}

static const char *const archive_keys[] = {"member", "expect", NULL};

static int parse_archive(struct parse *p, const char *path, const cJSON *obj,
                         struct catalog_entry *e)
{
	const cJSON *member, *expect;
	char sub[JSON_PATH_MAX];
	size_t i = 0;
	int rc;

	rc = check_keys(p, path, obj, archive_keys);
	if (rc)
		return rc;
	member = cJSON_GetObjectItemCaseSensitive(obj, "member");
	expect = cJSON_GetObjectItemCaseSensitive(obj, "expect");
	if (member) {
		sub_path(sub, sizeof(sub), path, "member");
		e->stage = CATALOG_STAGE_MEMBER;
		rc = parse_relpath(p, sub, member, &e->member);
		if (rc)
			return rc;
	} else {
		e->stage = CATALOG_STAGE_ARCHIVE;
	}
	if (!expect)
		return 0;
	sub_path(sub, sizeof(sub), path, "expect");
	if (member)
		return fail(p, sub, "only for an archive without member (a directory)");
	if (!cJSON_IsArray(expect))
		return fail(p, sub, "not an array");
	e->expect = calloc((size_t)cJSON_GetArraySize(expect) + 1, sizeof(*e->expect));
	if (!e->expect)
		return out_of_memory(p);
	for (const cJSON *c = expect->child; c; c = c->next, i++) {
		char at[JSON_PATH_MAX + 24];

		snprintf(at, sizeof(at), "%s[%zu]", sub, i);
		rc = parse_relpath(p, at, c, &e->expect[e->nexpect]);
		if (rc)
			return rc;
		e->nexpect++;
	}
	return 0;
}

static const char *const convert_keys[] = {"to", "command", NULL};

static int parse_converts(struct parse *p, const char *path, const cJSON *array,
                          struct catalog_entry *e)
{
	char at[JSON_PATH_MAX + 24], sub[JSON_PATH_MAX + 48], s[SHOWN_MAX];
	size_t i = 0;
	int rc;

	/* Nothing runs that the user did not configure. */
	if (p->trust != CATALOG_USER)
		return fail(p, path,
		            "commands are accepted only in the user's catalogs, "
		            "not in a shipped one");
	if (!cJSON_IsArray(array))
		return fail(p, path, "not an array");
	e->converts = calloc((size_t)cJSON_GetArraySize(array) + 1, sizeof(*e->converts));
	if (!e->converts)
		return out_of_memory(p);
	for (const cJSON *c = array->child; c; c = c->next, i++) {
		struct catalog_convert *cv = &e->converts[e->nconverts];
		const char *to, *command;

		snprintf(at, sizeof(at), "%s[%zu]", path, i);
		if (!cJSON_IsObject(c))
			return fail(p, at, "not an object");
		rc = check_keys(p, at, c, convert_keys);
		if (!rc)
			rc = get_string(p, at, c, "to", true, &to);
		if (!rc)
			rc = get_string(p, at, c, "command", true, &command);
		if (rc)
			return rc;
		if (!is_token(to, NAME_MAX)) {
			sub_path(sub, sizeof(sub), at, "to");
			return fail(p, sub, "\"%s\" is not a format ([a-z0-9][a-z0-9_.-]*)",
			            shown(to, s));
		}
		if (*command == '\0') {
			sub_path(sub, sizeof(sub), at, "command");
			return fail(p, sub, "empty");
		}
		e->nconverts++;
		rc = copy_string(p, to, &cv->to);
		if (!rc)
			rc = copy_string(p, command, &cv->command);
		if (rc)
			return rc;
	}
	return 0;
}

/* The model's meta with the entry's keys over it, compact JSON. */
static int merge_meta(struct parse *p, const cJSON *model_meta, const cJSON *entry_meta, char **out)
{
	cJSON *merged = model_meta ? cJSON_Duplicate(model_meta, 1) : cJSON_CreateObject();
	char *text = NULL;
	int rc = -ENOMEM;

	if (!merged)
		goto out;
	for (const cJSON *c = entry_meta ? entry_meta->child : NULL; c; c = c->next) {
		cJSON *copy = cJSON_Duplicate(c, 1);
		bool placed;

		if (!copy)
			goto out;
		if (cJSON_GetObjectItemCaseSensitive(merged, c->string))
			placed = cJSON_ReplaceItemInObjectCaseSensitive(merged, c->string, copy);
		else
			placed = cJSON_AddItemToObject(merged, c->string, copy);
		if (!placed) {
			cJSON_Delete(copy);
			goto out;
		}
	}
	text = cJSON_PrintUnformatted(merged);
	if (!text)
		goto out;
	*out = strdup(text);
	if (*out)
		rc = 0;
out:
	cJSON_free(text);
	cJSON_Delete(merged);
	return rc ? out_of_memory(p) : 0;
}

/* The entry's name in the mount when the catalog gives none: <ENTRY><ext>,
 * the decompressed file's name, or an archive's folder, <ENTRY>. */
static int default_file(struct parse *p, const char *path, struct catalog_entry *e)
{
	char *segment = url_last_segment(e->url), s[SHOWN_MAX];
	size_t len;
	int rc = 0;

	if (!segment)
		return out_of_memory(p);
	len = strlen(segment);
	if (e->stage == CATALOG_STAGE_GUNZIP) {
		if (len > 3 && strcmp(segment + len - 3, ".gz") == 0)
			segment[len - 3] = '\0';
		e->file = strdup(segment);
	} else if (e->stage == CATALOG_STAGE_ARCHIVE) {
		e->file = strdup(e->name); /* a folder: the tree, not the archive */
	} else if (asprintf(&e->file, "%s%s", e->name, name_ext(segment)) < 0) {
		e->file = NULL;
	}
	if (!e->file)
		rc = out_of_memory(p);
	else if (!is_name(e->file, strlen(e->file)))
		rc = fail(p, path,
		          "the name made from the URL, \"%s\", is not a file name; give file",
		          shown(e->file, s));
	free(segment);
	return rc;
}

static const char *const entry_keys[] = {"url",     "file",      "digests",    "size",
                                         "format",  "archive",   "decompress", "unpacked_size",
                                         "convert", "client_id", "meta",       NULL};

static int parse_entry(struct parse *p, const char *path, const cJSON *obj, const cJSON *model_meta,
                       struct catalog_entry *e)
{
	const char *url, *file, *format, *decompress, *client_id;
	const cJSON *digests, *archive, *convert, *meta;
	char sub[JSON_PATH_MAX], s[SHOWN_MAX];
	bool present;
	int rc;

	if (!cJSON_IsObject(obj))
		return fail(p, path, "not an object");
	rc = check_keys(p, path, obj, entry_keys);
	if (!rc)
		rc = get_string(p, path, obj, "url", true, &url);
	if (!rc)
		rc = get_string(p, path, obj, "file", false, &file);
	if (!rc)
		rc = get_string(p, path, obj, "format", true, &format);
	if (!rc)
		rc = get_string(p, path, obj, "decompress", false, &decompress);
	if (!rc)
		rc = get_string(p, path, obj, "client_id", false, &client_id);
	if (!rc)
		rc = get_object(p, path, obj, "digests", false, &digests);
	if (!rc)
		rc = get_object(p, path, obj, "archive", false, &archive);
	if (!rc)
		rc = get_object(p, path, obj, "meta", false, &meta);
	if (rc)
		return rc;

	sub_path(sub, sizeof(sub), path, "url");
	rc = entry_url(p, sub, url, &e->url);
	if (rc)
		return rc;

	if (!is_token(format, NAME_MAX)) {
		sub_path(sub, sizeof(sub), path, "format");
		return fail(p, sub, "\"%s\" is not a format ([a-z0-9][a-z0-9_.-]*)",
		            shown(format, s));
	}
	rc = copy_string(p, format, &e->format);
	if (rc)
		return rc;

	if (decompress) {
		sub_path(sub, sizeof(sub), path, "decompress");
		if (archive)
			return fail(p, sub, "not with archive (one or the other)");
		if (strcmp(decompress, "gzip") != 0)
			return fail(p, sub, "\"%s\" is not \"gzip\" (the only one)",
			            shown(decompress, s));
		e->stage = CATALOG_STAGE_GUNZIP;
	}
	if (archive) {
		sub_path(sub, sizeof(sub), path, "archive");
		rc = parse_archive(p, sub, archive, e);
		if (rc)
			return rc;
	}

	rc = get_size(p, path, obj, "size", &e->size_known, &e->size);
	if (!rc)
		rc = get_size(p, path, obj, "unpacked_size", &present, &e->unpacked_size);
	if (rc)
		return rc;
	if (present && e->stage != CATALOG_STAGE_GUNZIP && e->stage != CATALOG_STAGE_MEMBER) {
		sub_path(sub, sizeof(sub), path, "unpacked_size");
		return fail(p, sub, "only with decompress or archive.member");
	}

	if (digests) {
		sub_path(sub, sizeof(sub), path, "digests");
		rc = parse_digests(p, sub, digests, e);
		if (rc)
			return rc;
	}
	/* A weak digest names the blob together with where it comes from. */
	for (size_t i = 0; i < e->ndigests; i++)
		if (digest_spec_set_key(&e->digests[i], e->url) != 0)
			return out_of_memory(p);

	sub_path(sub, sizeof(sub), path, "file");
	if (file) {
		if (!is_name(file, strlen(file)))
			return fail(p, sub,
			            "\"%s\" is not a file name ([A-Za-z0-9_][A-Za-z0-9_.+-]*)",
			            shown(file, s));
		rc = copy_string(p, file, &e->file);
	} else {
		rc = default_file(p, sub, e);
	}
	if (rc)
		return rc;

	convert = cJSON_GetObjectItemCaseSensitive(obj, "convert");
	if (convert) {
		sub_path(sub, sizeof(sub), path, "convert");
		rc = parse_converts(p, sub, convert, e);
		if (rc)
			return rc;
	}

	if (client_id) {
		if (*client_id == '\0' || has_control_or_space(client_id)) {
			sub_path(sub, sizeof(sub), path, "client_id");
			return fail(p, sub, "\"%s\" is empty or has a space or control character",
			            shown(client_id, s));
		}
		rc = copy_string(p, client_id, &e->client_id);
		if (rc)
			return rc;
	}
	return merge_meta(p, model_meta, meta, &e->meta_json);
}

static int check_model_path(struct parse *p, const char *path, const char *mpath)
{
	char segment[NAME_MAX + 1], s[SHOWN_MAX];
	const char *start = mpath;

	if (strlen(mpath) > NAMES_PATH_MAX)
		return fail(p, path, "a model path longer than %d bytes", NAMES_PATH_MAX);
	for (;;) {
		size_t n = strcspn(start, "/");

		if (!is_name(start, n)) {
			snprintf(segment, sizeof(segment), "%.*s",
			         (int)(n > NAME_MAX ? NAME_MAX : n), start);
			return fail(
			    p, path,
			    "segment \"%s\" is not a name ([A-Za-z0-9_][A-Za-z0-9_.+-]*, at "
			    "most %d bytes)",
			    shown(segment, s), NAME_MAX);
		}
		if (start[n] == '\0')
			return 0;
		start += n + 1;
	}
}

static const char *const model_keys[] = {"meta", "default", "entries", NULL};

static int parse_model(struct parse *p, const char *path, const cJSON *obj, struct catalog_model *m)
{
	const cJSON *meta, *entries;
	const char *def;
	char sub[JSON_PATH_MAX], epath[JSON_PATH_MAX], link[NAME_MAX + 16], s[SHOWN_MAX];
	int rc;

	m->default_entry = -1;
	rc = check_model_path(p, path, obj->string);
	if (rc)
		return rc;
	if (!cJSON_IsObject(obj))
		return fail(p, path, "not an object");
	rc = copy_string(p, obj->string, &m->path);
	if (!rc)
		rc = check_keys(p, path, obj, model_keys);
	if (!rc)
		rc = get_object(p, path, obj, "meta", false, &meta);
	if (!rc)
		rc = get_string(p, path, obj, "default", false, &def);
	if (!rc)
		rc = get_object(p, path, obj, "entries", true, &entries);
	if (rc)
		return rc;
	sub_path(sub, sizeof(sub), path, "entries");
	if (!entries->child)
		return fail(p, sub, "no entries");
	m->entries = calloc((size_t)cJSON_GetArraySize(entries), sizeof(*m->entries));
	if (!m->entries)
		return out_of_memory(p);
	for (const cJSON *c = entries->child; c; c = c->next) {
		sub_path(epath, sizeof(epath), sub, c->string);
		if (!is_name(c->string, strlen(c->string)))
			return fail(p, epath,
			            "not an entry name ([A-Za-z0-9_][A-Za-z0-9_.+-]*, at most %d "
			            "bytes)",
			            NAME_MAX);
		for (const cJSON *d = entries->child; d != c; d = d->next)
			if (strcmp(d->string, c->string) == 0)
				return fail(p, epath, "given twice");
		m->nentries++; /* zeroed: model_free copes with a half-parsed one */
		m->entries[m->nentries - 1].name = strdup(c->string);
		if (!m->entries[m->nentries - 1].name)
			return out_of_memory(p);
		rc = parse_entry(p, epath, c, meta, &m->entries[m->nentries - 1]);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < m->nentries; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->entries[i].file, m->entries[j].file) == 0) {
				sub_path(epath, sizeof(epath), sub, m->entries[i].name);
				sub_path(epath, sizeof(epath), epath, "file");
				return fail(p, epath, "\"%s\" is also the file of entry %s",
				            m->entries[i].file, m->entries[j].name);
			}
	if (!def)
		return 0;
	for (size_t i = 0; i < m->nentries && m->default_entry < 0; i++)
		if (strcmp(m->entries[i].name, def) == 0)
			m->default_entry = (long)i;
	if (m->default_entry < 0) {
		sub_path(epath, sizeof(epath), path, "default");
		return fail(p, epath, "no entry \"%s\"", shown(def, s));
	}
	default_link_name(m, link, sizeof(link));
	for (size_t i = 0; i < m->nentries; i++)
		if (strcmp(m->entries[i].file, link) == 0) {
			sub_path(epath, sizeof(epath), sub, m->entries[i].name);
			sub_path(epath, sizeof(epath), epath, "file");
			return fail(p, epath, "\"%s\" is the name of the default's link", link);
		}
	return 0;
}

static int compare_models(const void *a, const void *b)
{
	const struct catalog_model *x = a, *y = b;

	return strcmp(x->path, y->path);
}

static int compare_hubs(const void *a, const void *b)
{
	const struct catalog_hub *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static const char *const builtin_hubs[] = {"onnx", "huggingface", "huggingface-datasets", NULL};

static const char *const top_keys[] = {"omnihub_catalog", "hub",          "description", "base_url",
                                       "base_url_env",    "client_cache", "models",      NULL};

static int parse_catalog(struct parse *p, const cJSON *root, struct parsed *np)
{
	const char *hub, *description, *base_url, *env, *client_cache;
	const cJSON *version, *models;
	char path[JSON_PATH_MAX], s[SHOWN_MAX];
	int rc;

	if (!cJSON_IsObject(root))
		return fail(p, NULL, "not a JSON object");
	/* The version first: another version may have other keys. */
	version = cJSON_GetObjectItemCaseSensitive(root, "omnihub_catalog");
	if (!version)
		return fail(p, "omnihub_catalog", "missing (not an omnihub catalog)");
	if (!cJSON_IsNumber(version))
		return fail(p, "omnihub_catalog", "not a number");
	if (version->valuedouble != CATALOG_VERSION)
		return fail(p, "omnihub_catalog", "unsupported version %.17g",
		            version->valuedouble);
	rc = check_keys(p, "", root, top_keys);
	if (!rc)
		rc = get_string(p, "", root, "hub", true, &hub);
	if (!rc)
		rc = get_string(p, "", root, "description", false, &description);
	if (!rc)
		rc = get_string(p, "", root, "base_url", false, &base_url);
	if (!rc)
		rc = get_string(p, "", root, "base_url_env", false, &env);
	if (!rc)
		rc = get_string(p, "", root, "client_cache", false, &client_cache);
	if (!rc)
		rc = get_object(p, "", root, "models", true, &models);
	if (rc)
		return rc;
	(void)description;

	if (!is_token(hub, HUB_NAME_MAX))
		return fail(p, "hub", "\"%s\" is not a hub name ([a-z0-9][a-z0-9_.-]{0,63})",
		            shown(hub, s));
	for (size_t i = 0; builtin_hubs[i]; i++)
		if (strcmp(hub, builtin_hubs[i]) == 0)
			return fail(p, "hub", "\"%s\" is a built-in hub", hub);
	if (base_url && !is_http_url(base_url))
		return fail(p, "base_url", "\"%s\" is not an http(s) URL", shown(base_url, s));
	p->base_url = base_url;
	if (env) {
		const char *value;

		if (!is_env_name(env))
			return fail(
			    p, "base_url_env",
			    "\"%s\" is not an environment variable's name ([A-Z_][A-Z0-9_]*)",
			    shown(env, s));
		value = getenv(env);
		if (value && *value) {
			if (!is_http_url(value))
				return fail(p, "base_url_env", "$%s, \"%s\", is not an http(s) URL",
				            env, shown(value, s));
			p->base_url = value;
		}
	}
	if (client_cache && strcmp(client_cache, "torch") != 0 &&
	    strcmp(client_cache, "keras") != 0 && strcmp(client_cache, "tfhub") != 0)
		return fail(p, "client_cache", "\"%s\" is not \"torch\", \"keras\" or \"tfhub\"",
		            shown(client_cache, s));
	rc = copy_string(p, hub, &np->hub);
	if (!rc && client_cache)
		rc = copy_string(p, client_cache, &np->client_cache);
	if (rc)
		return rc;

	np->models = calloc((size_t)cJSON_GetArraySize(models) + 1, sizeof(*np->models));
	if (!np->models)
		return out_of_memory(p);
	for (const cJSON *c = models->child; c; c = c->next) {
		sub_path(path, sizeof(path), "models", c->string);
		np->nmodels++;
		rc = parse_model(p, path, c, &np->models[np->nmodels - 1]);
		if (rc)
			return rc;
	}
	/* Sorted, a model given twice is next to itself. */
	qsort(np->models, np->nmodels, sizeof(*np->models), compare_models);
	for (size_t i = 1; i < np->nmodels; i++)
		if (strcmp(np->models[i - 1].path, np->models[i].path) == 0) {
			sub_path(path, sizeof(path), "models", np->models[i].path);
			return fail(p, path, "given twice");
		}
	return 0;
}

/* Index of the first model whose path is not below key (strcmp). */
static size_t lower_bound(const struct catalog_model *models, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(models[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct catalog_model *find_model(struct catalog_model *models, size_t n, const char *path)
{
	size_t i = lower_bound(models, n, path);

	return i < n && strcmp(models[i].path, path) == 0 ? &models[i] : NULL;
}

/* Whether a model's path is path or lies under path/. */
static bool has_model_at_or_under(const struct catalog_model *models, size_t n, const char *path)
{
	size_t len = strlen(path), i = lower_bound(models, n, path);

	/* Paths under path/ sort after path but maybe not next to it
	 * ('+', '-', '.' sort before '/'): look for path/ itself. */
	if (i < n && strcmp(models[i].path, path) == 0)
		return true;
	for (; i < n && strncmp(models[i].path, path, len) == 0; i++)
		if (models[i].path[len] == '/')
			return true;
	return false;
}

static bool model_shows(const struct catalog_model *m, const char *name)
{
	char link[NAME_MAX + 16];

	default_link_name(m, link, sizeof(link));
	if (strcmp(link, name) == 0)
		return true;
	for (size_t i = 0; i < m->nentries; i++)
		if (strcmp(m->entries[i].file, name) == 0)
			return true;
	return false;
}

enum merge_action { MERGE_ADD, MERGE_REPLACE, MERGE_KEEP_OLD };

struct merge_plan {
	struct catalog_hub *hub; /* the set's, or NULL: a new hub */
	enum merge_action *actions;
	size_t *old;   /* for each new model: its old index in hub->models */
	size_t nadded; /* models that MERGE_ADD appends */
};

/* The model at path once the file is merged, or NULL. */
static const struct catalog_model *final_model(const struct parsed *np,
                                               const struct merge_plan *plan, const char *path)
{
	struct catalog_model *m = find_model(np->models, np->nmodels, path);

	if (m && plan->actions[m - np->models] != MERGE_KEEP_OLD)
		return m;
	return plan->hub ? find_model(plan->hub->models, plan->hub->nmodels, path) : NULL;
}

/* A name in a model's directory is a file (an entry, the default's link)
 * or a directory (leading to other models), never both. */
static int check_clashes(struct parse *p, const struct parsed *np, const struct merge_plan *plan,
                         const struct catalog_model *m)
{
	char prefix[NAMES_PATH_MAX + 1], sub[JSON_PATH_MAX], link[NAME_MAX + 16];
	const struct catalog_model *owner;
	size_t hub_n = plan->hub ? plan->hub->nmodels : 0;

	sub_path(sub, sizeof(sub), "models", m->path);
	for (const char *slash = strchr(m->path, '/'); slash; slash = strchr(slash + 1, '/')) {
		const char *next = slash + 1;
		size_t n = strcspn(next, "/");

		snprintf(prefix, sizeof(prefix), "%.*s", (int)(slash - m->path), m->path);
		owner = final_model(np, plan, prefix);
		snprintf(link, sizeof(link), "%.*s", (int)n, next);
		if (owner && model_shows(owner, link))
			return fail(p, sub, "its directory %s/%s is a file of the model %s", prefix,
			            link, owner->path);
	}
	for (size_t i = 0; i <= m->nentries; i++) {
		char below[NAMES_PATH_MAX + NAME_MAX + 32];

		if (i < m->nentries)
			snprintf(link, sizeof(link), "%s", m->entries[i].file);
		else
			default_link_name(m, link, sizeof(link));
		if (!*link)
			continue;
		snprintf(below, sizeof(below), "%s/%s", m->path, link);
		if (has_model_at_or_under(np->models, np->nmodels, below) ||
		    (plan->hub && has_model_at_or_under(plan->hub->models, hub_n, below)))
			return fail(p, sub, "its file %s is also a directory of models", below);
	}
	return 0;
}

static int plan_merge(struct catalog_set *set, struct parse *p, const struct parsed *np,
                      struct merge_plan *plan)
{
	struct catalog_hub key = {.name = np->hub};
	char sub[JSON_PATH_MAX];
	int rc;

	plan->hub =
	    set->nhubs ? bsearch(&key, set->hubs, set->nhubs, sizeof(key), compare_hubs) : NULL;
	if (plan->hub && np->client_cache && plan->hub->client_cache &&
	    strcmp(np->client_cache, plan->hub->client_cache) != 0)
		return fail(p, "client_cache", "\"%s\", but the hub %s already has \"%s\"",
		            np->client_cache, np->hub, plan->hub->client_cache);
	plan->actions = calloc(np->nmodels + 1, sizeof(*plan->actions));
	plan->old = calloc(np->nmodels + 1, sizeof(*plan->old));
	if (!plan->actions || !plan->old)
		return out_of_memory(p);
	for (size_t i = 0; i < np->nmodels; i++) {
		const struct catalog_model *m = &np->models[i];
		const struct catalog_model *old;
		const char *old_file;

		old = plan->hub ? find_model(plan->hub->models, plan->hub->nmodels, m->path) : NULL;
		if (!old) {
			plan->actions[i] = MERGE_ADD;
			plan->nadded++;
			continue;
		}
		plan->old[i] = (size_t)(old - plan->hub->models);
		old_file = old->entries[0].source_file;
		if (label_of(old_file)->trust == p->trust) {
			sub_path(sub, sizeof(sub), "models", m->path);
			return fail(p, sub, "the hub %s already has this model, from %s", np->hub,
			            old_file);
		}
		/* The user's own catalogs win over the shipped ones. */
		plan->actions[i] = p->trust == CATALOG_USER ? MERGE_REPLACE : MERGE_KEEP_OLD;
	}
	for (size_t i = 0; i < np->nmodels; i++) {
		if (plan->actions[i] == MERGE_KEEP_OLD)
			continue;
		rc = check_clashes(p, np, plan, &np->models[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* Moves the parsed models into the set. Every allocation comes first, so a
 * failure leaves the set as it was. */
static int apply_merge(struct catalog_set *set, struct parse *p, struct parsed *np,
                       struct merge_plan *plan, const char *label)
{
	struct file_label *fl = NULL;
	struct catalog_hub *hub = plan->hub, fresh = {0};
	char *client_cache = NULL, **files;
	size_t nmodels = hub ? hub->nmodels : 0;
	int rc = -ENOMEM;

	files = realloc(set->files, (set->nfiles + 1) * sizeof(*files));
	if (!files)
		goto out;
	set->files = files;
	fl = malloc(sizeof(*fl) + strlen(label) + 1);
	if (!fl)
		goto out;
	fl->trust = p->trust;
	strcpy(fl->name, label);
	if (np->client_cache && !(hub && hub->client_cache)) {
		client_cache = strdup(np->client_cache);
		if (!client_cache)
			goto out;
	}
	if (!hub) {
		struct catalog_hub *hubs = realloc(set->hubs, (set->nhubs + 1) * sizeof(*hubs));
		if (!hubs)
			goto out;
		set->hubs = hubs;
		fresh.name = np->hub;
		np->hub = NULL;
		hub = &fresh;
	}
	if (plan->nadded) {
		struct catalog_model *models =
		    realloc(hub->models, (nmodels + plan->nadded) * sizeof(*models));
		if (!models)
			goto out;
		hub->models = models;
	}

	/* Nothing fails from here on. */
	set->files[set->nfiles++] = fl->name;
	fl = NULL;
	if (client_cache) {
		hub->client_cache = client_cache;
		client_cache = NULL;
	}
	for (size_t i = 0; i < np->nmodels; i++) {
		struct catalog_model *m = &np->models[i];

		for (size_t j = 0; j < m->nentries; j++)
			m->entries[j].source_file = set->files[set->nfiles - 1];
		switch (plan->actions[i]) {
		case MERGE_ADD:
			hub->models[hub->nmodels++] = *m;
			break;
		case MERGE_REPLACE:
			log_info("%s: the model %s/%s replaces the one from %s", label, hub->name,
			         m->path, hub->models[plan->old[i]].entries[0].source_file);
			model_free(&hub->models[plan->old[i]]);
			hub->models[plan->old[i]] = *m;
			break;
		case MERGE_KEEP_OLD:
			log_info("%s: the model %s/%s stays the one from %s", label, hub->name,
			         m->path, hub->models[plan->old[i]].entries[0].source_file);
			model_free(m);
			break;
		}
		memset(m, 0, sizeof(*m)); /* moved (or freed) */
	}
	qsort(hub->models, hub->nmodels, sizeof(*hub->models), compare_models);
	if (hub == &fresh) {
		size_t at = 0;
		while (at < set->nhubs && strcmp(set->hubs[at].name, fresh.name) < 0)
			at++;
		memmove(&set->hubs[at + 1], &set->hubs[at], (set->nhubs - at) * sizeof(fresh));
		set->hubs[at] = fresh;
		set->nhubs++;
		fresh.name = NULL;
	}
	rc = 0;
out:
	if (hub == &fresh && fresh.name) {
		np->hub = fresh.name; /* back to its owner */
		free(fresh.models);
	}
	free(client_cache);
	free(fl);
	return rc ? out_of_memory(p) : 0;
}

/* "not valid JSON (error at byte N of M)" from json.c, as a catalog's
 * message says it. */
static void say_not_json(char *why, size_t why_size, const char *parse_why)
{
	static const char lead[] = "not valid JSON (";
	size_t at;

	if (sscanf(parse_why, "not valid JSON (error at byte %zu", &at) == 1)
		snprintf(why, why_size, "not JSON (near byte %zu)", at);
	else if (strncmp(parse_why, lead, sizeof(lead) - 1) == 0)
		snprintf(why, why_size, "not JSON (%s", parse_why + sizeof(lead) - 1);
	else
		snprintf(why, why_size, "%s", parse_why);
}

int catalog_set_add_json(struct catalog_set *set, const char *json, size_t len, const char *label,
                         enum catalog_trust trust, char *why, size_t why_size)
{
	struct parse p = {.why = why, .why_size = why_size, .trust = trust};
	struct merge_plan plan = {0};
	struct parsed np = {0};
	char parse_why[256];
	cJSON *root;
	int rc;

	root = json_parse(json, len, parse_why, sizeof(parse_why));
	if (!root) {
		say_not_json(why, why_size, parse_why);
		return strstr(parse_why, "out of memory") ? -ENOMEM : -EINVAL;
	}
	rc = parse_catalog(&p, root, &np);
	cJSON_Delete(root);
	if (!rc)
		rc = plan_merge(set, &p, &np, &plan);
	if (!rc)
		rc = apply_merge(set, &p, &np, &plan, label);
	free(plan.actions);
	free(plan.old);
	parsed_free(&np);
	return rc;
}

static int is_json_name(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 5 && strcmp(d->d_name + len - 5, ".json") == 0;
}

static int too_big(char *why, size_t why_size)
{
	snprintf(why, why_size, "larger than %u MiB, the most a catalog may be",
	         CATALOG_MAX_BYTES >> 20);
	return -EFBIG;
}

/* The file's bytes (at most CATALOG_MAX_BYTES); 1 when it is not a regular
 * file (skipped like any other file that is no catalog). */
static int read_catalog(const char *path, char **out, size_t *len, char *why, size_t why_size)
{
	size_t cap = CATALOG_MAX_BYTES + 1, used = 0;
	char *data = NULL;
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(why, why_size, "cannot read it: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = 1;
		goto out;
	}
	if ((uint64_t)st.st_size > CATALOG_MAX_BYTES) {
		rc = too_big(why, why_size);
		goto out;
	}
	if ((uint64_t)st.st_size < cap)
		cap = (size_t)st.st_size + 1; /* one more: it may have grown */
	data = malloc(cap);
	if (!data) {
		rc = -ENOMEM;
		snprintf(why, why_size, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (used == cap) {
			char *grown;
			if (cap > CATALOG_MAX_BYTES)
				break;
			cap = cap * 2 > CATALOG_MAX_BYTES + 1 ? CATALOG_MAX_BYTES + 1 : cap * 2;
			grown = realloc(data, cap);
			if (!grown) {
				rc = -ENOMEM;
				snprintf(why, why_size, "out of memory");
				goto out;
			}
			data = grown;
		}
		n = full_io_read(fd, data + used, cap - used);
		if (n < 0) {
			rc = (int)n;
			snprintf(why, why_size, "cannot read it: %s", strerror(-rc));
			goto out;
		}
		used += (size_t)n;
		if (used < cap) /* short: the end of the file */
			break;
	}
	if (used > CATALOG_MAX_BYTES) {
		rc = too_big(why, why_size);
		goto out;
	}
	*out = data;
	*len = used;
	data = NULL;
out:
	free(data);
	if (fd >= 0)
		close(fd);
	return rc;
}

int catalog_set_add_dir(struct catalog_set *set, const char *dir, enum catalog_trust trust)
{
	struct dirent **names = NULL;
	int n, added = 0;

	n = scandir(dir, &names, is_json_name, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		char why[1024], *path = NULL, *data = NULL;
		size_t len = 0;
		int rc;

		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
			path = NULL;
			rc = -ENOMEM;
			snprintf(why, sizeof(why), "out of memory");
		} else {
			rc = read_catalog(path, &data, &len, why, sizeof(why));
		}
		if (rc == 0)
			rc = catalog_set_add_json(set, data, len, path, trust, why, sizeof(why));
		if (rc == 0) {
			added++;
		} else if (rc < 0) {
			log_error("%s: %s", path ? path : names[i]->d_name, why);
			set->nrefused++;
		}
		free(data);
		free(path);
		free(names[i]);
	}
	free(names);
	return added;
}

void catalog_set_free(struct catalog_set *set)
{
	for (size_t i = 0; i < set->nhubs; i++) {
		struct catalog_hub *hub = &set->hubs[i];
		for (size_t j = 0; j < hub->nmodels; j++)
			model_free(&hub->models[j]);
		free(hub->models);
		free(hub->name);
		free(hub->client_cache);
	}
	free(set->hubs);
	for (size_t i = 0; i < set->nfiles; i++)
		free((void *)label_of(set->files[i]));
	free(set->files);
	memset(set, 0, sizeof(*set));
}

const struct catalog_hub *catalog_set_hub(const struct catalog_set *set, const char *name)
{
	struct catalog_hub key = {.name = (char *)name};

	if (!set->nhubs)
		return NULL;
	return bsearch(&key, set->hubs, set->nhubs, sizeof(key), compare_hubs);
}

const struct catalog_model *catalog_hub_model(const struct catalog_hub *hub, const char *path)
{
	struct catalog_model key = {.path = (char *)path};

	if (!hub->nmodels)
		return NULL;
	return bsearch(&key, hub->models, hub->nmodels, sizeof(key), compare_models);
}

/* Lower is stronger: what a match of the digest proves about the bytes. */
static int digest_rank(const struct digest_spec *spec)
{
	switch (spec->algo) {
	case DIGEST_SHA256:
		return strlen(spec->hex) == digest_hex_len(DIGEST_SHA256) ? 0 : 3;
	case DIGEST_SHA1:
	case DIGEST_GIT_BLOB_SHA1:
		return 1;
	case DIGEST_MD5:
		return 2;
	case DIGEST_ADLER32:
		return 4;
	case DIGEST_NONE:
		break;
	}
	return 5;
}

const struct digest_spec *catalog_entry_strongest(const struct catalog_entry *entry)
{
	const struct digest_spec *best = NULL;

	for (size_t i = 0; i < entry->ndigests; i++)
		if (digest_spec_verifies(&entry->digests[i]) &&
		    (!best || digest_rank(&entry->digests[i]) < digest_rank(best)))
			best = &entry->digests[i];
	return best;
}
