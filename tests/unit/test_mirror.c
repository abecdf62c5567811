/* test_mirror.c: unit tests of mirror.c: the list as -o, the environment and
 * the config file give it, which blobs a mirror may serve, and their URLs.
 * Not for: fetching from mirrors (tests/integration/test_transfers.py). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "mirror.h"
#include "tap.h"

#define SHA256_HEX "9fe5139b42ac1229ffe35c34aafdf54568a4e896e2e2fd9efef1e9858072be6a"

static void refused(const char *text, const char *why_part)
{
	struct mirror_list list = {0};
	char why[256] = "";
	int rc = mirror_list_parse(&list, text, why, sizeof(why));

	tap_ok(rc == -EINVAL && strstr(why, why_part) != NULL, "'%s' refused: %s", text, why);
	mirror_list_free(&list);
}

int main(void)
{
	struct mirror_list list = {0};
	struct digest_spec spec;
	char why[256] = "", *url = NULL;
	int rc;

	rc = mirror_list_parse(&list, " http://10.0.0.5:8080/cache/ https://m.example,http://b ",
	                       why, sizeof(why));
	tap_ok(rc == 0 && list.count == 3, "three mirrors, spaces and commas (%d, %zu)", rc,
	       list.count);
	tap_ok(list.count == 3 && strcmp(list.bases[0], "http://10.0.0.5:8080/cache") == 0 &&
	           strcmp(list.bases[1], "https://m.example") == 0 &&
	           strcmp(list.bases[2], "http://b") == 0,
	       "in order, without a trailing slash");
	rc = mirror_list_parse(&list, "https://m.example/", why, sizeof(why));
	tap_ok(rc == 0 && list.count == 3, "a mirror given twice counts once");
	rc = mirror_list_parse(&list, "", why, sizeof(why));
	tap_ok(rc == 0 && list.count == 3, "an empty text adds nothing");
	mirror_list_free(&list);
	tap_ok(list.count == 0, "freed");

	refused("ftp://m.example/cache", "not a base URL");
	refused("m.example/cache", "not a base URL");
	refused("http://m.example/cache?sig=1", "not a base URL");
	refused("http://m.example/cache#x", "not a base URL");
	refused("http://", "not a base URL");
	refused("http://1 http://2 http://3 http://4 http://5 http://6 http://7 http://8 http://9",
	        "more than 8");

	digest_spec_set(&spec, DIGEST_SHA256, SHA256_HEX);
	tap_ok(mirror_serves(&spec), "a sha256 names the bytes: a mirror may serve them");
	rc = mirror_blob_url("http://10.0.0.5:8080/cache", &spec, &url);
	tap_ok(rc == 0 && url &&
	           strcmp(url, "http://10.0.0.5:8080/cache/blobs/sha256/" SHA256_HEX) == 0,
	       "its URL is the cache's layout: %s", url ? url : "(null)");
	free(url);

	digest_spec_set(&spec, DIGEST_GIT_BLOB_SHA1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	rc = mirror_blob_url("https://m", &spec, &url);
	tap_ok(rc == 0 && url &&
	           strcmp(url,
	                  "https://m/blobs/git-sha1/e69de29bb2d1d6434b8b29ae775ad8c2e48c5391") == 0,
	       "a git blob id too: %s", url ? url : "(null)");
	free(url);

	digest_spec_set(&spec, DIGEST_MD5, "0123456789abcdef0123456789abcdef");
	digest_spec_set_key(&spec, "https://storage.example/weights.h5");
	tap_ok(!mirror_serves(&spec), "an md5 could be forged: no mirror");
	rc = mirror_blob_url("https://m", &spec, &url);
	tap_ok(rc == -ENOENT && url == NULL, "and no URL for it");

	digest_spec_set_prefix(&spec, DIGEST_SHA256, "9fe5139b");
	digest_spec_set_key(&spec, "https://download.pytorch.org/models/x-9fe5139b.pth");
	tap_ok(!mirror_serves(&spec), "a sha256 prefix: no mirror");
	digest_spec_set(&spec, DIGEST_ADLER32, "0a0b0c0d");
	tap_ok(!mirror_serves(&spec), "an Adler-32: no mirror");
	digest_spec_set_none(&spec, DIGEST_SHA256);
	tap_ok(!mirror_serves(&spec), "no digest: no mirror");
	return tap_done();
}
