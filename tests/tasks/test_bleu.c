/* Corpus BLEU against nltk's documented values and hand-computed cases;
 * tests/reference/bleu.py (a port of nltk's corpus_bleu) prints the
 * Papineni numbers. */
#include <assert.h>
#include <string.h>

#include "mml/metrics.h"
#include "test.h"

enum { MAX_WORDS = 128, MAX_SENT = 8, MAX_TOKENS = 32 };

/* A word's id is its index in this list, which grows as sentences are encoded. */
static char g_words[MAX_WORDS][16];
static int g_n_words;

static int word_id(const char *w, size_t len)
{
    for (int i = 0; i < g_n_words; i++)
        if (strlen(g_words[i]) == len && !memcmp(g_words[i], w, len)) return i;
    assert(g_n_words < MAX_WORDS && len < sizeof g_words[0]);
    memcpy(g_words[g_n_words], w, len);
    g_words[g_n_words][len] = '\0';
    return g_n_words++;
}

/* Space-separated words into ids; returns the count. */
static int encode(const char *s, int32_t *ids)
{
    int n = 0;
    while (*s) {
        size_t len = strcspn(s, " ");
        if (len) ids[n++] = word_id(s, len);
        s += len + (s[len] == ' ');
    }
    return n;
}

/* BLEU of sentences given as words; refs as mml_bleu_corpus takes them. */
static mml_status bleu_of(const char *const *hyps, int64_t n, const char *const *refs, const int64_t *ref_start,
                          mml_bleu *out)
{
    static int32_t hyp_ids[MAX_SENT][MAX_TOKENS], ref_ids[MAX_SENT][MAX_TOKENS];
    const int32_t *hp[MAX_SENT], *rp[MAX_SENT];
    int hl[MAX_SENT], rl[MAX_SENT];
    for (int64_t i = 0; i < n; i++) {
        hl[i] = encode(hyps[i], hyp_ids[i]);
        hp[i] = hyp_ids[i];
    }
    for (int64_t r = ref_start[0]; r < ref_start[n]; r++) {
        rl[r] = encode(refs[r], ref_ids[r]);
        rp[r] = ref_ids[r];
    }
    return mml_bleu_corpus(hp, hl, n, rp, rl, ref_start, out);
}

static const char *const H1 = "It is a guide to action which ensures that the military always obeys the commands of the party";
static const char *const H2 = "he read the book because he was interested in world history";
static const char *const REFS[] = {
    "It is a guide to action that ensures that the military will forever heed Party commands",
    "It is the guiding principle which guarantees the military forces always being under the command of the Party",
    "It is the practical guide for the army always to heed the directions of the party",
    "he was interested in world history because he read the book",
};

TEST(bleu_matches_nltk_on_papinenis_example)
{
    /* nltk's docstrings: modified precisions 17/18 and 10/17, sentence_bleu
     * 0.5045666840058485; p_3 = 7/16, p_4 = 4/15 and BLEU-1..3 from
     * tests/reference/bleu.py. Hypothesis and closest reference both have
     * 18 tokens: bp = 1. */
    mml_bleu b;
    const int64_t one[] = { 0, 3 };
    CHECK_OK(bleu_of(&H1, 1, REFS, one, &b));
    CHECK_NEAR(b.precision[0], 17.0 / 18.0, 1e-15);
    CHECK_NEAR(b.precision[1], 10.0 / 17.0, 1e-15);
    CHECK_NEAR(b.precision[2], 7.0 / 16.0, 1e-15);
    CHECK_NEAR(b.precision[3], 4.0 / 15.0, 1e-15);
    CHECK(b.brevity_penalty == 1.0 && b.hyp_len == 18 && b.ref_len == 18);
    CHECK_NEAR(b.bleu[0], 0.9444444444444444, 1e-14);
    CHECK_NEAR(b.bleu[1], 0.7453559924999299, 1e-14);
    CHECK_NEAR(b.bleu[2], 0.6240726989348756, 1e-14);
    CHECK_NEAR(b.bleu[3], 0.5045666840058485, 1e-14);

    /* nltk's corpus_bleu docstring: 0.5920778868801042. H2 has all 11
     * unigrams and 9 of 10 bigrams ("book because" is missing) of its
     * reference: p_1 = (17 + 11) / (18 + 11), p_2 = (10 + 9) / (17 + 10). */
    const char *const hyps[] = { H1, H2 };
    const int64_t two[] = { 0, 3, 4 };
    CHECK_OK(bleu_of(hyps, 2, REFS, two, &b));
    CHECK_NEAR(b.precision[0], 28.0 / 29.0, 1e-15);
    CHECK_NEAR(b.precision[1], 19.0 / 27.0, 1e-15);
    CHECK(b.hyp_len == 29 && b.ref_len == 29);
    CHECK_NEAR(b.bleu[0], 0.9655172413793104, 1e-14);
    CHECK_NEAR(b.bleu[1], 0.8242803277698696, 1e-14);
    CHECK_NEAR(b.bleu[2], 0.7069430098960677, 1e-14);
    CHECK_NEAR(b.bleu[3], 0.5920778868801042, 1e-14);
}

TEST(bleu_perfect_match_is_one)
{
    const char *const s = "a cat sits on the mat";
    const int64_t rs[] = { 0, 1 };
    mml_bleu b;
    CHECK_OK(bleu_of(&s, 1, &s, rs, &b));
    for (int k = 0; k < 4; k++) CHECK(b.bleu[k] == 1.0 && b.precision[k] == 1.0);
}

TEST(bleu_brevity_penalty_uses_the_closest_reference)
{
    /* 4 tokens against 8: every precision 1, bp = exp(1 - 8/4) */
    const char *const h = "a cat sits on";
    const char *const refs[] = { "a cat sits on the mat all day", "a cat", "a cat sits on the mat" };
    const int64_t long_only[] = { 0, 1 };
    mml_bleu b;
    CHECK_OK(bleu_of(&h, 1, refs, long_only, &b));
    CHECK(b.ref_len == 8);
    CHECK_NEAR(b.brevity_penalty, exp(-1.0), 1e-15);
    for (int k = 0; k < 4; k++) CHECK_NEAR(b.bleu[k], exp(-1.0), 1e-15);

    /* lengths 2 and 6 are both 2 away from 4: the shorter counts, so c > r and bp = 1 */
    const int64_t tie[] = { 1, 3 };
    CHECK_OK(bleu_of(&h, 1, refs, tie, &b));
    CHECK(b.ref_len == 2 && b.brevity_penalty == 1.0);
}

TEST(bleu_is_zero_from_the_first_order_without_a_match)
{
    const char *const h = "dogs bark";
    const char *const refs[] = { "cats meow", "bark dogs" };
    const int64_t none[] = { 0, 1 }, swapped[] = { 1, 2 };
    mml_bleu b;
    CHECK_OK(bleu_of(&h, 1, refs, none, &b));
    for (int k = 0; k < 4; k++) CHECK(b.bleu[k] == 0.0);
    /* unigrams 2/2, bigram "dogs bark" 0/1 */
    CHECK_OK(bleu_of(&h, 1, refs, swapped, &b));
    CHECK(b.bleu[0] == 1.0 && b.bleu[1] == 0.0 && b.bleu[3] == 0.0);

    /* A 2-token hypothesis has no trigram: nltk counts 0 of 1, so BLEU-3 and -4 are 0 */
    CHECK_OK(bleu_of(&h, 1, &h, none, &b));
    CHECK(b.bleu[0] == 1.0 && b.bleu[1] == 1.0 && b.bleu[2] == 0.0 && b.bleu[3] == 0.0);
    CHECK(b.precision[2] == 0.0 && b.precision[3] == 0.0);
}

TEST(bleu_clips_counts_to_the_most_in_one_reference)
{
    /* Papineni's example: "the" occurs twice in the first reference and once
     * in the second, so 2 of the 7 unigrams count (3 if counts were summed).
     * The 7-token reference is the closest: bp = 1, BLEU-1 = 2/7. */
    const char *const h = "the the the the the the the";
    const char *const refs[] = { "the cat is on the mat", "there is a cat on the mat" };
    const int64_t rs[] = { 0, 2 };
    mml_bleu b;
    CHECK_OK(bleu_of(&h, 1, refs, rs, &b));
    CHECK_NEAR(b.precision[0], 2.0 / 7.0, 1e-15);
    CHECK(b.precision[1] == 0.0 && b.ref_len == 7 && b.brevity_penalty == 1.0);
    CHECK_NEAR(b.bleu[0], 2.0 / 7.0, 1e-15);
    CHECK(b.bleu[1] == 0.0);
}

TEST(bleu_rejects_bad_input)
{
    const int32_t tok[] = { 1, 2 };
    const int32_t *seqs[] = { tok, tok };
    int len[] = { 2, 2 }, neg[] = { -1, 2 };
    const int64_t rs[] = { 0, 1 }, no_ref[] = { 1, 1 };
    mml_bleu b;
    CHECK(mml_bleu_corpus(seqs, len, 0, seqs, len, rs, &b) == MML_ERR_ARG);
    CHECK(mml_bleu_corpus(seqs, len, 1, seqs, len, no_ref, &b) == MML_ERR_ARG);
    CHECK_MSG(strstr(mml_last_error(), "no reference"), "%s", mml_last_error());
    CHECK(mml_bleu_corpus(seqs, neg, 1, seqs, len, rs, &b) == MML_ERR_ARG);
    CHECK_MSG(strstr(mml_last_error(), "hypothesis 0 has length -1"), "%s", mml_last_error());
    CHECK(mml_bleu_corpus(seqs, len, 1, seqs, neg, rs, &b) == MML_ERR_ARG);
    CHECK_MSG(strstr(mml_last_error(), "reference 0"), "%s", mml_last_error());
}
