/* Internal: single-precision GEMM, row-major.
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
 * op(X) is X or X^T; lda/ldb/ldc are row strides of the matrices as stored.
 * mml_sgemm picks the SIMD micro-kernel at run time and uses the thread pool;
 * mml_sgemm_ref is the plain triple loop the tests hold it to. */
#ifndef MML_CORE_GEMM_H
#define MML_CORE_GEMM_H

#include <stdbool.h>
#include <stdint.h>

void mml_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc);
void mml_sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                   float *C, int64_t ldc);

#endif
