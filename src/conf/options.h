/* options.h: the -o OPT[,OPT...] options that omnihub-fuse and omnihub both
 * take, parsed the same way into struct config_options. Not for: libfuse's
 * own options or the mount point (main.c), nor what a setting means
 * (config.c). */
#ifndef OMNIHUB_OPTIONS_H
#define OMNIHUB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <fuse_opt.h>

#include "config.h"

/* What -o gave. Every string is owned here and freed by options_free. */
struct options {
	/* Given to config_resolve; its hub_options point into ours (set by
	 * options_finish). options_spec's offsets are relative to it. */
	struct config_options config;
	struct config_hub_option *hub_options; /* owned */
	size_t nhub_options;
	bool continues_list; /* the last option taken was a hub's list */
};

/* The omnihub options fuse_opt fills in (cache=%s, offline, ...); offsets
 * are within struct options, so a struct that embeds one must put it first. */
extern const struct fuse_opt options_spec[];

/* The defaults that mean "not given". */
/* hubs: the hubs whose options are taken (hubs.c's hub_registry_options),
 * borrowed into opts->config.hubs. */
void options_init(struct options *opts, const struct hub_option_hubs *hubs);
/* A hub's own option (name=value, declared in its hub_ops), or the next
 * item of a list option fuse_opt split at a comma: 0 when taken, 1 when it
 * is not one, -1 on failure. */
int options_take_hub_option(struct options *opts, const char *arg);
/* Words an fstab line or a systemd unit carries for mount(8) itself
 * (defaults, nofail, _netdev, x-systemd.*...). mount(8) and mount.fuse3
 * drop them before they reach us; we drop them too, so that a line copied
 * into a script or an ExecStart= still mounts. */
bool options_is_fstab_only(const char *arg);
/* Whether arg is a flag of libfuse or the kernel, or one of options_spec. */
bool options_is_mount_flag(const char *arg);
/* Parses one -o argument of the omnihub command: 0, or -1 after one
 * sentence on stderr naming what is wrong (program starts it). Mount flags
 * (ro, allow_other...) are accepted and ignored, so a mount's options can
 * be given as they are. */
int options_parse_arg(struct options *opts, const char *arg, const char *program);
/* Points opts->config at the hub options taken; call before config_resolve. */
void options_finish(struct options *opts);
void options_free(struct options *opts);

#endif
