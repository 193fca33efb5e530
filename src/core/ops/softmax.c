/* softmax, log_softmax (max-subtracted, so stable for any logits), masked_fill
 * and the causal mask used by attention. */
#include <math.h>
#include <string.h>

#include "core/ops/broadcast.h"
#include "mml/ops.h"
#include "mml/threads.h"

typedef struct sm_job {
    const float *x, *y, *g;
    float *out;
    int64_t len, inner;
    bool log;
} sm_job;

/* Rows are (outer, inner) pairs; a row's elements are len apart by inner. */
static void sm_forward_rows(void *arg, int64_t b, int64_t e, int thread)
{
    const sm_job *j = arg;
    for (int64_t r = b; r < e; r++) {
        int64_t base = (r / j->inner) * j->len * j->inner + r % j->inner, s = j->inner;
        const float *x = j->x + base;
        float *y = j->out + base;
        float m = -INFINITY;
        for (int64_t k = 0; k < j->len; k++) m = x[k * s] > m ? x[k * s] : m;
        if (m == -INFINITY) m = 0.0f; /* all -inf: keep NaN-free exponent arithmetic */
        double sum = 0.0;
        for (int64_t k = 0; k < j->len; k++) sum += expf(x[k * s] - m);
        if (j->log) {
            float lse = m + (float)log(sum);
            for (int64_t k = 0; k < j->len; k++) y[k * s] = x[k * s] - lse;
        } else {
            float inv = (float)(1.0 / sum);
            for (int64_t k = 0; k < j->len; k++) y[k * s] = expf(x[k * s] - m) * inv;
        }
    }
}

static void sm_backward_rows(void *arg, int64_t b, int64_t e, int thread)
{
    const sm_job *j = arg;
    for (int64_t r = b; r < e; r++) {
        int64_t base = (r / j->inner) * j->len * j->inner + r % j->inner, s = j->inner;
        const float *y = j->y + base, *g = j->g + base;
        float *gx = j->out + base;
        double dot = 0.0;
        if (j->log) {
            for (int64_t k = 0; k < j->len; k++) dot += g[k * s];
            for (int64_t k = 0; k < j->len; k++) gx[k * s] += g[k * s] - expf(y[k * s]) * (float)dot;
        } else {
            for (int64_t k = 0; k < j->len; k++) dot += g[k * s] * y[k * s];
            for (int64_t k = 0; k < j->len; k++) gx[k * s] += y[k * s] * (g[k * s] - (float)dot);
        }
    }
}

static mml_status sm_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    if (x->dtype != MML_F32) return mml_op_error(n, "input must be float32");
    if (n->iarg[0] < 0) return mml_op_error(n, "axis %d out of range", (int)n->iarg[2]);
    mml_set_shape(out, MML_F32, x->ndim, x->shape);
    return MML_OK;
}

static sm_job sm_job_of(const mml_node *n)
{
    const mml_tensor *x = n->in[0];
    int axis = (int)n->iarg[0];
    sm_job j = { .len = x->shape[axis], .inner = 1, .log = n->iarg[1] != 0 };
    for (int i = axis + 1; i < x->ndim; i++) j.inner *= x->shape[i];
    return j;
}

static int64_t sm_rows(const mml_node *n, const sm_job *j)
{
    return j->len ? n->in[0]->numel / j->len : 0;
}

static void sm_forward(mml_ctx *ctx, mml_node *n)
{
    sm_job j = sm_job_of(n);
    j.x = mml_f32(n->in[0]);
    j.out = mml_f32(n->out);
    mml_parallel_for(sm_rows(n, &j), 1 + 16384 / (j.len + 1), sm_forward_rows, &j);
}

static void sm_backward(mml_ctx *ctx, mml_node *n)
{
    if (!mml_wants_grad(n->in[0])) return;
    sm_job j = sm_job_of(n);
    j.y = mml_f32(n->out);
    j.g = n->out->grad;
    j.out = mml_grad_buf(ctx, n->in[0]);
    mml_parallel_for(sm_rows(n, &j), 1 + 16384 / (j.len + 1), sm_backward_rows, &j);
}

static const mml_op_def op_softmax = { "softmax", sm_infer, sm_forward, sm_backward };
static const mml_op_def op_log_softmax = { "log_softmax", sm_infer, sm_forward, sm_backward };

static mml_tensor *softmax(mml_ctx *ctx, const mml_op_def *op, mml_tensor *x, int axis, bool log)
{
    if (!x) return NULL;
    mml_node n = { .op = op, .in = { x }, .n_in = 1, .iarg = { mml_axis(axis, x->ndim), log, axis } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_softmax(mml_ctx *ctx, mml_tensor *x, int axis) { return softmax(ctx, &op_softmax, x, axis, false); }
mml_tensor *mml_log_softmax(mml_ctx *ctx, mml_tensor *x, int axis) { return softmax(ctx, &op_log_softmax, x, axis, true); }

/* ---- masked_fill ---- */

static bool nonzero(const mml_tensor *m, int64_t i)
{
    switch (m->dtype) {
    case MML_F32: return mml_f32(m)[i] != 0.0f;
    case MML_I32: return mml_i32(m)[i] != 0;
    case MML_I64: return mml_i64(m)[i] != 0;
    case MML_I8:
    case MML_U8: return ((const uint8_t *)m->data)[i] != 0;
    default: return ((const uint16_t *)m->data)[i] & 0x7fff;
    }
}

static mml_status mf_infer(const mml_node *n, mml_tensor *out)
{
    mml_bcast bc;
    const mml_tensor *x = n->in[0];
    if (x->dtype != MML_F32) return mml_op_error(n, "input must be float32");
    if (!mml_bcast_init(&bc, x, n->in[1]) || bc.nd != x->ndim ||
        memcmp(bc.shape, x->shape, (size_t)x->ndim * sizeof x->shape[0]) != 0)
        return mml_op_error(n, "mask does not broadcast to the input's shape");
    mml_set_shape(out, MML_F32, x->ndim, x->shape);
    return MML_OK;
}

typedef struct mf_job {
    const mml_tensor *mask;
    const float *src;
    float *dst;
    float value;
    bool backward;
} mf_job;

static void mf_row(void *arg, int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb)
{
    const mf_job *j = arg;
    for (int64_t i = 0; i < n; i++) {
        bool masked = nonzero(j->mask, ib + i * sb);
        if (j->backward) {
            if (!masked) j->dst[o + i] += j->src[o + i];
        } else j->dst[o + i] = masked ? j->value : j->src[o + i];
    }
}

static void mf_run(const mml_node *n, const float *src, float *dst, bool backward)
{
    mml_bcast bc;
    mml_bcast_init(&bc, n->in[0], n->in[1]);
    mf_job j = { n->in[1], src, dst, n->farg[0], backward };
    mml_bcast_rows(&bc, mf_row, &j);
}

static void mf_forward(mml_ctx *ctx, mml_node *n) { mf_run(n, mml_f32(n->in[0]), mml_f32(n->out), false); }

static void mf_backward(mml_ctx *ctx, mml_node *n)
{
    if (mml_wants_grad(n->in[0])) mf_run(n, n->out->grad, mml_grad_buf(ctx, n->in[0]), true);
}

static const mml_op_def op_masked_fill = { "masked_fill", mf_infer, mf_forward, mf_backward };

mml_tensor *mml_masked_fill(mml_ctx *ctx, mml_tensor *x, mml_tensor *mask, float value)
{
    mml_node n = { .op = &op_masked_fill, .in = { x, mask }, .n_in = 2, .farg = { value } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_causal_mask(mml_ctx *ctx, int64_t T)
{
    mml_tensor *m = mml_new(ctx, MML_F32, 2, (int64_t[]){ T, T });
    if (!m) return NULL;
    for (int64_t i = 0; i < T; i++)
        for (int64_t k = 0; k < T; k++) mml_f32(m)[i * T + k] = k > i ? 1.0f : 0.0f;
    return m;
}
