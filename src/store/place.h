/* place.h: puts a copy of a cached file or tree at a path below a folder
 * the user names (omnihub pull --local-dir): by reflink, else a hard link,
 * else a copy, never outside that folder. Not for: fetching or verifying
 * (the core), or which files go there (cmd_pull.c). */
#ifndef OMNIHUB_PLACE_H
#define OMNIHUB_PLACE_H

/* How a file got to its place; a tree is told by its first file. */
enum place_how {
	PLACE_REFLINK,  /* a clone sharing the blocks (FICLONE): a write
			   there never reaches the cache */
	PLACE_HARDLINK, /* the cache's own inode (same filesystem, no reflink) */
	PLACE_COPY,     /* the bytes copied (another filesystem) */
};

const char *place_how_name(enum place_how how);

/* 0 when rel may name a place below a folder: not empty, not absolute,
 * under PATH_MAX, and made of components that are neither empty, "." nor
 * ".."; else -EINVAL. */
int place_check_rel(const char *rel);

/* Makes rel below the folder dir_fd hold what src (a file or a directory:
 * an archive's extracted tree; an absolute path) holds, making the folders
 * above it; what was at rel is replaced at once (rename), never written
 * through. No symbolic link on the way to rel is followed (-ELOOP or
 * -ENOTDIR when one is there). *how says how the first file went. 0 or
 * -errno (-EINVAL for a rel place_check_rel refuses). */
int place_path(int dir_fd, const char *rel, const char *src, enum place_how *how);

#endif
