/* mml bench infer --model cnn|fusion: inference on synthetic inputs without
 * gradients, the median time of one forward pass over many after a warm-up:
 * latency at batch 1, samples/s at batch 256. cnn is (a) of mml bench train;
 * fusion is the model of a multimodal config (--config), built without its
 * data. bench/torch/infer.py is the PyTorch twin. One JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/progress.h"
#include "mml/rng.h"
#include "mml/threads.h"

static const char *USAGE = "mml bench infer --model cnn|fusion [--config FILE] [--batch 1] [--iters 200] [--threads N]";

enum { AVDIGITS_CLASSES = 10 }; /* the class count the fusion configs are benchmarked with */

typedef struct infer_net {
    mml_model *cnn;
    mml_config *cfg;
    mml_mm_data d;
    mml_dataset shapes;
    mml_mm_model *mm;
    mml_batch b;            /* heap tensors, made once */
    mml_tensor *owned[3 * MML_MOD_COUNT];
    int n_owned;
} infer_net;

static mml_tensor *input(infer_net *n, mml_dtype dt, int ndim, const int64_t *shape)
{
    mml_tensor *t = mml_tensor_create(dt, ndim, shape, false);
    if (t) n->owned[n->n_owned++] = t;
    return t;
}

static void fill_normal(mml_tensor *t, mml_rng *r)
{
    for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = mml_rng_normal(r);
}

/* A model needs only the features' shapes and the class count: a dataset
 * holding the featurizer's shapes stands in for the training split, so the
 * process holds the model and its inputs and no data. */
static mml_status fusion_open(infer_net *n, const char *path)
{
    mml_cfg_node root, data, model;
    bool mods[MML_MOD_COUNT];
    mml_mm_data_options dopt = { .on_error = MML_ON_ERROR_FAIL };
    const char *slash = strrchr(path, '/');
    char dir[1024];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    mml_status rc = mml_config_load(path, &n->cfg);
    if (rc == MML_OK) root = mml_config_root(n->cfg);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "data", true, &data);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "model", true, &model);
    if (rc == MML_OK) rc = mml_mm_modalities(&model, mods);
    if (rc == MML_OK) rc = mml_mm_data_open_features(&data, dir, mods, &dopt, &n->d);
    if (rc != MML_OK) return rc;
    memcpy(n->shapes.spec, n->d.fz.spec, sizeof n->shapes.spec);
    n->d.ds[MML_SPLIT_TRAIN] = &n->shapes;
    n->d.n_classes = AVDIGITS_CLASSES;
    rc = mml_mm_model_build(&model, &n->d, 0, &n->mm);
    n->d.ds[MML_SPLIT_TRAIN] = NULL;
    return rc;
}

static mml_status make_inputs(infer_net *n, int64_t B, mml_rng *r)
{
    n->b.size = B;
    if (n->cnn) {
        mml_tensor *x = input(n, MML_F32, 4, (int64_t[]){ B, 1, 28, 28 });
        if (!x) return MML_ERR_NOMEM;
        fill_normal(x, r);
        n->b.x[MML_MOD_IMAGE] = x;
        return MML_OK;
    }
    mml_modality mods[MML_MOD_COUNT];
    int k = mml_mm_model_modalities(n->mm, mods);
    for (int i = 0; i < k; i++) {
        const mml_feature_spec *s = &n->d.fz.spec[mods[i]];
        int64_t shape[MML_FEATURE_MAX_DIMS + 1] = { B };
        memcpy(shape + 1, s->shape, (size_t)s->ndim * sizeof *shape);
        mml_tensor *x = input(n, s->dtype, s->ndim + 1, shape), *p = input(n, MML_F32, 1, &B);
        mml_tensor *len = s->seq_axis >= 0 ? input(n, MML_I32, 1, &B) : NULL;
        if (!x || !p || (s->seq_axis >= 0 && !len)) return MML_ERR_NOMEM;
        if (s->dtype != MML_F32) return mml_error(MML_ERR_ARG, "mml bench infer: token inputs are not supported");
        fill_normal(x, r);
        for (int64_t j = 0; j < B; j++) mml_f32(p)[j] = 1.0f;
        for (int64_t j = 0; len && j < B; j++) mml_i32(len)[j] = (int32_t)s->shape[s->seq_axis];
        n->b.x[mods[i]] = x, n->b.present[mods[i]] = p, n->b.length[mods[i]] = len;
    }
    return MML_OK;
}

static void infer_close(infer_net *n)
{
    for (int i = 0; i < n->n_owned; i++) mml_tensor_free(n->owned[i]);
    mml_model_free(n->cnn);
    mml_mm_model_free(n->mm);
    if (n->cfg) mml_mm_data_close(&n->d);
    mml_config_free(n->cfg);
}

int bench_infer(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nForward passes without gradients on synthetic inputs: --model cnn is (a) of mml bench train, "
               "--model fusion the model of a multimodal config (--config, e.g. the avdigits GMU model), %d classes. "
               "Prints one JSON object: model, batch, threads, median_ms (of --iters passes after a tenth as many "
               "warm-up passes), samples_per_second, peak_rss_mb.\n", USAGE, AVDIGITS_CLASSES);
        return CLI_OK;
    }
    const char *model = NULL, *config = NULL;
    int64_t B = 1, iters = 200, threads = 0;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (!strcmp(argv[i], "--model") && has) {
            model = argv[++i];
            if (strcmp(model, "cnn") && strcmp(model, "fusion")) return cli_usage(USAGE, "--model must be cnn or fusion");
        } else if (!strcmp(argv[i], "--config") && has) config = argv[++i];
        else if (!strcmp(argv[i], "--batch") && has) {
            if (cli_parse_count(argv[++i], 1, 65536, &B)) return cli_usage(USAGE, "--batch needs an integer in [1, 65536]");
        } else if (!strcmp(argv[i], "--iters") && has) {
            if (cli_parse_count(argv[++i], 1, 1000000, &iters)) return cli_usage(USAGE, "--iters needs a positive integer");
        } else if (!strcmp(argv[i], "--threads") && has) {
            if (cli_parse_count(argv[++i], 1, 1024, &threads)) return cli_usage(USAGE, "--threads needs a positive integer");
        } else return cli_usage(USAGE, "unexpected argument");
    }
    if (!model) return cli_usage(USAGE, "needs --model cnn|fusion");
    bool fusion = !strcmp(model, "fusion");
    if (fusion != (config != NULL)) return cli_usage(USAGE, "--config goes with --model fusion, and only with it");
    if (threads > 0) mml_threads_set((int)threads);
    infer_net n = { 0 };
    mml_rng r;
    mml_rng_seed(&r, 1);
    mml_ctx *ctx = mml_ctx_create();
    double *times = mml_malloc((size_t)iters * sizeof *times);
    mml_status rc = ctx && times ? MML_OK : MML_ERR_NOMEM;
    if (rc == MML_OK) rc = fusion ? fusion_open(&n, config) : bench_cnn_build(&n.cnn);
    if (rc == MML_OK) rc = make_inputs(&n, B, &r);
    if (rc == MML_OK) {
        mml_set_grad_enabled(ctx, false);
        mml_set_training(ctx, false);
    }
    /* the warm-up sizes the step arena and the kernels' buffers */
    for (int64_t it = -(iters / 10 + 2); rc == MML_OK && it < iters; it++) {
        mml_ctx_reset(ctx);
        double t0 = mml_now();
        mml_tensor *y = fusion ? mml_mm_model_forward(ctx, n.mm, &n.b) : mml_model_forward(ctx, n.cnn, n.b.x[MML_MOD_IMAGE]);
        if (!y) rc = mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
        else if (it >= 0) times[it] = mml_now() - t0;
    }
    if (rc == MML_OK) {
        double med = cli_median(times, (int)iters);
        printf("{\"impl\": \"mml\", \"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"median_ms\": %.4f, "
               "\"samples_per_second\": %.1f, \"peak_rss_mb\": %.1f}\n", model, (long long)B, mml_threads_get(), 1e3 * med,
               (double)B / med, cli_peak_rss_mb());
    }
    mml_free(times);
    mml_ctx_free(ctx);
    infer_close(&n);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}
