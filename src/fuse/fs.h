/* fs.h: the FUSE low-level operations, translated into calls of the tree
 * and the core; no FUSE thread waits on the network. Not for: options or
 * the mount (main.c), what an open gets or anything hub-specific (core). */
#ifndef OMNIHUB_FS_H
#define OMNIHUB_FS_H

#include <stddef.h>

#include <fuse_lowlevel.h>

struct core;

/* The session context, handed to libfuse as userdata: everything shared by
 * the FUSE threads lives here. */
struct fs;

/* Opens every hub of the core (fetching their indexes). On failure writes
 * one sentence to why. The core must outlive the fs. */
int fs_new(struct fs **out, struct core *core, char *why, size_t why_size);
/* The session the kernel's notifications go through, once it exists. */
void fs_set_session(struct fs *fs, struct fuse_session *session);
/* The kernel settings of the mount, before it is made: max_read as its
 * mount options say (0: none given), which the INIT reply must repeat
 * (libfuse 3.14 ends the session otherwise); and the mount point, whose
 * read-ahead is raised to FS_READAHEAD_KB once the kernel has the INIT
 * reply (which can only lower it), through its device's sysfs file: a
 * window of two spliced requests (512 KiB, see spliced_request_bytes).
 * 0 or -ENOMEM. */
#define FS_READAHEAD_KB 1024u
int fs_set_kernel_options(struct fs *fs, const char *mountpoint, unsigned max_read);
/* Stops every transfer at once (their partial state kept for resumption)
 * and answers every waiting reader with EINTR: called when the FUSE loop
 * ends, before the unmount, so that the answers still reach the kernel. */
void fs_shutdown(struct fs *fs);
/* Shuts down if needed; frees the handles and the tree (not the core). */
void fs_free(struct fs *fs);

extern const struct fuse_lowlevel_ops fs_operations;

#endif
