/* test_hub_views.c: the views of clients' caches (hub_views.c, views_hf.c)
 * over fake peers: names, link targets, the folders, refs' bytes.
 * Not for: real hubs or a mount (tests/integration/test_views.py). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "hub_views.h"
#include "tap.h"

/* ---- a catalog-like peer: two torch files, one Keras file ---- */

static int cat_client_paths(struct hub *hub,
                            int (*fn)(void *ctx, const char *path, const char *client,
                                      const char *client_path),
                            void *ctx)
{
	int rc;

	(void)hub;
	rc =
	    fn(ctx, "resnet18/IMAGENET1K_V1.pth", "torch", "hub/checkpoints/resnet18-f37072fd.pth");
	if (rc == 0)
		rc = fn(ctx, "alexnet/V1.pth", "torch", "hub/checkpoints/alexnet-owt.pth");
	if (rc == 0)
		rc = fn(ctx, "vgg16/notop.h5", "keras", "models/vgg16_notop.h5");
	if (rc == 0) /* from a hostile index: never shown */
		rc = fn(ctx, "evil/x.pth", "torch", "hub/checkpoints/../../../evil.pth");
	return rc;
}

static int no_list(struct hub *hub, const char *dir, struct entry_list *out)
{
	(void)hub;
	(void)dir;
	(void)out;
	return -ENOENT;
}

static int no_lookup(struct hub *hub, const char *path, struct entry *out)
{
	(void)hub;
	(void)path;
	(void)out;
	return -ENOENT;
}

static const struct hub_ops cat_ops = {
    .name = "torchvision",
    .list = no_list,
    .lookup = no_lookup,
    .client_paths = cat_client_paths,
};

/* ---- an HF-like peer: org/name at two commits, one nested file ---- */

#define MAIN_COMMIT "1111111111111111111111111111111111111111"
#define OLD_COMMIT  "2222222222222222222222222222222222222222"

/* The ETags of the two files (the git blob sha1 of a plain file, the
 * sha256 of an LFS one). */
#define CONFIG_ETAG "3333333333333333333333333333333333333333"
#define MODEL_ETAG  "4444444444444444444444444444444444444444444444444444444444444444"

static void entry_of(struct entry *e, const char *name, enum entry_type type)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->name, name);
	e->type = type;
	if (!strcmp(name, "config.json"))
		digest_spec_set(&e->digest, DIGEST_GIT_BLOB_SHA1, CONFIG_ETAG);
	else if (!strcmp(name, "model.onnx"))
		digest_spec_set(&e->digest, DIGEST_SHA256, MODEL_ETAG);
}

/* Both commits hold the same files: "acme/tiny@<commit>" as "acme/tiny@". */
static const char *at_any_commit(const char *path, char *buf, size_t size)
{
	const char *at = strchr(path, '@');

	if (at && (!strncmp(at + 1, MAIN_COMMIT, 40) || !strncmp(at + 1, OLD_COMMIT, 40)))
		snprintf(buf, size, "%.*s@%s", (int)(at - path), path, at + 41);
	else
		snprintf(buf, size, "%s", path);
	return buf;
}

static int hf_lookup(struct hub *hub, const char *path, struct entry *out)
{
	const char *base = strrchr(path, '/');
	char buf[512];

	(void)hub;
	base = base ? base + 1 : path;
	path = at_any_commit(path, buf, sizeof(buf));
	if (!strcmp(path, "acme") || !strcmp(path, "acme/tiny") || !strcmp(path, "acme/tiny@") ||
	    !strcmp(path, "acme/tiny@/onnx"))
		entry_of(out, base, ENTRY_DIR);
	else if (!strcmp(path, "acme/tiny@/config.json") ||
	         !strcmp(path, "acme/tiny@/onnx/model.onnx"))
		entry_of(out, base, ENTRY_FILE);
	else
		return -ENOENT;
	return 0;
}

static int hf_list(struct hub *hub, const char *dir, struct entry_list *out)
{
	struct entry e;
	char buf[512];
	int rc = 0;

	(void)hub;
	dir = at_any_commit(dir, buf, sizeof(buf));
	if (!strcmp(dir, "")) {
		entry_of(&e, "acme", ENTRY_DIR);
		rc = entry_list_add(out, &e);
	} else if (!strcmp(dir, "acme")) {
		entry_of(&e, "tiny", ENTRY_DIR);
		rc = entry_list_add(out, &e);
	} else if (!strcmp(dir, "acme/tiny@")) {
		entry_of(&e, "config.json", ENTRY_FILE);
		rc = entry_list_add(out, &e);
		entry_of(&e, "onnx", ENTRY_DIR);
		if (rc == 0)
			rc = entry_list_add(out, &e);
	} else if (!strcmp(dir, "acme/tiny@/onnx")) {
		entry_of(&e, "model.onnx", ENTRY_FILE);
		rc = entry_list_add(out, &e);
	} else {
		rc = -ENOENT;
	}
	return rc;
}

static int hf_commit_of(struct hub *hub, const char *repo, char out[41])
{
	(void)hub;
	if (!strcmp(repo, "acme/tiny") || !strcmp(repo, "acme/tiny@main"))
		strcpy(out, MAIN_COMMIT);
	else if (!strcmp(repo, "acme/tiny@v1.0"))
		strcpy(out, OLD_COMMIT);
	else
		return -ENOENT;
	return 0;
}

static const struct hub_ops hf_ops = {
    .name = "huggingface",
    .list = hf_list,
    .lookup = hf_lookup,
    .client_repos = "huggingface/hub/models--",
    .commit_of = hf_commit_of,
};

/* ---- the session: the two peers and the views themselves ---- */

static struct hub peers[3];

static int fake_peer(void *ctx, size_t i, struct hub **out)
{
	(void)ctx;
	*out = NULL;
	if (i >= 3)
		return -ENOENT;
	if (peers[i].ops->flags & HUB_SHOWS_PEERS)
		return -EAGAIN;
	*out = &peers[i];
	return 0;
}

static bool listed(struct hub *views, const char *dir, const char *name, enum entry_type type)
{
	struct entry_list list = {0};
	bool found = false;

	if (views->ops->list(views, dir, &list) == 0)
		for (size_t i = 0; i < list.count; i++)
			found = found ||
			        (!strcmp(list.items[i].name, name) && list.items[i].type == type);
	entry_list_free(&list);
	return found;
}

static bool link_is(struct hub *views, const char *path, const char *want)
{
	char target[4096];
	struct entry e;

	return views->ops->lookup(views, path, &e) == 0 && e.type == ENTRY_LINK &&
	       e.size == strlen(want) &&
	       views->ops->readlink(views, path, target, sizeof(target)) == 0 &&
	       !strcmp(target, want);
}

int main(void)
{
	struct hub_env env = {.peer = fake_peer};
	struct hub *views = &peers[2];
	struct entry e;
	char why[256], *data = NULL;
	size_t len = 0;

	peers[0] = (struct hub){.ops = &cat_ops, .env = &env, .name = "torchvision"};
	peers[1] = (struct hub){.ops = &hf_ops, .env = &env, .name = "huggingface"};
	peers[2] = (struct hub){.ops = &hub_views_ops, .env = &env, .name = HUB_VIEWS_NAME};
	tap_ok(views->ops->open(views, why, sizeof(why)) == 0, "the views open");

	/* torch.hub's and Keras's layouts, from the peers' client paths. */
	tap_ok(listed(views, "", "torch", ENTRY_DIR) && listed(views, "", "keras", ENTRY_DIR) &&
	           listed(views, "", "huggingface", ENTRY_DIR),
	       "the root lists torch/, keras/ and huggingface/");
	tap_ok(listed(views, "", "onnx", ENTRY_DIR) && listed(views, "", "tfhub", ENTRY_DIR) &&
	           listed(views, "onnx", "hub", ENTRY_DIR),
	       "onnx/hub/ and tfhub/ exist with no hub filling them");
	tap_ok(listed(views, "", "dl4j", ENTRY_DIR) && listed(views, "dl4j", "models", ENTRY_DIR) &&
	           listed(views, "", "omnihub", ENTRY_DIR),
	       "dl4j/models/ and omnihub/ exist with no hub filling them");
	tap_ok(listed(views, "torch/hub/checkpoints", "resnet18-f37072fd.pth", ENTRY_LINK) &&
	           listed(views, "torch/hub/checkpoints", "alexnet-owt.pth", ENTRY_LINK),
	       "hub/checkpoints lists a link per torch entry");
	tap_ok(link_is(views, "torch/hub/checkpoints/resnet18-f37072fd.pth",
	               "../../../../torchvision/resnet18/IMAGENET1K_V1.pth"),
	       "a torch link climbs to the mount's root and into the hub");
	tap_ok(link_is(views, "keras/models/vgg16_notop.h5", "../../../torchvision/vgg16/notop.h5"),
	       "a Keras link, one folder less deep");
	tap_ok(views->ops->lookup(views, "torch/hub/checkpoints/nope.pth", &e) == -ENOENT,
	       "a name no peer gives: ENOENT");
	tap_ok(!listed(views, "torch/hub/checkpoints", "..", ENTRY_DIR) &&
	           !listed(views, "torch", "evil.pth", ENTRY_LINK) &&
	           views->ops->lookup(views, "evil.pth", &e) == -ENOENT,
	       "a client path with '..' is left out");
	{
		struct entry_list list = {0};
		tap_ok(views->ops->list(views, "torch/hub/checkpoints/alexnet-owt.pth", &list) ==
		           -ENOTDIR,
		       "listing a link: ENOTDIR");
		entry_list_free(&list);
	}

	/* huggingface_hub's layout, on demand from the HF peer. */
	tap_ok(listed(views, "huggingface/hub", "models--acme--tiny", ENTRY_DIR) &&
	           listed(views, "huggingface/hub", ".locks", ENTRY_DIR),
	       "huggingface/hub lists the known repo and .locks");
	tap_ok(listed(views, "huggingface/hub/models--acme--tiny", "refs", ENTRY_DIR) &&
	           listed(views, "huggingface/hub/models--acme--tiny", "snapshots", ENTRY_DIR) &&
	           listed(views, "huggingface/hub/models--acme--tiny", "blobs", ENTRY_DIR),
	       "a repo folder holds refs/, snapshots/, blobs/");
	tap_ok(views->ops->lookup(views, "huggingface/hub/.locks/models--acme--tiny", &e) == 0 &&
	           e.type == ENTRY_DIR,
	       ".locks/<repo folder> exists");
	tap_ok(views->ops->lookup(views, "huggingface/hub/models--acme--nope", &e) == -ENOENT,
	       "a repo the peer lacks: ENOENT");
	tap_ok(views->ops->lookup(views, "huggingface/hub/models--acme--tiny/refs/v1.0", &e) == 0 &&
	           e.type == ENTRY_FILE && e.size == 40,
	       "refs/<branch> is a 40-byte file");
	tap_ok(views->ops->content(views, "huggingface/hub/models--acme--tiny/refs/v1.0", &data,
	                           &len) == 0 &&
	           len == 40 && !memcmp(data, OLD_COMMIT, 40),
	       "refs/<branch> holds the commit, without a newline");
	free(data);
	tap_ok(
	    listed(views, "huggingface/hub/models--acme--tiny/snapshots", MAIN_COMMIT, ENTRY_DIR),
	    "snapshots/ lists the default branch's commit");
	tap_ok(link_is(views,
	               "huggingface/hub/models--acme--tiny/snapshots/" OLD_COMMIT "/config.json",
	               "../../../../../../huggingface/acme/tiny@" OLD_COMMIT "/config.json"),
	       "a snapshot file links into the hub at that commit");
	tap_ok(link_is(views,
	               "huggingface/hub/models--acme--tiny/snapshots/" OLD_COMMIT
	               "/onnx/model.onnx",
	               "../../../../../../../huggingface/acme/tiny@" OLD_COMMIT "/onnx/model.onnx"),
	       "a nested file's link climbs one more folder");
	tap_ok(listed(views, "huggingface/hub/models--acme--tiny/snapshots/" OLD_COMMIT, "onnx",
	              ENTRY_DIR) &&
	           listed(views, "huggingface/hub/models--acme--tiny/snapshots/" OLD_COMMIT,
	                  "config.json", ENTRY_LINK),
	       "a snapshot lists real folders and links");
	tap_ok(views->ops->lookup(views,
	                          "huggingface/hub/models--acme--tiny/snapshots/" MAIN_COMMIT "/x",
	                          &e) == -ENOENT,
	       "a path the commit lacks: ENOENT");
	tap_ok(
	    listed(views, "huggingface/hub/models--acme--tiny/blobs", CONFIG_ETAG, ENTRY_LINK) &&
	        listed(views, "huggingface/hub/models--acme--tiny/blobs", MODEL_ETAG, ENTRY_LINK),
	    "blobs/ lists the default commit's files by ETag");
	tap_ok(link_is(views, "huggingface/hub/models--acme--tiny/blobs/" MODEL_ETAG,
	               "../../../../../huggingface/acme/tiny@" MAIN_COMMIT "/onnx/model.onnx"),
	       "blobs/<sha256> links to that commit's LFS file");
	tap_ok(views->ops->lookup(views, "huggingface/hub/models--acme--tiny/blobs/" OLD_COMMIT,
	                          &e) == -ENOENT,
	       "an ETag no file has: ENOENT");
	views->ops->close(views);
	return tap_done();
}
