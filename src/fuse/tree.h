/* tree.h: the mounted namespace: an inode number for every name the kernel
 * has seen, bound to a path in a hub or to a file staged in the cache.
 * Not for: FUSE replies (fs.c) or fetching anything (download.c). */
#ifndef OMNIHUB_TREE_H
#define OMNIHUB_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "digest.h"
#include "status.h"

struct cache;
struct hub;

enum node_kind {
	NODE_ROOT,     /* the mount point: one directory per hub */
	NODE_HUB_DIR,  /* a directory its hub lists */
	NODE_HUB_FILE, /* a hub file: its bytes are in the cache once fetched */
	NODE_ARCHIVE,  /* a hub directory whose content is an extracted archive */
	NODE_STAGED,   /* a file, directory or link inside an extracted archive,
			  served from the cache as it is */
	NODE_HUB_LINK, /* a symbolic link its hub names (the hub says where to) */
	NODE_STATUS_DIR,  /* the root's hidden TREE_STATUS_DIR */
	NODE_STATUS_FILE, /* a file in it, made by fs.c at each open; path is
			     its name */
};

/* The daemon's own directory at the root: its status, metrics and log.
 * No hub can have the name (a hub's name starts with a letter or digit). */
#define TREE_STATUS_DIR STATUS_DIR
/* The files in it. */
#define TREE_STATUS_FILES "status", "metrics", "log"

/* A node lives while the kernel knows its inode number (the lookups it was
 * given and has not forgotten) or the daemon holds a reference to it (a
 * listing, an open in flight); then it is freed, so memory follows what the
 * kernel keeps cached, not every name ever looked up. Inode numbers are
 * never reused. The root lives as long as the tree.
 * The fields above the line never change once the node is made and may be
 * read without the lock; the others go through the functions below. */
struct node {
	uint64_t ino;
	uint64_t parent;
	char *name;        /* owned */
	enum node_kind kind;
	struct hub *hub;   /* borrowed; NULL for the root and the status nodes */
	char *path;        /* owned; the path in the hub ("" for its root); for
			      NODE_STAGED, the path below the cache root */
	mode_t type;       /* S_IFDIR, S_IFREG or S_IFLNK */
	/* Hub files and archives: the content this inode stands for. An index
	 * refresh that changes it binds the name to a new inode, so the kernel
	 * never mixes the sizes or pages of two contents. */
	uint64_t size;
	struct digest_spec digest;
	bool made; /* NODE_HUB_FILE made from a download (entry.made): size is
		      the hub's guess until the made file is there */
	/* ---- under the tree's lock ---- */
	time_t mtime;
	char *backing;     /* owned; NODE_ARCHIVE: the cache path it was
			      extracted to, once it was */
	dev_t served_dev;  /* NODE_HUB_FILE: the file the last open served, so */
	ino_t served_ino;  /* the kernel's pages are dropped when it changes */
	struct timespec served_ctime;
	bool served_stream; /* an open streamed bytes not verified yet */
	char *listed;      /* owned; a directory: the id of the listing the
			      kernel was last given (tree_listing_open) */
	unsigned listings_open; /* its listings the kernel holds open */
	bool listings_mixed;    /* one of them may be another listing than
				   listed: none is cached until all close */
	uint64_t nlookup;          /* lookups the kernel was given, not forgotten */
	uint64_t refs;             /* references the daemon holds */
	struct node *hash_next;    /* in the (parent, name) table, while bound */
	struct node *ino_next;     /* in the inode number table */
};

struct tree;

int tree_new(struct tree **out, struct hub *hubs, size_t nhubs);
/* A reload added hubs: hubs (never moved) has nhubs now, the new ones
 * whole before this call. */
void tree_set_hub_count(struct tree *tree, size_t nhubs);
/* The cache an archive's or a staged node's files are in: its hub's (a
 * hub may have a cache of its own, config_hub_cache). */
struct cache *tree_node_cache(const struct node *node);
void tree_free(struct tree *tree);

/* The node of an inode number the kernel was given, or NULL. The pointer
 * stays valid only while the kernel holds the inode (during a request about
 * it, until it is forgotten) or a reference is held (tree_ref): code that
 * keeps it past its request's reply takes a reference first. */
struct node *tree_node(struct tree *tree, uint64_t ino);

/* A reference keeps node alive whatever the kernel forgets; NULL is
 * ignored by both. */
void tree_ref(struct tree *tree, struct node *node);
void tree_unref(struct tree *tree, struct node *node);

/* The kernel is about to be given node's inode number in an entry (a
 * lookup reply, a READDIRPLUS entry): counted before the reply is sent,
 * since the kernel may forget it as soon as it has it. The caller holds a
 * reference while it calls this. */
void tree_count_lookup(struct tree *tree, struct node *node);
/* The kernel forgot nlookup of the lookups of ino (FUSE FORGET); a node
 * nothing holds any more is freed, and its name unbound. Unknown inode
 * numbers and the root are ignored. */
void tree_forget(struct tree *tree, uint64_t ino, uint64_t nlookup);

/* Nodes alive now, the root included (for tests and logs). */
size_t tree_node_count(struct tree *tree);

/* Finds name in dir, asking its hub or reading the cache, and binds it to
 * an inode number. NODE_ARCHIVE directories must have been staged first
 * (tree_set_backing). *out carries a reference for the caller to drop
 * (tree_unref). 0 or -errno (-ENOENT for no such name). */
int tree_lookup(struct tree *tree, struct node *dir, const char *name, struct node **out);

typedef int (*tree_list_fn)(void *ctx, struct node *child);
/* Calls fn for every child of dir, bound to inode numbers, stopping at the
 * first non-zero return, which it returns. A child is held only during
 * its call: fn takes a reference (tree_ref) to keep it. */
int tree_list(struct tree *tree, struct node *dir, tree_list_fn fn, void *ctx);

/* The inode number of hub's directory at the root while the kernel knows
 * it, else 0 (to drop what the kernel cached of it). */
uint64_t tree_hub_dir_ino(struct tree *tree, const struct hub *hub);

/* Attributes as the mount shows them (read-only modes, our owner). */
int tree_stat(struct tree *tree, const struct node *node, struct stat *st);

/* NODE_ARCHIVE: records where it was extracted. */
int tree_set_backing(struct tree *tree, struct node *node, const char *cache_path);
/* Copies the backing path (NULL when none yet) for the caller to free. */
char *tree_backing(struct tree *tree, const struct node *node);
/* NODE_HUB_FILE: records which file an open serves; false when an earlier
 * open served another file (a repair replaced it, or it was changed by
 * hand), so pages the kernel cached may be stale. */
bool tree_note_served(struct tree *tree, struct node *node, const struct stat *backing);
/* NODE_HUB_FILE: an open streams it, unverified: pages the kernel caches
 * may be of bytes the digest then refuses, so the next tree_note_served
 * says false. */
void tree_note_streamed(struct tree *tree, struct node *node);

/* A directory opened (opendir) with the listing named id (fs.c makes it
 * from its children's inode numbers, which a changed name or content never
 * keeps). *keep: the kernel's cached copy is of that same listing, so it
 * may serve it; *cache: the kernel may fill its cache from this open. Once
 * two different listings are open at once, the older one could fill the
 * cache: nothing is cached until every open is closed, and the next open
 * drops what was. Each open is closed by tree_listing_close. */
void tree_listing_open(struct tree *tree, struct node *node, const char *id, bool *keep,
		       bool *cache);
/* delivered false: the kernel never got the open, nor what it asked
 * (keep false drops its copy), so the next open drops it. */
void tree_listing_close(struct tree *tree, struct node *node, bool delivered);

/* A name as the tree binds it now: what the kernel may have cached. */
struct tree_binding {
	uint64_t parent;
	char *name; /* owned */
	char *path; /* owned; the path in the hub */
	uint64_t size;
	struct digest_spec digest;
	bool dir;   /* a folder (no size nor digest): its name may vanish */
};

/* Copies of the bindings of hub's files, archives and folders (not its
 * root); the caller frees them with tree_bindings_free. */
int tree_hub_files(struct tree *tree, const struct hub *hub, struct tree_binding **out,
		   size_t *count);
void tree_bindings_free(struct tree_binding *bindings, size_t count);

#endif
