/* Fused GRU and LSTM sequences (see rnn.h for the contract). Per step:
 *   GRU:  r = σ(gi_r + W_hr h + b_hr), z = σ(gi_z + W_hz h + b_hz),
 *         n = tanh(gi_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h
 *   LSTM: i, f, o = σ(.), g = tanh(.) of gi + W_hh h + b_hh; c' = f c + i g,
 *         h' = o tanh(c')
 * Batch rows never interact inside the recurrence, so each thread runs every
 * step on its own rows (one GEMM and one gate loop per step) with no
 * synchronisation per step; per-row results do not depend on the split.
 * Backward through time adds each step's dW_hh and db_hh while its gate
 * gradients are still in cache (one GEMM over all steps afterwards read them
 * back from memory, which cost more than the GEMM's larger K saved); threads
 * keep partials, summed in thread order, so results are deterministic for a
 * given thread count. */
#include <string.h>

#include "core/kernels/gemm.h"
#include "core/op.h"
#include "core/ops/rnn.h"
#include "mml/threads.h"

#define ROW_GRAIN 16 /* rows per thread at least: fewer underuse the GEMM's 12-row register tile */

/* iarg: 0 LSTM, 1 reverse. Buffers live in the step arena. */
typedef struct rnn_seq {
    int64_t B, T, H, G, A; /* A: activations kept per row, in units of H */
    bool lstm, reverse;
    const int32_t *len;    /* NULL: every sequence has length T */
    const float *gi, *b_hh;
    mml_sgemm_packed w;    /* forward: W_hh^T [H, G*H]; backward: W_hh [G*H, H] */
    float *y;
    float *hs, *cs;        /* [T+1, B, H]: the state entering each step, in step order */
    float *act;            /* [T, B, A*H] gate activations, or one step's worth without a tape */
    int64_t act_step;      /* floats between steps in act: B*A*H, or 0 */
    float *gh;             /* forward scratch [B, G*H]: h W_hh^T */
    const float *dy;       /* backward */
    float *dgi;            /* [B, T, G*H] */
    float *dgates;         /* [B, G*H]: one step's gradient of W_hh h + b_hh */
    float *dw, *db;        /* per thread: dW_hh [G*H, H] and db_hh [G*H] partials, or NULL */
    float *dh, *dh_next, *dc; /* [B, H] carries */
} rnn_seq;

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

static int64_t step_time(const rnn_seq *q, int64_t s) { return q->reverse ? q->T - 1 - s : s; }
static bool active(const rnn_seq *q, int64_t b, int64_t t) { return !q->len || t < q->len[b]; }

static mml_status seq_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *gi = n->in[0], *w = n->in[1], *b = n->in[2], *len = n->in[3];
    int64_t G = n->iarg[0] ? 4 : 3;
    if (gi->dtype != MML_F32 || w->dtype != MML_F32 || b->dtype != MML_F32)
        return mml_op_error(n, "inputs must be float32");
    if (w->ndim != 2 || w->shape[0] != G * w->shape[1])
        return mml_op_error(n, "w_hh must be [%lld*H, H]", (long long)G);
    int64_t H = w->shape[1];
    if (gi->ndim != 3 || gi->shape[2] != G * H)
        return mml_op_error(n, "gi must be [batch, time, %lld]", (long long)(G * H));
    if (b->ndim != 1 || b->shape[0] != G * H) return mml_op_error(n, "b_hh must be [%lld]", (long long)(G * H));
    int64_t B = gi->shape[0], T = gi->shape[1];
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
 * leaves them scalar. The slices never overlap. */

/* act receives r, z, n and W_hn h + b_hn (backward needs all four). */
static void gru_cell_row(const float *gi, const float *gh, const float *bh, const float *h, float *h_out, float *act,
                         int64_t H)
{
#pragma GCC ivdep
    for (int64_t j = 0; j < H; j++) {
        float r = sigm(gi[j] + (gh[j] + bh[j]));
        float z = sigm(gi[H + j] + (gh[H + j] + bh[H + j]));
        float hn = gh[2 * H + j] + bh[2 * H + j];
        float n = tanh_approx(gi[2 * H + j] + r * hn);
        h_out[j] = n + z * (h[j] - n);
        act[j] = r;
        act[H + j] = z;
        act[2 * H + j] = n;
        act[3 * H + j] = hn;
    }
}

/* act receives i, f, g, o and tanh(c'). */
static void lstm_cell_row(const float *gi, const float *gh, const float *bh, const float *c, float *h_out,
                          float *c_out, float *act, int64_t H)
{
#pragma GCC ivdep
    for (int64_t j = 0; j < H; j++) {
        float i = sigm(gi[j] + (gh[j] + bh[j]));
        float f = sigm(gi[H + j] + (gh[H + j] + bh[H + j]));
        float g = tanh_approx(gi[2 * H + j] + (gh[2 * H + j] + bh[2 * H + j]));
        float o = sigm(gi[3 * H + j] + (gh[3 * H + j] + bh[3 * H + j]));
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

static void forward_row(const rnn_seq *q, int64_t s, int64_t t, int64_t b)
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
    if (q->lstm) lstm_cell_row(gi, gh, q->b_hh, q->cs + cur, q->hs + next, q->cs + next, act, H);
    else gru_cell_row(gi, gh, q->b_hh, q->hs + cur, q->hs + next, act, H);
    memcpy(y, q->hs + next, (size_t)H * sizeof(float));
}

static void forward_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    const rnn_seq *q = arg;
    int64_t B = q->B, H = q->H, GH = q->G * H;
    for (int64_t s = 0; s < q->T; s++) {
        mml_sgemm_packed_b(false, hi - lo, 1.0f, q->hs + (s * B + lo) * H, H, &q->w, 0.0f, q->gh + lo * GH, GH);
        for (int64_t b = lo; b < hi; b++) forward_row(q, s, step_time(q, s), b);
    }
}

static float *arena_floats(mml_ctx *ctx, int64_t n, bool zero)
{
    float *p = mml_arena_alloc(ctx, (size_t)n * sizeof(float));
    if (p && zero) memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

static void seq_forward(mml_ctx *ctx, mml_node *n)
{
    const mml_tensor *gi = n->in[0], *w = n->in[1];
    rnn_seq *q = mml_arena_alloc(ctx, sizeof *q);
    if (!q) return;
    int64_t B = gi->shape[0], T = gi->shape[1], H = w->shape[1];
    bool lstm = n->iarg[0];
    *q = (rnn_seq){ .B = B, .T = T, .H = H, .G = lstm ? 4 : 3, .A = lstm ? 5 : 4, .lstm = lstm,
                    .reverse = n->iarg[1], .len = n->in[3] ? mml_i32(n->in[3]) : NULL, .gi = mml_f32(gi),
                    .b_hh = mml_f32(n->in[2]), .y = mml_f32(n->out) };
    /* the same test mml_op_run uses to put the node on the tape */
    bool tape = mml_grad_enabled(ctx) && (gi->requires_grad || w->requires_grad || n->in[2]->requires_grad);
    int64_t GH = q->G * H, states = (T + 1) * B * H;
    q->act_step = tape ? B * q->A * H : 0;
    q->hs = arena_floats(ctx, states, false);
    q->cs = lstm ? arena_floats(ctx, states, false) : NULL;
    q->act = arena_floats(ctx, tape ? T * q->act_step : B * q->A * H, false);
    q->gh = arena_floats(ctx, B * GH, false);
    float *panels = arena_floats(ctx, (int64_t)mml_sgemm_packed_floats(H, GH), false);
    if (!q->hs || (lstm && !q->cs) || !q->act || !q->gh || !panels) return;
    q->w = mml_sgemm_pack_b(true, H, GH, mml_f32(w), H, panels); /* once, not at every step */
    memset(q->hs, 0, (size_t)(B * H) * sizeof(float));
    if (lstm) memset(q->cs, 0, (size_t)(B * H) * sizeof(float));
    mml_parallel_for(B, ROW_GRAIN, forward_rows, q);
    n->saved = q;
}

/* ---- backward through time ---- */

/* For one row: dh is the carry reaching h', dy the output's gradient; writes
 * dg (of W_hh h + b_hh), adds to dgi (of gi), writes dh_next (the part of
 * dh_prev that does not pass through W_hh). */
static void gru_grad_row(const float *act, const float *h, const float *dh, const float *dy, float *dg, float *dgi,
                         float *dh_next, int64_t H)
{
#pragma GCC ivdep
    for (int64_t j = 0; j < H; j++) {
        float r = act[j], z = act[H + j], n = act[2 * H + j], hn = act[3 * H + j], g = dh[j] + dy[j];
        float dan = g * (1.0f - z) * (1.0f - n * n);
        float daz = g * (h[j] - n) * z * (1.0f - z);
        float dar = dan * hn * r * (1.0f - r);
        dg[j] = dar;
        dg[H + j] = daz;
        dg[2 * H + j] = dan * r;
        dgi[j] += dar;
        dgi[H + j] += daz;
        dgi[2 * H + j] += dan;
        dh_next[j] = g * z;
    }
}

/* As gru_grad_row; dc, the cell-state carry, is updated in place. */
static void lstm_grad_row(const float *act, const float *c, const float *dh, const float *dy, float *dc, float *dg,
                          float *dgi, float *dh_next, int64_t H)
{
#pragma GCC ivdep
    for (int64_t j = 0; j < H; j++) {
        float i = act[j], f = act[H + j], g = act[2 * H + j], o = act[3 * H + j], tc = act[4 * H + j];
        float dhj = dh[j] + dy[j], dct = dc[j] + dhj * o * (1.0f - tc * tc);
        float dai = dct * g * i * (1.0f - i), daf = dct * c[j] * f * (1.0f - f);
        float dag = dct * i * (1.0f - g * g), dao = dhj * tc * o * (1.0f - o);
        dg[j] = dai;
        dg[H + j] = daf;
        dg[2 * H + j] = dag;
        dg[3 * H + j] = dao;
        dgi[j] += dai;
        dgi[H + j] += daf;
        dgi[2 * H + j] += dag;
        dgi[3 * H + j] += dao;
        dc[j] = dct * f;
        dh_next[j] = 0.0f; /* all of it comes through W_hh */
    }
}

static void backward_row(const rnn_seq *q, int64_t s, int64_t t, int64_t b, const float *dh, float *dh_next)
{
    int64_t B = q->B, H = q->H, GH = q->G * H, cur = (s * B + b) * H;
    float *dg = q->dgates + b * GH;
    if (!active(q, b, t)) { /* the state passed through unchanged */
        memset(dg, 0, (size_t)GH * sizeof(float));
        memcpy(dh_next, dh, (size_t)H * sizeof(float));
        return;
    }
    const float *act = q->act + s * q->act_step + b * q->A * H, *dy = q->dy + (b * q->T + t) * H;
    float *dgi = q->dgi + (b * q->T + t) * GH;
    if (q->lstm) lstm_grad_row(act, q->cs + cur, dh, dy, q->dc + b * H, dg, dgi, dh_next, H);
    else gru_grad_row(act, q->hs + cur, dh, dy, dg, dgi, dh_next, H);
}

static void backward_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    const rnn_seq *q = arg;
    int64_t B = q->B, H = q->H, GH = q->G * H;
    float *dh = q->dh + lo * H, *dh_next = q->dh_next + lo * H, *dg = q->dgates + lo * GH;
    float *dw = q->dw ? q->dw + thread * GH * H : NULL, *db = q->db ? q->db + thread * GH : NULL;
    for (int64_t s = q->T - 1; s >= 0; s--) {
        for (int64_t b = lo; b < hi; b++) backward_row(q, s, step_time(q, s), b, dh + (b - lo) * H, dh_next + (b - lo) * H);
        /* dh_{s-1} = direct part + dgates_s W_hh */
        mml_sgemm_packed_b(false, hi - lo, 1.0f, dg, GH, &q->w, 1.0f, dh_next, H);
        if (dw) /* dW_hh += dgates_s^T h_{s-1} */
            mml_sgemm(true, false, GH, H, hi - lo, 1.0f, dg, GH, q->hs + (s * B + lo) * H, H, 1.0f, dw, H);
        for (int64_t r = 0; db && r < hi - lo; r++)
            for (int64_t j = 0; j < GH; j++) db[j] += dg[r * GH + j];
        float *tmp = dh;
        dh = dh_next;
        dh_next = tmp;
    }
}

static void add_partials(float *grad, const float *parts, int n_parts, int64_t size)
{
    if (!grad) return;
    for (int p = 0; p < n_parts; p++)
        for (int64_t i = 0; i < size; i++) grad[i] += parts[p * size + i];
}

static void seq_backward(mml_ctx *ctx, mml_node *n)
{
    rnn_seq *q = n->saved;
    mml_tensor *gi = n->in[0], *w = n->in[1], *b = n->in[2];
    if (!q) return; /* forward ran out of memory */
    int64_t B = q->B, T = q->T, H = q->H, GH = q->G * H;
    q->dy = n->out->grad;
    q->dgi = mml_wants_grad(gi) ? mml_grad_buf(ctx, gi) : arena_floats(ctx, B * T * GH, true);
    q->dgates = arena_floats(ctx, B * GH, false);
    int parts = mml_threads_get();
    q->dw = mml_wants_grad(w) ? arena_floats(ctx, parts * GH * H, true) : NULL;
    q->db = mml_wants_grad(b) ? arena_floats(ctx, parts * GH, true) : NULL;
    q->dh = arena_floats(ctx, B * H, true);
    q->dh_next = arena_floats(ctx, B * H, false);
    q->dc = q->lstm ? arena_floats(ctx, B * H, true) : NULL;
    float *panels = arena_floats(ctx, (int64_t)mml_sgemm_packed_floats(GH, H), false);
    if (!q->dgi || !q->dgates || !q->dh || !q->dh_next || (q->lstm && !q->dc) || !panels ||
        (mml_wants_grad(w) && !q->dw) || (mml_wants_grad(b) && !q->db))
        return;
    q->w = mml_sgemm_pack_b(false, GH, H, mml_f32(w), H, panels);
    mml_parallel_for(B, ROW_GRAIN, backward_rows, q);
    if (q->dw) add_partials(mml_grad_buf(ctx, w), q->dw, parts, GH * H);
    if (q->db) add_partials(mml_grad_buf(ctx, b), q->db, parts, GH);
}

static const mml_op_def op_gru_seq = { "gru_seq", seq_infer, seq_forward, seq_backward, .optional_inputs = 8 };
static const mml_op_def op_lstm_seq = { "lstm_seq", seq_infer, seq_forward, seq_backward, .optional_inputs = 8 };

static mml_tensor *seq(mml_ctx *ctx, const mml_op_def *op, bool lstm, mml_tensor *gi, mml_tensor *w_hh,
                       mml_tensor *b_hh, const mml_tensor *lengths, bool reverse)
{
    /* lengths is only read; the node's input slots are not const */
    mml_node n = { .op = op, .in = { gi, w_hh, b_hh, (mml_tensor *)lengths }, .n_in = 4, .iarg = { lstm, reverse } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_gru_seq(mml_ctx *ctx, mml_tensor *gi, mml_tensor *w_hh, mml_tensor *b_hh, const mml_tensor *lengths,
                        bool reverse)
{
    return seq(ctx, &op_gru_seq, false, gi, w_hh, b_hh, lengths, reverse);
}

mml_tensor *mml_lstm_seq(mml_ctx *ctx, mml_tensor *gi, mml_tensor *w_hh, mml_tensor *b_hh, const mml_tensor *lengths,
                         bool reverse)
{
    return seq(ctx, &op_lstm_seq, true, gi, w_hh, b_hh, lengths, reverse);
}
