/* libFuzzer target: WAV decoding, then trimming, denoising and a feature pass
 * over whatever decodes. */
#include <stdint.h>

#include "mml/audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mml_audio a;
    if (mml_wav_decode(data, size, "fuzz.wav", &a) != MML_OK) return 0;
    if (a.n >= 64 && a.n < 100000) {
        mml_spec_params p = mml_spec_defaults(a.rate);
        p.n_fft = p.win_length = 32;
        p.hop_length = 16;
        p.n_mels = 8;
        p.n_mfcc = 4;
        p.f_max = (float)a.rate / 2.0f;
        mml_tensor_free(mml_audio_features(&a, MML_FEAT_MFCC, &p));
        mml_denoise_params d = mml_denoise_defaults();
        d.n_fft = 32;
        d.hop_length = 8;
        mml_audio_denoise(&a, &d);
        mml_audio_trim(&a, 30.0f, 64, 16, NULL, NULL);
    }
    mml_audio_free(&a);
    return 0;
}
