/* test_fetch.c: unit tests of fetch.c's URL helpers: joining a hub path to a
 * base URL, and URLs as logs may show them. Not for: transfers, which the
 * integration tests make against real local servers. */
#include "build_config.h"

#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "tap.h"

static void join_is(const char *base, const char *rel, const char *want)
{
	char *url = NULL;
	int rc = fetch_url_join(base, rel, &url);

	tap_ok(rc == 0 && url && strcmp(url, want) == 0, "join %s + %s = %s", base, rel,
	       url ? url : "(null)");
	free(url);
}

static void log_form_is(const char *url, const char *want)
{
	char out[128];

	fetch_url_for_log(url, out, sizeof(out));
	tap_ok(strcmp(out, want) == 0, "for a log: %s", out);
}

static void link_next_is(const char *value, const char *want)
{
	char out[256];

	fetch_parse_link_next(value, out, sizeof(out));
	tap_ok(strcmp(out, want) == 0, "next of [%s] = [%s]", value, out);
}

int main(void)
{
	char tiny[8];

	join_is("https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/",
		"validated/vision/classification/mnist/model/mnist-8.onnx",
		"https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/"
		"validated/vision/classification/mnist/model/mnist-8.onnx");
	join_is("https://m.example/zoo", "a/b.onnx", "https://m.example/zoo/a/b.onnx");
	join_is("https://m.example/", "dir with space/x?y#z%.onnx",
		"https://m.example/dir%20with%20space/x%3Fy%23z%25.onnx");
	join_is("https://m.example/", "\xc3\x9c" "ber/m.onnx", "https://m.example/%C3%9Cber/m.onnx");

	log_form_is("https://cdn.example/x/model.onnx?X-Amz-Signature=secret&X-Amz-Credential=c",
		    "https://cdn.example/x/model.onnx");
	log_form_is("https://user:token@mirror.example/zoo/m.onnx", "https://mirror.example/zoo/m.onnx");
	log_form_is("https://mirror.example/a@b/m.onnx", "https://mirror.example/a@b/m.onnx");
	log_form_is("https://h/p#frag", "https://h/p");
	log_form_is("https://h/a\nb", "https://h/a?b");
	fetch_url_for_log("https://long.example/", tiny, sizeof(tiny));
	tap_ok(strlen(tiny) == 7, "truncated to its buffer: %s", tiny);
	link_next_is("<https://hub.example/api/models/x/tree/main?cursor=abc>; rel=\"next\"",
		     "https://hub.example/api/models/x/tree/main?cursor=abc");
	link_next_is("<https://h/p?c=1>; rel=\"prev\", <https://h/p?c=3>; rel=\"next\"",
		     "https://h/p?c=3");
	link_next_is("<https://h/p?c=1>; rel=next", "https://h/p?c=1");
	link_next_is("<https://h/p?c=1>; rel=\"nextpage\"", "");
	link_next_is("<https://h/p?c=1>; rel=\"prev\"", "");
	link_next_is("<https://h/unterminated; rel=\"next\"", "");
	link_next_is("", "");
	return tap_done();
}
