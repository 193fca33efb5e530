/* Internal: GEMM micro-kernels. A kernel multiplies a packed MR x kc panel
 * of A (MR values per k) by a packed kc x NR panel of B (NR values per k) and
 * writes the mr x nr corner of the tile: C = alpha * AB + beta * C, where
 * beta == 0 never reads C, then the epilogue ep (NULL: none; its pointers
 * are the tile's own) as mml_sgemm_ep defines it. */
#ifndef MML_GEMM_KERNELS_H
#define MML_GEMM_KERNELS_H

#include <stdint.h>

#include "core/kernels/gemm.h"

typedef void (*mml_gemm_kernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                   float alpha, float beta, int mr, int nr, const mml_gemm_epilogue *ep);

/* Packs a rows x kc block stored row-major (row stride ld) into a panel of
 * width w >= rows: dst[k * w + r] = src[r * ld + k], zero for r >= rows. The
 * transposing half of packing, where scalar code spends most of its time. */
typedef void (*mml_gemm_pack_fn)(const float *src, int64_t ld, int rows, int64_t kc, int w, float *dst);

/* Dot products of rows, for a small C over a long K with B transposed:
 * C[i][j] = alpha A_i . B_j + beta C[i][j] for i < mi, j < nj, where mi and
 * nj are 4 or 1 and the rows of A and B run along K (no packing). */
typedef void (*mml_gemm_dot_fn)(int mi, int nj, int64_t K, float alpha, const float *A, int64_t lda,
                                const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* C[M, N] = alpha op(A) B + beta C for a product that fits in L1, no
 * packing: A's element (i, k) read at A[i * sa + k * sk], B row-major. */
typedef void (*mml_gemm_direct_fn)(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t sa,
                                   int64_t sk, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

typedef struct mml_gemm_kernel {
    mml_gemm_kernel_fn fn;
    int mr, nr;
    mml_gemm_kernel_fn fn_short; /* fewer rows (mr_short), or NULL */
    int mr_short;
    const char *name;
    mml_gemm_pack_fn pack_rows;
    mml_gemm_dot_fn dot;
    mml_gemm_direct_fn direct; /* or NULL */
} mml_gemm_kernel;

void mml_gemm_pack_rows_avx2(const float *src, int64_t ld, int rows, int64_t kc, int w, float *dst);

void mml_gemm_kernel_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta, int mr, int nr, const mml_gemm_epilogue *ep);
void mml_gemm_kernel_avx512_8(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                              float alpha, float beta, int mr, int nr, const mml_gemm_epilogue *ep);
void mml_gemm_dot_avx512(int mi, int nj, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc);
void mml_gemm_direct_avx512(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t sa, int64_t sk,
                            const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void mml_gemm_kernel_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                          float alpha, float beta, int mr, int nr, const mml_gemm_epilogue *ep);

#define MML_GEMM_AVX512_MR 12
#define MML_GEMM_AVX512_NR 32
#define MML_GEMM_AVX2_MR 6
#define MML_GEMM_AVX2_NR 16

/* v at row i, column j of the epilogue's block after it: + (res + bias), as a
 * linear's prefilled output held them, then the ReLU (0 for a NaN). */
static inline float mml_gemm_ep_apply(const mml_gemm_epilogue *ep, int64_t i, int64_t j, float v)
{
    const float *res = ep->res ? ep->res + i * ep->ldr : NULL;
    if (res) v += ep->bias ? res[j] + ep->bias[j] : res[j];
    else if (ep->bias) v += ep->bias[j];
    return ep->relu && !(v > 0.0f) ? 0.0f : v;
}

/* Stores a full tile held in tmp (MR x NR, row stride nr_full) into C. */
static inline void mml_gemm_store_tile(const float *tmp, int nr_full, float *c, int64_t ldc, float alpha,
                                       float beta, int mr, int nr, const mml_gemm_epilogue *ep)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float v = alpha * tmp[i * nr_full + j];
            v = beta == 0.0f ? v : v + beta * c[i * ldc + j];
            c[i * ldc + j] = ep ? mml_gemm_ep_apply(ep, i, j, v) : v;
        }
}

#endif
