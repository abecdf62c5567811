/* stage.c: turning a verified download into what a hub shows: archives are
 * extracted safely into a fresh directory. Not for: downloading, verifying
 * or installing the result (download.c, cache.c). */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "names.h"
#include "stage.h"

/* Archive member names often start with "./" and directories end with '/';
 * neither changes where the member goes. Returns NULL for the root itself. */
static const char *normalized(const char *name, char *out, size_t out_size)
{
	size_t len;

	while (name[0] == '.' && name[1] == '/')
		name += 2;
	while (name[0] == '/' && name[1] == '\0')
		name++;
	len = strlen(name);
	while (len > 1 && name[len - 1] == '/')
		len--;
	if (len == 0 || (len == 1 && name[0] == '.'))
		return NULL;
	if (len >= out_size)
		len = out_size - 1; /* names_check_relpath will refuse it */
	memcpy(out, name, len);
	out[len] = '\0';
	return out;
}

/* Whether a symlink stored at entry_path, pointing at target, resolves
 * inside the extraction root (resolved lexically, as the kernel would from
 * the link's own directory). */
static bool link_stays_inside(const char *entry_path, const char *target)
{
	int depth = 0;

	if (target[0] == '\0' || target[0] == '/')
		return false;
	for (const char *p = entry_path; *p; p++)
		if (*p == '/')
			depth++;
	for (const char *c = target; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (!(n == 0 || (n == 1 && c[0] == '.'))) {
			depth++;
		}
		c += n;
		if (*c == '/')
			c++;
	}
	return true;
}

/* libarchive's message for its last failure; never NULL, so a log line never
 * ends in "(null)". */
static const char *error_text(struct archive *a)
{
	const char *text = archive_error_string(a);

	if (text)
		return text;
	return archive_errno(a) > 0 ? strerror(archive_errno(a)) : "unknown error";
}

/* The errno behind the writer's last failure, negated; -EIO if it kept none.
 * A full disk must reach the caller as ENOSPC or EDQUOT, not as EIO. */
static int write_error(struct archive *out)
{
	int err = archive_errno(out);

	return err > 0 ? -err : -EIO;
}

/* Copies one member's data, counting what it really writes (a header's size
 * can lie). A failed read is -EIO; a failed write is the writer's errno,
 * and sets *write_failed. */
static int copy_data(struct archive *in, struct archive *out, uint64_t *written, uint64_t limit,
		     bool *write_failed)
{
	const void *block;
	size_t size;
	la_int64_t offset;

	for (;;) {
		int r = archive_read_data_block(in, &block, &size, &offset);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return -EIO;
		*written += size;
		if (*written > limit)
			return -EFBIG;
		errno = 0;
		if (archive_write_data_block(out, block, size, offset) != ARCHIVE_OK) {
			int err = archive_errno(out) > 0 ? archive_errno(out) : errno;

			*write_failed = true;
			return err > 0 ? -err : -EIO;
		}
	}
}

const struct stage_limits stage_default_limits = {
	.max_entries = 100000,
	.max_ratio = 100,
	.allowance_bytes = 1ull << 30,
};

int stage_extract(int archive_fd, uint64_t archive_size, const char *dest_dir,
		  const struct stage_limits *limits, char *why, size_t why_size)
{
	const uint64_t byte_limit = limits->allowance_bytes + limits->max_ratio * archive_size;
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	struct archive_entry *entry;
	uint64_t entries = 0, written = 0;
	int rc = -ENOMEM;

	why[0] = '\0';
	if (!in || !out)
		goto out;
	archive_read_support_filter_all(in);
	archive_read_support_format_all(in);
	/* Our own checks come first; these make libarchive refuse as well. Not
	 * NOABSOLUTEPATHS: we hand it absolute paths below dest_dir. */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
					    ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	if (lseek(archive_fd, 0, SEEK_SET) != 0 ||
	    archive_read_open_fd(in, archive_fd, 128 * 1024) != ARCHIVE_OK) {
		snprintf(why, why_size, "not a readable archive: %s", error_text(in));
		rc = -EIO;
		goto out;
	}
	for (;;) {
		char name_buf[NAMES_PATH_MAX + 2], link_buf[NAMES_PATH_MAX + 2], log_buf[128];
		char dest_path[PATH_MAX];
		const char *name, *problem = NULL, *hardlink, *symlink;
		int r = archive_read_next_header(in, &entry);
		mode_t type;

		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(why, why_size, "corrupt archive: %s", error_text(in));
			rc = -EIO;
			goto out;
		}
		if (++entries > limits->max_entries) {
			snprintf(why, why_size, "more than %llu entries",
				 (unsigned long long)limits->max_entries);
			rc = -EFBIG;
			goto out;
		}
		const char *raw = archive_entry_pathname(entry);
		if (!raw) {
			snprintf(why, why_size, "an entry has no name");
			rc = -EINVAL;
			goto out;
		}
		name = normalized(raw, name_buf, sizeof(name_buf));
		if (!name)
			continue; /* the archive's root directory */

		type = archive_entry_filetype(entry);
		hardlink = archive_entry_hardlink(entry);
		symlink = archive_entry_symlink(entry);
		if (raw[0] == '/')
			problem = "absolute path";
		else if (names_check_relpath(name, &problem) == 0) {
			if (hardlink) {
				const char *target = normalized(hardlink, link_buf, sizeof(link_buf));
				if (!target || names_check_relpath(target, &problem) != 0)
					problem = problem ? problem : "hard link to the root";
			} else if (type == AE_IFLNK) {
				if (!symlink || !link_stays_inside(name, symlink))
					problem = "symbolic link that leaves the directory";
			} else if (type != AE_IFREG && type != AE_IFDIR) {
				problem = "device file, FIFO or socket";
			}
		}
		if (problem) {
			snprintf(why, why_size, "refused entry '%s': %s",
				 names_for_log(raw, log_buf, sizeof(log_buf)), problem);
			rc = -EINVAL;
			goto out;
		}

		if (snprintf(dest_path, sizeof(dest_path), "%s/%s", dest_dir, name) >=
		    (int)sizeof(dest_path)) {
			snprintf(why, why_size, "path too long");
			rc = -ENAMETOOLONG;
			goto out;
		}
		archive_entry_set_pathname(entry, dest_path);
		if (hardlink) {
			char link_path[PATH_MAX];
			snprintf(link_path, sizeof(link_path), "%s/%s", dest_dir, link_buf);
			archive_entry_set_hardlink(entry, link_path);
		}
		/* Served read-only; keep only the execute bits worth keeping. */
		if (type == AE_IFDIR)
			archive_entry_set_perm(entry, 0755);
		else if (type == AE_IFREG)
			archive_entry_set_perm(entry, (archive_entry_perm(entry) & 0111) ? 0755 : 0644);

		if (archive_write_header(out, entry) != ARCHIVE_OK) {
			snprintf(why, why_size, "cannot extract '%s': %s",
				 names_for_log(name, log_buf, sizeof(log_buf)), error_text(out));
			rc = write_error(out);
			goto out;
		}
		if (type == AE_IFREG && archive_entry_size(entry) > 0) {
			bool write_failed = false;

			rc = copy_data(in, out, &written, byte_limit, &write_failed);
			if (rc == -EFBIG)
				snprintf(why, why_size, "expands past %llu bytes",
					 (unsigned long long)byte_limit);
			else if (rc && write_failed)
				snprintf(why, why_size, "cannot write '%s': %s",
					 names_for_log(name, log_buf, sizeof(log_buf)),
					 strerror(-rc));
			else if (rc)
				snprintf(why, why_size, "cannot extract '%s': %s",
					 names_for_log(name, log_buf, sizeof(log_buf)),
					 error_text(in));
			if (rc)
				goto out;
		}
		if (archive_write_finish_entry(out) != ARCHIVE_OK) {
			snprintf(why, why_size, "cannot finish '%s': %s",
				 names_for_log(name, log_buf, sizeof(log_buf)), error_text(out));
			rc = write_error(out);
			goto out;
		}
	}
	rc = 0;
out:
	if (out) {
		if (archive_write_close(out) != ARCHIVE_OK && rc == 0) {
			snprintf(why, why_size, "cannot finish extraction: %s", error_text(out));
			rc = write_error(out);
		}
		archive_write_free(out);
	}
	if (in)
		archive_read_free(in);
	return rc;
}
