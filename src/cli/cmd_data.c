/* mml data NAME --out DIR: dataset builders. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/builders.h"

static const char *USAGE = "mml data avdigits --out DIR [--seed N] [--image-energy-removed F] [--audio-snr DB] "
                           "[--holdout-speaker NAME] [--datasets DIR]\n       mml data fashion-speech --out DIR [--seed N] [--train N] [--val N] "
                           "[--test N] [--fashion DIR]";

static int fashion_speech(int argc, char **argv)
{
    mml_fashion_speech_options o = { .fashion_dir = "/usr/share/datasets/fashion-mnist", .n_train = 6000, .n_val = 1000,
                                     .n_test = 2000, .progress = true };
    for (int i = 2; i < argc; i++) {
        bool has = i + 1 < argc;
        char *end = NULL;
        if (!strcmp(argv[i], "--out") && has) o.out_dir = argv[++i];
        else if (!strcmp(argv[i], "--fashion") && has) o.fashion_dir = argv[++i];
        else if (!strcmp(argv[i], "--seed") && has) o.seed = strtoull(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--train") && has) o.n_train = strtoll(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--val") && has) o.n_val = strtoll(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--test") && has) o.n_test = strtoll(argv[++i], &end, 10);
        else return cli_usage(USAGE, "unexpected argument");
        if (end && *end) return cli_usage(USAGE, "option needs a number");
    }
    if (!o.out_dir) return cli_usage(USAGE, "--out is required");
    if (mml_build_fashion_speech(&o) != MML_OK) return cli_fail(NULL);
    printf("fashion-speech written to %s (train.jsonl, val.jsonl, test.jsonl, README.md)\n", o.out_dir);
    return CLI_OK;
}

int cmd_data(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        printf("usage: %s\nBuilds AV-MNIST-style audio-visual digits from ../shared/datasets (MML_DATASETS or\n"
               "--datasets): MNIST images, Free Spoken Digit recordings and the digit words, with train/val/test\n"
               "JSONL manifests and a README. --image-energy-removed 0.75 and --audio-snr -15 give AV-MNIST's\n"
               "degradations. fashion-speech needs only Debian packages (dataset-fashion-mnist, espeak-ng):\n"
               "Fashion-MNIST images (--fashion DIR, default /usr/share/datasets/fashion-mnist), the class name\n"
               "spoken by espeak-ng in varied voices (test voices unheard in training) and a text description;\n"
               "--train/--val/--test set the split sizes (default 6000/1000/2000, balanced by class) and labels\n"
               "are \"<Fashion-MNIST id>-<name>\" (0-t-shirt ... 9-ankle-boot). The same seed gives the same files.\n",
               USAGE);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "fashion-speech")) return fashion_speech(argc, argv);
    if (strcmp(argv[1], "avdigits") != 0) return cli_usage(USAGE, "unknown dataset (known: avdigits, fashion-speech)");
    const char *env = getenv("MML_DATASETS");
    mml_avdigits_options o = { .datasets_dir = env ? env : "../shared/datasets", .audio_snr_db = NAN, .progress = true };
    for (int i = 2; i < argc; i++) {
        bool has = i + 1 < argc;
        char *end = NULL;
        if (!strcmp(argv[i], "--out") && has) o.out_dir = argv[++i];
        else if (!strcmp(argv[i], "--datasets") && has) o.datasets_dir = argv[++i];
        else if (!strcmp(argv[i], "--seed") && has) o.seed = strtoull(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--image-energy-removed") && has) o.image_energy_removed = strtod(argv[++i], &end);
        else if (!strcmp(argv[i], "--audio-snr") && has) o.audio_snr_db = strtod(argv[++i], &end);
        else if (!strcmp(argv[i], "--holdout-speaker") && has) o.holdout_speaker = argv[++i];
        else return cli_usage(USAGE, "unexpected argument");
        if (end && *end) return cli_usage(USAGE, "option needs a number");
    }
    if (!o.out_dir) return cli_usage(USAGE, "--out is required");
    if (mml_build_avdigits(&o) != MML_OK) return cli_fail(NULL);
    printf("avdigits written to %s (train.jsonl, val.jsonl, test.jsonl, README.md)\n", o.out_dir);
    return CLI_OK;
}
