/* Exact k-nearest search against sorting every score, on 1 and 2 threads. */
#include <stdlib.h>

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
