/* mml/params.h: the parameter store. It owns named parameters (heap tensors
 * with gradients), their freeze flags and the optimizer state slots that mirror
 * them. Names follow PyTorch's state_dict ("encoder.conv1.weight") so weights
 * exported from PyTorch load as they are.
 *
 * Thread safety: a store is used by one thread at a time. */
#ifndef MML_PARAMS_H
#define MML_PARAMS_H

#include "mml/tensor.h"

typedef struct mml_params mml_params;

#define MML_PARAM_STATE_SLOTS 3 /* e.g. Adam m, v; SGD momentum */

mml_params *mml_params_create(void);
void mml_params_free(mml_params *ps);

/* Adds a zero-filled float32 parameter with a gradient buffer. NULL and an
 * error if the name exists or the shape is bad. The store owns the tensor. */
mml_tensor *mml_params_add(mml_params *ps, const char *name, int ndim, const int64_t *shape);
/* Non-trainable state saved with the model (batch-norm running stats). */
mml_tensor *mml_params_add_buffer(mml_params *ps, const char *name, int ndim,
                                  const int64_t *shape);

int mml_params_count(const mml_params *ps);           /* parameters and buffers */
mml_tensor *mml_params_at(const mml_params *ps, int i);
bool mml_params_is_buffer(const mml_params *ps, int i);
mml_tensor *mml_params_find(const mml_params *ps, const char *name);
int64_t mml_params_numel(const mml_params *ps);       /* trainable elements */

/* Freezing: frozen parameters get no gradient and no update. A prefix of ""
 * matches every name. Returns the number of parameters changed. */
int mml_params_freeze(mml_params *ps, const char *prefix, bool frozen);
bool mml_params_frozen(const mml_params *ps, int i);

void mml_params_zero_grad(mml_params *ps);
/* Optimizer state slot (zero-filled on first use, same numel as parameter i). */
float *mml_params_state(mml_params *ps, int i, int slot);
/* The slot if it has been used, else NULL (checkpoints save only used slots). */
float *mml_params_state_if_used(const mml_params *ps, int i, int slot);

#endif
