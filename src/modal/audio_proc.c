/* Clip processing: silence trimming (librosa's trim), pre-emphasis, white noise
 * at an SNR, a stationary spectral-gating denoiser, and SpecAugment masks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/audio.h"
#include "modal/audio_stft.h"

mml_status mml_audio_trim(mml_audio *a, float top_db, int frame_length, int hop_length, int64_t *start, int64_t *end)
{
    if (!(top_db > 0) || frame_length < 1 || hop_length < 1)
        return mml_error(MML_ERR_ARG, "trim: need top_db > 0, frame_length and hop_length >= 1");
    int64_t n = a->n, pad = frame_length / 2, frames = n + 2 * pad >= frame_length ? 1 + (n + 2 * pad - frame_length) / hop_length : 0;
    double *mse = mml_malloc((size_t)(frames > 0 ? frames : 1) * sizeof(double)), top = 0.0;
    if (!mse) return mml_error(MML_ERR_NOMEM, "trim: out of memory");
    for (int64_t f = 0; f < frames; f++) {
        double acc = 0.0;
        for (int64_t i = f * hop_length - pad, e = i + frame_length; i < e; i++)
            if (i >= 0 && i < n) acc += (double)a->samples[i] * a->samples[i];
        mse[f] = acc / frame_length;
        top = fmax(top, mse[f]);
    }
    /* power_to_db(mse, ref=max, amin=1e-10) > -top_db */
    double floor_db = 10.0 * log10(fmax(top, 1e-10)) - top_db;
    int64_t first = -1, last = -1;
    for (int64_t f = 0; f < frames; f++)
        if (10.0 * log10(fmax(mse[f], 1e-10)) > floor_db) {
            if (first < 0) first = f;
            last = f;
        }
    mml_free(mse);
    int64_t s = first < 0 ? 0 : first * hop_length, e = first < 0 ? 0 : (last + 1) * hop_length;
    s = s < n ? s : n;
    e = e < n ? e : n;
    memmove(a->samples, a->samples + s, (size_t)(e - s) * sizeof(float));
    a->n = e - s;
    if (start) *start = s;
    if (end) *end = e;
    return MML_OK;
}

void mml_audio_preemphasis(mml_audio *a, float coef)
{
    for (int64_t i = a->n - 1; i > 0; i--) a->samples[i] -= coef * a->samples[i - 1];
}

mml_status mml_audio_add_noise(mml_audio *a, float snr_db, mml_rng *rng)
{
    if (!isfinite(snr_db)) return mml_error(MML_ERR_ARG, "add_noise: SNR must be finite");
    double es = 0.0, en = 0.0;
    for (int64_t i = 0; i < a->n; i++) es += (double)a->samples[i] * a->samples[i];
    if (!(es > 0.0)) return mml_error(MML_ERR_ARG, "add_noise: the signal is silent, an SNR is undefined");
    float *noise = mml_malloc((size_t)a->n * sizeof(float));
    if (!noise) return mml_error(MML_ERR_NOMEM, "add_noise: out of memory");
    for (int64_t i = 0; i < a->n; i++) {
        noise[i] = mml_rng_normal(rng);
        en += (double)noise[i] * noise[i];
    }
    double scale = sqrt(es / (en * pow(10.0, snr_db / 10.0)));
    for (int64_t i = 0; i < a->n; i++) a->samples[i] += (float)(scale * noise[i]);
    mml_free(noise);
    return MML_OK;
}

/* ---- spectral gating ---- */

mml_denoise_params mml_denoise_defaults(void)
{
    return (mml_denoise_params){ .n_fft = 512, .hop_length = 128, .n_std = 1.5f, .prop_decrease = 1.0f, .noise_fraction = 0.1f };
}

static float level_db(kiss_fft_cpx c) { return 10.0f * log10f(fmaxf(c.r * c.r + c.i * c.i, 1e-20f)); }

/* All frames of x: spec[frames * bins]. */
static kiss_fft_cpx *stft_all(stft_plan *s, const float *x)
{
    kiss_fft_cpx *spec = mml_malloc((size_t)s->frames * (size_t)s->bins * sizeof *spec);
    for (int64_t f = 0; spec && f < s->frames; f++) stft_frame(s, x, f, spec + f * s->bins);
    return spec;
}


typedef struct frame_energy {
    double e;
    int64_t f;
} frame_energy;

static int by_energy(const void *x, const void *y)
{
    double a = ((const frame_energy *)x)->e, b = ((const frame_energy *)y)->e;
    return (a > b) - (a < b);
}

/* Per-bin mean and standard deviation (dB) over the chosen frames of spec. */
static void noise_stats(const kiss_fft_cpx *spec, int bins, const int64_t *frames, int64_t count, float *mean, float *sd)
{
    for (int k = 0; k < bins; k++) {
        double s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < count; j++) {
            double v = level_db(spec[frames[j] * bins + k]);
            s1 += v, s2 += v * v;
        }
        double m = s1 / count;
        mean[k] = (float)m;
        sd[k] = (float)sqrt(fmax(s2 / count - m * m, 0.0));
    }
}

/* The noise profile from the clip p->noise or the quietest frames of spec. */
static mml_status noise_profile(const mml_denoise_params *p, const kiss_fft_cpx *spec, const stft_plan *s, float *mean,
                                float *sd)
{
    stft_plan ns;
    kiss_fft_cpx *src = (kiss_fft_cpx *)spec;
    int64_t count;
    if (p->noise) {
        mml_status rc = stft_plan_init(&ns, p->noise_n, p->n_fft, p->n_fft, p->hop_length, true, false);
        if (rc != MML_OK) return mml_error(MML_ERR_ARG, "denoise: noise clip: %s", mml_last_error());
        src = stft_all(&ns, p->noise);
        count = ns.frames;
        stft_plan_free(&ns);
        if (!src) return mml_error(MML_ERR_NOMEM, "denoise: out of memory");
    } else {
        count = (int64_t)ceil(p->noise_fraction * (double)s->frames);
        count = count < 1 ? 1 : count;
    }
    int64_t *pick = mml_malloc((size_t)(p->noise ? count : s->frames) * sizeof *pick);
    frame_energy *order = p->noise ? NULL : mml_malloc((size_t)s->frames * sizeof *order);
    if (!pick || (!p->noise && !order)) {
        if (src != spec) mml_free(src);
        mml_free(pick);
        mml_free(order);
        return mml_error(MML_ERR_NOMEM, "denoise: out of memory");
    }
    if (p->noise) {
        for (int64_t j = 0; j < count; j++) pick[j] = j;
    } else {
        for (int64_t f = 0; f < s->frames; f++) {
            order[f].f = f, order[f].e = 0.0;
            for (int k = 0; k < s->bins; k++) {
                kiss_fft_cpx c = spec[f * s->bins + k];
                order[f].e += (double)c.r * c.r + (double)c.i * c.i;
            }
        }
        qsort(order, (size_t)s->frames, sizeof *order, by_energy);
        for (int64_t j = 0; j < count; j++) pick[j] = order[j].f;
    }
    noise_stats(src, s->bins, pick, count, mean, sd);
    if (src != spec) mml_free(src);
    mml_free(pick);
    mml_free(order);
    return MML_OK;
}

/* Gains from the binary gate, smoothed by a 3-bin x 5-frame box. */
static void gate_gains(const kiss_fft_cpx *spec, const stft_plan *s, const float *mean, const float *sd,
                       const mml_denoise_params *p, unsigned char *keep, float *gain)
{
    int bins = s->bins;
    for (int64_t f = 0; f < s->frames; f++)
        for (int k = 0; k < bins; k++) keep[f * bins + k] = level_db(spec[f * bins + k]) > mean[k] + p->n_std * sd[k];
    for (int64_t f = 0; f < s->frames; f++)
        for (int k = 0; k < bins; k++) {
            int on = 0, all = 0;
            for (int64_t g = f - 2; g <= f + 2; g++)
                for (int j = k - 1; j <= k + 1; j++)
                    if (g >= 0 && g < s->frames && j >= 0 && j < bins) on += keep[g * bins + j], all++;
            gain[f * bins + k] = 1.0f - p->prop_decrease * (1.0f - (float)on / (float)all);
        }
}

mml_status mml_audio_denoise(mml_audio *a, const mml_denoise_params *p)
{
    if (p->n_fft < 4 || p->n_fft % 2 || p->n_fft > (1 << 16) || p->hop_length < 1 || p->hop_length > p->n_fft / 2)
        return mml_error(MML_ERR_ARG, "denoise: need an even n_fft in [4, 65536] and hop_length in [1, n_fft/2]");
    if (!(p->prop_decrease >= 0 && p->prop_decrease <= 1) || !(p->noise_fraction > 0 && p->noise_fraction <= 1) ||
        !isfinite(p->n_std))
        return mml_error(MML_ERR_ARG, "denoise: need prop_decrease in [0, 1], noise_fraction in (0, 1], finite n_std");
    /* zero-extend so that the last frame reaches the last sample */
    int64_t n = a->n, pad = p->n_fft / 2, rem = (n + 2 * pad - p->n_fft) % p->hop_length;
    int64_t n_ext = n + (rem > 0 && n + 2 * pad >= p->n_fft ? p->hop_length - rem : 0);
    stft_plan s = { 0 };
    float *x = mml_calloc((size_t)n_ext, sizeof(float)), *mean = NULL, *sd = NULL, *gain = NULL, *acc = NULL, *norm = NULL;
    kiss_fft_cpx *spec = NULL;
    unsigned char *keep = NULL;
    mml_status rc = x ? stft_plan_init(&s, n_ext, p->n_fft, p->n_fft, p->hop_length, true, true) : MML_ERR_NOMEM;
    if (rc != MML_OK) goto done;
    memcpy(x, a->samples, (size_t)n * sizeof(float));
    size_t cells = (size_t)s.frames * (size_t)s.bins, len = (size_t)(n_ext + 2 * pad);
    spec = stft_all(&s, x);
    mean = mml_malloc((size_t)s.bins * sizeof(float));
    sd = mml_malloc((size_t)s.bins * sizeof(float));
    keep = mml_malloc(cells);
    gain = mml_malloc(cells * sizeof(float));
    acc = mml_calloc(len, sizeof(float));
    norm = mml_calloc(len, sizeof(float));
    if (!spec || !mean || !sd || !keep || !gain || !acc || !norm) {
        rc = mml_error(MML_ERR_NOMEM, "denoise: out of memory");
        goto done;
    }
    if ((rc = noise_profile(p, spec, &s, mean, sd)) != MML_OK) goto done;
    gate_gains(spec, &s, mean, sd, p, keep, gain);
    for (size_t c = 0; c < cells; c++) spec[c].r *= gain[c], spec[c].i *= gain[c];
    for (int64_t f = 0; f < s.frames; f++) stft_inverse_frame(&s, spec + f * s.bins, f, acc, norm);
    for (int64_t i = 0; i < n; i++) a->samples[i] = norm[i + pad] > 1e-8f ? acc[i + pad] / norm[i + pad] : 0.0f;
done:
    stft_plan_free(&s);
    mml_free(x);
    mml_free(spec);
    mml_free(mean);
    mml_free(sd);
    mml_free(keep);
    mml_free(gain);
    mml_free(acc);
    mml_free(norm);
    return rc;
}

/* ---- SpecAugment ---- */

mml_status mml_spec_mask(mml_tensor *spec, mml_mask_axis axis, int mask_param, float p, float value, mml_rng *rng)
{
    if (spec->ndim != 2 || spec->dtype != MML_F32) return mml_error(MML_ERR_ARG, "spec_mask: need a float32 [features, frames] tensor");
    if (!(p >= 0.0f && p <= 1.0f)) return mml_error(MML_ERR_ARG, "spec_mask: p %g is not in [0, 1]", p);
    int64_t rows = spec->shape[0], cols = spec->shape[1], size = axis == MML_MASK_FREQ ? rows : cols;
    int64_t limit = p == 1.0f ? mask_param : (int64_t)fmin(mask_param, floor((double)p * (double)size));
    if (limit < 1) return MML_OK;
    double width = mml_rng_uniform(rng) * (double)limit;
    double lo = mml_rng_uniform(rng) * ((double)size - width); /* negative when mask_param > size, as in torch */
    int64_t start = (int64_t)lo, stop = start + (int64_t)width;
    start = start > 0 ? start : 0;
    stop = stop < size ? stop : size;
    float *d = mml_f32(spec);
    for (int64_t i = start; i < stop; i++) {
        if (axis == MML_MASK_FREQ)
            for (int64_t j = 0; j < cols; j++) d[i * cols + j] = value;
        else
            for (int64_t j = 0; j < rows; j++) d[j * cols + i] = value;
    }
    return MML_OK;
}
