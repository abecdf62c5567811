/* sidecar.h: the text file beside a partial blob (<hex>.state) that lets a
 * later process resume it: URL, validator, size, piece size, pieces present,
 * and (optional) the file it is for.
 * Not for: reading or writing the file, locking, or the transfer itself. */
#ifndef OMNIHUB_SIDECAR_H
#define OMNIHUB_SIDECAR_H

#include <stddef.h>
#include <stdint.h>

#include "bitmap.h"

/* Reading refuses more; formatting refuses to write more. */
#define SIDECAR_MAX_BYTES (1u << 20)
/* The largest piece size the format accepts (1 GiB). */
#define SIDECAR_MAX_PIECE_SIZE (UINT64_C(1) << 30)

struct sidecar {
	char *url;       /* owned; where the bytes come from (the hub URL, before redirects) */
	char *validator; /* owned; the ETag the present pieces were fetched under; "" when none */
	uint64_t size;   /* of the whole blob */
	uint64_t piece_size;
	struct bitmap pieces; /* nbits = sidecar_piece_count(size, piece_size) */
	/* owned; the file it is downloaded for, below the store's root
	 * ("onnx/resnet18/opset-9/model.onnx"), so omnihub cache ls can say
	 * whose it is before that file has a name; NULL when not recorded (a
	 * sidecar written before the line existed). An optional last line:
	 * a text without it is still version 1. */
	char *path;
};

/* ceil(size/piece_size); 0 for size 0 (and for piece_size 0). */
size_t sidecar_piece_count(uint64_t size, uint64_t piece_size);
/* Copies url and validator (validator may be NULL for ""), all pieces
 * absent, no path. -EINVAL for piece_size 0 or above SIDECAR_MAX_PIECE_SIZE, an empty
 * url, or a url/validator holding a control character or newline; -ENOMEM.
 * On failure *sc is zeroed. */
int sidecar_init(struct sidecar *sc, const char *url, const char *validator, uint64_t size,
                 uint64_t piece_size);
/* Records path (a copy; NULL forgets it): -EINVAL for a path that is not
 * relative and clean (empty, a leading "/", an empty, "." or ".."
 * component, a control character), -ENOMEM; *sc unchanged on failure. */
int sidecar_set_path(struct sidecar *sc, const char *path);
/* Safe on a zeroed struct; leaves it zeroed. */
void sidecar_free(struct sidecar *sc);
/* The text form, *out NUL-terminated and the caller's; *len its length.
 * -EINVAL for fields sidecar_init would refuse or a bitmap of the wrong
 * size, -EFBIG for text past SIDECAR_MAX_BYTES, -ENOMEM. */
int sidecar_format(const struct sidecar *sc, char **out, size_t *len);
/* Strict parse of untrusted text into a fresh *out: -EINVAL (with a
 * sentence in why naming the line number and the field, e.g. "line 3:
 * piece-size is not a positive integer") for anything not exactly of the
 * format, -EFBIG past SIDECAR_MAX_BYTES, -ENOMEM. On failure *out is zeroed.
 * why may be NULL. */
int sidecar_parse(const char *text, size_t len, struct sidecar *out, char *why, size_t why_size);

#endif
