/* Word vocabularies, BPE training and batches, against tests/reference/gen_text.py. */
#include <string.h>

#include "mml/alloc.h"
#include "mml/text.h"
#include "test.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static const char *corpus_path(char *buf, size_t cap) { return tst_fixture_path("text/corpus.txt", buf, cap); }

/* The fixture's tokens (\x1f-separated) and counts against v. */
static void check_vocab(const mml_vocab *v, const mml_safetensors *fx, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "vocab_%s", name);
    char *toks = mml_strdup(mml_safetensors_meta(fx, key));
    snprintf(key, sizeof key, "counts_%s", name);
    mml_tensor *counts = mml_safetensors_tensor(fx, key, MML_I64);
    CHECK(toks && counts);
    if (!toks || !counts) return;
    int32_t id = 0;
    for (char *t = toks, *next; t; t = next, id++) {
        next = strchr(t, '\x1f');
        if (next) *next++ = '\0';
        const char *got = mml_vocab_token(v, id);
        CHECK_MSG(got && !strcmp(got, t), "%s: id %d is '%s', want '%s'", name, id, got ? got : "(none)", t);
        CHECK_MSG(mml_vocab_id(v, t) == id, "%s: '%s' looks up as %d, want %d", name, t, mml_vocab_id(v, t), id);
        CHECK_MSG(id >= counts->shape[0] || mml_vocab_count(v, id) == mml_i64(counts)[id], "%s: count of '%s'", name, t);
    }
    CHECK_MSG(id == mml_vocab_size(v) && id == counts->shape[0], "%s: %d tokens, want %d", name, mml_vocab_size(v), id);
    mml_free(toks);
    mml_tensor_free(counts);
}

TEST(text_vocab_matches_python_counter)
{
    char path[1024];
    mml_safetensors *fx = tst_fixture("text_ref.safetensors");
    if (!fx) return;
    mml_vocab_opts o = mml_vocab_default_opts();
    mml_vocab *v = NULL;
    CHECK_OK(mml_vocab_from_corpus(corpus_path(path, sizeof path), &o, &v));
    if (v) check_vocab(v, fx, "plain");
    mml_vocab_free(v);
    o.min_freq = 3;
    o.max_size = 40;
    o.words_flags |= MML_WORDS_DROP_STOPWORDS;
    CHECK_OK(mml_vocab_from_corpus(path, &o, &v));
    if (v) check_vocab(v, fx, "cut");
    /* saved and loaded back: same tokens, counts and word options */
    char file[1024];
    tst_tmp_path("vocab.txt", file, sizeof file);
    CHECK_OK(mml_vocab_save(v, file));
    mml_vocab *w = NULL;
    CHECK_OK(mml_vocab_load(file, &w));
    if (w) {
        check_vocab(w, fx, "cut");
        CHECK(mml_vocab_words_flags(w) == (MML_WORDS_LOWER | MML_WORDS_DROP_STOPWORDS) && mml_vocab_n_specials(w) == 4);
        int32_t ids[8];
        /* "the" is a stop word, "zebra" unknown; Cat is folded */
        int n = mml_vocab_encode(w, "The Cat zebra", MML_TEXT_BOS | MML_TEXT_EOS, ids, 8);
        CHECK(n == 4 && ids[0] == MML_VOCAB_BOS && ids[1] == mml_vocab_id(w, "cat") && ids[2] == MML_VOCAB_UNK &&
              ids[3] == MML_VOCAB_EOS);
        CHECK(mml_vocab_encode(w, "cat cat cat", 0, ids, 2) == 3); /* the count beyond cap */
        CHECK(mml_vocab_encode(w, "bad \xff", 0, ids, 8) < 0);
    }
    mml_vocab_free(v);
    mml_vocab_free(w);
    mml_safetensors_free(fx);
}

TEST(text_vocab_ties_specials_and_options)
{
    const char *texts[] = { "b a c b a d", "c e" };
    const char *specials[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
    mml_vocab_opts o = mml_vocab_default_opts();
    o.specials = specials;
    o.n_specials = 5;
    o.max_size = 8;
    mml_vocab *v = NULL;
    CHECK_OK(mml_vocab_from_texts(texts, 2, &o, &v));
    /* a, b, c twice (bytes break the tie), then d and e once: d is cut by max_size */
    const char *want[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c" };
    CHECK(v && mml_vocab_size(v) == 8);
    for (int i = 0; v && i < 8; i++) CHECK_MSG(!strcmp(mml_vocab_token(v, i), want[i]), "id %d: %s", i, mml_vocab_token(v, i));
    CHECK(v && mml_vocab_token(v, 8) == NULL && mml_vocab_id(v, "d") == -1);
    mml_vocab_free(v);
    o.n_specials = 3;
    CHECK(mml_vocab_from_texts(texts, 2, &o, &v) == MML_ERR_ARG && strstr(mml_last_error(), "at least 4"));
    o = mml_vocab_default_opts();
    o.min_freq = 5;
    CHECK(mml_vocab_from_texts(texts, 2, &o, &v) != MML_OK && strstr(mml_last_error(), "no word occurs"));
    const char *bad[] = { "fine", "bad \xc3(" };
    CHECK(mml_vocab_from_texts(bad, 2, &o, &v) != MML_OK && strstr(mml_last_error(), "texts[1]"));
}

TEST(text_vocab_and_corpus_errors_name_file_and_line)
{
    char path[1024];
    mml_vocab *v = NULL;
    mml_vocab_opts o = mml_vocab_default_opts();
    tst_tmp_path("bad_corpus.txt", path, sizeof path);
    write_file(path, "good line\nanother\nbroken \xe2\x82 here\n");
    CHECK(mml_vocab_from_corpus(path, &o, &v) == MML_ERR_FORMAT && strstr(mml_last_error(), "bad_corpus.txt:3:") &&
          strstr(mml_last_error(), "invalid UTF-8"));
    int done;
    CHECK(mml_bpe_train_file(path, 10, path, &done) == MML_ERR_FORMAT && strstr(mml_last_error(), "bad_corpus.txt:3:"));
    write_file(path, "\n  \n");
    CHECK(mml_vocab_from_corpus(path, &o, &v) != MML_OK && strstr(mml_last_error(), "no words"));
    CHECK(mml_bpe_train_file(path, 10, path, &done) != MML_OK && strstr(mml_last_error(), "no words"));
    CHECK(mml_vocab_from_corpus("/nonexistent/corpus.txt", &o, &v) == MML_ERR_IO);

    static const struct {
        const char *text, *want;
    } cases[] = {
        { "", "empty" },
        { "#mml-vocab 2 specials=4 lower=1 stopwords=0 stem=0\n", ":1:" },
        { "#mml-vocab 1 specials=2 lower=1 stopwords=0 stem=0\n<pad>\t0\n<unk>\t0\nx\t1\n", "at least 4" },
        { "#mml-vocab 1 specials=4 lower=1 stopwords=0 stem=0\n<pad>\t0\n<unk>\t0\n", "missing tokens" },
        { "#mml-vocab 1 specials=4 lower=1 stopwords=0 stem=0\na\t0\nb\t0\nc\t0\nd\t0\n", "missing tokens" },
        { "#mml-vocab 1 specials=4 lower=1 stopwords=0 stem=0\na\t0\nb\t0\nc\t0\nd\t0\nb\t3\n", ":6: token 'b' repeats line 3" },
        { "#mml-vocab 1 specials=4 lower=1 stopwords=0 stem=0\na\t0\nb\t0\nc\t0\nd\t0\n\xff\t3\n", ":6: the token is not UTF-8" },
        { "#mml-vocab 1 specials=4 lower=1 stopwords=0 stem=0\na\t0\nb\t0\nc\t0\nd\t0\nx\t-3\n", ":6: the count" },
        { "#mml-vocab 1 specials=4 lower=1 stopwords=0 stem=0\na\t0\nb\t0\nc\nd\t0\n", ":4: expected token<TAB>count" },
        { "#mml-vocab 1 specials=4 lower=1 stopwords=0 stem=0\na\t0\nb\t0\nc\t0\nd\t0\n\t4\n", ":6: the token is empty" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tst_tmp_path("bad_vocab.txt", path, sizeof path);
        write_file(path, cases[i].text);
        mml_status rc = mml_vocab_load(path, &v);
        CHECK_MSG(rc == MML_ERR_FORMAT && strstr(mml_last_error(), "bad_vocab.txt") && strstr(mml_last_error(), cases[i].want),
                  "case %zu: %s", i, mml_last_error());
        mml_vocab_free(v);
    }
}

/* The classic example worked by hand (docs/text.md): counts of pairs over
 * low x5, lower x2, newest x6, widest x3; ties to the bytewise-smaller pair. */
TEST(text_bpe_train_hand_checked)
{
    const char *texts[] = { "low low low low low lower lower", "newest newest newest newest newest newest",
                            "widest widest widest" };
    char *merges = NULL;
    int done = 0;
    CHECK_OK(mml_bpe_train_texts(texts, 3, 100, &merges, &done));
    const char *want = "#version: 0.2\ne s\nes t</w>\nl o\ne w\new est</w>\nn ewest</w>\nlo w</w>\nd est</w>\n"
                       "i dest</w>\nw idest</w>\ne r</w>\nlo w\nlow er</w>\n";
    CHECK_MSG(done == 13 && merges && !strcmp(merges, want), "%d merges:\n%s", done, merges ? merges : "");
    mml_bpe *b = NULL;
    CHECK_OK(mml_bpe_parse(merges, strlen(merges), "trained", &b));
    if (b) {
        CHECK(mml_bpe_vocab_size(b) == 512 + 13 + 2 && mml_bpe_sot(b) == 525 && mml_bpe_eot(b) == 526);
        int32_t ids[16];
        /* lowest -> low + est</w> (merges 11 and 1); newer -> n ew er</w>; wider -> w i d er</w> */
        static const int32_t ref[] = { 525, 512 + 11, 512 + 1, 'n' - 33, 512 + 3, 512 + 10, 'w' - 33, 'i' - 33, 'd' - 33, 512 + 10, 526 };
        int n = mml_bpe_encode(b, "Lowest newer wider", MML_TEXT_BOS | MML_TEXT_EOS, ids, 16);
        CHECK(n == 11 && !memcmp(ids, ref, sizeof ref));
        char *text = mml_bpe_decode(b, ids, n);
        CHECK(text && !strcmp(text, "lowest newer wider"));
        mml_free(text);
        ids[0] = 527;
        CHECK(mml_bpe_decode(b, ids, 1) == NULL && strstr(mml_last_error(), "outside"));
    }
    mml_bpe_free(b);
    mml_free(merges);
    CHECK(mml_bpe_train_texts(texts, 3, 0, &merges, &done) == MML_ERR_ARG);
}

TEST(text_bpe_train_matches_python_reference)
{
    char path[1024], out[1024];
    mml_safetensors *fx = tst_fixture("text_ref.safetensors");
    if (!fx) return;
    int done = 0;
    tst_tmp_path("merges.txt", out, sizeof out);
    CHECK_OK(mml_bpe_train_file(corpus_path(path, sizeof path), 300, out, &done));
    FILE *f = fopen(out, "rb");
    char *buf = mml_calloc(1, 1 << 16);
    if (f) {
        CHECK(fread(buf, 1, (1 << 16) - 1, f) > 0);
        fclose(f);
    }
    const char *want = mml_safetensors_meta(fx, "merges");
    const char *body = strchr(buf, '\n');
    int want_lines = 0;
    for (const char *p = want; p && *p; p++) want_lines += *p == '\n';
    CHECK(want && done == want_lines + 1 && done > 100 && !strncmp(buf, "#version: 0.2\n", 14) && body);
    if (body && want) {
        /* the first differing line, if any */
        const char *g = body + 1, *w = want;
        int line = 2;
        while (*g && *w && *g == *w) line += *g++ == '\n', w++;
        CHECK_MSG(!*w && !strcmp(g, "\n"), "merges differ from the reference at line %d", line);
    }
    mml_bpe *b = NULL;
    CHECK_OK(mml_bpe_load(out, &b));
    char *words = mml_strdup(mml_safetensors_meta(fx, "bpe_words"));
    int row = 0;
    for (char *t = words, *next; b && t; t = next, row++) {
        next = strchr(t, '\x1f');
        if (next) *next++ = '\0';
        char key[32];
        snprintf(key, sizeof key, "bpe_ids_%d", row);
        mml_tensor *ref = mml_safetensors_tensor(fx, key, MML_I64);
        int32_t ids[64];
        int n = mml_bpe_encode(b, t, 0, ids, 64);
        bool same = ref && n == ref->shape[0];
        for (int i = 0; same && i < n; i++) same = ids[i] == mml_i64(ref)[i];
        CHECK_MSG(same, "'%s' encodes differently from the reference", t);
        char *back = mml_bpe_decode(b, ids, n);
        CHECK_MSG(back && !strcmp(back, t), "'%s' decodes to '%s'", t, back ? back : "(null)");
        mml_free(back);
        mml_tensor_free(ref);
    }
    CHECK(row == 6);
    mml_free(words);
    mml_free(buf);
    mml_bpe_free(b);
    mml_safetensors_free(fx);
}

TEST(text_bpe_merges_file_errors)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "", ":1: expected a header" },
        { "a b\n", ":1: expected a header" },
        { "#version: 0.2\na b\nab c\nq\n", ":4: expected two symbols" },
        { "#version: 0.2\na b\nab c\na b\n", ":4: repeats the merge of line 2" },
        { "#version: 0.2\na b\nxy z\n", ":3: symbol 'xy' is neither" },
        { "#version: 0.2\na b\n\xc3\n", ":3: invalid UTF-8" },
        { "#version: 0.2\na  b\n", ":2: expected two symbols" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mml_bpe *b = NULL;
        mml_status rc = mml_bpe_parse(cases[i].text, strlen(cases[i].text), "m.txt", &b);
        CHECK_MSG(rc == MML_ERR_FORMAT && strstr(mml_last_error(), cases[i].want), "case %zu: %s", i, mml_last_error());
        mml_bpe_free(b);
    }
    mml_bpe *b = NULL;
    CHECK_OK(mml_bpe_parse("#version: 0.2\n", 14, "none.txt", &b)); /* no merges: bytes only */
    CHECK(b && mml_bpe_vocab_size(b) == 514);
    mml_bpe_free(b);
}

static int64_t at(const mml_tensor *t, int64_t i) { return t->dtype == MML_I64 ? mml_i64(t)[i] : mml_i32(t)[i]; }

TEST(text_batch_padding_truncation_masks)
{
    const char *corpus[] = { "a b c d e f g" };
    mml_vocab *v = NULL;
    mml_vocab_opts vo = mml_vocab_default_opts();
    CHECK_OK(mml_vocab_from_texts(corpus, 1, &vo, &v));
    if (!v) return;
    const char *texts[] = { "a b", "c d e f g h", "" };
    mml_text_batch b;
    /* longest, no limit: rows of 4, 8 and 2 ids */
    mml_text_batch_opts o = { .padding = MML_PAD_LONGEST, .bos_eos = true, .dtype = MML_I64, .pad_id = -1 };
    CHECK_OK(mml_text_encode_batch(v, NULL, texts, 3, &o, &b));
    if (b.ids) {
        /* a..g are ids 4..10 (equal counts, byte order); h is unknown */
        static const int64_t ids[] = { 2, 4, 5, 3, 0, 0, 0, 0, 2, 6, 7, 8, 9, 10, 1, 3, 2, 3, 0, 0, 0, 0, 0, 0 };
        CHECK(b.ids->shape[0] == 3 && b.ids->shape[1] == 8 && b.mask->dtype == MML_I64);
        for (int i = 0; i < 24; i++) CHECK_MSG(at(b.ids, i) == ids[i], "id %d: %lld", i, (long long)at(b.ids, i));
        for (int i = 0; i < 24; i++) CHECK(at(b.mask, i) == (ids[i] != 0));
        CHECK(at(b.lengths, 0) == 4 && at(b.lengths, 1) == 8 && at(b.lengths, 2) == 2);
    }
    mml_text_batch_free(&b);
    /* max_length 5 with truncation, I32: EOS stays last */
    o = (mml_text_batch_opts){ .max_length = 5, .padding = MML_PAD_MAX_LENGTH, .truncation = true, .bos_eos = true,
                               .dtype = MML_I32, .pad_id = -1 };
    CHECK_OK(mml_text_encode_batch(v, NULL, texts, 3, &o, &b));
    if (b.ids) {
        static const int32_t ids[] = { 2, 4, 5, 3, 0, 2, 6, 7, 8, 3, 2, 3, 0, 0, 0 };
        CHECK(b.ids->dtype == MML_I32 && b.ids->shape[1] == 5 && !memcmp(mml_i32(b.ids), ids, sizeof ids));
        CHECK(mml_i32(b.mask)[4] == 0 && mml_i32(b.mask)[9] == 1 && mml_i32(b.lengths)[1] == 5);
    }
    mml_text_batch_free(&b);
    /* longest capped by max_length, no specials */
    o = (mml_text_batch_opts){ .max_length = 3, .padding = MML_PAD_LONGEST, .truncation = true, .dtype = MML_I64, .pad_id = 7 };
    const char *two[] = { "a", "b c" };
    CHECK_OK(mml_text_encode_batch(v, NULL, two, 2, &o, &b));
    if (b.ids) CHECK(b.ids->shape[1] == 2 && at(b.ids, 0) == 4 && at(b.ids, 1) == 7 && at(b.mask, 1) == 0 && at(b.ids, 3) == 6);
    mml_text_batch_free(&b);
    o.truncation = false;
    CHECK(mml_text_encode_batch(v, NULL, texts, 3, &o, &b) == MML_ERR_ARG && strstr(mml_last_error(), "texts[1]"));
    const char *bad[] = { "ok", "\xff" };
    CHECK(mml_text_encode_batch(v, NULL, bad, 2, &o, &b) != MML_OK && strstr(mml_last_error(), "texts[1]"));
    CHECK(mml_text_encode_batch(NULL, NULL, texts, 3, &o, &b) == MML_ERR_ARG);
    mml_vocab_free(v);

    /* BPE: CLIP's layout through the batch API */
    const char *train[] = { "low lower lowest" };
    char *merges = NULL;
    mml_bpe *bpe = NULL;
    CHECK_OK(mml_bpe_train_texts(train, 1, 50, &merges, NULL));
    CHECK_OK(mml_bpe_parse(merges, strlen(merges), "trained", &bpe));
    if (bpe) {
        o = (mml_text_batch_opts){ .max_length = 6, .padding = MML_PAD_MAX_LENGTH, .truncation = true, .bos_eos = true,
                                   .dtype = MML_I64, .pad_id = -1 };
        const char *one[] = { "lowest low" };
        CHECK_OK(mml_text_encode_batch(NULL, bpe, one, 1, &o, &b));
        int32_t ids[8];
        int n = mml_bpe_encode(bpe, "lowest low", MML_TEXT_BOS | MML_TEXT_EOS, ids, 8);
        CHECK(n == 4 && b.ids && at(b.ids, 0) == mml_bpe_sot(bpe) && at(b.ids, 3) == mml_bpe_eot(bpe));
        for (int i = 0; b.ids && i < 6; i++) CHECK(at(b.ids, i) == (i < n ? ids[i] : 0) && at(b.mask, i) == (i < n));
        mml_text_batch_free(&b);
    }
    mml_bpe_free(bpe);
    mml_free(merges);
}

TEST(cli_text_vocab_and_bpe_train)
{
    char corpus[1024], vocab[1024], merges[1024], args[4096], out[8192];
    corpus_path(corpus, sizeof corpus);
    tst_tmp_path("cli_vocab.txt", vocab, sizeof vocab);
    tst_tmp_path("cli_merges.txt", merges, sizeof merges);
    snprintf(args, sizeof args, "text vocab --corpus '%s' --min-freq 2 --max-size 30 --stopwords --out '%s'", corpus, vocab);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, "30 tokens"), "%s", out);
    snprintf(args, sizeof args, "text encode --vocab '%s' --context 6 'The cat and the zebra'", vocab);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0, "%s", out);
    mml_vocab *v = NULL;
    CHECK_OK(mml_vocab_load(vocab, &v));
    if (v) {
        char want[64];
        snprintf(want, sizeof want, "2 %d 1 3 0 0\n", mml_vocab_id(v, "cat"));
        CHECK_MSG(!strcmp(out, want), "%s", out);
    }
    mml_vocab_free(v);
    snprintf(args, sizeof args, "text bpe-train --corpus '%s' --merges 40 --out '%s'", corpus, merges);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, "40 merges"), "%s", out);
    snprintf(args, sizeof args, "text encode --bpe '%s' --no-special 'a garden'", merges);
    CHECK(tst_run_cli(args, out, sizeof out) == 0);
    char dec[16384];
    out[strcspn(out, "\n")] = '\0';
    snprintf(dec, sizeof dec, "text decode --bpe '%s' %s", merges, out);
    CHECK_MSG(tst_run_cli(dec, out, sizeof out) == 0 && !strcmp(out, "a garden\n"), "%s", out);
    for (int i = 0; i < 5; i++) {
        static const char *const cmds[] = { "encode", "decode", "tokenize", "vocab", "bpe-train" };
        snprintf(args, sizeof args, "text %s --help", cmds[i]);
        CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, "usage: mml text"), "%s", cmds[i]);
    }
    CHECK(tst_run_cli("text vocab --corpus x", out, sizeof out) == 2);
    CHECK(tst_run_cli("text bpe-train --corpus x --merges 0 --out y", out, sizeof out) == 2);
    snprintf(args, sizeof args, "text vocab --corpus /nonexistent.txt --out '%s'", vocab);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "nonexistent"));
    snprintf(args, sizeof args, "text encode --vocab '%s' hi", corpus); /* not a vocabulary */
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "corpus.txt:1:"));
}
