/* cmd_out.c: what the omnihub subcommands share in their output: error
 * lines, sizes for people, JSON documents, paths as given, exit codes of
 * errnos. Not for: any one subcommand's output (src/cmd_*.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_out.h"
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

int cmd_exit_of(int rc)
{
	return rc == -ENOENT || rc == -ENOTDIR ? CMD_EXIT_NOT_FOUND : CMD_EXIT_FAILED;
}

void cmd_size_text(uint64_t bytes, char *out, size_t out_size)
{
	status_format_bytes((double)bytes, out, out_size); /* as .omnihub/status shows */
}

int cmd_print_json(const struct cmd_ctx *ctx, cJSON *doc)
{
	char *text = doc ? cJSON_Print(doc) : NULL;
	int rc = CMD_EXIT_OK;

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

int cmd_getopt(const struct cmd_ctx *ctx, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
	int c;

	opterr = 0; /* our own message, naming the subcommand */
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c == '?') {
		const char *bad = argv[optind - 1];
		if (optopt && bad && bad[0] == '-' && bad[1] != '-' && strchr(shortopts, optopt))
			cmd_usage_error(ctx, argv[0], "option '-%c' needs a value", optopt);
		else if (optopt && !(bad && bad[0] == '-' && bad[1] == '-'))
			cmd_usage_error(ctx, argv[0], "unknown option '-%c'", optopt);
		else
			cmd_usage_error(ctx, argv[0], "unknown option or missing value: '%s'",
			                bad ? bad : "?");
	}
	return c;
}
