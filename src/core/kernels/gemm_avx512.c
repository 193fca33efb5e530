/* AVX-512 micro-kernels, R x 32 for R = 12 (24 zmm accumulators) and 8
 * (16, for row counts that 12 divides badly): two B vectors and one broadcast
 * of A per step, enough independent FMAs to hide their latency. A tile's
 * last 16 columns or fewer take one vector (a 14 x 14 conv's 196 columns end
 * in 4 of them). */
#include <immintrin.h>
#include <stdbool.h>

#include "core/kernels/gemm_kernels.h"

#define MR MML_GEMM_AVX512_MR
#define NR MML_GEMM_AVX512_NR

static inline __attribute__((always_inline)) void kernel_rows(int R, int V, int64_t kc, const float *a,
                                                              const float *b, float *c, int64_t ldc, float alpha,
                                                              float beta, int mr, int nr, const mml_gemm_epilogue *ep)
{
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < R; i++) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        /* C's lines owned by the time the tile is stored: a 4,096-row C is
         * out of cache, and its stores otherwise stall on fetching each line
         * (7-17% of a K = 128 product) */
        if (i < mr) __builtin_prefetch(c + i * ldc, 1, 3);
        if (i < mr && nr > 16) __builtin_prefetch(c + i * ldc + 16, 1, 3);
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = V == 2 ? _mm512_load_ps(b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < R; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            if (V == 2) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += R;
        b += NR;
    }
    if (mr == R && nr == NR) {
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
        __m512 bias0 = ep && ep->bias ? _mm512_loadu_ps(ep->bias) : zero;
        __m512 bias1 = ep && ep->bias ? _mm512_loadu_ps(ep->bias + 16) : zero;
#pragma GCC unroll 12
        for (int i = 0; i < R; i++) {
            float *ci = c + i * ldc;
            __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), r1);
            }
            if (ep) { /* + (res + bias), then the ReLU (max returns 0 for a NaN, as the scalar path) */
                const float *res = ep->res ? ep->res + i * ep->ldr : NULL;
                __m512 t0 = res ? _mm512_add_ps(_mm512_loadu_ps(res), bias0) : bias0;
                __m512 t1 = res ? _mm512_add_ps(_mm512_loadu_ps(res + 16), bias1) : bias1;
                r0 = _mm512_add_ps(r0, t0);
                r1 = _mm512_add_ps(r1, t1);
                if (ep->relu) r0 = _mm512_max_ps(r0, zero), r1 = _mm512_max_ps(r1, zero);
            }
            _mm512_storeu_ps(ci, r0);
            _mm512_storeu_ps(ci + 16, r1);
        }
        return;
    }
    float tmp[MR * NR] __attribute__((aligned(64)));
    for (int i = 0; i < R; i++) {
        _mm512_store_ps(tmp + i * NR, acc[i][0]);
        _mm512_store_ps(tmp + i * NR + 16, acc[i][1]);
    }
    mml_gemm_store_tile(tmp, NR, c, ldc, alpha, beta, mr, nr, ep);
}

void mml_gemm_kernel_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha,
                            float beta, int mr, int nr, const mml_gemm_epilogue *ep)
{
    if (nr <= 16) kernel_rows(MR, 1, kc, a, b, c, ldc, alpha, beta, mr, nr, ep);
    else kernel_rows(MR, 2, kc, a, b, c, ldc, alpha, beta, mr, nr, ep);
}

void mml_gemm_kernel_avx512_8(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha,
                              float beta, int mr, int nr, const mml_gemm_epilogue *ep)
{
    if (nr <= 16) kernel_rows(8, 1, kc, a, b, c, ldc, alpha, beta, mr, nr, ep);
    else kernel_rows(8, 2, kc, a, b, c, ldc, alpha, beta, mr, nr, ep);
}

/* ---- small products read in place (mml_gemm_direct_fn) ----
 * An R x 16V tile: B's row k is loaded straight from B (masked past column
 * w), A's values broadcast from wherever its strides put them. */
static inline __attribute__((always_inline)) void direct_tile(int R, int V, bool cols, int64_t K, float alpha,
                                                              const float *A, int64_t sa, int64_t sk, const float *B,
                                                              int64_t ldb, float beta, float *C, int64_t ldc, int w)
{
    __mmask16 m0 = w >= 16 ? 0xffff : (__mmask16)((1u << w) - 1u);
    __mmask16 m1 = w >= 32 ? 0xffff : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1u);
    __m512 acc[8][2];
    for (int i = 0; i < R; i++) { /* C prefetched for writing, as in kernel_rows */
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        __builtin_prefetch(C + i * ldc, 1, 3);
        if (w > 16) __builtin_prefetch(C + i * ldc + 16, 1, 3);
    }
    for (int64_t k = 0; k < K; k++) {
        const float *b = B + k * ldb, *a = A + k * sk;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = V == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
        for (int i = 0; i < R; i++) {
            __m512 ai = _mm512_set1_ps(cols ? a[i] : a[i * sa]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            if (V == 2) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < R; i++)
        for (int v = 0; v < V; v++) {
            float *c = C + i * ldc + 16 * v;
            __mmask16 m = v ? m1 : m0;
            __m512 r = _mm512_mul_ps(va, acc[i][v]);
            if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), r);
            _mm512_mask_storeu_ps(c, m, r);
        }
}

/* R rows: one or two vectors wide; A's column of R values contiguous (A
 * transposed: constant offsets, no per-row strides to hold in registers) or not. */
static inline __attribute__((always_inline)) void direct_rows(int R, int64_t K, float alpha, const float *A,
                                                              int64_t sa, int64_t sk, const float *B, int64_t ldb,
                                                              float beta, float *C, int64_t ldc, int w)
{
    if (sa == 1 && w > 16) direct_tile(R, 2, true, K, alpha, A, sa, sk, B, ldb, beta, C, ldc, w);
    else if (sa == 1) direct_tile(R, 1, true, K, alpha, A, sa, sk, B, ldb, beta, C, ldc, w);
    else if (w > 16) direct_tile(R, 2, false, K, alpha, A, sa, sk, B, ldb, beta, C, ldc, w);
    else direct_tile(R, 1, false, K, alpha, A, sa, sk, B, ldb, beta, C, ldc, w);
}

void mml_gemm_direct_avx512(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t sa, int64_t sk,
                            const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i += 8)
        for (int64_t j = 0; j < N; j += 32) {
            int w = N - j < 32 ? (int)(N - j) : 32;
            const float *a = A + i * sa, *b = B + j;
            float *c = C + i * ldc + j;
            if (M - i >= 8) direct_rows(8, K, alpha, a, sa, sk, b, ldb, beta, c, ldc, w); /* unrolled */
            else direct_rows((int)(M - i), K, alpha, a, sa, sk, b, ldb, beta, c, ldc, w);
        }
}

/* Dot products of rows (mml_gemm_dot_fn): a 4 x 4 block of C loads four rows
 * of A and four of B per 16 k and runs 16 FMAs; the ragged end of K is a
 * masked load. */
static inline __attribute__((always_inline)) void dot_tile(int mi, int nj, int64_t K, float alpha, const float *A,
                                                           int64_t lda, const float *B, int64_t ldb, float beta,
                                                           float *C, int64_t ldc)
{
    __m512 acc[4][4], a[4], b[4];
    for (int i = 0; i < mi; i++)
        for (int j = 0; j < nj; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        for (int i = 0; i < mi; i++) a[i] = _mm512_loadu_ps(A + i * lda + k);
        for (int j = 0; j < nj; j++) b[j] = _mm512_loadu_ps(B + j * ldb + k);
        for (int i = 0; i < mi; i++)
            for (int j = 0; j < nj; j++) acc[i][j] = _mm512_fmadd_ps(a[i], b[j], acc[i][j]);
    }
    if (k < K) {
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1u);
        for (int i = 0; i < mi; i++) a[i] = _mm512_maskz_loadu_ps(m, A + i * lda + k);
        for (int j = 0; j < nj; j++) b[j] = _mm512_maskz_loadu_ps(m, B + j * ldb + k);
        for (int i = 0; i < mi; i++)
            for (int j = 0; j < nj; j++) acc[i][j] = _mm512_fmadd_ps(a[i], b[j], acc[i][j]);
    }
    for (int i = 0; i < mi; i++)
        for (int j = 0; j < nj; j++) {
            float v = alpha * _mm512_reduce_add_ps(acc[i][j]), *c = C + i * ldc + j;
            *c = beta == 0.0f ? v : v + beta * *c;
        }
}

void mml_gemm_dot_avx512(int mi, int nj, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (mi == 4 && nj == 4) dot_tile(4, 4, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (mi == 4) dot_tile(4, 1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (nj == 4) dot_tile(1, 4, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else dot_tile(1, 1, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
