/* status.c: the text of the mount's .omnihub/status: each hub's state, the
 * downloads in flight, one line each, and the cache's use, for `watch cat`
 * and `omnihub status`; and the hubs' gauges of the metrics. Not for:
 * gathering what it shows (fs.c, the core) or metrics (metrics.c). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memtext.h"
#include "metrics.h"
#include "status.h"

void status_format_bytes(double bytes, char *out, size_t out_size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(out, out_size, "%.0f B", bytes < 0 ? 0 : bytes);
		return;
	}
	bytes /= 1024;
	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, out_size, "%.1f %s", bytes, units[u]);
}

void status_format_duration(double seconds, char *out, size_t out_size)
{
	unsigned long long s;

	if (!(seconds >= 0) || seconds > 1e9) { /* unknown, or NaN */
		snprintf(out, out_size, "-");
		return;
	}
	s = (unsigned long long)(seconds + 0.5);
	if (s < 60)
		snprintf(out, out_size, "%llus", s);
	else if (s < 3600)
		snprintf(out, out_size, "%llum%02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, out_size, "%lluh%02llum", s / 3600, s / 60 % 60);
	else
		snprintf(out, out_size, "%llud%02lluh", s / 86400, s / 3600 % 24);
}

/* A path as one line shows it: a control character would break the line. */
static void put_path(FILE *f, const char *path)
{
	for (; *path; path++)
		fputc((unsigned char)*path < 0x20 || *path == 0x7f ? '?' : *path, f);
	fputc('\n', f);
}

/* UTC, one word: the command parses it back. */
static void format_utc(time_t t, char *out, size_t out_size)
{
	struct tm tm;

	if (t <= 0 || !gmtime_r(&t, &tm) || strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, out_size, "-");
}

static void render_hubs(FILE *f, const struct hub_state_view *hubs, size_t nhubs)
{
	char since[32], next[32];

	fprintf(f, "%-22s %-9s %-20s %-20s %5s  %s\n", STATUS_HUB_HEADER, "STATE", "SINCE",
	        "NEXT_TRY", "TRIES", "LAST_ERROR");
	for (size_t i = 0; i < nhubs; i++) {
		const struct hub_state_view *h = &hubs[i];

		format_utc(h->since, since, sizeof(since));
		format_utc(h->kind == HUB_STATE_RETRYING ? h->next_try : 0, next, sizeof(next));
		fprintf(f, "%-22s %-9s %-20s %-20s %5u  ", h->name, hub_state_name(h->kind), since,
		        next, h->tries);
		put_path(f, h->error[0] ? h->error : "-");
	}
}

int status_hub_metrics(const struct hub_state_view *hubs, size_t nhubs, char **out, size_t *len)
{
	char label[256];
	struct memtext mt;
	FILE *f;

	if (memtext_open(&mt, out, len) != 0)
		return -ENOMEM;
	f = mt.f;
	fprintf(f, "# HELP omnihub_hub_up Whether the hub serves (1), or not (0: retried in the "
	           "background, offline or disabled).\n# TYPE omnihub_hub_up gauge\n");
	for (size_t i = 0; i < nhubs; i++) {
		metrics_escape_label(hubs[i].name, label, sizeof(label));
		fprintf(f, "omnihub_hub_up{hub=\"%s\"} %d\n", label, hubs[i].kind == HUB_STATE_UP);
	}
	return memtext_close(&mt, out, len);
}

static void render_transfer(FILE *f, const struct transfer_status *t)
{
	/* The speed is this process's average since the transfer began: a
	 * follower receives nothing itself, and shows none. */
	double speed = t->seconds > 0.05 && t->fetched ? (double)t->fetched / t->seconds : 0;
	double percent = t->size ? 100.0 * (double)t->present / (double)t->size : 100.0;
	double eta = -1;
	char speed_text[32], eta_text[32];

	if (t->present >= t->size)
		eta = 0;
	else if (speed > 0)
		eta = (double)(t->size - t->present) / speed;
	if (speed > 0) {
		status_format_bytes(speed, speed_text, sizeof(speed_text) - 2);
		snprintf(speed_text + strlen(speed_text), 3, "/s");
	} else {
		snprintf(speed_text, sizeof(speed_text), "-");
	}
	status_format_duration(eta, eta_text, sizeof(eta_text));
	fprintf(f, "%-9s %-6s %12llu %12llu %6.1f%% %12s %7s %4u %4u  ", t->state,
	        metrics_from_name(t->source), (unsigned long long)t->present, (unsigned long long)t->size, percent, speed_text,
	        eta_text, t->connections, t->waiters);
	put_path(f, t->label ? t->label : "?");
}

int status_render(const struct status_input *in, char **out, size_t *len)
{
	char up[32], a[32], b[32], c[32];
	unsigned long long waiters = 0;
	struct memtext mt;
	FILE *f;

	if (memtext_open(&mt, out, len) != 0)
		return -ENOMEM;
	f = mt.f;
	size_t live = transfer_status_live(in->transfers, in->ntransfers);
	for (size_t i = 0; i < in->ntransfers; i++)
		waiters += in->transfers[i].waiters;
	status_format_duration(in->uptime_seconds, up, sizeof(up));
	fprintf(f, "%s %s: up %s, %zu transfer%s, %llu reader%s waiting\n", PACKAGE_NAME,
	        PACKAGE_VERSION, up, live, live == 1 ? "" : "s", waiters, waiters == 1 ? "" : "s");
	if (in->usage) {
		const struct blob_usage *u = in->usage;

		status_format_bytes((double)u->bytes, a, sizeof(a));
		status_format_bytes((double)u->partial_bytes, b, sizeof(b));
		status_format_bytes((double)u->max, c, sizeof(c));
		fprintf(f,
		        "cache: %s in %llu file%s (%llu bytes), partial %s in %llu (%llu bytes), "
		        "cache_max %s\n",
		        a, (unsigned long long)u->blobs, u->blobs == 1 ? "" : "s",
		        (unsigned long long)u->bytes, b, (unsigned long long)u->partials,
		        (unsigned long long)u->partial_bytes, u->max ? c : "none");
	}
	if (in->nhubs)
		render_hubs(f, in->hubs, in->nhubs);
	fprintf(f, "%-9s %-6s %12s %12s %7s %12s %7s %4s %4s  %s\n", "STATE", "SOURCE", "DONE",
	        "TOTAL", "%", "SPEED", "ETA", "CONN", "WAIT", "PATH");
	for (size_t i = 0; i < in->ntransfers; i++)
		render_transfer(f, &in->transfers[i]);
	return memtext_close(&mt, out, len);
}
