/* Conv and batch-norm modules and the blocks built from them: the ResNet
 * basic block, the ViT patch embedding and the MLP. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/nn.h"

static void join(char *buf, size_t cap, const char *prefix, const char *name)
{
    snprintf(buf, cap, "%s%s%s", prefix, prefix[0] ? "." : "", name);
}

mml_status mml_nn_conv2d_init(mml_nn_conv2d *c, mml_params *ps, const char *prefix, int64_t in, int64_t out,
                              int kernel, int stride, int padding, bool bias, mml_rng *rng)
{
    char name[256];
    join(name, sizeof name, prefix, "weight");
    c->weight = mml_params_add(ps, name, 4, (int64_t[]){ out, in, kernel, kernel });
    join(name, sizeof name, prefix, "bias");
    c->bias = bias ? mml_params_add(ps, name, 1, &out) : NULL;
    if (!c->weight || (bias && !c->bias)) return mml_last_status();
    c->args = mml_conv_args_default();
    c->args.stride[0] = c->args.stride[1] = stride;
    c->args.padding[0] = c->args.padding[1] = padding;
    float bound = 1.0f / sqrtf((float)(in * kernel * kernel));
    for (int64_t i = 0; i < c->weight->numel; i++) mml_f32(c->weight)[i] = (2.0f * mml_rng_uniform(rng) - 1.0f) * bound;
    for (int64_t i = 0; c->bias && i < out; i++) mml_f32(c->bias)[i] = (2.0f * mml_rng_uniform(rng) - 1.0f) * bound;
    return MML_OK;
}

mml_tensor *mml_nn_conv2d_forward(mml_ctx *ctx, const mml_nn_conv2d *c, mml_tensor *x)
{
    return mml_conv2d(ctx, x, c->weight, c->bias, &c->args);
}

mml_status mml_nn_batch_norm_init(mml_nn_batch_norm *b, mml_params *ps, const char *prefix, int64_t channels)
{
    char name[256];
    const char *names[4] = { "weight", "bias", "running_mean", "running_var" };
    mml_tensor **slots[4] = { &b->weight, &b->bias, &b->running_mean, &b->running_var };
    for (int k = 0; k < 4; k++) {
        join(name, sizeof name, prefix, names[k]);
        *slots[k] = k < 2 ? mml_params_add(ps, name, 1, &channels) : mml_params_add_buffer(ps, name, 1, &channels);
        if (!*slots[k]) return mml_last_status();
    }
    for (int64_t c = 0; c < channels; c++) mml_f32(b->weight)[c] = mml_f32(b->running_var)[c] = 1.0f;
    b->momentum = 0.1f;
    b->eps = 1e-5f;
    return MML_OK;
}

mml_tensor *mml_nn_batch_norm_forward(mml_ctx *ctx, const mml_nn_batch_norm *b, mml_tensor *x)
{
    return mml_batch_norm(ctx, x, b->weight, b->bias, b->running_mean, b->running_var, b->momentum, b->eps);
}

mml_status mml_nn_resnet_block_init(mml_nn_resnet_block *b, mml_params *ps, const char *prefix, int64_t in,
                                    int64_t out, int stride, mml_rng *rng)
{
    char name[256];
    memset(b, 0, sizeof *b);
    join(name, sizeof name, prefix, "conv1");
    mml_status rc = mml_nn_conv2d_init(&b->conv1, ps, name, in, out, 3, stride, 1, false, rng);
    join(name, sizeof name, prefix, "bn1");
    if (rc == MML_OK) rc = mml_nn_batch_norm_init(&b->bn1, ps, name, out);
    join(name, sizeof name, prefix, "conv2");
    if (rc == MML_OK) rc = mml_nn_conv2d_init(&b->conv2, ps, name, out, out, 3, 1, 1, false, rng);
    join(name, sizeof name, prefix, "bn2");
    if (rc == MML_OK) rc = mml_nn_batch_norm_init(&b->bn2, ps, name, out);
    b->downsample = stride != 1 || in != out;
    if (rc == MML_OK && b->downsample) {
        join(name, sizeof name, prefix, "downsample.0");
        rc = mml_nn_conv2d_init(&b->down_conv, ps, name, in, out, 1, stride, 0, false, rng);
        join(name, sizeof name, prefix, "downsample.1");
        if (rc == MML_OK) rc = mml_nn_batch_norm_init(&b->down_bn, ps, name, out);
    }
    return rc;
}

mml_tensor *mml_nn_resnet_block_forward(mml_ctx *ctx, const mml_nn_resnet_block *b, mml_tensor *x)
{
    mml_tensor *h = mml_relu(ctx, mml_nn_batch_norm_forward(ctx, &b->bn1, mml_nn_conv2d_forward(ctx, &b->conv1, x)));
    h = mml_nn_batch_norm_forward(ctx, &b->bn2, mml_nn_conv2d_forward(ctx, &b->conv2, h));
    mml_tensor *skip = b->downsample
        ? mml_nn_batch_norm_forward(ctx, &b->down_bn, mml_nn_conv2d_forward(ctx, &b->down_conv, x)) : x;
    return mml_relu(ctx, mml_add(ctx, h, skip));
}

mml_status mml_nn_patch_embed_init(mml_nn_patch_embed *p, mml_params *ps, const char *prefix, int64_t channels,
                                   int64_t image_size, int patch, int64_t dim, mml_rng *rng)
{
    if (patch < 1 || image_size % patch)
        return mml_error(MML_ERR_ARG, "%s: image size %lld is not a multiple of the patch size %d", prefix,
                         (long long)image_size, patch);
    char name[256];
    p->patches = (image_size / patch) * (image_size / patch);
    p->dim = dim;
    join(name, sizeof name, prefix, "proj");
    mml_status rc = mml_nn_conv2d_init(&p->proj, ps, name, channels, dim, patch, patch, 0, true, rng);
    join(name, sizeof name, prefix, "cls_token");
    if (rc == MML_OK && !(p->cls_token = mml_params_add(ps, name, 3, (int64_t[]){ 1, 1, dim }))) rc = mml_last_status();
    join(name, sizeof name, prefix, "pos_embed");
    if (rc == MML_OK && !(p->pos_embed = mml_params_add(ps, name, 3, (int64_t[]){ 1, p->patches + 1, dim })))
        rc = mml_last_status();
    if (rc != MML_OK) return rc;
    for (int64_t i = 0; i < dim; i++) mml_f32(p->cls_token)[i] = 0.02f * mml_rng_normal(rng);
    for (int64_t i = 0; i < p->pos_embed->numel; i++) mml_f32(p->pos_embed)[i] = 0.02f * mml_rng_normal(rng);
    return MML_OK;
}

mml_tensor *mml_nn_patch_embed_forward(mml_ctx *ctx, const mml_nn_patch_embed *p, mml_tensor *x)
{
    if (!x) return NULL;
    int64_t B = x->shape[0];
    mml_tensor *h = mml_nn_conv2d_forward(ctx, &p->proj, x);                 /* [B, D, gh, gw] */
    h = mml_reshape(ctx, h, 3, (int64_t[]){ B, p->dim, -1 });
    h = mml_transpose(ctx, h, 1, 2);                                          /* [B, N, D] */
    mml_tensor *cls = mml_add(ctx, mml_zeros(ctx, MML_F32, 3, (int64_t[]){ B, 1, p->dim }), p->cls_token);
    return mml_add(ctx, mml_concat(ctx, (mml_tensor *[]){ cls, h }, 2, 1), p->pos_embed);
}

mml_status mml_nn_mlp_init(mml_nn_mlp *m, mml_params *ps, const char *prefix, const int64_t *sizes, int n_sizes,
                           mml_activation act, float dropout, mml_rng *rng)
{
    if (n_sizes < 2 || n_sizes - 1 > MML_MLP_MAX_LAYERS)
        return mml_error(MML_ERR_ARG, "%s: an MLP needs 2 to %d sizes", prefix, MML_MLP_MAX_LAYERS + 1);
    m->n = n_sizes - 1;
    m->act = act;
    m->dropout = dropout;
    int per = dropout > 0.0f ? 3 : 2; /* Linear, act[, Dropout] per hidden layer */
    for (int i = 0; i < m->n; i++) {
        char name[256], idx[16];
        snprintf(idx, sizeof idx, "%d", i * per);
        join(name, sizeof name, prefix, idx);
        mml_status rc = mml_nn_linear_init(&m->layers[i], ps, name, sizes[i], sizes[i + 1], true, rng);
        if (rc != MML_OK) return rc;
    }
    return MML_OK;
}

mml_tensor *mml_nn_mlp_forward(mml_ctx *ctx, const mml_nn_mlp *m, mml_tensor *x, mml_rng *rng)
{
    for (int i = 0; i < m->n && x; i++) {
        const mml_nn_linear *l = &m->layers[i];
        if (i + 1 == m->n) return mml_nn_linear_forward(ctx, l, x);
        x = m->act == MML_ACT_GELU ? mml_gelu(ctx, mml_nn_linear_forward(ctx, l, x))
                                   : mml_linear_relu(ctx, x, l->weight, l->bias);
        x = mml_dropout(ctx, x, m->dropout, rng);
    }
    return x;
}
