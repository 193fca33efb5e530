#include <string.h>

#include "mml/alloc.h"
#include "mml/loss.h"
#include "mml/ops.h"
#include "test.h"

typedef struct loss_env {
    mml_tensor *target, *weights, *y, *yb, *p;
} loss_env;

static mml_tensor *run_case(mml_ctx *ctx, const char *name, mml_tensor *in, const loss_env *e)
{
    if (!strcmp(name, "ce")) return mml_loss_cross_entropy(ctx, in, e->target, NULL);
    if (!strcmp(name, "ce_weighted_smooth")) {
        mml_ce_options o = { e->weights, 0.1f, -100 };
        return mml_loss_cross_entropy(ctx, in, e->target, &o);
    }
    if (!strcmp(name, "ce_smooth")) {
        mml_ce_options o = { NULL, 0.2f, -100 };
        return mml_loss_cross_entropy(ctx, in, e->target, &o);
    }
    if (!strcmp(name, "mse")) return mml_loss_mse(ctx, in, e->y);
    if (!strcmp(name, "l1")) return mml_loss_l1(ctx, in, e->y);
    if (!strcmp(name, "smooth_l1")) return mml_loss_smooth_l1(ctx, in, e->y, 0.5f);
    if (!strcmp(name, "bce_logits")) return mml_loss_bce_with_logits(ctx, mml_mul_scalar(ctx, in, 3.0f), e->yb);
    return mml_loss_kl_div(ctx, mml_log_softmax(ctx, in, -1), e->p);
}

static mml_tensor *gc_fn(mml_ctx *ctx, mml_tensor **in, void *arg)
{
    const void **a = arg;
    return run_case(ctx, a[0], in[0], a[1]);
}

TEST(losses_match_pytorch_and_finite_differences)
{
    mml_safetensors *fx = tst_fixture("loss.safetensors");
    if (!fx) return;
    loss_env e = { mml_safetensors_tensor(fx, "target", MML_I64), tst_fixture_tensor(fx, "weights", false),
                   tst_fixture_tensor(fx, "y", false), tst_fixture_tensor(fx, "yb", false),
                   tst_fixture_tensor(fx, "p", false) };
    static const char *names[] = { "ce", "ce_weighted_smooth", "ce_smooth", "mse", "l1", "smooth_l1", "bce_logits", "kl_div" };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        bool is_ce = !strncmp(names[k], "ce", 2);
        mml_tensor *in = tst_fixture_tensor(fx, is_ce ? "logits" : "x", true);
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *loss = run_case(ctx, names[k], in, &e);
        char key[64];
        CHECK_MSG(loss != NULL, "%s: %s", names[k], mml_last_error());
        if (loss) {
            snprintf(key, sizeof key, "%s.loss", names[k]);
            CHECK_FIXTURE(fx, key, mml_f32(loss), 1, 1e-5, 1e-7);
            CHECK_OK(mml_backward(ctx, loss));
            snprintf(key, sizeof key, "%s.grad", names[k]);
            CHECK_FIXTURE(fx, key, in->grad, in->numel, 1e-4, 1e-6);
        }
        mml_ctx_free(ctx);
        const void *arg[2] = { names[k], &e };
        mml_tensor *inputs[1] = { in };
        if (strcmp(names[k], "l1") != 0) CHECK_GRAD(names[k], gc_fn, inputs, 1, (void *)arg);
        mml_free(in->grad);
        in->grad = NULL;
        mml_tensor_free(in);
    }
    mml_tensor_free(e.target);
    mml_tensor_free(e.weights);
    mml_tensor_free(e.y);
    mml_tensor_free(e.yb);
    mml_tensor_free(e.p);
    mml_safetensors_free(fx);
}

TEST(cross_entropy_rejects_bad_targets)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *z = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ 2, 3 });
    mml_tensor *t = mml_zeros(ctx, MML_I32, 1, (int64_t[]){ 2 });
    mml_i32(t)[1] = 3;
    CHECK(mml_loss_cross_entropy(ctx, z, t, NULL) == NULL && strstr(mml_last_error(), "cross_entropy: target 3"));
    mml_ctx_free(ctx);
}

typedef struct pair_env {
    const char *name;
    mml_tensor *y;
} pair_env;

static mml_tensor *pair_loss(mml_ctx *ctx, mml_tensor **in, void *arg)
{
    const pair_env *e = arg;
    const char *n = e->name;
    if (!strcmp(n, "cosine_embedding")) return mml_loss_cosine_embedding(ctx, in[0], in[1], e->y, 0.2f);
    if (!strcmp(n, "margin_ranking")) {
        mml_tensor *u = mml_reshape(ctx, mml_slice(ctx, in[0], 1, 0, 1, 1), 1, (int64_t[]){ -1 });
        mml_tensor *v = mml_reshape(ctx, mml_slice(ctx, in[1], 1, 0, 1, 1), 1, (int64_t[]){ -1 });
        return mml_loss_margin_ranking(ctx, u, v, e->y, 0.3f);
    }
    if (!strcmp(n, "hinge_sum")) return mml_loss_hinge_ranking(ctx, in[0], in[1], 0.2f, false);
    if (!strcmp(n, "hinge_hardest")) return mml_loss_hinge_ranking(ctx, in[0], in[1], 0.2f, true);
    return mml_loss_info_nce(ctx, in[0], in[1], in[2]);
}

TEST(pair_losses_match_pytorch)
{
    mml_safetensors *fx = tst_fixture("loss.safetensors");
    if (!fx) return;
    static const char *names[] = { "cosine_embedding", "margin_ranking", "hinge_sum", "hinge_hardest", "info_nce" };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        mml_tensor *in[3] = { tst_fixture_tensor(fx, "pair.a", true), tst_fixture_tensor(fx, "pair.b", true),
                              tst_fixture_tensor(fx, "pair.log_scale", true) };
        pair_env e = { names[k], tst_fixture_tensor(fx, "pair.y", false) };
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *loss = pair_loss(ctx, in, &e);
        char key[64];
        CHECK_MSG(loss != NULL, "%s: %s", names[k], mml_last_error());
        if (loss) {
            snprintf(key, sizeof key, "%s.loss", names[k]);
            CHECK_FIXTURE(fx, key, mml_f32(loss), 1, 1e-5, 1e-7);
            CHECK_OK(mml_backward(ctx, loss));
            const char *suffix[3] = { "grad_a", "grad_b", "grad_scale" };
            for (int i = 0; i < 3; i++) {
                snprintf(key, sizeof key, "%s.%s", names[k], suffix[i]);
                CHECK_FIXTURE(fx, key, in[i]->grad, in[i]->numel, 1e-4, 1e-6);
            }
        }
        mml_ctx_free(ctx);
        if (k >= 2) CHECK_GRAD(names[k], pair_loss, in, 3, &e);
        for (int i = 0; i < 3; i++) {
            mml_free(in[i]->grad);
            in[i]->grad = NULL;
            mml_tensor_free(in[i]);
        }
        mml_tensor_free(e.y);
    }
    mml_safetensors_free(fx);
}

static mml_tensor *supcon_loss(mml_ctx *ctx, mml_tensor **in, void *labels)
{
    return mml_loss_supcon(ctx, in[0], in[1], labels, 0.1f);
}

TEST(supcon_matches_pytorch_and_finite_differences)
{
    mml_safetensors *fx = tst_fixture("loss.safetensors");
    if (!fx) return;
    mml_tensor *in[2] = { tst_fixture_tensor(fx, "supcon.a", true), tst_fixture_tensor(fx, "supcon.b", true) };
    mml_tensor *labels = mml_safetensors_tensor(fx, "supcon.labels", MML_I32);
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *loss = supcon_loss(ctx, in, labels);
    CHECK_MSG(loss != NULL, "supcon: %s", mml_last_error());
    if (loss) {
        CHECK_FIXTURE(fx, "supcon.loss", mml_f32(loss), 1, 1e-5, 1e-6);
        CHECK_OK(mml_backward(ctx, loss));
        CHECK_FIXTURE(fx, "supcon.grad_a", in[0]->grad, in[0]->numel, 1e-4, 1e-5);
        CHECK_FIXTURE(fx, "supcon.grad_b", in[1]->grad, in[1]->numel, 1e-4, 1e-5);
    }
    mml_ctx_free(ctx);
    CHECK_GRAD("supcon", supcon_loss, in, 2, labels);
    for (int i = 0; i < 2; i++) {
        mml_free(in[i]->grad);
        in[i]->grad = NULL;
        mml_tensor_free(in[i]);
    }
    mml_tensor_free(labels);
    mml_safetensors_free(fx);
}

TEST(supcon_rejects_bad_labels)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *a = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ 3, 4 }), *b = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ 3, 4 });
    mml_tensor *as_float = mml_zeros(ctx, MML_F32, 1, (int64_t[]){ 3 });
    mml_tensor *too_short = mml_zeros(ctx, MML_I32, 1, (int64_t[]){ 2 });
    mml_tensor *matrix = mml_zeros(ctx, MML_I32, 2, (int64_t[]){ 3, 1 });
    mml_tensor *bad[] = { as_float, too_short, matrix };
    for (int i = 0; i < 3; i++)
        CHECK(mml_loss_supcon(ctx, a, b, bad[i], 0.1f) == NULL && mml_last_status() == MML_ERR_SHAPE &&
              strstr(mml_last_error(), "supcon: labels must be int32 or int64 [3]"));
    mml_tensor *labels = mml_zeros(ctx, MML_I32, 1, (int64_t[]){ 3 });
    CHECK(mml_loss_supcon(ctx, a, mml_zeros(ctx, MML_F32, 2, (int64_t[]){ 3, 5 }), labels, 0.1f) == NULL &&
          strstr(mml_last_error(), "supcon: a and b"));
    CHECK(mml_loss_supcon(ctx, a, b, labels, 0.0f) == NULL && strstr(mml_last_error(), "supcon: temperature"));
    mml_ctx_free(ctx);
}
