/* reload.c: what SIGHUP does to a running mount: the settings read again
 * and checked, compared with those in use and given to the core, the hubs
 * of the catalogs as they are now added to the mount, one log line saying
 * what changed and what applies only at the next mount. Not for: the
 * signal handler (main.c) or how the core applies them (core.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "core.h"
#include "full_io.h"
#include "log.h"
#include "reload.h"

#define RELOAD_QUIT 'q'
#define RELOAD_NOW 'r'

struct reload {
	const struct config_options *opts; /* borrowed */
	const struct config *in_use;       /* borrowed: the mount's, then the
					      last one given to the core */
	struct core *core;                 /* borrowed */
	int fds[2];                        /* owned: the request pipe */
	pthread_t thread;
};

/* A growing text of "a, b, c". */
struct words {
	char *text; /* owned */
	size_t len;
	bool failed;
};

static void words_add(struct words *w, const char *word)
{
	size_t n = strlen(word);
	char *grown;

	if (w->failed)
		return;
	grown = realloc(w->text, w->len + n + 3);
	if (!grown) {
		w->failed = true;
		return;
	}
	w->text = grown;
	if (w->len) {
		memcpy(w->text + w->len, ", ", 2);
		w->len += 2;
	}
	memcpy(w->text + w->len, word, n + 1);
	w->len += n;
}

/* Every setting as "hub/key=value", in config_describe's order. */
struct described {
	char **lines; /* owned, each owned */
	size_t count;
	bool failed;
};

static void describe_one(void *ctx, const char *hub, const char *key, const char *value,
			 const char *origin)
{
	struct described *d = ctx;
	char **grown;
	char *line;

	(void)origin; /* a value moved to another line is no change */
	if (d->failed)
		return;
	if (asprintf(&line, "%s%s%s=%s", hub ? hub : "", hub ? "/" : "", key,
		     value ? value : "") < 0) {
		d->failed = true;
		return;
	}
	grown = realloc(d->lines, (d->count + 1) * sizeof(*grown));
	if (!grown) {
		free(line);
		d->failed = true;
		return;
	}
	d->lines = grown;
	d->lines[d->count++] = line;
}

static void described_free(struct described *d)
{
	for (size_t i = 0; i < d->count; i++)
		free(d->lines[i]);
	free(d->lines);
}

static bool described_has(const struct described *d, const char *line)
{
	for (size_t i = 0; i < d->count; i++)
		if (strcmp(d->lines[i], line) == 0)
			return true;
	return false;
}

/* The name of a setting line: what is before '='. */
static void add_name(struct words *w, const char *line)
{
	char name[256];

	snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, "="), line);
	words_add(w, name);
}

/* The settings a running mount takes (core_apply_config), by name: a
 * general one, or a [hub] section's ("hub/name"). The others were used to
 * open the mount, and apply at the next. */
static const char *const live_settings[] = {
	"offline",   "index_ttl",   "stream",	       "connections",	   "retries",
	"stall_timeout", "retry_time", "cache_max", "max_unpack_ratio", "max_unpack_size",
	"convert_timeout",
};

static bool is_live(const char *line)
{
	const size_t len = strcspn(line, "=");
	const char *slash = memchr(line, '/', len);
	const char *name = slash ? slash + 1 : line;
	const size_t n = len - (size_t)(name - line);

	for (size_t i = 0; i < sizeof(live_settings) / sizeof(live_settings[0]); i++)
		if (strlen(live_settings[i]) == n && strncmp(name, live_settings[i], n) == 0)
			return true;
	return false;
}

/* A changed setting's name, among those applied now or at the next mount. */
static void add_changed(struct words *live, struct words *later, const char *line)
{
	add_name(is_live(line) ? live : later, line);
}

/* The settings that differ between in_use and fresh, by name. */
static void changed_settings(const struct config *in_use, const struct config *fresh,
			     struct words *live, struct words *later)
{
	struct described old = { 0 }, now = { 0 };

	config_describe(in_use, describe_one, &old);
	config_describe(fresh, describe_one, &now);
	if (old.failed || now.failed) {
		live->failed = true;
		goto out;
	}
	for (size_t i = 0; i < now.count; i++)
		if (!described_has(&old, now.lines[i]))
			add_changed(live, later, now.lines[i]);
	/* Settings no longer set at all (a hub option removed). */
	for (size_t i = 0; i < old.count; i++) {
		size_t n = strcspn(old.lines[i], "=");
		bool named = false;
		for (size_t j = 0; j < now.count && !named; j++)
			named = strncmp(now.lines[j], old.lines[i], n + 1) == 0;
		if (!named)
			add_changed(live, later, old.lines[i]);
	}
out:
	described_free(&old);
	described_free(&now);
}

/* What a reload did to the catalogs' hubs (core_add_catalog_hubs). */
struct hub_changes {
	struct words added; /* served now */
	struct words waiting; /* added, retried in the background */
	struct words gone;  /* no longer named: kept until the next mount */
};

static void on_added(void *ctx, const char *name, const char *why)
{
	struct hub_changes *c = ctx;

	words_add(why ? &c->waiting : &c->added, name);
}

static void on_gone(void *ctx, const char *name, const char *why)
{
	struct hub_changes *c = ctx;

	(void)why;
	words_add(&c->gone, name);
}

/* "; <label>: <words>" when there are words. */
static void add_part(struct words *line, const char *label, const struct words *w)
{
	char *grown = NULL;

	if (!w->len || line->failed)
		return;
	if (asprintf(&grown, "%s%s%s: %s", line->len ? line->text : "", line->len ? "; " : "",
		     label, w->text) < 0) {
		line->failed = true;
		return;
	}
	free(line->text);
	line->text = grown;
	line->len = strlen(grown);
}

static void reload_once(struct reload *r)
{
	struct words live = { 0 }, later = { 0 }, line = { 0 };
	struct hub_changes hubs = { 0 };
	struct config *fresh = calloc(1, sizeof(*fresh));
	const char *why = NULL;
	char catalog_why[1024] = "";
	int rc;

	if (!fresh) {
		log_error("reload (SIGHUP): out of memory");
		goto out;
	}
	rc = config_resolve(fresh, r->opts, &why);
	if (rc) {
		log_error("reload (SIGHUP): keeping the settings in use: %s", why);
		goto out;
	}
	rc = core_add_catalog_hubs(r->core, fresh, on_added, on_gone, &hubs, catalog_why,
				   sizeof(catalog_why));
	if (rc)
		log_error("reload (SIGHUP): the catalogs' hubs as they were: %s", catalog_why);
	changed_settings(r->in_use, fresh, &live, &later);
	if ((live.len || later.len) && !live.failed && !later.failed) {
		if (core_apply_config(r->core, fresh) != 0) {
			log_error("reload (SIGHUP): out of memory: keeping the settings in use");
			goto out;
		}
		r->in_use = fresh;
		fresh = NULL; /* the core's */
	}
	add_part(&line, "catalog hubs added, served now", &hubs.added);
	add_part(&line, "catalog hubs added, retried in the background", &hubs.waiting);
	add_part(&line, "catalog hubs no longer named, served until the next mount", &hubs.gone);
	add_part(&line, "settings applied now", &live);
	add_part(&line, "settings that apply at the next mount", &later);
	if (line.failed || live.failed || later.failed || hubs.added.failed ||
	    hubs.waiting.failed || hubs.gone.failed) {
		log_error("reload (SIGHUP): out of memory");
		goto out;
	}
	if (!line.len)
		log_info("reload (SIGHUP): the settings and the catalogs' hubs are unchanged; the "
			 "token file is read again whenever it changes");
	else
		log_warn("reload (SIGHUP): %s (the token file is read again whenever it changes)",
			 line.text);
out:
	free(live.text);
	free(later.text);
	free(line.text);
	free(hubs.added.text);
	free(hubs.waiting.text);
	free(hubs.gone.text);
	if (fresh) {
		config_free(fresh);
		free(fresh);
	}
}

static void *reload_main(void *arg)
{
	struct reload *r = arg;

	for (;;) {
		char byte;
		ssize_t n = full_io_read(r->fds[0], &byte, 1);

		if (n != 1 || byte == RELOAD_QUIT)
			break;
		reload_once(r);
	}
	return NULL;
}

int reload_start(struct reload **out, const struct config_options *opts,
		 const struct config *in_use, struct core *core)
{
	struct reload *r = calloc(1, sizeof(*r));
	int rc = -ENOMEM;

	*out = NULL;
	if (!r)
		goto out;
	r->opts = opts;
	r->in_use = in_use;
	r->core = core;
	r->fds[0] = r->fds[1] = -1;
	if (pipe2(r->fds, O_CLOEXEC) != 0) {
		rc = -errno;
		goto out;
	}
	rc = -pthread_create(&r->thread, NULL, reload_main, r);
	if (rc == 0) {
		*out = r;
		r = NULL;
	}
out:
	if (r) {
		if (r->fds[0] >= 0)
			close(r->fds[0]);
		if (r->fds[1] >= 0)
			close(r->fds[1]);
		free(r);
	}
	return rc;
}

int reload_request_fd(const struct reload *r)
{
	return r->fds[1];
}

void reload_stop(struct reload *r)
{
	const char quit = RELOAD_QUIT;

	if (!r)
		return;
	full_io_write(r->fds[1], &quit, 1);
	pthread_join(r->thread, NULL);
	close(r->fds[0]);
	close(r->fds[1]);
	free(r);
}
