/* The fused GRU/LSTM layer ops (core/ops/rnn.c) against central finite
 * differences, with variable lengths (a 0 included) in both directions, and
 * through the multi-layer bidirectional module; the batch split across
 * threads must not change a bit. The PyTorch comparisons are in
 * tests/nn/test_layers.c. */
#include <string.h>

#include "core/ops/rnn.h"
#include "mml/alloc.h"
#include "mml/nn.h"
#include "mml/threads.h"
#include "test.h"

static mml_tensor *random_tensor(int ndim, const int64_t *shape, float scale, mml_rng *r)
{
    mml_tensor *t = mml_tensor_create(MML_F32, ndim, shape, true);
    for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = (2.0f * mml_rng_uniform(r) - 1.0f) * scale;
    return t;
}

typedef struct seq_case {
    bool lstm, reverse;
    const mml_tensor *lengths;
} seq_case;

/* in: x, w_ih, b_ih, w_hh, b_hh */
static mml_tensor *run_layer(mml_ctx *ctx, mml_tensor **in, void *arg)
{
    const seq_case *c = arg;
    mml_rnn_weights w = { in[1], in[2], in[3], in[4] };
    return c->lstm ? mml_lstm_layer(ctx, &w, in[0], c->lengths, c->reverse)
                   : mml_gru_layer(ctx, &w, in[0], c->lengths, c->reverse);
}

static void random_layer(mml_tensor **in, int64_t B, int64_t T, int64_t I, int64_t H, int64_t G, float scale,
                         mml_rng *r)
{
    int64_t GH = G * H;
    in[0] = random_tensor(3, (int64_t[]){ B, T, I }, 1.0f, r);
    in[1] = random_tensor(2, (int64_t[]){ GH, I }, scale, r);
    in[2] = random_tensor(1, &GH, scale, r);
    in[3] = random_tensor(2, (int64_t[]){ GH, H }, scale, r);
    in[4] = random_tensor(1, &GH, scale, r);
}

TEST(rnn_layer_ops_match_finite_differences_with_lengths)
{
    const int64_t B = 3, T = 5, I = 3, H = 4;
    mml_tensor *lengths = mml_tensor_create(MML_I32, 1, &B, false);
    static const int32_t lens[] = { 5, 2, 0 };
    memcpy(mml_i32(lengths), lens, sizeof lens);
    mml_rng r;
    mml_rng_seed(&r, 7);
    for (int k = 0; k < 8; k++) {
        seq_case c = { .lstm = k & 1, .reverse = k & 2, .lengths = k & 4 ? lengths : NULL };
        mml_tensor *in[5];
        random_layer(in, B, T, I, H, c.lstm ? 4 : 3, 0.8f, &r);
        char what[64];
        snprintf(what, sizeof what, "%s%s%s", c.lstm ? "lstm_layer" : "gru_layer", c.reverse ? " reverse" : "",
                 c.lengths ? " with lengths" : "");
        CHECK_GRAD(what, run_layer, in, 5, &c);
        for (int i = 0; i < 5; i++) mml_tensor_free(in[i]);
    }
    mml_tensor_free(lengths);
}

typedef struct module_case {
    mml_nn_rnn rnn;
    const mml_tensor *lengths;
} module_case;

/* y and h_n, flattened and joined, so both outputs' gradients are checked. */
static mml_tensor *run_module(mml_ctx *ctx, mml_tensor **in, void *arg)
{
    const module_case *c = arg;
    mml_tensor *h_n = NULL, *y = mml_nn_rnn_forward(ctx, &c->rnn, in[0], c->lengths, &h_n);
    if (!y || !h_n) return NULL;
    mml_tensor *parts[2] = { mml_reshape(ctx, y, 1, (int64_t[]){ -1 }), mml_reshape(ctx, h_n, 1, (int64_t[]){ -1 }) };
    return mml_concat(ctx, parts, 2, 0);
}

TEST(rnn_module_bidirectional_two_layers_matches_finite_differences)
{
    const int64_t B = 3, T = 4, I = 3, H = 3;
    mml_tensor *lengths = mml_tensor_create(MML_I32, 1, &B, false);
    static const int32_t lens[] = { 2, 4, 1 };
    memcpy(mml_i32(lengths), lens, sizeof lens);
    for (int kind = 0; kind < 2; kind++) {
        mml_rng r;
        mml_rng_seed(&r, 3);
        mml_params *ps = mml_params_create();
        module_case c = { .lengths = lengths };
        CHECK_OK(mml_nn_rnn_init(&c.rnn, ps, "rnn", (mml_rnn_kind)kind, I, H, 2, true, &r));
        /* the input and every parameter */
        mml_tensor *in[1 + 8 * 2] = { random_tensor(3, (int64_t[]){ B, T, I }, 1.0f, &r) };
        int n = 1;
        for (int i = 0; i < mml_params_count(ps); i++) in[n++] = mml_params_at(ps, i);
        CHECK_GRAD(kind ? "lstm module" : "gru module", run_module, in, n, &c);
        mml_tensor_free(in[0]);
        mml_params_free(ps);
    }
    mml_tensor_free(lengths);
}

/* Rows go to threads in blocks; a row's arithmetic must not depend on that.
 * Weight gradients are per-thread partials summed in order: close, not equal. */
TEST(rnn_layer_results_do_not_depend_on_thread_count)
{
    const int64_t B = 40, T = 6, I = 5, H = 24;
    mml_rng r;
    mml_rng_seed(&r, 11);
    mml_tensor *in[5];
    random_layer(in, B, T, I, H, 3, 0.3f, &r);
    int saved = mml_threads_get();
    float *ref[6] = { 0 };
    for (int threads = 1; threads <= 2; threads++) {
        mml_threads_set(threads);
        mml_ctx *ctx = mml_ctx_create();
        for (int i = 0; i < 5; i++) memset(in[i]->grad, 0, (size_t)in[i]->numel * sizeof(float));
        mml_tensor *y = mml_gru_layer(ctx, &(mml_rnn_weights){ in[1], in[2], in[3], in[4] }, in[0], NULL, true);
        CHECK_OK(mml_backward(ctx, mml_sum(ctx, mml_mul(ctx, y, y), MML_AXIS_ALL, false)));
        const float *got[6] = { mml_f32(y), in[0]->grad, in[1]->grad, in[2]->grad, in[3]->grad, in[4]->grad };
        int64_t sizes[6] = { y->numel, in[0]->numel, in[1]->numel, in[2]->numel, in[3]->numel, in[4]->numel };
        for (int k = 0; k < 6; k++) {
            if (threads == 1) {
                ref[k] = mml_malloc((size_t)sizes[k] * sizeof(float));
                memcpy(ref[k], got[k], (size_t)sizes[k] * sizeof(float));
            } else if (k < 2)
                CHECK_MSG(!memcmp(ref[k], got[k], (size_t)sizes[k] * sizeof(float)), "output %d differs", k);
            else CHECK_CLOSE("weight gradient", got[k], ref[k], sizes[k], 1e-5, 1e-6);
        }
        mml_ctx_free(ctx);
    }
    mml_threads_set(saved);
    for (int k = 0; k < 6; k++) mml_free(ref[k]);
    for (int i = 0; i < 5; i++) mml_tensor_free(in[i]);
}

/* Without a tape the layer keeps one step of activations; outputs must match. */
TEST(rnn_layer_inference_matches_training_forward)
{
    const int64_t B = 4, T = 7, I = 3, H = 5;
    mml_tensor *lengths = mml_tensor_create(MML_I32, 1, &B, false);
    static const int32_t lens[] = { 7, 3, 1, 6 };
    memcpy(mml_i32(lengths), lens, sizeof lens);
    mml_rng r;
    mml_rng_seed(&r, 5);
    for (int k = 0; k < 4; k++) {
        bool lstm = k & 1, reverse = k & 2;
        mml_tensor *in[5];
        random_layer(in, B, T, I, H, lstm ? 4 : 3, 0.5f, &r);
        mml_rnn_weights w = { in[1], in[2], in[3], in[4] };
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *y[2];
        for (int grad = 0; grad < 2; grad++) {
            mml_set_grad_enabled(ctx, grad);
            y[grad] = lstm ? mml_lstm_layer(ctx, &w, in[0], lengths, reverse)
                           : mml_gru_layer(ctx, &w, in[0], lengths, reverse);
        }
        CHECK(y[0] && y[1] && !y[0]->requires_grad && y[1]->requires_grad);
        if (y[0] && y[1])
            CHECK_MSG(!memcmp(mml_f32(y[0]), mml_f32(y[1]), (size_t)y[0]->numel * sizeof(float)),
                      "%s reverse=%d: inference and training outputs differ", lstm ? "lstm" : "gru", reverse);
        mml_ctx_free(ctx);
        for (int i = 0; i < 5; i++) mml_tensor_free(in[i]);
    }
    mml_tensor_free(lengths);
}

/* After warm-up, a forward and backward pass of the module allocates nothing:
 * every buffer comes from the step arena. */
TEST(rnn_module_steady_state_does_not_allocate)
{
    const int64_t B = 40, T = 6, I = 5, H = 8;
    mml_tensor *lengths = mml_tensor_create(MML_I32, 1, &B, false);
    for (int64_t b = 0; b < B; b++) mml_i32(lengths)[b] = (int32_t)(1 + b % T);
    for (int kind = 0; kind < 2; kind++) {
        mml_rng r;
        mml_rng_seed(&r, 9);
        mml_params *ps = mml_params_create();
        mml_nn_rnn rnn;
        CHECK_OK(mml_nn_rnn_init(&rnn, ps, "rnn", (mml_rnn_kind)kind, I, H, 2, true, &r));
        mml_tensor *x = random_tensor(3, (int64_t[]){ B, T, I }, 1.0f, &r);
        mml_ctx *ctx = mml_ctx_create();
        uint64_t before = 0;
        for (int step = 0; step < 5; step++) {
            if (step == 3) before = mml_alloc_count();
            mml_ctx_reset(ctx);
            mml_tensor *h_n = NULL, *y = mml_nn_rnn_forward(ctx, &rnn, x, lengths, &h_n);
            CHECK_OK(mml_backward(ctx, mml_add(ctx, mml_sum(ctx, y, MML_AXIS_ALL, false),
                                               mml_sum(ctx, h_n, MML_AXIS_ALL, false))));
        }
        CHECK_MSG(mml_alloc_count() == before, "%s: steps 3..4 allocated %llu times", kind ? "lstm" : "gru",
                  (unsigned long long)(mml_alloc_count() - before));
        mml_ctx_free(ctx);
        mml_tensor_free(x);
        mml_params_free(ps);
    }
    mml_tensor_free(lengths);
}
