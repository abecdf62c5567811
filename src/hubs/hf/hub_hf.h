/* hub_hf.h: the Hugging Face Hub as files: huggingface/<org>/<name>[@rev]/
 * for models, huggingface-datasets/ for datasets. Not for: fetching or
 * caching anything itself (the core does, through hub.h). */
#ifndef OMNIHUB_HUB_HF_H
#define OMNIHUB_HUB_HF_H

#include "hub.h"

extern const struct hub_ops hub_hf_models_ops;
extern const struct hub_ops hub_hf_datasets_ops;

#endif
