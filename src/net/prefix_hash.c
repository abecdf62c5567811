/* prefix_hash.c: the ordered digest of a file whose pieces land out of
 * order, advanced over the contiguous prefix of present pieces by reading
 * them back from the file. Not for: fetching pieces, or what a mismatch means. */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "full_io.h"
#include "prefix_hash.h"

enum { CHUNK = 1 << 20 };

struct prefix_hash {
	struct digest *dg;  /* owned; NULL once finalised */
	unsigned char *buf; /* owned; CHUNK bytes read back from the file */
	uint64_t size;
	uint64_t piece_size;
	uint64_t position;        /* bytes hashed */
	char hex[DIGEST_HEX_MAX]; /* the digest once finalised */
};

int prefix_hash_new(struct prefix_hash **out, enum digest_algo algo, uint64_t size,
                    uint64_t piece_size)
{
	struct prefix_hash *ph = NULL;
	int rc = -EINVAL;

	*out = NULL;
	if (piece_size == 0)
		goto out;
	rc = -ENOMEM;
	ph = calloc(1, sizeof(*ph));
	if (!ph)
		goto out;
	ph->buf = malloc(CHUNK);
	if (!ph->buf)
		goto out;
	rc = digest_new(&ph->dg, algo, size);
	if (rc)
		goto out;
	ph->size = size;
	ph->piece_size = piece_size;
	*out = ph;
	ph = NULL;
out:
	prefix_hash_free(ph);
	return rc;
}

void prefix_hash_free(struct prefix_hash *ph)
{
	if (!ph)
		return;
	digest_free(ph->dg);
	free(ph->buf);
	free(ph);
}

static uint64_t piece_count(const struct prefix_hash *ph)
{
	return ph->size == 0 ? 0 : (ph->size - 1) / ph->piece_size + 1;
}

/* End of the contiguous run of present pieces, in bytes. */
static uint64_t prefix_end(const struct prefix_hash *ph, const struct bitmap *present)
{
	uint64_t pieces = bitmap_prefix(present);

	/* The last piece may be short, and pieces * piece_size could wrap. */
	if (pieces >= piece_count(ph))
		return ph->size;
	return pieces * ph->piece_size;
}

int prefix_hash_advance(struct prefix_hash *ph, int fd, const struct bitmap *present,
                        uint64_t max_bytes)
{
	uint64_t end;
	int rc = 0;

	if ((uint64_t)present->nbits != piece_count(ph))
		return -EINVAL;
	end = prefix_end(ph, present);
	if (end <= ph->position)
		return 0;
	if (max_bytes > 0 && end - ph->position > max_bytes)
		end = ph->position + max_bytes;
	while (ph->position < end) {
		size_t want = end - ph->position < CHUNK ? (size_t)(end - ph->position) : CHUNK;
		ssize_t n = full_io_pread(fd, ph->buf, want, (off_t)ph->position);

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		rc = digest_update(ph->dg, ph->buf, (size_t)n);
		if (rc)
			goto out;
		ph->position += (uint64_t)n;
		/* The file ends before the pieces said to be on it. */
		if ((size_t)n < want) {
			rc = -EIO;
			goto out;
		}
	}
out:
	return rc;
}

uint64_t prefix_hash_position(const struct prefix_hash *ph)
{
	return ph->position;
}

bool prefix_hash_done(const struct prefix_hash *ph)
{
	return ph->position == ph->size;
}

int prefix_hash_final(struct prefix_hash *ph, char out[DIGEST_HEX_MAX])
{
	if (!prefix_hash_done(ph))
		return -EINVAL;
	/* A digest cannot be finalised twice: keep the first answer. */
	if (ph->dg) {
		int rc = digest_final_hex(ph->dg, ph->hex);
		if (rc)
			return rc;
		digest_free(ph->dg);
		ph->dg = NULL;
	}
	memcpy(out, ph->hex, DIGEST_HEX_MAX);
	return 0;
}
