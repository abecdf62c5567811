/* cachefs.h: whether the filesystem under a cache directory can hold the
 * blob store's locks, so that several machines may share it; checked once
 * at start. Not for: taking the locks (blob.c) or the cache's layout (cache.c). */
#ifndef OMNIHUB_CACHEFS_H
#define OMNIHUB_CACHEFS_H

#include <stdbool.h>
#include <stddef.h>

struct cache;

/* One line of /proc/self/mountinfo, as far as the check needs it. */
struct cachefs_mount {
	char point[4096];   /* the mount point, its \ooo escapes undone */
	char fstype[64];    /* "nfs4", "ext4", "fuse.sshfs" */
	char source[1024];  /* "server:/export", "/dev/vda" */
	char options[2048]; /* the per-mount options, then the superblock's */
};

/* The mount of mountinfo (the text of /proc/self/mountinfo) whose mount
 * point holds path (absolute, without links): the longest such point, the
 * last of equal ones (it covers the earlier). 0, or -ENOENT. */
int cachefs_mount_of(const char *mountinfo, const char *path, struct cachefs_mount *out);

/* This process's mount table: the text of /proc/self/mountinfo in *out
 * (the caller's), or -errno. */
int cachefs_read_mountinfo(char **out);
/* Calls fn for each mount of mountinfo, in order, until it returns non-0
 * (which is returned; else 0). Lines it cannot parse are passed over. */
int cachefs_mounts_each(const char *mountinfo,
			int (*fn)(void *ctx, const struct cachefs_mount *mount), void *ctx);
/* Whether a mount of this type is an omnihub-fuse mount: fuse.omnihub (the
 * daemon's subtype) or fuse.omnihub-fuse (mount.fuse3's, from fstab). */
bool cachefs_type_is_omnihub(const char *fstype);

/* Whether a filesystem of this type (mountinfo's name) is shared over a
 * network, so other machines may take locks on it too. */
bool cachefs_type_is_network(const char *fstype);

/* Why the mount's fcntl locks never leave this machine ("it is mounted
 * with nolock"), or NULL when its options say nothing of the kind. */
const char *cachefs_locks_local(const struct cachefs_mount *mount);

/* The start-up check of a cache's filesystem: from the mount options and
 * then by taking on a temporary file the locks blob.c takes, that they
 * work and exclude each other across open files. 0 (with one info line
 * when the filesystem is a network one), or -ENOLCK with a sentence in why
 * that names the directory, the filesystem, the reason and the remedy. */
int cachefs_check_locks(struct cache *cache, char *why, size_t why_size);

#endif
