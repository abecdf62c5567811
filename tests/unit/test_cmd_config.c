/* test_cmd_config.c: unit tests of `omnihub config` and `omnihub where`
 * (cmd_config.c): their text, their JSON, their exit codes. Not for: the
 * settings themselves (test_config.c) or the omnihub dispatcher. */
#include "build_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "cmd.h"
#include "config.h"
#include "tap.h"

static char user_path[128];

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
	tap_ok(aligned && lines == 17, "%zu settings, '=' aligned", lines);
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
	tap_ok(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "settings")) == 17, "17 settings");
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

int main(void)
{
	struct config_options none = {.index_ttl = CONFIG_INDEX_TTL_UNSET, .retries = -1};
	char dir[] = "/tmp/omnihub-test-cmd-config-XXXXXX";
	struct config cfg;
	const char *why = NULL;
	FILE *f;

	if (!mkdtemp(dir))
		return 1;
	snprintf(user_path, sizeof(user_path), "%s/config", dir);
	f = fopen(user_path, "w");
	if (!f)
		return 1;
	fputs("connections = 2\nonnx_url = https://me:secret@h/\n[onnx]\noffline = yes\n", f);
	fclose(f);
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
	tap_ok(tap_remove_tree(dir) == 0, "temporary files removed");
	return tap_done();
}
