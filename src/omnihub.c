/* omnihub.c: the omnihub command's entry point: its global options, the
 * settings, the core opened when a subcommand needs it, and the dispatch
 * to one function per subcommand. Not for: what a subcommand does
 * (src/cmd_*.c), or the mount (main.c). */
#include "build_config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cmd.h"
#include "config.h"
#include "core.h"
#include "log.h"
#include "options.h"

#define PROGRAM "omnihub"

struct subcommand {
	const char *name;
	int (*run)(struct cmd_ctx *ctx, int argc, char **argv);
	const char *args;    /* after the name, for the synopsis */
	const char *summary; /* one line, for omnihub --help */
	const char *help;    /* its options and what it does, for --help */
};

static const struct subcommand subcommands[] = {
    {"ls", cmd_ls, "[-r] [HUB[/PATH]]", "list the hubs, or a hub's models and files",
     "Without an argument, lists the hubs (none is opened). With one, lists\n"
     "that directory: type, size, whether the file is in the cache, digest\n"
     "and name; a file is listed alone.\n"
     "\n"
     "    -r, --recursive        list the directories below too\n"},
    {"info", cmd_info, "PATH", "where a file comes from, its digest, size and metadata",
     "Prints a file's URL, digest, size, metadata (JSON), and whether and\n"
     "where it is in the cache. Downloads nothing but the hub's index.\n"},
    {"pull", cmd_pull, "PATH...", "download, verify and stage files ahead of time",
     "Makes each PATH present and verified in the cache, for offline use; a\n"
     "directory pulls every file below it. On a terminal a progress bar\n"
     "shows bytes, speed and time left; otherwise one line per file. A\n"
     "mount reading the same file shares the download.\n"},
    {"verify", cmd_verify, "[--remove] [PATH...]", "check cached files against their digests",
     "Hashes cached files again: those PATH names (a directory: every file\n"
     "below it), or every complete blob in the cache. Reports each one that\n"
     "is wrong; exits with 3 when any is.\n"
     "\n"
     "    --remove               remove the wrong ones (never one a mount has\n"
     "                           open: that one is reported and kept)\n"},
    {"du", cmd_du, "", "how much the cache holds, and for which hub",
     "Prints the cache's size: complete blobs, partial downloads, the limit\n"
     "(cache_max), and the files of each hub's readable tree. Touches no\n"
     "network.\n"},
    {"gc", cmd_gc, "[--max SIZE] [--older DAYS] [--dry-run]", "clean the cache",
     "Removes complete blobs least recently used first until the cache holds\n"
     "at most SIZE (default: cache_max, when set), and those not used for\n"
     "DAYS; never one a mount has open. Prints what went and the bytes freed.\n"
     "\n"
     "    --max SIZE             keep at most SIZE bytes (K, M, G, T suffixes)\n"
     "    --older DAYS           remove what was not used for DAYS days\n"
     "    -n, --dry-run          only print what would go\n"},
    {"config", cmd_config, "[--check]", "the effective settings, and where each came from",
     "Prints every setting with its value and its origin: a mount option,\n"
     "the environment, a config file (with its line) or the default. A\n"
     "URL's password (or a token as its user) is shown as ***.\n"
     "\n"
     "    --check                only check: print every problem of the\n"
     "                           settings, one line each (exit 2 when any),\n"
     "                           starting nothing\n"},
    {"status", cmd_status, "[--json] [MOUNTPOINT]", "each mount's hubs and downloads",
     "Prints the .omnihub/status of the mount at MOUNTPOINT, or of every\n"
     "omnihub-fuse mount (/proc/self/mountinfo): each hub's state (up;\n"
     "retrying since a time, with the next try; offline; disabled) and its\n"
     "last error, then the downloads in flight. With --json, one document:\n"
     "{\"mounts\": [{\"mountpoint\", \"hubs\": [{\"name\", \"state\", \"since\",\n"
     "\"next_try\", \"tries\", \"last_error\"}], \"status\"}]}.\n"
     "\n"
     "    --json                 print one JSON document\n"},
    {"env", cmd_env, "[--json] [--fish] [MOUNTPOINT]", "point clients at a mount's views", CMD_ENV_HELP},
    {"where", cmd_where, "", "the cache directory", "Prints the cache directory.\n"},
};

#define NSUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static const struct subcommand *find_subcommand(const char *name)
{
	for (size_t i = 0; i < NSUBCOMMANDS; i++)
		if (strcmp(subcommands[i].name, name) == 0)
			return &subcommands[i];
	return NULL;
}

static void print_usage(void)
{
	printf("usage: " PROGRAM " [--json] [-v] [-o OPT[,OPT...]] [--cache DIR] [--offline]\n"
	       "               COMMAND [ARGS]\n"
	       "       " PROGRAM " COMMAND --help\n"
	       "\n"
	       "Works on the model hubs and the cache that omnihub-fuse mounts, without a\n"
	       "mount: lists, describes, downloads ahead of time, checks and cleans.\n"
	       "\n"
	       "Commands:\n");
	for (size_t i = 0; i < NSUBCOMMANDS; i++)
		printf("    %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	printf("\n"
	       "Options:\n"
	       "    -h, --help             print this help and exit\n"
	       "    -V, --version          print the version and exit\n"
	       "    --json                 print one JSON document, for scripts\n"
	       "    -v, --verbose          log what is done (twice: debug)\n"
	       "    -o OPT[,OPT...]        settings, as omnihub-fuse takes them\n"
	       "                           (see omnihub-fuse --help)\n"
	       "    --cache DIR            the cache directory (as -o cache=DIR)\n"
	       "    --offline              never use the network (as -o offline)\n"
	       "\n"
	       "Exit status: 0 done, 1 something failed, 2 bad usage or setting,\n"
	       "3 verify found a wrong file, 4 no such path.\n");
}

static void print_subcommand_help(const struct subcommand *sub)
{
	printf("usage: " PROGRAM " [OPTIONS] %s%s%s\n\n%s", sub->name, sub->args[0] ? " " : "",
	       sub->args, sub->help);
}

struct core *cmd_core(struct cmd_ctx *ctx)
{
	char why[1024];

	if (ctx->core)
		return ctx->core;
	if (core_new(&ctx->core, ctx->cfg, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: %s\n", ctx->program, why[0] ? why : "cannot start");
		ctx->core = NULL;
	}
	return ctx->core;
}

/* Whether the subcommand's arguments ask for its help (before any "--"). */
static bool asks_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

enum { OPT_JSON = 256, OPT_CACHE, OPT_OFFLINE };

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"cache", required_argument, NULL, OPT_CACHE},
	    {"offline", no_argument, NULL, OPT_OFFLINE},
	    {NULL, 0, NULL, 0},
	};
	struct cmd_ctx ctx = {.out = stdout, .program = PROGRAM};
	const struct subcommand *sub;
	struct options opts;
	struct config cfg = {0};
	bool curl_ready = false;
	const char *why = NULL;
	int verbose = 0, status = CMD_EXIT_USAGE, first, c;

	options_init(&opts);
	opterr = 0;
	/* '+': stop at the subcommand; its options are its own. */
	while ((c = getopt_long(argc, argv, "+hVvo:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_usage();
			status = CMD_EXIT_OK;
			goto out;
		case 'V':
			printf("%s %s (%s)\n", PROGRAM, PACKAGE_VERSION, curl_version());
			status = CMD_EXIT_OK;
			goto out;
		case 'v':
			verbose++;
			break;
		case 'o':
			if (options_parse_arg(&opts, optarg, PROGRAM) != 0)
				goto out;
			break;
		case OPT_JSON:
			ctx.json = true;
			break;
		case OPT_CACHE:
			free(opts.config.cache);
			opts.config.cache = strdup(optarg);
			if (!opts.config.cache)
				goto out;
			break;
		case OPT_OFFLINE:
			opts.config.offline = 1;
			break;
		default:
			fprintf(stderr,
			        "%s: unknown option or missing value: '%s' (see '%s --help')\n",
			        PROGRAM, argv[optind - 1], PROGRAM);
			goto out;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: no command given (see '%s --help')\n", PROGRAM, PROGRAM);
		goto out;
	}
	if (strcmp(argv[optind], "help") == 0) {
		/* "omnihub help [COMMAND]" */
		sub = optind + 1 < argc ? find_subcommand(argv[optind + 1]) : NULL;
		if (sub)
			print_subcommand_help(sub);
		else
			print_usage();
		status = optind + 1 < argc && !sub ? CMD_EXIT_USAGE : CMD_EXIT_OK;
		goto out;
	}
	sub = find_subcommand(argv[optind]);
	if (!sub) {
		fprintf(stderr, "%s: '%s' is not a command (see '%s --help')\n", PROGRAM,
		        argv[optind], PROGRAM);
		goto out;
	}
	if (asks_help(argc - optind, argv + optind)) {
		print_subcommand_help(sub);
		status = CMD_EXIT_OK;
		goto out;
	}
	options_finish(&opts);
	/* config --check reports every problem rather than stopping at the
	 * first, and needs no settings that work. */
	if (sub->run == cmd_config && argc - optind == 2 &&
	    strcmp(argv[optind + 1], "--check") == 0) {
		status = cmd_config_check(&ctx, &opts.config);
		goto out;
	}
	if (config_resolve(&cfg, &opts.config, &why) != 0) {
		fprintf(stderr, "%s: %s\n", PROGRAM, why);
		goto out;
	}
	log_setup(verbose >= 2 ? LOG_LEVEL_DEBUG
	          : verbose    ? LOG_LEVEL_INFO
	                       : LOG_LEVEL_WARN,
	          false);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", PROGRAM);
		status = CMD_EXIT_FAILED;
		goto out;
	}
	curl_ready = true;
	ctx.cfg = &cfg;
	ctx.tty = isatty(STDOUT_FILENO) == 1;
	/* The subcommand's argv starts at its name; getopt starts afresh. */
	first = optind;
	optind = 0;
	status = sub->run(&ctx, argc - first, argv + first);
out:
	core_free(ctx.core);
	if (curl_ready)
		curl_global_cleanup();
	config_free(&cfg);
	options_free(&opts);
	if (fflush(stdout) != 0 && status == CMD_EXIT_OK)
		status = CMD_EXIT_FAILED; /* a full disk or a closed pipe */
	return status;
}
