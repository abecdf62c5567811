/* stage.c: turning a verified download into what a hub shows: archives are
 * extracted safely into a fresh directory, one member of an archive or a
 * gzip'd file is written out as a file. Not for: downloading, verifying,
 * installing the result (download.c, cache.c) or running converters
 * (convert.c). */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "full_io.h"
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

/* A writer's error: libarchive's sentence ("Can't create 'x'") and the
 * errno behind it (a failing disk's EIO), which its sentence may not give. */
static const char *write_error_text(struct archive *out, char *buf, size_t size)
{
	const char *text = error_text(out);
	const char *cause = archive_errno(out) > 0 ? strerror(archive_errno(out)) : NULL;

	if (!cause || strstr(text, cause))
		return text;
	snprintf(buf, size, "%s: %s", text, cause);
	return buf;
}

/* The errno behind the writer's last failure, negated; -EIO if it kept none.
 * A full disk must reach the caller as ENOSPC or EDQUOT, not as EIO. */
static int write_error(struct archive *out)
{
	int err = archive_errno(out);

	return err > 0 ? -err : -EIO;
}

/* The input read with pread from offset 0: the caller's fd may be shared by
 * threads, so its offset is neither trusted nor moved. A seek callback lets
 * libarchive read a zip's central directory. Heap-allocated: too big for a
 * FUSE worker's stack. */
struct stage_input {
	int fd;
	la_int64_t offset;
	char buf[128 * 1024];
};

static la_ssize_t input_read(struct archive *a, void *data, const void **block)
{
	struct stage_input *in = data;
	ssize_t n = full_io_pread(in->fd, in->buf, sizeof(in->buf), (off_t)in->offset);

	if (n < 0) {
		archive_set_error(a, (int)-n, "cannot read: %s", strerror((int)-n));
		return -1;
	}
	in->offset += n;
	*block = in->buf;
	return n;
}

static la_int64_t input_skip(struct archive *a, void *data, la_int64_t request)
{
	struct stage_input *in = data;

	(void)a;
	in->offset += request;
	return request;
}

static la_int64_t input_seek(struct archive *a, void *data, la_int64_t offset, int whence)
{
	struct stage_input *in = data;
	la_int64_t base = 0;
	struct stat st;

	if (whence == SEEK_CUR) {
		base = in->offset;
	} else if (whence == SEEK_END) {
		if (fstat(in->fd, &st) != 0) {
			archive_set_error(a, errno, "cannot stat: %s", strerror(errno));
			return ARCHIVE_FATAL;
		}
		base = st.st_size;
	}
	if (base + offset < 0) {
		archive_set_error(a, EINVAL, "seek before the start");
		return ARCHIVE_FATAL;
	}
	in->offset = base + offset;
	return in->offset;
}

/* Starts reading fd from its first byte; -EIO when libarchive cannot. */
static int input_open(struct archive *a, struct stage_input *in, int fd, const char *what,
		      char *why, size_t why_size)
{
	in->fd = fd;
	in->offset = 0;
	archive_read_set_callback_data(a, in);
	archive_read_set_read_callback(a, input_read);
	archive_read_set_skip_callback(a, input_skip);
	archive_read_set_seek_callback(a, input_seek);
	if (archive_read_open1(a) != ARCHIVE_OK) {
		/* libarchive gives no message when the data ends early. */
		snprintf(why, why_size, "%s: %s", what,
			 archive_error_string(a) ? error_text(a) : "damaged or truncated");
		return -EIO;
	}
	return 0;
}

/* How many bytes may be written from an input of in_size bytes; *capped
 * says that max_bytes, not the ratio, set it. Saturates rather than wraps. */
static uint64_t byte_limit(const struct stage_limits *limits, uint64_t in_size, bool *capped)
{
	uint64_t limit = UINT64_MAX;

	if (in_size == 0 || limits->max_ratio <= (UINT64_MAX - limits->allowance_bytes) / in_size)
		limit = limits->allowance_bytes + limits->max_ratio * in_size;
	*capped = limits->max_bytes != 0 && limits->max_bytes <= limit;
	return *capped ? limits->max_bytes : limit;
}

/* The sentence for -EFBIG: subject ("'x' takes the extracted data") and which
 * limit it crossed, so the user knows which option to raise. */
static void limit_why(char *why, size_t why_size, const char *subject,
		      const struct stage_limits *limits, uint64_t in_size)
{
	bool capped;
	uint64_t limit = byte_limit(limits, in_size, &capped);

	if (capped)
		snprintf(why, why_size, "%s past %llu bytes, the size limit", subject,
			 (unsigned long long)limit);
	else
		snprintf(why, why_size,
			 "%s past %llu bytes (%llu times the %llu-byte download plus %llu)",
			 subject, (unsigned long long)limit, (unsigned long long)limits->max_ratio,
			 (unsigned long long)in_size, (unsigned long long)limits->allowance_bytes);
}

/* Copies one member's data to the archive writer, counting what it really
 * writes (a header's size can lie). A failed read is -EIO; a failed write
 * is the writer's errno, and sets *write_failed. Never writes past limit. */
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
		if (size > limit - *written)
			return -EFBIG;
		*written += size;
		errno = 0;
		if (archive_write_data_block(out, block, size, offset) != ARCHIVE_OK) {
			int err = archive_errno(out) > 0 ? archive_errno(out) : errno;

			*write_failed = true;
			return err > 0 ? -err : -EIO;
		}
	}
}

/* CRC-32 as gzip's trailer holds it (ISO 3309, reflected), by table; the
 * table is the caller's (1 KiB), built by crc32_table. */
static void crc32_table(uint32_t table[256])
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		table[n] = c;
	}
}

static uint32_t crc32_update(const uint32_t table[256], uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* The running CRC-32 of what copy_to_fd writes, when the caller wants it. */
struct crc_state {
	uint32_t table[256];
	uint32_t crc;
};

/* Copies the current entry's data to fd; archive_read_data fills a sparse
 * member's holes with zeros, so fd gets the member's bytes in order. Errors
 * as copy_data. crc, when not NULL, follows the bytes written. */
static int copy_to_fd(struct archive *in, int fd, uint64_t *written, uint64_t limit,
		      bool *write_failed, struct crc_state *crc)
{
	static const size_t chunk = 64 * 1024;
	char *buf = malloc(chunk);
	int rc = -ENOMEM;

	if (!buf)
		goto out;
	for (;;) {
		la_ssize_t n = archive_read_data(in, buf, chunk);
		ssize_t w;

		if (n == 0)
			break;
		if (n < 0) {
			rc = -EIO;
			goto out;
		}
		if ((uint64_t)n > limit - *written) {
			rc = -EFBIG;
			goto out;
		}
		*written += (uint64_t)n;
		if (crc)
			crc->crc = crc32_update(crc->table, crc->crc, buf, (size_t)n);
		w = full_io_write(fd, buf, (size_t)n);
		if (w < 0) {
			*write_failed = true;
			rc = (int)w;
			goto out;
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

const struct stage_limits stage_default_limits = {
    .max_entries = 100000,
    .max_ratio = 100,
    .allowance_bytes = 1ull << 30,
    .max_bytes = 0,
};

int stage_extract(int archive_fd, uint64_t archive_size, const char *dest_dir,
		  const struct stage_limits *limits, char *why, size_t why_size)
{
	bool capped;
	const uint64_t limit = byte_limit(limits, archive_size, &capped);
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	struct stage_input *input = malloc(sizeof(*input));
	struct archive_entry *entry;
	uint64_t entries = 0, written = 0;
	char error_buf[512];
	int rc = -ENOMEM;

	why[0] = '\0';
	if (!in || !out || !input)
		goto out;
	archive_read_support_filter_all(in);
	archive_read_support_format_all(in);
	/* Our own checks come first; these make libarchive refuse as well. Not
	 * NOABSOLUTEPATHS: we hand it absolute paths below dest_dir. */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	rc = input_open(in, input, archive_fd, "not a readable archive", why, why_size);
	if (rc)
		goto out;
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
			if (snprintf(link_path, sizeof(link_path), "%s/%s", dest_dir, link_buf) >=
			    (int)sizeof(link_path)) {
				/* A cut target would link to another file. */
				snprintf(why, why_size, "hard-link target too long");
				rc = -ENAMETOOLONG;
				goto out;
			}
			archive_entry_set_hardlink(entry, link_path);
		}
		/* Served read-only; keep only the execute bits worth keeping. */
		if (type == AE_IFDIR)
			archive_entry_set_perm(entry, 0755);
		else if (type == AE_IFREG)
			archive_entry_set_perm(entry, (archive_entry_perm(entry) & 0111) ? 0755 : 0644);

		if (archive_write_header(out, entry) != ARCHIVE_OK) {
			snprintf(why, why_size, "cannot extract '%s': %s",
				 names_for_log(name, log_buf, sizeof(log_buf)),
				 write_error_text(out, error_buf, sizeof(error_buf)));
			rc = write_error(out);
			goto out;
		}
		if (type == AE_IFREG && archive_entry_size(entry) > 0) {
			bool write_failed = false;

			rc = copy_data(in, out, &written, limit, &write_failed);
			if (rc == -EFBIG) {
				char subject[200];

				snprintf(subject, sizeof(subject), "'%s' takes the extracted data",
					 names_for_log(name, log_buf, sizeof(log_buf)));
				limit_why(why, why_size, subject, limits, archive_size);
			} else if (rc && write_failed)
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
				 names_for_log(name, log_buf, sizeof(log_buf)),
				 write_error_text(out, error_buf, sizeof(error_buf)));
			rc = write_error(out);
			goto out;
		}
	}
	rc = 0;
out:
	if (out) {
		if (archive_write_close(out) != ARCHIVE_OK && rc == 0) {
			snprintf(why, why_size, "cannot finish extraction: %s",
				 write_error_text(out, error_buf, sizeof(error_buf)));
			rc = write_error(out);
		}
		archive_write_free(out);
	}
	if (in)
		archive_read_free(in);
	free(input);
	return rc;
}

/* Reads exactly len bytes at offset; false on a short read or an error. */
static bool read_at(int fd, void *buf, size_t len, off_t offset)
{
	return full_io_pread(fd, buf, len, offset) == (ssize_t)len;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether bytes [from, to) of fd hold what starts a gzip member (1f 8b 08):
 * whether the file may hold more than one. */
static bool has_member_header(int fd, off_t from, off_t to, char *buf, size_t buf_size)
{
	while (from + 2 < to) {
		size_t want = (size_t)(to - from) < buf_size ? (size_t)(to - from) : buf_size;

		if (!read_at(fd, buf, want, from))
			return true; /* unsure: assume it may */
		for (size_t i = 0; i + 2 < want; i++)
			if ((unsigned char)buf[i] == 0x1f && (unsigned char)buf[i + 1] == 0x8b &&
			    buf[i + 2] == 8)
				return true;
		from += (off_t)want - 2; /* a header across the boundary */
	}
	return false;
}

int stage_gunzip(int in_fd, uint64_t in_size, int out_fd, const struct stage_limits *limits,
		 char *why, size_t why_size)
{
	bool capped, write_failed = false;
	const uint64_t limit = byte_limit(limits, in_size, &capped);
	struct archive *in = archive_read_new();
	struct stage_input *input = malloc(sizeof(*input));
	struct crc_state *crc = malloc(sizeof(*crc));
	struct archive_entry *entry;
	unsigned char magic[2], trailer[8];
	uint64_t written = 0;
	struct stat st;
	int rc = -ENOMEM, r;

	why[0] = '\0';
	if (!in || !input || !crc)
		goto out;
	rc = -EIO;
	/* A gzip file is at least a header (10), an empty block (2) and the
	 * trailer (8): the CRC-32 and size of the last member's data. */
	if (fstat(in_fd, &st) != 0 || st.st_size < 20 || !read_at(in_fd, magic, 2, 0) ||
	    magic[0] != 0x1f || magic[1] != 0x8b || !read_at(in_fd, trailer, 8, st.st_size - 8)) {
		snprintf(why, why_size, "not gzip data");
		goto out;
	}
	/* gzip only, and the raw format: the decompressed bytes are not taken
	 * for an archive, whatever they hold. */
	archive_read_support_filter_gzip(in);
	archive_read_support_format_raw(in);
	rc = input_open(in, input, in_fd, "corrupt gzip data", why, why_size);
	if (rc == 0) {
		r = archive_read_next_header(in, &entry);
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(why, why_size, "corrupt gzip data: %s", error_text(in));
			rc = -EIO;
		}
	}
	if (rc) {
		/* libarchive finds no format in no bytes: a stream that holds
		 * nothing says so in its trailer (CRC-32 and size 0). */
		if (le32(trailer) == 0 && le32(trailer + 4) == 0) {
			why[0] = '\0';
			rc = 0;
		}
		goto out;
	}
	/* The pipeline is the gzip filter over the reader ("none"). libarchive
	 * unwraps gzip inside gzip too, which would serve other bytes than
	 * gunzip gives. */
	rc = -EIO;
	if (archive_filter_count(in) < 2 || archive_filter_code(in, 0) != ARCHIVE_FILTER_GZIP) {
		snprintf(why, why_size, "not gzip data");
		goto out;
	}
	if (archive_filter_count(in) > 2) {
		snprintf(why, why_size,
			 "the decompressed data is gzip again (only one layer expected)");
		goto out;
	}
	crc32_table(crc->table);
	crc->crc = 0;
	rc = copy_to_fd(in, out_fd, &written, limit, &write_failed, crc);
	if (rc == -EFBIG)
		limit_why(why, why_size, "decompressing takes the data", limits, in_size);
	else if (rc && write_failed)
		snprintf(why, why_size, "cannot write the decompressed data: %s", strerror(-rc));
	else if (rc == -EIO)
		snprintf(why, why_size, "corrupt gzip data: %s", error_text(in));
	else if (rc)
		snprintf(why, why_size, "cannot decompress: %s", strerror(-rc));
	if (rc)
		goto out;
	/* libarchive checks neither CRC-32 nor size. The trailer covers the
	 * last member only, and where members begin libarchive does not say:
	 * a mismatch is corruption when no second member can exist. Its
	 * buffer is free: libarchive reads no more. */
	if ((le32(trailer) != crc->crc || le32(trailer + 4) != (uint32_t)written) &&
	    !has_member_header(in_fd, 10, st.st_size - 8, input->buf, sizeof(input->buf))) {
		snprintf(why, why_size,
			 "corrupt gzip data: the CRC-32 or the size does not match the trailer");
		rc = -EIO;
	}
out:
	if (in)
		archive_read_free(in);
	free(crc);
	free(input);
	return rc;
}

/* One pass over the archive for the regular file named wanted (already
 * normalized). Sets *link_target (normalized into link_buf) instead of
 * copying when the entry is a hard link without data of its own: tar
 * stores the data once, under the first name. */
static int member_pass(struct archive *in, const char *wanted, const char *log_name, int out_fd,
		       const struct stage_limits *limits, uint64_t archive_size, char *link_buf,
		       size_t link_size, const char **link_target, char *why, size_t why_size)
{
	bool capped, write_failed = false;
	const uint64_t limit = byte_limit(limits, archive_size, &capped);
	struct archive_entry *entry;
	uint64_t entries = 0, written = 0;
	int rc;

	*link_target = NULL;
	for (;;) {
		char name_buf[NAMES_PATH_MAX + 2];
		const char *name;
		int r = archive_read_next_header(in, &entry);

		if (r == ARCHIVE_EOF) {
			snprintf(why, why_size, "the archive has no member '%s'", log_name);
			return -ENOENT;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(why, why_size, "corrupt archive: %s", error_text(in));
			return -EIO;
		}
		if (++entries > limits->max_entries) {
			snprintf(why, why_size, "more than %llu entries before '%s'",
				 (unsigned long long)limits->max_entries, log_name);
			return -EFBIG;
		}
		if (!archive_entry_pathname(entry))
			continue;
		name = normalized(archive_entry_pathname(entry), name_buf, sizeof(name_buf));
		if (name && strcmp(name, wanted) == 0)
			break;
	}
	if (archive_entry_hardlink(entry) && archive_entry_size(entry) <= 0) {
		*link_target = normalized(archive_entry_hardlink(entry), link_buf, link_size);
		if (*link_target)
			return 0;
	}
	if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry)) {
		snprintf(why, why_size, "the archive's member '%s' is not a regular file",
			 log_name);
		return -ENOENT;
	}
	rc = copy_to_fd(in, out_fd, &written, limit, &write_failed, NULL);
	if (rc == -EFBIG) {
		char subject[200];

		snprintf(subject, sizeof(subject), "the member '%s' takes the data", log_name);
		limit_why(why, why_size, subject, limits, archive_size);
	} else if (rc && write_failed) {
		snprintf(why, why_size, "cannot write '%s': %s", log_name, strerror(-rc));
	} else if (rc == -EIO) {
		snprintf(why, why_size, "cannot extract '%s': %s", log_name, error_text(in));
	} else if (rc) {
		snprintf(why, why_size, "cannot extract '%s': %s", log_name, strerror(-rc));
	}
	return rc;
}

int stage_extract_member(int archive_fd, uint64_t archive_size, const char *member, int out_fd,
			 const struct stage_limits *limits, char *why, size_t why_size)
{
	char wanted_buf[NAMES_PATH_MAX + 2], link_buf[NAMES_PATH_MAX + 2], log_name[128];
	const char *wanted = normalized(member, wanted_buf, sizeof(wanted_buf));
	struct stage_input *input = malloc(sizeof(*input));
	struct archive *in = NULL;
	int rc = -ENOMEM;

	why[0] = '\0';
	names_for_log(member, log_name, sizeof(log_name));
	if (!input)
		goto out;
	if (!wanted) {
		snprintf(why, why_size, "'%s' names no member", log_name);
		rc = -ENOENT;
		goto out;
	}
	/* A second pass, from the start, when the member is a hard link. */
	for (int pass = 0; pass < 2; pass++) {
		const char *target = NULL;

		if (in)
			archive_read_free(in);
		in = archive_read_new();
		if (!in) {
			rc = -ENOMEM;
			goto out;
		}
		archive_read_support_filter_all(in);
		archive_read_support_format_all(in);
		rc = input_open(in, input, archive_fd, "not a readable archive", why, why_size);
		if (rc)
			goto out;
		rc = member_pass(in, wanted, log_name, out_fd, limits, archive_size, link_buf,
				 sizeof(link_buf), &target, why, why_size);
		if (rc || !target)
			goto out;
		memcpy(wanted_buf, link_buf, sizeof(wanted_buf));
		wanted = wanted_buf;
	}
	snprintf(why, why_size, "the archive's member '%s' is a hard link to a hard link",
		 log_name);
	rc = -ENOENT;
out:
	if (in)
		archive_read_free(in);
	free(input);
	return rc;
}
