/* mml compare STUDY.json --out DIR: the unimodal vs multimodal study. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/study.h"
#include "mml/threads.h"

static const char *USAGE = "mml compare STUDY.json --out DIR [--seeds N] [--epochs N] [--threads N] [--force]\n"
                           "                   [--on-error skip|fail] [--datasets DIR] [--only NAME,...] [--quiet]";

static int print_file(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}

int cmd_compare(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nTrains and evaluates every variant of a study (docs/study.md) over several seeds on the same\n"
               "data, tests each under noise and with modalities missing, and writes DIR/results.json,\n"
               "DIR/results.md (printed at the end) and DIR/report.html. DIR appears only when complete.\n",
               USAGE);
        return CLI_OK;
    }
    const char *study = NULL;
    mml_study_options o = { .progress = true, .epochs = -1 };
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        char *end = NULL;
        if (!strcmp(argv[i], "--out") && has) o.out_dir = argv[++i];
        else if (!strcmp(argv[i], "--seeds") && has) o.seeds = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--epochs") && has) o.epochs = strtoll(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--threads") && has) {
            long t = strtol(argv[++i], &end, 10);
            if (t < 1) return cli_usage(USAGE, "--threads needs a positive integer");
            mml_threads_set((int)t);
        } else if (!strcmp(argv[i], "--datasets") && has) o.datasets_dir = argv[++i];
        else if (!strcmp(argv[i], "--only") && has) o.only = argv[++i];
        else if (!strcmp(argv[i], "--force")) o.force = true;
        else if (!strcmp(argv[i], "--quiet")) o.progress = false;
        else if (!strcmp(argv[i], "--on-error") && has) {
            const char *v = argv[++i];
            if (!strcmp(v, "skip")) o.on_error = MML_ON_ERROR_SKIP;
            else if (strcmp(v, "fail")) return cli_usage(USAGE, "--on-error takes skip or fail");
        } else if (argv[i][0] == '-' || study) return cli_usage(USAGE, "unexpected argument");
        else study = argv[i];
        if (end && *end) return cli_usage(USAGE, "option needs an integer");
    }
    if (!study) return cli_usage(USAGE, "no study file given");
    if (!o.out_dir) return cli_usage(USAGE, "--out is required");
    if (o.seeds < 0 || o.epochs < -1) return cli_usage(USAGE, "--seeds and --epochs must not be negative");
    if (mml_study_run(study, &o) != MML_OK) return cli_fail(NULL);
    print_file(o.out_dir, "results.md");
    printf("\nreport: %s/report.html\n", o.out_dir);
    return CLI_OK;
}
