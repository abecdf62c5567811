/* fs.h: the FUSE low-level operations, over the tree, the downloads and the
 * cache; nothing hub-specific. Not for: options or the mount (main.c). */
#ifndef OMNIHUB_FS_H
#define OMNIHUB_FS_H

#include <stddef.h>

#include <fuse_lowlevel.h>

struct config;

/* The session context, handed to libfuse as userdata: everything shared by
 * the FUSE threads lives here. */
struct fs;

/* Opens the cache and every hub (fetching their indexes). On failure writes
 * one sentence to why. cfg must outlive the fs. */
int fs_new(struct fs **out, const struct config *cfg, char *why, size_t why_size);
/* Cancels downloads in flight and waits for them; frees everything. */
void fs_free(struct fs *fs);

extern const struct fuse_lowlevel_ops fs_operations;

#endif
