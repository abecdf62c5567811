/* cmd_out.c: what the omnihub subcommands share: the session's core, made
 * when first needed, and their output: error lines, sizes for people, JSON
 * documents, paths as given, exit codes of errnos. Not for: any one
 * subcommand's output (src/cmd_*.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_out.h"
#include "config.h"
#include "core.h"
#include "status.h"

void cmd_error(const struct cmd_ctx *ctx, const char *what, const char *fmt, ...)
{
	char reason[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* One write, so it never interleaves with a progress line. */
	fflush(ctx->out);
	fprintf(stderr, "%s: %s: %s\n", ctx->program, what, reason);
}

int cmd_usage_error(const struct cmd_ctx *ctx, const char *cmd, const char *fmt, ...)
{
	char reason[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s: %s (see '%s %s --help')\n", ctx->program, cmd, reason,
	        ctx->program, cmd);
	return CMD_EXIT_USAGE;
}

void cmd_offline_hint(const struct cmd_ctx *ctx, const char *hub, bool pull_step, char *out,
                      size_t out_size)
{
	const char *origin = ctx->cfg->origins[CONFIG_OFFLINE];
	/* --offline and -o offline are the command line's own; the rest
	 * (the environment, a file, a hub's section) -o offline=no overrides. */
	const char *undo = origin && strcmp(origin, "option") == 0 ? "without --offline"
	                                                         : "with -o offline=no";

	if (!config_hub_offline(ctx->cfg, hub))
		out[0] = '\0';
	else
		snprintf(out, out_size, "run it %s%s", undo,
		         pull_step ? ", or omnihub pull it while online" : "");
}

int cmd_exit_of(int rc)
{
	/* A path too long for any hub is one no hub has. */
	return rc == -ENOENT || rc == -ENOTDIR || rc == -ENAMETOOLONG ? CMD_EXIT_NOT_FOUND
	                                                               : CMD_EXIT_FAILED;
}

void cmd_size_text(uint64_t bytes, char *out, size_t out_size)
{
	status_format_bytes((double)bytes, out, out_size); /* as .omnihub/status shows */
}

/* The length of the valid UTF-8 character at p (RFC 3629: no overlong
 * form, no surrogate, nothing above U+10FFFF), or 0. */
static size_t utf8_char_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		unsigned char lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		unsigned char lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
		               (p[3] & 0xc0) == 0x80
		           ? 4
		           : 0;
	}
	return 0;
}

/* text with each byte that is not part of valid UTF-8 replaced by U+FFFD,
 * in a new string (the caller's, cJSON_free()), or NULL when text is valid (or
 * memory is short: then it is printed as it is). */
static char *utf8_repaired(const char *text)
{
	static const char replacement[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)text;
	size_t bad = 0, len = 0, n;
	char *out, *q;

	for (; p[len]; len += n ? n : 1)
		if ((n = utf8_char_len(p + len)) == 0)
			bad++;
	if (!bad || !(out = cJSON_malloc(len + 2 * bad + 1)))
		return NULL;
	q = out;
	for (size_t i = 0; i < len; i += n ? n : 1) {
		n = utf8_char_len(p + i);
		if (n) {
			memcpy(q, p + i, n);
			q += n;
		} else {
			memcpy(q, replacement, 3);
			q += 3;
		}
	}
	*q = '\0';
	return out;
}

/* Makes every string and key of item and below valid UTF-8, as JSON must
 * be (RFC 8259): a file name is bytes, and may be any. */
static void json_repair(cJSON *item, unsigned depth)
{
	for (; item && depth < 256; item = item->next) {
		char *fixed;

		if (cJSON_IsString(item) && item->valuestring &&
		    (fixed = utf8_repaired(item->valuestring)) != NULL) {
			cJSON_SetValuestring(item, fixed);
			cJSON_free(fixed);
		}
		if (item->string && !(item->type & cJSON_StringIsConst) &&
		    (fixed = utf8_repaired(item->string)) != NULL) {
			cJSON_free(item->string); /* both by cJSON's allocator */
			item->string = fixed;
		}
		json_repair(item->child, depth + 1);
	}
}

int cmd_print_json(const struct cmd_ctx *ctx, cJSON *doc)
{
	char *text;
	int rc = CMD_EXIT_OK;

	json_repair(doc, 0);
	text = doc ? cJSON_Print(doc) : NULL;

	if (!text) {
		cmd_error(ctx, "json", "out of memory");
		rc = CMD_EXIT_FAILED;
	} else {
		fprintf(ctx->out, "%s\n", text);
	}
	free(text);
	cJSON_Delete(doc);
	return rc;
}

cJSON *cmd_json_u64(uint64_t value)
{
	return cJSON_CreateNumber((double)value);
}

int cmd_clean_path(const char *arg, char *out, size_t out_size)
{
	size_t n = 0;

	for (const char *p = arg; *p; p++) {
		if (*p == '/' && (n == 0 || out[n - 1] == '/'))
			continue; /* leading or doubled */
		if (n + 1 >= out_size)
			return -ENAMETOOLONG;
		out[n++] = *p;
	}
	while (n > 0 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	return 0;
}

int cmd_getopt(const struct cmd_ctx *ctx, int argc, char **argv, const struct cmd_opts *opts)
{
	int c;

	opterr = 0; /* our own message, naming the subcommand */
	c = getopt_long(argc, argv, opts->shortopts, opts->longopts, NULL);
	if (c == '?') {
		const char *bad = argv[optind - 1];
		if (optopt && bad && bad[0] == '-' && bad[1] != '-' &&
		    strchr(opts->shortopts, optopt))
			cmd_usage_error(ctx, argv[0], "option '-%c' needs a value", optopt);
		else if (optopt && !(bad && bad[0] == '-' && bad[1] == '-'))
			cmd_usage_error(ctx, argv[0], "unknown option '-%c'", optopt);
		else
			cmd_usage_error(ctx, argv[0], "unknown option or missing value: '%s'",
			                bad ? bad : "?");
	}
	return c;
}

/* The next step when why (core_new's) is that the cache directory cannot
 * be used, into out: which setting names it, and where it was set
 * (config.c's origins); "" otherwise. A hub's own directory is named by
 * its [section]. */
static void cache_hint(const struct config *cfg, const char *why, char *out, size_t out_size)
{
	static const char prefix[] = "the cache directory ";
	const char *at = strstr(why, prefix), *origin = cfg->origins[CONFIG_CACHE];
	size_t len = strlen(cfg->cache_dir);

	out[0] = '\0';
	if (!at || !origin)
		return;
	at += sizeof(prefix) - 1;
	if (strncmp(at, cfg->cache_dir, len) != 0 || at[len] != ':') {
		/* Not the general one: a hub's own, from its [section]. */
		for (size_t i = 0; i < cfg->nhub_settings; i++) {
			const struct config_value *v = &cfg->hub_settings[i];
			size_t n = strlen(v->value);
			if (strcmp(v->name, "cache") == 0 && strncmp(at, v->value, n) == 0 &&
			    at[n] == ':') {
				snprintf(out, out_size, "named by cache = in [%s] at %s: change it",
				         v->hub, v->origin);
				break;
			}
		}
	} else if (strcmp(origin, "option") == 0)
		snprintf(out, out_size, "named by --cache or -o cache=: give another");
	else if (strncmp(origin, "environment $", 13) == 0)
		snprintf(out, out_size, "named by $%s: set it to another, or give --cache",
		         origin + 13);
	else if (strcmp(origin, "default") != 0)
		snprintf(out, out_size, "named by cache = at %s: change it, or give --cache",
		         origin);
	else
		snprintf(out, out_size, "the default: give another with --cache, $OMNIHUB_HOME "
		                        "or cache = in the config file");
}

struct core *cmd_core(struct cmd_ctx *ctx)
{
	char why[1024], hint[CMD_HINT_MAX];

	if (ctx->core)
		return ctx->core;
	if (core_new(&ctx->core, ctx->cfg, why, sizeof(why)) != 0) {
		cache_hint(ctx->cfg, why, hint, sizeof(hint));
		fprintf(stderr, "%s: %s%s%s%s\n", ctx->program, why[0] ? why : "cannot start",
		        hint[0] ? " (" : "", hint, hint[0] ? ")" : "");
		ctx->core = NULL;
	}
	return ctx->core;
}
