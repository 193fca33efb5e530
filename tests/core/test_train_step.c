/* A small CNN trained with plain SGD through the engine: the loss falls, and
 * after warm-up a whole step (forward, backward, update) performs no heap
 * allocation. Also split and causal masks, used by later layers. */
#include <math.h>
#include <string.h>

#include "core/op.h"
#include "mml/alloc.h"
#include "mml/ops.h"
#include "mml/params.h"
#include "mml/threads.h"
#include "test.h"

typedef struct tiny_cnn {
    mml_params *ps;
    mml_tensor *cw, *cb, *fw, *fb;
} tiny_cnn;

static void init(tiny_cnn *m, mml_rng *r)
{
    m->ps = mml_params_create();
    m->cw = mml_params_add(m->ps, "conv.weight", 4, (int64_t[]){ 4, 1, 3, 3 });
    m->cb = mml_params_add(m->ps, "conv.bias", 1, (int64_t[]){ 4 });
    m->fw = mml_params_add(m->ps, "fc.weight", 2, (int64_t[]){ 3, 4 * 4 * 4 });
    m->fb = mml_params_add(m->ps, "fc.bias", 1, (int64_t[]){ 3 });
    for (int i = 0; i < mml_params_count(m->ps); i++) {
        mml_tensor *t = mml_params_at(m->ps, i);
        for (int64_t k = 0; k < t->numel; k++) mml_f32(t)[k] = 0.2f * mml_rng_normal(r);
    }
}

/* Mean negative log-likelihood of the labels under the CNN. */
static mml_tensor *loss_of(mml_ctx *ctx, tiny_cnn *m, mml_tensor *x, mml_tensor *onehot)
{
    mml_conv_args a = mml_conv_args_default();
    a.padding[0] = a.padding[1] = 1;
    mml_tensor *h = mml_relu(ctx, mml_conv2d(ctx, x, m->cw, m->cb, &a));
    h = mml_max_pool2d(ctx, h, (int[]){ 2, 2 }, NULL, NULL);
    h = mml_reshape(ctx, h, 2, (int64_t[]){ x->shape[0], -1 });
    mml_tensor *logp = mml_log_softmax(ctx, mml_linear(ctx, h, m->fw, m->fb), -1);
    return mml_neg(ctx, mml_mean(ctx, mml_sum(ctx, mml_mul(ctx, logp, onehot), -1, false), MML_AXIS_ALL, false));
}

static void sgd(tiny_cnn *m, float lr)
{
    for (int i = 0; i < mml_params_count(m->ps); i++) {
        mml_tensor *t = mml_params_at(m->ps, i);
        for (int64_t k = 0; k < t->numel; k++) mml_f32(t)[k] -= lr * t->grad[k];
    }
    mml_params_zero_grad(m->ps);
}

TEST(train_step_learns_and_does_not_allocate_after_warmup)
{
    mml_rng r;
    mml_rng_seed(&r, 3);
    tiny_cnn m;
    init(&m, &r);
    /* 3 classes of 8x8 images: a bright row band, a column band, or noise. */
    enum { B = 12 };
    mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ B, 1, 8, 8 }, false);
    mml_tensor *y = mml_tensor_create(MML_F32, 2, (int64_t[]){ B, 3 }, false);
    for (int s = 0; s < B; s++) {
        int cls = s % 3;
        mml_f32(y)[s * 3 + cls] = 1.0f;
        for (int i = 0; i < 64; i++) {
            int row = i / 8, col = i % 8;
            float v = 0.1f * mml_rng_normal(&r);
            if ((cls == 0 && row == 3) || (cls == 1 && col == 4)) v += 1.0f;
            mml_f32(x)[s * 64 + i] = v;
        }
    }
    mml_ctx *ctx = mml_ctx_create();
    float first = 0.0f, last = 0.0f;
    uint64_t before = 0;
    for (int step = 0; step < 40; step++) {
        if (step == 3) before = mml_alloc_count();
        mml_ctx_reset(ctx);
        mml_tensor *loss = loss_of(ctx, &m, x, y);
        if (!loss) {
            tst_fail(__FILE__, __LINE__, "forward: %s", mml_last_error());
            break;
        }
        CHECK_OK(mml_backward(ctx, loss));
        if (step == 0) first = mml_f32(loss)[0];
        last = mml_f32(loss)[0];
        sgd(&m, 0.5f);
        if (step == 5)
            CHECK_MSG(mml_alloc_count() == before, "steps 3..5 allocated %llu times",
                      (unsigned long long)(mml_alloc_count() - before));
    }
    CHECK_MSG(last < 0.3f * first, "loss %g -> %g", first, last);
    mml_ctx_free(ctx);
    mml_tensor_free(x);
    mml_tensor_free(y);
    mml_params_free(m.ps);
}

TEST(split_and_causal_mask)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *x = mml_tensor_create(MML_F32, 2, (int64_t[]){ 2, 5 }, true);
    for (int i = 0; i < 10; i++) mml_f32(x)[i] = (float)i;
    mml_tensor *parts[2];
    CHECK_OK(mml_split(ctx, x, 1, 2, (int64_t[]){ 2, 3 }, parts));
    CHECK(parts[0]->shape[1] == 2 && parts[1]->shape[1] == 3 && mml_f32(parts[1])[3] == 7.0f);
    mml_tensor *s = mml_add(ctx, mml_sum(ctx, parts[0], MML_AXIS_ALL, false),
                            mml_mul_scalar(ctx, mml_sum(ctx, parts[1], MML_AXIS_ALL, false), 2.0f));
    CHECK_OK(mml_backward(ctx, s));
    CHECK(x->grad[1] == 1.0f && x->grad[2] == 2.0f && x->grad[9] == 2.0f);
    CHECK(mml_split(ctx, x, 1, 2, (int64_t[]){ 2, 2 }, parts) == MML_ERR_SHAPE);
    mml_tensor *m = mml_causal_mask(ctx, 3);
    static const float want[9] = { 0, 1, 1, 0, 0, 1, 0, 0, 0 };
    CHECK_CLOSE("causal mask", mml_f32(m), want, 9, 0, 0);
    mml_tensor_free(x);
    mml_ctx_free(ctx);
}

/* The reverse pass hands each intermediate's gradient back once its node has
 * run: a chain of 16 ops on one shape ends with 16 outputs in the arena but
 * only a couple of gradient blocks, and the input's gradient is still right. */
TEST(backward_reuses_released_gradients)
{
    enum { N = 64 * 64, DEPTH = 16 };
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *x = mml_tensor_create(MML_F32, 2, (int64_t[]){ 64, 64 }, true);
    for (int i = 0; i < N; i++) mml_f32(x)[i] = 0.001f * (float)(i % 97);
    mml_tensor *h = x;
    for (int d = 0; d < DEPTH; d++) h = mml_mul_scalar(ctx, h, 1.1f);
    size_t forward = mml_arena_used(ctx);
    CHECK_OK(mml_backward(ctx, mml_sum(ctx, h, MML_AXIS_ALL, false)));
    size_t block = N * sizeof(float);
    CHECK_MSG(mml_arena_used(ctx) - forward <= 3 * block, "backward took %zu bytes for %d gradients of %zu",
              mml_arena_used(ctx) - forward, DEPTH, block);
    float want = 1.0f;
    for (int d = 0; d < DEPTH; d++) want *= 1.1f;
    CHECK(fabsf(x->grad[5] - want) < 1e-5f * want);
    mml_tensor_free(x);
    mml_ctx_free(ctx);
}

/* mml_linear_relu is mml_relu(mml_linear(...)): same output and gradients. */
TEST(linear_relu_equals_linear_then_relu)
{
    mml_rng r;
    mml_rng_seed(&r, 5);
    mml_tensor *t[3] = { mml_tensor_create(MML_F32, 3, (int64_t[]){ 3, 7, 20 }, true),
                         mml_tensor_create(MML_F32, 2, (int64_t[]){ 33, 20 }, true),
                         mml_tensor_create(MML_F32, 1, (int64_t[]){ 33 }, true) };
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < t[k]->numel; i++) mml_f32(t[k])[i] = mml_rng_normal(&r);
    float *grads[2][3] = { { NULL } };
    mml_ctx *ctx[2] = { mml_ctx_create(), mml_ctx_create() };
    mml_tensor *outs[2];
    for (int fused = 0; fused < 2; fused++) {
        for (int k = 0; k < 3; k++) memset(t[k]->grad, 0, (size_t)t[k]->numel * sizeof(float));
        mml_tensor *y = fused ? mml_linear_relu(ctx[fused], t[0], t[1], t[2])
                              : mml_relu(ctx[fused], mml_linear(ctx[fused], t[0], t[1], t[2]));
        CHECK(y != NULL);
        if (!y) break;
        tst_backward_grads(ctx[fused], y, 9, t, 3, grads[fused]);
        outs[fused] = y;
    }
    if (grads[1][2]) {
        CHECK_CLOSE("fused output", mml_f32(outs[1]), mml_f32(outs[0]), outs[0]->numel, 0, 0);
        CHECK_CLOSE("fused dx", grads[1][0], grads[0][0], t[0]->numel, 0, 0);
        CHECK_CLOSE("fused dw", grads[1][1], grads[0][1], t[1]->numel, 0, 0);
        CHECK_CLOSE("fused db", grads[1][2], grads[0][2], t[2]->numel, 0, 0);
    }
    for (int f = 0; f < 2; f++) {
        mml_ctx_free(ctx[f]);
        for (int k = 0; k < 3; k++) mml_free(grads[f][k]);
    }
    for (int k = 0; k < 3; k++) mml_tensor_free(t[k]);
}
