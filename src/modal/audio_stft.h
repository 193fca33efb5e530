/* Internal: the short-time Fourier transform shared by the features and the
 * denoiser. torchaudio's conventions: a periodic Hann window of win_length
 * centred in n_fft, reflect padding of n_fft/2 when centred. Even n_fft uses
 * kiss_fftr (real input, half the work); odd n_fft the complex transform. */
#ifndef MML_AUDIO_STFT_H
#define MML_AUDIO_STFT_H

#include <stdbool.h>
#include <stdint.h>

#include <kiss_fft.h>
#include <kiss_fftr.h>

#include "mml/error.h"

typedef struct stft_plan {
    int n_fft, hop, bins;
    bool center;
    int64_t n, pad, frames; /* input samples, padding per side, frames */
    float *window;          /* [n_fft] */
    kiss_fft_scalar *frame; /* [n_fft] windowed input or inverse output */
    kiss_fft_cpx *cin, *cout; /* complex path only */
    kiss_fftr_cfg fwd, inv; /* even n_fft */
    kiss_fft_cfg cfwd;      /* odd n_fft */
} stft_plan;

/* Plans for a signal of n samples; `inverse` also prepares stft_inverse_frame
 * (even n_fft only). MML_ERR_ARG when the padded signal is shorter than n_fft. */
mml_status stft_plan_init(stft_plan *s, int64_t n, int n_fft, int win_length, int hop, bool center, bool inverse);
void stft_plan_free(stft_plan *s);
/* Spectrum of frame f of x into spec[bins]. */
void stft_frame(stft_plan *s, const float *x, int64_t f, kiss_fft_cpx *spec);
/* Windowed inverse of spec[bins] overlap-added into acc[pad + n + pad] at frame f,
 * with the squared window added into norm (divide by it to finish the ISTFT). */
void stft_inverse_frame(stft_plan *s, const kiss_fft_cpx *spec, int64_t f, float *acc, float *norm);

#endif
