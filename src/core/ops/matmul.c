/* Matrix products over mml_sgemm: batched matmul with either operand
 * transposed (a 2-D operand is shared across the other's batch), linear
 * (x W^T + b, as nn.Linear) and the batched outer product. */
#include <string.h>

#include "core/kernels/gemm.h"
#include "core/op.h"
#include "mml/ops.h"
#include "mml/threads.h"

/* ---- matmul ---- */

typedef struct mm_dims {
    int64_t batch, M, N, K;
    bool a_batched, b_batched;
} mm_dims;

static mm_dims mm_dims_of(const mml_node *n)
{
    const mml_tensor *a = n->in[0], *b = n->in[1];
    bool ta = n->iarg[0], tb = n->iarg[1];
    mm_dims d = { 1, 0, 0, 0, a->ndim > 2, b->ndim > 2 };
    d.M = ta ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    d.K = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    d.N = tb ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    const mml_tensor *big = a->ndim >= b->ndim ? a : b;
    for (int i = 0; i < big->ndim - 2; i++) d.batch *= big->shape[i];
    return d;
}

static mml_status mm_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *a = n->in[0], *b = n->in[1];
    bool ta = n->iarg[0], tb = n->iarg[1];
    if (a->dtype != MML_F32 || b->dtype != MML_F32) return mml_op_error(n, "operands must be float32");
    if (a->ndim < 2 || b->ndim < 2) return mml_op_error(n, "operands need at least 2 dims");
    int64_t kb = tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    mm_dims d = mm_dims_of(n);
    if (d.K != kb) return mml_op_error(n, "inner dims differ (%lld vs %lld)", (long long)d.K, (long long)kb);
    if (a->ndim > 2 && b->ndim > 2) {
        bool same = a->ndim == b->ndim;
        for (int i = 0; same && i < a->ndim - 2; i++) same = a->shape[i] == b->shape[i];
        if (!same) return mml_op_error(n, "batch dims differ");
    }
    const mml_tensor *big = a->ndim >= b->ndim ? a : b;
    int64_t shape[MML_MAX_DIMS];
    memcpy(shape, big->shape, sizeof shape);
    shape[big->ndim - 2] = d.M;
    shape[big->ndim - 1] = d.N;
    mml_set_shape(out, MML_F32, big->ndim, shape);
    (void)ta;
    return MML_OK;
}

static void mm_forward(mml_ctx *ctx, mml_node *n)
{
    bool ta = n->iarg[0], tb = n->iarg[1];
    mm_dims d = mm_dims_of(n);
    const float *A = mml_f32(n->in[0]), *B = mml_f32(n->in[1]);
    float *C = mml_f32(n->out);
    int64_t lda = ta ? d.M : d.K, ldb = tb ? d.K : d.N;
    if (!d.a_batched && d.b_batched == false) {
        mml_sgemm(ta, tb, d.M, d.N, d.K, 1.0f, A, lda, B, ldb, 0.0f, C, d.N);
        return;
    }
    if (d.b_batched == false && !ta) { /* [batch*M, K] x shared B: one GEMM */
        mml_sgemm(false, tb, d.batch * d.M, d.N, d.K, 1.0f, A, lda, B, ldb, 0.0f, C, d.N);
        return;
    }
    for (int64_t i = 0; i < d.batch; i++)
        mml_sgemm(ta, tb, d.M, d.N, d.K, 1.0f, A + (d.a_batched ? i * d.M * d.K : 0), lda,
                  B + (d.b_batched ? i * d.K * d.N : 0), ldb, 0.0f, C + i * d.M * d.N, d.N);
}

static void mm_backward(mml_ctx *ctx, mml_node *n)
{
    bool ta = n->iarg[0], tb = n->iarg[1];
    mm_dims d = mm_dims_of(n);
    const float *A = mml_f32(n->in[0]), *B = mml_f32(n->in[1]);
    float *gA = mml_wants_grad(n->in[0]) ? mml_grad_buf(ctx, n->in[0]) : NULL;
    float *gB = mml_wants_grad(n->in[1]) ? mml_grad_buf(ctx, n->in[1]) : NULL;
    int64_t lda = ta ? d.M : d.K, ldb = tb ? d.K : d.N;
    for (int64_t i = 0; i < d.batch; i++) {
        int64_t ao = d.a_batched ? i * d.M * d.K : 0, bo = d.b_batched ? i * d.K * d.N : 0;
        const float *a = A + ao, *b = B + bo, *g = n->out->grad + i * d.M * d.N;
        if (gA) {
            if (!ta) mml_sgemm(false, !tb, d.M, d.K, d.N, 1.0f, g, d.N, b, ldb, 1.0f, gA + ao, d.K);
            else mml_sgemm(tb, true, d.K, d.M, d.N, 1.0f, b, ldb, g, d.N, 1.0f, gA + ao, d.M);
        }
        if (gB) {
            if (!tb) mml_sgemm(!ta, false, d.K, d.N, d.M, 1.0f, a, lda, g, d.N, 1.0f, gB + bo, d.N);
            else mml_sgemm(true, ta, d.N, d.K, d.M, 1.0f, g, d.N, a, lda, 1.0f, gB + bo, d.K);
        }
    }
}

static const mml_op_def op_matmul = { "matmul", mm_infer, mm_forward, mm_backward };

mml_tensor *mml_matmul(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, bool trans_a, bool trans_b)
{
    mml_node n = { .op = &op_matmul, .in = { a, b }, .n_in = 2, .iarg = { trans_a, trans_b } };
    return mml_op_run(ctx, &n);
}

/* ---- linear ---- */

static mml_status linear_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    if (x->dtype != MML_F32 || w->dtype != MML_F32 || x->ndim < 1 || w->ndim != 2)
        return mml_op_error(n, "needs float32 x [..., in] and weight [out, in]");
    if (x->shape[x->ndim - 1] != w->shape[1])
        return mml_op_error(n, "input has %lld features, weight expects %lld",
                            (long long)x->shape[x->ndim - 1], (long long)w->shape[1]);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) return mml_op_error(n, "bias must be [out]");
    int64_t shape[MML_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = w->shape[0];
    mml_set_shape(out, MML_F32, x->ndim, shape);
    const mml_tensor *res = n->in[3];
    if (res && (res->dtype != MML_F32 || res->ndim != out->ndim ||
                memcmp(res->shape, out->shape, (size_t)out->ndim * sizeof *shape)))
        return mml_op_error(n, "the residual must have the output's shape");
    return MML_OK;
}

/* The element-wise pass before a linear's backward GEMMs, rows over the
 * threads (the Transformer's are 4096 rows of up to 512): ReLU's mask on dY in
 * place (nothing reads this gradient after this node), the bias gradient as
 * per-thread partials added in thread order after, and dY into the residual's
 * gradient, in one pass before the GEMMs read dY. */
typedef struct linear_rows {
    int64_t out;
    bool relu, gr_fresh; /* gr_fresh: the residual's gradient is written here first */
    const float *y;
    float *g, *gb_parts, *gr;
} linear_rows;

#define LINEAR_GRAIN_VALUES 16384

static int64_t linear_grain(int64_t out) { return 1 + LINEAR_GRAIN_VALUES / (out + 1); }

static void grad_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    const linear_rows *j = arg;
    float *restrict gb = j->gb_parts ? j->gb_parts + thread * j->out : NULL;
    for (int64_t r = lo; r < hi; r++) {
        float *restrict g = j->g + r * j->out;
        const float *restrict y = j->y + r * j->out;
        if (j->relu)
            for (int64_t o = 0; o < j->out; o++) g[o] = y[o] > 0.0f ? g[o] : 0.0f;
        if (gb)
            for (int64_t o = 0; o < j->out; o++) gb[o] += g[o];
        if (j->gr && j->gr_fresh) memcpy(j->gr + r * j->out, g, (size_t)j->out * sizeof(float));
        else if (j->gr)
            for (int64_t o = 0; o < j->out; o++) j->gr[r * j->out + o] += g[o];
    }
}

/* Bias, residual and ReLU are added as the GEMM writes its tiles. */
static void linear_forward(mml_ctx *ctx, mml_node *n)
{
    const mml_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *res = n->in[3];
    int64_t in = w->shape[1], out = w->shape[0], rows = in ? x->numel / in : 0;
    mml_gemm_epilogue ep = { b ? mml_f32(b) : NULL, res ? mml_f32(res) : NULL, out, n->iarg[0] != 0 };
    bool any = b || res || ep.relu;
    mml_sgemm_ep(false, true, rows, out, in, 1.0f, mml_f32(x), in, mml_f32(w), in, 0.0f, mml_f32(n->out), out,
                 any ? &ep : NULL);
}

static void linear_backward(mml_ctx *ctx, mml_node *n)
{
    mml_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *res = n->in[3];
    int64_t in = w->shape[1], out = w->shape[0], rows = in ? x->numel / in : 0;
    linear_rows j = { .out = out, .relu = n->iarg[0], .y = mml_f32(n->out), .g = n->out->grad };
    if (mml_wants_grad(b) && !(j.gb_parts = mml_partials_new(ctx, out))) return;
    if (mml_wants_grad(res) && !(j.gr = mml_grad_buf_fresh(ctx, res, &j.gr_fresh))) return;
    if (j.relu || j.gb_parts || j.gr) mml_parallel_for(rows, linear_grain(out), grad_rows, &j);
    bool fresh;
    float *dx = mml_wants_grad(x) ? mml_grad_buf_fresh(ctx, x, &fresh) : NULL;
    if (dx) mml_sgemm(false, false, rows, in, out, 1.0f, j.g, out, mml_f32(w), in, fresh ? 0.0f : 1.0f, dx, in);
    if (mml_wants_grad(w))
        mml_sgemm(true, false, out, in, rows, 1.0f, j.g, out, mml_f32(x), in, 1.0f, mml_grad_buf(ctx, w), in);
    if (j.gb_parts) mml_partials_add(mml_grad_buf(ctx, b), j.gb_parts, out);
}

/* Inputs x, w, b (optional), residual (optional); iarg[0]: ReLU applied. */
static const mml_op_def op_linear = { "linear", linear_infer, linear_forward, linear_backward,
                                      .optional_inputs = 1u << 2 | 1u << 3 };

mml_tensor *mml_linear(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b)
{
    mml_node n = { .op = &op_linear, .in = { x, w, b }, .n_in = 3 };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_linear_relu(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b)
{
    mml_node n = { .op = &op_linear, .in = { x, w, b }, .n_in = 3, .iarg = { 1 } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_linear_add(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b, mml_tensor *res)
{
    if (!res) return NULL; /* an optional slot must not hide an earlier failure */
    mml_node n = { .op = &op_linear, .in = { x, w, b, res }, .n_in = 4 };
    return mml_op_run(ctx, &n);
}

/* ---- outer ---- */

static mml_status outer_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *a = n->in[0], *b = n->in[1];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[0] != b->shape[0] || a->dtype != MML_F32 || b->dtype != MML_F32)
        return mml_op_error(n, "needs float32 [B, m] and [B, n]");
    mml_set_shape(out, MML_F32, 3, (int64_t[]){ a->shape[0], a->shape[1], b->shape[1] });
    return MML_OK;
}

static void outer_forward(mml_ctx *ctx, mml_node *n)
{
    const mml_tensor *a = n->in[0], *b = n->in[1];
    int64_t B = a->shape[0], m = a->shape[1], k = b->shape[1];
    float *y = mml_f32(n->out);
    for (int64_t s = 0; s < B; s++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++) y[(s * m + i) * k + j] = mml_f32(a)[s * m + i] * mml_f32(b)[s * k + j];
}

static void outer_backward(mml_ctx *ctx, mml_node *n)
{
    mml_tensor *a = n->in[0], *b = n->in[1];
    int64_t B = a->shape[0], m = a->shape[1], k = b->shape[1];
    float *ga = mml_wants_grad(a) ? mml_grad_buf(ctx, a) : NULL;
    float *gb = mml_wants_grad(b) ? mml_grad_buf(ctx, b) : NULL;
    const float *g = n->out->grad;
    for (int64_t s = 0; s < B; s++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++) {
                float gi = g[(s * m + i) * k + j];
                if (ga) ga[s * m + i] += gi * mml_f32(b)[s * k + j];
                if (gb) gb[s * k + j] += gi * mml_f32(a)[s * m + i];
            }
}

static const mml_op_def op_outer = { "outer", outer_infer, outer_forward, outer_backward };

mml_tensor *mml_outer(mml_ctx *ctx, mml_tensor *a, mml_tensor *b)
{
    mml_node n = { .op = &op_outer, .in = { a, b }, .n_in = 2 };
    return mml_op_run(ctx, &n);
}
