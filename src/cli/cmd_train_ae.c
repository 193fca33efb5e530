/* mml train on a "task": "autoencoder" config: a shared latent over the
 * modalities, and how well each is reconstructed from each other. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/autoencoder.h"
#include "mml/threads.h"

static void print_eval(const mml_ae_eval *ev, const mml_modality *mods, int n, int64_t samples)
{
    printf("test reconstruction (%lld samples), mean squared error per feature:\n  %-10s", (long long)samples, "from");
    for (int j = 0; j < n; j++)
        if (!isnan(ev->baseline[mods[j]])) printf(" %10s", mml_modality_name(mods[j]));
    printf("\n");
    for (int i = 0; i <= n; i++) {
        int in = i < n ? (int)mods[i] : MML_MOD_COUNT;
        printf("  %-10s", i < n ? mml_modality_name(mods[i]) : "all");
        for (int j = 0; j < n; j++)
            if (!isnan(ev->baseline[mods[j]])) printf(" %10.4f", ev->mse[in][mods[j]]);
        printf("\n");
    }
    printf("  %-10s", "mean");
    for (int j = 0; j < n; j++)
        if (!isnan(ev->baseline[mods[j]])) printf(" %10.4f", ev->baseline[mods[j]]);
    printf("   (predicting the training mean)\n");
}

/* Reconstructed modalities only (token ids have no decoder). */
static void json_row(const double *x, const mml_ae_eval *ev, const mml_modality *mods, int n)
{
    bool first = true;
    printf("{");
    for (int j = 0; j < n; j++) {
        if (isnan(ev->baseline[mods[j]])) continue;
        printf("%s\"%s\": %.6f", first ? "" : ", ", mml_modality_name(mods[j]), x[mods[j]]);
        first = false;
    }
    printf("}");
}

static void print_json(const mml_ae_eval *ev, const mml_modality *mods, int n, const mml_ae_history *h, const char *out)
{
    printf("{\"mse\": {");
    for (int i = 0; i <= n; i++) {
        printf("%s\"%s\": ", i ? ", " : "", i < n ? mml_modality_name(mods[i]) : "all");
        json_row(ev->mse[i < n ? (int)mods[i] : MML_MOD_COUNT], ev, mods, n);
    }
    printf("}, \"baseline\": ");
    json_row(ev->baseline, ev, mods, n);
    printf(", \"epochs\": %d, \"train_seconds\": %.3f, \"model\": \"%s\"}\n", h->epochs, h->train_seconds, out);
}

int cli_train_ae(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json)
{
    cli_mm_job j;
    mml_ae_model *m = NULL;
    char *cfg_json = NULL, *cls = NULL;
    FILE *log = NULL;
    mml_status rc = cli_mm_job_open(&j, path, epochs, seed, true);
    mml_train_options o = j.opt;
    if (rc == MML_OK) rc = mml_ae_model_build(&j.model, &j.d, o.seed, &m);
    if (rc == MML_OK && !(log = fopen(log_path, "w"))) rc = mml_error(MML_ERR_IO, "%s: %s", log_path, strerror(errno));
    mml_ae_history h;
    mml_ae_eval ev;
    mml_modality mods[MML_MOD_COUNT];
    int n = m ? mml_ae_model_modalities(m, mods) : 0;
    if (rc == MML_OK) {
        fprintf(stderr, "model: %lld parameters, %d modalities; data: %lld training, %lld test samples; %d threads\n",
                (long long)mml_params_numel(mml_ae_model_params(m)), n, (long long)j.d.ds[MML_SPLIT_TRAIN]->n,
                (long long)j.d.ds[MML_SPLIT_TEST]->n, mml_threads_get());
        o.progress = true;
        o.log = log;
        rc = mml_ae_train(m, &j.d, &o, &h);
    }
    if (rc == MML_OK) rc = mml_ae_evaluate(m, &j.d, MML_SPLIT_TEST, &ev);
    if (rc == MML_OK) rc = cli_mm_job_meta(&j, &cfg_json, &cls);
    if (rc == MML_OK) rc = mml_ae_model_save(m, out, cfg_json, cls);
    if (rc == MML_OK) {
        print_eval(&ev, mods, n, j.d.ds[MML_SPLIT_TEST]->n);
        printf("trained %d epochs in %.1f s; model written to %s, log to %s\n", h.epochs, h.train_seconds, out, log_path);
        if (json) print_json(&ev, mods, n, &h, out);
    }
    if (log) fclose(log);
    free(cfg_json);
    free(cls);
    mml_ae_model_free(m);
    cli_mm_job_close(&j);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}
