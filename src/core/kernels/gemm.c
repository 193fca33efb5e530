/* Packed, cache-blocked SGEMM (the GotoBLAS/BLIS loop structure):
 *   for each NC-wide column block of B and KC-deep slice of K:
 *     pack B's block into NR-wide panels (reused by every row block: L3/L2)
 *     for each MC-tall row block of A: pack it into MR-tall panels (L2)
 *       for each NR panel (one in L1), for each MR panel: micro-kernel
 *       (or MR panels outside, NR inside, when B has many panels).
 * Packing absorbs transposes, so one micro-kernel serves all four cases.
 * Threads split C into column (or row) strips, each running this loop with its
 * own packing buffers, which are kept per thread and grown, never freed per
 * call, so steady-state calls do not allocate. Products whose operands fit in
 * L1 together (an attention head's) skip the packing: their kernel reads A
 * and B in place. */
#include <pthread.h>
#include <string.h>

#include "core/kernels/gemm.h"
#include "core/kernels/gemm_kernels.h"
#include "mml/alloc.h"
#include "mml/cpu.h"
#include "mml/threads.h"

#define KC 256
#define KC_MAX 320 /* one K block up to this depth, rather than a sliver after a full one */
#define MC_PANELS 20
#define NC 3072
#define A_OUTER_MIN_COLUMNS 768 /* B panels enough to stream past one A panel (n >= 1,000: 6-9% faster) */
#define SCALAR_MR 4
#define SCALAR_NR 8
/* Below this a second thread's share takes less time than handing it over:
 * the 32 x 784 x 9 product of a batch-1 CNN's first layer is worth it. */
#define PARALLEL_MIN_FLOPS (2.0 * 48 * 48 * 48)
#define SMALL_M 4                          /* "a few rows": no packing */
#define SMALL_M_PARALLEL_MIN (64.0 * 1024) /* values read, 256 KiB: worth splitting a few-row product */
/* Packed panels are kc * w floats, a multiple of 4 KiB for the usual kc and
 * widths: packing writes one value run to every panel in turn, and with
 * panels 4 KiB apart all those writes fall in one L1 set (8 ways), so a
 * cache line of padding between panels (2-3x faster packing for the dW
 * products, whose K is the batch). */
#define PANEL_PAD 16

static inline int64_t panel_floats(int64_t kc, int w) { return kc * w + PANEL_PAD; }

static void kernel_scalar(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                          float alpha, float beta, int mr, int nr, const mml_gemm_epilogue *ep)
{
    float acc[SCALAR_MR * SCALAR_NR] = { 0 };
    for (int64_t k = 0; k < kc; k++, a += SCALAR_MR, b += SCALAR_NR)
        for (int i = 0; i < SCALAR_MR; i++)
            for (int j = 0; j < SCALAR_NR; j++) acc[i * SCALAR_NR + j] += a[i] * b[j];
    mml_gemm_store_tile(acc, SCALAR_NR, c, ldc, alpha, beta, mr, nr, ep);
}

static void pack_rows(const float *src, int64_t ld, int rows, int64_t kc, int w, float *dst);
static void dot_portable(int mi, int nj, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc);

static mml_gemm_kernel pick_kernel(void)
{
#if defined(MML_HAVE_X86_SIMD)
    switch (mml_cpu_simd()) {
    case MML_SIMD_AVX512:
        return (mml_gemm_kernel){ mml_gemm_kernel_avx512, MML_GEMM_AVX512_MR, MML_GEMM_AVX512_NR,
                                  mml_gemm_kernel_avx512_8, 8, "avx512", mml_gemm_pack_rows_avx2,
                                  mml_gemm_dot_avx512, mml_gemm_direct_avx512 };
    case MML_SIMD_AVX2:
        return (mml_gemm_kernel){ mml_gemm_kernel_avx2, MML_GEMM_AVX2_MR, MML_GEMM_AVX2_NR, NULL, 0, "avx2",
                                  mml_gemm_pack_rows_avx2, dot_portable };
    default: break;
    }
#endif
    return (mml_gemm_kernel){ kernel_scalar, SCALAR_MR, SCALAR_NR, NULL, 0, "scalar", pack_rows, dot_portable };
}

static int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

/* The kernel for M rows of C: the short one where whole tiles of it compute
 * a tenth fewer rows (M = 16, 32, 64 in 12-row tiles compute 24, 36, 72). */
static mml_gemm_kernel kernel_for_rows(int64_t M)
{
    mml_gemm_kernel k = pick_kernel();
    if (k.fn_short && round_up(M, k.mr_short) * 10 <= round_up(M, k.mr) * 9) k.fn = k.fn_short, k.mr = k.mr_short;
    return k;
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

/* Copies a rows x kc block stored row-major (rows of k) into a panel of
 * width w (dst[k * w + r]): row by row, so the reads stream through memory and
 * the strided writes stay in the L1-sized panel. */
static void pack_rows(const float *src, int64_t ld, int rows, int64_t kc, int w, float *dst)
{
    for (int r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        for (int64_t k = 0; k < kc; k++) dst[k * w + r] = s[k];
    }
    for (int64_t k = 0; k < kc; k++)
        for (int r = rows; r < w; r++) dst[k * w + r] = 0.0f;
}

/* Packs an n-wide, kc-deep block whose k-th values are contiguous in row k
 * (stride ld) into w-wide panels ps floats apart: one long read of each
 * source row across all panels, rather than a short copy per (panel, k). A
 * partial last panel is zero-padded. Inlined with w a constant for the
 * kernels' widths: a panel row is then a few whole-vector moves (restrict:
 * not one scalar load and store per value, in case they overlap). */
static inline void pack_contiguous_w(const float *restrict src, int64_t ld, int64_t n, int64_t kc, int w, int64_t ps,
                                     float *restrict dst)
{
    int64_t full = n / w, rest = n % w;
    if (rest) memset(dst + full * ps, 0, (size_t)(kc * w) * sizeof(float));
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        for (int64_t p = 0; p < full; p++) memcpy(dst + p * ps + k * w, s + p * w, (size_t)w * sizeof(float));
        for (int j = 0; j < rest; j++) dst[full * ps + k * w + j] = s[full * w + j];
    }
}

static void pack_contiguous(const float *src, int64_t ld, int64_t n, int64_t kc, int w, int64_t ps, float *dst)
{
    switch (w) {
    case MML_GEMM_AVX512_MR: pack_contiguous_w(src, ld, n, kc, MML_GEMM_AVX512_MR, ps, dst); break;
    case 8: pack_contiguous_w(src, ld, n, kc, 8, ps, dst); break; /* the short AVX-512 kernel */
    case MML_GEMM_AVX512_NR: pack_contiguous_w(src, ld, n, kc, MML_GEMM_AVX512_NR, ps, dst); break;
    case MML_GEMM_AVX2_MR: pack_contiguous_w(src, ld, n, kc, MML_GEMM_AVX2_MR, ps, dst); break;
    case MML_GEMM_AVX2_NR: pack_contiguous_w(src, ld, n, kc, MML_GEMM_AVX2_NR, ps, dst); break;
    default: pack_contiguous_w(src, ld, n, kc, w, ps, dst);
    }
}

static void pack_a(const mml_gemm_kernel *kern, const float *A, int64_t lda, bool ta, int64_t mc, int64_t kc,
                   float *dst)
{
    int mr = kern->mr;
    if (ta) {
        pack_contiguous(A, lda, mc, kc, mr, panel_floats(kc, mr), dst);
        return;
    }
    for (int64_t p = 0; p < mc; p += mr, dst += panel_floats(kc, mr))
        kern->pack_rows(A + p * lda, lda, (int)(mc - p < mr ? mc - p : mr), kc, mr, dst);
}

/* ps: floats from one panel to the next (panel_floats, or kc * nr unpadded). */
static void pack_b(const mml_gemm_kernel *kern, const float *B, int64_t ldb, bool tb, int64_t kc, int64_t nc,
                   int64_t ps, float *dst)
{
    int nr = kern->nr;
    if (!tb) {
        pack_contiguous(B, ldb, nc, kc, nr, ps, dst);
        return;
    }
    for (int64_t p = 0; p < nc; p += nr, dst += ps)
        kern->pack_rows(B + p * ldb, ldb, (int)(nc - p < nr ? nc - p : nr), kc, nr, dst);
}

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

/* Equal K blocks near KC deep: K = 288 is one block of 288, not 256 + 32,
 * whose second pass would load and store all of C for a few products. */
static int64_t k_block(int64_t K)
{
    if (K <= KC_MAX) return K;
    int64_t blocks = (K + KC - 1) / KC;
    return (K + blocks - 1) / blocks;
}

/* ---- a small C over a long K, B transposed (a convolution's weight
 * gradient when its patches are short: 16 x 25 outputs summed over every
 * pixel of the batch) ----
 * Rows of A and of B are both contiguous along K, so blocks of C are dot
 * products read straight from them: no packing, and no 12 x 32 register tile
 * mostly spent on rows and columns C does not have. */

#define DOT_SMALL_C 1024   /* at most this many values of C */
#define DOT_LONG_K 256     /* at least this deep */
#define DOT_LANES 16

/* 16 floats as one value (GCC/Clang vector extension: one AVX-512 register,
 * or two or four narrower ones), so the sums stay in registers. */
typedef float dot_vec __attribute__((vector_size(DOT_LANES * sizeof(float))));

/* C[i][j] (i < mi, j < nj) = alpha A_i . B_j + beta C[i][j], 16 lanes of
 * partial sums per product: a 4 x 4 block loads 8 vectors for 16 FMAs. */
static inline __attribute__((always_inline)) void dot_block(int mi, int nj, int64_t K, float alpha,
                                                            const float *restrict A, int64_t lda,
                                                            const float *restrict B, int64_t ldb, float beta,
                                                            float *restrict C, int64_t ldc)
{
    dot_vec acc[4][4] = { { { 0 } } };
    int64_t k = 0;
    for (; k + DOT_LANES <= K; k += DOT_LANES) {
        dot_vec a[4], b[4];
        for (int i = 0; i < mi; i++) memcpy(&a[i], A + i * lda + k, sizeof a[i]); /* unaligned loads */
        for (int j = 0; j < nj; j++) memcpy(&b[j], B + j * ldb + k, sizeof b[j]);
        for (int i = 0; i < mi; i++)
            for (int j = 0; j < nj; j++) acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < mi; i++)
        for (int j = 0; j < nj; j++) {
            float sum = 0.0f;
            for (int l = 0; l < DOT_LANES; l++) sum += acc[i][j][l];
            for (int64_t t = k; t < K; t++) sum += A[i * lda + t] * B[j * ldb + t];
            float *c = C + i * ldc + j;
            *c = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c;
        }
}

static void dot_portable(int mi, int nj, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (mi == 4 && nj == 4) dot_block(4, 4, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (mi == 4) dot_block(4, 1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (nj == 4) dot_block(1, 4, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else dot_block(1, 1, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

typedef struct dot_job {
    mml_gemm_dot_fn dot;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} dot_job;

/* Blocks [u0, u1) of C, row-major: block u is strip u / cols (rows 4s..4s+3,
 * or a single row past M - M % 4) and columns 4 (u % cols) .. + 3, or the
 * last 1-3 columns one at a time. */
static void dot_blocks(void *arg, int64_t u0, int64_t u1, int thread)
{
    const dot_job *d = arg;
    int64_t wide = d->M / 4, cols = (d->N + 3) / 4;
    for (int64_t u = u0; u < u1; u++) {
        int64_t s = u / cols, i = s < wide ? 4 * s : 4 * wide + (s - wide), j = 4 * (u % cols);
        int mi = s < wide ? 4 : 1;
        const float *a = d->A + i * d->lda;
        float *c = d->C + i * d->ldc;
        if (d->N - j >= 4) d->dot(mi, 4, d->K, d->alpha, a, d->lda, d->B + j * d->ldb, d->ldb, d->beta, c + j, d->ldc);
        else
            for (; j < d->N; j++) d->dot(mi, 1, d->K, d->alpha, a, d->lda, d->B + j * d->ldb, d->ldb, d->beta, c + j, d->ldc);
    }
}

static int64_t dot_block_count(int64_t M, int64_t N) { return (M / 4 + M % 4) * ((N + 3) / 4); }

/* B transposed, and a few rows of A (batch-1 inference: a layer's weight
 * read once) or a small C over a long K. */
static bool dot_applies(bool ta, bool tb, int64_t M, int64_t N, int64_t K)
{
    return !ta && tb && (M <= SMALL_M || (M * N <= DOT_SMALL_C && K >= DOT_LONG_K));
}

/* Over the threads once there is enough to read (a few rows: bound by
 * reading B) or to compute. */
static void gemm_dot(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                     int64_t ldb, float beta, float *C, int64_t ldc)
{
    dot_job d = { pick_kernel().dot, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C };
    int64_t blocks = dot_block_count(M, N), threads = mml_threads_get();
    bool worth = (double)K * (M + N) >= SMALL_M_PARALLEL_MIN || 2.0 * M * N * K >= PARALLEL_MIN_FLOPS;
    mml_parallel_for(blocks, worth ? (blocks + threads - 1) / threads : blocks, dot_blocks, &d);
}

/* ---- a few rows of A (batch-1 inference): no packing ----
 * Packing B costs as much as the product when A has only a row or two, and a
 * layer's weight is B: dot products (B^T) or row updates (B) read it once. */

static void axpy(float a, const float *restrict x, float *restrict y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static bool small_m_applies(bool ta, bool tb, int64_t M) { return M <= SMALL_M && !(ta && tb); }

static void gemm_small_m(const mml_gemm_kernel *kern, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (tb) { /* C[i][n] = alpha A_i . B_n + beta C[i][n]: the dot products above (B packed once reaches here) */
        dot_job d = { kern->dot, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C };
        dot_blocks(&d, 0, dot_block_count(M, N), 0);
        return;
    }
    for (int64_t i = 0; i < M; i++) { /* C_i = beta C_i + sum_k alpha A(i,k) B_k */
        float *c = C + i * ldc;
        for (int64_t n = 0; n < N; n++) c[n] = beta == 0.0f ? 0.0f : beta * c[n];
        for (int64_t k = 0; k < K; k++) axpy(alpha * (ta ? A[k * lda + i] : A[i * lda + k]), B + k * ldb, c, N);
    }
}

/* Where the packed panels of B's block (jc, pc) start: every column block
 * before jc is NC wide (a multiple of nr), so it holds K * NC floats. */
static int64_t packed_offset(int64_t jc, int64_t pc, int64_t K, int64_t nc, int nr)
{
    return jc * K + pc * ((nc + nr - 1) / nr * nr);
}

/* The epilogue as a pass over C, for the paths whose kernels do not fuse it. */
static void apply_epilogue(int64_t M, int64_t N, float *C, int64_t ldc, const mml_gemm_epilogue *ep)
{
    if (!ep) return;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = mml_gemm_ep_apply(ep, i, j, C[i * ldc + j]);
}

/* The epilogue of the tile at (i, j) of C, in t. */
static const mml_gemm_epilogue *tile_epilogue(const mml_gemm_epilogue *ep, int64_t i, int64_t j,
                                              mml_gemm_epilogue *t)
{
    if (!ep) return NULL;
    *t = (mml_gemm_epilogue){ ep->bias ? ep->bias + j : NULL, ep->res ? ep->res + i * ep->ldr + j : NULL, ep->ldr,
                              ep->relu };
    return t;
}

/* ---- the next block's packing source, prefetched during this block ----
 * Packing reads activations from L3 or memory (a Transformer's 4,096 x 128
 * inputs) and waits on every line; a few lines of the next block's A (and B,
 * when the next block starts a new K slice) are prefetched into L2 between
 * micro-kernel calls, so that packing finds them there. */

typedef struct ahead {
    const char *row[2]; /* the first line of each span's current row */
    int64_t row_lines[2], rows[2], ld[2]; /* ld in bytes */
    int n, span;
    int64_t line; /* in the current row */
    int64_t total, step;
} ahead;

/* A rows x cols block of floats, rows ld floats apart. */
static void ahead_add(ahead *a, const float *src, int64_t rows, int64_t cols, int64_t ld)
{
    if (rows <= 0 || cols <= 0) return;
    uintptr_t first = (uintptr_t)src / 64, last = ((uintptr_t)(src + cols) - 1) / 64;
    a->row[a->n] = (const char *)(first * 64);
    a->row_lines[a->n] = (int64_t)(last - first + 1);
    a->rows[a->n] = rows;
    a->ld[a->n] = ld * (int64_t)sizeof(float);
    a->total += rows * a->row_lines[a->n++];
}

/* The next step lines, walked with counters (a division per line cost more
 * than the prefetch saved). */
static void ahead_run(ahead *a)
{
    for (int64_t k = 0; k < a->step && a->span < a->n; k++) {
        int s = a->span;
        __builtin_prefetch(a->row[s] + a->line * 64, 0, 2);
        if (++a->line < a->row_lines[s]) continue;
        a->line = 0;
        a->row[s] += a->ld[s];
        if (--a->rows[s] == 0) a->span++;
    }
}

/* What the block after (jc, pc, ic) packs: A's next rows, or the next K
 * slice's (or column block's) B and first rows of A. */
static ahead next_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                        const float *B, int64_t ldb, bool b_packed, int64_t jc, int64_t pc, int64_t ic,
                        int64_t mc_max, int64_t kc_step)
{
    ahead a = { 0 };
    int64_t kc = K - pc < kc_step ? K - pc : kc_step;
    if (ic + mc_max >= M) { /* the next block starts a new K slice or column block */
        ic = 0, pc += kc;
        if (pc >= K) pc = 0, jc += NC;
        if (jc >= N) return a;
        int64_t nc = N - jc < NC ? N - jc : NC;
        kc = K - pc < kc_step ? K - pc : kc_step;
        if (!b_packed) {
            if (tb) ahead_add(&a, B + jc * ldb + pc, nc, kc, ldb);
            else ahead_add(&a, B + pc * ldb + jc, kc, nc, ldb);
        }
    } else ic += mc_max;
    int64_t mc = M - ic < mc_max ? M - ic : mc_max;
    if (ta) ahead_add(&a, A + pc * lda + ic, kc, mc, lda);
    else ahead_add(&a, A + ic * lda + pc, mc, kc, lda);
    return a;
}

/* bp: B already packed by mml_sgemm_pack_b (then B, ldb, tb are its source),
 * or NULL to pack each block here. ep: applied as the last K block is written. */
static void gemm_serial(const mml_gemm_kernel *kern, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                        const mml_sgemm_packed *bp, float beta, float *C, int64_t ldc, const mml_gemm_epilogue *ep)
{
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        apply_epilogue(M, N, C, ldc, ep);
        return;
    }
    if (small_m_applies(ta, tb, M)) {
        gemm_small_m(kern, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        apply_epilogue(M, N, C, ldc, ep);
        return;
    }
    const int mr = kern->mr, nr = kern->nr;
    const int64_t mc_max = (int64_t)MC_PANELS * mr;
    int64_t nc_max = N < NC ? (N + nr - 1) / nr * nr : NC;
    int64_t kc_step = k_block(K);
    int64_t a_size = mc_max / mr * panel_floats(kc_step, mr), b_size = bp ? 0 : nc_max / nr * panel_floats(kc_step, nr);
    float *abuf = thread_buffer((size_t)(a_size + b_size) + 64);
    if (!abuf) { /* out of memory: the reference is slow but needs nothing */
        mml_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        apply_epilogue(M, N, C, ldc, ep);
        return;
    }
    for (int64_t jc = 0; jc < N; jc += NC) {
        int64_t nc = N - jc < NC ? N - jc : NC;
        for (int64_t pc = 0; pc < K; pc += kc_step) {
            int64_t kc = K - pc < kc_step ? K - pc : kc_step;
            float b_eff = pc == 0 ? beta : 1.0f;
            const float *bbuf = bp ? bp->panels + packed_offset(jc, pc, K, nc, nr) : abuf + a_size;
            int64_t a_ps = panel_floats(kc, mr), b_ps = bp ? kc * nr : panel_floats(kc, nr);
            if (!bp) pack_b(kern, tb ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, tb, kc, nc, b_ps, abuf + a_size);
            for (int64_t ic = 0; ic < M; ic += mc_max) {
                int64_t mc = M - ic < mc_max ? M - ic : mc_max;
                pack_a(kern, ta ? A + pc * lda + ic : A + ic * lda + pc, lda, ta, mc, kc, abuf);
                const mml_gemm_epilogue *last = pc + kc >= K ? ep : NULL;
                /* Many B panels: each A panel stays in L1 while they stream past
                 * it. Few: each B panel (kc x 32, all of L1 at kc = 256) is
                 * reused by every A panel instead. */
                bool a_outer = nc >= A_OUTER_MIN_COLUMNS;
                int64_t m_tiles = (mc + mr - 1) / mr, n_tiles = (nc + nr - 1) / nr;
                ahead pf = next_block(ta, tb, M, N, K, A, lda, B, ldb, bp != NULL, jc, pc, ic, mc_max, kc_step);
                pf.step = (pf.total + m_tiles * n_tiles - 1) / (m_tiles * n_tiles);
                for (int64_t o = 0; o < (a_outer ? m_tiles : n_tiles); o++)
                    for (int64_t q = 0; q < (a_outer ? n_tiles : m_tiles); q++) {
                        int64_t ir = (a_outer ? o : q) * mr, jr = (a_outer ? q : o) * nr;
                        mml_gemm_epilogue t;
                        ahead_run(&pf);
                        kern->fn(kc, abuf + ir / mr * a_ps, bbuf + jr / nr * b_ps, C + (ic + ir) * ldc + jc + jr, ldc,
                                 alpha, b_eff, (int)(mc - ir < mr ? mc - ir : mr), (int)(nc - jr < nr ? nc - jr : nr),
                                 tile_epilogue(last, ic + ir, jc + jr, &t));
                    }
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
    const mml_gemm_epilogue *ep;
} gemm_job;

static void gemm_part(void *arg, int64_t b, int64_t e, int thread)
{
    const gemm_job *j = arg;
    int64_t lo = b * j->unit, hi = e * j->unit;
    mml_gemm_epilogue t;
    if (j->split_n) {
        if (hi > j->N) hi = j->N;
        gemm_serial(&j->kern, j->ta, j->tb, j->M, hi - lo, j->K, j->alpha, j->A, j->lda,
                    j->tb ? j->B + lo * j->ldb : j->B + lo, j->ldb, NULL, j->beta, j->C + lo, j->ldc,
                    tile_epilogue(j->ep, 0, lo, &t));
    } else {
        if (hi > j->M) hi = j->M;
        gemm_serial(&j->kern, j->ta, j->tb, hi - lo, j->N, j->K, j->alpha, j->ta ? j->A + lo : j->A + lo * j->lda,
                    j->lda, j->B, j->ldb, j->bp, j->beta, j->C + lo * j->ldc, j->ldc, tile_epilogue(j->ep, lo, 0, &t));
    }
}

/* Both operands in L1 together: read in place (B transposed first), no packing. */
#define DIRECT_MAX_FLOATS 8192
static bool direct_applies(const mml_gemm_kernel *kern, int64_t M, int64_t N, int64_t K, float alpha)
{
    return kern->direct && K > 0 && alpha != 0.0f && M * K + K * N <= DIRECT_MAX_FLOATS;
}

/* B transposed is transposed first (the direct kernel loads B's rows). */
static void gemm_direct(const mml_gemm_kernel *kern, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (tb) {
        float *bt = thread_buffer((size_t)(K * N));
        if (!bt) {
            mml_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
        kern->pack_rows(B, ldb, (int)N, K, (int)N, bt);
        B = bt, ldb = N;
    }
    kern->direct(M, N, K, alpha, A, ta ? 1 : lda, ta ? lda : 1, B, ldb, beta, C, ldc);
}

/* The largest share of len that one of `threads` threads gets when len is
 * split into strips of unit. */
static double strip_share(int64_t len, int64_t unit, int threads)
{
    int64_t units = (len + unit - 1) / unit, most = (units + threads - 1) / threads * unit;
    return (double)(most < len ? most : len) / (double)len;
}

void mml_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc)
{
    mml_sgemm_ep(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void mml_sgemm_ep(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                  const mml_gemm_epilogue *ep)
{
    if (K > 0 && alpha != 0.0f && dot_applies(trans_a, trans_b, M, N, K)) {
        gemm_dot(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        apply_epilogue(M, N, C, ldc, ep);
        return;
    }
    mml_gemm_kernel kern = kernel_for_rows(M);
    int threads = mml_threads_usable();
    /* A few rows (batch-1 inference) are bound by reading B: split its
     * columns once B is large, whatever the flop count (B transposed went to
     * the dot products above). */
    bool few_rows = small_m_applies(trans_a, trans_b, M);
    bool worth = few_rows ? (double)K * N >= SMALL_M_PARALLEL_MIN : 2.0 * M * N * K >= PARALLEL_MIN_FLOPS;
    if (threads <= 1 || !worth) {
        if (direct_applies(&kern, M, N, K, alpha)) {
            gemm_direct(&kern, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            apply_epilogue(M, N, C, ldc, ep);
            return;
        }
        gemm_serial(&kern, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, NULL, beta, C, ldc, ep);
        return;
    }
    /* Split the longer side of C into strips aligned to the register tile,
     * unless that leaves one thread much more than the other side would (64 x
     * 196: seven 32-wide column strips give one thread 128 of 196 columns,
     * eight-row strips half the rows). */
    bool split_n = N >= M;
    double share_n = strip_share(N, kern.nr, threads), share_m = strip_share(M, kern.mr, threads);
    if (split_n ? share_n > 1.125 * share_m : share_m > 1.125 * share_n) split_n = !split_n;
    split_n = split_n || few_rows;
    int64_t unit = split_n ? kern.nr : kern.mr, len = split_n ? N : M;
    gemm_job j = { kern, trans_a, trans_b, split_n, M, N, K, lda, ldb, ldc, unit, alpha, beta, A, B, NULL, C, ep };
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
    mml_gemm_kernel kern = pick_kernel();
    int64_t kc_step = k_block(K); /* the blocks gemm_serial walks */
    for (int64_t jc = 0; jc < N; jc += NC) {
        int64_t nc = N - jc < NC ? N - jc : NC;
        for (int64_t pc = 0; pc < K; pc += kc_step) {
            int64_t kc = K - pc < kc_step ? K - pc : kc_step;
            pack_b(&kern, trans_b ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, trans_b, kc, nc, kc * kern.nr,
                   panels + packed_offset(jc, pc, K, nc, kern.nr));
        }
    }
    return (mml_sgemm_packed){ .B = B, .ldb = ldb, .trans_b = trans_b, .K = K, .N = N, .nr = kern.nr,
                               .panels = panels };
}

void mml_sgemm_packed_b(bool trans_a, int64_t M, float alpha, const float *A, int64_t lda,
                        const mml_sgemm_packed *B, float beta, float *C, int64_t ldc)
{
    mml_gemm_kernel kern = kernel_for_rows(M);
    if (kern.nr != B->nr) { /* the kernel changed since packing (tests force SIMD levels) */
        mml_sgemm(trans_a, B->trans_b, M, B->N, B->K, alpha, A, lda, B->B, B->ldb, beta, C, ldc);
        return;
    }
    int threads = mml_threads_get();
    if (threads <= 1 || 2.0 * M * B->N * B->K < PARALLEL_MIN_FLOPS) {
        gemm_serial(&kern, trans_a, B->trans_b, M, B->N, B->K, alpha, A, lda, B->B, B->ldb, B, beta, C, ldc, NULL);
        return;
    }
    /* Row strips: the packed panels are shared by every thread. */
    gemm_job j = { kern, trans_a, B->trans_b, false, M, B->N, B->K, lda, B->ldb, ldc, kern.mr, alpha, beta,
                   A, B->B, B, C, NULL };
    int64_t units = (M + kern.mr - 1) / kern.mr;
    mml_parallel_for(units, (units + threads - 1) / threads, gemm_part, &j);
}
