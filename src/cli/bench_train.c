/* mml bench train --model cnn|gru|transformer: training samples/s (batch 64,
 * Adam) on synthetic batches, the models of issue 7 built exactly as their
 * PyTorch twins in bench/torch/train.py. Prints one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/config.h"
#include "mml/loss.h"
#include "mml/model.h"
#include "mml/nn.h"
#include "mml/optim.h"
#include "mml/progress.h"
#include "mml/threads.h"

typedef struct bench_net {
    int kind; /* 0 cnn, 1 gru, 2 transformer */
    mml_model *cnn;
    mml_params *ps;
    mml_nn_rnn gru;
    mml_nn_embedding emb;
    mml_nn_encoder_layer enc[2];
    mml_nn_linear head;
} bench_net;

static const char *CNN =
    "{\"input\": [1, 28, 28], \"layers\": [{\"type\": \"conv2d\", \"out\": 32, \"kernel\": 3, \"padding\": 1},"
    "{\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}, {\"type\": \"conv2d\", \"out\": 64, \"kernel\": 3,"
    "\"padding\": 1}, {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 2}, {\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out\": 128}, {\"type\": \"relu\"}, {\"type\": \"linear\", \"out\": 10}]}";

mml_status bench_cnn_build(mml_model **out)
{
    mml_config *cfg;
    mml_status rc = mml_config_parse(CNN, "bench-cnn", &cfg);
    mml_cfg_node root = mml_config_root(cfg);
    if (rc == MML_OK) rc = mml_model_build(&root, 0, out);
    mml_config_free(cfg);
    return rc;
}

static mml_status build(bench_net *n, mml_rng *r)
{
    if (n->kind == 0) {
        mml_status rc = bench_cnn_build(&n->cnn);
        if (rc == MML_OK) n->ps = mml_model_params(n->cnn);
        return rc;
    }
    n->ps = mml_params_create();
    if (n->kind == 1) {
        mml_status rc = mml_nn_rnn_init(&n->gru, n->ps, "gru", MML_RNN_GRU, 40, 128, 1, false, r);
        return rc == MML_OK ? mml_nn_linear_init(&n->head, n->ps, "head", 128, 10, true, r) : rc;
    }
    mml_status rc = mml_nn_embedding_init(&n->emb, n->ps, "embed", 1000, 128, r);
    for (int i = 0; i < 2 && rc == MML_OK; i++) {
        char name[32];
        snprintf(name, sizeof name, "layers.%d", i);
        rc = mml_nn_encoder_layer_init(&n->enc[i], n->ps, name, 128, 4, 512, 0.0f, MML_ACT_RELU, true, r);
    }
    return rc == MML_OK ? mml_nn_linear_init(&n->head, n->ps, "head", 128, 10, true, r) : rc;
}

static mml_tensor *forward(mml_ctx *ctx, bench_net *n, mml_tensor *x)
{
    if (n->kind == 0) return mml_model_forward(ctx, n->cnn, x);
    if (n->kind == 1) {
        mml_tensor *h;
        if (!mml_nn_rnn_forward(ctx, &n->gru, x, NULL, &h)) return NULL;
        return mml_nn_linear_forward(ctx, &n->head, mml_reshape(ctx, h, 2, (int64_t[]){ x->shape[0], -1 }));
    }
    mml_tensor *h = mml_embedding(ctx, n->emb.weight, x);
    for (int i = 0; i < 2; i++) h = mml_nn_encoder_layer_forward(ctx, &n->enc[i], h, NULL, NULL, NULL);
    return mml_nn_linear_forward(ctx, &n->head, mml_mean(ctx, h, 1, false));
}

/* Batches are made before the clock starts and reused in turn (as the
 * PyTorch twin does): the benchmark times training, not a random generator. */
#define POOL 4

static mml_tensor *batch(int kind, int64_t B, mml_rng *r)
{
    mml_tensor *x = kind == 0 ? mml_tensor_create(MML_F32, 4, (int64_t[]){ B, 1, 28, 28 }, false)
                  : kind == 1 ? mml_tensor_create(MML_F32, 3, (int64_t[]){ B, 50, 40 }, false)
                              : mml_tensor_create(MML_I32, 2, (int64_t[]){ B, 64 }, false);
    for (int64_t i = 0; x && i < x->numel; i++) {
        if (kind == 2) mml_i32(x)[i] = (int32_t)mml_rng_below(r, 1000);
        else mml_f32(x)[i] = mml_rng_normal(r);
    }
    return x;
}

static mml_tensor *labels(int64_t B, mml_rng *r)
{
    mml_tensor *y = mml_tensor_create(MML_I32, 1, &B, false);
    for (int64_t i = 0; y && i < B; i++) mml_i32(y)[i] = (int32_t)mml_rng_below(r, 10);
    return y;
}

int bench_train(int argc, char **argv)
{
    const char *usage = "mml bench train --model cnn|gru|transformer [--batch 64] [--steps 30] [--threads N]";
    static const char *const kinds[] = { "cnn", "gru", "transformer" };
    int kind = -1;
    int64_t B = 64, steps = 30, threads = 0;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (!strcmp(argv[i], "--model") && has) {
            const char *m = argv[++i];
            for (int k = 0; k < 3; k++)
                if (!strcmp(m, kinds[k])) kind = k;
            if (kind < 0) return cli_usage(usage, "--model must be cnn, gru or transformer");
        } else if (!strcmp(argv[i], "--batch") && has) {
            if (cli_parse_count(argv[++i], 1, 65536, &B)) return cli_usage(usage, "--batch needs an integer in [1, 65536]");
        } else if (!strcmp(argv[i], "--steps") && has) {
            if (cli_parse_count(argv[++i], 1, 1000000, &steps)) return cli_usage(usage, "--steps needs a positive integer");
        } else if (!strcmp(argv[i], "--threads") && has) {
            if (cli_parse_count(argv[++i], 1, 1024, &threads)) return cli_usage(usage, "--threads needs a positive integer");
        } else return cli_usage(usage, "unexpected argument");
    }
    if (kind < 0) return cli_usage(usage, "needs --model cnn|gru|transformer");
    if (threads > 0) mml_threads_set((int)threads);
    mml_rng r;
    mml_rng_seed(&r, 1);
    bench_net n = { .kind = kind };
    if (build(&n, &r) != MML_OK) return cli_fail(NULL);
    mml_optim_config oc = mml_optim_defaults(MML_OPTIM_ADAM);
    mml_optim opt;
    mml_optim_init(&opt, n.ps, &oc);
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *xs[POOL], *ys[POOL];
    int rc = CLI_OK;
    for (int i = 0; i < POOL; i++) {
        xs[i] = batch(kind, B, &r);
        ys[i] = labels(B, &r);
        if (!xs[i] || !ys[i]) rc = cli_fail(NULL);
    }
    double t0 = 0.0;
    for (int s = 0; s < steps + 3 && rc == CLI_OK; s++) {
        if (s == 3) t0 = mml_now(); /* after warm-up: arena sized, buffers grown */
        mml_ctx_reset(ctx);
        mml_params_zero_grad(n.ps);
        mml_tensor *loss = mml_loss_cross_entropy(ctx, forward(ctx, &n, xs[s % POOL]), ys[s % POOL], NULL);
        if (!loss || mml_backward(ctx, loss) != MML_OK) rc = cli_fail(NULL);
        else mml_optim_step(&opt, oc.lr);
    }
    double secs = mml_now() - t0;
    if (rc == CLI_OK)
        printf("{\"impl\": \"mml\", \"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"samples_per_second\": %.1f, "
               "\"peak_rss_mb\": %.1f}\n", kinds[kind], (long long)B, mml_threads_get(), (double)(steps * B) / secs,
               cli_peak_rss_mb());
    mml_ctx_free(ctx);
    for (int i = 0; i < POOL; i++) {
        mml_tensor_free(xs[i]);
        mml_tensor_free(ys[i]);
    }
    if (n.cnn) mml_model_free(n.cnn);
    else mml_params_free(n.ps);
    return rc;
}
