/* Image transforms against PIL and torchvision (tests/reference/gen_images_transform.py),
 * and the random ones by their structural properties. */
#include <stdlib.h>
#include <string.h>

#include "mml/transform.h"
#include "test.h"

/* A fixture tensor in its stored dtype (U8 or F32). */
static mml_tensor *raw(const mml_safetensors *fx, const char *key)
{
    const mml_st_entry *e = mml_safetensors_find(fx, key);
    mml_tensor *t = e ? mml_tensor_create(e->dtype, e->ndim, e->shape, false) : NULL;
    if (t) memcpy(t->data, e->data, e->nbytes);
    CHECK_MSG(t, "fixture tensor %s missing", key);
    return t;
}

static float at(const mml_tensor *t, int64_t i)
{
    return t->dtype == MML_U8 ? ((const uint8_t *)t->data)[i] : mml_f32(t)[i];
}

/* Largest |a - b|, or INFINITY when the shapes or dtypes differ. */
static double max_diff(const mml_tensor *a, const mml_tensor *b)
{
    if (!a || !b || !mml_shape_equal(a, b) || a->dtype != b->dtype) return INFINITY;
    double m = 0.0;
    for (int64_t i = 0; i < a->numel; i++) m = fmax(m, fabs((double)at(a, i) - (double)at(b, i)));
    return m;
}

static mml_tensor *image_u8(int64_t c, int64_t h, int64_t w, uint64_t seed)
{
    mml_tensor *t = mml_tensor_create(MML_U8, 3, (int64_t[]){ c, h, w }, false);
    mml_rng rng;
    mml_rng_seed(&rng, seed);
    for (int64_t i = 0; i < t->numel; i++) ((uint8_t *)t->data)[i] = (uint8_t)mml_rng_below(&rng, 256);
    return t;
}

TEST(image_resize_matches_pil)
{
    mml_safetensors *fx = tst_fixture("images_transform.safetensors");
    if (!fx) return;
    int cases = 0, exact = 0;
    double worst_u8 = 0.0, worst_f = 0.0;
    for (int i = 0; i < mml_safetensors_count(fx); i++) {
        const char *key = mml_safetensors_at(fx, i)->name;
        char img[16], filter[16];
        int h, w;
        if (sscanf(key, "resize.%15[^.].%15[^.].%dx%d", img, filter, &h, &w) != 4) continue;
        char in_key[32];
        snprintf(in_key, sizeof in_key, "in.%s", img);
        mml_tensor *in = raw(fx, in_key), *want = raw(fx, key);
        mml_tensor *got = in ? mml_image_resize(in, h, w, strcmp(filter, "bicubic") ? MML_INTERP_BILINEAR : MML_INTERP_BICUBIC) : NULL;
        double d = max_diff(got, want);
        if (in && in->dtype == MML_U8) {
            CHECK_MSG(d <= 1.0, "%s: max difference %g (of 255)", key, d);
            worst_u8 = fmax(worst_u8, d);
        } else {
            CHECK_MSG(d <= 1e-5, "%s: max difference %g", key, d);
            worst_f = fmax(worst_f, d);
        }
        exact += d == 0.0;
        cases++;
        mml_tensor_free(in);
        mml_tensor_free(want);
        mml_tensor_free(got);
    }
    CHECK(cases == 24);
    printf("    %d resize cases, %d bit-exact; worst U8 difference %g/255, F32 %.2g\n", cases, exact, worst_u8, worst_f);
    mml_safetensors_free(fx);
}

TEST(image_grayscale_crop_flip_normalize_match_pil_and_torchvision)
{
    mml_safetensors *fx = tst_fixture("images_transform.safetensors");
    if (!fx) return;
    mml_tensor *rgb = raw(fx, "in.rgb"), *gray = raw(fx, "in.gray");
    mml_tensor *want = raw(fx, "gray.rgb"), *got = mml_image_to_channels(rgb, 1);
    CHECK_MSG(max_diff(got, want) == 0.0, "grayscale differs from PIL by %g", max_diff(got, want));
    mml_tensor *back = mml_image_to_channels(got, 3);
    CHECK(back && back->shape[0] == 3 && !memcmp((uint8_t *)back->data + 2 * 99, got->data, 99));
    mml_tensor_free(back);
    mml_tensor_free(got);
    mml_tensor_free(want);

    int crops = 0;
    for (int i = 0; i < mml_safetensors_count(fx); i++) {
        const char *key = mml_safetensors_at(fx, i)->name;
        char img[16];
        int h, w;
        if (sscanf(key, "center_crop.%15[^.].%dx%d", img, &h, &w) != 3) continue;
        want = raw(fx, key);
        got = mml_image_center_crop(strcmp(img, "rgb") ? gray : rgb, h, w);
        CHECK_MSG(max_diff(got, want) == 0.0, "%s differs", key);
        crops++;
        mml_tensor_free(got);
        mml_tensor_free(want);
    }
    CHECK(crops == 6);

    want = raw(fx, "hflip.rgb");
    got = mml_image_hflip(rgb);
    CHECK(max_diff(got, want) == 0.0);
    mml_tensor_free(got);
    mml_tensor_free(want);

    mml_tensor *ms = raw(fx, "params.normalize");
    want = raw(fx, "normalize.rgb");
    got = mml_image_normalize(rgb, mml_f32(ms), mml_f32(ms) + 3, 3);
    CHECK(got && CHECK_FIXTURE(fx, "normalize.rgb", mml_f32(got), got->numel, 1e-5, 1e-6));
    mml_tensor_free(got);
    mml_tensor_free(want);
    mml_tensor_free(ms);
    mml_tensor_free(rgb);
    mml_tensor_free(gray);
    mml_safetensors_free(fx);
}

TEST(image_affine_matches_torchvision)
{
    mml_safetensors *fx = tst_fixture("images_transform.safetensors");
    if (!fx) return;
    mml_tensor *p = raw(fx, "params.affine"), *rgbf = raw(fx, "in.rgbf"), *gray = raw(fx, "in.gray");
    double worst_f = 0.0, worst_u8 = 0.0;
    for (int64_t i = 0; p && i < p->shape[0]; i++) {
        const float *q = mml_f32(p) + i * 5;
        char key[32];
        snprintf(key, sizeof key, "affine.rgbf.%lld", (long long)i);
        mml_tensor *got = mml_image_affine(rgbf, q[0], q[1], q[2], q[3], q[4]);
        mml_tensor *want = raw(fx, key);
        CHECK_MSG(got && CHECK_FIXTURE(fx, key, mml_f32(got), got->numel, 1e-4, 1e-5), "%s", key);
        worst_f = fmax(worst_f, max_diff(got, want));
        mml_tensor_free(got);
        mml_tensor_free(want);
        snprintf(key, sizeof key, "affine.gray.%lld", (long long)i);
        want = raw(fx, key);
        got = mml_image_affine(gray, q[0], q[1], q[2], q[3], q[4] * 255.0f);
        CHECK_MSG(max_diff(got, want) <= 1.0, "%s: max difference %g", key, max_diff(got, want));
        worst_u8 = fmax(worst_u8, max_diff(got, want));
        mml_tensor_free(got);
        mml_tensor_free(want);
    }
    printf("    affine: worst F32 difference %.2g, U8 %g/255\n", worst_f, worst_u8);
    mml_tensor_free(p);
    mml_tensor_free(rgbf);
    mml_tensor_free(gray);
    mml_safetensors_free(fx);
}

TEST(image_affine_identity_and_quarter_turn)
{
    mml_tensor *img = image_u8(2, 6, 6, 1);
    mml_tensor *same = mml_image_affine(img, 0, 0, 0, 1, 0);
    CHECK(max_diff(same, img) == 0.0);
    mml_affine_params ap = mml_affine_defaults();
    mml_rng rng;
    mml_rng_seed(&rng, 3);
    mml_tensor *rand_id = mml_image_random_affine(img, &ap, &rng);
    CHECK(max_diff(rand_id, img) == 0.0);
    /* 90 degrees (clockwise, as torchvision's F.affine turns): the transpose,
     * flipped left to right, out[y][x] = in[n-1-x][y]. */
    mml_tensor *rot = mml_image_affine(img, 90, 0, 0, 1, 0);
    bool ok = rot != NULL;
    for (int c = 0; ok && c < 2; c++)
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                ok = ok && ((uint8_t *)rot->data)[(c * 6 + y) * 6 + x] == ((uint8_t *)img->data)[(c * 6 + 5 - x) * 6 + y];
    CHECK_MSG(ok, "a quarter turn is not a transpose and flip");
    /* A whole-pixel shift moves the image and fills the edge it uncovers. */
    mml_tensor *shift = mml_image_affine(img, 0, 2, 0, 1, 7);
    ok = shift != NULL;
    for (int y = 0; ok && y < 6; y++)
        for (int x = 0; x < 6; x++)
            ok = ok && ((uint8_t *)shift->data)[y * 6 + x] == (x < 2 ? 7 : ((uint8_t *)img->data)[y * 6 + x - 2]);
    CHECK(ok);
    CHECK(mml_image_affine(img, 0, 0, 0, 0, 0) == NULL && strstr(mml_last_error(), "scale"));
    mml_tensor_free(shift);
    mml_tensor_free(rot);
    mml_tensor_free(rand_id);
    mml_tensor_free(same);
    mml_tensor_free(img);
}

TEST(image_random_ops_are_seeded_and_bounded)
{
    mml_tensor *img = image_u8(3, 20, 24, 2);
    mml_rng a, b;
    mml_rng_seed(&a, 11);
    mml_rng_seed(&b, 11);
    /* Random crop: same seed, same window; the window lies inside the padded image. */
    for (int i = 0; i < 20; i++) {
        mml_tensor *x = mml_image_random_crop(img, 16, 16, 4, 9, &a), *y = mml_image_random_crop(img, 16, 16, 4, 9, &b);
        CHECK(x && x->shape[1] == 16 && x->shape[2] == 16 && max_diff(x, y) == 0.0);
        mml_tensor_free(x);
        mml_tensor_free(y);
    }
    mml_tensor *whole = mml_image_random_crop(img, 20, 24, 0, 0, &a);
    CHECK(max_diff(whole, img) == 0.0);
    mml_tensor_free(whole);
    CHECK(mml_image_random_crop(img, 30, 30, 2, 0, &a) == NULL && strstr(mml_last_error(), "larger"));

    /* Random erasing: a filled rectangle whose area is within the scale bounds
     * (up to the rounding of its sides), the rest unchanged. */
    mml_erase_params ep = mml_erase_defaults();
    ep.p = 1.0f;
    ep.scale_lo = 0.1f;
    ep.scale_hi = 0.2f;
    ep.value = 255.0f;
    int erased = 0;
    for (int i = 0; i < 50; i++) {
        mml_tensor *x = mml_image_crop(img, 0, 0, 20, 24, 0);
        int64_t box[4];
        CHECK_OK(mml_image_erase_inplace(x, &ep, &a, box));
        if (box[2] == 0) continue;
        erased++;
        double area = (double)(box[2] * box[3]), slack = 0.5 * (double)(box[2] + box[3]) + 0.25;
        CHECK_MSG(area <= 0.2 * 480 + slack && area >= 0.1 * 480 - slack, "area %g", area);
        CHECK(box[0] + box[2] <= 20 && box[1] + box[3] <= 24);
        bool ok = true;
        for (int64_t j = 0; j < x->numel; j++) {
            int64_t y = (j / 24) % 20, xx = j % 24;
            bool in = y >= box[0] && y < box[0] + box[2] && xx >= box[1] && xx < box[1] + box[3];
            ok = ok && ((uint8_t *)x->data)[j] == (in ? 255 : ((uint8_t *)img->data)[j]);
        }
        CHECK(ok);
        mml_tensor_free(x);
    }
    CHECK(erased >= 45);
    ep.p = 0.0f;
    int64_t box[4] = { 1, 1, 1, 1 };
    CHECK_OK(mml_image_erase_inplace(img, &ep, &a, box));
    CHECK(box[2] == 0);

    /* Noise: clipped to [0, 1], with about the std asked for away from the edges. */
    mml_tensor *f = mml_tensor_create(MML_F32, 3, (int64_t[]){ 1, 100, 100 }, false);
    for (int64_t i = 0; i < f->numel; i++) mml_f32(f)[i] = 0.5f;
    CHECK_OK(mml_image_noise_inplace(f, 0.1f, &a));
    double s = 0, s2 = 0, lo = 1, hi = 0;
    for (int64_t i = 0; i < f->numel; i++) {
        double v = mml_f32(f)[i] - 0.5;
        s += v;
        s2 += v * v;
        lo = fmin(lo, mml_f32(f)[i]);
        hi = fmax(hi, mml_f32(f)[i]);
    }
    CHECK_NEAR(sqrt(s2 / 1e4 - (s / 1e4) * (s / 1e4)), 0.1, 0.005);
    CHECK(lo >= 0.0 && hi <= 1.0);
    for (int64_t i = 0; i < f->numel; i++) mml_f32(f)[i] = 0.99f;
    CHECK_OK(mml_image_noise_inplace(f, 0.5f, &a));
    hi = 0;
    for (int64_t i = 0; i < f->numel; i++) hi = fmax(hi, mml_f32(f)[i]);
    CHECK(hi == 1.0);
    CHECK(mml_image_noise_inplace(img, 0.1f, &a) != MML_OK && strstr(mml_last_error(), "F32"));
    mml_tensor_free(f);

    /* Random affine with a range draws different warps, reproducibly. */
    mml_affine_params ap = mml_affine_defaults();
    ap.degrees_lo = -30;
    ap.degrees_hi = 30;
    ap.translate_x = ap.translate_y = 0.2;
    mml_rng_seed(&a, 5);
    mml_rng_seed(&b, 5);
    mml_tensor *x1 = mml_image_random_affine(img, &ap, &a), *x2 = mml_image_random_affine(img, &ap, &a);
    mml_tensor *y1 = mml_image_random_affine(img, &ap, &b);
    CHECK(max_diff(x1, y1) == 0.0 && max_diff(x1, x2) > 0.0);
    mml_tensor_free(x1);
    mml_tensor_free(x2);
    mml_tensor_free(y1);
    mml_tensor_free(img);
}

TEST(image_layout_conversions)
{
    mml_tensor *chw = image_u8(3, 4, 5, 3);
    mml_tensor *hwc = mml_image_chw_to_hwc(chw), *back = hwc ? mml_image_hwc_to_chw(hwc) : NULL;
    CHECK(hwc && hwc->shape[0] == 4 && hwc->shape[1] == 5 && hwc->shape[2] == 3);
    CHECK(hwc && ((uint8_t *)hwc->data)[(2 * 5 + 3) * 3 + 1] == ((uint8_t *)chw->data)[(1 * 4 + 2) * 5 + 3]);
    CHECK(max_diff(back, chw) == 0.0);
    mml_tensor *f = mml_image_to_f32(chw);
    CHECK(f && f->dtype == MML_F32 && mml_f32(f)[7] == ((uint8_t *)chw->data)[7] / 255.0f);
    float mean = 0.5f, std = 0.0f;
    CHECK(mml_image_normalize(chw, &mean, &std, 1) == NULL && strstr(mml_last_error(), "std"));
    CHECK(mml_image_resize(f, 0, 3, MML_INTERP_BILINEAR) == NULL && strstr(mml_last_error(), "resize"));
    mml_tensor_free(f);
    mml_tensor_free(back);
    mml_tensor_free(hwc);
    mml_tensor_free(chw);
}

TEST(image_pipeline_from_json)
{
    const char *json = "[{\"resize\": [32, 32], \"interpolation\": \"bicubic\"}, {\"center_crop\": 28},"
                       " {\"hflip\": 0.5}, {\"random_affine\": {\"degrees\": 10, \"translate\": [0.1, 0.1]}},"
                       " {\"random_erasing\": {\"p\": 1, \"scale\": [0.02, 0.1]}}, {\"gaussian_noise\": 0.01},"
                       " {\"normalize\": {\"mean\": [0.5], \"std\": [0.5]}}]";
    mml_transforms *tf;
    CHECK_OK(mml_transforms_parse_json(json, "aug.json", &tf));
    if (!tf) return;
    CHECK(mml_transforms_count(tf) == 7 && strstr(mml_transforms_json(tf), "\"center_crop\":28"));
    mml_tensor *img = image_u8(3, 40, 50, 4);
    mml_rng a, b;
    mml_rng_seed(&a, 1);
    mml_rng_seed(&b, 1);
    mml_tensor *x = mml_transforms_apply(tf, img, &a), *y = mml_transforms_apply(tf, img, &b), *z = mml_transforms_apply(tf, img, &b);
    CHECK(x && x->dtype == MML_F32 && x->shape[0] == 3 && x->shape[1] == 28 && x->shape[2] == 28);
    CHECK(max_diff(x, y) == 0.0 && max_diff(y, z) > 0.0);
    mml_tensor_free(x);
    mml_tensor_free(y);
    mml_tensor_free(z);
    mml_transforms_free(tf);

    /* Deterministic steps agree with the functions they name; resize n keeps the aspect. */
    CHECK_OK(mml_transforms_parse_json("[{\"grayscale\": 1}, {\"resize\": 20}, {\"hflip\": 1}]", "t", &tf));
    x = tf ? mml_transforms_apply(tf, img, &a) : NULL;
    mml_tensor *g = mml_image_to_channels(img, 1), *r = mml_image_resize(g, 20, 25, MML_INTERP_BILINEAR);
    y = mml_image_hflip(r);
    CHECK(max_diff(x, y) == 0.0);
    mml_tensor_free(g);
    mml_tensor_free(r);
    mml_tensor_free(x);
    mml_tensor_free(y);
    mml_transforms_free(tf);

    struct { const char *json, *want; } bad[] = {
        { "[{\"resize\": [0, 4]}]", "t: transforms[0].resize: sizes must be in [1, 65536]" },
        { "[{\"hflip\": 0.5}, {\"rotate\": 3}]", "t: transforms[1]: no transform named" },
        { "[{\"hflip\": 0.5, \"center_crop\": 3}]", "transforms[0].center_crop: one step per object" },
        { "[{\"resize\": 8, \"interpolation\": \"lanczos\"}]", "transforms[0].interpolation: unknown value 'lanczos'" },
        { "[{\"center_crop\": 8, \"padding\": 2}]", "transforms[0].padding: unknown key" },
        { "[{\"normalize\": {\"mean\": [0.5], \"std\": [0]}}]", "transforms[0].normalize.std: item 0: must be > 0" },
        { "[{\"random_affine\": {\"scale\": [1.2, 0.8]}}]", "transforms[0].random_affine.scale: expected [low, high]" },
        { "[{\"random_erasing\": {\"p\": 2}}]", "transforms[0].random_erasing.p: must be in [0, 1]" },
        { "[{\"grayscale\": 2}]", "transforms[0].grayscale: expected 1 or 3" },
        { "{\"resize\": 3}", "t: transforms: expected an array" },
        { "[{\"resize\": 3}", "t: invalid JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tf = NULL;
        CHECK_MSG(mml_transforms_parse_json(bad[i].json, "t", &tf) != MML_OK && !tf && strstr(mml_last_error(), bad[i].want),
                  "%s: %s", bad[i].json, mml_last_error());
    }
    /* Errors while applying name the step. */
    CHECK_OK(mml_transforms_parse_json("[{\"hflip\": 0}, {\"random_crop\": 64}]", "t", &tf));
    CHECK(tf && mml_transforms_apply(tf, img, &a) == NULL && strstr(mml_last_error(), "transforms[1] (random_crop)"));
    mml_transforms_free(tf);
    mml_tensor_free(img);
}
