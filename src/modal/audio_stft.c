/* STFT frames for src/modal/audio.c and audio_proc.c (see audio_stft.h). */
#include "modal/audio_stft.h"

#include <math.h>
#include <string.h>

#include "mml/alloc.h"

#define PI 3.14159265358979323846

mml_status stft_plan_init(stft_plan *s, int64_t n, int n_fft, int win_length, int hop, bool center, bool inverse)
{
    memset(s, 0, sizeof *s);
    s->n_fft = n_fft, s->hop = hop, s->bins = n_fft / 2 + 1, s->center = center, s->n = n;
    s->pad = center ? n_fft / 2 : 0;
    /* reflect padding needs a sample to mirror on each side, as torch's pad does */
    if ((center && n <= s->pad) || n + 2 * s->pad < n_fft)
        return mml_error(MML_ERR_ARG, "STFT: %lld samples are too few for n_fft %d", (long long)n, n_fft);
    s->frames = 1 + (n + 2 * s->pad - n_fft) / hop;
    s->window = mml_calloc((size_t)n_fft, sizeof(float));
    s->frame = mml_malloc((size_t)n_fft * sizeof(kiss_fft_scalar));
    bool ok = s->window && s->frame;
    if (n_fft % 2 == 0) {
        s->fwd = kiss_fftr_alloc(n_fft, 0, NULL, NULL);
        ok = ok && s->fwd;
        if (inverse) ok = ok && (s->inv = kiss_fftr_alloc(n_fft, 1, NULL, NULL));
    } else {
        if (inverse) {
            stft_plan_free(s);
            return mml_error(MML_ERR_ARG, "inverse STFT needs an even n_fft, got %d", n_fft);
        }
        s->cfwd = kiss_fft_alloc(n_fft, 0, NULL, NULL);
        s->cin = mml_malloc((size_t)n_fft * sizeof(kiss_fft_cpx));
        s->cout = mml_malloc((size_t)n_fft * sizeof(kiss_fft_cpx));
        ok = ok && s->cfwd && s->cin && s->cout;
    }
    if (!ok) {
        stft_plan_free(s);
        return mml_error(MML_ERR_NOMEM, "STFT: out of memory");
    }
    int left = (n_fft - win_length) / 2; /* torch centres a shorter window in n_fft */
    for (int i = 0; i < win_length; i++) s->window[left + i] = (float)(0.5 - 0.5 * cos(2.0 * PI * i / win_length));
    return MML_OK;
}

void stft_plan_free(stft_plan *s)
{
    mml_free(s->window);
    mml_free(s->frame);
    mml_free(s->cin);
    mml_free(s->cout);
    kiss_fftr_free(s->fwd);
    kiss_fftr_free(s->inv);
    kiss_fft_free(s->cfwd);
    memset(s, 0, sizeof *s);
}

static int64_t reflect(int64_t i, int64_t n)
{
    if (i < 0) return -i;
    return i >= n ? 2 * (n - 1) - i : i;
}

void stft_frame(stft_plan *s, const float *x, int64_t f, kiss_fft_cpx *spec)
{
    for (int i = 0; i < s->n_fft; i++) {
        int64_t src = f * s->hop + i - s->pad;
        s->frame[i] = x[s->center ? reflect(src, s->n) : src] * s->window[i];
    }
    if (s->fwd) {
        kiss_fftr(s->fwd, s->frame, spec);
        return;
    }
    for (int i = 0; i < s->n_fft; i++) s->cin[i].r = s->frame[i], s->cin[i].i = 0.0f;
    kiss_fft(s->cfwd, s->cin, s->cout);
    memcpy(spec, s->cout, (size_t)s->bins * sizeof *spec);
}

void stft_inverse_frame(stft_plan *s, const kiss_fft_cpx *spec, int64_t f, float *acc, float *norm)
{
    kiss_fftri(s->inv, spec, s->frame); /* unnormalised: n_fft times the inverse */
    for (int i = 0; i < s->n_fft; i++) {
        int64_t at = f * s->hop + i;
        acc[at] += s->frame[i] / (float)s->n_fft * s->window[i];
        norm[at] += s->window[i] * s->window[i];
    }
}
