/* test_catalog.c: unit tests of catalog_parse.c: a catalog with every feature read
 * back field by field, malformed ones refused with the field's json path,
 * files merged by hub and by trust, directories, and the shipped catalogs.
 * Not for: serving them (hub_catalog.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog_parse.h"
#include "tap.h"

/* The catalogs below are written with ' for ", which q() turns back. */
static char quoted[16384];

static const char *q(const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < sizeof(quoted); i++)
		quoted[i] = s[i] == '\'' ? '"' : s[i];
	quoted[i] = '\0';
	return quoted;
}

static int add(struct catalog_set *set, const char *json, const char *label,
               enum catalog_trust trust, char *why, size_t why_size)
{
	const char *text = q(json);

	why[0] = '\0';
	return catalog_set_add_json(set, text, strlen(text), label, trust, why, why_size);
}

#define SHA256_UP "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"
#define SHA256_LO "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define MD5_HEX   "0123456789abcdef0123456789abcdef"
#define SHA1_HEX  "0123456789abcdef0123456789abcdef01234567"

static const char good[] =
    "{'omnihub_catalog': 1, 'hub': 'testhub', 'description': 'every feature',"
    " 'base_url': 'http://example.com/models/', 'client_cache': 'torch',"
    " 'models': {"
    "  'resnet18': {"
    "   'meta': {'task': 'cls', 'n': 1, 'docs': 'https://d/'},"
    "   'default': 'V1',"
    "   'entries': {"
    "    'V1': {'url': 'resnet18-f37072fd.pth', 'digests': {'sha256-prefix': 'F37072FD'},"
    "           'size': 46830571, 'format': 'pth', 'client_id': 'resnet18-f37072fd.pth',"
    "           'meta': {'n': 2, 'acc@1': 69.758, 'any': {'nested': [1, 2]}}},"
    "    'V2': {'url': '/sub/resnet18-v2.pth', 'digests': {'sha256': '" SHA256_UP "',"
    "           'md5': '" MD5_HEX "'}, 'size': 0, 'format': 'pth'}}},"
    "  'google/mobilenet/1': {'entries': {"
    "    'SavedModel': {'url': 'https://other.example/m.tar.gz?download=1',"
    "     'format': 'saved_model', 'digests': {},"
    "     'archive': {'expect': ['saved_model.pb', 'variables/variables.index']}}}},"
    "  'mnist': {'entries': {"
    "    'train': {'url': 'http://e.com/data/train-images-idx3-ubyte.gz', 'format': 'idx',"
    "     'decompress': 'gzip', 'unpacked_size': 47040016, 'digests': {'adler32': 123456789}},"
    "    'zip': {'url': 'http://e.com/pack.zip', 'format': 'zip', 'file': 'b.bin',"
    "     'archive': {'member': 'a/b.bin'}, 'unpacked_size': 10,"
    "     'digests': {'adler32': '0ABCDEF1', 'sha1': '" SHA1_HEX "'}},"
    "    'weak': {'url': 'http://e.com/w.bin', 'format': 'bin',"
    "     'digests': {'adler32': '00000001', 'sha256-prefix': '1234567890', 'md5': '" MD5_HEX "'}},"
    "    'tgz': {'url': 'http://e.com/data.tar.gz', 'format': 'tar.gz'}}}}}";

static const struct catalog_entry *entry_of(const struct catalog_model *m, const char *name)
{
	for (size_t i = 0; m && i < m->nentries; i++)
		if (strcmp(m->entries[i].name, name) == 0)
			return &m->entries[i];
	return NULL;
}

static bool spec_is(const struct digest_spec *spec, const char *formatted)
{
	char text[128];

	if (!spec)
		return false;
	digest_spec_format(spec, text, sizeof(text));
	return strcmp(text, formatted) == 0;
}

static void test_good(void)
{
	struct catalog_set set = {0};
	const struct catalog_hub *hub;
	const struct catalog_model *m;
	const struct catalog_entry *e;
	char why[512];
	int rc;

	rc = add(&set, good, "good.json", CATALOG_SHIPPED, why, sizeof(why));
	tap_ok(rc == 0, "a catalog with every feature is accepted (%s)", why);
	hub = catalog_set_hub(&set, "testhub");
	tap_ok(hub && set.nhubs == 1 && set.nfiles == 1 && strcmp(set.files[0], "good.json") == 0 &&
	           hub->client_cache && strcmp(hub->client_cache, "torch") == 0,
	       "its hub, client_cache and file are there");
	tap_ok(catalog_set_hub(&set, "onnx") == NULL && catalog_set_hub(&set, "zzz") == NULL,
	       "a hub no catalog names is not there");
	if (!hub) {
		catalog_set_free(&set);
		return;
	}
	tap_ok(hub->nmodels == 3 && strcmp(hub->models[0].path, "google/mobilenet/1") == 0 &&
	           strcmp(hub->models[1].path, "mnist") == 0 &&
	           strcmp(hub->models[2].path, "resnet18") == 0,
	       "models are sorted by path");
	tap_ok(catalog_hub_model(hub, "resnet18") == &hub->models[2] &&
	           catalog_hub_model(hub, "google/mobilenet/1") == &hub->models[0] &&
	           catalog_hub_model(hub, "google") == NULL &&
	           catalog_hub_model(hub, "nope") == NULL,
	       "catalog_hub_model finds a model by its path, and only a model");

	m = catalog_hub_model(hub, "resnet18");
	tap_ok(m && m->nentries == 2 && m->default_entry == 0 &&
	           strcmp(m->entries[m->default_entry].name, "V1") == 0,
	       "default names the index of its entry");
	e = entry_of(m, "V1");
	tap_ok(e && strcmp(e->url, "http://example.com/models/resnet18-f37072fd.pth") == 0 &&
	           strcmp(e->file, "V1.pth") == 0 && strcmp(e->format, "pth") == 0,
	       "a relative url is joined to base_url; file defaults to <ENTRY><ext>");
	tap_ok(e && e->ndigests == 1 && spec_is(&e->digests[0], "sha256-prefix:f37072fd") &&
	           e->digests[0].key[0] != '\0' && catalog_entry_strongest(e) == &e->digests[0],
	       "sha256-prefix: lower-cased, a prefix spec with a key");
	tap_ok(e && e->size_known && e->size == 46830571 && e->stage == CATALOG_STAGE_NONE &&
	           e->client_id && strcmp(e->client_id, "resnet18-f37072fd.pth") == 0 &&
	           e->source_file == set.files[0],
	       "size, stage, client_id and source_file");
	tap_ok(e && strcmp(e->meta_json, "{\"task\":\"cls\",\"n\":2,\"docs\":\"https://d/\","
	                                 "\"acc@1\":69.758,\"any\":{\"nested\":[1,2]}}") == 0,
	       "meta: the model's with the entry's keys over it, compact (%s)",
	       e ? e->meta_json : "");
	e = entry_of(m, "V2");
	tap_ok(e && strcmp(e->url, "http://example.com/models/sub/resnet18-v2.pth") == 0 &&
	           strcmp(e->file, "V2.pth") == 0 && e->size_known && e->size == 0,
	       "a url with a leading / gets one / after base_url; size 0 is known");
	tap_ok(e && e->ndigests == 2 && spec_is(catalog_entry_strongest(e), "sha256:" SHA256_LO) &&
	           catalog_entry_strongest(e)->key[0] == '\0' &&
	           spec_is(&e->digests[1], "md5:" MD5_HEX),
	       "upper-case sha256 is accepted and stored lower-case; it is the strongest");
	tap_ok(e && strcmp(e->meta_json, "{\"task\":\"cls\",\"n\":1,\"docs\":\"https://d/\"}") == 0,
	       "an entry without meta has the model's");

	m = catalog_hub_model(hub, "google/mobilenet/1");
	e = entry_of(m, "SavedModel");
	tap_ok(m && m->default_entry == -1 && e && e->stage == CATALOG_STAGE_ARCHIVE &&
	           e->nexpect == 2 && strcmp(e->expect[0], "saved_model.pb") == 0 &&
	           strcmp(e->expect[1], "variables/variables.index") == 0 && !e->member,
	       "an archive without member is a directory with its expect paths");
	tap_ok(e && strcmp(e->file, "SavedModel") == 0 &&
	           strcmp(e->url, "https://other.example/m.tar.gz?download=1") == 0,
	       "an absolute url stays; an archive's folder is named by its entry alone");
	tap_ok(e && e->ndigests == 0 && catalog_entry_strongest(e) == NULL && !e->size_known &&
	           strcmp(e->meta_json, "{}") == 0,
	       "digests {}: none; no size: unknown; no meta: {}");

	m = catalog_hub_model(hub, "mnist");
	e = entry_of(m, "train");
	tap_ok(e && e->stage == CATALOG_STAGE_GUNZIP &&
	           strcmp(e->file, "train-images-idx3-ubyte") == 0 && e->unpacked_size == 47040016,
	       "decompress gzip: the url's last segment without .gz, unpacked_size");
	tap_ok(e && e->ndigests == 1 && spec_is(&e->digests[0], "adler32:075bcd15") &&
	           e->digests[0].key[0] != '\0',
	       "adler32 as a JSON number becomes 8 lower-case hex digits");
	e = entry_of(m, "zip");
	tap_ok(e && e->stage == CATALOG_STAGE_MEMBER && strcmp(e->member, "a/b.bin") == 0 &&
	           strcmp(e->file, "b.bin") == 0 && e->unpacked_size == 10,
	       "an archive with member is that file; file given");
	tap_ok(e && e->ndigests == 2 && spec_is(&e->digests[0], "adler32:0abcdef1") &&
	           catalog_entry_strongest(e) == &e->digests[1] &&
	           spec_is(&e->digests[1], "sha1:" SHA1_HEX),
	       "sha1 is stronger than adler32");
	e = entry_of(m, "weak");
	tap_ok(e && e->ndigests == 3 && spec_is(catalog_entry_strongest(e), "md5:" MD5_HEX),
	       "md5 is stronger than a sha256 prefix and adler32");
	e = entry_of(m, "tgz");
	tap_ok(e && strcmp(e->file, "tgz.tar.gz") == 0 && strcmp(e->format, "tar.gz") == 0 &&
	           e->stage == CATALOG_STAGE_NONE,
	       "a .tar.gz download without archive is a file <ENTRY>.tar.gz");
	catalog_set_free(&set);
	tap_ok(set.nhubs == 0 && set.hubs == NULL && set.files == NULL, "catalog_set_free empties");
}

/* Every algorithm against every other: the order catalog_parse.h gives. */
static void test_strongest(void)
{
	struct catalog_entry e = {0};
	struct digest_spec sha256, sha1, md5, prefix, adler;

	digest_spec_set(&sha256, DIGEST_SHA256, SHA256_LO);
	digest_spec_set(&sha1, DIGEST_SHA1, SHA1_HEX);
	digest_spec_set(&md5, DIGEST_MD5, MD5_HEX);
	digest_spec_set_prefix(&prefix, DIGEST_SHA256, "abcdef01");
	digest_spec_set(&adler, DIGEST_ADLER32, "0abcdef1");
	e.digests[0] = adler;
	e.digests[1] = prefix;
	e.digests[2] = md5;
	e.digests[3] = sha1;
	e.ndigests = 4;
	tap_ok(catalog_entry_strongest(&e) == &e.digests[3], "sha1 over md5, prefix, adler32");
	e.ndigests = 3;
	tap_ok(catalog_entry_strongest(&e) == &e.digests[2], "md5 over a prefix and adler32");
	e.ndigests = 2;
	tap_ok(catalog_entry_strongest(&e) == &e.digests[1], "a sha256 prefix over adler32");
	e.ndigests = 1;
	tap_ok(catalog_entry_strongest(&e) == &e.digests[0], "adler32 alone");
	e.digests[0] = sha1;
	e.digests[1] = sha256;
	e.ndigests = 2;
	tap_ok(catalog_entry_strongest(&e) == &e.digests[1], "sha256 over sha1");
	e.ndigests = 0;
	tap_ok(catalog_entry_strongest(&e) == NULL, "no digest: NULL");
}

#define ENV_CATALOG(base)                                                                          \
	"{'omnihub_catalog': 1, 'hub': 'envhub', " base                                            \
	"'base_url_env': 'OMNIHUB_TEST_CATALOG_URL',"                                              \
	" 'models': {'m': {'entries': {'E': {'url': 'dir/f.pth', 'format': 'pth'}}}}}"

static const char *env_url(const char *json, char *why, size_t why_size)
{
	static char url[256];
	struct catalog_set set = {0};
	const struct catalog_model *m;

	url[0] = '\0';
	if (add(&set, json, "env.json", CATALOG_SHIPPED, why, why_size) == 0) {
		m = catalog_hub_model(catalog_set_hub(&set, "envhub"), "m");
		if (m)
			snprintf(url, sizeof(url), "%s", m->entries[0].url);
	}
	catalog_set_free(&set);
	return url;
}

static void test_base_url_env(void)
{
	const char *with_base = ENV_CATALOG("'base_url': 'https://a.example/models',");
	const char *without = ENV_CATALOG("");
	char why[512];

	unsetenv("OMNIHUB_TEST_CATALOG_URL");
	tap_ok(strcmp(env_url(with_base, why, sizeof(why)), "https://a.example/models/dir/f.pth") ==
	           0,
	       "the variable unset: base_url");
	setenv("OMNIHUB_TEST_CATALOG_URL", "http://127.0.0.1:8123/x/", 1);
	tap_ok(strcmp(env_url(with_base, why, sizeof(why)), "http://127.0.0.1:8123/x/dir/f.pth") ==
	           0,
	       "the variable set: it replaces base_url");
	tap_ok(strcmp(env_url(without, why, sizeof(why)), "http://127.0.0.1:8123/x/dir/f.pth") == 0,
	       "the variable set and no base_url: it is the base");
	setenv("OMNIHUB_TEST_CATALOG_URL", "", 1);
	tap_ok(strcmp(env_url(with_base, why, sizeof(why)), "https://a.example/models/dir/f.pth") ==
	           0,
	       "the variable empty: base_url");
	tap_ok(env_url(without, why, sizeof(why))[0] == '\0' &&
	           strncmp(why, "models.m.entries.E.url: a relative URL", 38) == 0,
	       "the variable empty and no base_url: a relative url is refused (%s)", why);
	setenv("OMNIHUB_TEST_CATALOG_URL", "file:///etc/", 1);
	tap_ok(env_url(with_base, why, sizeof(why))[0] == '\0' &&
	           strncmp(why, "base_url_env: ", 14) == 0,
	       "the variable not an http(s) URL: refused (%s)", why);
	unsetenv("OMNIHUB_TEST_CATALOG_URL");
}

/* A catalog of hub h with the models given, and one with one entry E of
 * model m whose fields are given. */
#define CAT(models)                                                                                \
	"{'omnihub_catalog': 1, 'hub': 'h', 'base_url': 'http://e.example/', 'models': {" models   \
	"}}"
#define ENTRY(fields) CAT("'m': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'" fields "}}}")
#define H64           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct {
	const char *json;
	enum catalog_trust trust;
	const char *why; /* what the message begins with */
} bad[] = {
    {"{'omnihub_catalog': 2, 'hub': 'h', 'models': {}, 'future': 1}", CATALOG_USER,
     "omnihub_catalog: unsupported version 2"},
    {"{'hub': 'h', 'models': {}}", CATALOG_USER, "omnihub_catalog: missing"},
    {"{'omnihub_catalog': '1', 'hub': 'h', 'models': {}}", CATALOG_USER,
     "omnihub_catalog: not a number"},
    {"{'omnihub_catalog': 1, 'models': {}}", CATALOG_USER, "hub: missing"},
    {"{'omnihub_catalog': 1, 'hub': 'onnx', 'models': {}}", CATALOG_USER,
     "hub: \"onnx\" is a built-in hub"},
    {"{'omnihub_catalog': 1, 'hub': 'huggingface-datasets', 'models': {}}", CATALOG_USER,
     "hub: \"huggingface-datasets\" is a built-in hub"},
    {"{'omnihub_catalog': 1, 'hub': 'Torch', 'models': {}}", CATALOG_USER, "hub: \"Torch\" is not"},
    {"{'omnihub_catalog': 1, 'hub': '.hidden', 'models': {}}", CATALOG_USER, "hub: "},
    {"{'omnihub_catalog': 1, 'hub': 7, 'models': {}}", CATALOG_USER, "hub: not a string"},
    {"{'omnihub_catalog': 1, 'hub': 'h'}", CATALOG_USER, "models: missing"},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'models': {}, 'hubs': 1}", CATALOG_USER,
     "hubs: unknown key"},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'hub': 'g', 'models': {}}", CATALOG_USER,
     "hub: given twice"},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'description': 5, 'models': {}}", CATALOG_USER,
     "description: not a string"},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'base_url': 'ftp://x/', 'models': {}}", CATALOG_USER,
     "base_url: "},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'base_url_env': 'lower', 'models': {}}", CATALOG_USER,
     "base_url_env: "},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'client_cache': 'pip', 'models': {}}", CATALOG_USER,
     "client_cache: "},
    {CAT("'a/../b': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}}"), CATALOG_USER,
     "models.a/../b: segment \"..\""},
    {CAT("'a//b': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}}"), CATALOG_USER,
     "models.a//b: segment \"\""},
    {CAT("'/a': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}}"), CATALOG_USER,
     "models./a: segment"},
    {CAT("'m': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}},"
         "'m': {'entries': {'F': {'url': 'g.pth', 'format': 'pth'}}}"),
     CATALOG_USER, "models.m: given twice"},
    {CAT("'m': {'entries': {}}"), CATALOG_USER, "models.m.entries: no entries"},
    {CAT("'m': {'default': 'E'}"), CATALOG_USER, "models.m.entries: missing"},
    {CAT("'m': {'meta': [1], 'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}}"), CATALOG_USER,
     "models.m.meta: not an object"},
    {CAT("'m': {'default': 'X', 'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}}"),
     CATALOG_USER, "models.m.default: no entry \"X\""},
    {CAT("'m': {'entries': {'-E': {'url': 'f.pth', 'format': 'pth'}}}"), CATALOG_USER,
     "models.m.entries.-E: not an entry name"},
    {CAT("'m': {'entries': {'E': {'url': 'f.pth', 'format': 'pth', 'file': 'x.pth'},"
         " 'F': {'url': 'g.pth', 'format': 'pth', 'file': 'x.pth'}}}"),
     CATALOG_USER, "models.m.entries.F.file: \"x.pth\" is also the file of entry E"},
    {CAT("'m': {'default': 'E', 'entries': {'E': {'url': 'f.pth', 'format': 'pth'},"
         " 'F': {'url': 'g.pth', 'format': 'pth', 'file': 'DEFAULT.pth'}}}"),
     CATALOG_USER, "models.m.entries.F.file: \"DEFAULT.pth\" is the name of the default's link"},
    {CAT("'a': {'entries': {'E': {'url': 'f.pth', 'format': 'pth', 'file': 'b'}}},"
         "'a/b': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}}"),
     CATALOG_USER, "models.a: its file a/b is also a directory of models"},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'models': {'m': {'entries': {'E': "
     "{'url': 'f.pth', 'format': 'pth'}}}}}",
     CATALOG_USER, "models.m.entries.E.url: a relative URL and the catalog has no base_url"},
    {CAT("'m': {'entries': {'E': {'format': 'pth'}}}"), CATALOG_USER,
     "models.m.entries.E.url: missing"},
    {CAT("'m': {'entries': {'E': {'url': 'ftp://x/f.pth', 'format': 'pth'}}}"), CATALOG_USER,
     "models.m.entries.E.url: \"ftp://x/f.pth\" is not an http(s) URL"},
    {CAT("'m': {'entries': {'E': {'url': 'f.pth'}}}"), CATALOG_USER,
     "models.m.entries.E.format: missing"},
    {ENTRY(", 'format': 'pth'"), CATALOG_USER, "models.m.entries.E.format: given twice"},
    {CAT("'m': {'entries': {'E': {'url': 'f.pth', 'format': 'PTH'}}}"), CATALOG_USER,
     "models.m.entries.E.format: \"PTH\" is not a format"},
    {ENTRY(", 'sizes': 1"), CATALOG_USER, "models.m.entries.E.sizes: unknown key"},
    {ENTRY(", 'file': 'a/b.pth'"), CATALOG_USER, "models.m.entries.E.file: \"a/b.pth\" is not"},
    {CAT("'m': {'entries': {'E': {'url': 'http://x/a.p~h', 'format': 'pth'}}}"), CATALOG_USER,
     "models.m.entries.E.file: the name made from the URL, \"E.p~h\""},
    {ENTRY(", 'digests': {'sha256': '0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
           "abcde'}"),
     CATALOG_USER, "models.m.entries.E.digests.sha256: not 64 hex digits"},
    {ENTRY(", 'digests': {'sha256': '" H64 "0'}"), CATALOG_USER,
     "models.m.entries.E.digests.sha256: not 64 hex digits"},
    {ENTRY(", 'digests': {'sha256': 'g123456789abcdef0123456789abcdef0123456789abcdef0123456789"
           "abcdef'}"),
     CATALOG_USER, "models.m.entries.E.digests.sha256: not 64 hex digits"},
    {ENTRY(", 'digests': {'sha512': 'ab'}"), CATALOG_USER,
     "models.m.entries.E.digests.sha512: unknown key"},
    {ENTRY(", 'digests': {'sha256-prefix': '1234567'}"), CATALOG_USER,
     "models.m.entries.E.digests.sha256-prefix: not 8 to 63 hex digits"},
    {ENTRY(", 'digests': {'sha256-prefix': '" H64 "'}"), CATALOG_USER,
     "models.m.entries.E.digests.sha256-prefix: not 8 to 63 hex digits"},
    {ENTRY(", 'digests': {'md5': '0123'}"), CATALOG_USER,
     "models.m.entries.E.digests.md5: not 32 hex digits"},
    {ENTRY(", 'digests': {'sha1': 12}"), CATALOG_USER,
     "models.m.entries.E.digests.sha1: not 40 hex digits"},
    {ENTRY(", 'digests': {'adler32': 4294967296}"), CATALOG_USER,
     "models.m.entries.E.digests.adler32: not an integer from 0 to 4294967295"},
    {ENTRY(", 'digests': {'adler32': 12.5}"), CATALOG_USER,
     "models.m.entries.E.digests.adler32: not an integer"},
    {ENTRY(", 'digests': {'adler32': '123'}"), CATALOG_USER,
     "models.m.entries.E.digests.adler32: not 8 hex digits"},
    {ENTRY(", 'digests': {'sha256': '" H64 "', 'sha256-prefix': 'ffffffff'}"), CATALOG_USER,
     "models.m.entries.E.digests: the sha256-prefix does not begin the sha256"},
    {ENTRY(", 'digests': {'sha256': '" H64 "', 'sha256-prefix': '01234567', 'sha1': '" SHA1_HEX
           "', 'md5': '" MD5_HEX "', 'adler32': 1}"),
     CATALOG_USER, "models.m.entries.E.digests: more than 4 digests"},
    {ENTRY(", 'digests': ['" H64 "']"), CATALOG_USER, "models.m.entries.E.digests: not an object"},
    {ENTRY(", 'size': -1"), CATALOG_USER, "models.m.entries.E.size: not an integer"},
    {ENTRY(", 'size': 1.5"), CATALOG_USER, "models.m.entries.E.size: not an integer"},
    {ENTRY(", 'size': 9007199254740992"), CATALOG_USER, "models.m.entries.E.size: not an integer"},
    {ENTRY(", 'size': '12'"), CATALOG_USER, "models.m.entries.E.size: not an integer"},
    {ENTRY(", 'unpacked_size': 12"), CATALOG_USER,
     "models.m.entries.E.unpacked_size: only with decompress or archive.member"},
    {ENTRY(", 'decompress': 'gzip', 'archive': {}"), CATALOG_USER,
     "models.m.entries.E.decompress: not with archive"},
    {ENTRY(", 'decompress': 'bzip2'"), CATALOG_USER,
     "models.m.entries.E.decompress: \"bzip2\" is not \"gzip\""},
    {ENTRY(", 'archive': {'member': 'a/../../etc/passwd'}"), CATALOG_USER,
     "models.m.entries.E.archive.member: \"a/../../etc/passwd\" is not a safe relative path"},
    {ENTRY(", 'archive': {'member': '/etc/passwd'}"), CATALOG_USER,
     "models.m.entries.E.archive.member: "},
    {ENTRY(", 'archive': {'expect': ['ok', 'a//b']}"), CATALOG_USER,
     "models.m.entries.E.archive.expect[1]: \"a//b\" is not a safe relative path"},
    {ENTRY(", 'archive': {'expect': 'saved_model.pb'}"), CATALOG_USER,
     "models.m.entries.E.archive.expect: not an array"},
    {ENTRY(", 'archive': {'member': 'a', 'expect': ['a']}"), CATALOG_USER,
     "models.m.entries.E.archive.expect: only for an archive without member"},
    {ENTRY(", 'archive': {'members': 'a'}"), CATALOG_USER,
     "models.m.entries.E.archive.members: unknown key"},
    {ENTRY(", 'convert': [{'to': 'onnx', 'command': 'true'}]"), CATALOG_SHIPPED,
     "models.m.entries.E.convert: commands are accepted only in the user's catalogs"},
    {ENTRY(", 'convert': [{'to': 'onnx'}]"), CATALOG_USER,
     "models.m.entries.E.convert[0].command: missing"},
    {ENTRY(", 'convert': [{'to': 'onnx', 'command': 'x'}, {'to': 'ON', 'command': 'x'}]"),
     CATALOG_USER, "models.m.entries.E.convert[1].to: \"ON\" is not a format"},
    {ENTRY(", 'convert': {'to': 'onnx', 'command': 'x'}"), CATALOG_USER,
     "models.m.entries.E.convert: not an array"},
    {ENTRY(", 'client_id': ''"), CATALOG_USER, "models.m.entries.E.client_id: "},
    {ENTRY(", 'meta': 'text'"), CATALOG_USER, "models.m.entries.E.meta: not an object"},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'models': {}", CATALOG_USER, "not JSON (near byte"},
    {"{'omnihub_catalog': 1, 'hub': 'h', 'models': {}} trailing", CATALOG_USER,
     "not JSON (near byte"},
    {"", CATALOG_USER, "not JSON (near byte"},
    {"[{'omnihub_catalog': 1}]", CATALOG_USER, "not a JSON object"},
    {"'omnihub_catalog'", CATALOG_USER, "not a JSON object"},
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct catalog_set set = {0};
		char why[1024];
		int rc;

		rc = add(&set, bad[i].json, "bad.json", bad[i].trust, why, sizeof(why));
		tap_ok(rc == -EINVAL && strncmp(why, bad[i].why, strlen(bad[i].why)) == 0 &&
		           set.nhubs == 0 && set.nfiles == 0,
		       "refused: %s (got: %s)", bad[i].why, why);
		catalog_set_free(&set);
	}
}

/* What is allowed: the same entry with what a strict reader might refuse. */
static void test_lenient(void)
{
	struct catalog_set set = {0};
	const struct catalog_model *m;
	char why[512];
	int rc;

	rc = add(
	    &set,
	    ENTRY(", 'convert': [{'to': 'onnx', 'command': 'python3 conv.py \\'$1\\' \\'$2\\''}],"
	          " 'meta': {'Anything': {'goes': ['here', null]}, 'unknown_key': true}"),
	    "user.json", CATALOG_USER, why, sizeof(why));
	m = rc == 0 ? catalog_hub_model(catalog_set_hub(&set, "h"), "m") : NULL;
	tap_ok(m && m->entries[0].nconverts == 1 &&
	           strcmp(m->entries[0].converts[0].to, "onnx") == 0 &&
	           strcmp(m->entries[0].converts[0].command, "python3 conv.py \"$1\" \"$2\"") == 0,
	       "a user catalog may name a converter (%s)", why);
	tap_ok(m && strcmp(m->entries[0].meta_json,
	                   "{\"Anything\":{\"goes\":[\"here\",null]},\"unknown_key\":true}") == 0,
	       "any key inside meta");
	catalog_set_free(&set);
	rc = add(&set,
	         CAT("'a': {'entries': {'E': {'url': 'f.pth', 'format': 'pth', 'file': 'b.pth'}}},"
	             "'a/b': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}},"
	             "'a/b-c/d_e.1+2': {'entries': {'E': {'url': 'f.pth', 'format': 'pth'}}}"),
	         "dirs.json", CATALOG_SHIPPED, why, sizeof(why));
	tap_ok(rc == 0 && catalog_set_hub(&set, "h")->nmodels == 3,
	       "a model's directory may hold files and other models' directories (%s)", why);
	catalog_set_free(&set);
}

static const struct catalog_model *model_in(const struct catalog_set *set, const char *hub,
                                            const char *path)
{
	const struct catalog_hub *h = catalog_set_hub(set, hub);

	return h ? catalog_hub_model(h, path) : NULL;
}

#define ONE(hub, extra, model, url)                                                                \
	"{'omnihub_catalog': 1, 'hub': '" hub "', " extra "'models': {'" model                     \
	"': {'entries': {'E': {'url': '" url "', 'format': 'pth', 'file': 'y.pth'}}}}}"

static void test_merge(void)
{
	struct catalog_set set = {0};
	const struct catalog_model *m;
	const struct catalog_hub *hub;
	char why[1024];
	int rc;

	rc = add(&set, ONE("h", "", "m1", "http://s/1"), "a.json", CATALOG_SHIPPED, why,
	         sizeof(why));
	rc |= add(&set,
	          "{'omnihub_catalog': 1, 'hub': 'h', 'client_cache': 'keras', 'models': {"
	          "'m0': {'entries': {'E': {'url': 'http://s/0', 'format': 'h5'}}},"
	          "'m2': {'entries': {'E': {'url': 'http://s/2', 'format': 'h5'}}}}}",
	          "b.json", CATALOG_SHIPPED, why, sizeof(why));
	rc |= add(&set, ONE("g", "", "m1", "http://s/g"), "g.json", CATALOG_SHIPPED, why,
	          sizeof(why));
	hub = catalog_set_hub(&set, "h");
	tap_ok(rc == 0 && set.nhubs == 2 && strcmp(set.hubs[0].name, "g") == 0 && hub &&
	           hub->nmodels == 3 && strcmp(hub->models[0].path, "m0") == 0 &&
	           strcmp(hub->models[1].path, "m1") == 0 &&
	           strcmp(hub->models[2].path, "m2") == 0 &&
	           strcmp(hub->client_cache, "keras") == 0 && set.nfiles == 3,
	       "two files of one hub merge, sorted; hubs sorted; client_cache from the file that "
	       "sets it");

	rc = add(&set, ONE("h", "'client_cache': 'torch', ", "m3", "http://s/3"), "c.json",
	         CATALOG_USER, why, sizeof(why));
	tap_ok(rc == -EINVAL && strncmp(why, "client_cache: \"torch\"", 21) == 0 &&
	           !model_in(&set, "h", "m3") && set.nfiles == 3,
	       "another client_cache for the hub is refused (%s)", why);
	rc = add(&set, ONE("h", "'client_cache': 'keras', ", "m3", "http://s/3"), "c.json",
	         CATALOG_USER, why, sizeof(why));
	tap_ok(rc == 0 && model_in(&set, "h", "m3"), "the same client_cache is fine");

	rc = add(&set,
	         "{'omnihub_catalog': 1, 'hub': 'h', 'models': {"
	         "'m4': {'entries': {'E': {'url': 'http://s/4', 'format': 'pth'}}},"
	         "'m1': {'entries': {'E': {'url': 'http://s/other', 'format': 'pth'}}}}}",
	         "d.json", CATALOG_SHIPPED, why, sizeof(why));
	m = model_in(&set, "h", "m1");
	tap_ok(rc == -EINVAL &&
	           strcmp(why, "models.m1: the hub h already has this model, from a.json") == 0,
	       "a model twice at one level: the later file is refused, naming the first (%s)", why);
	tap_ok(m && strcmp(m->entries[0].url, "http://s/1") == 0 &&
	           strcmp(m->entries[0].source_file, "a.json") == 0 && !model_in(&set, "h", "m4") &&
	           set.nfiles == 4,
	       "the first stays, and nothing of the refused file is added");

	rc = add(&set, ONE("h", "", "m1", "http://user/1"), "user.json", CATALOG_USER, why,
	         sizeof(why));
	m = model_in(&set, "h", "m1");
	tap_ok(rc == 0 && m && strcmp(m->entries[0].url, "http://user/1") == 0 &&
	           strcmp(m->entries[0].source_file, "user.json") == 0 &&
	           catalog_set_hub(&set, "h")->nmodels == 4,
	       "a user catalog's model replaces the shipped one (%s)", why);
	rc = add(&set, ONE("h", "", "m1", "http://user/2"), "user2.json", CATALOG_USER, why,
	         sizeof(why));
	tap_ok(rc == -EINVAL && strstr(why, "models.m1: ") == why && strstr(why, "user.json"),
	       "a second user catalog with it is refused (%s)", why);
	rc = add(&set, ONE("h", "", "m1", "http://late/1"), "late.json", CATALOG_SHIPPED, why,
	         sizeof(why));
	m = model_in(&set, "h", "m1");
	tap_ok(rc == 0 && m && strcmp(m->entries[0].url, "http://user/1") == 0,
	       "a shipped one read after the user's does not replace it");
	m = model_in(&set, "g", "m1");
	tap_ok(m && strcmp(m->entries[0].url, "http://s/g") == 0, "another hub's model is its own");

	/* A file's name in one file, a model's directory in another. */
	rc = add(&set, ONE("h", "", "m1/y.pth", "http://s/x"), "clash.json", CATALOG_USER, why,
	         sizeof(why));
	tap_ok(
	    rc == -EINVAL &&
	        strcmp(why, "models.m1/y.pth: its directory m1/y.pth is a file of the model m1") ==
	            0 &&
	        !model_in(&set, "h", "m1/y.pth"),
	    "a model under another model's file is refused (%s)", why);
	rc = add(&set, ONE("h", "", "m1/z", "http://s/x"), "under.json", CATALOG_USER, why,
	         sizeof(why));
	tap_ok(rc == 0 && model_in(&set, "h", "m1/z"), "a model under another model's directory");
	rc = add(&set, ONE("h", "", "m1/z/y.pth/w", "http://s/x"), "deep.json", CATALOG_USER, why,
	         sizeof(why));
	tap_ok(rc == -EINVAL &&
	           strncmp(why, "models.m1/z/y.pth/w: its directory m1/z/y.pth", 45) == 0,
	       "deeper too (%s)", why);
	catalog_set_free(&set);
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) == 0 ? rc : -1;
}

static void test_dir(void)
{
	char dir[] = "/tmp/test_catalog.XXXXXX", path[512];
	struct catalog_set set = {0};
	int rc, fd;

	if (!mkdtemp(dir)) {
		tap_ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	write_file(dir, "a-good.json", q(ONE("good", "", "m", "http://s/m")));
	write_file(dir, "b-bad.json", q(ONE("onnx", "", "m", "http://s/m")));
	write_file(dir, "c-not.txt", q(ONE("txt", "", "m", "http://s/m")));
	write_file(dir, ".hidden.json", q(ONE("hidden", "", "m", "http://s/m")));
	write_file(dir, "d-later.json", q(ONE("good", "", "n", "http://s/n")));
	snprintf(path, sizeof(path), "%s/e-dir.json", dir);
	mkdir(path, 0700);
	rc = catalog_set_add_dir(&set, dir, CATALOG_SHIPPED);
	tap_ok(rc == 2 && set.nrefused == 1 && set.nhubs == 1 && model_in(&set, "good", "m") &&
	           model_in(&set, "good", "n") && !catalog_set_hub(&set, "txt") &&
	           !catalog_set_hub(&set, "hidden"),
	       "a directory: its *.json in name order; a bad one refused and counted; other files "
	       "ignored (rc %d, refused %zu)",
	       rc, set.nrefused);
	tap_ok(set.nfiles == 2 && strstr(set.files[0], "/a-good.json") &&
	           strstr(set.files[1], "/d-later.json"),
	       "files are named by their path, in name order");
	rc = catalog_set_add_dir(&set, dir, CATALOG_SHIPPED);
	tap_ok(rc == 0 && set.nrefused == 4,
	       "read again at the same level: all refused as duplicates");
	catalog_set_free(&set);

	/* One byte over the limit (a sparse file), the rest of it valid JSON
	 * would not matter. */
	snprintf(path, sizeof(path), "%s/big.json", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = fd >= 0 && ftruncate(fd, (off_t)CATALOG_MAX_BYTES + 1) == 0 ? 0 : -1;
	if (fd >= 0)
		close(fd);
	rc = rc == 0 ? catalog_set_add_dir(&set, dir, CATALOG_SHIPPED) : -1;
	tap_ok(rc == 2 && set.nrefused == 2, "a file over %u bytes is refused", CATALOG_MAX_BYTES);
	catalog_set_free(&set);

	snprintf(path, sizeof(path), "%s/missing", dir);
	tap_ok(catalog_set_add_dir(&set, path, CATALOG_USER) == 0 && set.nfiles == 0 &&
	           set.nrefused == 0,
	       "a missing directory is no error");
	snprintf(path, sizeof(path), "%s/c-not.txt", dir);
	tap_ok(catalog_set_add_dir(&set, path, CATALOG_USER) == -ENOTDIR, "a file is no directory");
	catalog_set_free(&set);
	tap_ok(tap_remove_tree(dir) == 0, "the temporary directory is removed");
}

static bool well_formed(const struct digest_spec *spec)
{
	size_t n = strlen(spec->hex), max = digest_hex_len(spec->algo);

	if (!digest_spec_verifies(spec) || spec->hex[strspn(spec->hex, "0123456789abcdef")])
		return false;
	if (spec->algo == DIGEST_SHA256 && n >= DIGEST_PREFIX_MIN && n < max)
		return true; /* a prefix */
	return n == max && spec->algo != DIGEST_GIT_BLOB_SHA1;
}

static void test_shipped(void)
{
	const char *srcdir = getenv("OMNIHUB_SRCDIR");
	struct catalog_set set = {0};
	size_t nmodels = 0, nentries = 0, bad_models = 0, bad_digests = 0;
	char dir[4096];
	struct stat st;
	int rc;

	snprintf(dir, sizeof(dir), "%s/catalogs", srcdir ? srcdir : ".");
	if (!srcdir || stat(dir, &st) != 0) {
		printf("ok %d # SKIP no shipped catalogs yet\n", ++tap_count);
		return;
	}
	rc = catalog_set_add_dir(&set, dir, CATALOG_SHIPPED);
	for (size_t h = 0; h < set.nhubs; h++)
		for (size_t i = 0; i < set.hubs[h].nmodels; i++) {
			const struct catalog_model *m = &set.hubs[h].models[i];
			nmodels++;
			if (m->nentries == 0)
				bad_models++;
			for (size_t j = 0; j < m->nentries; j++) {
				nentries++;
				for (size_t k = 0; k < m->entries[j].ndigests; k++)
					if (!well_formed(&m->entries[j].digests[k]))
						bad_digests++;
			}
		}
	tap_ok(
	    rc > 0 && set.nrefused == 0 && set.nhubs >= 1 && bad_models == 0 && bad_digests == 0,
	    "the shipped catalogs load: %d files, %zu hubs, %zu models, %zu entries; %zu refused, "
	    "%zu models without entries, %zu malformed digests",
	    rc, set.nhubs, nmodels, nentries, set.nrefused, bad_models, bad_digests);
	catalog_set_free(&set);
}

int main(void)
{
	test_good();
	test_strongest();
	test_base_url_env();
	test_bad();
	test_lenient();
	test_merge();
	test_dir();
	test_shipped();
	return tap_done();
}
