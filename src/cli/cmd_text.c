/* mml text encode | decode | tokenize | vocab | bpe-train */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/text.h"

static const char *ENCODE_USAGE = "mml text encode (--bpe MERGES_FILE | --vocab VOCAB_FILE) [--context N] [--no-special] TEXT...";
static const char *DECODE_USAGE = "mml text decode --bpe MERGES_FILE ID...";
static const char *TOKENIZE_USAGE = "mml text tokenize [--stopwords] [--stem] [--keep-case] TEXT...";
static const char *VOCAB_USAGE = "mml text vocab --corpus FILE [--min-freq N] [--max-size N] [--stopwords] [--stem] "
                                 "[--keep-case] [--specials A,B,C,D...] --out VOCAB_FILE";
static const char *TRAIN_USAGE = "mml text bpe-train --corpus FILE --merges N --out MERGES_FILE";

/* A whole number in [lo, hi], or -1. */
static long long bounded(const char *s, long long lo, long long hi)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return *s && !*end && v >= lo && v <= hi ? v : -1;
}

static int text_encode(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nPrints one line of ids per text. --bpe takes CLIP's merges file (ids as clip.tokenize) or one "
               "from mml text bpe-train;\n--vocab a file from mml text vocab (unknown words are <unk>). Ids start with "
               "BOS and end with EOS\nunless --no-special; --context N pads (PAD, 0 for BPE) or truncates (keeping "
               "EOS) to N ids.\n", ENCODE_USAGE);
        return CLI_OK;
    }
    const char *merges = NULL, *vocab_path = NULL;
    int context = 0, first = -1;
    bool special = true;
    for (int i = 1; i < argc && first < 0; i++) {
        if (!strcmp(argv[i], "--bpe") && i + 1 < argc) merges = argv[++i];
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab_path = argv[++i];
        else if (!strcmp(argv[i], "--no-special")) special = false;
        else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            if ((context = (int)bounded(argv[++i], 2, 65536)) < 0) return cli_usage(ENCODE_USAGE, "--context must be in [2, 65536]");
        } else if (argv[i][0] == '-' && argv[i][1] == '-') return cli_usage(ENCODE_USAGE, "unexpected option");
        else first = i;
    }
    if (!merges == !vocab_path || first < 0) return cli_usage(ENCODE_USAGE, "needs one of --bpe and --vocab, and at least one text");
    mml_bpe *b = NULL;
    mml_vocab *v = NULL;
    if (merges ? mml_bpe_load(merges, &b) != MML_OK : mml_vocab_load(vocab_path, &v) != MML_OK) return cli_fail(NULL);
    mml_text_batch_opts o = { .max_length = context, .padding = context ? MML_PAD_MAX_LENGTH : MML_PAD_LONGEST,
                              .truncation = context > 0, .bos_eos = special, .dtype = MML_I64, .pad_id = -1 };
    int rc = CLI_OK;
    for (int i = first; i < argc; i++) {
        mml_text_batch batch;
        const char *text = argv[i];
        if (mml_text_encode_batch(v, b, &text, 1, &o, &batch) != MML_OK) {
            fprintf(stderr, "mml: argument %d: %s\n", i - first + 1, mml_last_error());
            rc = CLI_FAIL;
            continue;
        }
        int64_t n = context ? context : mml_i64(batch.lengths)[0];
        for (int64_t k = 0; k < n; k++) printf(k ? " %lld" : "%lld", (long long)mml_i64(batch.ids)[k]);
        printf("\n");
        mml_text_batch_free(&batch);
    }
    mml_bpe_free(b);
    mml_vocab_free(v);
    return rc;
}

static int text_decode(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nPrints the text of BPE ids (special tokens skipped).\n", DECODE_USAGE);
        return CLI_OK;
    }
    if (argc < 4 || strcmp(argv[1], "--bpe")) return cli_usage(DECODE_USAGE, "needs --bpe and at least one id");
    int n = argc - 3;
    int32_t *ids = mml_malloc((size_t)n * sizeof *ids);
    if (!ids) return cli_fail("out of memory");
    for (int i = 0; i < n; i++) {
        long long id = bounded(argv[3 + i], 0, INT32_MAX);
        if (id < 0) {
            mml_free(ids);
            return cli_usage(DECODE_USAGE, "ids are whole numbers >= 0");
        }
        ids[i] = (int32_t)id;
    }
    mml_bpe *b;
    char *text = NULL;
    if (mml_bpe_load(argv[2], &b) == MML_OK) {
        text = mml_bpe_decode(b, ids, n);
        mml_bpe_free(b);
    }
    mml_free(ids);
    if (!text) return cli_fail(NULL);
    printf("%s\n", text);
    mml_free(text);
    return CLI_OK;
}

static int text_tokenize(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nPrints the words of each text (lower-cased unless --keep-case).\n", TOKENIZE_USAGE);
        return CLI_OK;
    }
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

/* Splits a comma-separated list in place into at most cap pointers. */
static int split_commas(char *s, const char **out, int cap)
{
    int n = 0;
    for (char *tok = s; tok && n < cap; n++) {
        out[n] = tok;
        if ((tok = strchr(tok, ','))) *tok++ = '\0';
    }
    return n;
}

static int text_vocab(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nCounts the words of each corpus line (UTF-8) and writes the vocabulary: the special tokens "
               "(default\n<pad>,<unk>,<bos>,<eos>: ids 0-3 in the roles PAD, UNK, BOS, EOS), then the words seen at "
               "least\n--min-freq times (default 1) by count, then bytes, up to --max-size tokens in all.\n", VOCAB_USAGE);
        return CLI_OK;
    }
    mml_vocab_opts o = mml_vocab_default_opts();
    const char *corpus = NULL, *out = NULL, *specials[64];
    char *spec_arg = NULL;
    for (int i = 1; i < argc; i++) {
        long long v;
        if (!strcmp(argv[i], "--corpus") && i + 1 < argc) corpus = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--stopwords")) o.words_flags |= MML_WORDS_DROP_STOPWORDS;
        else if (!strcmp(argv[i], "--stem")) o.words_flags |= MML_WORDS_STEM;
        else if (!strcmp(argv[i], "--keep-case")) o.words_flags &= ~MML_WORDS_LOWER;
        else if (!strcmp(argv[i], "--specials") && i + 1 < argc) spec_arg = argv[++i];
        else if (!strcmp(argv[i], "--min-freq") && i + 1 < argc) {
            if ((v = bounded(argv[++i], 1, INT32_MAX)) < 0) return cli_usage(VOCAB_USAGE, "--min-freq must be a whole number >= 1");
            o.min_freq = v;
        } else if (!strcmp(argv[i], "--max-size") && i + 1 < argc) {
            if ((v = bounded(argv[++i], 5, INT32_MAX)) < 0) return cli_usage(VOCAB_USAGE, "--max-size must be a whole number >= 5");
            o.max_size = (int32_t)v;
        } else return cli_usage(VOCAB_USAGE, "unexpected argument");
    }
    if (!corpus || !out) return cli_usage(VOCAB_USAGE, "needs --corpus and --out");
    if (spec_arg) {
        o.specials = specials;
        o.n_specials = split_commas(spec_arg, specials, 64);
    }
    mml_vocab *v;
    if (mml_vocab_from_corpus(corpus, &o, &v) != MML_OK) return cli_fail(NULL);
    mml_status rc = mml_vocab_save(v, out);
    if (rc == MML_OK) printf("%s: %d tokens (%d special)\n", out, (int)mml_vocab_size(v), (int)mml_vocab_n_specials(v));
    mml_vocab_free(v);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}

static int text_bpe_train(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nLearns up to N byte-level BPE merges (CLIP's byte symbols and </w>) from the corpus and "
               "writes\na merges file that mml text encode --bpe reads.\n", TRAIN_USAGE);
        return CLI_OK;
    }
    const char *corpus = NULL, *out = NULL;
    long long merges = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--corpus") && i + 1 < argc) corpus = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--merges") && i + 1 < argc) {
            if ((merges = bounded(argv[++i], 1, 1 << 22)) < 0) return cli_usage(TRAIN_USAGE, "--merges must be in [1, 4194304]");
        } else return cli_usage(TRAIN_USAGE, "unexpected argument");
    }
    if (!corpus || !out || merges < 0) return cli_usage(TRAIN_USAGE, "needs --corpus, --merges and --out");
    int done;
    if (mml_bpe_train_file(corpus, (int)merges, out, &done) != MML_OK) return cli_fail(NULL);
    printf("%s: %d merges%s\n", out, done, done < merges ? " (no pair left to merge)" : "");
    return CLI_OK;
}

int cmd_text(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = { { "encode", text_encode }, { "decode", text_decode }, { "tokenize", text_tokenize },
                 { "vocab", text_vocab }, { "bpe-train", text_bpe_train } };
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: %s\n       %s\n       %s\n       %s\n       %s\n'mml text COMMAND --help' says more.\n",
               ENCODE_USAGE, DECODE_USAGE, TOKENIZE_USAGE, VOCAB_USAGE, TRAIN_USAGE);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].run(argc - 1, argv + 1);
    return cli_usage("mml text encode|decode|tokenize|vocab|bpe-train ...", "unknown text command");
}
