/* Multi-head attention and Transformer layers as torch.nn defines them
 * (batch_first=True). Masked scores are -inf before the softmax, as in torch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/nn.h"

static void name_of(char *buf, size_t cap, const char *prefix, const char *name)
{
    snprintf(buf, cap, "%s%s%s", prefix, prefix[0] ? "." : "", name);
}

mml_status mml_nn_mha_init(mml_nn_mha *a, mml_params *ps, const char *prefix, int64_t embed, int64_t heads,
                           float dropout, mml_rng *rng)
{
    if (heads < 1 || embed % heads)
        return mml_error(MML_ERR_ARG, "%s: embed size %lld is not divisible by %lld heads", prefix, (long long)embed,
                         (long long)heads);
    char name[256];
    a->embed = embed;
    a->heads = heads;
    a->dropout = dropout;
    name_of(name, sizeof name, prefix, "in_proj_weight");
    a->in_proj_weight = mml_params_add(ps, name, 2, (int64_t[]){ 3 * embed, embed });
    name_of(name, sizeof name, prefix, "in_proj_bias");
    a->in_proj_bias = mml_params_add(ps, name, 1, (int64_t[]){ 3 * embed });
    if (!a->in_proj_weight || !a->in_proj_bias) return mml_last_status();
    /* torch: xavier_uniform_ on in_proj_weight, zero biases, out_proj as Linear with zero bias */
    float bound = sqrtf(6.0f / (float)(embed + 3 * embed));
    for (int64_t i = 0; i < a->in_proj_weight->numel; i++)
        mml_f32(a->in_proj_weight)[i] = (2.0f * mml_rng_uniform(rng) - 1.0f) * bound;
    name_of(name, sizeof name, prefix, "out_proj");
    mml_status rc = mml_nn_linear_init(&a->out_proj, ps, name, embed, embed, true, rng);
    if (rc == MML_OK) memset(a->out_proj.bias->data, 0, (size_t)embed * sizeof(float));
    return rc;
}

/* Rows [first * E, (first + count) * E) of the packed input projection. */
static mml_tensor *project(mml_ctx *ctx, const mml_nn_mha *a, mml_tensor *x, int first, int count)
{
    int64_t E = a->embed;
    if (count == 3) return mml_linear(ctx, x, a->in_proj_weight, a->in_proj_bias);
    mml_tensor *w = mml_slice(ctx, a->in_proj_weight, 0, first * E, (first + count) * E, 1);
    mml_tensor *b = mml_slice(ctx, a->in_proj_bias, 0, first * E, (first + count) * E, 1);
    return mml_linear(ctx, x, w, b);
}

/* Attention up to the output projection: the heads, merged. */
static mml_tensor *attend(mml_ctx *ctx, const mml_nn_mha *a, mml_tensor *q, mml_tensor *k, mml_tensor *v,
                          mml_tensor *key_padding_mask, mml_tensor *attn_mask, mml_rng *rng, mml_tensor **weights)
{
    if (!q || !k || !v) return NULL;
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || q->shape[2] != a->embed || k->shape[2] != a->embed ||
        v->shape[2] != a->embed || k->shape[1] != v->shape[1] || q->shape[0] != k->shape[0]) {
        mml_error(MML_ERR_SHAPE, "attention: q, k, v must be [B, T, %lld] with matching batch and key/value lengths",
                  (long long)a->embed);
        return NULL;
    }
    int64_t E = a->embed;
    mml_attention_args args = { .embed = E, .heads = a->heads, .key_padding_mask = key_padding_mask,
                                .attn_mask = attn_mask, .dropout = a->dropout, .rng = rng };
    mml_tensor *Q, *K, *V;
    /* Shared inputs share one projection GEMM; heads are read from its columns. */
    if (q == k && k == v) {
        Q = K = V = project(ctx, a, q, 0, 3);
        args.k_off = E;
        args.v_off = 2 * E;
    } else if (k == v) {
        Q = project(ctx, a, q, 0, 1);
        K = V = project(ctx, a, k, 1, 2);
        args.v_off = E;
    } else {
        Q = project(ctx, a, q, 0, 1);
        K = project(ctx, a, k, 1, 1);
        V = project(ctx, a, v, 2, 1);
    }
    return mml_attention(ctx, Q, K, V, &args, weights);
}

mml_tensor *mml_nn_mha_forward(mml_ctx *ctx, const mml_nn_mha *a, mml_tensor *q, mml_tensor *k, mml_tensor *v,
                               mml_tensor *key_padding_mask, mml_tensor *attn_mask, mml_rng *rng,
                               mml_tensor **weights)
{
    return mml_nn_linear_forward(ctx, &a->out_proj, attend(ctx, a, q, k, v, key_padding_mask, attn_mask, rng, weights));
}

/* res + dropout(l(h)): without dropout, one op that never stores l(h). */
static mml_tensor *residual_linear(mml_ctx *ctx, const mml_nn_linear *l, mml_tensor *h, float p, mml_tensor *res,
                                   mml_rng *rng)
{
    if (p == 0.0f || !mml_training(ctx)) return mml_linear_add(ctx, h, l->weight, l->bias, res);
    return mml_add(ctx, res, mml_dropout(ctx, mml_nn_linear_forward(ctx, l, h), p, rng));
}

/* res + dropout(attention(q, kv, kv)). */
static mml_tensor *residual_attention(mml_ctx *ctx, const mml_nn_mha *a, mml_tensor *q, mml_tensor *kv,
                                      mml_tensor *pad, mml_tensor *mask, float p, mml_tensor *res, mml_rng *rng)
{
    return residual_linear(ctx, &a->out_proj, attend(ctx, a, q, kv, kv, pad, mask, rng, NULL), p, res, rng);
}

static mml_tensor *activate(mml_ctx *ctx, mml_activation act, mml_tensor *x)
{
    return act == MML_ACT_GELU ? mml_gelu(ctx, x) : mml_relu(ctx, x);
}

/* res + dropout(l2(dropout(act(l1(x))))). */
static mml_tensor *feed_forward(mml_ctx *ctx, const mml_nn_linear *l1, const mml_nn_linear *l2, mml_activation act,
                                float p, mml_tensor *x, mml_tensor *res, mml_rng *rng)
{
    mml_tensor *h = act == MML_ACT_RELU ? mml_linear_relu(ctx, x, l1->weight, l1->bias)
                                        : activate(ctx, act, mml_nn_linear_forward(ctx, l1, x));
    return residual_linear(ctx, l2, mml_dropout(ctx, h, p, rng), p, res, rng);
}

static mml_status init_ff(mml_params *ps, const char *prefix, mml_nn_linear *l1, mml_nn_linear *l2, int64_t d,
                          int64_t ff, mml_rng *rng)
{
    char name[256];
    name_of(name, sizeof name, prefix, "linear1");
    mml_status rc = mml_nn_linear_init(l1, ps, name, d, ff, true, rng);
    name_of(name, sizeof name, prefix, "linear2");
    return rc == MML_OK ? mml_nn_linear_init(l2, ps, name, ff, d, true, rng) : rc;
}

static mml_status init_norm(mml_params *ps, const char *prefix, const char *which, mml_nn_layer_norm *n, int64_t d)
{
    char name[256];
    name_of(name, sizeof name, prefix, which);
    return mml_nn_layer_norm_init(n, ps, name, d, 1e-5f);
}

/* self_attn, linear1/2, norm1/2: what encoder and decoder layers share. */
static mml_status init_common(mml_params *ps, const char *prefix, mml_nn_mha *sa, mml_nn_linear *l1, mml_nn_linear *l2,
                              mml_nn_layer_norm *n1, mml_nn_layer_norm *n2, int64_t d, int64_t heads, int64_t ff,
                              float dropout, mml_rng *rng)
{
    char name[256];
    name_of(name, sizeof name, prefix, "self_attn");
    mml_status rc = mml_nn_mha_init(sa, ps, name, d, heads, dropout, rng);
    if (rc == MML_OK) rc = init_ff(ps, prefix, l1, l2, d, ff, rng);
    if (rc == MML_OK) rc = init_norm(ps, prefix, "norm1", n1, d);
    if (rc == MML_OK) rc = init_norm(ps, prefix, "norm2", n2, d);
    return rc;
}

mml_status mml_nn_encoder_layer_init(mml_nn_encoder_layer *l, mml_params *ps, const char *prefix, int64_t d,
                                     int64_t heads, int64_t ff, float dropout, mml_activation act, bool pre_norm,
                                     mml_rng *rng)
{
    l->pre_norm = pre_norm;
    l->activation = act;
    l->dropout = dropout;
    return init_common(ps, prefix, &l->self_attn, &l->linear1, &l->linear2, &l->norm1, &l->norm2, d, heads, ff, dropout, rng);
}

mml_tensor *mml_nn_encoder_layer_forward(mml_ctx *ctx, const mml_nn_encoder_layer *l, mml_tensor *x,
                                         mml_tensor *key_padding_mask, mml_tensor *attn_mask, mml_rng *rng)
{
    if (l->pre_norm) {
        mml_tensor *n1 = mml_nn_layer_norm_forward(ctx, &l->norm1, x);
        x = residual_attention(ctx, &l->self_attn, n1, n1, key_padding_mask, attn_mask, l->dropout, x, rng);
        mml_tensor *n2 = mml_nn_layer_norm_forward(ctx, &l->norm2, x);
        return feed_forward(ctx, &l->linear1, &l->linear2, l->activation, l->dropout, n2, x, rng);
    }
    x = mml_nn_layer_norm_forward(
        ctx, &l->norm1, residual_attention(ctx, &l->self_attn, x, x, key_padding_mask, attn_mask, l->dropout, x, rng));
    return mml_nn_layer_norm_forward(ctx, &l->norm2,
                                     feed_forward(ctx, &l->linear1, &l->linear2, l->activation, l->dropout, x, x, rng));
}

mml_status mml_nn_decoder_layer_init(mml_nn_decoder_layer *l, mml_params *ps, const char *prefix, int64_t d,
                                     int64_t heads, int64_t ff, float dropout, mml_activation act, bool pre_norm,
                                     mml_rng *rng)
{
    char name[256];
    l->pre_norm = pre_norm;
    l->activation = act;
    l->dropout = dropout;
    mml_status rc = init_common(ps, prefix, &l->self_attn, &l->linear1, &l->linear2, &l->norm1, &l->norm2, d, heads, ff,
                                dropout, rng);
    name_of(name, sizeof name, prefix, "multihead_attn");
    if (rc == MML_OK) rc = mml_nn_mha_init(&l->cross_attn, ps, name, d, heads, dropout, rng);
    if (rc == MML_OK) rc = init_norm(ps, prefix, "norm3", &l->norm3, d);
    return rc;
}

mml_tensor *mml_nn_decoder_layer_forward(mml_ctx *ctx, const mml_nn_decoder_layer *l, mml_tensor *x, mml_tensor *mem,
                                         mml_tensor *tgt_mask, mml_tensor *tgt_pad, mml_tensor *mem_pad, mml_rng *rng)
{
    float p = l->dropout;
    if (l->pre_norm) {
        mml_tensor *n1 = mml_nn_layer_norm_forward(ctx, &l->norm1, x);
        x = residual_attention(ctx, &l->self_attn, n1, n1, tgt_pad, tgt_mask, p, x, rng);
        mml_tensor *n2 = mml_nn_layer_norm_forward(ctx, &l->norm2, x);
        x = residual_attention(ctx, &l->cross_attn, n2, mem, mem_pad, NULL, p, x, rng);
        mml_tensor *n3 = mml_nn_layer_norm_forward(ctx, &l->norm3, x);
        return feed_forward(ctx, &l->linear1, &l->linear2, l->activation, p, n3, x, rng);
    }
    x = mml_nn_layer_norm_forward(ctx, &l->norm1, residual_attention(ctx, &l->self_attn, x, x, tgt_pad, tgt_mask, p, x, rng));
    x = mml_nn_layer_norm_forward(ctx, &l->norm2, residual_attention(ctx, &l->cross_attn, x, mem, mem_pad, NULL, p, x, rng));
    return mml_nn_layer_norm_forward(ctx, &l->norm3, feed_forward(ctx, &l->linear1, &l->linear2, l->activation, p, x, x, rng));
}
