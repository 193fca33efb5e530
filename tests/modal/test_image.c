#include <string.h>

#include "mml/image.h"
#include "mml/rng.h"
#include "test.h"

static bool same_u8(const mml_tensor *got, const mml_safetensors *fx, const char *key, int tol)
{
    mml_tensor *want = mml_safetensors_tensor(fx, key, MML_I32);
    bool ok = got && want && got->numel == want->numel;
    for (int64_t i = 0; ok && i < got->numel; i++) {
        int d = (int)((uint8_t *)got->data)[i] - mml_i32(want)[i];
        ok = d <= tol && d >= -tol;
    }
    mml_tensor_free(want);
    return ok;
}

static mml_tensor *load(const char *name, int channels)
{
    char rel[128], path[1024];
    snprintf(rel, sizeof rel, "images/%s", name);
    return mml_image_load(tst_fixture_path(rel, path, sizeof path), channels);
}

TEST(image_decodes_each_format_like_pil)
{
    mml_safetensors *fx = tst_fixture("images.safetensors");
    if (!fx) return;
    struct { const char *file, *key; int channels, tol; } cases[] = {
        { "gray.png", "gray", 1, 0 }, { "gray.pgm", "gray", 1, 0 }, { "rgb.png", "rgb", 3, 0 },
        { "rgb.bmp", "rgb", 3, 0 }, { "gray.jpg", "jpg", 1, 2 }, { "rgb.gif", "gif", 3, 0 },
        { "rgb.png", "rgb_as_gray", 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mml_tensor *t = load(cases[i].file, cases[i].channels);
        CHECK_MSG(t && t->shape[0] == cases[i].channels && same_u8(t, fx, cases[i].key, cases[i].tol), "%s: %s",
                  cases[i].file, t ? "pixels differ" : mml_last_error());
        mml_tensor_free(t);
    }
    mml_tensor *t = load("rgb.png", 0);
    CHECK(t && t->shape[0] == 3 && t->shape[1] == 3 && t->shape[2] == 2);
    mml_tensor_free(t);
    mml_safetensors_free(fx);
}

TEST(image_refuses_broken_files_and_bombs)
{
    const char *files[] = { "truncated.png", "wrong_magic.png", "bomb.png", "bomb_20k.png" };
    for (size_t i = 0; i < 4; i++) {
        mml_tensor *t = load(files[i], 1);
        CHECK_MSG(t == NULL && strstr(mml_last_error(), files[i]), "%s accepted or unnamed: %s", files[i], mml_last_error());
    }
    load("bomb_20k.png", 1);
    CHECK_MSG(strstr(mml_last_error(), "20000 x 20000 pixels"), "%s", mml_last_error());
    CHECK(load("missing.png", 1) == NULL && strstr(mml_last_error(), "cannot open"));
}

TEST(pca_energy_removal_finds_known_components)
{
    /* Independent coordinates with variances 9, 4, 1, 0.25: the principal
     * components are the axes, and keeping at most 13/14.25 of the variance
     * keeps exactly the first two. */
    enum { N = 4000, D = 4 };
    static float rows[N * D], rec[N * D];
    const float sd[D] = { 3.0f, 2.0f, 1.0f, 0.5f };
    mml_rng r;
    mml_rng_seed(&r, 9);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) rows[i * D + j] = 5.0f + sd[j] * mml_rng_normal(&r);
    mml_pca p;
    CHECK_OK(mml_pca_fit(rows, N, D, 1.0 - 13.2 / 14.25, 1, &p));
    CHECK(p.k == 2);
    if (p.k == 2) {
        CHECK_NEAR(fabsf(p.components[0]), 1.0, 0.01); /* first axis */
        CHECK_NEAR(fabsf(p.components[D + 1]), 1.0, 0.01); /* second axis */
        CHECK_NEAR(p.kept_ratio, 13.0 / 14.25, 0.02);
        mml_pca_reconstruct(&p, rows, N, rec);
        /* Without the mean added back, reconstructions are centred: coordinate 0
         * keeps its deviation, coordinates 2 and 3 vanish. */
        CHECK_NEAR(rec[0], rows[0] - p.mean[0], 0.1);
        CHECK_NEAR(rec[3], 0.0, 0.05);
    }
    mml_pca_free(&p);
}
