/* mml bench epoch CONFIG: a multimodal config trained end to end the way
 * `mml train` runs it (cli_mm_job_open, mml_mm_train): the data opened from
 * the manifests (every file decoded and featurised on the thread pool, or read
 * back from the feature cache when the config names one), then N epochs, each
 * a pass over the training split plus the validation accuracy. One JSON line:
 * load seconds, each epoch's seconds, peak RSS; scripts/bench.sh runs
 * bench/torch/fusion.py beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/progress.h"
#include "mml/threads.h"

static const char *USAGE = "mml bench epoch CONFIG [--epochs 2] [--threads N]";

/* Each epoch's seconds from the training log's cumulative "seconds" (the
 * loop reports no per-epoch times, and the log is what `mml train` writes). */
static int epoch_seconds(FILE *log, double *out, int cap)
{
    char line[1024];
    double last = 0.0;
    int n = 0;
    rewind(log);
    while (n < cap && fgets(line, sizeof line, log)) {
        const char *p = strstr(line, "\"seconds\": ");
        double t;
        if (!p || sscanf(p + 11, "%lf", &t) != 1) continue;
        out[n++] = t - last;
        last = t;
    }
    return n;
}

int bench_epoch(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nTrains a \"task\": \"multimodal\" config as mml train does, timing the data loading (manifests, "
               "decoding, features; the feature cache if the config names one) and each epoch (the training pass and "
               "the validation accuracy); --epochs 0 times the loading only. Prints one JSON object: threads, "
               "train_samples, load_seconds, from_cache, epoch_seconds, peak_rss_mb.\n", USAGE);
        return CLI_OK;
    }
    const char *path = NULL;
    int64_t epochs = 2, threads = 0;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (!strcmp(argv[i], "--epochs") && has) {
            if (cli_parse_count(argv[++i], 0, 256, &epochs)) return cli_usage(USAGE, "--epochs needs an integer in [0, 256]");
        } else if (!strcmp(argv[i], "--threads") && has) {
            if (cli_parse_count(argv[++i], 1, 1024, &threads)) return cli_usage(USAGE, "--threads needs a positive integer");
        } else if (argv[i][0] != '-' && !path) path = argv[i];
        else return cli_usage(USAGE, "unexpected argument");
    }
    if (!path) return cli_usage(USAGE, "needs a multimodal config");
    char task[32];
    mml_error_clear();
    if (strcmp(cli_config_task(path, task, sizeof task), "multimodal")) /* an unreadable file has its own error */
        return cli_fail(mml_last_status() ? NULL : "mml bench epoch: the config's task must be \"multimodal\"");
    if (threads > 0) mml_threads_set((int)threads);
    cli_mm_job j;
    mml_mm_model *m = NULL;
    mml_mm_history h;
    FILE *log = NULL;
    double t0 = mml_now(), secs[256];
    mml_status rc = cli_mm_job_open(&j, path, epochs, -1, false);
    double load = mml_now() - t0;
    int n = 0;
    if (rc == MML_OK && epochs > 0) {
        mml_train_options o = j.opt;
        rc = mml_mm_model_build(&j.model, &j.d, o.seed, &m);
        if (rc == MML_OK) rc = mml_mm_model_set_augment(m, &j.train);
        if (rc == MML_OK && !(log = tmpfile())) rc = mml_error(MML_ERR_IO, "mml bench epoch: no temporary file for the log");
        o.progress = false;
        o.log = log;
        if (rc == MML_OK) rc = mml_mm_train(m, &j.d, &o, &h);
        if (rc == MML_OK && (n = epoch_seconds(log, secs, 256)) != h.epochs)
            rc = mml_error(MML_ERR_FORMAT, "mml bench epoch: %d epochs trained, %d in the log", h.epochs, n);
    }
    if (rc == MML_OK) {
        const mml_dataset *train = j.d.ds[MML_SPLIT_TRAIN];
        printf("{\"impl\": \"mml\", \"threads\": %d, \"fusion\": \"%s\", \"train_samples\": %lld, \"load_seconds\": %.3f, "
               "\"from_cache\": %s, \"epoch_seconds\": [", mml_threads_get(), m ? mml_mm_model_fusion(m) : "",
               (long long)train->n, load, train->from_cache ? "true" : "false");
        for (int e = 0; e < n; e++) printf("%s%.3f", e ? ", " : "", secs[e]);
        printf("], \"peak_rss_mb\": %.1f}\n", cli_peak_rss_mb());
    }
    if (log) fclose(log);
    mml_mm_model_free(m);
    cli_mm_job_close(&j);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}
