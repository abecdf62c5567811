/* hub.h: the interface every hub backend implements (a table of functions,
 * one file per hub), and the services the core lends them. Not for: FUSE,
 * HTTP, digests or the cache, which backends never touch directly. */
#ifndef OMNIHUB_HUB_H
#define OMNIHUB_HUB_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hub_option.h"
#include "source.h"

struct budgets;
struct cache;
struct config;
struct fetcher;
struct hub;
struct hub_state;

enum entry_type {
	ENTRY_DIR,
	ENTRY_FILE,
	ENTRY_ARCHIVE, /* a directory whose content is an archive, extracted */
	ENTRY_LINK,    /* a symbolic link to a name in the same directory
			  (hub_ops.readlink gives it) */
};

/* One name in a hub directory, as known from the hub's index alone. */
struct entry {
	char name[NAME_MAX + 1];
	enum entry_type type;
	uint64_t size; /* file bytes (the archive's for ENTRY_ARCHIVE) */
	time_t mtime;
	struct digest_spec digest; /* of the file or archive; DIGEST_NONE for a
				      directory. With size, it is what the name
				      means: another value is another inode. */
	bool made;  /* a file made from a download (decompressed, an archive's
		       member, a converter's output): size is what the hub
		       expects, 0 when it cannot say; the made file tells */
};

struct entry_list {
	struct entry *items; /* owned */
	size_t count;
	size_t cap;
};

/* Fills entry with these and zeros elsewhere (no digest, not made); name
 * is cut to NAME_MAX. */
void entry_make(struct entry *entry, const char *name, enum entry_type type, uint64_t size,
		time_t mtime);
int entry_list_add(struct entry_list *list, const struct entry *entry);
void entry_list_free(struct entry_list *list);

/* What the core lends a hub; outlives every hub. */
struct hub_env {
	const struct config *config;
	struct fetcher *fetcher;
	struct cache *cache;
	struct budgets *budgets; /* request budgets per host, shared by hubs */
	/* A hub calls this after a refresh replaced its index, from the thread
	 * that refreshed it; it does not block. NULL: nobody listens. */
	void (*index_changed)(void *ctx, struct hub *hub);
	void *index_changed_ctx;
	/* The session's i-th hub, for a hub that shows the others (the views
	 * of clients' caches, hub_views.c): 0 with *out while it serves (the
	 * command opens it on first use); -EAGAIN when it does not serve now
	 * or shows others itself (HUB_SHOWS_PEERS); -ENOENT past the last.
	 * Takes core.c's hubs_lock: call it holding no lock. */
	int (*peer)(void *ctx, size_t i, struct hub **out);
	void *peer_ctx;
};

struct hub {
	const struct hub_ops *ops;
	const struct hub_env *env;
	const char *name; /* its directory under the mount point: ops->name,
			     or ops->hub_name's (borrowed from the core) */
	const void *set;  /* what ops->load made, for a hub made from it
			     (borrowed from the core); NULL without load */
	/* Its own settings, as the config resolves them for it (a [hub]
	 * section over the general ones); set by the core before open, and
	 * again by a reload (SIGHUP) while the hub serves. */
	_Atomic bool offline;       /* the cache only */
	_Atomic unsigned index_ttl; /* seconds its cached index is used */
	void *priv; /* the backend's state: made by open, freed by close */
	/* Whether it serves now (hub_state.h): the core's, NULL for a hub
	 * the core did not make. Its functions but open are called only
	 * while hub_state_check says it is up. */
	struct hub_state *state;
};

/* What a hub can promise, so the core asks rather than guesses. */
enum hub_flags {
	HUB_LISTS_ALL = 1u << 0,   /* its root lists every name it has (else only
				      those known so far; others are looked up) */
	HUB_SIZES_KNOWN = 1u << 1, /* every file's size is known before a download */
	HUB_USES_TOKEN = 1u << 2,  /* sends the user's credential when it has one */
	HUB_FROM_CATALOGS = 1u << 3, /* one hub per hub the catalogs name, each
					with that name, rather than one (it has
					load, count, hub_name and unload) */
	HUB_SHOWS_PEERS = 1u << 4, /* its names are links into the other hubs
				      (hub_env.peer), which never list it */
};

/* Paths are relative to the hub's directory, "" for the hub's root, never
 * with a leading or trailing '/'. Every function returns 0 or -errno
 * (-ENOENT for a name the hub does not have, -ENOTDIR for listing a file).
 * list, lookup and source are called from many threads at once and must
 * not download anything but the index. A hub must not assume its index is
 * small or listed at once: lookup may be asked for a name list never showed. */
struct hub_ops {
	const char *name; /* its directory under the mount point */
	unsigned flags;   /* enum hub_flags */
	const struct hub_option_spec *options; /* ends with a NULL name; may be NULL */
	/* Called before the mount; on failure writes a sentence to why and
	 * leaves priv NULL. -EINVAL only for settings it refuses (never tried
	 * again); any other failure (the network, the index) the mount tries
	 * again later, calling open again. */
	int (*open)(struct hub *hub, char *why, size_t why_size);
	int (*list)(struct hub *hub, const char *dir, struct entry_list *out);
	int (*lookup)(struct hub *hub, const char *path, struct entry *out);
	/* Where the bytes of a file or archive entry come from. */
	int (*source)(struct hub *hub, const char *path, struct source *out);
	/* Optional. ENTRY_LINK: its target into out (NUL-terminated). */
	int (*readlink)(struct hub *hub, const char *path, char *out, size_t out_size);
	/* Optional. Where a file or archive's bytes come from, without all
	 * that source needs (a size may take a request); *url is the
	 * caller's. Without it, source's URL is shown. */
	int (*url)(struct hub *hub, const char *path, char **url);
	/* Optional. A file or archive's metadata as a JSON object, for the
	 * xattr user.omnihub.meta; *json is the caller's. */
	int (*meta)(struct hub *hub, const char *path, char **json);
	/* Optional. Whether list (list true) or else lookup, source or
	 * readlink of path would make a request now, or wait for one another
	 * thread makes (a refresh, a size): judged from memory alone, never
	 * waiting, so a FUSE thread may ask, and hands the call to a worker
	 * when true (fs.c). A hub that knows its answer stays fresh a moment
	 * longer says false only then. Without it: never. */
	bool (*would_block)(struct hub *hub, const char *path, bool list);
	/* Optional, for the views of clients' caches (hub_views.c): calls fn
	 * for each file or archive of the hub that a client caches, known from
	 * the index alone (no request), with that client's layout ("torch",
	 * "keras", "onnx", "tfhub") and the path there, relative to the
	 * client's cache folder ("hub/checkpoints/resnet18-f37072fd.pth"). A
	 * non-zero return of fn stops the walk and is returned. */
	int (*client_paths)(struct hub *hub,
			    int (*fn)(void *ctx, const char *path, const char *client,
				      const char *client_path),
			    void *ctx);
	/* Optional, for the views of clients' caches: where this hub's repos
	 * are in a client's cache, as the prefix of their folders there
	 * ("huggingface/hub/models--": org/name is models--org--name); the
	 * hub serves "org/name@<rev>" for any revision. */
	const char *client_repos;
	/* Optional, with client_repos: the commit repo ("org/name[@rev]") is
	 * at now, 40 hex digits and a NUL into out; may make a request
	 * (would_block of the repo's path says so). */
	int (*commit_of)(struct hub *hub, const char *repo, char out[41]);
	/* Optional. A small file's bytes, made from the hub's index rather
	 * than downloaded (a view's refs/<branch>): *data is the caller's.
	 * The core serves every file of such a hub from memory; its source
	 * only does the same remote work and gives an empty source. */
	int (*content)(struct hub *hub, const char *path, char **data, size_t *len);
	void (*close)(struct hub *hub);
	/* Optional, for an entry that makes several hubs (HUB_FROM_CATALOGS):
	 * loads once, before any open, what names them (*set, freed by
	 * unload; the core lends it as hub->set); 0 or -errno with a
	 * sentence in why. count and hub_name say the hubs it makes. */
	int (*load)(const struct config *cfg, void **set, char *why, size_t why_size);
	size_t (*count)(const void *set);
	const char *(*hub_name)(const void *set, size_t i);
	void (*unload)(void *set);
	/* Optional: checks the hub's own settings as open takes them, reading
	 * local files at most and sending no request (omnihub config
	 * --check): 0, or -errno with a sentence in why that begins with the
	 * option's name ("hf_repos: ...") when it is a setting's fault. */
	int (*check)(const struct config *cfg, char *why, size_t why_size);
	/* Optional, for a hub whose files converters make: how long one may
	 * run, in seconds (0: its setting is wrong; load refuses it). */
	unsigned (*convert_timeout)(const struct config *cfg);
	/* Optional. The hub's own search for query (a request; never called
	 * offline): fn(ctx, path) for each name it finds, at most limit, path
	 * within the hub ("org/name": a repo's folder), in the hub's order.
	 * 0 or -errno; fn's non-zero return ends it and is returned. */
	int (*search)(struct hub *hub, const char *query, unsigned limit,
		      int (*fn)(void *ctx, const char *path), void *ctx);
};

/* Every hub this build knows, in the order of the root directory (hubs.c). */
extern const struct hub_ops *const hub_registry[];
extern const size_t hub_registry_count;

/* The registry's options as conf sees them (hub_option.h), for the front
 * ends to pass to options_init (hubs.c). */
extern const struct hub_option_hubs hub_registry_options;

/* An index file of a hub: where it comes from and how big it may be. */
struct hub_index_spec {
	const char *url;
	const char *file_name; /* kept as <cache>/.index/<hub>/<file_name> */
	size_t max_bytes;
};

/* Accepts (0) or refuses (-errno, with a sentence in why) index bytes. */
typedef int (*hub_index_parse_fn)(struct hub *hub, const char *data, size_t len, time_t mtime,
				  char *why, size_t why_size);

/* Loads a hub's index through parse. Without refresh: the cached copy while
 * it is younger than the index TTL (always when offline), else a download.
 * With refresh: a download only. A download is saved in the cache only once
 * parse accepts it; when it fails or is refused and no refresh was asked,
 * the cached copy is used, with a warning. Logs what it decides, except a
 * failure, which it leaves to the caller with a sentence in why. */
int hub_index_load(struct hub *hub, const struct hub_index_spec *spec, bool refresh,
		   hub_index_parse_fn parse, char *why, size_t why_size);

#endif
