/* cmd.h: the omnihub command's subcommands, one function each, and what
 * they share: the settings, the core (opened only by those that need it),
 * the output mode. Not for: parsing the options every subcommand takes
 * (omnihub.c), or anything the mount does. */
#ifndef OMNIHUB_CMD_H
#define OMNIHUB_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct config;
struct core;
struct option;

/* Exit codes, documented in omnihub(1). */
enum cmd_exit {
	CMD_EXIT_OK = 0,
	CMD_EXIT_FAILED = 1,   /* something asked for failed (each said why) */
	CMD_EXIT_USAGE = 2,    /* a bad command line or setting */
	CMD_EXIT_CORRUPT = 3,  /* verify found a cached file that is wrong */
	CMD_EXIT_NOT_FOUND = 4, /* a path no hub has */
};

struct cmd_ctx {
	const struct config *cfg; /* the effective settings */
	struct core *core;        /* NULL until cmd_core opens it */
	bool json;                /* --json: one JSON document on stdout */
	bool tty;                 /* stdout is a terminal (progress bars) */
	FILE *out;                /* stdout */
	const char *program;      /* for messages: "omnihub" */
};

/* The core, opened on first call (no hub opens until one is named); NULL
 * after printing why it cannot. */
struct core *cmd_core(struct cmd_ctx *ctx);

/* A subcommand's options, declared once beside its function: its getopt
 * loop takes them (cmd_getopt), and omnihub.c asks them which options take
 * the next word as their value, so that a value that looks like a global
 * option ("-j --json") stays the subcommand's. */
struct cmd_opts {
	const char *shortopts;         /* getopt's ("j:": -j takes a value) */
	const struct option *longopts; /* getopt_long's, ending with a zeroed one */
};

/* Each returns an enum cmd_exit; argv[0] is the subcommand's name. Each
 * cmd_X_opts is the options cmd_X takes. */
int cmd_ls(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_ls_opts;
int cmd_info(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_info_opts;
int cmd_pull(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_pull_opts;
int cmd_search(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_search_opts;
extern const char cmd_search_help[]; /* its --help text (cmd_search.c) */
extern const char cmd_pull_help[];   /* (cmd_pull.c) */
int cmd_verify(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_verify_opts;
int cmd_du(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_du_opts;
int cmd_gc(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_gc_opts;
int cmd_config(struct cmd_ctx *ctx, int argc, char **argv); /* no options */
/* `omnihub config --check`: every problem of the settings (opts, the
 * environment, the files), one line each, without using them (ctx->cfg is
 * not needed): omnihub.c runs it in place of resolving them. USAGE when
 * there is any, else OK. */
struct config_options;
int cmd_config_check(struct cmd_ctx *ctx, const struct config_options *opts);
int cmd_where(struct cmd_ctx *ctx, int argc, char **argv); /* no options */
int cmd_status(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_status_opts;
int cmd_whoami(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_whoami_opts;
extern const char cmd_whoami_help[]; /* its --help text (cmd_whoami.c) */
int cmd_env(struct cmd_ctx *ctx, int argc, char **argv);
extern const struct cmd_opts cmd_env_opts;
/* omnihub env's --help (cmd_env.c's options). */
#define CMD_ENV_HELP                                                                 \
	"Prints the lines that point each client at the views of the mount at\n"   \
	"MOUNTPOINT (default: the only omnihub-fuse mount): export TORCH_HOME,\n"  \
	"ONNX_HOME, TFHUB_CACHE_DIR, HF_HUB_CACHE, HF_HUB_OFFLINE for the views\n" \
	"the mount shows, and, as comments, the links Keras and OmniHub need\n"   \
	"and Deeplearning4j's Java flag. eval \"$(omnihub env /mnt/hub)\" sets\n" \
	"a shell up.\n"                                                            \
	"\n"                                                                         \
	"    --json                 one JSON document: {\"mountpoint\",\n"          \
	"                           \"variables\": {NAME: VALUE}, \"links\",\n"     \
	"                           \"java_properties\"}\n"                         \
	"    --fish                 fish's set -gx lines\n"
/* Every omnihub-fuse mount point of this mount namespace, from
 * /proc/self/mountinfo (cmd_status.c): *paths and each of them the
 * caller's. */
int cmd_find_mounts(char ***paths, size_t *count);
int cmd_cache(struct cmd_ctx *ctx, int argc, char **argv); /* cache ls, cache rm */
extern const struct cmd_opts cmd_cache_ls_opts, cmd_cache_rm_opts; /* each verb's */
extern const char cmd_cache_help[]; /* its --help text (cmd_cache_model.c) */

#endif
