/* Exact inner-product search: each thread keeps the best k of its range of
 * rows, then the ranges' lists are merged. */
#include <string.h>

#include "mml/alloc.h"
#include "mml/knn.h"
#include "mml/threads.h"

typedef struct job {
    const float *index, *q;
    int64_t dim;
    int k;
    int64_t *rows; /* [threads][k] */
    float *scores;
    int *have;
} job;

/* Inserts (s, r) into a best-first list of at most k, ties to the lower row. */
static void insert(int64_t *rows, float *scores, int *have, int k, float s, int64_t r)
{
    if (*have == k && (s < scores[k - 1] || (s == scores[k - 1] && r > rows[k - 1]))) return;
    int pos = *have < k ? (*have)++ : k - 1;
    while (pos > 0 && (scores[pos - 1] < s || (scores[pos - 1] == s && rows[pos - 1] > r))) {
        scores[pos] = scores[pos - 1];
        rows[pos] = rows[pos - 1];
        pos--;
    }
    scores[pos] = s;
    rows[pos] = r;
}

static void scan(void *arg, int64_t begin, int64_t end, int thread)
{
    job *j = arg;
    int64_t *rows = j->rows + (int64_t)thread * j->k;
    float *scores = j->scores + (int64_t)thread * j->k;
    for (int64_t r = begin; r < end; r++) {
        const float *e = j->index + r * j->dim;
        float s = 0;
        for (int64_t d = 0; d < j->dim; d++) s += j->q[d] * e[d];
        insert(rows, scores, &j->have[thread], j->k, s, r);
    }
}

int mml_knn_search(const float *index, int64_t n, int64_t dim, const float *q, int k, int64_t *rows, float *scores)
{
    int T = mml_threads_get();
    job j = { index, q, dim, k, mml_malloc((size_t)T * (size_t)k * sizeof *j.rows),
              mml_malloc((size_t)T * (size_t)k * sizeof *j.scores), mml_calloc((size_t)T, sizeof *j.have) };
    int have = 0;
    if (!j.rows || !j.scores || !j.have) {
        mml_free(j.rows), mml_free(j.scores), mml_free(j.have);
        mml_error(MML_ERR_NOMEM, "knn: out of memory");
        return -1;
    }
    mml_parallel_for(n, 4096, scan, &j);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < j.have[t]; i++) insert(rows, scores, &have, k, j.scores[t * k + i], j.rows[t * k + i]);
    mml_free(j.rows), mml_free(j.scores), mml_free(j.have);
    return have;
}
