/* The packed SIMD GEMM against the reference triple loop, for every SIMD
 * level the CPU has, 1 and 2 threads, all transposes, odd shapes, strides,
 * alpha/beta (beta 0 must ignore NaN garbage in C), B packed per call or once,
 * and the fused epilogue (bias, residual, ReLU) on every path. */
#include <math.h>
#include <string.h>

#include "core/kernels/gemm.h"
#include "mml/alloc.h"
#include "mml/cpu.h"
#include "mml/rng.h"
#include "mml/threads.h"
#include "test.h"

static void fill(float *v, int64_t n, mml_rng *r)
{
    for (int64_t i = 0; i < n; i++) v[i] = mml_rng_uniform(r) * 2.0f - 1.0f;
}

enum { PLAIN, PACKED, EPILOGUE };

/* C += res + bias, then the ReLU, each as chosen: what mml_sgemm_ep fuses. */
static void epilogue_ref(int64_t M, int64_t N, float *C, int64_t ldc, const mml_gemm_epilogue *ep)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float t = ep->res ? ep->res[i * ep->ldr + j] : 0.0f;
            float v = C[i * ldc + j] + (ep->bias ? t + ep->bias[j] : t);
            C[i * ldc + j] = ep->relu && !(v > 0.0f) ? 0.0f : v;
        }
}

/* mode PACKED: B goes through mml_sgemm_pack_b and mml_sgemm_packed_b;
 * EPILOGUE: mml_sgemm_ep with a bias, a residual and the ReLU as variant
 * picks them. */
static bool check_case(int64_t M, int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta, int pad,
                       int mode, int variant, mml_rng *r)
{
    bool packed = mode == PACKED;
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = mml_malloc((size_t)(arows * lda + 1) * 4), *B = mml_malloc((size_t)(brows * ldb + 1) * 4);
    float *C = mml_malloc((size_t)(M * ldc + 1) * 4), *R = mml_malloc((size_t)(M * ldc + 1) * 4);
    float *panels = mml_aligned_alloc(mml_sgemm_packed_floats(K, N) * 4 + 4);
    fill(A, arows * lda, r);
    fill(B, brows * ldb, r);
    fill(C, M * ldc, r);
    if (beta == 0.0f)
        for (int64_t i = 0; i < M * ldc; i++) C[i] = NAN;
    memcpy(R, C, (size_t)(M * ldc) * 4);
    float *bias = mml_malloc((size_t)(N + 1) * 4), *res = mml_malloc((size_t)(M * (N + 3) + 1) * 4);
    fill(bias, N, r);
    fill(res, M * (N + 3), r);
    mml_gemm_epilogue ep = { variant % 4 != 3 ? bias : NULL, variant % 2 ? res : NULL, N + 3, variant % 3 != 1 };
    if (packed) {
        mml_sgemm_packed bp = mml_sgemm_pack_b(tb, K, N, B, ldb, panels);
        mml_sgemm_packed_b(ta, M, alpha, A, lda, &bp, beta, C, ldc);
    } else if (mode == EPILOGUE) mml_sgemm_ep(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep);
    else mml_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    mml_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    if (mode == EPILOGUE) epilogue_ref(M, N, R, ldc, &ep);
    bool ok = true;
    for (int64_t i = 0; i < M && ok; i++)
        for (int64_t j = 0; j < ldc && ok; j++) { /* columns past N (the padding) untouched */
            float g = C[i * ldc + j], w = R[i * ldc + j];
            bool same = j < N ? fabsf(g - w) <= 1e-4f * (1.0f + sqrtf((float)K)) + 1e-5f * fabsf(w)
                              : g == w || (isnan(g) && isnan(w));
            if (!same) {
                tst_fail(__FILE__, __LINE__, "gemm %s%s M=%lld N=%lld K=%lld ta=%d tb=%d alpha=%g beta=%g pad=%d: "
                         "C[%lld,%lld] = %g, want %g", mml_simd_name(mml_cpu_simd()),
                         packed ? " packed" : mode == EPILOGUE ? " epilogue" : "",
                         (long long)M, (long long)N, (long long)K, ta, tb, alpha, beta, pad, (long long)i,
                         (long long)j, g, w);
                ok = false;
            }
        }
    mml_free(A);
    mml_free(B);
    mml_free(C);
    mml_free(R);
    mml_free(panels);
    mml_free(bias);
    mml_free(res);
    return ok;
}

TEST(gemm_matches_reference_all_paths)
{
    mml_rng r;
    mml_rng_seed(&r, 99);
    static const int64_t sizes[][3] = {
        { 1, 1, 1 }, { 1, 37, 300 }, { 3, 1, 5 }, { 13, 33, 7 }, { 12, 32, 192 }, { 25, 65, 193 },
        { 64, 10, 128 }, { 97, 130, 61 }, { 200, 3, 401 }, { 7, 300, 260 }, { 250, 250, 250 }, { 5, 5, 0 },
        { 5, 3100, 200 }, /* more than one column block (NC) and depth block (KC) */
        { 30, 800, 40 },  /* 25 B panels past each A panel */
        { 1, 333, 250 }, { 3, 300, 260 }, /* a few rows and a B large enough to split over threads */
        { 16, 25, 1000 }, { 9, 32, 700 }, { 2, 3, 2049 }, /* small C, long K: dot products when B is transposed */
        { 16, 32, 300 },                                  /* the same from K = 256 */
        { 1, 203, 700 }, { 6, 42, 2000 },                 /* the same, enough to split over threads */
        { 32, 70, 33 }, { 40, 45, 17 }, { 16, 100, 64 },  /* rows 12-row tiles fit badly: the 8-row kernel */
        { 64, 196, 288 }, /* a batch-1 conv: split by rows at 2 threads, a last tile 4 columns wide */
        { 16, 48, 20 }, { 16, 49, 20 }, { 24, 81, 9 }, /* last tiles of 16 and 17 columns: half or whole vectors */
        { 10, 15, 12 }, { 10, 15, 12 }, { 10, 15, 12 }, /* small enough to be read in place; each padding */
        { 800, 45, 330 }, { 777, 64, 96 }, /* tall with a small B, over one or two K blocks */
    };
    int saved_threads = mml_threads_get();
    for (int simd = MML_SIMD_SCALAR; simd <= MML_SIMD_AVX512; simd++) {
        mml_cpu_force_simd((mml_simd)simd);
        if ((int)mml_cpu_simd() != simd) continue;
        for (int threads = 1; threads <= 2; threads++) {
            mml_threads_set(threads);
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                for (int t = 0; t < 12; t++) {
                    bool ta = t & 1, tb = t & 2;
                    float alpha = s % 3 == 0 ? 1.0f : -0.75f, beta = s % 2 ? 0.0f : 0.5f;
                    if (!check_case(sizes[s][0], sizes[s][1], sizes[s][2], ta, tb, alpha, beta, (int)(s % 3), t / 4,
                                    (int)s + t, &r))
                        goto done;
                }
        }
    }
done:
    mml_cpu_force_simd(MML_SIMD_AVX512);
    mml_threads_set(saved_threads);
}

TEST(gemm_steady_state_does_not_allocate)
{
    static float A[64 * 300], B[300 * 128], C[64 * 128];
    mml_sgemm(false, true, 64, 128, 300, 1.0f, A, 300, B, 300, 0.0f, C, 128);
    uint64_t before = mml_alloc_count();
    for (int i = 0; i < 5; i++) mml_sgemm(false, true, 64, 128, 300, 1.0f, A, 300, B, 300, 0.0f, C, 128);
    CHECK(mml_alloc_count() == before);
}
