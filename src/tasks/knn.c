/* k-nearest-neighbour search. Exact: a chunk of queries times a block of
 * index rows is one SGEMM tile (the SIMD kernels); each thread scans its range
 * of rows keeping the best k of every query, then the threads' lists are
 * merged. IVF and HNSW are FAISS's (knn_faiss.cpp). */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/kernels/gemm.h"
#include "mml/alloc.h"
#include "mml/knn.h"
#include "mml/threads.h"
#ifdef MML_HAVE_FAISS
#include "tasks/knn_faiss.h"
#endif

#define QB 96              /* queries per tile: a multiple of the GEMM kernels' 12 and 6 rows */
#define RB 512             /* index rows per tile: the QB x RB scores stay in L2 */
#define LIST_BUDGET 262144 /* best-k entries per thread per chunk of queries, bounding memory for large k */

struct mml_knn_index {
    const float *vectors; /* exact: the caller's, borrowed */
    int64_t n, dim;
    mml_knn_options o;    /* defaults filled in */
#ifdef MML_HAVE_FAISS
    mml_faiss_index *faiss;
#endif
};

typedef struct exact_job {
    const float *index, *q; /* q: the chunk's nq queries */
    int64_t dim, nq;
    int k;
    float *tiles;     /* [threads][QB * RB] */
    int64_t *rows;    /* [threads][nq][k] */
    float *scores;
    int *have;        /* [threads][nq] */
} exact_job;

/* Inserts (s, r) into a best-first list of at most k, ties to the lower row. */
static inline void insert(int64_t *rows, float *scores, int *have, int k, float s, int64_t r)
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
    exact_job *j = arg;
    float *tile = j->tiles + (int64_t)thread * QB * RB;
    int64_t first = (int64_t)thread * j->nq;
    for (int64_t r0 = begin; r0 < end; r0 += RB) {
        int64_t rb = end - r0 < RB ? end - r0 : RB;
        /* Nested in the pool, so the GEMM runs on this thread. */
        mml_sgemm(false, true, j->nq, rb, j->dim, 1.0f, j->q, j->dim, j->index + r0 * j->dim, j->dim, 0.0f, tile, rb);
        for (int64_t i = 0; i < j->nq; i++) {
            int64_t l = first + i, *rows = j->rows + l * j->k;
            float *scores = j->scores + l * j->k, worst = -INFINITY;
            const float *s = tile + i * rb;
            int *have = &j->have[l];
            if (*have == j->k) worst = scores[j->k - 1];
            /* Rows come in increasing order, so a score equal to the k-th loses its tie. */
            for (int64_t c = 0; c < rb; c++)
                if (s[c] > worst || *have < j->k) {
                    insert(rows, scores, have, j->k, s[c], r0 + c);
                    if (*have == j->k) worst = scores[j->k - 1];
                }
        }
    }
}

/* Query i's best k over all threads' lists, padded to k. */
static void merge(const exact_job *j, int threads, int64_t i, int64_t *rows, float *scores)
{
    int have = 0;
    for (int t = 0; t < threads; t++) {
        int64_t l = (int64_t)t * j->nq + i;
        for (int e = 0; e < j->have[l]; e++) insert(rows, scores, &have, j->k, j->scores[l * j->k + e], j->rows[l * j->k + e]);
    }
    for (int e = have; e < j->k; e++) rows[e] = -1, scores[e] = -INFINITY;
}

static mml_status exact_search(const float *index, int64_t n, int64_t dim, const float *q, int64_t nq, int k,
                               int64_t *rows, float *scores)
{
    int T = mml_threads_get();
    int64_t qb = LIST_BUDGET / ((int64_t)T * k);
    qb = qb < 1 ? 1 : qb > QB ? QB : qb;
    size_t lists = (size_t)T * (size_t)qb;
    exact_job j = { index, q, dim, 0, k, mml_aligned_alloc((size_t)T * QB * RB * sizeof(float)),
                    mml_malloc(lists * (size_t)k * sizeof(int64_t)), mml_malloc(lists * (size_t)k * sizeof(float)),
                    mml_malloc(lists * sizeof(int)) };
    mml_status rc = j.tiles && j.rows && j.scores && j.have ? MML_OK : mml_error(MML_ERR_NOMEM, "knn: out of memory");
    for (int64_t q0 = 0; rc == MML_OK && q0 < nq; q0 += qb) {
        j.nq = nq - q0 < qb ? nq - q0 : qb;
        j.q = q + q0 * dim;
        memset(j.have, 0, (size_t)T * (size_t)j.nq * sizeof(int));
        mml_parallel_for(n, RB, scan, &j);
        for (int64_t i = 0; i < j.nq; i++) merge(&j, T, i, rows + (q0 + i) * k, scores + (q0 + i) * k);
    }
    mml_free(j.tiles), mml_free(j.rows), mml_free(j.scores), mml_free(j.have);
    return rc;
}

int mml_knn_search(const float *index, int64_t n, int64_t dim, const float *q, int k, int64_t *rows, float *scores)
{
    if (exact_search(index, n, dim, q, 1, k, rows, scores) != MML_OK) return -1;
    return (int)(n < k ? n : k);
}

static const char *KIND_NAMES[] = { "exact", "ivf", "hnsw" };

const char *mml_knn_kind_name(mml_knn_kind kind)
{
    return (unsigned)kind <= MML_KNN_HNSW ? KIND_NAMES[kind] : "?";
}

int mml_knn_kind_from_name(const char *name)
{
    for (int kind = MML_KNN_EXACT; kind <= MML_KNN_HNSW; kind++)
        if (!strcmp(name, KIND_NAMES[kind])) return kind;
    return -1;
}

bool mml_knn_have_faiss(void)
{
#ifdef MML_HAVE_FAISS
    return true;
#else
    return false;
#endif
}

/* Checks o against n and fills in its zero fields. */
static mml_status resolve_options(const mml_knn_options *o, int64_t n, mml_knn_options *out)
{
    *out = o ? *o : (mml_knn_options){ MML_KNN_EXACT };
    if ((unsigned)out->kind > MML_KNN_HNSW) return mml_error(MML_ERR_ARG, "knn: unknown index kind %d", (int)out->kind);
    if (out->nlist < 0 || out->nprobe < 0 || out->hnsw_m < 0 || out->ef_search < 0)
        return mml_error(MML_ERR_ARG, "knn: nlist, nprobe, hnsw_m and ef_search must not be negative");
    if (out->nlist > n)
        return mml_error(MML_ERR_ARG, "knn: nlist %d is more than the %lld vectors", out->nlist, (long long)n);
    if (!out->nlist) {
        double lists = fmin(4 * sqrt((double)n), (double)n / 39);
        out->nlist = lists < 1 ? 1 : (int)lists;
    }
    if (!out->nprobe) out->nprobe = 16;
    if (!out->hnsw_m) out->hnsw_m = 32;
    if (!out->ef_search) out->ef_search = 64;
    return MML_OK;
}

mml_status mml_knn_index_build(const float *vectors, int64_t n, int64_t dim, const mml_knn_options *o,
                               mml_knn_index **out)
{
    assert(vectors && out);
    *out = NULL;
    if (n < 1 || dim < 1 || dim > INT_MAX || n > INT64_MAX / dim)
        return mml_error(MML_ERR_ARG, "knn: cannot index %lld vectors of %lld dimensions", (long long)n, (long long)dim);
    mml_knn_options opt;
    if (resolve_options(o, n, &opt) != MML_OK) return mml_last_status();
#ifndef MML_HAVE_FAISS
    if (opt.kind != MML_KNN_EXACT)
        return mml_error(MML_ERR_UNSUPPORTED, "knn: a %s index needs FAISS, but mml was built without FAISS (install "
                         "libfaiss-dev and rebuild)", mml_knn_kind_name(opt.kind));
#endif
    mml_knn_index *ix = mml_calloc(1, sizeof *ix);
    if (!ix) return mml_last_status();
    *ix = (mml_knn_index){ .vectors = opt.kind == MML_KNN_EXACT ? vectors : NULL, .n = n, .dim = dim, .o = opt };
#ifdef MML_HAVE_FAISS
    if (opt.kind != MML_KNN_EXACT) {
        mml_status rc = mml_faiss_build(vectors, n, dim, &opt, mml_threads_get(), &ix->faiss);
        if (rc != MML_OK) {
            mml_free(ix);
            return rc;
        }
    }
#endif
    *out = ix;
    return MML_OK;
}

mml_status mml_knn_index_search(const mml_knn_index *ix, const float *q, int64_t nq, int64_t dim, int k, int64_t *rows,
                                float *scores)
{
    assert(ix && (nq == 0 || (q && rows && scores)));
    if (nq < 0 || k < 1) return mml_error(MML_ERR_ARG, "knn: %lld queries for k = %d", (long long)nq, k);
    if (dim != ix->dim)
        return mml_error(MML_ERR_ARG, "knn: %lld-d queries for an index of %lld-d vectors", (long long)dim,
                         (long long)ix->dim);
    if (nq == 0) return MML_OK;
#ifdef MML_HAVE_FAISS
    if (ix->faiss) return mml_faiss_search(ix->faiss, q, nq, k, mml_threads_get(), rows, scores);
#endif
    return exact_search(ix->vectors, ix->n, ix->dim, q, nq, k, rows, scores);
}

const mml_knn_options *mml_knn_index_options(const mml_knn_index *ix) { return &ix->o; }

void mml_knn_index_free(mml_knn_index *ix)
{
    if (!ix) return;
#ifdef MML_HAVE_FAISS
    mml_faiss_free(ix->faiss);
#endif
    mml_free(ix);
}
