#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/tensor.h"

static const struct { const char *name; size_t size; } g_dtypes[MML_DTYPE_COUNT] = {
    [MML_F32] = { "F32", 4 }, [MML_I32] = { "I32", 4 }, [MML_I64] = { "I64", 8 },
    [MML_F16] = { "F16", 2 }, [MML_BF16] = { "BF16", 2 }, [MML_I8] = { "I8", 1 },
    [MML_U8] = { "U8", 1 },
};

size_t mml_dtype_size(mml_dtype dt) { return dt < MML_DTYPE_COUNT ? g_dtypes[dt].size : 0; }
const char *mml_dtype_name(mml_dtype dt) { return dt < MML_DTYPE_COUNT ? g_dtypes[dt].name : "?"; }

int mml_dtype_from_name(const char *name)
{
    for (int i = 0; i < MML_DTYPE_COUNT; i++)
        if (!strcmp(name, g_dtypes[i].name)) return i;
    return -1;
}

int64_t mml_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] && n > INT64_MAX / 16 / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

bool mml_shape_equal(const mml_tensor *a, const mml_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *mml_shape_str(const mml_tensor *t, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

int mml_axis(int axis, int ndim)
{
    if (axis < -ndim || axis >= ndim) return -1;
    return axis < 0 ? axis + ndim : axis;
}

mml_tensor *mml_tensor_create(mml_dtype dt, int ndim, const int64_t *shape, bool requires_grad)
{
    if (ndim < 0 || ndim > MML_MAX_DIMS || dt >= MML_DTYPE_COUNT) {
        mml_error(MML_ERR_ARG, "tensor: bad rank %d or dtype %d", ndim, (int)dt);
        return NULL;
    }
    int64_t n = mml_shape_numel(ndim, shape);
    if (n < 0) {
        mml_error(MML_ERR_NOMEM, "tensor: shape is negative or too large");
        return NULL;
    }
    mml_tensor *t = mml_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = n;
    t->heap = true;
    size_t bytes = (size_t)n * mml_dtype_size(dt);
    t->data = mml_aligned_alloc(bytes);
    if (!t->data) goto fail;
    memset(t->data, 0, bytes);
    if (requires_grad) {
        t->requires_grad = true;
        t->grad = mml_aligned_alloc((size_t)n * sizeof(float));
        if (!t->grad) goto fail;
        memset(t->grad, 0, (size_t)n * sizeof(float));
    }
    return t;
fail:
    mml_tensor_free(t);
    return NULL;
}

void mml_tensor_free(mml_tensor *t)
{
    if (!t) return;
    if (t->heap) {
        mml_free(t->data);
        mml_free(t->grad);
    }
    mml_free(t);
}
