/* mirror_list.h: the blob mirrors a setting names (-o mirror=, mirror =):
 * base URLs, checked and in order, which config.c keeps. Not for: which
 * blobs they serve or at what URL (mirror.h, the transfers'). */
#ifndef OMNIHUB_MIRROR_LIST_H
#define OMNIHUB_MIRROR_LIST_H

#include <stddef.h>

/* At most this many mirrors: each is tried before the hub, in order. */
#define MIRROR_MAX 8

struct mirror_list {
	char *bases[MIRROR_MAX]; /* owned; http(s) URLs without a trailing '/' */
	size_t count;
};

/* Adds the URLs of text, separated by spaces or commas, in order; a URL
 * given twice counts once. -EINVAL with a sentence in why for one that is
 * not http(s), carries a query or a fragment, or is one too many. */
int mirror_list_parse(struct mirror_list *list, const char *text, char *why, size_t why_size);
void mirror_list_free(struct mirror_list *list);

#endif
