/* Minimal test framework: TEST(name) registers a test; CHECK* record
 * failures with file:line and let the test continue. The runner prints
 * "N passed, N failed" and exits non-zero on any failure.
 * Usage: mml_tests [substring ...] runs the tests whose names match. */
#ifndef MML_TEST_H
#define MML_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "mml/autograd.h"
#include "mml/safetensors.h"

typedef void (*tst_fn)(void);
void tst_register(const char *name, tst_fn fn);
void tst_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool tst_failed(void); /* the current test has failed so far */

#define TEST(name)                                                                   \
    static void test_##name(void);                                                   \
    __attribute__((constructor)) static void register_##name(void)                   \
    {                                                                                \
        tst_register(#name, test_##name);                                            \
    }                                                                                \
    static void test_##name(void)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) tst_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);               \
    } while (0)
#define CHECK_MSG(cond, ...)                                                         \
    do {                                                                             \
        if (!(cond)) tst_fail(__FILE__, __LINE__, __VA_ARGS__);                      \
    } while (0)
#define CHECK_NEAR(got, want, tol)                                                   \
    do {                                                                             \
        double g_ = (double)(got), w_ = (double)(want);                              \
        if (!(fabs(g_ - w_) <= (tol)))                                               \
            tst_fail(__FILE__, __LINE__, "%s = %.9g, want %.9g (tol %g)", #got, g_, w_, \
                     (double)(tol));                                                 \
    } while (0)
/* Asserts an mml call returned MML_OK, printing mml_last_error() otherwise. */
#define CHECK_OK(expr)                                                               \
    do {                                                                             \
        mml_status s_ = (expr);                                                      \
        if (s_ != MML_OK) tst_fail(__FILE__, __LINE__, "%s: %s", #expr, mml_last_error()); \
    } while (0)

/* Backpropagates a normal random gradient (seed `seed`) from y and returns
 * copies of the n inputs' gradients (mml_malloc'd; NULL entries on failure).
 * For tests that hold a fused op to the ops it replaces. */
void tst_backward_grads(mml_ctx *ctx, mml_tensor *y, uint64_t seed, mml_tensor *const *in, int n, float **grads);

/* Paths: fixtures under tests/fixtures (MML_FIXTURES overrides), the shared
 * datasets (MML_DATASETS, default ../shared/datasets), a scratch directory. */
const char *tst_fixture_path(const char *file, char *buf, size_t cap);
const char *tst_dataset_path(const char *rel, char *buf, size_t cap);
const char *tst_tmp_path(const char *file, char *buf, size_t cap);
/* Loads tests/fixtures/<name>; fails the test (and returns NULL) if missing. */
mml_safetensors *tst_fixture(const char *name);

/* Compares got (n floats) with fixture tensor `key`: |got-want| <= atol + rtol*|want|
 * elementwise. Reports the worst element. */
bool tst_close_to_fixture(const char *file, int line, const mml_safetensors *fx, const char *key,
                          const float *got, int64_t n, double rtol, double atol);
#define CHECK_FIXTURE(fx, key, got, n, rtol, atol)                                   \
    tst_close_to_fixture(__FILE__, __LINE__, fx, key, got, n, rtol, atol)
bool tst_close(const char *file, int line, const char *what, const float *got,
               const float *want, int64_t n, double rtol, double atol);
#define CHECK_CLOSE(what, got, want, n, rtol, atol)                                  \
    tst_close(__FILE__, __LINE__, what, got, want, n, rtol, atol)

/* Heap tensor with values from a fixture (F32), marked requires_grad if asked. */
mml_tensor *tst_fixture_tensor(const mml_safetensors *fx, const char *key, bool requires_grad);

/* Central finite-difference check of every requires_grad float input of
 * f(inputs) against backward, along out's gradient r (fixed random). */
typedef mml_tensor *(*tst_graph_fn)(mml_ctx *ctx, mml_tensor **inputs, void *arg);
bool tst_gradcheck(const char *file, int line, const char *what, tst_graph_fn f,
                   mml_tensor **inputs, int n_inputs, void *arg, double eps, double rtol,
                   double atol);
#define CHECK_GRAD(what, f, inputs, n, arg)                                          \
    tst_gradcheck(__FILE__, __LINE__, what, f, inputs, n, arg, 1e-2, 5e-3, 1e-3)

/* Bytes of [p, p + bytes) resident in memory (mincore), or SIZE_MAX if it
 * cannot tell: checks that memory was handed back to the system. */
size_t tst_resident_bytes(const void *p, size_t bytes);

/* Runs the mml command line with args (shell words); returns its exit status
 * and captures up to cap-1 bytes of stdout+stderr into out (may be NULL). */
int tst_run_cli(const char *args, char *out, size_t cap);

#endif
