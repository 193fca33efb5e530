#include <stdbool.h>
#include <string.h>

#include "core/kernels/conv.h"

/* The output columns ox whose input column ox * s + x0 lies in [0, W). */
static void valid_cols(int64_t x0, int64_t s, int64_t W, int64_t OW, int64_t *lo, int64_t *hi)
{
    int64_t l = x0 < 0 ? (-x0 + s - 1) / s : 0, h = x0 > W - 1 ? 0 : (W - 1 - x0) / s + 1;
    *lo = l < OW ? l : OW;
    *hi = h < OW ? h : OW;
    if (*hi < *lo) *hi = *lo;
}

/* Rows of an image are short (14 or 28 values in the usual CNNs): a libc
 * memcpy call or a vector loop's scalar tail would cost more than the copy.
 * Blocks of eight with constant trip counts compile to vector moves; a copy
 * lets the last block overlap, an accumulation steps down to four and one. */
static inline void copy_row(float *restrict dst, const float *restrict src, int64_t n)
{
    if (n < 8) {
        for (int64_t i = 0; i < n; i++) dst[i] = src[i];
        return;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) dst[i + k] = src[i + k];
    if (i < n)
        for (int k = 0; k < 8; k++) dst[n - 8 + k] = src[n - 8 + k];
}

static inline void add_row(float *restrict dst, const float *restrict src, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) dst[i + k] += src[i + k];
    if (i + 4 <= n) {
        for (int k = 0; k < 4; k++) dst[i + k] += src[i + k];
        i += 4;
    }
    for (; i < n; i++) dst[i] += src[i];
}

/* Stride 1 and OW == W ("same" padding, the usual case): a patch row is the
 * image plane shifted by dy rows and x0 columns, so its valid rows are one
 * flat run, dst[f] = plane[f + dy * W + x0] from (y_lo, lo) to (y_hi - 1, hi),
 * whose values at pad columns come from the neighbouring image row and are
 * set to zero after (im2col) or before, in col (col2im): one long copy per
 * patch row instead of one short one per output row. */
typedef struct flat_run {
    int64_t y_lo, y_hi, first, end, shift;
} flat_run;

static bool flat_applies(const mml_conv_geom *g, int64_t W, int64_t OW) { return g->sh == 1 && g->sw == 1 && OW == W; }

static flat_run flat_run_of(int64_t H, int64_t W, int64_t OH, int64_t dy, int64_t x0, int64_t lo, int64_t hi)
{
    flat_run r = { .y_lo = dy < 0 ? -dy : 0, .y_hi = H - dy < OH ? H - dy : OH, .shift = dy * W + x0 };
    if (r.y_hi < r.y_lo || lo >= hi) r.y_hi = r.y_lo; /* nothing valid */
    r.first = r.y_lo * W + lo;
    r.end = r.y_hi > r.y_lo ? (r.y_hi - 1) * W + hi : r.first;
    return r;
}

/* A row or two of zeros: inline, as copy_row, not a libc call. */
static inline void zero_row(float *dst, int64_t n)
{
    if (n < 8) {
        for (int64_t i = 0; i < n; i++) dst[i] = 0.0f;
        return;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) dst[i + k] = 0.0f;
    if (i < n)
        for (int k = 0; k < 8; k++) dst[n - 8 + k] = 0.0f;
}

/* Zeroes the pad columns of the valid rows and every value of the others. */
static void zero_outside(float *dst, const flat_run *r, int64_t OH, int64_t W, int64_t lo, int64_t hi)
{
    zero_row(dst, r->y_lo * W);
    for (int64_t oy = r->y_lo; oy < r->y_hi; oy++) {
        for (int64_t ox = 0; ox < lo; ox++) dst[oy * W + ox] = 0.0f;
        for (int64_t ox = hi; ox < W; ox++) dst[oy * W + ox] = 0.0f;
    }
    zero_row(dst + r->y_hi * W, (OH - r->y_hi) * W);
}

static void im2col_flat(const float *plane, int64_t H, int64_t W, int64_t OH, int64_t dy, int64_t x0, int64_t lo,
                        int64_t hi, float *dst)
{
    flat_run r = flat_run_of(H, W, OH, dy, x0, lo, hi);
    copy_row(dst + r.first, plane + r.first + r.shift, r.end - r.first);
    zero_outside(dst, &r, OH, W, lo, hi);
}

static void col2im_flat(float *src, int64_t H, int64_t W, int64_t OH, int64_t dy, int64_t x0, int64_t lo, int64_t hi,
                        float *plane)
{
    flat_run r = flat_run_of(H, W, OH, dy, x0, lo, hi);
    zero_outside(src, &r, OH, W, lo, hi); /* the run's pad values then add nothing */
    add_row(plane + r.first + r.shift, src + r.first, r.end - r.first);
}

void mml_im2col(const float *img, int64_t C, int64_t H, int64_t W, const mml_conv_geom *g, int64_t OH,
                int64_t OW, float *col, int64_t ld)
{
    mml_im2col_rows(img, 0, C * g->kh * g->kw, H, W, g, OH, OW, col, ld);
}

void mml_im2col_rows(const float *img, int64_t k0, int64_t k1, int64_t H, int64_t W, const mml_conv_geom *g,
                     int64_t OH, int64_t OW, float *col, int64_t ld)
{
    bool flat = flat_applies(g, W, OW);
    for (int64_t k = k0; k < k1; k++) {
        int64_t c = k / (g->kh * g->kw), i = k / g->kw % g->kh, j = k % g->kw;
        float *row = col + k * ld;
        int64_t x0 = j * g->dw - g->pw, lo, hi;
        valid_cols(x0, g->sw, W, OW, &lo, &hi);
        if (flat) {
            im2col_flat(img + c * H * W, H, W, OH, i * g->dh - g->ph, x0, lo, hi, row);
            continue;
        }
        for (int64_t oy = 0; oy < OH; oy++) {
            int64_t y = oy * g->sh - g->ph + i * g->dh;
            float *dst = row + oy * OW;
            if (y < 0 || y >= H) {
                memset(dst, 0, (size_t)OW * sizeof(float));
                continue;
            }
            const float *src = img + (c * H + y) * W; /* column ox reads src[ox * sw + x0] */
            for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f; /* a pad column or two: no call */
            if (g->sw == 1) copy_row(dst + lo, src + lo + x0, hi - lo);
            else
                for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * g->sw + x0];
            for (int64_t ox = hi; ox < OW; ox++) dst[ox] = 0.0f;
        }
    }
}

void mml_col2im(float *col, int64_t ld, int64_t C, int64_t H, int64_t W, const mml_conv_geom *g, int64_t OH,
                int64_t OW, float *img)
{
    bool flat = flat_applies(g, W, OW);
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                float *row = col + ((c * g->kh + i) * g->kw + j) * ld;
                int64_t x0 = j * g->dw - g->pw, lo, hi;
                valid_cols(x0, g->sw, W, OW, &lo, &hi);
                if (flat) {
                    col2im_flat(row, H, W, OH, i * g->dh - g->ph, x0, lo, hi, img + c * H * W);
                    continue;
                }
                for (int64_t oy = 0; oy < OH; oy++) {
                    int64_t y = oy * g->sh - g->ph + i * g->dh;
                    if (y < 0 || y >= H) continue;
                    float *restrict dst = img + (c * H + y) * W;
                    const float *restrict src = row + oy * OW;
                    if (g->sw == 1) add_row(dst + lo + x0, src + lo, hi - lo);
                    else
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox * g->sw + x0] += src[ox];
                }
            }
}

/* ---- 2 x 2 max pooling, stride 2 ---- */

static inline void pool_2x2_one(const float *restrict r0, const float *restrict r1, float *restrict y,
                                int32_t *restrict arg, int64_t x)
{
    int32_t k;
    y[x] = mml_max_2x2(r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1], &k);
    if (arg) arg[x] = k;
}

/* Eight outputs with a constant trip count: one vector pass. */
#define POOL_LANES 8
static inline void pool_2x2_block(const float *restrict r0, const float *restrict r1, float *restrict y,
                                  int32_t *restrict arg, int64_t x0)
{
    for (int k = 0; k < POOL_LANES; k++) pool_2x2_one(r0, r1, y, arg, x0 + k);
}

/* Rows of 14 or 7 outputs are shorter than a vectorised loop's main body, so
 * a row is whole blocks of eight, the last one overlapping its predecessor
 * (rewriting the same values), rather than a vector body and a scalar tail. */
static inline void pool_2x2_blocks(const float *restrict r0, const float *restrict r1, float *restrict y,
                                   int32_t *restrict arg, int64_t n)
{
    if (n < POOL_LANES) {
        for (int64_t x = 0; x < n; x++) pool_2x2_one(r0, r1, y, arg, x);
        return;
    }
    int64_t x = 0;
    for (; x + POOL_LANES <= n; x += POOL_LANES) pool_2x2_block(r0, r1, y, arg, x);
    if (x < n) pool_2x2_block(r0, r1, y, arg, n - POOL_LANES);
}

void mml_max_pool_2x2_row(const float *r0, const float *r1, float *y, int32_t *arg, int64_t n)
{
    /* One copy of the loops per case: with a literal NULL the choice folds away. */
    if (arg) pool_2x2_blocks(r0, r1, y, arg, n);
    else pool_2x2_blocks(r0, r1, y, NULL, n);
}

void mml_conv2d_ref(const float *x, const float *w, const float *b, const mml_conv_geom *g, float *y)
{
    int64_t Cg = g->C / g->groups, Og = g->O / g->groups;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->O; o++) {
            int64_t gi = o / Og;
            for (int64_t oy = 0; oy < g->OH; oy++)
                for (int64_t ox = 0; ox < g->OW; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t i = 0; i < g->kh; i++)
                            for (int64_t j = 0; j < g->kw; j++) {
                                int64_t yy = oy * g->sh - g->ph + i * g->dh, xx = ox * g->sw - g->pw + j * g->dw;
                                if (yy < 0 || yy >= g->H || xx < 0 || xx >= g->W) continue;
                                acc += (double)x[((n * g->C + gi * Cg + c) * g->H + yy) * g->W + xx] *
                                       w[((o * Cg + c) * g->kh + i) * g->kw + j];
                            }
                    y[((n * g->O + o) * g->OH + oy) * g->OW + ox] = (float)acc;
                }
        }
}
