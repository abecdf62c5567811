/* test_status.c: unit tests of status.c: the status text from given
 * transfer snapshots and cache use, and its sizes and durations.
 * Not for: gathering them from a mount (test_status.py). */
#include "build_config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "tap.h"

/* The line of text that contains needle, copied into out. */
static bool line_with(const char *text, const char *needle, char *out, size_t out_size)
{
	const char *hit = strstr(text, needle), *start, *end;

	if (!hit)
		return false;
	for (start = hit; start > text && start[-1] != '\n'; start--)
		;
	end = strchr(hit, '\n');
	if (!end)
		end = hit + strlen(hit);
	snprintf(out, out_size, "%.*s", (int)(end - start), start);
	return true;
}

int main(void)
{
	char buf[64], line[512], state[32], speed[32], unit[16], source[16], eta[32], path[256];
	unsigned long long done, total;
	unsigned conns, waiting;
	double percent, speed_value;
	char *text = NULL;
	size_t len = 0;

	status_format_bytes(12, buf, sizeof(buf));
	tap_ok(strcmp(buf, "12 B") == 0, "bytes: %s", buf);
	status_format_bytes(1536, buf, sizeof(buf));
	tap_ok(strcmp(buf, "1.5 KiB") == 0, "KiB: %s", buf);
	status_format_bytes(10.0 * 1024 * 1024 * 1024, buf, sizeof(buf));
	tap_ok(strcmp(buf, "10.0 GiB") == 0, "GiB: %s", buf);
	status_format_duration(3, buf, sizeof(buf));
	tap_ok(strcmp(buf, "3s") == 0, "seconds: %s", buf);
	status_format_duration(75, buf, sizeof(buf));
	tap_ok(strcmp(buf, "1m15s") == 0, "minutes: %s", buf);
	status_format_duration(7300, buf, sizeof(buf));
	tap_ok(strcmp(buf, "2h01m") == 0, "hours: %s", buf);
	status_format_duration(-1, buf, sizeof(buf));
	tap_ok(strcmp(buf, "-") == 0, "unknown: %s", buf);

	struct transfer_status transfers[3] = {
	    {.label = "onnx/resnet18/model.onnx",
	     .state = "running",
	     .size = 10u << 20,
	     .present = 4u << 20,
	     .fetched = 4u << 20,
	     .seconds = 2.0,
	     .connections = 4,
	     .waiters = 2,
	     .source = METRICS_FROM_MIRROR},
	    {.label = "huggingface/org/repo/with space.bin",
	     .state = "following",
	     .size = 1000,
	     .present = 250,
	     .fetched = 0,
	     .seconds = 1.0,
	     .connections = 0,
	     .waiters = 1,
	     .source = METRICS_FROM_SHARED},
	    {.label = "bad\nname", .state = "done", .size = 0, .present = 0, .seconds = 1.0,
	     .ended = true},
	};
	struct blob_usage usage = {.bytes = 3u << 20,
	                           .blobs = 2,
	                           .partial_bytes = 4u << 20,
	                           .partials = 1,
	                           .max = 1u << 30};
	struct status_input in = {
	    .transfers = transfers, .ntransfers = 3, .usage = &usage, .uptime_seconds = 83};

	tap_ok(status_render(&in, &text, &len) == 0 && text && len == strlen(text), "rendered");
	tap_ok(strncmp(text,
	               PACKAGE_NAME " " PACKAGE_VERSION ": up 1m23s, 2 transfers, 3 readers "
	                            "waiting\n",
	               strlen(PACKAGE_NAME " " PACKAGE_VERSION ": up 1m23s, 2 transfers, 3 readers "
	                                   "waiting\n")) == 0,
	       "the summary line counts the transfers in use, not the one that ended");
	tap_ok(line_with(text, "cache:", line, sizeof(line)) &&
	           strcmp(line, "cache: 3.0 MiB in 2 files (3145728 bytes), partial 4.0 MiB in 1 "
	                        "(4194304 bytes), cache_max 1.0 GiB") == 0,
	       "the cache line: %s", line);
	tap_ok(line_with(text, "STATE", line, sizeof(line)) && strstr(line, "SOURCE") &&
	           strstr(line, "DONE") &&
	           strstr(line, "TOTAL") && strstr(line, "SPEED") && strstr(line, "ETA") &&
	           strstr(line, "WAIT") && strstr(line, "PATH"),
	       "a header names the columns");

	tap_ok(line_with(text, "resnet18", line, sizeof(line)) &&
	           sscanf(line, "%31s %15s %llu %llu %lf%% %lf %15s %31s %u %u %255s", state, source,
	                  &done, &total, &percent, &speed_value, unit, eta, &conns, &waiting,
	                  path) == 11,
	       "a running transfer's line parses: %s", line);
	tap_ok(strcmp(state, "running") == 0 && strcmp(source, "mirror") == 0 && done == 4u << 20 && total == 10u << 20 &&
	           percent == 40.0 && speed_value == 2.0 && strcmp(unit, "MiB/s") == 0 &&
	           strcmp(eta, "3s") == 0 && conns == 4 && waiting == 2 &&
	           strcmp(path, "onnx/resnet18/model.onnx") == 0,
	       "state, source, bytes done and total, %%, speed, ETA, connections, waiters, path");

	tap_ok(line_with(text, "following", line, sizeof(line)) &&
	           sscanf(line, "%31s %15s %llu %llu %lf%% %31s %31s %u %u", state, source, &done,
	                  &total, &percent, speed, eta, &conns, &waiting) == 9 &&
	           strcmp(source, "shared") == 0 &&
	           strcmp(speed, "-") == 0 && strcmp(eta, "-") == 0 && percent == 25.0 &&
	           waiting == 1,
	       "a follower has no speed or ETA of its own: %s", line);
	tap_ok(strstr(line, "  huggingface/org/repo/with space.bin") != NULL,
	       "a path with a space stays whole, last on its line");
	tap_ok(strstr(text, "bad?name\n") && !strstr(text, "bad\nname"),
	       "a control character cannot split a line");
	tap_ok(line_with(text, "bad?name", line, sizeof(line)) && strstr(line, "100.0%") &&
	           strstr(line, " 0s "),
	       "an empty file is whole: %s", line);
	int lines = 0;
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	tap_ok(lines == 6 && text[len - 1] == '\n', "one line per transfer, after three (%d)",
	       lines);
	free(text);

	struct status_input empty = {.uptime_seconds = 5};
	tap_ok(status_render(&empty, &text, &len) == 0 && strstr(text, "0 transfers") &&
	           !strstr(text, "cache:") && strstr(text, "STATE"),
	       "nothing in flight, usage unknown");
	free(text);
	usage.max = 0;
	in.usage = &usage;
	in.ntransfers = 0;
	tap_ok(status_render(&in, &text, &len) == 0 && strstr(text, "cache_max none\n"),
	       "no limit says none");
	free(text);
	return tap_done();
}
