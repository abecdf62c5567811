/* test_cmd_config.c: unit tests of `omnihub config` and `omnihub where`
 * (cmd_config.c): their text, their JSON, their exit codes. Not for: the
 * settings themselves (test_config.c) or the omnihub dispatcher. */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "cmd.h"
#include "config.h"
#include "core.h"
#include "tap.h"

static char user_path[128];

/* Writes text to dir/name and leaves its name in path (size bytes): 0, or -errno. */
static int write_config(char *path, size_t size, const char *dir, const char *name,
			const char *text)
{
	FILE *f;
	int rc = 0;

	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fputs(text, f) < 0)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Runs one subcommand with its output in memory, into *text (caller's). */
static int run(int (*cmd)(struct cmd_ctx *, int, char **), const struct config *cfg, bool json,
               int argc, char **argv, char **text)
{
	size_t len = 0;
	struct cmd_ctx ctx = {.cfg = cfg, .json = json, .program = "omnihub"};
	int rc;

	*text = NULL;
	ctx.out = open_memstream(text, &len);
	if (!ctx.out)
		return -1;
	rc = cmd(&ctx, argc, argv);
	fclose(ctx.out);
	core_free(ctx.core); /* where --json opens the hubs' core */
	return rc;
}

/* The item of settings with that hub (NULL: general) and key. */
static const cJSON *setting(const cJSON *doc, const char *hub, const char *key)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, cJSON_GetObjectItem(doc, "settings"))
	{
		const cJSON *h = cJSON_GetObjectItem(item, "hub");
		const cJSON *k = cJSON_GetObjectItem(item, "key");
		if (!cJSON_IsString(k) || strcmp(k->valuestring, key) != 0)
			continue;
		if (hub ? cJSON_IsString(h) && strcmp(h->valuestring, hub) == 0 : cJSON_IsNull(h))
			return item;
	}
	return NULL;
}

static const char *field(const cJSON *item, const char *name)
{
	const cJSON *f = item ? cJSON_GetObjectItem(item, name) : NULL;

	return cJSON_IsString(f) ? f->valuestring : cJSON_IsNull(f) ? "(null)" : "(absent)";
}

static void test_config_text(const struct config *cfg)
{
	char *argv[] = {"config", NULL}, *text = NULL, want[256];
	int rc = run(cmd_config, cfg, false, 1, argv, &text);
	int column = -1;
	bool aligned = true;
	size_t lines = 0;

	tap_ok(rc == CMD_EXIT_OK && text, "omnihub config: exit 0");
	snprintf(want, sizeof(want), "# user file: %s\n", user_path);
	tap_ok(text && strstr(text, want) == text, "names the user file first");
	tap_ok(text && strstr(text, "# system file: /nonexistent/system.conf (not found)\n"),
	       "and the system file, not found");
	for (char *line = text; line && *line; line = strchr(line, '\n') + 1) {
		char *eq = strstr(line, " = ");
		if (*line == '#')
			continue;
		lines++;
		if (!eq || strchr(line, '\n') < eq) {
			aligned = false;
			break;
		}
		if (column < 0)
			column = (int)(eq - line);
		aligned = aligned && (int)(eq - line) == column;
	}
	tap_ok(aligned && lines == 18, "%zu settings, '=' aligned", lines);
	snprintf(want, sizeof(want), "# %s:1\n", user_path);
	tap_ok(text && strstr(text, "\nconnections ") && strstr(text, want),
	       "connections with its origin");
	snprintf(want, sizeof(want), "# %s:4\n", user_path);
	tap_ok(text && strstr(text, "\n[onnx] offline") && strstr(text, want),
	       "a per-hub setting as [onnx] offline");
	tap_ok(text && strstr(text, "# environment $OMNIHUB_HOME\n") &&
	           strstr(text, "\ncache_max ") && strstr(text, "# default\n"),
	       "environment and default origins");
	tap_ok(text && !strstr(text, "secret"), "no secret printed");
	free(text);
}

static void test_config_json(const struct config *cfg)
{
	char *argv[] = {"config", NULL}, *text = NULL, want[256];
	int rc = run(cmd_config, cfg, true, 1, argv, &text);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	const cJSON *files = cJSON_GetObjectItem(doc, "files");

	tap_ok(rc == CMD_EXIT_OK && doc, "omnihub config --json: one JSON document");
	tap_ok(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "settings")) == 18, "18 settings");
	tap_ok(strcmp(field(setting(doc, NULL, "cache"), "value"), "/env/cache") == 0 &&
	           strcmp(field(setting(doc, NULL, "cache"), "origin"),
	                  "environment $OMNIHUB_HOME") == 0,
	       "cache: value and origin");
	snprintf(want, sizeof(want), "%s:1", user_path);
	tap_ok(strcmp(field(setting(doc, NULL, "connections"), "value"), "2") == 0 &&
	           strcmp(field(setting(doc, NULL, "connections"), "origin"), want) == 0,
	       "connections from the file");
	tap_ok(strcmp(field(setting(doc, NULL, "cacert"), "value"), "(null)") == 0,
	       "cacert unset: null");
	snprintf(want, sizeof(want), "%s:4", user_path);
	tap_ok(strcmp(field(setting(doc, "onnx", "offline"), "value"), "yes") == 0 &&
	           strcmp(field(setting(doc, "onnx", "offline"), "origin"), want) == 0,
	       "[onnx] offline: hub \"onnx\", key \"offline\"");
	tap_ok(strcmp(field(setting(doc, NULL, "onnx_url"), "value"), "https://me:***@h/") == 0,
	       "hub option, its password hidden");
	tap_ok(strcmp(field(files, "user"), user_path) == 0 &&
	           strcmp(field(files, "system"), "/nonexistent/system.conf") == 0,
	       "files: user and system");
	tap_ok(text && !strstr(text, "secret"), "no secret in the JSON");
	cJSON_Delete(doc);
	free(text);
}

static void test_where(const struct config *cfg)
{
	char *argv[] = {"where", NULL}, *extra[] = {"where", "now", NULL}, *text = NULL;
	cJSON *doc;
	int rc;

	rc = run(cmd_where, cfg, false, 1, argv, &text);
	tap_ok(rc == CMD_EXIT_OK && text && strcmp(text, "/env/cache\n") == 0,
	       "omnihub where: the cache directory");
	free(text);
	rc = run(cmd_where, cfg, true, 1, argv, &text);
	doc = text ? cJSON_Parse(text) : NULL;
	tap_ok(rc == CMD_EXIT_OK && strcmp(field(doc, "cache"), "/env/cache") == 0,
	       "omnihub where --json: {\"cache\": PATH}");
	cJSON_Delete(doc);
	free(text);
	rc = run(cmd_where, cfg, false, 2, extra, &text);
	tap_ok(rc == CMD_EXIT_USAGE && text && !*text, "omnihub where now: usage error, no output");
	free(text);
	rc = run(cmd_config, cfg, false, 2, extra, &text);
	tap_ok(rc == CMD_EXIT_USAGE, "omnihub config with an argument: usage error");
	free(text);
}


/* Every URL's user information hidden in `omnihub config`, wherever it is
 * set and whatever holds it: a mirror list, the proxy, a hub option, a
 * per-hub setting, a URL libcurl cannot parse. */
static void test_secrets(const char *dir)
{
	struct config_hub_option hub_options[] = {
		{"hf_endpoint", "https://secret4token@hf.lan/"},
		{"onnx_index_url", "https://u:secret6@[::1/index.json"},
		{"onnx_url", "http://u:sec/ret8@h.lan/models/"},
	};
	struct config_options opts = {.hubs = &hub_registry_options,
		.mirror = "http://m1:secret1@a.lan/c http://secret2@b.lan",
		.proxy = "http://u:secret3@p.lan:3128",
		.hub_options = hub_options,
		.nhub_options = 3,
	};
	char *argv[] = {"config", NULL}, *text = NULL, path[256];
	struct config cfg;
	const char *why = NULL;
	cJSON *doc;
	int rc;

	if (write_config(path, sizeof(path), dir, "with-passwords",
			 "convert = pth:onnx:get https://me:secret7@h/m/?x=1\n"
			 "[torchvision]\nconvert = pth:onnx:get http://u:secret5@x.lan/y $1 $2\n") != 0)
		return;
	setenv("OMNIHUB_CONFIG", path, 1);
	rc = config_resolve(&cfg, &opts, &why);
	tap_ok(rc == 0, "a config with passwords in URLs resolves (%s)", why ? why : "");
	if (rc)
		goto out;
	rc = run(cmd_config, &cfg, true, 1, argv, &text);
	doc = text ? cJSON_Parse(text) : NULL;
	tap_ok(rc == CMD_EXIT_OK && doc && !strstr(text, "secret"), "no password in the JSON");
	tap_ok(strcmp(field(setting(doc, NULL, "mirror"), "value"),
	              "http://m1:***@a.lan/c http://***@b.lan") == 0,
	       "mirrors: user:*** and a lone user (a token) as *** (%s)",
	       field(setting(doc, NULL, "mirror"), "value"));
	tap_ok(strcmp(field(setting(doc, NULL, "proxy"), "value"), "http://u:***@p.lan:3128") == 0,
	       "proxy: http://u:***@p.lan:3128 (%s)", field(setting(doc, NULL, "proxy"), "value"));
	tap_ok(strcmp(field(setting(doc, NULL, "hf_endpoint"), "value"), "https://***@hf.lan/") == 0,
	       "hf_endpoint: a token as the user hidden (%s)",
	       field(setting(doc, NULL, "hf_endpoint"), "value"));
	tap_ok(strcmp(field(setting(doc, NULL, "onnx_url"), "value"), "http://***@h.lan/models/") == 0,
	       "a '/' in a password libcurl refuses: hidden too (%s)",
	       field(setting(doc, NULL, "onnx_url"), "value"));
	tap_ok(strcmp(field(setting(doc, NULL, "onnx_index_url"), "value"),
	              "https://***@[::1/index.json") == 0,
	       "a URL libcurl refuses: its user information hidden all the same (%s)",
	       field(setting(doc, NULL, "onnx_index_url"), "value"));
	tap_ok(strcmp(field(setting(doc, NULL, "convert"), "value"),
	              "pth:onnx:get https://me:***@h/m/?x=1") == 0,
	       "a file's URL: path and query kept (%s)", field(setting(doc, NULL, "convert"), "value"));
	tap_ok(strcmp(field(setting(doc, "torchvision", "convert"), "value"),
	              "pth:onnx:get http://u:***@x.lan/y $1 $2") == 0,
	       "a URL inside a per-hub setting (%s)",
	       field(setting(doc, "torchvision", "convert"), "value"));
	cJSON_Delete(doc);
	free(text);
	rc = run(cmd_config, &cfg, false, 1, argv, &text);
	tap_ok(rc == CMD_EXIT_OK && text && !strstr(text, "secret") &&
	           strstr(text, "http://u:***@p.lan:3128  "),
	       "no password in the text either");
	free(text);
	tap_ok(strcmp(config_hub_option(&cfg, "hf_endpoint"), "https://secret4token@hf.lan/") == 0 &&
	           strcmp(cfg.proxy, "http://u:secret3@p.lan:3128") == 0,
	       "the hubs and the transfers still get the real URLs");
	config_free(&cfg);
out:
	unlink(path);
	setenv("OMNIHUB_CONFIG", user_path, 1);
}


/* omnihub config --check: every problem, one line each; exit 2 when any. */
static void test_check(const char *dir)
{
	struct config_options bad = {.hubs = &hub_registry_options, .retries = "99999999999", .connections = "0"};
	struct config_options none = { .hubs = &hub_registry_options };
	struct cmd_ctx ctx = {.program = "omnihub"};
	char path[256], want[1024], *text = NULL;
	size_t len = 0;
	cJSON *doc;
	int rc;

	if (write_config(path, sizeof(path), dir, "check.conf",
			 "stall_timeout = 0\nmirror = http://u:pw1@a.lan/ ftp://v:pw2@b.lan/\n") != 0)
		return;
	setenv("OMNIHUB_CONFIG", path, 1);
	ctx.out = open_memstream(&text, &len);
	rc = ctx.out ? cmd_config_check(&ctx, &bad) : -1;
	if (ctx.out)
		fclose(ctx.out);
	snprintf(want, sizeof(want),
	         "%s:1: stall_timeout: 0 is out of range (1 to 86400 seconds)\n"
	         "-o connections: 0 is out of range (1 to 64)\n"
	         "-o retries: 99999999999 is out of range (0 to 100)\n"
	         "%s:2: mirror 'ftp://***@b.lan': not a base URL (http:// or https://, "
	         "without ? or #)\n"
	         "4 problems\n",
	         path, path);
	tap_ok(rc == CMD_EXIT_USAGE && text && strcmp(text, want) == 0,
	       "config --check: each problem on a line, exit 2:\n%s", text ? text : "");
	free(text);
	text = NULL;
	ctx.json = true;
	ctx.out = open_memstream(&text, &len);
	rc = ctx.out ? cmd_config_check(&ctx, &bad) : -1;
	if (ctx.out)
		fclose(ctx.out);
	doc = text ? cJSON_Parse(text) : NULL;
	tap_ok(rc == CMD_EXIT_USAGE && cJSON_GetArraySize(cJSON_GetObjectItem(doc, "problems")) == 4 &&
	           !strstr(text, "pw2"),
	       "config --check --json: {\"problems\": [4 sentences]}, no password");
	cJSON_Delete(doc);
	free(text);
	text = NULL;
	ctx.json = false;
	setenv("OMNIHUB_CONFIG", user_path, 1);
	ctx.out = open_memstream(&text, &len);
	rc = ctx.out ? cmd_config_check(&ctx, &none) : -1;
	if (ctx.out)
		fclose(ctx.out);
	tap_ok(rc == CMD_EXIT_OK && text && strcmp(text, "no problem found\n") == 0,
	       "config --check: good settings, exit 0 (%s)", text ? text : "");
	free(text);
	unlink(path);
}

int main(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	char dir[] = "/tmp/omnihub-test-cmd-config-XXXXXX";
	struct config cfg;
	const char *why = NULL;

	if (!mkdtemp(dir))
		return 1;
	if (write_config(user_path, sizeof(user_path), dir, "config",
			 "connections = 2\nonnx_url = https://me:secret@h/\n[onnx]\noffline = yes\n") != 0)
		return 1;
	setenv("HOME", "/home/u", 1);
	setenv("OMNIHUB_HOME", "/env/cache", 1);
	setenv("OMNIHUB_CONFIG", user_path, 1);
	setenv("OMNIHUB_SYSTEM_CONFIG", "/nonexistent/system.conf", 1);
	unsetenv("OMNIHUB_OFFLINE");
	unsetenv("CURL_CA_BUNDLE");
	unsetenv("OMNIHUB_ONNX_URL");
	unsetenv("OMNIHUB_ONNX_INDEX_URL");
	unsetenv("HF_ENDPOINT");
	tap_ok(config_resolve(&cfg, &none, &why) == 0, "resolved (%s)", why ? why : "");
	test_config_text(&cfg);
	test_config_json(&cfg);
	test_where(&cfg);
	config_free(&cfg);
	test_secrets(dir);
	test_check(dir);
	tap_ok(tap_remove_tree(dir) == 0, "temporary files removed");
	return tap_done();
}
