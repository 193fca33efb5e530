/* L2 normalisation, cosine similarity (composed from primitive ops, so their
 * gradients come for free and match torch's formulas), and dropout. */
#include "core/op.h"
#include "mml/ops.h"

mml_tensor *mml_l2_normalize(mml_ctx *ctx, mml_tensor *x, int axis, float eps)
{
    /* F.normalize: x / max(||x||, eps) */
    mml_tensor *norm = mml_sqrt(ctx, mml_sum(ctx, mml_mul(ctx, x, x), axis, true));
    return mml_div(ctx, x, mml_clamp(ctx, norm, eps, 3.4e38f));
}

mml_tensor *mml_cosine_similarity(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, int axis, float eps)
{
    /* torch 1.13: sum(a*b) / sqrt(clamp(|a|^2 * |b|^2, eps^2)) */
    mml_tensor *dot = mml_sum(ctx, mml_mul(ctx, a, b), axis, false);
    mml_tensor *na = mml_sum(ctx, mml_mul(ctx, a, a), axis, false);
    mml_tensor *nb = mml_sum(ctx, mml_mul(ctx, b, b), axis, false);
    mml_tensor *den = mml_sqrt(ctx, mml_clamp(ctx, mml_mul(ctx, na, nb), eps * eps, 3.4e38f));
    return mml_div(ctx, dot, den);
}

static mml_status dropout_infer(const mml_node *n, mml_tensor *out)
{
    if (n->in[0]->dtype != MML_F32) return mml_op_error(n, "input must be float32");
    if (!(n->farg[0] >= 0.0f && n->farg[0] < 1.0f)) return mml_op_error(n, "p must be in [0, 1)");
    mml_set_shape(out, MML_F32, n->in[0]->ndim, n->in[0]->shape);
    return MML_OK;
}

static void dropout_forward(mml_ctx *ctx, mml_node *n)
{
    float p = n->farg[0], scale = 1.0f / (1.0f - p);
    int64_t N = n->out->numel;
    float *mask = mml_arena_alloc(ctx, (size_t)N * sizeof(float));
    n->saved = mask;
    if (!mask) return;
    for (int64_t i = 0; i < N; i++) {
        mask[i] = mml_rng_uniform(n->ptr) < p ? 0.0f : scale;
        mml_f32(n->out)[i] = mml_f32(n->in[0])[i] * mask[i];
    }
}

static void dropout_backward(mml_ctx *ctx, mml_node *n)
{
    if (!mml_wants_grad(n->in[0])) return;
    float *gx = mml_grad_buf(ctx, n->in[0]);
    const float *mask = n->saved;
    for (int64_t i = 0; i < n->out->numel; i++) gx[i] += n->out->grad[i] * mask[i];
}

static const mml_op_def op_dropout = { "dropout", dropout_infer, dropout_forward, dropout_backward };

mml_tensor *mml_dropout(mml_ctx *ctx, mml_tensor *x, float p, mml_rng *rng)
{
    if (!x || !mml_training(ctx) || p == 0.0f) return x;
    mml_node n = { .op = &op_dropout, .in = { x }, .n_in = 1, .farg = { p }, .ptr = rng };
    return mml_op_run(ctx, &n);
}
