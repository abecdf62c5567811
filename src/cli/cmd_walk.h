/* cmd_walk.h: the files a path given to an omnihub subcommand names: the
 * file itself, or every file below a directory, through the hub's index.
 * Not for: what is done with each (the subcommands). */
#ifndef OMNIHUB_CMD_WALK_H
#define OMNIHUB_CMD_WALK_H

#include "cmd.h"
#include "hub.h"

/* One file (ENTRY_FILE, or ENTRY_ARCHIVE: its extracted tree is one thing
 * to fetch and check). path is within the hub, label the whole path
 * ("onnx/resnet18/model.onnx"). 0 or -errno (reported by fn). */
typedef int (*cmd_walk_fn)(void *arg, struct hub *hub, const char *path, const char *label,
                           const struct entry *entry);

/* Calls fn for the file arg names, or for every file below the directory
 * it names (links are left out). Opens the hub (its index may be fetched).
 * Reports what cannot be found or listed as "omnihub: PATH: reason".
 * Returns 0, or the first failure: -ENOENT for a name no hub has. */
int cmd_walk(struct cmd_ctx *ctx, const char *arg, cmd_walk_fn fn, void *fn_arg);

/* Splits and opens: *hub and *path (within it, "" for its root) of arg
 * as the user gave it; path points into buf. Reports a failure. */
int cmd_resolve(struct cmd_ctx *ctx, const char *arg, char *buf, size_t buf_size, struct hub **hub,
                const char **path);

/* hub's entry at path (lookup), of arg as the user gave it; reports a
 * failure, and for a name the hub does not have, the directory above it
 * to list (or, above the repositories of a hub that lists only what it
 * has seen, the search that finds it). 0 or -errno. */
int cmd_lookup(struct cmd_ctx *ctx, const char *arg, struct hub *hub, const char *path,
               struct entry *entry);

/* An entry's type as ls and --json name it: "file", "dir", "archive", "link". */
const char *cmd_entry_type(enum entry_type type);

#endif
