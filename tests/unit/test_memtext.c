/* test_memtext.c: unit tests of memtext.c: what is printed is handed over
 * whole with its length, nothing printed is an empty text. Not for: the
 * texts themselves (test_status, test_metrics). */
#include "build_config.h"

#include <stdlib.h>
#include <string.h>

#include "memtext.h"
#include "tap.h"

int main(void)
{
	struct memtext mt;
	char *text = (char *)"unset";
	size_t len = 99;

	tap_ok(memtext_open(&mt, &text, &len) == 0 && text == NULL && len == 0,
	       "open empties what the caller will get");
	for (int i = 0; i < 1000; i++)
		fprintf(mt.f, "line %d\n", i);
	tap_ok(memtext_close(&mt, &text, &len) == 0, "close");
	tap_ok(text && len == strlen(text) && strncmp(text, "line 0\nline 1\n", 14) == 0 &&
		       strstr(text, "line 999\n") == text + len - 9,
	       "all that was printed, with its length (%zu)", len);
	free(text);
	tap_ok(memtext_open(&mt, &text, &len) == 0 && memtext_close(&mt, &text, &len) == 0 &&
		       text && text[0] == '\0' && len == 0,
	       "nothing printed: an empty text");
	free(text);
	return tap_done();
}
