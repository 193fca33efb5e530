/* Layers against PyTorch: weights exported from torch modules load under the
 * same names; outputs and every parameter and input gradient must match. */
#include <string.h>

#include "core/op.h"
#include "mml/alloc.h"
#include "mml/nn.h"
#include "test.h"

typedef struct layer_case {
    mml_safetensors *fx;
    mml_params *ps;
    mml_ctx *ctx;
    mml_rng rng;
} layer_case;

static bool open_case(layer_case *c)
{
    c->fx = tst_fixture("nn.safetensors");
    c->ps = mml_params_create();
    c->ctx = mml_ctx_create();
    mml_rng_seed(&c->rng, 1);
    return c->fx != NULL;
}

static void load_weights(layer_case *c)
{
    for (int i = 0; i < mml_params_count(c->ps); i++) {
        mml_tensor *t = mml_params_at(c->ps, i);
        CHECK_MSG(mml_safetensors_read_into(c->fx, t->name, t) == MML_OK, "%s", mml_last_error());
    }
}

/* An input from the fixture as a step tensor that requires a gradient. */
static mml_tensor *input(layer_case *c, const char *key)
{
    mml_tensor *h = mml_safetensors_tensor(c->fx, key, MML_F32);
    if (!h) return NULL;
    mml_tensor *t = mml_copy(c->ctx, h);
    mml_tensor_free(h);
    t->requires_grad = true;
    return t;
}

static mml_tensor *projected(layer_case *c, mml_tensor *y, const char *rkey)
{
    mml_tensor *r = mml_safetensors_tensor(c->fx, rkey, MML_F32);
    mml_tensor *rt = r ? mml_copy(c->ctx, r) : NULL;
    mml_tensor_free(r);
    return mml_sum(c->ctx, mml_mul(c->ctx, y, rt), MML_AXIS_ALL, false);
}

static void check_grads(layer_case *c, const char *prefix, mml_tensor *const *inputs, const char *const *names, int n)
{
    char key[256];
    for (int i = 0; i < mml_params_count(c->ps); i++) {
        mml_tensor *t = mml_params_at(c->ps, i);
        snprintf(key, sizeof key, "grad.%s", t->name);
        CHECK_FIXTURE(c->fx, key, t->grad, t->numel, 1e-4, 1e-5);
    }
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "grad.%s.%s", prefix, names[i]);
        CHECK_FIXTURE(c->fx, key, inputs[i]->grad, inputs[i]->numel, 1e-4, 1e-5);
    }
}

static void close_case(layer_case *c)
{
    mml_ctx_free(c->ctx);
    mml_params_free(c->ps);
    mml_safetensors_free(c->fx);
}

static void rnn_case(const char *prefix, mml_rnn_kind kind, int64_t in, int64_t hidden, int layers, bool bidir)
{
    layer_case c;
    if (!open_case(&c)) return;
    mml_nn_rnn r;
    CHECK_OK(mml_nn_rnn_init(&r, c.ps, prefix, kind, in, hidden, layers, bidir, &c.rng));
    load_weights(&c);
    char key[128];
    snprintf(key, sizeof key, "%s.in.x", prefix);
    mml_tensor *x = input(&c, key);
    snprintf(key, sizeof key, "%s.in.lengths", prefix);
    mml_tensor *lengths = mml_safetensors_tensor(c.fx, key, MML_I32);
    mml_tensor *h_n = NULL;
    mml_tensor *y = mml_nn_rnn_forward(c.ctx, &r, x, lengths, &h_n);
    CHECK_MSG(y && h_n, "%s: %s", prefix, mml_last_error());
    if (y && h_n) {
        snprintf(key, sizeof key, "%s.out.y", prefix);
        CHECK_FIXTURE(c.fx, key, mml_f32(y), y->numel, 1e-4, 1e-6);
        snprintf(key, sizeof key, "%s.out.h_n", prefix);
        CHECK_FIXTURE(c.fx, key, mml_f32(h_n), h_n->numel, 1e-4, 1e-6);
        char ry[128], rh[128];
        snprintf(ry, sizeof ry, "%s.r.y", prefix);
        snprintf(rh, sizeof rh, "%s.r.h_n", prefix);
        CHECK_OK(mml_backward(c.ctx, mml_add(c.ctx, projected(&c, y, ry), projected(&c, h_n, rh))));
        check_grads(&c, prefix, &x, (const char *[]){ "x" }, 1);
    }
    mml_tensor_free(lengths);
    close_case(&c);
}

TEST(nn_gru_bidirectional_two_layers_with_lengths_matches_pytorch) { rnn_case("gru", MML_RNN_GRU, 5, 4, 2, true); }
TEST(nn_lstm_bidirectional_with_lengths_matches_pytorch) { rnn_case("lstm", MML_RNN_LSTM, 5, 4, 1, true); }
TEST(nn_gru_plain_matches_pytorch) { rnn_case("gru1", MML_RNN_GRU, 3, 5, 1, false); }

TEST(nn_attention_with_masks_matches_pytorch)
{
    layer_case c;
    if (!open_case(&c)) return;
    mml_nn_mha a;
    CHECK_OK(mml_nn_mha_init(&a, c.ps, "mha", 8, 2, 0.0f, &c.rng));
    load_weights(&c);
    mml_tensor *x = input(&c, "mha.in.x");
    mml_tensor *pad = mml_safetensors_tensor(c.fx, "mha.in.pad", MML_I32);
    mml_tensor *causal = mml_safetensors_tensor(c.fx, "mha.in.causal", MML_I32);
    mml_tensor *w = NULL;
    mml_tensor *y = mml_nn_mha_forward(c.ctx, &a, x, x, x, pad, causal, &c.rng, &w);
    CHECK_MSG(y != NULL, "%s", mml_last_error());
    if (y) {
        CHECK_FIXTURE(c.fx, "mha.out.y", mml_f32(y), y->numel, 1e-4, 1e-6);
        CHECK_FIXTURE(c.fx, "mha.out.w", mml_f32(w), w->numel, 1e-4, 1e-6);
        CHECK_OK(mml_backward(c.ctx, projected(&c, y, "mha.r.y")));
        check_grads(&c, "mha", &x, (const char *[]){ "x" }, 1);
    }
    mml_tensor_free(pad);
    mml_tensor_free(causal);
    close_case(&c);

    if (!open_case(&c)) return;
    CHECK_OK(mml_nn_mha_init(&a, c.ps, "cross", 8, 4, 0.0f, &c.rng));
    load_weights(&c);
    mml_tensor *q = input(&c, "cross.in.q"), *kv = input(&c, "cross.in.kv");
    y = mml_nn_mha_forward(c.ctx, &a, q, kv, kv, NULL, NULL, &c.rng, NULL);
    CHECK(y != NULL);
    if (y) {
        CHECK_FIXTURE(c.fx, "cross.out.y", mml_f32(y), y->numel, 1e-4, 1e-6);
        CHECK_OK(mml_backward(c.ctx, projected(&c, y, "cross.r.y")));
        check_grads(&c, "cross", (mml_tensor *[]){ q, kv }, (const char *[]){ "q", "kv" }, 2);
    }
    close_case(&c);
}

static void encoder_case(const char *prefix, bool pre_norm, mml_activation act)
{
    layer_case c;
    if (!open_case(&c)) return;
    mml_nn_encoder_layer l;
    CHECK_OK(mml_nn_encoder_layer_init(&l, c.ps, prefix, 8, 2, 16, 0.0f, act, pre_norm, &c.rng));
    load_weights(&c);
    char key[64];
    snprintf(key, sizeof key, "%s.in.x", prefix);
    mml_tensor *x = input(&c, key);
    mml_tensor *pad = mml_safetensors_tensor(c.fx, "mha.in.pad", MML_I32);
    mml_tensor *y = mml_nn_encoder_layer_forward(c.ctx, &l, x, pad, NULL, &c.rng);
    CHECK_MSG(y != NULL, "%s", mml_last_error());
    if (y) {
        snprintf(key, sizeof key, "%s.out.y", prefix);
        CHECK_FIXTURE(c.fx, key, mml_f32(y), y->numel, 1e-4, 1e-5);
        snprintf(key, sizeof key, "%s.r.y", prefix);
        CHECK_OK(mml_backward(c.ctx, projected(&c, y, key)));
        check_grads(&c, prefix, &x, (const char *[]){ "x" }, 1);
    }
    mml_tensor_free(pad);
    close_case(&c);
}

TEST(nn_transformer_encoder_post_norm_matches_pytorch) { encoder_case("enc_post", false, MML_ACT_RELU); }
TEST(nn_transformer_encoder_pre_norm_gelu_matches_pytorch) { encoder_case("enc_pre", true, MML_ACT_GELU); }

TEST(nn_transformer_decoder_matches_pytorch)
{
    layer_case c;
    if (!open_case(&c)) return;
    mml_nn_decoder_layer l;
    CHECK_OK(mml_nn_decoder_layer_init(&l, c.ps, "dec", 8, 2, 16, 0.0f, MML_ACT_RELU, false, &c.rng));
    load_weights(&c);
    mml_tensor *t = input(&c, "dec.in.tgt"), *mem = input(&c, "dec.in.mem");
    mml_tensor *y = mml_nn_decoder_layer_forward(c.ctx, &l, t, mem, mml_causal_mask(c.ctx, 4), NULL, NULL, &c.rng);
    CHECK_MSG(y != NULL, "%s", mml_last_error());
    if (y) {
        CHECK_FIXTURE(c.fx, "dec.out.y", mml_f32(y), y->numel, 1e-4, 1e-5);
        CHECK_OK(mml_backward(c.ctx, projected(&c, y, "dec.r.y")));
        check_grads(&c, "dec", (mml_tensor *[]){ t, mem }, (const char *[]){ "tgt", "mem" }, 2);
    }
    close_case(&c);
}

static void block_case(const char *prefix)
{
    layer_case c;
    if (!open_case(&c)) return;
    mml_nn_resnet_block rb;
    mml_nn_patch_embed pe;
    mml_nn_mlp mlp;
    bool res = !strncmp(prefix, "resblock", 8);
    if (!strcmp(prefix, "resblock")) CHECK_OK(mml_nn_resnet_block_init(&rb, c.ps, prefix, 3, 6, 2, &c.rng));
    else if (res) CHECK_OK(mml_nn_resnet_block_init(&rb, c.ps, prefix, 4, 4, 1, &c.rng));
    else if (!strcmp(prefix, "patch")) CHECK_OK(mml_nn_patch_embed_init(&pe, c.ps, prefix, 3, 8, 4, 6, &c.rng));
    else CHECK_OK(mml_nn_mlp_init(&mlp, c.ps, prefix, (int64_t[]){ 5, 7, 4, 3 }, 4, MML_ACT_RELU, 0.0f, &c.rng));
    for (int i = 0; i < mml_params_count(c.ps); i++) { /* weights only: buffers start as torch's do */
        mml_tensor *t = mml_params_at(c.ps, i);
        if (!mml_params_is_buffer(c.ps, i))
            CHECK_MSG(mml_safetensors_read_into(c.fx, t->name, t) == MML_OK, "%s", mml_last_error());
    }
    char key[128];
    snprintf(key, sizeof key, "%s.in.x", prefix);
    mml_tensor *x = input(&c, key);
    mml_tensor *y = res ? mml_nn_resnet_block_forward(c.ctx, &rb, x)
                  : !strcmp(prefix, "patch") ? mml_nn_patch_embed_forward(c.ctx, &pe, x)
                                             : mml_nn_mlp_forward(c.ctx, &mlp, x, &c.rng);
    CHECK_MSG(y != NULL, "%s: %s", prefix, mml_last_error());
    if (y) {
        snprintf(key, sizeof key, "%s.out.y", prefix);
        CHECK_FIXTURE(c.fx, key, mml_f32(y), y->numel, 1e-4, 1e-5);
        snprintf(key, sizeof key, "%s.r.y", prefix);
        CHECK_OK(mml_backward(c.ctx, projected(&c, y, key)));
        for (int i = 0; i < mml_params_count(c.ps); i++) {
            mml_tensor *t = mml_params_at(c.ps, i);
            const char *local = t->name + strlen(prefix) + 1;
            if (mml_params_is_buffer(c.ps, i)) snprintf(key, sizeof key, "%s.after.%s", prefix, local);
            else snprintf(key, sizeof key, "grad.%s", t->name);
            CHECK_FIXTURE(c.fx, key, mml_params_is_buffer(c.ps, i) ? mml_f32(t) : t->grad, t->numel, 1e-4, 1e-5);
        }
        snprintf(key, sizeof key, "grad.%s.x", prefix);
        CHECK_FIXTURE(c.fx, key, x->grad, x->numel, 1e-4, 1e-5);
    }
    close_case(&c);
}

TEST(nn_resnet_block_with_downsample_matches_pytorch) { block_case("resblock"); }
TEST(nn_resnet_block_identity_matches_pytorch) { block_case("resblock_same"); }
TEST(nn_vit_patch_embedding_matches_pytorch) { block_case("patch"); }
TEST(nn_mlp_matches_pytorch) { block_case("mlp"); }
