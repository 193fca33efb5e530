/* mml/knn.h: k-nearest-neighbour search by inner product (cosine for unit
 * vectors). Exact search is a blocked SGEMM scan (SIMD) split over the thread
 * pool; with Debian's libfaiss-dev, IVF and HNSW indices trade recall for
 * speed on large indices.
 *
 *     mml_knn_options o = { MML_KNN_HNSW };          // zeros: defaults
 *     mml_knn_index *ix;
 *     if (mml_knn_index_build(emb, n, dim, &o, &ix) != MML_OK) ...mml_last_error()
 *     mml_knn_index_search(ix, queries, nq, dim, k, rows, scores);  // [nq, k] each
 *     mml_knn_index_free(ix);
 *
 * Thread safety: searches of one built index may run concurrently. Exact
 * search runs on mml_threads_get() threads; FAISS runs on as many OpenMP
 * threads, set on each call. */
#ifndef MML_KNN_H
#define MML_KNN_H

#include <stdbool.h>
#include <stdint.h>

#include "mml/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The k rows of index [n, dim] with the highest inner product with q [dim],
 * best first, into rows[] and scores[] (ties: the lower row first); returns
 * how many (min(k, n)), or -1 when out of memory. */
int mml_knn_search(const float *index, int64_t n, int64_t dim, const float *q, int k, int64_t *rows, float *scores);

typedef enum mml_knn_kind {
    MML_KNN_EXACT = 0,
    MML_KNN_IVF,  /* FAISS IndexIVFFlat: k-means lists, nprobe of them scanned */
    MML_KNN_HNSW, /* FAISS IndexHNSWFlat: a navigable small-world graph */
} mml_knn_kind;

/* Zero fields take defaults: nlist 4*sqrt(n) (at most n/39, the fewest
 * training points per list FAISS accepts without a warning), nprobe 16,
 * hnsw_m 32, ef_search 64. */
typedef struct mml_knn_options {
    mml_knn_kind kind;
    int nlist;     /* IVF: lists (k-means centroids), at most n */
    int nprobe;    /* IVF: lists scanned per query */
    int hnsw_m;    /* HNSW: links per node */
    int ef_search; /* HNSW: candidate list length per query (at least k is used) */
} mml_knn_options;

typedef struct mml_knn_index mml_knn_index;

/* An index of vectors [n, dim]. Exact: the index keeps the pointer, so
 * vectors must stay alive and unchanged until mml_knn_index_free. IVF and
 * HNSW copy them (vectors may be freed after the call); IVF trains its lists
 * on an evenly spaced sample of them. The FAISS kinds fail with
 * MML_ERR_UNSUPPORTED when mml was built without FAISS. o may be NULL (exact). */
mml_status mml_knn_index_build(const float *vectors, int64_t n, int64_t dim, const mml_knn_options *o,
                               mml_knn_index **out);

/* The k best rows for each of nq queries q [nq, dim] (dim: the index's) into
 * rows and scores [nq, k], best first; exact ties go to the lower row. When a
 * query has fewer than k results (k > n, or an approximate index found fewer)
 * the rest are row -1, score -INFINITY. */
mml_status mml_knn_index_search(const mml_knn_index *ix, const float *q, int64_t nq, int64_t dim, int k, int64_t *rows,
                                float *scores);

/* The options the index was built with, defaults filled in. */
const mml_knn_options *mml_knn_index_options(const mml_knn_index *ix);

void mml_knn_index_free(mml_knn_index *ix);

/* Whether this build has the FAISS kinds. */
bool mml_knn_have_faiss(void);
const char *mml_knn_kind_name(mml_knn_kind kind); /* "exact", "ivf", "hnsw" */
int mml_knn_kind_from_name(const char *name);     /* -1 if unknown */

#ifdef __cplusplus
}
#endif
#endif
