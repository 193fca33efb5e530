/* Packed, cache-blocked SGEMM (the GotoBLAS/BLIS loop structure):
 *   for each NC-wide column block of B and KC-deep slice of K:
 *     pack B's block into NR-wide panels (reused by every row block: L3/L2)
 *     for each MC-tall row block of A: pack it into MR-tall panels (L2)
 *       for each NR panel (one in L1), for each MR panel: micro-kernel.
 * Packing absorbs transposes, so one micro-kernel serves all four cases.
 * Threads split C into column (or row) strips, each running this loop with its
 * own packing buffers, which are kept per thread and grown, never freed per
 * call, so steady-state calls do not allocate. */
#include <pthread.h>
#include <string.h>

#include "core/kernels/gemm.h"
#include "core/kernels/gemm_kernels.h"
#include "mml/alloc.h"
#include "mml/cpu.h"
#include "mml/threads.h"

#define KC 192
#define MC_PANELS 20
#define NC 3072
#define SCALAR_MR 4
#define SCALAR_NR 8
#define PARALLEL_MIN_FLOPS (2.0 * 96 * 96 * 96)

static void kernel_scalar(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                          float alpha, float beta, int mr, int nr)
{
    float acc[SCALAR_MR * SCALAR_NR] = { 0 };
    for (int64_t k = 0; k < kc; k++, a += SCALAR_MR, b += SCALAR_NR)
        for (int i = 0; i < SCALAR_MR; i++)
            for (int j = 0; j < SCALAR_NR; j++) acc[i * SCALAR_NR + j] += a[i] * b[j];
    mml_gemm_store_tile(acc, SCALAR_NR, c, ldc, alpha, beta, mr, nr);
}

static mml_gemm_kernel pick_kernel(void)
{
#if defined(MML_HAVE_X86_SIMD)
    switch (mml_cpu_simd()) {
    case MML_SIMD_AVX512:
        return (mml_gemm_kernel){ mml_gemm_kernel_avx512, MML_GEMM_AVX512_MR, MML_GEMM_AVX512_NR, "avx512" };
    case MML_SIMD_AVX2:
        return (mml_gemm_kernel){ mml_gemm_kernel_avx2, MML_GEMM_AVX2_MR, MML_GEMM_AVX2_NR, "avx2" };
    default: break;
    }
#endif
    return (mml_gemm_kernel){ kernel_scalar, SCALAR_MR, SCALAR_NR, "scalar" };
}

/* ---- per-thread packing buffers ---- */

typedef struct pack_buf {
    float *mem;
    size_t cap; /* floats */
} pack_buf;

static pthread_key_t g_buf_key;
static pthread_once_t g_buf_once = PTHREAD_ONCE_INIT;

static void buf_destroy(void *p)
{
    pack_buf *b = p;
    mml_free(b->mem);
    mml_free(b);
}

static void buf_key_init(void) { pthread_key_create(&g_buf_key, buf_destroy); }

static float *thread_buffer(size_t floats)
{
    pthread_once(&g_buf_once, buf_key_init);
    pack_buf *b = pthread_getspecific(g_buf_key);
    if (!b) {
        b = mml_calloc(1, sizeof *b);
        if (!b) return NULL;
        pthread_setspecific(g_buf_key, b);
    }
    if (b->cap < floats) {
        mml_free(b->mem);
        b->mem = mml_aligned_alloc(floats * sizeof(float));
        b->cap = b->mem ? floats : 0;
    }
    return b->mem;
}

/* ---- packing ---- */

/* A transposed is read row by row (k outer), each row feeding every panel: a
 * column-strip walk down a tall, wide A (weight gradients) missed the cache
 * on nearly every row. */
static void pack_a(const float *A, int64_t lda, bool ta, int64_t mc, int64_t kc, int mr, float *dst)
{
    if (ta) {
        for (int64_t k = 0; k < kc; k++)
            for (int64_t p = 0; p < mc; p += mr) {
                int rows = (int)(mc - p < mr ? mc - p : mr);
                const float *src = A + k * lda + p;
                float *d = dst + p * kc + k * mr;
                for (int r = 0; r < rows; r++) d[r] = src[r];
                for (int r = rows; r < mr; r++) d[r] = 0.0f;
            }
        return;
    }
    for (int64_t p = 0; p < mc; p += mr) {
        int rows = (int)(mc - p < mr ? mc - p : mr);
        for (int64_t k = 0; k < kc; k++) {
            float *d = dst + k * mr;
            for (int r = 0; r < rows; r++) d[r] = A[(p + r) * lda + k];
            for (int r = rows; r < mr; r++) d[r] = 0.0f;
        }
        dst += kc * mr;
    }
}

static void pack_b(const float *B, int64_t ldb, bool tb, int64_t kc, int64_t nc, int nr, float *dst)
{
    for (int64_t p = 0; p < nc; p += nr) {
        int cols = (int)(nc - p < nr ? nc - p : nr);
        for (int64_t k = 0; k < kc; k++) {
            float *d = dst + k * nr;
            if (tb)
                for (int j = 0; j < cols; j++) d[j] = B[(p + j) * ldb + k];
            else memcpy(d, B + k * ldb + p, (size_t)cols * sizeof(float));
            for (int j = cols; j < nr; j++) d[j] = 0.0f;
        }
        dst += kc * nr;
    }
}

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

/* Where the packed panels of B's block (jc, pc) start: every column block
 * before jc is NC wide (a multiple of nr), so it holds K * NC floats. */
static int64_t packed_offset(int64_t jc, int64_t pc, int64_t K, int64_t nc, int nr)
{
    return jc * K + pc * ((nc + nr - 1) / nr * nr);
}

/* bp: B already packed by mml_sgemm_pack_b (then B, ldb, tb are its source),
 * or NULL to pack each block here. */
static void gemm_serial(const mml_gemm_kernel *kern, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                        const mml_sgemm_packed *bp, float beta, float *C, int64_t ldc)
{
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const int mr = kern->mr, nr = kern->nr;
    const int64_t mc_max = (int64_t)MC_PANELS * mr;
    int64_t nc_max = N < NC ? (N + nr - 1) / nr * nr : NC;
    float *abuf = thread_buffer((size_t)(mc_max * KC + (bp ? 0 : nc_max * KC)) + 64);
    if (!abuf) { /* out of memory: the reference is slow but needs nothing */
        mml_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    for (int64_t jc = 0; jc < N; jc += NC) {
        int64_t nc = N - jc < NC ? N - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = K - pc < KC ? K - pc : KC;
            float b_eff = pc == 0 ? beta : 1.0f;
            const float *bbuf = bp ? bp->panels + packed_offset(jc, pc, K, nc, nr) : abuf + mc_max * KC;
            if (!bp) pack_b(tb ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, tb, kc, nc, nr, abuf + mc_max * KC);
            for (int64_t ic = 0; ic < M; ic += mc_max) {
                int64_t mc = M - ic < mc_max ? M - ic : mc_max;
                pack_a(ta ? A + pc * lda + ic : A + ic * lda + pc, lda, ta, mc, kc, mr, abuf);
                for (int64_t jr = 0; jr < nc; jr += nr)
                    for (int64_t ir = 0; ir < mc; ir += mr)
                        kern->fn(kc, abuf + ir * kc, bbuf + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, alpha,
                                 b_eff, (int)(mc - ir < mr ? mc - ir : mr), (int)(nc - jr < nr ? nc - jr : nr));
            }
        }
    }
}

typedef struct gemm_job {
    mml_gemm_kernel kern;
    bool ta, tb, split_n;
    int64_t M, N, K, lda, ldb, ldc, unit;
    float alpha, beta;
    const float *A, *B;
    const mml_sgemm_packed *bp; /* split_n is false when set */
    float *C;
} gemm_job;

static void gemm_part(void *arg, int64_t b, int64_t e, int thread)
{
    const gemm_job *j = arg;
    int64_t lo = b * j->unit, hi = e * j->unit;
    if (j->split_n) {
        if (hi > j->N) hi = j->N;
        gemm_serial(&j->kern, j->ta, j->tb, j->M, hi - lo, j->K, j->alpha, j->A, j->lda,
                    j->tb ? j->B + lo * j->ldb : j->B + lo, j->ldb, NULL, j->beta, j->C + lo, j->ldc);
    } else {
        if (hi > j->M) hi = j->M;
        gemm_serial(&j->kern, j->ta, j->tb, hi - lo, j->N, j->K, j->alpha, j->ta ? j->A + lo : j->A + lo * j->lda,
                    j->lda, j->B, j->ldb, j->bp, j->beta, j->C + lo * j->ldc, j->ldc);
    }
}

void mml_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc)
{
    mml_gemm_kernel kern = pick_kernel();
    int threads = mml_threads_get();
    if (threads <= 1 || 2.0 * M * N * K < PARALLEL_MIN_FLOPS) {
        gemm_serial(&kern, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, NULL, beta, C, ldc);
        return;
    }
    /* Split the longer side of C into strips aligned to the register tile. */
    bool split_n = N >= M;
    int64_t unit = split_n ? kern.nr : kern.mr, len = split_n ? N : M;
    gemm_job j = { kern, trans_a, trans_b, split_n, M, N, K, lda, ldb, ldc, unit, alpha, beta, A, B, NULL, C };
    int64_t units = (len + unit - 1) / unit;
    mml_parallel_for(units, (units + threads - 1) / threads, gemm_part, &j);
}

/* ---- a right operand packed once, for many products ---- */

size_t mml_sgemm_packed_floats(int64_t K, int64_t N)
{
    int nr = pick_kernel().nr;
    return (size_t)(K * ((N + nr - 1) / nr * nr));
}

mml_sgemm_packed mml_sgemm_pack_b(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb, float *panels)
{
    int nr = pick_kernel().nr;
    for (int64_t jc = 0; jc < N; jc += NC) {
        int64_t nc = N - jc < NC ? N - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = K - pc < KC ? K - pc : KC;
            pack_b(trans_b ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, trans_b, kc, nc, nr,
                   panels + packed_offset(jc, pc, K, nc, nr));
        }
    }
    return (mml_sgemm_packed){ .B = B, .ldb = ldb, .trans_b = trans_b, .K = K, .N = N, .nr = nr, .panels = panels };
}

void mml_sgemm_packed_b(bool trans_a, int64_t M, float alpha, const float *A, int64_t lda,
                        const mml_sgemm_packed *B, float beta, float *C, int64_t ldc)
{
    mml_gemm_kernel kern = pick_kernel();
    if (kern.nr != B->nr) { /* the kernel changed since packing (tests force SIMD levels) */
        mml_sgemm(trans_a, B->trans_b, M, B->N, B->K, alpha, A, lda, B->B, B->ldb, beta, C, ldc);
        return;
    }
    int threads = mml_threads_get();
    if (threads <= 1 || 2.0 * M * B->N * B->K < PARALLEL_MIN_FLOPS) {
        gemm_serial(&kern, trans_a, B->trans_b, M, B->N, B->K, alpha, A, lda, B->B, B->ldb, B, beta, C, ldc);
        return;
    }
    /* Row strips: the packed panels are shared by every thread. */
    gemm_job j = { kern, trans_a, B->trans_b, false, M, B->N, B->K, lda, B->ldb, ldc, kern.mr, alpha, beta,
                   A, B->B, B, C };
    int64_t units = (M + kern.mr - 1) / kern.mr;
    mml_parallel_for(units, (units + threads - 1) / threads, gemm_part, &j);
}
