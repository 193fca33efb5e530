#include <string.h>

#include "mml/alloc.h"
#include "mml/text.h"
#include "test.h"

static mml_bpe *load_clip(void)
{
    char path[1024];
    mml_bpe *b = NULL;
    tst_dataset_path("clip-bpe/bpe_simple_vocab_16e6.txt.gz", path, sizeof path);
    if (mml_bpe_load_clip(path, &b) != MML_OK) printf("    (skipped: %s)\n", mml_last_error());
    return b;
}

TEST(clip_bpe_matches_reference_tokenizer)
{
    mml_bpe *b = load_clip();
    if (!b) return;
    int32_t ids[80];
    int n = mml_bpe_encode_clip(b, "a photo of a cat", ids, 80, 0);
    static const int32_t want[] = { 49406, 320, 1125, 539, 320, 2368, 49407 }; /* known from CLIP */
    CHECK(n == 7 && !memcmp(ids, want, sizeof want));
    mml_safetensors *fx = tst_fixture("clip_tokens.safetensors");
    if (fx) {
        const char *texts = mml_safetensors_meta(fx, "texts");
        mml_tensor *ref = mml_safetensors_tensor(fx, "ids", MML_I32);
        char *copy = mml_strdup(texts);
        int row = 0;
        for (char *t = copy, *next; t && ref; t = next, row++) {
            next = strchr(t, '\x1f');
            if (next) *next++ = '\0';
            n = mml_bpe_encode_clip(b, t, ids, 80, 77);
            CHECK(n == 77);
            bool same = !memcmp(ids, mml_i32(ref) + row * 77, 77 * sizeof(int32_t));
            CHECK_MSG(same, "text %d \"%s\" tokenises differently", row, t);
        }
        CHECK(ref && row == ref->shape[0]);
        mml_free(copy);
        mml_tensor_free(ref);
        mml_safetensors_free(fx);
    }
    mml_bpe_free(b);
}

TEST(text_normalise_words_stopwords_stem)
{
    char *s = mml_text_normalize("ﬁnancial Ⅳ ＡＢＣ", MML_TEXT_NFKC);
    CHECK(s && !strcmp(s, "financial IV ABC"));
    mml_free(s);
    s = mml_text_normalize("Straße ÉCOLE", MML_TEXT_NFKC | MML_TEXT_CASEFOLD);
    CHECK(s && !strcmp(s, "strasse école"));
    mml_free(s);
    CHECK(mml_text_normalize("bad \xff byte", 0) == NULL && strstr(mml_last_error(), "byte 4"));

    mml_words w;
    CHECK_OK(mml_text_words("The price rose 3.5% to $1,200 -- isn't it high?", MML_WORDS_LOWER, &w));
    const char *want[] = { "the", "price", "rose", "3.5", "to", "1,200", "isn", "t", "it", "high" };
    CHECK(w.n == 10);
    for (int i = 0; i < w.n && i < 10; i++) CHECK_MSG(!strcmp(w.words[i], want[i]), "word %d: %s", i, w.words[i]);
    mml_words_free(&w);
    CHECK_OK(mml_text_words("The runners were running quickly over the hills", MML_WORDS_LOWER | MML_WORDS_DROP_STOPWORDS | MML_WORDS_STEM, &w));
    const char *stemmed[] = { "runner", "run", "quick", "hill" };
    CHECK(w.n == 4);
    for (int i = 0; i < w.n && i < 4; i++) CHECK_MSG(!strcmp(w.words[i], stemmed[i]), "stem %d: %s", i, w.words[i]);
    mml_words_free(&w);
}

TEST(cli_text_encode_and_bad_input)
{
    char path[1024], args[2048], out[4096];
    tst_dataset_path("clip-bpe/bpe_simple_vocab_16e6.txt.gz", path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("    (skipped: CLIP merges not present)\n");
        return;
    }
    fclose(f);
    snprintf(args, sizeof args, "text encode --bpe '%s' --context 10 'a photo of a cat' 'hello'", path);
    CHECK(tst_run_cli(args, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "49406 320 1125 539 320 2368 49407 0 0 0\n"), "%s", out);
    snprintf(args, sizeof args, "text encode --bpe '%s' \"$(printf '\\377\\376')\"", path);
    CHECK(tst_run_cli(args, out, sizeof out) != 0);
    CHECK(tst_run_cli("text encode --bpe /nonexistent.gz hi", out, sizeof out) == 1 && strstr(out, "nonexistent"));
    CHECK(tst_run_cli("text tokenize --stopwords --stem 'The cats are running'", out, sizeof out) == 0 &&
          strstr(out, "cat run"));
}
