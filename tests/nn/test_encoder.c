/* Per-modality encoders: output sizes, padding never leaks into the pooled
 * embedding, gradients by finite differences, config errors. */
#include <stdlib.h>
#include <string.h>

#include "mml/encoder.h"
#include "mml/ops.h"
#include "test.h"

static const mml_feature_spec FRAMES = { true, MML_F32, 2, { 6, 5 }, 1 }; /* [features 6, frames 5] */
static const mml_feature_spec TOKENS = { true, MML_I32, 1, { 7 }, 0 };

static mml_status build(const char *json, const mml_feature_spec *spec, mml_params *ps, mml_encoder **e)
{
    mml_config *c;
    mml_status rc = mml_config_parse(json, "encoder", &c);
    if (rc != MML_OK) return rc;
    mml_cfg_node root = mml_config_root(c);
    rc = mml_encoder_build(&root, spec, ps, "audio.", 5, e);
    mml_config_free(c);
    return rc;
}

static const char *const FRAME_ENCODERS[][2] = {
    { "{\"type\": \"rnn\", \"cell\": \"gru\", \"hidden\": 4, \"bidirectional\": true}", "8" },
    { "{\"type\": \"rnn\", \"cell\": \"lstm\", \"hidden\": 3, \"pool\": \"last\", \"layers\": 2}", "3" },
    { "{\"type\": \"rnn\", \"hidden\": 3, \"pool\": \"max\"}", "3" },
    { "{\"type\": \"transformer\", \"d_model\": 8, \"heads\": 2, \"layers\": 1, \"dropout\": 0}", "8" },
    { "{\"type\": \"transformer\", \"d_model\": 8, \"heads\": 2, \"layers\": 1, \"pool\": \"cls\", \"dropout\": 0, \"out\": 5}", "5" },
    { "{\"type\": \"sequential\", \"layers\": [{\"type\": \"conv1d\", \"out\": 4, \"kernel\": 3}, {\"type\": \"relu\"}, {\"type\": \"flatten\"}]}", "12" },
    { "{\"type\": \"flatten\"}", "30" },
};

typedef struct enc_env {
    mml_encoder *e;
    mml_tensor *lengths;
} enc_env;

static mml_tensor *encode(mml_ctx *ctx, mml_tensor **in, void *arg)
{
    enc_env *env = arg;
    mml_encoding o;
    if (mml_encoder_forward(ctx, env->e, in[0], env->lengths, &o) != MML_OK) return NULL;
    return o.pooled;
}

TEST(encoders_pool_valid_frames_and_have_gradients)
{
    for (size_t k = 0; k < sizeof FRAME_ENCODERS / sizeof FRAME_ENCODERS[0]; k++) {
        mml_params *ps = mml_params_create();
        mml_encoder *e = NULL;
        CHECK_OK(build(FRAME_ENCODERS[k][0], &FRAMES, ps, &e));
        if (!e) continue;
        CHECK(mml_encoder_dim(e) == atoi(FRAME_ENCODERS[k][1]));
        bool sequence = strstr(FRAME_ENCODERS[k][0], "rnn") || strstr(FRAME_ENCODERS[k][0], "transformer");
        mml_tensor *x = mml_tensor_create(MML_F32, 3, (int64_t[]){ 3, 6, 5 }, true);
        mml_rng r;
        mml_rng_seed(&r, 1);
        for (int64_t i = 0; i < x->numel; i++) mml_f32(x)[i] = mml_rng_normal(&r);
        static int32_t lens[3] = { 5, 3, 1 };
        mml_ctx *ctx = mml_ctx_create();
        enc_env env = { e, sequence ? mml_wrap(ctx, MML_I32, lens, 1, (int64_t[]){ 3 }) : NULL };
        mml_set_training(ctx, false);
        mml_tensor *y = encode(ctx, &x, &env);
        CHECK(y && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == mml_encoder_dim(e));
        if (sequence && y) { /* frames past a sequence's length change nothing */
            float before[64];
            memcpy(before, mml_f32(y), (size_t)y->numel * sizeof(float));
            for (int f = 0; f < 6; f++) mml_f32(x)[1 * 30 + f * 5 + 4] += 3.0f;
            mml_tensor *y2 = encode(ctx, &x, &env);
            CHECK(y2 != NULL);
            if (y2) CHECK_CLOSE(FRAME_ENCODERS[k][0], mml_f32(y2), before, y->numel, 0, 1e-6);
        }
        CHECK_GRAD(FRAME_ENCODERS[k][0], encode, &x, 1, &env);
        mml_ctx_free(ctx);
        mml_tensor_free(x);
        mml_encoder_free(e);
        mml_params_free(ps);
    }
}

/* A sequential encoder's positions are [B, N, C] (conv1d: 3 frames of 4
 * channels); switched off, seq is pooled viewed as one position and the pooled
 * embedding is the same. */
TEST(sequential_encoder_makes_positions_only_when_asked)
{
    mml_params *ps = mml_params_create();
    mml_encoder *e = NULL;
    CHECK_OK(build(FRAME_ENCODERS[5][0], &FRAMES, ps, &e));
    mml_tensor *x = mml_tensor_create(MML_F32, 3, (int64_t[]){ 2, 6, 5 }, false);
    for (int64_t i = 0; i < x->numel; i++) mml_f32(x)[i] = (float)(i % 7) - 3.0f;
    mml_ctx *ctx = mml_ctx_create();
    mml_encoding on, off;
    if (e) {
        CHECK_OK(mml_encoder_forward(ctx, e, x, NULL, &on));
        mml_encoder_set_seq(e, false);
        CHECK_OK(mml_encoder_forward(ctx, e, x, NULL, &off));
        CHECK(on.seq && on.seq->ndim == 3 && on.seq->shape[1] == 3 && on.seq->shape[2] == 4);
        CHECK(off.seq && off.seq->ndim == 3 && off.seq->shape[1] == 1 && off.seq->shape[2] == 12);
        CHECK(on.pooled && off.pooled && !memcmp(on.pooled->data, off.pooled->data, 2 * 12 * sizeof(float)));
        CHECK(off.seq && off.seq->data == off.pooled->data); /* a view, not a copy */
    }
    mml_ctx_free(ctx);
    mml_tensor_free(x);
    mml_encoder_free(e);
    mml_params_free(ps);
}

TEST(token_encoders_embed_and_pool)
{
    static const char *const cfgs[] = { "{\"type\": \"bag\", \"embed\": 6, \"vocab\": 50}",
                                        "{\"type\": \"rnn\", \"embed\": 6, \"hidden\": 4, \"vocab\": 50}",
                                        "{\"type\": \"transformer\", \"d_model\": 8, \"heads\": 2, \"layers\": 1, \"vocab\": 50}" };
    for (size_t k = 0; k < 3; k++) {
        mml_params *ps = mml_params_create();
        mml_encoder *e = NULL;
        CHECK_OK(build(cfgs[k], &TOKENS, ps, &e));
        if (!e) continue;
        mml_ctx *ctx = mml_ctx_create();
        mml_set_training(ctx, false);
        int32_t ids[2][7] = { { 3, 4, 5, 0, 0, 0, 0 }, { 3, 4, 5, 9, 9, 9, 9 } };
        int32_t lens[2] = { 3, 3 };
        mml_encoding o;
        CHECK_OK(mml_encoder_forward(ctx, e, mml_wrap(ctx, MML_I32, ids, 2, (int64_t[]){ 2, 7 }),
                                     mml_wrap(ctx, MML_I32, lens, 1, (int64_t[]){ 2 }), &o));
        if (o.pooled) CHECK_CLOSE(cfgs[k], mml_f32(o.pooled) + mml_encoder_dim(e), mml_f32(o.pooled), mml_encoder_dim(e), 0, 1e-5);
        mml_ctx_free(ctx);
        mml_encoder_free(e);
        mml_params_free(ps);
    }
}

TEST(encoder_config_errors_name_the_key)
{
    static const char *const bad[][2] = {
        { "{\"type\": \"cnn\"}", "encoder: type" },
        { "{\"type\": \"bag\"}", "token ids" },
        { "{\"type\": \"rnn\", \"pool\": \"cls\"}", "encoder: pool" },
        { "{\"type\": \"transformer\", \"d_model\": 6, \"heads\": 4}", "encoder: heads" },
        { "{\"type\": \"sequential\", \"layers\": [{\"type\": \"conv2d\", \"out\": 2, \"kernel\": 3}]}", "encoder: layers[0]" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        mml_params *ps = mml_params_create();
        mml_encoder *e = NULL;
        CHECK(build(bad[k][0], &FRAMES, ps, &e) != MML_OK);
        CHECK(strstr(mml_last_error(), bad[k][1]) != NULL);
        if (!strstr(mml_last_error(), bad[k][1])) printf("    got: %s\n", mml_last_error());
        mml_params_free(ps);
    }
}

static const mml_feature_spec IMAGE = { true, MML_F32, 3, { 1, 8, 8 }, -1 };

TEST(image_encoders_resnet_and_vit)
{
    static const char *const cfgs[][2] = {
        { "{\"type\": \"resnet\", \"channels\": [4, 6]}", "6" },
        { "{\"type\": \"vit\", \"patch\": 4, \"d_model\": 8, \"heads\": 2, \"layers\": 1, \"pool\": \"cls\"}", "8" },
        { "{\"type\": \"vit\", \"patch\": 2, \"d_model\": 8, \"heads\": 2, \"layers\": 2, \"out\": 3}", "3" },
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        mml_params *ps = mml_params_create();
        mml_encoder *e = NULL;
        CHECK_OK(build(cfgs[k][0], &IMAGE, ps, &e));
        if (!e) continue;
        CHECK(mml_encoder_dim(e) == atoi(cfgs[k][1]));
        mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ 2, 1, 8, 8 }, true);
        mml_rng r;
        mml_rng_seed(&r, 2);
        for (int64_t i = 0; i < x->numel; i++) mml_f32(x)[i] = mml_rng_normal(&r);
        mml_ctx *ctx = mml_ctx_create();
        mml_set_training(ctx, false);
        enc_env env = { e, NULL };
        mml_tensor *y = encode(ctx, &x, &env);
        CHECK(y && y->shape[0] == 2 && y->shape[1] == mml_encoder_dim(e));
        /* smaller steps: ReLUs after batch norm put kinks near many inputs */
        tst_gradcheck(__FILE__, __LINE__, cfgs[k][0], encode, &x, 1, &env, 1e-3, 1e-2, 2e-3);
        mml_ctx_free(ctx);
        mml_tensor_free(x);
        mml_encoder_free(e);
        mml_params_free(ps);
    }
    mml_params *ps = mml_params_create();
    mml_encoder *e = NULL;
    CHECK(build("{\"type\": \"vit\", \"patch\": 3}", &IMAGE, ps, &e) != MML_OK);
    CHECK(strstr(mml_last_error(), "encoder: patch") != NULL);
    CHECK(build("{\"type\": \"resnet\"}", &FRAMES, ps, &e) != MML_OK);
    mml_params_free(ps);
}
