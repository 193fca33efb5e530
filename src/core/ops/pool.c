/* Max and average pooling (1-D as H = 1), adaptive average pooling, and
 * bilinear upsampling, NCHW. Max pooling saves the argmax of each window when
 * its output needs a gradient (not in evaluation), except 2 x 2 windows,
 * whose backward finds it again from the input. */
#include <math.h>
#include <string.h>

#include "core/kernels/conv.h"
#include "core/op.h"
#include "mml/ops.h"
#include "mml/threads.h"

/* iarg: 0 kind, 1 spatial dims, 2..3 kernel, 4..5 stride, 6..7 padding (or
 * 2..3 output size for adaptive/upsample; 4 align_corners). */
enum { P_MAX, P_AVG, P_ADAPTIVE, P_BILINEAR };

typedef struct pgeom {
    int64_t NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw;
} pgeom;

static pgeom pgeom_of(const mml_node *n, const mml_tensor *x)
{
    bool two = n->iarg[1] == 2;
    pgeom g = { 0 };
    g.NC = x->shape[0] * x->shape[1];
    g.H = two ? x->shape[2] : 1;
    g.W = x->shape[two ? 3 : 2];
    int kind = (int)n->iarg[0];
    if (kind == P_ADAPTIVE || kind == P_BILINEAR) {
        g.OH = two ? n->iarg[2] : 1;
        g.OW = n->iarg[3];
        return g;
    }
    g.kh = two ? n->iarg[2] : 1;
    g.kw = n->iarg[3];
    g.sh = two ? n->iarg[4] : 1;
    g.sw = n->iarg[5];
    g.ph = two ? n->iarg[6] : 0;
    g.pw = n->iarg[7];
    /* a window that does not fit gives 0 (C division truncates toward zero) */
    g.OH = g.H + 2 * g.ph < g.kh ? 0 : (g.H + 2 * g.ph - g.kh) / g.sh + 1;
    g.OW = g.W + 2 * g.pw < g.kw ? 0 : (g.W + 2 * g.pw - g.kw) / g.sw + 1;
    return g;
}

static mml_status pool_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    int sd = (int)n->iarg[1], kind = (int)n->iarg[0];
    if (x->dtype != MML_F32 || x->ndim != sd + 2) return mml_op_error(n, "input must be float32 with %d dims", sd + 2);
    if (kind == P_MAX || kind == P_AVG) {
        for (int i = 0; i < 2; i++) {
            if (n->iarg[2 + i] < 1 || n->iarg[4 + i] < 1 || n->iarg[6 + i] < 0)
                return mml_op_error(n, "kernel and stride must be positive, padding non-negative");
            if (2 * n->iarg[6 + i] > n->iarg[2 + i]) return mml_op_error(n, "padding must be at most half the kernel");
        }
    } else if (n->iarg[3] < 1 || n->iarg[2] < 1)
        return mml_op_error(n, "output size must be positive");
    pgeom g = pgeom_of(n, x);
    if (g.OH < 1 || g.OW < 1) return mml_op_error(n, "kernel larger than the padded input");
    int64_t shape[4] = { x->shape[0], x->shape[1], g.OH, g.OW };
    if (sd == 1) shape[2] = g.OW;
    mml_set_shape(out, MML_F32, sd + 2, shape);
    return MML_OK;
}

/* Max pooling with non-overlapping windows inside the input (the usual
 * kernel = stride, no padding): no bounds checks in the inner loops, and the
 * channel planes split over the threads. Ties keep the first maximum and a NaN
 * wins, as in torch. */
typedef struct pool_job {
    pgeom g;
    const float *x;
    float *y;
    int32_t *arg;
    const float *gy;
    float *gx;
    bool assign; /* 2 x 2 backward: write gx rather than add to it */
} pool_job;

static inline void take(float v, int32_t at, float *best, int32_t *besti)
{
    bool win = v > *best || isnan(v);
    *best = win ? v : *best;
    *besti = win ? at : *besti;
}

static void max_pool_2x2_plane(const pgeom *g, const float *xc, float *y)
{
    for (int64_t oy = 0; oy < g->OH; oy++)
        mml_max_pool_2x2_row(xc + 2 * oy * g->W, xc + (2 * oy + 1) * g->W, y + oy * g->OW, NULL, g->OW);
}

/* The gradient of one plane: the window's maximum gets gy, the other three 0
 * (backward asks mml_max_2x2 again rather than forward saving the argmax:
 * the input is kept anyway).
 * assign: gx is new and every input is in a window, so it is written, not added to. */
static void max_pool_2x2_backward_plane(const pgeom *g, const float *xc, const float *gy, float *gx, bool assign)
{
    for (int64_t oy = 0; oy < g->OH; oy++) {
        const float *r0 = xc + 2 * oy * g->W, *r1 = r0 + g->W;
        float *g0 = gx + 2 * oy * g->W, *g1 = g0 + g->W;
        const float *gr = gy + oy * g->OW;
        for (int64_t ox = 0; ox < g->OW; ox++) {
            int32_t k;
            (void)mml_max_2x2(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1], &k);
            float v = gr[ox];
            if (assign) {
                g0[2 * ox] = k == 0 ? v : 0.0f;
                g0[2 * ox + 1] = k == 1 ? v : 0.0f;
                g1[2 * ox] = k == 2 ? v : 0.0f;
                g1[2 * ox + 1] = k == 3 ? v : 0.0f;
            } else (k < 2 ? g0 : g1)[2 * ox + (k & 1)] += v;
        }
    }
}

static void max_pool_tiled_plane(const pgeom *g, const float *xc, float *y, int32_t *arg)
{
    for (int64_t oy = 0; oy < g->OH; oy++)
        for (int64_t ox = 0; ox < g->OW; ox++) {
            int32_t base = (int32_t)((oy * g->sh) * g->W + ox * g->sw), besti = base;
            float best = xc[base];
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++) {
                    int32_t at = base + (int32_t)(i * g->W + j);
                    take(xc[at], at, &best, &besti);
                }
            y[oy * g->OW + ox] = best;
            if (arg) arg[oy * g->OW + ox] = besti;
        }
}

/* Non-overlapping windows inside the input: kernel = stride, no padding. */
static bool is_tiled(const pgeom *g) { return g->ph == 0 && g->pw == 0 && g->sh == g->kh && g->sw == g->kw; }
static bool is_2x2(const pgeom *g) { return is_tiled(g) && g->kh == 2 && g->kw == 2; }

static void max_pool_tiled_range(void *p, int64_t lo, int64_t hi, int thread)
{
    const pool_job *j = p;
    const pgeom *g = &j->g;
    for (int64_t c = lo; c < hi; c++) {
        int64_t o = c * g->OH * g->OW;
        if (is_2x2(g)) max_pool_2x2_plane(g, j->x + c * g->H * g->W, j->y + o);
        else max_pool_tiled_plane(g, j->x + c * g->H * g->W, j->y + o, j->arg ? j->arg + o : NULL);
    }
}

/* Planes of at least this many input values per task. */
#define POOL_GRAIN_VALUES 16384

static int64_t plane_grain(const pgeom *g) { return 1 + POOL_GRAIN_VALUES / (g->H * g->W); }

static void window_forward(mml_ctx *ctx, mml_node *n)
{
    pgeom g = pgeom_of(n, n->in[0]);
    bool is_max = n->iarg[0] == P_MAX;
    /* The argmax only serves backward, which runs only for an output that
     * needs a gradient, and 2 x 2 windows find theirs again. */
    int32_t *arg = NULL;
    if (is_max && !is_2x2(&g) && n->out->requires_grad &&
        !(arg = mml_arena_alloc(ctx, (size_t)n->out->numel * sizeof(int32_t))))
        return;
    n->saved = arg;
    if (is_max && is_tiled(&g)) {
        pool_job j = { g, mml_f32(n->in[0]), mml_f32(n->out), arg, NULL, NULL };
        mml_parallel_for(g.NC, plane_grain(&g), max_pool_tiled_range, &j);
        return;
    }
    const float *x = mml_f32(n->in[0]);
    float *y = mml_f32(n->out);
    for (int64_t c = 0; c < g.NC; c++)
        for (int64_t oy = 0; oy < g.OH; oy++)
            for (int64_t ox = 0; ox < g.OW; ox++) {
                int64_t o = (c * g.OH + oy) * g.OW + ox, y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
                float best = -INFINITY, sum = 0.0f;
                int32_t besti = -1;
                for (int64_t i = 0; i < g.kh; i++)
                    for (int64_t j = 0; j < g.kw; j++) {
                        int64_t yy = y0 + i, xx = x0 + j;
                        if (yy < 0 || yy >= g.H || xx < 0 || xx >= g.W) continue;
                        int64_t at = (c * g.H + yy) * g.W + xx;
                        float v = x[at];
                        sum += v;
                        if (besti < 0 || v > best || isnan(v)) {
                            best = v;
                            besti = (int32_t)(at - c * g.H * g.W);
                        }
                    }
                if (is_max) {
                    y[o] = best;
                    if (arg) arg[o] = besti;
                } else y[o] = sum / (float)(g.kh * g.kw);
            }
}

static void max_backward_range(void *p, int64_t lo, int64_t hi, int thread)
{
    const pool_job *j = p;
    int64_t P = j->g.OH * j->g.OW, HW = j->g.H * j->g.W;
    for (int64_t c = lo; c < hi; c++) {
        float *gx = j->gx + c * HW;
        if (!j->arg) {
            max_pool_2x2_backward_plane(&j->g, j->x + c * HW, j->gy + c * P, gx, j->assign);
            continue;
        }
        for (int64_t o = c * P; o < (c + 1) * P; o++) gx[j->arg[o]] += j->gy[o];
    }
}

static void window_backward(mml_ctx *ctx, mml_node *n)
{
    if (!mml_wants_grad(n->in[0])) return;
    pgeom g = pgeom_of(n, n->in[0]);
    const float *gy = n->out->grad;
    if (n->iarg[0] == P_MAX && (n->saved || is_2x2(&g))) { /* each plane scatters into its own plane */
        bool fresh, covered = g.H == 2 * g.OH && g.W == 2 * g.OW;
        float *gx = mml_grad_buf_fresh(ctx, n->in[0], &fresh);
        if (fresh && !(covered && !n->saved)) memset(gx, 0, (size_t)n->in[0]->numel * sizeof(float));
        pool_job j = { g, mml_f32(n->in[0]), NULL, n->saved, gy, gx, fresh && covered };
        mml_parallel_for(g.NC, plane_grain(&g), max_backward_range, &j);
        return;
    }
    float *gx = mml_grad_buf(ctx, n->in[0]);
    float inv = 1.0f / (float)(g.kh * g.kw);
    for (int64_t c = 0; c < g.NC; c++)
        for (int64_t oy = 0; oy < g.OH; oy++)
            for (int64_t ox = 0; ox < g.OW; ox++) {
                int64_t o = (c * g.OH + oy) * g.OW + ox;
                for (int64_t i = 0; i < g.kh; i++)
                    for (int64_t j = 0; j < g.kw; j++) {
                        int64_t yy = oy * g.sh - g.ph + i, xx = ox * g.sw - g.pw + j;
                        if (yy >= 0 && yy < g.H && xx >= 0 && xx < g.W) gx[(c * g.H + yy) * g.W + xx] += gy[o] * inv;
                    }
            }
}

/* torch's adaptive bins: [floor(i*in/out), ceil((i+1)*in/out)) */
static int64_t bin_start(int64_t i, int64_t in, int64_t out) { return i * in / out; }
static int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

static void adaptive_run(mml_ctx *ctx, mml_node *n, bool backward)
{
    pgeom g = pgeom_of(n, n->in[0]);
    const float *x = mml_f32(n->in[0]);
    float *gx = backward ? mml_grad_buf(ctx, n->in[0]) : NULL;
    for (int64_t c = 0; c < g.NC; c++)
        for (int64_t oy = 0; oy < g.OH; oy++)
            for (int64_t ox = 0; ox < g.OW; ox++) {
                int64_t ys = bin_start(oy, g.H, g.OH), ye = bin_end(oy, g.H, g.OH);
                int64_t xs = bin_start(ox, g.W, g.OW), xe = bin_end(ox, g.W, g.OW);
                int64_t o = (c * g.OH + oy) * g.OW + ox;
                float inv = 1.0f / (float)((ye - ys) * (xe - xs)), sum = 0.0f;
                for (int64_t yy = ys; yy < ye; yy++)
                    for (int64_t xx = xs; xx < xe; xx++) {
                        int64_t at = (c * g.H + yy) * g.W + xx;
                        if (backward) gx[at] += n->out->grad[o] * inv;
                        else sum += x[at];
                    }
                if (!backward) mml_f32(n->out)[o] = sum * inv;
            }
}

static void adaptive_forward(mml_ctx *ctx, mml_node *n) { adaptive_run(ctx, n, false); }
static void adaptive_backward(mml_ctx *ctx, mml_node *n)
{
    if (mml_wants_grad(n->in[0])) adaptive_run(ctx, n, true);
}

/* torch's source index for bilinear interpolation */
static float src_index(int64_t dst, int64_t in, int64_t out, bool align)
{
    if (align) return out > 1 ? (float)dst * (float)(in - 1) / (float)(out - 1) : 0.0f;
    float s = ((float)dst + 0.5f) * (float)in / (float)out - 0.5f;
    return s < 0.0f ? 0.0f : s;
}

static void bilinear_run(mml_ctx *ctx, mml_node *n, bool backward)
{
    pgeom g = pgeom_of(n, n->in[0]);
    bool align = n->iarg[4];
    const float *x = mml_f32(n->in[0]);
    float *gx = backward ? mml_grad_buf(ctx, n->in[0]) : NULL;
    for (int64_t oy = 0; oy < g.OH; oy++) {
        float sy = src_index(oy, g.H, g.OH, align);
        int64_t y0 = (int64_t)sy, y1 = y0 < g.H - 1 ? y0 + 1 : y0;
        float ly = sy - (float)y0;
        for (int64_t ox = 0; ox < g.OW; ox++) {
            float sx = src_index(ox, g.W, g.OW, align);
            int64_t x0 = (int64_t)sx, x1 = x0 < g.W - 1 ? x0 + 1 : x0;
            float lx = sx - (float)x0;
            float w00 = (1 - ly) * (1 - lx), w01 = (1 - ly) * lx, w10 = ly * (1 - lx), w11 = ly * lx;
            for (int64_t c = 0; c < g.NC; c++) {
                const int64_t base = c * g.H * g.W, o = (c * g.OH + oy) * g.OW + ox;
                if (backward) {
                    float gy = n->out->grad[o];
                    gx[base + y0 * g.W + x0] += w00 * gy;
                    gx[base + y0 * g.W + x1] += w01 * gy;
                    gx[base + y1 * g.W + x0] += w10 * gy;
                    gx[base + y1 * g.W + x1] += w11 * gy;
                } else
                    mml_f32(n->out)[o] = w00 * x[base + y0 * g.W + x0] + w01 * x[base + y0 * g.W + x1] +
                                         w10 * x[base + y1 * g.W + x0] + w11 * x[base + y1 * g.W + x1];
            }
        }
    }
}

static void bilinear_forward(mml_ctx *ctx, mml_node *n) { bilinear_run(ctx, n, false); }
static void bilinear_backward(mml_ctx *ctx, mml_node *n)
{
    if (mml_wants_grad(n->in[0])) bilinear_run(ctx, n, true);
}

static const mml_op_def op_max_pool1d = { "max_pool1d", pool_infer, window_forward, window_backward };
static const mml_op_def op_max_pool2d = { "max_pool2d", pool_infer, window_forward, window_backward };
static const mml_op_def op_avg_pool1d = { "avg_pool1d", pool_infer, window_forward, window_backward };
static const mml_op_def op_avg_pool2d = { "avg_pool2d", pool_infer, window_forward, window_backward };
static const mml_op_def op_adaptive1d = { "adaptive_avg_pool1d", pool_infer, adaptive_forward, adaptive_backward };
static const mml_op_def op_adaptive2d = { "adaptive_avg_pool2d", pool_infer, adaptive_forward, adaptive_backward };
static const mml_op_def op_bilinear = { "upsample_bilinear2d", pool_infer, bilinear_forward, bilinear_backward };

static mml_tensor *window(mml_ctx *ctx, const mml_op_def *op, int kind, int sd, mml_tensor *x, const int k[2],
                          const int s[2], const int p[2])
{
    mml_node n = { .op = op, .in = { x }, .n_in = 1,
                   .iarg = { kind, sd, k[0], k[1], s[0] ? s[0] : k[0], s[1] ? s[1] : k[1], p[0], p[1] } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_max_pool1d(mml_ctx *ctx, mml_tensor *x, int k, int s, int p)
{
    return window(ctx, &op_max_pool1d, P_MAX, 1, x, (int[]){ 1, k }, (int[]){ 1, s }, (int[]){ 0, p });
}
mml_tensor *mml_max_pool2d(mml_ctx *ctx, mml_tensor *x, const int k[2], const int s[2], const int p[2])
{
    return window(ctx, &op_max_pool2d, P_MAX, 2, x, k, s ? s : (int[]){ 0, 0 }, p ? p : (int[]){ 0, 0 });
}
mml_tensor *mml_avg_pool1d(mml_ctx *ctx, mml_tensor *x, int k, int s, int p)
{
    return window(ctx, &op_avg_pool1d, P_AVG, 1, x, (int[]){ 1, k }, (int[]){ 1, s }, (int[]){ 0, p });
}
mml_tensor *mml_avg_pool2d(mml_ctx *ctx, mml_tensor *x, const int k[2], const int s[2], const int p[2])
{
    return window(ctx, &op_avg_pool2d, P_AVG, 2, x, k, s ? s : (int[]){ 0, 0 }, p ? p : (int[]){ 0, 0 });
}

static mml_tensor *resize(mml_ctx *ctx, const mml_op_def *op, int kind, int sd, mml_tensor *x, int oh, int ow,
                          bool align)
{
    mml_node n = { .op = op, .in = { x }, .n_in = 1, .iarg = { kind, sd, oh, ow, align } };
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_adaptive_avg_pool1d(mml_ctx *ctx, mml_tensor *x, int out_len)
{
    return resize(ctx, &op_adaptive1d, P_ADAPTIVE, 1, x, 1, out_len, false);
}
mml_tensor *mml_adaptive_avg_pool2d(mml_ctx *ctx, mml_tensor *x, int oh, int ow)
{
    return resize(ctx, &op_adaptive2d, P_ADAPTIVE, 2, x, oh, ow, false);
}
mml_tensor *mml_upsample_bilinear2d(mml_ctx *ctx, mml_tensor *x, int oh, int ow, bool align_corners)
{
    return resize(ctx, &op_bilinear, P_BILINEAR, 2, x, oh, ow, align_corners);
}
