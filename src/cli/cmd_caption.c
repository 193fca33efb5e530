/* mml train on a "task": "captioning" config, and mml caption: captions for images. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/caption.h"
#include "mml/threads.h"

static const char *CAPTION_USAGE = "mml caption MODEL.safetensors IMAGE... [--beam N] [--json]";

static void print_eval(const mml_caption_eval *ev, char **examples, int n_examples, const mml_mm_data *d)
{
    const mml_bleu *b = &ev->bleu;
    printf("test captions (%lld images): BLEU-1 %.4f, BLEU-2 %.4f, BLEU-3 %.4f, BLEU-4 %.4f (references: the class's "
           "training texts); loss %.4f per token", (long long)ev->n, b->bleu[0], b->bleu[1], b->bleu[2], b->bleu[3], ev->loss);
    if (!isnan(ev->mention_rate)) printf("; class named in %.1f%%", 100 * ev->mention_rate);
    printf("\n");
    const mml_dataset *ds = d->ds[MML_SPLIT_TEST];
    for (int i = 0; i < n_examples && examples[i]; i++)
        printf("  %-24s %-14s %s\n", d->manifest[MML_SPLIT_TEST]->samples[ds->source_row[i]].id, d->classes[ds->label[i]],
               examples[i]);
}

int cli_train_caption(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json)
{
    cli_mm_job j;
    mml_caption_model *m = NULL;
    char *cfg_json = NULL, *cls = NULL, *examples[5] = { 0 };
    FILE *log = NULL;
    mml_status rc = cli_mm_job_open(&j, path, epochs, seed, true);
    mml_train_options o = j.opt;
    if (rc == MML_OK) rc = mml_caption_model_build(&j.model, &j.d, o.seed, &m);
    if (rc == MML_OK && !(log = fopen(log_path, "w"))) rc = mml_error(MML_ERR_IO, "%s: %s", log_path, strerror(errno));
    mml_caption_history h;
    mml_caption_eval ev;
    if (rc == MML_OK) {
        fprintf(stderr, "model: %lld parameters, a %lld-token vocabulary; data: %lld training, %lld test samples; %d threads\n",
                (long long)mml_params_numel(mml_caption_model_params(m)), (long long)mml_caption_model_vocab(m),
                (long long)j.d.ds[MML_SPLIT_TRAIN]->n, (long long)j.d.ds[MML_SPLIT_TEST]->n, mml_threads_get());
        o.progress = true;
        o.log = log;
        rc = mml_caption_train(m, &j.d, &o, &h);
    }
    if (rc == MML_OK) rc = cli_mm_job_meta(&j, &cfg_json, &cls);
    if (rc == MML_OK) rc = mml_caption_model_save(m, out, cfg_json, cls);
    if (rc == MML_OK) rc = mml_caption_evaluate(m, &j.d, MML_SPLIT_TEST, &ev, examples, 5);
    if (rc == MML_OK) {
        print_eval(&ev, examples, 5, &j.d);
        printf("trained %d epochs in %.1f s; model written to %s, log to %s\n", h.epochs, h.train_seconds, out, log_path);
        if (json)
            printf("{\"bleu\": [%.6f, %.6f, %.6f, %.6f], \"mention_rate\": %.6f, \"loss\": %.6f, \"epochs\": %d, "
                   "\"train_seconds\": %.3f, \"model\": \"%s\"}\n", ev.bleu.bleu[0], ev.bleu.bleu[1], ev.bleu.bleu[2],
                   ev.bleu.bleu[3], isnan(ev.mention_rate) ? -1.0 : ev.mention_rate, ev.loss, h.epochs, h.train_seconds, out);
    }
    for (int i = 0; i < 5; i++) free(examples[i]);
    if (log) fclose(log);
    free(cfg_json);
    free(cls);
    mml_caption_model_free(m);
    cli_mm_job_close(&j);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}

static mml_status caption_files(const char *model, char **paths, int n, int beam, bool json)
{
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, false, NULL };
    mml_mm_data d;
    mml_caption_model *m = NULL;
    mml_manifest *mf = NULL;
    mml_dataset *ds = NULL;
    char **texts = NULL;
    mml_status rc = mml_caption_model_load(model, &opt, &m, &d);
    if (rc == MML_OK) rc = mml_manifest_of_values(MML_MOD_IMAGE, (const char *const *)paths, n, &mf);
    if (rc == MML_OK) rc = mml_mm_data_features_of(&d, mf, &opt, &ds);
    if (rc == MML_OK) rc = mml_caption_generate(m, &d, ds, beam, &texts);
    if (rc == MML_OK) {
        cJSON *a = json ? cJSON_CreateArray() : NULL;
        for (int64_t i = 0; i < ds->n; i++) {
            if (!json) printf("%s\t%s\n", paths[i], texts[i]);
            else {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "image", paths[i]);
                cJSON_AddStringToObject(o, "caption", texts[i]);
                cJSON_AddItemToArray(a, o);
            }
        }
        char *s = a ? cJSON_PrintUnformatted(a) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(a);
    }
    for (int64_t i = 0; texts && i < ds->n; i++) mml_free(texts[i]);
    mml_free(texts);
    mml_dataset_free(ds);
    mml_manifest_free(mf);
    mml_caption_model_free(m);
    if (m) mml_mm_data_close(&d);
    return rc;
}

int cmd_caption(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nCaptions images with a model of a \"captioning\" config (docs/crossmodal.md): beam search "
               "(--beam 1: greedy; default: the model's \"beam\"). One line per image, or --json: one array.\n",
               CAPTION_USAGE);
        return CLI_OK;
    }
    const char *model = NULL;
    char **images = mml_calloc((size_t)argc, sizeof *images);
    int n = 0, beam = 0;
    bool json = false;
    for (int i = 1; images && i < argc; i++) {
        if (!strcmp(argv[i], "--beam") && i + 1 < argc) {
            beam = atoi(argv[++i]);
            if (beam < 1 || beam > 64) {
                mml_free(images);
                return cli_usage(CAPTION_USAGE, "--beam must be in [1, 64]");
            }
        } else if (!strcmp(argv[i], "--json")) json = true;
        else if (argv[i][0] == '-') {
            mml_free(images);
            return cli_usage(CAPTION_USAGE, "unexpected argument");
        } else if (!model) model = argv[i];
        else images[n++] = argv[i];
    }
    if (!model || !n) {
        mml_free(images);
        return cli_usage(CAPTION_USAGE, "needs a model and at least one image");
    }
    mml_status rc = caption_files(model, images, n, beam, json);
    mml_free(images);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}
