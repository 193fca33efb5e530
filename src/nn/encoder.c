/* Per-modality encoders: sequential layers, RNNs, Transformers and bags of
 * embeddings behind one interface, so fusion code never asks which it has. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/encoder.h"
#include "mml/model.h"
#include "mml/nn.h"
#include "mml/ops.h"

#define MAX_TF_LAYERS 8

typedef enum { E_SEQUENTIAL, E_RNN, E_TRANSFORMER, E_BAG, E_FLATTEN, E_RESNET, E_VIT, E_COUNT } enc_type;
static const char *const g_enc_types[E_COUNT + 1] = { "sequential", "rnn", "transformer", "bag", "flatten",
                                                      "resnet", "vit", NULL };
#define MAX_STAGES 6

typedef enum { POOL_MEAN, POOL_MAX, POOL_LAST, POOL_CLS, POOL_COUNT } pool_kind;
static const char *const g_pools[POOL_COUNT + 1] = { "mean", "max", "last", "cls", NULL };

struct mml_encoder {
    enc_type type;
    pool_kind pool;
    mml_feature_spec in;
    bool tokens;            /* I32 ids in: embedding first */
    mml_model *seq_model;   /* sequential */
    mml_nn_embedding embed;
    mml_nn_linear in_proj;  /* transformer over frames */
    mml_nn_rnn rnn;
    mml_nn_encoder_layer tf[MAX_TF_LAYERS];
    int n_tf;
    mml_nn_layer_norm tf_norm;
    mml_tensor *pos, *cls;
    mml_nn_conv2d stem;             /* resnet */
    mml_nn_batch_norm stem_bn;
    mml_nn_resnet_block blocks[MAX_STAGES];
    int n_blocks;
    mml_nn_patch_embed patch;       /* vit */
    mml_nn_linear out;
    bool has_out, out_relu;
    bool no_seq;            /* mml_encoder_set_seq(e, false) */
    int64_t dim, seq_dim, max_len;
    mml_rng rng;            /* dropout */
};

const char *mml_encoder_type(const mml_encoder *e) { return g_enc_types[e->type]; }
void mml_encoder_set_seq(mml_encoder *e, bool on) { e->no_seq = !on; }
int64_t mml_encoder_dim(const mml_encoder *e) { return e->dim; }
int64_t mml_encoder_seq_dim(const mml_encoder *e) { return e->seq_dim; }

void mml_encoder_free(mml_encoder *e)
{
    if (!e) return;
    mml_model_free(e->seq_model);
    mml_free(e);
}

/* ---- building ---- */

static void name(char *buf, size_t cap, const char *prefix, const char *part)
{
    snprintf(buf, cap, "%s%s", prefix, part);
}

/* Frames or tokens as a sequence: [T, features] per sample. */
static mml_status sequence_input(const mml_cfg_node *n, mml_encoder *e, int64_t *T, int64_t *feat)
{
    if (e->tokens) {
        *T = e->in.shape[0];
        *feat = 0;
        return MML_OK;
    }
    if (e->in.ndim != 2)
        return mml_cfg_error(n, "type", "needs sequence features [features, frames] or token ids, not a %d-D input",
                             e->in.ndim);
    *T = e->in.shape[1];
    *feat = e->in.shape[0];
    return MML_OK;
}

static mml_status build_embedding(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix,
                                  int64_t dim)
{
    int64_t vocab;
    char buf[160];
    mml_status rc = mml_cfg_int(n, "vocab", 49408, &vocab);
    if (rc == MML_OK && vocab < 2) rc = mml_cfg_error(n, "vocab", "must be at least 2");
    name(buf, sizeof buf, prefix, "embed");
    if (rc == MML_OK) rc = mml_nn_embedding_init(&e->embed, ps, buf, vocab, dim, &e->rng);
    return rc;
}

static mml_status build_rnn(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix)
{
    int64_t T = 0, feat = 0, hidden = 0, layers = 0, embed = 0;
    bool bidir = false;
    int cell;
    static const char *const cells[] = { "gru", "lstm", NULL };
    char buf[160];
    mml_status rc = sequence_input(n, e, &T, &feat);
    if (rc == MML_OK) rc = mml_cfg_choice(n, "cell", cells, MML_RNN_GRU, &cell);
    if (rc == MML_OK) rc = mml_cfg_int(n, "hidden", 64, &hidden);
    if (rc == MML_OK) rc = mml_cfg_int(n, "layers", 1, &layers);
    if (rc == MML_OK) rc = mml_cfg_bool(n, "bidirectional", false, &bidir);
    if (rc == MML_OK) rc = mml_cfg_int(n, "embed", 64, &embed);
    if (rc == MML_OK && (hidden < 1 || layers < 1 || layers > MML_RNN_MAX_LAYERS))
        rc = mml_cfg_error(n, "layers", "hidden must be positive and layers in [1, %d]", MML_RNN_MAX_LAYERS);
    if (rc == MML_OK && e->tokens) rc = build_embedding(n, e, ps, prefix, feat = embed);
    name(buf, sizeof buf, prefix, "rnn");
    if (rc == MML_OK)
        rc = mml_nn_rnn_init(&e->rnn, ps, buf, (mml_rnn_kind)cell, feat, hidden, (int)layers, bidir, &e->rng);
    e->dim = e->seq_dim = hidden * (bidir ? 2 : 1);
    if (rc == MML_OK && e->pool == POOL_CLS) rc = mml_cfg_error(n, "pool", "cls needs a transformer");
    return rc;
}

static mml_status build_transformer(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix)
{
    int64_t T = 0, feat = 0, d, heads, layers, ffn;
    double dropout;
    char buf[160];
    mml_status rc = sequence_input(n, e, &T, &feat);
    if (rc == MML_OK) rc = mml_cfg_int(n, "d_model", 64, &d);
    if (rc == MML_OK) rc = mml_cfg_int(n, "heads", 4, &heads);
    if (rc == MML_OK) rc = mml_cfg_int(n, "layers", 2, &layers);
    if (rc == MML_OK) rc = mml_cfg_int(n, "ffn", 4 * d, &ffn);
    if (rc == MML_OK) rc = mml_cfg_float(n, "dropout", 0.1, &dropout);
    if (rc == MML_OK && (layers < 1 || layers > MAX_TF_LAYERS))
        rc = mml_cfg_error(n, "layers", "must be in [1, %d]", MAX_TF_LAYERS);
    if (rc == MML_OK && (heads < 1 || d % heads))
        rc = mml_cfg_error(n, "heads", "must divide d_model (%lld)", (long long)d);
    if (rc != MML_OK) return rc;
    name(buf, sizeof buf, prefix, "in_proj");
    rc = e->tokens ? build_embedding(n, e, ps, prefix, d) : mml_nn_linear_init(&e->in_proj, ps, buf, feat, d, true, &e->rng);
    e->max_len = T + (e->pool == POOL_CLS);
    name(buf, sizeof buf, prefix, "pos");
    if (rc == MML_OK && !(e->pos = mml_params_add(ps, buf, 2, (int64_t[]){ e->max_len, d }))) rc = mml_last_status();
    for (int64_t i = 0; e->pos && i < e->pos->numel; i++) mml_f32(e->pos)[i] = 0.02f * mml_rng_normal(&e->rng);
    name(buf, sizeof buf, prefix, "cls");
    if (rc == MML_OK && e->pool == POOL_CLS && !(e->cls = mml_params_add(ps, buf, 3, (int64_t[]){ 1, 1, d })))
        rc = mml_last_status();
    for (int i = 0; rc == MML_OK && i < layers; i++) {
        snprintf(buf, sizeof buf, "%slayers.%d", prefix, i);
        rc = mml_nn_encoder_layer_init(&e->tf[i], ps, buf, d, heads, ffn, (float)dropout, MML_ACT_GELU, true, &e->rng);
    }
    e->n_tf = (int)layers;
    name(buf, sizeof buf, prefix, "norm");
    if (rc == MML_OK) rc = mml_nn_layer_norm_init(&e->tf_norm, ps, buf, d, 1e-5f);
    if (rc == MML_OK && e->pool == POOL_LAST) rc = mml_cfg_error(n, "pool", "last needs an rnn");
    e->dim = e->seq_dim = d;
    return rc;
}

static mml_status build_bag(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix)
{
    int64_t embed;
    if (!e->tokens) return mml_cfg_error(n, "type", "bag needs token ids (the text modality)");
    mml_status rc = mml_cfg_int(n, "embed", 64, &embed);
    if (rc == MML_OK) rc = build_embedding(n, e, ps, prefix, embed);
    if (rc == MML_OK && e->pool != POOL_MEAN && e->pool != POOL_MAX)
        rc = mml_cfg_error(n, "pool", "a bag pools by mean or max");
    e->dim = e->seq_dim = embed;
    return rc;
}

/* A small ResNet (He et al., 2016): a 3x3 stem, then one torchvision
 * BasicBlock per stage (stride 2 after the first), global average pooling. */
static mml_status build_resnet(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix)
{
    int64_t ch[MAX_STAGES];
    char buf[160];
    if (e->tokens || e->in.ndim != 3) return mml_cfg_error(n, "type", "resnet needs images [channels, height, width]");
    int k = mml_cfg_present(n) ? mml_cfg_ints(n, "channels", ch, MAX_STAGES) : 0;
    if (k < 0) return mml_last_status();
    if (k == 0) {
        ch[0] = 16, ch[1] = 32, ch[2] = 64;
        k = 3;
    }
    for (int i = 0; i < k; i++)
        if (ch[i] < 1 || ch[i] > 4096) return mml_cfg_error(n, "channels", "must be in [1, 4096]");
    name(buf, sizeof buf, prefix, "stem");
    mml_status rc = mml_nn_conv2d_init(&e->stem, ps, buf, e->in.shape[0], ch[0], 3, 1, 1, false, &e->rng);
    name(buf, sizeof buf, prefix, "stem_bn");
    if (rc == MML_OK) rc = mml_nn_batch_norm_init(&e->stem_bn, ps, buf, ch[0]);
    for (int i = 0; rc == MML_OK && i < k; i++) {
        snprintf(buf, sizeof buf, "%sblocks.%d", prefix, i);
        rc = mml_nn_resnet_block_init(&e->blocks[i], ps, buf, i ? ch[i - 1] : ch[0], ch[i], i ? 2 : 1, &e->rng);
    }
    e->n_blocks = k;
    e->dim = e->seq_dim = ch[k - 1];
    return rc;
}

/* ViT (Dosovitskiy et al., 2021): patches embedded with a class token and
 * positions, then the pre-norm encoder layers of the transformer type. */
static mml_status build_vit(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix)
{
    int64_t patch, d, heads, layers, ffn;
    double dropout;
    char buf[160];
    if (e->tokens || e->in.ndim != 3 || e->in.shape[1] != e->in.shape[2])
        return mml_cfg_error(n, "type", "vit needs square images [channels, size, size]");
    mml_status rc = mml_cfg_int(n, "patch", 7, &patch);
    if (rc == MML_OK) rc = mml_cfg_int(n, "d_model", 64, &d);
    if (rc == MML_OK) rc = mml_cfg_int(n, "heads", 4, &heads);
    if (rc == MML_OK) rc = mml_cfg_int(n, "layers", 2, &layers);
    if (rc == MML_OK) rc = mml_cfg_int(n, "ffn", 2 * d, &ffn);
    if (rc == MML_OK) rc = mml_cfg_float(n, "dropout", 0.0, &dropout);
    if (rc == MML_OK && (layers < 1 || layers > MAX_TF_LAYERS)) rc = mml_cfg_error(n, "layers", "must be in [1, %d]", MAX_TF_LAYERS);
    if (rc == MML_OK && (heads < 1 || d % heads)) rc = mml_cfg_error(n, "heads", "must divide d_model (%lld)", (long long)d);
    if (rc == MML_OK && (patch < 1 || e->in.shape[1] % patch))
        rc = mml_cfg_error(n, "patch", "must divide the image size (%lld)", (long long)e->in.shape[1]);
    if (rc != MML_OK) return rc;
    name(buf, sizeof buf, prefix, "patch");
    rc = mml_nn_patch_embed_init(&e->patch, ps, buf, e->in.shape[0], e->in.shape[1], (int)patch, d, &e->rng);
    for (int i = 0; rc == MML_OK && i < layers; i++) {
        snprintf(buf, sizeof buf, "%slayers.%d", prefix, i);
        rc = mml_nn_encoder_layer_init(&e->tf[i], ps, buf, d, heads, ffn, (float)dropout, MML_ACT_GELU, true, &e->rng);
    }
    e->n_tf = (int)layers;
    name(buf, sizeof buf, prefix, "norm");
    if (rc == MML_OK) rc = mml_nn_layer_norm_init(&e->tf_norm, ps, buf, d, 1e-6f);
    if (rc == MML_OK && e->pool != POOL_CLS && e->pool != POOL_MEAN) rc = mml_cfg_error(n, "pool", "vit pools by cls or mean");
    e->dim = e->seq_dim = d;
    return rc;
}

/* The sequence width of a sequential model: run one sample through it. */
static mml_status probe_sequential(mml_encoder *e)
{
    mml_ctx *ctx = mml_ctx_create();
    if (!ctx) return MML_ERR_NOMEM;
    mml_set_grad_enabled(ctx, false);
    int64_t shape[MML_FEATURE_MAX_DIMS + 1] = { 1 };
    memcpy(shape + 1, e->in.shape, (size_t)e->in.ndim * sizeof *shape);
    mml_tensor *seq = NULL, *x = mml_zeros(ctx, MML_F32, e->in.ndim + 1, shape);
    mml_tensor *y = x ? mml_model_forward_seq(ctx, e->seq_model, x, &seq) : NULL;
    e->seq_dim = seq ? seq->shape[1] : (y ? y->shape[y->ndim - 1] : 0);
    e->dim = y ? y->numel : 0;
    mml_status rc = y ? MML_OK : mml_last_status();
    mml_ctx_free(ctx);
    return rc;
}

static mml_status build_sequential(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix,
                                   uint64_t seed)
{
    if (e->tokens) return mml_cfg_error(n, "type", "sequential layers need float features, not token ids");
    mml_status rc = mml_model_build_in(n, ps, prefix, e->in.ndim, e->in.shape, seed, &e->seq_model);
    return rc == MML_OK ? probe_sequential(e) : rc;
}

static mml_status build_out(const mml_cfg_node *n, mml_encoder *e, mml_params *ps, const char *prefix)
{
    int64_t out;
    static const char *const acts[] = { "relu", "none", NULL };
    int a;
    char buf[160];
    mml_status rc = mml_cfg_int(n, "out", 0, &out);
    if (rc == MML_OK) rc = mml_cfg_choice(n, "activation", acts, 0, &a);
    if (rc != MML_OK || out == 0) return rc;
    if (out < 0) return mml_cfg_error(n, "out", "must be positive");
    name(buf, sizeof buf, prefix, "out");
    rc = mml_nn_linear_init(&e->out, ps, buf, e->dim, out, true, &e->rng);
    e->has_out = true;
    e->out_relu = a == 0;
    e->dim = out;
    return rc;
}

mml_status mml_encoder_build(const mml_cfg_node *n, const mml_feature_spec *in, mml_params *ps, const char *prefix,
                             uint64_t seed, mml_encoder **out)
{
    static const char *const keys[] = { "type", "layers", "cell", "hidden", "bidirectional", "embed", "vocab",
                                        "d_model", "heads", "ffn", "dropout", "pool", "out", "activation",
                                        "channels", "patch", NULL };
    *out = NULL;
    int type, pool;
    mml_status rc = mml_cfg_check_keys(n, keys);
    if (rc == MML_OK) rc = mml_cfg_choice(n, "type", g_enc_types, -1, &type);
    if (rc == MML_OK) rc = mml_cfg_choice(n, "pool", g_pools, POOL_MEAN, &pool);
    if (rc != MML_OK) return rc;
    mml_encoder *e = mml_calloc(1, sizeof *e);
    if (!e) return MML_ERR_NOMEM;
    e->type = (enc_type)type;
    e->pool = (pool_kind)pool;
    e->in = *in;
    e->tokens = in->dtype == MML_I32;
    mml_rng_seed(&e->rng, seed);
    switch (e->type) {
    case E_SEQUENTIAL: rc = build_sequential(n, e, ps, prefix, seed); break;
    case E_RNN: rc = build_rnn(n, e, ps, prefix); break;
    case E_TRANSFORMER: rc = build_transformer(n, e, ps, prefix); break;
    case E_BAG: rc = build_bag(n, e, ps, prefix); break;
    case E_RESNET: rc = build_resnet(n, e, ps, prefix); break;
    case E_VIT: rc = build_vit(n, e, ps, prefix); break;
    default:
        if (e->tokens) rc = mml_cfg_error(n, "type", "flatten needs float features, not token ids");
        e->dim = mml_shape_numel(in->ndim, in->shape);
        e->seq_dim = in->ndim == 2 ? in->shape[0] : e->dim;
        break;
    }
    if (rc == MML_OK) rc = build_out(n, e, ps, prefix);
    if (rc != MML_OK) {
        mml_encoder_free(e);
        return rc;
    }
    *out = e;
    return MML_OK;
}

/* ---- forward ---- */

/* F32 [B, T]: 1 past each length (the key padding mask attention expects). */
static mml_tensor *pad_mask(mml_ctx *ctx, const mml_tensor *lengths, int64_t B, int64_t T, int64_t offset)
{
    mml_tensor *m = mml_new(ctx, MML_F32, 2, (int64_t[]){ B, T });
    if (!m) return NULL;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = lengths ? mml_i32(lengths)[b] + offset : T;
        if (len < 1) len = 1; /* an empty sequence still has one position to pool */
        for (int64_t t = 0; t < T; t++) mml_f32(m)[b * T + t] = t >= len ? 1.0f : 0.0f;
    }
    return m;
}

/* Mean or max over valid positions of x [B, T, D]. */
static mml_tensor *pool_seq(mml_ctx *ctx, mml_tensor *x, mml_tensor *pad, pool_kind pool)
{
    int64_t B = x->shape[0], T = x->shape[1];
    mml_tensor *pad3 = pad ? mml_reshape(ctx, pad, 3, (int64_t[]){ B, T, 1 }) : NULL;
    if (pool == POOL_MAX) return mml_max(ctx, pad3 ? mml_masked_fill(ctx, x, pad3, -INFINITY) : x, 1, false);
    if (!pad3) return mml_mean(ctx, x, 1, false);
    mml_tensor *valid = mml_add_scalar(ctx, mml_neg(ctx, pad3), 1.0f);
    mml_tensor *sum = mml_sum(ctx, mml_mul(ctx, x, valid), 1, false);
    mml_tensor *count = mml_clamp(ctx, mml_sum(ctx, valid, 1, false), 1.0f, INFINITY);
    return mml_div(ctx, sum, count);
}

static mml_tensor *frames_first(mml_ctx *ctx, mml_tensor *x) { return mml_transpose(ctx, x, 1, 2); }

static mml_status forward_rnn(mml_ctx *ctx, mml_encoder *e, mml_tensor *x, mml_tensor *lengths, mml_encoding *o)
{
    int64_t B = x->shape[0];
    mml_tensor *in = e->tokens ? mml_embedding(ctx, e->embed.weight, x) : frames_first(ctx, x);
    mml_tensor *h_n = NULL;
    mml_tensor *y = mml_nn_rnn_forward(ctx, &e->rnn, in, lengths, &h_n);
    if (!y) return mml_last_status();
    o->seq = y;
    o->pad = lengths ? pad_mask(ctx, lengths, B, y->shape[1], 0) : NULL;
    if (e->pool != POOL_LAST) {
        o->pooled = pool_seq(ctx, y, o->pad, e->pool);
        return MML_OK;
    }
    /* last layer's final states, both directions side by side */
    int64_t L = e->rnn.layers, D = e->rnn.dirs, H = e->rnn.hidden;
    mml_tensor *last = mml_slice(ctx, h_n, 0, (L - 1) * D, L * D, 1);
    o->pooled = mml_reshape(ctx, mml_transpose(ctx, last, 0, 1), 2, (int64_t[]){ B, D * H });
    return MML_OK;
}

static mml_status forward_transformer(mml_ctx *ctx, mml_encoder *e, mml_tensor *x, mml_tensor *lengths,
                                      mml_encoding *o)
{
    int64_t B = x->shape[0];
    mml_tensor *h = e->tokens ? mml_embedding(ctx, e->embed.weight, x) : mml_nn_linear_forward(ctx, &e->in_proj, frames_first(ctx, x));
    bool cls = e->pool == POOL_CLS;
    if (h && cls) {
        mml_tensor *c = mml_add(ctx, mml_zeros(ctx, MML_F32, 3, (int64_t[]){ B, 1, e->seq_dim }), e->cls);
        h = mml_concat(ctx, (mml_tensor *[]){ c, h }, 2, 1);
    }
    if (!h) return mml_last_status();
    h = mml_add(ctx, h, e->pos);
    mml_tensor *pad = lengths ? pad_mask(ctx, lengths, B, e->max_len, cls) : NULL;
    for (int i = 0; h && i < e->n_tf; i++) h = mml_nn_encoder_layer_forward(ctx, &e->tf[i], h, pad, NULL, &e->rng);
    h = h ? mml_nn_layer_norm_forward(ctx, &e->tf_norm, h) : NULL;
    if (!h) return mml_last_status();
    o->seq = h;
    o->pad = pad;
    o->pooled = cls ? mml_reshape(ctx, mml_slice(ctx, h, 1, 0, 1, 1), 2, (int64_t[]){ B, e->seq_dim })
                    : pool_seq(ctx, h, pad, e->pool);
    return MML_OK;
}

/* [B, C, spatial...] -> [B, N, C] */
static mml_tensor *positions(mml_ctx *ctx, mml_tensor *s)
{
    int64_t B = s->shape[0], C = s->shape[1];
    return mml_transpose(ctx, mml_reshape(ctx, s, 3, (int64_t[]){ B, C, -1 }), 1, 2);
}

/* A missing modality has length 0; recurrent layers need at least one step
 * (its output is masked by the fusion anyway). */
static mml_tensor *at_least_one(mml_ctx *ctx, mml_tensor *lengths)
{
    if (!lengths) return NULL;
    mml_tensor *l = mml_new(ctx, MML_I32, 1, lengths->shape);
    for (int64_t b = 0; l && b < lengths->numel; b++) mml_i32(l)[b] = mml_i32(lengths)[b] > 0 ? mml_i32(lengths)[b] : 1;
    return l;
}

mml_status mml_encoder_forward(mml_ctx *ctx, mml_encoder *e, mml_tensor *x, mml_tensor *lengths, mml_encoding *o)
{
    memset(o, 0, sizeof *o);
    if (!x) return mml_last_status();
    int64_t B = x->shape[0];
    lengths = at_least_one(ctx, lengths);
    mml_status rc = MML_OK;
    switch (e->type) {
    case E_SEQUENTIAL: {
        mml_tensor *seq = NULL, *y = mml_model_forward_seq(ctx, e->seq_model, x, &seq);
        if (!y) return mml_last_status();
        o->pooled = mml_reshape(ctx, y, 2, (int64_t[]){ B, -1 });
        o->seq = seq && !e->no_seq ? positions(ctx, seq) : mml_reshape(ctx, o->pooled, 3, (int64_t[]){ B, 1, -1 });
        break;
    }
    case E_RNN: rc = forward_rnn(ctx, e, x, lengths, o); break;
    case E_TRANSFORMER: rc = forward_transformer(ctx, e, x, lengths, o); break;
    case E_RESNET: {
        mml_tensor *h = mml_relu(ctx, mml_nn_batch_norm_forward(ctx, &e->stem_bn, mml_nn_conv2d_forward(ctx, &e->stem, x)));
        for (int i = 0; h && i < e->n_blocks; i++) h = mml_nn_resnet_block_forward(ctx, &e->blocks[i], h);
        if (!h) return mml_last_status();
        o->seq = positions(ctx, h);
        o->pooled = mml_mean(ctx, o->seq, 1, false);
        break;
    }
    case E_VIT: {
        mml_tensor *h = mml_nn_patch_embed_forward(ctx, &e->patch, x);
        for (int i = 0; h && i < e->n_tf; i++) h = mml_nn_encoder_layer_forward(ctx, &e->tf[i], h, NULL, NULL, &e->rng);
        h = h ? mml_nn_layer_norm_forward(ctx, &e->tf_norm, h) : NULL;
        if (!h) return mml_last_status();
        o->seq = h;
        o->pooled = e->pool == POOL_CLS ? mml_reshape(ctx, mml_slice(ctx, h, 1, 0, 1, 1), 2, (int64_t[]){ B, e->seq_dim })
                                        : mml_mean(ctx, h, 1, false);
        break;
    }
    case E_BAG:
        o->seq = mml_embedding(ctx, e->embed.weight, x);
        o->pad = lengths ? pad_mask(ctx, lengths, B, x->shape[1], 0) : NULL;
        o->pooled = o->seq ? pool_seq(ctx, o->seq, o->pad, e->pool) : NULL;
        break;
    default:
        o->pooled = mml_reshape(ctx, x, 2, (int64_t[]){ B, -1 });
        o->seq = x->ndim == 3 && !e->no_seq ? frames_first(ctx, x)
                                            : mml_reshape(ctx, o->pooled, 3, (int64_t[]){ B, 1, -1 });
        break;
    }
    if (rc == MML_OK && o->pooled && e->has_out) {
        o->pooled = mml_nn_linear_forward(ctx, &e->out, o->pooled);
        if (e->out_relu && o->pooled) o->pooled = mml_relu(ctx, o->pooled);
    }
    if (rc == MML_OK && (!o->pooled || !o->seq)) rc = mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
    return rc;
}
