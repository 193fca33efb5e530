/* mml/transform.h: image transforms on [channels, height, width] tensors
 * (U8 as mml_image_load returns them, or F32), matching PIL and torchvision,
 * and a pipeline of them described in JSON.
 *
 *     mml_tensor *img = mml_image_load("cat.png", 3);                 // U8 [3, H, W]
 *     mml_tensor *small = mml_image_resize(img, 32, 32, MML_INTERP_BICUBIC);
 *
 *     // [{"resize": [32, 32], "interpolation": "bicubic"}, {"center_crop": 28},
 *     //  {"hflip": 0.5}, {"normalize": {"mean": [0.5], "std": [0.5]}}]
 *     mml_transforms *tf;
 *     if (mml_transforms_parse_json(text, "aug.json", &tf) != MML_OK) ...  // errors name the key
 *     mml_rng rng;
 *     mml_rng_seed(&rng, 42);
 *     mml_tensor *x = mml_transforms_apply(tf, img, &rng);             // F32 [3, 28, 28]
 *     mml_transforms_free(tf);
 *
 * Functions that return a tensor return a new heap tensor (mml_tensor_free),
 * or NULL with an error; the input is never changed, except by the *_inplace
 * functions. Random operations draw only from the mml_rng passed in, so a seed
 * reproduces them. U8 results are rounded and clipped to [0, 255].
 *
 * Thread safety: all functions are reentrant; a parsed mml_transforms may be
 * applied from several threads at once, each with its own mml_rng. */
#ifndef MML_TRANSFORM_H
#define MML_TRANSFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "mml/config.h"
#include "mml/rng.h"
#include "mml/tensor.h"

typedef enum mml_interp { MML_INTERP_BILINEAR = 0, MML_INTERP_BICUBIC } mml_interp;

/* PIL's Image.resize (and torchvision's Resize on PIL images): separable
 * convolution, horizontal pass first, with the filter support widened by the
 * scale factor when shrinking (antialiasing); bilinear is a triangle, bicubic
 * the a = -0.5 cubic. U8 uses PIL's 22-bit fixed-point weights and rounds the
 * intermediate row pass to 8 bits as PIL does; F32 stays in double precision
 * and is not clipped. */
mml_tensor *mml_image_resize(const mml_tensor *img, int64_t height, int64_t width, mml_interp interp);

/* The window [top, top + height) x [left, left + width); parts outside the
 * image are `fill`. */
mml_tensor *mml_image_crop(const mml_tensor *img, int64_t top, int64_t left, int64_t height, int64_t width,
                           float fill);
/* torchvision CenterCrop: top = round((H - h) / 2) (half to even); zero padding
 * when the crop is larger than the image. */
mml_tensor *mml_image_center_crop(const mml_tensor *img, int64_t height, int64_t width);
/* torchvision RandomCrop: pads every side by `padding` with `fill`, then takes
 * a uniformly placed height x width window; an image smaller than that is an
 * error. */
mml_tensor *mml_image_random_crop(const mml_tensor *img, int64_t height, int64_t width, int64_t padding, float fill,
                                  mml_rng *rng);
mml_tensor *mml_image_hflip(const mml_tensor *img);

/* torchvision F.affine on tensors with bilinear sampling and no shear: rotate
 * by `degrees` clockwise (as displayed, y down) about the image centre, scale,
 * then shift by (tx, ty) pixels; points that come from outside the image
 * blend towards `fill` (on the U8 scale for U8 images) by their coverage. */
mml_tensor *mml_image_affine(const mml_tensor *img, double degrees, double tx, double ty, double scale, float fill);

/* torchvision RandomAffine: angle uniform in [degrees_lo, degrees_hi];
 * translation round(uniform(-f W, f W)) pixels for f = translate_x (and y
 * with H); scale uniform in [scale_lo, scale_hi]. */
typedef struct mml_affine_params {
    double degrees_lo, degrees_hi;
    double translate_x, translate_y; /* fractions of width and height; 0: none */
    double scale_lo, scale_hi;       /* 1, 1: no scaling */
    float fill;
} mml_affine_params;
mml_affine_params mml_affine_defaults(void); /* identity */
mml_tensor *mml_image_random_affine(const mml_tensor *img, const mml_affine_params *p, mml_rng *rng);

/* ToTensor + Normalize: (x - mean[c]) / std[c] as F32, U8 divided by 255
 * first. n is 1 (the same for every channel) or the channel count. */
mml_tensor *mml_image_normalize(const mml_tensor *img, const float *mean, const float *std, int n);
/* U8 -> F32 / 255 (F32 is copied). */
mml_tensor *mml_image_to_f32(const mml_tensor *img);
/* 1 <-> 3 channels: PIL's ITU-R 601-2 luma L = (19595 R + 38470 G + 7471 B
 * + 32768) >> 16 for U8, 0.299 R + 0.587 G + 0.114 B for F32; grey to RGB
 * repeats the channel. Asking for the channels already there copies. */
mml_tensor *mml_image_to_channels(const mml_tensor *img, int channels);
/* U8 [H, W, C] <-> [C, H, W]. */
mml_tensor *mml_image_hwc_to_chw(const mml_tensor *hwc);
mml_tensor *mml_image_chw_to_hwc(const mml_tensor *chw);

/* F32 only: x + std * N(0, 1), clipped to [0, 1]. */
mml_status mml_image_noise_inplace(mml_tensor *img, float std, mml_rng *rng);

/* torchvision RandomErasing: with probability p, up to ten tries at a
 * rectangle whose area is a fraction uniform in [scale_lo, scale_hi] of the
 * image and whose aspect ratio is log-uniform in [ratio_lo, ratio_hi]; the
 * first that fits is filled with `value` in every channel. */
typedef struct mml_erase_params {
    float p, scale_lo, scale_hi, ratio_lo, ratio_hi, value;
} mml_erase_params;
mml_erase_params mml_erase_defaults(void); /* p 0.5, scale 0.02-0.33, ratio 0.3-3.3, value 0 */
/* The rectangle erased goes to *box (top, left, height, width; all 0 when
 * none) if box is not NULL. */
mml_status mml_image_erase_inplace(mml_tensor *img, const mml_erase_params *p, mml_rng *rng, int64_t box[4]);

/* A pipeline: a JSON array of one-key steps (with that step's options beside
 * it), applied in order. Steps:
 *   {"resize": [h, w] | n, "interpolation": "bilinear" | "bicubic"}   n: shorter side
 *   {"center_crop": [h, w] | n}
 *   {"random_crop": [h, w] | n, "padding": 0, "fill": 0}
 *   {"hflip": p}                         flip with probability p
 *   {"random_affine": {"degrees": d | [lo, hi], "translate": [fx, fy], "scale": [lo, hi], "fill": 0}}
 *   {"grayscale": 1 | 3}                 to that many channels
 *   {"to_float": true}                   U8 -> F32 / 255
 *   {"normalize": {"mean": [...], "std": [...]}}
 *   {"gaussian_noise": std}              F32 in [0, 1], clipped
 *   {"random_erasing": {"p": 0.5, "scale": [lo, hi], "ratio": [lo, hi], "value": 0}}
 * Steps that need F32 (normalize, gaussian_noise) convert U8 by /255 first. */
typedef struct mml_transforms mml_transforms;

mml_status mml_transforms_parse(const mml_cfg_node *array, mml_transforms **out);
/* `text` is the JSON array itself; `name` appears in messages. */
mml_status mml_transforms_parse_json(const char *text, const char *name, mml_transforms **out);
void mml_transforms_free(mml_transforms *t);
int mml_transforms_count(const mml_transforms *t);
/* The pipeline as compact JSON (for cache keys and model metadata). */
const char *mml_transforms_json(const mml_transforms *t);
mml_tensor *mml_transforms_apply(const mml_transforms *t, const mml_tensor *img, mml_rng *rng);

#endif
