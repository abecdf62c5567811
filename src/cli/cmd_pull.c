/* cmd_pull.c: omnihub pull: makes files present and verified in the cache
 * ahead of time, several at once, chosen by globs, placed in a folder of
 * the user's if asked, and prints where each is (progress on stderr). Not
 * for: how a file is fetched (the core, download.c), how it is placed
 * (place.c), or checking what is cached (cmd_cache.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd_out.h"
#include "cmd_walk.h"
#include "config.h"
#include "core.h"
#include "monotonic.h"
#include "place.h"
#include "transfer.h"

/* How often the bar is drawn again. */
#define PROGRESS_INTERVAL_S 0.2

/* Files pulled at once at most, and the default: a file's transfer has
 * `connections` requests of its own, and all of them together stay within
 * memory_max (transfer.h). */
#define PULL_WORKERS_MAX 64u

struct pull_run;

/* One file to pull, in the order the paths name them. */
struct pull_item {
	struct pull_run *run;
	struct hub *hub; /* the core's */
	char *path;      /* owned; within the hub */
	char *label;     /* owned; the whole path ("onnx/resnet18/model.onnx") */
	char *rel;       /* owned; below the PATH given (a file given: its
			    name): what the globs match, and its place under
			    --local-dir */
	uint64_t size;   /* as the index says */
	bool already;    /* in the cache before this pull */
	int rc;          /* guarded by run->lock until every file is done */
};

struct pull_run {
	struct cmd_ctx *ctx;
	struct core *core;
	char **include, **exclude; /* owned arrays of borrowed argv strings */
	size_t ninclude, nexclude;
	const char *local_dir;     /* borrowed; NULL: none */
	unsigned workers;          /* files in flight at most */
	bool bar;                  /* a progress bar on stderr (a terminal) */
	const char *base;          /* the PATH being walked, cleaned */
	struct pull_item *items;   /* owned, with what each owns */
	size_t count, cap;
	pthread_mutex_t lock;      /* guards what follows */
	pthread_cond_t cond;       /* signalled when a file is done */
	size_t running;
	uint64_t done_bytes;       /* of the files fetched so far */
	cJSON *pulled, *failed;    /* --json; in the document's tree */
	uint64_t files, bytes;
};

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned terminal_columns(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* What the bar shows, from one sample of the transfers to the next. */
struct progress {
	char label[PATH_MAX];
	uint64_t size;    /* of the files to fetch, as the index says */
	uint64_t present; /* bytes on disk */
	double last_time;
	uint64_t last_present;
	double speed; /* bytes per second, smoothed */
	bool sampled;
};

/* done: bytes of the files fetched already; the transfers in flight (every
 * store's) add theirs: this process pulls only these files. */
static void progress_sample(struct progress *p, struct core *core, uint64_t done)
{
	uint64_t present = done;
	double t = now_seconds();

	for (size_t s = 0; s < core_store_count(core); s++) {
		struct transfer_status *list = NULL;
		size_t count = 0;

		if (transfer_engine_list(core_store(core, s)->engine, &list, &count) != 0)
			continue;
		for (size_t i = 0; i < count; i++)
			present += list[i].present;
		transfer_status_free(list, count);
	}
	p->present = present < p->size ? present : p->size;
	if (p->sampled && t > p->last_time && p->present >= p->last_present) {
		double rate = (double)(p->present - p->last_present) / (t - p->last_time);
		p->speed = p->speed > 0 ? 0.7 * p->speed + 0.3 * rate : rate;
	}
	p->last_time = t;
	p->last_present = p->present;
	p->sampled = true;
}

static void progress_draw(const struct progress *p, FILE *out)
{
	char done[CMD_SIZE_TEXT_MAX], total[CMD_SIZE_TEXT_MAX], speed[CMD_SIZE_TEXT_MAX];
	char tail[128], eta[32] = "--:--";
	unsigned columns = terminal_columns(), percent;
	size_t label_len = strlen(p->label), room;

	cmd_size_text(p->present, done, sizeof(done));
	cmd_size_text(p->size, total, sizeof(total));
	cmd_size_text((uint64_t)p->speed, speed, sizeof(speed));
	percent = p->size ? (unsigned)(p->present * 100 / p->size) : 0;
	if (p->speed > 1 && p->size > p->present) {
		uint64_t left = (uint64_t)((double)(p->size - p->present) / p->speed);
		if (left >= 3600)
			snprintf(eta, sizeof(eta), "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
			         left / 3600, left / 60 % 60, left % 60);
		else
			snprintf(eta, sizeof(eta), "%" PRIu64 ":%02" PRIu64, left / 60, left % 60);
	}
	snprintf(tail, sizeof(tail), "  %s / %s  %3u%%  %s/s  ETA %s", done, total, percent, speed,
	         eta);
	/* The name gives way first: its end is the part that tells. */
	room = columns > strlen(tail) + 8 ? columns - strlen(tail) - 1 : 8;
	if (label_len > room)
		fprintf(out, "\r...%s%s\033[K", p->label + label_len - (room - 3), tail);
	else
		fprintf(out, "\r%s%s\033[K", p->label, tail);
	fflush(out);
}

/* core_start's callback, on one of the core's threads. */
static void item_done(void *ctx, int rc)
{
	struct pull_item *item = ctx;
	struct pull_run *run = item->run;

	pthread_mutex_lock(&run->lock);
	item->rc = rc;
	if (rc == 0)
		run->done_bytes += item->size;
	run->running--;
	pthread_cond_signal(&run->cond);
	pthread_mutex_unlock(&run->lock);
}

/* Waits (run->lock held) for a file to be done, a moment at most, and
 * draws the bar meanwhile. */
static void wait_a_moment(struct pull_run *run, struct progress *p)
{
	struct timespec until;
	uint64_t done;

	monotonic_deadline(&until, PROGRESS_INTERVAL_S);
	pthread_cond_timedwait(&run->cond, &run->lock, &until);
	if (!run->bar)
		return;
	done = run->done_bytes;
	pthread_mutex_unlock(&run->lock);
	progress_sample(p, run->core, done);
	progress_draw(p, stderr);
	pthread_mutex_lock(&run->lock);
}

/* Makes every item present: those not cached are started, workers at
 * once, each item's rc set when it ends. */
static void fetch_all(struct pull_run *run)
{
	struct progress p = {.size = 0};
	size_t missing = 0, first = 0;

	for (size_t i = 0; i < run->count; i++) {
		struct pull_item *item = &run->items[i];

		core_cached(run->core, item->hub, item->path, &item->already, NULL);
		if (!item->already) {
			if (!missing++)
				first = i;
			p.size += item->size;
		}
	}
	if (missing == 1)
		snprintf(p.label, sizeof(p.label), "%s", run->items[first].label);
	else
		snprintf(p.label, sizeof(p.label), "%zu files", missing);
	pthread_mutex_lock(&run->lock);
	for (size_t i = 0; i < run->count; i++) {
		struct pull_item *item = &run->items[i];
		int rc;

		if (item->already)
			continue;
		while (run->running >= run->workers)
			wait_a_moment(run, &p);
		run->running++;
		pthread_mutex_unlock(&run->lock);
		rc = core_start(run->core, item->hub, item->path, item_done, item);
		pthread_mutex_lock(&run->lock);
		if (rc) {
			item->rc = rc;
			run->running--;
		}
	}
	while (run->running > 0)
		wait_a_moment(run, &p);
	pthread_mutex_unlock(&run->lock);
	if (p.sampled)
		fprintf(stderr, "\r\033[K"); /* the bar gives way to the result */
}

/* A glob as hf download takes it: fnmatch's, '*' matching '/' too, a
 * backslash an ordinary character, and one ending in '/' a folder's
 * whole content. */
static bool glob_matches(const char *glob, const char *rel)
{
	size_t len = strlen(glob);
	char *folder = NULL;
	bool match;

	if (len && glob[len - 1] == '/' && asprintf(&folder, "%s*", glob) < 0)
		return false;
	match = fnmatch(folder ? folder : glob, rel, FNM_NOESCAPE) == 0;
	free(folder);
	return match;
}

static bool chosen(const struct pull_run *run, const char *rel)
{
	bool in = run->ninclude == 0;

	for (size_t i = 0; i < run->ninclude && !in; i++)
		in = glob_matches(run->include[i], rel);
	for (size_t i = 0; i < run->nexclude && in; i++)
		in = !glob_matches(run->exclude[i], rel);
	return in;
}

/* cmd_walk's callback: the file is one to pull when the globs choose it. */
static int collect(void *arg, struct hub *hub, const char *path, const char *label,
                   const struct entry *entry)
{
	struct pull_run *run = arg;
	size_t base_len = strlen(run->base);
	const char *rel, *slash;
	struct pull_item *item;
	int rc = 0;

	if (strncmp(label, run->base, base_len) == 0 && label[base_len] == '/')
		rel = label + base_len + 1;
	else
		rel = (slash = strrchr(label, '/')) ? slash + 1 : label;
	if (!chosen(run, rel))
		goto out;
	if (run->count == run->cap) {
		size_t cap = run->cap ? 2 * run->cap : 16;
		struct pull_item *items = realloc(run->items, cap * sizeof(*items));
		if (!items) {
			rc = -ENOMEM;
			goto out;
		}
		run->items = items;
		run->cap = cap;
	}
	item = &run->items[run->count];
	*item = (struct pull_item){.run = run, .hub = hub, .size = entry->size};
	item->path = strdup(path);
	item->label = strdup(label);
	item->rel = strdup(rel);
	if (!item->path || !item->label || !item->rel) {
		free(item->path);
		free(item->label);
		free(item->rel);
		rc = -ENOMEM;
		goto out;
	}
	run->count++;
out:
	if (rc)
		cmd_error(run->ctx, label, "%s", strerror(-rc));
	return rc;
}

/* The folder --local-dir names, made if needed (with its parents). */
static int open_local_dir(const char *dir)
{
	char *copy = strdup(dir);
	int fd = -1;

	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) != 0 && errno != EEXIST)
			break;
		*p = '/';
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		fd = -errno;
	else if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		fd = -errno;
	free(copy);
	return fd;
}

/* One item done: its error, or its place under --local-dir, and the line
 * (or JSON) saying where it is. 0 or -errno. */
static int report_item(struct pull_run *run, struct pull_item *item, int dir_fd)
{
	char size[CMD_SIZE_TEXT_MAX], hint[CMD_HINT_MAX] = "";
	char *where = NULL, *local = NULL;
	enum place_how how = PLACE_COPY;
	bool present = false;
	const char *error = NULL;
	int rc = item->rc;

	if (rc == 0) {
		rc = core_cached(run->core, item->hub, item->path, &present, &where);
		if (rc == 0 && !present)
			rc = -ENOENT; /* gone meanwhile: a gc */
	}
	if (rc) {
		error = strerror(-rc);
		goto out;
	}
	if (dir_fd >= 0) {
		if (asprintf(&local, "%s%s%s", run->local_dir,
		             run->local_dir[strlen(run->local_dir) - 1] == '/' ? "" : "/",
		             item->rel) < 0) {
			local = NULL;
			rc = -ENOMEM;
			error = strerror(-rc);
			goto out;
		}
		rc = place_path(dir_fd, item->rel, where, &how);
		if (rc == -EINVAL) {
			error = "its name would lead out of --local-dir: refused";
			goto out;
		}
		if (rc) {
			cmd_error(run->ctx, item->label,
			          "cannot place it at %s: %s (give another --local-dir)", local,
			          strerror(-rc));
			goto out;
		}
	}
	run->files++;
	run->bytes += item->size;
	if (run->ctx->json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "path", item->label);
		cJSON_AddItemToObject(doc, "size", cmd_json_u64(item->size));
		cJSON_AddStringToObject(doc, "where", where);
		cJSON_AddBoolToObject(doc, "already_cached", item->already);
		if (local) {
			cJSON_AddStringToObject(doc, "local", local);
			cJSON_AddStringToObject(doc, "link", place_how_name(how));
		}
		cJSON_AddItemToArray(run->pulled, doc);
	} else {
		cmd_size_text(item->size, size, sizeof(size));
		fprintf(stderr, "%s %s (%s)\n", item->already ? "cached" : "pulled", item->label,
		        size);
		fprintf(run->ctx->out, "%s\n", local ? local : where);
		fflush(run->ctx->out);
	}
out:
	/* Offline, a file not cached fails: pulling it needs the network. */
	if (item->rc)
		cmd_offline_hint(run->ctx, item->hub->name, false, hint, sizeof(hint));
	if (hint[0] && error)
		error = "offline, and not in the cache"; /* not the EIO it is read as */
	else if (item->rc == -EACCES && (item->hub->ops->flags & HUB_USES_TOKEN))
		/* Refused: no token, a wrong one, or one without access to a
		 * gated repo (the hub's warning above says which, and where to
		 * ask for access). */
		snprintf(hint, sizeof(hint), "set HF_TOKEN, or run `hf auth login`, with a token "
		                             "that has access; omnihub whoami checks it");
	if (error)
		cmd_error(run->ctx, item->label, "%s%s%s%s", error, hint[0] ? " (" : "", hint,
		          hint[0] ? ")" : "");
	if (rc && run->ctx->json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "path", item->label);
		cJSON_AddStringToObject(doc, "error", error ? error : strerror(-rc));
		if (hint[0])
			cJSON_AddStringToObject(doc, "hint", hint);
		cJSON_AddItemToArray(run->failed, doc);
	}
	free(where);
	free(local);
	/* Not found after the walk found it is a failure of the hub, not of
	 * the name. */
	return rc == -ENOENT ? -EIO : rc;
}

/* Takes one option into run: 0, or CMD_EXIT_USAGE after a message. */
static int take_option(struct pull_run *run, int c, const char *arg, const char *cmd)
{
	char ***list = c == 'i' ? &run->include : &run->exclude;
	size_t *n = c == 'i' ? &run->ninclude : &run->nexclude;
	char **grown, *end;
	unsigned long value;

	switch (c) {
	case 'i':
	case 'x':
		grown = realloc(*list, (*n + 1) * sizeof(**list));
		if (!grown)
			return CMD_EXIT_FAILED;
		grown[(*n)++] = (char *)arg;
		*list = grown;
		return 0;
	case 'd':
		if (!arg[0])
			return cmd_usage_error(run->ctx, cmd, "--local-dir needs a folder");
		run->local_dir = arg;
		return 0;
	case 'j':
		errno = 0;
		value = strtoul(arg, &end, 10);
		if (errno || *end || end == arg || arg[0] == '-' || value < 1 ||
		    value > PULL_WORKERS_MAX)
			return cmd_usage_error(run->ctx, cmd, "--max-workers: '%s' is not 1 to %u",
			                       arg, PULL_WORKERS_MAX);
		run->workers = (unsigned)value;
		return 0;
	}
	return CMD_EXIT_USAGE;
}

static const struct option pull_longopts[] = {
    {"include", required_argument, NULL, 'i'},
    {"exclude", required_argument, NULL, 'x'},
    {"local-dir", required_argument, NULL, 'd'},
    {"max-workers", required_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_pull_opts = {"j:", pull_longopts};

int cmd_pull(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct pull_run run = {.ctx = ctx};
	char base[PATH_MAX];
	cJSON *doc = NULL;
	int c, rc = 0, status = CMD_EXIT_OK, dir_fd = -1;

	pthread_mutex_init(&run.lock, NULL);
	/* Its waits' deadlines are on CLOCK_MONOTONIC: on the default clock
	 * they were long past, and the wait for the files spun. */
	monotonic_cond_init(&run.cond);
	while ((c = cmd_getopt(ctx, argc, argv, &cmd_pull_opts)) != -1) {
		status = c == '?' ? CMD_EXIT_USAGE : take_option(&run, c, optarg, argv[0]);
		if (status != CMD_EXIT_OK)
			goto out;
	}
	if (optind == argc) {
		status = cmd_usage_error(ctx, argv[0], "which files? (give one path or more)");
		goto out;
	}
	run.core = cmd_core(ctx);
	if (!run.core) {
		status = CMD_EXIT_FAILED;
		goto out;
	}
	if (!run.workers)
		run.workers = ctx->cfg->connections ? ctx->cfg->connections : 1;
	run.bar = !ctx->json && isatty(STDERR_FILENO) == 1;
	for (int i = optind; i < argc; i++) {
		int one;

		run.base = cmd_clean_path(argv[i], base, sizeof(base)) == 0 ? base : "";
		one = cmd_walk(ctx, argv[i], collect, &run);
		/* A name not found says more than a failure after it. */
		if (one && (!rc || one == -ENOENT))
			rc = one;
	}
	if (run.count == 0 && rc == 0 && (run.ninclude || run.nexclude))
		cmd_error(ctx, argv[0],
		          "no file matches --include and --exclude (omnihub ls -r %s lists the "
		          "names)",
		          argc - optind == 1 ? argv[optind] : "PATH");
	if (run.local_dir) {
		dir_fd = open_local_dir(run.local_dir);
		if (dir_fd < 0) {
			cmd_error(ctx, run.local_dir,
			          "cannot make the folder: %s (give another --local-dir)",
			          strerror(-dir_fd));
			status = CMD_EXIT_FAILED;
			goto out;
		}
	}
	if (ctx->json) {
		doc = cJSON_CreateObject();
		run.pulled = cJSON_AddArrayToObject(doc, "pulled");
		run.failed = cJSON_AddArrayToObject(doc, "failed");
	}
	fetch_all(&run);
	for (size_t i = 0; i < run.count; i++) {
		int one = report_item(&run, &run.items[i], dir_fd);
		if (one && !rc)
			rc = one;
	}
	if (ctx->json) {
		cJSON_AddItemToObject(doc, "files", cmd_json_u64(run.files));
		cJSON_AddItemToObject(doc, "bytes", cmd_json_u64(run.bytes));
		if (run.local_dir)
			cJSON_AddStringToObject(doc, "local_dir", run.local_dir);
		status = cmd_print_json(ctx, doc);
		doc = NULL;
	}
	if (status == CMD_EXIT_OK && rc)
		status = cmd_exit_of(rc);
out:
	cJSON_Delete(doc);
	if (dir_fd >= 0)
		close(dir_fd);
	for (size_t i = 0; i < run.count; i++) {
		free(run.items[i].path);
		free(run.items[i].label);
		free(run.items[i].rel);
	}
	free(run.items);
	free(run.include);
	free(run.exclude);
	pthread_cond_destroy(&run.cond);
	pthread_mutex_destroy(&run.lock);
	return status;
}

const char cmd_pull_help[] =
    "Makes each PATH present and verified in the cache, for offline use; a\n"
    "directory pulls every file below it, several files at once. Prints\n"
    "where each file is, one path a line on stdout: in the cache, or under\n"
    "--local-dir DIR; so $(omnihub pull ...) gives files to open; what it\n"
    "does goes to stderr, with a progress bar there on a terminal. A mount\n"
    "reading the same file shares the download.\n"
    "\n"
    "    --include GLOB         only the files whose path below PATH (a\n"
    "                           file given: its name) matches GLOB, a shell\n"
    "                           glob as hf download takes it: '*' matches\n"
    "                           '/' too, 'dir/' a folder's content;\n"
    "                           repeatable\n"
    "    --exclude GLOB         not those, whatever --include says;\n"
    "                           repeatable\n"
    "    --local-dir DIR        also put each file at DIR/<path below PATH>,\n"
    "                           from the cache: a reflink, else a hard link\n"
    "                           (the cache's own inode: never write to it),\n"
    "                           else a copy; never a second download, never\n"
    "                           a name leading out of DIR\n"
    "    -j, --max-workers N    files at once, 1 to 64 (default: the\n"
    "                           connections setting, 8)\n";
