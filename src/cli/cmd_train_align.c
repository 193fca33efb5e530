/* mml train on a "task": "retrieval" config: encoders aligned into one space,
 * then retrieval in every direction and cross-modal transfer on the test split. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/align.h"
#include "mml/alloc.h"
#include "mml/threads.h"

static void print_metrics(const char *q, const char *g, const char *level, const mml_retrieval_metrics *r)
{
    printf("  %-6s -> %-6s %-9s %6.4f %6.4f %6.4f %6.1f %7.1f %6.4f\n", q, g, level, r->recall[0], r->recall[1],
           r->recall[2], r->median_rank, r->mean_rank, r->map);
}

static void print_eval(const mml_align_eval *ev, int64_t n)
{
    printf("test retrieval (%lld samples):\n  query     gallery level       R@1    R@5   R@10   medR   meanR    mAP\n",
           (long long)n);
    for (int k = 0; k < ev->n; k++) {
        const mml_align_direction *d = &ev->dir[k];
        const char *q = mml_modality_name(d->query), *g = mml_modality_name(d->gallery);
        print_metrics(q, g, "instance", &d->instance);
        print_metrics(q, g, "category", &d->category);
    }
}

static void json_metrics(const char *key, const mml_retrieval_metrics *r)
{
    printf("\"%s\": {\"r1\": %.6f, \"r5\": %.6f, \"r10\": %.6f, \"median_rank\": %.1f, \"mean_rank\": %.3f, \"map\": %.6f}",
           key, r->recall[0], r->recall[1], r->recall[2], r->median_rank, r->mean_rank, r->map);
}

typedef struct transfer {
    mml_modality from, to;
    double acc_to, acc_from;
} transfer;

static void print_json(const mml_align_eval *ev, const transfer *t, int n_t, const mml_align_history *h,
                       mml_align_model *m, const char *out)
{
    printf("{\"directions\": [");
    for (int k = 0; k < ev->n; k++) {
        printf("%s{\"query\": \"%s\", \"gallery\": \"%s\", ", k ? ", " : "", mml_modality_name(ev->dir[k].query),
               mml_modality_name(ev->dir[k].gallery));
        json_metrics("instance", &ev->dir[k].instance);
        printf(", ");
        json_metrics("category", &ev->dir[k].category);
        printf("}");
    }
    printf("], \"transfer\": [");
    for (int k = 0; k < n_t; k++)
        printf("%s{\"from\": \"%s\", \"to\": \"%s\", \"accuracy\": %.6f, \"source_accuracy\": %.6f}", k ? ", " : "",
               mml_modality_name(t[k].from), mml_modality_name(t[k].to), t[k].acc_to, t[k].acc_from);
    printf("], \"epochs\": %d, \"train_seconds\": %.3f, \"params\": %lld, \"objective\": \"%s\", \"model\": \"%s\"}\n",
           h->epochs, h->train_seconds, (long long)mml_params_numel(mml_align_model_params(m)),
           mml_align_model_objective(m), out);
}

/* A linear classifier on each modality's embeddings, tried on every other. */
static mml_status transfers(mml_align_model *m, const mml_mm_data *d, uint64_t seed, transfer *t, int *n_t)
{
    mml_modality mods[MML_MOD_COUNT];
    int n = mml_align_model_modalities(m, mods);
    *n_t = 0;
    if (!d->ds[MML_SPLIT_TRAIN]->label) return MML_OK;
    mml_status rc = MML_OK;
    for (int i = 0; rc == MML_OK && i < n; i++)
        for (int j = 0; rc == MML_OK && j < n; j++) {
            if (i == j) continue;
            transfer *x = &t[(*n_t)++];
            x->from = mods[i], x->to = mods[j];
            rc = mml_align_transfer(m, d, mods[i], mods[j], seed, &x->acc_to, &x->acc_from);
            if (rc == MML_OK)
                printf("transfer: a linear classifier on %s embeddings: %s test accuracy %.4f (%s test %.4f)\n",
                       mml_modality_name(mods[i]), mml_modality_name(mods[j]), x->acc_to, mml_modality_name(mods[i]),
                       x->acc_from);
        }
    return rc;
}

int cli_train_align(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json)
{
    cli_mm_job j;
    mml_align_model *m = NULL;
    char *cfg_json = NULL, *cls = NULL;
    FILE *log = NULL;
    mml_status rc = cli_mm_job_open(&j, path, epochs, seed, true);
    mml_train_options o = j.opt;
    if (rc == MML_OK) rc = mml_align_model_build(&j.model, &j.d, o.seed, &m);
    if (rc == MML_OK && !(log = fopen(log_path, "w"))) rc = mml_error(MML_ERR_IO, "%s: %s", log_path, strerror(errno));
    mml_align_history h;
    mml_align_eval ev;
    transfer t[MML_MOD_COUNT * MML_MOD_COUNT];
    int n_t = 0;
    if (rc == MML_OK) {
        fprintf(stderr, "model: %lld parameters, %lld-d space, objective %s; data: %lld training, %lld test samples; %d threads\n",
                (long long)mml_params_numel(mml_align_model_params(m)), (long long)mml_align_model_dim(m),
                mml_align_model_objective(m), (long long)j.d.ds[MML_SPLIT_TRAIN]->n, (long long)j.d.ds[MML_SPLIT_TEST]->n,
                mml_threads_get());
        o.progress = true;
        o.log = log;
        rc = mml_align_train(m, &j.d, &o, &h);
    }
    if (rc == MML_OK) rc = mml_align_evaluate(m, &j.d, MML_SPLIT_TEST, &ev);
    if (rc == MML_OK) rc = cli_mm_job_meta(&j, &cfg_json, &cls);
    if (rc == MML_OK) rc = mml_align_model_save(m, out, cfg_json, cls);
    if (rc == MML_OK) {
        print_eval(&ev, j.d.ds[MML_SPLIT_TEST]->n);
        rc = transfers(m, &j.d, o.seed, t, &n_t);
    }
    if (rc == MML_OK) {
        printf("trained %d epochs in %.1f s (%.0f samples/s); model written to %s, log to %s\n", h.epochs, h.train_seconds,
               h.samples_per_second, out, log_path);
        if (json) print_json(&ev, t, n_t, &h, m, out);
    }
    if (log) fclose(log);
    free(cfg_json);
    free(cls);
    mml_align_model_free(m);
    cli_mm_job_close(&j);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}

int cli_eval_align(const char *path, bool json)
{
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, true, NULL };
    mml_mm_data d;
    mml_align_model *m = NULL;
    mml_align_eval ev;
    transfer t[MML_MOD_COUNT * MML_MOD_COUNT];
    int n_t = 0;
    mml_status rc = mml_align_model_load(path, &opt, true, &m, &d);
    if (rc == MML_OK) rc = mml_align_evaluate(m, &d, MML_SPLIT_TEST, &ev);
    if (rc == MML_OK) {
        print_eval(&ev, d.ds[MML_SPLIT_TEST]->n);
        rc = transfers(m, &d, 0, t, &n_t);
    }
    if (rc == MML_OK && json) {
        mml_align_history h = { 0 };
        print_json(&ev, t, n_t, &h, m, path);
    }
    mml_align_model_free(m);
    if (m) mml_mm_data_close(&d);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}
