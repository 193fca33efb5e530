/* mml predict MODEL INPUT...: top-k classes for each image (PNG, JPEG, BMP,
 * PGM/PPM, GIF) or each image of an IDX file. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/idx.h"
#include "mml/image.h"
#include "mml/model.h"
#include "mml/ops.h"
#include "mml/safetensors.h"

static const char *USAGE = "mml predict MODEL.safetensors INPUT... [--top K] [--json]";

typedef struct predictor {
    mml_model *model;
    mml_config *cfg;
    cJSON *classes;
    int64_t in[4];
    int in_ndim;
    float mean, std;
    int top;
    bool json;
} predictor;

static mml_status open_predictor(const char *path, predictor *p)
{
    mml_status rc = mml_model_load(path, &p->model, &p->cfg);
    if (rc != MML_OK) return rc;
    mml_safetensors *st;
    if (mml_safetensors_map(path, &st) == MML_OK) {
        const char *cls = mml_safetensors_meta(st, "mml.classes");
        p->classes = cls ? cJSON_Parse(cls) : NULL;
        mml_safetensors_free(st);
    }
    p->in_ndim = mml_model_input_shape(p->model, p->in);
    mml_cfg_node root = mml_config_root(p->cfg), data, norm;
    double mean = 0.0, std = 1.0;
    if (mml_cfg_object(&root, "data", false, &data) == MML_OK && mml_cfg_object(&data, "normalize", false, &norm) == MML_OK) {
        mml_cfg_float(&norm, "mean", 0.0, &mean);
        mml_cfg_float(&norm, "std", 1.0, &std);
    }
    p->mean = (float)mean;
    p->std = std > 0 ? (float)std : 1.0f;
    return MML_OK;
}

static const char *class_name(const predictor *p, int c, char *buf, size_t cap)
{
    const cJSON *it = p->classes ? cJSON_GetArrayItem(p->classes, c) : NULL;
    if (cJSON_IsString(it)) return it->valuestring;
    snprintf(buf, cap, "%d", c);
    return buf;
}

/* images: U8 [N, C, H, W] (or [N, H, W]); prints one line per image. */
static int predict_batch(predictor *p, const mml_tensor *images, const char *label, bool indexed)
{
    int64_t N = images->shape[0], C = p->in_ndim == 3 ? p->in[0] : 1;
    int64_t H = p->in_ndim >= 2 ? p->in[p->in_ndim - 2] : 1, W = p->in[p->in_ndim - 1];
    int64_t h = images->ndim == 4 ? images->shape[2] : images->shape[1], w = images->shape[images->ndim - 1];
    if (images->numel != N * C * h * w) {
        fprintf(stderr, "mml: %s: has %lld channels, the model takes %lld\n", label,
                (long long)(images->ndim == 4 ? images->shape[1] : 1), (long long)C);
        return CLI_FAIL;
    }
    mml_ctx *ctx = mml_ctx_create();
    mml_set_grad_enabled(ctx, false);
    mml_set_training(ctx, false);
    int rc = CLI_OK;
    for (int64_t i = 0; i < N && rc == CLI_OK; i++) {
        mml_ctx_reset(ctx);
        mml_tensor *x = mml_new(ctx, MML_F32, 4, (int64_t[]){ 1, C, h, w });
        const uint8_t *src = (const uint8_t *)images->data + i * C * h * w;
        for (int64_t k = 0; k < C * h * w; k++) mml_f32(x)[k] = ((float)src[k] / 255.0f - p->mean) / p->std;
        if (h != H || w != W) x = mml_upsample_bilinear2d(ctx, x, (int)H, (int)W, false);
        int64_t shape[5] = { 1 };
        memcpy(shape + 1, p->in, (size_t)p->in_ndim * sizeof *shape);
        mml_tensor *prob = mml_softmax(ctx, mml_model_forward(ctx, p->model, mml_reshape(ctx, x, p->in_ndim + 1, shape)), -1);
        if (!prob) {
            rc = cli_fail(NULL);
            break;
        }
        int n_cls = (int)prob->shape[1], top = p->top < n_cls ? p->top : n_cls;
        bool used[1024] = { false };
        if (indexed) printf(p->json ? "{\"input\": \"%s[%lld]\", \"top\": [" : "%s[%lld]:", label, (long long)i);
        else printf(p->json ? "{\"input\": \"%s\", \"top\": [" : "%s:", label);
        for (int k = 0; k < top && n_cls <= 1024; k++) {
            int best = -1;
            for (int c = 0; c < n_cls; c++)
                if (!used[c] && (best < 0 || mml_f32(prob)[c] > mml_f32(prob)[best])) best = c;
            used[best] = true;
            char buf[16];
            if (p->json) printf("%s{\"class\": \"%s\", \"probability\": %.6f}", k ? ", " : "", class_name(p, best, buf, sizeof buf), mml_f32(prob)[best]);
            else printf(" %s %.4f", class_name(p, best, buf, sizeof buf), mml_f32(prob)[best]);
        }
        printf(p->json ? "]}\n" : "\n");
    }
    mml_ctx_free(ctx);
    return rc;
}

static bool is_idx(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char m[4] = { 1, 1, 1, 1 };
    size_t n = f ? fread(m, 1, 4, f) : 0;
    if (f) fclose(f);
    return (n == 4 && !m[0] && !m[1] && m[2] == 0x08) || (n >= 2 && m[0] == 0x1f && m[1] == 0x8b);
}

int cmd_predict(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nPrints the K (default 3) most likely classes with their probabilities for each image, or for\n"
               "each image of an IDX file. Images are converted to the model's channels and resized (bilinear).\n", USAGE);
        return CLI_OK;
    }
    predictor p = { .top = 3 };
    const char *model = NULL;
    int n_inputs = 0;
    const char *inputs[256];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) p.json = true;
        else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            p.top = atoi(argv[++i]);
            if (p.top < 1) return cli_usage(USAGE, "--top needs a positive integer");
        } else if (argv[i][0] == '-') return cli_usage(USAGE, "unexpected argument");
        else if (!model) model = argv[i];
        else if (n_inputs < 256) inputs[n_inputs++] = argv[i];
    }
    if (!model || !n_inputs) return cli_usage(USAGE, "needs a model and at least one input");
    if (open_predictor(model, &p) != MML_OK) return cli_fail(NULL);
    int rc = CLI_OK;
    for (int i = 0; i < n_inputs; i++) {
        int C = p.in_ndim == 3 ? (int)p.in[0] : 1;
        mml_tensor *img = is_idx(inputs[i]) ? mml_idx_load(inputs[i]) : mml_image_load(inputs[i], C);
        bool indexed = img && img->ndim == 3 && is_idx(inputs[i]);
        if (img && !indexed) { /* one image [C, H, W] as a batch of one */
            img->ndim = 4;
            memmove(img->shape + 1, img->shape, 3 * sizeof img->shape[0]);
            img->shape[0] = 1;
        }
        if (!img || (indexed && img->dtype != MML_U8)) rc = cli_fail(img ? "IDX input must hold unsigned-byte images" : NULL);
        else if (predict_batch(&p, img, inputs[i], indexed) != CLI_OK) rc = CLI_FAIL;
        mml_tensor_free(img);
    }
    cJSON_Delete(p.classes);
    mml_model_free(p.model);
    mml_config_free(p.cfg);
    return rc;
}
