/* mml bench knn: exact search against FAISS's IVF and HNSW on synthetic
 * embeddings: build seconds, queries/s (all queries in one batch, median of
 * the repetitions) and recall@k against the exact results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/knn.h"
#include "mml/progress.h"
#include "mml/rng.h"
#include "mml/threads.h"

static const char *USAGE = "mml bench knn [--n 1000000] [--dim 64] [--queries 1000] [--k 10] [--reps 3] [--threads N]\n"
                           "                     [--nprobe N] [--ef-search N] [--json]";

typedef struct knn_bench {
    int64_t n, dim, nq;
    int k, reps;
    mml_knn_options ivf, hnsw;
    bool json;
} knn_bench;

/* rows [n, dim] like embeddings of classes: unit vectors around n/250 (at
 * most 4096) random centres, the noise three quarters of a centre's length. */
static void embeddings(mml_rng *r, const float *centres, int n_centres, int64_t n, int64_t dim, float *x)
{
    float sigma = 0.75f / sqrtf((float)dim);
    for (int64_t i = 0; i < n; i++) {
        const float *c = centres + mml_rng_below(r, (uint32_t)n_centres) * dim;
        float *xi = x + i * dim, norm = 0;
        for (int64_t d = 0; d < dim; d++) xi[d] = c[d] + sigma * mml_rng_normal(r), norm += xi[d] * xi[d];
        for (int64_t d = 0; d < dim; d++) xi[d] /= sqrtf(norm);
    }
}

/* The index and the queries, drawn the same way (seed 1). */
static mml_status synthetic(const knn_bench *b, float **x, float **q)
{
    int n_centres = (int)(b->n / 250 < 1 ? 1 : b->n / 250 > 4096 ? 4096 : b->n / 250);
    float *c = mml_malloc((size_t)(n_centres * b->dim) * sizeof *c);
    *x = mml_malloc((size_t)(b->n * b->dim) * sizeof **x);
    *q = mml_malloc((size_t)(b->nq * b->dim) * sizeof **q);
    if (!c || !*x || !*q) {
        mml_free(c);
        return MML_ERR_NOMEM;
    }
    mml_rng r;
    mml_rng_seed(&r, 1);
    for (int64_t i = 0; i < n_centres * b->dim; i++) c[i] = mml_rng_normal(&r) / sqrtf((float)b->dim);
    embeddings(&r, c, n_centres, b->n, b->dim, *x);
    embeddings(&r, c, n_centres, b->nq, b->dim, *q);
    mml_free(c);
    return MML_OK;
}

static double recall(const int64_t *got, const int64_t *want, int64_t nq, int k)
{
    int64_t hits = 0;
    for (int64_t i = 0; i < nq; i++)
        for (int a = 0; a < k; a++)
            for (int c = 0; c < k; c++) hits += got[i * k + a] >= 0 && got[i * k + a] == want[i * k + c];
    return (double)hits / (double)(nq * k);
}

static void report(const knn_bench *b, const mml_knn_options *o, double build_s, double qps, double rec)
{
    const char *name = mml_knn_kind_name(o->kind);
    char params[64] = "-";
    if (o->kind == MML_KNN_IVF) snprintf(params, sizeof params, "nlist=%d nprobe=%d", o->nlist, o->nprobe);
    if (o->kind == MML_KNN_HNSW) snprintf(params, sizeof params, "M=%d efSearch=%d", o->hnsw_m, o->ef_search);
    if (b->json)
        printf("{\"index\": \"%s\", \"n\": %lld, \"dim\": %lld, \"queries\": %lld, \"k\": %d, \"threads\": %d, "
               "\"params\": \"%s\", \"build_s\": %.3f, \"qps\": %.1f, \"recall\": %.4f}\n", name, (long long)b->n,
               (long long)b->dim, (long long)b->nq, b->k, mml_threads_get(), params, build_s, qps, rec);
    else printf("%-6s %-22s %9.2f %12.1f %10.4f\n", name, params, build_s, qps, rec);
    fflush(stdout);
}

/* Builds an index of kind o, times its searches and reports them; the exact
 * run fills `exact` (rows [nq, k]), the ground truth of the others. */
static mml_status run(const knn_bench *b, const float *x, const float *q, const mml_knn_options *o, int64_t *exact)
{
    size_t hits = (size_t)(b->nq * b->k);
    int64_t *rows = o->kind == MML_KNN_EXACT ? exact : mml_malloc(hits * sizeof *rows);
    float *scores = mml_malloc(hits * sizeof *scores);
    mml_knn_index *ix = NULL;
    double t0 = mml_now(), build_s = 0, times[64];
    mml_status rc = rows && scores ? mml_knn_index_build(x, b->n, b->dim, o, &ix) : MML_ERR_NOMEM;
    build_s = mml_now() - t0;
    for (int r = 0; rc == MML_OK && r < b->reps; r++) {
        t0 = mml_now();
        rc = mml_knn_index_search(ix, q, b->nq, b->dim, b->k, rows, scores);
        times[r] = mml_now() - t0;
    }
    if (rc == MML_OK)
        report(b, mml_knn_index_options(ix), build_s, (double)b->nq / cli_median(times, b->reps),
               recall(rows, exact, b->nq, b->k));
    mml_knn_index_free(ix);
    if (rows != exact) mml_free(rows);
    mml_free(scores);
    return rc;
}

static int parse(int argc, char **argv, knn_bench *b)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            b->json = true;
            continue;
        }
        const char *bad = "unexpected argument, or a value that is not a positive whole number in range";
        char *end = NULL;
        long long v = i + 1 < argc ? strtoll(argv[i + 1], &end, 10) : 0;
        if (!end || *end || v < 1) return cli_usage(USAGE, bad);
        if (!strcmp(argv[i], "--n") && v <= 100000000) b->n = v;
        else if (!strcmp(argv[i], "--dim") && v <= 4096) b->dim = v;
        else if (!strcmp(argv[i], "--queries") && v <= 10000000) b->nq = v;
        else if (!strcmp(argv[i], "--k") && v <= 1000) b->k = (int)v;
        else if (!strcmp(argv[i], "--reps") && v <= 64) b->reps = (int)v;
        else if (!strcmp(argv[i], "--threads") && v <= 1024) mml_threads_set((int)v);
        else if (!strcmp(argv[i], "--nprobe") && v <= 1000000) b->ivf.nprobe = (int)v;
        else if (!strcmp(argv[i], "--ef-search") && v <= 1000000) b->hnsw.ef_search = (int)v;
        else return cli_usage(USAGE, bad);
        i++;
    }
    return CLI_OK;
}

int bench_knn(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nExact k-NN search (SGEMM tiles, threads) against FAISS's IVF and HNSW (when built with "
               "libfaiss-dev) on clustered synthetic unit vectors: build seconds, queries/s (all queries as one batch, "
               "median of the repetitions) and recall@k against exact search. With --json, one JSON object per line.\n",
               USAGE);
        return CLI_OK;
    }
    knn_bench b = { 1000000, 64, 1000, 10, 3, { MML_KNN_IVF }, { MML_KNN_HNSW }, false };
    int st = parse(argc, argv, &b);
    if (st != CLI_OK) return st;
    if (b.k > b.n) return cli_usage(USAGE, "--k must not exceed --n");
    float *x = NULL, *q = NULL;
    int64_t *exact = mml_malloc((size_t)(b.nq * b.k) * sizeof *exact);
    mml_status rc = exact ? synthetic(&b, &x, &q) : MML_ERR_NOMEM;
    if (rc == MML_OK && !b.json)
        printf("k-NN by inner product: n=%lld dim=%lld, %lld queries, k=%d, %d threads, medians of %d runs\n"
               "%-6s %-22s %9s %12s %10s\n", (long long)b.n, (long long)b.dim, (long long)b.nq, b.k, mml_threads_get(),
               b.reps, "index", "params", "build s", "queries/s", "recall");
    if (rc == MML_OK) rc = run(&b, x, q, &(mml_knn_options){ MML_KNN_EXACT }, exact);
    if (rc == MML_OK && !mml_knn_have_faiss()) fprintf(stderr, "mml: built without FAISS; only exact search is measured\n");
    else if (rc == MML_OK && (rc = run(&b, x, q, &b.ivf, exact)) == MML_OK) rc = run(&b, x, q, &b.hnsw, exact);
    mml_free(x), mml_free(q), mml_free(exact);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}
