#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/error.h"

static const cli_command g_commands[] = {
    { "audio", "WAV information and torchaudio-compatible features", cmd_audio },
    { "bench", "benchmarks against reference implementations (gemm, train, epoch, infer, knn)", cmd_bench },
    { "caption", "captions for images with a captioning model", cmd_caption },
    { "compare", "train and compare unimodal and multimodal variants (a study)", cmd_compare },
    { "data", "build a dataset (avdigits: MNIST digits with spoken digits)", cmd_data },
    { "embed", "embed a manifest's samples with an aligned model (an index for search)", cmd_embed },
    { "eval", "evaluate a trained model on test data", cmd_eval },
    { "generate", "images decoded from a multimodal autoencoder's shared latent (a PNG grid)", cmd_generate },
    { "inspect", "what a file holds: safetensors, manifest, config, WAV, IDX, image, .npy/.npz", cmd_inspect },
    { "predict", "top classes for images with a trained model", cmd_predict },
    { "search", "nearest items of an index to a text, audio or image query", cmd_search },
    { "text", "CLIP BPE token ids and word tokenization", cmd_text },
    { "train", "train the model a JSON config describes", cmd_train },
    { "version", "print the version, SIMD level, threads and build options", cmd_version },
};

#define N_COMMANDS (sizeof g_commands / sizeof g_commands[0])

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return true;
    return false;
}

int cli_fail(const char *msg)
{
    fprintf(stderr, "mml: %s\n", msg ? msg : mml_last_error());
    return CLI_FAIL;
}

int cli_usage(const char *usage, const char *problem)
{
    if (problem) fprintf(stderr, "mml: %s\n", problem);
    fprintf(stderr, "usage: %s\n", usage);
    return CLI_USAGE;
}

static void print_help(FILE *f)
{
    fprintf(f, "mml: unimodal, multimodal and cross-modal learning in C\n\nusage: mml COMMAND [ARGS]\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", g_commands[i].name, g_commands[i].summary);
    fprintf(f, "\n`mml COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(1, argv + 1);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], g_commands[i].name)) return g_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mml: unknown command '%s' (see mml --help)\n", argv[1]);
    return CLI_USAGE;
}
