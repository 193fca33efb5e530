/* mml/classify.h: the image-classification task as `mml train` runs it:
 * a JSON config (docs/config.md) naming IDX data, a model and training
 * settings, read into tensors and options with errors naming config keys. */
#ifndef MML_CLASSIFY_H
#define MML_CLASSIFY_H

#include "mml/config.h"
#include "mml/train.h"

typedef struct mml_classify {
    mml_config *cfg;
    mml_tensor *train_x, *train_y, *test_x, *test_y; /* F32 [N, model input], I32 [N] */
    char **classes;
    int n_classes;
    mml_train_options opt;
} mml_classify;

/* Reads the config and its data. seed/epochs < 0 keep the config's values.
 * Relative data paths are taken from the config file's directory. */
mml_status mml_classify_open(const char *config_path, int64_t epochs, int64_t seed, mml_classify *job);
void mml_classify_close(mml_classify *job);

/* Loads one split ("train" or "test") of a config's "data" node, shaped for
 * a model whose input is in_shape. Used by `mml eval` on a saved model. */
mml_status mml_classify_load_split(const mml_cfg_node *data, const char *config_dir, const char *split,
                                   int in_ndim, const int64_t *in_shape, mml_tensor **x, mml_tensor **y);
/* Transfer learning from the config's train section: loads "init_from"
 * weights by name (prefixes in "init_skip" keep their fresh initialisation,
 * e.g. a new head) and freezes the prefixes listed in "freeze". */
mml_status mml_classify_prepare_model(const mml_classify *job, const char *config_path, mml_model *m);
/* Class names as a JSON array (heap; mml_free). */
char *mml_classify_classes_json(const mml_classify *job);

#endif
