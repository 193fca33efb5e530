/* k-nearest search: exact against a full ranking and the index API against
 * mml_knn_search, on 1 and 2 threads; FAISS IVF and HNSW recall against exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mml/knn.h"
#include "mml/rng.h"
#include "mml/threads.h"
#include "test.h"

/* The rank of row r by (score desc, row asc), by counting. */
static int64_t rank_of(const float *s, int64_t n, int64_t r)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += s[i] > s[r] || (s[i] == s[r] && i < r);
    return k;
}

TEST(knn_matches_a_full_ranking)
{
    enum { N = 5000, D = 16, K = 10 };
    float *index = malloc(sizeof(float) * N * D), q[D], *s = malloc(sizeof(float) * N);
    mml_rng r;
    mml_rng_seed(&r, 5);
    for (int i = 0; i < N * D; i++) index[i] = (float)(int)(4 * mml_rng_normal(&r)) / 4; /* coarse: ties happen */
    for (int d = 0; d < D; d++) q[d] = (float)(int)(4 * mml_rng_normal(&r)) / 4;
    for (int64_t i = 0; i < N; i++) {
        s[i] = 0;
        for (int d = 0; d < D; d++) s[i] += q[d] * index[i * D + d];
    }
    int saved = mml_threads_get();
    for (int threads = 1; threads <= 2; threads++) {
        mml_threads_set(threads);
        int64_t rows[K];
        float scores[K];
        CHECK(mml_knn_search(index, N, D, q, K, rows, scores) == K);
        for (int i = 0; i < K; i++) CHECK_MSG(rank_of(s, N, rows[i]) == i && scores[i] == s[rows[i]], "hit %d", i);
    }
    int64_t rows[K];
    float scores[K];
    CHECK(mml_knn_search(index, 3, D, q, K, rows, scores) == 3); /* fewer rows than k */
    mml_threads_set(saved);
    free(index);
    free(s);
}

/* n unit vectors [n, dim] around `centres` random unit centres, like embeddings of classes. */
static float *clustered(mml_rng *r, int64_t n, int64_t dim, int centres, float noise)
{
    float *c = malloc(sizeof(float) * (size_t)(centres * dim)), *x = malloc(sizeof(float) * (size_t)(n * dim));
    for (int64_t i = 0; i < centres * dim; i++) c[i] = mml_rng_normal(r) / sqrtf((float)dim);
    for (int64_t i = 0; i < n; i++) {
        const float *ci = c + mml_rng_below(r, (uint32_t)centres) * dim;
        float *xi = x + i * dim, norm = 0;
        for (int64_t d = 0; d < dim; d++) xi[d] = ci[d] + noise * mml_rng_normal(r), norm += xi[d] * xi[d];
        for (int64_t d = 0; d < dim; d++) xi[d] /= sqrtf(norm);
    }
    free(c);
    return x;
}

TEST(knn_index_exact_matches_knn_search)
{
    enum { N = 3000, D = 24, NQ = 150, K = 7 }; /* NQ: more than one chunk of queries */
    float *index = malloc(sizeof(float) * N * D), *q = malloc(sizeof(float) * NQ * D);
    float *scores = malloc(sizeof(float) * NQ * K), want_scores[K];
    int64_t *rows = malloc(sizeof(int64_t) * NQ * K), want_rows[K];
    mml_rng r;
    mml_rng_seed(&r, 11);
    for (int i = 0; i < N * D; i++) index[i] = (float)(int)(4 * mml_rng_normal(&r)) / 4; /* ties happen */
    for (int i = 0; i < NQ * D; i++) q[i] = (float)(int)(4 * mml_rng_normal(&r)) / 4;
    mml_knn_index *ix = NULL;
    CHECK_OK(mml_knn_index_build(index, N, D, NULL, &ix));
    int saved = mml_threads_get();
    for (int threads = 1; ix && threads <= 2; threads++) {
        mml_threads_set(threads);
        CHECK_OK(mml_knn_index_search(ix, q, NQ, D, K, rows, scores));
        for (int i = 0; i < NQ; i++) {
            CHECK(mml_knn_search(index, N, D, q + i * D, K, want_rows, want_scores) == K);
            for (int h = 0; h < K; h++)
                CHECK_MSG(rows[i * K + h] == want_rows[h] && scores[i * K + h] == want_scores[h], "query %d hit %d", i, h);
        }
    }
    mml_threads_set(saved);
    mml_knn_index_free(ix);
    free(index), free(q), free(scores), free(rows);
}

/* k > n: the n rows, then row -1 and score -INFINITY, for every kind built. */
TEST(knn_index_pads_beyond_n)
{
    enum { N = 3, D = 4, K = 5 };
    const float index[N * D] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0 }, q[D] = { 0.1f, 0.3f, 0.2f, 0 };
    const int64_t order[N] = { 1, 2, 0 };
    for (int kind = MML_KNN_EXACT; kind <= (mml_knn_have_faiss() ? MML_KNN_HNSW : MML_KNN_EXACT); kind++) {
        mml_knn_options o = { (mml_knn_kind)kind };
        mml_knn_index *ix = NULL;
        int64_t rows[K];
        float scores[K];
        CHECK_OK(mml_knn_index_build(index, N, D, &o, &ix));
        if (!ix) continue;
        CHECK_OK(mml_knn_index_search(ix, q, 1, D, K, rows, scores));
        for (int h = 0; h < K; h++)
            CHECK_MSG(h < N ? rows[h] == order[h] && scores[h] == q[order[h]] : rows[h] == -1 && scores[h] == -INFINITY,
                      "%s hit %d: row %lld", mml_knn_kind_name((mml_knn_kind)kind), h, (long long)rows[h]);
        mml_knn_index_free(ix);
    }
}

static bool fails_with(mml_status got, mml_status want, const char *message)
{
    return got == want && strstr(mml_last_error(), message) != NULL;
}

TEST(knn_index_rejects_bad_arguments)
{
    float v[8] = { 1, 0, 0, 1, 0.6f, 0.8f, 0.8f, 0.6f }, scores[4];
    int64_t rows[4];
    mml_knn_index *ix = NULL;
    CHECK(fails_with(mml_knn_index_build(v, 0, 2, NULL, &ix), MML_ERR_ARG, "cannot index 0 vectors"));
    CHECK(fails_with(mml_knn_index_build(v, 4, 0, NULL, &ix), MML_ERR_ARG, "of 0 dimensions"));
    static const struct {
        mml_knn_options o;
        const char *message;
    } bad[] = {
        { { (mml_knn_kind)7 }, "unknown index kind 7" },
        { { MML_KNN_IVF, .nprobe = -1 }, "must not be negative" },
        { { MML_KNN_IVF, .nlist = 5 }, "nlist 5 is more than the 4 vectors" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(fails_with(mml_knn_index_build(v, 4, 2, &bad[i].o, &ix), MML_ERR_ARG, bad[i].message), "%s", mml_last_error());
    CHECK(ix == NULL);
    CHECK_OK(mml_knn_index_build(v, 4, 2, NULL, &ix));
    if (!ix) return;
    CHECK(fails_with(mml_knn_index_search(ix, v, 1, 2, 0, rows, scores), MML_ERR_ARG, "for k = 0"));
    CHECK(fails_with(mml_knn_index_search(ix, v, -1, 2, 1, rows, scores), MML_ERR_ARG, "-1 queries"));
    CHECK(fails_with(mml_knn_index_search(ix, v, 1, 3, 1, rows, scores), MML_ERR_ARG, "3-d queries for an index of 2-d"));
    CHECK_OK(mml_knn_index_search(ix, v, 0, 2, 1, rows, scores));
    mml_knn_index_free(ix);
}

/* Recall@10 of IVF and HNSW against exact search on clustered unit vectors,
 * with generous nprobe and efSearch; without FAISS, a clear error. */
TEST(knn_faiss_recall)
{
    enum { N = 20000, D = 32, NQ = 200, K = 10 };
    mml_knn_index *ix = NULL;
    if (!mml_knn_have_faiss()) {
        float v[D] = { 1 };
        mml_knn_options o = { MML_KNN_HNSW };
        CHECK(fails_with(mml_knn_index_build(v, 1, D, &o, &ix), MML_ERR_UNSUPPORTED, "built without FAISS (install libfaiss-dev"));
        return;
    }
    mml_rng r;
    mml_rng_seed(&r, 3);
    float *x = clustered(&r, N + NQ, D, 200, 0.15f), *q = x + (int64_t)N * D; /* queries drawn like the points */
    float *scores = malloc(sizeof(float) * NQ * K), *exact_scores = malloc(sizeof(float) * NQ * K);
    int64_t *rows = malloc(sizeof(int64_t) * NQ * K), *exact = malloc(sizeof(int64_t) * NQ * K);
    CHECK_OK(mml_knn_index_build(x, N, D, NULL, &ix));
    if (ix) CHECK_OK(mml_knn_index_search(ix, q, NQ, D, K, exact, exact_scores));
    mml_knn_index_free(ix);
    const mml_knn_options kinds[] = { { MML_KNN_IVF, .nprobe = 32 }, { MML_KNN_HNSW, .ef_search = 128 } };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        ix = NULL;
        CHECK_OK(mml_knn_index_build(x, N, D, &kinds[i], &ix));
        if (!ix) continue;
        CHECK_OK(mml_knn_index_search(ix, q, NQ, D, K, rows, scores));
        int64_t hits = 0;
        for (int a = 0; a < NQ; a++)
            for (int b = 0; b < K; b++)
                for (int c = 0; c < K; c++) hits += rows[a * K + b] == exact[a * K + c];
        double recall = (double)hits / (NQ * K);
        CHECK_MSG(recall >= 0.9, "%s: recall@10 %.3f", mml_knn_kind_name(kinds[i].kind), recall);
        CHECK_NEAR(scores[0], exact_scores[0], 1e-5);
        mml_knn_index_free(ix);
    }
    free(x), free(scores), free(exact_scores), free(rows), free(exact);
}
