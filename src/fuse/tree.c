/* tree.c: the mounted namespace: an inode number for every name the kernel
 * has seen, bound to a path in a hub or to a file staged in the cache.
 * Not for: FUSE replies (fs.c) or fetching anything (download.c). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "hub.h"
#include "hub_state.h"
#include "tree.h"

#define ROOT_INO 1 /* FUSE_ROOT_ID */

static const char *const status_files[] = { TREE_STATUS_FILES };
#define STATUS_FILE_COUNT (sizeof(status_files) / sizeof(status_files[0]))

struct tree {
	struct hub *hubs; /* borrowed */
	_Atomic size_t nhubs; /* grows when a reload adds a hub */
	uid_t uid;
	gid_t gid;
	time_t started;
	pthread_mutex_t lock;  /* guards everything below and the mutable
				  fields of every node */
	struct node *root;     /* owned, like every node in by_ino */
	struct node **by_ino;  /* every live node by inode number, chained by
				  ino_next; a power of two long */
	size_t nino_buckets;
	size_t nnodes;
	uint64_t next_ino;     /* never reused: the kernel may still ask about
				  a forgotten number it had cached */
	struct node **buckets; /* the current binding of each (parent, name),
				  chained by hash_next */
	size_t nbuckets;
	size_t nbound;
};

static size_t hash_key(uint64_t parent, const char *name, size_t nbuckets)
{
	uint64_t h = 1469598103934665603ull ^ parent; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % nbuckets);
}

static void node_free(struct node *node)
{
	if (!node)
		return;
	free(node->name);
	free(node->path);
	free(node->backing);
	free(node->listed);
	free(node);
}

static struct node **ino_slot(struct tree *tree, uint64_t ino)
{
	/* Numbers are handed out in sequence: the low bits spread them. */
	return &tree->by_ino[ino & (tree->nino_buckets - 1)];
}

static struct node *ino_find_locked(struct tree *tree, uint64_t ino)
{
	struct node *node = *ino_slot(tree, ino);

	while (node && node->ino != ino)
		node = node->ino_next;
	return node;
}

/* Adds node to the inode number table, which doubles when full. */
static int ino_insert_locked(struct tree *tree, struct node *node)
{
	if (tree->nnodes >= tree->nino_buckets) {
		size_t n = tree->nino_buckets * 2;
		struct node **grown = calloc(n, sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		for (size_t i = 0; i < tree->nino_buckets; i++) {
			struct node *each = tree->by_ino[i];
			while (each) {
				struct node *next = each->ino_next;
				each->ino_next = grown[each->ino & (n - 1)];
				grown[each->ino & (n - 1)] = each;
				each = next;
			}
		}
		free(tree->by_ino);
		tree->by_ino = grown;
		tree->nino_buckets = n;
	}
	node->ino_next = *ino_slot(tree, node->ino);
	*ino_slot(tree, node->ino) = node;
	tree->nnodes++;
	return 0;
}

/* Doubles the buckets; called with the lock held. */
static int grow_buckets(struct tree *tree)
{
	size_t nbuckets = tree->nbuckets * 2;
	struct node **buckets = calloc(nbuckets, sizeof(*buckets));

	if (!buckets)
		return -ENOMEM;
	for (size_t i = 0; i < tree->nbuckets; i++) {
		struct node *node = tree->buckets[i];
		while (node) {
			struct node *next = node->hash_next;
			size_t b = hash_key(node->parent, node->name, nbuckets);
			node->hash_next = buckets[b];
			buckets[b] = node;
			node = next;
		}
	}
	free(tree->buckets);
	tree->buckets = buckets;
	tree->nbuckets = nbuckets;
	return 0;
}

static struct node *find_locked(struct tree *tree, uint64_t parent, const char *name)
{
	struct node *node = tree->buckets[hash_key(parent, name, tree->nbuckets)];

	while (node && (node->parent != parent || strcmp(node->name, name) != 0))
		node = node->hash_next;
	return node;
}

/* Frees node if nothing holds it any more: out of both tables first (out
 * of the names only if it is still its name's binding). */
static void release_locked(struct tree *tree, struct node *node)
{
	struct node **slot;

	if (node == tree->root || node->nlookup > 0 || node->refs > 0)
		return;
	slot = &tree->buckets[hash_key(node->parent, node->name, tree->nbuckets)];
	while (*slot && *slot != node)
		slot = &(*slot)->hash_next;
	if (*slot) {
		*slot = node->hash_next;
		tree->nbound--;
	}
	slot = ino_slot(tree, node->ino);
	while (*slot != node)
		slot = &(*slot)->ino_next;
	*slot = node->ino_next;
	tree->nnodes--;
	node_free(node);
}

/* Takes node into the tree: gives it an inode number and makes it the
 * binding of its (parent, name), replacing an earlier one (whose inode
 * stays valid for the kernel until forgotten, just no longer found by
 * name). */
static int add_locked(struct tree *tree, struct node *node)
{
	struct node **slot, *old = NULL;
	size_t b;

	if (tree->nbound >= 2 * tree->nbuckets && grow_buckets(tree) != 0)
		return -ENOMEM;
	node->ino = tree->next_ino;
	if (ino_insert_locked(tree, node) != 0)
		return -ENOMEM;
	tree->next_ino++;

	b = hash_key(node->parent, node->name, tree->nbuckets);
	for (slot = &tree->buckets[b]; *slot; slot = &(*slot)->hash_next) {
		if ((*slot)->parent == node->parent && strcmp((*slot)->name, node->name) == 0) {
			old = *slot;
			node->hash_next = old->hash_next;
			old->hash_next = NULL;
			*slot = node;
			release_locked(tree, old); /* held, or it would be gone */
			return 0;
		}
	}
	node->hash_next = tree->buckets[b];
	tree->buckets[b] = node;
	tree->nbound++;
	return 0;
}

int tree_new(struct tree **out, struct hub *hubs, size_t nhubs)
{
	struct tree *tree;
	struct node *root = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	tree = calloc(1, sizeof(*tree));
	if (!tree)
		return -ENOMEM;
	pthread_mutex_init(&tree->lock, NULL);
	tree->hubs = hubs;
	tree->nhubs = nhubs;
	tree->uid = getuid();
	tree->gid = getgid();
	tree->started = time(NULL);
	tree->nino_buckets = 1024;
	tree->by_ino = calloc(tree->nino_buckets, sizeof(*tree->by_ino));
	tree->nbuckets = 1024;
	tree->buckets = calloc(tree->nbuckets, sizeof(*tree->buckets));
	root = calloc(1, sizeof(*root));
	if (!tree->by_ino || !tree->buckets || !root)
		goto out;
	root->name = strdup("");
	root->path = strdup("");
	if (!root->name || !root->path)
		goto out;
	root->kind = NODE_ROOT;
	root->type = S_IFDIR;
	root->mtime = tree->started;
	root->ino = ROOT_INO;
	tree->next_ino = ROOT_INO + 1;
	rc = ino_insert_locked(tree, root); /* no lock: nobody else has the tree */
	if (rc)
		goto out;
	tree->root = root;
	root = NULL;
	*out = tree;
	tree = NULL;
	rc = 0;
out:
	node_free(root);
	tree_free(tree);
	return rc;
}

void tree_free(struct tree *tree)
{
	if (!tree)
		return;
	for (size_t i = 0; tree->by_ino && i < tree->nino_buckets; i++) {
		struct node *node = tree->by_ino[i];
		while (node) {
			struct node *next = node->ino_next;
			node_free(node);
			node = next;
		}
	}
	free(tree->by_ino);
	free(tree->buckets);
	pthread_mutex_destroy(&tree->lock);
	free(tree);
}

struct node *tree_node(struct tree *tree, uint64_t ino)
{
	struct node *node = NULL;

	pthread_mutex_lock(&tree->lock);
	node = ino_find_locked(tree, ino);
	pthread_mutex_unlock(&tree->lock);
	return node;
}

void tree_ref(struct tree *tree, struct node *node)
{
	if (!node)
		return;
	pthread_mutex_lock(&tree->lock);
	node->refs++;
	pthread_mutex_unlock(&tree->lock);
}

void tree_unref(struct tree *tree, struct node *node)
{
	if (!node)
		return;
	pthread_mutex_lock(&tree->lock);
	node->refs--;
	release_locked(tree, node);
	pthread_mutex_unlock(&tree->lock);
}

void tree_count_lookup(struct tree *tree, struct node *node)
{
	pthread_mutex_lock(&tree->lock);
	node->nlookup++;
	pthread_mutex_unlock(&tree->lock);
}

void tree_forget(struct tree *tree, uint64_t ino, uint64_t nlookup)
{
	struct node *node;

	pthread_mutex_lock(&tree->lock);
	node = ino_find_locked(tree, ino);
	if (node) {
		/* More than it was given would be the kernel's bug or ours:
		 * forget what there is rather than wrap around. */
		node->nlookup -= nlookup < node->nlookup ? nlookup : node->nlookup;
		release_locked(tree, node);
	}
	pthread_mutex_unlock(&tree->lock);
}

size_t tree_node_count(struct tree *tree)
{
	size_t n;

	pthread_mutex_lock(&tree->lock);
	n = tree->nnodes;
	pthread_mutex_unlock(&tree->lock);
	return n;
}

static mode_t kind_type(enum node_kind kind)
{
	return kind == NODE_HUB_FILE || kind == NODE_STATUS_FILE ? S_IFREG
	       : kind == NODE_HUB_LINK				 ? S_IFLNK
									 : S_IFDIR;
}

/* What a name is bound to: the fields that make a node. */
struct binding {
	enum node_kind kind;
	mode_t type;
	const char *path;
	uint64_t size;
	const struct digest_spec *digest; /* NULL: none */
	bool made;
	time_t mtime;
};

static bool same_content(const struct node *node, const struct binding *b)
{
	if (node->kind == NODE_STAGED)
		return true; /* a staged file's attributes come from the file */
	if (node->size != b->size || node->made != b->made)
		return false;
	if (!b->digest)
		return node->digest.algo == DIGEST_NONE;
	return digest_spec_same(&node->digest, b->digest);
}

/* The node bound to (dir, name) with this binding, made if there is none or
 * the one there is stands for something else; its mtime updated either
 * way. Takes nothing from the caller; *out carries a reference for it. */
static int bind(struct tree *tree, const struct node *dir, struct hub *hub, const char *name,
		const struct binding *b, struct node **out)
{
	struct node *node;
	int rc = 0;

	pthread_mutex_lock(&tree->lock);
	node = find_locked(tree, dir->ino, name);
	if (!node || node->kind != b->kind || node->type != b->type || node->hub != hub ||
	    strcmp(node->path, b->path) != 0 || !same_content(node, b)) {
		node = calloc(1, sizeof(*node));
		if (node) {
			node->name = strdup(name);
			node->path = strdup(b->path);
		}
		if (!node || !node->name || !node->path) {
			node_free(node);
			rc = -ENOMEM;
			goto out;
		}
		node->parent = dir->ino;
		node->kind = b->kind;
		node->hub = hub;
		node->type = b->type;
		node->size = b->size;
		node->made = b->made;
		if (b->digest)
			node->digest = *b->digest;
		rc = add_locked(tree, node);
		if (rc) {
			node_free(node);
			goto out;
		}
	}
	node->mtime = b->mtime;
	node->refs++;
	*out = node;
out:
	pthread_mutex_unlock(&tree->lock);
	return rc;
}

static int bind_entry(struct tree *tree, const struct node *dir, const struct entry *entry,
		      struct node **out)
{
	enum node_kind kind = entry->type == ENTRY_FILE	   ? NODE_HUB_FILE
			      : entry->type == ENTRY_ARCHIVE ? NODE_ARCHIVE
			      : entry->type == ENTRY_LINK    ? NODE_HUB_LINK
							     : NODE_HUB_DIR;
	char path[PATH_MAX];
	struct binding b = {
		.kind = kind,
		.type = kind_type(kind),
		.path = path,
		.size = kind == NODE_HUB_DIR ? 0 : entry->size,
		.digest = kind == NODE_HUB_DIR || entry->digest.algo == DIGEST_NONE ? NULL
										    : &entry->digest,
		.made = entry->made,
		.mtime = entry->mtime,
	};

	if (snprintf(path, sizeof(path), "%s%s%s", dir->path, dir->path[0] ? "/" : "",
		     entry->name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return bind(tree, dir, dir->hub, entry->name, &b, out);
}

struct cache *tree_node_cache(const struct node *node)
{
	return node->hub->env->cache;
}

/* The cache path of a staged directory's content (copied), or NULL. */
static char *staged_dir_path(struct tree *tree, const struct node *dir)
{
	if (dir->kind == NODE_STAGED)
		return strdup(dir->path);
	return tree_backing(tree, dir);
}

static int bind_staged(struct tree *tree, const struct node *dir, const char *dir_path,
		       const char *name, struct node **out)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir_path, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	rc = cache_lstat(tree_node_cache(dir), path, &st);
	if (rc)
		return rc;
	/* Extraction refuses anything else; hide it if a person put it there. */
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return -ENOENT;
	struct binding b = { .kind = NODE_STAGED, .type = st.st_mode & S_IFMT, .path = path,
			     .mtime = st.st_mtim.tv_sec };
	return bind(tree, dir, dir->hub, name, &b, out);
}

void tree_set_hub_count(struct tree *tree, size_t nhubs)
{
	tree->nhubs = nhubs;
}

static struct hub *find_hub(struct tree *tree, const char *name)
{
	for (size_t i = 0; i < tree->nhubs; i++)
		if (strcmp(tree->hubs[i].name, name) == 0)
			return &tree->hubs[i];
	return NULL;
}

static int bind_hub(struct tree *tree, const struct node *root, struct hub *hub, struct node **out)
{
	struct binding b = { .kind = NODE_HUB_DIR, .type = S_IFDIR, .path = "",
			     .mtime = tree->started };
	return bind(tree, root, hub, hub->name, &b, out);
}

/* The status directory, or one of its files (name; NULL for the
 * directory). Their times are now: the content is made at each open. */
static int bind_status(struct tree *tree, const struct node *dir, const char *name,
		       struct node **out)
{
	enum node_kind kind = name ? NODE_STATUS_FILE : NODE_STATUS_DIR;
	struct binding b = { .kind = kind,
			     .type = kind_type(kind),
			     .path = name ? name : "",
			     .mtime = time(NULL) };

	return bind(tree, dir, NULL, name ? name : TREE_STATUS_DIR, &b, out);
}

int tree_lookup(struct tree *tree, struct node *dir, const char *name, struct node **out)
{
	struct entry entry;
	char *dir_path = NULL;
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	switch (dir->kind) {
	case NODE_ROOT: {
		struct hub *hub = find_hub(tree, name);
		if (!hub && strcmp(name, TREE_STATUS_DIR) == 0)
			return bind_status(tree, dir, NULL, out);
		/* A hub retried in the background has its directory meanwhile;
		 * one offline or disabled has none (its reason is in the log). */
		if (!hub || hub_state_check(hub->state) == -ENOENT)
			return -ENOENT;
		return bind_hub(tree, dir, hub, out);
	}
	case NODE_STATUS_DIR:
		for (size_t i = 0; i < STATUS_FILE_COUNT; i++)
			if (strcmp(name, status_files[i]) == 0)
				return bind_status(tree, dir, status_files[i], out);
		return -ENOENT;
	case NODE_HUB_DIR:
		if (snprintf(path, sizeof(path), "%s%s%s", dir->path, dir->path[0] ? "/" : "",
			     name) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		rc = hub_state_check(dir->hub->state); /* EAGAIN while retried */
		if (rc == 0)
			rc = dir->hub->ops->lookup(dir->hub, path, &entry);
		return rc ? rc : bind_entry(tree, dir, &entry, out);
	case NODE_ARCHIVE:
	case NODE_STAGED:
		if (dir->kind == NODE_STAGED && dir->type != S_IFDIR)
			return -ENOTDIR;
		dir_path = staged_dir_path(tree, dir);
		rc = dir_path ? bind_staged(tree, dir, dir_path, name, out) : -EIO;
		free(dir_path);
		return rc;
	case NODE_HUB_FILE:
	case NODE_HUB_LINK:
	case NODE_STATUS_FILE:
		break;
	}
	return -ENOTDIR;
}

static int list_staged(struct tree *tree, struct node *dir, tree_list_fn fn, void *ctx)
{
	char *dir_path = staged_dir_path(tree, dir);
	struct dirent *d;
	DIR *stream = NULL;
	int rc = 0;

	if (!dir_path)
		return -EIO;
	stream = cache_opendir(tree_node_cache(dir), dir_path);
	if (!stream) {
		rc = -errno;
		goto out;
	}
	while ((d = readdir(stream)) != NULL) {
		struct node *child;
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (bind_staged(tree, dir, dir_path, d->d_name, &child) != 0)
			continue; /* vanished, or not something we show */
		rc = fn(ctx, child);
		tree_unref(tree, child);
		if (rc)
			break;
	}
	closedir(stream);
out:
	free(dir_path);
	return rc;
}

int tree_list(struct tree *tree, struct node *dir, tree_list_fn fn, void *ctx)
{
	struct entry_list entries = { 0 };
	struct node *child;
	int rc = 0;

	switch (dir->kind) {
	case NODE_ROOT:
		for (size_t i = 0; i < tree->nhubs && rc == 0; i++) {
			if (hub_state_check(tree->hubs[i].state) == -ENOENT)
				continue;
			rc = bind_hub(tree, dir, &tree->hubs[i], &child);
			if (rc == 0) {
				rc = fn(ctx, child);
				tree_unref(tree, child);
			}
		}
		/* Listed, like any dot-file: `ls -a` shows it, `ls` does not. */
		if (rc == 0 && bind_status(tree, dir, NULL, &child) == 0) {
			rc = fn(ctx, child);
			tree_unref(tree, child);
		}
		return rc;
	case NODE_STATUS_DIR:
		for (size_t i = 0; i < STATUS_FILE_COUNT && rc == 0; i++) {
			rc = bind_status(tree, dir, status_files[i], &child);
			if (rc == 0) {
				rc = fn(ctx, child);
				tree_unref(tree, child);
			}
		}
		return rc;
	case NODE_HUB_DIR:
		rc = hub_state_check(dir->hub->state); /* EAGAIN while retried */
		if (rc == 0)
			rc = dir->hub->ops->list(dir->hub, dir->path, &entries);
		for (size_t i = 0; i < entries.count && rc == 0; i++) {
			rc = bind_entry(tree, dir, &entries.items[i], &child);
			if (rc == 0) {
				rc = fn(ctx, child);
				tree_unref(tree, child);
			}
		}
		entry_list_free(&entries);
		return rc;
	case NODE_ARCHIVE:
	case NODE_STAGED:
		if (dir->kind == NODE_STAGED && dir->type != S_IFDIR)
			return -ENOTDIR;
		return list_staged(tree, dir, fn, ctx);
	case NODE_HUB_FILE:
	case NODE_HUB_LINK:
	case NODE_STATUS_FILE:
		break;
	}
	return -ENOTDIR;
}

uint64_t tree_hub_dir_ino(struct tree *tree, const struct hub *hub)
{
	struct node *node;
	uint64_t ino = 0;

	pthread_mutex_lock(&tree->lock);
	node = find_locked(tree, ROOT_INO, hub->name);
	if (node && node->hub == hub)
		ino = node->ino;
	pthread_mutex_unlock(&tree->lock);
	return ino;
}

int tree_stat(struct tree *tree, const struct node *node, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = node->ino;
	st->st_uid = tree->uid;
	st->st_gid = tree->gid;
	st->st_blksize = 4096;

	if (node->kind == NODE_STAGED) {
		struct stat real;
		int rc = cache_lstat(tree_node_cache(node), node->path, &real);
		if (rc)
			return rc;
		/* Read-only whatever the archive said. */
		st->st_mode = (real.st_mode & S_IFMT) | (real.st_mode & 0555);
		if (S_ISLNK(real.st_mode))
			st->st_mode = S_IFLNK | 0777;
		st->st_nlink = real.st_nlink;
		st->st_size = real.st_size;
		st->st_blocks = real.st_blocks;
		st->st_mtim = real.st_mtim;
		st->st_ctim = real.st_ctim;
		st->st_atim = real.st_atim;
		return 0;
	}

	st->st_size = (off_t)node->size; /* never changes: no lock */
	pthread_mutex_lock(&tree->lock);
	st->st_mtim.tv_sec = node->mtime;
	pthread_mutex_unlock(&tree->lock);
	st->st_ctim = st->st_atim = st->st_mtim;
	if (node->kind == NODE_HUB_FILE || node->kind == NODE_STATUS_FILE) {
		/* A status file says size 0: its reads are direct (fs.c). */
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_blocks = (blkcnt_t)((node->size + 511) / 512);
	} else if (node->kind == NODE_HUB_LINK) {
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
	} else {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	}
	return 0;
}

int tree_set_backing(struct tree *tree, struct node *node, const char *cache_path)
{
	char *copy = strdup(cache_path);

	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&tree->lock);
	free(node->backing);
	node->backing = copy;
	pthread_mutex_unlock(&tree->lock);
	return 0;
}

char *tree_backing(struct tree *tree, const struct node *node)
{
	char *copy = NULL;

	pthread_mutex_lock(&tree->lock);
	if (node->backing)
		copy = strdup(node->backing);
	pthread_mutex_unlock(&tree->lock);
	return copy;
}

bool tree_note_served(struct tree *tree, struct node *node, const struct stat *backing)
{
	bool same;

	pthread_mutex_lock(&tree->lock);
	same = !node->served_stream &&
	       (node->served_ino == 0 ||
		(node->served_dev == backing->st_dev && node->served_ino == backing->st_ino &&
		 node->served_ctime.tv_sec == backing->st_ctim.tv_sec &&
		 node->served_ctime.tv_nsec == backing->st_ctim.tv_nsec));
	node->served_dev = backing->st_dev;
	node->served_ino = backing->st_ino;
	node->served_ctime = backing->st_ctim;
	node->served_stream = false;
	pthread_mutex_unlock(&tree->lock);
	return same;
}

void tree_note_streamed(struct tree *tree, struct node *node)
{
	pthread_mutex_lock(&tree->lock);
	node->served_stream = true;
	pthread_mutex_unlock(&tree->lock);
}

void tree_listing_open(struct tree *tree, struct node *node, const char *id, bool *keep,
		       bool *cache)
{
	char *copy = strdup(id);
	bool same;

	pthread_mutex_lock(&tree->lock);
	same = node->listed && strcmp(node->listed, id) == 0;
	if (!same && node->listings_open > 0)
		node->listings_mixed = true;
	free(node->listed);
	node->listed = copy; /* NULL when out of memory: not kept next time */
	node->listings_open++;
	*keep = same && !node->listings_mixed;
	*cache = copy && !node->listings_mixed;
	pthread_mutex_unlock(&tree->lock);
}

void tree_listing_close(struct tree *tree, struct node *node, bool delivered)
{
	pthread_mutex_lock(&tree->lock);
	if (node->listings_open > 0)
		node->listings_open--;
	if (!delivered || (node->listings_mixed && node->listings_open == 0)) {
		/* What the kernel caches now is unknown: the next open drops it. */
		free(node->listed);
		node->listed = NULL;
		if (node->listings_open == 0)
			node->listings_mixed = false;
	}
	pthread_mutex_unlock(&tree->lock);
}

int tree_hub_files(struct tree *tree, const struct hub *hub, struct tree_binding **out,
		   size_t *count)
{
	struct tree_binding *list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&tree->lock);
	for (size_t b = 0; b < tree->nbuckets && rc == 0; b++) {
		for (struct node *node = tree->buckets[b]; node && rc == 0; node = node->hash_next) {
			if (node->hub != hub ||
			    (node->kind != NODE_HUB_FILE && node->kind != NODE_ARCHIVE &&
			     (node->kind != NODE_HUB_DIR || !node->path[0])))
				continue;
			if (n == cap) {
				size_t grown_cap = cap ? 2 * cap : 64;
				struct tree_binding *grown = realloc(list, grown_cap * sizeof(*grown));
				if (!grown) {
					rc = -ENOMEM;
					break;
				}
				list = grown;
				cap = grown_cap;
			}
			list[n] = (struct tree_binding){ .parent = node->parent,
							 .name = strdup(node->name),
							 .path = strdup(node->path),
							 .size = node->size,
							 .digest = node->digest,
							 .dir = node->kind == NODE_HUB_DIR };
			if (!list[n].name || !list[n].path)
				rc = -ENOMEM;
			n++;
		}
	}
	pthread_mutex_unlock(&tree->lock);
	if (rc) {
		tree_bindings_free(list, n);
		list = NULL;
		n = 0;
	}
	*out = list;
	*count = n;
	return rc;
}

void tree_bindings_free(struct tree_binding *bindings, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(bindings[i].name);
		free(bindings[i].path);
	}
	free(bindings);
}
