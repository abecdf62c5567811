/* fs.c: the FUSE low-level operations, over the tree, the downloads and the
 * cache; nothing hub-specific. Not for: options or the mount (main.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "download.h"
#include "fetch.h"
#include "fs.h"
#include "hub.h"
#include "log.h"
#include "tree.h"

/* How long the kernel may trust names and attributes. Hub content is named
 * by digest, but an index refresh can change what a name means. */
#define FS_TIMEOUT_SECONDS 60.0

struct fs {
	const struct config *config; /* borrowed from main */
	struct cache *cache;
	struct fetcher *fetcher;
	struct hub_env env;          /* lent to every hub */
	struct hub *hubs;            /* the hubs that opened; owned */
	size_t nhubs;
	struct download_set *downloads;
	struct tree *tree;
};

int fs_new(struct fs **out, const struct config *cfg, char *why, size_t why_size)
{
	const char *cache_why;
	struct fs *fs;
	int rc = -ENOMEM;

	*out = NULL;
	snprintf(why, why_size, "out of memory");
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->config = cfg;
	rc = cache_open(&fs->cache, cfg->cache_dir, &cache_why);
	if (rc) {
		snprintf(why, why_size, "cannot use the cache directory %s: %s", cfg->cache_dir,
			 cache_why);
		goto out;
	}
	rc = fetcher_new(&fs->fetcher, cfg->cacert);
	if (rc)
		goto out;
	rc = download_set_new(&fs->downloads, fs->cache, fs->fetcher, cfg->offline);
	if (rc)
		goto out;
	fs->env = (struct hub_env){ .config = cfg, .fetcher = fs->fetcher, .cache = fs->cache };

	/* A hub that cannot open is left out, with its reason logged; the
	 * mount needs at least one. */
	fs->hubs = calloc(hub_registry_count, sizeof(*fs->hubs));
	if (!fs->hubs) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < hub_registry_count; i++) {
		struct hub *hub = &fs->hubs[fs->nhubs];
		char hub_why[512];

		hub->ops = hub_registry[i];
		hub->env = &fs->env;
		rc = hub->ops->open(hub, hub_why, sizeof(hub_why));
		if (rc == 0) {
			fs->nhubs++;
			continue;
		}
		snprintf(why, why_size, "%s hub: %s", hub->ops->name, hub_why);
		if (hub_registry_count > 1) /* else the mount fails with why */
			log_error("%s hub left out: %s", hub->ops->name, hub_why);
		memset(hub, 0, sizeof(*hub));
	}
	if (fs->nhubs == 0) {
		rc = -EIO;
		goto out;
	}
	rc = tree_new(&fs->tree, fs->hubs, fs->nhubs, fs->cache);
	if (rc)
		goto out;
	*out = fs;
	fs = NULL;
	why[0] = '\0';
out:
	fs_free(fs);
	return rc;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	/* Downloads first: their threads use the cache and the fetcher. */
	download_set_free(fs->downloads);
	tree_free(fs->tree);
	for (size_t i = 0; i < fs->nhubs; i++)
		fs->hubs[i].ops->close(&fs->hubs[i]);
	free(fs->hubs);
	fetcher_free(fs->fetcher);
	cache_close(fs->cache);
	free(fs);
}

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* "<hub>/<path>": a file as the user sees it under the mount, for logs. */
static void node_label(const struct node *node, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s%s%s", node->hub ? node->hub->ops->name : "",
		 node->path[0] ? "/" : "", node->path);
}

/* Whether the cache holds src, verified: 0 (with *fd_out where it opens
 * one), -ENOENT or -ESTALE (fetch it), or another -errno. */
typedef int (*check_fn)(struct fs *fs, const struct source *src, int *fd_out);

static int check_file(struct fs *fs, const struct source *src, int *fd_out)
{
	return cache_open_verified(fs->cache, src->cache_path, &src->digest, src->size, fd_out);
}

static int check_tree(struct fs *fs, const struct source *src, int *fd_out)
{
	*fd_out = -1;
	return cache_dir_verified(fs->cache, src->cache_path, &src->digest);
}

/* Fills src with where node's bytes come from and makes them present and
 * verified in the cache, fetching them when check says they are missing
 * or unproven. On success src is the caller's to clear. */
static int ensure_cached(struct fs *fs, struct node *node, check_fn check, struct source *src,
			 int *fd_out)
{
	char label[PATH_MAX];
	int rc;

	*fd_out = -1;
	rc = node->hub->ops->source(node->hub, node->path, src);
	if (rc)
		return rc;
	node_label(node, label, sizeof(label));
	rc = check(fs, src, fd_out);
	if (rc == -ENOENT || rc == -ESTALE) {
		rc = download_ensure(fs->downloads, src, label);
		if (rc == 0 && check(fs, src, fd_out) != 0) {
			log_error("%s: %s/%s changed right after it was installed", label,
				  cache_root(fs->cache), src->cache_path);
			rc = -EIO;
		}
	} else if (rc) {
		log_error("%s: cannot open %s/%s: %s", label, cache_root(fs->cache), src->cache_path,
			  strerror(-rc));
		rc = -EIO;
	}
	if (rc)
		source_clear(src);
	return rc;
}

/* Makes an archive directory's content present in the cache and records
 * where (done on every lookup or listing inside it, so a tree deleted by
 * hand comes back). */
static int stage_archive(struct fs *fs, struct node *node)
{
	struct source src;
	int fd, rc = ensure_cached(fs, node, check_tree, &src, &fd);

	if (rc == 0) {
		rc = tree_set_backing(fs->tree, node, src.cache_path);
		source_clear(&src);
	}
	return rc;
}

/* A descriptor on the verified cached copy of a hub file, fetching it
 * first if needed; *keep_cache says whether the kernel's pages for this
 * inode still hold the same content. */
static int open_hub_file(struct fs *fs, struct node *node, int *fd_out, bool *keep_cache)
{
	struct source src;
	int rc = ensure_cached(fs, node, check_file, &src, fd_out);

	if (rc == 0) {
		*keep_cache = tree_note_served(fs->tree, node, &src.digest);
		source_clear(&src);
	}
	return rc;
}

static int fill_entry(struct fs *fs, const struct node *node, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = node->ino;
	e->attr_timeout = FS_TIMEOUT_SECONDS;
	e->entry_timeout = FS_TIMEOUT_SECONDS;
	return tree_stat(fs->tree, node, &e->attr);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Reads of cached files are spliced from the backing file. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	log_info("mounted (splice %s)", conn->want & FUSE_CAP_SPLICE_WRITE ? "on" : "off");
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct node *dir = tree_node(fs->tree, parent), *child = NULL;
	struct fuse_entry_param e;
	int rc = dir ? 0 : -ESTALE;

	if (rc == 0 && dir->kind == NODE_ARCHIVE)
		rc = stage_archive(fs, dir);
	if (rc == 0)
		rc = tree_lookup(fs->tree, dir, name, &child);
	if (rc == -ENOENT) {
		/* A negative entry: the kernel remembers the miss. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = FS_TIMEOUT_SECONDS;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc == 0)
		rc = fill_entry(fs, child, &e);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	/* Nodes live as long as the mount (see tree.h). */
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	struct stat st;
	int rc;

	(void)fi;
	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	rc = tree_stat(fs->tree, node, &st);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, FS_TIMEOUT_SECONDS);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	char target[PATH_MAX];
	ssize_t n;

	if (!node || node->kind != NODE_STAGED || node->type != S_IFLNK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = readlinkat(cache_root_fd(fs->cache), node->path, target, sizeof(target) - 1);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	target[n] = '\0';
	fuse_reply_readlink(req, target);
}

/* A directory listing, made whole at opendir and served in pieces. */
struct listing {
	fuse_req_t req;
	char *data;
	size_t len;
	size_t cap;
};

static int listing_add(struct listing *listing, const char *name, fuse_ino_t ino, mode_t type)
{
	struct stat st = { .st_ino = ino, .st_mode = type };
	size_t size = fuse_add_direntry(listing->req, NULL, 0, name, NULL, 0);

	if (listing->len + size > listing->cap) {
		size_t cap = listing->cap ? listing->cap * 2 : 4096;
		char *grown;
		while (cap < listing->len + size)
			cap *= 2;
		grown = realloc(listing->data, cap);
		if (!grown)
			return -ENOMEM;
		listing->data = grown;
		listing->cap = cap;
	}
	/* Offsets are positions in this buffer: the entry after this one. */
	fuse_add_direntry(listing->req, listing->data + listing->len, size, name, &st,
			  (off_t)(listing->len + size));
	listing->len += size;
	return 0;
}

static int listing_add_child(void *ctx, const struct node *child)
{
	return listing_add(ctx, child->name, child->ino, child->type);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	struct listing *listing = NULL;
	int rc = node ? 0 : -ESTALE;

	if (rc == 0 && node->kind == NODE_ARCHIVE)
		rc = stage_archive(fs, node);
	if (rc == 0) {
		listing = calloc(1, sizeof(*listing));
		rc = listing ? 0 : -ENOMEM;
	}
	if (rc == 0) {
		listing->req = req;
		rc = listing_add(listing, ".", node->ino, S_IFDIR);
	}
	if (rc == 0)
		rc = listing_add(listing, "..", node->parent ? node->parent : node->ino, S_IFDIR);
	if (rc == 0)
		rc = tree_list(fs->tree, node, listing_add_child, listing);
	if (rc) {
		if (listing)
			free(listing->data);
		free(listing);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)listing;
	if (fuse_reply_open(req, fi) != 0) {
		free(listing->data);
		free(listing);
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct listing *listing = (struct listing *)(uintptr_t)fi->fh;
	size_t start = (size_t)off, len;
	char *copy;

	(void)ino;
	if (off < 0 || start >= listing->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* The kernel drops an entry cut short and asks again from its offset. */
	len = listing->len - start < size ? listing->len - start : size;
	/* Reply from a copy: once the kernel has the reply, the directory can be
	 * released, and the listing freed, while writev() is still returning. */
	copy = malloc(len);
	if (!copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(copy, listing->data + start, len);
	fuse_reply_buf(req, copy, len);
	free(copy);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct listing *listing = (struct listing *)(uintptr_t)fi->fh;

	(void)ino;
	free(listing->data);
	free(listing);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	bool keep_cache = true;
	int fd = -1, rc = 0;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!node)
		rc = -ESTALE;
	else if (node->kind == NODE_HUB_FILE)
		rc = open_hub_file(fs, node, &fd, &keep_cache);
	else if (node->kind == NODE_STAGED && node->type == S_IFREG) {
		fd = openat(cache_root_fd(fs->cache), node->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		rc = fd < 0 ? -errno : 0;
	} else
		rc = -EISDIR;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)fd;
	/* Cached content never changes under a name without a new digest
	 * (keep_cache turns false then), so the kernel may keep its pages. */
	fi->keep_cache = keep_cache;
	if (fuse_reply_open(req, fi) != 0)
		close(fd); /* the opener was interrupted */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)ino;
	/* libfuse splices from the descriptor to /dev/fuse when it can. */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs st;

	(void)ino;
	/* The space the cache has left is what a download can still use. */
	if (fstatvfs(cache_root_fd(fs->cache), &st) != 0) {
		fuse_reply_err(req, errno);
		return;
	}
	st.f_namemax = NAME_MAX;
	fuse_reply_statfs(req, &st);
}

const struct fuse_lowlevel_ops fs_operations = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.statfs = op_statfs,
};
