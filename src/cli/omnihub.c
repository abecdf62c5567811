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

/* The most option tables one subcommand has: cache has one per verb. */
#define SUBCOMMAND_OPTS_MAX 2

struct subcommand {
	const char *name;
	int (*run)(struct cmd_ctx *ctx, int argc, char **argv);
	/* The tables its getopt loops take (cmd.h): which of its options take
	 * the next word as their value. Unused entries NULL; none for a
	 * subcommand that takes no option. */
	const struct cmd_opts *opts[SUBCOMMAND_OPTS_MAX];
	const char *args;    /* after the name, for the synopsis */
	const char *summary; /* one line, for omnihub --help */
	const char *help;    /* its options and what it does, for --help */
};

static const struct subcommand subcommands[] = {
    {"ls", cmd_ls, {&cmd_ls_opts}, "[-r] [HUB[/PATH]]",
     "list the hubs, or a hub's models and files",
     "Without an argument, lists the hubs (none is opened). With one, lists\n"
     "that directory: type, size, whether the file is in the cache, digest\n"
     "and name; a file is listed alone.\n"
     "\n"
     "    -r, --recursive        list the directories below too\n"},
    {"info", cmd_info, {&cmd_info_opts}, "PATH",
     "where a file comes from, its digest, size and metadata",
     "Prints a file's URL, digest, size, metadata (JSON), and whether and\n"
     "where it is in the cache. Downloads nothing but the hub's index.\n"},
    {"pull", cmd_pull, {&cmd_pull_opts},
     "[--include GLOB] [--exclude GLOB] [--local-dir DIR] [-j N] PATH...",
     "download, verify and stage files ahead of time", cmd_pull_help},
    {"search", cmd_search, {&cmd_search_opts}, "[--hub HUB] [--limit N] [--datasets] QUERY",
     "find models by name, on the Hub and in the catalogs", cmd_search_help},
    {"verify", cmd_verify, {&cmd_verify_opts}, "[--remove] [PATH...]",
     "check cached files against their digests",
     "Hashes cached files again: those PATH names (a directory: every file\n"
     "below it), or every complete blob in the cache. Reports each one that\n"
     "is wrong (a blob with the model files it is: \"; for onnx/...\"); exits\n"
     "with 3 when any is.\n"
     "\n"
     "    --remove               remove the wrong ones (never one a mount has\n"
     "                           open: that one is reported and kept)\n"},
    {"du", cmd_du, {&cmd_du_opts}, "", "how much the cache holds, and for which hub",
     "Prints the cache's size: complete blobs, partial downloads, the limit\n"
     "(cache_max), and the files of each hub's readable tree. Touches no\n"
     "network. omnihub cache ls shows the same by model, repo and revision.\n"},
    {"gc", cmd_gc, {&cmd_gc_opts}, "[--max SIZE] [--older DAYS] [--dry-run]", "clean the cache",
     "Removes complete blobs least recently used first until the cache holds\n"
     "at most SIZE (default: cache_max, when set), and those not used for\n"
     "DAYS; never one a mount has open. Prints what went, with the model\n"
     "files each blob is (\"; for onnx/...\"), and the bytes freed.\n"
     "\n"
     "    --max SIZE             keep at most SIZE bytes (K, M, G, T suffixes)\n"
     "    --older DAYS           remove what was not used for DAYS days\n"
     "                           (0 to 100000, decimals allowed)\n"
     "    -n, --dry-run          only print what would go\n"},
    {"config", cmd_config, {NULL}, "[--check]",
     "the effective settings, and where each came from",
     "Prints every setting with its value and its origin: a mount option,\n"
     "the environment, a config file (with its line) or the default. A\n"
     "URL's password (or a token as its user) is shown as ***. A comment\n"
     "says where the Hugging Face token comes from (never the token).\n"
     "\n"
     "    --check                only check: print every problem of the\n"
     "                           settings and of the values the hubs check\n"
     "                           (hf_repos, catalogs), one line each (exit 2\n"
     "                           when any), starting nothing\n"},
    {"status", cmd_status, {&cmd_status_opts}, "[--json] [MOUNTPOINT]",
     "each mount's hubs and downloads",
     "Prints the .omnihub/status of the mount at MOUNTPOINT, or of every\n"
     "omnihub-fuse mount (/proc/self/mountinfo): each hub's state (up;\n"
     "retrying since a time, with the next try; offline; disabled) and its\n"
     "last error, then the downloads in flight. With --json, one document:\n"
     "{\"mounts\": [{\"mountpoint\", \"hubs\": [{\"name\", \"state\", \"since\",\n"
     "\"next_try\", \"tries\", \"last_error\"}], \"status\"}]}.\n"
     "\n"
     "    --json                 print one JSON document\n"},
    {"env", cmd_env, {&cmd_env_opts}, "[--json] [--fish] [MOUNTPOINT]",
     "point clients at a mount's views", CMD_ENV_HELP},
    {"where", cmd_where, {NULL}, "", "the cache directory",
     "Prints the cache directory; with --json, each hub's too (the catalogs'\n"
     "hubs as well).\n"},
    {"cache", cmd_cache, {&cmd_cache_ls_opts, &cmd_cache_rm_opts},
     "ls [PATH...] | rm [-n] PATH...", "the cache by model: list, remove", cmd_cache_help},
    {"whoami", cmd_whoami, {&cmd_whoami_opts}, "[--json]",
     "the Hugging Face account of the token", cmd_whoami_help},
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
	       "       " PROGRAM " help [COMMAND]\n"
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
	       "These may also follow the command (omnihub ls onnx --json); '--' ends\n"
	       "the options.\n"
	       "\n"
	       "--json output is always valid JSON: a byte that is not UTF-8 is shown\n"
	       "as U+FFFD.\n"
	       "\n"
	       "Exit status: 0 done, 1 something failed, 2 bad usage or setting,\n"
	       "3 verify found a wrong file, 4 no such path (or one too long).\n");
}

static void print_subcommand_help(const struct subcommand *sub)
{
	printf("usage: " PROGRAM " [OPTIONS] %s%s%s\n\n%s", sub->name, sub->args[0] ? " " : "",
	       sub->args, sub->help);
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

/* What the global options set, wherever they are given. */
struct globals {
	struct options opts; /* -o, --cache, --offline */
	int verbose;         /* -v given this many times */
	bool json;
};

/* Takes one global option (a getopt value) and its argument: 0, or -1
 * after a message. */
static int take_global(struct globals *g, int c, const char *arg)
{
	switch (c) {
	case 'v':
		g->verbose++;
		return 0;
	case 'o':
		return options_parse_arg(&g->opts, arg, PROGRAM);
	case OPT_JSON:
		g->json = true;
		return 0;
	case OPT_CACHE:
		free(g->opts.config.cache);
		g->opts.config.cache = strdup(arg);
		return g->opts.config.cache ? 0 : -1;
	case OPT_OFFLINE:
		g->opts.config.offline = 1;
		return 0;
	}
	return -1;
}

/* Whether word, as getopt_long reads it with opts, is an option whose
 * value is the next word: "--name" of a required_argument option (a value
 * after '=' is in the word itself), or "-x" where the optstring says "x:",
 * also last in a bundle ("-rx"); a value in the word ("-x4") is not. */
static bool opts_take_next_word(const struct cmd_opts *opts, const char *word)
{
	bool takes = false;

	if (word[0] != '-' || word[1] == '\0') {
		/* an operand, or "-" */
	} else if (word[1] == '-') {
		for (const struct option *o = opts->longopts; o->name; o++)
			if (strcmp(o->name, word + 2) == 0) {
				takes = o->has_arg == required_argument;
				break;
			}
	} else {
		for (const char *x = word + 1; *x; x++) {
			const char *at = *x == ':' ? NULL : strchr(opts->shortopts, *x);
			if (!at || at[1] != ':')
				continue; /* no value; or unknown: getopt says so */
			/* "x::" is an optional value, only ever in the word. */
			takes = x[1] == '\0' && at[2] != ':';
			break; /* the rest of the word is its value */
		}
	}
	return takes;
}

/* Whether the word after word is the value of one of the subcommand's
 * options: then it is that value, never a global option. Asked of the
 * tables its getopt loops take, so that an option added there is known
 * here too. */
static bool takes_next_word(const struct subcommand *sub, const char *word)
{
	bool takes = false;

	for (size_t i = 0; i < SUBCOMMAND_OPTS_MAX && sub->opts[i] && !takes; i++)
		takes = opts_take_next_word(sub->opts[i], word);
	return takes;
}

/* The global options given after the subcommand's name (up to "--"): taken
 * into g, and the rest of argv (its name first) copied into args, in order,
 * so the subcommand sees only its own. *nargs is their count. 0, or -1
 * after a message. */
static int take_late_globals(struct globals *g, const struct subcommand *sub, int argc,
                             char **argv, char **args, int *nargs)
{
	int n = 0, i, rc = 0;

	args[n++] = argv[0];
	for (i = 1; i < argc && rc == 0; i++) {
		const char *word = argv[i], *value = NULL;
		int c = 0;

		if (strcmp(word, "--") == 0)
			break; /* "--" too is the subcommand's: its getopt ends there */
		if (strcmp(word, "--json") == 0) {
			c = OPT_JSON;
		} else if (strcmp(word, "--offline") == 0) {
			c = OPT_OFFLINE;
		} else if (strcmp(word, "--verbose") == 0 ||
		           (word[0] == '-' && word[1] == 'v' && !word[1 + strspn(word + 1, "v")])) {
			for (size_t k = word[1] == 'v' ? strspn(word + 1, "v") : 1; k > 0; k--)
				g->verbose++;
			continue;
		} else if (strcmp(word, "-o") == 0 || strcmp(word, "--cache") == 0) {
			c = word[1] == 'o' ? 'o' : OPT_CACHE;
			if (i + 1 == argc) {
				fprintf(stderr, "%s: option '%s' needs a value (see '%s --help')\n",
				        PROGRAM, word, PROGRAM);
				rc = -1;
				break;
			}
			value = argv[++i];
		} else if (strncmp(word, "--cache=", 8) == 0) {
			c = OPT_CACHE;
			value = word + 8;
		} else if (strncmp(word, "-o", 2) == 0) {
			c = 'o';
			value = word + 2;
		} else if (takes_next_word(sub, word) && i + 1 < argc) {
			args[n++] = argv[i++]; /* its value, whatever it looks like */
		}
		if (c)
			rc = take_global(g, c, value);
		else
			args[n++] = argv[i];
	}
	for (; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	*nargs = n;
	return rc;
}

/* "omnihub help [COMMAND]": the usage, or COMMAND's help. */
static int run_help(int argc, char **argv)
{
	const struct subcommand *sub = argc == 2 ? find_subcommand(argv[1]) : NULL;
	int status = CMD_EXIT_OK;

	if (argc < 2 || asks_help(argc, argv)) {
		print_usage();
	} else if (argc > 2) {
		fprintf(stderr, "%s: help: one command at most (see '%s --help')\n", PROGRAM,
		        PROGRAM);
		status = CMD_EXIT_USAGE;
	} else if (!sub) {
		fprintf(stderr, "%s: help: '%s' is not a command (see '%s --help')\n", PROGRAM,
		        argv[1], PROGRAM);
		status = CMD_EXIT_USAGE;
	} else {
		print_subcommand_help(sub);
	}
	return status;
}

/* A command that failed because a hub refuses its settings (hub.h's
 * -EINVAL) failed for a bad setting, as a mount would: say where it was
 * set (FILE:LINE) and exit as for any bad setting. A command disables a
 * hub whatever its open failed of (nobody retries): a refusal is known by
 * the set option its sentence names. */
static bool refused_settings(struct cmd_ctx *ctx)
{
	size_t n = core_hub_count(ctx->core), refused = 0;
	struct hub_state_view *views = calloc(n ? n : 1, sizeof(*views));

	if (!views)
		return false;
	n = core_hub_states(ctx->core, views, n);
	refused = hub_state_report_refusals(ctx->cfg, views, n, false, PROGRAM, stderr);
	free(views);
	return refused > 0;
}

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
	struct globals g = {.verbose = 0};
	struct config cfg = {0};
	bool curl_ready = false;
	const char *why = NULL;
	char **args = NULL; /* the subcommand's argv, without the global options */
	int nargs = 0, status = CMD_EXIT_USAGE, c;

	log_set_program(PROGRAM); /* the daemon's lines say omnihub-fuse */
	options_init(&g.opts, &hub_registry_options);
	opterr = 0;
	/* '+': stop at the subcommand; the options after it are sorted out
	 * by take_late_globals. */
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
		case 'o':
		case OPT_JSON:
		case OPT_CACHE:
		case OPT_OFFLINE:
			if (take_global(&g, c, optarg) != 0)
				goto out;
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
		status = run_help(argc - optind, argv + optind);
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
	args = calloc((size_t)(argc - optind) + 1, sizeof(*args));
	if (!args) {
		status = CMD_EXIT_FAILED;
		goto out;
	}
	if (take_late_globals(&g, sub, argc - optind, argv + optind, args, &nargs) != 0)
		goto out;
	ctx.json = g.json;
	options_finish(&g.opts);
	log_setup(g.verbose >= 2 ? LOG_LEVEL_DEBUG
	          : g.verbose    ? LOG_LEVEL_INFO
	                         : LOG_LEVEL_WARN,
	          false);
	/* config --check reports every problem rather than stopping at the
	 * first, and needs no settings that work. */
	if (sub->run == cmd_config && nargs == 2 && strcmp(args[1], "--check") == 0) {
		status = cmd_config_check(&ctx, &g.opts.config);
		goto out;
	}
	if (config_resolve(&cfg, &g.opts.config, &why) != 0) {
		fprintf(stderr, "%s: %s\n", PROGRAM, why);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", PROGRAM);
		status = CMD_EXIT_FAILED;
		goto out;
	}
	curl_ready = true;
	ctx.cfg = &cfg;
	ctx.tty = isatty(STDOUT_FILENO) == 1;
	/* The subcommand's argv starts at its name; getopt starts afresh. */
	optind = 0;
	status = sub->run(&ctx, nargs, args);
	if (status != CMD_EXIT_OK && ctx.core && refused_settings(&ctx))
		status = CMD_EXIT_USAGE;
out:
	core_free(ctx.core);
	if (curl_ready)
		curl_global_cleanup();
	config_free(&cfg);
	options_free(&g.opts);
	free(args);
	if (fflush(stdout) != 0 && status == CMD_EXIT_OK)
		status = CMD_EXIT_FAILED; /* a full disk or a closed pipe */
	return status;
}
