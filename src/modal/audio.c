/* Spectral features exactly as torchaudio 0.13 computes them: STFT with a
 * periodic Hann window centred in n_fft and reflect padding, mel filter banks
 * (melscale_fbanks), AmplitudeToDB, and MFCC with an orthonormal DCT-II.
 * The FFT is Debian's kissfft (docs/audio.md says why). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/audio.h"
#include "modal/audio_stft.h"

#define PI 3.14159265358979323846

mml_spec_params mml_spec_defaults(int rate)
{
    return (mml_spec_params){ .n_fft = 400, .win_length = 400, .hop_length = 200, .center = true, .power = 2.0f,
                              .n_mels = 128, .f_min = 0.0f, .f_max = (float)rate / 2.0f, .mel_scale = MML_MEL_HTK,
                              .n_mfcc = 40, .top_db = -1.0f };
}

/* ---- resampling (torchaudio's _get_sinc_resample_kernel and _apply_sinc_resample_kernel) ---- */

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

mml_status mml_audio_resample(mml_audio *a, int new_rate)
{
    if (new_rate < 1 || new_rate > 1000000) return mml_error(MML_ERR_ARG, "resample: rate %d out of range", new_rate);
    if (new_rate == a->rate) return MML_OK;
    int g = gcd(a->rate, new_rate), orig = a->rate / g, neww = new_rate / g;
    const double lpw = 6.0, rolloff = 0.99;
    double base = (orig < neww ? orig : neww) * rolloff;
    int width = (int)ceil(lpw * orig / base), taps = 2 * width + orig;
    double *kernel = mml_malloc((size_t)neww * (size_t)taps * sizeof(double));
    if (!kernel) return MML_ERR_NOMEM;
    for (int phase = 0; phase < neww; phase++)
        for (int k = 0; k < taps; k++) {
            double t = (-(double)phase / neww + (double)(k - width) / orig) * base;
            t = t < -lpw ? -lpw : (t > lpw ? lpw : t);
            double w = cos(t * PI / lpw / 2.0);
            w *= w;
            t *= PI;
            kernel[phase * taps + k] = (t == 0.0 ? 1.0 : sin(t) / t) * w * base / orig;
        }
    int64_t n = a->n, blocks = (n + orig - 1) / orig + 1;
    int64_t out_n = (int64_t)ceil((double)neww * (double)n / (double)orig);
    float *out = mml_malloc((size_t)out_n * sizeof(float) + 4);
    if (!out) {
        mml_free(kernel);
        return MML_ERR_NOMEM;
    }
    /* Block b, phase p reads the zero-padded input at b*orig - width + k. */
    for (int64_t b = 0, o = 0; b < blocks && o < out_n; b++)
        for (int p = 0; p < neww && o < out_n; p++, o++) {
            double acc = 0.0;
            for (int k = 0; k < taps; k++) {
                int64_t idx = b * orig - width + k;
                if (idx >= 0 && idx < n) acc += kernel[p * taps + k] * a->samples[idx];
            }
            out[o] = (float)acc;
        }
    mml_free(kernel);
    mml_free(a->samples);
    a->samples = out;
    a->n = out_n;
    a->rate = new_rate;
    return MML_OK;
}

/* ---- spectrogram ---- */

/* Power (or magnitude) spectrogram [n_fft/2 + 1, frames]. */
static mml_tensor *spectrogram(const mml_audio *a, const mml_spec_params *p)
{
    stft_plan s;
    if (stft_plan_init(&s, a->n, p->n_fft, p->win_length, p->hop_length, p->center, false) != MML_OK) return NULL;
    int64_t frames = s.frames;
    mml_tensor *out = mml_tensor_create(MML_F32, 2, (int64_t[]){ s.bins, frames }, false);
    kiss_fft_cpx *spec = mml_malloc((size_t)s.bins * sizeof *spec);
    if (!out || !spec) {
        mml_tensor_free(out);
        mml_free(spec);
        stft_plan_free(&s);
        mml_error(MML_ERR_NOMEM, "spectrogram: out of memory");
        return NULL;
    }
    float *o = mml_f32(out);
    for (int64_t f = 0; f < frames; f++) {
        stft_frame(&s, a->samples, f, spec);
        for (int k = 0; k < s.bins; k++) {
            double m2 = (double)spec[k].r * spec[k].r + (double)spec[k].i * spec[k].i;
            o[k * frames + f] = (float)(p->power == 2.0f ? m2 : pow(m2, p->power / 2.0));
        }
    }
    mml_free(spec);
    stft_plan_free(&s);
    return out;
}

/* ---- mel ---- */

static double hz_to_mel(double f, mml_mel_scale s)
{
    if (s == MML_MEL_HTK) return 2595.0 * log10(1.0 + f / 700.0);
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp, step = log(6.4) / 27.0;
    return f < min_log_hz ? f / f_sp : min_log_mel + log(f / min_log_hz) / step;
}

static double mel_to_hz(double m, mml_mel_scale s)
{
    if (s == MML_MEL_HTK) return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp, step = log(6.4) / 27.0;
    return m < min_log_mel ? f_sp * m : min_log_hz * exp(step * (m - min_log_mel));
}

mml_tensor *mml_mel_filterbank(int n_freqs, float f_min, float f_max, int n_mels, int rate, bool slaney_norm,
                               mml_mel_scale scale)
{
    mml_tensor *fb = mml_tensor_create(MML_F32, 2, (int64_t[]){ n_freqs, n_mels }, false);
    double *f_pts = mml_malloc((size_t)(n_mels + 2) * sizeof(double));
    if (!fb || !f_pts) {
        mml_tensor_free(fb);
        mml_free(f_pts);
        return NULL;
    }
    double m_min = hz_to_mel(f_min, scale), m_max = hz_to_mel(f_max, scale);
    for (int i = 0; i < n_mels + 2; i++) f_pts[i] = mel_to_hz(m_min + (m_max - m_min) * i / (n_mels + 1), scale);
    for (int k = 0; k < n_freqs; k++) {
        double f = n_freqs > 1 ? (double)(rate / 2) * k / (n_freqs - 1) : 0.0;
        for (int m = 0; m < n_mels; m++) {
            double down = (f - f_pts[m]) / (f_pts[m + 1] - f_pts[m]);
            double up = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
            double v = fmax(0.0, fmin(down, up));
            if (slaney_norm) v *= 2.0 / (f_pts[m + 2] - f_pts[m]);
            mml_f32(fb)[k * n_mels + m] = (float)v;
        }
    }
    mml_free(f_pts);
    return fb;
}

/* Filterbanks already built, by their parameters: every clip's spectrogram
 * would otherwise rebuild its bins x mels triangles (a sixth of loading the
 * spoken digits). Shared by the threads, read-only once made, freed at exit;
 * past FB_CACHE parameter sets a caller gets its own. */
#define FB_CACHE 8

typedef struct fb_entry {
    int n_freqs, n_mels, rate;
    float f_min, f_max;
    bool slaney_norm;
    mml_mel_scale scale;
    mml_tensor *fb;
} fb_entry;

static fb_entry g_fb[FB_CACHE];
static int g_fb_n;
static pthread_mutex_t g_fb_mu = PTHREAD_MUTEX_INITIALIZER;

static void fb_cache_free(void)
{
    for (int i = 0; i < g_fb_n; i++) mml_tensor_free(g_fb[i].fb);
    g_fb_n = 0;
}

/* The filterbank for these parameters (NULL out of memory); *owned is the
 * caller's to free when the cache is full (NULL otherwise). */
static const mml_tensor *filterbank(int n_freqs, const mml_spec_params *p, int rate, mml_tensor **owned)
{
    fb_entry key = { n_freqs, p->n_mels, rate, p->f_min, p->f_max, p->slaney_norm, p->mel_scale, NULL };
    const mml_tensor *fb = NULL;
    pthread_mutex_lock(&g_fb_mu);
    for (int i = 0; i < g_fb_n && !fb; i++) {
        const fb_entry *e = &g_fb[i];
        if (e->n_freqs == key.n_freqs && e->n_mels == key.n_mels && e->rate == key.rate && e->f_min == key.f_min &&
            e->f_max == key.f_max && e->slaney_norm == key.slaney_norm && e->scale == key.scale)
            fb = e->fb;
    }
    *owned = NULL;
    if (!fb) {
        key.fb = mml_mel_filterbank(n_freqs, p->f_min, p->f_max, p->n_mels, rate, p->slaney_norm, p->mel_scale);
        fb = key.fb;
        if (key.fb && g_fb_n < FB_CACHE) {
            if (g_fb_n == 0) atexit(fb_cache_free);
            g_fb[g_fb_n++] = key;
        } else *owned = key.fb;
    }
    pthread_mutex_unlock(&g_fb_mu);
    return fb;
}

/* mel[m, :] = sum_k fb[k, m] spec[k, :], rows of frames at a time, skipping the
 * zero weights (each triangle covers a few bins). */
static mml_tensor *mel(const mml_tensor *spec, const mml_spec_params *p, int rate)
{
    int64_t bins = spec->shape[0], frames = spec->shape[1];
    mml_tensor *owned;
    const mml_tensor *fb = filterbank((int)bins, p, rate, &owned);
    mml_tensor *out = mml_tensor_create(MML_F32, 2, (int64_t[]){ p->n_mels, frames }, false);
    if (!fb || !out) {
        mml_tensor_free(owned);
        mml_tensor_free(out);
        return NULL;
    }
    memset(mml_f32(out), 0, (size_t)out->numel * sizeof(float));
    for (int m = 0; m < p->n_mels; m++) {
        float *dst = mml_f32(out) + m * frames;
        for (int64_t k = 0; k < bins; k++) {
            float w = mml_f32(fb)[k * p->n_mels + m];
            if (w == 0.0f) continue;
            const float *src = mml_f32(spec) + k * frames;
            for (int64_t f = 0; f < frames; f++) dst[f] += w * src[f];
        }
    }
    mml_tensor_free(owned);
    return out;
}

/* AmplitudeToDB("power"): 10 log10(max(x, 1e-10)), floored at max - top_db over the whole input. */
static void to_db(mml_tensor *t, float top_db)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < t->numel; i++) {
        float v = mml_f32(t)[i];
        mml_f32(t)[i] = 10.0f * log10f(v > 1e-10f ? v : 1e-10f);
        mx = mml_f32(t)[i] > mx ? mml_f32(t)[i] : mx;
    }
    if (top_db >= 0)
        for (int64_t i = 0; i < t->numel; i++)
            if (mml_f32(t)[i] < mx - top_db) mml_f32(t)[i] = mx - top_db;
}

/* Orthonormal DCT-II over the mel axis: out[k, :] = sum_m dct[k, m] mel_db[m, :]. */
static mml_tensor *mfcc(const mml_tensor *mel_db, int n_mfcc)
{
    int64_t n_mels = mel_db->shape[0], frames = mel_db->shape[1];
    mml_tensor *out = mml_tensor_create(MML_F32, 2, (int64_t[]){ n_mfcc, frames }, false);
    if (!out) return NULL;
    memset(mml_f32(out), 0, (size_t)out->numel * sizeof(float));
    for (int k = 0; k < n_mfcc; k++) {
        double norm = k == 0 ? sqrt(1.0 / n_mels) : sqrt(2.0 / n_mels);
        float *dst = mml_f32(out) + k * frames;
        for (int64_t m = 0; m < n_mels; m++) {
            float w = (float)(norm * cos(PI / n_mels * (m + 0.5) * k));
            const float *src = mml_f32(mel_db) + m * frames;
            for (int64_t f = 0; f < frames; f++) dst[f] += w * src[f];
        }
    }
    return out;
}

static mml_status check_params(const mml_audio *a, mml_feature_kind kind, const mml_spec_params *p)
{
    if (p->n_fft < 2 || p->n_fft > (1 << 16)) return mml_error(MML_ERR_ARG, "n_fft %d out of range [2, 65536]", p->n_fft);
    if (p->win_length < 1 || p->win_length > p->n_fft) return mml_error(MML_ERR_ARG, "win_length %d must be in [1, n_fft]", p->win_length);
    if (p->hop_length < 1) return mml_error(MML_ERR_ARG, "hop_length must be positive");
    if (!(p->power > 0)) return mml_error(MML_ERR_ARG, "power must be positive");
    if (kind == MML_FEAT_SPECTROGRAM) return MML_OK;
    if (p->n_mels < 1 || p->n_mels > 1024) return mml_error(MML_ERR_ARG, "n_mels %d out of range [1, 1024]", p->n_mels);
    if (!(p->f_min >= 0 && p->f_max > p->f_min && p->f_max <= a->rate / 2.0f + 1e-3f))
        return mml_error(MML_ERR_ARG, "need 0 <= f_min < f_max <= rate/2 (%g, %g, %d)", p->f_min, p->f_max, a->rate);
    if (kind == MML_FEAT_MFCC && (p->n_mfcc < 1 || p->n_mfcc > p->n_mels))
        return mml_error(MML_ERR_ARG, "n_mfcc %d must be in [1, n_mels]", p->n_mfcc);
    return MML_OK;
}

mml_tensor *mml_audio_features(const mml_audio *a, mml_feature_kind kind, const mml_spec_params *p)
{
    if (check_params(a, kind, p) != MML_OK) return NULL;
    mml_spec_params q = *p;
    if (kind != MML_FEAT_SPECTROGRAM) q.power = 2.0f;
    mml_tensor *spec = spectrogram(a, &q);
    if (!spec || kind == MML_FEAT_SPECTROGRAM) return spec;
    mml_tensor *m = mel(spec, p, a->rate);
    mml_tensor_free(spec);
    if (!m || kind == MML_FEAT_MEL) return m;
    to_db(m, kind == MML_FEAT_MFCC ? 80.0f : p->top_db);
    if (kind == MML_FEAT_LOGMEL) return m;
    mml_tensor *c = mfcc(m, p->n_mfcc);
    mml_tensor_free(m);
    return c;
}
