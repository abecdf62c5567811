/* mirror.c: blob mirrors: which blobs they may serve, and where. Not for:
 * the list (conf/mirror_list.c), fetching (transfer.c) or checking bytes. */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "mirror.h"

bool mirror_serves(const struct digest_spec *digest)
{
	return digest_spec_names_bytes(digest) && !digest->key[0];
}

int mirror_blob_url(const char *base, const struct digest_spec *digest, char **out)
{
	char *rel = NULL;
	int rc;

	*out = NULL;
	if (!mirror_serves(digest))
		return -ENOENT;
	rc = blob_rel(digest, "", &rel);
	if (rc)
		return rc;
	if (asprintf(out, "%s/%s", base, rel) < 0) {
		*out = NULL;
		rc = -ENOMEM;
	}
	free(rel);
	return rc;
}
