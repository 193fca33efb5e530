#include <math.h>
#include <stdio.h>

#include "mml/nn.h"

static mml_tensor *param(mml_params *ps, const char *prefix, const char *name, int ndim, const int64_t *shape)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s%s", prefix && prefix[0] ? prefix : "", prefix && prefix[0] ? "." : "", name);
    return mml_params_add(ps, full, ndim, shape);
}

static void uniform(mml_tensor *t, float bound, mml_rng *r)
{
    for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = (2.0f * mml_rng_uniform(r) - 1.0f) * bound;
}

mml_status mml_nn_linear_init(mml_nn_linear *l, mml_params *ps, const char *prefix, int64_t in, int64_t out, bool bias,
                              mml_rng *rng)
{
    l->weight = param(ps, prefix, "weight", 2, (int64_t[]){ out, in });
    l->bias = bias ? param(ps, prefix, "bias", 1, &out) : NULL;
    if (!l->weight || (bias && !l->bias)) return mml_last_status();
    float bound = 1.0f / sqrtf((float)in); /* kaiming_uniform(a=sqrt(5)); bias: 1/sqrt(fan_in) */
    uniform(l->weight, bound, rng);
    if (l->bias) uniform(l->bias, bound, rng);
    return MML_OK;
}

mml_tensor *mml_nn_linear_forward(mml_ctx *ctx, const mml_nn_linear *l, mml_tensor *x)
{
    return mml_linear(ctx, x, l->weight, l->bias);
}

mml_status mml_nn_layer_norm_init(mml_nn_layer_norm *l, mml_params *ps, const char *prefix, int64_t dim, float eps)
{
    l->weight = param(ps, prefix, "weight", 1, &dim);
    l->bias = param(ps, prefix, "bias", 1, &dim);
    l->eps = eps;
    if (!l->weight || !l->bias) return mml_last_status();
    for (int64_t i = 0; i < dim; i++) mml_f32(l->weight)[i] = 1.0f;
    return MML_OK;
}

mml_tensor *mml_nn_layer_norm_forward(mml_ctx *ctx, const mml_nn_layer_norm *l, mml_tensor *x)
{
    return mml_layer_norm(ctx, x, l->weight, l->bias, l->eps);
}

mml_status mml_nn_embedding_init(mml_nn_embedding *e, mml_params *ps, const char *prefix, int64_t vocab, int64_t dim,
                                 mml_rng *rng)
{
    e->weight = param(ps, prefix, "weight", 2, (int64_t[]){ vocab, dim });
    if (!e->weight) return mml_last_status();
    for (int64_t i = 0; i < e->weight->numel; i++) mml_f32(e->weight)[i] = mml_rng_normal(rng);
    return MML_OK;
}
