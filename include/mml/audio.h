/* mml/audio.h: WAV in and out, resampling, and the spectral features of
 * torchaudio (same parameter names, defaults and layout: [features, frames]).
 *
 *     mml_audio a;
 *     if (mml_wav_load("0_george_0.wav", &a) != MML_OK) ...          // mono float in [-1, 1)
 *     mml_spec_params p = mml_spec_defaults(a.rate);                  // torchaudio's defaults
 *     p.n_fft = 256; p.hop_length = 80; p.n_mels = 40;
 *     mml_tensor *logmel = mml_audio_features(&a, MML_FEAT_LOGMEL, &p); // [40, frames]
 *     mml_audio_free(&a);
 *
 * The WAV parser checks every chunk size against the data before reading.
 * Thread safety: no shared state; each call works on its own arguments, so
 * clips may be processed from several threads at once. */
#ifndef MML_AUDIO_H
#define MML_AUDIO_H

#include <stddef.h>

#include "mml/rng.h"
#include "mml/tensor.h"

typedef struct mml_audio {
    float *samples; /* mono (channels averaged), in [-1, 1) */
    int64_t n;
    int rate;
    int channels, bits; /* as stored */
} mml_audio;

mml_status mml_wav_load(const char *path, mml_audio *out);
mml_status mml_wav_decode(const void *bytes, size_t len, const char *what, mml_audio *out);
/* 16-bit PCM mono, written to PATH.tmp and renamed. */
mml_status mml_wav_save(const char *path, const float *samples, int64_t n, int rate);
/* 32-bit IEEE float mono (format 3 with a fact chunk), written the same way. */
mml_status mml_wav_save_float(const char *path, const float *samples, int64_t n, int rate);
void mml_audio_free(mml_audio *a);

/* torchaudio.functional.resample (sinc_interp_hann, lowpass_filter_width 6,
 * rolloff 0.99). Replaces a's samples. */
mml_status mml_audio_resample(mml_audio *a, int new_rate);

typedef enum mml_mel_scale { MML_MEL_HTK = 0, MML_MEL_SLANEY } mml_mel_scale;

typedef struct mml_spec_params {
    int n_fft, win_length, hop_length;
    bool center;           /* reflect-pad n_fft/2 on both sides */
    float power;           /* 2: power, 1: magnitude */
    int n_mels;
    float f_min, f_max;
    mml_mel_scale mel_scale;
    bool slaney_norm;      /* norm="slaney" */
    int n_mfcc;
    float top_db;          /* log-mel: < 0 means none; MFCC uses 80 as torchaudio */
} mml_spec_params;

/* torchaudio's defaults at a sample rate: n_fft 400, win n_fft, hop win/2,
 * center, power 2, 128 mels from 0 to rate/2, HTK, no norm, 40 MFCCs. */
mml_spec_params mml_spec_defaults(int rate);

typedef enum mml_feature_kind { MML_FEAT_SPECTROGRAM = 0, MML_FEAT_MEL, MML_FEAT_LOGMEL, MML_FEAT_MFCC } mml_feature_kind;

/* Heap tensor [n_fft/2+1 | n_mels | n_mfcc, frames]; NULL with an error on bad parameters. */
mml_tensor *mml_audio_features(const mml_audio *a, mml_feature_kind kind, const mml_spec_params *p);
/* torchaudio.functional.melscale_fbanks: [n_freqs, n_mels]. */
mml_tensor *mml_mel_filterbank(int n_freqs, float f_min, float f_max, int n_mels, int rate, bool slaney_norm,
                               mml_mel_scale scale);

/* ---- processing (in place on a mono clip) ---- */

/* librosa.effects.trim: the RMS of frames of frame_length every hop_length
 * (centred, zero-padded), in dB against the loudest frame; keeps the samples from
 * the first frame above -top_db to the end of the last one. start and end (either
 * may be NULL) receive the kept range [start, end) of the original clip. */
mml_status mml_audio_trim(mml_audio *a, float top_db, int frame_length, int hop_length, int64_t *start, int64_t *end);
/* y[i] = x[i] - coef x[i-1], y[0] = x[0] (torchaudio 2's preemphasis). */
void mml_audio_preemphasis(mml_audio *a, float coef);
/* Adds white Gaussian noise scaled so that 10 log10(signal energy / noise energy)
 * is exactly snr_db for the drawn noise (torchaudio 2's add_noise). */
mml_status mml_audio_add_noise(mml_audio *a, float snr_db, mml_rng *rng);

/* Stationary spectral gating: a bin is kept where its level exceeds the noise
 * mean + n_std standard deviations (dB, per frequency), the binary mask is smoothed
 * over 3 bins x 5 frames, and gated bins are scaled by 1 - prop_decrease. The noise
 * comes from a noise-only clip when given, else from the quietest noise_fraction of
 * the frames. Resynthesis is a Hann-windowed overlap-add ISTFT. */
typedef struct mml_denoise_params {
    int n_fft, hop_length; /* n_fft even */
    float n_std, prop_decrease, noise_fraction;
    const float *noise;    /* optional noise-only clip at the same rate, or NULL */
    int64_t noise_n;
} mml_denoise_params;
mml_denoise_params mml_denoise_defaults(void); /* 512, 128, 1.5, 1.0, 0.1, no clip */
mml_status mml_audio_denoise(mml_audio *a, const mml_denoise_params *p);

/* SpecAugment as torchaudio's FrequencyMasking / TimeMasking (mask_along_axis)
 * on spec [features, frames]: a width w = floor(u1 * F) and a start
 * floor(u2 * (size - u1 * F)), u1 and u2 uniform from rng, with F = mask_param when
 * p is 1 and min(mask_param, floor(p * size)) otherwise; the rows (MML_MASK_FREQ)
 * or columns (MML_MASK_TIME) in [start, start + w) are set to value. */
typedef enum mml_mask_axis { MML_MASK_FREQ = 0, MML_MASK_TIME } mml_mask_axis;
mml_status mml_spec_mask(mml_tensor *spec, mml_mask_axis axis, int mask_param, float p, float value, mml_rng *rng);

#endif
