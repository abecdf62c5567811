/* test_config.c: unit tests of config.c and conffile.c: options over
 * environment over the user's file over the system's over defaults, the
 * files' syntax and its errors, origins. Not for: option parsing (main.c,
 * through libfuse) or other clients' caches (test_client_cache.c). */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "conffile.h"
#include "hub.h"
#include "tap.h"

static const char *const variables[] = {
	"HOME", "XDG_CACHE_HOME", "OMNIHUB_HOME", "MODELHUB_PATH", "OMNIHUB_OFFLINE",
	"OMNIHUB_ONNX_INDEX_URL", "OMNIHUB_ONNX_URL", "CURL_CA_BUNDLE",
	"XDG_CONFIG_HOME", "OMNIHUB_CONFIG", "OMNIHUB_SYSTEM_CONFIG",
	"HF_ENDPOINT",
};

static void clear_environment(void)
{
	for (size_t i = 0; i < sizeof(variables) / sizeof(variables[0]); i++)
		unsetenv(variables[i]);
	setenv("HOME", "/home/u", 1);
	/* Never the machine's own /etc/omnihub/config. */
	setenv("OMNIHUB_SYSTEM_CONFIG", "/nonexistent/omnihub/config", 1);
}

static int resolve(struct config *cfg, const struct config_options *opts)
{
	const char *why = NULL;
	return config_resolve(cfg, opts, &why);
}

/* ---- the config files ---- */

static char dir[64];
static char user_path[128], system_path[128];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Both files, "" for none; then resolves with opts. */
static int resolve_files(struct config *cfg, const struct config_options *opts,
			 const char *user, const char *system, const char **why)
{
	const char *ignored;

	unlink(user_path);
	unlink(system_path);
	if (*user)
		write_file(user_path, user);
	if (*system)
		write_file(system_path, system);
	setenv("OMNIHUB_CONFIG", user_path, 1);
	setenv("OMNIHUB_SYSTEM_CONFIG", system_path, 1);
	return config_resolve(cfg, opts, why ? why : &ignored);
}

struct described {
	char key[64];
	char origin[256];
	char value[256];
	bool has_value;
	int count;
	int leaked; /* values that hold "secret" */
};

static void describe_one(void *ctx, const char *hub, const char *key, const char *value,
			 const char *origin)
{
	struct described *d = ctx;
	char full[96];

	snprintf(full, sizeof(full), "%s%s%s%s", hub ? "[" : "", hub ? hub : "", hub ? "] " : "",
		 key);
	d->leaked += value && strstr(value, "secret") != NULL;
	if (strcmp(full, d->key) != 0)
		return;
	d->count++;
	snprintf(d->origin, sizeof(d->origin), "%s", origin);
	snprintf(d->value, sizeof(d->value), "%s", value ? value : "");
	d->has_value = value != NULL;
}

/* The origin config_describe gives key ("[hub] key" for a hub's own), or
 * "(absent)" / "(twice)". */
static const char *origin_of(const struct config *cfg, const char *key)
{
	static struct described d;

	memset(&d, 0, sizeof(d));
	snprintf(d.key, sizeof(d.key), "%s", key);
	config_describe(cfg, describe_one, &d);
	if (d.count == 0)
		return "(absent)";
	return d.count == 1 ? d.origin : "(twice)";
}

static const char *value_of(const struct config *cfg, const char *key)
{
	static struct described d;

	memset(&d, 0, sizeof(d));
	snprintf(d.key, sizeof(d.key), "%s", key);
	config_describe(cfg, describe_one, &d);
	return d.count == 1 && d.has_value ? d.value : "(none)";
}

static bool origin_is(const struct config *cfg, const char *key, const char *path, int line)
{
	char want[256];

	if (path)
		snprintf(want, sizeof(want), "%s:%d", path, line);
	return strcmp(origin_of(cfg, key), path ? want : "default") == 0;
}

/* A bad line's sentence, exactly: "<file>:<line>: <what>". */
static void check_bad(const char *user, const char *system, const char *file, int line,
		      const char *what)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config cfg;
	const char *why = NULL;
	char want[512];
	int rc = resolve_files(&cfg, &none, user, system, &why);

	snprintf(want, sizeof(want), "%s:%d: %s", file, line, what);
	tap_ok(rc == -EINVAL && why && strcmp(why, want) == 0, "bad line: %s (got: %s)", want,
	       why ? why : "(nothing)");
	tap_ok(cfg.cache_dir == NULL && cfg.nhub_options == 0, "nothing kept after a bad line");
	config_free(&cfg);
}

static void test_precedence(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config_options given = { .hubs = &hub_registry_options, .cache = "/opt/cache", .offline = 1, .index_ttl = "5" };
	struct config_hub_option endpoint = { "hf_endpoint", "http://option/" };
	struct config_options with_endpoint = { .hubs = &hub_registry_options, .hub_options = &endpoint,
						.nhub_options = 1 };
	const char *system = "# the system's\n"
			     "cache = /sys/cache\n"
			     "connections = 3\n"
			     "index_ttl = 100\n"
			     "[huggingface]\n"
			     "endpoint = http://system/\n"
			     "[onnx]\n"
			     "offline = yes\n"
			     "index_ttl = 7\n";
	const char *user = "cache = /user/cache\n"
			   "hf_endpoint = http://user/\n"
			   "\n"
			   "[onnx]\n"
			   "offline = no\n";
	struct config cfg;

	/* Default, then the system's file. */
	resolve_files(&cfg, &none, "", "", NULL);
	tap_ok(strcmp(cfg.cache_dir, "/home/u/.omnihub") == 0 && origin_is(&cfg, "cache", NULL, 0),
	       "no file: the default cache, origin default (%s)", origin_of(&cfg, "cache"));
	tap_ok(!cfg.user_file_found && !cfg.system_file_found &&
		       strcmp(cfg.user_file, user_path) == 0 &&
		       strcmp(cfg.system_file, system_path) == 0,
	       "missing files are no error; $OMNIHUB_CONFIG and $OMNIHUB_SYSTEM_CONFIG name them");
	tap_ok(config_hub_option(&cfg, "hf_endpoint") == NULL &&
		       strcmp(origin_of(&cfg, "hf_endpoint"), "(absent)") == 0,
	       "a hub option not set is not described");
	config_free(&cfg);

	resolve_files(&cfg, &none, "", system, NULL);
	tap_ok(cfg.system_file_found && strcmp(cfg.cache_dir, "/sys/cache") == 0 &&
		       origin_is(&cfg, "cache", system_path, 2),
	       "system file over the default (%s)", origin_of(&cfg, "cache"));
	tap_ok(cfg.connections == 3 && origin_is(&cfg, "connections", system_path, 3),
	       "connections from the system file");
	tap_ok(strcmp(config_hub_option(&cfg, "hf_endpoint"), "http://system/") == 0 &&
		       origin_is(&cfg, "hf_endpoint", system_path, 6),
	       "[huggingface] endpoint is hf_endpoint");
	tap_ok(config_hub_offline(&cfg, "onnx") && !config_hub_offline(&cfg, "huggingface") &&
		       !cfg.offline && origin_is(&cfg, "[onnx] offline", system_path, 8),
	       "[onnx] offline = yes: onnx only");
	tap_ok(config_hub_index_ttl(&cfg, "onnx") == 7 &&
		       config_hub_index_ttl(&cfg, "huggingface") == 100 &&
		       config_hub_index_ttl(&cfg, "torchvision") == 100 && cfg.index_ttl == 100,
	       "[onnx] index_ttl over the general index_ttl, for onnx only");
	config_free(&cfg);

	resolve_files(&cfg, &none, user, system, NULL);
	tap_ok(cfg.user_file_found && strcmp(cfg.cache_dir, "/user/cache") == 0 &&
		       origin_is(&cfg, "cache", user_path, 1),
	       "user file over the system file (%s)", origin_of(&cfg, "cache"));
	tap_ok(cfg.connections == 3, "what the user file does not set comes from the system's");
	tap_ok(strcmp(config_hub_option(&cfg, "hf_endpoint"), "http://user/") == 0 &&
		       origin_is(&cfg, "hf_endpoint", user_path, 2),
	       "hf_endpoint: the user file's");
	tap_ok(!config_hub_offline(&cfg, "onnx") && origin_is(&cfg, "[onnx] offline", user_path, 5),
	       "[onnx] offline: the user file's no over the system's yes");
	config_free(&cfg);

	setenv("OMNIHUB_HOME", "/env/cache", 1);
	setenv("HF_ENDPOINT", "http://env/", 1);
	setenv("OMNIHUB_OFFLINE", "1", 1);
	resolve_files(&cfg, &none, user, system, NULL);
	tap_ok(strcmp(cfg.cache_dir, "/env/cache") == 0 &&
		       strcmp(origin_of(&cfg, "cache"), "environment $OMNIHUB_HOME") == 0,
	       "environment over the files (%s)", origin_of(&cfg, "cache"));
	tap_ok(strcmp(config_hub_option(&cfg, "hf_endpoint"), "http://env/") == 0 &&
		       strcmp(origin_of(&cfg, "hf_endpoint"), "environment $HF_ENDPOINT") == 0,
	       "$HF_ENDPOINT over the files");
	tap_ok(config_hub_offline(&cfg, "onnx") && config_hub_offline(&cfg, "huggingface") &&
		       strcmp(origin_of(&cfg, "[onnx] offline"), "(absent)") == 0,
	       "$OMNIHUB_OFFLINE=1 over [onnx] offline = no, and the override is not listed");
	config_free(&cfg);
	setenv("OMNIHUB_OFFLINE", "0", 1);
	resolve_files(&cfg, &none, "offline = yes\n[onnx]\noffline = yes\n", "", NULL);
	tap_ok(!cfg.offline && !config_hub_offline(&cfg, "onnx") &&
		       strcmp(origin_of(&cfg, "offline"), "environment $OMNIHUB_OFFLINE") == 0,
	       "$OMNIHUB_OFFLINE=0 over offline = yes in a file");
	config_free(&cfg);

	resolve_files(&cfg, &given, user, system, NULL);
	tap_ok(strcmp(cfg.cache_dir, "/opt/cache") == 0 &&
		       strcmp(origin_of(&cfg, "cache"), "option") == 0,
	       "option over the environment");
	tap_ok(cfg.offline && config_hub_offline(&cfg, "onnx") &&
		       strcmp(origin_of(&cfg, "offline"), "option") == 0,
	       "-o offline over all");
	tap_ok(config_hub_index_ttl(&cfg, "onnx") == 5 && cfg.index_ttl == 5 &&
		       strcmp(origin_of(&cfg, "index_ttl"), "option") == 0,
	       "-o index_ttl=5 over the files' general and [onnx] values");
	config_free(&cfg);
	resolve_files(&cfg, &with_endpoint, user, system, NULL);
	tap_ok(strcmp(config_hub_option(&cfg, "hf_endpoint"), "http://option/") == 0 &&
		       strcmp(origin_of(&cfg, "hf_endpoint"), "option") == 0,
	       "-o hf_endpoint over $HF_ENDPOINT");
	tap_ok(cfg.index_ttl == 100, "index_ttl not given: the file's");
	config_free(&cfg);
	unsetenv("OMNIHUB_HOME");
	unsetenv("HF_ENDPOINT");
	unsetenv("OMNIHUB_OFFLINE");

	/* Per-hub connections and stream, for a hub made from a catalog. */
	resolve_files(&cfg, &none,
		      "stream = on\nconnections = 4\n[torchvision]\nconnections = 2\nstream = off\n",
		      "", NULL);
	tap_ok(config_hub_connections(&cfg, "torchvision") == 2 &&
		       config_hub_connections(&cfg, "onnx") == 4 &&
		       !config_hub_stream(&cfg, "torchvision") && config_hub_stream(&cfg, "onnx"),
	       "[torchvision] connections and stream for it alone");
	tap_ok(strcmp(value_of(&cfg, "[torchvision] connections"), "2") == 0 &&
		       origin_is(&cfg, "[torchvision] connections", user_path, 4),
	       "per-hub settings described with their hub");
	config_free(&cfg);

	/* A catalog hub's own converters: lines add up, for that hub alone,
	 * from whichever file sets them; a hub with an option table of its
	 * own (onnx) has no convert. */
	tap_ok(resolve_files(&cfg, &none,
			     "convert = h5:onnx:general\n[torchvision]\nconvert = pth:onnx:a b\n"
			     "convert = pth:txt:c\n",
			     "[keras]\nconvert = h5:onnx:mine\n", NULL) == 0,
	       "convert in catalog hubs' sections");
	tap_ok(strcmp(config_hub_convert(&cfg, "torchvision"), "pth:onnx:a b,pth:txt:c") == 0 &&
		       strcmp(config_hub_convert(&cfg, "keras"), "h5:onnx:mine") == 0 &&
		       config_hub_convert(&cfg, "tfhub") == NULL &&
		       strcmp(config_hub_option(&cfg, "convert"), "h5:onnx:general") == 0,
	       "each hub's converters, and the general ones apart");
	config_free(&cfg);
	check_bad("[onnx]\nconvert = onnx:txt:x\n", "", user_path, 2,
		  "[onnx]: unknown key \"convert\"");
}

static void test_lists_and_values(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config_hub_option convert = { "convert", "o:p:cmd" };
	struct config_options with_convert = { .hubs = &hub_registry_options, .hub_options = &convert,
					       .nhub_options = 1 };
	const char *lists = "convert = onnx:ort:a $1 $2\n"
			    "hf_repos = a/b\n"
			    "[catalogs]\n"
			    "convert = h5:onnx:b\n"
			    "[huggingface]\n"
			    "repos = c/d,e/f\n";
	struct config cfg;
	const char *why;

	resolve_files(&cfg, &none, lists, "convert = sys:x:y\nhf_repos = s/s\n", NULL);
	tap_ok(strcmp(config_hub_option(&cfg, "convert"), "onnx:ort:a $1 $2,h5:onnx:b") == 0,
	       "convert on two lines adds up: %s", config_hub_option(&cfg, "convert"));
	tap_ok(strcmp(config_hub_option(&cfg, "hf_repos"), "a/b,c/d,e/f") == 0,
	       "hf_repos and [huggingface] repos add up: %s", config_hub_option(&cfg, "hf_repos"));
	{
		char want[256];
		snprintf(want, sizeof(want), "%s:1,4", user_path);
		tap_ok(strcmp(origin_of(&cfg, "convert"), want) == 0,
		       "a list's origin names each line (%s)", origin_of(&cfg, "convert"));
	}
	config_free(&cfg);
	resolve_files(&cfg, &with_convert, lists, "", NULL);
	tap_ok(strcmp(config_hub_option(&cfg, "convert"), "o:p:cmd") == 0,
	       "-o convert replaces the files' list");
	config_free(&cfg);

	resolve_files(&cfg, &none,
		      "\xef\xbb\xbf; a comment\r\n"
		      "cache = \"/a dir/with # hash\"  # a comment\r\n"
		      "cacert = /etc/x#1 # not part of it\n"
		      "  hf_endpoint=\"http://q/\\\"x\\\\\"\n"
		      "hf_token_file = ~/tok\n"
		      "stream = TRUE\n"
		      "piece_size = 8MiB\n"
		      "cache_max = 50G\n"
		      "max_unpack_size = 1T\n"
		      "retries = 0\n"
		      "stall_timeout = 9\n"
		      "max_unpack_ratio = 3\n"
		      "\t\n",
		      "", &why);
	tap_ok(cfg.cache_dir && strcmp(cfg.cache_dir, "/a dir/with # hash") == 0,
	       "a quoted value keeps its blanks and '#' (%s)", cfg.cache_dir ? cfg.cache_dir : why);
	tap_ok(cfg.cacert && strcmp(cfg.cacert, "/etc/x#1") == 0,
	       "an unquoted value ends at a blank and '#'");
	tap_ok(cfg.cache_dir &&
		       strcmp(config_hub_option(&cfg, "hf_endpoint"), "http://q/\"x\\") == 0,
	       "escapes in quotes");
	tap_ok(cfg.cache_dir && strcmp(config_hub_option(&cfg, "hf_token_file"), "/home/u/tok") == 0,
	       "~/ is $HOME in a FILE option");
	tap_ok(cfg.stream && cfg.piece_size == (8u << 20) && cfg.cache_max == (50ull << 30) &&
		       cfg.max_unpack_size == (1ull << 40) && cfg.retries == 0 &&
		       cfg.stall_timeout == 9 && cfg.max_unpack_ratio == 3,
	       "every general setting from a file");
	tap_ok(strcmp(value_of(&cfg, "piece_size"), "8M") == 0 &&
		       strcmp(value_of(&cfg, "cache_max"), "50G") == 0 &&
		       strcmp(value_of(&cfg, "stream"), "yes") == 0,
	       "described as written: sizes with units, booleans yes/no");
	config_free(&cfg);

	{
		static const char *const yes[] = { "yes", "true", "on", "1", "Yes", "ON" };
		static const char *const no[] = { "no", "false", "off", "0", "NO", "False" };
		bool all = true, value;
		for (size_t i = 0; i < 6; i++)
			all = all && config_parse_bool(yes[i], &value) == 0 && value &&
			      config_parse_bool(no[i], &value) == 0 && !value;
		tap_ok(all && config_parse_bool("maybe", &value) == -EINVAL &&
			       config_parse_bool("", &value) == -EINVAL,
		       "booleans: yes/no true/false on/off 1/0, any case");
	}

	/* No secret is printed: a URL's password is hidden. */
	resolve_files(&cfg, &none, "onnx_url = https://me:secret@host/models/\n", "", NULL);
	{
		struct described d = { .key = "onnx_url" };
		config_describe(&cfg, describe_one, &d);
		tap_ok(d.leaked == 0 && strcmp(d.value, "https://me:***@host/models/") == 0,
		       "a URL's password is not described (%s)", d.value);
		tap_ok(strcmp(config_hub_option(&cfg, "onnx_url"), "https://me:secret@host/models/") ==
			       0,
		       "but the hub gets it");
	}
	config_free(&cfg);

	/* Every general setting is described, defaults too. */
	resolve_files(&cfg, &none, "", "", NULL);
	{
		static const char *const general[] = {
			"cache", "cacert", "offline", "index_ttl", "stream", "connections",
			"piece_size", "cache_max", "retries", "stall_timeout", "max_unpack_ratio",
			"max_unpack_size", "retry_time", "memory_max",
		};
		bool all = true;
		for (size_t i = 0; i < sizeof(general) / sizeof(general[0]); i++)
			all = all && strcmp(origin_of(&cfg, general[i]), "default") == 0;
		tap_ok(all, "every general setting described, with origin default");
		tap_ok(strcmp(value_of(&cfg, "cacert"), "(none)") == 0 &&
			       strcmp(value_of(&cfg, "connections"), "8") == 0 &&
			       strcmp(value_of(&cfg, "piece_size"), "4M") == 0,
		       "defaults' values: cacert none, connections 8, piece_size 4M");
	}
	config_free(&cfg);
}

static void test_bad_lines(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config cfg;
	const char *why = NULL;
	int rc;

	check_bad("# fine\n\ncache = /c\noffline = no\nstream = yes\nconnections = 2\n"
		  "connections = lots\n",
		  "", user_path, 7, "connections: \"lots\" is not a number (1 to 64)");
	check_bad("connections = 65\n", "", user_path, 1, "connections: 65 is out of range (1 to 64)");
	check_bad("connections = 0\n", "", user_path, 1, "connections: 0 is out of range (1 to 64)");
	check_bad("frobnicate = 1\n", "", user_path, 1, "unknown key \"frobnicate\"");
	check_bad("[onnx]\nurl = http://x/\nfrob = 1\n", "", user_path, 3,
		  "[onnx]: unknown key \"frob\"");
	check_bad("[huggingface-datasets]\nendpoint = http://x/\n", "", user_path, 2,
		  "[huggingface-datasets]: unknown key \"endpoint\"");
	check_bad("[onnx]\npiece_size = 1M\n", "", user_path, 2,
		  "[onnx]: piece_size is not set per hub: put it before the first [section]");
	check_bad("[onnx]\ncache = data/onnx\n", "", user_path, 2,
		  "cache: \"data/onnx\" is not an absolute path (nor ~/...)");
	check_bad("[onnx]\ncache_max = 1G\n", "", user_path, 2,
		  "[onnx]: cache_max per hub needs the hub's own cache directory (cache in [onnx])");
	check_bad("[onnx]\ncache_max = lots\n", "", user_path, 2,
		  "cache_max: \"lots\" is not a size (0 to 1024T; bytes, or with K, M, G or T: say 4M)");
	check_bad("[Hugging Face]\n", "", user_path, 1,
		  "[Hugging Face]: a section is named after a hub (lowercase letters, digits, '.', "
		  "'_' and '-')");
	check_bad("[onnx\n", "", user_path, 1, "\"[onnx\": a section line is [name], alone on its line");
	check_bad("just some words\n", "", user_path, 1,
		  "\"just some words\" is not \"key = value\", a [section] or a comment");
	check_bad("cache /x\n", "", user_path, 1,
		  "\"cache /x\" is not \"key = value\", a [section] or a comment");
	check_bad("cache =\n", "", user_path, 1, "cache: no value after '=' (an empty one is \"\")");
	check_bad("cache = \"\"\n", "", user_path, 1, "cache: the value is empty");
	check_bad("cache = \"/open\n", "", user_path, 1, "cache: the quote is not closed");
	check_bad("cache = \"/a\" b\n", "", user_path, 1,
		  "cache: there is more after the closing quote");
	check_bad("cache = \"/a\\q\"\n", "", user_path, 1,
		  "cache: \\q in quotes is no escape (\\\" \\\\ \\n \\t are)");
	check_bad("cache = relative/dir\n", "", user_path, 1,
		  "cache: \"relative/dir\" is not an absolute path (nor ~/...)");
	check_bad("catalogs = /a,b\n", "", user_path, 1,
		  "catalogs: \"b\" is not an absolute path (nor ~/...)");
	check_bad("offline = maybe\n", "", user_path, 1, "offline: \"maybe\" is not yes or no (yes/no, true/false, on/off or 1/0)");
	check_bad("piece_size = 4Q\n", "", user_path, 1,
		  "piece_size: \"4Q\" is not a size (64K to 1G; bytes, or with K, M, G or T: say 4M)");
	check_bad("piece_size = 1K\n", "", user_path, 1,
		  "piece_size: 1K is out of range (64K to 1G)");
	check_bad("max_unpack_size = 0\n", "", user_path, 1, "max_unpack_size: 0 is out of range (1 to 1024T)");
	check_bad("index_ttl = -1\n", "", user_path, 1, "index_ttl: \"-1\" is not a number of seconds (0 to 31536000 seconds)");
	check_bad("", "cache = /ok\nretries = 3x\n", system_path, 2,
		  "retries: \"3x\" is not a number (0 to 100)");
	check_bad("cache = /ok\n", "[onnx]\nindex_ttl = soon\n", system_path, 2,
		  "index_ttl: \"soon\" is not a number of seconds (0 to 31536000 seconds)");

	/* An option's bad value names the key too. */
	{
		struct config_options bad = { .hubs = &hub_registry_options, .piece_size = "3X" };
		rc = resolve_files(&cfg, &bad, "", "", &why);
		tap_ok(rc == -EINVAL && strstr(why, "-o piece_size: \"3X\" is not a size (64K to 1G") == why,
		       "-o piece_size=3X: %s", why);
		config_free(&cfg);
	}

	/* Unreadable: an error, unlike a missing file. */
	setenv("OMNIHUB_CONFIG", dir, 1);
	rc = config_resolve(&cfg, &none, &why);
	{
		char want[256];
		snprintf(want, sizeof(want), "cannot read %s: Is a directory", dir);
		tap_ok(rc == -EISDIR && why && strcmp(why, want) == 0, "unreadable file: %s", why);
	}
	config_free(&cfg);

	/* A section that names no hub this build has waits for the catalogs. */
	rc = resolve_files(&cfg, &none, "[torchvision]\noffline = yes\n[torchvisoin]\nstream = on\n",
			   "", &why);
	tap_ok(rc == 0, "sections of hubs made from catalogs are taken");
	{
		const char *hubs[] = { "onnx", "huggingface", "torchvision" };
		const char *all[] = { "torchvision", "torchvisoin" };
		char check_why[512] = "", want[512];
		snprintf(want, sizeof(want), "%s:3: [torchvisoin]: no hub has this name", user_path);
		tap_ok(config_check_sections(&cfg, hubs, 3, check_why, sizeof(check_why)) ==
				       -EINVAL &&
			       strcmp(check_why, want) == 0,
		       "config_check_sections: %s", check_why);
		tap_ok(config_check_sections(&cfg, all, 2, check_why, sizeof(check_why)) == 0,
		       "config_check_sections: all known");
	}
	config_free(&cfg);
}


/* ---- every numeric setting's bounds, through config_resolve ---- */

struct bounds {
	const char *key;
	const char *min, *max, *above; /* above: max + 1 (NULL: max is 0's below) */
	const char *range;             /* as the refusal says it */
	const char *below;             /* min - 1, or NULL when min is 0 */
};

static const struct bounds general_bounds[] = {
	{ "index_ttl", "0", "31536000", "31536001", "(0 to 31536000 seconds)", NULL },
	{ "connections", "1", "64", "65", "(1 to 64)", "0" },
	{ "piece_size", "64K", "1G", "1073741825", "(64K to 1G", "65535" },
	{ "cache_max", "0", "1024T", "1025T", "(0 to 1024T", NULL },
	{ "retries", "0", "100", "101", "(0 to 100)", NULL },
	{ "stall_timeout", "1", "86400", "86401", "(1 to 86400 seconds)", "0" },
	{ "retry_time", "1", "86400", "86401", "(1 to 86400 seconds)", "0" },
	{ "memory_max", "1M", "1T", "1025G", "(1M to 1T", "1048575" },
	{ "max_unpack_ratio", "1", "1000000", "1000001", "(1 to 1000000)", "0" },
	{ "max_unpack_size", "1", "1024T", "1025T", "(1 to 1024T", "0" },
};

static const struct bounds hub_bounds[] = {
	{ "hf_ttl", "0", "31536000", "31536001", "(0 to 31536000 seconds)", NULL },
	{ "hf_max_repos", "1", "1048576", "1048577", "(1 to 1048576)", "0" },
	{ "hf_api_budget", "0", "1000000/86400", "1000001",
	  "(CALLS 0 to 1000000, or CALLS/SECONDS with SECONDS 1 to 86400)", NULL },
	{ "convert_timeout", "1", "86400", "86401", "(1 to 86400 seconds)", "0" },
};

/* Sets general setting key's -o text in opts. */
static void set_option(struct config_options *opts, const char *key, const char *text)
{
	struct {
		const char *key;
		char **field;
	} fields[] = {
		{ "index_ttl", &opts->index_ttl },
		{ "connections", &opts->connections },
		{ "piece_size", &opts->piece_size },
		{ "cache_max", &opts->cache_max },
		{ "retries", &opts->retries },
		{ "stall_timeout", &opts->stall_timeout },
		{ "retry_time", &opts->retry_time },
		{ "memory_max", &opts->memory_max },
		{ "max_unpack_ratio", &opts->max_unpack_ratio },
		{ "max_unpack_size", &opts->max_unpack_size },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(fields[i].key, key) == 0)
			*fields[i].field = (char *)text;
}

/* -o key=text, for a general setting or a hub's: 0, or -EINVAL with the
 * sentence in why (a copy). */
static int resolve_option(const char *key, bool hub, const char *text, char *why,
			  size_t why_size)
{
	struct config_hub_option option = { (char *)key, (char *)text };
	struct config_options opts = { .hubs = &hub_registry_options };
	struct config cfg;
	const char *said = NULL;
	int rc;

	if (hub) {
		opts.hub_options = &option;
		opts.nhub_options = 1;
	} else {
		set_option(&opts, key, text);
	}
	rc = resolve_files(&cfg, &opts, "", "", &said);
	snprintf(why, why_size, "%s", said ? said : "");
	if (rc == 0 && hub && strcmp(config_hub_option(&cfg, key), text) != 0)
		rc = -EIO; /* taken, but not as given */
	config_free(&cfg);
	return rc;
}

static void check_bounds(const struct bounds *b, bool hub)
{
	const char *refused[] = { b->above, b->below, "-1", "4294967296", "18446744073709551616",
				  "12abc", "", " 5", "+5", "0x10", "5 " };
	char why[1024], want[128];

	tap_ok(resolve_option(b->key, hub, b->min, why, sizeof(why)) == 0, "%s=%s (min) taken %s",
	       b->key, b->min, why);
	tap_ok(resolve_option(b->key, hub, b->max, why, sizeof(why)) == 0, "%s=%s (max) taken %s",
	       b->key, b->max, why);
	if (strchr(b->range, 'T')) { /* a size: 2^32 bytes is 4G, in range */
		tap_ok(resolve_option(b->key, hub, "4294967296", why, sizeof(why)) == 0,
		       "%s=4294967296 taken %s", b->key, why);
		refused[3] = "18446744073709551615"; /* 2^64 - 1 */
	}
	snprintf(want, sizeof(want), "-o %s: ", b->key);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int rc;
		if (!refused[i])
			continue;
		rc = resolve_option(b->key, hub, refused[i], why, sizeof(why));
		tap_ok(rc == -EINVAL && strncmp(why, want, strlen(want)) == 0 &&
			       strstr(why, b->range) != NULL,
		       "%s=\"%s\" refused, naming -o %s and the range: %s", b->key, refused[i],
		       b->key, why);
	}
}

/* Every hub option with a numeric kind is held by config_resolve to the
 * bounds its hub's spec declares, with nothing in config.c naming it: max
 * is taken, max + 1 (and min - 1) refused with the option named. */
static void test_spec_bounds(void)
{
	const char *numeric[] = { "hf_ttl", "hf_max_repos", "hf_api_budget", "convert_timeout" };
	size_t checked = 0;
	unsigned named = 0; /* a bit for each of numeric found */
	char why[1024], text[32], want[128];

	for (size_t h = 0; h < hub_registry_count; h++) {
		const struct hub_option_spec *spec = hub_registry[h]->options;
		for (; spec && spec->name; spec++) {
			bool number = spec->kind == HUB_OPTION_UNSIGNED ||
				      spec->kind == HUB_OPTION_SECONDS ||
				      spec->kind == HUB_OPTION_SIZE ||
				      spec->kind == HUB_OPTION_BUDGET;
			if (!number)
				continue;
			snprintf(want, sizeof(want), "-o %s: ", spec->name);
			snprintf(text, sizeof(text), "%llu", (unsigned long long)spec->max);
			tap_ok(resolve_option(spec->name, true, text, why, sizeof(why)) == 0,
			       "%s: its spec's max %s taken %s", spec->name, text, why);
			snprintf(text, sizeof(text), "%llu", (unsigned long long)spec->max + 1);
			tap_ok(resolve_option(spec->name, true, text, why, sizeof(why)) == -EINVAL &&
				       strncmp(why, want, strlen(want)) == 0 &&
				       strstr(why, "out of range") != NULL,
			       "%s: its spec's max + 1 (%s) refused, naming it: %s", spec->name, text,
			       why);
			if (spec->min > 0) {
				snprintf(text, sizeof(text), "%llu",
					 (unsigned long long)spec->min - 1);
				tap_ok(resolve_option(spec->name, true, text, why, sizeof(why)) ==
						       -EINVAL &&
					       strncmp(why, want, strlen(want)) == 0,
				       "%s: its spec's min - 1 (%s) refused: %s", spec->name, text,
				       why);
			}
			for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++)
				if (strcmp(numeric[i], spec->name) == 0)
					named |= 1u << i;
			checked++;
		}
	}
	tap_ok(named == (1u << (sizeof(numeric) / sizeof(numeric[0]))) - 1,
	       "hf_ttl, hf_max_repos, hf_api_budget and convert_timeout declare a numeric kind "
	       "(%zu numeric options checked)",
	       checked);
}

static void test_bounds(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config cfg;
	char why[1024];
	const char *said = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(general_bounds) / sizeof(general_bounds[0]); i++)
		check_bounds(&general_bounds[i], false);
	for (size_t i = 0; i < sizeof(hub_bounds) / sizeof(hub_bounds[0]); i++)
		check_bounds(&hub_bounds[i], true);

	/* Taken values are the values given, not wrapped ones. */
	{
		struct config_options max = { .hubs = &hub_registry_options, .retries = "100", .index_ttl = "31536000",
					      .connections = "64", .cache_max = "1024T" };
		rc = resolve_files(&cfg, &max, "", "", &said);
		tap_ok(rc == 0 && cfg.retries == 100 && cfg.index_ttl == 31536000 &&
			       cfg.connections == 64 && cfg.cache_max == 1ull << 50,
		       "maxima taken as given");
		config_free(&cfg);
	}
	tap_ok(resolve_option("hf_api_budget", true, "500/0", why, sizeof(why)) == -EINVAL &&
		       resolve_option("hf_api_budget", true, "500/86401", why, sizeof(why)) ==
			       -EINVAL &&
		       resolve_option("hf_api_budget", true, "500/", why, sizeof(why)) == -EINVAL &&
		       resolve_option("hf_api_budget", true, "/300", why, sizeof(why)) == -EINVAL &&
		       resolve_option("hf_api_budget", true, "500/300", why, sizeof(why)) == 0,
	       "hf_api_budget: the window 1 to 86400 seconds");

	/* From a file: FILE:LINE, the key and the range. */
	check_bad("cache_max = 1G\nretries = 99999999999\n", "", user_path, 2,
		  "retries: 99999999999 is out of range (0 to 100)");
	check_bad("index_ttl = 4294967296\n", "", user_path, 1,
		  "index_ttl: 4294967296 is out of range (0 to 31536000 seconds)");
	check_bad("[huggingface]\nttl = -5\n", "", user_path, 2,
		  "hf_ttl: \"-5\" is not a number of seconds (0 to 31536000 seconds)");
	check_bad("[onnx]\nconnections = 0\n", "", user_path, 2,
		  "connections: 0 is out of range (1 to 64)");
	check_bad("convert_timeout = 0\n", "", user_path, 1,
		  "convert_timeout: 0 is out of range (1 to 86400 seconds)");
	check_bad("hf_max_repos = many\n", "", user_path, 1,
		  "hf_max_repos: \"many\" is not a number (1 to 1048576)");
	check_bad("", "hf_api_budget = 10/0\n", system_path, 1,
		  "hf_api_budget: 10/0 is out of range (CALLS 0 to 1000000, or CALLS/SECONDS with "
		  "SECONDS 1 to 86400)");

	/* From the environment: the variable. */
	{
		static const char *const yes[] = { "1", "yes", "true", "on", "YES", "True", "On" };
		static const char *const no[] = { "0", "no", "false", "off", "NO", "False", "OFF" };
		static const char *const bad[] = { "maybe", "2", "y", "n", "yes ", " no", "enabled",
						   "-1", "01" };
		bool all = true;
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			setenv("OMNIHUB_OFFLINE", yes[i], 1);
			all = all && resolve_files(&cfg, &none, "", "", &said) == 0 && cfg.offline;
			config_free(&cfg);
			setenv("OMNIHUB_OFFLINE", no[i], 1);
			all = all && resolve_files(&cfg, &none, "offline = yes\n", "", &said) == 0 &&
			      !cfg.offline;
			config_free(&cfg);
		}
		tap_ok(all, "$OMNIHUB_OFFLINE: every spelling of yes and no");
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			setenv("OMNIHUB_OFFLINE", bad[i], 1);
			rc = resolve_files(&cfg, &none, "", "", &said);
			snprintf(why, sizeof(why), "$OMNIHUB_OFFLINE: \"%s\" is not yes or no "
						   "(yes/no, true/false, on/off or 1/0)",
				 bad[i]);
			tap_ok(rc == -EINVAL && said && strcmp(said, why) == 0,
			       "$OMNIHUB_OFFLINE=\"%s\" refused: %s", bad[i], said ? said : "");
			config_free(&cfg);
		}
		unsetenv("OMNIHUB_OFFLINE");
		all = true;
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			char text[64];
			snprintf(text, sizeof(text), "stream = %s\n[onnx]\nstream = %s\n", yes[i],
				 no[i]);
			all = all && resolve_files(&cfg, &none, text, "", &said) == 0 &&
			      cfg.stream && !config_hub_stream(&cfg, "onnx");
			config_free(&cfg);
		}
		tap_ok(all, "stream in a file: every spelling of yes and no");
		check_bad("stream = 2\n", "", user_path, 1,
			  "stream: \"2\" is not yes or no (yes/no, true/false, on/off or 1/0)");
	}

	/* -o offline=BOOLEAN and stream=BOOLEAN, over the files and -o offline. */
	{
		struct config_options no = { .hubs = &hub_registry_options, .offline = 1, .offline_value = "no",
					     .stream_value = "off" };
		struct config_options bad = { .hubs = &hub_registry_options, .offline_value = "perhaps" };
		struct config_options empty = { .hubs = &hub_registry_options, .stream_value = "" };
		rc = resolve_files(&cfg, &no, "offline = yes\nstream = yes\n", "", &said);
		tap_ok(rc == 0 && !cfg.offline && !cfg.stream &&
			       strcmp(origin_of(&cfg, "offline"), "option") == 0,
		       "-o offline=no,stream=off over the file's yes");
		config_free(&cfg);
		rc = resolve_files(&cfg, &bad, "", "", &said);
		tap_ok(rc == -EINVAL && strcmp(said, "-o offline: \"perhaps\" is not yes or no "
						     "(yes/no, true/false, on/off or 1/0)") == 0,
		       "-o offline=perhaps: %s", said);
		config_free(&cfg);
		rc = resolve_files(&cfg, &empty, "", "", &said);
		tap_ok(rc == -EINVAL && strcmp(said, "-o stream: the value is empty (yes/no, "
						     "true/false, on/off or 1/0)") == 0,
		       "-o stream=: %s", said);
		config_free(&cfg);
	}
}

/* The typed parsers themselves, for the hubs that call them. */
static void test_parsers(void)
{
	uint64_t n = 7;
	unsigned u = 7, calls = 7, seconds = 7;

	tap_ok(config_parse_unsigned("0", 0, 5, &n) == 0 && n == 0 &&
		       config_parse_unsigned("5", 0, 5, &n) == 0 && n == 5 &&
		       config_parse_unsigned("007", 0, 7, &n) == 0 && n == 7,
	       "config_parse_unsigned: bounds included, leading zeros");
	n = 9;
	tap_ok(config_parse_unsigned("6", 0, 5, &n) == -ERANGE &&
		       config_parse_unsigned("18446744073709551616", 0, UINT64_MAX, &n) == -ERANGE &&
		       config_parse_unsigned("-1", 0, UINT64_MAX, &n) == -EINVAL &&
		       config_parse_unsigned("", 0, 5, &n) == -EINVAL &&
		       config_parse_unsigned(NULL, 0, 5, &n) == -EINVAL &&
		       config_parse_unsigned("1 ", 0, 5, &n) == -EINVAL &&
		       config_parse_unsigned("1.5", 0, 5, &n) == -EINVAL && n == 9,
	       "config_parse_unsigned: -ERANGE past the bounds or 2^64, -EINVAL else; "
	       "*out untouched");
	tap_ok(config_parse_unsigned("18446744073709551615", 0, UINT64_MAX, &n) == 0 &&
		       n == UINT64_MAX,
	       "config_parse_unsigned: 2^64-1");
	tap_ok(config_parse_seconds("4294967295", 0, UINT_MAX, &u) == 0 && u == UINT_MAX &&
		       config_parse_seconds("4294967296", 0, UINT_MAX, &u) == -ERANGE &&
		       config_parse_seconds("0", 1, 10, &u) == -ERANGE && u == UINT_MAX,
	       "config_parse_seconds: an unsigned, no wrap");
	tap_ok(config_parse_size("4MiB", &n) == 0 && n == 4u << 20 &&
		       config_parse_size("4MB", &n) == 0 && n == 4u << 20 &&
		       config_parse_size("4k", &n) == 0 && n == 4096 &&
		       config_parse_size("16777215T", &n) == 0 && n == 16777215ull << 40,
	       "config_parse_size: units, iB and B");
	tap_ok(config_parse_size("16777216T", &n) == -ERANGE &&
		       config_parse_size("18446744073709551616", &n) == -ERANGE &&
		       config_parse_size("4i", &n) == -EINVAL &&
		       config_parse_size("4B", &n) == -EINVAL &&
		       config_parse_size("4MiBs", &n) == -EINVAL &&
		       config_parse_size("-4M", &n) == -EINVAL &&
		       config_parse_size("M", &n) == -EINVAL && config_parse_size("", &n) == -EINVAL,
	       "config_parse_size: overflow is -ERANGE, other text -EINVAL");
	tap_ok(config_parse_rate("500", 1000, 1, 60, &calls, &seconds) == 0 && calls == 500 &&
		       seconds == 7 &&
		       config_parse_rate("0/60", 1000, 1, 60, &calls, &seconds) == 0 && calls == 0 &&
		       seconds == 60,
	       "config_parse_rate: CALLS, CALLS/SECONDS");
	tap_ok(config_parse_rate("1001", 1000, 1, 60, &calls, &seconds) == -ERANGE &&
		       config_parse_rate("5/61", 1000, 1, 60, &calls, &seconds) == -ERANGE &&
		       config_parse_rate("5/x", 1000, 1, 60, &calls, &seconds) == -EINVAL &&
		       config_parse_rate("5/", 1000, 1, 60, &calls, &seconds) == -EINVAL &&
		       config_parse_rate("5/6/7", 1000, 1, 60, &calls, &seconds) == -EINVAL &&
		       config_parse_rate("", 1000, 1, 60, &calls, &seconds) == -EINVAL &&
		       config_parse_rate("99999999999999999999999999999999999/5", 1000, 1, 60, &calls,
					 &seconds) == -ERANGE &&
		       calls == 0 && seconds == 60,
	       "config_parse_rate: refusals");
}

/* A list's items lose the blanks around them, wherever it is set. */
static void test_list_blanks(void)
{
	struct config_hub_option repos = { "hf_repos", "acme/tiny-onnx, gpt2 ,\tx/y" };
	struct config_options opts = { .hubs = &hub_registry_options, .hub_options = &repos, .nhub_options = 1 };
	struct config_options none = { .hubs = &hub_registry_options };
	struct config cfg;
	const char *why = NULL;
	char want[256];
	int rc;

	rc = resolve_files(&cfg, &opts, "", "", &why);
	tap_ok(rc == 0 && strcmp(config_hub_option(&cfg, "hf_repos"), "acme/tiny-onnx,gpt2,x/y") == 0,
	       "-o hf_repos with blanks after commas: %s",
	       rc == 0 ? config_hub_option(&cfg, "hf_repos") : why);
	config_free(&cfg);
	rc = resolve_files(&cfg, &none,
			   "[huggingface]\nrepos = acme/tiny-onnx, gpt2\nrepos = a/b ,c/d\n"
			   "[catalogs]\ncatalogs = ~/one, /two\n",
			   "", &why);
	tap_ok(rc == 0 && strcmp(config_hub_option(&cfg, "hf_repos"), "acme/tiny-onnx,gpt2,a/b,c/d") ==
				  0,
	       "repos = acme/tiny-onnx, gpt2 in a file: %s",
	       rc == 0 ? config_hub_option(&cfg, "hf_repos") : why);
	tap_ok(rc == 0 && strcmp(config_hub_option(&cfg, "catalogs"), "/home/u/one,/two") == 0,
	       "catalogs = ~/one, /two: each path without its blank (%s)",
	       rc == 0 ? config_hub_option(&cfg, "catalogs") : why);
	config_free(&cfg);
	rc = resolve_files(&cfg, &none, "[torchvision]\nconvert = pth:onnx:a b , pth:txt:c\n", "",
			   &why);
	tap_ok(rc == 0 && strcmp(config_hub_convert(&cfg, "torchvision"), "pth:onnx:a b,pth:txt:c") == 0,
	       "a catalog hub's convert = a, b: %s",
	       rc == 0 ? config_hub_convert(&cfg, "torchvision") : why);
	config_free(&cfg);
	snprintf(want, sizeof(want), "%s:1: hf_repos: the value is empty", user_path);
	rc = resolve_files(&cfg, &none, "hf_repos = \" , \"\n", "", &why);
	tap_ok(rc == -EINVAL && why && strcmp(why, want) == 0, "a list of blanks is empty: %s",
	       why ? why : "");
	config_free(&cfg);
}


/* config_locate_refusal: a hub's sentence with where its option was set. */
static void test_locate_refusal(void)
{
	struct config_hub_option repos = { "hf_repos", "x/y" };
	struct config_options opts = { .hubs = &hub_registry_options, .hub_options = &repos, .nhub_options = 1 };
	struct config_options none = { .hubs = &hub_registry_options };
	const char *sentence = "hf_repos: 'bad..x' is not a repo id";
	struct config cfg;
	char out[512], want[512];
	int rc;

	resolve_files(&cfg, &opts, "", "", NULL);
	rc = config_locate_refusal(&cfg, sentence, out, sizeof(out));
	tap_ok(rc == 0 && strcmp(out, "-o hf_repos: 'bad..x' is not a repo id") == 0,
	       "an option is named -o NAME: %s", out);
	rc = config_locate_refusal(&cfg, "hf_reposx: no", out, sizeof(out));
	tap_ok(rc == -ENOENT && strcmp(out, "hf_reposx: no") == 0,
	       "a sentence naming no set option is left as it is: %s", out);
	rc = config_locate_refusal(&cfg, "the endpoint is wrong", out, sizeof(out));
	tap_ok(rc == -ENOENT, "a sentence naming no option at all: -ENOENT");
	config_free(&cfg);

	resolve_files(&cfg, &none, "# repos\n\nhf_repos = a/b, bad..x\n", "", NULL);
	snprintf(want, sizeof(want), "%s:3: %s", user_path, sentence);
	rc = config_locate_refusal(&cfg, sentence, out, sizeof(out));
	tap_ok(rc == 0 && strcmp(out, want) == 0, "a file's line is named FILE:LINE: %s", out);
	config_free(&cfg);

	resolve_files(&cfg, &none, "hf_repos = a/b\n# bad..x\nhf_repos = bad..x\n", "", NULL);
	snprintf(want, sizeof(want), "%s:3: %s", user_path, sentence);
	rc = config_locate_refusal(&cfg, sentence, out, sizeof(out));
	tap_ok(rc == 0 && strcmp(out, want) == 0,
	       "a list on several lines: the line of the quoted item, not a comment's: %s", out);
	config_free(&cfg);
}

/* config_check: every problem, each as config_resolve says the first. */
struct sentences {
	char text[16][512];
	int count;
};

static void keep_sentence(void *ctx, const char *sentence)
{
	struct sentences *s = ctx;

	if (s->count < 16)
		snprintf(s->text[s->count], sizeof(s->text[0]), "%s", sentence);
	s->count++;
}

static void test_check(void)
{
	struct config_hub_option ttl = { "hf_ttl", "-1" };
	struct config_options opts = { .hubs = &hub_registry_options, .retries = "101", .hub_options = &ttl, .nhub_options = 1 };
	struct config_options none = { .hubs = &hub_registry_options };
	struct sentences got = { .count = 0 };
	const char *user = "cache_max = 1G\nconnections = 0\nfrob = 1\n\"bad line\n[onnx]\n"
			   "stream = maybe\ncache_max = 2G\n";
	char want[8][512];
	int n, all = 1;

	setenv("OMNIHUB_OFFLINE", "perhaps", 1);
	write_file(user_path, user);
	write_file(system_path, "index_ttl = soon\n");
	setenv("OMNIHUB_CONFIG", user_path, 1);
	setenv("OMNIHUB_SYSTEM_CONFIG", system_path, 1);
	n = config_check(&opts, keep_sentence, &got);
	snprintf(want[0], sizeof(want[0]),
		 "%s:1: index_ttl: \"soon\" is not a number of seconds (0 to 31536000 seconds)",
		 system_path);
	snprintf(want[1], sizeof(want[1]), "%s:2: connections: 0 is out of range (1 to 64)",
		 user_path);
	snprintf(want[2], sizeof(want[2]), "%s:3: unknown key \"frob\"", user_path);
	snprintf(want[3], sizeof(want[3]),
		 "%s:4: \"\"bad line\" is not \"key = value\", a [section] or a comment", user_path);
	snprintf(want[4], sizeof(want[4]),
		 "%s:6: stream: \"maybe\" is not yes or no (yes/no, true/false, on/off or 1/0)",
		 user_path);
	snprintf(want[5], sizeof(want[5]),
		 "$OMNIHUB_OFFLINE: \"perhaps\" is not yes or no (yes/no, true/false, on/off or "
		 "1/0)");
	snprintf(want[6], sizeof(want[6]), "-o retries: 101 is out of range (0 to 100)");
	snprintf(want[7], sizeof(want[7]),
		 "-o hf_ttl: \"-1\" is not a number of seconds (0 to 31536000 seconds)");
	tap_ok(n == 9 && got.count == 9, "config_check: 9 problems (got %d, %d)", n, got.count);
	for (int i = 0; i < 8; i++) {
		bool found = false;
		for (int j = 0; j < got.count && j < 16; j++)
			found = found || strcmp(got.text[j], want[i]) == 0;
		all = all && found;
		if (!found)
			printf("# missing: %s\n", want[i]);
	}
	tap_ok(all, "config_check: each problem's sentence, with its origin");
	tap_ok(got.count > 8 && strstr(got.text[8], ":7: [onnx]: cache_max per hub needs") != NULL,
	       "and the [onnx] cache_max without a cache: %s", got.count > 8 ? got.text[8] : "");
	unsetenv("OMNIHUB_OFFLINE");
	memset(&got, 0, sizeof(got));
	write_file(user_path, "cache_max = 1G\n");
	unlink(system_path);
	tap_ok(config_check(&none, keep_sentence, &got) == 0 && got.count == 0,
	       "config_check: none in good settings");
	memset(&got, 0, sizeof(got));
	setenv("OMNIHUB_CONFIG", dir, 1);
	tap_ok(config_check(&none, keep_sentence, &got) == 1 && got.count == 1 &&
		       strstr(got.text[0], "Is a directory"),
	       "config_check: an unreadable file is one (%s)", got.text[0]);
	unlink(user_path);
	unlink(system_path);
}

static void test_file_places(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config cfg;

	unsetenv("OMNIHUB_CONFIG");
	unsetenv("OMNIHUB_SYSTEM_CONFIG");
	resolve(&cfg, &none);
	tap_ok(strcmp(cfg.user_file, "/home/u/.config/omnihub/config") == 0 &&
		       strcmp(cfg.system_file, "/etc/omnihub/config") == 0,
	       "the files: ~/.config/omnihub/config and /etc/omnihub/config");
	config_free(&cfg);
	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	setenv("OMNIHUB_SYSTEM_CONFIG", "/nonexistent/omnihub/config", 1);
	resolve(&cfg, &none);
	tap_ok(strcmp(cfg.user_file, "/xdg/omnihub/config") == 0,
	       "the user's file under $XDG_CONFIG_HOME");
	config_free(&cfg);
	unsetenv("XDG_CONFIG_HOME");
}

/* A [hub] cache and cache_max: a store of the hub's own. */
static void test_hub_caches(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config_options given = { .hubs = &hub_registry_options, .cache = "/opt/cache",
					.cache_max = "2G" };
	struct config cfg;
	const char *why = NULL;
	char want[256];
	int rc;

	rc = resolve_files(&cfg, &none,
			   "cache_max = 10G\n[huggingface]\ncache = /data/hf\ncache_max = 500G\n"
			   "[onnx]\ncache = ~/onnx-cache\n",
			   "", &why);
	tap_ok(rc == 0, "[hub] cache and cache_max are taken (%s)", why ? why : "");
	tap_ok(rc == 0 && strcmp(config_hub_cache(&cfg, "huggingface"), "/data/hf") == 0 &&
		       config_hub_cache_max(&cfg, "huggingface") == 500ull << 30,
	       "[huggingface]: its own directory and limit");
	tap_ok(rc == 0 && strcmp(config_hub_cache(&cfg, "onnx"), "/home/u/onnx-cache") == 0 &&
		       config_hub_cache_max(&cfg, "onnx") == 0,
	       "[onnx]: ~/ is $HOME; its own directory has no limit but its own (%s)",
	       rc == 0 ? config_hub_cache(&cfg, "onnx") : "");
	tap_ok(rc == 0 && strcmp(config_hub_cache(&cfg, "torchvision"), cfg.cache_dir) == 0 &&
		       strcmp(cfg.cache_dir, "/home/u/.omnihub") == 0 &&
		       config_hub_cache_max(&cfg, "torchvision") == 10ull << 30 &&
		       strcmp(config_hub_cache(&cfg, NULL), cfg.cache_dir) == 0,
	       "a hub without its own: the general cache and limit");
	snprintf(want, sizeof(want), "%s:3", user_path);
	tap_ok(rc == 0 && strcmp(origin_of(&cfg, "[huggingface] cache"), want) == 0 &&
		       strcmp(value_of(&cfg, "[huggingface] cache"), "/data/hf") == 0,
	       "config_describe: [huggingface] cache with its origin (%s)",
	       origin_of(&cfg, "[huggingface] cache"));
	snprintf(want, sizeof(want), "%s:4", user_path);
	tap_ok(rc == 0 && strcmp(origin_of(&cfg, "[huggingface] cache_max"), want) == 0 &&
		       strcmp(value_of(&cfg, "[huggingface] cache_max"), "500G") == 0,
	       "config_describe: [huggingface] cache_max with its origin (%s)",
	       origin_of(&cfg, "[huggingface] cache_max"));
	config_free(&cfg);

	/* -o cache moves the general cache only; a hub's own stays its own. */
	rc = resolve_files(&cfg, &given, "[onnx]\ncache = /data/onnx\ncache_max = 1G\n", "",
			   &why);
	tap_ok(rc == 0 && strcmp(config_hub_cache(&cfg, "onnx"), "/data/onnx") == 0 &&
		       config_hub_cache_max(&cfg, "onnx") == 1ull << 30 &&
		       strcmp(config_hub_cache(&cfg, "huggingface"), "/opt/cache") == 0 &&
		       config_hub_cache_max(&cfg, "huggingface") == 2ull << 30,
	       "-o cache and cache_max leave a [hub]'s own store alone");
	config_free(&cfg);

	/* The user's file over the system's, for a hub's own too. */
	rc = resolve_files(&cfg, &none, "[onnx]\ncache = /user/onnx\n",
			   "[onnx]\ncache = /sys/onnx\ncache_max = 3G\n", &why);
	tap_ok(rc == 0 && strcmp(config_hub_cache(&cfg, "onnx"), "/user/onnx") == 0 &&
		       config_hub_cache_max(&cfg, "onnx") == 3ull << 30,
	       "[onnx] cache from the user's file, its cache_max from the system's");
	config_free(&cfg);
}

static void test_files(void)
{
	char template[] = "/tmp/omnihub-test-config-XXXXXX";

	clear_environment();
	if (!mkdtemp(template)) {
		tap_ok(0, "mkdtemp");
		return;
	}
	snprintf(dir, sizeof(dir), "%s", template);
	snprintf(user_path, sizeof(user_path), "%s/user.conf", dir);
	snprintf(system_path, sizeof(system_path), "%s/system.conf", dir);
	test_precedence();
	test_lists_and_values();
	test_bad_lines();
	test_hub_caches();
	test_bounds();
	test_spec_bounds();
	test_list_blanks();
	test_locate_refusal();
	test_check();
	test_file_places();
	tap_ok(tap_remove_tree(dir) == 0, "temporary files removed");
}

int main(void)
{
	struct config_options none = { .hubs = &hub_registry_options };
	struct config_hub_option hub_options[] = {
		{ "onnx_url", "https://first/" },
		{ "hf_repos", "a/b,c/d" },
		{ "onnx_url", "https://m/" },
	};
	struct config_options given = {.hubs = &hub_registry_options,
		.cache = "/opt/cache", .cacert = "/etc/ca.pem", .offline = 1, .index_ttl = "5",
		.hub_options = hub_options, .nhub_options = 3,
	};
	struct config cfg;

	clear_environment();
	tap_ok(resolve(&cfg, &none) == 0, "defaults resolve");
	tap_ok(strcmp(cfg.cache_dir, "/home/u/.omnihub") == 0, "cache: ~/.omnihub");
	tap_ok(!cfg.offline && !cfg.cacert && cfg.index_ttl == CONFIG_INDEX_TTL_DEFAULT,
	       "online, system CAs, default TTL");
	tap_ok(config_hub_option(&cfg, "onnx_url") == NULL, "no hub option given: NULL");
	config_free(&cfg);

	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("MODELHUB_PATH", "/modelhub", 1);
	resolve(&cfg, &none);
	tap_ok(strcmp(cfg.cache_dir, "/modelhub") == 0, "cache: $MODELHUB_PATH");
	config_free(&cfg);

	setenv("OMNIHUB_HOME", "/omnihub", 1);
	setenv("OMNIHUB_OFFLINE", "1", 1);
	setenv("OMNIHUB_ONNX_INDEX_URL", "https://env/index.json", 1);
	setenv("OMNIHUB_ONNX_URL", "https://env/models/", 1);
	setenv("CURL_CA_BUNDLE", "/env/ca.pem", 1);
	resolve(&cfg, &none);
	tap_ok(strcmp(cfg.cache_dir, "/omnihub") == 0, "cache: $OMNIHUB_HOME before $MODELHUB_PATH");
	tap_ok(cfg.offline, "OMNIHUB_OFFLINE=1");
	tap_ok(strcmp(config_env("OMNIHUB_ONNX_URL"), "https://env/models/") == 0 &&
		       config_env("OMNIHUB_UNSET_VARIABLE") == NULL,
	       "config_env reads the environment");
	tap_ok(strcmp(cfg.cacert, "/env/ca.pem") == 0, "CA from $CURL_CA_BUNDLE");
	config_free(&cfg);

	setenv("OMNIHUB_OFFLINE", "0", 1);
	resolve(&cfg, &given);
	tap_ok(strcmp(cfg.cache_dir, "/opt/cache") == 0 && strcmp(cfg.cacert, "/etc/ca.pem") == 0 &&
		       cfg.index_ttl == 5,
	       "options win over the environment");
	tap_ok(strcmp(config_hub_option(&cfg, "onnx_url"), "https://m/") == 0 &&
		       strcmp(config_hub_option(&cfg, "hf_repos"), "a/b,c/d") == 0 &&
		       config_hub_option(&cfg, "hf_ttl") == NULL,
	       "hub options carried, the last given wins");
	tap_ok(cfg.offline, "-o offline even with OMNIHUB_OFFLINE=0");
	config_free(&cfg);

	unsetenv("OMNIHUB_HOME");
	unsetenv("MODELHUB_PATH");
	unsetenv("HOME");
	{
		const char *why = NULL;
		int rc = config_resolve(&cfg, &none, &why);
		tap_ok(rc != 0 && why && strstr(why, "cache"), "no HOME and no cache: refused (%s)",
		       why ? why : "");
	}
	{
		struct config_options relative = { .hubs = &hub_registry_options, .cache = "rel/cache" };
		char cwd[4096], want[4200];
		setenv("HOME", "/home/u", 1);
		tap_ok(resolve(&cfg, &relative) == 0 && getcwd(cwd, sizeof(cwd)), "relative cache");
		snprintf(want, sizeof(want), "%s/rel/cache", cwd);
		tap_ok(strcmp(cfg.cache_dir, want) == 0, "made absolute: %s", cfg.cache_dir);
		config_free(&cfg);
	}
	test_parsers();
	test_files();
	return tap_done();
}
