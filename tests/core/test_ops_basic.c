/* Element-wise, activation, softmax, reduction, shape and indexing ops:
 * forward and input gradients against PyTorch (tests/reference/gen_ops.py),
 * and backward against central finite differences. */
#include <string.h>

#include "mml/alloc.h"
#include "core/op.h"
#include "mml/ops.h"
#include "test.h"

typedef mml_tensor *(*builder)(mml_ctx *ctx, mml_tensor **in);

#define B1(name, expr) static mml_tensor *b_##name(mml_ctx *ctx, mml_tensor **in) { return expr; }
B1(add_bcast, mml_add(ctx, in[0], in[1]))
B1(sub_bcast, mml_sub(ctx, in[0], in[1]))
B1(mul_bcast, mml_mul(ctx, in[0], in[1]))
B1(div, mml_div(ctx, in[0], in[1]))
B1(add_scalar, mml_add_scalar(ctx, in[0], 0.5f))
B1(mul_scalar, mml_mul_scalar(ctx, in[0], -1.5f))
B1(pow3, mml_pow(ctx, in[0], 3.0f))
B1(pow_half, mml_pow(ctx, in[0], 0.5f))
B1(neg, mml_neg(ctx, in[0]))
B1(exp, mml_exp(ctx, in[0]))
B1(log, mml_log(ctx, in[0]))
B1(sqrt, mml_sqrt(ctx, in[0]))
B1(abs, mml_abs(ctx, in[0]))
B1(clamp, mml_clamp(ctx, in[0], -0.5f, 0.5f))
B1(relu, mml_relu(ctx, in[0]))
B1(leaky_relu, mml_leaky_relu(ctx, in[0], 0.1f))
B1(gelu, mml_gelu(ctx, in[0]))
B1(gelu_tanh, mml_gelu_tanh(ctx, in[0]))
B1(quick_gelu, mml_quick_gelu(ctx, in[0]))
B1(silu, mml_silu(ctx, in[0]))
B1(sigmoid, mml_sigmoid(ctx, in[0]))
B1(tanh, mml_tanh(ctx, in[0]))
B1(softmax_last, mml_softmax(ctx, in[0], -1))
B1(softmax_mid, mml_softmax(ctx, in[0], 1))
B1(log_softmax_last, mml_log_softmax(ctx, in[0], -1))
B1(log_softmax_first, mml_log_softmax(ctx, in[0], 0))
B1(masked_fill, mml_masked_fill(ctx, in[0], in[1], -5.0f))
B1(sum_axis_keep, mml_sum(ctx, in[0], 1, true))
B1(sum_all, mml_sum(ctx, in[0], MML_AXIS_ALL, false))
B1(mean_last, mml_mean(ctx, in[0], -1, false))
B1(mean_mid, mml_mean(ctx, in[0], 1, false))
B1(max_axis, mml_max(ctx, in[0], 1, false))
B1(min_first, mml_min(ctx, in[0], 0, false))
B1(max_all, mml_max(ctx, in[0], MML_AXIS_ALL, false))
B1(var_axis, mml_var(ctx, in[0], 1, false, 1))
B1(var_all_pop, mml_var(ctx, in[0], MML_AXIS_ALL, false, 0))
B1(reshape, mml_reshape(ctx, in[0], 2, (int64_t[]){ 4, -1 }))
B1(permute, mml_permute(ctx, in[0], (int[]){ 2, 0, 1 }))
B1(transpose, mml_transpose(ctx, in[0], 0, 2))
B1(concat, mml_concat(ctx, in, 3, 1))
B1(slice_step, mml_slice(ctx, in[0], 2, 1, 4, 2))
B1(pad, mml_pad(ctx, in[0], (int64_t[]){ 1, 0, 2, 1 }, 0.5f))
B1(embedding, mml_embedding(ctx, in[0], in[1]))
B1(index_select, mml_index_select(ctx, in[0], 1, in[1]))
B1(gather, mml_gather(ctx, in[0], 1, in[1]))
B1(scatter_add, mml_scatter_add(ctx, in[0], 0, in[1], in[2]))
B1(l2_normalize, mml_l2_normalize(ctx, in[0], -1, 1e-12f))
B1(cosine_similarity, mml_cosine_similarity(ctx, in[0], in[1], -1, 1e-8f))
B1(matmul, mml_matmul(ctx, in[0], in[1], false, false))
B1(matmul_ta, mml_matmul(ctx, in[0], in[1], true, false))
B1(matmul_tb, mml_matmul(ctx, in[0], in[1], false, true))
B1(matmul_tab, mml_matmul(ctx, in[0], in[1], true, true))
B1(bmm, mml_matmul(ctx, in[0], in[1], false, false))
B1(bmm_tb, mml_matmul(ctx, in[0], in[1], false, true))
B1(bmm_shared_b, mml_matmul(ctx, in[0], in[1], false, false))
B1(bmm_shared_a_ta, mml_matmul(ctx, in[0], in[1], true, false))
B1(linear, mml_linear(ctx, in[0], in[1], in[2]))
B1(linear_nobias, mml_linear(ctx, in[0], in[1], NULL))
B1(outer, mml_outer(ctx, in[0], in[1]))

static mml_conv_args cargs(int s0, int s1, int p0, int p1, int d0, int d1, int op0, int op1, int g)
{
    return (mml_conv_args){ { s0, s1 }, { p0, p1 }, { d0, d1 }, { op0, op1 }, g };
}
B1(conv2d, mml_conv2d(ctx, in[0], in[1], in[2], NULL))
B1(conv2d_s2_p1, mml_conv2d(ctx, in[0], in[1], in[2], &(mml_conv_args){ { 2, 2 }, { 1, 1 }, { 1, 1 }, { 0, 0 }, 1 }))
B1(conv2d_dil2_rect, mml_conv2d(ctx, in[0], in[1], NULL, &(mml_conv_args){ { 1, 2 }, { 2, 1 }, { 2, 2 }, { 0, 0 }, 1 }))
B1(conv2d_groups2, mml_conv2d(ctx, in[0], in[1], in[2], &(mml_conv_args){ { 1, 1 }, { 1, 1 }, { 1, 1 }, { 0, 0 }, 2 }))
B1(conv2d_depthwise, mml_conv2d(ctx, in[0], in[1], NULL, &(mml_conv_args){ { 2, 2 }, { 1, 1 }, { 1, 1 }, { 0, 0 }, 3 }))
static mml_tensor *b_conv1d(mml_ctx *ctx, mml_tensor **in)
{
    mml_conv_args a = cargs(2, 0, 2, 0, 2, 0, 0, 0, 1);
    return mml_conv1d(ctx, in[0], in[1], in[2], &a);
}
static mml_tensor *b_conv1d_groups(mml_ctx *ctx, mml_tensor **in)
{
    mml_conv_args a = cargs(1, 0, 1, 0, 1, 0, 0, 0, 2);
    return mml_conv1d(ctx, in[0], in[1], NULL, &a);
}
static mml_tensor *b_conv_transpose2d(mml_ctx *ctx, mml_tensor **in)
{
    mml_conv_args a = cargs(2, 2, 1, 1, 1, 1, 1, 1, 1);
    return mml_conv_transpose2d(ctx, in[0], in[1], in[2], &a);
}
static mml_tensor *b_conv_transpose2d_groups_dil(mml_ctx *ctx, mml_tensor **in)
{
    mml_conv_args a = cargs(2, 1, 0, 1, 1, 2, 0, 0, 2);
    return mml_conv_transpose2d(ctx, in[0], in[1], NULL, &a);
}
static mml_tensor *b_conv_transpose1d(mml_ctx *ctx, mml_tensor **in)
{
    mml_conv_args a = cargs(3, 0, 1, 0, 1, 0, 2, 0, 1);
    return mml_conv_transpose1d(ctx, in[0], in[1], in[2], &a);
}
B1(max_pool2d, mml_max_pool2d(ctx, in[0], (int[]){ 2, 2 }, NULL, NULL))
B1(max_pool2d_s1_p1, mml_max_pool2d(ctx, in[0], (int[]){ 3, 2 }, (int[]){ 1, 1 }, (int[]){ 1, 1 }))
B1(max_pool1d, mml_max_pool1d(ctx, in[0], 3, 2, 1))
B1(avg_pool2d, mml_avg_pool2d(ctx, in[0], (int[]){ 2, 2 }, (int[]){ 2, 2 }, (int[]){ 1, 1 }))
B1(avg_pool1d, mml_avg_pool1d(ctx, in[0], 3, 2, 0))
B1(adaptive_avg_pool2d, mml_adaptive_avg_pool2d(ctx, in[0], 3, 2))
B1(adaptive_avg_pool2d_global, mml_adaptive_avg_pool2d(ctx, in[0], 1, 1))
B1(adaptive_avg_pool1d, mml_adaptive_avg_pool1d(ctx, in[0], 4))
B1(upsample_bilinear, mml_upsample_bilinear2d(ctx, in[0], 7, 5, false))
B1(upsample_bilinear_align, mml_upsample_bilinear2d(ctx, in[0], 5, 9, true))
B1(upsample_bilinear_down, mml_upsample_bilinear2d(ctx, in[0], 3, 2, false))
B1(layer_norm, mml_layer_norm(ctx, in[0], in[1], in[2], 1e-5f))
B1(layer_norm_plain, mml_layer_norm(ctx, in[0], NULL, NULL, 1e-5f))
B1(batch_norm_train, mml_batch_norm(ctx, in[0], in[1], in[2], NULL, NULL, 0.1f, 1e-5f))
B1(batch_norm_train_2d, mml_batch_norm(ctx, in[0], in[1], in[2], NULL, NULL, 0.1f, 1e-5f))
#define ATTN(name, q, k, v, ...) \
    B1(name, mml_attention(ctx, q, k, v, &(mml_attention_args){ __VA_ARGS__ }, NULL))
ATTN(attention_self, in[0], in[0], in[0], .embed = 8, .heads = 2, .k_off = 8, .v_off = 16, .key_padding_mask = in[1],
     .attn_mask = in[2])
ATTN(attention_cross, in[0], in[1], in[1], .embed = 8, .heads = 4, .v_off = 8, .key_padding_mask = in[2])
ATTN(attention_separate, in[0], in[1], in[2], .embed = 6, .heads = 3)
ATTN(attention_long, in[0], in[0], in[0], .embed = 8, .heads = 2, .k_off = 8, .v_off = 16, .key_padding_mask = in[1])
ATTN(attention_gap, in[0], in[0], in[0], .embed = 8, .heads = 2, .q_off = 2, .k_off = 12, .v_off = 20)
ATTN(attention_shared_qk, in[0], in[0], in[0], .embed = 8, .heads = 2, .v_off = 8)
ATTN(attention_large, in[0], in[0], in[0], .embed = 8, .heads = 2, .k_off = 8, .v_off = 16)
#undef ATTN

/* grad_eps: finite-difference step when the default (1e-2) could cross a
 * near-tie in a max (pooling windows hold several close values). */
static const struct { const char *name; builder fn; double rtol, grad_eps; } CASES[] = {
#define C(name, tol) { #name, b_##name, tol, 1e-2 }
#define C_FINE(name, tol) { #name, b_##name, tol, 1e-4 }
    C(add_bcast, 1e-5), C(sub_bcast, 1e-5), C(mul_bcast, 1e-5), C(div, 1e-5), C(add_scalar, 1e-5),
    C(mul_scalar, 1e-5), C(pow3, 1e-5), C(pow_half, 1e-5), C(neg, 1e-5), C(exp, 1e-5), C(log, 1e-5),
    C(sqrt, 1e-5), C(abs, 1e-5), C(clamp, 1e-5), C(relu, 1e-5), C(leaky_relu, 1e-5), C(gelu, 1e-5),
    C(gelu_tanh, 1e-5), C(quick_gelu, 1e-5), C(silu, 1e-5), C(sigmoid, 1e-5), C(tanh, 1e-5),
    C(softmax_last, 1e-5), C(softmax_mid, 1e-5), C(log_softmax_last, 1e-5), C(log_softmax_first, 1e-5),
    C(masked_fill, 1e-5), C(sum_axis_keep, 1e-4), C(sum_all, 1e-4), C(mean_last, 1e-4), C(mean_mid, 1e-4),
    C(max_axis, 1e-4), C(min_first, 1e-4), C(max_all, 1e-4), C(var_axis, 1e-4), C(var_all_pop, 1e-4),
    C(reshape, 1e-5), C(permute, 1e-5), C(transpose, 1e-5), C(concat, 1e-5), C(slice_step, 1e-5),
    C(pad, 1e-5), C(embedding, 1e-5), C(index_select, 1e-5), C(gather, 1e-5), C(scatter_add, 1e-5),
    C(l2_normalize, 1e-5), C(cosine_similarity, 1e-5), C(matmul, 1e-4), C(matmul_ta, 1e-4),
    C(matmul_tb, 1e-4), C(matmul_tab, 1e-4), C(bmm, 1e-4), C(bmm_tb, 1e-4), C(bmm_shared_b, 1e-4),
    C(bmm_shared_a_ta, 1e-4), C(linear, 1e-4), C(linear_nobias, 1e-4), C(outer, 1e-5),
    C(conv2d, 1e-4), C(conv2d_s2_p1, 1e-4), C(conv2d_dil2_rect, 1e-4), C(conv2d_groups2, 1e-4),
    C(conv2d_depthwise, 1e-4), C(conv1d, 1e-4), C(conv1d_groups, 1e-4), C(conv_transpose2d, 1e-4),
    C(conv_transpose2d_groups_dil, 1e-4), C(conv_transpose1d, 1e-4), C_FINE(max_pool2d, 1e-5),
    C_FINE(max_pool2d_s1_p1, 1e-5), C_FINE(max_pool1d, 1e-5), C(avg_pool2d, 1e-5), C(avg_pool1d, 1e-5),
    C(adaptive_avg_pool2d, 1e-5), C(adaptive_avg_pool2d_global, 1e-5), C(adaptive_avg_pool1d, 1e-5),
    C(upsample_bilinear, 1e-5), C(upsample_bilinear_align, 1e-5), C(upsample_bilinear_down, 1e-5),
    C(layer_norm, 1e-4), C(layer_norm_plain, 1e-4), C(batch_norm_train, 1e-4), C(batch_norm_train_2d, 1e-4),
    C(attention_self, 1e-4), C(attention_cross, 1e-4), C(attention_separate, 1e-4), C(attention_long, 1e-4), C(attention_gap, 1e-4),
    C(attention_shared_qk, 1e-4), C(attention_large, 1e-4),
#undef C
#undef C_FINE
};
#define N_CASES (int)(sizeof CASES / sizeof CASES[0])

/* Loads name.in0, name.in1, ... (float inputs require a gradient). */
static int load_inputs(const mml_safetensors *fx, const char *name, mml_tensor **in)
{
    int n = 0;
    char key[128];
    for (; n < 4; n++) {
        snprintf(key, sizeof key, "%s.in%d", name, n);
        const mml_st_entry *e = mml_safetensors_find(fx, key);
        if (!e) break;
        bool is_float = e->dtype == MML_F32;
        in[n] = is_float ? tst_fixture_tensor(fx, key, true) : mml_safetensors_tensor(fx, key, e->dtype);
    }
    return n;
}

static void free_inputs(mml_tensor **in, int n)
{
    for (int i = 0; i < n; i++) {
        if (in[i] && in[i]->requires_grad) {
            mml_free(in[i]->grad);
            in[i]->grad = NULL;
        }
        mml_tensor_free(in[i]);
    }
}

TEST(ops_basic_match_pytorch)
{
    mml_safetensors *fx = tst_fixture("ops.safetensors");
    if (!fx) return;
    for (int c = 0; c < N_CASES; c++) {
        mml_tensor *in[4] = { 0 };
        int n = load_inputs(fx, CASES[c].name, in);
        CHECK_MSG(n > 0, "%s: no inputs in the fixture", CASES[c].name);
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *y = CASES[c].fn(ctx, in);
        char key[128];
        CHECK_MSG(y != NULL, "%s: %s", CASES[c].name, mml_last_error());
        if (y) {
            snprintf(key, sizeof key, "%s.out", CASES[c].name);
            CHECK_FIXTURE(fx, key, mml_f32(y), y->numel, CASES[c].rtol, 1e-6);
            snprintf(key, sizeof key, "%s.r", CASES[c].name);
            mml_tensor *r = mml_safetensors_tensor(fx, key, MML_F32);
            CHECK_OK(mml_backward_seeded(ctx, y, mml_f32(r)));
            mml_tensor_free(r);
            for (int i = 0; i < n; i++) {
                if (!in[i]->requires_grad) continue;
                snprintf(key, sizeof key, "%s.grad%d", CASES[c].name, i);
                CHECK_FIXTURE(fx, key, in[i]->grad, in[i]->numel, 1e-4, 1e-5);
            }
        }
        mml_ctx_free(ctx);
        free_inputs(in, n);
    }
    mml_safetensors_free(fx);
}

static mml_tensor *call_case(mml_ctx *ctx, mml_tensor **in, void *arg)
{
    return ((builder)arg)(ctx, in);
}

TEST(ops_basic_gradcheck)
{
    mml_safetensors *fx = tst_fixture("ops.safetensors");
    if (!fx) return;
    for (int c = 0; c < N_CASES; c++) {
        mml_tensor *in[4] = { 0 };
        int n = load_inputs(fx, CASES[c].name, in);
        double eps = CASES[c].grad_eps;
        /* A smaller step loses float32 precision; widen the tolerance to match. */
        double rtol = eps < 1e-2 ? 2e-2 : 5e-3, atol = eps < 1e-2 ? 2e-2 : 1e-3;
        tst_gradcheck(__FILE__, __LINE__, CASES[c].name, call_case, in, n, (void *)CASES[c].fn, eps, rtol, atol);
        free_inputs(in, n);
    }
    mml_safetensors_free(fx);
}

TEST(ops_argmax_matches_pytorch)
{
    mml_safetensors *fx = tst_fixture("ops.safetensors");
    if (!fx) return;
    mml_tensor *x = tst_fixture_tensor(fx, "argmax.in0", false);
    mml_tensor *want = mml_safetensors_tensor(fx, "argmax.out", MML_I64);
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *y = mml_argmax(ctx, x, 1, false);
    CHECK(y && y->dtype == MML_I32 && y->numel == want->numel);
    for (int64_t i = 0; y && i < y->numel; i++) CHECK(mml_i32(y)[i] == mml_i64(want)[i]);
    mml_ctx_free(ctx);
    mml_tensor_free(x);
    mml_tensor_free(want);
    mml_safetensors_free(fx);
}

TEST(autograd_accumulates_reused_tensor_and_respects_modes)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *x = mml_tensor_create(MML_F32, 1, (int64_t[]){ 3 }, true);
    for (int i = 0; i < 3; i++) mml_f32(x)[i] = (float)i + 1.0f;
    /* y = sum(x * x + x): dy/dx = 2x + 1, through two uses of x */
    mml_tensor *y = mml_sum(ctx, mml_add(ctx, mml_mul(ctx, x, x), x), MML_AXIS_ALL, false);
    CHECK_OK(mml_backward(ctx, y));
    for (int i = 0; i < 3; i++) CHECK_NEAR(x->grad[i], 2.0f * (i + 1) + 1.0f, 1e-6);

    mml_ctx_reset(ctx);
    mml_set_grad_enabled(ctx, false);
    y = mml_sum(ctx, mml_mul(ctx, x, x), MML_AXIS_ALL, false);
    CHECK(y && !y->requires_grad && mml_tape_length(ctx) == 0);
    CHECK(mml_backward(ctx, y) != MML_OK);
    mml_set_grad_enabled(ctx, true);

    mml_ctx_reset(ctx);
    memset(x->grad, 0, 3 * sizeof(float));
    mml_tensor *d = mml_detach(ctx, mml_mul(ctx, x, x));
    y = mml_sum(ctx, mml_mul(ctx, d, x), MML_AXIS_ALL, false); /* d is a constant here */
    CHECK_OK(mml_backward(ctx, y));
    for (int i = 0; i < 3; i++) CHECK_NEAR(x->grad[i], (float)((i + 1) * (i + 1)), 1e-6);
    mml_tensor_free(x);
    mml_ctx_free(ctx);
}

TEST(ops_shape_errors_name_the_op)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *a = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ 2, 3 });
    mml_tensor *b = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ 4, 3 });
    CHECK(mml_add(ctx, a, b) == NULL);
    CHECK_MSG(strstr(mml_last_error(), "add: shapes do not broadcast") && strstr(mml_last_error(), "[2, 3]") &&
                  strstr(mml_last_error(), "[4, 3]"), "%s", mml_last_error());
    /* An op given the NULL of a failed op fails too and keeps the first message. */
    CHECK(mml_relu(ctx, mml_add(ctx, a, b)) == NULL && strstr(mml_last_error(), "add:"));
    CHECK(mml_sum(ctx, a, 5, false) == NULL && strstr(mml_last_error(), "sum: axis 5"));
    CHECK(mml_reshape(ctx, a, 2, (int64_t[]){ 4, 2 }) == NULL && strstr(mml_last_error(), "reshape"));
    mml_tensor *w = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ 5, 2 });
    mml_tensor *idx = mml_zeros(ctx, MML_I32, 1, (int64_t[]){ 2 });
    mml_i32(idx)[1] = 5;
    CHECK(mml_embedding(ctx, w, idx) == NULL && strstr(mml_last_error(), "embedding: index 5 out of range"));
    CHECK(mml_concat(ctx, (mml_tensor *[]){ a, w }, 2, 0) == NULL && strstr(mml_last_error(), "concat"));
    mml_ctx_free(ctx);
}

TEST(ops_dropout_seeded_and_eval_identity)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *x = mml_full(ctx, 1.0f, 1, (int64_t[]){ 10000 });
    mml_rng r1, r2;
    mml_rng_seed(&r1, 7);
    mml_rng_seed(&r2, 7);
    mml_tensor *a = mml_dropout(ctx, x, 0.25f, &r1), *b = mml_dropout(ctx, x, 0.25f, &r2);
    int zeros = 0;
    for (int i = 0; i < 10000; i++) {
        CHECK(mml_f32(a)[i] == mml_f32(b)[i]);
        zeros += mml_f32(a)[i] == 0.0f;
        if (mml_f32(a)[i] != 0.0f) CHECK_NEAR(mml_f32(a)[i], 1.0f / 0.75f, 1e-6);
    }
    CHECK(zeros > 2300 && zeros < 2700);
    mml_set_training(ctx, false);
    CHECK(mml_dropout(ctx, x, 0.25f, &r1) == x);
    mml_ctx_free(ctx);
}

/* The unfused composition attention used to be built from: split heads,
 * scaled scores, padding mask, softmax, dropout, weighted sum, merge heads. */
static mml_tensor *attention_composed(mml_ctx *ctx, mml_tensor **qkv, mml_tensor *pad, int64_t h, float p,
                                      mml_rng *rng)
{
    int64_t B = qkv[0]->shape[0], T = qkv[0]->shape[1], E = qkv[0]->shape[2];
    mml_tensor *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = mml_permute(ctx, mml_reshape(ctx, qkv[i], 4, (int64_t[]){ B, T, h, E / h }), (int[]){ 0, 2, 1, 3 });
    mml_tensor *scores = mml_mul_scalar(ctx, mml_matmul(ctx, s[0], s[1], false, true), 1.0f / sqrtf((float)(E / h)));
    scores = mml_masked_fill(ctx, scores, mml_reshape(ctx, pad, 4, (int64_t[]){ B, 1, 1, T }), -INFINITY);
    mml_tensor *w = mml_dropout(ctx, mml_softmax(ctx, scores, -1), p, rng);
    mml_tensor *o = mml_permute(ctx, mml_matmul(ctx, w, s[2], false, false), (int[]){ 0, 2, 1, 3 });
    return mml_reshape(ctx, o, 3, (int64_t[]){ B, T, E });
}

TEST(ops_attention_dropout_matches_composition)
{
    enum { B = 2, T = 6, E = 8, H = 2 };
    mml_rng init, r1, r2;
    mml_rng_seed(&init, 3);
    mml_tensor *qkv[2][3], *pad = mml_tensor_create(MML_I32, 2, (int64_t[]){ B, T }, false);
    for (int64_t i = 0; i < B * T; i++) mml_i32(pad)[i] = i == B * T - 1;
    float seed[B * T * E], grads[2][3][B * T * E];
    for (int i = 0; i < B * T * E; i++) seed[i] = mml_rng_normal(&init);
    for (int i = 0; i < 3; i++) {
        for (int m = 0; m < 2; m++) qkv[m][i] = mml_tensor_create(MML_F32, 3, (int64_t[]){ B, T, E }, true);
        for (int64_t e = 0; e < B * T * E; e++) mml_f32(qkv[0][i])[e] = mml_f32(qkv[1][i])[e] = mml_rng_normal(&init);
    }
    mml_rng_seed(&r1, 9);
    mml_rng_seed(&r2, 9);
    mml_ctx *ctx = mml_ctx_create();
    mml_attention_args a = { .embed = E, .heads = H, .key_padding_mask = pad, .dropout = 0.3f, .rng = &r1 };
    mml_tensor *y[2] = { mml_attention(ctx, qkv[0][0], qkv[0][1], qkv[0][2], &a, NULL),
                         attention_composed(ctx, qkv[1], pad, H, 0.3f, &r2) };
    for (int m = 0; m < 2; m++) {
        CHECK_MSG(y[m] != NULL, "%s", mml_last_error());
        if (!y[m]) break;
        CHECK_OK(mml_backward_seeded(ctx, y[m], seed));
        for (int i = 0; i < 3; i++) memcpy(grads[m][i], qkv[m][i]->grad, sizeof seed);
    }
    if (y[0] && y[1]) {
        CHECK_CLOSE("attention out", mml_f32(y[0]), mml_f32(y[1]), B * T * E, 1e-5, 1e-6);
        for (int i = 0; i < 3; i++) CHECK_CLOSE("attention grad", grads[0][i], grads[1][i], B * T * E, 1e-4, 1e-6);
    }
    mml_ctx_free(ctx);
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) mml_tensor_free(qkv[m][i]);
    mml_tensor_free(pad);
}

/* The gradient of q, k, v when attention is the first to write it (a fused
 * projection's output): written without being cleared where the slices tile
 * its columns, cleared first where they leave gaps or overlap. The buffer
 * here is one a graph run just before left full of other values, so a value
 * not written, or added to rather than set, shows against a clean run. */
static void attention_grad_of_x(mml_ctx *ctx, mml_tensor *x, const int64_t *offs, const float *seed, bool dirty)
{
    if (dirty) { /* frees two gradient buffers of x's size holding non-zero values */
        mml_tensor *h = mml_mul_scalar(ctx, x, 2.0f);
        CHECK_OK(mml_backward(ctx, mml_sum(ctx, mml_mul(ctx, h, h), MML_AXIS_ALL, false)));
    }
    memset(x->grad, 0, (size_t)x->numel * sizeof(float));
    mml_tensor *h = mml_mul_scalar(ctx, x, 1.0f);
    mml_attention_args a = { .embed = 8, .heads = 2, .q_off = offs[0], .k_off = offs[1], .v_off = offs[2] };
    mml_tensor *y = mml_attention(ctx, h, h, h, &a, NULL);
    CHECK_MSG(y != NULL, "%s", mml_last_error());
    if (y) CHECK_OK(mml_backward_seeded(ctx, y, seed));
}

TEST(ops_attention_fresh_gradient_buffers)
{
    static const struct { int64_t width, offs[3]; } cases[] = {
        { 24, { 0, 8, 16 } }, /* tiled: written once, not cleared */
        { 30, { 2, 12, 20 } }, /* gaps */
        { 16, { 0, 0, 8 } },   /* q and k the same slice */
        { 24, { 0, 8, 8 } },   /* as many columns as three slices, but k and v share one */
    };
    mml_rng r;
    mml_rng_seed(&r, 5);
    float seed[2 * 5 * 8];
    for (int i = 0; i < 2 * 5 * 8; i++) seed[i] = mml_rng_normal(&r);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t W = cases[c].width;
        mml_tensor *x = mml_tensor_create(MML_F32, 3, (int64_t[]){ 2, 5, W }, true);
        for (int64_t e = 0; e < x->numel; e++) mml_f32(x)[e] = mml_rng_normal(&r);
        float *want = mml_malloc((size_t)x->numel * sizeof(float));
        for (int dirty = 0; dirty < 2; dirty++) {
            mml_ctx *ctx = mml_ctx_create();
            attention_grad_of_x(ctx, x, cases[c].offs, seed, dirty);
            if (!dirty) memcpy(want, x->grad, (size_t)x->numel * sizeof(float));
            else CHECK_CLOSE("attention grad after a dirty buffer", x->grad, want, x->numel, 0.0, 0.0);
            mml_ctx_free(ctx);
        }
        mml_free(want);
        mml_tensor_free(x);
    }
}
