/* PCA energy removal: covariance of the centred training rows (one SGEMM),
 * leading eigenvectors by power iteration with Gram-Schmidt deflation (only a
 * few components are ever kept, so a full eigensolver is not needed). */
#include <math.h>
#include <string.h>

#include "core/kernels/gemm.h"
#include "mml/alloc.h"
#include "mml/image.h"
#include "mml/rng.h"

#define POWER_ITERS 500

void mml_pca_free(mml_pca *p)
{
    mml_free(p->mean);
    mml_free(p->components);
    memset(p, 0, sizeof *p);
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Leading eigenvector of cov orthogonal to the rows of basis[0..k); returns its eigenvalue. */
static double power_iterate(const double *cov, int64_t d, const double *basis, int k, double *v, double *tmp, mml_rng *r)
{
    for (int64_t i = 0; i < d; i++) v[i] = mml_rng_normal(r);
    double lambda = 0.0;
    for (int it = 0; it < POWER_ITERS; it++) {
        for (int j = 0; j < k; j++) { /* deflate: stay orthogonal to found components */
            double c = dot(v, basis + j * d, d);
            for (int64_t i = 0; i < d; i++) v[i] -= c * basis[j * d + i];
        }
        for (int64_t i = 0; i < d; i++) tmp[i] = dot(cov + i * d, v, d);
        double norm = sqrt(dot(tmp, tmp, d));
        if (norm == 0.0) return 0.0;
        lambda = dot(v, tmp, d) / dot(v, v, d);
        for (int64_t i = 0; i < d; i++) v[i] = tmp[i] / norm;
    }
    return lambda;
}

mml_status mml_pca_fit(const float *rows, int64_t n, int64_t dim, double fraction_removed, uint64_t seed, mml_pca *out)
{
    memset(out, 0, sizeof *out);
    if (n < 2 || dim < 1 || !(fraction_removed >= 0.0 && fraction_removed < 1.0))
        return mml_error(MML_ERR_ARG, "pca: needs at least 2 rows and a removed fraction in [0, 1)");
    float *centred = mml_malloc((size_t)(n * dim) * sizeof(float)), *covf = mml_malloc((size_t)(dim * dim) * sizeof(float));
    double *cov = mml_malloc((size_t)(dim * dim) * sizeof(double)), *basis = mml_calloc((size_t)(dim * dim), sizeof(double));
    double *v = mml_malloc((size_t)dim * sizeof(double)), *tmp = mml_malloc((size_t)dim * sizeof(double));
    out->mean = mml_calloc((size_t)dim, sizeof(float));
    mml_status rc = centred && covf && cov && basis && v && tmp && out->mean ? MML_OK : MML_ERR_NOMEM;
    if (rc == MML_OK) {
        for (int64_t j = 0; j < dim; j++) {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) s += rows[i * dim + j];
            out->mean[j] = (float)(s / (double)n);
        }
        for (int64_t i = 0; i < n * dim; i++) centred[i] = rows[i] - out->mean[i % dim];
        mml_sgemm(true, false, dim, dim, n, 1.0f / (float)(n - 1), centred, dim, centred, dim, 0.0f, covf, dim);
        double total = 0.0;
        for (int64_t i = 0; i < dim * dim; i++) cov[i] = covf[i];
        for (int64_t i = 0; i < dim; i++) total += cov[i * dim + i];
        mml_rng r;
        mml_rng_seed(&r, seed);
        double keep = 1.0 - fraction_removed, cum = 0.0;
        while (out->k < dim && total > 0.0) {
            double lambda = power_iterate(cov, dim, basis, out->k, v, tmp, &r);
            if (cum + lambda / total > keep + 1e-12) break;
            memcpy(basis + out->k * dim, v, (size_t)dim * sizeof(double));
            cum += lambda / total;
            out->k++;
        }
        out->kept_ratio = cum;
        out->dim = dim;
        out->components = mml_malloc((size_t)(out->k * dim + 1) * sizeof(float));
        if (!out->components) rc = MML_ERR_NOMEM;
        for (int64_t i = 0; rc == MML_OK && i < out->k * dim; i++) out->components[i] = (float)basis[i];
    }
    mml_free(centred);
    mml_free(covf);
    mml_free(cov);
    mml_free(basis);
    mml_free(v);
    mml_free(tmp);
    if (rc != MML_OK) mml_pca_free(out);
    return rc;
}

void mml_pca_reconstruct(const mml_pca *p, const float *rows, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *x = rows + i * p->dim;
        float *y = out + i * p->dim;
        memset(y, 0, (size_t)p->dim * sizeof(float));
        for (int c = 0; c < p->k; c++) {
            const float *comp = p->components + c * p->dim;
            double a = 0.0;
            for (int64_t j = 0; j < p->dim; j++) a += (double)(x[j] - p->mean[j]) * comp[j];
            for (int64_t j = 0; j < p->dim; j++) y[j] += (float)a * comp[j];
        }
    }
}
