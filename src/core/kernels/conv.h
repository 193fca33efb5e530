/* Internal: convolution geometry, im2col/col2im, and the direct reference.
 * An "image" of C x H x W is unfolded against the output grid OH x OW:
 * col[(c*kh + i)*kw + j][oy*OW + ox] = img[c][oy*sh - ph + i*dh][ox*sw - pw + j*dw]
 * (zero outside). A transposed conv uses the same maps with the roles of its
 * input and output grids swapped. */
#ifndef MML_CONV_KERNELS_H
#define MML_CONV_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mml_conv_geom {
    int64_t N, C, H, W, O, OH, OW;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, groups;
} mml_conv_geom;

/* col's rows are ld apart (ld >= OH*OW: several samples side by side). */
void mml_im2col(const float *img, int64_t C, int64_t H, int64_t W, const mml_conv_geom *g, int64_t OH,
                int64_t OW, float *col, int64_t ld);
/* Rows [k0, k1) of col only (row k = (c * kh + i) * kw + j; col points at row 0). */
void mml_im2col_rows(const float *img, int64_t k0, int64_t k1, int64_t H, int64_t W, const mml_conv_geom *g,
                     int64_t OH, int64_t OW, float *col, int64_t ld);
/* img += fold(col). col is scratch: values that fall outside img may be zeroed. */
void mml_col2im(float *col, int64_t ld, int64_t C, int64_t H, int64_t W, const mml_conv_geom *g, int64_t OH,
                int64_t OW, float *img);
/* The maximum of a 2 x 2 window, a, b (upper row) and c, d (lower row), as
 * torch's max pooling picks it: the first of equal maxima, the last NaN; *which
 * is its place, 0..3. Branch-free ('|', not '||'; v != v for isnan), so loops
 * stay vectorised. */
static inline float mml_max_2x2(float a, float b, float c, float d, int32_t *which)
{
    bool wb = (b > a) | (b != b);
    float m = wb ? b : a;
    int32_t k = wb;
    bool wc = (c > m) | (c != c);
    m = wc ? c : m;
    k = wc ? 2 : k;
    bool wd = (d > m) | (d != d);
    *which = wd ? 3 : k;
    return wd ? d : m;
}

/* 2 x 2 max pooling, stride 2, of rows r0 and r1 (2n values each) into y
 * [n], and each window's choice (mml_max_2x2) into arg unless it is NULL. */
void mml_max_pool_2x2_row(const float *r0, const float *r1, float *y, int32_t *arg, int64_t n);

/* One input channel, stride and dilation 1, O a multiple of 8 (AVX-512):
 * output rows oy0..oy1-1 of every channel, y[o * ldy + oy * OW + ox] =
 * sum over (ky, kx) of w[o][ky][kx] * xp[(oy + ky) * ldx + ox + kx], where xp
 * is the input zero-padded to rows of ldx and holds MML_CONV_ONE_CHANNEL_SLACK
 * floats more past its last row (a tile reads whole vectors). */
#define MML_CONV_ONE_CHANNEL_SLACK 64
void mml_conv_one_channel_avx512(const float *xp, int64_t ldx, const float *w, int64_t O, int64_t kh, int64_t kw,
                                 int64_t oy0, int64_t oy1, int64_t OW, float *y, int64_t ldy);

/* Direct convolution (plain loops; tests hold the fast path to it). */
void mml_conv2d_ref(const float *x, const float *w, const float *b, const mml_conv_geom *g, float *y);

#endif
