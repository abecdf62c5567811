/* cmd_out.h: what the omnihub subcommands share in their output: error
 * lines, sizes for people, JSON documents, paths as given, exit codes of
 * errnos. Not for: any one subcommand's output (src/cmd_*.c). */
#ifndef OMNIHUB_CMD_OUT_H
#define OMNIHUB_CMD_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "cmd.h"

/* "omnihub: WHAT: reason" on stderr (WHAT: a path, or a subcommand). */
void cmd_error(const struct cmd_ctx *ctx, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "omnihub: CMD: reason (see 'omnihub CMD --help')"; returns CMD_EXIT_USAGE. */
int cmd_usage_error(const struct cmd_ctx *ctx, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The next step after a failure because hub (a hub's name) is offline,
 * into out: where the setting came from decides how to undo it ("without
 * --offline", or -o offline=no over the environment and the files);
 * pull_step: or pulling what failed while online (not where the failure is
 * pull's own). "" when hub is not offline. */
void cmd_offline_hint(const struct cmd_ctx *ctx, const char *hub, bool pull_step, char *out,
                      size_t out_size);
#define CMD_HINT_MAX 256

/* The exit code of a failure: CMD_EXIT_NOT_FOUND for -ENOENT (and
 * -ENOTDIR, -ENAMETOOLONG), else CMD_EXIT_FAILED. */
int cmd_exit_of(int rc);

/* "512 B", "12.3 MiB", "1.0 GiB" (powers of 1024). */
void cmd_size_text(uint64_t bytes, char *out, size_t out_size);
#define CMD_SIZE_TEXT_MAX 32

/* Prints doc (pretty, one document) on ctx->out and frees it: 0, or
 * CMD_EXIT_FAILED when it could not be made (NULL: out of memory). A byte
 * of a string or key that is not valid UTF-8 (a file name may hold any) is
 * printed as U+FFFD, so that the document is always valid JSON. */
int cmd_print_json(const struct cmd_ctx *ctx, cJSON *doc);
/* A JSON number for a byte count or a count (exact below 2^53). */
cJSON *cmd_json_u64(uint64_t value);

/* A path as the user gave it ("/onnx//resnet18/") as the core takes it
 * ("onnx/resnet18"), into out; -ENAMETOOLONG when it does not fit. */
int cmd_clean_path(const char *arg, char *out, size_t out_size);

/* The options of a subcommand: getopt_long from its argv, reset for each
 * subcommand; returns getopt's value, -1 at the end, and '?' after a
 * usage message. */
int cmd_getopt(const struct cmd_ctx *ctx, int argc, char **argv, const struct cmd_opts *opts);

#endif
