/* Multi-head scaled dot-product attention as one node:
 *   O_bh = dropout(softmax(Q_bh K_bh^T * scale, masked)) V_bh
 * Heads are column blocks of q, k, v read in place through the GEMM's leading
 * dimension, so splitting and merging heads copies nothing; (batch, head)
 * pairs run in parallel, each with small mml_sgemm calls (serial inside the
 * pool). Forward keeps the softmax output P (and the dropout scales) for
 * backward:
 *   dV = D^T dO, dD = dO V^T, dP = dD * keep, dS = P * (dP - rowsum(dP * P)),
 *   dQ = scale dS K, dK = scale dS^T Q   (D = P * keep). */
#include <math.h>
#include <string.h>

#include "core/kernels/gemm.h"
#include "core/op.h"
#include "mml/ops.h"
#include "mml/threads.h"

/* iarg: heads, E, q_off, k_off, v_off; farg[0]: dropout p; farg[1]: scale.
 * in: q, k, v, key_padding_mask?, attn_mask?; ptr (forward only): fwd_extra. */
enum { A_HEADS, A_E, A_QOFF, A_KOFF, A_VOFF };

typedef struct fwd_extra {
    mml_rng *rng;
    mml_tensor *weights; /* [B, Tq, Tk] head-averaged P, or NULL */
} fwd_extra;

typedef struct attn_saved {
    float *p;    /* [B, h, Tq, Tk] softmax output */
    float *keep; /* same shape, 0 or 1/(1-p); NULL without dropout */
} attn_saved;

typedef struct attn_job {
    int64_t B, h, Tq, Tk, dh, E, ldq, ldk, ldv;
    float scale;
    const float *q, *k, *v, *gout;
    const float *pad, *am; /* masks as 0/1 floats, or NULL */
    float *out, *gq, *gk, *gv;
    float beta_q, beta_k, beta_v; /* 0 where the gradient is written here first */
    attn_saved s;
    float *scratch; /* per thread: 2 x Tq x Tk */
} attn_job;

/* exp for the softmax: Cody-Waite reduction and a degree-6 polynomial, in a
 * form the compiler vectorises (libm's expf is a call per element). */
static inline float exp_poly(float x)
{
    x = x < -87.0f ? -87.0f : x;
    float n = rintf(x * 1.44269504f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666672e-1f + r * (4.16666418e-2f + r * (8.33336075e-3f +
                      r * 1.38888890e-3f)))));
    union { float f; int32_t i; } s = { .i = ((int32_t)n + 127) << 23 };
    return p * s.f;
}

/* Rows are reduced in 16-lane vectors (GCC/Clang vector extensions: one
 * AVX-512 register, or two or four narrower ones), folded in halves at the
 * end; a single running float cannot be reordered, so the compiler would
 * leave the loop scalar, and lanes folded one by one are a serial chain.
 * Macros, not functions: a 64-byte vector passed by value needs AVX-512's ABI. */
typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
#define LANES 16

#define VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
/* m = x where x > m (a NaN never wins, as the scalar x > m ? x : m) */
#define VMAX(m, x)                                                                                         \
    do {                                                                                                   \
        vi16 gt_ = (x) > (m);                                                                              \
        (m) = (vf16)((gt_ & (vi16)(x)) | (~gt_ & (vi16)(m)));                                              \
    } while (0)
#define VADD(m, x) ((m) += (x))
#define FOLD(OP, v)                                                                                        \
    do {                                                                                                   \
        OP(v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));         \
        OP(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));         \
        OP(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));         \
        OP(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));         \
    } while (0)

static inline float row_max(const float *s, int64_t n)
{
    vf16 m = (vf16){ 0 } - INFINITY, x;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        VLOAD(x, s + j);
        VMAX(m, x);
    }
    FOLD(VMAX, m);
    float r = m[0];
    for (; j < n; j++) r = s[j] > r ? s[j] : r;
    return r;
}

/* The sum of a[j] * b[j]. */
static inline float row_dot(const float *a, const float *b, int64_t n)
{
    vf16 acc = { 0 }, x, y;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        VLOAD(x, a + j);
        VLOAD(y, b + j);
        acc += x * y;
    }
    FOLD(VADD, acc);
    float r = acc[0];
    for (; j < n; j++) r += a[j] * b[j];
    return r;
}

static inline float exp_shifted(float s, float m) { return s == -INFINITY ? 0.0f : exp_poly(s - m); }

/* One row of scores in place -> softmax; masked keys get exactly 0, and a row
 * with every key masked becomes NaN, as torch's -inf fill gives. */
static void softmax_row(float *s, int64_t n, const float *pad, const float *am)
{
    if (pad || am)
        for (int64_t j = 0; j < n; j++)
            if ((pad && pad[j] != 0.0f) || (am && am[j] != 0.0f)) s[j] = -INFINITY;
    float m = row_max(s, n);
    vf16 acc = { 0 }, x;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) { /* exp and its sum in one pass */
        float e[LANES];
        for (int l = 0; l < LANES; l++) e[l] = exp_shifted(s[j + l], m);
        memcpy(s + j, e, sizeof e);
        VLOAD(x, e);
        acc += x;
    }
    FOLD(VADD, acc);
    float sum = acc[0];
    for (; j < n; j++) sum += s[j] = exp_shifted(s[j], m);
    float inv = 1.0f / sum;
    for (j = 0; j < n; j++) s[j] *= inv;
}

static const float *head(const float *base, int64_t b, int64_t T, int64_t ld, int64_t off)
{
    return base + b * T * ld + off;
}

/* The cache lines of n floats at p, fetched ahead into L1. */
static inline void prefetch_span(const float *p, int64_t n)
{
    for (uintptr_t l = (uintptr_t)p / 64; l <= ((uintptr_t)(p + n) - 1) / 64; l++)
        __builtin_prefetch((const void *)(l * 64), 0, 3);
}

/* Row i of pair bh's q, k, v and (backward) dO and P, fetched while the pair
 * before it works on its softmax row i (k and v rows spread over q's when
 * the lengths differ): heads are column slices of rows far apart, which the
 * hardware does not prefetch, and they come from L3 or memory (3% of the
 * Transformer step). */
static void prefetch_row(const attn_job *j, int64_t bh, int64_t i, bool backward)
{
    int64_t b = bh / j->h, c = (bh % j->h) * j->dh;
    prefetch_span(head(j->q, b, j->Tq, j->ldq, c) + i * j->ldq, j->dh);
    for (int64_t r = i * j->Tk / j->Tq; r < (i + 1) * j->Tk / j->Tq; r++) {
        prefetch_span(head(j->k, b, j->Tk, j->ldk, c) + r * j->ldk, j->dh);
        prefetch_span(head(j->v, b, j->Tk, j->ldv, c) + r * j->ldv, j->dh);
    }
    if (!backward) return;
    prefetch_span(j->gout + b * j->Tq * j->E + c + i * j->E, j->dh);
    prefetch_span(j->s.p + (bh * j->Tq + i) * j->Tk, j->Tk);
}

static void fwd_pairs(void *arg, int64_t lo, int64_t hi, int thread)
{
    const attn_job *j = arg;
    int64_t TT = j->Tq * j->Tk;
    float *d = j->scratch + (int64_t)thread * 2 * TT;
    for (int64_t bh = lo; bh < hi; bh++) {
        int64_t b = bh / j->h, c = (bh % j->h) * j->dh;
        const float *Q = head(j->q, b, j->Tq, j->ldq, c), *K = head(j->k, b, j->Tk, j->ldk, c);
        const float *V = head(j->v, b, j->Tk, j->ldv, c);
        float *P = j->s.p + bh * TT;
        mml_sgemm(false, true, j->Tq, j->Tk, j->dh, j->scale, Q, j->ldq, K, j->ldk, 0.0f, P, j->Tk);
        for (int64_t i = 0; i < j->Tq; i++) {
            if (bh + 1 < hi) prefetch_row(j, bh + 1, i, false);
            softmax_row(P + i * j->Tk, j->Tk, j->pad ? j->pad + b * j->Tk : NULL, j->am ? j->am + i * j->Tk : NULL);
        }
        const float *D = P;
        if (j->s.keep) {
            for (int64_t e = 0; e < TT; e++) d[e] = P[e] * j->s.keep[bh * TT + e];
            D = d;
        }
        mml_sgemm(false, false, j->Tq, j->dh, j->Tk, 1.0f, D, j->Tk, V, j->ldv, 0.0f,
                  j->out + b * j->Tq * j->E + c, j->E);
    }
}

/* Row i of dS from dP (in place): P * (dP - rowsum(dP * P)), times the score scale. */
static void softmax_grad_row(float *dp, const float *p, int64_t n, float scale)
{
    float dot = row_dot(dp, p, n);
    for (int64_t e = 0; e < n; e++) dp[e] = scale * p[e] * (dp[e] - dot);
}

static void bwd_pairs(void *arg, int64_t lo, int64_t hi, int thread)
{
    const attn_job *j = arg;
    int64_t TT = j->Tq * j->Tk, Tq = j->Tq, Tk = j->Tk, dh = j->dh;
    float *dp = j->scratch + (int64_t)thread * 2 * TT, *d = dp + TT;
    for (int64_t bh = lo; bh < hi; bh++) {
        int64_t b = bh / j->h, c = (bh % j->h) * dh;
        const float *Q = head(j->q, b, Tq, j->ldq, c), *K = head(j->k, b, Tk, j->ldk, c);
        const float *V = head(j->v, b, Tk, j->ldv, c), *dO = j->gout + b * Tq * j->E + c;
        const float *P = j->s.p + bh * TT, *keep = j->s.keep ? j->s.keep + bh * TT : NULL, *D = P;
        if (keep) {
            for (int64_t e = 0; e < TT; e++) d[e] = P[e] * keep[e];
            D = d;
        }
        if (j->gv) mml_sgemm(true, false, Tk, dh, Tq, 1.0f, D, Tk, dO, j->E, j->beta_v, j->gv + b * Tk * j->ldv + c, j->ldv);
        if (!j->gq && !j->gk) continue;
        mml_sgemm(false, true, Tq, Tk, dh, 1.0f, dO, j->E, V, j->ldv, 0.0f, dp, Tk);
        for (int64_t e = 0; keep && e < TT; e++) dp[e] *= keep[e];
        for (int64_t i = 0; i < Tq; i++) {
            if (bh + 1 < hi) prefetch_row(j, bh + 1, i, true);
            softmax_grad_row(dp + i * Tk, P + i * Tk, Tk, j->scale);
        }
        if (j->gq) mml_sgemm(false, false, Tq, dh, Tk, 1.0f, dp, Tk, K, j->ldk, j->beta_q, j->gq + b * Tq * j->ldq + c, j->ldq);
        if (j->gk) mml_sgemm(true, false, Tk, dh, Tq, 1.0f, dp, Tk, Q, j->ldq, j->beta_k, j->gk + b * Tk * j->ldk + c, j->ldk);
    }
}

static bool in_range(const mml_tensor *t, int64_t off, int64_t E)
{
    return t->dtype == MML_F32 && t->ndim == 3 && off >= 0 && off + E <= t->shape[2];
}

static mml_status attn_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2], *pad = n->in[3], *am = n->in[4];
    int64_t h = n->iarg[A_HEADS], E = n->iarg[A_E];
    if (h < 1 || E < 1 || E % h) return mml_op_error(n, "%lld heads must divide the width %lld", (long long)h, (long long)E);
    if (!in_range(q, n->iarg[A_QOFF], E) || !in_range(k, n->iarg[A_KOFF], E) || !in_range(v, n->iarg[A_VOFF], E))
        return mml_op_error(n, "q, k, v must be float32 [B, T, *] holding the %lld columns asked for", (long long)E);
    int64_t B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1];
    if (k->shape[0] != B || v->shape[0] != B || v->shape[1] != Tk)
        return mml_op_error(n, "batch sizes or key/value lengths differ");
    if (pad && (pad->ndim != 2 || pad->shape[0] != B || pad->shape[1] != Tk))
        return mml_op_error(n, "key padding mask must be [%lld, %lld]", (long long)B, (long long)Tk);
    if (am && (am->ndim != 2 || am->shape[0] != Tq || am->shape[1] != Tk))
        return mml_op_error(n, "attention mask must be [%lld, %lld]", (long long)Tq, (long long)Tk);
    float p = n->farg[0];
    if (!(p >= 0.0f && p < 1.0f) || (p > 0.0f && !((const fwd_extra *)n->ptr)->rng))
        return mml_op_error(n, "dropout must be in [0, 1) and needs an rng");
    mml_set_shape(out, MML_F32, 3, (int64_t[]){ B, Tq, E });
    return MML_OK;
}

static attn_job job_of(const mml_node *n)
{
    const mml_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    int64_t h = n->iarg[A_HEADS], E = n->iarg[A_E];
    attn_job j = { .B = q->shape[0], .h = h, .Tq = q->shape[1], .Tk = k->shape[1], .dh = E / h, .E = E,
                   .ldq = q->shape[2], .ldk = k->shape[2], .ldv = v->shape[2], .scale = n->farg[1],
                   .q = mml_f32(q) + n->iarg[A_QOFF], .k = mml_f32(k) + n->iarg[A_KOFF],
                   .v = mml_f32(v) + n->iarg[A_VOFF] };
    return j;
}

static float *scratch(mml_ctx *ctx, const attn_job *j)
{
    return mml_arena_alloc(ctx, (size_t)mml_threads_get() * 2 * (size_t)(j->Tq * j->Tk) * sizeof(float));
}

/* Masks of any dtype as 0/1 floats (NULL stays NULL). */
static const float *mask_f32(mml_ctx *ctx, const mml_tensor *m)
{
    if (!m) return NULL;
    float *f = mml_arena_alloc(ctx, (size_t)m->numel * sizeof(float));
    if (!f) return NULL;
    size_t es = mml_dtype_size(m->dtype);
    const unsigned char *src = m->data;
    for (int64_t i = 0; i < m->numel; i++) {
        bool set = false;
        if (m->dtype == MML_F32) set = mml_f32(m)[i] != 0.0f;
        else
            for (size_t b = 0; b < es; b++) set |= src[(size_t)i * es + b] != 0;
        f[i] = set ? 1.0f : 0.0f;
    }
    return f;
}

static void head_mean(const attn_job *j, mml_tensor *w)
{
    int64_t TT = j->Tq * j->Tk;
    float *o = mml_f32(w);
    memset(o, 0, (size_t)(j->B * TT) * sizeof(float));
    for (int64_t b = 0; b < j->B; b++)
        for (int64_t hh = 0; hh < j->h; hh++)
            for (int64_t e = 0; e < TT; e++) o[b * TT + e] += j->s.p[(b * j->h + hh) * TT + e] / (float)j->h;
}

static void attn_forward(mml_ctx *ctx, mml_node *n)
{
    const fwd_extra *x = n->ptr;
    attn_job j = job_of(n);
    int64_t total = j.B * j.h * j.Tq * j.Tk;
    float p = n->farg[0];
    attn_saved *s = mml_arena_alloc(ctx, sizeof *s);
    j.s.p = mml_arena_alloc(ctx, (size_t)total * sizeof(float));
    j.s.keep = p > 0.0f ? mml_arena_alloc(ctx, (size_t)total * sizeof(float)) : NULL;
    j.pad = mask_f32(ctx, n->in[3]);
    j.am = mask_f32(ctx, n->in[4]);
    j.scratch = scratch(ctx, &j);
    j.out = mml_f32(n->out);
    if (!s || !j.s.p || (p > 0.0f && !j.s.keep) || !j.scratch || (n->in[3] && !j.pad) || (n->in[4] && !j.am)) return;
    /* drawn serially, in element order, so a seed gives the same mask at any thread count */
    for (int64_t e = 0; j.s.keep && e < total; e++) j.s.keep[e] = mml_rng_uniform(x->rng) < p ? 0.0f : 1.0f / (1.0f - p);
    mml_parallel_for(j.B * j.h, 1, fwd_pairs, &j);
    *s = j.s;
    n->saved = s;
    if (x->weights) head_mean(&j, x->weights);
}

/* Whether n column slices E wide at offs tile [0, width) exactly. */
static bool slices_tile(const int64_t *offs, int n, int64_t E, int64_t width)
{
    if (n * E != width) return false;
    for (int a = 0; a < n; a++) {
        if (offs[a] < 0 || offs[a] + E > width) return false;
        for (int b = a + 1; b < n; b++)
            if (offs[a] - offs[b] < E && offs[b] - offs[a] < E) return false;
    }
    return true;
}

/* The gradients of q, k and v (one tensor for a fused projection). A buffer
 * made by this call is left unzeroed when the slices attention reads tile
 * all of its columns: every value is then written once, with beta 0 (6 MB a
 * layer not cleared, then read back, in the Transformer benchmark). */
static bool grad_slices(mml_ctx *ctx, const mml_node *n, float **g, float *beta)
{
    int64_t E = n->iarg[A_E];
    for (int i = 0; i < 3; i++) {
        mml_tensor *t = n->in[i];
        int first = 0;
        while (n->in[first] != t) first++;
        g[i] = NULL;
        if (!mml_wants_grad(t)) continue;
        if (first < i) {
            g[i] = g[first] - n->iarg[A_QOFF + first] + n->iarg[A_QOFF + i];
            beta[i] = beta[first];
            continue;
        }
        int64_t offs[3];
        int used = 0;
        for (int k = i; k < 3; k++)
            if (n->in[k] == t) offs[used++] = n->iarg[A_QOFF + k];
        bool fresh, tiles = slices_tile(offs, used, E, t->shape[2]);
        float *buf = mml_grad_buf_fresh(ctx, t, &fresh);
        if (!buf) return false;
        if (fresh && !tiles) memset(buf, 0, (size_t)t->numel * sizeof(float));
        beta[i] = fresh && tiles ? 0.0f : 1.0f;
        g[i] = buf + n->iarg[A_QOFF + i];
    }
    return true;
}

static void attn_backward(mml_ctx *ctx, mml_node *n)
{
    if (!n->saved) return;
    attn_job j = job_of(n);
    j.s = *(const attn_saved *)n->saved;
    j.gout = n->out->grad;
    j.scratch = scratch(ctx, &j);
    float *g[3], beta[3] = { 1.0f, 1.0f, 1.0f };
    if (!j.scratch || !grad_slices(ctx, n, g, beta)) return;
    j.gq = g[0], j.gk = g[1], j.gv = g[2];
    j.beta_q = beta[0], j.beta_k = beta[1], j.beta_v = beta[2];
    mml_parallel_for(j.B * j.h, 1, bwd_pairs, &j);
}

static const mml_op_def op_attention = { "attention", attn_infer, attn_forward, attn_backward,
                                         .optional_inputs = (1u << 3) | (1u << 4) };

mml_tensor *mml_attention(mml_ctx *ctx, mml_tensor *q, mml_tensor *k, mml_tensor *v, const mml_attention_args *a,
                          mml_tensor **weights)
{
    if (!q || !k || !v) return NULL;
    float p = mml_training(ctx) ? a->dropout : 0.0f;
    fwd_extra x = { a->rng, NULL };
    if (weights) {
        x.weights = *weights = mml_new(ctx, MML_F32, 3, (int64_t[]){ q->shape[0], q->shape[1], k->shape[1] });
        if (!x.weights) return NULL;
    }
    float scale = a->embed > 0 && a->heads > 0 ? 1.0f / sqrtf((float)(a->embed / a->heads)) : 1.0f;
    mml_node n = { .op = &op_attention, .in = { q, k, v, a->key_padding_mask, a->attn_mask }, .n_in = 5,
                   .iarg = { a->heads, a->embed, a->q_off, a->k_off, a->v_off }, .farg = { p, scale }, .ptr = &x };
    return mml_op_run(ctx, &n);
}
