/* bitmap.h: a fixed-size set of bits saying which pieces of a partial blob
 * are present, with its hex text form. Not for: what a piece is or where it
 * is stored (sidecar.c, the transfer code). */
#ifndef OMNIHUB_BITMAP_H
#define OMNIHUB_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bitmap {
	uint64_t *words; /* owned; bits past nbits are always clear */
	size_t nbits;
	size_t count; /* bits set */
};

/* All clear; nbits may be 0; -ENOMEM. */
int bitmap_init(struct bitmap *bm, size_t nbits);
/* Safe on a zeroed struct; leaves it zeroed. */
void bitmap_free(struct bitmap *bm);
/* Indexes past nbits read as clear, and setting or clearing them does nothing. */
bool bitmap_get(const struct bitmap *bm, size_t i);
/* Keeps count right when already set. */
void bitmap_set(struct bitmap *bm, size_t i);
void bitmap_clear(struct bitmap *bm, size_t i);
void bitmap_clear_all(struct bitmap *bm);
/* count == nbits (true for 0 bits). */
bool bitmap_full(const struct bitmap *bm);
/* Number of leading set bits. */
size_t bitmap_prefix(const struct bitmap *bm);
/* First clear bit >= from, or nbits. */
size_t bitmap_next_clear(const struct bitmap *bm, size_t from);
/* dst uninitialised; -ENOMEM. */
int bitmap_copy(struct bitmap *dst, const struct bitmap *src);

/* Hex form for the sidecar: ceil(nbits/4) lower-case digits; bit i lives in
 * digit i/4 with value 8 >> (i%4) (most significant bit first, so "8" is
 * piece 0 alone, "f" pieces 0-3). *out is NUL-terminated and the caller's
 * (free). nbits 0 gives "". */
int bitmap_to_hex(const struct bitmap *bm, char **out);
/* Number of digits bitmap_to_hex writes for nbits. */
size_t bitmap_hex_len(size_t nbits);
/* Parses untrusted hex into a fresh bitmap of nbits: -EINVAL when the length
 * is not ceil(nbits/4), a digit is not hex (either case accepted), or a bit
 * past nbits is set; -ENOMEM. On failure *bm is zeroed. */
int bitmap_from_hex(struct bitmap *bm, size_t nbits, const char *hex);
/* The same for len bytes that need not end in a NUL (a NUL among them is
 * not hex). */
int bitmap_from_hexn(struct bitmap *bm, size_t nbits, const char *hex, size_t len);

#endif
