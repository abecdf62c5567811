/* cachefs.c: whether the filesystem under a cache directory can hold the
 * blob store's locks, so that several machines may share it; checked once
 * at start. Not for: taking the locks (blob.c) or the cache's layout (cache.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/magic.h>

#include "cache.h"
#include "cachefs.h"
#include "full_io.h"
#include "log.h"

#define MOUNTINFO     "/proc/self/mountinfo"
#define MOUNTINFO_MAX (16u << 20)
#define REMEDY                                                                                     \
	"mount it with working locks (without nolock or local_lock) or use a local cache "         \
	"directory"

/* Copies the next space-separated field of *line into out (its \ooo
 * escapes undone when unescape) and moves *line past it; false at the end
 * of the line or when it does not fit. */
static bool next_field(const char **line, char *out, size_t out_size, bool unescape)
{
	const char *p = *line;
	size_t n = 0;

	while (*p == ' ')
		p++;
	if (*p == '\0' || *p == '\n')
		return false;
	for (; *p && *p != ' ' && *p != '\n'; p++) {
		char c = *p;
		if (unescape && c == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
		    p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			c = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		}
		if (n + 1 >= out_size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	*line = p;
	return true;
}

/* One mountinfo line: "36 35 98:0 /root /point rw,noatime shared:1 - ext4
 * /dev/vda rw,errors=continue" (proc(5)). */
static bool parse_line(const char *line, struct cachefs_mount *m)
{
	char field[4096], mount_opts[1024], super_opts[1024];
	int i;

	memset(m, 0, sizeof(*m));
	/* id, parent, major:minor, root */
	for (i = 0; i < 4; i++)
		if (!next_field(&line, field, sizeof(field), false))
			return false;
	if (!next_field(&line, m->point, sizeof(m->point), true) ||
	    !next_field(&line, mount_opts, sizeof(mount_opts), false))
		return false;
	/* Optional fields ("shared:1", "master:2") up to the separator. */
	do {
		if (!next_field(&line, field, sizeof(field), false))
			return false;
	} while (strcmp(field, "-") != 0);
	if (!next_field(&line, m->fstype, sizeof(m->fstype), true) ||
	    !next_field(&line, m->source, sizeof(m->source), true))
		return false;
	if (!next_field(&line, super_opts, sizeof(super_opts), true))
		super_opts[0] = '\0';
	snprintf(m->options, sizeof(m->options), "%s%s%s", mount_opts, super_opts[0] ? "," : "",
	         super_opts);
	return true;
}

/* Whether the mount point holds path: itself, or a path below it. */
static size_t holds(const char *point, const char *path)
{
	size_t n = strlen(point);

	if (strcmp(point, "/") == 0)
		return 1;
	if (strncmp(point, path, n) == 0 && (path[n] == '\0' || path[n] == '/'))
		return n;
	return 0;
}

int cachefs_mount_of(const char *mountinfo, const char *path, struct cachefs_mount *out)
{
	struct cachefs_mount *m = malloc(sizeof(*m));
	size_t best = 0;
	int rc = -ENOENT;

	memset(out, 0, sizeof(*out));
	if (!m)
		return -ENOMEM;
	for (const char *line = mountinfo; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len;

		if (parse_line(line, m) && (len = holds(m->point, path)) > 0 && len >= best) {
			best = len;
			*out = *m;
			rc = 0;
		}
		line = end ? end + 1 : NULL;
	}
	free(m);
	return rc;
}

int cachefs_mounts_each(const char *mountinfo,
			int (*fn)(void *ctx, const struct cachefs_mount *mount), void *ctx)
{
	struct cachefs_mount *m = malloc(sizeof(*m));
	int rc = 0;

	if (!m)
		return -ENOMEM;
	for (const char *line = mountinfo; rc == 0 && line && *line;) {
		const char *end = strchr(line, '\n');

		if (parse_line(line, m))
			rc = fn(ctx, m);
		line = end ? end + 1 : NULL;
	}
	free(m);
	return rc;
}

bool cachefs_type_is_omnihub(const char *fstype)
{
	return strcmp(fstype, "fuse.omnihub") == 0 || strcmp(fstype, "fuse.omnihub-fuse") == 0;
}

bool cachefs_type_is_network(const char *fstype)
{
	static const char *const types[] = {
	    "nfs",
	    "nfs4",
	    "cifs",
	    "smb3",
	    "smbfs",
	    "9p",
	    "ceph",
	    "glusterfs",
	    "lustre",
	    "gpfs",
	    "beegfs",
	    "afs",
	    "coda",
	    "ocfs2",
	    "gfs2",
	    "fuse.glusterfs",
	    "fuse.ceph-fuse",
	    "fuse.sshfs",
	    "fuse.s3fs",
	    "fuse.rclone",
	    "fuse.gcsfuse",
	    "fuse.goofys",
	    "fuse.juicefs",
	    "fuse.mfs",
	    "fuse.lizardfs",
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(fstype, types[i]) == 0)
			return true;
	return false;
}

/* Whether the comma-separated options hold option exactly. */
static bool has_option(const char *options, const char *option)
{
	size_t n = strlen(option);

	for (const char *p = options; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, option, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	}
	return false;
}

const char *cachefs_locks_local(const struct cachefs_mount *mount)
{
	/* FUSE filesystems whose daemon leaves locks to this machine's kernel. */
	static const char *const local_fuse[] = {"fuse.sshfs", "fuse.s3fs", "fuse.rclone",
	                                         "fuse.gcsfuse", "fuse.goofys"};
	const char *o = mount->options;

	if (strncmp(mount->fstype, "nfs", 3) == 0) {
		/* local_lock=flock is fine: the store takes fcntl locks only. */
		if (has_option(o, "nolock"))
			return "is mounted with nolock, which keeps its locks on this machine";
		if (has_option(o, "local_lock=all"))
			return "is mounted with local_lock=all, which keeps its locks on this "
			       "machine";
		if (has_option(o, "local_lock=posix"))
			return "is mounted with local_lock=posix, which keeps its locks on this "
			       "machine";
	}
	if ((strcmp(mount->fstype, "cifs") == 0 || strcmp(mount->fstype, "smb3") == 0) &&
	    has_option(o, "nobrl"))
		return "is mounted with nobrl, which keeps its locks on this machine";
	for (size_t i = 0; i < sizeof(local_fuse) / sizeof(local_fuse[0]); i++)
		if (strcmp(mount->fstype, local_fuse[i]) == 0)
			return "keeps its locks on this machine (it does not pass them to its "
			       "server)";
	return NULL;
}

/* The name of a network filesystem by its magic, for when mountinfo has
 * no line for the directory; NULL for the others. */
static const char *network_magic(long type)
{
	switch ((unsigned long)type) {
	case NFS_SUPER_MAGIC:
		return "nfs";
	case SMB2_SUPER_MAGIC:
		return "smb3";
	case CIFS_SUPER_MAGIC:
		return "cifs";
	case SMB_SUPER_MAGIC:
		return "smbfs";
	case V9FS_MAGIC:
		return "9p";
	case CEPH_SUPER_MAGIC:
		return "ceph";
	case AFS_SUPER_MAGIC:
	case AFS_FS_MAGIC:
		return "afs";
	case CODA_SUPER_MAGIC:
		return "coda";
	case OCFS2_SUPER_MAGIC:
		return "ocfs2";
	default:
		return NULL;
	}
}

/* The whole of a small file under /proc, NUL-terminated; the caller's. */
static int read_text(const char *path, char **out)
{
	size_t len = 0, cap = 64u << 10;
	char *text = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	*out = NULL;
	if (fd < 0 || !text) {
		rc = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;
		if (len + 1 == cap) {
			char *grown = cap < MOUNTINFO_MAX ? realloc(text, cap * 2) : NULL;
			if (!grown) {
				rc = -ENOMEM;
				goto out;
			}
			text = grown;
			cap *= 2;
		}
		n = full_io_read(fd, text + len, cap - len - 1);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		len += (size_t)n;
		if (len + 1 < cap) /* short: the end of the file */
			break;
	}
	text[len] = '\0';
	*out = text;
	text = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}

int cachefs_read_mountinfo(char **out)
{
	return read_text(MOUNTINFO, out);
}

static int ofd_lock(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET};

	return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

static bool busy(int rc)
{
	return rc == -EAGAIN || rc == -EACCES;
}

/* Takes, on two open files of one temporary, the locks blob.c relies on:
 * a writer's lock that keeps a second writer and readers out but not their
 * reads, and readers' shared pins that keep an evicter out. 0; -ENOLCK
 * when the locks fail, with the failure as a clause in why ("refuses locks
 * (...)"); another -errno when no file could be tried (a full disk). */
static int probe(struct cache *cache, char *why, size_t why_size)
{
	static const char text[] = "omnihub lock probe\n";
	struct cache_tmp tmp;
	char back[sizeof(text)];
	int other = -1, rc, err;

	rc = cache_tmp_create(cache, "lock-probe", &tmp);
	if (rc) {
		snprintf(why, why_size, "does not let a file be created in it (%s)", strerror(-rc));
		return rc;
	}
	errno = 0;
	if (pwrite(tmp.fd, text, sizeof(text), 0) != (ssize_t)sizeof(text)) {
		rc = errno ? -errno : -EIO;
		snprintf(why, why_size, "does not let a file in it be written (%s)", strerror(-rc));
		goto out;
	}
	other = cache_openat(cache, tmp.tmp_rel, O_RDWR, 0);
	if (other < 0) {
		snprintf(why, why_size, "does not let a file in it be opened twice (%s)",
		         strerror(-other));
		rc = other;
		goto out;
	}
	rc = -ENOLCK;
	err = ofd_lock(tmp.fd, F_WRLCK);
	if (err) {
		snprintf(why, why_size, "refuses locks (%s)", strerror(-err));
		goto out;
	}
	err = ofd_lock(other, F_RDLCK);
	if (err == 0) {
		snprintf(why, why_size,
		         "grants two open files conflicting locks at once, so its locks guard "
		         "nothing");
		goto out;
	}
	if (!busy(err)) {
		snprintf(why, why_size, "refuses locks (%s)", strerror(-err));
		goto out;
	}
	/* Followers read a partial blob while its writer holds the lock. */
	errno = 0;
	if (pread(other, back, sizeof(back), 0) != (ssize_t)sizeof(back)) {
		snprintf(why, why_size,
		         "refuses reads of a locked file (%s), so its locks are mandatory",
		         errno ? strerror(errno) : "a short read");
		goto out;
	}
	err = ofd_lock(tmp.fd, F_UNLCK);
	if (err == 0)
		err = ofd_lock(tmp.fd, F_RDLCK);
	if (err == 0)
		err = ofd_lock(other, F_RDLCK);
	if (err) {
		snprintf(why, why_size, "refuses shared locks (%s)", strerror(-err));
		goto out;
	}
	/* An evicter's write lock must wait for the readers' pins. */
	err = ofd_lock(other, F_WRLCK);
	if (err == 0) {
		snprintf(why, why_size,
		         "grants a write lock over another open file's read lock, so its locks "
		         "guard nothing");
		goto out;
	}
	if (!busy(err)) {
		snprintf(why, why_size, "refuses locks (%s)", strerror(-err));
		goto out;
	}
	rc = 0;
out:
	if (other >= 0)
		close(other);
	cache_tmp_discard(cache, &tmp);
	return rc;
}

int cachefs_check_locks(struct cache *cache, char *why, size_t why_size)
{
	const char *dir = cache_root(cache), *fstype, *local = NULL;
	struct cachefs_mount *mount = calloc(1, sizeof(*mount));
	char *mountinfo = NULL, reason[512];
	bool network = false;
	struct statfs sfs;
	int rc;

	if (!mount) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	if (fstatfs(cache_root_fd(cache), &sfs) == 0 && network_magic(sfs.f_type)) {
		network = true;
		snprintf(mount->fstype, sizeof(mount->fstype), "%s", network_magic(sfs.f_type));
	}
	/* What mountinfo says is more precise than the magic (nfs4, fuse.x). */
	if (read_text(MOUNTINFO, &mountinfo) == 0 && cachefs_mount_of(mountinfo, dir, mount) == 0) {
		network = network || cachefs_type_is_network(mount->fstype);
		local = cachefs_locks_local(mount);
	}
	fstype = mount->fstype[0] ? mount->fstype : "an unknown filesystem";
	rc = -ENOLCK;
	if (local) {
		snprintf(reason, sizeof(reason), "%s", local);
		goto refuse;
	}
	rc = probe(cache, reason, sizeof(reason));
	if (rc == -ENOLCK)
		goto refuse;
	if (rc) /* not the locks' fault: the store's own errors will tell */
		log_warn("cache: cannot check the locks of %s on %s: its filesystem %s", dir,
		         fstype, reason);
	rc = 0;
	if (network)
		log_info("cache: shared cache on %s: locks checked (%s, from %s)", fstype, dir,
		         mount->source[0] ? mount->source : "?");
	goto out;
refuse:
	snprintf(why, why_size,
	         "cannot use the cache directory %s: its filesystem, %s%s%s%s, %s, so the "
	         "processes and machines sharing it could corrupt it; " REMEDY,
	         dir, fstype, mount->source[0] ? " (" : "", mount->source,
	         mount->source[0] ? ")" : "", reason);
	rc = -ENOLCK;
out:
	free(mountinfo);
	free(mount);
	return rc;
}
