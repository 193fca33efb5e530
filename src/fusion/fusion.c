/* Fusion methods over any number of modalities, each with a presence mask. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/fusion.h"
#include "mml/nn.h"
#include "mml/ops.h"

#define MAX_M MML_MOD_COUNT
#define MASKED (-1e9f) /* not -inf: a sample missing every modality must not give NaN */

typedef enum { F_EARLY, F_CONCAT, F_LATE, F_TENSOR, F_LOWRANK, F_ATTENTION, F_CROSSATTN, F_GMU, F_COUNT } fusion_type;
static const char *const g_types[F_COUNT + 1] = { "early", "concat", "late", "tensor", "lowrank",
                                                  "attention", "crossattn", "gmu", NULL };
typedef enum { FILL_ZERO, FILL_MEAN, FILL_LEARNED, FILL_COUNT } fill_kind;
static const char *const g_fills[FILL_COUNT + 1] = { "zero", "mean", "learned", NULL };
typedef enum { LATE_MEAN, LATE_LEARNED, LATE_POE, LATE_COUNT } late_kind;
static const char *const g_late[LATE_COUNT + 1] = { "mean", "learned", "poe", NULL };

struct mml_fusion {
    fusion_type type;
    fill_kind fill;
    late_kind combine;
    mml_fusion_shape s;
    int64_t out, rank, d_model;
    mml_tensor *placeholder[MAX_M]; /* learned fill */
    mml_tensor *running[MAX_M];     /* mean fill (buffer) */
    mml_nn_linear proj[MAX_M];      /* late heads, attention/gmu projections, lowrank factors */
    mml_nn_linear score;            /* attention scorer, gmu gates */
    mml_tensor *late_w, *rank_w, *rank_b;
    mml_nn_mha cross[MAX_M][MAX_M];
    mml_nn_layer_norm cross_norm[MAX_M][MAX_M];
    mml_nn_linear seq_proj[MAX_M];
    mml_rng rng;
};

const char *mml_fusion_type(const mml_fusion *f) { return g_types[f->type]; }
bool mml_fusion_reads_seq(const mml_fusion *f) { return f->type == F_CROSSATTN; }
bool mml_fusion_outputs_logits(const mml_fusion *f) { return f->type == F_LATE; }
void mml_fusion_free(mml_fusion *f) { mml_free(f); }

int64_t mml_fusion_dim(const mml_fusion *f)
{
    int64_t d = 0, p = 1;
    switch (f->type) {
    case F_EARLY:
    case F_CONCAT:
        for (int i = 0; i < f->s.n; i++) d += f->s.dim[i];
        return d;
    case F_LATE: return f->s.n_out;
    case F_TENSOR:
        for (int i = 0; i < f->s.n; i++) p *= f->s.dim[i] + 1;
        return p;
    case F_CROSSATTN:
        for (int i = 0; i < f->s.n; i++) d += f->s.dim[i];
        return d + (int64_t)f->s.n * (f->s.n - 1) * f->d_model;
    default: return f->out;
    }
}

/* ---- building ---- */

static mml_status linear(mml_fusion *f, mml_nn_linear *l, mml_params *ps, const char *prefix, const char *what,
                         int i, int64_t in, int64_t out, bool bias)
{
    char buf[160];
    if (i >= 0) snprintf(buf, sizeof buf, "%s%s.%d", prefix, what, i);
    else snprintf(buf, sizeof buf, "%s%s", prefix, what);
    return mml_nn_linear_init(l, ps, buf, in, out, bias, &f->rng);
}

static mml_tensor *param(mml_params *ps, const char *prefix, const char *what, int i, int ndim, const int64_t *shape,
                         bool buffer)
{
    char buf[160];
    if (i >= 0) snprintf(buf, sizeof buf, "%s%s.%d", prefix, what, i);
    else snprintf(buf, sizeof buf, "%s%s", prefix, what);
    return buffer ? mml_params_add_buffer(ps, buf, ndim, shape) : mml_params_add(ps, buf, ndim, shape);
}

static mml_status build_fill(mml_fusion *f, mml_params *ps, const char *prefix)
{
    for (int i = 0; i < f->s.n; i++) {
        int64_t d = f->s.dim[i];
        if (f->fill == FILL_LEARNED && !(f->placeholder[i] = param(ps, prefix, "placeholder", i, 1, &d, false)))
            return mml_last_status();
        if (f->fill == FILL_MEAN && !(f->running[i] = param(ps, prefix, "running_mean", i, 1, &d, true)))
            return mml_last_status();
    }
    return MML_OK;
}

/* Late fusion (decision level): one classifier per modality, as the
 * "late fusion" baselines of MultiBench (Liang et al., 2021). */
static mml_status build_late(mml_fusion *f, mml_params *ps, const char *prefix)
{
    mml_status rc = MML_OK;
    for (int i = 0; rc == MML_OK && i < f->s.n; i++)
        rc = linear(f, &f->proj[i], ps, prefix, "head", i, f->s.dim[i], f->s.n_out, true);
    if (rc == MML_OK && f->combine == LATE_LEARNED && !(f->late_w = param(ps, prefix, "late_weight", -1, 1, (int64_t[]){ f->s.n }, false)))
        rc = mml_last_status();
    return rc;
}

/* LMF (Liu et al., ACL 2018, "Efficient Low-rank Multimodal Fusion with
 * Modality-Specific Factors"): factor i maps [h_i; 1] to rank x out; the
 * factors multiply element-wise across modalities and a learned weight sums
 * the rank slices. */
static mml_status build_lowrank(mml_fusion *f, mml_params *ps, const char *prefix)
{
    mml_status rc = MML_OK;
    for (int i = 0; rc == MML_OK && i < f->s.n; i++)
        rc = linear(f, &f->proj[i], ps, prefix, "factor", i, f->s.dim[i] + 1, f->rank * f->out, false);
    if (rc == MML_OK && !(f->rank_w = param(ps, prefix, "rank_weight", -1, 1, (int64_t[]){ f->rank }, false)))
        return mml_last_status();
    if (rc == MML_OK && !(f->rank_b = param(ps, prefix, "rank_bias", -1, 1, (int64_t[]){ f->out }, false)))
        return mml_last_status();
    if (rc == MML_OK) {
        float bound = sqrtf(6.0f / (float)(f->rank + 1)); /* xavier, as LMF's reference code */
        for (int64_t k = 0; k < f->rank; k++) mml_f32(f->rank_w)[k] = (2.0f * mml_rng_uniform(&f->rng) - 1.0f) * bound;
    }
    return rc;
}

/* Attention fusion: u_i = tanh(W_i h_i), score_i = v . u_i, weights softmax
 * over the present modalities (the additive attention of Bahdanau et al.
 * applied across modalities, as in attention-based fusion surveys).
 * GMU (Arevalo et al., ICLR workshop 2017, "Gated Multimodal Units for
 * Information Fusion"): h_i = tanh(W_i x_i), gates z = softmax over
 * modalities of W_z [x_1; ...; x_n] per output unit (sigmoid for n = 2 is
 * the same thing), h = sum_i z_i h_i. */
static mml_status build_projected(mml_fusion *f, mml_params *ps, const char *prefix)
{
    mml_status rc = MML_OK;
    int64_t total = 0;
    for (int i = 0; rc == MML_OK && i < f->s.n; i++) {
        rc = linear(f, &f->proj[i], ps, prefix, "proj", i, f->s.dim[i], f->out, true);
        total += f->s.dim[i];
    }
    if (rc != MML_OK) return rc;
    if (f->type == F_ATTENTION) return linear(f, &f->score, ps, prefix, "score", -1, f->out, 1, false);
    return linear(f, &f->score, ps, prefix, "gate", -1, total, f->s.n * f->out, true);
}

/* MulT (Tsai et al., ACL 2019, "Multimodal Transformer for Unaligned
 * Multimodal Language Sequences"): for every ordered pair (target i, source
 * j), i's sequence queries j's; one cross-attention block per pair with a
 * residual connection and layer norm, pooled over i's positions. */
static mml_status build_crossattn(mml_fusion *f, mml_params *ps, const char *prefix, int64_t heads)
{
    char buf[160];
    mml_status rc = MML_OK;
    for (int i = 0; rc == MML_OK && i < f->s.n; i++)
        rc = linear(f, &f->seq_proj[i], ps, prefix, "seq_proj", i, f->s.seq_dim[i], f->d_model, true);
    for (int i = 0; rc == MML_OK && i < f->s.n; i++)
        for (int j = 0; rc == MML_OK && j < f->s.n; j++) {
            if (i == j) continue;
            snprintf(buf, sizeof buf, "%scross.%d_%d", prefix, i, j);
            rc = mml_nn_mha_init(&f->cross[i][j], ps, buf, f->d_model, heads, 0.0f, &f->rng);
            snprintf(buf, sizeof buf, "%scross_norm.%d_%d", prefix, i, j);
            if (rc == MML_OK) rc = mml_nn_layer_norm_init(&f->cross_norm[i][j], ps, buf, f->d_model, 1e-5f);
        }
    return rc;
}

static mml_status read_options(const mml_cfg_node *n, mml_fusion *f, int64_t *heads)
{
    int type, fill, combine;
    static const char *const keys[] = { "type", "missing", "combine", "rank", "out", "d_model", "heads", NULL };
    mml_status rc = mml_cfg_check_keys(n, keys);
    if (rc == MML_OK) rc = mml_cfg_choice(n, "type", g_types, -1, &type);
    if (rc == MML_OK) rc = mml_cfg_choice(n, "missing", g_fills, FILL_ZERO, &fill);
    if (rc == MML_OK) rc = mml_cfg_choice(n, "combine", g_late, LATE_MEAN, &combine);
    if (rc == MML_OK) rc = mml_cfg_int(n, "rank", 8, &f->rank);
    if (rc == MML_OK) rc = mml_cfg_int(n, "out", 64, &f->out);
    if (rc == MML_OK) rc = mml_cfg_int(n, "d_model", 32, &f->d_model);
    if (rc == MML_OK) rc = mml_cfg_int(n, "heads", 4, heads);
    if (rc != MML_OK) return rc;
    if (f->rank < 1) return mml_cfg_error(n, "rank", "must be positive");
    if (f->out < 1) return mml_cfg_error(n, "out", "must be positive");
    if (*heads < 1 || f->d_model % *heads) return mml_cfg_error(n, "heads", "must divide d_model (%lld)", (long long)f->d_model);
    f->type = (fusion_type)type;
    f->fill = (fill_kind)fill;
    f->combine = (late_kind)combine;
    return MML_OK;
}

static mml_status check_shape(const mml_cfg_node *n, const mml_fusion *f)
{
    const mml_fusion_shape *s = &f->s;
    if (s->n < 1) return mml_cfg_error(n, "type", "needs at least one encoder");
    if (f->type == F_CROSSATTN && s->n < 2) return mml_cfg_error(n, "type", "crossattn needs two modalities or more");
    if (f->type == F_LATE && s->n_out < 1) return mml_cfg_error(n, "type", "late fusion needs a classification task");
    for (int i = 0; i < s->n; i++)
        if (f->type == F_EARLY && !s->raw[i])
            return mml_cfg_error(n, "type", "early fusion concatenates raw features: give every encoder \"type\": \"flatten\" "
                                 "(modality %d has a learned encoder; use \"concat\" for that)", i);
    if (f->type == F_TENSOR) {
        double p = 1;
        for (int i = 0; i < s->n; i++) p *= (double)(s->dim[i] + 1);
        if (p > 1 << 22)
            return mml_cfg_error(n, "type", "tensor fusion of these encoders has %.0f features; give the encoders a "
                                 "smaller \"out\" or use \"lowrank\"", p);
    }
    return MML_OK;
}

mml_status mml_fusion_build(const mml_cfg_node *n, const mml_fusion_shape *shape, mml_params *ps, const char *prefix,
                            uint64_t seed, mml_fusion **out)
{
    *out = NULL;
    mml_fusion *f = mml_calloc(1, sizeof *f);
    if (!f) return MML_ERR_NOMEM;
    f->s = *shape;
    mml_rng_seed(&f->rng, seed);
    int64_t heads = 4;
    mml_status rc = read_options(n, f, &heads);
    if (rc == MML_OK) rc = check_shape(n, f);
    bool masks_itself = f->type == F_LATE || f->type == F_ATTENTION || f->type == F_GMU || f->type == F_CROSSATTN;
    if (rc == MML_OK && !masks_itself) rc = build_fill(f, ps, prefix);
    if (rc == MML_OK) {
        switch (f->type) {
        case F_LATE: rc = build_late(f, ps, prefix); break;
        case F_LOWRANK: rc = build_lowrank(f, ps, prefix); break;
        case F_ATTENTION:
        case F_GMU: rc = build_projected(f, ps, prefix); break;
        case F_CROSSATTN: rc = build_crossattn(f, ps, prefix, heads); break;
        default: break;
        }
    }
    if (rc != MML_OK) {
        mml_free(f);
        return rc;
    }
    *out = f;
    return MML_OK;
}

/* ---- forward ---- */

static mml_tensor *col(mml_ctx *ctx, mml_tensor *p) /* [B] -> [B, 1] */
{
    return mml_reshape(ctx, p, 2, (int64_t[]){ p->shape[0], 1 });
}

static void update_running_mean(mml_tensor *run, const mml_tensor *h, const mml_tensor *present)
{
    int64_t B = h->shape[0], D = h->shape[1], n = 0;
    for (int64_t b = 0; b < B; b++) n += mml_f32(present)[b] > 0;
    if (!n) return;
    for (int64_t d = 0; d < D; d++) {
        double s = 0;
        for (int64_t b = 0; b < B; b++)
            if (mml_f32(present)[b] > 0) s += mml_f32(h)[b * D + d];
        mml_f32(run)[d] = 0.9f * mml_f32(run)[d] + 0.1f * (float)(s / (double)n);
    }
}

/* h * p + fill * (1 - p) */
static mml_tensor *filled(mml_ctx *ctx, mml_fusion *f, int i, mml_tensor *h, mml_tensor *present)
{
    mml_tensor *p = col(ctx, present);
    mml_tensor *kept = mml_mul(ctx, h, p);
    mml_tensor *fill = f->fill == FILL_LEARNED ? f->placeholder[i] : f->running[i];
    if (f->fill == FILL_MEAN && mml_training(ctx)) update_running_mean(f->running[i], h, present);
    if (!fill) return kept;
    return mml_add(ctx, kept, mml_mul(ctx, fill, mml_add_scalar(ctx, mml_neg(ctx, p), 1.0f)));
}

static mml_tensor *with_one(mml_ctx *ctx, mml_tensor *h)
{
    mml_tensor *one = mml_new(ctx, MML_F32, 2, (int64_t[]){ h->shape[0], 1 });
    if (!one) return NULL;
    for (int64_t b = 0; b < h->shape[0]; b++) mml_f32(one)[b] = 1.0f;
    return mml_concat(ctx, (mml_tensor *[]){ h, one }, 2, 1);
}

/* [B, n] scores -> softmax over the present modalities. */
static mml_tensor *masked_softmax(mml_ctx *ctx, mml_tensor *scores, mml_tensor *const *present, int n, int64_t width)
{
    int64_t B = scores->shape[0];
    mml_tensor *missing = mml_new(ctx, MML_F32, 3, (int64_t[]){ B, n, 1 });
    if (!missing) return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int i = 0; i < n; i++) mml_f32(missing)[b * n + i] = mml_f32(present[i])[b] > 0 ? 0.0f : 1.0f;
    scores = mml_reshape(ctx, scores, 3, (int64_t[]){ B, n, width });
    return mml_softmax(ctx, mml_masked_fill(ctx, scores, missing, MASKED), 1);
}

static mml_tensor *forward_late(mml_ctx *ctx, mml_fusion *f, mml_tensor *const *h, mml_tensor *const *present,
                                mml_tensor **weights)
{
    int n = f->s.n;
    int64_t B = h[0]->shape[0], C = f->s.n_out;
    mml_tensor *parts[MAX_M];
    for (int i = 0; i < n; i++) {
        parts[i] = mml_nn_linear_forward(ctx, &f->proj[i], h[i]);
        if (f->combine == LATE_POE && parts[i]) parts[i] = mml_log_softmax(ctx, parts[i], 1);
        if (parts[i]) parts[i] = mml_reshape(ctx, parts[i], 3, (int64_t[]){ B, 1, C });
    }
    mml_tensor *stack = mml_concat(ctx, parts, n, 1); /* [B, n, C] */
    mml_tensor *w;
    if (f->combine == LATE_LEARNED) {
        mml_tensor *scores = mml_add(ctx, mml_zeros(ctx, MML_F32, 2, (int64_t[]){ B, n }), f->late_w);
        w = masked_softmax(ctx, scores, present, n, 1);
        if (weights && w) *weights = mml_reshape(ctx, w, 2, (int64_t[]){ B, n });
    } else { /* mean over present modalities; PoE: sum of log-probabilities */
        w = mml_new(ctx, MML_F32, 3, (int64_t[]){ B, n, 1 });
        for (int64_t b = 0; w && b < B; b++) {
            int k = 0;
            for (int i = 0; i < n; i++) k += mml_f32(present[i])[b] > 0;
            for (int i = 0; i < n; i++)
                mml_f32(w)[b * n + i] = mml_f32(present[i])[b] > 0 ? (f->combine == LATE_POE ? 1.0f : 1.0f / (float)k) : 0.0f;
        }
    }
    return w ? mml_sum(ctx, mml_mul(ctx, stack, w), 1, false) : NULL;
}

static mml_tensor *forward_lowrank(mml_ctx *ctx, mml_fusion *f, mml_tensor *const *h)
{
    int64_t B = h[0]->shape[0];
    mml_tensor *prod = NULL;
    for (int i = 0; i < f->s.n; i++) {
        mml_tensor *z = mml_nn_linear_forward(ctx, &f->proj[i], with_one(ctx, h[i]));
        z = mml_reshape(ctx, z, 3, (int64_t[]){ B, f->rank, f->out });
        prod = prod ? mml_mul(ctx, prod, z) : z;
    }
    mml_tensor *w = mml_reshape(ctx, f->rank_w, 3, (int64_t[]){ 1, f->rank, 1 });
    return mml_add(ctx, mml_sum(ctx, mml_mul(ctx, prod, w), 1, false), f->rank_b);
}

/* Tensor fusion (Zadeh et al., EMNLP 2017, "Tensor Fusion Network for
 * Multimodal Sentiment Analysis"): the outer product of [h_i; 1] keeps the
 * unimodal terms and every cross-modal interaction. */
static mml_tensor *forward_tensor(mml_ctx *ctx, mml_tensor *const *h, int n)
{
    int64_t B = h[0]->shape[0];
    mml_tensor *z = with_one(ctx, h[0]);
    for (int i = 1; i < n && z; i++)
        z = mml_reshape(ctx, mml_outer(ctx, z, with_one(ctx, h[i])), 2, (int64_t[]){ B, -1 });
    return z;
}

static mml_tensor *forward_projected(mml_ctx *ctx, mml_fusion *f, mml_tensor *const *h, mml_tensor *const *present,
                                     mml_tensor **weights)
{
    int n = f->s.n;
    int64_t B = h[0]->shape[0], D = f->out;
    mml_tensor *u[MAX_M];
    for (int i = 0; i < n; i++)
        u[i] = mml_reshape(ctx, mml_tanh(ctx, mml_nn_linear_forward(ctx, &f->proj[i], h[i])), 3, (int64_t[]){ B, 1, D });
    mml_tensor *stack = mml_concat(ctx, u, n, 1); /* [B, n, D] */
    mml_tensor *w;
    if (f->type == F_ATTENTION) {
        mml_tensor *scores = mml_reshape(ctx, mml_nn_linear_forward(ctx, &f->score, stack), 2, (int64_t[]){ B, n });
        w = masked_softmax(ctx, scores, present, n, 1);            /* [B, n, 1] */
        if (weights && w) *weights = mml_reshape(ctx, w, 2, (int64_t[]){ B, n });
    } else {
        mml_tensor *all = mml_concat(ctx, h, n, 1);
        w = masked_softmax(ctx, mml_nn_linear_forward(ctx, &f->score, all), present, n, D); /* [B, n, D] */
        if (weights && w) *weights = mml_mean(ctx, w, 2, false);
    }
    return w ? mml_sum(ctx, mml_mul(ctx, stack, w), 1, false) : NULL;
}

/* Each modality's embedding, then what each learned attending to every other:
 * the embeddings keep what mean-pooled positions lose (a digit's shape). */
static mml_tensor *forward_crossattn(mml_ctx *ctx, mml_fusion *f, const mml_encoding *enc, mml_tensor *const *present)
{
    int n = f->s.n;
    mml_tensor *s[MAX_M], *parts[MAX_M * MAX_M + MAX_M];
    int k = 0;
    for (int i = 0; i < n; i++) parts[k++] = mml_mul(ctx, enc[i].pooled, col(ctx, present[i]));
    for (int i = 0; i < n; i++) s[i] = mml_nn_linear_forward(ctx, &f->seq_proj[i], enc[i].seq);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (i == j) continue;
            mml_tensor *a = mml_nn_mha_forward(ctx, &f->cross[i][j], s[i], s[j], s[j], enc[j].pad, NULL, &f->rng, NULL);
            /* a missing source contributes nothing: the target keeps its own sequence */
            a = a ? mml_mul(ctx, a, mml_reshape(ctx, present[j], 3, (int64_t[]){ present[j]->shape[0], 1, 1 })) : NULL;
            mml_tensor *y = a ? mml_nn_layer_norm_forward(ctx, &f->cross_norm[i][j], mml_add(ctx, s[i], a)) : NULL;
            /* a missing target has no sequence of its own to attend from */
            parts[k++] = y ? mml_mul(ctx, mml_mean(ctx, y, 1, false), col(ctx, present[i])) : NULL;
            if (!parts[k - 1]) return NULL;
        }
    return mml_concat(ctx, parts, k, 1);
}

mml_tensor *mml_fusion_forward(mml_ctx *ctx, mml_fusion *f, const mml_encoding *enc, mml_tensor *const *present,
                               mml_tensor **weights)
{
    if (weights) *weights = NULL;
    int n = f->s.n;
    mml_tensor *h[MAX_M] = { 0 };
    for (int i = 0; i < n; i++) {
        h[i] = enc[i].pooled;
        if (!h[i]) return NULL;
    }
    switch (f->type) {
    case F_LATE: return forward_late(ctx, f, h, present, weights);
    case F_ATTENTION:
    case F_GMU: return forward_projected(ctx, f, h, present, weights);
    case F_CROSSATTN: return forward_crossattn(ctx, f, enc, present);
    default: break;
    }
    for (int i = 0; i < n; i++) h[i] = filled(ctx, f, i, h[i], present[i]);
    if (f->type == F_TENSOR) return forward_tensor(ctx, h, n);
    if (f->type == F_LOWRANK) return forward_lowrank(ctx, f, h);
    return n == 1 ? h[0] : mml_concat(ctx, h, n, 1);
}
