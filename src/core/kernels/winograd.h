/* Internal: Winograd minimal filtering F(m x m, r x r) on 6 x 6 tiles (Lavin
 * and Gray, "Fast algorithms for convolutional neural networks", 2015), for
 * stride-1 convolutions with 3 x 3 (m = 4) and 5 x 5 (m = 2) kernels. An
 * m x m output tile of the correlation of a 6 x 6 input tile d with a kernel g is
 *   Y = AT [ (G g G^T) .* (BT d BT^T) ] AT^T
 * 36 products per tile and channel pair instead of m*m*r*r: 4x fewer for
 * 3 x 3, 2.8x for 5 x 5. Over channels the products become 36 GEMMs, one per
 * point of the tile. The weight gradient is the same algorithm with the
 * output gradient's m x m tile in the kernel's place:
 *   dW = VR^T [ (GY dy GY^T) .* (BT d BT^T) ] VR
 * summed over tiles (in the transformed space: 36 GEMMs along the tiles).
 *
 * Transformed data is laid out [point][channel][tile]: point p of tile t of
 * channel c at dst[p * ld + c * (ld / channels) + t], so that each point's
 * GEMM reads plain row-major matrices. The S planes of one channel (the
 * samples of a batch) share a grid of th x tw tiles each, numbered row of
 * tiles first: tile (ty, s, tx) = (ty * S + s) * tw + tx, which makes every
 * transform step one flat run over all of them. Tile (ty, tx) reads its
 * plane from row ty*m - py and column tx*m - px (zero outside the plane). */
#ifndef MML_WINOGRAD_KERNELS_H
#define MML_WINOGRAD_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/kernels/conv.h"

#define MML_WINO_ALPHA 6
#define MML_WINO_POINTS 36

typedef struct mml_winograd {
    int m, r;         /* m + r - 1 = 6 */
    float BT[6][6];   /* input tile */
    float G[6][5];    /* kernel (r columns) */
    float AT[4][6];   /* output tile (m rows) */
    float GY[6][4];   /* output-gradient tile, for the weight gradient (m columns) */
    float VR[6][5];   /* the weight gradient's 36 points back to r x r (r columns) */
} mml_winograd;

/* The transforms for an r x r kernel, r = 3 or 5; NULL for any other. */
const mml_winograd *mml_winograd_for(int r);
/* The transforms a (not transposed) convolution takes, or NULL where im2col
 * is faster: stride and dilation 1, one group, a square 3 x 3 or 5 x 5 kernel,
 * padding below its size, 8 or more channels in and out, enough tiles in the
 * batch and few partial ones. */
const mml_winograd *mml_winograd_for_conv(const mml_conv_geom *g);

/* Scratch floats the tile transforms of S planes on a th x tw grid need. */
size_t mml_winograd_scratch(const mml_winograd *wg, int64_t th, int64_t tw, int64_t S);

/* The 6 x 6 input tiles of S planes [H, W] (plane s at planes + s*stride),
 * transformed into dst. */
void mml_winograd_input(const mml_winograd *wg, const float *planes, int64_t stride, int64_t S, int64_t H, int64_t W,
                        int64_t py, int64_t px, int64_t th, int64_t tw, float *dst, int64_t ld, float *scratch);
/* The m x m output-gradient tiles of S planes [H, W] (tile (ty, tx) at row
 * ty*m, column tx*m), transformed into dst for the weight gradient. */
void mml_winograd_grad_tiles(const mml_winograd *wg, const float *planes, int64_t stride, int64_t S, int64_t H,
                             int64_t W, int64_t th, int64_t tw, float *dst, int64_t ld, float *scratch);
/* The m x m output tiles of S planes of C consecutive channels from their
 * points in src (channel c's tiles at src + c * th*S*tw) into planes [OH, OW]
 * (the part of the grid inside them; channel c's plane s at planes + c*cstride
 * + s*stride); += when add, = otherwise. Scratch: mml_winograd_scratch for
 * S*C planes. A lone sample's channels taken together make long runs for the
 * transforms, where one channel's 16 tiles are a single vector. */
void mml_winograd_output(const mml_winograd *wg, const float *src, int64_t ld, int64_t th, int64_t tw, int64_t S,
                         int64_t C, float *planes, int64_t stride, int64_t cstride, int64_t OH, int64_t OW, bool add,
                         float *scratch);
/* Scratch floats the kernel transforms of O x C kernels need. */
size_t mml_winograd_kernel_scratch(const mml_winograd *wg, int64_t O, int64_t C);
/* The kernels w [O, C, r, r] transformed into dst [36][O][C]; with data_grad,
 * rotated by 180 degrees into dst [36][C][O] (the data gradient's kernels). */
void mml_winograd_kernels(const mml_winograd *wg, const float *w, int64_t O, int64_t C, bool data_grad, float *dst,
                          float *scratch);
/* dw [O, C, r, r] += the weight gradient from its points src [36][O][C]. */
void mml_winograd_kernel_grads(const mml_winograd *wg, const float *src, int64_t O, int64_t C, float *dw,
                               float *scratch);

#endif
