/* fs.c: the FUSE low-level operations, translated into calls of the tree
 * and the core; no FUSE thread waits on the network. Not for: options or
 * the mount (main.c), what an open gets or anything hub-specific (core). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "core.h"
#include "digest.h"
#include "fs.h"
#include "hub.h"
#include "log.h"
#include "pool.h"
#include "prefetch.h"
#include "tree.h"

/* How long the kernel may trust a name: an index refresh can change what a
 * name means (see entry_timeout for the names that may be kept longer). An
 * inode's attributes never change (a hub file's inode stands for one digest
 * and size), so those it may keep for a day. */
#define FS_TIMEOUT_SECONDS 60.0
#define FS_ATTR_TIMEOUT_SECONDS 86400.0

/* One open file: a descriptor, a file still arriving (stream mode), or
 * the text of a status file. */
struct handle {
	int fd;                     /* owned; -1 in stream mode */
	struct core_stream *stream; /* owned; NULL but in stream mode */
	char *text;                 /* owned; a status file's content, made at
				       open so every read sees one snapshot */
	uint64_t size;
	pthread_mutex_t lock;       /* guards prefetch */
	struct prefetch prefetch;   /* stream mode: what to ask for ahead */
	struct handle *prev, *next; /* in fs->handles */
};

struct fs {
	struct core *core;           /* borrowed from main: the session */
	struct hub *hubs;            /* the core's open hubs */
	_Atomic size_t nhubs;         /* grows when a reload adds a hub */
	struct tree *tree;
	struct timespec started;     /* CLOCK_MONOTONIC, for the status's uptime */
	pthread_mutex_t handles_lock; /* guards handles */
	struct handle *handles;      /* every open file: the kernel does not
					release them once the loop has ended */
	/* Telling the kernel what changed happens in a thread of its own: a
	 * notification may wait for locks the kernel holds while one of our
	 * requests is in flight, so it is never sent from a request. */
	struct fuse_session *session; /* borrowed; NULL until mounted */
	pthread_t notifier;
	bool notifier_started;
	pthread_mutex_t notify_lock;  /* guards the two below */
	pthread_cond_t notify_cond;
	bool *hubs_changed;           /* owned; per hub, its index was replaced */
	bool notify_stop;
	atomic_bool init_patched;     /* the INIT reply went through fs_io_writev */
	/* A reply_read in progress on this thread: its int, set by
	 * fs_io_writev to the errno libfuse answered it with. */
	pthread_key_t read_reply;
	bool read_reply_made;
	/* fs_set_kernel_options */
	char *mountpoint;             /* owned; whose read-ahead is raised */
	unsigned max_read;
};

/* Drops from the kernel's cache the names of hub whose size or digest the
 * new index changed, or that it no longer has (folders too): their next
 * lookup gives a new inode, with the new size, or ENOENT. The kernel may
 * keep these names long (entry_timeout), so none is left out. Listings
 * need nothing here: each opendir checks its own (opendir_reply). */
static void revalidate_hub(struct fs *fs, struct hub *hub)
{
	struct tree_binding *bindings = NULL;
	size_t count = 0, dropped = 0;

	if (tree_hub_files(fs->tree, hub, &bindings, &count) != 0)
		return;
	for (size_t i = 0; i < count; i++) {
		const struct tree_binding *b = &bindings[i];
		struct entry entry;
		int rc = hub->ops->lookup(hub, b->path, &entry);

		if (rc == 0 && b->dir && entry.type == ENTRY_DIR)
			continue;
		if (rc == 0 && !b->dir && entry.type != ENTRY_DIR && entry.size == b->size &&
		    digest_spec_same(&entry.digest, &b->digest))
			continue;
		if (rc != 0 && rc != -ENOENT)
			continue;
		if (fuse_lowlevel_notify_inval_entry(fs->session, b->parent, b->name,
						     strlen(b->name)) == 0)
			dropped++;
	}
	if (dropped)
		log_info("%s: the new index changed %zu names the kernel had looked up: dropped",
			 hub->name, dropped);
	tree_bindings_free(bindings, count);
	/* Its directory's attributes and listing, as cached while the index
	 * was another one or none (a hub that came up after retries). */
	uint64_t dir_ino = tree_hub_dir_ino(fs->tree, hub);
	if (dir_ino) {
		fuse_lowlevel_notify_inval_inode(fs->session, dir_ino, 0, 0);
	} else {
		/* A hub a reload added: the kernel may hold its name as one
		 * the root does not have (a negative lookup), and the root's
		 * attributes. */
		fuse_lowlevel_notify_inval_entry(fs->session, FUSE_ROOT_ID, hub->name,
						 strlen(hub->name));
		fuse_lowlevel_notify_inval_inode(fs->session, FUSE_ROOT_ID, 0, 0);
	}
}

static void *notifier_main(void *arg)
{
	struct fs *fs = arg;

	pthread_mutex_lock(&fs->notify_lock);
	while (!fs->notify_stop) {
		bool any = false;
		for (size_t i = 0; i < fs->nhubs; i++) {
			if (!fs->hubs_changed[i])
				continue;
			fs->hubs_changed[i] = false;
			any = true;
			pthread_mutex_unlock(&fs->notify_lock);
			if (fs->session)
				revalidate_hub(fs, &fs->hubs[i]);
			pthread_mutex_lock(&fs->notify_lock);
		}
		if (!any)
			pthread_cond_wait(&fs->notify_cond, &fs->notify_lock);
	}
	pthread_mutex_unlock(&fs->notify_lock);
	return NULL;
}

/* hub_env.index_changed: called from whatever thread refreshed the index. */
static void on_index_changed(void *ctx, struct hub *hub)
{
	struct fs *fs = ctx;

	pthread_mutex_lock(&fs->notify_lock);
	fs->hubs_changed[hub - fs->hubs] = true;
	pthread_cond_signal(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
}

/* core_on_hubs_added: from the reloading thread, before the hub serves. */
static void on_hubs_added(void *ctx, size_t count)
{
	struct fs *fs = ctx;

	tree_set_hub_count(fs->tree, count);
	pthread_mutex_lock(&fs->notify_lock);
	fs->nhubs = count;
	fs->hubs_changed[count - 1] = true;
	pthread_cond_signal(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
}

static void notifier_stop(struct fs *fs)
{
	if (!fs->notifier_started)
		return;
	pthread_mutex_lock(&fs->notify_lock);
	fs->notify_stop = true;
	pthread_cond_signal(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
	pthread_join(fs->notifier, NULL);
	fs->notifier_started = false;
}

void fs_set_session(struct fs *fs, struct fuse_session *session)
{
	fs->session = session;
}

int fs_set_kernel_options(struct fs *fs, const char *mountpoint, unsigned max_read)
{
	free(fs->mountpoint);
	fs->max_read = max_read;
	fs->mountpoint = strdup(mountpoint);
	return fs->mountpoint ? 0 : -ENOMEM;
}

int fs_new(struct fs **out, struct core *core, char *why, size_t why_size)
{
	struct fs *fs;
	size_t nhubs = 0;
	int rc = -ENOMEM;

	*out = NULL;
	snprintf(why, why_size, "out of memory");
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->core = core;
	clock_gettime(CLOCK_MONOTONIC, &fs->started);
	pthread_mutex_init(&fs->handles_lock, NULL);
	pthread_mutex_init(&fs->notify_lock, NULL);
	pthread_cond_init(&fs->notify_cond, NULL);
	fs->hubs_changed = calloc(core_hub_capacity(core) + 1, sizeof(*fs->hubs_changed));
	if (!fs->hubs_changed)
		goto out;
	rc = -pthread_key_create(&fs->read_reply, NULL);
	if (rc)
		goto out;
	fs->read_reply_made = true;
	core_on_index_changed(core, on_index_changed, fs);
	rc = core_open_all(core, &fs->hubs, &nhubs, why, why_size);
	if (rc)
		goto out;
	fs->nhubs = nhubs;
	rc = tree_new(&fs->tree, fs->hubs, nhubs);
	if (rc)
		goto out;
	core_on_hubs_added(core, on_hubs_added, fs);
	if (rc)
		goto out;
	rc = -pthread_create(&fs->notifier, NULL, notifier_main, fs);
	if (rc)
		goto out;
	fs->notifier_started = true;
	*out = fs;
	fs = NULL;
	why[0] = '\0';
out:
	fs_free(fs);
	return rc;
}

static void handle_free(struct handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	core_stream_put(h->stream);
	free(h->text);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void fs_shutdown(struct fs *fs)
{
	if (!fs)
		return;
	notifier_stop(fs);
	core_shutdown(fs->core); /* the readers waiting are answered now */
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	/* Transfers stop first, their waiters answered, before the handles
	 * that hold them go; the core itself is main's. */
	fs_shutdown(fs);
	while (fs->handles) {
		struct handle *h = fs->handles;
		fs->handles = h->next;
		handle_free(h);
	}
	tree_free(fs->tree);
	free(fs->hubs_changed);
	free(fs->mountpoint);
	if (fs->read_reply_made)
		pthread_key_delete(fs->read_reply);
	pthread_cond_destroy(&fs->notify_cond);
	pthread_mutex_destroy(&fs->notify_lock);
	pthread_mutex_destroy(&fs->handles_lock);
	free(fs);
}

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Makes an archive directory's content present in the cache and records
 * where (done on every lookup or listing inside it, so a tree deleted by
 * hand comes back). Without may_wait (a FUSE thread), -EWOULDBLOCK when
 * that takes a request or a download: the caller hands it to a worker. */
static int stage_archive(struct fs *fs, struct node *node, bool may_wait)
{
	char *cache_path = NULL;
	int rc = 0;

	if (!may_wait && core_would_block(node->hub, node->path, false))
		rc = -EWOULDBLOCK;
	if (rc == 0)
		rc = core_stage(fs->core, node->hub, node->path, may_wait, &cache_path);
	if (rc == 0)
		rc = tree_set_backing(fs->tree, node, cache_path);
	free(cache_path);
	return rc;
}

/* How long the kernel may keep a node's attributes: a hub file's never
 * change, but a made file of unknown size learns it once made. */
static double attr_timeout(const struct node *node)
{
	if (node->kind != NODE_HUB_FILE)
		return FS_TIMEOUT_SECONDS;
	return node->made && node->size == 0 ? 0.0 : FS_ATTR_TIMEOUT_SECONDS;
}

/* Attributes as tree_stat gives them; a made file that is there tells its
 * own size. Without may_wait, -EWOULDBLOCK when learning that needs the
 * hub's remote work. */
/* A file extracted in the cache that the disk fails to look up (not one
 * deleted by hand): the reader gets the error, the log says which and why.
 * dir_path is the cache path of its folder. */
static void log_staged_error(const char *dir_path, const char *name, int rc)
{
	if (rc && rc != -ENOENT && rc != -ENOTDIR && rc != -ENAMETOOLONG && rc != -EWOULDBLOCK)
		log_error("%s%s%s: cannot look it up in the cache: %s", dir_path, name ? "/" : "",
			  name ? name : "", strerror(-rc));
}

static int fs_stat(struct fs *fs, const struct node *node, struct stat *st, bool may_wait)
{
	struct stat made;
	int rc = tree_stat(fs->tree, node, st);

	if (node->kind == NODE_STAGED)
		log_staged_error(node->path, NULL, rc);
	if (rc || node->kind != NODE_HUB_FILE || !node->made)
		return rc;
	if (!may_wait && core_would_block(node->hub, node->path, false))
		return -EWOULDBLOCK;
	if (core_made_stat(fs->core, node->hub, node->path, &made) == 0) {
		st->st_size = made.st_size;
		st->st_blocks = made.st_blocks;
	}
	return 0;
}

/* How long the kernel may trust a name. A hub file's or archive's name
 * whose size and digest the index gives is content-addressed: a refresh that
 * changes what it means binds it to a new inode and tells the kernel so
 * (revalidate_hub). But a refresh happens only when a request comes once
 * the hub's index TTL has passed, so the kernel keeps such a name that long
 * and then asks: at least a minute, and at most FS_NAME_TIMEOUT_MAX, as a
 * hub may check parts of its index sooner than its index TTL (a Hugging Face
 * branch, every hf_ttl: 600 s by default). Folders, which a refresh may
 * empty, and made files, whose size is a guess, for a minute. */
#define FS_NAME_TIMEOUT_MAX 600.0
static double entry_timeout(const struct node *node)
{
	double ttl;

	if ((node->kind != NODE_HUB_FILE && node->kind != NODE_ARCHIVE) || node->made ||
	    !digest_spec_verifies(&node->digest))
		return FS_TIMEOUT_SECONDS;
	ttl = (double)node->hub->index_ttl;
	if (ttl < FS_TIMEOUT_SECONDS)
		return FS_TIMEOUT_SECONDS;
	return ttl > FS_NAME_TIMEOUT_MAX ? FS_NAME_TIMEOUT_MAX : ttl;
}

static int fill_entry(struct fs *fs, const struct node *node, struct fuse_entry_param *e,
		      bool may_wait)
{
	memset(e, 0, sizeof(*e));
	e->ino = node->ino;
	e->attr_timeout = attr_timeout(node);
	e->entry_timeout = entry_timeout(node);
	return fs_stat(fs, node, &e->attr, may_wait);
}

/* ---- the session's I/O: as libfuse's own, plus one flag in the INIT reply ---- */

/* The "MAJOR:MINOR" of the last mount on mountpoint in /proc/self/mountinfo
 * (whose fields escape a space as \040), which names its bdi in sysfs.
 * Read there because a stat of the mount point would be a request to us. */
static int mount_device(const char *mountpoint, char *dev, size_t dev_size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], field[PATH_MAX], num[32];
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t n = 0;
		const char *p;

		if (sscanf(line, "%*s %*s %31s %*s %4095s", num, field) != 2)
			continue;
		/* Unescaped in place: \NNN is one octal byte. */
		for (p = field; *p; n++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
			    p[3] >= '0' && p[3] <= '7') {
				field[n] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
				p += 4;
			} else {
				field[n] = *p++;
			}
		}
		field[n] = '\0';
		if (strcmp(field, mountpoint) == 0 && (size_t)snprintf(dev, dev_size, "%s", num) < dev_size)
			rc = 0;
	}
	fclose(f);
	return rc;
}

/* The INIT reply can only lower the kernel's read-ahead (128 KiB), which
 * also bounds the size of a read request: raised through sysfs once the
 * kernel has applied the reply, so that a reader's requests are 1 MiB.
 * Without the right to write there (not root), it stays as it was. */
static void raise_readahead(struct fs *fs)
{
	char dev[32], path[96];
	int rc = mount_device(fs->mountpoint, dev, sizeof(dev));
	FILE *f = NULL;

	if (rc == 0) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
		f = fopen(path, "we");
		rc = f ? 0 : -errno;
	}
	if (rc == 0 && (fprintf(f, "%u\n", FS_READAHEAD_KB) < 0))
		rc = -EIO;
	if (f && fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc)
		log_info("read-ahead left at the kernel's default: %s", strerror(-rc));
	else
		log_debug("read-ahead raised to %u KiB (bdi %s)", FS_READAHEAD_KB, dev);
}

/* libfuse 3.14 takes FUSE_CAP_PARALLEL_DIROPS in conn->want but never
 * tells the kernel (its upstream commit c9905341 does, from 3.15): without
 * it the kernel holds a folder's lock across each lookup in it, so one
 * slow lookup queues all the others, unkillably. op_init therefore routes
 * the session's writes through here, which adds the flag to the INIT reply
 * (the first reply: the kernel sends nothing else before it is answered);
 * every other write, and every read and splice, is what libfuse does. It
 * also notes the error a reply_read was answered with (read_reply): on a
 * kernel without parallel lookups, such a failed read is not logged. */
static ssize_t fs_io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fs *fs = userdata;
	int *read_failed = pthread_getspecific(fs->read_reply);
	bool init = false;
	ssize_t n;

	if (read_failed && count >= 1 && iov[0].iov_len >= sizeof(struct fuse_out_header) &&
	    ((struct fuse_out_header *)iov[0].iov_base)->error < 0)
		*read_failed = -((struct fuse_out_header *)iov[0].iov_base)->error;

	if (count >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header) &&
	    ((struct fuse_out_header *)iov[0].iov_base)->unique != 0 &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, max_background) &&
	    !atomic_exchange(&fs->init_patched, true)) {
		((struct fuse_init_out *)iov[1].iov_base)->flags |= FUSE_PARALLEL_DIROPS;
		init = true;
	}
	n = writev(fd, iov, count);
	/* The kernel applied the INIT reply within that write. */
	if (init && n >= 0 && fs->mountpoint)
		raise_readahead(fs);
	return n;
}

static ssize_t fs_io_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

static ssize_t fs_io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			    unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io fs_io = {
	.writev = fs_io_writev,
	.read = fs_io_read,
	.splice_receive = fs_io_splice,
	.splice_send = fs_io_splice,
};

/* The largest read request whose reply libfuse can splice from the
 * backing file: the whole reply must fit its pipe (with a few pages of
 * slack: its sizing heuristic), and the pipe cannot grow past
 * /proc/sys/fs/pipe-max-size (1 MiB unless raised). A larger reply is
 * copied twice instead (pread, then writev): 1 MiB requests cost a cold
 * 1 GiB read 0.5 s more in the kernel than 512 KiB ones. A power of two,
 * 128 KiB (the kernel's default) to 1 MiB. */
static unsigned spliced_request_bytes(void)
{
	const long page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
	unsigned long pipe_max = 1ul << 20;
	unsigned bytes = 1u << 20;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");

	if (f) {
		if (fscanf(f, "%lu", &pipe_max) != 1)
			pipe_max = 1ul << 20;
		fclose(f);
	}
	while (bytes > (128u << 10) &&
	       (unsigned long)bytes + 4 * (unsigned long)page + sizeof(struct fuse_out_header) >
		       pipe_max)
		bytes /= 2;
	return bytes;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* What the mount options said (libfuse 3.14 ends the session when
	 * the reply differs from them, and leaves this 0). */
	conn->max_read = fs->max_read;
	/* Read requests as large as can be spliced (libfuse derives the
	 * kernel's max_pages from this); the read-ahead that makes them is
	 * raised once the reply is in (raise_readahead), to a window of
	 * several requests. */
	if (conn->max_write > spliced_request_bytes())
		conn->max_write = spliced_request_bytes();
	/* Reads of cached files are spliced from the backing file. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* Listings carry attributes: `ls -l` of a hub costs no lookups. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Lookups in one folder run at once: one repo's listing on the
	 * network never holds another name's lookup, or the lookups the
	 * kernel would otherwise queue behind it unkillably. */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) {
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
		/* Mounted by now: the session has its descriptor. */
		if (fs->session && fuse_session_custom_io(fs->session, &fs_io,
							  fuse_session_fd(fs->session)) != 0)
			log_warn("cannot ask for parallel lookups: a slow one holds up its folder");
	}
	log_info("mounted (splice %s, parallel lookups %s)",
		 conn->want & FUSE_CAP_SPLICE_WRITE ? "on" : "off",
		 conn->want & FUSE_CAP_PARALLEL_DIROPS ? "on" : "off");
}

/* ---- requests that need a hub's remote work: answered from a worker ---- */

/* Each such request is worked out in two halves: one that may need the
 * network (a hub's list, lookup or source, an archive staged), which a
 * FUSE thread runs with may_wait false and which then says -EWOULDBLOCK
 * rather than wait; and one that replies, from local state only. When the
 * first says -EWOULDBLOCK, the request goes to the core's request pool,
 * whose worker runs it with may_wait and replies; an interrupt answers
 * EINTR at once meanwhile (the work goes on, and its answer is dropped). */

enum deferred_op {
	DEFER_LOOKUP,
	DEFER_GETATTR,
	DEFER_READLINK,
	DEFER_OPENDIR,
	DEFER_OPEN,
	DEFER_GETXATTR,
};

struct deferred {
	struct fs *fs;
	fuse_req_t req;
	enum deferred_op op;
	struct node *node;        /* a reference, dropped with it */
	char *name;               /* owned; lookup's name, getxattr's */
	struct fuse_file_info fi; /* opendir, open */
	size_t size;              /* getxattr */
	bool staging;             /* its archive's download was started */
	atomic_int refs;          /* the worker's; the interrupt's reply's */
	atomic_bool claimed;      /* set by whoever answers: the worker or
				     the interrupt */
};

static void deferred_put(struct deferred *d)
{
	if (atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	tree_unref(d->fs->tree, d->node);
	free(d->name);
	free(d);
}

/* The worker's right to answer: false when an interrupt answered. After
 * true no interrupt callback runs for it any more. */
static bool deferred_claim(struct deferred *d)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&d->claimed, &expected, true))
		return false;
	fuse_req_interrupt_func(d->req, NULL, NULL); /* waits for a running one */
	return true;
}

/* On the engine's thread: the interrupted request's answer. */
static void deferred_eintr(void *ctx)
{
	struct deferred *d = ctx;

	fuse_req_interrupt_func(d->req, NULL, NULL);
	fuse_reply_err(d->req, EINTR);
	deferred_put(d);
}

/* FUSE's interrupt callback: it must not reply itself (libfuse holds the
 * request's lock around it), so another thread answers EINTR. */
static void deferred_interrupt(fuse_req_t req, void *data)
{
	struct deferred *d = data;
	bool expected = false;

	(void)req;
	atomic_fetch_add(&d->refs, 1); /* first: the worker may drop its own */
	if (!atomic_compare_exchange_strong(&d->claimed, &expected, true)) {
		atomic_fetch_sub(&d->refs, 1); /* the worker's is still held */
		return;
	}
	if (core_defer(d->fs->core, deferred_eintr, d) != 0) {
		/* Shutting down: the worker answers, soon. */
		atomic_store(&d->claimed, false);
		atomic_fetch_sub(&d->refs, 1);
	}
}

static void deferred_run(void *ctx, bool cancelled);

/* Hands the request to a worker; name and fi may be NULL. */
static void defer(struct fs *fs, fuse_req_t req, enum deferred_op op, struct node *node,
		  const char *name, const struct fuse_file_info *fi, size_t size)
{
	struct deferred *d = calloc(1, sizeof(*d));
	int rc = d ? 0 : -ENOMEM;

	if (rc == 0 && name && !(d->name = strdup(name)))
		rc = -ENOMEM;
	if (rc) {
		if (d)
			free(d);
		fuse_reply_err(req, -rc);
		return;
	}
	d->fs = fs;
	d->req = req;
	d->op = op;
	tree_ref(fs->tree, node); /* the kernel may forget it meanwhile */
	d->node = node;
	if (fi)
		d->fi = *fi;
	d->size = size;
	atomic_init(&d->refs, 1);
	atomic_init(&d->claimed, false);
	/* Registered before it is queued: an interrupt already there runs
	 * the callback now, which answers. */
	fuse_req_interrupt_func(req, deferred_interrupt, d);
	rc = pool_submit_keyed(core_requests(fs->core), node->hub, deferred_run, d);
	if (rc) {
		if (deferred_claim(d))
			fuse_reply_err(req, rc == -ESHUTDOWN ? EINTR : -rc);
		deferred_put(d);
	}
}

/* lookup: the child node (a reference) and its entry, or -errno. */
static int lookup_work(struct fs *fs, struct node *dir, const char *name, bool may_wait,
		       struct node **child, struct fuse_entry_param *e)
{
	char path[PATH_MAX];
	int rc = 0;

	*child = NULL;
	if (dir->kind == NODE_ARCHIVE)
		rc = stage_archive(fs, dir, may_wait);
	if (rc == 0 && !may_wait && dir->kind == NODE_HUB_DIR) {
		if (snprintf(path, sizeof(path), "%s%s%s", dir->path, dir->path[0] ? "/" : "",
			     name) >= (int)sizeof(path))
			rc = -ENAMETOOLONG;
		else if (core_would_block(dir->hub, path, false))
			rc = -EWOULDBLOCK;
	}
	if (rc == 0) {
		rc = tree_lookup(fs->tree, dir, name, child);
		if (dir->kind == NODE_STAGED)
			log_staged_error(dir->path, name, rc);
	}
	if (rc == 0)
		rc = fill_entry(fs, *child, e, may_wait);
	if (rc) {
		tree_unref(fs->tree, *child);
		*child = NULL;
	}
	return rc;
}

static void lookup_reply(struct fs *fs, fuse_req_t req, int rc, struct node *child,
			 struct fuse_entry_param *e)
{
	if (rc == -ENOENT) {
		/* A negative entry: the kernel remembers the miss. */
		memset(e, 0, sizeof(*e));
		e->entry_timeout = FS_TIMEOUT_SECONDS;
		fuse_reply_entry(req, e);
	} else if (rc) {
		fuse_reply_err(req, -rc);
	} else {
		/* Counted first: the kernel may forget it as soon as it has it. */
		tree_count_lookup(fs->tree, child);
		if (fuse_reply_entry(req, e) != 0)
			tree_forget(fs->tree, child->ino, 1); /* it never got there */
	}
	tree_unref(fs->tree, child);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct node *dir = tree_node(fs->tree, parent), *child = NULL;
	struct fuse_entry_param e;
	int rc = dir ? lookup_work(fs, dir, name, false, &child, &e) : -ESTALE;

	if (rc == -EWOULDBLOCK)
		defer(fs, req, DEFER_LOOKUP, dir, name, NULL, 0);
	else
		lookup_reply(fs, req, rc, child, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	tree_forget(fs_of(req)->tree, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fs_of(req);

	for (size_t i = 0; i < count; i++)
		tree_forget(fs->tree, forgets[i].ino, forgets[i].nlookup);
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
	rc = fs_stat(fs, node, &st, false);
	if (rc == -EWOULDBLOCK)
		defer(fs, req, DEFER_GETATTR, node, NULL, NULL, 0);
	else if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(node));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	char target[PATH_MAX];
	ssize_t n;

	if (node && node->kind == NODE_HUB_LINK && core_would_block(node->hub, node->path, false)) {
		defer(fs, req, DEFER_READLINK, node, NULL, NULL, 0);
		return;
	}
	if (node && node->kind == NODE_HUB_LINK) {
		int rc = node->hub->ops->readlink
				 ? node->hub->ops->readlink(node->hub, node->path, target,
							    sizeof(target))
				 : -EINVAL;
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_readlink(req, target);
		return;
	}
	if (!node || node->kind != NODE_STAGED || node->type != S_IFLNK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = core_staged_readlink(tree_node_cache(node), node->path, target, sizeof(target));
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	fuse_reply_readlink(req, target);
}

/* A directory listing, made whole at opendir and served in pieces: the
 * nodes of its children, each held by a reference until releasedir (self
 * is held by the kernel, whose open directory it is). Offsets are
 * positions in it, "." and ".." first. */
struct listing {
	struct tree *tree;
	struct node *self;
	uint64_t parent;
	struct node **children; /* owned array; a reference on each */
	size_t count;
	size_t cap;
	char id[DIGEST_HEX_MAX]; /* names the listing: see listing_id */
};

static int listing_add_child(void *ctx, struct node *child)
{
	struct listing *listing = ctx;

	if (listing->count == listing->cap) {
		size_t cap = listing->cap ? 2 * listing->cap : 64;
		struct node **grown = realloc(listing->children, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		listing->children = grown;
		listing->cap = cap;
	}
	tree_ref(listing->tree, child);
	listing->children[listing->count++] = child;
	return 0;
}

static void listing_free(struct listing *listing)
{
	if (!listing)
		return;
	for (size_t i = 0; i < listing->count; i++)
		tree_unref(listing->tree, listing->children[i]);
	free(listing->children);
	free(listing);
}

/* A listing's id: the sha256 of its children's inode numbers in order. A
 * name changed in meaning (another size or digest) is bound to a new inode
 * number, and numbers are never reused, so two listings with one id show
 * the kernel the same names, types and attributes. */
static int listing_id(struct listing *listing)
{
	struct digest *dg = NULL;
	int rc = digest_new(&dg, DIGEST_SHA256, 0);

	for (size_t i = 0; rc == 0 && i < listing->count; i++)
		rc = digest_update(dg, &listing->children[i]->ino, sizeof(listing->children[i]->ino));
	if (rc == 0)
		rc = digest_final_hex(dg, listing->id);
	digest_free(dg);
	return rc;
}

/* opendir: the listing, whole; *out is the caller's. */
static int opendir_work(struct fs *fs, struct node *node, bool may_wait, struct listing **out)
{
	struct listing *listing = NULL;
	int rc = 0;

	*out = NULL;
	if (node->kind == NODE_ARCHIVE)
		rc = stage_archive(fs, node, may_wait);
	if (rc == 0 && !may_wait && node->kind == NODE_HUB_DIR &&
	    core_would_block(node->hub, node->path, true))
		rc = -EWOULDBLOCK;
	if (rc == 0) {
		listing = calloc(1, sizeof(*listing));
		rc = listing ? 0 : -ENOMEM;
	}
	if (rc == 0) {
		listing->tree = fs->tree;
		listing->self = node;
		listing->parent = node->parent ? node->parent : node->ino;
		rc = tree_list(fs->tree, node, listing_add_child, listing);
	}
	if (rc == 0)
		rc = listing_id(listing);
	if (rc)
		listing_free(listing);
	else
		*out = listing;
	return rc;
}

/* The kernel keeps a listing in its cache (cache_readdir) and serves it
 * again at the next opendir (keep_cache) while the listing is the same:
 * each opendir still comes here, and a listing a refresh changed has
 * another id, which drops the kernel's copy. */
static void opendir_reply(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi, int rc,
			  struct listing *listing)
{
	bool keep, cache;

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	tree_listing_open(fs->tree, listing->self, listing->id, &keep, &cache);
	fi->keep_cache = keep;
	fi->cache_readdir = cache;
	fi->fh = (uintptr_t)listing;
	if (fuse_reply_open(req, fi) != 0) {
		tree_listing_close(fs->tree, listing->self, false);
		listing_free(listing);
	}
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	struct listing *listing = NULL;
	int rc = node ? opendir_work(fs, node, false, &listing) : -ESTALE;

	if (rc == -EWOULDBLOCK)
		defer(fs, req, DEFER_OPENDIR, node, NULL, fi, 0);
	else
		opendir_reply(fs, req, fi, rc, listing);
}

/* A READDIRPLUS entry takes more than this (a fuse_direntplus is 152 bytes
 * before its name): it bounds how many one reply holds. */
#define DIRENTPLUS_MIN_BYTES 64

/* Entries from position off on, as many as fit in size bytes; with plus,
 * each with its attributes (READDIRPLUS), so `ls -l` needs no lookups. */
static void reply_listing(fuse_req_t req, struct listing *listing, size_t size, off_t off,
			  bool plus)
{
	struct fs *fs = fs_of(req);
	size_t total = listing->count + 2, used = 0, ncounted = 0;
	size_t max_counted = size / DIRENTPLUS_MIN_BYTES + 1;
	struct node **counted = NULL; /* plus: the entries whose lookup was counted */
	char *buf;

	if (off < 0 || (size_t)off >= total) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	buf = malloc(size);
	if (plus)
		counted = malloc(max_counted * sizeof(*counted));
	if (!buf || (plus && !counted)) {
		free(buf);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < total; i++) {
		struct node *child = i >= 2 ? listing->children[i - 2] : NULL;
		struct fuse_entry_param e = { 0 };
		const char *name;
		size_t n;

		if (child) {
			name = child->name;
			e.attr.st_ino = child->ino;
			e.attr.st_mode = child->type;
		} else {
			name = i == 0 ? "." : "..";
			e.attr.st_ino = i == 0 ? listing->self->ino : listing->parent;
			e.attr.st_mode = S_IFDIR;
		}
		if (!plus) {
			n = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t)i + 1);
		} else {
			/* "." and ".." carry no attributes: the kernel counts no
			 * lookup for an entry with inode 0. */
			int rc = child ? fill_entry(fs, child, &e, false) : 0;
			if (rc == -EWOULDBLOCK) {
				/* A made file's size would take a request: the
				 * guess, for now; its lookup asks. */
				e.attr_timeout = 0;
				rc = tree_stat(fs->tree, child, &e.attr);
			}
			if (rc)
				continue; /* vanished: leave it out */
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e,
						   (off_t)i + 1);
		}
		if (n > size - used || (plus && child && ncounted == max_counted))
			break; /* the kernel asks again from this offset */
		used += n;
		if (plus && child) {
			/* The kernel takes a lookup of every entry it is given
			 * with an inode number; counted before the reply, since
			 * it may forget them as soon as it has them. */
			tree_count_lookup(fs->tree, child);
			counted[ncounted++] = child;
		}
	}
	if (fuse_reply_buf(req, buf, used) != 0) /* interrupted: it got none */
		for (size_t i = 0; i < ncounted; i++)
			tree_forget(fs->tree, counted[i]->ino, 1);
	free(counted);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	reply_listing(req, (struct listing *)(uintptr_t)fi->fh, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)ino;
	reply_listing(req, (struct listing *)(uintptr_t)fi->fh, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct listing *listing = (struct listing *)(uintptr_t)fi->fh;

	(void)ino;
	tree_listing_close(fs_of(req)->tree, listing->self, true);
	listing_free(listing);
	fuse_reply_err(req, 0);
}

/* ---- opening and reading hub files without holding a FUSE thread ---- */

/* A request answered later, by whoever ends its wait. The submitter and
 * the completion each hold a reference; FUSE's interrupt callback may run
 * only while the completion's is held (the completion unregisters it, which
 * waits for a running one, before it replies). */
struct pending {
	struct fs *fs;
	fuse_req_t req;
	atomic_int refs;
	atomic_uint_fast64_t wait_id;  /* 0 until the wait has begun */
	atomic_bool interrupted;
	void (*cancel)(struct pending *p, uint64_t wait_id);
	/* open */
	struct node *node;             /* a reference, dropped with the pending */
	struct fuse_file_info fi;
	/* read */
	struct handle *handle;
	fuse_ino_t ino;
	off_t offset;
	size_t length;
};

static struct pending *pending_new(struct fs *fs, fuse_req_t req)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->fs = fs;
	p->req = req;
	atomic_init(&p->refs, 2);
	atomic_init(&p->wait_id, 0);
	atomic_init(&p->interrupted, false);
	return p;
}

static void pending_put(struct pending *p)
{
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	tree_unref(p->fs->tree, p->node);
	free(p);
}

static void cancel_open_wait(struct pending *p, uint64_t id)
{
	core_open_cancel(p->fs->core, p->node->hub, id);
}

static void cancel_stream_wait(struct pending *p, uint64_t id)
{
	core_stream_cancel(p->handle->stream, id);
}

/* FUSE's interrupt callback: it must not reply itself (libfuse holds the
 * request's lock around it), so it ends the wait, whose callback replies. */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct pending *p = data;
	uint64_t id;

	(void)req;
	atomic_store(&p->interrupted, true);
	id = atomic_load(&p->wait_id);
	if (id)
		p->cancel(p, id);
}

/* The submitter's part once the wait has begun (id) or failed to (rc). */
static void pending_started(struct pending *p, int rc, uint64_t id)
{
	if (rc) {
		fuse_req_interrupt_func(p->req, NULL, NULL);
		fuse_reply_err(p->req, -rc);
		pending_put(p); /* the completion's: it will never come */
	} else {
		atomic_store(&p->wait_id, id);
		if (id && atomic_load(&p->interrupted))
			p->cancel(p, id);
	}
	pending_put(p);
}

/* The completion's part: after this the request is answered. */
static void pending_finish(struct pending *p)
{
	fuse_req_interrupt_func(p->req, NULL, NULL);
}

static struct handle *handle_new(struct fs *fs, int fd, struct core_stream *stream,
				 uint64_t size)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->fd = fd;
	h->stream = stream;
	h->size = size;
	prefetch_init(&h->prefetch, size);
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (fs->handles)
		fs->handles->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
	return h;
}

static void handle_release(struct fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->handles_lock);
	handle_free(h);
}

/* Answers an open with a handle on fd; takes fd. */
static void reply_open_fd(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi,
			  struct node *node, int fd)
{
	struct handle *h;
	struct stat st;

	bool have_st = fstat(fd, &st) == 0;

	if (node && have_st)
		/* A file replaced since the last open (a repair): the pages the
		 * kernel holds for this inode are not its pages. */
		fi->keep_cache = tree_note_served(fs->tree, node, &st);
	else
		fi->keep_cache = node == NULL;
	/* A hub that cannot say a file's size before the download, or a made
	 * file that came out another size, gave the kernel a guess: reads
	 * must not stop at it. */
	if (node && (!(node->hub->ops->flags & HUB_SIZES_KNOWN) ||
		     (node->made && (!have_st || (uint64_t)st.st_size != node->size))))
		fi->direct_io = 1;
	h = handle_new(fs, fd, NULL, node ? node->size : 0);
	if (!h) {
		close(fd);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, h); /* the opener was interrupted */
}

/* core_wait_fn: the job an open waited on ended. */
static void open_done(void *ctx, struct core_wait *wait, int rc)
{
	struct pending *p = ctx;
	int fd = -1;

	if (rc == 0)
		rc = core_wait_fd(wait, &fd);
	core_wait_free(wait);
	pending_finish(p);
	if (rc)
		fuse_reply_err(p->req, -rc);
	else
		reply_open_fd(p->fs, p->req, &p->fi, p->node, fd);
	pending_put(p);
}

/* Stream mode: the open returns at once; reads wait for their bytes. */
static void reply_open_stream(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi,
			      struct core_stream *stream, uint64_t size)
{
	struct handle *h = handle_new(fs, -1, stream, size);

	if (!h) {
		core_stream_put(stream);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)h;
	/* Pages of unverified bytes are not kept across opens, neither from
	 * before this one nor (tree_note_streamed) for the next. */
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, h);
}

/* Answers the open of a hub file as core_open decides: the file here, a
 * stream, or later, when the job it waits on ends. The hub must answer
 * from memory (core_would_block false), or this waits. */
static void open_hub_file_now(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi,
			      struct node *node)
{
	struct pending *p = pending_new(fs, req);
	struct core_open open;
	int rc = p ? 0 : -ENOMEM;

	if (rc) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->cancel = cancel_open_wait;
	/* The answer may come later, from another thread; an opener killed
	 * meanwhile lets the kernel drop and forget the inode. */
	tree_ref(fs->tree, node);
	p->node = node;
	p->fi = *fi;
	fuse_req_interrupt_func(req, on_interrupt, p);
	rc = core_open(fs->core, node->hub, node->path, node->made ? NULL : &node->digest,
		       node->size, open_done, p, &open);
	if (rc == 0 && open.kind == CORE_OPEN_WAIT) {
		pending_started(p, 0, open.wait_id);
		return;
	}
	/* Answered now: the completion's part is the submitter's. */
	pending_finish(p);
	if (rc)
		/* ESTALE: the index changed what this name means since the
		 * kernel looked it up; the kernel looks it up again, and the
		 * new lookup gives another inode, with the new size. */
		fuse_reply_err(req, -rc);
	else if (open.kind == CORE_OPEN_STREAM) {
		/* Before the reply: the kernel may cache pages from then on. */
		tree_note_streamed(fs->tree, node);
		reply_open_stream(fs, req, fi, open.stream, open.size);
	}
	else
		reply_open_fd(fs, req, fi, node, open.fd);
	pending_put(p);
	pending_put(p);
}

static void open_hub_file(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi,
			  struct node *node)
{
	if (core_would_block(node->hub, node->path, false))
		defer(fs, req, DEFER_OPEN, node, NULL, fi, 0);
	else
		open_hub_file_now(fs, req, fi, node);
}

/* ---- .omnihub: the daemon's status, metrics and log ---- */

/* A status file's handle holds its content, made at open: reads of one
 * open see one snapshot. Its size in stat is 0, so reads are direct (the
 * kernel would stop at the size it was told). */
static void open_status_file(struct fs *fs, fuse_req_t req, struct fuse_file_info *fi,
			     const struct node *node)
{
	struct handle *h;
	char *text = NULL;
	size_t len = 0;
	struct timespec now;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &now);
	rc = core_status_text(fs->core, node->path,
			      (double)(now.tv_sec - fs->started.tv_sec) +
				      (double)(now.tv_nsec - fs->started.tv_nsec) / 1e9,
			      &text, &len);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	h = handle_new(fs, -1, NULL, len);
	if (!h) {
		free(text);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->text = text;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, h);
}

/* Replies from a copy: once the kernel has the reply, the reader may close
 * the file and its release free the text while fuse_reply_buf is still
 * returning from writev (ASan saw it read the freed buffer there). */
static void read_status_file(fuse_req_t req, const struct handle *h, size_t size, off_t off)
{
	char *copy = NULL;

	if (off < 0 || (uint64_t)off >= h->size)
		size = 0;
	else if (size > h->size - (uint64_t)off)
		size = (size_t)(h->size - (uint64_t)off);
	if (size && !(copy = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (size)
		memcpy(copy, h->text + off, size);
	fuse_reply_buf(req, copy, size);
	free(copy);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!node) {
		fuse_reply_err(req, ESTALE);
	} else if (node->kind == NODE_HUB_FILE) {
		open_hub_file(fs, req, fi, node);
	} else if (node->kind == NODE_STATUS_FILE) {
		open_status_file(fs, req, fi, node);
	} else if (node->kind == NODE_STAGED && node->type == S_IFREG) {
		fd = core_staged_open(tree_node_cache(node), node->path);
		if (fd < 0)
			fuse_reply_err(req, -fd);
		else
			reply_open_fd(fs, req, fi, NULL, fd);
	} else {
		fuse_reply_err(req, EISDIR);
	}
}

/* libfuse answers a failed read of fd (a failing disk) with its errno and
 * tells us nothing: that reply passes through fs_io_writev, on this thread,
 * which notes the errno, so that the file and the cause are logged. */
static void reply_read(struct fs *fs, fuse_req_t req, fuse_ino_t ino, int fd, size_t size,
		       off_t off)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	const struct node *node;
	const char *hub;
	int failed = 0;

	/* libfuse splices from the descriptor to /dev/fuse when it can. */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	pthread_setspecific(fs->read_reply, &failed);
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	pthread_setspecific(fs->read_reply, NULL);
	if (failed) {
		/* The kernel holds the inode while the file is open. A staged
		 * file's path (below the cache root) starts with its hub. */
		node = tree_node(fs->tree, ino);
		hub = node && node->hub && node->kind != NODE_STAGED ? node->hub->name : NULL;
		log_error("%s%s%s: cannot read %" PRIu64 " bytes at offset %lld from the cache: %s",
			  hub ? hub : "", hub ? "/" : "", node ? node->path : "?", (uint64_t)size,
			  (long long)off, strerror(failed));
	}
}

static void read_ready(void *ctx, int rc)
{
	struct pending *p = ctx;

	pending_finish(p);
	if (rc)
		fuse_reply_err(p->req, -rc);
	else
		reply_read(p->fs, p->req, p->ino, core_stream_fd(p->handle->stream), p->length,
			   p->offset);
	pending_put(p);
}

/* A stream read: waits for its bytes, asks for those a sequential reader
 * will want next (prefetch.h). */
static void read_streaming(struct fs *fs, fuse_req_t req, fuse_ino_t ino, struct handle *h,
			   size_t size, off_t off)
{
	uint64_t offset = (uint64_t)off, hint_offset, hint_length, id = 0;
	struct pending *p;
	int rc;

	if (offset >= h->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > h->size - offset)
		size = (size_t)(h->size - offset);
	pthread_mutex_lock(&h->lock);
	prefetch_read(&h->prefetch, offset, size, &hint_offset, &hint_length);
	pthread_mutex_unlock(&h->lock);
	/* The read's own pieces jump the queue when it waits (transfer.c);
	 * the hint only adds those ahead. */
	core_stream_hint(h->stream, hint_offset, hint_length);

	p = pending_new(fs, req);
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->cancel = cancel_stream_wait;
	p->handle = h;
	p->ino = ino;
	p->offset = off;
	p->length = size;
	fuse_req_interrupt_func(req, on_interrupt, p);
	/* The read that reaches the end waits for the digest: whoever reads
	 * the whole file learns of a mismatch, as EIO. */
	rc = core_stream_wait(h->stream, offset, size, offset + size >= h->size, read_ready, p,
			      &id);
	pending_started(p, rc, id);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	if (h->text)
		read_status_file(req, h, size, off);
	else if (h->stream)
		read_streaming(fs_of(req), req, ino, h, size, off);
	else
		reply_read(fs_of(req), req, ino, h->fd, size, off);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	handle_release(fs_of(req), (struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- extended attributes: what a file is, without downloading it ---- */

#define XATTR_PREFIX "user.omnihub."

static const char *const xattr_names[] = { "url", "digest", "hub", "meta", "cached" };

/* The value of user.omnihub.<which> of node into *out (the caller's):
 * 0, -ENODATA for a node without them or another name. */
static int node_xattr(struct fs *fs, const struct node *node, const char *which, char **out)
{
	char digest[DIGEST_HEX_MAX + 32];
	bool present = false;

	*out = NULL;
	if (node->kind == NODE_HUB_DIR && node->hub) {
		/* A folder: its hub, and what the hub knows of it (a repo's
		 * commit, files, size, gated state), when it knows anything. */
		if (strcmp(which, "hub") == 0) {
			*out = strdup(node->hub->name);
			return *out ? 0 : -ENOMEM;
		}
		if (strcmp(which, "meta") == 0 && core_meta(node->hub, node->path, out) == 0) {
			if (strcmp(*out, "{}") != 0)
				return 0;
			free(*out); /* nothing known of it */
			*out = NULL;
		}
		return -ENODATA;
	}
	if (node->kind != NODE_HUB_FILE && node->kind != NODE_ARCHIVE)
		return -ENODATA;
	if (strcmp(which, "hub") == 0) {
		*out = strdup(node->hub->name);
		return *out ? 0 : -ENOMEM;
	}
	if (strcmp(which, "meta") == 0)
		return core_meta(node->hub, node->path, out);
	if (strcmp(which, "digest") == 0) {
		/* The digest is what the name stands for: the node has it. */
		digest_spec_format(&node->digest, digest, sizeof(digest));
		*out = strdup(digest);
		return *out ? 0 : -ENOMEM;
	}
	if (strcmp(which, "url") == 0)
		return core_url(node->hub, node->path, out);
	if (strcmp(which, "cached") != 0)
		return -ENODATA;
	/* When not even its size can be learnt now, it is not here. */
	if (core_cached(fs->core, node->hub, node->path, &present, NULL) != 0)
		present = false;
	*out = strdup(present ? "yes" : "no");
	return *out ? 0 : -ENOMEM;
}

/* size 0 asks how big the value is; too small a buffer is ERANGE. */
static void reply_xattr_value(fuse_req_t req, const char *value, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct node *node;
	const char *which;
	char *value = NULL;
	int rc;

	/* ls -l asks every file for security.selinux and its ACLs. ENOTSUP,
	 * not ENODATA: coreutils then takes the namespace as unsupported on
	 * this device and stops asking for the rest of its run, where an
	 * ENODATA it must ask again for every file. */
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	node = tree_node(fs->tree, ino);
	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	which = name + strlen(XATTR_PREFIX);
	if ((node->kind == NODE_HUB_FILE || node->kind == NODE_ARCHIVE ||
	     (node->kind == NODE_HUB_DIR && node->hub)) &&
	    (strcmp(which, "url") == 0 || strcmp(which, "meta") == 0 ||
	     strcmp(which, "cached") == 0) &&
	    core_would_block(node->hub, node->path, false)) {
		defer(fs, req, DEFER_GETXATTR, node, which, NULL, size);
		return;
	}
	rc = node_xattr(fs, node, which, &value);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_xattr_value(req, value, strlen(value), size);
	free(value);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	struct node *node = tree_node(fs->tree, ino);
	char list[256];
	size_t len = 0;

	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (node->kind == NODE_HUB_FILE || node->kind == NODE_ARCHIVE)
		for (size_t i = 0; i < sizeof(xattr_names) / sizeof(xattr_names[0]); i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						XATTR_PREFIX, xattr_names[i]) + 1;
	else if (node->kind == NODE_HUB_DIR && node->hub)
		len = (size_t)snprintf(list, sizeof(list), "%shub%c%smeta", XATTR_PREFIX, '\0',
				       XATTR_PREFIX) + 1;
	reply_xattr_value(req, list, len, size);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs st;

	int rc;

	(void)ino;
	/* The space the cache has left is what a download can still use. */
	rc = core_statvfs(fs->core, &st);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	st.f_namemax = NAME_MAX;
	fuse_reply_statfs(req, &st);
}

/* core_start's callback: the archive a queued lookup or listing is in is
 * extracted (or failed); the request goes back to the pool. */
static void deferred_staged(void *ctx, int rc)
{
	struct deferred *d = ctx;

	if (rc == 0)
		rc = pool_submit_keyed(core_requests(d->fs->core), d->node->hub, deferred_run, d);
	if (rc == 0)
		return;
	if (deferred_claim(d))
		fuse_reply_err(d->req, rc == -ESHUTDOWN ? EINTR : -rc);
	deferred_put(d);
}

/* A lookup or listing in an archive not extracted yet: its download and
 * extraction run as a job, holding no worker; true when started (the
 * request then goes on in deferred_staged). */
static bool deferred_stage(struct deferred *d)
{
	struct node *node = d->node;

	if ((d->op != DEFER_LOOKUP && d->op != DEFER_OPENDIR) || node->kind != NODE_ARCHIVE ||
	    d->staging || stage_archive(d->fs, node, false) != -EWOULDBLOCK)
		return false;
	d->staging = true;
	return core_start(d->fs->core, node->hub, node->path, deferred_staged, d) == 0;
}

/* The pool's task: the request's work, waiting as it must, then its
 * answer unless an interrupt gave one. */
static void deferred_run(void *ctx, bool cancelled)
{
	struct deferred *d = ctx;
	struct fs *fs = d->fs;
	struct fuse_entry_param e;
	struct listing *listing = NULL;
	struct node *child = NULL;
	struct source src;
	char target[PATH_MAX], *value = NULL;
	struct stat st;
	int rc;

	if (cancelled) {
		/* The session ends: answered, not worked out. */
		if (deferred_claim(d))
			fuse_reply_err(d->req, EINTR);
		deferred_put(d);
		return;
	}
	if (deferred_stage(d))
		return;
	switch (d->op) {
	case DEFER_LOOKUP:
		rc = lookup_work(fs, d->node, d->name, true, &child, &e);
		if (deferred_claim(d))
			lookup_reply(fs, d->req, rc, child, &e);
		else
			tree_unref(fs->tree, child);
		break;
	case DEFER_GETATTR:
		rc = fs_stat(fs, d->node, &st, true);
		if (deferred_claim(d)) {
			if (rc)
				fuse_reply_err(d->req, -rc);
			else
				fuse_reply_attr(d->req, &st, attr_timeout(d->node));
		}
		break;
	case DEFER_READLINK:
		rc = d->node->hub->ops->readlink ? d->node->hub->ops->readlink(
							   d->node->hub, d->node->path, target,
							   sizeof(target))
						 : -EINVAL;
		if (deferred_claim(d)) {
			if (rc)
				fuse_reply_err(d->req, -rc);
			else
				fuse_reply_readlink(d->req, target);
		}
		break;
	case DEFER_OPENDIR:
		rc = opendir_work(fs, d->node, true, &listing);
		if (deferred_claim(d))
			opendir_reply(fs, d->req, &d->fi, rc, listing);
		else
			listing_free(listing);
		break;
	case DEFER_OPEN:
		/* The hub's remote work first, interruptible; then the open
		 * itself, which the hub answers from memory. */
		rc = core_source(fs->core, d->node->hub, d->node->path, &src);
		if (rc == 0)
			source_clear(&src);
		if (deferred_claim(d)) {
			if (rc)
				fuse_reply_err(d->req, -rc);
			else
				open_hub_file_now(fs, d->req, &d->fi, d->node);
		}
		break;
	case DEFER_GETXATTR:
		rc = node_xattr(fs, d->node, d->name, &value);
		if (deferred_claim(d)) {
			if (rc)
				fuse_reply_err(d->req, -rc);
			else
				reply_xattr_value(d->req, value, strlen(value), d->size);
		}
		free(value);
		break;
	}
	deferred_put(d);
}

const struct fuse_lowlevel_ops fs_operations = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
};
