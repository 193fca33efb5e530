/* mml generate: images (or another modality's features) decoded from the
 * shared latent of a multimodal autoencoder, given texts, recordings or
 * images, or a manifest's samples per class; written as one PNG grid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/autoencoder.h"
#include "mml/image.h"

static const char *GENERATE_USAGE =
    "mml generate MODEL.safetensors (--text T | --audio F.wav | --image F.png)... --out GRID.png\n"
    "       mml generate MODEL.safetensors --manifest M.jsonl --from audio|text|image [--per-class K] --out GRID.png";

/* Cells of the grid (heap): up to k rows of ds per class that have modality
 * mo, class by class, -1 for a blank cell; returns their count or -1. */
static int64_t per_class_rows(const mml_dataset *ds, const mml_manifest *mf, mml_modality mo, int k, int64_t **cells)
{
    char **classes;
    int n_classes = mml_manifest_classes(mf, "label", &classes);
    if (n_classes < 0) return -1;
    int64_t n = 0, *rows = mml_malloc((size_t)n_classes * (size_t)k * sizeof *rows);
    for (int c = 0; rows && c < n_classes; c++) {
        int got = 0;
        for (int64_t r = 0; r < ds->n && got < k; r++) {
            const mml_sample *s = &mf->samples[ds->source_row[r]];
            if (ds->present[mo][r] && mml_manifest_class_of(mf, s, "label", classes, n_classes) == c) rows[n++] = r, got++;
        }
        for (; got < k; got++) rows[n++] = -1;
    }
    mml_classes_free(classes, n_classes);
    *cells = rows;
    return rows ? n : -1;
}

/* n images [n, C, H, W] (features, normalised as the featurizer does) as a
 * grid of `cols` columns with 2-pixel gaps; -1 rows of `which` are blank. */
static mml_status save_grid(const char *path, const float *img, const int64_t *which, int64_t n, int cols,
                            const mml_feature_config *fc)
{
    int64_t C = fc->channels, H = fc->height, W = fc->width, rows_n = (n + cols - 1) / cols;
    int64_t GH = rows_n * (H + 2) + 2, GW = (int64_t)cols * (W + 2) + 2;
    mml_tensor *g = mml_tensor_create(MML_U8, 3, (int64_t[]){ C, GH, GW }, false);
    if (!g) return mml_last_status();
    memset(g->data, 255, (size_t)g->numel);
    for (int64_t i = 0, k = 0; i < n; i++) {
        if (which && which[i] < 0) continue;
        const float *src = img + (k++) * C * H * W;
        int64_t y0 = (i / cols) * (H + 2) + 2, x0 = (i % cols) * (W + 2) + 2;
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    float v = (src[(c * H + y) * W + x] * fc->std + fc->mean) * 255.0f;
                    ((uint8_t *)g->data)[(c * GH + y0 + y) * GW + x0 + x] = (uint8_t)fminf(fmaxf(roundf(v), 0.0f), 255.0f);
                }
    }
    mml_status rc = mml_image_save_png(path, g);
    mml_tensor_free(g);
    return rc;
}

static mml_status generate_rows(mml_ae_model *m, const mml_dataset *ds, const int64_t *rows, int64_t n, mml_modality from,
                                float *out, int64_t per)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_status rc = ctx ? MML_OK : MML_ERR_NOMEM;
    for (int64_t s = 0; rc == MML_OK && s < n; s += 256) {
        int64_t nb = s + 256 <= n ? 256 : n - s;
        mml_ctx_reset(ctx);
        mml_batch b;
        rc = mml_dataset_batch(ctx, ds, rows + s, nb, &b);
        if (rc == MML_OK) rc = mml_ae_generate(m, ctx, &b, from, MML_MOD_IMAGE, out + s * per);
    }
    mml_ctx_free(ctx);
    return rc;
}

typedef struct gen_args {
    const char *model, *out, *manifest;
    const char *q[64];
    mml_modality q_mod;
    int n_q, per_class;
    int from;
} gen_args;

static mml_status run(const gen_args *a)
{
    mml_mm_data d;
    mml_ae_model *m = NULL;
    mml_manifest *mf = NULL;
    mml_dataset *ds = NULL;
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, false, NULL };
    int64_t *cells = NULL, n = 0;
    float *img = NULL;
    mml_modality from = a->manifest ? (mml_modality)a->from : a->q_mod;
    mml_status rc = mml_ae_model_open(a->model, &m, &d);
    if (rc == MML_OK && !d.fz.spec[MML_MOD_IMAGE].enabled) rc = mml_error(MML_ERR_ARG, "%s: the autoencoder has no image decoder", a->model);
    if (rc == MML_OK && !d.fz.spec[from].enabled)
        rc = mml_error(MML_ERR_ARG, "%s: the autoencoder has no %s encoder", a->model, mml_modality_name(from));
    if (rc == MML_OK) rc = a->manifest ? mml_manifest_load(a->manifest, &mf) : mml_manifest_of_values(a->q_mod, a->q, a->n_q, &mf);
    if (rc == MML_OK) rc = mml_mm_data_features_of(&d, mf, &opt, &ds);
    if (rc == MML_OK && a->manifest && (n = per_class_rows(ds, mf, from, a->per_class, &cells)) < 0) rc = mml_last_status();
    if (rc == MML_OK && !a->manifest && (cells = mml_malloc((size_t)ds->n * sizeof *cells)))
        for (n = 0; n < ds->n; n++) cells[n] = n;
    if (rc == MML_OK && !cells) rc = MML_ERR_NOMEM;
    /* the non-blank cells, compacted */
    int64_t k = 0, *used = rc == MML_OK ? mml_malloc((size_t)(n + 1) * sizeof *used) : NULL;
    for (int64_t i = 0; used && i < n; i++)
        if (cells[i] >= 0) used[k++] = cells[i];
    const mml_feature_config *fc = &d.fc;
    int64_t per = (int64_t)fc->channels * fc->height * fc->width;
    if (rc == MML_OK && (!used || !(img = mml_malloc((size_t)((k + 1) * per) * sizeof *img)))) rc = MML_ERR_NOMEM;
    if (rc == MML_OK) rc = generate_rows(m, ds, used, k, from, img, per);
    if (rc == MML_OK) rc = save_grid(a->out, img, cells, n, a->manifest ? a->per_class : (int)(n < 10 ? n : 10), fc);
    if (rc == MML_OK)
        printf("%lld images generated from %s into %s%s\n", (long long)k, mml_modality_name(from), a->out,
               a->manifest ? " (a row per class)" : "");
    mml_free(used);
    mml_free(img);
    mml_free(cells);
    mml_dataset_free(ds);
    mml_manifest_free(mf);
    mml_ae_model_free(m);
    if (m) mml_mm_data_close(&d);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nDecodes images from the shared latent of a multimodal autoencoder (\"task\": \"autoencoder\" "
               "with an image decoder, docs/crossmodal.md), given each query alone, and writes them as one PNG grid: "
               "one cell per query, or a row per class with K samples of a manifest each.\n", GENERATE_USAGE);
        return CLI_OK;
    }
    gen_args a = { .per_class = 8, .from = -1 };
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if ((!strcmp(argv[i], "--text") || !strcmp(argv[i], "--audio") || !strcmp(argv[i], "--image")) && has) {
            mml_modality mo = (mml_modality)mml_modality_from_name(argv[i] + 2);
            if (a.n_q == 64) return cli_usage(GENERATE_USAGE, "at most 64 queries");
            if (a.n_q && mo != a.q_mod) return cli_usage(GENERATE_USAGE, "queries of one modality at a time");
            a.q_mod = mo;
            a.q[a.n_q++] = argv[++i];
        } else if (!strcmp(argv[i], "--out") && has) a.out = argv[++i];
        else if (!strcmp(argv[i], "--manifest") && has) a.manifest = argv[++i];
        else if (!strcmp(argv[i], "--from") && has) {
            if ((a.from = mml_modality_from_name(argv[++i])) < 0) return cli_usage(GENERATE_USAGE, "--from: text, audio or image");
        } else if (!strcmp(argv[i], "--per-class") && has) {
            a.per_class = atoi(argv[++i]);
            if (a.per_class < 1 || a.per_class > 64) return cli_usage(GENERATE_USAGE, "--per-class must be in [1, 64]");
        } else if (argv[i][0] == '-' || a.model) return cli_usage(GENERATE_USAGE, "unexpected argument");
        else a.model = argv[i];
    }
    if (!a.model || !a.out) return cli_usage(GENERATE_USAGE, "needs MODEL and --out");
    if (!a.manifest == !a.n_q) return cli_usage(GENERATE_USAGE, "give queries or --manifest, not both");
    if (a.manifest && a.from < 0) return cli_usage(GENERATE_USAGE, "--manifest needs --from");
    return run(&a) == MML_OK ? CLI_OK : cli_fail(NULL);
}
