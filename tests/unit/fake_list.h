/*
 * fake_list.h - a list endpoint of the fake API that the unit tests serve
 * over the HTTP stub (http_stub.h): objects kept as their JSON text,
 * newest first, paged as the API pages them (limit=, after=<id>,
 * has_more). Each object may carry a content (a file's bytes, as
 * uploaded), freed with the list.
 */
#ifndef KIMIFS_FAKE_LIST_H
#define KIMIFS_FAKE_LIST_H

#include <stdlib.h>
#include <string.h>

struct fake_list {
	struct fake_obj {
		char *id;
		char *json;
		char *content; /* owned, or NULL */
	} * objs;
	size_t n, cap;
};

/* Add an object (copies of id and json; content taken) last, as the
 * oldest, or with first as the newest. */
static inline void fake_list_put(struct fake_list *l, const char *id,
				 const char *json, char *content, int first)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct fake_obj *o = realloc(l->objs, cap * sizeof(*o));

		if (!o)
			return;
		l->objs = o;
		l->cap = cap;
	}
	if (first)
		memmove(l->objs + 1, l->objs, l->n * sizeof(*l->objs));
	l->objs[first ? 0 : l->n] =
	    (struct fake_obj){strdup(id), strdup(json), content};
	l->n++;
}

static inline void fake_list_clear(struct fake_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->objs[i].id);
		free(l->objs[i].json);
		free(l->objs[i].content);
	}
	free(l->objs);
	memset(l, 0, sizeof(*l));
}

/* The answer to GET <list>?<query> of target: limit objects (20 when not
 * given) after the one named by after=, or from the newest; malloc'd. */
static inline char *fake_list_page(const struct fake_list *l,
				   const char *target)
{
	const char *q = strstr(target, "limit="), *a = strstr(target, "after=");
	size_t limit = q ? strtoul(q + 6, NULL, 10) : 20, from = 0, end, len;
	char *out;

	if (a) {
		size_t alen = strcspn(a + 6, "&");

		for (from = 0; from < l->n; from++)
			if (strlen(l->objs[from].id) == alen &&
			    strncmp(l->objs[from].id, a + 6, alen) == 0) {
				from++;
				break;
			}
	}
	end = from + limit < l->n ? from + limit : l->n;
	len = 64;
	for (size_t i = from; i < end; i++)
		len += strlen(l->objs[i].json) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	len = (size_t)sprintf(out, "{\"object\":\"list\",\"data\":[");
	for (size_t i = from; i < end; i++)
		len += (size_t)sprintf(out + len, "%s%s", i > from ? "," : "",
				       l->objs[i].json);
	strcpy(out + len,
	       end < l->n ? "],\"has_more\":true}" : "],\"has_more\":false}");
	return out;
}

#endif
