/* Internal: single-precision GEMM, row-major.
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
 * op(X) is X or X^T; lda/ldb/ldc are row strides of the matrices as stored.
 * mml_sgemm picks the SIMD micro-kernel at run time and uses the thread pool;
 * mml_sgemm_ref is the plain triple loop the tests hold it to. */
#ifndef MML_CORE_GEMM_H
#define MML_CORE_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void mml_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc);

/* What a layer adds to its product as C is written (a linear's bias,
 * residual and ReLU, fused so that no pass over C comes before or after):
 *   C = relu?(alpha op(A) op(B) + beta C + (res + bias)),
 * bias [N] per column or NULL, res [M, N] (row stride ldr) or NULL. */
typedef struct mml_gemm_epilogue {
    const float *bias;
    const float *res;
    int64_t ldr;
    bool relu;
} mml_gemm_epilogue;

void mml_sgemm_ep(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                  const mml_gemm_epilogue *ep);
void mml_sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                   float *C, int64_t ldc);

/* A right operand packed once into the kernel's panels, for many products
 * with the same B (a recurrent weight at every time step): packing is then
 * not repeated per call. The source B must stay valid while the packing is
 * used (it serves a fallback). */
typedef struct mml_sgemm_packed {
    const float *B;
    int64_t ldb, K, N;
    bool trans_b;
    int nr;               /* the kernel's panel width when packed */
    const float *panels;
} mml_sgemm_packed;

/* Floats the panels of op(B) [K, N] need. */
size_t mml_sgemm_packed_floats(int64_t K, int64_t N);
/* Packs op(B) [K, N] into panels: mml_sgemm_packed_floats(K, N) floats, 64-byte
 * aligned (the kernels load them aligned). */
mml_sgemm_packed mml_sgemm_pack_b(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb, float *panels);
/* C[M, N] = alpha * op(A)[M, K] * B + beta * C with B packed. */
void mml_sgemm_packed_b(bool trans_a, int64_t M, float alpha, const float *A, int64_t lda,
                        const mml_sgemm_packed *B, float beta, float *C, int64_t ldc);

#endif
