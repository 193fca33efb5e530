/* Greedy and beam search over step functions given as tables of
 * conditional probabilities, checked by hand, and over a hashed random
 * model against a greedy loop and exhaustive enumeration. */
#include <math.h>
#include <string.h>

#include "mml/decode.h"
#include "test.h"

/* The hand-checked model: A and B, plus bos which is never predicted. */
enum { EOS = 0, A = 1, B = 2, BOS = 3, V = 4 };

/* P(next | generated prefix) over eos, A, B, bos; `later` for prefixes of 2+ tokens. */
typedef struct table {
    float first[V], after_a[V], after_b[V], later[V];
    int calls;
} table;

static mml_status table_step(void *user, const int32_t *const *seqs, int n, int len, float *logp)
{
    table *tb = user;
    tb->calls++;
    for (int i = 0; i < n; i++) {
        CHECK(seqs[i][0] == BOS);
        const float *p = len == 1                        ? tb->first
                         : len == 2 && seqs[i][1] == A ? tb->after_a
                         : len == 2 && seqs[i][1] == B ? tb->after_b
                                                       : tb->later;
        for (int t = 0; t < V; t++) logp[i * V + t] = logf(p[t]);
    }
    return MML_OK;
}

static mml_decode_options opts(int beam, int max_len, float length_penalty)
{
    return (mml_decode_options){ .beam = beam, .max_len = max_len, .bos = BOS, .eos = EOS,
                                 .length_penalty = length_penalty };
}

TEST(decode_beam_finds_a_likelier_sequence_than_greedy)
{
    /*            eos   A     B
     * first      .1    .5    .4
     * after A    .4    .3    .3
     * after B    .9    .05   .05
     * Greedy takes A (.5), then eos (.4): [A], P = .2.
     * Beam 2 keeps A (.5) and B (.4); next the continuations rank
     * B eos .36, A eos .2, A A .15, ...: both eos ones are in the first two
     * ranks, so two have finished and the search stops with [B], P = .36. */
    table tb = { { .1f, .5f, .4f, 0 }, { .4f, .3f, .3f, 0 }, { .9f, .05f, .05f, 0 }, { .5f, .25f, .25f, 0 }, 0 };
    int32_t out[8];
    float score;
    mml_decode_options o = opts(1, 8, 0.0f);
    CHECK(mml_decode_beam(table_step, &tb, V, &o, out, 8, &score) == 1);
    CHECK(out[0] == A);
    CHECK_NEAR(score, log(.5f) + log(.4f), 1e-6);
    CHECK(tb.calls == 2);

    o.beam = 2;
    CHECK(mml_decode_beam(table_step, &tb, V, &o, out, 8, &score) == 1);
    CHECK(out[0] == B);
    CHECK_NEAR(score, log(.4f) + log(.9f), 1e-6);
    o.length_penalty = 1.0f; /* 2 generated tokens with eos */
    CHECK(mml_decode_beam(table_step, &tb, V, &o, out, 8, &score) == 1);
    CHECK(out[0] == B);
    CHECK_NEAR(score, (log(.4f) + log(.9f)) / 2, 1e-6);
}

TEST(decode_stops_at_max_len)
{
    /* A at .7 every step: [A A A] is cut at max_len 3 with len 3 (no eos) */
    table tb = { { .1f, .7f, .2f, 0 }, { .1f, .7f, .2f, 0 }, { .1f, .7f, .2f, 0 }, { .1f, .7f, .2f, 0 }, 0 };
    int32_t out[3];
    float score;
    for (int beam = 1; beam <= 2; beam++) {
        mml_decode_options o = opts(beam, 3, 0.0f);
        tb.calls = 0;
        CHECK(mml_decode_beam(table_step, &tb, V, &o, out, 3, &score) == 3);
        CHECK(out[0] == A && out[1] == A && out[2] == A);
        CHECK_NEAR(score, 3 * log(.7f), 1e-6);
        CHECK(tb.calls == 3);
        o.length_penalty = 1.0f;
        CHECK(mml_decode_beam(table_step, &tb, V, &o, out, 3, &score) == 3);
        CHECK_NEAR(score, log(.7f), 1e-6);
    }
}

TEST(decode_eos_first_gives_an_empty_output)
{
    /* eos .6 first; beam 2 also keeps A (.3), whose best continuation, eos at
     * .3 * .5, is the second to finish and loses. */
    table tb = { { .6f, .3f, .1f, 0 }, { .5f, .25f, .25f, 0 }, { .5f, .25f, .25f, 0 }, { .5f, .25f, .25f, 0 }, 0 };
    int32_t out[4];
    float score;
    for (int beam = 1; beam <= 2; beam++) {
        mml_decode_options o = opts(beam, 4, 1.0f);
        tb.calls = 0;
        CHECK(mml_decode_beam(table_step, &tb, V, &o, out, 4, &score) == 0);
        CHECK_NEAR(score, log(.6f), 1e-6);
        CHECK(tb.calls == beam);
    }
}

/* A random model: log-softmax of logits hashed from the prefix and token. */
typedef struct hashed {
    int vocab;
    uint64_t seed;
} hashed;

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static mml_status hashed_step(void *user, const int32_t *const *seqs, int n, int len, float *logp)
{
    const hashed *h = user;
    for (int i = 0; i < n; i++) {
        uint64_t key = h->seed;
        for (int j = 0; j < len; j++) key = mix(key ^ (uint64_t)seqs[i][j]);
        float *row = logp + i * h->vocab, sum = 0.0f;
        for (int t = 0; t < h->vocab; t++) {
            row[t] = (float)(mix(key + (uint64_t)t) % 1000) / 250.0f;
            sum += expf(row[t]);
        }
        for (int t = 0; t < h->vocab; t++) row[t] -= logf(sum);
    }
    return MML_OK;
}

enum { MAX_LEN = 6, MAX_VOCAB = 8 };

/* Argmax at every step (lower id on ties); returns the length, *score as decode ranks it. */
static int greedy(hashed *h, const mml_decode_options *o, int32_t *out, double *score)
{
    int32_t seq[MAX_LEN + 1] = { o->bos };
    const int32_t *p = seq;
    float lp[MAX_VOCAB];
    double sum = 0.0;
    for (int len = 1; len <= o->max_len; len++) {
        hashed_step(h, &p, 1, len, lp);
        int best = 0;
        for (int t = 1; t < h->vocab; t++) best = lp[t] > lp[best] ? t : best;
        sum += lp[best];
        *score = sum / pow(len, o->length_penalty);
        if (best == o->eos) return len - 1;
        seq[len] = out[len - 1] = best;
    }
    return o->max_len;
}

TEST(decode_beam_one_is_greedy)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        hashed h = { 5, seed };
        mml_decode_options o = { .beam = 1, .max_len = MAX_LEN, .bos = 4, .eos = 0,
                                 .length_penalty = seed % 2 ? 0.0f : 0.7f };
        int32_t want[MAX_LEN], got[MAX_LEN];
        double want_score;
        float score;
        int n = greedy(&h, &o, want, &want_score);
        CHECK(mml_decode_beam(hashed_step, &h, h.vocab, &o, got, MAX_LEN, &score) == n);
        CHECK_MSG(!memcmp(got, want, (size_t)n * sizeof *got), "seed %d: sequences differ", (int)seed);
        CHECK_NEAR(score, want_score, 1e-5);
    }
}

typedef struct best_seq {
    int32_t seq[MAX_LEN];
    int len;
    double score;
} best_seq;

/* Every sequence continuing seq[0, len): ends at eos or max_len. */
static void enumerate(hashed *h, const mml_decode_options *o, int32_t *seq, int len, double sum, best_seq *best)
{
    const int32_t *p = seq;
    float lp[MAX_VOCAB];
    hashed_step(h, &p, 1, len, lp);
    for (int t = 0; t < h->vocab; t++) {
        seq[len] = t;
        if (t != o->eos && len < o->max_len) {
            enumerate(h, o, seq, len + 1, sum + lp[t], best);
            continue;
        }
        double score = (sum + lp[t]) / pow(len, o->length_penalty);
        if (score <= best->score) continue;
        best->score = score;
        best->len = t == o->eos ? len - 1 : len;
        memcpy(best->seq, seq + 1, (size_t)best->len * sizeof *seq);
    }
}

TEST(decode_wide_beam_is_exhaustive)
{
    /* vocab 3 (eos, one token, bos), max_len 4: at most 2^3 live hypotheses and
     * 24 continuations per step, and 7 finish before the last step, so beam 32
     * keeps every sequence. */
    for (uint64_t seed = 1; seed <= 10; seed++) {
        hashed h = { 3, seed };
        mml_decode_options o = { .beam = 32, .max_len = 4, .bos = 2, .eos = 0,
                                 .length_penalty = seed % 2 ? 0.0f : 1.0f };
        int32_t seq[MAX_LEN + 1] = { o.bos }, got[4];
        best_seq want = { .score = -INFINITY };
        enumerate(&h, &o, seq, 1, 0.0, &want);
        float score;
        CHECK(mml_decode_beam(hashed_step, &h, h.vocab, &o, got, 4, &score) == want.len);
        CHECK_MSG(!memcmp(got, want.seq, (size_t)want.len * sizeof *got), "seed %d: sequences differ", (int)seed);
        CHECK_NEAR(score, want.score, 1e-5);
    }
}

static mml_status failing_step(void *user, const int32_t *const *seqs, int n, int len, float *logp)
{
    return mml_error(MML_ERR_IO, "model lost");
}

static mml_status nan_step(void *user, const int32_t *const *seqs, int n, int len, float *logp)
{
    for (int i = 0; i < n * V; i++) logp[i] = i == 2 ? NAN : -1.0f;
    return MML_OK;
}

TEST(decode_rejects_bad_options)
{
    struct {
        mml_decode_options o;
        int vocab, cap;
        const char *msg;
    } bad[] = {
        { { 0, 4, BOS, EOS, 0 }, V, 4, "beam 0" },
        { { 2, 0, BOS, EOS, 0 }, V, 4, "max_len 0" },
        { { 2, 4, V, EOS, 0 }, V, 4, "bos 4" },
        { { 2, 4, BOS, -1, 0 }, V, 4, "eos -1" },
        { { 2, 4, BOS, EOS, NAN }, V, 4, "length_penalty" },
        { { 2, 4, BOS, EOS, 0 }, 0, 4, "vocab 0" },
        { { 2, 4, BOS, EOS, 0 }, V, 3, "cap 3 < max_len 4" },
    };
    table tb = { { 0 }, { 0 }, { 0 }, { 0 }, 0 };
    int32_t out[4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(mml_decode_beam(table_step, &tb, bad[i].vocab, &bad[i].o, out, bad[i].cap, NULL) == -1);
        CHECK(mml_last_status() == MML_ERR_ARG);
        CHECK_MSG(strstr(mml_last_error(), bad[i].msg), "%s: want '%s'", mml_last_error(), bad[i].msg);
    }
    CHECK(tb.calls == 0);

    mml_decode_options o = opts(2, 4, 0.0f);
    CHECK(mml_decode_beam(failing_step, NULL, V, &o, out, 4, NULL) == -1);
    CHECK(mml_last_status() == MML_ERR_IO);
    CHECK_MSG(strstr(mml_last_error(), "decode: step 1: model lost"), "%s", mml_last_error());
    CHECK(mml_decode_beam(nan_step, NULL, V, &o, out, 4, NULL) == -1);
    CHECK_MSG(strstr(mml_last_error(), "NaN log-probability for token 2"), "%s", mml_last_error());
}
