/* Fusion modules against PyTorch (tests/reference/gen_fusion.py): outputs and
 * gradients of inputs and parameters with missing modalities in the batch;
 * finite differences; the missing-modality mask; config errors. */
#include <math.h>
#include <string.h>

#include "mml/fusion.h"
#include "mml/ops.h"
#include "mml/safetensors.h"
#include "test.h"

#define B 4

static const char *const CASES[][2] = {
    { "concat", "{\"type\": \"concat\"}" },
    { "concat_learned", "{\"type\": \"concat\", \"missing\": \"learned\"}" },
    { "tensor", "{\"type\": \"tensor\"}" },
    { "lowrank", "{\"type\": \"lowrank\", \"rank\": 3, \"out\": 4}" },
    { "attention", "{\"type\": \"attention\", \"out\": 4}" },
    { "gmu", "{\"type\": \"gmu\", \"out\": 4}" },
    { "late_mean", "{\"type\": \"late\", \"combine\": \"mean\"}" },
    { "late_learned", "{\"type\": \"late\", \"combine\": \"learned\"}" },
    { "late_poe", "{\"type\": \"late\", \"combine\": \"poe\"}" },
    { "crossattn", "{\"type\": \"crossattn\", \"d_model\": 4, \"heads\": 2}" },
};

static const mml_fusion_shape SHAPE = { .n = 2, .dim = { 5, 3 }, .seq_dim = { 5, 3 }, .n_out = 4 };

static mml_status build(const char *json, const mml_fusion_shape *shape, mml_params *ps, mml_fusion **f)
{
    mml_config *c;
    mml_status rc = mml_config_parse(json, "fusion", &c);
    if (rc != MML_OK) return rc;
    mml_cfg_node root = mml_config_root(c);
    rc = mml_fusion_build(&root, shape, ps, "fusion.", 1, f);
    mml_config_free(c);
    return rc;
}

static mml_tensor *present(mml_ctx *ctx, int i)
{
    static const float p[2][B] = { { 1, 1, 1, 0 }, { 1, 1, 0, 1 } };
    return mml_wrap(ctx, MML_F32, (void *)p[i], 1, (int64_t[]){ B });
}

typedef struct fusion_env {
    mml_fusion *f;
    mml_tensor *pad1;
} fusion_env;

/* inputs: h0, h1, s0, s1 */
static mml_tensor *fuse(mml_ctx *ctx, mml_tensor **in, void *arg)
{
    fusion_env *e = arg;
    mml_encoding enc[2] = { { in[0], in[2], NULL }, { in[1], in[3], e->pad1 } };
    mml_tensor *p[2] = { present(ctx, 0), present(ctx, 1) };
    return mml_fusion_forward(ctx, e->f, enc, p, NULL);
}

static void char_name(char *buf, size_t cap, const char *c, const char *what) { snprintf(buf, cap, "%s.%s", c, what); }

TEST(fusion_matches_pytorch_with_missing_modalities)
{
    mml_safetensors *fx = tst_fixture("fusion.safetensors");
    if (!fx) return;
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        const char *c = CASES[k][0];
        char key[160];
        mml_params *ps = mml_params_create();
        mml_fusion *f = NULL;
        CHECK_OK(build(CASES[k][1], &SHAPE, ps, &f));
        if (!f) continue;
        for (int i = 0; i < mml_params_count(ps); i++) {
            mml_tensor *t = mml_params_at(ps, i);
            snprintf(key, sizeof key, "%s.p.%s", c, t->name);
            CHECK_OK(mml_safetensors_read_into(fx, key, t));
        }
        mml_tensor *in[4];
        static const char *const names[4] = { "h0", "h1", "s0", "s1" };
        for (int i = 0; i < 4; i++) {
            char_name(key, sizeof key, c, names[i]);
            in[i] = tst_fixture_tensor(fx, key, true);
        }
        char_name(key, sizeof key, c, "pad1");
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *pad_heap = tst_fixture_tensor(fx, key, false);
        fusion_env env = { f, mml_wrap(ctx, MML_F32, pad_heap->data, 2, pad_heap->shape) };
        char_name(key, sizeof key, c, "r");
        mml_tensor *r = tst_fixture_tensor(fx, key, false);
        mml_tensor *out = fuse(ctx, in, &env);
        CHECK(out != NULL);
        CHECK(out && out->numel == r->numel);
        if (!out || out->numel != r->numel) {
            printf("    case %s: %s\n", c, mml_last_error());
            continue;
        }
        CHECK(mml_fusion_dim(f) == out->shape[1]);
        char_name(key, sizeof key, c, "out");
        CHECK_FIXTURE(fx, key, mml_f32(out), out->numel, 1e-4, 1e-5);
        CHECK_OK(mml_backward(ctx, mml_sum(ctx, mml_mul(ctx, out, mml_wrap(ctx, MML_F32, r->data, 2, out->shape)), MML_AXIS_ALL, false)));
        int n_in = !strcmp(c, "crossattn") ? 4 : 2;
        for (int i = (n_in == 4 ? 2 : 0); i < n_in; i++) {
            snprintf(key, sizeof key, "%s.grad.%s", c, names[i]);
            CHECK(in[i]->grad != NULL);
            if (in[i]->grad) CHECK_FIXTURE(fx, key, in[i]->grad, in[i]->numel, 1e-4, 1e-5);
        }
        for (int i = 0; i < mml_params_count(ps); i++) {
            mml_tensor *t = mml_params_at(ps, i);
            snprintf(key, sizeof key, "%s.grad.p.%s", c, t->name);
            CHECK_FIXTURE(fx, key, t->grad, t->numel, 1e-4, 1e-5);
        }
        /* finite differences through the inputs (parameters: the PyTorch grads above) */
        CHECK_GRAD(c, fuse, in, 4, &env);
        mml_ctx_free(ctx);
        for (int i = 0; i < 4; i++) mml_tensor_free(in[i]);
        mml_tensor_free(pad_heap);
        mml_tensor_free(r);
        mml_fusion_free(f);
        mml_params_free(ps);
    }
    mml_safetensors_free(fx);
}

/* A missing modality's features cannot change the output of a sample. */
TEST(fusion_ignores_the_features_of_missing_modalities)
{
    static const char *const types[] = { "{\"type\": \"concat\", \"missing\": \"learned\"}", "{\"type\": \"tensor\"}",
                                         "{\"type\": \"lowrank\"}", "{\"type\": \"attention\"}", "{\"type\": \"gmu\"}",
                                         "{\"type\": \"late\", \"combine\": \"poe\"}", "{\"type\": \"crossattn\", \"d_model\": 8}" };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        mml_params *ps = mml_params_create();
        mml_fusion *f;
        CHECK_OK(build(types[k], &SHAPE, ps, &f));
        mml_ctx *ctx = mml_ctx_create();
        mml_set_grad_enabled(ctx, false);
        mml_rng rng;
        mml_rng_seed(&rng, 3);
        float *outs[2];
        for (int trial = 0; trial < 2; trial++) {
            mml_tensor *h0 = mml_new(ctx, MML_F32, 2, (int64_t[]){ B, 5 }), *h1 = mml_new(ctx, MML_F32, 2, (int64_t[]){ B, 3 });
            mml_tensor *s0 = mml_new(ctx, MML_F32, 3, (int64_t[]){ B, 2, 5 }), *s1 = mml_new(ctx, MML_F32, 3, (int64_t[]){ B, 2, 3 });
            mml_rng r0;
            mml_rng_seed(&r0, 11);
            for (int64_t i = 0; i < h0->numel; i++) mml_f32(h0)[i] = mml_rng_normal(&r0);
            for (int64_t i = 0; i < s0->numel; i++) mml_f32(s0)[i] = mml_rng_normal(&r0);
            /* modality 1 of sample 2 is missing: its features differ between trials */
            for (int64_t i = 0; i < h1->numel; i++) mml_f32(h1)[i] = i / 3 == 2 ? mml_rng_normal(&rng) : 0.1f * (float)i;
            for (int64_t i = 0; i < s1->numel; i++) mml_f32(s1)[i] = i / 6 == 2 ? mml_rng_normal(&rng) : 0.05f * (float)i;
            mml_encoding enc[2] = { { h0, s0, NULL }, { h1, s1, NULL } };
            mml_tensor *p[2] = { present(ctx, 0), present(ctx, 1) }, *w = NULL;
            mml_tensor *out = mml_fusion_forward(ctx, f, enc, p, &w);
            CHECK(out != NULL);
            if (!out) break;
            outs[trial] = mml_f32(out);
            int64_t D = out->shape[1];
            if (w) CHECK(fabsf(mml_f32(w)[2 * 2 + 1]) < 1e-6f); /* no weight on the missing modality */
            if (trial == 1) CHECK_CLOSE(types[k], outs[1] + 2 * D, outs[0] + 2 * D, D, 0, 1e-6);
        }
        mml_ctx_free(ctx);
        mml_fusion_free(f);
        mml_params_free(ps);
    }
}

TEST(fusion_config_errors_name_the_key)
{
    static const char *const bad[][2] = {
        { "{\"type\": \"tfm\"}", "fusion: type" },
        { "{\"type\": \"early\"}", "flatten" },
        { "{\"type\": \"lowrank\", \"rank\": 0}", "fusion: rank" },
        { "{\"type\": \"crossattn\", \"d_model\": 6, \"heads\": 4}", "fusion: heads" },
        { "{\"type\": \"concat\", \"missing\": \"guess\"}", "fusion: missing" },
        { "{\"type\": \"concat\", \"colour\": 1}", "colour" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        mml_params *ps = mml_params_create();
        mml_fusion *f = NULL;
        CHECK(build(bad[k][0], &SHAPE, ps, &f) != MML_OK);
        CHECK(strstr(mml_last_error(), bad[k][1]) != NULL);
        if (!strstr(mml_last_error(), bad[k][1])) printf("    got: %s\n", mml_last_error());
        mml_params_free(ps);
    }
    mml_fusion_shape big = { .n = 3, .dim = { 512, 512, 512 }, .seq_dim = { 1, 1, 1 }, .n_out = 2 };
    mml_params *ps = mml_params_create();
    mml_fusion *f = NULL;
    CHECK(build("{\"type\": \"tensor\"}", &big, ps, &f) != MML_OK);
    CHECK(strstr(mml_last_error(), "lowrank") != NULL);
    mml_params_free(ps);
}
