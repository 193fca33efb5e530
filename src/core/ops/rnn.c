/* Fused GRU and LSTM layers (see rnn.h for the contract). Per step:
 *   GRU:  r = σ(gi_r + W_hr h + b_hr), z = σ(gi_z + W_hz h + b_hz),
 *         n = tanh(gi_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h
 *   LSTM: i, f, o = σ(.), g = tanh(.) of gi + W_hh h + b_hh; c' = f c + i g,
 *         h' = o tanh(c')
 * with gi = x W_ih^T + b_ih, one GEMM over all steps before the recurrence.
 * Batch rows never interact inside the recurrence, so each thread runs every
 * step on its own rows (one GEMM and one gate loop per step) with no
 * synchronisation per step; per-row results do not depend on the split.
 * Backward through time finishes each step at once while its gate gradients
 * are in cache: dx rows, and dW_ih, dW_hh and the biases as per-thread
 * partials (summed in thread order, so deterministic for a given thread
 * count). Stacking them for GEMMs over all steps afterwards read megabytes
 * back from memory, which cost more than the longer GEMMs saved. */
#include <string.h>

#include "core/kernels/gemm.h"
#include "core/op.h"
#include "core/ops/rnn.h"
#include "mml/threads.h"

/* The gate rows never overlap; GCC vectorises their loops only when told so
 * (clang does not know the pragma and needs no hint). */
#if defined(__GNUC__) && !defined(__clang__)
#define IVDEP _Pragma("GCC ivdep")
#else
#define IVDEP
#endif

#define ROW_GRAIN 16 /* rows per thread at least: fewer underuse the GEMM's 12-row register tile */

/* iarg: 0 LSTM, 1 reverse. Buffers live in the step arena. */
typedef struct rnn_run {
    int64_t B, T, I, H, G, A; /* A: activations kept per row, in units of H */
    bool lstm, reverse;
    const int32_t *len;    /* NULL: every sequence has length T */
    const float *x, *b_ih, *b_hh;
    float *gi;             /* [B, T, G*H]: x W_ih^T, without b_ih */
    mml_sgemm_packed w;    /* forward: W_hh^T [H, G*H]; backward: W_hh [G*H, H] */
    float *y;
    float *hs, *cs;        /* [T+1, B, H]: the state entering each step, in step order */
    float *act;            /* [T, B, A*H] gate activations, or one step's worth without a tape */
    int64_t act_step;      /* floats between steps in act: B*A*H, or 0 */
    float *gh;             /* forward scratch [B, G*H]: h W_hh^T */
    /* backward */
    const float *dy;
    float *dx;             /* [B, T, I], or NULL */
    mml_sgemm_packed w_ih; /* W_ih [G*H, I], for dx */
    float *dgi, *dgh;      /* [B, G*H]: one step's gradient of gi and of W_hh h + b_hh */
    float *partials;       /* per thread: dW_ih^T [I, G*H], dW_hh [G*H, H], db_ih, db_hh [G*H] */
    bool want[4];          /* which of those the inputs need */
    float *dh, *dh_next, *dc; /* [B, H] carries */
} rnn_run;

/* exp, sigmoid and tanh in plain arithmetic (Cephes' polynomials, about 2 ulp)
 * so the gate loops vectorise; libm's calls do not and were half the time. */
static inline float exp_approx(float x)
{
    x = x > 88.0f ? 88.0f : x < -87.0f ? -87.0f : x;
    float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - k * 0.693359375f - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23; /* 2^k */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigm(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

static inline float tanh_approx(float x)
{
    float ax = x < 0.0f ? -x : x, z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) *
                       z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (exp_approx(2.0f * ax) + 1.0f);
    return ax < 0.625f ? small : x < 0.0f ? -big : big;
}

static int64_t step_time(const rnn_run *q, int64_t s) { return q->reverse ? q->T - 1 - s : s; }
static bool active(const rnn_run *q, int64_t b, int64_t t) { return !q->len || t < q->len[b]; }
static int64_t partial_size(const rnn_run *q) { return q->G * q->H * (q->I + q->H + 2); }

static mml_status layer_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0], *w_ih = n->in[1], *b_ih = n->in[2], *w_hh = n->in[3], *b_hh = n->in[4];
    const mml_tensor *len = n->in[5];
    int64_t G = n->iarg[0] ? 4 : 3;
    for (int i = 0; i < 5; i++)
        if (n->in[i]->dtype != MML_F32) return mml_op_error(n, "inputs must be float32");
    if (w_hh->ndim != 2 || w_hh->shape[0] != G * w_hh->shape[1])
        return mml_op_error(n, "w_hh must be [%lld*H, H]", (long long)G);
    int64_t H = w_hh->shape[1], GH = G * H;
    if (x->ndim != 3) return mml_op_error(n, "x must be [batch, time, features]");
    if (w_ih->ndim != 2 || w_ih->shape[0] != GH || w_ih->shape[1] != x->shape[2])
        return mml_op_error(n, "w_ih must be [%lld, %lld]", (long long)GH, (long long)x->shape[2]);
    if (b_ih->ndim != 1 || b_ih->shape[0] != GH || b_hh->ndim != 1 || b_hh->shape[0] != GH)
        return mml_op_error(n, "biases must be [%lld]", (long long)GH);
    int64_t B = x->shape[0], T = x->shape[1];
    if (len && (len->dtype != MML_I32 || len->ndim != 1 || len->shape[0] != B))
        return mml_op_error(n, "lengths must be int32 [%lld]", (long long)B);
    for (int64_t i = 0; len && i < B; i++)
        if (mml_i32(len)[i] < 0 || mml_i32(len)[i] > T)
            return mml_op_error(n, "length %d of sequence %lld is not in [0, %lld]", mml_i32(len)[i], (long long)i,
                                (long long)T);
    mml_set_shape(out, MML_F32, 3, (int64_t[]){ B, T, H });
    return MML_OK;
}

/* ---- forward ---- */

/* The row loops read and write gate slices at offsets in unknown multiples of
 * H; without ivdep GCC wants more run-time overlap checks than it will emit and
 * leaves them scalar. The slices never overlap. gi + b_ih is rounded before
 * adding W_hh h + b_hh, as torch's linear then add does. */

/* act receives r, z, n and W_hn h + b_hn (backward needs all four). */
static void gru_cell_row(const float *gi, const float *bi, const float *gh, const float *bh, const float *h,
                         float *h_out, float *act, int64_t H)
{
IVDEP
    for (int64_t j = 0; j < H; j++) {
        float r = sigm((gi[j] + bi[j]) + (gh[j] + bh[j]));
        float z = sigm((gi[H + j] + bi[H + j]) + (gh[H + j] + bh[H + j]));
        float hn = gh[2 * H + j] + bh[2 * H + j];
        float n = tanh_approx((gi[2 * H + j] + bi[2 * H + j]) + r * hn);
        h_out[j] = n + z * (h[j] - n);
        act[j] = r;
        act[H + j] = z;
        act[2 * H + j] = n;
        act[3 * H + j] = hn;
    }
}

/* act receives i, f, g, o and tanh(c'). */
static void lstm_cell_row(const float *gi, const float *bi, const float *gh, const float *bh, const float *c,
                          float *h_out, float *c_out, float *act, int64_t H)
{
IVDEP
    for (int64_t j = 0; j < H; j++) {
        float i = sigm((gi[j] + bi[j]) + (gh[j] + bh[j]));
        float f = sigm((gi[H + j] + bi[H + j]) + (gh[H + j] + bh[H + j]));
        float g = tanh_approx((gi[2 * H + j] + bi[2 * H + j]) + (gh[2 * H + j] + bh[2 * H + j]));
        float o = sigm((gi[3 * H + j] + bi[3 * H + j]) + (gh[3 * H + j] + bh[3 * H + j]));
        float cn = f * c[j] + i * g, tc = tanh_approx(cn);
        c_out[j] = cn;
        h_out[j] = o * tc;
        act[j] = i;
        act[H + j] = f;
        act[2 * H + j] = g;
        act[3 * H + j] = o;
        act[4 * H + j] = tc;
    }
}

static void forward_row(const rnn_run *q, int64_t s, int64_t t, int64_t b)
{
    int64_t B = q->B, H = q->H, GH = q->G * H, cur = (s * B + b) * H, next = ((s + 1) * B + b) * H;
    float *y = q->y + (b * q->T + t) * H;
    if (!active(q, b, t)) { /* past the length: the state stays, the output is zero */
        memcpy(q->hs + next, q->hs + cur, (size_t)H * sizeof(float));
        if (q->lstm) memcpy(q->cs + next, q->cs + cur, (size_t)H * sizeof(float));
        memset(y, 0, (size_t)H * sizeof(float));
        return;
    }
    const float *gi = q->gi + (b * q->T + t) * GH, *gh = q->gh + b * GH;
    float *act = q->act + s * q->act_step + b * q->A * H;
    if (q->lstm) lstm_cell_row(gi, q->b_ih, gh, q->b_hh, q->cs + cur, q->hs + next, q->cs + next, act, H);
    else gru_cell_row(gi, q->b_ih, gh, q->b_hh, q->hs + cur, q->hs + next, act, H);
    memcpy(y, q->hs + next, (size_t)H * sizeof(float));
}

static void forward_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    const rnn_run *q = arg;
    int64_t B = q->B, H = q->H, GH = q->G * H;
    for (int64_t s = 0; s < q->T; s++) {
        if (s == 0) /* the initial state is zero */
            memset(q->gh + lo * GH, 0, (size_t)((hi - lo) * GH) * sizeof(float));
        else mml_sgemm_packed_b(false, hi - lo, 1.0f, q->hs + (s * B + lo) * H, H, &q->w, 0.0f, q->gh + lo * GH, GH);
        for (int64_t b = lo; b < hi; b++) forward_row(q, s, step_time(q, s), b);
    }
}

static float *arena_floats(mml_ctx *ctx, int64_t n, bool zero)
{
    float *p = mml_arena_alloc(ctx, (size_t)n * sizeof(float));
    if (p && zero) memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

static void layer_forward(mml_ctx *ctx, mml_node *n)
{
    const mml_tensor *x = n->in[0], *w_hh = n->in[3];
    rnn_run *q = mml_arena_alloc(ctx, sizeof *q);
    if (!q) return;
    int64_t B = x->shape[0], T = x->shape[1], I = x->shape[2], H = w_hh->shape[1];
    bool lstm = n->iarg[0];
    *q = (rnn_run){ .B = B, .T = T, .I = I, .H = H, .G = lstm ? 4 : 3, .A = lstm ? 5 : 4, .lstm = lstm,
                    .reverse = n->iarg[1], .len = n->in[5] ? mml_i32(n->in[5]) : NULL, .x = mml_f32(x),
                    .b_ih = mml_f32(n->in[2]), .b_hh = mml_f32(n->in[4]), .y = mml_f32(n->out) };
    bool tape = n->out->requires_grad; /* backward will run: keep every step's activations */
    int64_t GH = q->G * H, states = (T + 1) * B * H;
    q->act_step = tape ? B * q->A * H : 0;
    q->gi = arena_floats(ctx, B * T * GH, false);
    q->hs = arena_floats(ctx, states, false);
    q->cs = lstm ? arena_floats(ctx, states, false) : NULL;
    q->act = arena_floats(ctx, tape ? T * q->act_step : B * q->A * H, false);
    q->gh = arena_floats(ctx, B * GH, false);
    float *panels = arena_floats(ctx, (int64_t)mml_sgemm_packed_floats(H, GH), false);
    if (!q->gi || !q->hs || (lstm && !q->cs) || !q->act || !q->gh || !panels) return;
    mml_sgemm(false, true, B * T, GH, I, 1.0f, q->x, I, mml_f32(n->in[1]), I, 0.0f, q->gi, GH);
    q->w = mml_sgemm_pack_b(true, H, GH, mml_f32(w_hh), H, panels); /* once, not at every step */
    memset(q->hs, 0, (size_t)(B * H) * sizeof(float));
    if (lstm) memset(q->cs, 0, (size_t)(B * H) * sizeof(float));
    mml_parallel_for(B, ROW_GRAIN, forward_rows, q);
    n->saved = q;
}

/* ---- backward through time ---- */

/* For one row: dh is the carry reaching h', dy the output's gradient; writes
 * dgi (of gi), dg (of W_hh h + b_hh) and dh_next (the part of dh_prev that
 * does not pass through W_hh). */
static void gru_grad_row(const float *act, const float *h, const float *dh, const float *dy, float *dgi, float *dg,
                         float *dh_next, int64_t H)
{
IVDEP
    for (int64_t j = 0; j < H; j++) {
        float r = act[j], z = act[H + j], n = act[2 * H + j], hn = act[3 * H + j], g = dh[j] + dy[j];
        float dan = g * (1.0f - z) * (1.0f - n * n);
        float daz = g * (h[j] - n) * z * (1.0f - z);
        float dar = dan * hn * r * (1.0f - r);
        dgi[j] = dg[j] = dar;
        dgi[H + j] = dg[H + j] = daz;
        dgi[2 * H + j] = dan;
        dg[2 * H + j] = dan * r;
        dh_next[j] = g * z;
    }
}

/* As gru_grad_row; dc, the cell-state carry, is updated in place. */
static void lstm_grad_row(const float *act, const float *c, const float *dh, const float *dy, float *dc, float *dgi,
                          float *dg, float *dh_next, int64_t H)
{
IVDEP
    for (int64_t j = 0; j < H; j++) {
        float i = act[j], f = act[H + j], g = act[2 * H + j], o = act[3 * H + j], tc = act[4 * H + j];
        float dhj = dh[j] + dy[j], dct = dc[j] + dhj * o * (1.0f - tc * tc);
        dgi[j] = dg[j] = dct * g * i * (1.0f - i);
        dgi[H + j] = dg[H + j] = dct * c[j] * f * (1.0f - f);
        dgi[2 * H + j] = dg[2 * H + j] = dct * i * (1.0f - g * g);
        dgi[3 * H + j] = dg[3 * H + j] = dhj * tc * o * (1.0f - o);
        dc[j] = dct * f;
        dh_next[j] = 0.0f; /* all of it comes through W_hh */
    }
}

static void backward_row(const rnn_run *q, int64_t s, int64_t t, int64_t b, const float *dh, float *dh_next)
{
    int64_t B = q->B, H = q->H, GH = q->G * H, cur = (s * B + b) * H;
    float *dgi = q->dgi + b * GH, *dg = q->dgh + b * GH;
    if (!active(q, b, t)) { /* the state passed through unchanged */
        memset(dgi, 0, (size_t)GH * sizeof(float));
        memset(dg, 0, (size_t)GH * sizeof(float));
        memcpy(dh_next, dh, (size_t)H * sizeof(float));
        return;
    }
    const float *act = q->act + s * q->act_step + b * q->A * H, *dy = q->dy + (b * q->T + t) * H;
    if (q->lstm) lstm_grad_row(act, q->cs + cur, dh, dy, q->dc + b * H, dgi, dg, dh_next, H);
    else gru_grad_row(act, q->hs + cur, dh, dy, dgi, dg, dh_next, H);
}

static void add_column_sums(float *acc, const float *m, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) acc[j] += m[r * cols + j];
}

/* Everything step s contributes besides the carries, for rows [lo, hi):
 * dx rows, and the parameter gradients into this thread's partials. */
static void backward_step_rest(const rnn_run *q, int64_t s, int64_t lo, int64_t hi, float *part)
{
    int64_t B = q->B, T = q->T, I = q->I, H = q->H, GH = q->G * H, rows = hi - lo, t = step_time(q, s);
    const float *dgi = q->dgi + lo * GH, *dg = q->dgh + lo * GH, *x = q->x + (lo * T + t) * I;
    if (q->dx) /* rows of one time step lie T*I apart */
        mml_sgemm_packed_b(false, rows, 1.0f, dgi, GH, &q->w_ih, 1.0f, q->dx + (lo * T + t) * I, T * I);
    /* dW_ih transposed: I (40 features, say) as the GEMM's N would mostly pad its 32-wide tiles */
    if (q->want[0]) mml_sgemm(true, false, I, GH, rows, 1.0f, x, T * I, dgi, GH, 1.0f, part, GH);
    if (q->want[1] && s > 0) /* the initial state is zero */
        mml_sgemm(true, false, GH, H, rows, 1.0f, dg, GH, q->hs + (s * B + lo) * H, H, 1.0f, part + GH * I, H);
    if (q->want[2]) add_column_sums(part + GH * (I + H), dgi, rows, GH);
    if (q->want[3]) add_column_sums(part + GH * (I + H + 1), dg, rows, GH);
}

static void backward_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    const rnn_run *q = arg;
    int64_t H = q->H, GH = q->G * H;
    float *dh = q->dh + lo * H, *dh_next = q->dh_next + lo * H, *part = q->partials + thread * partial_size(q);
    for (int64_t s = q->T - 1; s >= 0; s--) {
        for (int64_t b = lo; b < hi; b++)
            backward_row(q, s, step_time(q, s), b, dh + (b - lo) * H, dh_next + (b - lo) * H);
        /* dh_{s-1} = direct part + dgh_s W_hh; nothing needs the initial state's */
        if (s > 0) mml_sgemm_packed_b(false, hi - lo, 1.0f, q->dgh + lo * GH, GH, &q->w, 1.0f, dh_next, H);
        backward_step_rest(q, s, lo, hi, part);
        float *tmp = dh;
        dh = dh_next;
        dh_next = tmp;
    }
}

/* grad(t) += the threads' partials, in thread order; transposed: each is t^T. */
static void add_partials(mml_ctx *ctx, mml_tensor *t, const float *partials, int n_parts, int64_t stride,
                         bool transposed)
{
    float *grad = mml_grad_buf(ctx, t);
    if (!grad) return;
    int64_t rows = t->ndim == 2 ? t->shape[0] : 1, cols = t->numel / rows;
    for (int p = 0; p < n_parts; p++) {
        const float *part = partials + p * stride;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                grad[r * cols + c] += transposed ? part[c * rows + r] : part[r * cols + c];
    }
}

static void layer_backward(mml_ctx *ctx, mml_node *n)
{
    rnn_run *q = n->saved;
    if (!q) return; /* forward ran out of memory */
    mml_tensor *x = n->in[0], *w_ih = n->in[1];
    int64_t B = q->B, H = q->H, I = q->I, GH = q->G * H;
    int parts = mml_threads_get();
    q->dy = n->out->grad;
    q->dx = mml_wants_grad(x) ? mml_grad_buf(ctx, x) : NULL;
    q->dgi = arena_floats(ctx, B * GH, false);
    q->dgh = arena_floats(ctx, B * GH, false);
    q->partials = arena_floats(ctx, parts * partial_size(q), true);
    q->dh = arena_floats(ctx, B * H, true);
    q->dh_next = arena_floats(ctx, B * H, false);
    q->dc = q->lstm ? arena_floats(ctx, B * H, true) : NULL;
    float *panels = arena_floats(ctx, (int64_t)mml_sgemm_packed_floats(GH, H), false);
    float *ih_panels = q->dx ? arena_floats(ctx, (int64_t)mml_sgemm_packed_floats(GH, I), false) : NULL;
    if ((mml_wants_grad(x) && (!q->dx || !ih_panels)) || !q->dgi || !q->dgh || !q->partials || !q->dh ||
        !q->dh_next || (q->lstm && !q->dc) || !panels)
        return;
    q->w = mml_sgemm_pack_b(false, GH, H, mml_f32(n->in[3]), H, panels);
    if (q->dx) q->w_ih = mml_sgemm_pack_b(false, GH, I, mml_f32(w_ih), I, ih_panels);
    static const int slot[4] = { 1, 3, 2, 4 }; /* partials order: dW_ih, dW_hh, db_ih, db_hh */
    for (int k = 0; k < 4; k++) q->want[k] = mml_wants_grad(n->in[slot[k]]);
    mml_parallel_for(B, ROW_GRAIN, backward_rows, q);
    int64_t offset[4] = { 0, GH * I, GH * (I + H), GH * (I + H + 1) };
    for (int k = 0; k < 4; k++)
        if (q->want[k]) add_partials(ctx, n->in[slot[k]], q->partials + offset[k], parts, partial_size(q), k == 0);
}

static const mml_op_def op_gru_layer = { "gru_layer", layer_infer, layer_forward, layer_backward,
                                         .optional_inputs = 1u << 5 };
static const mml_op_def op_lstm_layer = { "lstm_layer", layer_infer, layer_forward, layer_backward,
                                          .optional_inputs = 1u << 5 };

static mml_tensor *layer(mml_ctx *ctx, const mml_op_def *op, bool lstm, const mml_rnn_weights *w, mml_tensor *x,
                         const mml_tensor *lengths, bool reverse)
{
    /* lengths is only read; the node's input slots are not const */
    mml_node n = { .op = op, .in = { x, w->w_ih, w->b_ih, w->w_hh, w->b_hh, (mml_tensor *)lengths }, .n_in = 6,
                   .iarg = { lstm, reverse } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_gru_layer(mml_ctx *ctx, const mml_rnn_weights *w, mml_tensor *x, const mml_tensor *lengths,
                          bool reverse)
{
    return layer(ctx, &op_gru_layer, false, w, x, lengths, reverse);
}

mml_tensor *mml_lstm_layer(mml_ctx *ctx, const mml_rnn_weights *w, mml_tensor *x, const mml_tensor *lengths,
                           bool reverse)
{
    return layer(ctx, &op_lstm_layer, true, w, x, lengths, reverse);
}
