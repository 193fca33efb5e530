#include <string.h>

#include "mml/optim.h"
#include "test.h"

static mml_params *load_params(const mml_safetensors *fx)
{
    mml_params *ps = mml_params_create();
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "p0.%d", i);
        mml_tensor *src = mml_safetensors_tensor(fx, key, MML_F32);
        mml_tensor *p = mml_params_add(ps, key, src->ndim, src->shape);
        memcpy(p->data, src->data, (size_t)src->numel * sizeof(float));
        mml_tensor_free(src);
    }
    return ps;
}

static void set_grads(const mml_safetensors *fx, mml_params *ps, int step)
{
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "grad%d.%d", step, i);
        mml_tensor *g = mml_safetensors_tensor(fx, key, MML_F32);
        memcpy(mml_params_at(ps, i)->grad, g->data, (size_t)g->numel * sizeof(float));
        mml_tensor_free(g);
    }
}

TEST(optimizers_match_torch_step_by_step)
{
    mml_safetensors *fx = tst_fixture("optim.safetensors");
    if (!fx) return;
    struct { const char *name; mml_optim_config cfg; } cases[] = {
        { "sgd_momentum", { MML_OPTIM_SGD, 0.1f, 0.01f, 0, 0.9f, 0.1f, false, 0, 0, 0 } },
        { "sgd_nesterov", { MML_OPTIM_SGD, 0.05f, 0, 0, 0.8f, 0, true, 0, 0, 0 } },
        { "sgd_plain", { MML_OPTIM_SGD, 0.2f, 0, 0, 0, 0, false, 0, 0, 0 } },
        { "adam", { MML_OPTIM_ADAM, 0.01f, 0.05f, 0, 0, 0, false, 0.8f, 0.99f, 1e-6f } },
        { "adamw", { MML_OPTIM_ADAMW, 0.01f, 0.1f, 0, 0, 0, false, 0.9f, 0.999f, 1e-8f } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        mml_params *ps = load_params(fx);
        mml_optim o;
        mml_optim_init(&o, ps, &cases[c].cfg);
        for (int s = 0; s < 5; s++) {
            set_grads(fx, ps, s);
            mml_optim_step(&o, cases[c].cfg.lr);
            for (int i = 0; i < 2; i++) {
                char key[64];
                snprintf(key, sizeof key, "%s.step%d.%d", cases[c].name, s, i);
                mml_tensor *p = mml_params_at(ps, i);
                CHECK_FIXTURE(fx, key, mml_f32(p), p->numel, 1e-6, 1e-7);
            }
        }
        mml_params_free(ps);
    }
    mml_safetensors_free(fx);
}

TEST(optim_clip_freeze_and_schedules)
{
    mml_safetensors *fx = tst_fixture("optim.safetensors");
    if (!fx) return;
    mml_params *ps = load_params(fx);
    set_grads(fx, ps, 0);
    float norm = mml_clip_grad_norm(ps, 1.5f);
    mml_tensor *want = mml_safetensors_tensor(fx, "clip.norm", MML_F32);
    CHECK_NEAR(norm, mml_f32(want)[0], 1e-5 * mml_f32(want)[0]);
    mml_tensor_free(want);
    CHECK_FIXTURE(fx, "clip.grad.0", mml_params_at(ps, 0)->grad, 12, 1e-5, 1e-7);

    /* A frozen parameter does not move. */
    mml_params_freeze(ps, "p0.1", true);
    float before = mml_f32(mml_params_at(ps, 1))[0];
    mml_optim o;
    mml_optim_config cfg = mml_optim_defaults(MML_OPTIM_ADAM);
    mml_optim_init(&o, ps, &cfg);
    mml_optim_step(&o, cfg.lr);
    CHECK(mml_f32(mml_params_at(ps, 1))[0] == before);
    mml_params_free(ps);
    mml_safetensors_free(fx);

    mml_lr_schedule s = { MML_LR_COSINE, 1.0f, 10, 0, 0, 110, 0.0f };
    CHECK_NEAR(mml_lr_at(&s, 0), 0.1, 1e-6);
    CHECK_NEAR(mml_lr_at(&s, 9), 1.0, 1e-6);
    CHECK_NEAR(mml_lr_at(&s, 60), 0.5, 1e-6);
    CHECK_NEAR(mml_lr_at(&s, 200), 0.0, 1e-6);
    mml_lr_schedule st = { MML_LR_STEP, 0.1f, 0, 3, 0.5f, 0, 0 };
    CHECK_NEAR(mml_lr_at(&st, 2), 0.1, 1e-7);
    CHECK_NEAR(mml_lr_at(&st, 7), 0.025, 1e-7);
}
