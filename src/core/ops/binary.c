/* add, sub, mul, div with NumPy broadcasting. Backward reduces the gradient
 * over the broadcast dims by accumulating through the same row walk. */
#include "core/ops/broadcast.h"
#include "mml/ops.h"

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

static mml_status binary_infer(const mml_node *n, mml_tensor *out)
{
    mml_bcast bc;
    if (n->in[0]->dtype != MML_F32 || n->in[1]->dtype != MML_F32)
        return mml_op_error(n, "operands must be float32");
    if (!mml_bcast_init(&bc, n->in[0], n->in[1])) return mml_op_error(n, "shapes do not broadcast");
    mml_set_shape(out, MML_F32, bc.nd, bc.shape);
    return MML_OK;
}

typedef struct bin_job {
    int kind;
    const float *a, *b, *g;
    float *out, *ga, *gb;
} bin_job;

static void fwd_row(void *arg, int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb)
{
    const bin_job *j = arg;
    const float *a = j->a + ia, *b = j->b + ib;
    float *y = j->out + o;
#define LOOP(expr)                                                                 \
    if (sa == 1 && sb == 1)                                                        \
        for (int64_t i = 0; i < n; i++) { float x = a[i], z = b[i]; y[i] = expr; } \
    else if (sa == 1)                                                              \
        for (int64_t i = 0; i < n; i++) { float x = a[i], z = b[0]; y[i] = expr; } \
    else if (sb == 1)                                                              \
        for (int64_t i = 0; i < n; i++) { float x = a[0], z = b[i]; y[i] = expr; } \
    else                                                                           \
        for (int64_t i = 0; i < n; i++) { float x = a[0], z = b[0]; y[i] = expr; }
    switch (j->kind) {
    case BIN_ADD: LOOP(x + z); break;
    case BIN_SUB: LOOP(x - z); break;
    case BIN_MUL: LOOP(x * z); break;
    default: LOOP(x / z); break;
    }
#undef LOOP
}

static void bwd_row(void *arg, int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb)
{
    const bin_job *j = arg;
    const float *g = j->g + o;
    for (int64_t i = 0; i < n; i++) {
        int64_t pa = ia + i * sa, pb = ib + i * sb;
        float gi = g[i];
        switch (j->kind) {
        case BIN_ADD:
            if (j->ga) j->ga[pa] += gi;
            if (j->gb) j->gb[pb] += gi;
            break;
        case BIN_SUB:
            if (j->ga) j->ga[pa] += gi;
            if (j->gb) j->gb[pb] -= gi;
            break;
        case BIN_MUL:
            if (j->ga) j->ga[pa] += gi * j->b[pb];
            if (j->gb) j->gb[pb] += gi * j->a[pa];
            break;
        default: {
            float inv = 1.0f / j->b[pb];
            if (j->ga) j->ga[pa] += gi * inv;
            if (j->gb) j->gb[pb] -= gi * j->a[pa] * inv * inv;
        }
        }
    }
}

static void binary_forward(mml_ctx *ctx, mml_node *n)
{
    mml_bcast bc;
    mml_bcast_init(&bc, n->in[0], n->in[1]);
    bin_job j = { (int)n->iarg[0], mml_f32(n->in[0]), mml_f32(n->in[1]), NULL, mml_f32(n->out), NULL, NULL };
    mml_bcast_rows(&bc, fwd_row, &j);
}

static void binary_backward(mml_ctx *ctx, mml_node *n)
{
    mml_bcast bc;
    mml_bcast_init(&bc, n->in[0], n->in[1]);
    bin_job j = { (int)n->iarg[0], mml_f32(n->in[0]), mml_f32(n->in[1]), n->out->grad, NULL,
                  mml_wants_grad(n->in[0]) ? mml_grad_buf(ctx, n->in[0]) : NULL,
                  mml_wants_grad(n->in[1]) ? mml_grad_buf(ctx, n->in[1]) : NULL };
    mml_bcast_rows(&bc, bwd_row, &j);
}

static const mml_op_def op_add = { "add", binary_infer, binary_forward, binary_backward };
static const mml_op_def op_sub = { "sub", binary_infer, binary_forward, binary_backward };
static const mml_op_def op_mul = { "mul", binary_infer, binary_forward, binary_backward };
static const mml_op_def op_div = { "div", binary_infer, binary_forward, binary_backward };

static mml_tensor *binary(mml_ctx *ctx, const mml_op_def *op, int kind, mml_tensor *a, mml_tensor *b)
{
    mml_node n = { .op = op, .in = { a, b }, .n_in = 2, .iarg = { kind } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_add(mml_ctx *ctx, mml_tensor *a, mml_tensor *b) { return binary(ctx, &op_add, BIN_ADD, a, b); }
mml_tensor *mml_sub(mml_ctx *ctx, mml_tensor *a, mml_tensor *b) { return binary(ctx, &op_sub, BIN_SUB, a, b); }
mml_tensor *mml_mul(mml_ctx *ctx, mml_tensor *a, mml_tensor *b) { return binary(ctx, &op_mul, BIN_MUL, a, b); }
mml_tensor *mml_div(mml_ctx *ctx, mml_tensor *a, mml_tensor *b) { return binary(ctx, &op_div, BIN_DIV, a, b); }
