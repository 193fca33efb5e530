/* mml/tensor.h: dense row-major tensors of up to 6 dimensions.
 *
 * Compute is float32 (MML_F32); MML_I32/MML_I64 hold indices (labels, token
 * ids, gather indices). The narrower dtypes exist for safetensors I/O only.
 *
 * Two owners:
 *   - heap tensors (mml_tensor_create/mml_tensor_free): datasets, parameters;
 *   - step tensors (mml_new and every op output, see mml/autograd.h): owned by
 *     the context's step arena and gone at the next mml_ctx_reset. */
#ifndef MML_TENSOR_H
#define MML_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mml/error.h"

#define MML_MAX_DIMS 6

typedef enum mml_dtype {
    MML_F32 = 0, MML_I32, MML_I64, MML_F16, MML_BF16, MML_I8, MML_U8, MML_DTYPE_COUNT
} mml_dtype;

struct mml_node;

typedef struct mml_tensor {
    void *data;
    float *grad;             /* same shape as data; NULL until backward reaches it */
    struct mml_node *node;   /* op that produced it, when recorded on the tape */
    const char *name;        /* optional: used in error messages */
    int64_t shape[MML_MAX_DIMS];
    int64_t numel;
    int ndim;
    mml_dtype dtype;
    bool requires_grad;
    bool heap;               /* data (and grad) owned by this tensor */
} mml_tensor;

size_t mml_dtype_size(mml_dtype dt);
const char *mml_dtype_name(mml_dtype dt);   /* safetensors spelling: "F32", "I64", ... */
int mml_dtype_from_name(const char *name);  /* -1 if unknown */

static inline float *mml_f32(const mml_tensor *t) { return (float *)t->data; }
static inline int32_t *mml_i32(const mml_tensor *t) { return (int32_t *)t->data; }
static inline int64_t *mml_i64(const mml_tensor *t) { return (int64_t *)t->data; }

/* Heap tensor, zero-filled; NULL (and an error) on bad shape or no memory.
 * With requires_grad the gradient buffer is allocated too (zeroed). */
mml_tensor *mml_tensor_create(mml_dtype dt, int ndim, const int64_t *shape, bool requires_grad);
void mml_tensor_free(mml_tensor *t);

/* Product of dims with overflow check; -1 on a negative dim or overflow. */
int64_t mml_shape_numel(int ndim, const int64_t *shape);
bool mml_shape_equal(const mml_tensor *a, const mml_tensor *b);
/* "[2, 3, 4]" into buf; returns buf. */
const char *mml_shape_str(const mml_tensor *t, char *buf, size_t cap);
/* Axis in [-ndim, ndim) to [0, ndim); -1 if out of range. */
int mml_axis(int axis, int ndim);

#endif
