/* Winograd tile transforms (see winograd.h). The matrices are built once from
 * the Toom-Cook construction on the points 0, 1, -1, 2, -2 and infinity: with
 * V(n) the 6 x n evaluation matrix at those points (the infinity row picks the
 * leading coefficient), correlation is the transpose of polynomial product,
 *   F(m, r):  AT = V(m)^T,  G = V(r),  BT = (V(6)^-1)^T,
 * and the weight gradient is F(r, m) on the same points. Each row i of BT is
 * scaled by D_i so its entries are small integers (4, -5, 1, ...), exact in
 * float, and G and GY by 1 / D_i to match.
 *
 * Transforms are separable and vectorised across tiles, never within one: a
 * plane's tiles are first gathered column by column into flat runs, so every
 * step is a linear combination of long contiguous rows. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/kernels/winograd.h"

enum { A = MML_WINO_ALPHA };

static void vandermonde(int n, double V[A][A])
{
    static const double points[A - 1] = { 0, 1, -1, 2, -2 };
    for (int i = 0; i < A; i++)
        for (int k = 0; k < n; k++) V[i][k] = i < A - 1 ? pow(points[i], k) : (k == n - 1);
}

/* Gauss-Jordan with partial pivoting; V(6) is well conditioned. */
static void invert(double a[A][A], double inv[A][A])
{
    for (int i = 0; i < A; i++)
        for (int k = 0; k < A; k++) inv[i][k] = i == k;
    for (int c = 0; c < A; c++) {
        int p = c;
        for (int i = c + 1; i < A; i++)
            if (fabs(a[i][c]) > fabs(a[p][c])) p = i;
        for (int k = 0; k < A; k++) {
            double t = a[c][k]; a[c][k] = a[p][k]; a[p][k] = t;
            t = inv[c][k]; inv[c][k] = inv[p][k]; inv[p][k] = t;
        }
        double d = a[c][c];
        for (int k = 0; k < A; k++) a[c][k] /= d, inv[c][k] /= d;
        for (int i = 0; i < A; i++) {
            double f = a[i][c];
            if (i == c || f == 0) continue;
            for (int k = 0; k < A; k++) a[i][k] -= f * a[c][k], inv[i][k] -= f * inv[c][k];
        }
    }
}

/* Rounding noise of the inverse to exact zeros, so transforms skip them. */
static float clean(double v) { return fabs(v) < 1e-9 ? 0.0f : (float)v; }

static void build(mml_winograd *wg, int r)
{
    int m = A + 1 - r;
    double V6[A][A], C[A][A], Vm[A][A], Vr[A][A];
    vandermonde(A, V6);
    invert(V6, C);
    vandermonde(m, Vm);
    vandermonde(r, Vr);
    wg->m = m, wg->r = r;
    for (int i = 0; i < A; i++) {
        double small = 0;
        for (int k = 0; k < A; k++) {
            double v = fabs(C[k][i]);
            if (v > 1e-9 && (small == 0 || v < small)) small = v;
        }
        double D = 1 / small;
        for (int k = 0; k < A; k++) wg->BT[i][k] = clean(C[k][i] * D);
        for (int k = 0; k < r; k++) wg->G[i][k] = clean(Vr[i][k] / D), wg->VR[i][k] = clean(Vr[i][k]);
        for (int k = 0; k < m; k++) wg->GY[i][k] = clean(Vm[i][k] / D), wg->AT[k][i] = clean(Vm[i][k]);
    }
}

static mml_winograd g_f4x3, g_f2x5;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void build_all(void) { build(&g_f4x3, 3), build(&g_f2x5, 5); }

const mml_winograd *mml_winograd_for(int r)
{
    if (r != 3 && r != 5) return NULL;
    pthread_once(&g_once, build_all);
    return r == 3 ? &g_f4x3 : &g_f2x5;
}

#define MIN_CHANNELS 8 /* fewer: the transforms cost more than they save */
#define MIN_TILES 32   /* fewer: 36 products this narrow cost more in calls than they save */
/* A lone sample (batch-1 inference): its products are small enough for the
 * GEMM to read in place, so a vector's width of tiles is enough. */
#define MIN_TILES_LONE 16

const mml_winograd *mml_winograd_for_conv(const mml_conv_geom *g)
{
    bool plain = g->groups == 1 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1;
    if (!plain || g->kh != g->kw || g->ph >= g->kh || g->pw >= g->kw) return NULL;
    if (g->C < MIN_CHANNELS || g->O < MIN_CHANNELS) return NULL;
    const mml_winograd *wg = mml_winograd_for((int)g->kh);
    if (!wg) return NULL;
    int64_t m = wg->m, grid = ((g->OH + m - 1) / m) * ((g->OW + m - 1) / m);
    /* Partial tiles compute outputs past the edge: 14 x 14 in 4 x 4 tiles is
     * 16 x 16, 31% more products, which loses to im2col in a batch; a lone
     * sample gains while the products are at most half of im2col's (14 x 14:
     * a third). */
    bool tight = grid * m * m * 8 <= g->OH * g->OW * 9;
    bool lone = g->N == 1 && grid >= MIN_TILES_LONE && grid * A * 2 <= g->OH * g->OW * g->kh * g->kw;
    return (tight && g->N * grid >= MIN_TILES) || lone ? wg : NULL;
}

/* ---- linear combinations of rows: the transforms not written out below ---- */

/* Restrict on local copies of row pointers does not convince GCC, which then
 * gives up on vectorising (runtime alias checks for 12 rows); clang does it. */
#if defined(__GNUC__) && !defined(__clang__)
#define IVDEP _Pragma("GCC ivdep")
#else
#define IVDEP
#endif

/* a * b + c, fused where the target has FMA */
#ifdef __FMA__
#define MADD(a, b, c) __builtin_fmaf(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* The rows of one combination and their nonzero coefficients. */
typedef struct taps {
    const float *rows[A];
    float c[A];
    int n;
} taps;

static void tap(taps *t, float c, const float *row)
{
    if (c == 0.0f) return;
    t->rows[t->n] = row, t->c[t->n] = c, t->n++;
}

/* d[t] = sum over q < rows of c[q] * s[q][t], for t < n: one pass, the sum in
 * a register. Inlined with rows constant, so each count is a plain vector loop. */
static inline __attribute__((always_inline)) void lincomb_k(float *restrict d, const float *const *s, const float *c,
                                                            int rows, int64_t n)
{
    const float *restrict s0 = s[0], *restrict s1 = s[rows > 1 ? 1 : 0], *restrict s2 = s[rows > 2 ? 2 : 0];
    const float *restrict s3 = s[rows > 3 ? 3 : 0], *restrict s4 = s[rows > 4 ? 4 : 0], *restrict s5 = s[rows > 5 ? 5 : 0];
    float c0 = c[0], c1 = rows > 1 ? c[1] : 0, c2 = rows > 2 ? c[2] : 0, c3 = rows > 3 ? c[3] : 0;
    float c4 = rows > 4 ? c[4] : 0, c5 = rows > 5 ? c[5] : 0;
    for (int64_t t = 0; t < n; t++) {
        float v = c0 * s0[t];
        if (rows > 1) v = MADD(c1, s1[t], v);
        if (rows > 2) v = MADD(c2, s2[t], v);
        if (rows > 3) v = MADD(c3, s3[t], v);
        if (rows > 4) v = MADD(c4, s4[t], v);
        if (rows > 5) v = MADD(c5, s5[t], v);
        d[t] = v;
    }
}

/* d[t] = the combination t of rows at t, for t < n. */
static void lincomb(float *d, const taps *t, int64_t n)
{
    switch (t->n) {
    case 1: lincomb_k(d, t->rows, t->c, 1, n); break;
    case 2: lincomb_k(d, t->rows, t->c, 2, n); break;
    case 3: lincomb_k(d, t->rows, t->c, 3, n); break;
    case 4: lincomb_k(d, t->rows, t->c, 4, n); break;
    case 5: lincomb_k(d, t->rows, t->c, 5, n); break;
    case 6: lincomb_k(d, t->rows, t->c, 6, n); break;
    }
}

/* ---- the tile transforms in shared-term form ----
 * The points 0, 1, -1, 2, -2 pair up, so the transforms of 6 rows share
 * sums and differences (Lavin's form: 12 operations for BT's 22 products).
 * BT (the same for both kernel sizes) and AT are derived in build(); tests
 * hold these to them. */

/* out[i] = sum over k of BT[i][k] in[k], BT =
 *   4  0 -5  0  1  0
 *   0  4  4 -1 -1  0
 *   0 -4  4  1 -1  0
 *   0 -2 -1  2  1  0
 *   0  2 -1 -2  1  0
 *   0  4  0 -5  0  1 */
static void bt_rows(const float *const in[A], float *const out[A], int64_t n)
{
    const float *restrict d0 = in[0], *restrict d1 = in[1], *restrict d2 = in[2];
    const float *restrict d3 = in[3], *restrict d4 = in[4], *restrict d5 = in[5];
    float *restrict o0 = out[0], *restrict o1 = out[1], *restrict o2 = out[2];
    float *restrict o3 = out[3], *restrict o4 = out[4], *restrict o5 = out[5];
    IVDEP
    for (int64_t t = 0; t < n; t++) {
        float x1 = d1[t], x2 = d2[t], x3 = d3[t], x4 = d4[t];
        float a = MADD(4.0f, x2, -x4), b = MADD(4.0f, x1, -x3), c = x4 - x2, e = x3 - x1;
        o0[t] = MADD(4.0f, d0[t], MADD(-5.0f, x2, x4));
        o1[t] = a + b;
        o2[t] = a - b;
        o3[t] = MADD(2.0f, e, c);
        o4[t] = MADD(-2.0f, e, c);
        o5[t] = MADD(4.0f, x1, MADD(-5.0f, x3, d5[t]));
    }
}

/* out[a] = sum over k of AT[a][k] in[k] for a < m: row a holds the points'
 * a-th powers, and infinity's 1 in the last row. Inlined with m constant. */
static inline __attribute__((always_inline)) void at_rows_m(const float *const in[A], float *const out[4], int m,
                                                            int64_t n)
{
    const float *restrict d0 = in[0], *restrict d1 = in[1], *restrict d2 = in[2];
    const float *restrict d3 = in[3], *restrict d4 = in[4], *restrict d5 = in[5];
    float *restrict o0 = out[0], *restrict o1 = out[1], *restrict o2 = out[2], *restrict o3 = out[3];
    IVDEP
    for (int64_t t = 0; t < n; t++) {
        float s12 = d1[t] + d2[t], d12 = d1[t] - d2[t], s34 = d3[t] + d4[t], d34 = d3[t] - d4[t];
        o0[t] = d0[t] + s12 + s34;
        if (m == 2) {
            o1[t] = MADD(2.0f, d34, d12) + d5[t];
            continue;
        }
        o1[t] = MADD(2.0f, d34, d12);
        o2[t] = MADD(4.0f, s34, s12);
        o3[t] = MADD(8.0f, d34, d12) + d5[t];
    }
}

static void at_rows(const float *const in[A], float *const out[4], int m, int64_t n)
{
    if (m == 2) at_rows_m(in, out, 2, n);
    else at_rows_m(in, out, 4, n);
}

/* ---- tiles of planes into their points, and back ---- */

/* Z[kx][qy][ty'][tx] = pp[yy][tx*m + kx] with yy = ty'*m + qy, rows ty' of Z
 * `row` apart, from a padded plane pp [rows, pw]. Inlined with m constant:
 * the stride-m loads vectorise. */
static inline __attribute__((always_inline)) void gather_columns(const float *restrict pp, int64_t pw, int64_t rows,
                                                                 int span, int m, int64_t tw, int64_t row,
                                                                 int64_t run, float *restrict Z)
{
    for (int kx = 0; kx < span; kx++)
        for (int64_t yy = 0; yy < rows; yy++) {
            const float *restrict src = pp + yy * pw + kx;
            float *restrict z = Z + (kx * m + yy % m) * run + yy / m * row;
            for (int64_t tx = 0; tx < tw; tx++) z[tx] = src[tx * m];
        }
}

/* Plane rows yy - py into pp [rows, pw] with px zero columns before them and
 * zeros past the plane. */
static void pad_plane(const float *plane, int64_t H, int64_t W, int64_t py, int64_t px, int64_t rows, int64_t pw,
                      float *pp)
{
    int64_t lo = px < pw ? px : pw, hi = px + W < pw ? px + W : pw;
    for (int64_t yy = 0; yy < rows; yy++) {
        float *d = pp + yy * pw;
        int64_t y = yy - py;
        if (y < 0 || y >= H || hi <= lo) {
            memset(d, 0, (size_t)pw * sizeof(float));
            continue;
        }
        memset(d, 0, (size_t)lo * sizeof(float));
        memcpy(d + lo, plane + y * W, (size_t)(hi - lo) * sizeof(float));
        memset(d + hi, 0, (size_t)(pw - hi) * sizeof(float));
    }
}

/* The span x span tiles (step m) of S planes into their points dst[(i*6 +
 * j)*ld + t]: through BT (input tiles, span 6) or GY (output-gradient tiles,
 * span m): sum over ky, kx of T[i][ky] T[j][kx] d_t[ky][kx]. Each plane is
 * copied with its zero padding into pp [Ty*m, (tw-1)*m + span]; Z gathers
 * column tx*m + kx of every row, rows split by phase, a row of tiles holding
 * all S planes side by side (the tile order): the rows ky of all tiles,
 * ty*m + ky, are then one flat run over (ty, s, tx) at phase ky % m, offset
 * ky / m rows. Columns are combined first, then rows. */
static void tile_points(const mml_winograd *wg, bool input, const float *planes, int64_t stride, int64_t S, int64_t H,
                        int64_t W, int64_t py, int64_t px, int64_t th, int64_t tw, float *dst, int64_t ld,
                        float *scratch)
{
    int m = wg->m, span = input ? A : m;
    int64_t Ty = th + (span - 1) / m, row = S * tw, run = Ty * row, n = th * row, rows = Ty * m;
    int64_t pw = (tw - 1) * m + span;
    float *Z = scratch, *Hc = Z + span * m * run, *pp = Hc + A * m * run; /* Hc [6][m][Ty][S][tw] */
    for (int64_t s = 0; s < S; s++) {
        pad_plane(planes + s * stride, H, W, py, px, rows, pw, pp);
        if (m == 2) gather_columns(pp, pw, rows, span, 2, tw, row, run, Z + s * tw);
        else gather_columns(pp, pw, rows, span, 4, tw, row, run, Z + s * tw);
    }
    if (input) {
        const float *in[A];
        float *out[A];
        for (int k = 0; k < A; k++) in[k] = Z + k * m * run, out[k] = Hc + k * m * run;
        bt_rows(in, out, m * run);
        for (int j = 0; j < A; j++) {
            for (int k = 0; k < A; k++) in[k] = Hc + (j * m + k % m) * run + k / m * row, out[k] = dst + (k * A + j) * ld;
            bt_rows(in, out, n);
        }
        return;
    }
    for (int j = 0; j < A; j++) {
        taps t = { .n = 0 };
        for (int kx = 0; kx < span; kx++) tap(&t, wg->GY[j][kx], Z + kx * m * run);
        lincomb(Hc + j * m * run, &t, m * run);
    }
    for (int i = 0; i < A; i++)
        for (int j = 0; j < A; j++) {
            taps t = { .n = 0 };
            for (int ky = 0; ky < span; ky++) tap(&t, wg->GY[i][ky], Hc + (j * m + ky % m) * run + ky / m * row);
            lincomb(dst + (i * A + j) * ld, &t, n);
        }
}

size_t mml_winograd_scratch(const mml_winograd *wg, int64_t th, int64_t tw, int64_t S)
{
    int64_t m = wg->m, Ty = th + (A - 1) / m;
    int64_t in = 2 * A * m * Ty * S * tw + Ty * m * ((tw - 1) * m + A), out = (A * m + m * m) * th * S * tw;
    return (size_t)(in > out ? in : out);
}

void mml_winograd_input(const mml_winograd *wg, const float *planes, int64_t stride, int64_t S, int64_t H, int64_t W,
                        int64_t py, int64_t px, int64_t th, int64_t tw, float *dst, int64_t ld, float *scratch)
{
    tile_points(wg, true, planes, stride, S, H, W, py, px, th, tw, dst, ld, scratch);
}

void mml_winograd_grad_tiles(const mml_winograd *wg, const float *planes, int64_t stride, int64_t S, int64_t H,
                             int64_t W, int64_t th, int64_t tw, float *dst, int64_t ld, float *scratch)
{
    tile_points(wg, false, planes, stride, S, H, W, 0, 0, th, tw, dst, ld, scratch);
}

/* Output row line [OW] from tiles' column b values y[b * n + tx] (column
 * tx*m + b): whole tiles as m contiguous values, the last one up to OW.
 * Inlined with m constant. */
static inline __attribute__((always_inline)) void put_row(float *restrict line, const float *restrict y, int64_t n,
                                                          int m, int64_t tw, int64_t OW, bool add)
{
    int64_t whole = OW / m < tw ? OW / m : tw;
    for (int64_t tx = 0; tx < whole; tx++)
        for (int b = 0; b < m; b++) {
            float v = y[b * n + tx];
            line[tx * m + b] = add ? line[tx * m + b] + v : v;
        }
    for (int b = 0; whole < tw && whole * m + b < OW; b++) {
        float v = y[b * n + whole];
        line[whole * m + b] = add ? line[whole * m + b] + v : v;
    }
}

void mml_winograd_output(const mml_winograd *wg, const float *src, int64_t ld, int64_t th, int64_t tw, int64_t S,
                         int64_t C, float *planes, int64_t stride, int64_t cstride, int64_t OH, int64_t OW, bool add,
                         float *scratch)
{
    int m = wg->m;
    int64_t T = th * S * tw, n = C * T;
    float *V = scratch, *Y = scratch + A * m * n; /* V [m][6][n] (rows combined), Y [m][m][n] */
    const float *in[A];
    float *out[4];
    for (int j = 0; j < A; j++) {
        for (int k = 0; k < A; k++) in[k] = src + (k * A + j) * ld;
        for (int a = 0; a < m; a++) out[a] = V + (a * A + j) * n;
        at_rows(in, out, m, n);
    }
    for (int a = 0; a < m; a++) {
        for (int k = 0; k < A; k++) in[k] = V + (a * A + k) * n;
        for (int b = 0; b < m; b++) out[b] = Y + (a * m + b) * n;
        at_rows(in, out, m, n);
    }
    for (int64_t c = 0; c < C; c++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t ty = 0; ty < th; ty++)
                for (int a = 0; a < m && ty * m + a < OH; a++) {
                    float *line = planes + c * cstride + s * stride + (ty * m + a) * OW;
                    const float *y = Y + a * m * n + c * T + (ty * S + s) * tw;
                    if (m == 2) put_row(line, y, n, 2, tw, OW, add);
                    else put_row(line, y, n, 4, tw, OW, add);
                }
}

/* Kernels are transformed side by side: the taps of all n kernels as rows
 * (wt [r*r][n]) and every step a combination of those rows. */
static void kernel_points(const mml_winograd *wg, const float *wt, int64_t n, float *dst, float *Gk)
{
    int r = wg->r;
    for (int i = 0; i < A; i++) /* Gk [6][r][n] = G k */
        for (int b = 0; b < r; b++) {
            taps t = { .n = 0 };
            for (int a = 0; a < r; a++) tap(&t, wg->G[i][a], wt + (a * r + b) * n);
            lincomb(Gk + (i * r + b) * n, &t, n);
        }
    for (int i = 0; i < A; i++)
        for (int j = 0; j < A; j++) {
            taps t = { .n = 0 };
            for (int b = 0; b < r; b++) tap(&t, wg->G[j][b], Gk + (i * r + b) * n);
            lincomb(dst + (i * A + j) * n, &t, n);
        }
}

size_t mml_winograd_kernel_scratch(const mml_winograd *wg, int64_t O, int64_t C)
{
    return (size_t)((wg->r * wg->r + A * wg->r) * O * C);
}

void mml_winograd_kernels(const mml_winograd *wg, const float *w, int64_t O, int64_t C, bool data_grad, float *dst,
                          float *scratch)
{
    int64_t rr = wg->r * wg->r, n = O * C;
    float *wt = scratch;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = w + (o * C + c) * rr;
            if (data_grad) /* [c][o], rotated */
                for (int64_t q = 0; q < rr; q++) wt[q * n + c * O + o] = k[rr - 1 - q];
            else
                for (int64_t q = 0; q < rr; q++) wt[q * n + o * C + c] = k[q];
        }
    kernel_points(wg, wt, n, dst, scratch + rr * n);
}

void mml_winograd_kernel_grads(const mml_winograd *wg, const float *src, int64_t O, int64_t C, float *dw,
                               float *scratch)
{
    int r = wg->r;
    int64_t rr = r * r, n = O * C;
    float *Mv = scratch, *g = scratch + A * r * n; /* Mv [6][r][n] = M VR, g [r*r][n] */
    for (int i = 0; i < A; i++)
        for (int b = 0; b < r; b++) {
            taps t = { .n = 0 };
            for (int j = 0; j < A; j++) tap(&t, wg->VR[j][b], src + (i * A + j) * n);
            lincomb(Mv + (i * r + b) * n, &t, n);
        }
    for (int a = 0; a < r; a++)
        for (int b = 0; b < r; b++) {
            taps t = { .n = 0 };
            for (int i = 0; i < A; i++) tap(&t, wg->VR[i][a], Mv + (i * r + b) * n);
            lincomb(g + (a * r + b) * n, &t, n);
        }
    for (int64_t k = 0; k < n; k++)
        for (int64_t q = 0; q < rr; q++) dw[k * rr + q] += g[q * n + k];
}
