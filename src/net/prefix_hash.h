/* prefix_hash.h: the ordered digest of a file whose pieces land out of
 * order, advanced over the contiguous prefix of present pieces by reading
 * them back from the file. Not for: fetching pieces, or what a mismatch means. */
#ifndef OMNIHUB_PREFIX_HASH_H
#define OMNIHUB_PREFIX_HASH_H

#include <stdbool.h>
#include <stdint.h>

#include "bitmap.h"
#include "digest.h"

/* Opaque. */
struct prefix_hash;

/* -EINVAL for piece_size 0 or DIGEST_NONE, -ENOMEM. */
int prefix_hash_new(struct prefix_hash **out, enum digest_algo algo, uint64_t size,
                    uint64_t piece_size);
void prefix_hash_free(struct prefix_hash *ph);
/* Hashes the bytes of fd from the current position up to the end of the
 * contiguous run of present pieces (capped at size), reading at most
 * max_bytes in this call (0 = no cap) so a caller can stay responsive.
 * Returns 0 or -errno (a read error; a short read, the file being shorter
 * than the prefix, is -EIO; -EINVAL when present does not hold one bit per
 * piece). Bytes hashed before an error stay hashed. */
int prefix_hash_advance(struct prefix_hash *ph, int fd, const struct bitmap *present,
                        uint64_t max_bytes);
/* Bytes hashed so far. */
uint64_t prefix_hash_position(const struct prefix_hash *ph);
/* position == size. */
bool prefix_hash_done(const struct prefix_hash *ph);
/* Once done: the lower-case hex digest (the same on every call); -EINVAL if
 * not done. */
int prefix_hash_final(struct prefix_hash *ph, char out[DIGEST_HEX_MAX]);

#endif
