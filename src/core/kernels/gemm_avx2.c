/* AVX2 + FMA micro-kernel, 6 x 16: 12 ymm accumulators. */
#include <immintrin.h>

#include "core/kernels/gemm_kernels.h"

#define MR MML_GEMM_AVX2_MR
#define NR MML_GEMM_AVX2_NR

void mml_gemm_kernel_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                          float alpha, float beta, int mr, int nr, const mml_gemm_epilogue *ep)
{
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
        b += NR;
    }
    if (mr == MR && nr == NR && !ep) {
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        }
        return;
    }
    float tmp[MR * NR] __attribute__((aligned(32)));
    for (int i = 0; i < MR; i++) {
        _mm256_store_ps(tmp + i * NR, acc[i][0]);
        _mm256_store_ps(tmp + i * NR + 8, acc[i][1]);
    }
    mml_gemm_store_tile(tmp, NR, c, ldc, alpha, beta, mr, nr, ep);
}

/* 8 x 8 transpose in registers: rows r..r+7, k..k+7 of src become k..k+7,
 * r..r+7 of the panel. */
static void transpose8(const float *src, int64_t ld, float *dst, int w)
{
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ld);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    /* r[i] holds columns i (low half) and i + 4 (high half) of rows 0-3, r[i + 4] of rows 4-7 */
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(dst + i * w, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * w, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

/* 4 x 8 transpose: rows r..r+3, k..k+7 become k..k+7, r..r+3 (the last
 * third of a 12-row AVX-512 panel). */
static void transpose4x8(const float *src, int64_t ld, float *dst, int w)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 s[4] = { _mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                    _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE) };
    for (int i = 0; i < 4; i++) { /* s[i]: column i (low half) and i + 4 (high half) */
        _mm_storeu_ps(dst + i * w, _mm256_castps256_ps128(s[i]));
        _mm_storeu_ps(dst + (i + 4) * w, _mm256_extractf128_ps(s[i], 1));
    }
}

void mml_gemm_pack_rows_avx2(const float *src, int64_t ld, int rows, int64_t kc, int w, float *dst)
{
    int full = rows / 8 * 8;
    int64_t kfull = kc / 8 * 8;
    for (int r = 0; r < full; r += 8) {
        for (int64_t k = 0; k < kfull; k += 8) transpose8(src + r * ld + k, ld, dst + k * w + r, w);
        for (int64_t k = kfull; k < kc; k++)
            for (int i = 0; i < 8; i++) dst[k * w + r + i] = src[(r + i) * ld + k];
    }
    if (rows - full >= 4) {
        for (int64_t k = 0; k < kfull; k += 8) transpose4x8(src + full * ld + k, ld, dst + k * w + full, w);
        for (int64_t k = kfull; k < kc; k++)
            for (int i = 0; i < 4; i++) dst[k * w + full + i] = src[(full + i) * ld + k];
        full += 4;
    }
    for (int r = full; r < rows; r++)
        for (int64_t k = 0; k < kc; k++) dst[k * w + r] = src[r * ld + k];
    for (int64_t k = 0; k < kc; k++)
        for (int r = rows; r < w; r++) dst[k * w + r] = 0.0f;
}
