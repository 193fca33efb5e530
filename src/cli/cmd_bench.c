/* mml bench WHAT: benchmarks that run mml and a reference side by side in one
 * process, alternating, and report medians and ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/kernels/gemm.h"
#include "mml/alloc.h"
#include "mml/cpu.h"
#include "mml/progress.h"
#include "mml/rng.h"
#include "mml/threads.h"

#ifdef MML_HAVE_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int n);
#endif

#define MAX_LIST 16

static int parse_list(const char *s, int64_t *out)
{
    int n = 0;
    char *end;
    while (*s && n < MAX_LIST) {
        long long v = strtoll(s, &end, 10);
        if (end == s || v <= 0) return -1;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cli_parse_count(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

double cli_peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* kilobytes on Linux */
}

/* Seconds for one n x n x n product (repeated to last at least ~50 ms). The
 * pause first lets the other library's workers stop spinning (OpenBLAS's
 * busy-wait for ~0.1 s after a call), so neither run pays for the other. */
static double time_gemm(bool openblas, int64_t n, const float *A, const float *B, float *C)
{
    int iters = 0;
    usleep(250000);
    double t0 = mml_now(), el;
    do {
#ifdef MML_HAVE_OPENBLAS
        if (openblas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, A, (int)n, B,
                        (int)n, 0.0f, C, (int)n);
        else
#endif
            mml_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        iters++;
        el = mml_now() - t0;
    } while (el < 0.05);
    return el / iters;
}

static int bench_gemm(int argc, char **argv)
{
    const char *usage = "mml bench gemm [--json] [--sizes 256,512,1024,2048] [--threads 1,2] [--reps N]";
    int64_t sizes[MAX_LIST] = { 256, 512, 1024, 2048 }, threads[MAX_LIST] = { 1, 2 };
    int n_sizes = 4, n_threads = 2, reps = 5;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) n_sizes = parse_list(argv[++i], sizes);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = parse_list(argv[++i], threads);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else return cli_usage(usage, "unexpected argument");
        if (n_sizes < 1 || n_threads < 1 || reps < 1) return cli_usage(usage, "bad list or count");
    }
#ifndef MML_HAVE_OPENBLAS
    fprintf(stderr, "mml: built without OpenBLAS; only mml is measured\n");
#endif
    if (!json)
        printf("GEMM (square, float32, row-major), medians of %d alternating runs, simd %s\n"
               "%6s %8s %12s %16s %8s\n", reps, mml_simd_name(mml_cpu_simd()), "n", "threads", "mml GFLOP/s",
               "OpenBLAS GFLOP/s", "ratio");
    mml_rng rng;
    mml_rng_seed(&rng, 1);
    for (int s = 0; s < n_sizes; s++) {
        int64_t n = sizes[s];
        float *A = mml_aligned_alloc((size_t)(n * n) * 4), *B = mml_aligned_alloc((size_t)(n * n) * 4);
        float *C = mml_aligned_alloc((size_t)(n * n) * 4);
        if (!A || !B || !C) return cli_fail(NULL);
        for (int64_t i = 0; i < n * n; i++) {
            A[i] = mml_rng_uniform(&rng) - 0.5f;
            B[i] = mml_rng_uniform(&rng) - 0.5f;
        }
        for (int t = 0; t < n_threads; t++) {
            mml_threads_set((int)threads[t]);
#ifdef MML_HAVE_OPENBLAS
            openblas_set_num_threads((int)threads[t]);
#endif
            double tm[64], tb[64], flops = 2.0 * (double)n * n * n;
            int r_max = reps > 64 ? 64 : reps;
            time_gemm(false, n, A, B, C); /* warm-up both */
#ifdef MML_HAVE_OPENBLAS
            time_gemm(true, n, A, B, C);
#endif
            for (int r = 0; r < r_max; r++) {
                tm[r] = time_gemm(false, n, A, B, C);
#ifdef MML_HAVE_OPENBLAS
                tb[r] = time_gemm(true, n, A, B, C);
#else
                tb[r] = 0.0;
#endif
            }
            double gm = flops / cli_median(tm, r_max) / 1e9, mb = cli_median(tb, r_max);
            double gb = mb > 0 ? flops / mb / 1e9 : 0.0, ratio = gb > 0 ? gm / gb : 0.0;
            if (json)
                printf("{\"n\": %lld, \"threads\": %lld, \"mml_gflops\": %.2f, \"openblas_gflops\": %.2f, "
                       "\"ratio\": %.3f}\n", (long long)n, (long long)threads[t], gm, gb, ratio);
            else printf("%6lld %8lld %12.1f %16.1f %8.2f\n", (long long)n, (long long)threads[t], gm, gb, ratio);
            fflush(stdout);
        }
        mml_free(A);
        mml_free(B);
        mml_free(C);
    }
    return CLI_OK;
}

int cmd_bench(int argc, char **argv)
{
    const char *usage = "mml bench gemm|train|epoch|infer|knn [options]   (mml bench gemm --help)";
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: %s\nBenchmarks run mml and a reference in one process, alternating, and print medians "
               "and ratios.\n  gemm   square SGEMM against OpenBLAS\n  train  training samples/s of issue 7's models "
               "(scripts/bench.sh runs the PyTorch twins beside it)\n  epoch  a multimodal config trained end to end, data loading "
               "included: load seconds, seconds per epoch\n  infer  inference latency (batch 1) or throughput (batch 256) "
               "of the CNN or a config's fusion model\n  knn    exact k-NN search against FAISS's IVF and HNSW: "
               "build time, queries/s, recall\n", usage);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "train")) return bench_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "epoch")) return bench_epoch(argc - 1, argv + 1);
    if (!strcmp(argv[1], "infer")) return bench_infer(argc - 1, argv + 1);
    if (!strcmp(argv[1], "knn")) return bench_knn(argc - 1, argv + 1);
    if (!strcmp(argv[1], "gemm")) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            printf("usage: mml bench gemm [--json] [--sizes 256,512,1024,2048] [--threads 1,2] [--reps N]\n"
                   "With --json, one JSON object per line: n, threads, mml_gflops, openblas_gflops, ratio.\n");
            return CLI_OK;
        }
        return bench_gemm(argc - 1, argv + 1);
    }
    return cli_usage(usage, "unknown benchmark");
}
