/* cmd_pull.c: omnihub pull: makes files present and verified in the cache
 * ahead of time, with a progress bar on a terminal and plain lines
 * elsewhere. Not for: how a file is fetched (the core, download.c), or
 * checking what is cached (cmd_cache.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cmd_out.h"
#include "cmd_walk.h"
#include "core.h"
#include "transfer.h"

/* How often the bar is drawn again. */
#define PROGRESS_INTERVAL_NS 200000000L

struct pull_run {
	struct cmd_ctx *ctx;
	struct core *core;
	cJSON *pulled, *failed; /* --json */
	uint64_t files, bytes;
};

/* One file's core_start, which the caller waits for while it draws: the
 * work runs on the core's threads, none of its own. */
struct ensure_job {
	int rc;
	bool done; /* guarded by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when done */
};

/* core_start's callback, on one of the core's threads. */
static void ensure_done(void *ctx, int rc)
{
	struct ensure_job *job = ctx;

	pthread_mutex_lock(&job->lock);
	job->rc = rc;
	job->done = true;
	pthread_cond_signal(&job->cond);
	pthread_mutex_unlock(&job->lock);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned terminal_columns(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* What the bar shows, from one sample of the transfers to the next. */
struct progress {
	const char *label;
	uint64_t size;    /* as the index says; the transfers' when they know */
	uint64_t present; /* bytes on disk */
	double started, last_time;
	uint64_t last_present;
	double speed; /* bytes per second, smoothed */
	bool sampled;
};

static void progress_sample(struct progress *p, struct transfer_engine *engine)
{
	struct transfer_status *list = NULL;
	uint64_t size = 0, present = 0;
	size_t count = 0;
	double t = now_seconds();

	if (transfer_engine_list(engine, &list, &count) != 0)
		return;
	/* This process pulls one file at a time: every live transfer is it
	 * (a made file may fetch once, and an archive's member too). */
	for (size_t i = 0; i < count; i++) {
		size += list[i].size;
		present += list[i].present;
	}
	transfer_status_free(list, count);
	if (count) {
		p->size = size;
		p->present = present;
	}
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

/* core_ensure, with the bar redrawn while it runs. */
static int ensure_with_progress(struct pull_run *run, struct hub *hub, const char *path,
                                const char *label, uint64_t size)
{
	struct ensure_job job = {.rc = 0};
	struct progress p = {.label = label, .size = size};
	pthread_condattr_t attr;
	int rc;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&job.cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&job.lock, NULL);
	p.started = now_seconds();
	rc = core_start(run->core, hub, path, ensure_done, &job);
	if (rc)
		goto out;
	pthread_mutex_lock(&job.lock);
	while (!job.done) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += PROGRESS_INTERVAL_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&job.cond, &job.lock, &until);
		if (job.done)
			break;
		pthread_mutex_unlock(&job.lock);
		progress_sample(&p, core_store_of(run->core, hub)->engine);
		progress_draw(&p, run->ctx->out);
		pthread_mutex_lock(&job.lock);
	}
	pthread_mutex_unlock(&job.lock);
	rc = job.rc;
	if (p.sampled)
		fprintf(run->ctx->out, "\r\033[K"); /* the bar gives way to the result */
out:
	pthread_cond_destroy(&job.cond);
	pthread_mutex_destroy(&job.lock);
	return rc;
}

static int pull_one(void *arg, struct hub *hub, const char *path, const char *label,
                    const struct entry *entry)
{
	struct pull_run *run = arg;
	char size[CMD_SIZE_TEXT_MAX];
	char *where = NULL;
	bool already = false;
	int rc;

	core_cached(run->core, hub, path, &already, NULL);
	if (already)
		rc = 0;
	else if (run->ctx->tty && !run->ctx->json)
		rc = ensure_with_progress(run, hub, path, label, entry->size);
	else
		rc = core_ensure(run->core, hub, path);
	if (rc) {
		cmd_error(run->ctx, label, "%s", strerror(-rc));
		if (run->ctx->json) {
			cJSON *item = cJSON_CreateObject();
			cJSON_AddStringToObject(item, "path", label);
			cJSON_AddStringToObject(item, "error", strerror(-rc));
			cJSON_AddItemToArray(run->failed, item);
		}
		/* Not found here is a failure of the hub, not of the name. */
		return rc == -ENOENT ? -EIO : rc;
	}
	core_cached(run->core, hub, path, &(bool){false}, &where);
	run->files++;
	run->bytes += entry->size;
	if (run->ctx->json) {
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "path", label);
		cJSON_AddItemToObject(item, "size", cmd_json_u64(entry->size));
		cJSON_AddItemToObject(item, "where",
		                      where ? cJSON_CreateString(where) : cJSON_CreateNull());
		cJSON_AddBoolToObject(item, "already_cached", already);
		cJSON_AddItemToArray(run->pulled, item);
	} else {
		cmd_size_text(entry->size, size, sizeof(size));
		fprintf(run->ctx->out, "%s %s (%s)\n", already ? "cached" : "pulled", label, size);
		fflush(run->ctx->out);
	}
	free(where);
	return 0;
}

int cmd_pull(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {{NULL, 0, NULL, 0}};
	struct pull_run run = {.ctx = ctx};
	cJSON *doc = NULL;
	int c, rc = 0, status;

	while ((c = cmd_getopt(ctx, argc, argv, "", longopts)) != -1)
		return CMD_EXIT_USAGE;
	if (optind == argc)
		return cmd_usage_error(ctx, argv[0], "which files? (give one path or more)");
	run.core = cmd_core(ctx);
	if (!run.core)
		return CMD_EXIT_FAILED;
	if (ctx->json) {
		doc = cJSON_CreateObject();
		run.pulled = cJSON_AddArrayToObject(doc, "pulled");
		run.failed = cJSON_AddArrayToObject(doc, "failed");
	}
	for (int i = optind; i < argc; i++) {
		int one = cmd_walk(ctx, argv[i], pull_one, &run);
		/* A name not found says more than a failure after it. */
		if (one && (!rc || one == -ENOENT))
			rc = one;
	}
	if (ctx->json) {
		cJSON_AddItemToObject(doc, "files", cmd_json_u64(run.files));
		cJSON_AddItemToObject(doc, "bytes", cmd_json_u64(run.bytes));
		status = cmd_print_json(ctx, doc);
		if (status != CMD_EXIT_OK)
			return status;
	}
	return rc ? cmd_exit_of(rc) : CMD_EXIT_OK;
}
