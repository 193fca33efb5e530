/* A convolution over one input channel (a network's first layer: an image,
 * a spectrogram), read in place instead of unfolded: 16 output columns of a
 * row per vector, 8 output channels per tile, each tap one load of the
 * (zero-padded) input row and one broadcast weight per channel. im2col would
 * write kh * kw values per input value and hand the GEMM a K of only kh * kw
 * (9 or 25), too short to pay for its tiles. */
#include <immintrin.h>

#include "core/kernels/conv.h"

#define R 8 /* output channels per tile */

static inline __mmask16 lanes(int64_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u); }

/* Output columns ox0 .. ox0 + n - 1 (n <= 16 V) of one row, channels 0..7 of w. */
static inline __attribute__((always_inline)) void row_tile(int V, const float *xr, int64_t ldx, const float *w,
                                                           int64_t kh, int64_t kw, int64_t n, float *y, int64_t ldy)
{
    __m512 acc[R][3];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
    int64_t T = kh * kw;
    for (int64_t ky = 0; ky < kh; ky++)
        for (int64_t kx = 0; kx < kw; kx++) {
            const float *x = xr + ky * ldx + kx;
            __m512 xv[3];
            for (int v = 0; v < V; v++) xv[v] = _mm512_loadu_ps(x + 16 * v);
            for (int r = 0; r < R; r++) {
                __m512 wv = _mm512_set1_ps(w[r * T + ky * kw + kx]);
                for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
            }
        }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) _mm512_mask_storeu_ps(y + r * ldy + 16 * v, lanes(n - 16 * v), acc[r][v]);
}

void mml_conv_one_channel_avx512(const float *xp, int64_t ldx, const float *w, int64_t O, int64_t kh, int64_t kw,
                                 int64_t oy0, int64_t oy1, int64_t OW, float *y, int64_t ldy)
{
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t o = 0; o < O; o += R)
            for (int64_t ox = 0; ox < OW; ox += 48) {
                int64_t n = OW - ox < 48 ? OW - ox : 48;
                const float *xr = xp + oy * ldx + ox;
                float *yr = y + o * ldy + oy * OW + ox;
                const float *wo = w + o * kh * kw;
                if (n > 32) row_tile(3, xr, ldx, wo, kh, kw, n, yr, ldy);
                else if (n > 16) row_tile(2, xr, ldx, wo, kh, kw, n, yr, ldy);
                else row_tile(1, xr, ldx, wo, kh, kw, n, yr, ldy);
            }
}
