#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mml/alloc.h"
#include "mml/error.h"
#include "mml/rng.h"
#include "core/op.h"
#include "test.h"

#define MAX_TESTS 4096

typedef struct { const char *name; tst_fn fn; } test_entry;
static test_entry g_tests[MAX_TESTS];
static int g_n;
static int g_cur_failures;

void tst_register(const char *name, tst_fn fn)
{
    if (g_n < MAX_TESTS) g_tests[g_n++] = (test_entry){ name, fn };
}

void tst_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    g_cur_failures++;
}

bool tst_failed(void) { return g_cur_failures > 0; }

const char *tst_fixture_path(const char *file, char *buf, size_t cap)
{
    const char *dir = getenv("MML_FIXTURES");
    if (dir) snprintf(buf, cap, "%s/%s", dir, file);
    else snprintf(buf, cap, "%s/tests/fixtures/%s", MML_SOURCE_DIR, file);
    return buf;
}

const char *tst_dataset_path(const char *rel, char *buf, size_t cap)
{
    const char *dir = getenv("MML_DATASETS");
    if (dir) snprintf(buf, cap, "%s/%s", dir, rel);
    else snprintf(buf, cap, "%s/../shared/datasets/%s", MML_SOURCE_DIR, rel);
    return buf;
}

static char g_tmpdir[256];

const char *tst_tmp_path(const char *file, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", g_tmpdir, file);
    return buf;
}

mml_safetensors *tst_fixture(const char *name)
{
    char path[1024];
    mml_safetensors *st = NULL;
    if (mml_safetensors_load(tst_fixture_path(name, path, sizeof path), &st) != MML_OK) {
        tst_fail(__FILE__, __LINE__, "fixture %s: %s", name, mml_last_error());
        return NULL;
    }
    return st;
}

bool tst_close(const char *file, int line, const char *what, const float *got, const float *want,
               int64_t n, double rtol, double atol)
{
    int64_t worst = -1;
    double worst_excess = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]), lim = atol + rtol * fabs((double)want[i]);
        if (!(d <= lim) && (worst < 0 || d - lim > worst_excess || isnan(d))) {
            worst = i;
            worst_excess = isnan(d) ? INFINITY : d - lim;
        }
    }
    if (worst >= 0)
        tst_fail(file, line, "%s: element %lld is %.9g, want %.9g (rtol %g, atol %g)", what,
                 (long long)worst, got[worst], want[worst], rtol, atol);
    return worst < 0;
}

bool tst_close_to_fixture(const char *file, int line, const mml_safetensors *fx, const char *key,
                          const float *got, int64_t n, double rtol, double atol)
{
    if (!fx) return false;
    mml_tensor *want = mml_safetensors_tensor(fx, key, MML_F32);
    if (!want) {
        tst_fail(file, line, "fixture tensor %s: %s", key, mml_last_error());
        return false;
    }
    bool ok = want->numel == n;
    if (!ok)
        tst_fail(file, line, "%s: %lld elements, fixture has %lld", key, (long long)n,
                 (long long)want->numel);
    else ok = tst_close(file, line, key, got, mml_f32(want), n, rtol, atol);
    mml_tensor_free(want);
    return ok;
}

mml_tensor *tst_fixture_tensor(const mml_safetensors *fx, const char *key, bool requires_grad)
{
    if (!fx) return NULL;
    mml_tensor *t = mml_safetensors_tensor(fx, key, MML_F32);
    if (!t) {
        tst_fail(__FILE__, __LINE__, "fixture tensor %s: %s", key, mml_last_error());
        return NULL;
    }
    if (requires_grad) {
        t->requires_grad = true;
        t->grad = mml_calloc((size_t)t->numel, sizeof(float));
    }
    return t;
}

static double project(mml_ctx *ctx, tst_graph_fn f, mml_tensor **in, void *arg, const float *r,
                      int64_t n)
{
    mml_ctx_reset(ctx);
    mml_tensor *out = f(ctx, in, arg);
    if (!out) return NAN;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)mml_f32(out)[i] * r[i];
    return s;
}

bool tst_gradcheck(const char *file, int line, const char *what, tst_graph_fn f,
                   mml_tensor **in, int n_in, void *arg, double eps, double rtol, double atol)
{
    mml_ctx *ctx = mml_ctx_create();
    mml_tensor *out = f(ctx, in, arg);
    if (!out) {
        tst_fail(file, line, "%s: forward failed: %s", what, mml_last_error());
        mml_ctx_free(ctx);
        return false;
    }
    int64_t n_out = out->numel;
    float *r = mml_malloc((size_t)n_out * sizeof(float));
    mml_rng rng;
    mml_rng_seed(&rng, 1234);
    for (int64_t i = 0; i < n_out; i++) r[i] = mml_rng_uniform(&rng) * 2.0f - 1.0f;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->grad) memset(in[i]->grad, 0, (size_t)in[i]->numel * sizeof(float));
    bool ok = true;
    if (mml_backward_seeded(ctx, out, r) != MML_OK) {
        tst_fail(file, line, "%s: backward failed: %s", what, mml_last_error());
        ok = false;
    }
    for (int i = 0; ok && i < n_in; i++) {
        mml_tensor *t = in[i];
        if (!t || !t->requires_grad || t->dtype != MML_F32) continue;
        float *ana = mml_malloc((size_t)t->numel * sizeof(float));
        memcpy(ana, t->grad, (size_t)t->numel * sizeof(float));
        for (int64_t j = 0; j < t->numel && ok; j++) {
            float *x = &mml_f32(t)[j], x0 = *x;
            *x = x0 + (float)eps;
            double up = project(ctx, f, in, arg, r, n_out);
            *x = x0 - (float)eps;
            double down = project(ctx, f, in, arg, r, n_out);
            *x = x0;
            double num = (up - down) / (2.0 * eps), a = ana[j];
            if (!(fabs(num - a) <= atol + rtol * fabs(num))) {
                tst_fail(file, line, "%s: d/d input %d [%lld]: backward %.7g, numeric %.7g", what,
                         i, (long long)j, a, num);
                ok = false;
            }
        }
        mml_free(ana);
    }
    mml_free(r);
    mml_ctx_free(ctx);
    return ok;
}

void tst_backward_grads(mml_ctx *ctx, mml_tensor *y, uint64_t seed, mml_tensor *const *in, int n, float **grads)
{
    float *dy = mml_malloc((size_t)y->numel * sizeof(float));
    mml_rng r;
    mml_rng_seed(&r, seed);
    for (int64_t i = 0; dy && i < y->numel; i++) dy[i] = mml_rng_normal(&r);
    mml_status rc = dy ? mml_backward_seeded(ctx, y, dy) : MML_ERR_NOMEM;
    if (rc != MML_OK) tst_fail(__FILE__, __LINE__, "backward: %s", mml_last_error());
    mml_free(dy);
    for (int k = 0; k < n; k++) {
        grads[k] = rc == MML_OK ? mml_malloc((size_t)in[k]->numel * sizeof(float)) : NULL;
        if (grads[k]) memcpy(grads[k], in[k]->grad, (size_t)in[k]->numel * sizeof(float));
    }
}

size_t tst_resident_bytes(const void *p, size_t bytes)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start = (uintptr_t)p & ~(page - 1);
    size_t n = (size_t)(((uintptr_t)p + bytes - start + page - 1) / page), count = 0;
    unsigned char *vec = malloc(n ? n : 1);
    if (!vec || mincore((void *)start, (uintptr_t)p + bytes - start, vec) != 0) {
        free(vec);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++) count += vec[i] & 1;
    free(vec);
    return count * (size_t)page;
}

int tst_run_cli(const char *args, char *out, size_t cap)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", MML_CLI_PATH, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t k = 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && k + 1 < cap) {
            size_t take = got < cap - 1 - k ? got : cap - 1 - k;
            memcpy(out + k, buf, take);
            k += take;
        }
    }
    if (out && cap) out[k] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool matches(const char *name, int argc, char **argv)
{
    if (argc < 2) return true;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return true;
    return false;
}

int main(int argc, char **argv)
{
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/mml-tests-%d", (int)getpid());
    mkdir(g_tmpdir, 0700);
    int passed = 0, failed = 0;
    for (int i = 0; i < g_n; i++) {
        if (!matches(g_tests[i].name, argc, argv)) continue;
        g_cur_failures = 0;
        mml_error_clear();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        g_tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (g_cur_failures) {
            failed++;
            printf("FAIL %s (%.0f ms)\n", g_tests[i].name, ms);
        } else {
            passed++;
            printf("ok   %s (%.0f ms)\n", g_tests[i].name, ms);
        }
        fflush(stdout);
    }
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf '%s'", g_tmpdir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", g_tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
