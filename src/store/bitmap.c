/* bitmap.c: a fixed-size set of bits saying which pieces of a partial blob
 * are present, with its hex text form. Not for: what a piece is or where it
 * is stored (sidecar.c, the transfer code). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "digest.h"

enum { WORD_BITS = 64 };

/* Written without nbits + 63 so that SIZE_MAX bits cannot wrap to 0 words. */
static size_t words_for(size_t nbits)
{
	return nbits / WORD_BITS + (nbits % WORD_BITS != 0);
}

size_t bitmap_hex_len(size_t nbits)
{
	return nbits / 4 + (nbits % 4 != 0);
}

int bitmap_init(struct bitmap *bm, size_t nbits)
{
	size_t nwords = words_for(nbits);

	memset(bm, 0, sizeof(*bm));
	/* 0 bits own no words, so calloc(0) never has to mean anything. */
	if (nwords > 0) {
		bm->words = calloc(nwords, sizeof(*bm->words));
		if (!bm->words)
			return -ENOMEM;
	}
	bm->nbits = nbits;
	return 0;
}

void bitmap_free(struct bitmap *bm)
{
	free(bm->words);
	memset(bm, 0, sizeof(*bm));
}

bool bitmap_get(const struct bitmap *bm, size_t i)
{
	if (i >= bm->nbits)
		return false;
	return (bm->words[i / WORD_BITS] >> (i % WORD_BITS)) & 1;
}

void bitmap_set(struct bitmap *bm, size_t i)
{
	uint64_t mask;

	if (i >= bm->nbits)
		return;
	mask = UINT64_C(1) << (i % WORD_BITS);
	if (!(bm->words[i / WORD_BITS] & mask)) {
		bm->words[i / WORD_BITS] |= mask;
		bm->count++;
	}
}

void bitmap_clear(struct bitmap *bm, size_t i)
{
	uint64_t mask;

	if (i >= bm->nbits)
		return;
	mask = UINT64_C(1) << (i % WORD_BITS);
	if (bm->words[i / WORD_BITS] & mask) {
		bm->words[i / WORD_BITS] &= ~mask;
		bm->count--;
	}
}

void bitmap_clear_all(struct bitmap *bm)
{
	if (bm->words)
		memset(bm->words, 0, words_for(bm->nbits) * sizeof(*bm->words));
	bm->count = 0;
}

bool bitmap_full(const struct bitmap *bm)
{
	return bm->count == bm->nbits;
}

size_t bitmap_prefix(const struct bitmap *bm)
{
	return bitmap_next_clear(bm, 0);
}

size_t bitmap_next_clear(const struct bitmap *bm, size_t from)
{
	size_t nwords = words_for(bm->nbits);
	size_t w, found;
	uint64_t clear;

	if (from >= bm->nbits)
		return bm->nbits;
	w = from / WORD_BITS;
	/* Clear bits of the first word at or after from. */
	clear = ~bm->words[w] & (~UINT64_C(0) << (from % WORD_BITS));
	while (clear == 0) {
		if (++w == nwords)
			return bm->nbits;
		clear = ~bm->words[w];
	}
	found = w * WORD_BITS + (size_t)__builtin_ctzll(clear);
	/* The always-clear bits past nbits of the last word may be found. */
	return found < bm->nbits ? found : bm->nbits;
}

int bitmap_copy(struct bitmap *dst, const struct bitmap *src)
{
	int rc = bitmap_init(dst, src->nbits);

	if (rc)
		return rc;
	if (dst->words && src->words)
		memcpy(dst->words, src->words, words_for(src->nbits) * sizeof(*src->words));
	dst->count = src->count;
	return 0;
}

/* Digit d holds bits 4d..4d+3 with bit 4d as its most significant bit, while
 * in a word bit 4d is the least significant of its nibble: reverse the four. */
static const char nibble_reversed[16] = {0x0, 0x8, 0x4, 0xc, 0x2, 0xa, 0x6, 0xe,
                                         0x1, 0x9, 0x5, 0xd, 0x3, 0xb, 0x7, 0xf};

int bitmap_to_hex(const struct bitmap *bm, char **out)
{
	size_t ndigits = bitmap_hex_len(bm->nbits);
	char *hex;

	*out = NULL;
	hex = malloc(ndigits + 1);
	if (!hex)
		return -ENOMEM;
	for (size_t d = 0; d < ndigits; d++) {
		size_t bit = d * 4;
		unsigned nibble = (bm->words[bit / WORD_BITS] >> (bit % WORD_BITS)) & 0xf;
		hex[d] = "0123456789abcdef"[(unsigned char)nibble_reversed[nibble]];
	}
	hex[ndigits] = '\0';
	*out = hex;
	return 0;
}

int bitmap_from_hexn(struct bitmap *bm, size_t nbits, const char *hex, size_t len)
{
	size_t ndigits = bitmap_hex_len(nbits);
	int rc;

	memset(bm, 0, sizeof(*bm));
	/* Checked before allocating, so untrusted text cannot ask for memory. */
	if (len != ndigits)
		return -EINVAL;
	rc = bitmap_init(bm, nbits);
	/* 0 bits own no words and have no digits to read. */
	if (rc || !bm->words)
		return rc;
	for (size_t d = 0; d < ndigits; d++) {
		int v = digest_hex_value(hex[d]);
		size_t bit = d * 4;
		unsigned nibble;

		if (v < 0) {
			rc = -EINVAL;
			goto out;
		}
		nibble = (unsigned char)nibble_reversed[v];
		/* Bits of the last digit past nbits must be clear. */
		if (nbits - bit < 4 && (nibble >> (nbits - bit)) != 0) {
			rc = -EINVAL;
			goto out;
		}
		bm->words[bit / WORD_BITS] |= (uint64_t)nibble << (bit % WORD_BITS);
		bm->count += (size_t)__builtin_popcount(nibble);
	}
out:
	if (rc)
		bitmap_free(bm);
	return rc;
}

int bitmap_from_hex(struct bitmap *bm, size_t nbits, const char *hex)
{
	return bitmap_from_hexn(bm, nbits, hex, strlen(hex));
}
