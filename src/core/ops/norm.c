/* Layer norm (over the last dim) and batch norm ([N, C, *], per channel).
 * Both normalise groups of values and have the backward
 *   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
 * dxhat = dy * weight, computed per group from the saved mean and rstd:
 * layer norm's groups are contiguous rows, split over the threads; batch
 * norm's are channels strided over the batch. */
#include <math.h>
#include <string.h>

#include "core/op.h"
#include "mml/ops.h"
#include "mml/threads.h"

typedef struct stats {
    float *mean, *rstd;
} stats;

/* Batch norm's channel k: its count = N x S values, the i-th at elem(g, k, i). */
typedef struct grouping {
    int64_t groups, count, N, C, S;
} grouping;

static int64_t elem(const grouping *g, int64_t k, int64_t i)
{
    int64_t n = i / g->S, s = i % g->S;
    return (n * g->C + k) * g->S + s;
}

static void group_stats(const grouping *g, const float *x, float eps, stats *st, float *var_out)
{
    for (int64_t k = 0; k < g->groups; k++) {
        double sum = 0.0, sq = 0.0;
        for (int64_t i = 0; i < g->count; i++) sum += x[elem(g, k, i)];
        double mean = sum / (double)g->count;
        for (int64_t i = 0; i < g->count; i++) {
            double d = x[elem(g, k, i)] - mean;
            sq += d * d;
        }
        double var = sq / (double)g->count;
        st->mean[k] = (float)mean;
        st->rstd[k] = (float)(1.0 / sqrt(var + eps));
        if (var_out) var_out[k] = (float)var;
    }
}

static void normalize(const grouping *g, const float *x, const stats *st, const float *w, const float *b, float *y)
{
    for (int64_t k = 0; k < g->groups; k++)
        for (int64_t i = 0; i < g->count; i++) {
            int64_t at = elem(g, k, i);
            float v = (x[at] - st->mean[k]) * st->rstd[k];
            y[at] = w ? v * w[k] + (b ? b[k] : 0.0f) : v + (b ? b[k] : 0.0f);
        }
}

static void norm_backward_groups(const grouping *g, const float *x, const float *dy, const stats *st,
                                 const float *w, float *dx, float *dw, float *db, bool batch_stats)
{
    for (int64_t k = 0; k < g->groups; k++) {
        double s1 = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < g->count; i++) {
            int64_t at = elem(g, k, i);
            float xhat = (x[at] - st->mean[k]) * st->rstd[k], dxhat = dy[at] * (w ? w[k] : 1.0f);
            s1 += dxhat;
            s2 += dxhat * xhat;
            if (dw) dw[k] += dy[at] * xhat;
            if (db) db[k] += dy[at];
        }
        if (!dx) continue;
        float m1 = (float)(s1 / (double)g->count), m2 = (float)(s2 / (double)g->count);
        for (int64_t i = 0; i < g->count; i++) {
            int64_t at = elem(g, k, i);
            float xhat = (x[at] - st->mean[k]) * st->rstd[k], dxhat = dy[at] * (w ? w[k] : 1.0f);
            dx[at] += batch_stats ? st->rstd[k] * (dxhat - m1 - xhat * m2) : st->rstd[k] * dxhat;
        }
    }
}

/* ---- layer norm: in = x, weight?, bias?; farg[0] = eps ---- */

static int64_t ln_dim(const mml_tensor *x) { return x->ndim ? x->shape[x->ndim - 1] : 1; }

static mml_status ln_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    if (x->dtype != MML_F32 || x->ndim < 1) return mml_op_error(n, "input must be float32 [..., D]");
    int64_t D = x->shape[x->ndim - 1];
    for (int i = 1; i < 3; i++)
        if (n->in[i] && (n->in[i]->ndim != 1 || n->in[i]->shape[0] != D))
            return mml_op_error(n, "weight and bias must be [%lld]", (long long)D);
    mml_set_shape(out, MML_F32, x->ndim, x->shape);
    return MML_OK;
}

/* Rows over the threads: forward writes its rows; backward its rows of dx
 * and, per thread, partial weight and bias gradients added in thread order
 * after (one thread: exactly the serial sums). */
typedef struct ln_job {
    const mml_node *n;
    int64_t D;
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw, *db; /* dw, db: D floats per thread */
    const stats *st;
} ln_job;

#define LN_GRAIN_VALUES 16384

static int64_t ln_grain(int64_t D) { return 1 + LN_GRAIN_VALUES / (D + 1); }

/* Layer norm's rows are contiguous: float sums over 16 lanes (two vector
 * chains) instead of batch norm's strided double loop. */
#define LN_LANES 16

static float lane_sum(const float *acc)
{
    float s = 0.0f;
    for (int i = 0; i < LN_LANES; i++) s += acc[i];
    return s;
}

static void ln_row_forward(const ln_job *j, int64_t r)
{
    const float *restrict x = j->x + r * j->D;
    float *restrict y = j->y + r * j->D;
    int64_t D = j->D, full = D / LN_LANES * LN_LANES;
    float acc[LN_LANES] = { 0 }, sq[LN_LANES] = { 0 };
    for (int64_t i = 0; i < full; i += LN_LANES)
        for (int k = 0; k < LN_LANES; k++) acc[k] += x[i + k];
    float sum = lane_sum(acc);
    for (int64_t i = full; i < D; i++) sum += x[i];
    float mean = sum / (float)D;
    for (int64_t i = 0; i < full; i += LN_LANES)
        for (int k = 0; k < LN_LANES; k++) sq[k] += (x[i + k] - mean) * (x[i + k] - mean);
    float var = lane_sum(sq);
    for (int64_t i = full; i < D; i++) var += (x[i] - mean) * (x[i] - mean);
    float rstd = 1.0f / sqrtf(var / (float)D + j->n->farg[0]);
    j->st->mean[r] = mean;
    j->st->rstd[r] = rstd;
    for (int64_t i = 0; i < D; i++) {
        float v = (x[i] - mean) * rstd;
        y[i] = (j->w ? v * j->w[i] : v) + (j->b ? j->b[i] : 0.0f);
    }
}

/* dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * w. */
static void ln_row_backward(const ln_job *j, int64_t r, float *restrict dw, float *restrict db)
{
    int64_t D = j->D;
    const float *restrict x = j->x + r * D, *restrict dy = j->dy + r * D, *w = j->w;
    float mean = j->st->mean[r], rstd = j->st->rstd[r], s1 = 0.0f, s2 = 0.0f;
    float a1[LN_LANES] = { 0 }, a2[LN_LANES] = { 0 };
    int64_t full = D / LN_LANES * LN_LANES;
    for (int64_t i = 0; i < full; i += LN_LANES)
        for (int k = 0; k < LN_LANES; k++) {
            float xhat = (x[i + k] - mean) * rstd, dxhat = w ? dy[i + k] * w[i + k] : dy[i + k];
            a1[k] += dxhat;
            a2[k] += dxhat * xhat;
        }
    s1 = lane_sum(a1);
    s2 = lane_sum(a2);
    for (int64_t i = full; i < D; i++) {
        float xhat = (x[i] - mean) * rstd, dxhat = w ? dy[i] * w[i] : dy[i];
        s1 += dxhat;
        s2 += dxhat * xhat;
    }
    float m1 = s1 / (float)D, m2 = s2 / (float)D;
    float *restrict dx = j->dx ? j->dx + r * D : NULL;
    for (int64_t i = 0; i < D; i++) {
        float xhat = (x[i] - mean) * rstd, dxhat = w ? dy[i] * w[i] : dy[i];
        if (dx) dx[i] += rstd * (dxhat - m1 - xhat * m2);
        if (dw) dw[i] += dy[i] * xhat;
        if (db) db[i] += dy[i];
    }
}

static void ln_forward_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    for (int64_t r = lo; r < hi; r++) ln_row_forward(arg, r);
}

static void ln_backward_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    const ln_job *j = arg;
    for (int64_t r = lo; r < hi; r++)
        ln_row_backward(j, r, j->dw ? j->dw + thread * j->D : NULL, j->db ? j->db + thread * j->D : NULL);
}

static ln_job ln_job_of(const mml_node *n)
{
    const mml_tensor *x = n->in[0];
    return (ln_job){ .n = n, .D = ln_dim(x), .x = mml_f32(x), .w = n->in[1] ? mml_f32(n->in[1]) : NULL,
                     .b = n->in[2] ? mml_f32(n->in[2]) : NULL, .st = n->saved };
}

static int64_t ln_rows_of(const mml_tensor *x)
{
    int64_t D = ln_dim(x);
    return D ? x->numel / D : 0;
}

static void ln_forward(mml_ctx *ctx, mml_node *n)
{
    int64_t rows = ln_rows_of(n->in[0]);
    stats *st = mml_arena_alloc(ctx, sizeof *st);
    if (!st) return;
    st->mean = mml_arena_alloc(ctx, (size_t)rows * sizeof(float) + 4);
    st->rstd = mml_arena_alloc(ctx, (size_t)rows * sizeof(float) + 4);
    if (!st->mean || !st->rstd) return;
    n->saved = st;
    ln_job j = ln_job_of(n);
    j.y = mml_f32(n->out);
    mml_parallel_for(rows, ln_grain(j.D), ln_forward_rows, &j);
}

static void norm_backward(mml_ctx *ctx, mml_node *n, const grouping *g, bool batch_stats)
{
    mml_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    norm_backward_groups(g, mml_f32(x), n->out->grad, n->saved, w ? mml_f32(w) : NULL,
                         mml_wants_grad(x) ? mml_grad_buf(ctx, x) : NULL, mml_wants_grad(w) ? mml_grad_buf(ctx, w) : NULL,
                         mml_wants_grad(b) ? mml_grad_buf(ctx, b) : NULL, batch_stats);
}

static void ln_backward(mml_ctx *ctx, mml_node *n)
{
    mml_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    ln_job j = ln_job_of(n);
    j.dy = n->out->grad;
    j.dx = mml_wants_grad(x) ? mml_grad_buf(ctx, x) : NULL;
    if (mml_wants_grad(w) && !(j.dw = mml_partials_new(ctx, j.D))) return;
    if (mml_wants_grad(b) && !(j.db = mml_partials_new(ctx, j.D))) return;
    mml_parallel_for(ln_rows_of(x), ln_grain(j.D), ln_backward_rows, &j);
    if (j.dw) mml_partials_add(mml_grad_buf(ctx, w), j.dw, j.D);
    if (j.db) mml_partials_add(mml_grad_buf(ctx, b), j.db, j.D);
}

static const mml_op_def op_layer_norm = { "layer_norm", ln_infer, ln_forward, ln_backward, .optional_inputs = 6 };

mml_tensor *mml_layer_norm(mml_ctx *ctx, mml_tensor *x, mml_tensor *weight, mml_tensor *bias, float eps)
{
    mml_node n = { .op = &op_layer_norm, .in = { x, weight, bias }, .n_in = 3, .farg = { eps } };
    return mml_op_run(ctx, &n);
}

/* ---- batch norm: in = x, weight?, bias?, running_mean?, running_var?;
 * farg = momentum, eps; iarg[0] = training ---- */

static grouping bn_grouping(const mml_tensor *x)
{
    int64_t S = 1;
    for (int i = 2; i < x->ndim; i++) S *= x->shape[i];
    return (grouping){ x->shape[1], x->shape[0] * S, x->shape[0], x->shape[1], S };
}

static mml_status bn_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    if (x->dtype != MML_F32 || x->ndim < 2) return mml_op_error(n, "input must be float32 [N, C, *]");
    for (int i = 1; i < 5; i++)
        if (n->in[i] && (n->in[i]->ndim != 1 || n->in[i]->shape[0] != x->shape[1]))
            return mml_op_error(n, "weight, bias and running statistics must be [%lld]", (long long)x->shape[1]);
    grouping g = bn_grouping(x);
    if (n->iarg[0] && g.count < 2) return mml_op_error(n, "training needs more than one value per channel");
    if (!n->iarg[0] && (!n->in[3] || !n->in[4])) return mml_op_error(n, "evaluation needs running statistics");
    mml_set_shape(out, MML_F32, x->ndim, x->shape);
    return MML_OK;
}

static void bn_forward(mml_ctx *ctx, mml_node *n)
{
    grouping g = bn_grouping(n->in[0]);
    mml_tensor *rm = n->in[3], *rv = n->in[4];
    float mom = n->farg[0], eps = n->farg[1];
    stats *st = mml_arena_alloc(ctx, sizeof *st);
    float *var = mml_arena_alloc(ctx, (size_t)g.groups * sizeof(float));
    if (!st || !var) return;
    st->mean = mml_arena_alloc(ctx, (size_t)g.groups * sizeof(float));
    st->rstd = mml_arena_alloc(ctx, (size_t)g.groups * sizeof(float));
    if (!st->mean || !st->rstd) return;
    n->saved = st;
    if (n->iarg[0]) {
        group_stats(&g, mml_f32(n->in[0]), eps, st, var);
        for (int64_t c = 0; rm && rv && c < g.groups; c++) {
            mml_f32(rm)[c] = (1.0f - mom) * mml_f32(rm)[c] + mom * st->mean[c];
            mml_f32(rv)[c] = (1.0f - mom) * mml_f32(rv)[c] + mom * var[c] * (float)g.count / (float)(g.count - 1);
        }
    } else
        for (int64_t c = 0; c < g.groups; c++) {
            st->mean[c] = mml_f32(rm)[c];
            st->rstd[c] = 1.0f / sqrtf(mml_f32(rv)[c] + eps);
        }
    normalize(&g, mml_f32(n->in[0]), st, n->in[1] ? mml_f32(n->in[1]) : NULL, n->in[2] ? mml_f32(n->in[2]) : NULL,
              mml_f32(n->out));
}

static void bn_backward(mml_ctx *ctx, mml_node *n)
{
    grouping g = bn_grouping(n->in[0]);
    norm_backward(ctx, n, &g, n->iarg[0] != 0);
}

static const mml_op_def op_batch_norm = { "batch_norm", bn_infer, bn_forward, bn_backward, .optional_inputs = 30 };

mml_tensor *mml_batch_norm(mml_ctx *ctx, mml_tensor *x, mml_tensor *weight, mml_tensor *bias, mml_tensor *running_mean,
                           mml_tensor *running_var, float momentum, float eps)
{
    mml_node n = { .op = &op_batch_norm, .in = { x, weight, bias, running_mean, running_var }, .n_in = 5,
                   .iarg = { mml_training(ctx) }, .farg = { momentum, eps } };
    return mml_op_run(ctx, &n);
}
