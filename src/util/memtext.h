/* memtext.h: text printed with stdio into memory (open_memstream) and
 * handed over as one buffer. Not for: files or pipes (stdio itself). */
#ifndef OMNIHUB_MEMTEXT_H
#define OMNIHUB_MEMTEXT_H

#include <stddef.h>
#include <stdio.h>

struct memtext {
	FILE *f;    /* printed to between memtext_open and memtext_close */
	char *text; /* owned by the stream until memtext_close hands it over */
	size_t size;
};

/* Opens m and empties *out and *len (the caller's, filled at the close).
 * 0 or -ENOMEM. */
int memtext_open(struct memtext *m, char **out, size_t *len);

/* Closes m: on 0, *out (the caller's to free, NUL-terminated) and *len
 * hold what was printed; -ENOMEM when it could not all be kept. */
int memtext_close(struct memtext *m, char **out, size_t *len);

#endif
