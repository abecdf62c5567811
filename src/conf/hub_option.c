/* hub_option.c: finding a hub option by name among the hubs' declared
 * options (hub_option.h). Not for: checking or reading values (config.c). */
#include "build_config.h"

#include <string.h>

#include "hub_option.h"

const struct hub_option_spec *hub_option_find(const struct hub_option_hubs *hubs,
					      const char *name)
{
	for (size_t i = 0; hubs && i < hubs->count; i++) {
		const struct hub_option_spec *spec = hubs->options(i);
		for (; spec && spec->name; spec++)
			if (strcmp(spec->name, name) == 0)
				return spec;
	}
	return NULL;
}
