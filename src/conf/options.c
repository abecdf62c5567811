/* options.c: the -o OPT[,OPT...] options that omnihub-fuse and omnihub both
 * take, parsed the same way into struct config_options. Not for: libfuse's
 * own options or the mount point (main.c), nor what a setting means
 * (config.c). */
#include "build_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

/* Numbers too are taken as text (%s): fuse_opt's %u and %d wrap a number
 * that does not fit, and config_resolve checks every origin's the same
 * way. */
#define OPTION(template, field)                                                                    \
	{                                                                                          \
		template, offsetof(struct options, config.field), 1                                \
	}

const struct fuse_opt options_spec[] = {
    OPTION("cache=%s", cache),
    OPTION("cacert=%s", cacert),
    OPTION("offline", offline),
    OPTION("offline=%s", offline_value),
    OPTION("index_ttl=%s", index_ttl),
    OPTION("stream", stream),
    OPTION("stream=%s", stream_value),
    OPTION("connections=%s", connections),
    OPTION("piece_size=%s", piece_size),
    OPTION("cache_max=%s", cache_max),
    OPTION("retries=%s", retries),
    OPTION("stall_timeout=%s", stall_timeout),
    OPTION("max_unpack_ratio=%s", max_unpack_ratio),
    OPTION("retry_time=%s", retry_time),
    OPTION("memory_max=%s", memory_max),
    OPTION("max_unpack_size=%s", max_unpack_size),
    OPTION("proxy=%s", proxy),
    FUSE_OPT_END,
};

void options_init(struct options *opts, const struct hub_option_hubs *hubs)
{
	memset(opts, 0, sizeof(*opts));
	opts->config.hubs = hubs;
}

static int add_hub_option(struct options *opts, const char *name, size_t name_len,
                          const char *value)
{
	struct config_hub_option *grown, *o;

	grown = realloc(opts->hub_options, (opts->nhub_options + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	opts->hub_options = grown;
	o = &grown[opts->nhub_options];
	o->name = strndup(name, name_len);
	o->value = strdup(value);
	if (!o->name || !o->value) {
		free(o->name);
		free(o->value);
		return -1;
	}
	opts->nhub_options++;
	return 0;
}

bool options_is_fstab_only(const char *arg)
{
	static const char *const words[] = {
		"defaults", "auto", "noauto", "user", "nouser", "users", "owner", "nofail", "_netdev",
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(arg, words[i]) == 0)
			return true;
	/* x-systemd.automount, x-mount.mkdir...: for mount(8) and systemd only. */
	return strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0;
}

/* Flags libfuse and the kernel take in -o: never a list's item. */
bool options_is_mount_flag(const char *arg)
{
	static const char *const flags[] = {
	    "ro",         "rw",           "allow_other",
	    "allow_root", "auto_unmount", "default_permissions",
	    "dev",        "nodev",        "suid",
	    "nosuid",     "exec",         "noexec",
	    "atime",      "noatime",      "relatime",
	    "norelatime", "strictatime",  "nostrictatime",
	    "lazytime",   "nolazytime",   "sync",
	    "async",      "dirsync",      "debug",
	    "clone_fd",
	};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strcmp(arg, flags[i]) == 0)
			return true;
	return options_is_fstab_only(arg) || fuse_opt_match(options_spec, arg) != 0;
}

/* fuse_opt splits -o at commas, so a list option's later items come as
 * options of their own: an item with no '=' that is no flag continues the
 * list before it. */
int options_take_hub_option(struct options *opts, const char *arg)
{
	const char *eq = strchr(arg, '=');
	const struct hub_option_spec *spec;
	char name[64];

	if (!eq) {
		struct config_hub_option *last;
		char *joined;
		if (!opts->continues_list || arg[0] == '-' || options_is_mount_flag(arg)) {
			opts->continues_list = false;
			return 1;
		}
		last = &opts->hub_options[opts->nhub_options - 1];
		if (asprintf(&joined, "%s,%s", last->value, arg) < 0)
			return -1;
		free(last->value);
		last->value = joined;
		return 0;
	}
	opts->continues_list = false;
	/* Mirrors given again add up, in order. */
	if (strncmp(arg, "mirror=", 7) == 0) {
		char *joined = NULL;
		if (asprintf(&joined, "%s%s%s", opts->config.mirror ? opts->config.mirror : "",
		             opts->config.mirror ? " " : "", eq + 1) < 0)
			return -1;
		free(opts->config.mirror);
		opts->config.mirror = joined;
		return 0;
	}
	if ((size_t)(eq - arg) >= sizeof(name))
		return 1;
	snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
	spec = hub_option_find(opts->config.hubs, name);
	if (!spec)
		return 1;
	/* A list given again adds to itself (-o convert=a -o convert=b). */
	for (size_t i = 0; spec->kind == HUB_OPTION_LIST && i < opts->nhub_options; i++) {
		struct config_hub_option *o = &opts->hub_options[i];
		char *joined;
		if (strcmp(o->name, name) != 0)
			continue;
		if (asprintf(&joined, "%s,%s", o->value, eq + 1) < 0)
			return -1;
		free(o->value);
		o->value = joined;
		/* Later items continue this one: keep it last. */
		struct config_hub_option moved = *o;
		memmove(o, o + 1, (opts->nhub_options - i - 1) * sizeof(*o));
		opts->hub_options[opts->nhub_options - 1] = moved;
		opts->continues_list = true;
		return 0;
	}
	if (add_hub_option(opts, arg, (size_t)(eq - arg), eq + 1) != 0)
		return -1;
	opts->continues_list = spec->kind == HUB_OPTION_LIST;
	return 0;
}

/* Keeps what is not ours in outargs, for options_parse_arg to name. */
static int take_command_option(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	int rc;

	(void)outargs;
	if (key != FUSE_OPT_KEY_OPT)
		return 1;
	rc = options_take_hub_option(data, arg);
	if (rc == 1 && options_is_mount_flag(arg))
		rc = 0; /* the mount's business, not ours */
	return rc;
}

int options_parse_arg(struct options *opts, const char *arg, const char *program)
{
	char *argv[] = {(char *)program, (char *)"-o", (char *)arg, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int rc = 0;

	if (fuse_opt_parse(&args, opts, options_spec, take_command_option) != 0) {
		fprintf(stderr, "%s: cannot parse '-o %s'\n", program, arg);
		rc = -1;
	} else if (args.argc > 1) {
		/* What is left is "-o" and the options nobody took. */
		fprintf(stderr, "%s: unknown option '%s %s' (see '%s --help')\n", program,
		        args.argv[1], args.argc > 2 ? args.argv[2] : "", program);
		rc = -1;
	}
	fuse_opt_free_args(&args);
	return rc;
}

void options_finish(struct options *opts)
{
	opts->config.hub_options = opts->hub_options;
	opts->config.nhub_options = opts->nhub_options;
}

void options_free(struct options *opts)
{
	free(opts->config.cache);
	free(opts->config.cacert);
	free(opts->config.offline_value);
	free(opts->config.stream_value);
	free(opts->config.index_ttl);
	free(opts->config.connections);
	free(opts->config.retries);
	free(opts->config.stall_timeout);
	free(opts->config.retry_time);
	free(opts->config.memory_max);
	free(opts->config.max_unpack_ratio);
	free(opts->config.piece_size);
	free(opts->config.cache_max);
	free(opts->config.max_unpack_size);
	free(opts->config.mirror);
	free(opts->config.proxy);
	for (size_t i = 0; i < opts->nhub_options; i++) {
		free(opts->hub_options[i].name);
		free(opts->hub_options[i].value);
	}
	free(opts->hub_options);
	memset(opts, 0, sizeof(*opts));
}
