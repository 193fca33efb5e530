/* Losses. Cross-entropy is one fused op (stable log-softmax, weights, label
 * smoothing, ignore index); the others are composed of primitive ops, whose
 * gradients are then exactly those of torch's formulas. */
#include <math.h>

#include "core/op.h"
#include "mml/loss.h"
#include "mml/ops.h"

mml_ce_options mml_ce_defaults(void) { return (mml_ce_options){ NULL, 0.0f, -100 }; }

static int64_t target_at(const mml_tensor *t, int64_t i)
{
    return t->dtype == MML_I64 ? mml_i64(t)[i] : mml_i32(t)[i];
}

static mml_status ce_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0], *t = n->in[1], *w = n->in[2];
    if (x->dtype != MML_F32 || x->ndim != 2) return mml_op_error(n, "logits must be float32 [N, C]");
    if ((t->dtype != MML_I32 && t->dtype != MML_I64) || t->ndim != 1 || t->shape[0] != x->shape[0])
        return mml_op_error(n, "target must be [N] class indices");
    if (w && (w->ndim != 1 || w->shape[0] != x->shape[1])) return mml_op_error(n, "class weights must be [C]");
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t c = target_at(t, i);
        if (c != n->iarg[0] && (c < 0 || c >= x->shape[1]))
            return mml_op_error(n, "target %lld out of range [0, %lld)", (long long)c, (long long)x->shape[1]);
    }
    mml_set_shape(out, MML_F32, 0, NULL);
    return MML_OK;
}

/* The per-row loss with smoothing eps and weights w (torch 1.13):
 *   l_i = w[y] * ((1-eps) * -logp[y]) + eps/C * sum_c w[c] * -logp[c],
 * mean = sum_i l_i / sum_i w[y_i] over non-ignored rows. */
static void ce_forward(mml_ctx *ctx, mml_node *n)
{
    const mml_tensor *x = n->in[0], *t = n->in[1], *wt = n->in[2];
    int64_t N = x->shape[0], C = x->shape[1];
    float eps = n->farg[0];
    float *logp = mml_arena_alloc(ctx, (size_t)(N * C) * sizeof(float) + 4);
    n->saved = logp;
    if (!logp) return;
    double total = 0.0, wsum = 0.0;
    for (int64_t i = 0; i < N; i++) {
        const float *row = mml_f32(x) + i * C;
        float *lp = logp + i * C, m = -INFINITY;
        for (int64_t c = 0; c < C; c++) m = row[c] > m ? row[c] : m;
        double s = 0.0;
        for (int64_t c = 0; c < C; c++) s += exp((double)row[c] - m);
        float lse = m + (float)log(s);
        for (int64_t c = 0; c < C; c++) lp[c] = row[c] - lse;
        int64_t y = target_at(t, i);
        if (y == n->iarg[0]) continue;
        double wy = wt ? mml_f32(wt)[y] : 1.0, smooth = 0.0;
        for (int64_t c = 0; eps > 0.0f && c < C; c++) smooth += (wt ? mml_f32(wt)[c] : 1.0) * -lp[c];
        total += wy * (1.0 - eps) * -lp[y] + eps / (double)C * smooth;
        wsum += wy;
    }
    n->farg[1] = (float)wsum;
    mml_f32(n->out)[0] = wsum > 0 ? (float)(total / wsum) : NAN;
}

static void ce_backward(mml_ctx *ctx, mml_node *n)
{
    mml_tensor *x = n->in[0];
    if (!mml_wants_grad(x)) return;
    const mml_tensor *t = n->in[1], *wt = n->in[2];
    int64_t N = x->shape[0], C = x->shape[1];
    float eps = n->farg[0], scale = n->out->grad[0] / n->farg[1];
    const float *logp = n->saved;
    float *gx = mml_grad_buf(ctx, x);
    for (int64_t i = 0; i < N; i++) {
        int64_t y = target_at(t, i);
        if (y == n->iarg[0]) continue;
        float wy = wt ? mml_f32(wt)[y] : 1.0f, wsmooth = 0.0f;
        for (int64_t c = 0; eps > 0.0f && c < C; c++) wsmooth += wt ? mml_f32(wt)[c] : 1.0f;
        /* d l_i / d z_c = p_c * (w_y (1-eps) + eps/C sum_k w_k) - (w_y (1-eps) [c==y] + eps/C w_c) */
        float mass = wy * (1.0f - eps) + eps / (float)C * wsmooth;
        for (int64_t c = 0; c < C; c++) {
            float p = expf(logp[i * C + c]);
            float direct = (c == y ? wy * (1.0f - eps) : 0.0f) + eps / (float)C * (wt ? mml_f32(wt)[c] : 1.0f);
            gx[i * C + c] += scale * (p * mass - direct);
        }
    }
}

static const mml_op_def op_cross_entropy = { "cross_entropy", ce_infer, ce_forward, ce_backward, .optional_inputs = 4 };

mml_tensor *mml_loss_cross_entropy(mml_ctx *ctx, mml_tensor *logits, mml_tensor *target, const mml_ce_options *opt)
{
    mml_ce_options d = mml_ce_defaults();
    if (!opt) opt = &d;
    if (!(opt->label_smoothing >= 0.0f && opt->label_smoothing < 1.0f)) {
        mml_error(MML_ERR_ARG, "cross_entropy: label smoothing must be in [0, 1)");
        return NULL;
    }
    mml_node n = { .op = &op_cross_entropy, .in = { logits, target, (mml_tensor *)opt->class_weights }, .n_in = 3,
                   .iarg = { opt->ignore_index }, .farg = { opt->label_smoothing } };
    return mml_op_run(ctx, &n);
}

static mml_tensor *mean_all(mml_ctx *ctx, mml_tensor *x) { return mml_mean(ctx, x, MML_AXIS_ALL, false); }

mml_tensor *mml_loss_mse(mml_ctx *ctx, mml_tensor *input, mml_tensor *target)
{
    mml_tensor *d = mml_sub(ctx, input, target);
    return mean_all(ctx, mml_mul(ctx, d, d));
}

mml_tensor *mml_loss_l1(mml_ctx *ctx, mml_tensor *input, mml_tensor *target)
{
    return mean_all(ctx, mml_abs(ctx, mml_sub(ctx, input, target)));
}

mml_tensor *mml_loss_smooth_l1(mml_ctx *ctx, mml_tensor *input, mml_tensor *target, float beta)
{
    /* 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere; with
     * q = min(|d|, beta): q^2 / (2 beta) + (|d| - q) gives both pieces. */
    mml_tensor *a = mml_abs(ctx, mml_sub(ctx, input, target));
    mml_tensor *q = mml_clamp(ctx, a, 0.0f, beta);
    mml_tensor *quad = mml_mul_scalar(ctx, mml_mul(ctx, q, q), 0.5f / beta);
    return mean_all(ctx, mml_add(ctx, quad, mml_sub(ctx, a, q)));
}

mml_tensor *mml_loss_bce_with_logits(mml_ctx *ctx, mml_tensor *z, mml_tensor *y)
{
    /* max(z, 0) - z*y + log(1 + exp(-|z|)), the stable form torch uses */
    mml_tensor *soft = mml_log(ctx, mml_add_scalar(ctx, mml_exp(ctx, mml_neg(ctx, mml_abs(ctx, z))), 1.0f));
    return mean_all(ctx, mml_add(ctx, mml_sub(ctx, mml_relu(ctx, z), mml_mul(ctx, z, y)), soft));
}

mml_tensor *mml_loss_kl_div(mml_ctx *ctx, mml_tensor *log_input, mml_tensor *target)
{
    /* batchmean: sum(target * (log target - log_input)) / N; 0 log 0 = 0 */
    if (!log_input || !target) return NULL;
    mml_tensor *safe = mml_clamp(ctx, target, 1e-30f, 3.4e38f);
    mml_tensor *terms = mml_mul(ctx, target, mml_sub(ctx, mml_log(ctx, safe), log_input));
    return mml_mul_scalar(ctx, mml_sum(ctx, terms, MML_AXIS_ALL, false), 1.0f / (float)log_input->shape[0]);
}

mml_tensor *mml_loss_cosine_embedding(mml_ctx *ctx, mml_tensor *x1, mml_tensor *x2, mml_tensor *y, float margin)
{
    /* y=+1: 1 - cos; y=-1: max(0, cos - margin); pos = (1+y)/2 selects */
    mml_tensor *cos = mml_cosine_similarity(ctx, x1, x2, -1, 1e-8f);
    mml_tensor *pos = mml_mul_scalar(ctx, mml_add_scalar(ctx, y, 1.0f), 0.5f);
    mml_tensor *neg = mml_add_scalar(ctx, mml_neg(ctx, pos), 1.0f);
    mml_tensor *lp = mml_mul(ctx, pos, mml_add_scalar(ctx, mml_neg(ctx, cos), 1.0f));
    mml_tensor *ln = mml_mul(ctx, neg, mml_relu(ctx, mml_add_scalar(ctx, cos, -margin)));
    return mean_all(ctx, mml_add(ctx, lp, ln));
}

mml_tensor *mml_loss_margin_ranking(mml_ctx *ctx, mml_tensor *x1, mml_tensor *x2, mml_tensor *y, float margin)
{
    mml_tensor *d = mml_mul(ctx, mml_neg(ctx, y), mml_sub(ctx, x1, x2));
    return mean_all(ctx, mml_relu(ctx, mml_add_scalar(ctx, d, margin)));
}

/* Identity mask [n, n] (1 on the diagonal). */
static mml_tensor *eye(mml_ctx *ctx, int64_t n)
{
    mml_tensor *m = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ n, n });
    for (int64_t i = 0; m && i < n; i++) mml_f32(m)[i * n + i] = 1.0f;
    return m;
}

/* Per-anchor hinge costs of one direction: rows of s are anchors. */
static mml_tensor *hinge_direction(mml_ctx *ctx, mml_tensor *s, mml_tensor *diag_col, mml_tensor *mask, float margin,
                                   bool hardest)
{
    mml_tensor *cost = mml_relu(ctx, mml_add_scalar(ctx, mml_sub(ctx, s, diag_col), margin));
    cost = mml_masked_fill(ctx, cost, mask, 0.0f);
    return hardest ? mml_max(ctx, cost, 1, false) : mml_sum(ctx, cost, 1, false);
}

mml_tensor *mml_loss_hinge_ranking(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, float margin, bool hardest)
{
    if (!a || !b) return NULL;
    int64_t n = a->shape[0];
    mml_tensor *s = mml_matmul(ctx, a, b, false, true), *mask = eye(ctx, n);
    mml_tensor *diag = mml_sum(ctx, mml_mul(ctx, s, mask), 1, true); /* s_ii as a column [n, 1] */
    mml_tensor *rows = hinge_direction(ctx, s, diag, mask, margin, hardest);
    mml_tensor *cols = hinge_direction(ctx, mml_transpose(ctx, s, 0, 1), diag, mask, margin, hardest);
    return mean_all(ctx, mml_add(ctx, rows, cols));
}

mml_tensor *mml_loss_info_nce(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, mml_tensor *log_scale)
{
    if (!a || !b || !log_scale) return NULL;
    int64_t n = a->shape[0];
    mml_tensor *scale = mml_exp(ctx, mml_clamp(ctx, log_scale, -3.4e38f, 4.605170186f)); /* ln 100 */
    mml_tensor *logits = mml_mul(ctx, mml_matmul(ctx, mml_l2_normalize(ctx, a, -1, 1e-12f),
                                                 mml_l2_normalize(ctx, b, -1, 1e-12f), false, true), scale);
    mml_tensor *target = mml_new(ctx, MML_I32, 1, &n);
    for (int64_t i = 0; target && i < n; i++) mml_i32(target)[i] = (int32_t)i;
    mml_tensor *l_rows = mml_loss_cross_entropy(ctx, logits, target, NULL);
    mml_tensor *l_cols = mml_loss_cross_entropy(ctx, mml_transpose(ctx, logits, 0, 1), target, NULL);
    return mml_mul_scalar(ctx, mml_add(ctx, l_rows, l_cols), 0.5f);
}

/* Supcon's weight of log p(k | i): 1 / (|P(i)| * 2N) for the positives k of
 * anchor i, else 0. Rows 0..N-1 are a's anchors, N..2N-1 b's. Every anchor has
 * its pair as a positive, so the mean is over all 2N anchors. */
static mml_tensor *supcon_weights(mml_ctx *ctx, const mml_tensor *labels)
{
    int64_t n = labels->shape[0], m = 2 * n;
    mml_tensor *w = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ m, m });
    for (int64_t i = 0; w && i < m; i++) {
        float *row = mml_f32(w) + i * m;
        int64_t label = target_at(labels, i % n), n_pos = 0;
        for (int64_t k = 0; k < m; k++) n_pos += row[k] = k != i && target_at(labels, k % n) == label;
        for (int64_t k = 0; k < m; k++) row[k] /= (float)(n_pos * m);
    }
    return w;
}

mml_tensor *mml_loss_supcon(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, mml_tensor *labels, float temperature)
{
    if (!a || !b || !labels) return NULL;
    if (a->dtype != MML_F32 || b->dtype != MML_F32 || a->ndim != 2 || b->ndim != 2 || a->shape[0] != b->shape[0] ||
        a->shape[1] != b->shape[1]) {
        mml_error(MML_ERR_SHAPE, "supcon: a and b must be float32 [N, D] of the same shape");
        return NULL;
    }
    if ((labels->dtype != MML_I32 && labels->dtype != MML_I64) || labels->ndim != 1 || labels->shape[0] != a->shape[0]) {
        mml_error(MML_ERR_SHAPE, "supcon: labels must be int32 or int64 [%lld], one per pair", (long long)a->shape[0]);
        return NULL;
    }
    if (!(temperature > 0.0f)) {
        mml_error(MML_ERR_ARG, "supcon: temperature must be positive (got %g)", (double)temperature);
        return NULL;
    }
    mml_tensor *z = mml_l2_normalize(ctx, mml_concat(ctx, (mml_tensor *[]){ a, b }, 2, 0), -1, 1e-12f);
    mml_tensor *self = eye(ctx, 2 * a->shape[0]);
    mml_tensor *sim = mml_mul_scalar(ctx, mml_matmul(ctx, z, z, false, true), 1.0f / temperature);
    /* the denominator leaves out k == i; that -inf is then zeroed, as 0 * -inf would be NaN */
    mml_tensor *logp = mml_log_softmax(ctx, mml_masked_fill(ctx, sim, self, -INFINITY), 1);
    logp = mml_masked_fill(ctx, logp, self, 0.0f);
    return mml_neg(ctx, mml_sum(ctx, mml_mul(ctx, logp, supcon_weights(ctx, labels)), MML_AXIS_ALL, false));
}
