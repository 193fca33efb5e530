#include <math.h>
#include <string.h>

#include "core/kernels/conv.h"
#include "core/kernels/winograd.h"
#include "core/op.h"
#include "mml/alloc.h"
#include "mml/ops.h"
#include "mml/rng.h"
#include "mml/threads.h"
#include "test.h"

TEST(batch_norm_running_stats_and_eval_match_pytorch)
{
    mml_safetensors *fx = tst_fixture("ops.safetensors");
    if (!fx) return;
    mml_tensor *w = tst_fixture_tensor(fx, "bn_running.weight", false);
    mml_tensor *b = tst_fixture_tensor(fx, "bn_running.bias", false);
    mml_tensor *rm = mml_tensor_create(MML_F32, 1, (int64_t[]){ 3 }, false);
    mml_tensor *rv = mml_tensor_create(MML_F32, 1, (int64_t[]){ 3 }, false);
    for (int c = 0; c < 3; c++) mml_f32(rv)[c] = 1.0f;
    mml_ctx *ctx = mml_ctx_create();
    for (int step = 0; step < 2; step++) {
        char key[64];
        snprintf(key, sizeof key, "bn_running.x%d", step);
        mml_tensor *x = tst_fixture_tensor(fx, key, false);
        mml_ctx_reset(ctx);
        CHECK(mml_batch_norm(ctx, x, w, b, rm, rv, 0.1f, 1e-5f) != NULL);
        mml_tensor_free(x);
    }
    CHECK_FIXTURE(fx, "bn_running.mean", mml_f32(rm), 3, 1e-5, 1e-6);
    CHECK_FIXTURE(fx, "bn_running.var", mml_f32(rv), 3, 1e-5, 1e-6);

    mml_set_training(ctx, false);
    mml_ctx_reset(ctx);
    mml_tensor *x = tst_fixture_tensor(fx, "bn_running.eval_x", true);
    mml_tensor *r = tst_fixture_tensor(fx, "bn_running.eval_r", false);
    mml_tensor *y = mml_batch_norm(ctx, x, w, b, rm, rv, 0.1f, 1e-5f);
    CHECK(y != NULL);
    if (y) {
        CHECK_FIXTURE(fx, "bn_running.eval_out", mml_f32(y), y->numel, 1e-5, 1e-6);
        CHECK_OK(mml_backward_seeded(ctx, y, mml_f32(r)));
        CHECK_FIXTURE(fx, "bn_running.eval_grad", x->grad, x->numel, 1e-5, 1e-6);
    }
    mml_free(x->grad);
    x->grad = NULL;
    mml_tensor_free(x);
    mml_tensor_free(r);
    mml_tensor_free(w);
    mml_tensor_free(b);
    mml_tensor_free(rm);
    mml_tensor_free(rv);
    mml_ctx_free(ctx);
    mml_safetensors_free(fx);
}

TEST(conv2d_fast_path_matches_direct_reference)
{
    mml_rng r;
    mml_rng_seed(&r, 5);
    static const int cfg[][9] = { /* N C H W O k s p groups */
        { 3, 1, 28, 28, 8, 3, 1, 1, 1 }, { 2, 6, 13, 11, 9, 5, 2, 2, 3 }, { 1, 4, 9, 9, 4, 3, 1, 0, 4 },
        { 5, 3, 8, 16, 2, 1, 1, 0, 1 }, { 2, 1, 9, 13, 3, 5, 1, 2, 1 }, { 2, 1, 7, 6, 2, 3, 1, 0, 1 },
        { 1, 1, 5, 40, 4, 7, 1, 3, 1 }, /* one input channel: direct loops */
        /* one input channel, 8k outputs, read in place: rows of 64 (a 48-wide tile and 16), 48, 28 */
        { 2, 1, 20, 64, 16, 5, 1, 2, 1 }, { 2, 1, 6, 50, 8, 3, 1, 0, 1 }, { 1, 1, 28, 28, 32, 3, 1, 1, 1 },
        { 1, 1, 3, 5, 8, 1, 1, 0, 1 }, /* 1 x 1: its padded plane outgrows the unfold's buffer, unfolded */
    };
    int saved = mml_threads_get();
    for (int threads = 1; threads <= 2; threads++) {
        mml_threads_set(threads);
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            const int *q = cfg[c];
            mml_ctx *ctx = mml_ctx_create();
            mml_tensor *x = mml_new(ctx, MML_F32, 4, (int64_t[]){ q[0], q[1], q[2], q[3] });
            mml_tensor *w = mml_new(ctx, MML_F32, 4, (int64_t[]){ q[4], q[1] / q[8], q[5], q[5] });
            mml_tensor *b = mml_new(ctx, MML_F32, 1, (int64_t[]){ q[4] });
            for (int64_t i = 0; i < x->numel; i++) mml_f32(x)[i] = mml_rng_normal(&r);
            for (int64_t i = 0; i < w->numel; i++) mml_f32(w)[i] = mml_rng_normal(&r);
            for (int64_t i = 0; i < b->numel; i++) mml_f32(b)[i] = mml_rng_normal(&r);
            mml_conv_args a = mml_conv_args_default();
            a.stride[0] = a.stride[1] = q[6];
            a.padding[0] = a.padding[1] = q[7];
            a.groups = q[8];
            mml_tensor *y = mml_conv2d(ctx, x, w, b, &a);
            CHECK(y != NULL);
            if (!y) continue;
            mml_conv_geom g = { q[0], q[1], q[2], q[3], q[4], y->shape[2], y->shape[3], q[5], q[5], q[6], q[6],
                                q[7], q[7], 1, 1, q[8] };
            float *want = mml_malloc((size_t)y->numel * sizeof(float));
            mml_conv2d_ref(mml_f32(x), mml_f32(w), mml_f32(b), &g, want);
            CHECK_CLOSE("conv2d vs direct", mml_f32(y), want, y->numel, 1e-4, 1e-4);
            mml_free(want);
            mml_ctx_free(ctx);
        }
    }
    mml_threads_set(saved);
}

static void fill_normal(mml_tensor *t, mml_rng *r)
{
    for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = mml_rng_normal(r);
}

/* The gradients of a stride-1 conv with padding p, by direct loops in double:
 * dx[n][c][y+a-p][x+b-p] += dy[n][o][y][x] w[o][c][a][b], dw likewise, db the sums. */
static void conv_grads_ref(const mml_conv_geom *g, const float *x, const float *w, const float *dy, double *dx,
                           double *dw, double *db)
{
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t y = 0; y < g->OH; y++)
                for (int64_t xo = 0; xo < g->OW; xo++) {
                    double d = dy[((n * g->O + o) * g->OH + y) * g->OW + xo];
                    db[o] += d;
                    for (int64_t c = 0; c < g->C; c++)
                        for (int64_t a = 0; a < g->kh; a++)
                            for (int64_t b = 0; b < g->kw; b++) {
                                int64_t iy = y + a - g->ph, ix = xo + b - g->pw;
                                if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) continue;
                                int64_t xi = ((n * g->C + c) * g->H + iy) * g->W + ix;
                                int64_t wi = ((o * g->C + c) * g->kh + a) * g->kw + b;
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                }
}

/* A sum of `terms` products of unit normals is about sqrt(terms) in size,
 * and float rounding's share scales with that, whatever the sum comes to
 * (Winograd's weight gradient: up to 4e-5 of it, from the 16 = 2^4 of the
 * point 2 in its 5 x 5 output transform). */
static void check_close_double(const char *what, const float *got, const double *want, int64_t n, int64_t terms)
{
    float *w = mml_malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) w[i] = (float)want[i];
    CHECK_CLOSE(what, got, w, n, 1e-4, 1e-4 * sqrt((double)terms));
    mml_free(w);
}

/* The tile transforms, written out in shared-term form, are the matrices
 * derived from the points: a unit impulse at (ky, kx) of a lone 6 x 6 tile
 * gives point (i, j) = BT[i][ky] BT[j][kx], and a unit point (i, j) gives
 * output (a, b) = AT[a][i] AT[b][j]. */
TEST(winograd_tile_transforms_are_the_derived_matrices)
{
    for (int r = 3; r <= 5; r += 2) {
        const mml_winograd *wg = mml_winograd_for(r);
        CHECK(wg && wg->m + r == 7);
        if (!wg) continue;
        int m = wg->m;
        float plane[36], pts[36], out[16], scratch[1024];
        CHECK(mml_winograd_scratch(wg, 1, 1, 1) <= sizeof scratch / sizeof scratch[0]);
        for (int k = 0; k < 36; k++) {
            memset(plane, 0, sizeof plane);
            plane[k] = 1.0f;
            mml_winograd_input(wg, plane, 36, 1, 6, 6, 0, 0, 1, 1, pts, 1, scratch);
            float want[36];
            for (int p = 0; p < 36; p++) want[p] = wg->BT[p / 6][k / 6] * wg->BT[p % 6][k % 6];
            CHECK_CLOSE("input transform of an impulse", pts, want, 36, 0, 0);
            memset(pts, 0, sizeof pts);
            pts[k] = 1.0f;
            mml_winograd_output(wg, pts, 1, 1, 1, 1, 1, out, m * m, 0, m, m, false, scratch);
            for (int q = 0; q < m * m; q++) want[q] = wg->AT[q / m][k / 6] * wg->AT[q % m][k % 6];
            CHECK_CLOSE("output transform of a point", out, want, m * m, 0, 0);
        }
    }
    CHECK(mml_winograd_for(4) == NULL && mml_winograd_for(1) == NULL);
}

/* A stride-1 conv of q = { N, C, H, W, O, k, p } at the current thread count:
 * values (within 1e-5 of the scale of a sum of C k^2 terms) and all three
 * gradients against direct loops; reweigh: run again after a weight changes
 * (the context keeps Winograd's kernel transform, which must be remade). *g
 * gets the geometry, for the caller to check the path it took. */
static void check_conv_loops(const char *what, const int q[7], bool reweigh, mml_rng *r, mml_conv_geom *g)
{
    mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ q[0], q[1], q[2], q[3] }, true);
    mml_tensor *w = mml_tensor_create(MML_F32, 4, (int64_t[]){ q[4], q[1], q[5], q[5] }, true);
    mml_tensor *b = mml_tensor_create(MML_F32, 1, (int64_t[]){ q[4] }, true);
    fill_normal(x, r);
    fill_normal(w, r);
    fill_normal(b, r);
    mml_conv_args a = mml_conv_args_default();
    a.padding[0] = a.padding[1] = q[6];
    *g = (mml_conv_geom){ q[0], q[1], q[2], q[3], q[4], q[2] + 2 * q[6] - q[5] + 1, q[3] + 2 * q[6] - q[5] + 1,
                          q[5], q[5], 1, 1, q[6], q[6], 1, 1, 1 };
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *y = mml_conv2d(ctx, x, w, b, &a);
    CHECK_MSG(y != NULL, "%s: %s", what, mml_last_error());
    int64_t ny = g->N * g->O * g->OH * g->OW;
    float *want = mml_malloc((size_t)ny * sizeof(float)), *dy = mml_malloc((size_t)ny * sizeof(float));
    double *dx = mml_calloc((size_t)x->numel, sizeof(double)), *dw = mml_calloc((size_t)w->numel, sizeof(double));
    double *db = mml_calloc((size_t)b->numel, sizeof(double));
    double atol = 1e-5 * sqrt((double)q[1] * q[5] * q[5]);
    for (int pass = 0; y && pass < (reweigh ? 2 : 1); pass++) {
        if (pass) {
            mml_f32(w)[w->numel - 1] += 1.0f;
            mml_ctx_reset(ctx);
            y = mml_conv2d(ctx, x, w, b, &a);
        }
        mml_conv2d_ref(mml_f32(x), mml_f32(w), mml_f32(b), g, want);
        CHECK_CLOSE(pass ? "conv2d after a weight changed" : what, mml_f32(y), want, ny, 1e-4, atol);
    }
    if (y) {
        for (int64_t i = 0; i < ny; i++) dy[i] = mml_rng_normal(r);
        CHECK_OK(mml_backward_seeded(ctx, y, dy));
        conv_grads_ref(g, mml_f32(x), mml_f32(w), dy, dx, dw, db);
        check_close_double("dx", x->grad, dx, x->numel, (int64_t)q[4] * q[5] * q[5]);
        check_close_double("dw", w->grad, dw, w->numel, g->N * g->OH * g->OW);
        check_close_double("db", b->grad, db, b->numel, g->N * g->OH * g->OW);
    }
    mml_free(want);
    mml_free(dy);
    mml_free(dx);
    mml_free(dw);
    mml_free(db);
    mml_ctx_free(ctx);
    mml_tensor_free(x);
    mml_tensor_free(w);
    mml_tensor_free(b);
}

/* Winograd convolution (6 x 6 tiles: 3 x 3 kernels in 4 x 4 output tiles, 5 x 5
 * in 2 x 2): values and all three gradients against direct loops, with edge
 * tiles that hang over the output, no padding and padding up to k - 1, several
 * chunks, batch 1, output channels transformed in blocks, one and two threads,
 * and the kept kernel transform remade
 * when a weight changes. Each shape is checked to take that path. */
TEST(conv2d_winograd_matches_direct_loops)
{
    static const int cfg[][7] = { /* N C H W O k p */
        { 6, 8, 20, 32, 9, 5, 2 }, { 3, 8, 21, 17, 10, 5, 2 }, { 3, 9, 24, 24, 8, 5, 0 }, { 2, 8, 12, 30, 8, 5, 4 },
        { 6, 8, 28, 28, 16, 3, 1 }, { 7, 12, 30, 18, 8, 3, 2 }, { 1, 16, 14, 14, 32, 5, 2 } /* batch 1 */,
        { 1, 32, 14, 14, 64, 3, 1 }, { 1, 16, 8, 8, 32, 5, 2 }, /* batch 1 in partial tiles */
    };
    /* its own draws (the ones above keep theirs): output channels transformed
     * 8 and 4 at a time with two samples each at 1 thread */
    static const int blocks[7] = { 2, 8, 16, 16, 12, 3, 1 };
    mml_rng r, rb;
    mml_rng_seed(&r, 23);
    mml_rng_seed(&rb, 29);
    int saved = mml_threads_get();
    for (int threads = 1; threads <= 2; threads++) {
        mml_threads_set(threads);
        mml_conv_geom g;
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            check_conv_loops("winograd conv2d vs direct", cfg[c], true, &r, &g);
            CHECK_MSG(mml_winograd_for_conv(&g) != NULL, "config %zu takes the Winograd path", c);
        }
        check_conv_loops("winograd conv2d vs direct, channel blocks", blocks, true, &rb, &g);
        CHECK(mml_winograd_for_conv(&g) != NULL);
    }
    mml_threads_set(saved);
    /* where im2col stays: few tiles (8 x 8 in 2 x 2 tiles at batch 2, 7 x 7 in 4 x 4 at batch 1), one input
     * channel, stride 2, 14 x 14 in 4 x 4 tiles in a batch */
    mml_conv_geom small = { 2, 16, 8, 8, 32, 8, 8, 5, 5, 1, 1, 2, 2, 1, 1, 1 }, one = small, strided = small;
    mml_conv_geom loose = { 64, 32, 14, 14, 64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1 }, tiny = loose;
    one.N = 64, one.C = 1, strided.N = 64, strided.sh = strided.sw = 2, strided.OH = strided.OW = 4;
    tiny.N = 1, tiny.H = tiny.W = tiny.OH = tiny.OW = 7;
    CHECK(!mml_winograd_for_conv(&one) && !mml_winograd_for_conv(&strided));
    CHECK(!mml_winograd_for_conv(&loose) && !mml_winograd_for_conv(&tiny));
    CHECK(mml_winograd_for_conv(&small) != NULL);
    small.N = 1, small.H = small.W = small.OH = small.OW = 6; /* 9 tiles */
    CHECK(!mml_winograd_for_conv(&small));
}

/* One input channel read in place (mml_conv_one_channel_avx512): values and
 * all three gradients against direct loops, rows of 28 and 37 (a 16-wide tile
 * and a masked one), a batch in chunks, one and two threads, kernels of 3, 5
 * and 7. */
TEST(conv2d_one_channel_matches_direct_loops)
{
    static const int cfg[][7] = { /* N C H W O k p */
        { 3, 1, 28, 28, 32, 3, 1 }, { 9, 1, 20, 37, 16, 5, 2 }, { 4, 1, 9, 13, 8, 5, 0 }, { 2, 1, 12, 12, 8, 7, 3 },
    };
    mml_rng r;
    mml_rng_seed(&r, 31);
    int saved = mml_threads_get();
    for (int threads = 1; threads <= 2; threads++)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            mml_threads_set(threads);
            mml_conv_geom g;
            check_conv_loops("one-channel conv2d vs direct", cfg[c], false, &r, &g);
        }
    mml_threads_set(saved);
}

/* Convolution runs a batch as chunks of samples side by side in one GEMM:
 * its gradients must be those of the samples run one at a time. */
static void check_batched_conv(const int q[9], int threads)
{
    mml_rng r;
    mml_rng_seed(&r, 11);
    int64_t N = q[0], sample[4] = { 1, q[1], q[2], q[3] };
    mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ N, q[1], q[2], q[3] }, true);
    mml_tensor *w = mml_tensor_create(MML_F32, 4, (int64_t[]){ q[4], q[1] / q[8], q[5], q[5] }, true);
    mml_tensor *b = mml_tensor_create(MML_F32, 1, (int64_t[]){ q[4] }, true);
    fill_normal(x, &r);
    fill_normal(w, &r);
    fill_normal(b, &r);
    mml_conv_args a = mml_conv_args_default();
    a.stride[0] = a.stride[1] = q[6];
    a.padding[0] = a.padding[1] = q[7];
    a.groups = q[8];
    mml_threads_set(threads);
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *y = mml_conv2d(ctx, x, w, b, &a);
    CHECK(y != NULL);
    float *seed = mml_malloc((size_t)y->numel * sizeof(float)), *dw = mml_calloc((size_t)w->numel, sizeof(float));
    float *db = mml_calloc((size_t)b->numel, sizeof(float));
    for (int64_t i = 0; i < y->numel; i++) seed[i] = mml_rng_normal(&r);
    CHECK_OK(mml_backward_seeded(ctx, y, seed));
    int64_t per_x = x->numel / N, per_y = y->numel / N;
    mml_tensor *xs = mml_tensor_create(MML_F32, 4, sample, true);
    for (int64_t s = 0; s < N; s++) {
        memcpy(mml_f32(xs), mml_f32(x) + s * per_x, (size_t)per_x * sizeof(float));
        memset(xs->grad, 0, (size_t)per_x * sizeof(float));
        memset(w->grad, 0, (size_t)w->numel * sizeof(float));
        memset(b->grad, 0, (size_t)b->numel * sizeof(float));
        mml_ctx_reset(ctx);
        mml_tensor *ys = mml_conv2d(ctx, xs, w, b, &a);
        CHECK_OK(mml_backward_seeded(ctx, ys, seed + s * per_y));
        CHECK_CLOSE("dx of one sample", x->grad + s * per_x, xs->grad, per_x, 1e-4, 1e-4);
        for (int64_t i = 0; i < w->numel; i++) dw[i] += w->grad[i];
        for (int64_t i = 0; i < b->numel; i++) db[i] += b->grad[i];
    }
    mml_ctx_reset(ctx);
    memset(w->grad, 0, (size_t)w->numel * sizeof(float));
    memset(b->grad, 0, (size_t)b->numel * sizeof(float));
    CHECK_OK(mml_backward_seeded(ctx, mml_conv2d(ctx, x, w, b, &a), seed));
    CHECK_CLOSE("dw of the batch", w->grad, dw, w->numel, 1e-3, 1e-4);
    CHECK_CLOSE("db of the batch", b->grad, db, b->numel, 1e-3, 1e-4);
    mml_free(seed);
    mml_free(dw);
    mml_free(db);
    mml_ctx_free(ctx);
    mml_tensor_free(xs);
    mml_tensor_free(x);
    mml_tensor_free(w);
    mml_tensor_free(b);
}

TEST(conv2d_batched_gradients_equal_per_sample)
{
    static const int cfg[][9] = { /* N C H W O k s p groups: several chunks and a remainder */
        { 7, 3, 20, 20, 5, 3, 1, 1, 1 }, { 5, 4, 12, 12, 6, 3, 2, 1, 2 }, { 9, 1, 28, 28, 4, 3, 1, 1, 1 },
    };
    int saved = mml_threads_get();
    for (int threads = 1; threads <= 2; threads++)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) check_batched_conv(cfg[c], threads);
    mml_threads_set(saved);
}

/* conv with a fused ReLU is conv then mml_relu: same output, same gradients. */
TEST(conv2d_fused_relu_equals_conv_then_relu)
{
    mml_rng r;
    mml_rng_seed(&r, 3);
    mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ 5, 4, 9, 9 }, true);
    mml_tensor *w = mml_tensor_create(MML_F32, 4, (int64_t[]){ 6, 2, 3, 3 }, true);
    mml_tensor *b = mml_tensor_create(MML_F32, 1, (int64_t[]){ 6 }, true);
    fill_normal(x, &r);
    fill_normal(w, &r);
    fill_normal(b, &r);
    mml_conv_args a = mml_conv_args_default();
    a.padding[0] = a.padding[1] = 1;
    a.groups = 2;
    float *grads[2][3];
    mml_tensor *outs[2] = { NULL, NULL };
    mml_ctx *ctx[2] = { mml_ctx_create(), mml_ctx_create() };
    for (int fused = 0; fused < 2; fused++) {
        mml_tensor *t[3] = { x, w, b };
        for (int k = 0; k < 3; k++) memset(t[k]->grad, 0, (size_t)t[k]->numel * sizeof(float));
        a.relu = fused;
        mml_tensor *y = mml_conv2d(ctx[fused], x, w, b, &a);
        if (!fused) y = mml_relu(ctx[fused], y);
        CHECK(y != NULL);
        if (!y) break;
        tst_backward_grads(ctx[fused], y, 9, t, 3, grads[fused]);
        outs[fused] = y;
    }
    if (outs[0] && outs[1]) {
        CHECK_CLOSE("fused output", mml_f32(outs[1]), mml_f32(outs[0]), outs[0]->numel, 0, 0);
        CHECK_CLOSE("fused dx", grads[1][0], grads[0][0], x->numel, 1e-6, 1e-6);
        CHECK_CLOSE("fused dw", grads[1][1], grads[0][1], w->numel, 1e-5, 1e-5);
        CHECK_CLOSE("fused db", grads[1][2], grads[0][2], b->numel, 1e-5, 1e-5);
        for (int f = 0; f < 2; f++)
            for (int k = 0; k < 3; k++) mml_free(grads[f][k]);
    }
    a.relu = true;
    mml_tensor *wt = mml_tensor_create(MML_F32, 4, (int64_t[]){ 4, 3, 3, 3 }, false);
    CHECK(mml_conv_transpose2d(ctx[0], x, wt, NULL, &a) == NULL); /* not for transposed convs */
    mml_tensor_free(wt);
    for (int f = 0; f < 2; f++) mml_ctx_free(ctx[f]);
    mml_tensor_free(x);
    mml_tensor_free(w);
    mml_tensor_free(b);
}

/* conv2d [+ ReLU] then 2 x 2 max pooling in one op: the values and gradients
 * of conv [+ ReLU] then mml_max_pool2d, bit for bit, with ties (small
 * integers make many; and windows all <= 0 under the ReLU), odd outputs
 * (9 x 9: the last row and column dropped), several chunks of samples, and
 * one or two threads; without gradients too. */
static void check_fused_pool(const int64_t q[6], bool relu, int threads)
{
    mml_rng r;
    mml_rng_seed(&r, 17);
    int64_t N = q[0], C = q[1], H = q[2], W = q[3], O = q[4];
    mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ N, C, H, W }, true);
    mml_tensor *w = mml_tensor_create(MML_F32, 4, (int64_t[]){ O, C, q[5], q[5] }, true);
    mml_tensor *b = mml_tensor_create(MML_F32, 1, (int64_t[]){ O }, true);
    mml_tensor *t[3] = { x, w, b };
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < t[k]->numel; i++) mml_f32(t[k])[i] = (float)((int)mml_rng_below(&r, 5) - 2);
    mml_conv_args a = mml_conv_args_default();
    a.padding[0] = a.padding[1] = (int)(q[5] / 2);
    a.relu = relu;
    mml_threads_set(threads);
    float *grads[2][3], *evals[2];
    mml_tensor *outs[2] = { NULL, NULL };
    mml_ctx *ctx[2] = { mml_ctx_create(), mml_ctx_create() };
    for (int f = 0; f < 2; f++) {
        for (int k = 0; k < 3; k++) memset(t[k]->grad, 0, (size_t)t[k]->numel * sizeof(float));
        for (int grad = 0; grad < 2; grad++) {
            bool was = mml_set_grad_enabled(ctx[f], grad);
            a.max_pool2x2 = f;
            mml_tensor *y = mml_conv2d(ctx[f], x, w, b, &a);
            if (!f) y = mml_max_pool2d(ctx[f], y, (int[]){ 2, 2 }, NULL, NULL);
            mml_set_grad_enabled(ctx[f], was);
            CHECK(y && y->shape[2] == H / 2 && y->shape[3] == W / 2);
            if (!y) return;
            if (grad) tst_backward_grads(ctx[f], y, 9, t, 3, grads[f]);
            else if ((evals[f] = mml_malloc((size_t)y->numel * sizeof(float))))
                memcpy(evals[f], y->data, (size_t)y->numel * sizeof(float));
            outs[f] = y;
        }
    }
    int64_t zero = 0; /* pooled ReLU outputs of 0: their gradient must stop there */
    for (int64_t i = 0; i < outs[1]->numel; i++) zero += mml_f32(outs[1])[i] == 0.0f;
    CHECK(!relu || zero > outs[1]->numel / 20);
    const char *what[3] = { "dx", "dw", "db" };
    CHECK_CLOSE("pooled output", mml_f32(outs[1]), mml_f32(outs[0]), outs[0]->numel, 0, 0);
    CHECK_CLOSE("pooled output without gradients", evals[1], evals[0], outs[0]->numel, 0, 0);
    for (int k = 0; k < 3; k++) CHECK_CLOSE(what[k], grads[1][k], grads[0][k], t[k]->numel, 0, 0);
    for (int f = 0; f < 2; f++) {
        for (int k = 0; k < 3; k++) mml_free(grads[f][k]);
        mml_free(evals[f]);
        mml_ctx_free(ctx[f]);
    }
    for (int k = 0; k < 3; k++) mml_tensor_free(t[k]);
}

TEST(conv2d_fused_pooling_equals_conv_then_max_pool)
{
    static const int64_t cfg[][6] = { { 5, 4, 9, 9, 6, 3 }, { 9, 1, 28, 28, 4, 3 }, { 3, 2, 12, 10, 5, 5 },
                                      { 8, 8, 16, 16, 8, 5 } /* Winograd */ };
    int saved = mml_threads_get();
    for (int threads = 1; threads <= 2; threads++)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
            for (int relu = 0; relu < 2; relu++) check_fused_pool(cfg[c], relu, threads);
    mml_threads_set(saved);
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *x = mml_zeros(ctx, MML_F32, 4, (int64_t[]){ 1, 1, 3, 1 });
    mml_tensor *w = mml_zeros(ctx, MML_F32, 4, (int64_t[]){ 2, 1, 1, 1 });
    mml_conv_args a = mml_conv_args_default();
    a.max_pool2x2 = true;
    CHECK(mml_conv2d(ctx, x, w, NULL, &a) == NULL && strstr(mml_last_error(), "2 x 2")); /* a 3 x 1 output */
    mml_ctx_free(ctx);
}

/* torch's max pooling: a NaN in a window wins (and its gradient goes there),
 * equal values keep the first. Both tiled kernels: 2 x 2 and 1 x 2. */
TEST(max_pool_nan_wins_and_ties_keep_the_first)
{
    static const float in[8] = { 1, 1, NAN, 0, 0, 1, 5, 6 }; /* one 2 x 4 plane */
    static const int kernels[2][2] = { { 2, 2 }, { 1, 2 } };
    /* 2 x 2: windows {1,1,0,1} -> 1 at index 0, {nan,0,5,6} -> nan at 2;
     * 1 x 2: {1,1} -> 0, {nan,0} -> 2, {0,1} -> 5, {5,6} -> 7 */
    static const int64_t argmax[2][4] = { { 0, 2 }, { 0, 2, 5, 7 } };
    for (int k = 0; k < 2; k++) {
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ 1, 1, 2, 4 }, true);
        memcpy(mml_f32(x), in, sizeof in);
        mml_tensor *y = mml_max_pool2d(ctx, x, kernels[k], NULL, NULL);
        CHECK(y != NULL);
        int64_t n = y ? y->numel : 0;
        CHECK(n == (k ? 4 : 2));
        float ones[4] = { 1, 1, 1, 1 };
        if (y) CHECK_OK(mml_backward_seeded(ctx, y, ones));
        for (int64_t o = 0; o < n; o++) {
            float want = in[argmax[k][o]];
            CHECK(isnan(want) ? isnan(mml_f32(y)[o]) : mml_f32(y)[o] == want);
        }
        for (int64_t i = 0; y && i < 8; i++) {
            bool chosen = false;
            for (int64_t o = 0; o < n; o++) chosen |= argmax[k][o] == i;
            CHECK(x->grad[i] == (chosen ? 1.0f : 0.0f));
        }
        mml_ctx_free(ctx);
        mml_tensor_free(x);
    }
}

/* The window maximum as torch picks it (the first of equal values, the last NaN). */
static int64_t window_argmax(const float *plane, int64_t W, int64_t oy, int64_t ox)
{
    int64_t best = 2 * oy * W + 2 * ox;
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 2; j++) {
            int64_t at = (2 * oy + i) * W + 2 * ox + j;
            if (plane[at] > plane[best] || isnan(plane[at])) best = at;
        }
    return best;
}

/* 2 x 2 backward finds each window's maximum again instead of saving it: the
 * gradient goes where forward took the value from, for planes every input is
 * in a window of (written) and odd ones (added to), on its own and added to
 * another use of the same input. */
TEST(max_pool_2x2_gradient_goes_to_the_window_maximum)
{
    static const int64_t dims[2][2] = { { 8, 10 }, { 7, 9 } };
    mml_rng r;
    mml_rng_seed(&r, 5);
    for (int d = 0; d < 2; d++) {
        int64_t H = dims[d][0], W = dims[d][1], OH = H / 2, OW = W / 2;
        mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ 2, 3, H, W }, true);
        for (int64_t i = 0; i < x->numel; i++) mml_f32(x)[i] = i % 23 == 0 ? NAN : (float)((int)mml_rng_below(&r, 5) - 2);
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *h = mml_add_scalar(ctx, x, 0.0f); /* an intermediate: its gradient starts new */
        mml_tensor *y = mml_add(ctx, mml_max_pool2d(ctx, h, (int[]){ 2, 2 }, NULL, NULL),
                                mml_max_pool2d(ctx, h, (int[]){ 2, 2 }, NULL, NULL));
        float gy[2 * 3 * 5 * 5];
        for (int64_t o = 0; o < 6 * OH * OW; o++) gy[o] = (float)(o % 7) + 0.5f;
        CHECK(y && y->numel == 6 * OH * OW);
        if (y) CHECK_OK(mml_backward_seeded(ctx, y, gy));
        static float want[2 * 3 * 8 * 10];
        memset(want, 0, sizeof want);
        for (int64_t c = 0; c < 6; c++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++)
                    want[c * H * W + window_argmax(mml_f32(x) + c * H * W, W, oy, ox)] += 2 * gy[(c * OH + oy) * OW + ox];
        CHECK(x->grad && !memcmp(x->grad, want, (size_t)x->numel * sizeof(float)));
        mml_ctx_free(ctx);
        mml_tensor_free(x);
    }
}

enum { POOL_OUT_MAX = 2 * 3 * 13 * 13 };

/* Arena bytes one max pooling takes (0 if it fails), and its output copied into y. */
static size_t pool_bytes(mml_ctx *ctx, mml_tensor *x, const int k[2], const int s[2], const int p[2], float *y)
{
    mml_ctx_reset(ctx);
    size_t before = mml_arena_used(ctx);
    mml_tensor *out = mml_max_pool2d(ctx, x, k, s, p);
    if (!out || out->numel > POOL_OUT_MAX) return 0;
    memcpy(y, out->data, (size_t)out->numel * sizeof(float));
    return mml_arena_used(ctx) - before;
}

TEST(max_pool_keeps_no_argmax_without_gradient)
{
    /* 2 x 2 (the vectorised rows), 3 x 3 tiles, and padded overlapping windows */
    static const int k[3][2] = { { 2, 2 }, { 3, 3 }, { 3, 2 } }, st[3][2] = { { 2, 2 }, { 3, 3 }, { 1, 1 } },
                     pad[3][2] = { { 0, 0 }, { 0, 0 }, { 1, 1 } };
    mml_rng r;
    mml_rng_seed(&r, 11);
    mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ 2, 3, 12, 12 }, true);
    for (int64_t i = 0; i < x->numel; i++) /* ties and NaNs as well */
        mml_f32(x)[i] = i % 37 == 0 ? NAN : (float)((int)mml_rng_below(&r, 9) - 4);
    static float with[POOL_OUT_MAX], without[POOL_OUT_MAX];
    mml_ctx *ctx = mml_ctx_create();
    for (int c = 0; c < 3; c++) {
        size_t grad_bytes = pool_bytes(ctx, x, k[c], st[c], pad[c], with);
        bool was = mml_set_grad_enabled(ctx, false);
        size_t eval_bytes = pool_bytes(ctx, x, k[c], st[c], pad[c], without);
        mml_set_grad_enabled(ctx, was);
        int64_t oh = (12 + 2 * pad[c][0] - k[c][0]) / st[c][0] + 1, ow = (12 + 2 * pad[c][1] - k[c][1]) / st[c][1] + 1;
        size_t n = (size_t)(2 * 3 * oh * ow), argmax = c == 0 ? 0 : n * sizeof(int32_t); /* 2 x 2 finds it again */
        CHECK_MSG(grad_bytes >= eval_bytes + argmax && grad_bytes < eval_bytes + argmax + 256,
                  "case %d: %zu bytes with a gradient, %zu without", c, grad_bytes, eval_bytes);
        CHECK_MSG(!memcmp(with, without, n * sizeof(float)), "case %d: outputs differ without a gradient", c);
    }
    mml_ctx_free(ctx);
    mml_tensor_free(x);
}

TEST(conv_and_pool_shape_errors_name_the_op)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *x = mml_zeros(ctx, MML_F32, 4, (int64_t[]){ 1, 3, 4, 4 });
    mml_tensor *w = mml_zeros(ctx, MML_F32, 4, (int64_t[]){ 4, 2, 3, 3 });
    mml_conv_args a = mml_conv_args_default();
    a.groups = 2;
    CHECK(mml_conv2d(ctx, x, w, NULL, &a) == NULL);
    CHECK_MSG(strstr(mml_last_error(), "conv2d: input has 3 channels"), "%s", mml_last_error());
    mml_tensor *big = mml_zeros(ctx, MML_F32, 4, (int64_t[]){ 1, 3, 7, 7 });
    CHECK(mml_conv2d(ctx, x, big, NULL, NULL) == NULL && strstr(mml_last_error(), "conv2d"));
    mml_tensor *w5 = mml_zeros(ctx, MML_F32, 4, (int64_t[]){ 2, 3, 5, 5 });
    CHECK(mml_conv2d(ctx, x, w5, NULL, NULL) == NULL && strstr(mml_last_error(), "kernel larger"));
    CHECK(mml_max_pool2d(ctx, x, (int[]){ 5, 5 }, NULL, NULL) == NULL && strstr(mml_last_error(), "max_pool2d"));
    mml_set_training(ctx, false);
    CHECK(mml_batch_norm(ctx, x, NULL, NULL, NULL, NULL, 0.1f, 1e-5f) == NULL &&
          strstr(mml_last_error(), "running statistics"));
    mml_ctx_free(ctx);
}

/* im2col and col2im against their definitions, element by element, on
 * geometries of both paths: "same" padding with stride 1 (the flat path,
 * with dilation and a single image row too) and strided ones. */
TEST(im2col_and_col2im_match_their_definition)
{
    static const int cfg[][8] = { /* C H W k stride pad dilation kh */
        { 2, 7, 7, 3, 1, 1, 1, 3 }, { 1, 9, 6, 3, 1, 2, 2, 3 }, { 3, 6, 8, 5, 1, 2, 1, 5 },
        { 2, 1, 10, 3, 1, 1, 1, 1 }, { 2, 7, 9, 3, 2, 1, 1, 3 }, { 1, 5, 5, 3, 1, 0, 1, 3 },
    };
    mml_rng r;
    mml_rng_seed(&r, 8);
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        const int *q = cfg[c];
        int64_t C = q[0], H = q[1], W = q[2], kh = q[7], kw = q[3];
        mml_conv_geom g = { .N = 1, .C = C, .H = H, .W = W, .kh = kh, .kw = kw, .sh = q[4], .sw = q[4],
                            .ph = kh > 1 ? q[5] : 0, .pw = q[5], .dh = q[6], .dw = q[6], .groups = 1 };
        int64_t OH = (H + 2 * g.ph - g.dh * (kh - 1) - 1) / g.sh + 1, OW = (W + 2 * g.pw - g.dw * (kw - 1) - 1) / g.sw + 1;
        int64_t K = C * kh * kw, ld = OH * OW + 3, n = K * ld;
        float *img = mml_malloc((size_t)(C * H * W) * sizeof(float)), *col = mml_malloc((size_t)n * sizeof(float));
        float *want = mml_calloc((size_t)(C * H * W), sizeof(float)), *got = mml_calloc((size_t)(C * H * W), sizeof(float));
        float *src = mml_malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < C * H * W; i++) img[i] = mml_rng_normal(&r);
        for (int64_t i = 0; i < n; i++) src[i] = mml_rng_normal(&r);
        mml_im2col(img, C, H, W, &g, OH, OW, col, ld);
        int bad = 0;
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++)
                    for (int64_t oy = 0; oy < OH; oy++)
                        for (int64_t ox = 0; ox < OW; ox++) {
                            int64_t y = oy * g.sh - g.ph + i * g.dh, x = ox * g.sw - g.pw + j * g.dw;
                            bool in = y >= 0 && y < H && x >= 0 && x < W;
                            int64_t at = ((ch * kh + i) * kw + j) * ld + oy * OW + ox;
                            bad += col[at] != (in ? img[(ch * H + y) * W + x] : 0.0f);
                            if (in) want[(ch * H + y) * W + x] += src[at];
                        }
        CHECK_MSG(bad == 0, "im2col config %zu: %d values differ", c, bad);
        mml_col2im(src, ld, C, H, W, &g, OH, OW, got);
        CHECK_CLOSE("col2im", got, want, C * H * W, 1e-6, 1e-6);
        mml_free(img);
        mml_free(col);
        mml_free(want);
        mml_free(got);
        mml_free(src);
    }
}
