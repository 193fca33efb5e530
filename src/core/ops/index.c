/* Indexing: embedding lookup, index_select, gather, scatter_add. Indices are
 * I32 or I64 and checked against the indexed dim before anything is read. */
#include <string.h>

#include "core/op.h"
#include "mml/ops.h"

static int64_t idx_at(const mml_tensor *t, int64_t i)
{
    return t->dtype == MML_I64 ? mml_i64(t)[i] : mml_i32(t)[i];
}

static mml_status check_indices(const mml_node *n, const mml_tensor *idx, int64_t limit)
{
    if (idx->dtype != MML_I32 && idx->dtype != MML_I64) return mml_op_error(n, "indices must be I32 or I64");
    for (int64_t i = 0; i < idx->numel; i++) {
        int64_t v = idx_at(idx, i);
        if (v < 0 || v >= limit)
            return mml_op_error(n, "index %lld out of range [0, %lld)", (long long)v, (long long)limit);
    }
    return MML_OK;
}

static void outer_inner(const mml_tensor *x, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) *inner *= x->shape[i];
}

/* ---- embedding ---- */

static mml_status emb_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *w = n->in[0], *idx = n->in[1];
    if (w->ndim != 2 || w->dtype != MML_F32) return mml_op_error(n, "weight must be float32 [V, D]");
    if (idx->ndim + 1 > MML_MAX_DIMS) return mml_op_error(n, "indices have too many dims");
    mml_status rc = check_indices(n, idx, w->shape[0]);
    if (rc != MML_OK) return rc;
    int64_t shape[MML_MAX_DIMS];
    memcpy(shape, idx->shape, (size_t)idx->ndim * sizeof *shape);
    shape[idx->ndim] = w->shape[1];
    mml_set_shape(out, MML_F32, idx->ndim + 1, shape);
    return MML_OK;
}

static void emb_forward(mml_ctx *ctx, mml_node *n)
{
    int64_t D = n->in[0]->shape[1];
    for (int64_t i = 0; i < n->in[1]->numel; i++)
        memcpy(mml_f32(n->out) + i * D, mml_f32(n->in[0]) + idx_at(n->in[1], i) * D, (size_t)D * sizeof(float));
}

static void emb_backward(mml_ctx *ctx, mml_node *n)
{
    if (!mml_wants_grad(n->in[0])) return;
    int64_t D = n->in[0]->shape[1];
    float *gw = mml_grad_buf(ctx, n->in[0]);
    for (int64_t i = 0; i < n->in[1]->numel; i++) {
        float *row = gw + idx_at(n->in[1], i) * D;
        const float *g = n->out->grad + i * D;
        for (int64_t k = 0; k < D; k++) row[k] += g[k];
    }
}

static const mml_op_def op_embedding = { "embedding", emb_infer, emb_forward, emb_backward };

mml_tensor *mml_embedding(mml_ctx *ctx, mml_tensor *weight, mml_tensor *idx)
{
    mml_node n = { .op = &op_embedding, .in = { weight, idx }, .n_in = 2 };
    return mml_op_run(ctx, &n);
}

/* ---- index_select ---- */

static mml_status is_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0], *idx = n->in[1];
    int axis = (int)n->iarg[0];
    if (axis < 0) return mml_op_error(n, "axis %d out of range", (int)n->iarg[1]);
    if (x->dtype != MML_F32 || idx->ndim != 1) return mml_op_error(n, "needs float32 input and 1-D indices");
    mml_status rc = check_indices(n, idx, x->shape[axis]);
    if (rc != MML_OK) return rc;
    int64_t shape[MML_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = idx->numel;
    mml_set_shape(out, MML_F32, x->ndim, shape);
    return MML_OK;
}

static void is_run(mml_ctx *ctx, mml_node *n, bool backward)
{
    const mml_tensor *x = n->in[0], *idx = n->in[1];
    int axis = (int)n->iarg[0];
    int64_t outer, inner, len = x->shape[axis], k = idx->numel;
    outer_inner(x, axis, &outer, &inner);
    float *gx = backward ? mml_grad_buf(ctx, n->in[0]) : NULL;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++) {
            const int64_t src = (o * len + idx_at(idx, j)) * inner, dst = (o * k + j) * inner;
            for (int64_t i = 0; i < inner; i++) {
                if (backward) gx[src + i] += n->out->grad[dst + i];
                else mml_f32(n->out)[dst + i] = mml_f32(x)[src + i];
            }
        }
}

static void is_forward(mml_ctx *ctx, mml_node *n) { is_run(ctx, n, false); }
static void is_backward(mml_ctx *ctx, mml_node *n)
{
    if (mml_wants_grad(n->in[0])) is_run(ctx, n, true);
}

static const mml_op_def op_index_select = { "index_select", is_infer, is_forward, is_backward };

mml_tensor *mml_index_select(mml_ctx *ctx, mml_tensor *x, int axis, mml_tensor *idx)
{
    if (!x) return NULL;
    mml_node n = { .op = &op_index_select, .in = { x, idx }, .n_in = 2, .iarg = { mml_axis(axis, x->ndim), axis } };
    return mml_op_run(ctx, &n);
}

/* ---- gather / scatter_add (torch semantics; idx has x's rank) ---- */

/* For each element of idx (shape S), the flat offset in a tensor of shape
 * `full` when dim `axis` is replaced by the index value. */
static int64_t target_offset(const mml_tensor *idx, const int64_t *full, int axis, int64_t i)
{
    int64_t off = 0, mul = 1;
    int64_t v = idx_at(idx, i);
    for (int d = idx->ndim - 1; d >= 0; d--) {
        int64_t c = i % idx->shape[d];
        i /= idx->shape[d];
        off += (d == axis ? v : c) * mul;
        mul *= full[d];
    }
    return off;
}

static mml_status gather_check(const mml_node *n, const mml_tensor *x, const mml_tensor *idx)
{
    int axis = (int)n->iarg[0];
    if (axis < 0) return mml_op_error(n, "axis %d out of range", (int)n->iarg[1]);
    if (x->dtype != MML_F32 || idx->ndim != x->ndim) return mml_op_error(n, "needs float32 input and indices of the same rank");
    for (int d = 0; d < x->ndim; d++)
        if (d != axis && idx->shape[d] > x->shape[d]) return mml_op_error(n, "indices larger than the input in dim %d", d);
    return check_indices(n, idx, x->shape[axis]);
}

static mml_status gather_infer(const mml_node *n, mml_tensor *out)
{
    mml_status rc = gather_check(n, n->in[0], n->in[1]);
    if (rc == MML_OK) mml_set_shape(out, MML_F32, n->in[1]->ndim, n->in[1]->shape);
    return rc;
}

static void gather_forward(mml_ctx *ctx, mml_node *n)
{
    const mml_tensor *x = n->in[0], *idx = n->in[1];
    for (int64_t i = 0; i < idx->numel; i++)
        mml_f32(n->out)[i] = mml_f32(x)[target_offset(idx, x->shape, (int)n->iarg[0], i)];
}

static void gather_backward(mml_ctx *ctx, mml_node *n)
{
    if (!mml_wants_grad(n->in[0])) return;
    float *gx = mml_grad_buf(ctx, n->in[0]);
    for (int64_t i = 0; i < n->in[1]->numel; i++)
        gx[target_offset(n->in[1], n->in[0]->shape, (int)n->iarg[0], i)] += n->out->grad[i];
}

static const mml_op_def op_gather = { "gather", gather_infer, gather_forward, gather_backward };

mml_tensor *mml_gather(mml_ctx *ctx, mml_tensor *x, int axis, mml_tensor *idx)
{
    if (!x) return NULL;
    mml_node n = { .op = &op_gather, .in = { x, idx }, .n_in = 2, .iarg = { mml_axis(axis, x->ndim), axis } };
    return mml_op_run(ctx, &n);
}

static mml_status scatter_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0], *idx = n->in[1], *src = n->in[2];
    mml_status rc = gather_check(n, x, idx);
    if (rc != MML_OK) return rc;
    if (src->dtype != MML_F32 || src->ndim != idx->ndim) return mml_op_error(n, "src must be float32 of the indices' rank");
    for (int d = 0; d < idx->ndim; d++)
        if (idx->shape[d] > src->shape[d]) return mml_op_error(n, "indices larger than src in dim %d", d);
    mml_set_shape(out, MML_F32, x->ndim, x->shape);
    return MML_OK;
}

/* Offset in src of idx element i (src may be larger than idx). */
static int64_t src_offset(const mml_tensor *idx, const mml_tensor *src, int64_t i)
{
    int64_t off = 0, mul = 1;
    for (int d = idx->ndim - 1; d >= 0; d--) {
        off += (i % idx->shape[d]) * mul;
        i /= idx->shape[d];
        mul *= src->shape[d];
    }
    return off;
}

static void scatter_forward(mml_ctx *ctx, mml_node *n)
{
    const mml_tensor *x = n->in[0], *idx = n->in[1], *src = n->in[2];
    memcpy(n->out->data, x->data, (size_t)x->numel * sizeof(float));
    for (int64_t i = 0; i < idx->numel; i++)
        mml_f32(n->out)[target_offset(idx, x->shape, (int)n->iarg[0], i)] += mml_f32(src)[src_offset(idx, src, i)];
}

static void scatter_backward(mml_ctx *ctx, mml_node *n)
{
    mml_tensor *x = n->in[0], *idx = n->in[1], *src = n->in[2];
    const float *g = n->out->grad;
    if (mml_wants_grad(x)) {
        float *gx = mml_grad_buf(ctx, x);
        for (int64_t i = 0; i < x->numel; i++) gx[i] += g[i];
    }
    if (mml_wants_grad(src)) {
        float *gs = mml_grad_buf(ctx, src);
        for (int64_t i = 0; i < idx->numel; i++)
            gs[src_offset(idx, src, i)] += g[target_offset(idx, x->shape, (int)n->iarg[0], i)];
    }
}

static const mml_op_def op_scatter_add = { "scatter_add", scatter_infer, scatter_forward, scatter_backward };

mml_tensor *mml_scatter_add(mml_ctx *ctx, mml_tensor *x, int axis, mml_tensor *idx, mml_tensor *src)
{
    if (!x) return NULL;
    mml_node n = { .op = &op_scatter_add, .in = { x, idx, src }, .n_in = 3,
                   .iarg = { mml_axis(axis, x->ndim), axis } };
    return mml_op_run(ctx, &n);
}
