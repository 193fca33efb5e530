/* Element-wise unary ops and activations: one table row per op holding its
 * forward f(x) and derivative f'(x, y) (y = f(x), often cheaper to use). */
#include <math.h>

#include "core/op.h"
#include "mml/ops.h"
#include "mml/threads.h"

#define PAR_GRAIN 32768

enum {
    U_NEG, U_EXP, U_LOG, U_SQRT, U_ABS, U_CLAMP, U_ADD_S, U_MUL_S, U_POW, U_RELU, U_LEAKY,
    U_GELU, U_GELU_TANH, U_QUICK_GELU, U_SILU, U_SIGMOID, U_TANH, U_COUNT
};

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

#define GELU_TANH_K 0.7978845608028654f /* sqrt(2/pi) */

static inline float fwd(int k, float x, const float *p)
{
    switch (k) {
    case U_NEG: return -x;
    case U_EXP: return expf(x);
    case U_LOG: return logf(x);
    case U_SQRT: return sqrtf(x);
    case U_ABS: return fabsf(x);
    case U_CLAMP: return x < p[0] ? p[0] : (x > p[1] ? p[1] : x);
    case U_ADD_S: return x + p[0];
    case U_MUL_S: return x * p[0];
    case U_POW: return powf(x, p[0]);
    case U_RELU: return x > 0.0f ? x : 0.0f;
    case U_LEAKY: return x > 0.0f ? x : x * p[0];
    case U_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    case U_GELU_TANH: return 0.5f * x * (1.0f + tanhf(GELU_TANH_K * (x + 0.044715f * x * x * x)));
    case U_QUICK_GELU: return x * sigmoidf(1.702f * x);
    case U_SILU: return x * sigmoidf(x);
    case U_SIGMOID: return sigmoidf(x);
    default: return tanhf(x);
    }
}

/* d f / d x at x, with y = f(x). Kinks take torch's choices: relu'(0) = 0,
 * abs'(0) = 0, clamp passes the gradient where lo <= x <= hi. */
static inline float deriv(int k, float x, float y, const float *p)
{
    switch (k) {
    case U_NEG: return -1.0f;
    case U_EXP: return y;
    case U_LOG: return 1.0f / x;
    case U_SQRT: return 0.5f / y;
    case U_ABS: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case U_CLAMP: return x >= p[0] && x <= p[1] ? 1.0f : 0.0f;
    case U_ADD_S: return 1.0f;
    case U_MUL_S: return p[0];
    case U_POW: return p[0] == 0.0f ? 0.0f : p[0] * powf(x, p[0] - 1.0f);
    case U_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case U_LEAKY: return x > 0.0f ? 1.0f : p[0];
    case U_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * 0.7071067811865476f));
        float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
        return cdf + x * pdf;
    }
    case U_GELU_TANH: {
        float u = GELU_TANH_K * (x + 0.044715f * x * x * x), t = tanhf(u);
        float du = GELU_TANH_K * (1.0f + 3.0f * 0.044715f * x * x);
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case U_QUICK_GELU: {
        float s = sigmoidf(1.702f * x);
        return s + x * 1.702f * s * (1.0f - s);
    }
    case U_SILU: {
        float s = sigmoidf(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case U_SIGMOID: return y * (1.0f - y);
    default: return 1.0f - y * y;
    }
}

typedef struct unary_job {
    int kind;
    const float *x, *y, *g, *p;
    float *out;
} unary_job;

static void fwd_range(void *arg, int64_t b, int64_t e, int thread)
{
    const unary_job *j = arg;
    /* Local restrict pointers and a hoisted switch: each loop vectorises. */
    const float *restrict x = j->x, *restrict p = j->p;
    float *restrict out = j->out;
    switch (j->kind) {
#define CASE(K)                                                   \
    case K:                                                       \
        for (int64_t i = b; i < e; i++) out[i] = fwd(K, x[i], p); \
        break;
        CASE(U_NEG) CASE(U_EXP) CASE(U_LOG) CASE(U_SQRT) CASE(U_ABS) CASE(U_CLAMP) CASE(U_ADD_S)
        CASE(U_MUL_S) CASE(U_POW) CASE(U_RELU) CASE(U_LEAKY) CASE(U_GELU) CASE(U_GELU_TANH)
        CASE(U_QUICK_GELU) CASE(U_SILU) CASE(U_SIGMOID) CASE(U_TANH)
#undef CASE
    }
}

static void bwd_range(void *arg, int64_t b, int64_t e, int thread)
{
    const unary_job *j = arg;
    const float *restrict x = j->x, *restrict y = j->y, *restrict g = j->g, *restrict p = j->p;
    float *restrict out = j->out;
    switch (j->kind) { /* as in fwd_range */
#define CASE(K)                                                                     \
    case K:                                                                         \
        for (int64_t i = b; i < e; i++) out[i] += g[i] * deriv(K, x[i], y[i], p);   \
        break;
        CASE(U_NEG) CASE(U_EXP) CASE(U_LOG) CASE(U_SQRT) CASE(U_ABS) CASE(U_CLAMP) CASE(U_ADD_S)
        CASE(U_MUL_S) CASE(U_POW) CASE(U_RELU) CASE(U_LEAKY) CASE(U_GELU) CASE(U_GELU_TANH)
        CASE(U_QUICK_GELU) CASE(U_SILU) CASE(U_SIGMOID) CASE(U_TANH)
#undef CASE
    }
}

static mml_status unary_infer(const mml_node *n, mml_tensor *out)
{
    if (n->in[0]->dtype != MML_F32) return mml_op_error(n, "input must be float32");
    mml_set_shape(out, MML_F32, n->in[0]->ndim, n->in[0]->shape);
    return MML_OK;
}

static void unary_forward(mml_ctx *ctx, mml_node *n)
{
    unary_job j = { (int)n->iarg[0], mml_f32(n->in[0]), NULL, NULL, n->farg, mml_f32(n->out) };
    mml_parallel_for(n->out->numel, PAR_GRAIN, fwd_range, &j);
}

static void unary_backward(mml_ctx *ctx, mml_node *n)
{
    if (!mml_wants_grad(n->in[0])) return;
    unary_job j = { (int)n->iarg[0], mml_f32(n->in[0]), mml_f32(n->out), n->out->grad, n->farg,
                    mml_grad_buf(ctx, n->in[0]) };
    mml_parallel_for(n->out->numel, PAR_GRAIN, bwd_range, &j);
}

#define DEF(K, name) [K] = { name, unary_infer, unary_forward, unary_backward }
static const mml_op_def g_ops[U_COUNT] = {
    DEF(U_NEG, "neg"), DEF(U_EXP, "exp"), DEF(U_LOG, "log"), DEF(U_SQRT, "sqrt"),
    DEF(U_ABS, "abs"), DEF(U_CLAMP, "clamp"), DEF(U_ADD_S, "add_scalar"),
    DEF(U_MUL_S, "mul_scalar"), DEF(U_POW, "pow"), DEF(U_RELU, "relu"),
    DEF(U_LEAKY, "leaky_relu"), DEF(U_GELU, "gelu"), DEF(U_GELU_TANH, "gelu_tanh"),
    DEF(U_QUICK_GELU, "quick_gelu"), DEF(U_SILU, "silu"), DEF(U_SIGMOID, "sigmoid"),
    DEF(U_TANH, "tanh"),
};
#undef DEF

static mml_tensor *unary(mml_ctx *ctx, int kind, mml_tensor *x, float p0, float p1)
{
    mml_node n = { .op = &g_ops[kind], .in = { x }, .n_in = 1, .iarg = { kind }, .farg = { p0, p1 } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_neg(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_NEG, x, 0, 0); }
mml_tensor *mml_exp(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_EXP, x, 0, 0); }
mml_tensor *mml_log(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_LOG, x, 0, 0); }
mml_tensor *mml_sqrt(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_SQRT, x, 0, 0); }
mml_tensor *mml_abs(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_ABS, x, 0, 0); }
mml_tensor *mml_clamp(mml_ctx *ctx, mml_tensor *x, float lo, float hi) { return unary(ctx, U_CLAMP, x, lo, hi); }
mml_tensor *mml_add_scalar(mml_ctx *ctx, mml_tensor *x, float s) { return unary(ctx, U_ADD_S, x, s, 0); }
mml_tensor *mml_mul_scalar(mml_ctx *ctx, mml_tensor *x, float s) { return unary(ctx, U_MUL_S, x, s, 0); }
mml_tensor *mml_pow(mml_ctx *ctx, mml_tensor *x, float e) { return unary(ctx, U_POW, x, e, 0); }
mml_tensor *mml_relu(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_RELU, x, 0, 0); }
mml_tensor *mml_leaky_relu(mml_ctx *ctx, mml_tensor *x, float s) { return unary(ctx, U_LEAKY, x, s, 0); }
mml_tensor *mml_gelu(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_GELU, x, 0, 0); }
mml_tensor *mml_gelu_tanh(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_GELU_TANH, x, 0, 0); }
mml_tensor *mml_quick_gelu(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_QUICK_GELU, x, 0, 0); }
mml_tensor *mml_silu(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_SILU, x, 0, 0); }
mml_tensor *mml_sigmoid(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_SIGMOID, x, 0, 0); }
mml_tensor *mml_tanh(mml_ctx *ctx, mml_tensor *x) { return unary(ctx, U_TANH, x, 0, 0); }
