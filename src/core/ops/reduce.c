/* Reductions along one axis (or all). x is viewed as [outer, len, inner] with
 * len the reduced axis; the output is [outer, inner] in x's dim order. */
#include <math.h>
#include <string.h>

#include "core/op.h"
#include "mml/ops.h"

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_VAR, R_ARGMAX };

typedef struct layout {
    int64_t outer, len, inner;
} layout;

static layout layout_of(const mml_tensor *x, int axis)
{
    layout l = { 1, 1, 1 };
    if (axis == MML_AXIS_ALL) {
        l.len = x->numel;
        return l;
    }
    for (int i = 0; i < x->ndim; i++) {
        if (i < axis) l.outer *= x->shape[i];
        else if (i == axis) l.len = x->shape[i];
        else l.inner *= x->shape[i];
    }
    return l;
}

static mml_status reduce_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    int axis = (int)n->iarg[1], keep = (int)n->iarg[2];
    if (x->dtype != MML_F32) return mml_op_error(n, "input must be float32");
    mml_dtype dt = n->iarg[0] == R_ARGMAX ? MML_I32 : MML_F32;
    if (axis == MML_AXIS_ALL) {
        int64_t ones[MML_MAX_DIMS] = { 1, 1, 1, 1, 1, 1 };
        mml_set_shape(out, dt, keep ? x->ndim : 0, ones);
        if (x->numel == 0 && n->iarg[0] != R_SUM && n->iarg[0] != R_MEAN)
            return mml_op_error(n, "cannot reduce an empty tensor");
        return MML_OK;
    }
    if (axis < 0 || axis >= x->ndim) return mml_op_error(n, "axis %d out of range", (int)n->iarg[3]);
    if (x->shape[axis] == 0 && n->iarg[0] != R_SUM)
        return mml_op_error(n, "cannot reduce an empty axis");
    int64_t shape[MML_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != axis) shape[k++] = x->shape[i];
        else if (keep) shape[k++] = 1;
    }
    mml_set_shape(out, dt, k, shape);
    return MML_OK;
}

/* Sum, mean or variance of every [len, inner] slab, walking its rows in
 * order (an axis in the middle, [B, T, E] pooled over T, is otherwise read
 * with a stride of E per value). acc holds 2 x inner doubles: the running
 * sums (each over k in the same order as a column-wise walk), then the
 * squared deviations. */
static void moments(int kind, layout l, const float *x, float *y, double *acc, int64_t correction)
{
    double *ss = acc + l.inner;
    for (int64_t o = 0; o < l.outer; o++, y += l.inner) {
        const float *slab = x + o * l.len * l.inner;
        for (int64_t i = 0; i < l.inner; i++) acc[i] = ss[i] = 0.0;
        for (int64_t k = 0; k < l.len; k++)
            for (int64_t i = 0; i < l.inner; i++) acc[i] += slab[k * l.inner + i];
        if (kind == R_SUM) {
            for (int64_t i = 0; i < l.inner; i++) y[i] = (float)acc[i];
            continue;
        }
        for (int64_t i = 0; i < l.inner; i++) acc[i] = l.len ? acc[i] / (double)l.len : NAN;
        if (kind == R_MEAN) {
            for (int64_t i = 0; i < l.inner; i++) y[i] = (float)acc[i];
            continue;
        }
        for (int64_t k = 0; k < l.len; k++)
            for (int64_t i = 0; i < l.inner; i++) {
                double d = slab[k * l.inner + i] - acc[i];
                ss[i] += d * d;
            }
        for (int64_t i = 0; i < l.inner; i++) y[i] = (float)(ss[i] / (double)(l.len - correction));
    }
}

static void reduce_forward(mml_ctx *ctx, mml_node *n)
{
    int kind = (int)n->iarg[0];
    layout l = layout_of(n->in[0], (int)n->iarg[1]);
    const float *x = mml_f32(n->in[0]);
    if (kind == R_SUM || kind == R_MEAN || kind == R_VAR) {
        double *acc = mml_arena_alloc(ctx, (size_t)(2 * l.inner) * sizeof(double));
        if (acc) moments(kind, l, x, mml_f32(n->out), acc, n->iarg[4]);
        return;
    }
    int32_t *arg = kind == R_ARGMAX ? mml_i32(n->out) : mml_arena_alloc(ctx, (size_t)(l.outer * l.inner) * 4);
    n->saved = arg;
    float *y = kind == R_ARGMAX ? NULL : mml_f32(n->out);
    if (!arg) return;
    bool want_max = kind != R_MIN;
    for (int64_t o = 0; o < l.outer; o++)
        for (int64_t i = 0; i < l.inner; i++) {
            const float *p = x + o * l.len * l.inner + i;
            int64_t out_i = o * l.inner + i, best = 0;
            for (int64_t k = 1; k < l.len; k++) {
                float v = p[k * l.inner], b = p[best * l.inner];
                if (isnan(b)) break; /* NaN propagates, as torch */
                if (isnan(v) || (want_max ? v > b : v < b)) best = k;
            }
            arg[out_i] = (int32_t)best;
            if (y) y[out_i] = p[best * l.inner];
        }
}

static void reduce_backward(mml_ctx *ctx, mml_node *n)
{
    mml_tensor *xt = n->in[0];
    if (!mml_wants_grad(xt)) return;
    int kind = (int)n->iarg[0];
    bool all = n->iarg[1] == MML_AXIS_ALL;
    layout l = layout_of(xt, (int)n->iarg[1]);
    const float *x = mml_f32(xt), *g = n->out->grad, *y = mml_f32(n->out);
    float *gx = mml_grad_buf(ctx, xt);
    if (!gx) return;
    const int32_t *arg = n->saved;
    if (kind == R_SUM || kind == R_MEAN) { /* row by row, as forward reads */
        for (int64_t o = 0; o < l.outer; o++, g += l.inner)
            for (int64_t k = 0; k < l.len; k++, gx += l.inner)
                for (int64_t i = 0; i < l.inner; i++) gx[i] += kind == R_MEAN ? g[i] / (float)l.len : g[i];
        return;
    }
    for (int64_t o = 0; o < l.outer; o++)
        for (int64_t i = 0; i < l.inner; i++) {
            int64_t out_i = o * l.inner + i, base = o * l.len * l.inner + i;
            float gi = g[out_i];
            switch (kind) {
            case R_VAR: {
                double mean = 0.0;
                for (int64_t k = 0; k < l.len; k++) mean += x[base + k * l.inner];
                mean /= (double)l.len;
                float scale = 2.0f * gi / (float)(l.len - n->iarg[4]);
                for (int64_t k = 0; k < l.len; k++)
                    gx[base + k * l.inner] += scale * (float)(x[base + k * l.inner] - mean);
                break;
            }
            default:
                if (!all) {
                    gx[base + (int64_t)arg[out_i] * l.inner] += gi;
                    break;
                }
                /* Full reduction: torch spreads the gradient evenly over ties. */
                int64_t ties = 0;
                for (int64_t k = 0; k < l.len; k++) ties += x[k] == y[0];
                for (int64_t k = 0; k < l.len; k++)
                    if (x[k] == y[0]) gx[k] += gi / (float)ties;
            }
        }
}

static const mml_op_def op_sum = { "sum", reduce_infer, reduce_forward, reduce_backward };
static const mml_op_def op_mean = { "mean", reduce_infer, reduce_forward, reduce_backward };
static const mml_op_def op_max = { "max", reduce_infer, reduce_forward, reduce_backward };
static const mml_op_def op_min = { "min", reduce_infer, reduce_forward, reduce_backward };
static const mml_op_def op_var = { "var", reduce_infer, reduce_forward, reduce_backward };
static const mml_op_def op_argmax = { "argmax", reduce_infer, reduce_forward, NULL };

static mml_tensor *reduce(mml_ctx *ctx, const mml_op_def *op, int kind, mml_tensor *x, int axis,
                          bool keepdim, int correction)
{
    if (!x) return NULL;
    int ax = axis == MML_AXIS_ALL ? MML_AXIS_ALL : mml_axis(axis, x->ndim);
    if (ax < 0) ax = -2; /* reported by infer with the caller's axis */
    mml_node n = { .op = op, .in = { x }, .n_in = 1, .iarg = { kind, ax, keepdim, axis, correction } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_sum(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim) { return reduce(ctx, &op_sum, R_SUM, x, axis, keepdim, 0); }
mml_tensor *mml_mean(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim) { return reduce(ctx, &op_mean, R_MEAN, x, axis, keepdim, 0); }
mml_tensor *mml_max(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim) { return reduce(ctx, &op_max, R_MAX, x, axis, keepdim, 0); }
mml_tensor *mml_min(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim) { return reduce(ctx, &op_min, R_MIN, x, axis, keepdim, 0); }
mml_tensor *mml_argmax(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim) { return reduce(ctx, &op_argmax, R_ARGMAX, x, axis, keepdim, 0); }

mml_tensor *mml_var(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim, int correction)
{
    return reduce(ctx, &op_var, R_VAR, x, axis, keepdim, correction);
}
