#include <string.h>

#include "mml/image.h"
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
