/* 20 Adam steps of three small classifiers from PyTorch's initial weights on
 * PyTorch's batches: every step's loss within 1e-4 relative of PyTorch's. */
#include <string.h>

#include "mml/alloc.h"
#include "mml/config.h"
#include "mml/loss.h"
#include "mml/model.h"
#include "mml/nn.h"
#include "mml/optim.h"
#include "test.h"

#define STEPS 20

typedef struct parity_net {
    const char *name;
    mml_params *ps;
    mml_model *cnn;
    mml_nn_rnn gru;
    mml_nn_embedding embed;
    mml_nn_encoder_layer enc[2];
    mml_nn_linear head;
} parity_net;

static mml_tensor *forward(mml_ctx *ctx, parity_net *n, mml_tensor *x)
{
    if (n->cnn) return mml_model_forward(ctx, n->cnn, x);
    if (!strcmp(n->name, "gru")) {
        mml_tensor *h_n;
        if (!mml_nn_rnn_forward(ctx, &n->gru, x, NULL, &h_n)) return NULL;
        return mml_nn_linear_forward(ctx, &n->head, mml_reshape(ctx, h_n, 2, (int64_t[]){ x->shape[0], -1 }));
    }
    mml_tensor *h = mml_embedding(ctx, n->embed.weight, x);
    for (int i = 0; i < 2; i++) h = mml_nn_encoder_layer_forward(ctx, &n->enc[i], h, NULL, NULL, NULL);
    return mml_nn_linear_forward(ctx, &n->head, mml_mean(ctx, h, 1, false));
}

static void build(parity_net *n, mml_rng *rng)
{
    if (!strcmp(n->name, "cnn")) {
        const char *cfg_text = "{\"input\": [1, 8, 8], \"layers\": [{\"type\": \"conv2d\", \"out\": 4, \"kernel\": 3, "
                               "\"padding\": 1}, {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}, "
                               "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 3}]}";
        mml_config *cfg;
        CHECK_OK(mml_config_parse(cfg_text, "cnn.json", &cfg));
        mml_cfg_node root = mml_config_root(cfg);
        CHECK_OK(mml_model_build(&root, 0, &n->cnn));
        mml_config_free(cfg);
        n->ps = n->cnn ? mml_model_params(n->cnn) : NULL;
        return;
    }
    n->ps = mml_params_create();
    if (!strcmp(n->name, "gru")) {
        CHECK_OK(mml_nn_rnn_init(&n->gru, n->ps, "gru", MML_RNN_GRU, 6, 8, 1, false, rng));
        CHECK_OK(mml_nn_linear_init(&n->head, n->ps, "head", 8, 3, true, rng));
        return;
    }
    CHECK_OK(mml_nn_embedding_init(&n->embed, n->ps, "embed", 20, 16, rng));
    CHECK_OK(mml_nn_encoder_layer_init(&n->enc[0], n->ps, "layers.0", 16, 2, 32, 0.0f, MML_ACT_RELU, true, rng));
    CHECK_OK(mml_nn_encoder_layer_init(&n->enc[1], n->ps, "layers.1", 16, 2, 32, 0.0f, MML_ACT_RELU, true, rng));
    CHECK_OK(mml_nn_linear_init(&n->head, n->ps, "head", 16, 3, true, rng));
}

static void run_parity(const char *name)
{
    mml_safetensors *fx = tst_fixture("train.safetensors");
    if (!fx) return;
    parity_net n = { .name = name };
    mml_rng rng;
    mml_rng_seed(&rng, 0);
    build(&n, &rng);
    if (!n.ps) return;
    char key[256];
    for (int i = 0; i < mml_params_count(n.ps); i++) {
        mml_tensor *t = mml_params_at(n.ps, i);
        snprintf(key, sizeof key, "%s.init.%s", name, t->name);
        CHECK_MSG(mml_safetensors_read_into(fx, key, t) == MML_OK, "%s", mml_last_error());
    }
    mml_optim_config oc = mml_optim_defaults(MML_OPTIM_ADAM);
    oc.lr = 0.01f;
    mml_optim opt;
    mml_optim_init(&opt, n.ps, &oc);
    snprintf(key, sizeof key, "%s.losses", name);
    mml_tensor *want = mml_safetensors_tensor(fx, key, MML_F32);
    mml_ctx *ctx = mml_ctx_create();
    float got[STEPS] = { 0 };
    for (int s = 0; s < STEPS; s++) {
        mml_ctx_reset(ctx);
        snprintf(key, sizeof key, "%s.x%d", name, s);
        const mml_st_entry *e = mml_safetensors_find(fx, key);
        mml_tensor *xh = mml_safetensors_tensor(fx, key, e && e->dtype == MML_I32 ? MML_I32 : MML_F32);
        snprintf(key, sizeof key, "%s.y%d", name, s);
        mml_tensor *yh = mml_safetensors_tensor(fx, key, MML_I32);
        mml_tensor *x = mml_copy(ctx, xh), *y = mml_copy(ctx, yh);
        mml_tensor_free(xh);
        mml_tensor_free(yh);
        mml_params_zero_grad(n.ps);
        mml_tensor *loss = mml_loss_cross_entropy(ctx, forward(ctx, &n, x), y, NULL);
        if (!loss) {
            tst_fail(__FILE__, __LINE__, "%s step %d: %s", name, s, mml_last_error());
            break;
        }
        got[s] = mml_f32(loss)[0];
        CHECK_OK(mml_backward(ctx, loss));
        mml_optim_step(&opt, oc.lr);
    }
    if (want) CHECK_CLOSE(name, got, mml_f32(want), STEPS, 1e-4, 1e-6);
    mml_tensor_free(want);
    mml_ctx_free(ctx);
    if (n.cnn) mml_model_free(n.cnn);
    else mml_params_free(n.ps);
    mml_safetensors_free(fx);
}

TEST(training_parity_cnn_20_adam_steps) { run_parity("cnn"); }
TEST(training_parity_gru_20_adam_steps) { run_parity("gru"); }
TEST(training_parity_transformer_20_adam_steps) { run_parity("transformer"); }

/* Evaluation of a batch larger than the model's evaluation chunk runs it a
 * chunk at a time: the same outputs and sequence features as one pass, and an
 * arena that holds a chunk's intermediates, not the batch's. */
TEST(model_eval_in_chunks_equals_one_pass)
{
    static const char *text =
        "{\"input\": [1, 12, 10], \"layers\": [{\"type\": \"conv2d\", \"out\": 6, \"kernel\": 3, \"padding\": 1},"
        "{\"type\": \"batch_norm\"}, {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2},"
        "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 7}]}";
    mml_config *cfg;
    mml_model *m = NULL;
    CHECK_OK(mml_config_parse(text, "chunks.json", &cfg));
    mml_cfg_node root = mml_config_root(cfg);
    CHECK_OK(mml_model_build(&root, 3, &m));
    mml_config_free(cfg);
    if (!m) return;
    enum { N = 200 };
    mml_tensor *x = mml_tensor_create(MML_F32, 4, (int64_t[]){ N, 1, 12, 10 }, false);
    mml_rng r;
    mml_rng_seed(&r, 2);
    for (int64_t i = 0; i < x->numel; i++) mml_f32(x)[i] = mml_rng_normal(&r);
    mml_tensor *y[2], *seq[2];
    size_t peak[2];
    for (int chunked = 0; chunked < 2; chunked++) {
        mml_ctx *ctx = mml_ctx_create();
        mml_set_training(ctx, false);
        mml_set_grad_enabled(ctx, chunked == 1); /* gradients on: one pass */
        mml_tensor *out = mml_model_forward_seq(ctx, m, x, &seq[chunked]);
        CHECK(out != NULL && seq[chunked] != NULL);
        y[chunked] = out ? mml_tensor_create(MML_F32, out->ndim, out->shape, false) : NULL;
        if (y[chunked]) memcpy(y[chunked]->data, out->data, (size_t)out->numel * sizeof(float));
        mml_tensor *s = seq[chunked];
        seq[chunked] = s ? mml_tensor_create(MML_F32, s->ndim, s->shape, false) : NULL;
        if (seq[chunked]) memcpy(seq[chunked]->data, s->data, (size_t)s->numel * sizeof(float));
        peak[chunked] = mml_ctx_peak_bytes(ctx);
        mml_ctx_free(ctx);
    }
    if (y[0] && y[1] && seq[0] && seq[1]) {
        CHECK(y[0]->ndim == y[1]->ndim && y[0]->numel == y[1]->numel && seq[0]->numel == seq[1]->numel);
        CHECK(seq[0]->ndim == 4 && seq[0]->shape[0] == N && seq[0]->shape[1] == 6 && seq[0]->shape[2] == 6);
        if (y[0]->numel == y[1]->numel) CHECK_CLOSE("chunked output", mml_f32(y[1]), mml_f32(y[0]), y[0]->numel, 0, 0);
        if (seq[0]->numel == seq[1]->numel)
            CHECK_CLOSE("chunked sequence", mml_f32(seq[1]), mml_f32(seq[0]), seq[0]->numel, 0, 0);
        CHECK_MSG(peak[0] < peak[1] / 3, "arena peak %zu chunked, %zu in one pass", peak[0], peak[1]);
    }
    for (int k = 0; k < 2; k++) {
        mml_tensor_free(y[k]);
        mml_tensor_free(seq[k]);
    }
    mml_tensor_free(x);
    mml_model_free(m);
}
