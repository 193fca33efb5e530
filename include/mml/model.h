/* mml/model.h: a network described by JSON and built into a parameter store.
 *
 *   "model": {
 *     "input": [1, 28, 28],
 *     "layers": [
 *       {"type": "conv2d", "out": 32, "kernel": 3, "padding": 1}, {"type": "relu"},
 *       {"type": "max_pool2d", "kernel": 2},
 *       {"type": "flatten"}, {"type": "linear", "out": 10}
 *     ]
 *   }
 *
 * Layer i's parameters are named "i.weight", "i.bias" (and "i.running_mean",
 * "i.running_var" for batch norm), as torch.nn.Sequential names them, and are
 * initialised as PyTorch does, so weights move between the two unchanged.
 * Each layer's input size is inferred from the one before; a layer that
 * cannot take it is an error naming the config key ("model.layers[4]: ...").
 * docs/config.md lists every layer type and key. */
#ifndef MML_MODEL_H
#define MML_MODEL_H

#include "mml/autograd.h"
#include "mml/config.h"
#include "mml/params.h"
#include "mml/rng.h"

struct mml_safetensors;

typedef struct mml_model mml_model;

/* Builds the model from a "model" node; parameters are initialised from seed. */
mml_status mml_model_build(const mml_cfg_node *model, uint64_t seed, mml_model **out);
/* The same layers inside a larger model: parameters go into ps (not owned)
 * named PREFIX + "i.weight", and the input shape comes from the caller. */
mml_status mml_model_build_in(const mml_cfg_node *node, mml_params *ps, const char *prefix, int in_ndim,
                              const int64_t *in, uint64_t seed, mml_model **out);
void mml_model_free(mml_model *m);

/* x: [B, input...] -> [B, outputs]. Training behaviour follows mml_training(ctx). */
mml_tensor *mml_model_forward(mml_ctx *ctx, mml_model *m, mml_tensor *x);

/* Also returns in *seq the last activation with more than 2 dims ([B, C, H, W]
 * or [B, C, T], before flattening), for fusion methods that attend over positions. */
mml_tensor *mml_model_forward_seq(mml_ctx *ctx, mml_model *m, mml_tensor *x, mml_tensor **seq);

mml_params *mml_model_params(mml_model *m);
/* The generator dropout draws from (saved in checkpoints for exact resume). */
mml_rng *mml_model_rng(mml_model *m);
int mml_model_input_shape(const mml_model *m, int64_t *shape); /* returns ndim, without batch */
int64_t mml_model_output_size(const mml_model *m);
int mml_model_output_shape(const mml_model *m, int64_t *shape); /* returns ndim, without batch */
/* One line per layer: "0 conv2d [32, 28, 28] 320 params". */
void mml_model_summary(const mml_model *m, char *buf, size_t cap);


/* Saves parameters and buffers as safetensors with the full JSON config and
 * the class names in the metadata ("mml.config", "mml.classes"), so a model
 * file is self-describing. Written to PATH.tmp, then renamed. */
mml_status mml_model_save(const mml_model *m, const char *path, const char *config_json, const char *classes_json);
/* The same for any parameter store, with its "mml.format" value. */
mml_status mml_params_save_model(const mml_params *ps, const char *path, const char *format, const char *config_json,
                                 const char *classes_json);
/* Rebuilds the model from a file written by mml_model_save; the config is
 * returned (caller frees) for its data and class names. */
mml_status mml_model_load(const char *path, mml_model **out, mml_config **config);
/* Copies every parameter and buffer of ps from st (names must match). */
mml_status mml_params_load(mml_params *ps, const struct mml_safetensors *st, const char *what);
/* Copies every parameter and buffer of m from st (names must match). */
mml_status mml_model_load_params(mml_model *m, const struct mml_safetensors *st, const char *what);

#endif
