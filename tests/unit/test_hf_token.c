/* test_hf_token.c: unit tests of hf_token.c: trimming as huggingface_hub
 * does, an empty token taken as none (and said so), the token file read
 * again when it changes, a token no header may carry refused. Not for:
 * sending it (tests/integration/test_hf_mount.py). */
#include "build_config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "hf_token.h"
#include "tap.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_trim(void)
{
	char a[] = "  hf_abc \n", b[] = "\r\nhf_a\nbc\r\n", c[] = " \t\n ", d[] = "hf_x";

	tap_ok(strcmp(hf_token_trim(a), "hf_abc") == 0, "spaces and a newline around go");
	tap_ok(strcmp(hf_token_trim(b), "hf_abc") == 0, "every \\r and \\n goes, as _clean_token");
	tap_ok(strcmp(hf_token_trim(c), "") == 0, "only spaces: empty");
	tap_ok(strcmp(hf_token_trim(d), "hf_x") == 0, "a clean token is kept");
}

static void test_env(void)
{
	struct config cfg = {0};
	struct hf_token tok;
	char why[512], how[8192], *header = NULL;
	int rc;

	setenv("HF_TOKEN", "  hf_fromenv\n", 1);
	rc = hf_token_open(&tok, &cfg, why, sizeof(why));
	hf_token_header(&tok, &header, NULL);
	tap_ok(rc == 0 && header && strcmp(header, "Authorization: Bearer hf_fromenv") == 0,
	       "$HF_TOKEN trimmed into the header");
	hf_token_describe(&tok, how, sizeof(how));
	tap_ok(strcmp(how, "with the token from $HF_TOKEN") == 0, "said: %s", how);
	tap_ok(!strstr(how, "hf_fromenv"), "the description holds no token");
	hf_token_free_header(header);
	hf_token_close(&tok);

	setenv("HF_TOKEN", " \n", 1);
	rc = hf_token_open(&tok, &cfg, why, sizeof(why));
	hf_token_header(&tok, &header, NULL);
	hf_token_describe(&tok, how, sizeof(how));
	tap_ok(rc == 0 && !header, "a blank $HF_TOKEN is no token");
	tap_ok(strstr(how, "without a token: $HF_TOKEN is set but empty") != NULL, "said: %s", how);
	hf_token_close(&tok);

	setenv("HF_TOKEN", "hf_a b", 1);
	rc = hf_token_open(&tok, &cfg, why, sizeof(why));
	tap_ok(rc == -EINVAL && strstr(why, "no token has") && !strstr(why, "hf_a"),
	       "a space inside is refused, without showing it: %s", why);
	hf_token_close(&tok);
	unsetenv("HF_TOKEN");
}

static void test_file_changes(const char *dir)
{
	struct config cfg = {0};
	struct hf_token tok;
	char why[512], how[8192], path[PATH_MAX], *header = NULL;
	unsigned g0, g1, g2;
	int rc;

	snprintf(path, sizeof(path), "%s/token", dir);
	rc = hf_token_open(&tok, &cfg, why, sizeof(why));
	hf_token_header(&tok, &header, &g0);
	hf_token_describe(&tok, how, sizeof(how));
	tap_ok(rc == 0 && !header && strstr(how, path), "no file: no token, the file named (%s)",
	       how);

	write_file(path, "hf_first\n");
	hf_token_header(&tok, &header, &g1);
	tap_ok(header && strcmp(header, "Authorization: Bearer hf_first") == 0 && g1 != g0,
	       "a token file written after the start is read at the next use");
	hf_token_free_header(header);

	hf_token_header(&tok, &header, &g2);
	tap_ok(g2 == g1, "an unchanged file keeps the generation");
	hf_token_free_header(header);

	/* Same size, other bytes: the times or the inode tell. */
	unlink(path);
	write_file(path, "hf_other\n");
	hf_token_header(&tok, &header, &g2);
	tap_ok(header && strcmp(header, "Authorization: Bearer hf_other") == 0 && g2 != g1,
	       "a replaced file is read again");
	hf_token_free_header(header);

	write_file(path, "\n");
	hf_token_header(&tok, &header, &g1);
	hf_token_describe(&tok, how, sizeof(how));
	tap_ok(!header && g1 != g2 && strstr(how, "is empty once spaces are trimmed"),
	       "an emptied file is no token, and said so: %s", how);

	unlink(path);
	hf_token_header(&tok, &header, &g2);
	tap_ok(!header, "a removed file is no token");
	hf_token_close(&tok);
	unsetenv("HF_HOME");
}

int main(void)
{
	char dir[] = "/tmp/test_hf_token.XXXXXX";

	if (!mkdtemp(dir))
		return 1;
	/* No token of the machine's own may count. */
	unsetenv("HUGGING_FACE_HUB_TOKEN");
	unsetenv("HF_TOKEN_PATH");
	setenv("HF_HOME", dir, 1);
	test_trim();
	test_env();
	test_file_changes(dir);
	tap_remove_tree(dir);
	return tap_done();
}
