/* Image transforms on [C, H, W] tensors (U8 or F32): PIL's resampling,
 * torchvision's crops, flips, affine warps, erasing and normalisation. */
#include <math.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/transform.h"

static bool is_image(const mml_tensor *t) { return t->ndim == 3 && (t->dtype == MML_U8 || t->dtype == MML_F32); }

static mml_status need_image(const mml_tensor *t, const char *op)
{
    if (is_image(t)) return MML_OK;
    char shape[96];
    return mml_error(MML_ERR_ARG, "%s: expected a U8 or F32 image [channels, height, width], got %s %s", op,
                     mml_dtype_name(t->dtype), mml_shape_str(t, shape, sizeof shape));
}

static mml_tensor *new_image(mml_dtype dt, int64_t c, int64_t h, int64_t w)
{
    return mml_tensor_create(dt, 3, (int64_t[]){ c, h, w }, false);
}

static uint8_t clip_u8(double v) { return v <= 0.0 ? 0 : v >= 255.0 ? 255 : (uint8_t)nearbyint(v); }

/* Element i as a float, and storing one (rounded and clipped for U8). */
static float get(const mml_tensor *t, int64_t i)
{
    return t->dtype == MML_U8 ? ((const uint8_t *)t->data)[i] : mml_f32(t)[i];
}

static void put(mml_tensor *t, int64_t i, double v)
{
    if (t->dtype == MML_U8) ((uint8_t *)t->data)[i] = clip_u8(v);
    else mml_f32(t)[i] = (float)v;
}

/* ---- resize (PIL Resample.c semantics) ---- */

static double filter_bilinear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_bicubic(double x) /* Keys cubic, a = -0.5 */
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

#define PRECISION_BITS 22 /* PIL: 32 - 8 - 2 */

typedef struct taps {
    int ksize;
    int64_t *first, *count; /* per output index: first input index, number of taps */
    double *k;              /* [out, ksize], normalised to sum 1 */
    int32_t *ki;            /* the same in PIL's fixed point */
} taps;

static void taps_free(taps *t)
{
    mml_free(t->first);
    mml_free(t->count);
    mml_free(t->k);
    mml_free(t->ki);
}

static mml_status taps_init(taps *t, int64_t in, int64_t out, mml_interp interp)
{
    memset(t, 0, sizeof *t);
    double (*filter)(double) = interp == MML_INTERP_BICUBIC ? filter_bicubic : filter_bilinear;
    double scale = (double)in / (double)out, fscale = scale < 1.0 ? 1.0 : scale;
    double support = (interp == MML_INTERP_BICUBIC ? 2.0 : 1.0) * fscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    size_t nk = (size_t)out * (size_t)t->ksize;
    t->first = mml_malloc((size_t)out * sizeof *t->first);
    t->count = mml_malloc((size_t)out * sizeof *t->count);
    t->k = mml_calloc(nk, sizeof *t->k);
    t->ki = mml_calloc(nk, sizeof *t->ki);
    if (!t->first || !t->count || !t->k || !t->ki) {
        taps_free(t);
        return MML_ERR_NOMEM;
    }
    for (int64_t o = 0; o < out; o++) {
        double center = ((double)o + 0.5) * scale, sum = 0.0;
        int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        double *k = t->k + o * t->ksize;
        for (int64_t x = 0; x < hi - lo; x++) sum += k[x] = filter(((double)(x + lo) - center + 0.5) / fscale);
        for (int64_t x = 0; x < hi - lo; x++) {
            if (sum != 0.0) k[x] /= sum;
            double f = k[x] * (1 << PRECISION_BITS);
            t->ki[o * t->ksize + x] = (int32_t)(k[x] < 0.0 ? f - 0.5 : f + 0.5);
        }
        t->first[o] = lo;
        t->count[o] = hi - lo;
    }
    return MML_OK;
}

static uint8_t fixed_to_u8(int32_t acc)
{
    int32_t v = acc >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* The horizontal pass over one row: out[o] = sum k * in. The int32
 * accumulator is PIL's: 255 * sum|k| * 2^22 stays below 2^31 for these filters. */
static void resample_row(const taps *t, mml_dtype dt, const void *src, void *dst, int64_t out)
{
    for (int64_t o = 0; o < out; o++) {
        int64_t first = t->first[o], n = t->count[o];
        if (dt == MML_U8) {
            const uint8_t *s = (const uint8_t *)src + first;
            const int32_t *k = t->ki + o * t->ksize;
            int32_t acc = 1 << (PRECISION_BITS - 1);
            for (int64_t i = 0; i < n; i++) acc += s[i] * k[i];
            ((uint8_t *)dst)[o] = fixed_to_u8(acc);
        } else {
            const float *s = (const float *)src + first;
            const double *k = t->k + o * t->ksize;
            double acc = 0.0;
            for (int64_t i = 0; i < n; i++) acc += (double)s[i] * k[i];
            ((float *)dst)[o] = (float)acc;
        }
    }
}

/* The vertical pass, a whole output row at a time so every read is a
 * contiguous row: out[o][x] = sum_i k_i * in[first + i][x]. `acc` holds a row. */
static void resample_cols(const taps *t, mml_dtype dt, const void *src, int64_t width, void *dst, int64_t out, void *acc)
{
    for (int64_t o = 0; o < out; o++) {
        int64_t first = t->first[o], n = t->count[o];
        if (dt == MML_U8) {
            int32_t *a = acc;
            for (int64_t x = 0; x < width; x++) a[x] = 1 << (PRECISION_BITS - 1);
            for (int64_t i = 0; i < n; i++) {
                const uint8_t *row = (const uint8_t *)src + (first + i) * width;
                int32_t k = t->ki[o * t->ksize + i];
                for (int64_t x = 0; x < width; x++) a[x] += row[x] * k;
            }
            for (int64_t x = 0; x < width; x++) ((uint8_t *)dst)[o * width + x] = fixed_to_u8(a[x]);
        } else {
            double *a = acc;
            for (int64_t x = 0; x < width; x++) a[x] = 0.0;
            for (int64_t i = 0; i < n; i++) {
                const float *row = (const float *)src + (first + i) * width;
                double k = t->k[o * t->ksize + i];
                for (int64_t x = 0; x < width; x++) a[x] += (double)row[x] * k;
            }
            for (int64_t x = 0; x < width; x++) ((float *)dst)[o * width + x] = (float)a[x];
        }
    }
}

mml_tensor *mml_image_resize(const mml_tensor *img, int64_t height, int64_t width, mml_interp interp)
{
    if (need_image(img, "resize") != MML_OK) return NULL;
    if (height < 1 || width < 1 || height > 65536 || width > 65536) {
        mml_error(MML_ERR_ARG, "resize: size %lld x %lld out of range [1, 65536]", (long long)height, (long long)width);
        return NULL;
    }
    int64_t c = img->shape[0], h = img->shape[1], w = img->shape[2];
    size_t es = mml_dtype_size(img->dtype);
    mml_tensor *out = new_image(img->dtype, c, height, width);
    if (!out) return NULL;
    taps th, tv;
    if (taps_init(&th, w, width, interp) != MML_OK) goto fail_out;
    if (taps_init(&tv, h, height, interp) != MML_OK) goto fail_th;
    /* Horizontal pass first, over only the rows the vertical pass reads (as
     * PIL does), into a temporary of the image's own type. */
    int64_t row0 = tv.first[0], rows = tv.first[height - 1] + tv.count[height - 1] - row0;
    uint8_t *tmp = mml_malloc((size_t)(c * rows * width) * es);
    double *acc = mml_malloc((size_t)width * sizeof *acc);
    if (!tmp || !acc) goto fail_tmp;
    const uint8_t *src = img->data;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t y = 0; y < rows; y++) {
            const uint8_t *line = src + (size_t)((ch * h + row0 + y) * w) * es;
            uint8_t *dst = tmp + (size_t)((ch * rows + y) * width) * es;
            if (width == w) memcpy(dst, line, (size_t)w * es); /* PIL skips an unneeded pass */
            else resample_row(&th, img->dtype, line, dst, width);
        }
    for (int64_t o = 0; o < height; o++) tv.first[o] -= row0;
    for (int64_t ch = 0; ch < c; ch++) {
        const uint8_t *plane = tmp + (size_t)(ch * rows * width) * es;
        uint8_t *dst = (uint8_t *)out->data + (size_t)(ch * height * width) * es;
        if (height == h) memcpy(dst, plane, (size_t)(h * width) * es);
        else resample_cols(&tv, img->dtype, plane, width, dst, height, acc);
    }
    mml_free(acc);
    mml_free(tmp);
    taps_free(&tv);
    taps_free(&th);
    return out;
fail_tmp:
    mml_free(acc);
    mml_free(tmp);
    taps_free(&tv);
fail_th:
    taps_free(&th);
fail_out:
    mml_tensor_free(out);
    return NULL;
}

/* ---- crops and flips ---- */

mml_tensor *mml_image_crop(const mml_tensor *img, int64_t top, int64_t left, int64_t height, int64_t width, float fill)
{
    if (need_image(img, "crop") != MML_OK) return NULL;
    if (height < 1 || width < 1 || height > 65536 || width > 65536) {
        mml_error(MML_ERR_ARG, "crop: size %lld x %lld out of range [1, 65536]", (long long)height, (long long)width);
        return NULL;
    }
    int64_t c = img->shape[0], h = img->shape[1], w = img->shape[2];
    mml_tensor *out = new_image(img->dtype, c, height, width);
    if (!out) return NULL;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t y = 0; y < height; y++)
            for (int64_t x = 0; x < width; x++) {
                int64_t sy = top + y, sx = left + x, o = (ch * height + y) * width + x;
                bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
                put(out, o, inside ? get(img, (ch * h + sy) * w + sx) : fill);
            }
    return out;
}

/* torchvision: round((H - h) / 2) when shrinking; pads (H - h) // 2 when growing. */
static int64_t center_offset(int64_t have, int64_t want)
{
    return want > have ? -((want - have) / 2) : (int64_t)nearbyint((double)(have - want) / 2.0);
}

mml_tensor *mml_image_center_crop(const mml_tensor *img, int64_t height, int64_t width)
{
    if (need_image(img, "center_crop") != MML_OK) return NULL;
    return mml_image_crop(img, center_offset(img->shape[1], height), center_offset(img->shape[2], width), height, width,
                          0.0f);
}

mml_tensor *mml_image_random_crop(const mml_tensor *img, int64_t height, int64_t width, int64_t padding, float fill,
                                  mml_rng *rng)
{
    if (need_image(img, "random_crop") != MML_OK) return NULL;
    if (padding < 0 || padding > 65536) {
        mml_error(MML_ERR_ARG, "random_crop: padding %lld out of range [0, 65536]", (long long)padding);
        return NULL;
    }
    int64_t h = img->shape[1] + 2 * padding, w = img->shape[2] + 2 * padding;
    if (height > h || width > w) {
        mml_error(MML_ERR_ARG, "random_crop: crop %lld x %lld is larger than the padded image %lld x %lld",
                  (long long)height, (long long)width, (long long)h, (long long)w);
        return NULL;
    }
    int64_t top = height >= 1 ? (int64_t)mml_rng_below(rng, (uint32_t)(h - height + 1)) : 0;
    int64_t left = width >= 1 ? (int64_t)mml_rng_below(rng, (uint32_t)(w - width + 1)) : 0;
    return mml_image_crop(img, top - padding, left - padding, height, width, fill);
}

mml_tensor *mml_image_hflip(const mml_tensor *img)
{
    if (need_image(img, "hflip") != MML_OK) return NULL;
    int64_t w = img->shape[2], rows = img->shape[0] * img->shape[1];
    size_t es = mml_dtype_size(img->dtype);
    mml_tensor *out = new_image(img->dtype, img->shape[0], img->shape[1], w);
    if (!out) return NULL;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t x = 0; x < w; x++)
            memcpy((uint8_t *)out->data + (size_t)(r * w + x) * es,
                   (const uint8_t *)img->data + (size_t)(r * w + w - 1 - x) * es, es);
    return out;
}

/* ---- affine ---- */

mml_tensor *mml_image_affine(const mml_tensor *img, double degrees, double tx, double ty, double scale, float fill)
{
    if (need_image(img, "affine") != MML_OK) return NULL;
    if (!(scale > 0.0) || !isfinite(degrees) || !isfinite(tx) || !isfinite(ty) || !isfinite(scale)) {
        mml_error(MML_ERR_ARG, "affine: needs finite parameters and scale > 0 (got scale %g)", scale);
        return NULL;
    }
    int64_t c = img->shape[0], h = img->shape[1], w = img->shape[2];
    mml_tensor *out = new_image(img->dtype, c, h, w);
    if (!out) return NULL;
    /* The inverse map, output to input, in coordinates centred on the image
     * (torchvision's _get_inverse_affine_matrix without shear). */
    double r = degrees * (M_PI / 180.0), co = cos(r) / scale, si = sin(r) / scale;
    double m[6] = { co, si, 0.0, -si, co, 0.0 };
    m[2] = -m[0] * tx - m[1] * ty;
    m[5] = -m[3] * tx - m[4] * ty;
    for (int64_t oy = 0; oy < h; oy++)
        for (int64_t ox = 0; ox < w; ox++) {
            double xc = (double)ox - (double)w * 0.5 + 0.5, yc = (double)oy - (double)h * 0.5 + 0.5;
            /* grid_sample, align_corners=False: pixel = centred + size/2 - 1/2 */
            double px = m[0] * xc + m[1] * yc + m[2] + (double)w * 0.5 - 0.5;
            double py = m[3] * xc + m[4] * yc + m[5] + (double)h * 0.5 - 0.5;
            double fx0 = floor(px), fy0 = floor(py), fx = px - fx0, fy = py - fy0;
            int64_t x0 = (int64_t)fmax(fmin(fx0, (double)w + 1), -2.0), y0 = (int64_t)fmax(fmin(fy0, (double)h + 1), -2.0);
            double wt[4] = { (1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy };
            int64_t xs[4] = { x0, x0 + 1, x0, x0 + 1 }, ys[4] = { y0, y0, y0 + 1, y0 + 1 };
            double mask = 0.0;
            for (int k = 0; k < 4; k++)
                if (xs[k] >= 0 && xs[k] < w && ys[k] >= 0 && ys[k] < h) mask += wt[k];
            for (int64_t ch = 0; ch < c; ch++) {
                double v = 0.0;
                for (int k = 0; k < 4; k++)
                    if (xs[k] >= 0 && xs[k] < w && ys[k] >= 0 && ys[k] < h) v += wt[k] * get(img, (ch * h + ys[k]) * w + xs[k]);
                /* torchvision blends the zero-padded sample with the fill by
                 * the sampled coverage mask: v * mask + (1 - mask) * fill. */
                put(out, (ch * h + oy) * w + ox, v * mask + (1.0 - mask) * fill);
            }
        }
    return out;
}

mml_affine_params mml_affine_defaults(void)
{
    return (mml_affine_params){ .scale_lo = 1.0, .scale_hi = 1.0 };
}

static double uniform(mml_rng *rng, double lo, double hi) { return lo + (hi - lo) * (double)mml_rng_uniform(rng); }

mml_tensor *mml_image_random_affine(const mml_tensor *img, const mml_affine_params *p, mml_rng *rng)
{
    if (need_image(img, "random_affine") != MML_OK) return NULL;
    double angle = uniform(rng, p->degrees_lo, p->degrees_hi);
    double mx = p->translate_x * (double)img->shape[2], my = p->translate_y * (double)img->shape[1];
    double tx = p->translate_x > 0 ? nearbyint(uniform(rng, -mx, mx)) : 0.0;
    double ty = p->translate_y > 0 ? nearbyint(uniform(rng, -my, my)) : 0.0;
    double scale = p->scale_lo == p->scale_hi ? p->scale_lo : uniform(rng, p->scale_lo, p->scale_hi);
    return mml_image_affine(img, angle, tx, ty, scale, p->fill);
}

/* ---- conversions ---- */

mml_tensor *mml_image_to_f32(const mml_tensor *img)
{
    float one = 1.0f, zero = 0.0f;
    return mml_image_normalize(img, &zero, &one, 1);
}

mml_tensor *mml_image_normalize(const mml_tensor *img, const float *mean, const float *std, int n)
{
    if (need_image(img, "normalize") != MML_OK) return NULL;
    int64_t c = img->shape[0], plane = img->shape[1] * img->shape[2];
    if (n != 1 && n != c) {
        mml_error(MML_ERR_ARG, "normalize: %d means/stds for an image of %lld channels", n, (long long)c);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!(std[i] != 0.0f) || !isfinite(std[i]) || !isfinite(mean[i])) {
            mml_error(MML_ERR_ARG, "normalize: std[%d] = %g must be finite and non-zero", i, std[i]);
            return NULL;
        }
    mml_tensor *out = new_image(MML_F32, c, img->shape[1], img->shape[2]);
    if (!out) return NULL;
    float div = img->dtype == MML_U8 ? 255.0f : 1.0f;
    for (int64_t ch = 0; ch < c; ch++) {
        float m = mean[n == 1 ? 0 : ch], s = std[n == 1 ? 0 : ch];
        for (int64_t i = ch * plane; i < (ch + 1) * plane; i++) mml_f32(out)[i] = (get(img, i) / div - m) / s;
    }
    return out;
}

mml_tensor *mml_image_to_channels(const mml_tensor *img, int channels)
{
    if (need_image(img, "to_channels") != MML_OK) return NULL;
    int64_t c = img->shape[0], h = img->shape[1], w = img->shape[2], plane = h * w;
    if ((channels != 1 && channels != 3) || (c != 1 && c != 3)) {
        mml_error(MML_ERR_ARG, "grayscale: converts between 1 and 3 channels, not %lld to %d", (long long)c, channels);
        return NULL;
    }
    mml_tensor *out = new_image(img->dtype, channels, h, w);
    if (!out) return NULL;
    size_t es = mml_dtype_size(img->dtype);
    if (c == channels || c == 1) {
        for (int ch = 0; ch < channels; ch++)
            memcpy((uint8_t *)out->data + (size_t)(ch * plane) * es,
                   (const uint8_t *)img->data + (size_t)((c == 1 ? 0 : ch) * plane) * es, (size_t)plane * es);
        return out;
    }
    for (int64_t i = 0; i < plane; i++) {
        if (img->dtype == MML_U8) { /* PIL's fixed-point ITU-R 601-2 (Convert.c, L24) */
            const uint8_t *p = img->data;
            uint32_t l = p[i] * 19595u + p[plane + i] * 38470u + p[2 * plane + i] * 7471u + 0x8000u;
            ((uint8_t *)out->data)[i] = (uint8_t)(l >> 16);
        } else {
            const float *p = mml_f32(img);
            mml_f32(out)[i] = 0.299f * p[i] + 0.587f * p[plane + i] + 0.114f * p[2 * plane + i];
        }
    }
    return out;
}

static mml_tensor *permute_u8(const mml_tensor *t, bool to_chw)
{
    if (t->dtype != MML_U8 || t->ndim != 3) {
        char shape[96];
        mml_error(MML_ERR_ARG, "%s: expected a U8 tensor of 3 dimensions, got %s %s", to_chw ? "hwc_to_chw" : "chw_to_hwc",
                  mml_dtype_name(t->dtype), mml_shape_str(t, shape, sizeof shape));
        return NULL;
    }
    int64_t c = to_chw ? t->shape[2] : t->shape[0], h = to_chw ? t->shape[0] : t->shape[1];
    int64_t w = to_chw ? t->shape[1] : t->shape[2];
    mml_tensor *out = to_chw ? new_image(MML_U8, c, h, w) : new_image(MML_U8, h, w, c);
    if (!out) return NULL;
    const uint8_t *s = t->data;
    uint8_t *d = out->data;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < h * w; i++) {
            if (to_chw) d[ch * h * w + i] = s[i * c + ch];
            else d[i * c + ch] = s[ch * h * w + i];
        }
    return out;
}

mml_tensor *mml_image_hwc_to_chw(const mml_tensor *hwc) { return permute_u8(hwc, true); }
mml_tensor *mml_image_chw_to_hwc(const mml_tensor *chw) { return permute_u8(chw, false); }

/* ---- in-place augmentation ---- */

mml_status mml_image_noise_inplace(mml_tensor *img, float std, mml_rng *rng)
{
    if (img->dtype != MML_F32) return mml_error(MML_ERR_ARG, "gaussian_noise: needs an F32 image in [0, 1]");
    if (!(std >= 0.0f) || !isfinite(std)) return mml_error(MML_ERR_ARG, "gaussian_noise: std %g must be >= 0", std);
    for (int64_t i = 0; i < img->numel; i++) {
        float v = mml_f32(img)[i] + std * mml_rng_normal(rng);
        mml_f32(img)[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    return MML_OK;
}

mml_erase_params mml_erase_defaults(void)
{
    return (mml_erase_params){ .p = 0.5f, .scale_lo = 0.02f, .scale_hi = 0.33f, .ratio_lo = 0.3f, .ratio_hi = 3.3f };
}

mml_status mml_image_erase_inplace(mml_tensor *img, const mml_erase_params *p, mml_rng *rng, int64_t box[4])
{
    mml_status rc = need_image(img, "random_erasing");
    if (rc != MML_OK) return rc;
    if (!(p->scale_lo >= 0 && p->scale_lo <= p->scale_hi && p->scale_hi <= 1) ||
        !(p->ratio_lo > 0 && p->ratio_lo <= p->ratio_hi && isfinite(p->ratio_hi)))
        return mml_error(MML_ERR_ARG, "random_erasing: needs 0 <= scale lo <= hi <= 1 and 0 < ratio lo <= hi");
    if (box) box[0] = box[1] = box[2] = box[3] = 0;
    if (!(mml_rng_uniform(rng) < p->p)) return MML_OK;
    int64_t c = img->shape[0], h = img->shape[1], w = img->shape[2];
    double area = (double)(h * w), llo = log(p->ratio_lo), lhi = log(p->ratio_hi);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform(rng, p->scale_lo, p->scale_hi), ar = exp(uniform(rng, llo, lhi));
        int64_t eh = (int64_t)nearbyint(sqrt(target * ar)), ew = (int64_t)nearbyint(sqrt(target / ar));
        if (!(eh < h && ew < w)) continue;
        int64_t top = mml_rng_below(rng, (uint32_t)(h - eh + 1)), left = mml_rng_below(rng, (uint32_t)(w - ew + 1));
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = top; y < top + eh; y++)
                for (int64_t x = left; x < left + ew; x++) put(img, (ch * h + y) * w + x, p->value);
        if (box) {
            box[0] = top;
            box[1] = left;
            box[2] = eh;
            box[3] = ew;
        }
        return MML_OK;
    }
    return MML_OK;
}
