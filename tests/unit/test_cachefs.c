/* test_cachefs.c: unit tests of cachefs.c: the mount of a directory found in
 * mountinfo text (NFS with and without locks, escapes, the longest mount
 * point), which mount options keep locks local, and the lock probe on a
 * real directory. Not for: a filesystem that refuses locks (the integration
 * test mounts one). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cachefs.h"
#include "log.h"
#include "tap.h"

/* Lines as /proc/self/mountinfo has them on a machine with NFS mounts. */
static const char mountinfo[] =
    "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"
    "24 23 0:22 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,size=24683620k\n"
    "412 26 0:52 / /mnt/nfs3 rw,relatime shared:210 - nfs 10.0.0.2:/export/cache "
    "rw,vers=3,rsize=1048576,wsize=1048576,namlen=255,hard,nolock,proto=tcp,timeo=600,"
    "retrans=2,sec=sys,mountaddr=10.0.0.2,mountvers=3,mountport=20048,mountproto=udp,"
    "local_lock=all,addr=10.0.0.2\n"
    "413 26 0:53 / /mnt/nfs4 rw,relatime shared:211 - nfs4 10.0.0.2:/cache "
    "rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,"
    "sec=sys,clientaddr=10.0.0.3,local_lock=none,addr=10.0.0.2\n"
    "414 26 0:54 / /mnt/nfs4posix rw,relatime - nfs4 10.0.0.2:/p "
    "rw,vers=4.1,hard,proto=tcp,local_lock=posix,addr=10.0.0.2\n"
    "415 26 0:55 / /mnt/nfs4flock rw,relatime - nfs4 10.0.0.2:/f "
    "rw,vers=4.1,hard,proto=tcp,local_lock=flock,addr=10.0.0.2\n"
    "416 26 0:56 / /srv/model\\040cache rw,relatime master:7 - nfs4 srv:/models\\040x "
    "rw,vers=4.1,local_lock=none,addr=10.0.0.2\n"
    "417 26 0:57 / /mnt/smb rw,relatime - cifs //srv/share "
    "rw,vers=3.1.1,cache=strict,soft,nounix,serverino,mapposix,nobrl,rsize=4194304\n"
    "418 26 0:58 / /mnt/ssh rw,nosuid,nodev,relatime shared:300 - fuse.sshfs "
    "user@host:/data rw,user_id=0,group_id=0\n"
    /* Mounted over a first mount on the same point: the later one is seen. */
    "419 26 0:59 / /mnt/over rw - nfs 10.0.0.2:/a rw,vers=3,nolock,local_lock=all\n"
    "420 26 0:60 / /mnt/over rw - nfs 10.0.0.2:/b rw,vers=3,local_lock=none\n";

static void check_mount(const char *path, const char *point, const char *fstype, const char *source,
                        bool local)
{
	struct cachefs_mount m;
	int rc = cachefs_mount_of(mountinfo, path, &m);
	const char *why = rc == 0 ? cachefs_locks_local(&m) : NULL;

	tap_ok(rc == 0 && strcmp(m.point, point) == 0 && strcmp(m.fstype, fstype) == 0 &&
	           strcmp(m.source, source) == 0,
	       "%s is on %s at %s from %s (got %d: %s %s %s)", path, fstype, point, source, rc,
	       rc == 0 ? m.fstype : "-", rc == 0 ? m.point : "-", rc == 0 ? m.source : "-");
	tap_ok((why != NULL) == local, "%s: locks %s (%s)", path,
	       local ? "local to this machine" : "shared", why ? why : "no reason given");
}

static void test_mountinfo(void)
{
	struct cachefs_mount m;

	check_mount("/var/cache/omnihub", "/", "ext4", "/dev/vda", false);
	check_mount("/dev/shm/c", "/dev/shm", "tmpfs", "tmpfs", false);
	check_mount("/mnt/nfs3/cache", "/mnt/nfs3", "nfs", "10.0.0.2:/export/cache", true);
	check_mount("/mnt/nfs3", "/mnt/nfs3", "nfs", "10.0.0.2:/export/cache", true);
	/* A name that only starts like a mount point is not below it. */
	check_mount("/mnt/nfs3x", "/", "ext4", "/dev/vda", false);
	check_mount("/mnt/nfs4/a/b", "/mnt/nfs4", "nfs4", "10.0.0.2:/cache", false);
	check_mount("/mnt/nfs4posix/c", "/mnt/nfs4posix", "nfs4", "10.0.0.2:/p", true);
	/* flock locks stay local, but the store takes fcntl locks only. */
	check_mount("/mnt/nfs4flock/c", "/mnt/nfs4flock", "nfs4", "10.0.0.2:/f", false);
	check_mount("/srv/model cache/blobs", "/srv/model cache", "nfs4", "srv:/models x", false);
	check_mount("/srv/model cachex", "/", "ext4", "/dev/vda", false);
	check_mount("/mnt/smb/c", "/mnt/smb", "cifs", "//srv/share", true);
	check_mount("/mnt/ssh/c", "/mnt/ssh", "fuse.sshfs", "user@host:/data", true);
	check_mount("/mnt/over/c", "/mnt/over", "nfs", "10.0.0.2:/b", false);

	tap_ok(cachefs_mount_of("26 1 254:0 / /srv rw - ext4 /dev/vda rw\n", "/home/x", &m) ==
	           -ENOENT,
	       "a path under no mount point: -ENOENT");
	tap_ok(cachefs_mount_of("garbage\n\n26 1 254:0 / / rw - ext4 /dev/vda rw", "/x", &m) == 0 &&
	           strcmp(m.fstype, "ext4") == 0,
	       "a line it cannot read is skipped; the last line needs no newline");
	tap_ok(cachefs_mount_of("26 1 254:0 / / rw shared:1 master:2 - ext4 /dev/vda\n", "/x",
	                        &m) == 0 &&
	           strcmp(m.fstype, "ext4") == 0 && strcmp(m.options, "rw") == 0,
	       "several optional fields, no superblock options");
}

static void test_types(void)
{
	tap_ok(cachefs_type_is_network("nfs") && cachefs_type_is_network("nfs4") &&
	           cachefs_type_is_network("cifs") && cachefs_type_is_network("9p") &&
	           cachefs_type_is_network("ceph") && cachefs_type_is_network("fuse.glusterfs"),
	       "nfs, nfs4, cifs, 9p, ceph, fuse.glusterfs are network filesystems");
	tap_ok(!cachefs_type_is_network("ext4") && !cachefs_type_is_network("tmpfs") &&
	           !cachefs_type_is_network("fuse") && !cachefs_type_is_network("nfsd"),
	       "ext4, tmpfs, plain fuse, nfsd are not");
}

/* Entries of dir other than "." and "..". */
static int count_entries(const char *dir)
{
	struct dirent *d;
	DIR *stream = opendir(dir);
	int n = 0;

	if (!stream)
		return -1;
	while ((d = readdir(stream)))
		n += strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
	closedir(stream);
	return n;
}

static void test_probe(void)
{
	char base[] = "/tmp/omnihub-test-cachefs-XXXXXX", dir[64], why[1024] = "";
	struct cache *cache = NULL;
	const char *cache_why;
	int rc;

	if (!mkdtemp(base)) {
		tap_ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(dir, sizeof(dir), "%s/cache", base);
	rc = cache_open(&cache, dir, &cache_why);
	tap_ok(rc == 0, "cache_open %s: %d", dir, rc);
	if (rc == 0) {
		rc = cachefs_check_locks(cache, why, sizeof(why));
		tap_ok(rc == 0 && why[0] == '\0', "the locks of a local directory work: %d %s", rc,
		       why);
		tap_ok(count_entries(dir) == 0, "the probe leaves nothing behind (%d entries)",
		       count_entries(dir));
	}
	cache_close(cache);
	tap_ok(tap_remove_tree(base) == 0, "removed %s", base);
}

struct found {
	char points[4][4096];
	int count;
};

static int note_omnihub(void *ctx, const struct cachefs_mount *mount)
{
	struct found *f = ctx;

	if (cachefs_type_is_omnihub(mount->fstype) && f->count < 4)
		snprintf(f->points[f->count++], sizeof(f->points[0]), "%s", mount->point);
	return 0;
}

/* The omnihub mounts of a table: both types (the daemon's subtype, and
 * mount.fuse3's), escapes undone, nothing else. */
static void test_omnihub_mounts(void)
{
	const char *table =
	    "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
	    "40 22 0:40 / /mnt/hub rw,nosuid - fuse.omnihub omnihub-fuse rw,user_id=0\n"
	    "41 22 0:41 / /home/u/my\\040hub rw - fuse.omnihub-fuse models rw\n"
	    "42 22 0:42 / /mnt/other rw - fuse.sshfs host:/ rw\n"
	    "garbage line\n";
	struct found f = { .count = 0 };
	int rc = cachefs_mounts_each(table, note_omnihub, &f);

	tap_ok(rc == 0 && f.count == 2, "two omnihub mounts in the table (%d)", f.count);
	tap_ok(f.count == 2 && strcmp(f.points[0], "/mnt/hub") == 0 &&
		       strcmp(f.points[1], "/home/u/my hub") == 0,
	       "at their points, \\040 undone");
	tap_ok(!cachefs_type_is_omnihub("fuse.sshfs") && !cachefs_type_is_omnihub("fuse"),
	       "no other type is ours");
}

int main(void)
{
	log_setup(LOG_LEVEL_ERROR, false);
	test_mountinfo();
	test_omnihub_mounts();
	test_types();
	test_probe();
	return tap_done();
}
