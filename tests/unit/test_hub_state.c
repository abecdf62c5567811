/* test_hub_state.c: the retry schedule of a hub that cannot open, its
 * states and what lookups answer in each, and how status and metrics show
 * them. Not for: the retry thread against a real hub (test_hub_recovery.py). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hub_state.h"
#include "status.h"
#include "tap.h"

static int near(double got, double want)
{
	return got > want - 1e-9 && got < want + 1e-9;
}

int main(void)
{
	struct hub_state st;
	struct hub_state_view views[2];
	char *text = NULL;
	size_t len = 0;

	/* The schedule: 5 s doubling to 5 min, the jitter at most 20% either way. */
	tap_ok(near(hub_retry_delay(5, 1, 0.5), 5) && near(hub_retry_delay(5, 2, 0.5), 10) &&
	           near(hub_retry_delay(5, 3, 0.5), 20) && near(hub_retry_delay(5, 6, 0.5), 160),
	       "without jitter: 5, 10, 20 ... 160 s");
	tap_ok(near(hub_retry_delay(5, 7, 0.5), HUB_RETRY_MAX_SECONDS) &&
	           near(hub_retry_delay(5, 1000000, 0.5), HUB_RETRY_MAX_SECONDS),
	       "capped at five minutes, whatever the count");
	tap_ok(near(hub_retry_delay(5, 1, 0), 4) && hub_retry_delay(5, 1, 0.999999) < 6.0 &&
	           hub_retry_delay(5, 1, 0.999999) > 5.99 &&
	           near(hub_retry_delay(5, 50, 0), 240),
	       "jitter moves each wait by up to 20%% of itself");
	tap_ok(near(hub_retry_delay(0.2, 1, 0.5), 0.2) && near(hub_retry_delay(0, 1, 0.5), 5),
	       "a test's first wait is used; none given: the default");
	setenv(HUB_RETRY_FIRST_ENV, "0.3", 1);
	tap_ok(near(hub_retry_first(), 0.3), "the test's environment variable sets the first wait");
	setenv(HUB_RETRY_FIRST_ENV, "soon", 1);
	tap_ok(near(hub_retry_first(), HUB_RETRY_FIRST_SECONDS), "a bad value is ignored");
	unsetenv(HUB_RETRY_FIRST_ENV);

	/* States and what a lookup answers. */
	hub_state_init(&st);
	tap_ok(hub_state_check(NULL) == 0, "a hub the core did not make serves");
	tap_ok(hub_state_check(&st) == -ENOENT, "a hub never opened does not");
	tap_ok(hub_state_set_failed(&st, HUB_STATE_RETRYING, "HTTP 503", 1000, 50.0, 5, 0.5),
	       "the first failure is news");
	tap_ok(hub_state_check(&st) == -EAGAIN && st.next_try == 1005 && near(st.next_mono, 55) &&
	           st.since == 1000,
	       "retrying: EAGAIN, next try after the first wait");
	tap_ok(!hub_state_set_failed(&st, HUB_STATE_RETRYING, "HTTP 503", 1005, 55.0, 5, 0.5),
	       "the same failure again is not logged again");
	tap_ok(st.next_try == 1015 && st.since == 1000 && st.tries == 2,
	       "the wait doubled; since stays the start of the state");
	tap_ok(hub_state_set_failed(&st, HUB_STATE_RETRYING, "connection refused", 1015, 65.0, 5,
				    0.5),
	       "another reason is news");
	tap_ok(hub_state_set_up(&st, 1035) && hub_state_check(&st) == 0 && st.since == 1035 &&
	           st.failures == 0 && st.tries == 4,
	       "up: it serves, the backoff starts again");
	tap_ok(!hub_state_set_up(&st, 1040), "up again is not news");
	hub_state_view(&st, "onnx", &views[0]);

	struct hub_state off;
	hub_state_init(&off);
	hub_state_set_failed(&off, HUB_STATE_OFFLINE, "offline, and no usable cached copy", 1000,
			     0, 5, 0.5);
	tap_ok(hub_state_check(&off) == -ENOENT && off.next_try == 0,
	       "offline: ENOENT, never tried again");
	hub_state_set_failed(&off, HUB_STATE_RETRYING, "HTTP 503", 1000, 0, 5, 0.5);
	hub_state_view(&off, "huggingface", &views[1]);

	/* What the status and the metrics show. */
	struct status_input in = {.uptime_seconds = 1, .hubs = views, .nhubs = 2};
	tap_ok(status_render(&in, &text, &len) == 0 && text, "rendered");
	tap_ok(strstr(text, "\nHUB ") && strstr(text, "LAST_ERROR\n"), "a header names the columns");
	tap_ok(strstr(text, "\nonnx                   up        1970-01-01T00:17:15Z -  ") &&
	           strstr(text, "connection refused\n"),
	       "an up hub: since when, no next try, its last error");
	tap_ok(strstr(text, "\nhuggingface            retrying  1970-01-01T00:16:40Z "
	                    "1970-01-01T00:16:50Z     2  HTTP 503\n") != NULL,
	       "a retried hub: since, next try, tries, error");
	tap_ok(strstr(text, "HUB") < strstr(text, "\nSTATE "), "hubs come before the transfers");
	free(text);
	tap_ok(status_hub_metrics(views, 2, &text, &len) == 0 &&
	           strstr(text, "# TYPE omnihub_hub_up gauge\n") &&
	           strstr(text, "\nomnihub_hub_up{hub=\"onnx\"} 1\n") &&
	           strstr(text, "\nomnihub_hub_up{hub=\"huggingface\"} 0\n") &&
	           len == strlen(text),
	       "the gauge: 1 up, 0 otherwise");
	free(text);
	hub_state_destroy(&off);
	hub_state_destroy(&st);
	return tap_done();
}
