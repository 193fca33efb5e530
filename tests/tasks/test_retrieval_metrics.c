#include <stdlib.h>
#include <string.h>

#include "mml/metrics.h"
#include "mml/rng.h"
#include "mml/threads.h"
#include "test.h"

TEST(retrieval_metrics_match_hand_computed_values)
{
    /* gallery keys 0 1 0 1; query 2's key 7 matches nothing, so it is skipped.
     * q0 (key 0): order g0 .9, g2 .5, g3 .3, g1 .1; relevant g0, g2 at ranks 1, 2:
     *   first 1, AP = (1/1 + 2/2) / 2 = 1
     * q1 (key 1): order g2 .8, then the .4 ties by index g0, g1, g3; relevant g1, g3
     *   at ranks 3, 4: first 3, AP = (1/3 + 2/4) / 2 = 5/12
     * R@1 = 1/2, R@5 = R@10 = 1, median rank (1 + 3) / 2 = 2, mean 2,
     * mAP = (1 + 5/12) / 2 = 17/24 */
    const float s[] = { 0.9f, 0.1f, 0.5f, 0.3f, 0.4f, 0.4f, 0.8f, 0.4f, 0.1f, 0.2f, 0.3f, 0.4f };
    const int32_t qk[] = { 0, 1, 7 }, gk[] = { 0, 1, 0, 1 };
    mml_retrieval_metrics m;
    CHECK_OK(mml_retrieval_evaluate(s, 3, 4, qk, gk, &m));
    CHECK(m.n_queries == 2);
    CHECK_NEAR(m.recall[0], 0.5, 1e-12);
    CHECK_NEAR(m.recall[1], 1.0, 1e-12);
    CHECK_NEAR(m.recall[2], 1.0, 1e-12);
    CHECK_NEAR(m.median_rank, 2.0, 1e-12);
    CHECK_NEAR(m.mean_rank, 2.0, 1e-12);
    CHECK_NEAR(m.map, 17.0 / 24.0, 1e-12);
}

/* Gallery item a is ranked above b: a higher score, or an equal one and a lower index. */
static bool ranked_above(const float *row, int64_t a, int64_t b)
{
    return row[a] > row[b] || (row[a] == row[b] && a < b);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The definitions applied literally: every relevant item's rank by comparing
 * it with every other item. */
static mml_retrieval_metrics brute_force(const float *s, int64_t nq, int64_t ng, const int32_t *qk, const int32_t *gk)
{
    mml_retrieval_metrics m = { { 0 } };
    int64_t *firsts = malloc((size_t)nq * sizeof *firsts);
    for (int64_t q = 0; q < nq; q++) {
        const float *row = s + q * ng;
        int64_t first = 0, n_rel = 0;
        double ap = 0.0;
        for (int64_t j = 0; j < ng; j++) {
            if (gk[j] != qk[q]) continue;
            int64_t rank = 1, rel_at_or_above = 1;
            for (int64_t k = 0; k < ng; k++) {
                if (k == j || !ranked_above(row, k, j)) continue;
                rank++;
                rel_at_or_above += gk[k] == qk[q];
            }
            ap += (double)rel_at_or_above / (double)rank;
            n_rel++;
            if (!first || rank < first) first = rank;
        }
        if (!n_rel) continue;
        firsts[m.n_queries++] = first;
        m.recall[0] += first <= 1;
        m.recall[1] += first <= 5;
        m.recall[2] += first <= 10;
        m.mean_rank += (double)first;
        m.map += ap / (double)n_rel;
    }
    int64_t n = m.n_queries;
    if (!n) {
        free(firsts);
        return m;
    }
    qsort(firsts, (size_t)n, sizeof *firsts, cmp_i64);
    for (int k = 0; k < 3; k++) m.recall[k] /= (double)n;
    m.mean_rank /= (double)n;
    m.map /= (double)n;
    m.median_rank = n % 2 ? (double)firsts[n / 2] : (double)(firsts[n / 2 - 1] + firsts[n / 2]) / 2.0;
    free(firsts);
    return m;
}

typedef enum { SCORES_UNIFORM, SCORES_FEW_LEVELS, SCORES_SIGNED_ZEROS } score_kind;

static void fill_scores(mml_rng *rng, float *s, int64_t n, score_kind kind)
{
    for (int64_t i = 0; i < n; i++) {
        if (kind == SCORES_UNIFORM) s[i] = 2.0f * mml_rng_uniform(rng) - 1.0f;
        else if (kind == SCORES_FEW_LEVELS) s[i] = (float)mml_rng_below(rng, 4) / 3.0f;
        else s[i] = (float[]){ -0.0f, 0.0f, 1.0f }[mml_rng_below(rng, 3)]; /* -0 and +0 tie */
    }
}

static void check_against_brute_force(const char *what, const float *s, int64_t nq, int64_t ng, const int32_t *qk,
                                      const int32_t *gk)
{
    bool failed_before = tst_failed();
    mml_retrieval_metrics got, want = brute_force(s, nq, ng, qk, gk);
    if (!want.n_queries) {
        CHECK(mml_retrieval_evaluate(s, nq, ng, qk, gk, &got) == MML_ERR_ARG);
        return;
    }
    CHECK_OK(mml_retrieval_evaluate(s, nq, ng, qk, gk, &got));
    CHECK_MSG(got.n_queries == want.n_queries, "%s: %lld queries, want %lld", what, (long long)got.n_queries,
              (long long)want.n_queries);
    for (int k = 0; k < 3; k++) CHECK_NEAR(got.recall[k], want.recall[k], 1e-12);
    CHECK_NEAR(got.median_rank, want.median_rank, 1e-12);
    CHECK_NEAR(got.mean_rank, want.mean_rank, 1e-9);
    CHECK_NEAR(got.map, want.map, 1e-12);
    if (tst_failed() && !failed_before) tst_fail(__FILE__, __LINE__, "in case %s", what);
}

TEST(retrieval_metrics_match_brute_force)
{
    static const int64_t sizes[][2] = { { 1, 1 }, { 3, 1 }, { 7, 13 }, { 40, 25 }, { 64, 200 }, { 150, 97 } };
    mml_rng rng;
    mml_rng_seed(&rng, 11);
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0] && !tst_failed(); c++) {
        int64_t nq = sizes[c][0], ng = sizes[c][1];
        float *s = malloc((size_t)(nq * ng) * sizeof *s);
        int32_t *qk = malloc((size_t)nq * sizeof *qk), *gk = malloc((size_t)ng * sizeof *gk);
        for (score_kind kind = SCORES_UNIFORM; kind <= SCORES_SIGNED_ZEROS; kind++) {
            char what[96];
            fill_scores(&rng, s, nq * ng, kind);
            /* category level: a few labels; the last query's label is in no gallery item */
            uint32_t classes = 1 + mml_rng_below(&rng, 6);
            for (int64_t i = 0; i < nq; i++) qk[i] = i == nq - 1 && nq > 1 ? -1 : (int32_t)mml_rng_below(&rng, classes);
            for (int64_t j = 0; j < ng; j++) gk[j] = (int32_t)mml_rng_below(&rng, classes);
            snprintf(what, sizeof what, "category %lldx%lld, %u classes, scores %d", (long long)nq, (long long)ng,
                     classes, (int)kind);
            check_against_brute_force(what, s, nq, ng, qk, gk);
            /* instance level: query i's items are gallery i*per .. i*per+per-1 (several
             * captions per image); queries past the gallery's end have none */
            int64_t per = 1 + (int64_t)mml_rng_below(&rng, 3);
            for (int64_t i = 0; i < nq; i++) qk[i] = (int32_t)i;
            for (int64_t j = 0; j < ng; j++) gk[j] = (int32_t)(j / per);
            snprintf(what, sizeof what, "instance %lldx%lld, %lld per query, scores %d", (long long)nq, (long long)ng,
                     (long long)per, (int)kind);
            check_against_brute_force(what, s, nq, ng, qk, gk);
        }
        free(s);
        free(qk);
        free(gk);
    }
}

TEST(retrieval_metrics_do_not_depend_on_thread_count)
{
    enum { NQ = 3000, NG = 40 }; /* enough rows for the pool to split them */
    static float s[NQ * NG];
    static int32_t qk[NQ], gk[NG];
    mml_rng rng;
    mml_rng_seed(&rng, 5);
    fill_scores(&rng, s, NQ * NG, SCORES_FEW_LEVELS);
    for (int i = 0; i < NQ; i++) qk[i] = (int32_t)mml_rng_below(&rng, 8);
    for (int j = 0; j < NG; j++) gk[j] = (int32_t)mml_rng_below(&rng, 8);
    int saved = mml_threads_get();
    mml_retrieval_metrics one, many;
    mml_threads_set(1);
    CHECK_OK(mml_retrieval_evaluate(s, NQ, NG, qk, gk, &one));
    mml_threads_set(4);
    CHECK_OK(mml_retrieval_evaluate(s, NQ, NG, qk, gk, &many));
    mml_threads_set(saved);
    CHECK(memcmp(&one, &many, sizeof one) == 0);
    check_against_brute_force("threads", s, NQ, NG, qk, gk);
}

TEST(retrieval_metrics_reject_bad_input)
{
    float s[] = { 0.5f, 0.25f, 0.0f, 1.0f };
    int32_t qk[] = { 0, 1 }, gk[] = { 2, 3 };
    mml_retrieval_metrics m;
    CHECK(mml_retrieval_evaluate(s, 0, 2, qk, gk, &m) == MML_ERR_ARG && strstr(mml_last_error(), "retrieval: 0 queries"));
    CHECK(mml_retrieval_evaluate(s, 2, 0, qk, gk, &m) == MML_ERR_ARG && strstr(mml_last_error(), "0 gallery items"));
    CHECK(mml_retrieval_evaluate(s, 2, 2, qk, gk, &m) == MML_ERR_ARG &&
          strstr(mml_last_error(), "retrieval: no query has a relevant gallery item"));
    gk[1] = 1;
    s[3] = NAN;
    CHECK(mml_retrieval_evaluate(s, 2, 2, qk, gk, &m) == MML_ERR_ARG &&
          strstr(mml_last_error(), "retrieval: query 1 has a NaN score"));
}
