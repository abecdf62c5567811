/* mirror.h: blob mirrors: base URLs that serve complete blobs by digest in
 * the blob store's own layout (URL/blobs/<algorithm>/<hex>), so a plain web
 * server over a cache directory is one. Which blobs may come from them and
 * at what URL. Not for: fetching (transfer.c) or checking bytes (digest.c). */
#ifndef OMNIHUB_MIRROR_H
#define OMNIHUB_MIRROR_H

#include <stdbool.h>
#include <stddef.h>

#include "digest.h"
#include "mirror_list.h"

/* Whether a blob may come from a mirror: only when its digest names its
 * bytes in full (sha256, sha1, git's blob id), so that a mirror need not be
 * trusted. A prefix, an MD5 or an Adler-32 could be forged, and a blob
 * without a digest could not be checked at all. */
bool mirror_serves(const struct digest_spec *digest);

/* base + "/blobs/<algorithm>/<hex>"; *out is the caller's. -ENOENT when
 * mirror_serves says no. */
int mirror_blob_url(const char *base, const struct digest_spec *digest, char **out);

#endif
