/* mml/featurize.h: the standard featurizer for multimodal manifests, filling
 * an mml_featurizer (mml/dataset.h) from per-modality settings:
 *   image: decoded to `channels`, through the optional `transforms` pipeline
 *          (mml/transform.h; seeded per sample from transform_seed and the
 *          sample id, so a cached dataset is reproducible), resized as PIL
 *          does (interp) to height x width, (x/255 - mean) / std
 *          -> F32 [channels, height, width] (the dataset stores the bytes
 *          when there are no transforms, mean is 0 and std 1);
 *   audio: resampled to `rate`, log-mel (torchaudio) [n_mels, frames],
 *          cropped or zero-padded to `frames`, optionally normalised per
 *          utterance (zero mean, unit variance) -> F32 [n_mels, frames];
 *   text:  CLIP BPE ids padded to `context` -> I32 [context] with its length. */
#ifndef MML_FEATURIZE_H
#define MML_FEATURIZE_H

#include "mml/audio.h"
#include "mml/dataset.h"
#include "mml/text.h"
#include "mml/transform.h"

typedef struct mml_feature_config {
    bool image, audio, text;
    int channels, height, width;
    float mean, std;
    mml_interp interp;                  /* bilinear by default */
    const mml_transforms *transforms;   /* NULL: none; not owned */
    uint64_t transform_seed;
    int rate, frames;
    mml_spec_params spec;    /* n_fft, hop, n_mels, ... (type: log-mel) */
    bool utterance_norm;
    int context;
    const mml_bpe *bpe;      /* required for text; not owned */
} mml_feature_config;

/* Sizes as avdigits uses them: 1x28x28 images; 8 kHz log-mel, 40 bins x 64 frames,
 * n_fft 256, hop 80; 16 CLIP tokens. */
mml_feature_config mml_feature_defaults(void);

/* Fills f (its params string points into cfg's storage, so cfg must outlive f). */
mml_status mml_featurizer_init(mml_featurizer *f, mml_feature_config *cfg, char *params_buf, size_t cap);

#endif
