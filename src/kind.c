/*
 * kind.c - what every kind of object shares through its descriptor
 * (kind.h): its value files found by name and rendered when present.
 */
#include "kind.h"

#include <errno.h>
#include <string.h>

const struct object_value *kind_value(const struct object_kind *kind,
				      const char *name)
{
	for (size_t i = 0; i < kind->nvalues; i++)
		if (strcmp(kind->values[i].name, name) == 0)
			return &kind->values[i];
	return NULL;
}

int kind_render(const struct object_kind *kind, const void *obj,
		const char *name, char **out, size_t *len)
{
	const struct object_value *v = kind_value(kind, name);

	*out = NULL;
	*len = 0;
	if (!v || !v->present(obj, name))
		return -ENOENT;
	return v->render(obj, name, out, len);
}

int kind_always(const void *obj, const char *name)
{
	(void)obj;
	(void)name;
	return 1;
}
