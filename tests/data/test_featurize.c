/* The standard featurizer over a real manifest line: image, audio and text
 * become fixed-size model inputs with presence masks and lengths. */
#include <string.h>

#include "mml/audio.h"
#include "mml/featurize.h"
#include "mml/image.h"
#include "test.h"

TEST(featurizer_turns_manifest_samples_into_batches)
{
    char wav[1024], png[1024], merges[1024], text[4096];
    tst_dataset_path("fsdd/recordings/3_theo_7.wav", wav, sizeof wav);
    tst_dataset_path("clip-bpe/bpe_simple_vocab_16e6.txt.gz", merges, sizeof merges);
    tst_fixture_path("images/gray.png", png, sizeof png);
    mml_bpe *bpe = NULL;
    if (mml_bpe_load_clip(merges, &bpe) != MML_OK) {
        printf("    (skipped: %s)\n", mml_last_error());
        return;
    }
    snprintf(text, sizeof text,
             "{\"id\": \"a\", \"image\": \"%s\", \"audio\": \"%s\", \"text\": \"three\", \"label\": 3}\n"
             "{\"id\": \"b\", \"image\": \"%s\", \"audio\": null, \"text\": \"a photo of a cat\", \"label\": 0}\n",
             png, wav, png);
    mml_manifest *m = NULL;
    CHECK_OK(mml_manifest_parse(text, strlen(text), "/tmp/m.jsonl", &m));
    mml_feature_config cfg = mml_feature_defaults();
    cfg.bpe = bpe;
    char params[512];
    mml_featurizer f;
    CHECK_OK(mml_featurizer_init(&f, &cfg, params, sizeof params));
    mml_dataset *ds = NULL;
    CHECK_OK(mml_dataset_build(m, &f, NULL, &ds));
    if (ds) {
        mml_ctx *ctx = mml_ctx_create();
        mml_batch b;
        CHECK_OK(mml_dataset_batch(ctx, ds, (int64_t[]){ 0, 1 }, 2, &b));
        CHECK(b.x[MML_MOD_IMAGE]->shape[1] == 1 && b.x[MML_MOD_IMAGE]->shape[2] == 28 && b.x[MML_MOD_IMAGE]->shape[3] == 28);
        CHECK(b.x[MML_MOD_AUDIO]->shape[1] == 40 && b.x[MML_MOD_AUDIO]->shape[2] == 64);
        CHECK(mml_f32(b.present[MML_MOD_AUDIO])[0] == 1.0f && mml_f32(b.present[MML_MOD_AUDIO])[1] == 0.0f);
        /* The recording is shorter than 64 frames: its length says so and the rest is zero. */
        mml_audio a;
        CHECK_OK(mml_wav_load(wav, &a));
        int32_t len = mml_i32(b.length[MML_MOD_AUDIO])[0];
        CHECK(len == (int32_t)(1 + a.n / 80) || (len == 64 && 1 + a.n / 80 >= 64));
        mml_audio_free(&a);
        const int32_t want[] = { 49406, 320, 1125, 539, 320, 2368, 49407, 0 };
        CHECK(!memcmp(mml_i32(b.x[MML_MOD_TEXT]) + 16, want, sizeof want));
        CHECK(mml_i32(b.length[MML_MOD_TEXT])[1] == 7);
        CHECK(mml_i32(b.label)[0] == 1 && mml_i32(b.label)[1] == 0); /* classes "0", "3" */
        mml_ctx_free(ctx);
    }
    mml_dataset_free(ds);
    mml_manifest_free(m);
    mml_bpe_free(bpe);
}

TEST(featurizer_applies_image_transforms_then_pil_resize)
{
    char png[1024];
    tst_fixture_path("images/gray.png", png, sizeof png);
    mml_feature_config cfg = mml_feature_defaults();
    cfg.audio = cfg.text = false;
    cfg.height = 6;
    cfg.width = 7;
    cfg.mean = 0.5f;
    cfg.std = 0.25f;
    mml_transforms *tf = NULL;
    CHECK_OK(mml_transforms_parse_json("[{\"hflip\": 1}]", "t", &tf));
    cfg.transforms = tf;
    char params[512], params0[512];
    mml_featurizer f, f0;
    CHECK_OK(mml_featurizer_init(&f, &cfg, params, sizeof params));
    mml_feature_config plain = cfg;
    plain.transforms = NULL;
    CHECK_OK(mml_featurizer_init(&f0, &plain, params0, sizeof params0));
    CHECK(strcmp(params, params0) != 0); /* the cache key sees the pipeline */
    mml_sample s = { .id = "a", .path = { [MML_MOD_IMAGE] = png }, .has = { [MML_MOD_IMAGE] = true } };
    float got[42];
    int64_t len = 0;
    CHECK_OK(f.extract(f.user, &s, MML_MOD_IMAGE, got, &len));
    mml_tensor *img = mml_image_load(png, 1), *fl = mml_image_hflip(img), *r = mml_image_resize(fl, 6, 7, MML_INTERP_BILINEAR);
    bool ok = r != NULL;
    for (int i = 0; ok && i < 42; i++) ok = got[i] == (((uint8_t *)r->data)[i] / 255.0f - 0.5f) / 0.25f;
    CHECK(ok);
    mml_transforms_free(tf);
    CHECK_OK(mml_transforms_parse_json("[{\"grayscale\": 3}]", "t", &tf));
    cfg.transforms = tf;
    CHECK(f.extract(f.user, &s, MML_MOD_IMAGE, got, &len) == MML_ERR_SHAPE && strstr(mml_last_error(), "3 channels"));
    mml_transforms_free(tf);
    mml_tensor_free(img);
    mml_tensor_free(fl);
    mml_tensor_free(r);
}

TEST(featurizer_keeps_plain_images_as_bytes)
{
    char png[1024];
    tst_fixture_path("images/gray.png", png, sizeof png);
    mml_feature_config cfg = mml_feature_defaults();
    cfg.audio = cfg.text = false;
    char params[512];
    mml_featurizer f;
    CHECK_OK(mml_featurizer_init(&f, &cfg, params, sizeof params));
    CHECK(f.spec[MML_MOD_IMAGE].stored_u8 && f.spec[MML_MOD_IMAGE].dtype == MML_F32);
    mml_sample s = { .id = "a", .path = { [MML_MOD_IMAGE] = png }, .has = { [MML_MOD_IMAGE] = true } };
    uint8_t got[28 * 28];
    int64_t len = 0;
    CHECK_OK(f.extract(f.user, &s, MML_MOD_IMAGE, got, &len));
    mml_tensor *img = mml_image_load(png, 1), *r = img ? mml_image_resize(img, 28, 28, MML_INTERP_BILINEAR) : NULL;
    CHECK(r && r->dtype == MML_U8 && !memcmp(got, r->data, sizeof got));
    /* Normalised features are not bytes. */
    cfg.mean = 0.5f;
    CHECK_OK(mml_featurizer_init(&f, &cfg, params, sizeof params));
    CHECK(!f.spec[MML_MOD_IMAGE].stored_u8);
    mml_tensor_free(img);
    mml_tensor_free(r);
}
