/* mml text encode | tokenize */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/text.h"

static const char *ENCODE_USAGE = "mml text encode --bpe MERGES_FILE [--context N] TEXT...";
static const char *TOKENIZE_USAGE = "mml text tokenize [--stopwords] [--stem] [--keep-case] TEXT...";

static int text_encode(int argc, char **argv)
{
    const char *merges = NULL;
    int context = 0, first = -1;
    for (int i = 1; i < argc && first < 0; i++) {
        if (!strcmp(argv[i], "--bpe") && i + 1 < argc) merges = argv[++i];
        else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            context = atoi(argv[++i]);
            if (context < 2 || context > 65536) return cli_usage(ENCODE_USAGE, "--context must be in [2, 65536]");
        } else if (argv[i][0] == '-' && argv[i][1] == '-') return cli_usage(ENCODE_USAGE, "unexpected option");
        else first = i;
    }
    if (!merges || first < 0) return cli_usage(ENCODE_USAGE, "needs --bpe and at least one text");
    mml_bpe *b;
    if (mml_bpe_load_clip(merges, &b) != MML_OK) return cli_fail(NULL);
    int rc = CLI_OK;
    for (int i = first; i < argc; i++) {
        int cap = 1024;
        int32_t *ids = mml_malloc((size_t)cap * sizeof *ids);
        int n = ids ? mml_bpe_encode_clip(b, argv[i], ids, cap, context) : -1;
        if (n > cap) { /* a long text: encode again with room for all of it */
            mml_free(ids);
            cap = n;
            ids = mml_malloc((size_t)cap * sizeof *ids);
            n = ids ? mml_bpe_encode_clip(b, argv[i], ids, cap, context) : -1;
        }
        if (n < 0) {
            fprintf(stderr, "mml: argument %d: %s\n", i - first + 1, mml_last_error());
            rc = CLI_FAIL;
        } else {
            for (int k = 0; k < n; k++) printf(k ? " %d" : "%d", ids[k]);
            printf("\n");
        }
        mml_free(ids);
    }
    mml_bpe_free(b);
    return rc;
}

static int text_tokenize(int argc, char **argv)
{
    int flags = MML_WORDS_LOWER, rc = CLI_OK, texts = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--stopwords")) flags |= MML_WORDS_DROP_STOPWORDS;
        else if (!strcmp(argv[i], "--stem")) flags |= MML_WORDS_STEM;
        else if (!strcmp(argv[i], "--keep-case")) flags &= ~MML_WORDS_LOWER;
        else if (argv[i][0] == '-' && argv[i][1] == '-') return cli_usage(TOKENIZE_USAGE, "unexpected option");
        else {
            mml_words w;
            texts++;
            if (mml_text_words(argv[i], flags, &w) != MML_OK) {
                rc = cli_fail(NULL);
                continue;
            }
            for (int k = 0; k < w.n; k++) printf(k ? " %s" : "%s", w.words[k]);
            printf("\n");
            mml_words_free(&w);
        }
    }
    return texts ? rc : cli_usage(TOKENIZE_USAGE, "no text given");
}

int cmd_text(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: %s\n       %s\nencode prints one line of CLIP token ids per text (49406 ... 49407, zeros up "
               "to --context);\ntokenize prints the words (lower-cased unless --keep-case).\n", ENCODE_USAGE,
               TOKENIZE_USAGE);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "encode")) return text_encode(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenize")) return text_tokenize(argc - 1, argv + 1);
    return cli_usage("mml text encode|tokenize ...", "unknown text command");
}
