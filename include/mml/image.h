/* mml/image.h: image files in (PNG, JPEG, BMP, PGM/PPM, GIF via Debian's
 * stb_image) as U8 tensors [channels, height, width].
 *
 * The declared size is checked against MML_IMAGE_MAX_PIXELS before anything is
 * decoded, so an image claiming 100000 x 100000 pixels is refused without a
 * huge allocation. */
#ifndef MML_IMAGE_H
#define MML_IMAGE_H

#include <stddef.h>

#include "mml/tensor.h"

#define MML_IMAGE_MAX_PIXELS ((int64_t)64 << 20)

/* channels: 1 (grey), 3 (RGB), or 0 (as stored, grey or RGB). */
mml_tensor *mml_image_load(const char *path, int channels);
mml_tensor *mml_image_decode(const void *bytes, size_t len, int channels, const char *what);

/* Writes a U8 [channels (1 or 3), height, width] tensor as PNG (PATH.tmp, then renamed). */
mml_status mml_image_save_png(const char *path, const mml_tensor *img);

/* PCA "energy removal" as MultiBench's AV-MNIST generator does it: fit on
 * training rows (mean-centred), keep the leading principal components whose
 * cumulative explained variance stays within 1 - fraction_removed, and
 * reconstruct rows from them without adding the mean back. */
typedef struct mml_pca {
    int64_t dim;
    int k;              /* components kept */
    float *mean;        /* [dim] */
    float *components;  /* [k, dim], orthonormal rows */
    double kept_ratio;  /* explained variance of the kept components */
} mml_pca;

mml_status mml_pca_fit(const float *rows, int64_t n, int64_t dim, double fraction_removed, uint64_t seed, mml_pca *out);
/* out[n, dim] = ((rows - mean) C^T) C */
void mml_pca_reconstruct(const mml_pca *p, const float *rows, int64_t n, float *out);
void mml_pca_free(mml_pca *p);

#endif
