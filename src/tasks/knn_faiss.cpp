/* The FAISS side of mml_knn_index: IndexIVFFlat and IndexHNSWFlat, both by
 * inner product, behind a C interface. FAISS reports errors by throwing, so
 * every entry point catches and turns the exception into an mml_error. */
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>

#include "tasks/knn_faiss.h"

#define TRAIN_PER_LIST 64 /* k-means sample: enough points per list, and the training time bounded at 1M vectors */

/* nprobe and efSearch are set on the index when it is built: FAISS 1.7.3's
 * HNSW sizes its candidate queue from the index's efSearch even when given
 * SearchParametersHNSW. Searches only read the index, so they may run
 * concurrently. */
struct mml_faiss_index {
    std::unique_ptr<faiss::Index> index;
    mml_knn_kind kind;
};

static mml_status fail(const char *doing, mml_knn_kind kind)
{
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return mml_error(MML_ERR_NOMEM, "knn: out of memory %s the %s index", doing, mml_knn_kind_name(kind));
    } catch (const std::exception &e) {
        return mml_error(MML_ERR_ARG, "knn: FAISS failed %s the %s index: %s", doing, mml_knn_kind_name(kind), e.what());
    }
}

/* Trains on evenly spaced rows, not the first ones: files are often in class
 * order, so a prefix would miss classes. */
static void train_ivf(faiss::IndexIVFFlat &ivf, const float *x, int64_t n, int64_t dim)
{
    int64_t s = std::min<int64_t>(n, (int64_t)ivf.nlist * TRAIN_PER_LIST);
    if (s == n) return ivf.train(n, x);
    std::vector<float> sample((size_t)(s * dim));
    for (int64_t i = 0; i < s; i++) {
        int64_t r = (int64_t)((double)i * (double)n / (double)s);
        std::copy(x + r * dim, x + (r + 1) * dim, sample.begin() + i * dim);
    }
    ivf.train(s, sample.data());
}

static std::unique_ptr<faiss::Index> build_ivf(const float *x, int64_t n, int64_t dim, const mml_knn_options *o)
{
    auto quantizer = std::make_unique<faiss::IndexFlatIP>(dim);
    auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), dim, o->nlist, faiss::METRIC_INNER_PRODUCT);
    ivf->own_fields = true;
    quantizer.release();
    ivf->nprobe = (size_t)o->nprobe;
    ivf->cp.spherical = true;            /* unit centroids for unit vectors under inner product */
    ivf->cp.min_points_per_centroid = 1; /* nlist was checked against n; FAISS would only print a warning */
    train_ivf(*ivf, x, n, dim);
    ivf->add(n, x);
    return ivf;
}

extern "C" mml_status mml_faiss_build(const float *x, int64_t n, int64_t dim, const mml_knn_options *o, int threads,
                                      mml_faiss_index **out)
{
    try {
        omp_set_num_threads(threads);
        auto ix = std::make_unique<mml_faiss_index>();
        ix->kind = o->kind;
        if (o->kind == MML_KNN_IVF) ix->index = build_ivf(x, n, dim, o);
        else {
            auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(dim, o->hnsw_m, faiss::METRIC_INNER_PRODUCT);
            hnsw->hnsw.efSearch = o->ef_search;
            hnsw->add(n, x);
            ix->index = std::move(hnsw);
        }
        *out = ix.release();
        return MML_OK;
    } catch (...) {
        return fail("building", o->kind);
    }
}

extern "C" mml_status mml_faiss_search(const mml_faiss_index *ix, const float *q, int64_t nq, int k, int threads,
                                       int64_t *rows, float *scores)
{
    try {
        omp_set_num_threads(threads);
        ix->index->search(nq, q, k, scores, rows);
        for (int64_t i = 0; i < nq * k; i++)
            if (rows[i] < 0) scores[i] = -INFINITY;
        return MML_OK;
    } catch (...) {
        return fail("searching", ix->kind);
    }
}

extern "C" void mml_faiss_free(mml_faiss_index *ix) { delete ix; }
