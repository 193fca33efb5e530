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

#endif
