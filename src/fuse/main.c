/* main.c: omnihub-fuse's entry point: options, checks that explain
 * themselves, the mount, signals and the FUSE loop. Not for: filesystem
 * behaviour (fs.c) or the meaning of any setting (config.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fuse_lowlevel.h>

#include "cachefs.h"
#include "config.h"
#include "core.h"
#include "fs.h"
#include "full_io.h"
#include "hub.h"
#include "log.h"
#include "options.h"
#include "reload.h"
#include "transfer.h"

/* Threads the FUSE loop may run. Opens and reads that wait for a download
 * hold none (the transfer answers them), but a lookup inside an archive
 * still waits for its extraction in one. */
#define MAX_FUSE_THREADS 64
#define MALLOC_ARENAS 4

/* What the command line holds besides libfuse's own options. */
struct cmdline {
	struct options options; /* first: options_spec's offsets are within it */
	char *mountpoint;       /* as given; NULL until seen */
	char *source;           /* mount(8)'s device, when two non-options are given; or NULL */
};

/* Takes the hubs' options, the source and the mount point out of the
 * arguments (we, not libfuse, explain what is wrong with a mount point).
 * mount.fuse3 runs us as `omnihub-fuse SOURCE MOUNTPOINT -o OPTS`: with two
 * non-options the first is the source, which only names the mount. */
static int take_args(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cmdline *cmdline = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_OPT) {
		if (options_is_fstab_only(arg)) {
			cmdline->options.continues_list = false;
			return 0; /* dropped */
		}
		return options_take_hub_option(&cmdline->options, arg);
	}
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1; /* libfuse's option: keep it */
	if (cmdline->source) {
		fprintf(stderr,
			"%s: too many arguments ('%s', '%s' and '%s' given; expected [SOURCE] "
			"MOUNTPOINT)\n",
			PACKAGE_NAME, cmdline->source, cmdline->mountpoint, arg);
		return -1;
	}
	if (cmdline->mountpoint) {
		cmdline->source = cmdline->mountpoint;
		cmdline->mountpoint = NULL;
	}
	cmdline->mountpoint = strdup(arg);
	return cmdline->mountpoint ? 0 : -1;
}

/* A hub's options, in the layout of the others: the help indented under
 * the option when it does not fit beside it. */
static void print_hub_options(const struct hub_ops *hub)
{
	const struct hub_option_spec *spec = hub->options;
	bool first = true;

	for (; spec && spec->name; spec++) {
		char left[64];
		const char *help = spec->help;
		int width;

		if (first)
			printf("\n%s hub options:\n", hub->name);
		first = false;
		width = snprintf(left, sizeof(left), "    -o %s=%s", spec->name, spec->value);
		printf("%s", left);
		if (width > 26)
			printf("\n%27s", "");
		else
			printf("%*s", 27 - width, "");
		for (const char *line = help; *line;) {
			size_t n = strcspn(line, "\n");
			printf("%.*s\n", (int)n, line);
			line += n;
			if (*line == '\n' && *++line)
				printf("%27s", "");
		}
	}
}

static void print_usage(const char *program)
{
	printf("usage: %s [options] [SOURCE] MOUNTPOINT\n"
	       "\n"
	       "Mounts the public model hubs read-only at MOUNTPOINT; each model is a\n"
	       "plain file, downloaded and verified on first read, then served from\n"
	       "the local cache. SOURCE, given by mount(8) from an fstab line\n"
	       "(type fuse.omnihub-fuse), only names the mount (default: omnihub).\n"
	       "Every -o option may also be set in ~/.config/omnihub/config or\n"
	       "/etc/omnihub/config (omnihub.conf(5)); -o wins over the environment,\n"
	       "which wins over the files. A value out of its range, wherever it is\n"
	       "set, stops the start (exit status 2) with one sentence saying where;\n"
	       "so does a value a hub refuses (hf_repos). MOUNTPOINT may be /dev/fd/N,\n"
	       "a /dev/fuse mounted already (mount.fuse3 -o drop_privileges). SIGHUP\n"
	       "reads the settings and catalogs again: new catalog hubs are served at\n"
	       "once, as are changed settings that tune the mount (offline, retries,\n"
	       "cache_max...); those it was opened with (cache, proxy, hf_repos...)\n"
	       "apply at the next mount. The log line says which are which.\n"
	       "\n"
	       "General options:\n"
	       "    -h, --help             print this help and exit\n"
	       "    -V, --version          print the version and exit\n"
	       "    -f                     stay in the foreground, log to stderr\n"
	       "    -d                     debug: foreground, log every FUSE request\n"
	       "    -s                     single-threaded\n"
	       "    -o OPT[,OPT...]        mount options\n"
	       "\n"
	       "omnihub-fuse options:\n"
	       "    -o cache=DIR           backing cache (default: $OMNIHUB_HOME, else\n"
	       "                           $MODELHUB_PATH, else ~/.omnihub)\n"
	       "    -o offline[=BOOLEAN]   never use the network: serve the cache only\n"
	       "                           (default: off; $OMNIHUB_OFFLINE=yes/no,\n"
	       "                           true/false, on/off or 1/0 sets it)\n"
	       "    -o cacert=FILE         extra CA certificates for HTTPS (default:\n"
	       "                           $CURL_CA_BUNDLE, else the system's only)\n"
	       "    -o index_ttl=SECONDS   use a cached hub index this long before\n"
	       "                           fetching it again, 0 to %u (default: %u)\n"
	       "    -o stream[=BOOLEAN]    reads return bytes as they arrive; the digest is\n"
	       "                           still checked, and the read that reaches the end\n"
	       "                           waits for it (default: off: an open waits until\n"
	       "                           the file is verified)\n"
	       "    -o connections=N       requests in flight per file, 1 to %u\n"
	       "                           (default: %u)\n"
	       "    -o piece_size=SIZE     bytes per request and per resumable piece, with\n"
	       "                           K, M, G; 64K to 1G (default: 4M)\n"
	       "    -o retries=N           at most N tries of a piece in a row that move\n"
	       "                           no byte, 0 to %u (default: %u; retry_time\n"
	       "                           gives up first)\n"
	       "    -o retry_time=SECONDS  retry failures without progress, backing off,\n"
	       "                           this long, then fail; 1 to %u (default: %ld)\n"
	       "    -o stall_timeout=SECONDS  give up a connection moving under 1 KiB/s\n"
	       "                           this long, and retry; 1 to %u (default: %ld)\n"
	       "    -o memory_max=SIZE     request buffers of all downloads together; a\n"
	       "                           request in flight counts 1M, more wait their\n"
	       "                           turn; 1M to 1T (default: 64M)\n"
	       "    -o cache_max=SIZE      evict least recently used blobs beyond this,\n"
	       "                           never an open one; at most 1024T; a larger\n"
	       "                           file is refused with ENOSPC (default: no limit)\n"
	       "    -o max_unpack_ratio=N  an archive or gzip file may expand to N times\n"
	       "                           its size plus 1G, no more; 1 to %u\n"
	       "                           (default: %u)\n"
	       "    -o max_unpack_size=SIZE  nor past SIZE, 1 to 1024T (default: no cap)\n"
	       "    -o mirror=URL          a blob mirror (URL/blobs/sha256/<hex>), asked\n"
	       "                           before the hub; again for more, in order\n"
	       "                           (default: $OMNIHUB_MIRRORS, space-separated)\n"
	       "    -o proxy=URL           an HTTP proxy for every request (default:\n"
	       "                           https_proxy, http_proxy, all_proxy; no_proxy\n"
	       "                           holds)\n",
	       program, CONFIG_INDEX_TTL_MAX, CONFIG_INDEX_TTL_DEFAULT, CONFIG_CONNECTIONS_MAX,
	       TRANSFER_CONNECTIONS_DEFAULT, CONFIG_RETRIES_MAX, TRANSFER_RETRIES_DEFAULT,
	       CONFIG_RETRY_TIME_MAX, TRANSFER_RETRY_SECONDS_DEFAULT,
	       CONFIG_STALL_TIMEOUT_MAX, TRANSFER_STALL_SECONDS_DEFAULT,
	       CONFIG_MAX_UNPACK_RATIO_MAX, CONFIG_MAX_UNPACK_RATIO_DEFAULT);
	for (size_t i = 0; i < hub_registry_count; i++)
		print_hub_options(hub_registry[i]);
	printf("\nFUSE options:\n");
	fflush(stdout);
	fuse_lowlevel_help();
}

/* libfuse refuses an option it does not know only when the session is
 * made, once the hubs have started (and fetched their indexes): ask it
 * now, on a copy of the arguments, so that a typo in -o stops the start at
 * once. libfuse says which option on stderr. */
static int check_fuse_options(const struct fuse_args *args)
{
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *probe = NULL;
	int rc = -ENOMEM;

	for (int i = 0; i < args->argc; i++)
		if (fuse_opt_add_arg(&copy, args->argv[i]) != 0)
			goto out;
	probe = fuse_session_new(&copy, &fs_operations, sizeof(fs_operations), NULL);
	rc = probe ? 0 : -EINVAL;
out:
	if (probe)
		fuse_session_destroy(probe);
	fuse_opt_free_args(&copy);
	return rc;
}

/* What the kernel options among the arguments ask of the INIT reply; read
 * from a copy (libfuse keeps the originals for the mount). */
struct kernel_options {
	unsigned max_read; /* -o max_read=N; 0: none */
};

static const struct fuse_opt kernel_options_spec[] = {
	{ "max_read=%u", offsetof(struct kernel_options, max_read), 0 },
	FUSE_OPT_END
};

static int keep_unknown(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)data;
	(void)arg;
	(void)key;
	(void)outargs;
	return 1;
}

static int read_kernel_options(const struct fuse_args *args, struct kernel_options *out)
{
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < args->argc && rc == 0; i++)
		if (fuse_opt_add_arg(&copy, args->argv[i]) != 0)
			rc = -ENOMEM;
	if (rc == 0 && fuse_opt_parse(&copy, out, kernel_options_spec, keep_unknown) != 0)
		rc = -EINVAL;
	fuse_opt_free_args(&copy);
	return rc;
}

/* Every open file holds a descriptor, and a loader may open thousands:
 * take all the kernel allows this process rather than the soft default. */
static void raise_open_file_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max)
		return;
	lim.rlim_cur = lim.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
		log_warn("cannot raise the open-file limit to %llu: %s",
			 (unsigned long long)lim.rlim_max, strerror(errno));
}

/* One sentence on stderr for each thing that would make the mount fail in
 * a way libfuse explains badly. */
static int check_mountpoint(const char *mountpoint)
{
	struct stat st;

	if (stat(mountpoint, &st) != 0) {
		if (errno == ENOTCONN)
			fprintf(stderr,
				"%s: mount point %s is a FUSE mount whose daemon is gone; unmount "
				"it first (fusermount3 -u %s)\n",
				PACKAGE_NAME, mountpoint, mountpoint);
		else
			fprintf(stderr, "%s: mount point %s: %s\n", PACKAGE_NAME, mountpoint,
				errno == ENOENT ? "does not exist (create it with mkdir)"
						: strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: mount point %s is not a directory\n", PACKAGE_NAME,
		        mountpoint);
		return -1;
	}
	if (access("/dev/fuse", F_OK) != 0) {
		fprintf(
		    stderr,
		    "%s: /dev/fuse does not exist: load the fuse kernel module (modprobe fuse), "
		    "or give a container the device (--device /dev/fuse)\n",
		    PACKAGE_NAME);
		return -1;
	}
	return 0;
}

/* mount.fuse3 -o drop_privileges and container helpers mount themselves
 * and pass the open /dev/fuse as "/dev/fd/N" (libfuse 3.14 takes it in
 * fuse_session_mount): nothing to check or resolve, nothing to unmount. */
static bool is_fd_mountpoint(const char *mountpoint)
{
	unsigned fd;
	int end = 0;

	return sscanf(mountpoint, "/dev/fd/%u%n", &fd, &end) == 1 &&
	       mountpoint[end] == '\0';
}

/* Whether an omnihub mount sits on mountpoint (absolute, resolved) now: a
 * second one would stack on it, hide it and double every download. Ours
 * are fuse.omnihub (our subtype) or fuse.omnihub-fuse (mount.fuse3's
 * type, from an fstab line). 1 when one does, 0 when none, -errno when
 * mountinfo cannot be read. */
static int is_omnihub_mount_on(void *ctx, const struct cachefs_mount *mount)
{
	return strcmp(mount->point, ctx) == 0 && cachefs_type_is_omnihub(mount->fstype);
}

static int omnihub_mounted_on(const char *mountpoint)
{
	char *mountinfo = NULL;
	int rc = cachefs_read_mountinfo(&mountinfo);

	if (rc == 0)
		rc = cachefs_mounts_each(mountinfo, is_omnihub_mount_on, (void *)mountpoint);
	free(mountinfo);
	return rc;
}

/* A hub whose settings it refuses (hub.h's -EINVAL) stops the start, as
 * any bad value does, rather than leaving its directory out of a mount
 * that looks fine. Returns the number of such hubs, each said on stderr. */
static size_t report_refused_hubs(struct core *core, const struct config *cfg)
{
	size_t n = core_hub_count(core), refused = 0;
	struct hub_state_view *views = calloc(n ? n : 1, sizeof(*views));

	if (!views)
		return 0;
	n = core_hub_states(core, views, n);
	refused = hub_state_report_refusals(cfg, views, n, true, PACKAGE_NAME, stderr);
	free(views);
	return refused;
}

/* The reload thread's request pipe, for the SIGHUP handler: set by main
 * once, before the handler is installed. */
static int reload_fd = -1;

/* SIGHUP asks for a reload (reload.c) rather than ending the mount, as
 * libfuse's handler would. Only write(2): async-signal-safe; the pipe does
 * not block, and a request already queued does for this one too. */
static void on_sighup(int signum)
{
	const char request = 'r';
	int saved = errno;

	(void)signum;
	if (write(reload_fd, &request, 1) < 0) {
		/* full: a reload is queued already */
	}
	errno = saved;
}

/* Starts the reload thread and points SIGHUP at it; after
 * fuse_set_signal_handlers, which makes SIGHUP end the loop. */
static int reload_setup(struct reload **reload, const struct config_options *opts,
			const struct config *cfg, struct core *core)
{
	struct sigaction sa;
	int rc;

	rc = reload_start(reload, opts, cfg, core);
	if (rc)
		return rc;
	reload_fd = reload_request_fd(*reload);
	if (fcntl(reload_fd, F_SETFL, O_NONBLOCK) != 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sighup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	return sigaction(SIGHUP, &sa, NULL) == 0 ? 0 : -errno;
}

/* Going to the background forks, and a child keeps only the forking thread:
 * it must come before fs_new starts the transfers' threads (fuse_daemonize,
 * called after the mount, would leave every download waiting forever). The
 * parent waits until the child is mounted, so that mount(8) and systemd learn
 * whether it worked and start-up errors still reach the terminal. Returns the
 * child's end of the pipe, or -errno; the parent does not return. */
static int detach_start(void)
{
	unsigned char result;
	int fds[2], rc;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	if (pid > 0) {
		close(fds[1]);
		n = full_io_read(fds[0], &result, 1);
		/* End of file: the child failed, and said why on stderr. */
		_exit(n == 1 ? result : 1);
	}
	close(fds[0]);
	return fds[1];
}

/* Mounted: leave the terminal and let the waiting parent exit 0. */
static void detach_finish(int fd)
{
	const unsigned char ok = 0;
	int null = open("/dev/null", O_RDWR);
	ssize_t n;

	/* Only now: until mounted, Ctrl-C on the terminal stops both. */
	setsid();
	if (chdir("/") != 0)
		log_warn("cannot change to /: %s", strerror(errno));
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	n = full_io_write(fd, &ok, 1);
	if (n < 0)
		log_warn("cannot tell the starting process that the mount is up: %s",
			 strerror((int)-n));
	close(fd);
}

static int run_loop(struct fuse_session *session, const struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *loop;
	int rc;

	if (cmd->singlethread)
		return fuse_session_loop(session);
	loop = fuse_loop_cfg_create();
	if (!loop)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(loop, (unsigned)cmd->clone_fd);
	if (cmd->max_idle_threads != UINT_MAX) /* UINT_MAX: not given */
		fuse_loop_cfg_set_idle_threads(loop, cmd->max_idle_threads);
	fuse_loop_cfg_set_max_threads(loop, MAX_FUSE_THREADS);
	rc = fuse_session_loop_mt(session, loop);
	fuse_loop_cfg_destroy(loop);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cmdline cmdline = { .mountpoint = NULL };
	struct fuse_cmdline_opts cmd = { 0 };
	struct kernel_options kernel;
	struct fuse_session *session = NULL;
	struct config cfg = { 0 };
	bool curl_ready = false, mounted = false, handlers = false;
	struct core *core = NULL;
	struct reload *reload = NULL;
	struct fs *fs = NULL;
	const char *why = NULL;
	char fs_why[1024];
	char *fsname = NULL, *fsname_arg = NULL;
	int status = 1, detach_fd = -1, rc;

	options_init(&cmdline.options, &hub_registry_options);
	if (fuse_opt_parse(&args, &cmdline, options_spec, take_args) != 0 ||
	    fuse_parse_cmdline(&args, &cmd) != 0) {
		fprintf(stderr, "%s: see '%s --help'\n", PACKAGE_NAME, PACKAGE_NAME);
		status = 2;
		goto out;
	}
	if (cmd.show_help) {
		print_usage(argv[0]);
		status = 0;
		goto out;
	}
	if (cmd.show_version) {
		printf("%s %s (libfuse %s, %s)\n", PACKAGE_NAME, PACKAGE_VERSION, fuse_pkgversion(),
		       curl_version());
		status = 0;
		goto out;
	}
	if (!cmdline.mountpoint) {
		fprintf(stderr,
			"%s: no mount point given (usage: %s [options] [SOURCE] MOUNTPOINT)\n",
			PACKAGE_NAME, PACKAGE_NAME);
		status = 2;
		goto out;
	}
	if (is_fd_mountpoint(cmdline.mountpoint)) {
		/* Mounted already by whoever opened the descriptor. */
		cmd.mountpoint = strdup(cmdline.mountpoint);
		if (!cmd.mountpoint)
			goto out;
	} else {
		if (check_mountpoint(cmdline.mountpoint) != 0)
			goto out;
		/* Absolute: the daemon changes to / before it unmounts. */
		cmd.mountpoint = realpath(cmdline.mountpoint, NULL);
		if (!cmd.mountpoint) {
			fprintf(stderr, "%s: mount point %s: %s\n", PACKAGE_NAME,
				cmdline.mountpoint, strerror(errno));
			goto out;
		}
		if (omnihub_mounted_on(cmd.mountpoint) == 1) {
			fprintf(stderr,
				"%s: %s is already an omnihub-fuse mount; unmount it first "
				"(fusermount3 -u %s, or umount as root)\n",
				PACKAGE_NAME, cmd.mountpoint, cmd.mountpoint);
			goto out;
		}
	}
	rc = check_fuse_options(&args);
	if (rc) {
		fprintf(stderr, "%s: %s\n", PACKAGE_NAME,
			rc == -EINVAL ? "an option is unknown (see above, and '" PACKAGE_NAME
					" --help')"
				      : "out of memory");
		status = 2;
		goto out;
	}
	options_finish(&cmdline.options);
	if (config_resolve(&cfg, &cmdline.options.config, &why) != 0) {
		fprintf(stderr, "%s: %s\n", PACKAGE_NAME, why);
		status = 2;
		goto out;
	}
	/* Until the daemon detaches, messages go to the terminal that started it. */
	log_setup(cmd.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, false);
	if (!cmd.foreground && (detach_fd = detach_start()) < 0) {
		fprintf(stderr, "%s: cannot go to the background: %s\n", PACKAGE_NAME,
			strerror(-detach_fd));
		goto out;
	}
	raise_open_file_limit();
	/* glibc gives every thread that allocates an arena of its own, 64 MiB
	 * of address space each: the pools' threads would reserve a GiB, and
	 * under ulimit -v the allocations then fail. Ours mostly wait; a few
	 * arenas serve them (MALLOC_ARENA_MAX, when set, is the user's). */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, MALLOC_ARENAS);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", PACKAGE_NAME);
		goto out;
	}
	curl_ready = true;
	rc = core_new(&core, &cfg, fs_why, sizeof(fs_why));
	if (rc == 0)
		rc = fs_new(&fs, core, fs_why, sizeof(fs_why));
	if (core && report_refused_hubs(core, &cfg) > 0) {
		status = 2;
		goto out;
	}
	if (rc) {
		char located[1200];

		/* A setting (a config section, a catalog option) is wrong: where. */
		if (rc == -EINVAL)
			config_locate_refusal(&cfg, fs_why, located, sizeof(located));
		fprintf(stderr, "%s: %s\n", PACKAGE_NAME, rc == -EINVAL ? located : fs_why);
		status = rc == -EINVAL ? 2 : 1;
		goto out;
	}

	/* The source names the mount, as in the fstab line, so that mount -a
	 * knows it is mounted; first, so that a -o fsname= given wins. */
	if (fuse_opt_add_opt_escaped(&fsname, cmdline.source ? cmdline.source : "omnihub") != 0 ||
	    asprintf(&fsname_arg, "-ofsname=%s", fsname) < 0) {
		fsname_arg = NULL;
		goto out;
	}
	if (fuse_opt_insert_arg(&args, 1, fsname_arg) != 0)
		goto out;
	/* Read-only whatever the user passed; modes are enforced by the kernel. */
	if (fuse_opt_add_arg(&args, "-oro,default_permissions,subtype=omnihub") != 0)
		goto out;
	/* Read before the session takes the mount options out of args. */
	if (read_kernel_options(&args, &kernel) != 0 ||
	    fs_set_kernel_options(fs, cmd.mountpoint, kernel.max_read) != 0)
		goto out;
	session = fuse_session_new(&args, &fs_operations, sizeof(fs_operations), fs);
	if (!session)
		goto out;
	fs_set_session(fs, session);
	if (fuse_set_signal_handlers(session) != 0)
		goto out;
	handlers = true;
	rc = reload_setup(&reload, &cmdline.options.config, &cfg, core);
	if (rc) {
		fprintf(stderr, "%s: cannot start the reload thread: %s\n", PACKAGE_NAME,
			strerror(-rc));
		goto out;
	}
	if (fuse_session_mount(session, cmd.mountpoint) != 0) {
		fprintf(stderr, "%s: cannot mount on %s\n", PACKAGE_NAME, cmd.mountpoint);
		goto out;
	}
	mounted = true;
	if (detach_fd >= 0) {
		detach_finish(detach_fd);
		detach_fd = -1;
	}
	log_setup(cmd.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, !cmd.foreground);
	/* The loop returns the number of the signal that ended it: a clean exit. */
	status = run_loop(session, &cmd) >= 0 ? 0 : 1;
	log_info("unmounting %s", cmd.mountpoint);
	fs_shutdown(fs);
out:
	if (reload) {
		/* Shutting down: a late SIGHUP neither reloads nor kills. */
		signal(SIGHUP, SIG_IGN);
		reload_stop(reload);
	}
	if (mounted)
		fuse_session_unmount(session);
	if (handlers)
		fuse_remove_signal_handlers(session);
	if (session)
		fuse_session_destroy(session);
	fs_free(fs);
	core_free(core);
	if (curl_ready)
		curl_global_cleanup();
	config_free(&cfg);
	if (detach_fd >= 0) {
		/* The waiting parent exits with the status (2: a setting is wrong);
		 * if even this write fails, it reads end of file and exits 1. */
		const unsigned char result = (unsigned char)status;

		if (full_io_write(detach_fd, &result, 1) != 1)
			status = 1;
		close(detach_fd);
	}
	options_free(&cmdline.options);
	free(cmdline.mountpoint);
	free(cmdline.source);
	free(fsname);
	free(fsname_arg);
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	return status;
}
