/* test_tree.c: unit tests of the namespace's node lifetimes: lookups the
 * kernel forgets, references, rebinding. Not for: FUSE replies (fs.c) or
 * real hubs (the hub here is a table in this file). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "hub_state.h"
#include "tap.h"
#include "tree.h"

#define ROOT_INO 1
#define NFILES   5

/* The fake hub: "dir/" holding NFILES files f0..f4, and a file "a" whose
 * content (size and digest) the test changes through a_size. */
static uint64_t a_size = 100;

static void fake_entry(struct entry *out, const char *name, enum entry_type type, uint64_t size)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->type = type;
	out->size = size;
	out->mtime = 1700000000;
	if (type != ENTRY_DIR) {
		out->digest.algo = DIGEST_SHA256;
		snprintf(out->digest.hex, sizeof(out->digest.hex), "%064llx",
		         (unsigned long long)size);
	}
}

static int fake_open(struct hub *hub, char *why, size_t why_size)
{
	(void)hub;
	(void)why;
	(void)why_size;
	return 0;
}

static int fake_lookup(struct hub *hub, const char *path, struct entry *out)
{
	(void)hub;
	if (strcmp(path, "a") == 0) {
		fake_entry(out, "a", ENTRY_FILE, a_size);
		return 0;
	}
	if (strcmp(path, "dir") == 0) {
		fake_entry(out, "dir", ENTRY_DIR, 0);
		return 0;
	}
	/* Any "dir/f<N>" exists, so a test can look up as many names as it
	 * likes. */
	if (strncmp(path, "dir/f", 5) == 0 && path[5]) {
		fake_entry(out, path + 4, ENTRY_FILE, 10 + strlen(path));
		return 0;
	}
	return -ENOENT;
}

static int fake_list(struct hub *hub, const char *dir, struct entry_list *out)
{
	struct entry e;
	char name[16];

	(void)hub;
	if (strcmp(dir, "dir") != 0)
		return -ENOTDIR;
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "dir/f%d", i);
		fake_lookup(hub, name, &e);
		if (entry_list_add(out, &e) != 0)
			return -ENOMEM;
	}
	return 0;
}

static int fake_source(struct hub *hub, const char *path, struct source *out)
{
	(void)hub;
	(void)path;
	(void)out;
	return -ENOENT;
}

static void fake_close(struct hub *hub)
{
	(void)hub;
}

static const struct hub_ops fake_ops = {
    .name = "fake",
    .open = fake_open,
    .list = fake_list,
    .lookup = fake_lookup,
    .source = fake_source,
    .close = fake_close,
};

/* What a FUSE lookup does: find, count the kernel's lookup, drop the
 * reference. Returns the inode number, 0 on error. */
static uint64_t kernel_lookup(struct tree *tree, uint64_t parent, const char *name)
{
	struct node *dir = tree_node(tree, parent), *child = NULL;
	uint64_t ino;

	if (!dir || tree_lookup(tree, dir, name, &child) != 0)
		return 0;
	tree_count_lookup(tree, child);
	ino = child->ino;
	tree_unref(tree, child);
	return ino;
}

/* A listing: keeps a reference on every child, as fs.c's does. */
struct held {
	struct tree *tree;
	struct node *nodes[NFILES];
	size_t count;
};

static int hold_child(void *ctx, struct node *child)
{
	struct held *held = ctx;

	if (held->count == NFILES)
		return -ENOSPC;
	tree_ref(held->tree, child);
	held->nodes[held->count++] = child;
	return 0;
}

static int ignore_child(void *ctx, struct node *child)
{
	(*(size_t *)ctx)++;
	(void)child;
	return 0;
}

int main(void)
{
	struct hub hub = {.ops = &fake_ops, .name = "fake"};
	struct tree *tree = NULL;
	struct tree_binding *bindings = NULL;
	size_t nbindings = 0, seen = 0;
	struct held held = {0};
	uint64_t hub_ino, dir_ino, a1, a2, a3, f;
	struct node *node;
	bool all_fresh = true;

	if (tree_new(&tree, &hub, 1) != 0) {
		tap_ok(0, "tree_new");
		return tap_done();
	}
	held.tree = tree;
	tap_ok(tree_node_count(tree) == 1 && tree_node(tree, ROOT_INO) != NULL,
	       "a new tree holds the root alone");

	hub_ino = kernel_lookup(tree, ROOT_INO, "fake");
	dir_ino = kernel_lookup(tree, hub_ino, "dir");
	a1 = kernel_lookup(tree, hub_ino, "a");
	tap_ok(hub_ino > ROOT_INO && dir_ino > hub_ino && a1 > dir_ino &&
	           tree_node_count(tree) == 4,
	       "lookups bind names to new inode numbers");
	tap_ok(kernel_lookup(tree, hub_ino, "a") == a1, "a name looked up again keeps its inode");

	/* Two lookups given: one forget leaves it, the second frees it. */
	tree_forget(tree, a1, 1);
	tap_ok(tree_node(tree, a1) != NULL, "a node the kernel still has a lookup of stays");
	tree_forget(tree, a1, 1);
	tap_ok(tree_node(tree, a1) == NULL && tree_node_count(tree) == 3,
	       "a node forgotten as often as it was looked up is freed");
	a2 = kernel_lookup(tree, hub_ino, "a");
	tap_ok(a2 != 0 && a2 > a1,
	       "a name looked up after its node was freed gets a fresh inode "
	       "(%llu after %llu)",
	       (unsigned long long)a2, (unsigned long long)a1);

	/* A reference outlives the kernel's lookups. */
	node = tree_node(tree, a2);
	tree_ref(tree, node);
	tree_forget(tree, a2, 1);
	tap_ok(tree_node(tree, a2) == node, "a referenced node survives its forget");
	tap_ok(kernel_lookup(tree, hub_ino, "a") == a2,
	       "and stays its name's binding while it lives");
	tree_forget(tree, a2, 1);
	tree_unref(tree, node);
	tap_ok(tree_node(tree, a2) == NULL && tree_node_count(tree) == 3,
	       "the last reference dropped frees it");

	/* A name whose content changed: a new inode; the old one lives on,
	 * unbound, until the kernel forgets it. */
	a1 = kernel_lookup(tree, hub_ino, "a");
	a_size = 200;
	a2 = kernel_lookup(tree, hub_ino, "a");
	node = tree_node(tree, a1);
	tap_ok(a2 > a1 && node && node->size == 100 && tree_node(tree, a2)->size == 200,
	       "changed content binds the name to a new inode; the old keeps its size");
	tap_ok(tree_hub_files(tree, &hub, &bindings, &nbindings) == 0 && nbindings == 2,
	       "tree_hub_files lists a folder and a file, not the hub's root");
	for (size_t i = 0; i < nbindings; i++) {
		if (strcmp(bindings[i].name, "dir") == 0)
			tap_ok(bindings[i].dir, "the folder's binding says it is one");
		else
			tap_ok(!bindings[i].dir && bindings[i].size == 200 &&
				       strcmp(bindings[i].name, "a") == 0,
			       "tree_hub_files lists the name's current binding only");
	}
	tree_bindings_free(bindings, nbindings);

	/* Pages kept across opens only while the same verified file serves. */
	{
		struct node *file = tree_node(tree, a2);
		struct stat st = { .st_dev = 1, .st_ino = 7 };

		tap_ok(tree_note_served(tree, file, &st), "a first open keeps what is cached");
		tap_ok(tree_note_served(tree, file, &st), "the same file again keeps it");
		tree_note_streamed(tree, file);
		tap_ok(!tree_note_served(tree, file, &st),
		       "after a stream of unverified bytes, the next open drops the pages");
		tap_ok(tree_note_served(tree, file, &st), "and the one after keeps them again");
		st.st_ino = 8;
		tap_ok(!tree_note_served(tree, file, &st), "another file (a repair): dropped");
	}

	/* A listing the kernel may keep while it stays the same. */
	{
		struct node *dir = tree_node(tree, dir_ino);
		bool keep, cache;

		tree_listing_open(tree, dir, "one", &keep, &cache);
		tap_ok(!keep && cache, "a first listing: nothing to keep, the kernel may cache it");
		tree_listing_close(tree, dir, true);
		tree_listing_open(tree, dir, "one", &keep, &cache);
		tap_ok(keep && cache, "the same listing again: the kernel keeps its copy");
		tree_listing_open(tree, dir, "two", &keep, &cache);
		tap_ok(!keep && !cache,
		       "another listing while the first is open: neither kept nor cached");
		tree_listing_close(tree, dir, true);
		tree_listing_open(tree, dir, "two", &keep, &cache);
		tap_ok(!keep && !cache, "nor while the older one may still fill the cache");
		tree_listing_close(tree, dir, true);
		tree_listing_close(tree, dir, true);
		tree_listing_open(tree, dir, "two", &keep, &cache);
		tap_ok(!keep && cache, "once all are closed: the copy is dropped, then cached anew");
		tree_listing_close(tree, dir, false);
		tree_listing_open(tree, dir, "two", &keep, &cache);
		tap_ok(!keep && cache, "an open the kernel never got: its copy is dropped next time");
		tree_listing_close(tree, dir, true);
	}
	tree_forget(tree, a1, 1);
	tap_ok(tree_node(tree, a1) == NULL && kernel_lookup(tree, hub_ino, "a") == a2,
	       "forgetting the old inode frees it and leaves the new binding");
	tree_forget(tree, a2, 2);
	a3 = kernel_lookup(tree, hub_ino, "a");
	tap_ok(tree_node(tree, a2) == NULL && a3 > a2, "forgetting the new one frees it too");
	tree_forget(tree, a3, 1);

	/* Listings: children held only by the listing's references. */
	node = tree_node(tree, dir_ino);
	tap_ok(tree_list(tree, node, ignore_child, &seen) == 0 && seen == NFILES &&
	           tree_node_count(tree) == 3,
	       "a listing nobody keeps leaves no nodes behind (%zu nodes)", tree_node_count(tree));
	tap_ok(tree_list(tree, node, hold_child, &held) == 0 && held.count == NFILES &&
	           tree_node_count(tree) == 3 + NFILES,
	       "a kept listing holds its children");
	f = held.nodes[0]->ino;
	tree_count_lookup(tree, held.nodes[0]); /* a READDIRPLUS entry */
	for (size_t i = 0; i < held.count; i++)
		tree_unref(tree, held.nodes[i]);
	tap_ok(tree_node_count(tree) == 4 && tree_node(tree, f) != NULL,
	       "releasing it frees all but the child the kernel was given");
	tree_forget(tree, f, 1);
	tap_ok(tree_node_count(tree) == 3, "which its forget frees");

	/* Many distinct names, each forgotten: memory does not grow. */
	for (int i = 0; i < 20000; i++) {
		char name[32];
		uint64_t ino;
		snprintf(name, sizeof(name), "f%d", 1000 + i);
		ino = kernel_lookup(tree, dir_ino, name);
		if (ino == 0 || tree_node(tree, ino) == NULL)
			all_fresh = false;
		tree_forget(tree, ino, 1);
	}
	tap_ok(all_fresh && tree_node_count(tree) == 3,
	       "20000 names looked up and forgotten leave %zu nodes", tree_node_count(tree));

	tree_forget(tree, ROOT_INO, 5);
	tree_forget(tree, 999999999, 1);
	tap_ok(tree_node(tree, ROOT_INO) != NULL && tree_node_count(tree) == 3,
	       "the root and unknown inode numbers ignore forgets");

	/* Nodes still held by the kernel at unmount are freed with the tree
	 * (the sanitizer build checks). */
	tree_free(tree);

	/* Hubs that do not serve (hub_state.h): one retried in the
	 * background is listed and answers EAGAIN inside until it is up; one
	 * offline is not there. */
	struct hub_state retrying, offline;
	struct hub two[2] = {{.ops = &fake_ops, .name = "down", .state = &retrying},
	                     {.ops = &fake_ops, .name = "gone", .state = &offline}};
	struct node *down = NULL, *child = NULL;
	size_t listed = 0;
	hub_state_init(&retrying);
	hub_state_init(&offline);
	hub_state_set_failed(&retrying, HUB_STATE_RETRYING, "HTTP 503", 1, 1, 5, 0.5);
	hub_state_set_failed(&offline, HUB_STATE_OFFLINE, "offline", 1, 1, 5, 0.5);
	if (tree_new(&tree, two, 2) != 0) {
		tap_ok(0, "tree_new of two hubs");
		return tap_done();
	}
	tap_ok(tree_list(tree, tree_node(tree, ROOT_INO), ignore_child, &listed) == 0 &&
	           listed == 2,
	       "the root lists the retried hub and .omnihub, not the offline one");
	tap_ok(tree_lookup(tree, tree_node(tree, ROOT_INO), "gone", &child) == -ENOENT,
	       "the offline hub's name: ENOENT");
	tap_ok(tree_lookup(tree, tree_node(tree, ROOT_INO), "down", &down) == 0 && down,
	       "the retried hub's directory is there");
	listed = 0;
	tap_ok(down && tree_lookup(tree, down, "a", &child) == -EAGAIN &&
	           tree_list(tree, down, ignore_child, &listed) == -EAGAIN && listed == 0,
	       "in it, a lookup and a listing answer EAGAIN");
	hub_state_set_up(&retrying, 2);
	tap_ok(down && tree_lookup(tree, down, "a", &child) == 0 && child &&
	           tree_hub_dir_ino(tree, &two[0]) == down->ino,
	       "up: served, without a new directory");
	tree_unref(tree, child);
	tree_unref(tree, down);
	tree_free(tree);
	hub_state_destroy(&retrying);
	hub_state_destroy(&offline);
	return tap_done();
}
