/* memtext.c: text printed with stdio into memory (open_memstream) and
 * handed over as one buffer. Not for: files or pipes (stdio itself). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>

#include "memtext.h"

int memtext_open(struct memtext *m, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	m->text = NULL;
	m->size = 0;
	m->f = open_memstream(&m->text, &m->size);
	return m->f ? 0 : -ENOMEM;
}

int memtext_close(struct memtext *m, char **out, size_t *len)
{
	int rc = 0;

	if (fclose(m->f) != 0) {
		free(m->text);
		rc = -ENOMEM;
		goto out;
	}
	*out = m->text;
	*len = m->size;
out:
	m->f = NULL;
	m->text = NULL;
	return rc;
}
