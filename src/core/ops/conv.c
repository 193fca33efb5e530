/* conv1d/conv2d and their transposed forms, NCHW, torch weight layouts, with
 * an optional ReLU and 2 x 2 max pooling done in the same pass.
 * One 2-D implementation serves both (1-D is H = 1). Per group:
 *   conv:       out = W_g [Og, Cg*kh*kw] @ im2col(x) [Cg*kh*kw, OH*OW], over
 *               a chunk of samples at once (their columns side by side)
 *   transposed: out = col2im(W_g^T @ x)  (the data gradient of a conv), per sample
 *   Winograd:   stride-1 3 x 3 and 5 x 5 kernels between enough channels go
 *               through 6 x 6 tiles (core/kernels/winograd.h), 2.8-4x fewer
 *               products, forward and both gradients
 * Tasks run in parallel, each thread with its own work buffer; weight and bias
 * gradients go to per-thread buffers summed in thread order, so results are
 * deterministic for a given thread count. */
#include <string.h>

#include "core/kernels/conv.h"
#include "core/kernels/gemm.h"
#include "core/kernels/winograd.h"
#include "core/op.h"
#include "mml/cpu.h"
#include "mml/ops.h"
#include "mml/threads.h"

mml_conv_args mml_conv_args_default(void)
{
    return (mml_conv_args){ .stride = { 1, 1 }, .dilation = { 1, 1 }, .groups = 1 };
}

/* iarg layout: 0 transposed, 1 spatial dims (1 or 2), 2..3 stride, 4..5 padding,
 * 6..7 dilation, 8..9 output_padding, 10 groups, 11 what is fused (FUSE_*). */
enum { FUSE_RELU = 1, FUSE_POOL = 2 };

static bool fused(const mml_node *n, int what) { return (n->iarg[11] & what) != 0; }
static mml_conv_geom geom_of(const mml_node *n)
{
    const mml_tensor *x = n->in[0], *w = n->in[1];
    bool tr = n->iarg[0], two = n->iarg[1] == 2;
    mml_conv_geom g = { 0 };
    g.groups = n->iarg[10];
    g.N = x->shape[0];
    g.H = two ? x->shape[2] : 1;
    g.W = x->shape[two ? 3 : 2];
    g.kh = two ? w->shape[2] : 1;
    g.kw = w->shape[two ? 3 : 2];
    g.sh = two ? n->iarg[2] : 1;
    g.sw = n->iarg[two ? 3 : 2];
    g.ph = two ? n->iarg[4] : 0;
    g.pw = n->iarg[two ? 5 : 4];
    g.dh = two ? n->iarg[6] : 1;
    g.dw = n->iarg[two ? 7 : 6];
    int64_t oph = two ? n->iarg[8] : 0, opw = n->iarg[two ? 9 : 8];
    if (!tr) {
        g.C = x->shape[1];
        g.O = w->shape[0];
        int64_t fh = g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1, fw = g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1;
        g.OH = fh < 0 ? 0 : fh / g.sh + 1; /* a kernel that does not fit gives 0 */
        g.OW = fw < 0 ? 0 : fw / g.sw + 1;
    } else { /* the "image" side of the im2col is the output */
        g.C = x->shape[1];
        g.O = w->shape[1] * g.groups;
        g.OH = (g.H - 1) * g.sh - 2 * g.ph + g.dh * (g.kh - 1) + oph + 1;
        g.OW = (g.W - 1) * g.sw - 2 * g.pw + g.dw * (g.kw - 1) + opw + 1;
    }
    return g;
}

static mml_status conv_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    bool tr = n->iarg[0];
    int sd = (int)n->iarg[1];
    if (x->dtype != MML_F32 || w->dtype != MML_F32) return mml_op_error(n, "inputs must be float32");
    if (x->ndim != sd + 2 || w->ndim != sd + 2)
        return mml_op_error(n, "input and weight must have %d dims", sd + 2);
    int64_t groups = n->iarg[10];
    /* pairs (dim 0, dim 1) of stride, padding, dilation, output_padding; 1-D uses index 0 */
    for (int i = 0; i < 2 * 4; i++) {
        bool used = sd == 2 || i % 2 == 0, positive = i < 2 || (i >= 4 && i < 6);
        if (used && n->iarg[2 + i] < (positive ? 1 : 0)) return mml_op_error(n, "bad stride, padding or dilation");
    }
    if (groups < 1) return mml_op_error(n, "groups must be positive");
    if (tr && n->iarg[11]) return mml_op_error(n, "a fused ReLU or pooling is for convolutions, not transposed ones");
    if (fused(n, FUSE_POOL) && sd != 2) return mml_op_error(n, "a fused 2 x 2 max pooling is for conv2d");
    int64_t cin = x->shape[1];
    if (!tr && (cin != w->shape[1] * groups || w->shape[0] % groups))
        return mml_op_error(n, "input has %lld channels; weight expects %lld x %lld groups (output channels "
                            "divisible by groups)", (long long)cin, (long long)w->shape[1], (long long)groups);
    if (tr && (cin != w->shape[0] || cin % groups))
        return mml_op_error(n, "input has %lld channels; transposed weight expects %lld divisible by %lld groups",
                            (long long)cin, (long long)w->shape[0], (long long)groups);
    mml_conv_geom g = geom_of(n);
    if (b && (b->ndim != 1 || b->shape[0] != g.O)) return mml_op_error(n, "bias must be [%lld]", (long long)g.O);
    if (g.OH < 1 || g.OW < 1) return mml_op_error(n, "kernel larger than the padded input");
    int64_t shape[4] = { g.N, g.O, g.OH, g.OW };
    if (sd == 1) shape[2] = g.OW;
    if (fused(n, FUSE_POOL)) {
        if (g.OH < 2 || g.OW < 2) return mml_op_error(n, "a 2 x 2 max pooling needs an output of at least 2 x 2");
        shape[2] = g.OH / 2, shape[3] = g.OW / 2;
    }
    mml_set_shape(out, MML_F32, sd + 2, shape);
    return MML_OK;
}

typedef struct conv_job {
    const mml_node *n;
    mml_conv_geom g;
    int64_t chunk;     /* samples per task (plain conv) */
    float *work;       /* per thread: work_size floats */
    float *wgrad;      /* per thread: weight-gradient partials (backward) */
    float *bgrad;      /* per thread: bias-gradient partials (backward) */
    int64_t work_size, wsize;
    const float *dout;
    float *dx;
    int32_t *arg;      /* fused pooling: each window's maximum, 0..3 (mml_max_2x2) */
    const mml_winograd *wg; /* the Winograd path, or NULL */
    int64_t th, tw;    /* Winograd: tiles of the output grid */
    int64_t dth, dtw;  /*   and of the input grid (the data gradient's output) */
    float *kt;         /*   transformed kernels, [36][O][C] (forward) or [36][C][O] (data gradient) */
    float *slots;      /*   per thread: transform scratch and one output plane */
    int64_t slot_size;
    int64_t out_block; /* Winograd forward: output channels per output transform */
} conv_job;

/* ---- plain convolution: a chunk of samples side by side in one GEMM ----
 * Sizes: Cg/Og channels per group, K = Cg*kh*kw the patch length, P output
 * pixels, S samples in the chunk. col [K, S*P] holds the chunk's patches and
 * mat [Og, S*P] its output (or output gradient) for one group: one GEMM of
 * width S*P packs W once and wastes no partial tiles per sample. */

/* Aim for GEMMs about this wide, with col at most this many floats. */
#define CHUNK_COLUMNS 2048
#define CHUNK_MAX_FLOATS (1 << 18)

/* Samples per task, at most s, so that every thread gets as many tasks. */
static int64_t balanced_chunk(int64_t N, int64_t s, int threads)
{
    if (s < 1) s = 1;
    int64_t tasks = (N + s - 1) / s;
    tasks = (tasks + threads - 1) / threads * threads;
    return (N + tasks - 1) / tasks;
}

static int64_t chunk_of(const mml_conv_geom *g, int threads)
{
    int64_t P = g->OH * g->OW, K = g->C / g->groups * g->kh * g->kw;
    int64_t s = CHUNK_COLUMNS / P;
    if (s * P * K > CHUNK_MAX_FLOATS) s = CHUNK_MAX_FLOATS / (P * K);
    return balanced_chunk(g->N, s, threads);
}

static int64_t plain_work_size(const mml_conv_geom *g, int64_t S)
{
    int64_t P = g->OH * g->OW, K = g->C / g->groups * g->kh * g->kw, Og = g->O / g->groups;
    return S * P * (K + Og) + K * Og;
}

typedef struct unfold_job {
    const mml_conv_geom *g;
    const float *x;
    int64_t s0, S, gi;
    float *col;
} unfold_job;

static void unfold_rows(void *arg, int64_t k0, int64_t k1, int thread)
{
    const unfold_job *u = arg;
    const mml_conv_geom *g = u->g;
    int64_t Cg = g->C / g->groups, P = g->OH * g->OW;
    for (int64_t s = 0; s < u->S; s++)
        mml_im2col_rows(u->x + ((u->s0 + s) * g->C + u->gi * Cg) * g->H * g->W, k0, k1, g->H, g->W, g, g->OH, g->OW,
                        u->col + s * P, u->S * P);
}

/* The patches of samples s0.. for group gi into col [K, S*P]. Inside a task
 * of the batch this runs on its thread; a lone task (batch-1 inference) splits
 * its rows over the threads, as the GEMM that follows splits its work. */
static void unfold_chunk(const mml_conv_geom *g, const float *x, int64_t s0, int64_t S, int64_t gi, float *col)
{
    unfold_job u = { g, x, s0, S, gi, col };
    int64_t K = g->C / g->groups * g->kh * g->kw, P = g->OH * g->OW;
    mml_parallel_for(K, 1 + 4096 / (S * P + 1), unfold_rows, &u);
}

/* y = m + bias, through the ReLU if relu (y may be m). */
static void bias_act(float *y, const float *m, int64_t P, float bias, bool relu)
{
    if (relu)
        for (int64_t p = 0; p < P; p++) y[p] = m[p] + bias > 0.0f ? m[p] + bias : 0.0f;
    else
        for (int64_t p = 0; p < P; p++) y[p] = m[p] + bias;
}

/* 2 x 2 max pooling, stride 2, of a plane a [OH, OW] into y [OH/2, OW/2]
 * (an odd last row or column is dropped, as torch does), and each window's
 * choice into arg unless it is NULL. */
static void pool_plane(const float *a, int64_t OH, int64_t OW, float *y, int32_t *arg)
{
    int64_t PW = OW / 2;
    for (int64_t py = 0; py < OH / 2; py++)
        mml_max_pool_2x2_row(a + 2 * py * OW, a + (2 * py + 1) * OW, y + py * PW, arg ? arg + py * PW : NULL, PW);
}

/* Output plane `plane` (sample * O + channel) from the conv's plane m:
 * bias, ReLU and pooling as fused. m is scratch. */
static void finish_plane(const conv_job *j, int64_t plane, float *m)
{
    const mml_node *n = j->n;
    const mml_conv_geom *g = &j->g;
    int64_t P = g->OH * g->OW, PP = (g->OH / 2) * (g->OW / 2);
    float bias = n->in[2] ? mml_f32(n->in[2])[plane % g->O] : 0.0f;
    if (!fused(n, FUSE_POOL)) {
        bias_act(mml_f32(n->out) + plane * P, m, P, bias, fused(n, FUSE_RELU));
        return;
    }
    bias_act(m, m, P, bias, fused(n, FUSE_RELU)); /* still in L1 for the pooling */
    pool_plane(m, g->OH, g->OW, mml_f32(n->out) + plane * PP, j->arg ? j->arg + plane * PP : NULL);
}

typedef struct finish_job {
    const conv_job *j;
    int64_t s0, S, gi;
    float *mat; /* [Og, S*P] */
} finish_job;

/* Planes lo..hi of a chunk's group (sample-major): a lone task (batch-1
 * inference) spreads them over the threads, as it did its GEMM. */
static void finish_planes(void *arg, int64_t lo, int64_t hi, int thread)
{
    const finish_job *f = arg;
    const mml_conv_geom *g = &f->j->g;
    int64_t Og = g->O / g->groups, P = g->OH * g->OW;
    for (int64_t i = lo; i < hi; i++) {
        int64_t s = i / Og, o = i % Og;
        finish_plane(f->j, (f->s0 + s) * g->O + f->gi * Og + o, f->mat + o * f->S * P + s * P);
    }
    (void)thread;
}

/* ---- one input channel, read in place (mml_conv_one_channel_avx512) ---- */

typedef struct one_channel_job {
    const mml_conv_geom *g;
    const float *xp, *w;
    float *mat; /* the sample's first column of [O, S*P] */
    int64_t ld;
} one_channel_job;

static void one_channel_rows(void *arg, int64_t lo, int64_t hi, int thread)
{
    (void)thread;
#if defined(MML_HAVE_X86_SIMD)
    const one_channel_job *u = arg;
    const mml_conv_geom *g = u->g;
    mml_conv_one_channel_avx512(u->xp, g->W + 2 * g->pw, u->w, g->O, g->kh, g->kw, lo, hi, g->OW, u->mat, u->ld);
#else
    (void)arg, (void)lo, (void)hi;
#endif
}

/* One input channel, stride and dilation 1, O a multiple of 8, on AVX-512,
 * with S padded planes fitting in the unfold's buffer (K x S*P floats). */
static bool one_channel_applies(const mml_conv_geom *g, int64_t S)
{
    int64_t ldx = g->W + 2 * g->pw, rows = g->H + 2 * g->ph;
    bool fits = S * (rows * ldx) + MML_CONV_ONE_CHANNEL_SLACK <= g->kh * g->kw * S * g->OH * g->OW;
    return mml_cpu_simd() == MML_SIMD_AVX512 && g->C == 1 && g->groups == 1 && g->sh == 1 && g->sw == 1 &&
           g->dh == 1 && g->dw == 1 && g->O % 8 == 0 && fits;
}

/* Samples s0.. zero-padded into planes of (H + 2ph) x (W + 2pw), one after
 * another, and the kernels' slack after them. */
static void pad_planes(const conv_job *j, int64_t s0, int64_t S, float *xp)
{
    const mml_conv_geom *g = &j->g;
    int64_t ldx = g->W + 2 * g->pw, plane = (g->H + 2 * g->ph) * ldx;
    memset(xp, 0, (size_t)(S * plane + MML_CONV_ONE_CHANNEL_SLACK) * sizeof(float));
    for (int64_t s = 0; s < S; s++) {
        const float *x = mml_f32(j->n->in[0]) + (s0 + s) * g->H * g->W;
        for (int64_t y = 0; y < g->H; y++)
            memcpy(xp + s * plane + (y + g->ph) * ldx + g->pw, x + y * g->W, (size_t)g->W * sizeof(float));
    }
}

/* The chunk's products into mat [O, S*P] without unfolding, when
 * one_channel_applies; false otherwise (nothing written). 1 -> 16 channels
 * 5 x 5 over 40 x 64: 42 -> 21 us at batch 1 and 2 threads. */
static bool one_channel_chunk(const conv_job *j, int64_t s0, int64_t S, float *col, float *mat)
{
    const mml_conv_geom *g = &j->g;
    if (!one_channel_applies(g, S)) return false;
    int64_t P = g->OH * g->OW, plane = (g->H + 2 * g->ph) * (g->W + 2 * g->pw);
    pad_planes(j, s0, S, col);
    for (int64_t s = 0; s < S; s++) {
        one_channel_job u = { g, col + s * plane, mml_f32(j->n->in[1]), mat + s * P, S * P };
        mml_parallel_for(g->OH, 1 + 65536 / (g->OW * g->O * g->kh * g->kw), one_channel_rows, &u);
    }
    return true;
}

static void plain_forward_chunk(const conv_job *j, int64_t s0, int64_t S, float *work)
{
    const mml_conv_geom *g = &j->g;
    const mml_node *n = j->n;
    const float *x = mml_f32(n->in[0]), *w = mml_f32(n->in[1]);
    int64_t Og = g->O / g->groups, P = g->OH * g->OW, K = g->C / g->groups * g->kh * g->kw;
    float *col = work, *mat = work + K * S * P;
    for (int64_t gi = 0; gi < g->groups; gi++) {
        if (!one_channel_chunk(j, s0, S, col, mat)) {
            unfold_chunk(g, x, s0, S, gi, col);
            mml_sgemm(false, false, Og, S * P, K, 1.0f, w + gi * Og * K, K, col, S * P, 0.0f, mat, S * P);
        }
        finish_job f = { j, s0, S, gi, mat };
        mml_parallel_for(S * Og, 1 + 4096 / P, finish_planes, &f);
    }
}

/* 32 partial sums: four independent vector chains hide the add latency. */
static float row_sum(const float *d, int64_t n)
{
    float acc[32] = { 0 };
    int64_t p = 0;
    for (; p + 32 <= n; p += 32)
        for (int i = 0; i < 32; i++) acc[i] += d[p + i];
    for (; p + 8 <= n; p += 8)
        for (int i = 0; i < 8; i++) acc[i] += d[p + i];
    float sum = 0.0f;
    for (int i = 0; i < 32; i++) sum += acc[i];
    for (; p < n; p++) sum += d[p];
    return sum;
}

/* Adds each row of m [rows, cols] into gb. */
static void row_sums(const float *m, int64_t rows, int64_t cols, float *gb)
{
    for (int64_t o = 0; o < rows; o++) gb[o] += row_sum(m + o * cols, cols);
}

/* The gradient of a pooled plane spread back to the conv output plane d
 * [OH, OW]: each window's maximum gets it (through the ReLU: where the output,
 * the maximum, is > 0), the rest 0. */
static void unpool_plane(const float *restrict gy, const float *restrict y, const int32_t *restrict arg, int64_t OH,
                         int64_t OW, bool relu, float *restrict d)
{
    int64_t PW = OW / 2;
    memset(d, 0, (size_t)(OH * OW) * sizeof(float));
    for (int64_t py = 0; py < OH / 2; py++)
        for (int64_t px = 0; px < PW; px++) {
            int64_t i = py * PW + px, k = arg[i];
            d[(2 * py + (k >> 1)) * OW + 2 * px + (k & 1)] = relu && !(y[i] > 0.0f) ? 0.0f : gy[i];
        }
}

/* dY of group gi for samples s0.. side by side in dmat [Og, S*P]; with a fused
 * ReLU, zero where the output is (relu'(x) = 0 at x <= 0, as mml_relu). The
 * bias gradient (bgrad, or NULL) is summed in the same pass. */
static void gather_dout(const conv_job *j, int64_t s0, int64_t S, int64_t gi, float *dmat, float *bgrad)
{
    const mml_conv_geom *g = &j->g;
    int64_t Og = g->O / g->groups, P = g->OH * g->OW, PP = (g->OH / 2) * (g->OW / 2);
    bool relu = fused(j->n, FUSE_RELU);
    for (int64_t s = 0; s < S; s++)
        for (int64_t o = 0; o < Og; o++) {
            int64_t plane = (s0 + s) * g->O + gi * Og + o, at = j->arg ? plane * PP : plane * P;
            float *restrict d = dmat + o * S * P + s * P;
            const float *restrict src = j->dout + at, *restrict y = mml_f32(j->n->out) + at;
            if (j->arg) unpool_plane(src, y, j->arg + at, g->OH, g->OW, relu, d);
            else if (relu)
                for (int64_t p = 0; p < P; p++) d[p] = y[p] > 0.0f ? src[p] : 0.0f;
            else memcpy(d, src, (size_t)P * sizeof(float));
            if (bgrad) bgrad[gi * Og + o] += row_sum(d, P); /* d is still in L1 */
        }
}

/* dW [Og, K] += dY [Og, cols] @ col^T. A patch shorter than half the
 * kernel's 32-wide tile (K = 9 for a 3 x 3 single-channel conv) is computed
 * as dW^T = col @ dY^T into tmp [K, Og], which fills the tile's width. */
static void weight_grad(const float *dmat, const float *col, int64_t Og, int64_t K, int64_t cols, float *tmp,
                        float *dw)
{
    if (K >= 16 || Og <= K) {
        mml_sgemm(false, true, Og, K, cols, 1.0f, dmat, cols, col, cols, 1.0f, dw, K);
        return;
    }
    mml_sgemm(false, true, K, Og, cols, 1.0f, col, cols, dmat, cols, 0.0f, tmp, Og);
    for (int64_t o = 0; o < Og; o++)
        for (int64_t k = 0; k < K; k++) dw[o * K + k] += tmp[k * Og + o];
}

static void plain_backward_chunk(const conv_job *j, int64_t s0, int64_t S, float *work, float *wgrad, float *bgrad)
{
    const mml_conv_geom *g = &j->g;
    const float *x = mml_f32(j->n->in[0]), *w = mml_f32(j->n->in[1]);
    int64_t Cg = g->C / g->groups, Og = g->O / g->groups, P = g->OH * g->OW, K = Cg * g->kh * g->kw;
    float *col = work, *dmat = work + K * S * P;
    for (int64_t gi = 0; gi < g->groups; gi++) {
        gather_dout(j, s0, S, gi, dmat, bgrad);
        if (wgrad) {
            unfold_chunk(g, x, s0, S, gi, col);
            weight_grad(dmat, col, Og, K, S * P, dmat + Og * S * P, wgrad + gi * Og * K);
        }
        if (j->dx) { /* dX_g += col2im(W_g^T @ dY_g) */
            mml_sgemm(true, false, K, S * P, Og, 1.0f, w + gi * Og * K, K, dmat, S * P, 0.0f, col, S * P);
            for (int64_t s = 0; s < S; s++)
                mml_col2im(col + s * P, S * P, Cg, g->H, g->W, g, g->OH, g->OW,
                           j->dx + ((s0 + s) * g->C + gi * Cg) * g->H * g->W);
        }
    }
}

/* ---- Winograd convolution, a chunk of samples at a time ----
 * Each step is a parallel loop: over planes for the transforms, over the 36
 * points for the products. Inside a task of the batch they run serially on the
 * task's thread; a lone task (batch-1 inference) spreads them over the
 * threads. Transform scratch: slot (task thread + step thread), one of the two
 * is always 0. */

/* A chunk's points, both sides, at most: the forward products run as well on
 * 160 tiles as on more, and their points stay in L2; the weight gradient's
 * sum over tiles wants more of them (a long K for its dot products). */
#define WINO_MAX_FLOATS (1 << 18)
#define WINO_MAX_FLOATS_BACKWARD (1 << 20)
/* Tiles per forward output transform, about: a lone 14 x 14 sample's 16
 * tiles are one vector, so output channels go through in blocks (a CNN's
 * conv2 at batch 1 7-8% faster) */
#define WINO_OUT_RUN 256

static const mml_winograd *winograd_of(const mml_node *n, const mml_conv_geom *g)
{
    return n->iarg[0] ? NULL : mml_winograd_for_conv(g);
}

typedef struct wino_step {
    const conv_job *j;
    int64_t s0, S, T;  /* the chunk's first sample, samples, tiles of one grid */
    float *a, *b;      /* points [36][channels][T]: the products read a, write b */
    const float *dmat; /* backward: the chunk's output gradient [O][S*P] */
    float *wpts;       /* backward: this task's weight-gradient points [36][O][C] */
    int slot;
} wino_step;

static float *slot_of(const wino_step *w, int thread) { return w->j->slots + (w->slot + thread) * w->j->slot_size; }

/* Each transform step takes one channel of all the chunk's samples at a time. */

/* Points of input channel c (items) into dst. */
static void x_points(const wino_step *w, int64_t lo, int64_t hi, int thread, float *dst)
{
    const conv_job *j = w->j;
    const mml_conv_geom *g = &j->g;
    int64_t HW = g->H * g->W;
    for (int64_t c = lo; c < hi; c++)
        mml_winograd_input(j->wg, mml_f32(j->n->in[0]) + (w->s0 * g->C + c) * HW, g->C * HW, w->S, g->H, g->W, g->ph,
                           g->pw, j->th, j->tw, dst + c * w->T, g->C * w->T, slot_of(w, thread));
}

static void wino_x_points(void *arg, int64_t lo, int64_t hi, int thread)
{
    const wino_step *w = arg;
    x_points(w, lo, hi, thread, w->a);
}

/* b[p] = kt[p] a[p]: [O, C] x [C, T] forward, [C, O] x [O, T] for the data gradient. */
static void wino_products(void *arg, int64_t lo, int64_t hi, int thread)
{
    (void)thread;
    const wino_step *w = arg;
    bool forward = !w->dmat;
    int64_t M = forward ? w->j->g.O : w->j->g.C, K = forward ? w->j->g.C : w->j->g.O, T = w->T;
    for (int64_t p = lo; p < hi; p++)
        mml_sgemm(false, false, M, T, K, 1.0f, w->j->kt + p * M * K, K, w->a + p * K * T, T, 0.0f, w->b + p * M * T, T);
}

/* Output channel o (items) from b, through the epilogue. */
static void wino_outputs(void *arg, int64_t lo, int64_t hi, int thread)
{
    const wino_step *w = arg;
    const conv_job *j = w->j;
    const mml_conv_geom *g = &j->g;
    int64_t P = g->OH * g->OW, S = w->S;
    float *scratch = slot_of(w, thread), *planes = scratch + j->slot_size - j->out_block * j->chunk * P;
    for (int64_t o = lo; o < hi; o += j->out_block) {
        int64_t C = hi - o < j->out_block ? hi - o : j->out_block;
        mml_winograd_output(j->wg, w->b + o * w->T, g->O * w->T, j->th, j->tw, S, C, planes, P, S * P, g->OH, g->OW,
                            false, scratch);
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) finish_plane(j, (w->s0 + s) * g->O + o + c, planes + (c * S + s) * P);
    }
}

static void wino_forward_chunk(const conv_job *j, int64_t s0, int64_t S, float *work, int slot)
{
    const mml_conv_geom *g = &j->g;
    int64_t T = S * j->th * j->tw;
    wino_step w = { j, s0, S, T, work, work + MML_WINO_POINTS * g->C * T, .slot = slot };
    mml_parallel_for(g->C, 1, wino_x_points, &w);
    mml_parallel_for(MML_WINO_POINTS, 1, wino_products, &w);
    mml_parallel_for(g->O, 1, wino_outputs, &w);
}

/* Weight gradient: output-gradient tiles of channel o (items) into a; then x's points into b. */
static void wino_dy_tiles(void *arg, int64_t lo, int64_t hi, int thread)
{
    const wino_step *w = arg;
    const conv_job *j = w->j;
    const mml_conv_geom *g = &j->g;
    int64_t P = g->OH * g->OW;
    for (int64_t o = lo; o < hi; o++)
        mml_winograd_grad_tiles(j->wg, w->dmat + o * w->S * P, P, w->S, g->OH, g->OW, j->th, j->tw, w->a + o * w->T,
                                g->O * w->T, slot_of(w, thread));
}

static void wino_x_points_b(void *arg, int64_t lo, int64_t hi, int thread)
{
    const wino_step *w = arg;
    x_points(w, lo, hi, thread, w->b);
}

/* wpts[p] [O, C] += a[p] [O, T] b[p]^T */
static void wino_weight_products(void *arg, int64_t lo, int64_t hi, int thread)
{
    (void)thread;
    const wino_step *w = arg;
    int64_t O = w->j->g.O, C = w->j->g.C, T = w->T;
    for (int64_t p = lo; p < hi; p++)
        mml_sgemm(false, true, O, C, T, 1.0f, w->a + p * O * T, T, w->b + p * C * T, T, 1.0f, w->wpts + p * O * C, C);
}

/* Data gradient: the output gradient's channels, padded by r - 1 - p, as
 * input tiles over the input grid, into a; b[p] [C, T] = kt[p] [C, O] a[p];
 * dX += b's tiles. */
static void wino_dy_points(void *arg, int64_t lo, int64_t hi, int thread)
{
    const wino_step *w = arg;
    const conv_job *j = w->j;
    const mml_conv_geom *g = &j->g;
    int64_t P = g->OH * g->OW;
    for (int64_t o = lo; o < hi; o++)
        mml_winograd_input(j->wg, w->dmat + o * w->S * P, P, w->S, g->OH, g->OW, g->kh - 1 - g->ph, g->kw - 1 - g->pw,
                           j->dth, j->dtw, w->a + o * w->T, g->O * w->T, slot_of(w, thread));
}

static void wino_dx(void *arg, int64_t lo, int64_t hi, int thread)
{
    const wino_step *w = arg;
    const conv_job *j = w->j;
    const mml_conv_geom *g = &j->g;
    int64_t HW = g->H * g->W;
    for (int64_t c = lo; c < hi; c++)
        mml_winograd_output(j->wg, w->b + c * w->T, g->C * w->T, j->dth, j->dtw, w->S, 1, j->dx + (w->s0 * g->C + c) * HW,
                            g->C * HW, 0, g->H, g->W, true, slot_of(w, thread));
}

static void wino_backward_chunk(const conv_job *j, int64_t s0, int64_t S, float *work, float *wpts, float *bgrad,
                                int slot)
{
    const mml_conv_geom *g = &j->g;
    int64_t P = g->OH * g->OW, tiles = j->th * j->tw > j->dth * j->dtw ? j->th * j->tw : j->dth * j->dtw;
    float *dmat = work, *a = dmat + g->O * S * P, *b = a + MML_WINO_POINTS * g->O * S * tiles;
    gather_dout(j, s0, S, 0, dmat, bgrad);
    wino_step w = { j, s0, S, S * j->th * j->tw, a, b, dmat, wpts, slot };
    if (wpts) {
        mml_parallel_for(g->O, 1, wino_dy_tiles, &w);
        mml_parallel_for(g->C, 1, wino_x_points_b, &w);
        mml_parallel_for(MML_WINO_POINTS, 1, wino_weight_products, &w);
    }
    if (j->dx) {
        w.T = S * j->dth * j->dtw;
        mml_parallel_for(g->O, 1, wino_dy_points, &w);
        mml_parallel_for(MML_WINO_POINTS, 1, wino_products, &w);
        mml_parallel_for(g->C, 1, wino_dx, &w);
    }
}

/* Chunking, work buffers, scratch slots and the kernels' points (backward:
 * the data gradient's, if wanted). Returns false when the arena is out of memory. */
static bool wino_plan(mml_ctx *ctx, conv_job *j, bool backward, int threads)
{
    const mml_conv_geom *g = &j->g;
    int m = j->wg->m;
    j->th = (g->OH + m - 1) / m, j->tw = (g->OW + m - 1) / m;
    j->dth = (g->H + m - 1) / m, j->dtw = (g->W + m - 1) / m;
    int64_t tiles = j->th * j->tw > j->dth * j->dtw ? j->th * j->tw : j->dth * j->dtw;
    int64_t points = MML_WINO_POINTS * (g->C + g->O) * tiles;
    j->chunk = balanced_chunk(g->N, (backward ? WINO_MAX_FLOATS_BACKWARD : WINO_MAX_FLOATS) / points, threads);
    j->work_size = j->chunk * (points + (backward ? g->O * g->OH * g->OW : 0));
    int64_t grid = j->th > j->dth ? j->th : j->dth, grid_w = j->tw > j->dtw ? j->tw : j->dtw;
    j->out_block = backward ? 1 : WINO_OUT_RUN / (j->th * j->tw * j->chunk);
    if (j->out_block < 1) j->out_block = 1;
    int64_t planes = j->out_block * j->chunk;
    j->slot_size = (int64_t)mml_winograd_scratch(j->wg, grid, grid_w, planes) + planes * g->OH * g->OW;
    j->work = mml_arena_alloc(ctx, (size_t)(threads * j->work_size) * sizeof(float));
    j->slots = mml_arena_alloc(ctx, (size_t)(threads * j->slot_size) * sizeof(float));
    if (!j->work || !j->slots) return false;
    if (backward && !j->dx) return true;
    /* Kept by the context: inference with the same weights transforms them once. */
    const mml_tensor *w = j->n->in[1];
    bool fresh;
    j->kt = mml_ctx_derived(ctx, mml_f32(w), w->numel, backward, MML_WINO_POINTS * g->O * g->C, &fresh);
    if (!j->kt || !fresh) return j->kt != NULL;
    float *scratch = mml_arena_alloc(ctx, mml_winograd_kernel_scratch(j->wg, g->O, g->C) * sizeof(float));
    if (!scratch) return false;
    mml_winograd_kernels(j->wg, mml_f32(w), g->O, g->C, backward, j->kt, scratch);
    return true;
}

/* ---- transposed convolution, one sample at a time:
 *   out = col2im(W_g^T @ x), and its gradients through im2col of dY ---- */

static void transposed_forward_sample(const conv_job *j, int64_t s, float *col)
{
    const mml_conv_geom *g = &j->g;
    const mml_node *n = j->n;
    const float *x = mml_f32(n->in[0]), *w = mml_f32(n->in[1]), *b = n->in[2] ? mml_f32(n->in[2]) : NULL;
    float *y = mml_f32(n->out) + s * g->O * g->OH * g->OW;
    int64_t Cg = g->C / g->groups, Og = g->O / g->groups, HW = g->H * g->W, P = g->OH * g->OW;
    int64_t K = Og * g->kh * g->kw; /* w_g: [Cg, Og*kh*kw] */
    for (int64_t gi = 0; gi < g->groups; gi++) {
        float *ys = y + gi * Og * P;
        mml_sgemm(true, false, K, HW, Cg, 1.0f, w + gi * Cg * K, K, x + (s * g->C + gi * Cg) * HW, HW, 0.0f, col, HW);
        memset(ys, 0, (size_t)(Og * P) * sizeof(float));
        mml_col2im(col, HW, Og, g->OH, g->OW, g, g->H, g->W, ys);
    }
    if (b)
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t p = 0; p < P; p++) y[o * P + p] += b[o];
}

static void transposed_backward_sample(const conv_job *j, int64_t s, float *col, float *wgrad)
{
    const mml_conv_geom *g = &j->g;
    const float *x = mml_f32(j->n->in[0]), *w = mml_f32(j->n->in[1]);
    int64_t Cg = g->C / g->groups, Og = g->O / g->groups, HW = g->H * g->W, P = g->OH * g->OW;
    int64_t K = Og * g->kh * g->kw;
    for (int64_t gi = 0; gi < g->groups; gi++) {
        const float *xs = x + (s * g->C + gi * Cg) * HW, *wg = w + gi * Cg * K;
        mml_im2col(j->dout + (s * g->O + gi * Og) * P, Og, g->OH, g->OW, g, g->H, g->W, col, HW); /* [K, HW] */
        if (wgrad) /* dW_g [Cg, K] += X_g [Cg, HW] @ col^T */
            mml_sgemm(false, true, Cg, K, HW, 1.0f, xs, HW, col, HW, 1.0f, wgrad + gi * Cg * K, K);
        if (j->dx) /* dX_g [Cg, HW] += W_g [Cg, K] @ col */
            mml_sgemm(false, false, Cg, HW, K, 1.0f, wg, K, col, HW, 1.0f, j->dx + (s * g->C + gi * Cg) * HW, HW);
    }
}

/* ---- the op: tasks over the batch, per-thread buffers from the arena ---- */

static bool transposed(const conv_job *j) { return j->n->iarg[0]; }

/* Task t's samples: s0 .. s0 + S - 1 (the last chunk may be short). */
static int64_t chunk_span(const conv_job *j, int64_t t, int64_t *s0)
{
    *s0 = t * j->chunk;
    return j->g.N - *s0 < j->chunk ? j->g.N - *s0 : j->chunk;
}

static void conv_forward_range(void *arg, int64_t lo, int64_t hi, int thread)
{
    const conv_job *j = arg;
    float *work = j->work + thread * j->work_size;
    for (int64_t t = lo; t < hi; t++) {
        if (transposed(j)) {
            transposed_forward_sample(j, t, work);
            continue;
        }
        int64_t s0, S = chunk_span(j, t, &s0);
        if (j->wg) wino_forward_chunk(j, s0, S, work, thread);
        else plain_forward_chunk(j, s0, S, work);
    }
}

/* Sets up the job: chunking and one work buffer per thread. Returns the task
 * count (0: out of memory). */
static int64_t conv_plan(mml_ctx *ctx, mml_node *n, conv_job *j, bool backward)
{
    int threads = mml_threads_get();
    j->n = n;
    j->g = geom_of(n);
    const mml_conv_geom *g = &j->g;
    if ((j->wg = winograd_of(n, g)))
        return wino_plan(ctx, j, backward, threads) ? (g->N + j->chunk - 1) / j->chunk : 0;
    if (transposed(j)) {
        j->chunk = 1;
        j->work_size = g->O / g->groups * g->kh * g->kw * g->H * g->W;
    } else {
        j->chunk = chunk_of(g, threads);
        j->work_size = plain_work_size(g, j->chunk);
    }
    j->work = mml_arena_alloc(ctx, (size_t)(threads * j->work_size) * sizeof(float));
    return j->work ? (g->N + j->chunk - 1) / j->chunk : 0;
}

/* The work buffers are scratch: the arena is rewound past them once the op is
 * done, so the next op's tensors take their place (after the gradients an op
 * writes are allocated, in backward). */
static void conv_forward(mml_ctx *ctx, mml_node *n)
{
    conv_job j = { 0 };
    /* Fused pooling keeps each window's choice for backward. */
    if (fused(n, FUSE_POOL) && n->out->requires_grad) {
        if (!(j.arg = mml_arena_alloc(ctx, (size_t)n->out->numel * sizeof(int32_t)))) return;
        n->saved = j.arg;
    }
    mml_arena_mark scratch = mml_arena_mark_now(ctx);
    int64_t tasks = conv_plan(ctx, n, &j, false);
    if (tasks) mml_parallel_for(tasks, 1, conv_forward_range, &j);
    mml_arena_rewind(ctx, scratch);
}

static void conv_backward_range(void *arg, int64_t lo, int64_t hi, int thread)
{
    const conv_job *j = arg;
    float *work = j->work + thread * j->work_size, *wgrad = j->wgrad ? j->wgrad + thread * j->wsize : NULL;
    float *bgrad = j->bgrad ? j->bgrad + thread * j->g.O : NULL;
    int64_t P = j->g.OH * j->g.OW;
    for (int64_t t = lo; t < hi; t++) {
        int64_t s0, S = chunk_span(j, t, &s0);
        if (j->wg) {
            wino_backward_chunk(j, s0, S, work, wgrad, bgrad, thread);
            continue;
        }
        if (!transposed(j)) {
            plain_backward_chunk(j, s0, S, work, wgrad, bgrad);
            continue;
        }
        transposed_backward_sample(j, t, work, wgrad);
        if (bgrad) row_sums(j->dout + t * j->g.O * P, j->g.O, P, bgrad);
    }
}

/* dw += the weight gradient from the threads' points, summed in thread order. */
static void wino_weight_grad(mml_ctx *ctx, const conv_job *j, float *dw)
{
    float *pts = mml_arena_alloc(ctx, (size_t)j->wsize * sizeof(float));
    float *scratch = mml_arena_alloc(ctx, mml_winograd_kernel_scratch(j->wg, j->g.O, j->g.C) * sizeof(float));
    if (!pts || !scratch) return;
    memset(pts, 0, (size_t)j->wsize * sizeof(float));
    mml_partials_add(pts, j->wgrad, j->wsize);
    mml_winograd_kernel_grads(j->wg, pts, j->g.O, j->g.C, dw, scratch);
}

static void conv_backward(mml_ctx *ctx, mml_node *n)
{
    mml_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    conv_job j = { .dout = n->out->grad, .wsize = w->numel, .arg = n->saved };
    float *dw = mml_wants_grad(w) ? mml_grad_buf(ctx, w) : NULL, *db = mml_wants_grad(b) ? mml_grad_buf(ctx, b) : NULL;
    j.dx = mml_wants_grad(x) ? mml_grad_buf(ctx, x) : NULL;
    mml_arena_mark scratch = mml_arena_mark_now(ctx);
    int64_t tasks = conv_plan(ctx, n, &j, true);
    if (j.wg) j.wsize = MML_WINO_POINTS * j.g.O * j.g.C; /* partials in points, transformed once */
    if (dw) j.wgrad = mml_partials_new(ctx, j.wsize);
    if (db) j.bgrad = mml_partials_new(ctx, j.g.O);
    if (tasks && (!dw || j.wgrad) && (!db || j.bgrad)) {
        mml_parallel_for(tasks, 1, conv_backward_range, &j);
        if (dw && j.wg) wino_weight_grad(ctx, &j, dw);
        else if (dw) mml_partials_add(dw, j.wgrad, j.wsize);
        if (db) mml_partials_add(db, j.bgrad, j.g.O);
    }
    mml_arena_rewind(ctx, scratch);
}

static const mml_op_def op_conv1d = { "conv1d", conv_infer, conv_forward, conv_backward, .optional_inputs = 4 };
static const mml_op_def op_conv2d = { "conv2d", conv_infer, conv_forward, conv_backward, .optional_inputs = 4 };
static const mml_op_def op_convt1d = { "conv_transpose1d", conv_infer, conv_forward, conv_backward, .optional_inputs = 4 };
static const mml_op_def op_convt2d = { "conv_transpose2d", conv_infer, conv_forward, conv_backward, .optional_inputs = 4 };

static mml_tensor *conv(mml_ctx *ctx, const mml_op_def *op, bool tr, int sd, mml_tensor *x, mml_tensor *w,
                        mml_tensor *b, const mml_conv_args *a)
{
    mml_conv_args d = mml_conv_args_default();
    if (!a) a = &d;
    mml_node n = { .op = op, .in = { x, w, b }, .n_in = 3,
                   .iarg = { tr, sd, a->stride[0], a->stride[1], a->padding[0], a->padding[1], a->dilation[0],
                             a->dilation[1], a->output_padding[0], a->output_padding[1], a->groups,
                             (a->relu ? FUSE_RELU : 0) | (a->max_pool2x2 ? FUSE_POOL : 0) } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_conv1d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b, const mml_conv_args *a)
{
    return conv(ctx, &op_conv1d, false, 1, x, w, b, a);
}
mml_tensor *mml_conv2d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b, const mml_conv_args *a)
{
    return conv(ctx, &op_conv2d, false, 2, x, w, b, a);
}
mml_tensor *mml_conv_transpose1d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b, const mml_conv_args *a)
{
    return conv(ctx, &op_convt1d, true, 1, x, w, b, a);
}
mml_tensor *mml_conv_transpose2d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b, const mml_conv_args *a)
{
    return conv(ctx, &op_convt2d, true, 2, x, w, b, a);
}
