/* Sequential networks from JSON: each layer is a row of its type's table
 * (keys, shape rule, parameter set-up, forward), so adding a layer type is one
 * struct and three small functions. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/model.h"
#include "mml/ops.h"
#include "mml/safetensors.h"

#define MAX_LAYERS 128

typedef enum {
    L_LINEAR, L_CONV1D, L_CONV2D, L_BATCHNORM, L_LAYERNORM, L_RELU, L_LEAKY_RELU, L_GELU, L_SILU, L_TANH,
    L_SIGMOID, L_DROPOUT, L_MAX_POOL1D, L_MAX_POOL2D, L_AVG_POOL2D, L_GLOBAL_AVG_POOL, L_FLATTEN, L_UNSQUEEZE, L_COUNT
} layer_type;

static const char *const g_type_names[L_COUNT + 1] = {
    "linear", "conv1d", "conv2d", "batch_norm", "layer_norm", "relu", "leaky_relu", "gelu", "silu", "tanh",
    "sigmoid", "dropout", "max_pool1d", "max_pool2d", "avg_pool2d", "global_avg_pool", "flatten", "unsqueeze", NULL,
};

typedef struct layer {
    layer_type type;
    mml_tensor *w, *b, *rm, *rv;
    mml_conv_args conv;
    int k[2], s[2], p[2];
    float drop, eps, momentum, slope;
    int in_ndim, out_ndim;
    int64_t in[4], out[4];
} layer;

struct mml_model {
    mml_params *ps;
    bool owns_ps;
    char prefix[64]; /* "audio." for an encoder inside a larger model */
    layer layers[MAX_LAYERS];
    int n;
    int in_ndim;
    int64_t in[4];
    mml_rng rng; /* dropout masks */
};

mml_params *mml_model_params(mml_model *m) { return m->ps; }
mml_rng *mml_model_rng(mml_model *m) { return &m->rng; }

int mml_model_input_shape(const mml_model *m, int64_t *shape)
{
    memcpy(shape, m->in, (size_t)m->in_ndim * sizeof *shape);
    return m->in_ndim;
}

int64_t mml_model_output_size(const mml_model *m)
{
    const layer *l = &m->layers[m->n - 1];
    return mml_shape_numel(l->out_ndim, l->out);
}

void mml_model_free(mml_model *m)
{
    if (!m) return;
    if (m->owns_ps) mml_params_free(m->ps);
    mml_free(m);
}

/* ---- building ---- */

static void uniform_init(mml_tensor *t, float bound, mml_rng *r)
{
    for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = (2.0f * mml_rng_uniform(r) - 1.0f) * bound;
}

static mml_tensor *add_param(mml_model *m, int i, const char *name, int ndim, const int64_t *shape, bool buffer)
{
    char full[160];
    snprintf(full, sizeof full, "%s%d.%s", m->prefix, i, name);
    return buffer ? mml_params_add_buffer(m->ps, full, ndim, shape) : mml_params_add(m->ps, full, ndim, shape);
}

static mml_status read_pair(const mml_cfg_node *n, const char *key, int def, int out[2])
{
    int64_t pair[2], one;
    int len = mml_cfg_ints(n, key, pair, 2);
    if (len == 2) {
        out[0] = (int)pair[0];
        out[1] = (int)pair[1];
        return MML_OK;
    }
    mml_error_clear();
    if (mml_cfg_int(n, key, def, &one) != MML_OK)
        return mml_cfg_error(n, key, "expected an integer or a pair of integers");
    out[0] = out[1] = (int)one;
    return MML_OK;
}

static mml_status need_rank(const mml_cfg_node *n, const layer *l, int rank, const char *what)
{
    if (l->in_ndim == rank) return MML_OK;
    return mml_cfg_error(n, NULL, "%s expects %s input, but the previous layer gives %d dims",
                         g_type_names[l->type], what, l->in_ndim);
}

static mml_status build_linear(mml_model *m, int i, layer *l, const mml_cfg_node *n)
{
    int64_t out, in_declared;
    bool bias;
    mml_status rc = need_rank(n, l, 1, "a flat [features]");
    if (rc == MML_OK) rc = mml_cfg_int_req(n, "out", &out);
    if (rc == MML_OK) rc = mml_cfg_int(n, "in", l->in[0], &in_declared);
    if (rc == MML_OK) rc = mml_cfg_bool(n, "bias", true, &bias);
    if (rc != MML_OK) return rc;
    if (out < 1) return mml_cfg_error(n, "out", "must be positive");
    if (in_declared != l->in[0])
        return mml_cfg_error(n, "in", "is %lld but the previous layer gives %lld features", (long long)in_declared,
                             (long long)l->in[0]);
    l->w = add_param(m, i, "weight", 2, (int64_t[]){ out, l->in[0] }, false);
    l->b = bias ? add_param(m, i, "bias", 1, (int64_t[]){ out }, false) : NULL;
    if (!l->w || (bias && !l->b)) return mml_last_status();
    float bound = 1.0f / sqrtf((float)l->in[0]); /* kaiming_uniform(a=sqrt(5)) and torch's bias rule */
    uniform_init(l->w, bound, &m->rng);
    if (l->b) uniform_init(l->b, bound, &m->rng);
    l->out_ndim = 1;
    l->out[0] = out;
    return MML_OK;
}

static mml_status build_conv(mml_model *m, int i, layer *l, const mml_cfg_node *n)
{
    bool two = l->type == L_CONV2D;
    int64_t out, groups;
    bool bias;
    int k[2] = { 0 }, s[2] = { 0 }, p[2] = { 0 }, d[2] = { 0 };
    mml_status rc = need_rank(n, l, two ? 3 : 2, two ? "[channels, height, width]" : "[channels, length]");
    if (rc == MML_OK) rc = mml_cfg_int_req(n, "out", &out);
    if (rc == MML_OK) rc = read_pair(n, "kernel", 3, k);
    if (rc == MML_OK) rc = read_pair(n, "stride", 1, s);
    if (rc == MML_OK) rc = read_pair(n, "padding", 0, p);
    if (rc == MML_OK) rc = read_pair(n, "dilation", 1, d);
    if (rc == MML_OK) rc = mml_cfg_int(n, "groups", 1, &groups);
    if (rc == MML_OK) rc = mml_cfg_bool(n, "bias", true, &bias);
    if (rc != MML_OK) return rc;
    int64_t cin = l->in[0];
    if (out < 1 || groups < 1 || cin % groups || out % groups)
        return mml_cfg_error(n, "groups", "must divide the input (%lld) and output (%lld) channels", (long long)cin,
                             (long long)out);
    if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1 || p[0] < 0 || p[1] < 0 || d[0] < 1 || d[1] < 1)
        return mml_cfg_error(n, NULL, "kernel, stride, dilation must be positive and padding non-negative");
    l->conv = (mml_conv_args){ { s[0], s[1] }, { p[0], p[1] }, { d[0], d[1] }, { 0, 0 }, (int)groups };
    int64_t H = two ? l->in[1] : 1, W = l->in[two ? 2 : 1];
    int kh = two ? k[0] : 1, kw = k[two ? 1 : 0];
    int64_t fh = H + 2 * (two ? p[0] : 0) - (two ? d[0] : 1) * (kh - 1) - 1;
    int64_t fw = W + 2 * p[two ? 1 : 0] - d[two ? 1 : 0] * (kw - 1) - 1;
    if (fh < 0 || fw < 0) return mml_cfg_error(n, "kernel", "is larger than the padded input");
    if (!two) {
        l->conv.stride[0] = s[0];
        l->conv.padding[0] = p[0];
        l->conv.dilation[0] = d[0];
    }
    int64_t wshape[4] = { out, cin / groups, kh, kw };
    if (!two) wshape[2] = kw;
    l->w = add_param(m, i, "weight", two ? 4 : 3, wshape, false);
    l->b = bias ? add_param(m, i, "bias", 1, (int64_t[]){ out }, false) : NULL;
    if (!l->w || (bias && !l->b)) return mml_last_status();
    float bound = 1.0f / sqrtf((float)(cin / groups * kh * kw));
    uniform_init(l->w, bound, &m->rng);
    if (l->b) uniform_init(l->b, bound, &m->rng);
    l->out_ndim = two ? 3 : 2;
    l->out[0] = out;
    if (two) {
        l->out[1] = fh / s[0] + 1;
        l->out[2] = fw / s[1] + 1;
    } else l->out[1] = fw / s[0] + 1;
    return MML_OK;
}

static mml_status build_norm(mml_model *m, int i, layer *l, const mml_cfg_node *n)
{
    double eps, momentum;
    mml_status rc = mml_cfg_float(n, "eps", 1e-5, &eps);
    if (rc == MML_OK) rc = mml_cfg_float(n, "momentum", 0.1, &momentum);
    if (rc != MML_OK) return rc;
    l->eps = (float)eps;
    l->momentum = (float)momentum;
    int64_t C = l->type == L_BATCHNORM ? l->in[0] : l->in[l->in_ndim - 1];
    if (l->type == L_BATCHNORM && l->in_ndim > 3)
        return mml_cfg_error(n, NULL, "batch_norm takes [features], [channels, length] or [channels, h, w]");
    l->w = add_param(m, i, "weight", 1, &C, false);
    l->b = add_param(m, i, "bias", 1, &C, false);
    if (l->type == L_BATCHNORM) {
        l->rm = add_param(m, i, "running_mean", 1, &C, true);
        l->rv = add_param(m, i, "running_var", 1, &C, true);
        if (!l->rm || !l->rv) return mml_last_status();
        for (int64_t c = 0; c < C; c++) mml_f32(l->rv)[c] = 1.0f;
    }
    if (!l->w || !l->b) return mml_last_status();
    for (int64_t c = 0; c < C; c++) mml_f32(l->w)[c] = 1.0f;
    l->out_ndim = l->in_ndim;
    memcpy(l->out, l->in, sizeof l->out);
    return MML_OK;
}

static mml_status build_pool(layer *l, const mml_cfg_node *n)
{
    bool two = l->type != L_MAX_POOL1D;
    mml_status rc = need_rank(n, l, two ? 3 : 2, two ? "[channels, height, width]" : "[channels, length]");
    if (rc == MML_OK) rc = read_pair(n, "kernel", 2, l->k);
    if (rc == MML_OK) rc = read_pair(n, "stride", 0, l->s);
    if (rc == MML_OK) rc = read_pair(n, "padding", 0, l->p);
    if (rc != MML_OK) return rc;
    for (int d = 0; d < 2; d++) {
        if (l->s[d] == 0) l->s[d] = l->k[d];
        if (l->k[d] < 1 || l->s[d] < 1 || l->p[d] < 0 || 2 * l->p[d] > l->k[d])
            return mml_cfg_error(n, NULL, "kernel and stride must be positive, padding at most half the kernel");
    }
    l->out_ndim = l->in_ndim;
    l->out[0] = l->in[0];
    for (int d = 0; d < (two ? 2 : 1); d++) {
        int64_t size = l->in[1 + d], span = size + 2 * l->p[d] - l->k[d];
        if (span < 0) return mml_cfg_error(n, "kernel", "is larger than the input (%lld)", (long long)size);
        l->out[1 + d] = span / l->s[d] + 1;
    }
    return MML_OK;
}

static mml_status build_shape_only(layer *l, const mml_cfg_node *n)
{
    l->out_ndim = l->in_ndim;
    memcpy(l->out, l->in, sizeof l->out);
    if (l->type == L_UNSQUEEZE) { /* a channel axis of 1: [40, 64] log-mel -> [1, 40, 64] for conv2d */
        if (l->in_ndim > 3) return need_rank(n, l, 3, "at most 3 dims");
        l->out_ndim = l->in_ndim + 1;
        l->out[0] = 1;
        memcpy(l->out + 1, l->in, (size_t)l->in_ndim * sizeof *l->in);
    } else if (l->type == L_FLATTEN) {
        l->out_ndim = 1;
        l->out[0] = mml_shape_numel(l->in_ndim, l->in);
    } else if (l->type == L_GLOBAL_AVG_POOL) {
        if (l->in_ndim < 2) return need_rank(n, l, 3, "[channels, ...]");
        l->out_ndim = 1;
    } else if (l->type == L_DROPOUT) {
        double p;
        mml_status rc = mml_cfg_float(n, "p", 0.5, &p);
        if (rc != MML_OK) return rc;
        if (p < 0 || p >= 1) return mml_cfg_error(n, "p", "must be in [0, 1)");
        l->drop = (float)p;
    } else if (l->type == L_LEAKY_RELU) {
        double s;
        mml_status rc = mml_cfg_float(n, "slope", 0.01, &s);
        if (rc != MML_OK) return rc;
        l->slope = (float)s;
    }
    return MML_OK;
}

static const char *const g_layer_keys[] = { "type", "out", "in", "bias", "kernel", "stride", "padding",
                                            "dilation", "groups", "eps", "momentum", "p", "slope", NULL };

static mml_status build_layer(mml_model *m, int i, const mml_cfg_node *n)
{
    layer *l = &m->layers[i];
    int type;
    mml_status rc = mml_cfg_choice(n, "type", g_type_names, -1, &type);
    if (rc == MML_OK) rc = mml_cfg_check_keys(n, g_layer_keys);
    if (rc != MML_OK) return rc;
    l->type = (layer_type)type;
    const layer *prev = i ? &m->layers[i - 1] : NULL;
    l->in_ndim = prev ? prev->out_ndim : m->in_ndim;
    memcpy(l->in, prev ? prev->out : m->in, sizeof l->in);
    switch (l->type) {
    case L_LINEAR: return build_linear(m, i, l, n);
    case L_CONV1D:
    case L_CONV2D: return build_conv(m, i, l, n);
    case L_BATCHNORM:
    case L_LAYERNORM: return build_norm(m, i, l, n);
    case L_MAX_POOL1D:
    case L_MAX_POOL2D:
    case L_AVG_POOL2D: return build_pool(l, n);
    default: return build_shape_only(l, n);
    }
}

static mml_status build_layers(const mml_cfg_node *node, mml_params *ps, const char *prefix, int in_ndim,
                               const int64_t *in, uint64_t seed, mml_model **out)
{
    *out = NULL;
    mml_cfg_node layers;
    mml_status rc = mml_cfg_array(node, "layers", true, &layers);
    if (rc != MML_OK) return rc;
    int n = mml_cfg_len(&layers);
    if (n < 1 || n > MAX_LAYERS) return mml_cfg_error(node, "layers", "must hold 1 to %d layers", MAX_LAYERS);
    mml_model *m = mml_calloc(1, sizeof *m);
    if (!m) return MML_ERR_NOMEM;
    m->owns_ps = !ps;
    if (!(m->ps = ps ? ps : mml_params_create())) {
        mml_free(m);
        return MML_ERR_NOMEM;
    }
    snprintf(m->prefix, sizeof m->prefix, "%s", prefix);
    mml_rng_seed(&m->rng, seed);
    m->in_ndim = in_ndim;
    memcpy(m->in, in, (size_t)in_ndim * sizeof *in);
    for (int i = 0; i < n && rc == MML_OK; i++) {
        mml_cfg_node item = mml_cfg_at(&layers, i);
        if (!mml_cfg_present(&item)) rc = mml_cfg_error(&layers, NULL, "item %d is not an object", i);
        else rc = build_layer(m, i, &item);
        m->n = i + 1;
    }
    if (rc != MML_OK) {
        mml_model_free(m);
        return rc;
    }
    *out = m;
    return MML_OK;
}

mml_status mml_model_build(const mml_cfg_node *node, uint64_t seed, mml_model **out)
{
    *out = NULL;
    int64_t in[4];
    static const char *const keys[] = { "input", "layers", NULL };
    mml_status rc = mml_cfg_check_keys(node, keys);
    if (rc != MML_OK) return rc;
    int in_ndim = mml_cfg_ints(node, "input", in, 4);
    if (in_ndim < 1) return in_ndim < 0 ? mml_last_status() : mml_cfg_error(node, "input", "is required: the shape of one sample, e.g. [1, 28, 28]");
    for (int d = 0; d < in_ndim; d++)
        if (in[d] < 1) return mml_cfg_error(node, "input", "dims must be positive");
    return build_layers(node, NULL, "", in_ndim, in, seed, out);
}

mml_status mml_model_build_in(const mml_cfg_node *node, mml_params *ps, const char *prefix, int in_ndim,
                              const int64_t *in, uint64_t seed, mml_model **out)
{
    return build_layers(node, ps, prefix, in_ndim, in, seed, out);
}

/* ---- forward ---- */

static mml_tensor *layer_forward(mml_ctx *ctx, mml_model *m, layer *l, mml_tensor *x)
{
    switch (l->type) {
    case L_LINEAR: return mml_linear(ctx, x, l->w, l->b);
    case L_CONV1D: return mml_conv1d(ctx, x, l->w, l->b, &l->conv);
    case L_CONV2D: return mml_conv2d(ctx, x, l->w, l->b, &l->conv);
    case L_BATCHNORM: return mml_batch_norm(ctx, x, l->w, l->b, l->rm, l->rv, l->momentum, l->eps);
    case L_LAYERNORM: return mml_layer_norm(ctx, x, l->w, l->b, l->eps);
    case L_RELU: return mml_relu(ctx, x);
    case L_LEAKY_RELU: return mml_leaky_relu(ctx, x, l->slope);
    case L_GELU: return mml_gelu(ctx, x);
    case L_SILU: return mml_silu(ctx, x);
    case L_TANH: return mml_tanh(ctx, x);
    case L_SIGMOID: return mml_sigmoid(ctx, x);
    case L_DROPOUT: return mml_dropout(ctx, x, l->drop, &m->rng);
    case L_MAX_POOL1D: return mml_max_pool1d(ctx, x, l->k[0], l->s[0], l->p[0]);
    case L_MAX_POOL2D: return mml_max_pool2d(ctx, x, l->k, l->s, l->p);
    case L_AVG_POOL2D: return mml_avg_pool2d(ctx, x, l->k, l->s, l->p);
    case L_GLOBAL_AVG_POOL: {
        int64_t B = x->shape[0], C = x->shape[1];
        x = mml_reshape(ctx, x, 3, (int64_t[]){ B, C, -1 });
        return mml_mean(ctx, x, 2, false);
    }
    case L_FLATTEN: return mml_reshape(ctx, x, 2, (int64_t[]){ x->shape[0], -1 });
    case L_UNSQUEEZE: {
        int64_t shape[5] = { x->shape[0], 1 };
        memcpy(shape + 2, x->shape + 1, (size_t)(x->ndim - 1) * sizeof *shape);
        return mml_reshape(ctx, x, x->ndim + 1, shape);
    }
    default: return NULL;
    }
}

static bool is_type(const mml_model *m, int i, layer_type type) { return i < m->n && m->layers[i].type == type; }

/* A max_pool2d layer with 2 x 2 windows, stride 2, no padding. */
static bool is_pool_2x2(const mml_model *m, int i)
{
    const layer *l = &m->layers[i];
    return is_type(m, i, L_MAX_POOL2D) && l->k[0] == 2 && l->k[1] == 2 && l->s[0] == 2 && l->s[1] == 2 && !l->p[0] &&
           !l->p[1];
}

/* How many layers from i run as one op: conv or linear then ReLU, and conv2d
 * [then ReLU] then 2 x 2 max pooling (same values, the tensors in between
 * never stored); 1 if none. */
static int fused_run(const mml_model *m, int i)
{
    int t = m->layers[i].type;
    if (t != L_CONV1D && t != L_CONV2D && t != L_LINEAR) return 1;
    int n = is_type(m, i + 1, L_RELU) ? 2 : 1;
    if (t == L_CONV2D && is_pool_2x2(m, i + n)) n++;
    return n;
}

static mml_tensor *forward_fused(mml_ctx *ctx, const mml_model *m, int i, int run, mml_tensor *x)
{
    const layer *l = &m->layers[i];
    mml_conv_args a = l->conv;
    a.relu = is_type(m, i + 1, L_RELU);
    a.max_pool2x2 = l->type == L_CONV2D && is_pool_2x2(m, i + run - 1);
    if (l->type == L_LINEAR) return mml_linear_relu(ctx, x, l->w, l->b);
    return l->type == L_CONV2D ? mml_conv2d(ctx, x, l->w, l->b, &a) : mml_conv1d(ctx, x, l->w, l->b, &a);
}

static mml_tensor *forward_layers(mml_ctx *ctx, mml_model *m, mml_tensor *x, mml_tensor **seq)
{
    for (int i = 0; i < m->n && x; i++) {
        if (seq && x->ndim > 2) *seq = x;
        int run = fused_run(m, i);
        if (run > 1) {
            x = forward_fused(ctx, m, i, run, x);
            i += run - 1;
            continue;
        }
        x = layer_forward(ctx, m, &m->layers[i], x);
    }
    if (seq && x && x->ndim > 2) *seq = x;
    return x;
}

/* Without gradients, a batch larger than this runs EVAL_CHUNK samples at a
 * time, the arena rewound after each: the intermediates alive at once are one
 * chunk's, not the whole batch's. Samples are independent then (dropout off,
 * batch norm on running statistics; in training the batch's statistics would
 * couple them, so only evaluation mode chunks). */
#define EVAL_CHUNK 32

/* The per-sample shape forward_layers reports as seq: of the last layer
 * input, or the output, with more than one dim; 0 if none. */
static int seq_shape(const mml_model *m, int64_t *shape)
{
    int nd = 0;
    for (int i = 0; i <= m->n; i++) {
        const int64_t *d = i < m->n ? m->layers[i].in : m->layers[m->n - 1].out;
        int dn = i < m->n ? m->layers[i].in_ndim : m->layers[m->n - 1].out_ndim;
        if (dn > 1) memcpy(shape, d, (size_t)(nd = dn) * sizeof *shape);
    }
    return nd;
}

static mml_tensor *batch_of(mml_ctx *ctx, int64_t N, int nd, const int64_t *per_sample)
{
    int64_t shape[MML_MAX_DIMS] = { N };
    memcpy(shape + 1, per_sample, (size_t)nd * sizeof *shape);
    return mml_new(ctx, MML_F32, nd + 1, shape);
}

static void copy_rows(mml_tensor *dst, int64_t s0, const mml_tensor *src)
{
    int64_t per = dst->numel / dst->shape[0];
    memcpy(mml_f32(dst) + s0 * per, mml_f32(src), (size_t)src->numel * sizeof(float));
}

static mml_tensor *forward_chunked(mml_ctx *ctx, mml_model *m, mml_tensor *x, mml_tensor **seq)
{
    int64_t N = x->shape[0], in_per = x->numel / N, oshape[4], sshape[4];
    int ond = mml_model_output_shape(m, oshape), snd = seq ? seq_shape(m, sshape) : 0;
    mml_tensor *out = batch_of(ctx, N, ond, oshape), *sq = snd ? batch_of(ctx, N, snd, sshape) : NULL;
    if (!out || (snd && !sq)) return NULL;
    for (int64_t s0 = 0; s0 < N; s0 += EVAL_CHUNK) {
        int64_t shape[MML_MAX_DIMS];
        memcpy(shape, x->shape, sizeof shape);
        shape[0] = N - s0 < EVAL_CHUNK ? N - s0 : EVAL_CHUNK;
        mml_arena_mark mark = mml_arena_mark_now(ctx);
        mml_tensor *part_seq = NULL;
        mml_tensor *y = forward_layers(ctx, m, mml_wrap(ctx, MML_F32, mml_f32(x) + s0 * in_per, x->ndim, shape),
                                       sq ? &part_seq : NULL);
        if (!y) return NULL;
        copy_rows(out, s0, y);
        if (sq) copy_rows(sq, s0, part_seq);
        mml_arena_rewind(ctx, mark);
    }
    if (seq) *seq = sq;
    return out;
}

mml_tensor *mml_model_forward_seq(mml_ctx *ctx, mml_model *m, mml_tensor *x, mml_tensor **seq)
{
    if (seq) *seq = NULL;
    if (!x) return NULL;
    bool ok = x->ndim == m->in_ndim + 1;
    for (int d = 0; ok && d < m->in_ndim; d++) ok = x->shape[d + 1] == m->in[d];
    if (!ok) {
        char buf[96];
        mml_error(MML_ERR_SHAPE, "model: input has shape %s, expected [batch, model.input]", mml_shape_str(x, buf, sizeof buf));
        return NULL;
    }
    if (!mml_grad_enabled(ctx) && !mml_training(ctx) && x->dtype == MML_F32 && x->shape[0] > EVAL_CHUNK)
        return forward_chunked(ctx, m, x, seq);
    return forward_layers(ctx, m, x, seq);
}

mml_tensor *mml_model_forward(mml_ctx *ctx, mml_model *m, mml_tensor *x)
{
    return mml_model_forward_seq(ctx, m, x, NULL);
}

int mml_model_output_shape(const mml_model *m, int64_t *shape)
{
    const layer *l = &m->layers[m->n - 1];
    memcpy(shape, l->out, (size_t)l->out_ndim * sizeof *shape);
    return l->out_ndim;
}

void mml_model_summary(const mml_model *m, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->n && k < cap; i++) {
        const layer *l = &m->layers[i];
        int64_t np = (l->w ? l->w->numel : 0) + (l->b ? l->b->numel : 0);
        k += (size_t)snprintf(buf + k, cap - k, "  %2d %-16s [", i, g_type_names[l->type]);
        for (int d = 0; d < l->out_ndim && k < cap; d++)
            k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld", (long long)l->out[d]);
        if (k < cap) k += (size_t)snprintf(buf + k, cap - k, "] %lld params\n", (long long)np);
    }
}

/* ---- files ---- */

mml_status mml_params_save_model(const mml_params *ps, const char *path, const char *format, const char *config_json,
                                  const char *classes_json)
{
    mml_st_writer *w = mml_st_writer_create();
    if (!w) return MML_ERR_NOMEM;
    mml_status rc = mml_st_writer_meta(w, "mml.format", format);
    if (rc == MML_OK && config_json) rc = mml_st_writer_meta(w, "mml.config", config_json);
    if (rc == MML_OK && classes_json) rc = mml_st_writer_meta(w, "mml.classes", classes_json);
    for (int i = 0; rc == MML_OK && i < mml_params_count(ps); i++) {
        const mml_tensor *t = mml_params_at(ps, i);
        rc = mml_st_writer_add(w, t->name, t, MML_F32);
    }
    if (rc == MML_OK) rc = mml_st_writer_save(w, path);
    mml_st_writer_free(w);
    return rc;
}

mml_status mml_model_save(const mml_model *m, const char *path, const char *config_json, const char *classes_json)
{
    return mml_params_save_model(m->ps, path, "mml-model-1", config_json, classes_json);
}

mml_status mml_params_load(mml_params *ps, const mml_safetensors *st, const char *what)
{
    for (int i = 0; i < mml_params_count(ps); i++) {
        mml_tensor *t = mml_params_at(ps, i);
        if (mml_safetensors_read_into(st, t->name, t) != MML_OK) {
            mml_error_prefix("%s: ", what);
            return mml_last_status();
        }
    }
    return MML_OK;
}

mml_status mml_model_load_params(mml_model *m, const mml_safetensors *st, const char *what)
{
    return mml_params_load(m->ps, st, what);
}

mml_status mml_model_load(const char *path, mml_model **out, mml_config **config)
{
    *out = NULL;
    *config = NULL;
    mml_safetensors *st;
    mml_status rc = mml_safetensors_map(path, &st);
    if (rc != MML_OK) return rc;
    const char *text = mml_safetensors_meta(st, "mml.config");
    mml_cfg_node root, model_node;
    if (!text) rc = mml_error(MML_ERR_FORMAT, "%s: not an mml model (no mml.config metadata)", path);
    if (rc == MML_OK) rc = mml_config_parse(text, path, config);
    if (rc == MML_OK) {
        root = mml_config_root(*config);
        rc = mml_cfg_object(&root, "model", true, &model_node);
    }
    if (rc == MML_OK) rc = mml_model_build(&model_node, 0, out);
    if (rc == MML_OK) rc = mml_model_load_params(*out, st, path);
    mml_safetensors_free(st);
    if (rc != MML_OK) {
        mml_model_free(*out);
        mml_config_free(*config);
        *out = NULL;
        *config = NULL;
    }
    return rc;
}
