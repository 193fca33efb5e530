/* Internal: convolution geometry, im2col/col2im, and the direct reference.
 * An "image" of C x H x W is unfolded against the output grid OH x OW:
 * col[(c*kh + i)*kw + j][oy*OW + ox] = img[c][oy*sh - ph + i*dh][ox*sw - pw + j*dw]
 * (zero outside). A transposed conv uses the same maps with the roles of its
 * input and output grids swapped. */
#ifndef MML_CONV_KERNELS_H
#define MML_CONV_KERNELS_H

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
/* Direct convolution (plain loops; tests hold the fast path to it). */
void mml_conv2d_ref(const float *x, const float *w, const float *b, const mml_conv_geom *g, float *y);

#endif
